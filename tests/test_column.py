"""The column physics: shares of a source among levels, conservation and positivity to round-off, gradients."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from _coarse_helpers import small_room, swirl_flow
from plumecast.closure import make_closure
from plumecast.closure.column import height_shares, layer_shares, level_thicknesses_m, make_column
from plumecast.physics.model import build_model
from plumecast.physics.operators import StabilityError, face_masks
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
    h = closure.reservoir.thickness_m
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


@pytest.mark.parametrize("flow", ["sampled", "fluxes"])
@pytest.mark.parametrize("z", [0.3, 1.1, 1.5, 2.8])
def test_column_conserves_mass_to_round_off(z, flow):
    """What the source put in is in the column, to round-off (no sinks; the flux room is closed)."""
    model = column_model() if flow == "sampled" else flux_column_model()
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


@pytest.mark.parametrize("flow", ["sampled", "fluxes"])
def test_column_stays_positive_whatever_is_learned(flow):
    if flow == "sampled":
        model = column_model(w_scale=0.3, exchange=0.01)
    else:  # strong loops and an exhaust; the off-plane start also fills cells solid at the plane
        model = flux_column_model(through=0.08, strength=0.05)
    closure = make_closure("column", model, key=jax.random.PRNGKey(1))
    rng = np.random.default_rng(3)
    wild = jax.tree.map(lambda a: jnp.asarray(20.0 * rng.standard_normal(a.shape), a.dtype)
                        if eqx.is_inexact_array(a) else a, closure)
    q0 = jnp.asarray(rng.random(model.config.shape), jnp.float64) * model.fluid
    s0 = jnp.asarray(rng.random((4,) + model.config.shape), jnp.float64)
    carry = (q0, s0 * model.fluid if flow == "sampled" else s0)
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


@pytest.mark.parametrize("flow", ["sampled", "fluxes"])
def test_column_gradient_matches_finite_differences(flow):
    """Gradients of the plane after 12 steps in two learned fields against central differences."""
    if flow == "sampled":
        model, fields = column_model(), ("theta_vertical", "theta_sink")
    else:
        model, fields = flux_column_model(through=0.05), ("theta_hx", "theta_vertical")
    closure = make_closure("column", model, key=jax.random.PRNGKey(0))
    forcing = constant_forcing(12, 3.1, 2.2, 0.6, 1.0)

    def loss(offset_a, offset_b):
        picked = lambda m: tuple(getattr(m.reservoir, f) for f in fields)  # noqa: E731
        c = eqx.tree_at(picked, closure, tuple(a + o for a, o in zip(picked(closure), (offset_a, offset_b))))
        carry = init_carry(c, jnp.zeros(model.config.shape, jnp.float64))
        final, _ = rollout(model, c, carry, forcing, steps_per_frame=12)
        return jnp.sum(final[0] ** 2)

    assert_gradients_match_differences(loss, eps=1e-5)


def assert_gradients_match_differences(loss, *, eps):
    """``jax.grad`` of ``loss(a, b)`` at (0, 0) against central differences, each nonzero."""
    g = jax.grad(loss, argnums=(0, 1))(0.0, 0.0)
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


# ---------------------------------------------------------------------- transport by summed fluxes

FLUX_LEVELS = np.array([0.5, 1.0, 1.5, 2.0, 2.5])
FLUX_THICKNESS = np.array([0.75, 0.5, 0.5, 0.5, 0.75])


def _loop_fluxes(level_fluid, *, seed=0, loops=60, strength=0.02, through=0.0):
    """Summed fluxes (m^3/s) of random closed loops of four fluid cells, plus optionally one inlet-to-exhaust path.

    Every loop carries its flux around a square of neighbouring cells in an x-y, x-z or
    y-z plane, so the sum is divergence-free on the cells; ``through`` > 0 adds a chain of
    that flux from an inlet at the bottom level's first fluid cell, along x, then up to
    an exhaust at the top level.
    """
    L, ny, nx = level_fluid.shape
    fx, fy, fz = np.zeros((L, ny, nx)), np.zeros((L, ny, nx)), np.zeros((L, ny, nx))
    out = np.zeros((L, ny, nx))
    rng = np.random.default_rng(seed)
    store = {2: fx, 1: fy, 0: fz}

    def add(a, axis, sign, value):  # flux from cell a to its neighbour a + sign along axis
        lo = list(a)
        if sign < 0:
            lo[axis] -= 1
        store[axis][tuple(lo)] += sign * value

    placed = 0
    while placed < loops:
        ax1, ax2 = [(2, 1), (2, 0), (1, 0)][rng.integers(3)]
        k, j, i = rng.integers(L - 1), rng.integers(ny - 1), rng.integers(nx - 1)
        base = np.array([k, j, i])
        e1, e2 = np.eye(3, dtype=int)[ax1], np.eye(3, dtype=int)[ax2]
        corners = [base, base + e1, base + e1 + e2, base + e2]
        if not all(level_fluid[tuple(c)] for c in corners):
            continue
        s = strength * rng.standard_normal()
        add(corners[0], ax1, 1, s)
        add(corners[1], ax2, 1, s)
        add(corners[3], ax1, 1, -s)  # corners[2] -> corners[3] is -x1 from 2, stored as +x1 from 3 negated
        add(corners[0], ax2, 1, -s)
        placed += 1
    if through > 0:
        row = 1
        cols = [i for i in range(nx) if level_fluid[:, row, i].all()]
        a, b = cols[0], cols[-1]
        out[0, row, a] -= through
        for i in range(a, b):
            fx[0, row, i] += through
        for k in range(L - 1):
            fz[k, row, b] += through
        out[L - 1, row, b] += through
    return fx, fy, fz, out


def flux_column_model(*, seed=0, ny=10, nx=14, through=0.0, strength=0.02, dt=0.4):
    """A float64 model with flow "fluxes": per-level cells (a desk in the lowest level, the plane's block open at
    the top), divergence-free summed fluxes and random level flow."""
    fluid = small_room(ny, nx)
    L = len(FLUX_LEVELS)
    level_fluid = np.repeat(fluid[None], L, axis=0)
    level_fluid[0, 7:9, 9:12] = 0  # a desk below the plane
    level_fluid[-1, 3:6, 7:11] = 1  # the plane's obstacle stops below the top level
    fx, fy, fz, out = _loop_fluxes(level_fluid, seed=seed, through=through, strength=strength)
    rng = np.random.default_rng(seed)
    levels = {
        "z_m": FLUX_LEVELS,
        "u": 0.1 * rng.standard_normal((L, ny, nx)) * fluid,
        "v": 0.1 * rng.standard_normal((L, ny, nx)) * fluid,
        "w": 0.02 * rng.standard_normal((L, ny, nx)) * fluid,
        "nu_t": (0.003 + 0.004 * rng.random((L, ny, nx))) * fluid,
        "flux_x": fx, "flux_y": fy, "flux_z": fz, "outflow": out,
        "volume": level_fluid * 0.25 * FLUX_THICKNESS[:, None, None],
    }
    p = 2
    return build_model(fluid=fluid, u=levels["u"][p], v=levels["v"][p], w=levels["w"][p], nu_t=levels["nu_t"][p],
                       dx=0.5, dy=0.5, layer_height_m=HEIGHT, plane_height_m=1.5, levels=levels, flow="fluxes",
                       dt=dt, dtype="float64")


def test_flux_model_takes_level_thickness_and_plane_face_velocities_from_the_fluxes():
    model = flux_column_model()
    c = model.config
    assert c.flow == "fluxes"
    np.testing.assert_allclose(c.level_thickness_m, FLUX_THICKNESS)
    uf, _ = model.face_velocities()
    flux_x = np.asarray(model.level_flux[0, c.plane_level])
    mx, _ = (np.asarray(m) for m in face_masks(model.fluid))
    np.testing.assert_allclose(np.asarray(uf), flux_x[:, :-1] / (0.5 * 0.5) * mx)


def test_layer_shares_put_a_source_in_the_layer_that_holds_it():
    edges = np.concatenate([[0.0], np.cumsum(FLUX_THICKNESS)])
    w = np.asarray(layer_shares(jnp.array([0.0, 0.74, 0.75, 1.5, 2.99, 3.0]), edges))
    np.testing.assert_array_equal(w.argmax(axis=1), [0, 0, 1, 2, 4, 4])
    np.testing.assert_allclose(w.sum(axis=1), 1.0)


def test_flux_column_loses_mass_only_through_the_exhaust():
    model = flux_column_model(through=0.05)
    closure = _no_sinks(make_closure("column", model, key=jax.random.PRNGKey(0)))
    L = len(FLUX_LEVELS)
    q0 = jnp.asarray(model.fluid, jnp.float64)
    level_fluid = (np.asarray(model.level_flux[4]) > 0).astype(float)
    s0 = jnp.asarray(np.delete(level_fluid, model.config.plane_level, axis=0))
    masses = [column_mass(model, closure, (q0, s0))]
    carry = (q0, s0)
    for _ in range(5):
        carry, _ = rollout(model, closure, carry, constant_forcing(4, 3.1, 2.2, 1.5, 0.0), steps_per_frame=4)
        masses.append(column_mass(model, closure, carry))
        assert float(jnp.min(carry[0])) >= 0 and float(jnp.min(carry[1])) >= 0
    assert all(b < a for a, b in zip(masses, masses[1:]))  # the exhaust draws from the room
    # ... and from nowhere else: with the exhaust closed (outflow and the path's flux gone), nothing leaves.
    closed = flux_column_model(through=0.0)
    assert L == closed.level_flux.shape[1]
    closure = _no_sinks(make_closure("column", closed, key=jax.random.PRNGKey(0)))
    final, _ = rollout(closed, closure, (q0, s0), constant_forcing(20, 3.1, 2.2, 1.5, 0.0), steps_per_frame=20)
    assert column_mass(closed, closure, final) == pytest.approx(masses[0], rel=1e-12)


def test_flux_flow_needs_the_fluxes():
    fluid = small_room()
    rng = np.random.default_rng(0)
    levels = {"z_m": FLUX_LEVELS, **{n: 0.01 * rng.random((5,) + fluid.shape) for n in ("u", "v", "w", "nu_t")}}
    with pytest.raises(ValueError, match="summed fluxes"):
        build_model(fluid=fluid, u=levels["u"][2], v=levels["v"][2], nu_t=levels["nu_t"][2], dx=0.5, dy=0.5,
                    levels=levels, flow="fluxes", dtype="float64")
    with pytest.raises(ValueError, match="flow must be one of"):
        build_model(fluid=fluid, u=levels["u"][2], v=levels["v"][2], nu_t=levels["nu_t"][2], dx=0.5, dy=0.5,
                    levels=levels, flow="guessed", dtype="float64")


def test_flux_column_keeps_a_uniform_field_uniform_to_first_order_in_the_step():
    """A divergence-free flow moves a uniform field nowhere; the horizontal-then-vertical split errs by O(dt)."""
    deviations = []
    for dt in (0.4, 0.2, 0.1):
        model = flux_column_model(strength=0.03, dt=dt)
        closure = _no_sinks(make_closure("column", model, key=jax.random.PRNGKey(0)))
        level_fluid = (np.asarray(model.level_flux[4]) > 0).astype(float)
        carry = (jnp.asarray(model.fluid, jnp.float64),
                 jnp.asarray(np.delete(level_fluid, model.config.plane_level, axis=0)))
        n = int(round(4.0 / dt))
        final, _ = rollout(model, closure, carry, constant_forcing(n, 3.1, 2.2, 1.5, 0.0), steps_per_frame=n)
        q = np.asarray(final[0])[np.asarray(model.fluid) > 0]
        s = np.asarray(final[1])[np.delete(level_fluid, model.config.plane_level, axis=0) > 0]
        deviations.append(max(np.abs(q - 1).max(), np.abs(s - 1).max()))
    orders = np.log2(np.asarray(deviations[:-1]) / np.asarray(deviations[1:]))
    assert deviations[0] > 1e-4  # the split does err at the coarsest step ...
    assert np.all(orders > 0.9), (deviations, orders)  # ... and converges at first order


# ---------------------------------------------------------------------- a closure of the vertical exchange

def _wild(closure, scale=3.0, seed=5):
    """The closure with random weights everywhere (the output convolution too: it no longer starts at zero)."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda a: jnp.asarray(scale * rng.standard_normal(a.shape), a.dtype)
                        if eqx.is_inexact_array(a) else a, closure)


