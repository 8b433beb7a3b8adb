"""The closure networks: the paper's layer for layer, the quick one unchanged, both starting at their base."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plumecast.closure.networks import (MAX_LOG_RATE, BlockTranspose, _output, physics_inputs, ClosureNet, NetConfig, pool_windows,
                                        invariant_inputs, resolve_options)

VARIANTS = {"memory": (True, False), "markovian": (False, False), "datadriven": (True, True)}  # (memory, offset)


class Ctx(eqx.Module):
    """The fields of a closure context the networks read."""

    q: jax.Array
    q_physics: jax.Array
    u: jax.Array
    v: jax.Array
    w: jax.Array
    dx_c: jax.Array
    dy_c: jax.Array
    source: jax.Array
    fluid: jax.Array


def _fluid(ny, nx):
    fluid = np.ones((ny, nx))
    fluid[3:6, 6:10] = 0
    return fluid


def _ctx(ny, nx, seed, dtype=jnp.float64):
    """One plausible context (the frozen test's input)."""
    rng = np.random.default_rng(seed)
    fluid = _fluid(ny, nx)
    q = rng.random((ny, nx)) * fluid
    f = lambda a: jnp.asarray(a, dtype)  # noqa: E731
    return Ctx(q=f(q), q_physics=f(0.9 * q), u=f(0.1 * rng.standard_normal((ny, nx)) * fluid),
               v=f(0.1 * rng.standard_normal((ny, nx)) * fluid), w=f(0.01 * rng.standard_normal((ny, nx)) * fluid),
               dx_c=f(rng.random((ny, nx)) * fluid), dy_c=f(rng.random((ny, nx)) * fluid),
               source=f((rng.random((ny, nx)) > 0.95) * fluid * 0.1), fluid=f(fluid))


def _contexts(ny, nx, n, seed=0, dtype=jnp.float64):
    """``n`` contexts stacked along a leading step axis."""
    return jax.tree.map(lambda *a: jnp.stack(a), *[_ctx(ny, nx, seed + k, dtype) for k in range(n)])


def _net(ny, nx, size, variant, key=0, dtype=jnp.float64):
    memory, offset = VARIANTS[variant]
    cfg = resolve_options(ny, nx, memory=memory, variant=variant, options={"size": size}, offset=offset)
    return ClosureNet(cfg, key=jax.random.PRNGKey(key), dtype=dtype)


def _base(net, ctx):
    return ctx.q + ctx.source if net.config.offset else ctx.q_physics


def _wild(net, scale, seed=0):
    """``net`` with a random output layer (an untrained one is zero and hides everything behind it)."""
    out = net.body.head[-1]
    rng = np.random.default_rng(seed)
    w = jnp.asarray(scale * rng.standard_normal(out.weight.shape), out.weight.dtype)
    bias = jnp.full_like(out.bias, 0.01)
    return eqx.tree_at(lambda n: (n.body.head[-1].weight, n.body.head[-1].bias), net, (w, bias))


@eqx.filter_jit
def _run(net, ctxs):
    """The outputs and memories of a rollout of the network alone over stacked contexts."""

    def body(memory, ctx):
        q, memory = net(ctx, memory, _base(net, ctx))
        return memory, (q, memory)

    return jax.lax.scan(body, net.init_memory(), ctxs)[1]


def _count(tree) -> int:
    return sum(a.size for a in jax.tree.leaves(tree))


# ----------------------------------------------------------------------------- the paper's network

# The paper's closure network (arXiv 2511.21369, appendix A.1, Tables 2-5) as the public code
# builds it (github.com/IHPC-Physics-AI/Closure-for-Convection-Diffusion, expt1_baseline.py),
# kernels (kh, kw, in, out), for the 26 x 49 grid.
PAPER_LAYERS = {
    # Table 2, encoder: two 3x3 convolutions per stage, 16-32-64-128, each stage max-pooled.
    "encoder[0]": (3, 3, 3, 16), "encoder[1]": (3, 3, 16, 16),
    "encoder[2]": (3, 3, 16, 32), "encoder[3]": (3, 3, 32, 32),
    "encoder[4]": (3, 3, 32, 64), "encoder[5]": (3, 3, 64, 64),
    "encoder[6]": (3, 3, 64, 128), "encoder[7]": (3, 3, 128, 128),
    # Table 4, memory unit: 4 LSTM cells of 128 (gates i, f, g, o from [x, h]).
    "core[0]": (512, 256), "core[1]": (512, 256), "core[2]": (512, 256), "core[3]": (512, 256),
    # Table 3, decoder: transposed convolutions (kernel = stride) from the 4 x 128 states,
    # each followed by a 3x3 convolution (residual in the code).
    "expand": (3, 2, 512, 128), "ups[0]": (2, 2, 128, 64), "ups[1]": (2, 3, 64, 32), "ups[2]": (2, 3, 32, 16),
    "refine[0]": (3, 3, 128, 128), "refine[1]": (3, 3, 64, 64),
    "refine[2]": (3, 3, 32, 32), "refine[3]": (3, 3, 16, 16),
    # Table 5 / the code, closure head: 16 decoder maps + 10 physics channels, residual 3x3
    # convolutions of 32 (the code; Table 5 says 26), a 3x3 output.
    "head[0]": (3, 3, 26, 32), "head[1]": (3, 3, 32, 32), "head[2]": (3, 3, 32, 1),
}
PAPER_PARAMETERS = 1_474_577  # the public code's closure + hidden networks; issue 13: "1.47 M" (the paper gives none)


def _layer_shapes(net) -> dict[str, tuple[int, ...]]:
    """``name -> weight shape`` of every layer, and every bias has one value per output channel."""
    shapes = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(net.body)[0]:
        name, field = jax.tree_util.keystr(path[:-1]).lstrip("."), path[-1].name
        if field == "weight":
            shapes[name] = leaf.shape
        else:
            assert field == "bias" and leaf.shape == (shapes[name][0] if name.startswith("core") else shapes[name][-1],)
    return shapes


def test_paper_network_is_the_papers():
    net = _net(26, 49, "paper", "memory", dtype=jnp.float32)
    assert _layer_shapes(net) == PAPER_LAYERS
    assert _count(net) == PAPER_PARAMETERS and round(_count(net) / 1e6, 2) == 1.47
    parts = {part: _count(getattr(net.body, part)) for part in ("encoder", "core", "expand", "ups", "refine", "head")}
    assert parts["encoder"] == 293_520 and parts["core"] == 526_336
    assert parts["expand"] + parts["ups"] + parts["refine"] == 637_664 and parts["head"] == 17_057
    # Tables 2 and 3: the maps of each level and the pooling windows between them.
    cfg = net.config
    assert cfg.level_shapes == ((26, 49), (13, 16), (6, 5), (3, 2), (1, 1))
    assert cfg.pool_windows == ((2, 3), (2, 3), (2, 2), (3, 2))
    # The ablations: an MLP of the same widths for the LSTM; a second output channel for the offset.
    assert _count(_net(26, 49, "paper", "markovian", dtype=jnp.float32)) == PAPER_PARAMETERS - 4 * 131_584 + 4 * 16_512
    assert _count(_net(26, 49, "paper", "datadriven", dtype=jnp.float32)) == PAPER_PARAMETERS + 32 * 9 + 1


@pytest.mark.parametrize("window,shape", [((3, 2), (1, 1)), ((2, 2), (3, 2)), ((2, 3), (6, 5))])
def test_block_transpose_is_the_papers_transposed_convolution(window, shape):
    """Flax's ConvTranspose (kernel = stride, 'SAME') as the public code uses it: lax.conv_transpose."""
    rng = np.random.default_rng(0)
    up = BlockTranspose(4, 5, window, rng=rng, dtype=jnp.float64)
    up = eqx.tree_at(lambda u: u.bias, up, jnp.asarray(rng.standard_normal(5)))
    x = jnp.asarray(rng.standard_normal(shape + (4,)))
    ref = jax.lax.conv_transpose(x[None], up.weight, window, "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))[0]
    np.testing.assert_allclose(np.asarray(up(x)), np.asarray(ref + up.bias), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(26, 49), (11, 17), (7, 5), (3, 2), (1, 1), (64, 9)])
def test_pool_windows_bring_any_grid_to_one_cell(shape):
    cfg = NetConfig(*shape, size="paper")
    assert cfg.level_shapes[-1] == (1, 1) and len(cfg.pool_windows) == 4
    assert all(w >= 1 for pair in cfg.pool_windows for w in pair)
    assert pool_windows(26, 4) == (2, 2, 2, 3) and pool_windows(49, 4) == (3, 3, 2, 2)


def test_paper_net_runs_on_its_grid():
    net = _wild(_net(26, 49, "paper", "memory", dtype=jnp.float32), 0.1)
    q, memory = _run(net, _contexts(26, 49, 2, dtype=jnp.float32))
    assert q.shape == (2, 26, 49) and q.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(q)))
    assert [h.shape for h, _ in memory] == [(2, 128)] * 4


