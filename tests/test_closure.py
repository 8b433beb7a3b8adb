"""The learned closures: start as the physics model, memory carries, odd grids, options."""

import io

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plumecast.closure import get_variant, make_closure, variant_names
from plumecast.closure.networks import MAX_LOG_RATE, resolve_options
from plumecast.physics.model import ClosureContext, build_model
from plumecast.physics.operators import face_masks
from plumecast.rollout import forcing_from_track, init_carry, rollout

LEARNED = ("memory", "markovian", "datadriven")
CHANNELS_LAST = ("NHWC", "HWIO", "NHWC")  # the networks' layout, for the lax references


def _room(ny=11, nx=17):
    fluid = np.ones((ny, nx))
    fluid[3:6, 6:10] = 0
    fluid[6:9, 3] = 0
    yy, xx = np.meshgrid(np.linspace(0, 1, ny), np.linspace(0, 1, nx), indexing="ij")
    u = 0.1 * np.sin(np.pi * yy) * fluid
    v = 0.05 * np.cos(2 * np.pi * xx) * np.sin(np.pi * yy) * fluid
    return fluid, u, v


def _model(ny=11, nx=17, dtype="float64"):
    fluid, u, v = _room(ny, nx)
    return build_model(fluid=fluid, u=u, v=v, w=0.01 * u, nu_t=0.004 * fluid, dx=0.5, dy=0.5, dtype=dtype)


def _forcing(model, n_steps):
    c = model.config
    x, y = c.x0 + 2 * c.dx, c.y0 + 2 * c.dy
    return forcing_from_track([0.0, 1e3], [x, x], [y, y], [1.2, 1.2], [2.0, 2.0], dt=c.dt, n_steps=n_steps, dtype=c.dtype)


def test_variants_registered():
    assert set(variant_names()) >= {"physics", "memory", "markovian", "datadriven"}
    m = _model()
    flags = {name: make_closure(name, m, key=jax.random.PRNGKey(0)).uses_physics for name in LEARNED}
    assert flags == {"memory": True, "markovian": True, "datadriven": False}
    assert make_closure("physics", m, key=None) is None
    for name in LEARNED:
        assert get_variant(name).description


@pytest.mark.parametrize("name,size", [("memory", "quick"), ("markovian", "quick"), ("memory", "paper"),
                                       ("markovian", "paper")])
def test_hybrid_starts_as_physics(name, size):
    m = _model()
    closure = make_closure(name, m, key=jax.random.PRNGKey(1), size=size)
    f = _forcing(m, 10)
    q0 = jnp.zeros(m.config.shape)
    _, hybrid = rollout(m, closure, init_carry(closure, q0), f)
    _, physics = rollout(m, None, init_carry(None, q0), f)
    diff = float(jnp.max(jnp.abs(hybrid - physics)))
    scale = float(jnp.max(jnp.abs(physics)))
    assert scale > 0.1
    assert diff < 1e-12 * scale, (diff, scale)  # the output layer starts at zero: exactly the physics model
    # Solid cells stay exactly zero.
    assert float(jnp.max(jnp.abs(hybrid * (1 - m.fluid)))) == 0.0


def _wild_output(closure, scale, seed=0):
    """``closure`` with a random output layer in its network (an untrained one is zero)."""
    out = closure.net.body.head[-1]
    w = scale * np.random.default_rng(seed).standard_normal(out.weight.shape)
    return eqx.tree_at(lambda c: c.net.body.head[-1].weight, closure, jnp.asarray(w, out.weight.dtype))


def test_datadriven_starts_as_accumulated_emission():
    m = _model()
    q0 = jnp.asarray(np.random.default_rng(0).random(m.config.shape)) * m.fluid
    f = _forcing(m, 10)
    # Untrained (zero head): the field stays where it is and the emission piles up at the source.
    exact = make_closure("datadriven", m, key=jax.random.PRNGKey(2))
    _, frames = rollout(m, exact, init_carry(exact, q0), f)
    ops = m.prepare()
    emitted = sum(m.source_term(jax.tree.map(lambda a: a[k], f), ops) * m.config.dt for k in range(f.t.shape[0]))
    np.testing.assert_allclose(frames[-1], q0 + emitted, rtol=1e-12, atol=1e-14)
    assert float(jnp.sum(emitted)) > 0
    closure = _wild_output(exact, 1e-5)  # a small random output layer: near that
    _, frames = rollout(m, closure, init_carry(closure, q0), f)
    assert 0 < float(jnp.max(jnp.abs(frames[-1] - q0 - emitted))) < 1e-3
    # The physics would have moved the field much further.
    _, physics = rollout(m, None, init_carry(None, q0), _forcing(m, 10))
    assert float(jnp.max(jnp.abs(physics[-1] - q0))) > 0.05