def _exchange(model, variant="memory", key=0):
    return make_closure(variant, model, key=jax.random.PRNGKey(key), reservoir="column", target="exchange")


@pytest.mark.parametrize("flow", ["sampled", "fluxes"])
def test_untrained_exchange_closure_is_the_column(flow):
    model = column_model() if flow == "sampled" else flux_column_model(through=0.05)
    column = make_closure("column", model, key=jax.random.PRNGKey(0))
    forcing = constant_forcing(16, 3.1, 2.2, 0.6, 1.0)
    ref, ref_frames = rollout(model, column, init_carry(column, jnp.zeros(model.config.shape, jnp.float64)), forcing,
                              steps_per_frame=4)
    for variant in ("memory", "markovian"):
        closure = _exchange(model, variant)
        final, frames = rollout(model, closure, init_carry(closure, jnp.zeros(model.config.shape, jnp.float64)),
                                forcing, steps_per_frame=4)
        # equal to round-off (adding a zero change reorders XLA's arithmetic)
        np.testing.assert_allclose(np.asarray(frames), np.asarray(ref_frames), rtol=1e-13, atol=1e-30)
        np.testing.assert_allclose(np.asarray(final[1][1]), np.asarray(ref[1]), rtol=1e-13, atol=1e-30)
    assert _exchange(model, "markovian").init_memory()[0] == ()