# ----------------------------------------------------------------------------- the quick network

# Recorded from the quick network before the options were pruned (networks.py of commit
# e17281d, size "quick", default options, key PRNGKey(7), float64, 11 x 17 grid): the number of
# parameters, the sum and the sum of magnitudes of all of them, then with the output
# convolution set to linspace(-1, 1) weights and 0.01 biases, the sum and the sum of squares of
# the output in each of three steps over _ctx(11, 17, k), k = 0, 1, 2, memory carried, and the
# sum of the final memory.
FROZEN_QUICK = {
    "memory": (88101, -10.25311289337345, 5274.211570865273,
               [84.41230075807742, 53.49882609604252, 81.12583456213937, 48.77585720142168, 80.48128507641616,
                49.424055482092335], 0.9030222959609273),
    "markovian": (36517, -0.033244430470474956, 2100.0592974978777,
                  [84.41230075807735, 53.59041780062203, 81.12583456213939, 48.83248888067716, 80.48128507641613,
                   49.66739953549975], 0.0),
    "datadriven": (88110, -10.25311289337345, 5274.211570865273,
                   [74.08507311033159, 44.72742208816307, 70.36210777872598, 40.58004195782141, 70.17747222864826,
                    41.08331429834111], 0.9030222959609273),
}


@pytest.mark.parametrize("variant", list(FROZEN_QUICK))
def test_quick_network_is_unchanged(variant):
    count, total, magnitude, outputs, memory_sum = FROZEN_QUICK[variant]
    net = _net(11, 17, "quick", variant, key=7)
    leaves = jax.tree.leaves(net)
    assert _count(net) == count
    np.testing.assert_allclose(sum(float(jnp.sum(a)) for a in leaves), total, rtol=1e-12)
    np.testing.assert_allclose(sum(float(jnp.sum(jnp.abs(a))) for a in leaves), magnitude, rtol=1e-12)
    out = net.body.head[-1]
    weight = jnp.linspace(-1.0, 1.0, out.weight.size).reshape(out.weight.shape)
    net = eqx.tree_at(lambda n: (n.body.head[-1].weight, n.body.head[-1].bias), net,
                      (weight, jnp.full_like(out.bias, 0.01)))
    step = eqx.filter_jit(lambda n, c, mem: n(c, mem, _base(n, c)))
    memory, got = net.init_memory(jnp.float64), []
    for k in range(3):
        q, memory = step(net, _ctx(11, 17, k), memory)
        got += [float(jnp.sum(q)), float(jnp.sum(q**2))]
    np.testing.assert_allclose(got, outputs, rtol=1e-10)
    memory_total = sum(float(jnp.sum(a)) for a in jax.tree.leaves(memory))
    np.testing.assert_allclose(memory_total, memory_sum, rtol=1e-10, atol=1e-14)


