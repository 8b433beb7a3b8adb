"""Verification of the 3D scalar transport (plumecast.reference.transport), in float64."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy.stats import binom

from plumecast.geometry import Grid3D
from plumecast.reference.flow import Flow3D
from plumecast.reference.transport import (
    TransportError,
    advance,
    build_operator,
    cumulative_emission,
    face_diffusivities,
    operator_from_flow,
    potential_flow,
    simulate_scalar,
    source_weights,
    stable_dt,
)
from plumecast.scenario import Scenario, Simulation, Source, load_scenario_set


def make_grid(fluid, h, *, inlet_x0=False, outlet_x1=False, speed=0.0) -> Grid3D:
    """A Grid3D by hand: optional inlet on the whole x- face and outlet on the whole x+ face."""
    nz, ny, nx = fluid.shape
    shapes = [(nz, ny, nx + 1), (nz, ny + 1, nx), (nz + 1, ny, nx)]
    bc = [np.zeros(s) for s in shapes]
    inl = [np.zeros(s, bool) for s in shapes]
    out = [np.zeros(s, bool) for s in shapes]
    if inlet_x0:
        inl[0][..., 0] = fluid[..., 0]
        bc[0][..., 0] = np.where(fluid[..., 0], speed, 0.0)
    if outlet_x1:
        out[0][..., -1] = fluid[..., -1]
        bc[0][..., -1] = np.where(fluid[..., -1], speed, 0.0)
    return Grid3D(fluid=fluid, cell_m=h, u_bc=bc[0], v_bc=bc[1], w_bc=bc[2],
                  inlet_faces=tuple(inl), outlet_faces=tuple(out))


def zero_flow(grid, nu_t=0.0) -> Flow3D:
    nz, ny, nx = grid.shape
    return Flow3D(u=np.zeros((nz, ny, nx + 1)), v=np.zeros((nz, ny + 1, nx)), w=np.zeros((nz + 1, ny, nx)),
                  nu_t=np.where(grid.fluid, nu_t, 0.0))


def streamfunction_flow(grid, amp=0.5, seed=0):
    """A divergence-free recirculating flow in a closed box: curl of two edge streamfunctions,
    zero on every edge that touches a solid cell or the box, so walls see no normal flow."""
    rng = np.random.default_rng(seed)
    f = grid.fluid
    nz, ny, nx = f.shape
    h = grid.cell_m
    solid = np.pad(~f, 1, constant_values=True)  # (nz+2, ny+2, nx+2)
    # psi on z-edges (nz, ny+1, nx+1): drives u, v; zero if any of the 4 cells around the edge is solid.
    around_z = solid[1:-1, :-1, :-1] | solid[1:-1, 1:, :-1] | solid[1:-1, :-1, 1:] | solid[1:-1, 1:, 1:]
    psi = np.where(around_z, 0.0, amp * h * rng.uniform(-1, 1, around_z.shape))
    # chi on y-edges (nz+1, ny, nx+1): drives u, w.
    around_y = solid[:-1, 1:-1, :-1] | solid[1:, 1:-1, :-1] | solid[:-1, 1:-1, 1:] | solid[1:, 1:-1, 1:]
    chi = np.where(around_y, 0.0, amp * h * rng.uniform(-1, 1, around_y.shape))
    u = (psi[:, 1:, :] - psi[:, :-1, :]) / h + (chi[1:] - chi[:-1]) / h
    v = -(psi[:, :, 1:] - psi[:, :, :-1]) / h
    w = -(chi[:, :, 1:] - chi[:, :, :-1]) / h
    div = (u[..., 1:] - u[..., :-1] + v[:, 1:] - v[:, :-1] + w[1:] - w[:-1]) / h
    assert np.abs(div).max() < 1e-12
    return u, v, w


def box_with_obstacles(n=(8, 10, 12), h=0.25):
    fluid = np.ones(n, bool)
    fluid[:3, 2:5, 3:7] = False  # a desk
    fluid[:, 6, 2:9] = False  # a thin full-height wall
    fluid[5:, 1:3, 9:11] = False  # a hanging box
    return fluid, h


# ---------------------------------------------------------------------------------------
# Diffusion: 3D orthotropic Gaussian in a closed box, observed order of convergence
# ---------------------------------------------------------------------------------------


def neumann_gaussian_1d(x, x0, sigma2, length, images=3):
    """Exact solution of the 1D heat equation on [0, L] with zero flux, Gaussian data (images)."""
    g = np.zeros_like(x)
    for k in range(-images, images + 1):
        for centre in (x0 + 2 * k * length, -x0 + 2 * k * length):
            g += np.exp(-((x - centre) ** 2) / (2 * sigma2)) / math.sqrt(2 * math.pi * sigma2)
    return g


def gaussian_error(n, d=(0.006, 0.003, 0.0015), x0=(0.46, 0.53, 0.49), sigma0=0.1, t_end=1.0, exact_d=None):
    """Relative L2 error at t_end of the Gaussian on an n^3 grid of [0, 1]^3, dt = t_end / (n^2 / 16).

    dt is kept proportional to h^2 (diffusion number 0.34), so Euler's O(dt) error is O(h^2) too
    and the fitted order is the scheme's, not an artefact of rounding the step count.
    """
    length = 1.0
    exact_d = d if exact_d is None else exact_d
    h = length / n
    grid = make_grid(np.ones((n, n, n), bool), h)
    nzf = (n, n, n)
    shapes = [(nzf[0], nzf[1], nzf[2] + 1), (nzf[0], nzf[1] + 1, nzf[2]), (nzf[0] + 1, nzf[1], nzf[2])]
    op = build_operator(grid, *(np.zeros(s) for s in shapes), d[0], d[1], d[2])
    steps = n * n // 16
    dt = t_end / steps
    assert dt <= stable_dt(op, 0.8)
    xc = (np.arange(n) + 0.5) * h

    def exact(t):
        gx, gy, gz = (neumann_gaussian_1d(xc, x0[a], sigma0**2 + 2 * exact_d[a] * t, length) for a in range(3))
        return gz[:, None, None] * gy[None, :, None] * gx[None, None, :]

    c, out = advance(op, exact(0.0), dt, steps, cfl=0.8)
    c = np.asarray(c)
    ref = exact(t_end)
    assert float(out) == 0.0
    return h, float(np.sqrt(np.mean((c - ref) ** 2)) / np.sqrt(np.mean(ref**2)))


def test_orthotropic_gaussian_diffusion_converges_second_order():
    ns = (12, 16, 24, 32)
    hs, errs = zip(*(gaussian_error(n) for n in ns))
    order = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert errs[-1] < 3e-3, errs
    assert all(a > b for a, b in zip(errs, errs[1:])), errs
    assert 1.8 < order < 2.3, (order, errs)


def test_orthotropic_diffusivities_act_on_their_own_axes():
    # Against the exact solution with the diffusivities permuted or averaged, the error is far
    # above the discretisation error: each axis sees its own D.
    _, e = gaussian_error(16)
    _, e_swapped = gaussian_error(16, exact_d=(0.0015, 0.003, 0.006))
    _, e_iso = gaussian_error(16, exact_d=(0.0035, 0.0035, 0.0035))
    assert e_swapped > 10 * e and e_iso > 5 * e, (e, e_swapped, e_iso)


# ---------------------------------------------------------------------------------------
# Advection: exact discrete upwind solution, positivity, boundedness
# ---------------------------------------------------------------------------------------


def test_upwind_through_flow_matches_exact_binomial_solution():
    # Uniform u through a 1 x 2 x 10 box (inlet on x-, outlet on x+), c = 1 at t = 0, no
    # diffusion: upwind gives c_i^n = P(Binomial(n, nu) <= i) exactly, nu = u dt / h.
    nx, h, speed = 10, 0.5, 0.4
    fluid = np.ones((1, 2, nx), bool)
    grid = make_grid(fluid, h, inlet_x0=True, outlet_x1=True, speed=speed)
    u = np.full((1, 2, nx + 1), speed)
    op = build_operator(grid, u, np.zeros((1, 3, nx)), np.zeros((2, 2, nx)), 0.0, 0.0, 0.0)
    # lambda = u / h per cell (only the outflow face counts) -> limit cfl h / u
    assert stable_dt(op, 1.0) == pytest.approx(h / speed, rel=1e-14)
    dt = 0.5  # nu = 0.4
    nu = speed * dt / h
    n = 7
    c, out = advance(op, np.ones((1, 2, nx)), dt, n)
    expect = binom.cdf(np.arange(nx), n, nu)
    np.testing.assert_allclose(np.asarray(c)[0, 0], expect, rtol=0, atol=1e-14)
    np.testing.assert_allclose(np.asarray(c)[0, 1], expect, rtol=0, atol=1e-14)
    # What left through the outlet is the initial mass minus what is still inside.
    m0 = nx * 2 * h**3
    assert float(out) == pytest.approx(m0 - float(np.sum(c)) * h**3, rel=1e-13)


def test_upwind_positive_and_bounded_in_potential_flow():
    ss = load_scenario_set("tiny")
    grid = ss.room.discretise(ss.simulation.fine_cell_m)
    flow = potential_flow(grid, nu_t_m2_s=0.0)
    assert flow.diagnostics["max_divergence_1_s"] < 1e-10
    dx, dy, dz = face_diffusivities(grid, flow.nu_t, molecular=0.0, schmidt=0.7)
    op = build_operator(grid, flow.u, flow.v, flow.w, dx, dy, dz)  # pure advection
    dt = stable_dt(op, 1.0)  # at the limit itself
    rng = np.random.default_rng(1)
    c = np.where(grid.fluid, rng.uniform(0.0, 1.0, grid.shape), 0.0)
    c[grid.fluid] = np.clip(c[grid.fluid], 0.05, 0.95)
    cmax = c.max()
    for _ in range(30):
        new, _ = advance(op, c, dt, 3)
        new = np.asarray(new)
        assert new.min() >= 0.0
        assert new.max() <= c.max() * (1 + 1e-14)  # no new maxima (clean inflow cannot raise one)
        c = new
    assert c.max() <= cmax
    assert np.all(c[~grid.fluid] == 0.0)


def test_advection_diffusion_positive_in_recirculating_flow():
    fluid, h = box_with_obstacles()
    grid = make_grid(fluid, h)
    u, v, w = streamfunction_flow(grid, amp=0.8)
    rng = np.random.default_rng(2)
    nu_t = np.where(fluid, rng.uniform(0.0, 0.02, fluid.shape), 0.0)
    dx, dy, dz = face_diffusivities(grid, nu_t, molecular=2e-5, schmidt=0.7)
    op = build_operator(grid, u, v, w, dx, dy, dz)
    dt = stable_dt(op, 1.0)
    c0 = np.zeros(fluid.shape)
    c0[4, 8, 2] = 1.0  # a spike: the worst case for positivity
    c, _ = advance(op, c0, dt, 200)
    c = np.asarray(c)
    assert c.min() >= 0.0
    assert c.max() <= 1.0


# ---------------------------------------------------------------------------------------
# Conservation and the mass budget
# ---------------------------------------------------------------------------------------


def test_closed_box_with_obstacles_conserves_mass_to_round_off():
    fluid, h = box_with_obstacles()
    grid = make_grid(fluid, h)
    u, v, w = streamfunction_flow(grid, amp=0.6)
    rng = np.random.default_rng(3)
    nu_t = np.where(fluid, rng.uniform(0.0, 0.03, fluid.shape), 0.0)
    op = operator_from_flow(grid, Flow3D(u, v, w, nu_t), Simulation())
    c0 = np.where(fluid, rng.uniform(0.0, 5.0, fluid.shape), 0.0)
    dt = stable_dt(op, 0.8)
    c, out = advance(op, c0, dt, 500)
    c = np.asarray(c)
    m0, m1 = c0.sum(), c.sum()
    assert float(out) == 0.0
    assert abs(m1 - m0) / m0 < 1e-13
    assert np.all(c[~fluid] == 0.0)
    # The solution moved: this is not a trivially frozen state.
    assert np.abs(c - c0).max() > 0.1


def test_mass_budget_with_inlets_and_outlets_to_round_off():
    ss = load_scenario_set("tiny")
    sim = ss.simulation
    grid = ss.room.discretise(sim.fine_cell_m)
    flow = potential_flow(grid, nu_t_m2_s=0.01)
    res = simulate_scalar(grid, flow, ss.scenarios, sim)
    times = sim.times_s
    assert res.concentration.shape == (len(ss.scenarios), len(times), 4, 8)
    assert res.mass_room.shape == (len(ss.scenarios), len(times))
    assert np.all(res.mass_room[:, 0] == 0) and np.all(res.concentration[:, 0] == 0)
    assert res.relative_budget_error < 1e-12
    # Mass really left: a budget that holds because nothing moves would prove nothing.
    assert np.all(res.mass_outflow[:, -1] > 0.01 * res.mass_injected[:, -1])
    assert res.mass_outflow[:, -1].sum() > 0.2 * res.mass_injected[:, -1].sum()
    assert np.all(np.diff(res.mass_outflow, axis=1) >= 0)
    # Injected mass is the exact integral of each rate schedule (incl. the pulse).
    for s, sc in enumerate(ss.scenarios):
        np.testing.assert_allclose(res.mass_injected[s], cumulative_emission(sc.source, times), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(res.source_rate[s], sc.source.rate_at(times))
        np.testing.assert_allclose(res.source_xyz[s], sc.source.position_at(times))
    assert res.concentration.min() >= 0.0
    # The time step rule: stable, a whole number of steps per snapshot.
    assert res.dt_s <= res.stable_dt_s
    assert res.steps_per_snapshot * res.dt_s == pytest.approx(sim.snapshot_s, rel=1e-14)
    assert res.n_steps == res.steps_per_snapshot * (len(times) - 1)


def test_batch_chunks_and_progress():
    ss = load_scenario_set("tiny")
    sim = dataclasses.replace(ss.simulation, horizon_s=6.0)
    grid = ss.room.discretise(sim.fine_cell_m)
    flow = potential_flow(grid, nu_t_m2_s=0.01)
    calls = []
    full = simulate_scalar(grid, flow, ss.scenarios, sim)
    part = simulate_scalar(grid, flow, ss.scenarios, sim, progress=lambda d, t: calls.append((d, t)), batch_size=4)
    np.testing.assert_allclose(part.concentration, full.concentration, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(part.mass_room, full.mass_room, rtol=1e-13)
    assert calls[-1][0] == calls[-1][1] == 2 * full.n_steps
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


# ---------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------


def test_source_weights_are_conservative_and_first_moment_exact():
    fluid, h = box_with_obstacles()
    grid = make_grid(fluid, h)
    rng = np.random.default_rng(4)
    nz, ny, nx = fluid.shape
    pts = np.stack([rng.uniform(2 * h, (nx - 2) * h, 400), rng.uniform(2 * h, (ny - 2) * h, 400),
                    rng.uniform(2 * h, (nz - 2) * h, 400)], -1)
    ok = np.array([fluid[grid.cell_index(*p)] for p in pts])
    pts = pts[ok]
    idx, w = source_weights(grid, pts)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=0, atol=1e-15)
    assert np.all(fluid.reshape(-1)[idx][w > 0])
    # Away from solids the trilinear weights reproduce the point (first moment).
    k, j, i = np.unravel_index(idx, fluid.shape)
    clean = np.all(fluid.reshape(-1)[idx], axis=-1)
    centre = np.stack([((i + 0.5) * h * w).sum(-1), ((j + 0.5) * h * w).sum(-1), ((k + 0.5) * h * w).sum(-1)], -1)
    np.testing.assert_allclose(centre[clean], pts[clean], atol=1e-13)
    assert clean.sum() > 50 and (~clean).sum() > 5
    with pytest.raises(TransportError, match="no fluid cell"):
        source_weights(grid, [(4.5 * h, 3.5 * h, 0.5 * h)])  # inside the desk, far from fluid


def test_moving_source_deposits_exactly_the_scheduled_mass():
    fluid, h = box_with_obstacles()
    grid = make_grid(fluid, h)
    flow = zero_flow(grid, nu_t=0.01)
    nz, ny, nx = fluid.shape
    sim = Simulation(horizon_s=8.0, snapshot_s=0.5, plane_height_m=1.0, plane_cell_m=0.5, fine_cell_m=h)
    # Crosses cell boundaries, starts with part of its stencil in the desk; a rate with kinks
    # off the step grid and a stop.
    moving = Source(rate=((0.3, 0.0), (1.7, 3.0), (4.1, 3.0), (6.05, 0.5)),
                    path=((0.0, 1.0, 0.8, 0.8), (3.3, 2.7, 1.3, 1.0), (7.1, 0.6, 1.0, 1.7)))
    static = Source(rate=((0.0, 1.0),), position_m=(2.0, 0.9, 0.8))
    res = simulate_scalar(grid, flow, [Scenario("m", "ood", moving), Scenario("s", "train", static)], sim)
    sched = np.stack([cumulative_emission(s, sim.times_s) for s in (moving, static)])
    # Closed box: what is in the room is exactly what was scheduled.
    np.testing.assert_allclose(res.mass_room, sched, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(res.mass_injected, sched, rtol=1e-12, atol=1e-13)
    assert np.all(res.mass_outflow == 0.0)
    # The schedule integral itself: 0.5*1.4*3 + 3*2.4 + 0.5*(3+0.5)*1.95 + 0.5*1.95
    expect = 0.5 * 1.4 * 3 + 3 * 2.4 + 0.5 * 3.5 * 1.95 + 0.5 * (8.0 - 6.05)
    assert sched[0, -1] == pytest.approx(expect, rel=1e-14)
    assert sched[1, -1] == pytest.approx(8.0, rel=1e-14)


# ---------------------------------------------------------------------------------------
# Stability
# ---------------------------------------------------------------------------------------


def test_explicit_dt_above_limit_raises_and_below_is_fitted_to_snapshots():
    ss = load_scenario_set("tiny")
    sim = dataclasses.replace(ss.simulation, horizon_s=2.0)
    grid = ss.room.discretise(sim.fine_cell_m)
    flow = potential_flow(grid, nu_t_m2_s=0.01)
    op = operator_from_flow(grid, flow, sim)
    limit = stable_dt(op, sim.cfl)
    # The rule in words: dt * max_cell(sum |u|/h + sum D/h^2) <= cfl.
    assert limit * op.rate.max() == pytest.approx(sim.cfl, rel=1e-14)
    with pytest.raises(TransportError, match="exceeds the explicit stability limit"):
        simulate_scalar(grid, flow, ss.scenarios[:1], sim, dt=1.01 * limit)
    with pytest.raises(TransportError, match="exceeds the explicit stability limit"):
        advance(op, np.zeros(grid.shape), 1.5 * stable_dt(op, 1.0), 1)
    res = simulate_scalar(grid, flow, ss.scenarios[:1], sim, dt=0.7 * limit)
    assert res.dt_s <= 0.7 * limit
    assert res.steps_per_snapshot == math.ceil(sim.snapshot_s / (0.7 * limit))
    # Without a dt the solver takes the largest stable step that divides the snapshot interval.
    auto = simulate_scalar(grid, flow, ss.scenarios[:1], sim)
    assert auto.steps_per_snapshot == math.ceil(sim.snapshot_s / limit)


def test_generated_dataset_holds_flow_levels_and_old_datasets_still_load(tmp_path):
    """generate_embedded writes the flow at the column levels; a dataset without them loads and is rebuilt."""
    import xarray as xr

    from plumecast.io.dataset import FLUX_VARS, LEVEL_VARS, column_levels_m, read_dataset, write_dataset
    from plumecast.reference.generate import existing_dataset_matches, generate_embedded

    sset = load_scenario_set("tiny").select(["static-a"])
    out = tmp_path / "tiny.nc"
    first = generate_embedded(sset, out)
    ds = read_dataset(out)
    z = ds["level"].values
    np.testing.assert_allclose(z, column_levels_m(sset.room.size_m[2], sset.simulation.plane_height_m,
                                                  sset.simulation.column_levels))
    assert (np.diff(z) > 0).all() and 0 < z[0] and z[-1] < sset.room.size_m[2]
    k = int(np.flatnonzero(np.isclose(z, sset.simulation.plane_height_m))[0])
    for name in ("u", "v", "w", "nu_t"):
        np.testing.assert_array_equal(ds[f"{name}_level"].values[k], ds[name].values)
    # An old dataset (no levels) still loads; generation rebuilds it from the caches to add them.
    old = ds.drop_vars([*LEVEL_VARS, *FLUX_VARS, "level"])
    old_path = write_dataset(old, tmp_path / "old.nc")
    assert "u_level" not in read_dataset(old_path).variables
    assert not existing_dataset_matches(old_path, sset) and existing_dataset_matches(out, sset)
    again = generate_embedded(sset, old_path)
    assert not again.reused and again.scenarios_cached == 1 and again.scenarios_simulated == 0 and again.flow_cached
    with xr.open_dataset(old_path) as rebuilt:
        np.testing.assert_array_equal(rebuilt["u_level"].values, ds["u_level"].values)
        np.testing.assert_array_equal(rebuilt["concentration"].values, ds["concentration"].values)
    assert first.scenarios_simulated == 1


@pytest.mark.parametrize("preset", ["l-office", "l-office-wide"])
def test_l_office_sources_are_valid_off_the_plane_and_balanced_across_splits(preset):
    """The second room's design: every source in fluid, none at the plane, heights from floor to
    ceiling, each static height class equally often within every split."""
    from collections import Counter

    sset = load_scenario_set(preset)
    sim = sset.simulation
    grid = sset.room.discretise(sim.fine_cell_m)
    sset.validate_sources(grid)  # ScenarioError when a source or a path point is in a solid
    assert sset.room.size_m[2] == pytest.approx(3.0) and sim.plane_height_m == pytest.approx(1.5)
    t = np.arange(0.0, sim.horizon_s + 1e-9, 1.0)
    heights = np.concatenate([sc.source.position_at(t)[:, 2] for sc in sset.scenarios])
    assert np.abs(heights - sim.plane_height_m).min() >= 0.3  # the plane sees sources only by vertical transport
    assert heights.min() <= 0.4 and heights.max() >= 2.5
    static = [sc for sc in sset.scenarios if not sc.source.moving]
    counts = Counter(sc.split for sc in sset.scenarios)
    assert counts["train"] >= 12 and counts["test"] >= 6 and counts["ood"] >= 3 and counts["val"] >= 4
    assert all(sc.source.moving for sc in sset.scenarios if sc.split == "ood")
    assert any(sc.source.moving for sc in sset.scenarios if sc.split == "val")
    for split in ("train", "val", "test"):
        z = Counter(round(sc.source.position_m[2], 3) for sc in static if sc.split == split)
        assert len(z) == 4 and len(set(z.values())) == 1, (split, z)
    # Validation and test positions are new: none coincides with a training source.
    train_xy = {sc.source.position_m[:2] for sc in static if sc.split == "train"}
    assert not any(sc.source.position_m[:2] in train_xy for sc in static if sc.split != "train")
    # Static sources sit at fine-cell centres, so both engines inject into one cell.
    xyz = np.array([sc.source.position_m for sc in static]) / sim.fine_cell_m - 0.5
    np.testing.assert_allclose(xyz, np.round(xyz), atol=1e-9)


@pytest.mark.parametrize("name,walks,extra_val,val_clearance_m,extra_test,test_clearance_m",
                         [("l-office", 4, 16, 0.75, 24, 0.5), ("paper-room", 0, 0, 1.0, 20, 0.75)])
def test_wide_presets_add_training_releases_only(name, walks, extra_val, val_clearance_m, extra_test,
                                                 test_clearance_m):
    """NAME-wide: the same room and held-out scenarios as NAME, 48 more static training releases
    at least 1 m (plan) from every val and test source, and training walks; then 16 static val
    releases at least 1 m (paper-room) or 0.75 m (l-office, smaller) from every other static
    source (new positions; since session 34 paper-room holds its 16 itself, so paper-room-wide
    adds none); then static test releases, as far from every other static source, and 4 OOD
    walks, all in fluid."""
    base, wide = load_scenario_set(name), load_scenario_set(f"{name}-wide")
    wide.validate_sources(wide.room.discretise(wide.simulation.fine_cell_m))  # ScenarioError for a path in a solid
    assert wide.config["room"] == base.config["room"] and wide.simulation == base.simulation
    held = lambda sset: {sc.name: sc for sc in sset.scenarios if sc.split != "train"}  # noqa: E731
    base_held = {n: (sc.split, sc.source) for n, sc in held(base).items()}
    assert {n: (sc.split, sc.source) for n, sc in held(wide).items() if n in base_held} == base_held
    new_held = [sc for n, sc in held(wide).items() if n not in base_held]
    new_val = [sc for sc in new_held if sc.split == "val"]
    new_test = [sc for sc in new_held if sc.split == "test"]
    new_ood = [sc for sc in new_held if sc.split == "ood"]
    assert len(new_val) == extra_val and not any(sc.source.moving for sc in new_val)
    wide_val = [sc for sc in wide.scenarios if sc.split == "val" and sc.name.startswith("val-wide-")]
    assert len(wide_val) == 16 and not any(sc.source.moving for sc in wide_val)
    assert len(new_test) == extra_test and not any(sc.source.moving for sc in new_test)
    assert len(new_ood) == 4 and all(sc.source.moving for sc in new_ood)
    assert len(new_held) == len(new_val) + len(new_test) + len(new_ood)
    # Appended last, so every scenario before them keeps its place (and its generation cache key).
    assert [sc.name for sc in wide.scenarios[-len(new_held):]] == [sc.name for sc in new_held]
    base_train = {sc.name for sc in base.scenarios if sc.split == "train"}
    extra = [sc for sc in wide.scenarios if sc.split == "train" and sc.name not in base_train]
    assert sum(not sc.source.moving for sc in extra) == 48 and sum(sc.source.moving for sc in extra) == walks
    held_xy = np.array([sc.source.position_m[:2] for sc in held(base).values() if not sc.source.moving])
    for sc in extra:
        if not sc.source.moving:
            assert np.hypot(*(held_xy - np.asarray(sc.source.position_m[:2])).T).min() >= 1.0, sc.name
    static = [sc for sc in wide.scenarios if not sc.source.moving]
    for sc in new_test:
        others = np.array([o.source.position_m[:2] for o in static if o is not sc])
        assert np.hypot(*(others - np.asarray(sc.source.position_m[:2])).T).min() >= test_clearance_m, sc.name
    static = [sc for sc in static if sc not in new_test]  # the val draw came before the test one
    for sc in wide_val:
        others = np.array([o.source.position_m[:2] for o in static if o is not sc])
        assert np.hypot(*(others - np.asarray(sc.source.position_m[:2])).T).min() >= val_clearance_m, sc.name


def test_l_office_xl_extends_l_office_wide():
    """l-office-xl: every l-office-wide scenario unchanged and in its order (so each keeps its
    generation cache key and the held-out splits are the same), then 88 static training releases
    at least 0.5 m (plan) from every static val and test source, 8 drawn training walks and 12
    drawn OOD walks, each going somewhere at one height and clear of solids (validate_sources)."""
    wide, xl = load_scenario_set("l-office-wide"), load_scenario_set("l-office-xl")
    xl.validate_sources(xl.room.discretise(xl.simulation.fine_cell_m))
    assert xl.config["room"] == wide.config["room"] and xl.simulation == wide.simulation
    n = len(wide.scenarios)
    assert [(sc.name, sc.split, sc.source) for sc in xl.scenarios[:n]] == [
        (sc.name, sc.split, sc.source) for sc in wide.scenarios]
    new = xl.scenarios[n:]
    static = [sc for sc in new if not sc.source.moving]
    assert len(static) == 88 and all(sc.split == "train" for sc in static)
    walks = [sc for sc in new if sc.source.moving]
    assert [sc.split for sc in walks] == ["train"] * 8 + ["ood"] * 12
    held_xy = np.array([sc.source.position_m[:2] for sc in wide.scenarios
                        if sc.split in ("val", "test") and not sc.source.moving])
    for sc in static:
        assert np.hypot(*(held_xy - np.asarray(sc.source.position_m[:2])).T).min() >= 0.5, sc.name
    for sc in walks:
        path = np.asarray(sc.source.path)  # rows (t, x, y, z)
        assert len(set(path[:, 3])) == 1, sc.name
        # a polyline of 2-3 points at least 3 m long has two points at least 1.5 m apart
        xy = path[:, 1:3]
        assert np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1)).max() >= 1.5, sc.name