@pytest.mark.parametrize("flow", ["sampled", "fluxes"])
def test_exchange_closure_conserves_mass_and_stays_positive_whatever_it_learned(flow):
    model = column_model(w_scale=0.3) if flow == "sampled" else flux_column_model(strength=0.05)
    closure = _wild(_exchange(model))
    closure = eqx.tree_at(lambda c: c.column.theta_sink, closure, jnp.full_like(closure.column.theta_sink, -1e4))
    n_steps, rate = 40, 2.0
    forcing = constant_forcing(n_steps, 3.1, 2.2, 0.4, rate)
    carry = init_carry(closure, jnp.zeros(model.config.shape, jnp.float64))
    final, frames = rollout(model, closure, carry, forcing, steps_per_frame=4)
    last = jax.tree.map(lambda a: a[-1], forcing)  # one step's forcing
    ctx = model.closure_context(final[0], final[0], jnp.zeros(model.config.shape), model.prepare(), last)
    (dk, dw), _ = closure.exchange(final[1][1], ctx, final[1][0])
    # The network is not idle: the exchange it sets differs from the column's, both ways.
    assert float(jnp.max(jnp.abs(dk))) > 0.5 and float(jnp.max(jnp.abs(dw))) > 0
    c = model.config
    h = closure.column.thickness_m
    off = np.delete(h, c.plane_level)
    mass = float(h[c.plane_level] * jnp.sum(final[0]) + jnp.sum(off[:, None, None] * final[1][1]))
    assert mass == pytest.approx(rate * c.dt * n_steps / (c.dx * c.dy * c.c_ref), rel=1e-12)
    assert float(jnp.min(frames)) >= -1e-14 and float(jnp.min(final[1][1])) >= -1e-14
    assert np.isfinite(np.asarray(frames)).all()