def _contexts(m, n, seed=0):
    """``n`` random but plausible closure contexts, stacked along a leading step axis."""
    rng = np.random.default_rng(seed)
    shape = (n,) + m.config.shape
    fluid = np.broadcast_to(np.asarray(m.fluid), shape)
    q = rng.random(shape) * fluid
    one = lambda a: jnp.asarray(np.broadcast_to(np.asarray(a), shape))  # noqa: E731
    return ClosureContext(
        q=jnp.asarray(q),
        q_physics=jnp.asarray(0.9 * q),
        u=one(m.u),
        v=one(m.v),
        w=one(m.w),
        dx_c=jnp.asarray(rng.random(shape) * fluid),
        dy_c=jnp.asarray(rng.random(shape) * fluid),
        source=jnp.asarray((rng.random(shape) > 0.97) * fluid * 0.1),
        fluid=jnp.asarray(fluid),
        t=jnp.arange(n) * m.config.dt,
        exchanged=jnp.asarray(0.01 * q),
        source_position=jnp.asarray(np.broadcast_to([0.1, -0.2, 0.13], (n, 3))),
    )


@eqx.filter_jit
def _run_closure(closure, ctxs):
    def body(memory, ctx):
        q, memory = closure(ctx, memory)
        return memory, q

    _, out = jax.lax.scan(body, closure.init_memory(), ctxs)
    return out


@pytest.mark.parametrize("name,carries", [("memory", True), ("markovian", False), ("datadriven", True)])
def test_memory_carries(name, carries):
    """Perturb the input of step 0 only: a memory closure's output at step n changes, a Markovian one's does not."""
    m = _model()
    # A random output layer: the untrained one (zero) hides the memory path.
    closure = _wild_output(make_closure(name, m, key=jax.random.PRNGKey(3)), 5.0)
    n = 6
    ctxs = _contexts(m, n)
    bump = jnp.zeros((n,) + m.config.shape).at[0].set(0.5 * m.fluid)
    perturbed = eqx.tree_at(lambda c: (c.q, c.q_physics), ctxs, (ctxs.q + bump, ctxs.q_physics + bump))
    out = _run_closure(closure, ctxs)
    out_p = _run_closure(closure, perturbed)
    late = float(jnp.max(jnp.abs(out[1:] - out_p[1:])))
    assert float(jnp.max(jnp.abs(out[0] - out_p[0]))) > 0  # step 0 itself sees the bump
    if carries:
        assert late > 1e-7, late  # small (a random LSTM), but far above round-off; without memory exactly zero
    else:
        assert late == 0.0

    # The same in derivatives: d(output at the last step) / d(field at step 0).
    def last(q0):
        c = eqx.tree_at(lambda c: c.q_physics, ctxs, ctxs.q_physics.at[0].set(q0))
        return jnp.sum(_run_closure(closure, c)[-1])

    g = eqx.filter_jit(jax.grad(last))(ctxs.q_physics[0])
    assert (float(jnp.max(jnp.abs(g))) > 0) == carries


@pytest.mark.parametrize("shape,size", [((26, 49), "quick"), ((7, 5), "paper"), ((3, 2), "quick")])
def test_odd_grids_pad_and_crop(shape, size):
    cfg = resolve_options(*shape, memory=True, variant="memory", options={"size": size})
    hp, wp = cfg.padded_shape
    assert hp >= shape[0] and wp >= shape[1] and hp % 2**cfg.levels == 0 and wp % 2**cfg.levels == 0
    fluid = np.ones(shape)
    m = build_model(fluid=fluid, u=0 * fluid, v=0 * fluid, nu_t=0.001 * fluid, dx=0.5, dy=0.5, dtype="float32")
    closure = make_closure("memory", m, key=jax.random.PRNGKey(0), size=size)
    ctx = jax.tree.map(lambda a: a[0], _contexts(m, 1))
    ctx = jax.tree.map(lambda a: a.astype(jnp.float32), ctx)
    q, memory = eqx.filter_jit(lambda c, x, mem: c(x, mem))(closure, ctx, closure.init_memory())
    assert q.shape == shape and q.dtype == jnp.float32
    assert jax.tree.structure(memory) == jax.tree.structure(closure.init_memory())


