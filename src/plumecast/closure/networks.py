"""Building blocks of the learned closures: encoder, memory core, decoder, residual head.

One network family serves the three learned variants (:mod:`plumecast.closure.memory`,
:mod:`~plumecast.closure.markovian`, :mod:`~plumecast.closure.datadriven`), following the
paper's closure (arXiv 2511.21369):

* **encoder**: the normalised field after the physics, the normalised source increment
  and the fluid mask ``(ny, nx, 3)``, zero-padded at the bottom/right to a multiple of
  ``2**L`` (so odd grids such as 26 x 49 work), then ``L`` stride-2 3x3 convolutions
  (``channels``, paper 16-32-64-128) with GELU, then a mean over space: one vector of
  ``channels[-1]`` values (the paper's 128-vector);
* **core**: ``core_layers`` stacked LSTM cells of ``core_width`` (paper 4 x 128) whose
  ``(h, c)`` states are the closure memory, carried through the whole rollout from zero;
  or, for a closure without memory, an MLP of the same widths (tanh);
* **decoder**: a linear map of the core output to a ``(H/2^L, W/2^L, channels[-1])`` map,
  then ``L`` stride-2 transposed convolutions (kernel 4, see :class:`ConvTranspose`)
  through the encoder's widths in reverse, ending in ``decoder_out`` feature maps on the
  padded grid, cropped to ``(ny, nx)``;
* **field memory** (optional, ``field_memory`` channels, beyond the paper): a
  convolutional LSTM on the grid (:class:`ConvLSTMCell`) over the head's physics inputs,
  whose ``(h, c)`` maps, zero on solids, are carried through the rollout like the vector
  LSTM's; its ``h`` joins the decoder features. The paper's memory is one vector for the
  whole room; this one is a memory per cell (where the source has been, what has left
  the plane there). Without memory (Markovian) the cell restarts from zero every step;
* **head**: a small residual conv head over the decoder features and the physics inputs
  (normalised field before and after the physics, source increment; ``u, v, w``, cell
  diffusivities ``Dx``, ``Dy``, mask): ``head_layers`` 3x3 convolutions of ``head_width``
  with GELU and a 1x1 output convolution to a log-rate ``r`` (and, data-driven only, an
  offset ``o``), bounded to +-``max_log_rate`` (default MAX_LOG_RATE) and +-MAX_OFFSET by
  a scaled tanh: a hybrid keeps ``q_physics * exp(r)`` on fluid cells, rescaled to the
  mass the physics left (``redistribute``, the default for hybrids): the closure moves
  mass in proportion to the local field, positive by construction, and the physics
  (emission scale, exchange rate) keeps the budget. (An additive ``r q + o`` drove the far
  field negative in training on paper-room; a bounded positive offset spread small values
  over the far field, which wrecked the ranking of cells; without the rescaling, a
  learned bias of 1e-3 per step grows the field by e^1.5 over a 600 s rollout, and
  trained memory closures ended worse than the physics they started from, up to a
  final-time relative error of 5.5; docs/results.md.)

Start: the output convolution starts at zero (``init_scale = 0``, the default), so an
untrained closure adds exactly nothing and the model starts as the physics model.
Training moves the output layer first and, from the first update on, every layer behind
it. ``init_scale > 0`` draws it small and random instead (the correction then starts near
zero, not at zero: over a 1500-step rollout even 1e-4 accumulates to a visible offset).

Sizes: ``size="quick"`` (channels 8-16-32, LSTM 2 x 64, decoder out 4, head 1 x 8; trains
on a small CPU, a 600 s forecast in about a second) or ``size="paper"`` (16-32-64-128,
LSTM 4 x 128, decoder out 8, head 1 x 16); any of ``channels``, ``core_width``,
``core_layers``, ``decoder_out``, ``head_width``, ``head_layers``, ``init_scale``,
``max_log_rate``, ``redistribute``, ``field_memory`` (default 0, off) overrides the
size. Options are plain JSON values, so a run's config can rebuild the structure.
"""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["SIZES", "NetConfig", "resolve_options", "ClosureNet", "Conv", "ConvTranspose", "ConvLSTMCell", "Dense", "LSTMCell", "physics_inputs", "encoder_inputs", "rng_from_key"]