def test_exchange_closure_speed_bound_keeps_the_substeps_positive():
    model = flux_column_model(strength=0.05)
    closure = _exchange(model)
    col = closure.column
    fluid_L, _, _, w_face, _ = col.transport(model.level_flow, model.level_flux, model.fluid)
    bound = float(closure.speed_bound(w_face, fluid_L))
    assert 0 < bound <= 0.05
    # Worst case: the largest diffusivity and the flow's w plus the bound through every interface.
    sub = col.dt / col.substeps
    dz = np.diff(col.centres_m)[:, None, None]
    w = np.abs(np.asarray(w_face)) + bound
    out = np.zeros(np.shape(fluid_L))
    out[:-1] += w + 0.2 / dz
    out[1:] += w + 0.2 / dz
    assert float((out * np.asarray(fluid_L) / col.thickness_m[:, None, None]).max()) * sub <= col.stability_limit


def test_exchange_closure_gradient_matches_finite_differences():
    """Gradient of the plane after one step, from a filled column, in the network's output weights and the column's
    vertical field. One step: the network's features are constants for the gradients (exchange_inputs), so over
    several steps the derivative through them is left out on purpose and differences would see it."""
    model = flux_column_model(through=0.05)
    closure = _wild(_exchange(model), scale=0.3)
    forcing = constant_forcing(1, 3.1, 2.2, 0.6, 1.0)
    rng = np.random.default_rng(2)
    q0 = jnp.asarray(rng.random(model.config.shape)) * model.fluid
    s0 = jnp.asarray(rng.random((4,) + model.config.shape))
    picked = lambda c: (c.net.body.head[-1].weight, c.column.theta_vertical)  # noqa: E731

    def loss(offset_a, offset_b):
        c = eqx.tree_at(picked, closure, tuple(a + o for a, o in zip(picked(closure), (offset_a, offset_b))))
        final, _ = rollout(model, c, (q0, (c.init_memory()[0], s0)), forcing)
        return jnp.sum(final[0] ** 2)

    assert_gradients_match_differences(loss, eps=1e-6)