def test_sizes_and_options():
    m = _model()
    quick = make_closure("memory", m, key=jax.random.PRNGKey(0))
    paper = make_closure("memory", m, key=jax.random.PRNGKey(0), size="paper")
    assert quick.net.config.channels == (8, 16, 32) and quick.net.config.core_layers == 2
    assert (quick.net.config.decoder_out, quick.net.config.head_width) == (4, 8)
    assert paper.net.config.channels == (16, 32, 64, 128)
    assert (paper.net.config.core_layers, paper.net.config.core_width) == (4, 128)
    assert len(quick.init_memory()) == 2 and quick.init_memory()[0][0].shape == (64,)
    assert make_closure("markovian", m, key=jax.random.PRNGKey(0)).init_memory() == ()
    with pytest.raises(ValueError, match="unknown options"):
        make_closure("memory", m, key=jax.random.PRNGKey(0), lstm_width=3)
    with pytest.raises(ValueError, match="unknown size"):
        make_closure("memory", m, key=jax.random.PRNGKey(0), size="huge")
    for removed in ("channels", "field_memory", "init_scale", "max_log_rate", "redistribute"):  # size is the only one
        with pytest.raises(ValueError, match="unknown options"):
            make_closure("memory", m, key=jax.random.PRNGKey(0), **{removed: 1})


@pytest.mark.parametrize("name", ["memory", "markovian"])
def test_hybrids_redistribute_the_physics_mass(name):
    m = _model()
    closure = _wild_output(make_closure(name, m, key=jax.random.PRNGKey(0)), 50.0)
    ctxs = _contexts(m, 4)
    out = np.asarray(_run_closure(closure, ctxs))
    fluid = np.asarray(m.fluid)
    qp = np.asarray(ctxs.q_physics)
    # The corrected field holds exactly the mass the physics left, however wild the weights...
    np.testing.assert_allclose((out * fluid).sum(axis=(1, 2)), (qp * fluid).sum(axis=(1, 2)), rtol=1e-12)
    # ...moved around: non-negative, the local ratio within e^(+-2 bound), not uniform.
    ratio = out[:, fluid > 0] / qp[:, fluid > 0]
    bound = MAX_LOG_RATE
    assert out.min() >= 0 and ratio.max() <= np.exp(2 * bound) * (1 + 1e-9) and ratio.min() >= np.exp(-2 * bound) * (1 - 1e-9)
    assert ratio.max() - ratio.min() > 0.5 * bound


def test_wrong_shape_is_an_error():
    m = _model()
    closure = make_closure("memory", m, key=jax.random.PRNGKey(0))
    ctx = jax.tree.map(lambda a: a[0, :-1] if a.ndim == 3 else a[0], _contexts(m, 1))
    with pytest.raises(ValueError, match="encoder expects"):
        closure(ctx, closure.init_memory())