# ----------------------------------------------------------------------------- both sizes

@pytest.mark.parametrize("size", ["quick", "paper", "local", "invariant"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_untrained_network_returns_its_base_exactly(size, variant):
    net = _net(11, 17, size, variant)
    ctxs = _contexts(11, 17, 3)
    q, memory = _run(net, ctxs)
    np.testing.assert_array_equal(np.asarray(q), np.asarray(jax.vmap(lambda c: _base(net, c))(ctxs)))
    # The memory has the structure of the initial one, one copy per step, and moved (it carries).
    init = net.init_memory()
    assert jax.tree.structure(jax.tree.map(lambda a: a[0], memory)) == jax.tree.structure(init)
    if VARIANTS[variant][0] and size in ("local", "invariant"):  # a state of core_width channels in every cell
        assert [h.shape for h in init] == [(11, 17, net.config.core_width)]
        assert float(jnp.max(jnp.abs(memory[0][-1]))) > 0
    elif VARIANTS[variant][0]:
        assert [h.shape for h, _ in init] == [(net.config.core_width,)] * net.config.core_layers
        assert float(jnp.max(jnp.abs(memory[-1][0][-1]))) > 0
    else:
        assert init == ()


@pytest.mark.parametrize("size", ["quick", "paper"])
def test_dtype_and_memory_follow_the_network(size):
    net = _net(7, 5, size, "memory", dtype=jnp.float32)
    assert net.dtype == jnp.float32 and net.expand.weight.dtype == jnp.float32
    assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(net.init_memory()))
    assert net.init_memory(jnp.float64)[0][0].dtype == jnp.float64


@pytest.mark.parametrize("size", ["quick", "paper", "local", "invariant"])
def test_output_is_bounded_and_hybrids_keep_the_mass(size):
    ctxs = _contexts(11, 17, 3)
    fluid = np.asarray(ctxs.fluid[0]) > 0
    # Local: a draw of the output layer whose rates differ between cells (its features share
    # a sign, so many draws saturate every cell alike and the rescaling hides the bound).
    scale, seed = {"local": (5.0, 2), "invariant": (0.5, 2)}.get(size, (50.0, 0))
    hybrid = _wild(_net(11, 17, size, "markovian", key=seed), scale, seed)
    q = np.asarray(_run(hybrid, ctxs)[0])
    base = np.asarray(ctxs.q_physics)
    np.testing.assert_allclose((q * fluid).sum(axis=(1, 2)), (base * fluid).sum(axis=(1, 2)), rtol=1e-12)
    ratio = q[:, fluid] / base[:, fluid]
    bound = np.exp(2 * MAX_LOG_RATE) * (1 + 1e-12)
    assert q.min() >= 0 and 1 / bound <= ratio.min() and ratio.max() <= bound and np.ptp(ratio) > 0.5 * MAX_LOG_RATE
    # Data-driven: the rate alone (offset channel zero) is bounded by e^(+-MAX_LOG_RATE), not rescaled.
    dd = _wild(_net(11, 17, size, "datadriven", key=seed), scale, seed)
    dd = eqx.tree_at(lambda n: n.body.head[-1].weight, dd, dd.body.head[-1].weight.at[..., 1].set(0.0))
    dd = eqx.tree_at(lambda n: n.body.head[-1].bias, dd, jnp.zeros_like(dd.body.head[-1].bias))
    q = np.asarray(_run(dd, ctxs)[0])
    base = np.asarray(ctxs.q + ctxs.source)
    ratio = q[:, fluid] / base[:, fluid]
    bound = np.exp(MAX_LOG_RATE) * (1 + 1e-12)
    assert 1 / bound <= ratio.min() and ratio.max() <= bound and np.ptp(ratio) > 0.5 * MAX_LOG_RATE
    assert abs((q * fluid).sum() - (base * fluid).sum()) > 1e-6


@pytest.mark.parametrize("size", ["quick", "paper", "local", "invariant"])
@pytest.mark.parametrize("variant,carries", [("memory", True), ("markovian", False)])
def test_memory_carries_the_past(size, variant, carries):
    """Perturb the field of step 0 only: a memory network's later outputs change, a Markovian one's do not."""
    net = _wild(_net(11, 17, size, variant), 1.0)
    ctxs = _contexts(11, 17, 4)
    bump = jnp.zeros_like(ctxs.q).at[0].set(0.5 * ctxs.fluid[0])
    moved = eqx.tree_at(lambda c: (c.q, c.q_physics), ctxs, (ctxs.q + bump, ctxs.q_physics + bump))
    late = float(jnp.max(jnp.abs(_run(net, ctxs)[0][2:] - _run(net, moved)[0][2:])))
    assert (late > 1e-9) == carries, late


def test_gradients_are_finite():
    """Paper net, one step from an empty field (its normalisation at zero spread): finite gradients in every layer.

    (The quick net is the recorded network, whose gradients test_closure checks.)
    """
    net = _wild(_net(7, 5, "paper", "memory"), 1.0)
    ctx = _ctx(7, 5, 0)
    ctx = eqx.tree_at(lambda c: (c.q, c.q_physics), ctx, (jnp.zeros_like(ctx.q), jnp.zeros_like(ctx.q)))
    memory = jax.tree.map(lambda a: a + 0.1, net.init_memory())

    def loss(n):
        q, mem = n(ctx, memory, ctx.q_physics)
        return jnp.sum(q**2) + sum(jnp.sum(h**2) for h, _ in mem)  # the output, and the state the LSTM reads it into

    grads = eqx.filter_jit(eqx.filter_grad(loss))(net)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    assert all(float(jnp.max(jnp.abs(g))) > 0 for g in jax.tree.leaves(grads.body.core))
    assert float(jnp.max(jnp.abs(grads.body.encoder[-1].weight))) > 0


@pytest.mark.parametrize("size", ["quick", "paper"])
def test_wrong_shapes_are_errors(size):
    net = _net(7, 5, size, "memory")
    with pytest.raises(ValueError, match=r"expects .*\(7, 5.*got \(6, 5"):
        ctx = _ctx(6, 5, 0)
        net(ctx, net.init_memory(), ctx.q_physics)
    with pytest.raises(ValueError, match="memory has 1 LSTM states"):
        ctx = _ctx(7, 5, 0)
        net(ctx, net.init_memory()[:1], ctx.q_physics)


def test_the_only_option_is_size():
    assert resolve_options(4, 4, memory=True, variant="memory", options={}) == NetConfig(4, 4, "quick")
    for removed in ("field_memory", "init_scale", "redistribute", "max_log_rate", "channels"):
        with pytest.raises(ValueError, match=rf"unknown network options \['{removed}'\]; known: size"):
            resolve_options(4, 4, memory=True, variant="memory", options={"size": "paper", removed: 1})
    with pytest.raises(ValueError, match="unknown size 'huge'; known: quick, paper"):
        resolve_options(4, 4, memory=True, variant="memory", options={"size": "huge"})
    with pytest.raises(ValueError, match="unknown size"):
        NetConfig(4, 4, "huge")


def test_local_network_is_local_and_the_same_everywhere():
    """A change in one cell moves the output only within the 7 x 7 cells around it; the function is shift-equivariant."""
    net = _wild(_net(15, 21, "local", "markovian"), 1.0)
    net = eqx.tree_at(lambda n: n.body.head[-1].bias, net, jnp.zeros_like(net.body.head[-1].bias))
    ctx = _ctx(15, 21, 0)
    ctx = eqx.tree_at(lambda c: c.fluid, ctx, jnp.ones_like(ctx.fluid))  # no walls: only the grid edges break the shift
    raw = lambda c: net.body.head[-1](  # noqa: E731 - the head's raw output, before the room-wide mass rescaling
        jax.nn.gelu(net.body.head[2](jax.nn.gelu(net.body.head[1](jax.nn.gelu(net.body.head[0](
            jnp.concatenate(physics_inputs(c), axis=-1))))))))[..., 0]
    bumped = eqx.tree_at(lambda c: c.q_physics, ctx, ctx.q_physics.at[7, 10].add(1.0))
    moved = np.abs(np.asarray(raw(bumped) - raw(ctx))) > 0
    ys, xs = np.nonzero(moved)
    assert moved[7, 10] and ys.min() >= 4 and ys.max() <= 10 and xs.min() >= 7 and xs.max() <= 13
    # The same pattern shifted by (2, 3) gives the same output shifted by (2, 3), away from the edges.
    shifted = jax.tree.map(lambda a: jnp.roll(a, (2, 3), axis=(0, 1)) if a.ndim == 2 else a, ctx)
    np.testing.assert_allclose(np.asarray(raw(shifted))[5:-5, 6:-6], np.roll(np.asarray(raw(ctx)), (2, 3), axis=(0, 1))[5:-5, 6:-6],
                               rtol=1e-10, atol=1e-12)
    # The network's output is that head's log-rate applied to the base and rescaled to its mass.
    q, _ = net(ctx, (), ctx.q_physics)
    np.testing.assert_allclose(np.asarray(q), np.asarray(_output(raw(ctx)[..., None], ctx.q_physics, ctx.fluid, False)),
                               rtol=1e-12)
    assert float(jnp.max(jnp.abs(q - ctx.q_physics))) > 1e-6


def test_local_memory_errors_and_dtype():
    net = _net(7, 5, "local", "memory", dtype=jnp.float32)
    assert net.dtype == jnp.float32 and net.init_memory()[0].shape == (7, 5, net.config.core_width)
    assert net.init_memory(jnp.float64)[0].dtype == jnp.float64
    ctx = _ctx(7, 5, 0)
    with pytest.raises(ValueError, match="memory has 0 LSTM states"):
        net(ctx, (), ctx.q_physics)
    with pytest.raises(ValueError, match=r"expects \(7, 5\) fields, got \(6, 5\)"):
        c6 = _ctx(6, 5, 0)
        net(c6, net.init_memory(), c6.q_physics)


@pytest.mark.parametrize("variant", ["memory", "markovian"])
def test_invariant_network_sees_the_plume_not_the_cell_or_the_strength(variant):
    """Scaling the field and the source together scales the output alike (the memory too); the flow is not read.

    Fails for the local network, which reads the raw field and the flow.
    """
    for size, invariant in (("invariant", True), ("local", False)):
        net = _wild(_net(11, 17, size, variant, key=2), 5.0, 2)
        ctxs = _contexts(11, 17, 3)
        q, memory = _run(net, ctxs)
        scaled = eqx.tree_at(lambda c: (c.q, c.q_physics, c.source), ctxs, (ctxs.q * 37.0, ctxs.q_physics * 37.0,
                                                                          ctxs.source * 37.0))
        q_scaled, memory_scaled = _run(net, scaled)
        reflowed = eqx.tree_at(lambda c: (c.u, c.v, c.w, c.dx_c, c.dy_c), ctxs,
                               (-ctxs.v, 3 * ctxs.u, ctxs.w + 0.1, ctxs.dy_c * 2, ctxs.dx_c))
        q_reflowed, _ = _run(net, reflowed)
        same_scaled = np.allclose(np.asarray(q_scaled), 37.0 * np.asarray(q), rtol=1e-10, atol=0)
        same_flow = np.allclose(np.asarray(q_reflowed), np.asarray(q), rtol=1e-12, atol=0)
        assert same_scaled == invariant and same_flow == invariant, (size, same_scaled, same_flow)
        if invariant and variant == "memory":
            for a, b in zip(jax.tree.leaves(memory), jax.tree.leaves(memory_scaled)):
                np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-10, atol=1e-14)
        assert float(jnp.max(jnp.abs(q - ctxs.q_physics))) > 1e-6  # the drawn network corrects


