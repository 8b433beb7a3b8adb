"""Verification of the 2D finite-volume operators and the coarse model (float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plumecast.physics import operators as op
from plumecast.physics.model import CoarseModel, Forcing, build_model, trainable_spec
from plumecast.physics.operators import StabilityError

from _coarse_helpers import small_room, swirl_flow


def _run_substeps(q, n, fn):
    return jax.lax.fori_loop(0, n, lambda _, a: fn(a), q)


def _gaussian(xc, yc, t, Dx, Dy, mass=1.0):
    return mass / (4 * np.pi * np.sqrt(Dx * Dy) * t) * np.exp(-(xc**2) / (4 * Dx * t) - yc**2 / (4 * Dy * t))


def test_orthotropic_gaussian_diffusion_converges_second_order():
    Dx, Dy = 0.05, 0.02
    L, t0, t1 = 24.0, 20.0, 60.0
    errors, spacings = [], []
    for n, steps in ((32, 25), (64, 100), (128, 400)):
        h = L / n
        c = (np.arange(n) + 0.5) * h - L / 2
        yc, xc = np.meshgrid(c, c, indexing="ij")
        q0 = jnp.asarray(_gaussian(xc, yc, t0, Dx, Dy))
        fluid = jnp.ones((n, n))
        Dxf = jnp.full((n, n - 1), Dx)
        Dyf = jnp.full((n - 1, n), Dy)
        zx, zy = jnp.zeros((n, n - 1)), jnp.zeros((n - 1, n))
        dt = (t1 - t0) / steps
        op.check_stability(zx, zy, Dxf, Dyf, h, h, dt)
        fn = jax.jit(lambda q: _run_substeps(q, steps, lambda a: op.fv_substep(a, zx, zy, Dxf, Dyf, 0.0, fluid, h, h, dt)))
        q1 = np.asarray(fn(q0))
        exact = _gaussian(xc, yc, t1, Dx, Dy)
        errors.append(np.sqrt(np.mean((q1 - exact) ** 2)) / np.sqrt(np.mean(exact**2)))
        spacings.append(h)
        # Mass is exact (closed box) and the solution is anisotropic as it should be.
        assert abs(q1.sum() * h * h - q0.sum() * h * h) < 1e-12
    order = np.polyfit(np.log(spacings), np.log(errors), 1)[0]
    print(f"orthotropic diffusion: errors {errors}, observed order {order:.3f}")
    assert 1.85 < order < 2.15
    assert errors[-1] < 2e-3


def test_stencil_matches_flux_form():
    fluid = jnp.asarray(small_room())
    u, v = swirl_flow(np.asarray(fluid))
    uf, vf = op.face_velocities(jnp.asarray(u), jnp.asarray(v), fluid)
    rng = np.random.default_rng(1)
    Dx = jnp.asarray(rng.uniform(0, 0.05, uf.shape)) * op.face_masks(fluid)[0]
    Dy = jnp.asarray(rng.uniform(0, 0.05, vf.shape)) * op.face_masks(fluid)[1]
    q = jnp.asarray(rng.random(fluid.shape)) * fluid
    src = jnp.asarray(rng.random(fluid.shape)) * fluid
    a = op.fv_substep(q, uf, vf, Dx, Dy, src, fluid, 0.5, 0.5, 0.1)
    b = op.apply_stencil(q, op.substep_stencil(uf, vf, Dx, Dy, fluid, 0.5, 0.5, 0.1), 0.1 * src)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-14)


def _model(fluid, speed=0.3, seed=0, dtype="float64", **kw):
    u, v = swirl_flow(fluid, speed=speed, seed=seed)
    rng = np.random.default_rng(seed + 7)
    nu_t = rng.uniform(0.002, 0.02, fluid.shape) * fluid
    return build_model(fluid=fluid, u=u, v=v, nu_t=nu_t, dx=0.5, dy=0.5, dtype=dtype, **kw)


def _steps(model, q, forcing, n):
    ops = model.prepare()
    return jax.lax.fori_loop(0, n, lambda _, a: model(a, forcing, ops), q)


def test_mass_conserved_to_roundoff_with_obstacles():
    fluid = small_room()
    model = _model(fluid)
    rng = np.random.default_rng(3)
    q0 = jnp.asarray(rng.random(fluid.shape) * fluid)
    no_source = Forcing(t=0.0, x=2.0, y=2.0, z=1.5, rate=0.0)
    q1 = jax.jit(lambda q: _steps(model, q, no_source, 500))(q0)
    rel = abs(float(q1.sum() - q0.sum())) / float(q0.sum())
    print(f"closed-box mass drift after 500 steps: {rel:.2e}")
    assert rel < 1e-13
    assert float(jnp.abs(q1 * (1 - fluid)).max()) == 0.0
    # With a source next to the obstacle: the change is exactly what was emitted.
    src = Forcing(t=0.0, x=3.4, y=1.6, z=1.5, rate=2.0)  # between cells, two of them solid
    q2 = jax.jit(lambda q: _steps(model, q, src, 200))(q0)
    c = model.config
    emitted = 2.0 * 200 * c.dt / (c.dx * c.dy * c.layer_height_m * c.c_ref)
    assert abs(float(q2.sum() - q0.sum()) - emitted) / emitted < 1e-12


def test_exchange_decays_exactly_and_keeps_positivity():
    fluid = small_room()
    rate = 0.01  # 1/s
    model = _model(fluid, speed=0.0, exchange_max_per_s=0.05, exchange_init_per_s=rate)
    np.testing.assert_allclose(model.exchange_rate(), rate * fluid, rtol=1e-12)
    # A uniform field in a closed room without flow: transport does nothing, exchange is exp(-rate t).
    q0 = jnp.asarray(fluid * 2.0)
    no_source = Forcing(t=0.0, x=2.0, y=2.0, z=1.5, rate=0.0)
    q1 = jax.jit(lambda q: _steps(model, q, no_source, 250))(q0)
    np.testing.assert_allclose(q1, q0 * np.exp(-rate * 250 * model.config.dt), rtol=1e-12, atol=0)
    # Any logits: the rate stays in [0, max], zero in solids, and a step maps q >= 0 to q >= 0;
    # with flow, the mass lost in a step is exactly sum(q_transported (1 - exp(-rate dt))).
    moving = _model(fluid, exchange_max_per_s=0.05)
    rng = np.random.default_rng(5)
    wild = eqx_tree_at(lambda m: m.theta_exchange, moving, jnp.asarray(rng.normal(0.0, 20.0, fluid.shape)))
    lam = np.asarray(wild.exchange_rate())
    assert lam.min() >= 0 and lam.max() <= 0.05 and (lam[fluid == 0] == 0).all()
    q = jnp.asarray(rng.random(fluid.shape) * fluid)
    transported = _model(fluid)(q, no_source)  # same flow and D, exchange off
    stepped = wild(q, no_source)
    assert float(stepped.min()) >= 0.0
    np.testing.assert_allclose(stepped, transported * np.exp(-lam * wild.config.dt), rtol=1e-12, atol=1e-15)
    assert trainable_spec(wild).theta_exchange is True and trainable_spec(_model(fluid)).theta_exchange is False
    with pytest.raises(ValueError, match="exchange_init_per_s"):
        _model(fluid, exchange_max_per_s=0.05, exchange_init_per_s=0.1)


def test_deposit_weights_conservative_and_local():
    fluid = jnp.asarray(small_room())
    w = op.deposit_weights(6.25, 2.75, fluid, 0.25, 0.25, 0.5, 0.5)  # a cell centre: one cell
    assert float(w.sum()) == pytest.approx(1.0)
    assert float(w[5, 12]) == pytest.approx(1.0)
    w = op.deposit_weights(4.25, 2.25, fluid, 0.25, 0.25, 0.5, 0.5)  # deep inside the obstacle
    assert float(w.sum()) == 0.0  # nothing deposited; training data preparation rejects such tracks
    w = op.deposit_weights(3.4, 1.6, fluid, 0.25, 0.25, 0.5, 0.5)  # corner of the obstacle
    assert float(w.sum()) == pytest.approx(1.0, abs=1e-14)
    assert float((w * (1 - fluid)).sum()) == 0.0
    assert int((w > 0).sum()) <= 4


def test_upwind_positivity_with_divergent_flow_and_obstacles():
    fluid = small_room()
    model = _model(fluid, speed=0.5)
    rng = np.random.default_rng(4)
    q0 = rng.random(fluid.shape) * fluid
    q0[q0 < 0.5] = 0.0
    q1 = jax.jit(lambda q: _steps(model, q, Forcing(0.0, 2.0, 2.0, 1.5, 0.0), 300))(jnp.asarray(q0))
    assert float(q1.min()) >= 0.0


def _solenoidal_faces(ny, nx, h, amp=0.4, seed=0):
    rng = np.random.default_rng(seed)
    psi = np.zeros((ny + 1, nx + 1))
    yy, xx = np.meshgrid(np.linspace(0, np.pi, ny + 1), np.linspace(0, np.pi, nx + 1), indexing="ij")
    psi = amp * h * 3 * np.sin(xx) * np.sin(yy) * (1 + 0.3 * rng.standard_normal(psi.shape))
    psi[0, :] = psi[-1, :] = psi[:, 0] = psi[:, -1] = 0.0
    uf = (psi[1:, 1:-1] - psi[:-1, 1:-1]) / h
    vf = -(psi[1:-1, 1:] - psi[1:-1, :-1]) / h
    return jnp.asarray(uf), jnp.asarray(vf)


@pytest.mark.parametrize("with_diffusion", [False, True])
def test_upwind_maximum_principle_for_solenoidal_flow(with_diffusion):
    ny, nx, h = 14, 20, 0.5
    uf, vf = _solenoidal_faces(ny, nx, h)
    fluid = jnp.ones((ny, nx))
    div = op.advection_tendency(jnp.ones((ny, nx)), uf, vf, h, h)
    assert float(jnp.abs(div).max()) < 1e-12  # discretely divergence-free
    Dx = jnp.full(uf.shape, 0.03 if with_diffusion else 0.0)
    Dy = jnp.full(vf.shape, 0.01 if with_diffusion else 0.0)
    dt = 0.5 / float(jnp.max(op.outflow_rates(uf, vf, Dx, Dy, h, h)))
    op.check_stability(uf, vf, Dx, Dy, h, h, dt)
    rng = np.random.default_rng(5)
    q0 = jnp.asarray(rng.uniform(0.2, 0.9, (ny, nx)))
    st = op.substep_stencil(uf, vf, Dx, Dy, fluid, h, h, dt)
    q = q0
    lo, hi = float(q0.min()), float(q0.max())
    advance = jax.jit(lambda a: _run_substeps(a, 20, lambda b: op.apply_stencil(b, st, 0.0)))
    for _ in range(20):
        q = advance(q)
        assert float(q.min()) >= lo - 1e-13 and float(q.max()) <= hi + 1e-13
    assert float(q.max() - q.min()) < hi - lo  # it does mix


def test_instability_is_an_error():
    fluid = small_room()
    with pytest.raises(StabilityError, match="substeps"):
        _model(fluid, speed=20.0)
    with pytest.raises(StabilityError, match="diffusivity"):
        u = np.zeros(fluid.shape)
        build_model(fluid=fluid, u=u, v=u, nu_t=np.full(fluid.shape, 5.0) * fluid, dx=0.5, dy=0.5)
    uf = jnp.ones((4, 3)) * 10
    with pytest.raises(StabilityError, match="times as many substeps"):
        op.check_stability(uf, jnp.zeros((3, 4)), jnp.zeros((4, 3)), jnp.zeros((3, 4)), 0.5, 0.5, 0.1)


def test_model_parameters_and_dtypes():
    fluid = small_room()
    m64 = _model(fluid)
    Dx, Dy = m64.diffusivities()
    mx, my = (np.asarray(a) for a in op.face_masks(jnp.asarray(fluid)))
    # Initialised from nu_t / 0.7 at the faces, zero on faces touching solids, positive elsewhere.
    Dx0, Dy0 = (np.asarray(a) / 0.7 for a in op.faces_from_cells(m64.nu_t, m64.fluid))
    np.testing.assert_allclose(Dx, Dx0, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(Dy, Dy0, rtol=1e-10, atol=1e-15)
    assert (np.asarray(Dx)[mx == 0] == 0).all() and (np.asarray(Dx)[mx > 0] > 0).all()
    # Any logits keep D positive, bounded by the stable d_max, zero on wall faces.
    wild = jax.tree.map(lambda a: a, m64)
    wild = eqx_tree_at(lambda m: (m.theta_x, m.theta_y), wild, (m64.theta_x + 40.0, m64.theta_y - 40.0))
    Dx, Dy = wild.diffusivities()
    assert float(Dx.max()) <= m64.config.d_max and float(Dy.min()) >= 0.0
    assert (np.asarray(Dx)[mx == 0] == 0).all()
    uf, vf = op.face_velocities(m64.u, m64.v, m64.fluid)
    op.check_stability(uf, vf, Dx, Dy, 0.5, 0.5, m64.config.sub_dt)
    # Source scale: exactly 1 untrained, bounded by construction.
    assert float(m64.source_scale(2.0, 2.0, 1.0)) == pytest.approx(1.0)
    # float32 by default, one unbatched state in and out.
    m32 = _model(fluid, dtype="float32")
    q = m32(jnp.zeros(fluid.shape, jnp.float32), Forcing(0.0, 2.0, 2.0, 1.5, 1.0))
    assert q.dtype == jnp.float32 and q.shape == fluid.shape
    with pytest.raises(ValueError, match="unbatched"):
        m32(jnp.zeros((2,) + fluid.shape, jnp.float32), Forcing(0.0, 2.0, 2.0, 1.5, 1.0))
    spec = trainable_spec(m32)
    assert spec.theta_x is True and spec.u is False and spec.fluid is False
    sk = CoarseModel.skeleton(m32.config)
    assert jax.tree.structure(sk) == jax.tree.structure(m32)


def eqx_tree_at(where, tree, replace):
    import equinox as eqx

    return eqx.tree_at(where, tree, replace)


def test_observation_factor_shapes_the_plane_and_leaves_the_state_alone():
    """g starts at 1; for any logits it is bounded, 1 on solids, of geometric mean 1 over the fluid; encode/decode invert."""
    fluid = small_room()
    off, on = _model(fluid, exchange_max_per_s=0.05), _model(fluid, exchange_max_per_s=0.05, observation_log_max=1.0)
    assert off.theta_observation is None and trainable_spec(on).theta_observation is True
    np.testing.assert_array_equal(on.observation_factor(), np.ones(fluid.shape))
    rng = np.random.default_rng(11)
    q = jnp.asarray(rng.random(fluid.shape) * fluid)
    np.testing.assert_array_equal(on.observe(q), q)
    wild = eqx_tree_at(lambda m: m.theta_observation, on, jnp.asarray(rng.normal(0.0, 5.0, fluid.shape)))
    g = np.asarray(wild.observation_factor())
    assert (g[fluid == 0] == 1).all() and g.min() >= np.exp(-2.0) and g.max() <= np.exp(2.0)
    assert np.mean(np.log(g[fluid > 0])) == pytest.approx(0.0, abs=1e-12)
    assert np.ptp(np.log(g[fluid > 0])) > 1.0  # it does shape
    # The state's dynamics do not see g; what the plane shows is g q, and encode inverts decode.
    forcing = Forcing(t=0.0, x=2.0, y=2.0, z=1.5, rate=1.0)
    np.testing.assert_array_equal(wild(q, forcing), off(q, forcing))
    np.testing.assert_allclose(wild.decode(q), g * np.asarray(q) * wild.config.c_ref, rtol=1e-14)
    np.testing.assert_allclose(wild.encode(wild.decode(q)), q, rtol=1e-12, atol=1e-15)
    stack = jnp.stack([q, 2 * q])
    np.testing.assert_allclose(wild.observe(stack)[1], 2 * g * np.asarray(q), rtol=1e-14)
    sk = CoarseModel.skeleton(wild.config)
    assert jax.tree.structure(sk) == jax.tree.structure(wild)
    with pytest.raises(ValueError, match="observation_log_max"):
        _model(fluid, observation_log_max=-1.0)
    # On control points every k cells: fewer parameters, a constant logit is no shape at all,
    # and between two control points log g is linear (before the mean is taken off).
    coarse = _model(fluid, exchange_max_per_s=0.05, observation_log_max=1.0, observation_spacing_cells=3)
    ny, nx = fluid.shape
    assert coarse.theta_observation.shape == (-(-(ny - 1) // 3) + 1, -(-(nx - 1) // 3) + 1)
    flat = eqx_tree_at(lambda m: m.theta_observation, coarse, jnp.full(coarse.theta_observation.shape, 0.7))
    np.testing.assert_allclose(flat.observation_factor(), np.ones(fluid.shape), rtol=1e-12)
    shape = coarse.theta_observation.shape
    ramp = jnp.arctanh(jnp.broadcast_to(jnp.linspace(-0.5, 0.5, shape[1]), shape))
    lg = np.log(np.asarray(eqx_tree_at(lambda m: m.theta_observation, coarse, ramp).observation_factor()))
    row = int(np.argmax(fluid.sum(axis=1)))  # the row with most fluid cells
    cols = np.flatnonzero(fluid[row] > 0)
    slope = np.diff(lg[row, cols]) / np.diff(cols)
    np.testing.assert_allclose(slope, 1.0 / (3.0 * (shape[1] - 1)), rtol=1e-9)