def test_exchange_target_needs_the_column_and_its_own_network():
    model = column_model()
    with pytest.raises(ValueError, match="needs reservoir = 'column'"):
        make_closure("memory", model, key=jax.random.PRNGKey(0), target="exchange")
    with pytest.raises(ValueError, match="own network"):
        make_closure("markovian", model, key=jax.random.PRNGKey(0), reservoir="column", target="exchange",
                     size="quick")
    with pytest.raises(ValueError, match="target must be one of"):
        make_closure("memory", model, key=jax.random.PRNGKey(0), reservoir="column", target="levels")


def test_exchange_closure_takes_several_sources_and_keeps_their_mass():
    """Two sources at other heights at once (a what-if's source axis): every level's deposit, mass to round-off."""
    model = flux_column_model()
    closure = _wild(_exchange(model))
    closure = eqx.tree_at(lambda c: c.column.theta_sink, closure, jnp.full_like(closure.column.theta_sink, -1e4))
    n_steps = 20
    one, two = constant_forcing(n_steps, 3.1, 2.2, 0.4, 2.0), constant_forcing(n_steps, 5.2, 3.3, 2.6, 1.0)
    both = Forcing(one.t, *(jnp.stack([a, b], axis=-1) for a, b in zip((one.x, one.y, one.z, one.rate),
                                                                           (two.x, two.y, two.z, two.rate))))
    final, frames = rollout(model, closure, init_carry(closure, jnp.zeros(model.config.shape, jnp.float64)), both,
                            steps_per_frame=5)
    c = model.config
    h = closure.column.thickness_m
    mass = float(h[c.plane_level] * jnp.sum(final[0]) + jnp.sum(np.delete(h, c.plane_level)[:, None, None] * final[1][1]))
    assert mass == pytest.approx(3.0 * c.dt * n_steps / (c.dx * c.dy * c.c_ref), rel=1e-12)
    assert float(jnp.min(frames)) >= -1e-14 and np.isfinite(np.asarray(frames)).all()


def test_weight_decay_reaches_the_networks_and_not_the_column_physics():
    """The weight-decay term is the networks' squared weights: the column's per-cell logits are physics, not weights."""
    from plumecast.train.config import Objective
    from plumecast.train.loss import network_weights, regulariser

    model = column_model()
    closure = _wild(_exchange(model), scale=0.5)
    objective = Objective(weight_decay=1e-2)
    decay = lambda c: float(regulariser((model, c), objective))  # noqa: E731
    base = decay(closure)
    weights = network_weights((model, closure))
    assert base == pytest.approx(1e-2 * sum(float(jnp.sum(a**2)) for a in weights), rel=1e-12) and base > 0
    assert any(a is closure.net.body.head[0].weight for a in weights)  # the closure's network is in
    assert not any(a is model.source_net.layers[0].bias for a in weights)  # biases are not
    shifted = eqx.tree_at(lambda c: c.column.theta_vertical, closure, closure.column.theta_vertical + 5.0)
    assert decay(shifted) == base  # the column's logits are not decayed
    louder = eqx.tree_at(lambda c: c.net.body.head[0].weight, closure, 2 * closure.net.body.head[0].weight)
    assert decay(louder) > base


def test_learned_fields_picture_of_a_column_run(tmp_path):
    # The main job's evaluation report draws this for runs/column-quick (it raised AttributeError).
    from plumecast.plot import learned_fields, learned_fields_picture

    model = column_model()
    closure = make_closure("column", model, key=jax.random.PRNGKey(0))
    fields = learned_fields(model, closure)
    assert set(fields) == set(learned_fields(model, None))  # the plane's maps; the levels have none of a layer's
    assert learned_fields_picture(model, closure, tmp_path / "column.png").stat().st_size > 0