@pytest.mark.parametrize("name", LEARNED)
def test_leaves_roundtrip(name):
    """A closure rebuilt from its variant options takes the serialised leaves of a trained one."""
    m = _model(dtype="float32")
    trained = make_closure(name, m, key=jax.random.PRNGKey(5))
    trained = jax.tree.map(lambda a: a + 0.5 if eqx.is_inexact_array(a) else a, trained)
    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, trained)
    buf.seek(0)
    skeleton = make_closure(name, m, key=jax.random.PRNGKey(0))
    loaded = eqx.tree_deserialise_leaves(buf, skeleton)
    for a, b in zip(jax.tree.leaves(trained), jax.tree.leaves(loaded)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_transposed_convolution_matches_lax():
    """The polyphase ConvTranspose is exactly lax.conv_transpose with its 4 x 4 kernel (stride 2, padding 1)."""
    from plumecast.closure.networks import ConvTranspose

    rng = np.random.default_rng(0)
    ct = ConvTranspose(3, 5, rng=rng, dtype=jnp.float64)
    x = jnp.asarray(rng.standard_normal((4, 7, 3)))
    ref = jax.lax.conv_transpose(x[None], ct.kernel(), (2, 2), ((2, 2), (2, 2)), dimension_numbers=CHANNELS_LAST)[0] + ct.bias
    out = ct(x)
    assert out.shape == (8, 14, 5)
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel,stride,shape", [(3, 1, (7, 5)), (3, 2, (8, 14)), (1, 1, (4, 3)), (3, 2, (7, 9))])
def test_convolution_matches_lax(kernel, stride, shape):
    """The im2col Conv equals lax.conv_general_dilated with the same 'same'-style padding and stride."""
    from plumecast.closure.networks import Conv

    rng = np.random.default_rng(1)
    conv = Conv(3, 4, kernel, stride=stride, rng=rng, dtype=jnp.float64)
    x = jnp.asarray(rng.standard_normal(shape + (3,)))
    pad = ((kernel - 1) // 2, kernel // 2)
    ref = jax.lax.conv_general_dilated(x[None], conv.weight, (stride, stride), (pad, pad), dimension_numbers=CHANNELS_LAST)[0]
    np.testing.assert_allclose(np.asarray(conv(x)), np.asarray(ref + conv.bias), rtol=1e-12, atol=1e-12)


def _exchange_model(**kw):
    fluid, u, v = _room()
    return build_model(fluid=fluid, u=u, v=v, w=0.01 * u, nu_t=0.004 * fluid, dx=0.5, dy=0.5, dtype="float64",
                       exchange_max_per_s=0.05, exchange_init_per_s=0.01, **kw)


def test_reservoir_starts_near_physics_and_needs_the_exchange():
    m = _exchange_model()
    closure = make_closure("memory", m, key=jax.random.PRNGKey(1), reservoir=True)
    f = _forcing(m, 50)
    q0 = jnp.zeros(m.config.shape)
    _, hybrid = rollout(m, closure, init_carry(closure, q0), f)
    _, physics = rollout(m, None, init_carry(None, q0), f)
    diff, scale = float(jnp.max(jnp.abs(hybrid - physics))), float(jnp.max(jnp.abs(physics)))
    assert 0 < diff < 1e-3 * scale, (diff, scale)  # returns ~1e-4 /s of a young layer: near, not equal
    with pytest.raises(ValueError, match="exchange off"):
        make_closure("memory", _model(), key=jax.random.PRNGKey(1), reservoir=True)
    with pytest.raises(ValueError, match="reservoir must be true or false"):
        make_closure("memory", m, key=jax.random.PRNGKey(1), reservoir={"speed": 1.0})


def _wild_layer(closure, logit: float, rng):
    """The closure with cell-by-cell logits of its layer from ~0 to their bounds."""
    r = closure.reservoir
    names = ("theta_return", "theta_capture", "theta_spread_x", "theta_spread_y")
    return eqx.tree_at(lambda c: [getattr(c.reservoir, n) for n in names], closure,
                       [jnp.asarray(logit + 5 * rng.standard_normal(getattr(r, n).shape)) for n in names])


@pytest.mark.parametrize("logit", [-3.0, 0.0, 3.0])
def test_reservoir_conserves_plane_plus_reservoir_and_stays_positive(logit):
    """Per step of a memory hybrid with a layer: plane + layer gain exactly the captured share of what the exchange
    took out and the source share, whatever the logits and the network (which only redistributes)."""
    m = _exchange_model()
    closure = make_closure("memory", m, key=jax.random.PRNGKey(0), reservoir=True)
    fluid = np.asarray(m.fluid)
    rng = np.random.default_rng(1)
    closure = _wild_layer(closure, logit, rng)
    net = jax.tree.map(lambda a: a + 0.3 * rng.standard_normal(a.shape) if eqx.is_inexact_array(a) else a, closure.net)
    closure = eqx.tree_at(lambda c: c.net, closure, net)
    ctxs = _contexts(m, 6)

    def body(memory, ctx):
        q, memory = closure(ctx, memory)
        return memory, (q, memory[1])

    _, (q, s) = eqx.filter_jit(lambda xs: jax.lax.scan(body, closure.init_memory(), xs))(ctxs)
    q, s = np.asarray(q), np.asarray(s)
    kappa = np.asarray(closure.reservoir.capture())
    sigma = float(closure.reservoir.source_share(ctxs.source_position[0]))  # one source position in every step
    s_prev = np.concatenate([np.zeros((1,) + s.shape[1:]), s[:-1]])
    lhs = (q * fluid).sum(axis=(1, 2)) + (s * fluid).sum(axis=(1, 2))
    gained = kappa * np.asarray(ctxs.exchanged) + sigma * np.asarray(ctxs.source)
    rhs = ((np.asarray(ctxs.q_physics) + s_prev + gained) * fluid).sum(axis=(1, 2))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)
    assert q.min() >= 0 and s.min() >= 0 and float(np.abs(s[:, fluid == 0]).max()) == 0.0
    assert s[-1].sum() > 0 and (q[1:] - np.asarray(ctxs.q_physics)[1:]).std() > 0
    rate = np.asarray(closure.reservoir.return_rate(m.fluid))
    assert rate.max() <= 0.05 and rate.min() >= 0 and 0 <= kappa.min() and kappa.max() <= 1


def test_exchanged_mass_in_the_context():
    """The context's ``exchanged`` is what the exchange term removed: q_substeps - q_physics."""
    m = _exchange_model()
    ops = m.prepare()
    q = jnp.asarray(np.random.default_rng(2).random(m.config.shape)) * m.fluid
    f = jax.tree.map(lambda a: a[0], _forcing(m, 1))
    source = m.source_term(f, ops)
    q_phys = m.physics(q, source, ops)
    ctx = m.closure_context(q, q_phys, source, ops, f)
    q_substeps = m.physics(q, source, eqx.tree_at(lambda o: o.retained, ops, jnp.ones_like(ops.retained)))
    np.testing.assert_allclose(ctx.exchanged, q_substeps - q_phys, rtol=1e-10, atol=1e-15)
    assert float(jnp.sum(ctx.exchanged)) > 0


def test_layered_starts_near_physics_and_trains_with_the_physics_preset():
    from plumecast.train import PRESETS, preset_config

    m = _exchange_model()
    closure = make_closure("layered", m, key=jax.random.PRNGKey(1))
    assert closure.uses_physics and get_variant("layered").physical and not get_variant("memory").physical
    f = _forcing(m, 50)
    q0 = jnp.zeros(m.config.shape)
    (_, layer), layered = rollout(m, closure, init_carry(closure, q0), f)
    _, physics = rollout(m, None, init_carry(None, q0), f)
    diff, scale = float(jnp.max(jnp.abs(layered - physics))), float(jnp.max(jnp.abs(physics)))
    assert 0 < diff < 1e-3 * scale, (diff, scale)  # returns ~1e-4 /s of a young layer: near, not equal
    assert float(layer.sum()) > 0  # the layer holds its share of what the exchange took
    assert preset_config("quick", variant="layered") == PRESETS["quick"].replace(variant="layered")
    with pytest.raises(ValueError, match="exchange off"):
        make_closure("layered", _model(), key=None)
    with pytest.raises(ValueError, match="unknown options"):
        make_closure("layered", m, key=None, spread_max_m2_s=5.0)  # the layer has no settings left to choose
    with pytest.raises(ValueError, match="reservoir must be"):
        make_closure("markovian", m, key=jax.random.PRNGKey(0), reservoir="lots")
    # A grid too fine for the spreading bound in the physics' substeps is refused, not run unstable.
    fine = build_model(fluid=np.ones((6, 6)), u=np.zeros((6, 6)), v=np.zeros((6, 6)), nu_t=np.zeros((6, 6)), dx=0.1,
                       dy=0.1, exchange_max_per_s=0.05)
    with pytest.raises(ValueError, match="positive limit"):
        make_closure("layered", fine, key=None)


@pytest.mark.parametrize("logit", [-3.0, 0.0, 3.0])
def test_layer_spreading_conserves_and_stays_positive(logit):
    """Per step of the layered physics: plane + layer gain the captured share and the source share, whatever the logits."""
    m = _exchange_model()
    closure = _wild_layer(make_closure("layered", m, key=None), logit, np.random.default_rng(3))
    fluid = np.asarray(m.fluid)
    ctxs = _contexts(m, 8)

    def body(memory, ctx):
        q, memory = closure(ctx, memory)
        return memory, (q, memory)

    _, (q, s) = eqx.filter_jit(lambda xs: jax.lax.scan(body, closure.init_memory(), xs))(ctxs)
    q, s = np.asarray(q), np.asarray(s)
    res = closure.reservoir
    kappa = np.asarray(res.capture())
    s_prev = np.concatenate([np.zeros((1,) + s.shape[1:]), s[:-1]])
    lhs = (q * fluid).sum(axis=(1, 2)) + (s * fluid).sum(axis=(1, 2))
    sigma = float(res.source_share(ctxs.source_position[0]))
    gained = kappa * np.asarray(ctxs.exchanged) + sigma * np.asarray(ctxs.source)
    rhs = ((np.asarray(ctxs.q_physics) + s_prev + gained) * fluid).sum(axis=(1, 2))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)
    assert q.min() >= 0 and s.min() >= 0 and float(np.abs(s[:, fluid == 0]).max()) == 0.0
    # The spreading moved mass sideways: the layer is not just the captured mass where it was captured.
    unspread = eqx.tree_at(lambda c: (c.reservoir.theta_spread_x, c.reservoir.theta_spread_y), closure,
                           (jnp.full_like(res.theta_spread_x, -60.0), jnp.full_like(res.theta_spread_y, -60.0)))
    _, s_local = unspread(jax.tree.map(lambda a: a[0], ctxs), closure.init_memory())
    _, s_spread = closure(jax.tree.map(lambda a: a[0], ctxs), closure.init_memory())
    assert float(jnp.abs(s_spread - s_local).max()) > 1e-3 * float(jnp.abs(s_local).max())
    Dx, Dy = res.spread_diffusivities(m.fluid)
    assert float(Dx.max()) <= 0.5 and float(Dy.min()) >= 0