def test_invariant_inputs_are_bounded_when_the_plane_is_empty():
    """An empty plane, and one whose source has put mass in the column but not yet in the plane.

    The features stay in [-1, 1] and the gradients finite (over the peak of the field alone
    the source channel is 3e12 in the second case).
    """
    ctx = _ctx(7, 5, 0)
    empty = eqx.tree_at(lambda c: (c.q, c.q_physics, c.source), ctx, (jnp.zeros_like(ctx.q),) * 3)
    fed = eqx.tree_at(lambda c: (c.q, c.q_physics, c.source), ctx,
                      (1e-13 * ctx.fluid, 1e-13 * ctx.fluid, jnp.zeros_like(ctx.q).at[1, 1].set(0.3)))
    net = _wild(_net(7, 5, "invariant", "memory"), 1.0)

    def loss(n, c):
        q, mem = n(c, n.init_memory(), c.q_physics)
        return jnp.sum(q**2) + jnp.sum(mem[0] ** 2)

    for c in (empty, fed):
        x = invariant_inputs(c)
        assert bool(jnp.all(jnp.isfinite(x))) and float(jnp.max(jnp.abs(x))) <= 1.0
        grads = eqx.filter_grad(loss)(net, c)
        assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    assert float(jnp.max(jnp.abs(invariant_inputs(empty)[..., :3]))) == 0.0
    assert float(invariant_inputs(fed)[1, 1, 2]) == pytest.approx(1.0)
    # The features are constants for the gradients (1 / S would amplify them without bound).
    dq = jax.grad(lambda q: jnp.sum(invariant_inputs(eqx.tree_at(lambda c: c.q_physics, fed, q)) ** 2))(fed.q_physics)
    assert float(jnp.max(jnp.abs(dq))) == 0.0
