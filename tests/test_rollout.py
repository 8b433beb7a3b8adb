"""Rollouts: scan structure, the closure slot, moving sources, and gradients (float64)."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import plumecast  # noqa: F401
from plumecast.closure import Closure, make_closure, variant_names
from plumecast.physics.model import build_model
from plumecast.rollout import forcing_from_track, init_carry, rollout, step

from _coarse_helpers import small_room, swirl_flow


def _build(**kw):
    fluid = small_room()
    u, v = swirl_flow(fluid, speed=0.3)
    nu_t = np.random.default_rng(0).uniform(0.003, 0.02, fluid.shape) * fluid
    return build_model(fluid=fluid, u=u, v=v, nu_t=nu_t, dx=0.5, dy=0.5, c_ref=0.7, dtype="float64", **kw)


@pytest.fixture(scope="module")
def model():
    return _build()


def _forcing(n_steps, moving=True):
    times = np.array([0.0, 4.0, 8.0, 12.0])
    x = [1.1, 2.3, 5.0, 8.0] if moving else [2.6] * 4  # passes south of the obstacle
    y = [1.2, 1.0, 1.3, 1.1] if moving else [1.4] * 4
    rate = [1.0, 3.0, 0.5, 2.0]
    return forcing_from_track(times, x, y, [1.2] * 4, rate, dt=0.4, n_steps=n_steps, dtype="float64")


def test_rollout_matches_step_loop_and_frames(model):
    f = _forcing(30)
    q0 = jnp.zeros(model.config.shape)
    (qT, mem), frames = rollout(model, None, init_carry(None, q0), f, steps_per_frame=5)
    assert frames.shape == (6,) + model.config.shape and mem == ()
    carry = init_carry(None, q0)
    manual = []
    one = eqx.filter_jit(step)
    for k in range(30):
        carry = one(model, None, carry, jax.tree.map(lambda a: a[k], f))
        if (k + 1) % 5 == 0:
            manual.append(carry[0])
    np.testing.assert_allclose(frames, np.stack(manual), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(qT, manual[-1], rtol=1e-13, atol=1e-15)
    with pytest.raises(ValueError, match="frames"):
        rollout(model, None, init_carry(None, q0), f, steps_per_frame=7)
    with pytest.raises(ValueError, match="unbatched"):
        rollout(model, None, init_carry(None, jnp.zeros((2,) + model.config.shape)), f)


def test_moving_time_varying_source_injects_exact_mass(model):
    # No flow in or out: mass in the plane = integral of the rate, whatever the path.
    f = _forcing(30)
    (qT, _), _ = rollout(model, None, init_carry(None, jnp.zeros(model.config.shape)), f, steps_per_frame=30)
    c = model.config
    injected = float(jnp.sum(f.rate)) * c.dt / (c.dx * c.dy * c.layer_height_m * c.c_ref)
    # rate is piecewise linear: midpoint sampling integrates it exactly
    exact = np.trapezoid([1.0, 3.0, 0.5, 2.0], [0, 4, 8, 12]) / (c.dx * c.dy * c.layer_height_m * c.c_ref)
    assert float(qT.sum()) == pytest.approx(injected, rel=1e-12)
    assert injected == pytest.approx(exact, rel=1e-12)


def _loss(model, f, target, checkpoint=False):
    def hook(carry, tgt):
        return jnp.sum((carry[0] - tgt) ** 2)

    _, losses = rollout(
        model, None, init_carry(None, jnp.zeros(model.config.shape)), f, steps_per_frame=5, frame_data=target,
        hook=hook, checkpoint=checkpoint,
    )
    return jnp.sum(losses)


def test_gradients_match_central_differences():
    f = _forcing(30)
    rng = np.random.default_rng(1)
    model = _build(exchange_max_per_s=0.05)
    target = jnp.asarray(rng.random((6,) + model.config.shape)) * model.fluid
    # A non-trivial source net and exchange field, so their gradients are generic.
    net = jax.tree.map(lambda a: a + 0.3 * rng.standard_normal(a.shape) if eqx.is_inexact_array(a) else a, model.source_net)
    m = eqx.tree_at(lambda m: (m.source_net, m.theta_exchange), model,
                    (net, jnp.asarray(rng.normal(-2.0, 1.0, model.config.shape))))
    params, static = eqx.partition(m, _spec(m))
    loss = jax.jit(lambda p, f: _loss(eqx.combine(p, static), f, target))
    grads = jax.jit(jax.grad(lambda p: _loss(eqx.combine(p, static), f, target)))(params)
    worst = 0.0
    for name in ("theta_x", "theta_y", "theta_exchange", "source_net"):
        direction = jax.tree.map(lambda a: jnp.asarray(rng.standard_normal(a.shape)), getattr(params, name))
        sel = lambda p: getattr(p, name)  # noqa: E731
        eps = 1e-5
        plus = eqx.tree_at(sel, params, jax.tree.map(lambda a, d: a + eps * d, sel(params), direction))
        minus = eqx.tree_at(sel, params, jax.tree.map(lambda a, d: a - eps * d, sel(params), direction))
        fd = (float(loss(plus, f)) - float(loss(minus, f))) / (2 * eps)
        ad = sum(float(jnp.vdot(g, d)) for g, d in zip(jax.tree.leaves(sel(grads)), jax.tree.leaves(direction)))
        rel = abs(fd - ad) / max(abs(fd), 1e-12)
        worst = max(worst, rel)
        assert rel < 1e-6, (name, fd, ad)
    # The source rate itself (forcing), e.g. for source inversion.
    g_rate = jax.jit(jax.grad(lambda r: loss(params, eqx.tree_at(lambda f: f.rate, f, r))))(f.rate)
    d = jnp.asarray(rng.standard_normal(f.rate.shape))
    eps = 1e-4
    fd = (float(loss(params, eqx.tree_at(lambda f: f.rate, f, f.rate + eps * d)))
          - float(loss(params, eqx.tree_at(lambda f: f.rate, f, f.rate - eps * d)))) / (2 * eps)
    rel = abs(fd - float(jnp.vdot(g_rate, d))) / abs(fd)
    worst = max(worst, rel)
    print(f"gradient check: worst relative error vs central differences {worst:.2e}")
    assert rel < 1e-6


def _spec(m):
    from plumecast.physics.model import trainable_spec

    return trainable_spec(m)


def test_gradients_with_and_without_checkpointing_equal(model):
    f = _forcing(30)
    target = jnp.ones((6,) + model.config.shape) * model.fluid * 0.1
    params, static = eqx.partition(model, _spec(model))
    g0 = jax.jit(jax.grad(lambda p: _loss(eqx.combine(p, static), f, target, checkpoint=False)))(params)
    g1 = jax.jit(jax.grad(lambda p: _loss(eqx.combine(p, static), f, target, checkpoint=True)))(params)
    for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(g1)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-16)


class _CountingClosure(Closure):
    """A test closure: adds a constant, counts steps in its memory, optionally without physics."""

    uses_physics: ClassVar[bool] = True
    bump: jax.Array

    def init_memory(self):
        return {"n": jnp.zeros(()), "h": jnp.zeros(3)}

    def __call__(self, ctx, memory):
        assert ctx.q.shape == ctx.q_physics.shape == ctx.u.shape == ctx.dx_c.shape == ctx.source.shape
        return ctx.q_physics + self.bump, {"n": memory["n"] + 1, "h": memory["h"] + ctx.t}


class _NoPhysicsClosure(_CountingClosure):
    uses_physics: ClassVar[bool] = False


def test_closure_slot_carries_memory_and_batches(model):
    assert "physics" in variant_names()
    assert make_closure("physics", model, key=jax.random.PRNGKey(0)) is None
    with pytest.raises(ValueError, match="unknown variant"):
        make_closure("nope", model, key=jax.random.PRNGKey(0))
    f = _forcing(10)
    q0 = jnp.zeros(model.config.shape)
    zero = _CountingClosure(bump=jnp.zeros(()))
    (q_a, mem), _ = rollout(model, zero, init_carry(zero, q0), f, steps_per_frame=5)
    (q_b, _), _ = rollout(model, None, init_carry(None, q0), f, steps_per_frame=5)
    np.testing.assert_allclose(q_a, q_b, rtol=1e-14)  # a zero closure is the physics model
    assert float(mem["n"]) == 10 and float(mem["h"][0]) == pytest.approx(float(jnp.sum(f.t)))
    bump = _NoPhysicsClosure(bump=jnp.ones(()))
    (q_c, _), _ = rollout(model, bump, init_carry(bump, q0), f, steps_per_frame=5)
    np.testing.assert_allclose(q_c, 10.0 * model.fluid)  # no physics: only the closure acts, masked
    # Batching by vmap at the call site.
    qb = jnp.stack([q0, q0 + model.fluid])
    fb = jax.tree.map(lambda a: jnp.stack([a, a]), f)
    carry_b = jax.vmap(lambda q: init_carry(zero, q))(qb)
    (qs, mems), frames = jax.vmap(lambda c, ff: rollout(model, zero, c, ff, steps_per_frame=5))(carry_b, fb)
    assert qs.shape == (2,) + model.config.shape and frames.shape == (2, 2) + model.config.shape
    np.testing.assert_allclose(qs[0], q_a, rtol=1e-13)