def test_layered_gradients_match_central_differences():
    """Gradients of a rollout loss through the layer (every logit field and the source share) against finite differences."""
    m = _exchange_model()
    closure = make_closure("layered", m, key=None)
    rng = np.random.default_rng(5)
    closure = jax.tree.map(lambda a: a + 0.5 * rng.standard_normal(a.shape) if eqx.is_inexact_array(a) else a, closure)
    # A source share near 1/2 and a return within the rollout (they start at 1e-3 and a return time of hours, where
    # their gradients are lost in the round-off of the differences).
    closure = eqx.tree_at(lambda c: (c.reservoir.source_share_net.layers[-1].bias, c.reservoir.theta_return), closure,
                          (jnp.zeros(1), closure.reservoir.theta_return + 6.0))
    f = _forcing(m, 40)
    target = jnp.asarray(rng.random(m.config.shape)) * m.fluid

    def loss(c):
        (q, _), _ = rollout(m, c, init_carry(c, jnp.zeros(m.config.shape)), f, steps_per_frame=40)
        return jnp.sum((q - target) ** 2)

    grads = eqx.filter_jit(eqx.filter_grad(loss))(closure)
    value = eqx.filter_jit(loss)
    names = ("theta_return", "theta_capture", "theta_spread_x", "theta_spread_y")
    parts = {name: (lambda c, name=name: getattr(c.reservoir, name)) for name in names}
    parts["source share"] = lambda c: c.reservoir.source_share_net.layers[-1].weight
    for name, sel in parts.items():
        d = jnp.asarray(rng.standard_normal(sel(closure).shape))
        eps = 1e-4  # the loss is O(100): smaller steps lose the difference to round-off
        fd = (float(value(eqx.tree_at(sel, closure, sel(closure) + eps * d)))
              - float(value(eqx.tree_at(sel, closure, sel(closure) - eps * d)))) / (2 * eps)
        ad = float(jnp.vdot(sel(grads), d))
        assert abs(fd - ad) <= 1e-5 * max(abs(fd), 1e-12), (name, fd, ad)


