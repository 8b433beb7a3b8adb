"""The column physics: shares of a source among levels, conservation and positivity to round-off, gradients."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from _coarse_helpers import small_room, swirl_flow
from plumecast.closure import make_closure
from plumecast.closure.column import height_shares, level_thicknesses_m, make_column
from plumecast.physics.model import build_model
from plumecast.physics.operators import StabilityError
from plumecast.rollout import Forcing, init_carry, rollout

LEVELS = np.array([0.3, 0.9, 1.5, 2.1, 2.7])
HEIGHT = 3.0


def column_model(*, w_scale=0.05, seed=0, ny=10, nx=14, exchange=0.0):
    fluid = small_room(ny, nx)
    rng = np.random.default_rng(seed)
    flows = [swirl_flow(fluid, speed=0.1 + 0.05 * k, seed=seed + k) for k in range(len(LEVELS))]
    levels = {
        "z_m": LEVELS,
        "u": np.stack([f[0] for f in flows]),
        "v": np.stack([f[1] for f in flows]),
        "w": w_scale * rng.standard_normal((len(LEVELS), ny, nx)) * fluid,
        "nu_t": (0.003 + 0.004 * rng.random((len(LEVELS), ny, nx))) * fluid,
    }
    p = 2
    return build_model(fluid=fluid, u=levels["u"][p], v=levels["v"][p], w=levels["w"][p], nu_t=levels["nu_t"][p],
                       dx=0.5, dy=0.5, layer_height_m=HEIGHT, plane_height_m=1.5, exchange_max_per_s=exchange,
                       levels=levels, dtype="float64")


def column_mass(model, closure, carry):
    """``sum_k h_k sum(q_k)`` of the plane and the off-plane levels (normalised units times m)."""
    q, s = carry
    h = level_thicknesses_m(LEVELS, HEIGHT)
    p = model.config.plane_level
    off = np.delete(h, p)
    return float(h[p] * jnp.sum(q) + jnp.sum(off[:, None, None] * s))


def constant_forcing(n_steps, x, y, z, rate, dtype=jnp.float64):
    full = lambda v: jnp.full((n_steps,), v, dtype)  # noqa: E731
    return Forcing(t=jnp.arange(n_steps, dtype=dtype) * 0.4, x=full(x), y=full(y), z=full(z), rate=full(rate))


def test_height_shares_are_hat_weights_that_sum_to_one():
    z = jnp.array([0.0, 0.3, 0.6, 1.5, 1.8, 2.7, 3.0])
    w = np.asarray(height_shares(z, LEVELS))
    np.testing.assert_allclose(w.sum(axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(w[0], [1, 0, 0, 0, 0])  # below the first level: all of it there
    np.testing.assert_allclose(w[2], [0.5, 0.5, 0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(w[4], [0, 0, 0.5, 0.5, 0], atol=1e-12)
    np.testing.assert_allclose(w[6], [0, 0, 0, 0, 1])
    assert np.asarray(height_shares(1.2, LEVELS)).shape == (5,)
    np.testing.assert_allclose(level_thicknesses_m(LEVELS, HEIGHT), 0.6)


def _no_sinks(closure):
    """The column with its sinks at exactly zero (sigmoid of about -1e4 underflows to 0 in float64)."""
    return eqx.tree_at(lambda c: c.reservoir.theta_sink, closure, jnp.full_like(closure.reservoir.theta_sink, -1e4))


@pytest.mark.parametrize("z", [0.3, 1.1, 1.5, 2.5])
def test_column_conserves_mass_to_round_off(z):
    model = column_model()
    closure = _no_sinks(make_closure("column", model, key=jax.random.PRNGKey(0)))
    n_steps, rate = 30, 2.0
    carry = init_carry(closure, jnp.zeros(model.config.shape, jnp.float64))
    forcing = constant_forcing(n_steps, 3.1, 2.2, z, rate)
    final, _ = rollout(model, closure, carry, forcing, steps_per_frame=n_steps)
    c = model.config
    # Injected mass in the column measure: rate dt n / (dx dy c_ref) per unit area times the model's
    # deposit, which the source scale (1 at start) multiplies.
    injected = rate * c.dt * n_steps / (c.dx * c.dy * c.c_ref)
    assert column_mass(model, closure, final) == pytest.approx(injected, rel=1e-12)
    assert float(jnp.sum(final[1])) > 0 or z == 1.5


def test_column_stays_positive_whatever_is_learned():
    model = column_model(w_scale=0.3, exchange=0.01)
    closure = make_closure("column", model, key=jax.random.PRNGKey(1))
    rng = np.random.default_rng(3)
    wild = jax.tree.map(lambda a: jnp.asarray(20.0 * rng.standard_normal(a.shape), a.dtype)
                        if eqx.is_inexact_array(a) else a, closure)
    q0 = jnp.asarray(rng.random(model.config.shape), jnp.float64) * model.fluid
    carry = (q0, jnp.asarray(rng.random((4,) + model.config.shape), jnp.float64) * model.fluid)
    final, frames = rollout(model, wild, carry, constant_forcing(40, 3.1, 2.2, 0.4, 5.0), steps_per_frame=4)
    assert float(jnp.min(frames)) >= -1e-14
    assert float(jnp.min(final[1])) >= -1e-14
    assert np.isfinite(np.asarray(frames)).all()


def test_source_below_the_plane_reaches_it_only_through_the_column():
    model = column_model(w_scale=0.0)
    closure = make_closure("column", model, key=jax.random.PRNGKey(0))
    carry = init_carry(closure, jnp.zeros(model.config.shape, jnp.float64))
    final, _ = rollout(model, closure, carry, constant_forcing(1, 3.1, 2.2, 0.3, 1.0))
    # One step: the source sits in the lowest level; the plane two levels up has received
    # only what the step's vertical substeps carried through the level between.
    assert 0 <= float(jnp.sum(final[0])) < 1e-3 * float(jnp.sum(final[1][0]))
    final, _ = rollout(model, closure, carry, constant_forcing(50, 3.1, 2.2, 0.3, 1.0), steps_per_frame=50)
    assert float(jnp.sum(final[0])) > 0  # ... and arrives later by vertical mixing
    # A source at the plane goes into the plane: after one step the other levels hold only
    # the little the step's vertical substeps moved (about 1 %, none of it emitted there).
    final, _ = rollout(model, closure, carry, constant_forcing(1, 3.1, 2.2, 1.5, 1.0))
    assert float(jnp.sum(final[1])) < 0.05 * float(jnp.sum(final[0]))


def test_column_gradient_matches_finite_differences():
    model = column_model()
    closure = make_closure("column", model, key=jax.random.PRNGKey(0))
    forcing = constant_forcing(12, 3.1, 2.2, 0.6, 1.0)

    def loss(offset_vertical, offset_sink):
        c = eqx.tree_at(lambda m: (m.reservoir.theta_vertical, m.reservoir.theta_sink), closure,
                        (closure.reservoir.theta_vertical + offset_vertical, closure.reservoir.theta_sink + offset_sink))
        carry = init_carry(c, jnp.zeros(model.config.shape, jnp.float64))
        final, _ = rollout(model, c, carry, forcing, steps_per_frame=12)
        return jnp.sum(final[0] ** 2)

    g = jax.grad(loss, argnums=(0, 1))(0.0, 0.0)
    eps = 1e-5
    for k, gk in enumerate(g):
        args = [0.0, 0.0]
        args[k] = eps
        plus = loss(*args)
        args[k] = -eps
        minus = loss(*args)
        fd = (plus - minus) / (2 * eps)
        assert float(gk) == pytest.approx(float(fd), rel=1e-6, abs=1e-14)
        assert abs(float(gk)) > 0


def test_column_needs_flow_levels_and_a_stable_flow():
    fluid = small_room()
    u, v = swirl_flow(fluid)
    plain = build_model(fluid=fluid, u=u, v=v, nu_t=0.003 * fluid, dx=0.5, dy=0.5, dtype="float64")
    with pytest.raises(ValueError, match="flow at several heights"):
        make_closure("column", plain, key=jax.random.PRNGKey(0))
    fast = column_model()
    flow = np.asarray(fast.level_flow).copy()
    flow[2, 0] = 50.0 * fast.fluid  # a vertical jet no explicit substep can carry
    fast = eqx.tree_at(lambda m: m.level_flow, fast, jnp.asarray(flow))
    with pytest.raises(StabilityError, match="vertical exchange"):
        make_column(fast)


def test_memory_closure_continues_the_column():
    model = column_model()
    closure = make_closure("memory", model, key=jax.random.PRNGKey(0), reservoir="column")
    assert closure.layer() is not None and closure.layer().plane_level == 2
    carry = init_carry(closure, jnp.zeros(model.config.shape, jnp.float64))
    final, frames = rollout(model, closure, carry, constant_forcing(8, 3.1, 2.2, 0.4, 1.0), steps_per_frame=4)
    assert frames.shape == (2,) + model.config.shape and np.isfinite(np.asarray(frames)).all()
    with pytest.raises(ValueError, match="reservoir must be"):
        make_closure("memory", model, key=jax.random.PRNGKey(0), reservoir="attic")