SIZES: dict[str, dict] = {
    "quick": {"channels": (8, 16, 32), "core_width": 64, "core_layers": 2, "decoder_out": 4, "head_width": 8,
              "head_layers": 1},
    "paper": {"channels": (16, 32, 64, 128), "core_width": 128, "core_layers": 4, "decoder_out": 8, "head_width": 16,
              "head_layers": 1},
}
ENCODER_INPUTS = 3  # field, source increment, mask
DYNAMIC_INPUTS = 3  # q, q_physics, source: change every step
# Bounds of the head per 0.4 s step: growth or decay by at most e^0.1 (an exchange time of
# 4 s or more) and an offset of at most 0.1 c_ref, so no step can blow a rollout up.
MAX_LOG_RATE = 0.1
MAX_OFFSET = 0.1
STATIC_INPUTS = 6  # u, v, w, Dx, Dy, mask: fixed within a rollout


@dataclass(frozen=True)
class NetConfig:
    """Resolved, hashable sizes of a closure network."""

    ny: int
    nx: int
    channels: tuple[int, ...]
    core_width: int
    core_layers: int
    head_width: int
    head_layers: int = 1
    decoder_out: int = 4
    init_scale: float = 0.0
    memory: bool = True
    offset: bool = False  # an additive offset map besides the log-rate (the data-driven variant)
    max_log_rate: float = MAX_LOG_RATE  # bound of the log-rate per step
    # Rescale the corrected field to the mass the physics left (hybrids): the closure
    # redistributes, the physics (emission scale, exchange) keeps the budget.
    redistribute: bool = False
    # Channels of a convolutional LSTM on the grid (0 = none): a memory per cell, beside the
    # vector LSTM's memory of the whole room.
    field_memory: int = 0

    def __post_init__(self):
        if not self.channels or any(int(c) < 1 for c in self.channels):
            raise ValueError(f"channels must be a non-empty list of positive ints, got {self.channels}")
        if min(self.core_width, self.core_layers, self.head_width, self.head_layers, self.decoder_out) < 1:
            raise ValueError(f"core_width, core_layers, decoder_out, head_width, head_layers must be >= 1 in {self}")
        if not self.init_scale >= 0:
            raise ValueError(f"init_scale must be >= 0, got {self.init_scale}")
        if self.redistribute and self.offset:
            raise ValueError("redistribute and offset exclude each other (an offset adds mass)")
        if self.field_memory < 0:
            raise ValueError(f"field_memory must be >= 0, got {self.field_memory}")
        if not 0 < self.max_log_rate <= 1:
            raise ValueError(f"max_log_rate must be in (0, 1], got {self.max_log_rate}")

    @property
    def levels(self) -> int:
        return len(self.channels)

    @property
    def padded_shape(self) -> tuple[int, int]:
        m = 2**self.levels
        return (-(-self.ny // m) * m, -(-self.nx // m) * m)

    @property
    def coarse_shape(self) -> tuple[int, int]:
        m = 2**self.levels
        hp, wp = self.padded_shape
        return (hp // m, wp // m)


def resolve_options(ny: int, nx: int, *, memory: bool, variant: str, options: dict, offset: bool = False) -> NetConfig:
    """A :class:`NetConfig` from a variant's options (``size`` plus overrides); unknown keys fail."""
    options = dict(options)
    size = options.pop("size", "quick")
    if size not in SIZES:
        raise ValueError(f"variant {variant!r}: unknown size {size!r}; known: {', '.join(SIZES)}")
    known = set(SIZES[size]) | {"init_scale", "max_log_rate", "redistribute", "field_memory"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"variant {variant!r}: unknown options {unknown}; known: size, {', '.join(sorted(known))}")
    sizes = {**SIZES[size], **options}
    return NetConfig(
        ny=int(ny),
        nx=int(nx),
        channels=tuple(int(c) for c in sizes["channels"]),
        core_width=int(sizes["core_width"]),
        core_layers=int(sizes["core_layers"]),
        head_width=int(sizes["head_width"]),
        head_layers=int(sizes["head_layers"]),
        decoder_out=int(sizes["decoder_out"]),
        init_scale=float(sizes.get("init_scale", 0.0)),
        max_log_rate=float(sizes.get("max_log_rate", MAX_LOG_RATE)),
        redistribute=bool(sizes.get("redistribute", not offset)),
        field_memory=int(sizes.get("field_memory", 0)),
        memory=memory,
        offset=offset,
    )


def physics_inputs(ctx) -> tuple[jax.Array, jax.Array]:
    """The head's physics channels from a :class:`ClosureContext`: ``(dynamic, static)``.

    ``dynamic (ny, nx, 3)``: the field before and after the physics, the source increment;
    ``static (ny, nx, 6)``: ``u, v, w``, the cell diffusivities ``Dx, Dy`` and the mask,
    fixed within a rollout.
    """
    dynamic = jnp.stack([ctx.q, ctx.q_physics, ctx.source], axis=-1)
    static = jnp.stack([ctx.u, ctx.v, ctx.w, ctx.dx_c, ctx.dy_c, ctx.fluid], axis=-1)
    return dynamic, static


def encoder_inputs(ctx) -> jax.Array:
    """The encoder's channels ``(ny, nx, 3)``: field after the physics, source increment, mask."""
    return jnp.stack([ctx.q_physics, ctx.source, ctx.fluid], axis=-1)


_DIMS = ("NHWC", "HWIO", "NHWC")  # channels-last layout (used by tests against lax.conv_transpose)


def _patch_matmul(xp: jax.Array, weight: jax.Array, stride: int) -> jax.Array:
    """A 'valid' convolution of a padded channels-last map as one matrix product (im2col).

    The ``k x k`` shifted (and strided) views of ``xp`` are stacked along channels and
    multiplied by the ``(k k cin, cout)`` weight matrix: for the few channels of these
    networks this is 1.5-2x faster on CPU than XLA's convolution, forward and backward.
    """
    k, _, cin, cout = weight.shape
    H, W, _ = xp.shape
    ho, wo = (H - k) // stride + 1, (W - k) // stride + 1
    views = [xp[i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride]
             for i in range(k) for j in range(k)]
    patches = views[0] if len(views) == 1 else jnp.concatenate(views, axis=-1)
    return patches @ weight.reshape(k * k * cin, cout)


def rng_from_key(key) -> np.random.Generator:
    """A NumPy generator seeded by a JAX PRNG key (legacy uint32 or typed key).

    Initial weights are drawn with NumPy: drawing them with ``jax.random`` outside ``jit``
    compiles one XLA kernel per weight shape, which costs tens of seconds on a small CPU.
    """
    if key is None:
        key = jax.random.PRNGKey(0)
    if jnp.issubdtype(jnp.asarray(key).dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.random.default_rng(np.asarray(key, dtype=np.uint32).ravel().tolist())


def _uniform(rng: np.random.Generator, shape, fan_in: int, dtype) -> jax.Array:
    bound = 1.0 / max(fan_in, 1) ** 0.5
    return jnp.asarray(rng.uniform(-bound, bound, shape), dtype)


class Dense(eqx.Module):
    """``y = W x + b`` on a vector."""

    weight: jax.Array  # (out, in)
    bias: jax.Array

    def __init__(self, cin: int, cout: int, *, rng, dtype):
        self.weight = _uniform(rng, (cout, cin), cin, dtype)
        self.bias = _uniform(rng, (cout,), cin, dtype)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.weight @ x + self.bias


class LSTMCell(eqx.Module):
    """A standard LSTM cell: gates ``i, f, g, o`` from ``[x, h]``; state ``(h, c)``."""

    weight: jax.Array  # (4 hidden, in + hidden)
    bias: jax.Array
    hidden: int = eqx.field(static=True)

    def __init__(self, cin: int, hidden: int, *, rng, dtype):
        self.weight = _uniform(rng, (4 * hidden, cin + hidden), hidden, dtype)
        self.bias = _uniform(rng, (4 * hidden,), hidden, dtype)
        self.hidden = hidden

    def __call__(self, x: jax.Array, state: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        h, c = state
        gates = self.weight @ jnp.concatenate([x, h]) + self.bias
        i, f, g, o = jnp.split(gates, 4)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return h, c


class Conv(eqx.Module):
    """A 2D convolution on one channels-last map ``(H, W, C)``, zero 'same' padding."""

    weight: jax.Array  # (k, k, cin, cout)
    bias: jax.Array | None
    stride: int = eqx.field(static=True)

    def __init__(self, cin: int, cout: int, kernel: int, *, stride: int = 1, rng, dtype, fan_in: int | None = None,
                 bias: bool = True):
        fan_in = (cin if fan_in is None else fan_in) * kernel * kernel
        self.weight = _uniform(rng, (kernel, kernel, cin, cout), fan_in, dtype)
        self.bias = _uniform(rng, (cout,), fan_in, dtype) if bias else None
        self.stride = stride

    def __call__(self, x: jax.Array) -> jax.Array:
        k = self.weight.shape[0]
        lo, hi = (k - 1) // 2, k // 2
        xp = jnp.pad(x, ((lo, hi), (lo, hi), (0, 0)))
        y = _patch_matmul(xp, self.weight, self.stride)
        return y if self.bias is None else y + self.bias


class ConvLSTMCell(eqx.Module):
    """An LSTM cell per grid cell: gates from 3 x 3 convolutions of ``[x, h]`` and of static inputs.

    State ``(h, c)`` of shape ``(H, W, hidden)``, kept zero on solid cells (no storage in
    walls). The static part (fixed within a rollout) has its own bias-free convolution so
    XLA can hoist it out of the time loop. The forget gate starts biased open (+1), the
    usual start for a memory that should last.
    """

    gates: Conv  # [x, h] -> 4 hidden
    gates_static: Conv
    hidden: int = eqx.field(static=True)

    def __init__(self, cin: int, cstatic: int, hidden: int, *, rng, dtype):
        fan = cin + hidden + cstatic
        gates = Conv(cin + hidden, 4 * hidden, 3, rng=rng, dtype=dtype, fan_in=fan)
        forget = jnp.zeros((4 * hidden,), dtype).at[hidden : 2 * hidden].set(1.0)
        self.gates = eqx.tree_at(lambda c: c.bias, gates, gates.bias + forget)
        self.gates_static = Conv(cstatic, 4 * hidden, 3, rng=rng, dtype=dtype, fan_in=fan, bias=False)
        self.hidden = hidden

    def __call__(self, x: jax.Array, static: jax.Array, mask: jax.Array, state) -> tuple[jax.Array, jax.Array]:
        h, c = state
        z = self.gates(jnp.concatenate([x, h], axis=-1)) + self.gates_static(static)
        i, f, g, o = jnp.split(z, 4, axis=-1)
        c = mask[..., None] * (jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g))
        h = jax.nn.sigmoid(o) * jnp.tanh(c)  # zero wherever c is
        return h, c


class ConvTranspose(eqx.Module):
    """Transposed convolution, kernel 4, stride 2, padding 1: ``(H, W, C)`` to ``(2H, 2W, C')``.

    Computed in its polyphase form: each of the four output phases ``(a, b)`` (row and
    column parity) sees a 2 x 2 block of input cells, so one 2 x 2 convolution of the
    input (zero-padded by one cell) to ``4 C'`` channels gives all phases, which are then
    interleaved onto the fine grid. The weights ``W[t, s, c, (a, b, c')]`` are the usual
    4 x 4 kernel ``K[2t + a, 2s + b, c, c']`` rearranged (a test checks the equality with
    ``jax.lax.conv_transpose``); this avoids XLA's dilated-input form, which multiplies
    mostly zeros and is several times slower on CPU.
    """

    weight: jax.Array  # (2, 2, cin, 4 cout), output channels ordered (a, b, cout)
    bias: jax.Array
    cout: int = eqx.field(static=True)

    def __init__(self, cin: int, cout: int, *, rng, dtype):
        fan_in = cin * 4  # each output sees 2 x 2 input cells per channel
        self.weight = _uniform(rng, (2, 2, cin, 4 * cout), fan_in, dtype)
        self.bias = _uniform(rng, (cout,), fan_in, dtype)
        self.cout = cout

    def kernel(self) -> jax.Array:
        """The equivalent 4 x 4 kernel ``K (4, 4, cin, cout)`` of ``lax.conv_transpose``."""
        cin = self.weight.shape[2]
        w = self.weight.reshape(2, 2, cin, 2, 2, self.cout)  # (t, s, c, a, b, c')
        return w.transpose(0, 3, 1, 4, 2, 5).reshape(4, 4, cin, self.cout)

    def __call__(self, x: jax.Array) -> jax.Array:
        h, w, _ = x.shape
        xp = jnp.pad(x, ((1, 1), (1, 1), (0, 0)))
        y = _patch_matmul(xp, self.weight, 1).reshape(h + 1, w + 1, 2, 2, self.cout)
        rows = [jnp.stack([y[a : a + h, b : b + w, a, b] for b in (0, 1)], axis=2) for a in (0, 1)]
        return jnp.stack(rows, axis=1).reshape(2 * h, 2 * w, self.cout) + self.bias


class ClosureNet(eqx.Module):
    """Encoder -> core (LSTM stack or MLP) -> decoder -> residual head (see the module docstring).

    Internally channels-last ``(H, W, C)``; takes and returns ``(ny, nx)`` fields.
    """

    config: NetConfig = eqx.field(static=True)
    encoder: tuple[Conv, ...]
    core: tuple  # LSTMCell (memory) or Dense (no memory) per layer
    expand: Dense
    decoder: tuple[ConvTranspose, ...]
    head_static: Conv
    head: tuple[Conv, ...]
    field_cell: ConvLSTMCell | None

    def __init__(self, config: NetConfig, *, key, dtype=None):
        self.config = config
        dtype = jnp.float32 if dtype is None else dtype
        rng = rng_from_key(key)
        ch = config.channels
        cin = (ENCODER_INPUTS,) + ch[:-1]
        self.encoder = tuple(Conv(a, b, 3, stride=2, rng=rng, dtype=dtype) for a, b in zip(cin, ch))
        widths = (ch[-1],) + (config.core_width,) * config.core_layers
        layer = LSTMCell if config.memory else Dense
        self.core = tuple(layer(a, b, rng=rng, dtype=dtype) for a, b in zip(widths[:-1], widths[1:]))
        h0, w0 = config.coarse_shape
        self.expand = Dense(config.core_width, h0 * w0 * ch[-1], rng=rng, dtype=dtype)
        dec = tuple(reversed(ch)) + (config.decoder_out,)
        self.decoder = tuple(ConvTranspose(a, b, rng=rng, dtype=dtype) for a, b in zip(dec[:-1], dec[1:]))
        hw = config.head_width
        hin = (config.decoder_out + DYNAMIC_INPUTS + config.field_memory,) + (hw,) * (config.head_layers - 1)
        hidden = tuple(Conv(a, hw, 3, rng=rng, dtype=dtype) for a in hin)
        # The first head convolution over [features, dynamic, static] is split in two: its
        # static part, fixed within a rollout, is hoisted out of the time loop by XLA.
        self.head_static = Conv(STATIC_INPUTS, hw, 3, rng=rng, dtype=dtype, fan_in=hin[0] + STATIC_INPUTS, bias=False)
        out = Conv(hw, 2 if config.offset else 1, 1, rng=rng, dtype=dtype)  # log-rate (and offset)
        out = eqx.tree_at(lambda c: (c.weight, c.bias), out, (out.weight * config.init_scale, jnp.zeros_like(out.bias)))
        self.head = hidden + (out,)
        self.field_cell = (ConvLSTMCell(DYNAMIC_INPUTS, STATIC_INPUTS, config.field_memory, rng=rng, dtype=dtype)
                           if config.field_memory else None)

    # ------------------------------------------------------------------ memory
    def init_memory(self, dtype) -> tuple:
        """Zero ``(h, c)`` per LSTM layer (then one ``(h, c)`` field pair with ``field_memory``), or ``()`` without memory."""
        c = self.config
        if not c.memory:
            return ()
        z = jnp.zeros((c.core_width,), dtype)
        states = tuple((z, z) for _ in self.core)
        return states + (self._zero_field(dtype),) if self.field_cell is not None else states

    def _zero_field(self, dtype):
        z = jnp.zeros((self.config.ny, self.config.nx, self.config.field_memory), dtype)
        return (z, z)

    # ------------------------------------------------------------------ parts
    def encode(self, x: jax.Array) -> jax.Array:
        """``(ny, nx, 3)`` encoder inputs to one vector of ``channels[-1]``."""
        c = self.config
        if x.shape != (c.ny, c.nx, ENCODER_INPUTS):
            raise ValueError(f"encoder expects ({c.ny}, {c.nx}, {ENCODER_INPUTS}), got {x.shape}")
        hp, wp = c.padded_shape
        x = jnp.pad(x, ((0, hp - c.ny), (0, wp - c.nx), (0, 0)))
        for conv in self.encoder:
            x = jax.nn.gelu(conv(x))
        return jnp.mean(x, axis=(0, 1))

    def advance(self, z: jax.Array, memory) -> tuple[jax.Array, tuple]:
        """The core: the LSTM stack (state in, state out) or the memoryless MLP."""
        if not self.config.memory:
            for layer in self.core:
                z = jnp.tanh(layer(z))
            return z, ()
        if len(memory) != len(self.core):
            raise ValueError(f"memory has {len(memory)} vector LSTM states, the closure {len(self.core)}")
        new = []
        for cell, state in zip(self.core, memory):
            h, cstate = cell(z, state)
            new.append((h, cstate))
            z = h
        return z, tuple(new)

    def decode(self, z: jax.Array) -> jax.Array:
        """A core vector to ``(ny, nx, decoder_out)`` feature maps (padded grid, cropped)."""
        c = self.config
        h0, w0 = c.coarse_shape
        x = self.expand(z).reshape(h0, w0, c.channels[-1])
        for conv in self.decoder:
            x = jax.nn.gelu(conv(x))
        return x[: c.ny, : c.nx]

    def correct(self, features: jax.Array, dynamic: jax.Array, static: jax.Array) -> jax.Array:
        """The head: decoder features and physics inputs ``(ny, nx, .)`` to ``(rate, offset)`` maps ``(ny, nx, 2)``."""
        first, *hidden, out = self.head
        x = jax.nn.gelu(first(jnp.concatenate([features, dynamic], axis=-1)) + self.head_static(static))
        for conv in hidden:
            x = jax.nn.gelu(conv(x))
        return out(x)

    def __call__(self, ctx, memory, base: jax.Array) -> tuple[jax.Array, tuple]:
        """The corrected field ``(ny, nx)`` from ``base`` (the field the step would keep) and the next memory.

        ``q_next = base * exp(r)`` on fluid cells: ``r`` is a bounded local growth or decay
        rate, the form of the exchange with the layers above and below the plane (mass
        leaves or arrives in proportion to what is there), so a hybrid stays non-negative
        and leaves empty cells empty, as the physics does. With ``config.offset`` (the
        data-driven variant, which has no physics to move mass) a bounded offset is added
        and the result clamped at zero. A zero head leaves ``base`` as it is.
        """
        if self.field_cell is not None:
            # The field memory is the last entry; without memory it restarts from zero every step.
            if self.config.memory:
                memory, field_state = memory[:-1], memory[-1]
            else:
                field_state = self._zero_field(ctx.q.dtype)
        z = self.encode(encoder_inputs(ctx))
        z, memory = self.advance(z, memory)
        features = self.decode(z)
        dynamic, static = physics_inputs(ctx)
        if self.field_cell is not None:
            field_state = self.field_cell(dynamic, static, ctx.fluid, field_state)
            features = jnp.concatenate([features, field_state[0]], axis=-1)
            if self.config.memory:
                memory = memory + (field_state,)
        head = self.correct(features, dynamic, static)
        bound = self.config.max_log_rate
        rate = bound * jnp.tanh(head[..., 0] / bound)
        corrected = base * jnp.exp(rate)
        if self.config.redistribute:
            before = jnp.sum(base * ctx.fluid)
            after = jnp.sum(corrected * ctx.fluid)
            corrected = corrected * jnp.where(after > 0, before / jnp.where(after > 0, after, 1.0), 1.0)
        if self.config.offset:
            corrected = jnp.maximum(corrected + MAX_OFFSET * jnp.tanh(head[..., 1] / MAX_OFFSET), 0.0)
        return jnp.where(ctx.fluid > 0, corrected, base), memory