def test_learned_fields_picture_shows_the_layer(tmp_path):
    import imageio.v3 as iio

    from plumecast.plot import learned_fields_picture

    m = _exchange_model()
    plain = learned_fields_picture(m, None, tmp_path / "plain.png")
    layered = learned_fields_picture(m, make_closure("layered", m, key=None), tmp_path / "layered.png")
    # Two panels for the plane physics; five (two rows of three) with the layer.
    assert iio.imread(layered).shape[0] > iio.imread(plain).shape[0]


def test_learned_fields_show_the_observation_factor(tmp_path):
    from plumecast.plot import OBSERVATION_TITLE, learned_fields, learned_fields_picture

    m = _exchange_model()
    assert OBSERVATION_TITLE not in learned_fields(m, None)
    on = _exchange_model(observation_log_max=1.0, observation_spacing_cells=4)
    shape = on.theta_observation.shape
    on = eqx.tree_at(lambda a: a.theta_observation, on, jnp.linspace(-1.0, 1.0, np.prod(shape)).reshape(shape))
    log_g = learned_fields(on, None)[OBSERVATION_TITLE]
    np.testing.assert_allclose(log_g, np.log(np.asarray(on.observation_factor())))
    assert np.ptp(log_g) > 0
    assert learned_fields_picture(on, None, tmp_path / "obs.png").stat().st_size > 0


def test_source_share_starts_small_everywhere():
    m = _exchange_model()
    res = make_closure("layered", m, key=None).reservoir
    for position in ([-1.0, -1.0, -0.2], [0.3, 0.5, 0.0], [1.0, 1.0, 0.2]):
        np.testing.assert_allclose(float(res.source_share(jnp.asarray(position))), 1e-3, rtol=1e-9)
