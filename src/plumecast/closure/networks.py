"""The closure networks: encoder, memory core, decoder and head, in two sizes, and a local one.

One network serves the three learned variants (:mod:`plumecast.closure.memory`,
:mod:`~plumecast.closure.markovian`, :mod:`~plumecast.closure.datadriven`), following the
paper's closure (arXiv 2511.21369). Its only option is ``size``:

* ``"paper"`` (:class:`PaperNet`): the paper's network, layer for layer (table below);
* ``"quick"`` (:class:`QuickNet`, the default): a small network of the same plan that
  trains on a small CPU (a 600 s forecast in about a second);
* ``"local"`` (:class:`LocalNet`): no encoder and no global state: three 3x3
  convolutions over the quick head's physics channels, the same function of a cell's
  7 x 7 neighbourhood everywhere (with memory, a gated state of a few channels in every
  cell). The paper's network sees the whole plane through a bottleneck, which a few dozen
  training releases can pin to where they were; a local correction is informed by every
  cell of every snapshot. Its output is the one below.
* ``"invariant"`` (:class:`LocalNet` too): the local network over scale-free features of
  the field alone (:func:`invariant_inputs`: no flow, no diffusivity), so that what it
  learns cannot tell one cell or one source strength from another: only the plume's
  local shape and, with memory, its history.
* ``"exchange"`` (:class:`LocalNet` too): the local network over scale-free features of
  every level of the column (:func:`exchange_inputs`), whose raw output
  (:meth:`LocalNet.raw`, ``2 (L - 1)`` channels) changes the column's vertical exchange
  (:mod:`plumecast.closure.exchange`) rather than a field.

:class:`ClosureNet` builds the one its :class:`NetConfig` names. The quick and paper
networks share the core, and all three the output:

* **core**: a stack of LSTM cells whose ``(h, c)`` states are the closure memory, carried
  through the whole rollout from zero (``memory=True``); without memory (the Markovian
  ablation) an MLP of the same widths in its place, so a step sees the present only;
* **output**: the head's raw output ``a`` becomes a bounded log-rate
  ``r = MAX_LOG_RATE tanh(a / MAX_LOG_RATE)`` and a hybrid keeps ``base e^r`` on fluid
  cells, rescaled to the mass of ``base`` (the field the physics left): the closure moves
  mass in proportion to the local field, positive by construction, and the physics
  (emission, exchange) keeps the budget. The data-driven variant (``offset=True``), which
  has no physics to move mass, adds a bounded offset ``MAX_OFFSET tanh(b / MAX_OFFSET)``
  from a second output channel instead, clamped at zero, and is not rescaled. (An additive
  closure drove the far field negative in training on paper-room; without the rescaling a
  learned log-rate bias of 1e-3 per step grew the field by e^1.5 over 600 s and every
  trained closure ended worse than its physics; docs/results.md. A convolutional LSTM per
  cell beside the vector memory did not help there either and was removed.)
* **start**: the output convolution starts at exactly zero, so an untrained closure returns
  ``base`` exactly and the model starts as the physics model (a small random start is not
  small over a 1500-step rollout). Training moves the output layer first and, from the
  first update on, every layer behind it.

The paper's network (``size="paper"``)
--------------------------------------
From the paper's appendix A.1 (Tables 2-5: encoder, decoder, memory unit, closure) and
the public research code (github.com/IHPC-Physics-AI/Closure-for-Convection-Diffusion,
``expt1_baseline.py``: ``HiddenNet`` and ``ClosureNet``). Shapes for the paper grid
``(ny, nx) = (26, 49)``, channels last; LeakyReLU (negative slope 0.01) after every layer
except the output (paper A.1: "in all modules"). Parameters: 1,474,577 with memory, as
many as the code's closure and hidden networks have (the paper states no count; the
1.47 M of issue 13 is this), of which the encoder 293,520, the LSTM stack 526,336, the
decoder 637,664, the head 17,057.

Layers (name: layer, output on the paper grid, parameters, source)::

    e1a    conv 3x3, 3 -> 16                              (26, 49, 16)     448  T2 C
    e1b    conv 3x3, 16 -> 16, max-pool (2, 3)            (13, 16, 16)   2,320  T2 C
    e2a    conv 3x3, 16 -> 32                             (13, 16, 32)   4,640  T2 C
    e2b    conv 3x3, 32 -> 32, max-pool (2, 3)             (6, 5, 32)    9,248  T2 C
    e3a    conv 3x3, 32 -> 64                              (6, 5, 64)   18,496  T2 C
    e3b    conv 3x3, 64 -> 64, max-pool (2, 2)             (3, 2, 64)   36,928  T2 C
    e4a    conv 3x3, 64 -> 128                            (3, 2, 128)   73,856  T2 C
    e4b    conv 3x3, 128 -> 128, max-pool (3, 2)          (1, 1, 128)  147,584  T2 C (a)
    lstm   4 LSTM cells of 128, input 128               4 x (h, c) 128  526,336  T4 C
    up1    transposed conv (3, 2) stride (3, 2),          (3, 2, 128)  393,344  T3 C
           512 (h of all 4 cells, 1 x 1) -> 128
    res1   conv 3x3, 128 -> 128, plus its input           (3, 2, 128)  147,584  T3 C
    up2    transposed conv (2, 2)/(2, 2) -> 64,            (6, 5, 64)   32,832  T3 C (b)
           (6, 4) edge-padded to the encoder's (6, 5)
    res2   conv 3x3, 64 -> 64, plus its input              (6, 5, 64)   36,928  T3 C
    up3    transposed conv (2, 3)/(2, 3) -> 32,          (13, 16, 32)   12,320  T3 C (b)
           (12, 15) edge-padded to (13, 16)
    res3   conv 3x3, 32 -> 32, plus its input            (13, 16, 32)    9,248  T3 C
    up4    transposed conv (2, 3)/(2, 3) -> 16,          (26, 49, 16)    3,088  T3 C (c)
           (26, 48) edge-padded to (26, 49)
    res4   conv 3x3, 16 -> 16, plus its input            (26, 49, 16)    2,320  T3 C
    head1  conv 3x3, 16 + 10 = 26 -> 32, plus its        (26, 49, 32)    7,520  C (d)
           input zero-padded to 32 channels
    head2  conv 3x3, 32 -> 32, plus its input            (26, 49, 32)    9,248  C (d)
    out    conv 3x3, 32 -> 1 (data-driven 2), zero        (26, 49, 1)      289  C (d, e)

T2-T5: the paper's tables; C: the public code (the residual connections, "plus its
input", are the code's: the tables list layers only). Inputs, as in the code: the encoder reads
``[(c - m) / s, mask m, mask s]`` (``m, s`` the mean and standard deviation of the field
``c`` over the grid); the head reads the decoder's 16 maps and 10 physics channels
``[(q - m) / s, mask m, mask s, u, v, w, Dx, Dy, source, mask]`` of the field ``q`` at the
step's start. Timing, as in the paper (Eqs. 3-4): the head decodes the LSTM state
``h_t``, which has read the fields up to the step's start (zero at t = 0); the corrected
field of the step then goes through the encoder into the LSTM. Where the two sources or
plumecast differ:

(a) Table 2 pools the last (3, 2) map with a (3, 2) window (all of it); the code uses
    (2, 2), which drops its last row. Kept: the table's.
(b) The code edge-pads the third level on the left in x (one column); plumecast pads every
    level at the bottom/right.
(c) The code applies no activation after the last transposed convolution; kept.
(d) Table 5 gives the head as 26 -> 26 -> 26 -> 1 channels (12,455 parameters); the code
    as 26 -> 32 -> 32 -> 1 with residuals (17,057). Kept: the code's (1,474,577 in all
    against 1,469,975).
(e) The code's output is an additive closure term (``1e-10 a``, Glorot-initialised); here
    the bounded log-rate with the mass rescaling above, starting at zero.

plumecast's further choices:

(f) Any grid, not only 26 x 49: the pooling windows of an axis of ``n`` cells are
    ``round(n^(1/k))`` for the ``k`` stages left and the last stage pools what remains
    (:func:`pool_windows`), which gives the paper's windows on its grid; the decoder's
    transposed convolutions mirror them, so their kernels, and the parameter count,
    depend on the grid.
(g) Inputs in plumecast's units: ``u, v, w`` over ``u_ref``, diffusivities over ``d_ref``,
    the source increment of a step (the code: m/s, m^2/s and the source rate); ``Dx, Dy``
    are the face diffusivities averaged to cells (the code puts a cell's west / south
    face value in it); ``s`` has a floor of ``STD_FLOOR`` in quadrature, which keeps the
    gradients finite at an empty field (the code: a floor of 1e-8 in the head, none in
    the encoder).
(h) Initialisation: Glorot-uniform weights and zero biases everywhere (paper A.2; the code
    left its transposed convolutions and LSTM cells at Flax's defaults, LeCun-normal and
    orthogonal recurrent weights), the output convolution zero (e).
(i) Data-driven variant: the same network and the same 10 physics channels, plus the
    offset channel (the code's reads 5 channels, no velocity or diffusivity, and adds
    ``1e-6 a``).
(j) Markovian variant: the same network with a 4 x 128 MLP (LeakyReLU) over the encoded
    field at the step's start in place of the LSTM (the code's Markovian ablation is the
    head alone: residual convolutions 10 -> 32 -> 32 -> 1 over the physics channels).

The quick network (``size="quick"``)
-------------------------------------
The normalised field after the physics, the source increment and the mask ``(ny, nx, 3)``,
zero-padded at the bottom/right to a multiple of ``2**L``, then ``L`` stride-2 3x3
convolutions (8-16-32) with GELU and a mean over space; an LSTM stack of 2 x 64 (or MLP,
tanh) advanced with it; a linear map of the last layer's output to the coarsest map and
``L`` stride-2 transposed convolutions (kernel 4, :class:`ConvTranspose`) with GELU to 4
maps on the padded grid, cropped; a head of one 3x3 convolution of width 8 (GELU) over
those maps, the field before and after the physics, the source increment, ``u, v, w``,
``Dx, Dy`` and the mask, and a 1x1 output convolution. The encoder reads the field after
this step's physics, and the head decodes the state the LSTM reached with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["SIZES", "NetConfig", "resolve_options", "ClosureNet", "QuickNet", "PaperNet", "Conv", "ConvTranspose",
           "BlockTranspose", "Dense", "LSTMCell", "LocalNet", "pool_windows", "physics_inputs",
           "invariant_inputs", "exchange_inputs", "exchange_input_count", "encoder_inputs", "rng_from_key"]

SIZES: dict[str, dict] = {
    "quick": {"channels": (8, 16, 32), "core_width": 64, "core_layers": 2, "decoder_out": 4, "head_width": 8},
    "paper": {"channels": (16, 32, 64, 128), "core_width": 128, "core_layers": 4, "decoder_out": 16, "head_width": 32},
    # No encoder or decoder: LOCAL_DEPTH 3x3 convolutions over the physics channels; its
    # memory (core_width channels per cell) is a gated state in every cell.
    "local": {"channels": (), "core_width": 4, "core_layers": 1, "decoder_out": 0, "head_width": 16},
    # The local network over scale-free features of the field alone (invariant_inputs).
    "invariant": {"channels": (), "core_width": 4, "core_layers": 1, "decoder_out": 0, "head_width": 16},
    # The local network over the column's levels (exchange_inputs), to the column's vertical exchange.
    "exchange": {"channels": (), "core_width": 4, "core_layers": 1, "decoder_out": 0, "head_width": 16},
}
LOCAL_SIZES = ("local", "invariant", "exchange")  # the sizes built as a LocalNet
READOUT_SIZES = ("invariant", "exchange")  # local sizes whose state the output reads and the gate does not
LOCAL_DEPTH = 3  # local: 3x3 convolutions, a 7 x 7 cell (3.5 m) neighbourhood
ENCODER_INPUTS = 3  # quick: field after the physics, source increment, mask; paper: (c - m) / s, mask m, mask s
DYNAMIC_INPUTS = 3  # quick head: q, q_physics, source: change every step
STATIC_INPUTS = 6  # quick head: u, v, w, Dx, Dy, mask: fixed within a rollout
INVARIANT_INPUTS = 5  # invariant: q, q_physics, source over their peak, log of q_physics's share, mask
INVARIANT_PEAK_FLOOR = 1e-12  # invariant: added to S (c_ref units), far below any plume: 1 / S stays finite
INVARIANT_LOG_FLOOR = 1e-4  # invariant: the log feature's floor, a share of the peak (its range is [-1, 0])
PAPER_HEAD_INPUTS = 10  # (q - m) / s, mask m, mask s, u, v, w, Dx, Dy, source, mask
# Bounds of the head per 0.4 s step: growth or decay by at most e^0.1 (an exchange time of
# 4 s or more) and an offset of at most 0.1 c_ref, so no step can blow a rollout up.
MAX_LOG_RATE = 0.1
MAX_OFFSET = 0.1
LEAKY_SLOPE = 0.01  # the paper's LeakyReLU
STD_FLOOR = 1e-8  # of the paper net's per-step standard deviation (quadrature): finite gradients at an empty field


@dataclass(frozen=True)
class NetConfig:
    """The static description of a closure network: grid, size and variant."""

    ny: int
    nx: int
    size: str = "quick"
    memory: bool = True  # an LSTM stack (else an MLP: the Markovian ablation)
    offset: bool = False  # an additive offset map besides the log-rate (the data-driven variant)
    column_levels: int = 0  # size "exchange": the column's levels L

    def __post_init__(self):
        if self.size not in SIZES:
            raise ValueError(f"unknown size {self.size!r}; known: {', '.join(SIZES)}")
        if min(self.ny, self.nx) < 1:
            raise ValueError(f"grid must have at least one cell, got {self.ny} x {self.nx}")
        if (self.size == "exchange") != (self.column_levels >= 2):
            raise ValueError("size 'exchange' and only it reads a column of at least two levels "
                             f"(size {self.size!r}, {self.column_levels} levels)")

    @property
    def channels(self) -> tuple[int, ...]:
        return SIZES[self.size]["channels"]

    @property
    def core_width(self) -> int:
        return SIZES[self.size]["core_width"]

    @property
    def core_layers(self) -> int:
        return SIZES[self.size]["core_layers"]

    @property
    def decoder_out(self) -> int:
        return SIZES[self.size]["decoder_out"]

    @property
    def head_width(self) -> int:
        return SIZES[self.size]["head_width"]

    @property
    def levels(self) -> int:
        return len(self.channels)

    # quick: stride-2 levels on a zero-padded grid
    @property
    def padded_shape(self) -> tuple[int, int]:
        m = 2**self.levels
        return (-(-self.ny // m) * m, -(-self.nx // m) * m)

    @property
    def coarse_shape(self) -> tuple[int, int]:
        m = 2**self.levels
        hp, wp = self.padded_shape
        return (hp // m, wp // m)

    # paper: max-pooling levels
    @property
    def pool_windows(self) -> tuple[tuple[int, int], ...]:
        """The max-pool window ``(wy, wx)`` of each encoder stage (paper grid: (2,3), (2,3), (2,2), (3,2))."""
        return tuple(zip(pool_windows(self.ny, self.levels), pool_windows(self.nx, self.levels)))

    @property
    def level_shapes(self) -> tuple[tuple[int, int], ...]:
        """The map shape at each encoder stage and after the last pooling (paper grid: 26x49 ... 1x1)."""
        shapes = [(self.ny, self.nx)]
        for wy, wx in self.pool_windows:
            shapes.append((shapes[-1][0] // wy, shapes[-1][1] // wx))
        return tuple(shapes)


def pool_windows(n: int, stages: int) -> tuple[int, ...]:
    """Max-pool windows along an axis of ``n`` cells that bring it to one cell in ``stages`` stages.

    Each stage but the last pools by ``round(n^(1/k))`` for the ``k`` stages left (the map
    shrinks to ``n // window``, dropping a remainder, as a 'valid' pooling does); the last
    pools what is left. For the paper's 26 x 49 grid this gives its windows, (2, 2, 2, 3)
    in y and (3, 3, 2, 2) in x.
    """
    windows = []
    for left in range(stages, 1, -1):
        k = max(1, math.floor(n ** (1 / left) + 0.5))
        windows.append(k)
        n //= k
    return (*windows, n)


def resolve_options(ny: int, nx: int, *, memory: bool, variant: str, options: dict, offset: bool = False,
                    column_levels: int = 0) -> NetConfig:
    """A :class:`NetConfig` from a variant's network options: only ``size`` (a key of :data:`SIZES`)."""
    unknown = sorted(set(options) - {"size"})
    if unknown:
        raise ValueError(f"variant {variant!r}: unknown network options {unknown}; known: size")
    size = options.get("size", "quick")
    if size not in SIZES:
        raise ValueError(f"variant {variant!r}: unknown size {size!r}; known: {', '.join(SIZES)}")
    return NetConfig(ny=int(ny), nx=int(nx), size=size, memory=bool(memory), offset=bool(offset),
                     column_levels=int(column_levels))


def physics_inputs(ctx) -> tuple[jax.Array, jax.Array]:
    """The quick head's physics channels from a :class:`ClosureContext`: ``(dynamic, static)``.

    ``dynamic (ny, nx, 3)``: the field before and after the physics, the source increment;
    ``static (ny, nx, 6)``: ``u, v, w``, the cell diffusivities ``Dx, Dy`` and the mask,
    fixed within a rollout.
    """
    dynamic = jnp.stack([ctx.q, ctx.q_physics, ctx.source], axis=-1)
    static = jnp.stack([ctx.u, ctx.v, ctx.w, ctx.dx_c, ctx.dy_c, ctx.fluid], axis=-1)
    return dynamic, static


def invariant_inputs(ctx) -> jax.Array:
    """The invariant network's channels ``(ny, nx, 5)``: what the field looks like, not where or how strong it is.

    ``q``, ``q_physics`` and the source increment over ``S``, the largest of the three on
    the fluid cells, so each lies in ``[0, 1]``; ``log(q_physics / S + floor) / |log
    floor|`` (the background's pattern, in ``[-1, 0]``); the mask. All are constants for
    the gradients. Every channel is unchanged when the field and the source are scaled
    together, as the true transport (linear in the emission) is, and none reads the flow
    or the diffusivities, which tell cells apart: the correction a closure learns over
    them is a function of the plume's local shape and history only.
    """
    fields = jnp.stack([ctx.q, ctx.q_physics, ctx.source], axis=-1) * ctx.fluid[..., None]
    # S takes the source too: a source below the plane puts mass in the column while the
    # plane is still nearly empty, where source / peak of q_physics alone has no bound.
    peak = jnp.max(fields)
    shares = jnp.clip(fields / (jnp.maximum(peak, 0.0) + INVARIANT_PEAK_FLOOR), -1.0, 1.0)
    log_share = jnp.log(jnp.maximum(shares[..., 1], 0.0) + INVARIANT_LOG_FLOOR) / abs(math.log(INVARIANT_LOG_FLOOR))
    x = jnp.concatenate([shares, (log_share * ctx.fluid)[..., None], ctx.fluid[..., None]], axis=-1)
    # No gradient back into the field through the features: d(shares)/dq = 1 / S is up to
    # 1e12 per step where a plume has barely reached the plane, and can overflow float32
    # over a rollout (paper-room training at lr 0.02 met non-finite steps). The physics
    # still learns through the field the closure corrects, the network through its output.
    return jax.lax.stop_gradient(x)


def exchange_inputs(levels: jax.Array, deposits: jax.Array, w_face: jax.Array, fluid: jax.Array) -> jax.Array:
    """The exchange network's channels ``(ny, nx, 4 L)`` from the column at a step's start.

    ``levels (L, ny, nx)``: every level's field (the plane's among them), ``deposits (L, ny,
    nx)``: the step's source increments into them, ``w_face (L-1, ny, nx)``: the vertical
    velocity at the interfaces (m/s). Channels: the fields and the deposits over ``S``,
    the largest of them all on fluid cells; the fields' ``log(q / S + floor) / |log
    floor|``; ``w_face`` over its largest magnitude; the mask. As :func:`invariant_inputs`:
    unchanged when every field and source is scaled together, and constants for the
    gradients (the column's physics still learns through what the closure changes).
    """
    fields = jnp.concatenate([levels, deposits], axis=0) * fluid[None]
    peak = jnp.max(fields)
    shares = jnp.clip(fields / (jnp.maximum(peak, 0.0) + INVARIANT_PEAK_FLOOR), -1.0, 1.0)
    L = levels.shape[0]
    logs = jnp.log(jnp.maximum(shares[:L], 0.0) + INVARIANT_LOG_FLOOR) / abs(math.log(INVARIANT_LOG_FLOOR))
    w = w_face / jnp.maximum(jnp.max(jnp.abs(w_face)), 1e-12)
    x = jnp.concatenate([shares, logs * fluid[None], w, fluid[None]], axis=0)
    return jax.lax.stop_gradient(jnp.moveaxis(x, 0, -1))


def exchange_input_count(levels: int) -> int:
    """Channels of :func:`exchange_inputs` for a column of ``levels``."""
    return 4 * levels


def encoder_inputs(ctx) -> jax.Array:
    """The quick encoder's channels ``(ny, nx, 3)``: field after the physics, source increment, mask."""
    return jnp.stack([ctx.q_physics, ctx.source, ctx.fluid], axis=-1)


def _standardised(field: jax.Array, fluid: jax.Array) -> list[jax.Array]:
    """The paper's per-step normalisation of a field: ``[(c - m) / s, mask m, mask s]`` over the whole grid."""
    mean = jnp.mean(field)
    std = jnp.sqrt(jnp.var(field) + STD_FLOOR**2)
    return [(field - mean) / std, fluid * mean, fluid * std]




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


def _glorot(rng: np.random.Generator, shape, fan_in: int, fan_out: int, dtype) -> jax.Array:
    bound = (6.0 / (fan_in + fan_out)) ** 0.5
    return jnp.asarray(rng.uniform(-bound, bound, shape), dtype)


def _leaky(x: jax.Array) -> jax.Array:
    return jax.nn.leaky_relu(x, LEAKY_SLOPE)


class Dense(eqx.Module):
    """``y = W x + b`` on a vector; ``glorot``: Glorot-uniform weights, zero bias (else uniform +-1/sqrt(fan_in))."""

    weight: jax.Array  # (out, in)
    bias: jax.Array

    def __init__(self, cin: int, cout: int, *, rng, dtype, glorot: bool = False):
        if glorot:
            self.weight = _glorot(rng, (cout, cin), cin, cout, dtype)
            self.bias = jnp.zeros((cout,), dtype)
        else:
            self.weight = _uniform(rng, (cout, cin), cin, dtype)
            self.bias = _uniform(rng, (cout,), cin, dtype)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.weight @ x + self.bias


class LSTMCell(eqx.Module):
    """A standard LSTM cell: gates ``i, f, g, o`` from ``[x, h]``; state ``(h, c)``."""

    weight: jax.Array  # (4 hidden, in + hidden)
    bias: jax.Array
    hidden: int = eqx.field(static=True)

    def __init__(self, cin: int, hidden: int, *, rng, dtype, glorot: bool = False):
        if glorot:
            self.weight = _glorot(rng, (4 * hidden, cin + hidden), cin + hidden, 4 * hidden, dtype)
            self.bias = jnp.zeros((4 * hidden,), dtype)
        else:
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
                 bias: bool = True, glorot: bool = False):
        shape = (kernel, kernel, cin, cout)
        if glorot:
            self.weight = _glorot(rng, shape, cin * kernel**2, cout * kernel**2, dtype)
            self.bias = jnp.zeros((cout,), dtype) if bias else None
        else:
            fan_in = (cin if fan_in is None else fan_in) * kernel * kernel
            self.weight = _uniform(rng, shape, fan_in, dtype)
            self.bias = _uniform(rng, (cout,), fan_in, dtype) if bias else None
        self.stride = stride

    def __call__(self, x: jax.Array) -> jax.Array:
        k = self.weight.shape[0]
        lo, hi = (k - 1) // 2, k // 2
        xp = jnp.pad(x, ((lo, hi), (lo, hi), (0, 0)))
        y = _patch_matmul(xp, self.weight, self.stride)
        return y if self.bias is None else y + self.bias


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


class BlockTranspose(eqx.Module):
    """Transposed convolution whose kernel equals its stride ``(wy, wx)``: each cell becomes a ``wy x wx`` block.

    ``(H, W, C)`` to ``(wy H, wx W, C')``: ``y[wy i + a, wx j + b] = x[i, j] K[wy - 1 - a,
    wx - 1 - b] + bias``, the outputs do not overlap. This is Flax's ``ConvTranspose`` with
    'SAME' padding (``lax.conv_transpose``, kernel ``K`` in the same layout; a test checks
    it), the paper's decoder layer. Glorot-uniform weights (fans of the kernel), zero bias.
    """

    weight: jax.Array  # (wy, wx, cin, cout)
    bias: jax.Array

    def __init__(self, cin: int, cout: int, window: tuple[int, int], *, rng, dtype):
        cells = window[0] * window[1]
        self.weight = _glorot(rng, (*window, cin, cout), cells * cin, cells * cout, dtype)
        self.bias = jnp.zeros((cout,), dtype)

    def __call__(self, x: jax.Array) -> jax.Array:
        h, w, _ = x.shape
        wy, wx, _, cout = self.weight.shape
        return jnp.einsum("ijc,abcd->iajbd", x, self.weight[::-1, ::-1]).reshape(h * wy, w * wx, cout) + self.bias


def _zero_output(cin: int, cout: int, kernel: int, *, rng, dtype) -> Conv:
    """The output convolution, all zero: an untrained closure returns its base exactly."""
    conv = Conv(cin, cout, kernel, rng=rng, dtype=dtype)
    return eqx.tree_at(lambda c: (c.weight, c.bias), conv, (jnp.zeros_like(conv.weight), jnp.zeros_like(conv.bias)))


def _init_memory(config: NetConfig, dtype) -> tuple:
    if not config.memory:
        return ()
    if config.size in LOCAL_SIZES:
        return (jnp.zeros((config.ny, config.nx, config.core_width), dtype),)
    z = jnp.zeros((config.core_width,), dtype)
    return tuple((z, z) for _ in range(config.core_layers))


def _check_memory(config: NetConfig, memory) -> None:
    if config.memory and len(memory) != config.core_layers:
        raise ValueError(f"memory has {len(memory)} LSTM states, the closure {config.core_layers}")


def _output(head: jax.Array, base: jax.Array, fluid: jax.Array, offset: bool) -> jax.Array:
    """The corrected field from the head's raw output ``(ny, nx, 1 or 2)`` (see the module docstring)."""
    rate = MAX_LOG_RATE * jnp.tanh(head[..., 0] / MAX_LOG_RATE)
    corrected = base * jnp.exp(rate)
    if offset:
        corrected = jnp.maximum(corrected + MAX_OFFSET * jnp.tanh(head[..., 1] / MAX_OFFSET), 0.0)
    else:  # a hybrid: rescaled to the mass the physics left
        before = jnp.sum(base * fluid)
        after = jnp.sum(corrected * fluid)
        corrected = corrected * jnp.where(after > 0, before / jnp.where(after > 0, after, 1.0), 1.0)
    return jnp.where(fluid > 0, corrected, base)


class QuickNet(eqx.Module):
    """The quick network: strided encoder -> core -> linear map and transposed convs -> head (module docstring).

    Internally channels-last ``(H, W, C)``; takes and returns ``(ny, nx)`` fields.
    """

    config: NetConfig = eqx.field(static=True)
    encoder: tuple[Conv, ...]
    core: tuple  # LSTMCell (memory) or Dense (no memory) per layer
    expand: Dense
    decoder: tuple[ConvTranspose, ...]
    head_static: Conv
    head: tuple[Conv, Conv]  # hidden, output

    def __init__(self, config: NetConfig, *, rng, dtype):
        self.config = config
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
        hw, hin = config.head_width, config.decoder_out + DYNAMIC_INPUTS
        hidden = Conv(hin, hw, 3, rng=rng, dtype=dtype)
        # The head convolution over [features, dynamic, static] is split in two: its static
        # part, fixed within a rollout, is hoisted out of the time loop by XLA.
        self.head_static = Conv(STATIC_INPUTS, hw, 3, rng=rng, dtype=dtype, fan_in=hin + STATIC_INPUTS, bias=False)
        out = _zero_output(hw, 2 if config.offset else 1, 1, rng=rng, dtype=dtype)  # log-rate (and offset)
        self.head = (hidden, out)

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
        """The core: the LSTM stack (state in, state out) or the memoryless MLP; returns the last layer's output."""
        if not self.config.memory:
            for layer in self.core:
                z = jnp.tanh(layer(z))
            return z, ()
        _check_memory(self.config, memory)
        new = []
        for cell, state in zip(self.core, memory):
            z, cstate = cell(z, state)
            new.append((z, cstate))
        return z, tuple(new)

    def decode(self, z: jax.Array) -> jax.Array:
        """A core vector to ``(ny, nx, decoder_out)`` feature maps (padded grid, cropped)."""
        c = self.config
        h0, w0 = c.coarse_shape
        x = self.expand(z).reshape(h0, w0, c.channels[-1])
        for conv in self.decoder:
            x = jax.nn.gelu(conv(x))
        return x[: c.ny, : c.nx]

    def __call__(self, ctx, memory, base: jax.Array) -> tuple[jax.Array, tuple]:
        z, memory = self.advance(self.encode(encoder_inputs(ctx)), memory)
        dynamic, static = physics_inputs(ctx)
        hidden, out = self.head
        x = jax.nn.gelu(hidden(jnp.concatenate([self.decode(z), dynamic], axis=-1)) + self.head_static(static))
        return _output(out(x), base, ctx.fluid, self.config.offset), memory


class LocalNet(eqx.Module):
    """The local network (``size="local"``): the quick head's physics channels through a few 3x3 convolutions.

    No encoder, no pooling, no global state: the correction of a cell is a function of
    the fields in the 7 x 7 cells around it, the same function everywhere. A closure
    learned from a few dozen releases then learns how the coarse transport errs for a
    given local flow and plume, which every cell of every snapshot informs, not where the
    training releases were. With memory, every cell carries ``core_width`` channels,
    updated by a gate from the same features (a convolutional GRU without reset):
    ``h <- (1 - z) h + z tanh(c)``; the output reads the features computed with the state
    the step starts from. Channels-last inside; ``(ny, nx)`` fields in and out.

    The exchange network (``size="exchange"``) reads :func:`exchange_inputs` of the
    column's levels and returns ``2 (L - 1)`` raw channels (:meth:`raw`), which
    :mod:`plumecast.closure.exchange` turns into the step's vertical exchange; its state
    is kept as the invariant network's.

    The invariant network (``size="invariant"``) reads :func:`invariant_inputs` and keeps
    its state out of the features the gate reads: the output reads the features and the
    state the step starts from, and ``z, c`` depend on the present fields only, so
    ``dh_t / dh_(t-1) = 1 - z`` and the gradient through 1200 steps of memory cannot grow
    (with the state among the gate's inputs, training at a learning rate of 0.02 reached
    weights whose network gradients were NaN in every layer behind the output).
    """

    config: NetConfig = eqx.field(static=True)
    gate: Conv | None  # memory: the 1x1 convolution to the update gate z and the candidate c
    head: tuple[Conv, ...]  # LOCAL_DEPTH hidden 3x3 convolutions, then the 1x1 output

    def __init__(self, config: NetConfig, *, rng, dtype):
        self.config = config
        width, state = config.head_width, config.core_width if config.memory else 0
        # invariant, exchange: the state is read by the output only (class docstring)
        readout = state if config.size in READOUT_SIZES else 0
        inputs = {"invariant": INVARIANT_INPUTS, "exchange": exchange_input_count(config.column_levels)}.get(
            config.size, DYNAMIC_INPUTS + STATIC_INPUTS + state)
        outputs = 2 * (config.column_levels - 1) if config.size == "exchange" else 2 if config.offset else 1
        cin = (inputs,) + (width,) * (LOCAL_DEPTH - 1)
        hidden = tuple(Conv(a, width, 3, rng=rng, dtype=dtype) for a in cin)
        self.gate = Conv(width, 2 * state, 1, rng=rng, dtype=dtype) if config.memory else None
        self.head = hidden + (_zero_output(width + readout, outputs, 1, rng=rng, dtype=dtype),)

    def raw(self, x: jax.Array, memory, fluid: jax.Array) -> tuple[jax.Array, tuple]:
        """The output convolution's raw channels ``(ny, nx, k)`` from input channels ``x (ny, nx, c)``, next memory."""
        c = self.config
        if x.shape[:2] != (c.ny, c.nx):
            raise ValueError(f"the local network expects ({c.ny}, {c.nx}) fields, got {x.shape[:2]}")
        readout = c.memory and c.size in READOUT_SIZES
        if c.memory:
            _check_memory(c, memory)
            if not readout:
                x = jnp.concatenate([x, memory[0]], axis=-1)
        for conv in self.head[:-1]:
            x = jax.nn.gelu(conv(x))
        features = jnp.concatenate([x, memory[0]], axis=-1) if readout else x
        if c.memory:
            z, cand = jnp.split(self.gate(x), 2, axis=-1)
            z = jax.nn.sigmoid(z)
            memory = (((1 - z) * memory[0] + z * jnp.tanh(cand)) * fluid[..., None],)
        return self.head[-1](features), memory

    def __call__(self, ctx, memory, base: jax.Array) -> tuple[jax.Array, tuple]:
        c = self.config
        if c.size == "exchange":
            raise ValueError("the exchange network corrects the column's exchange, not a field: use raw()")
        x = invariant_inputs(ctx) if c.size == "invariant" else jnp.concatenate(physics_inputs(ctx), axis=-1)
        out, memory = self.raw(x, memory, ctx.fluid)
        return _output(out, base, ctx.fluid, c.offset), memory


class PaperNet(eqx.Module):
    """The paper's network (module docstring): pooled encoder, LSTM 4 x 128, decoder of all 4 states, residual head."""

    config: NetConfig = eqx.field(static=True)
    encoder: tuple[Conv, ...]  # two 3x3 convolutions per stage
    core: tuple  # LSTMCell (memory) or Dense (no memory) per layer
    expand: BlockTranspose  # the states of all core layers (one 1 x 1 map) to the coarsest map
    ups: tuple[BlockTranspose, ...]  # to the finer levels
    refine: tuple[Conv, ...]  # the residual convolution of each level
    head: tuple[Conv, Conv, Conv]  # two residual convolutions, the output

    def __init__(self, config: NetConfig, *, rng, dtype):
        self.config = config
        ch, width = config.channels, config.core_width
        self.encoder = tuple(Conv(a if i == 0 else b, b, 3, rng=rng, dtype=dtype, glorot=True)
                             for a, b in zip((ENCODER_INPUTS,) + ch[:-1], ch) for i in (0, 1))
        layer = LSTMCell if config.memory else Dense
        cin = (ch[-1],) + (width,) * (config.core_layers - 1)
        self.core = tuple(layer(a, width, rng=rng, dtype=dtype, glorot=True) for a in cin)
        dec = tuple(reversed(ch[1:])) + (config.decoder_out,)  # 128, 64, 32, 16
        ups = [BlockTranspose(a, b, w, rng=rng, dtype=dtype)
               for a, b, w in zip((width * config.core_layers,) + dec[:-1], dec, reversed(config.pool_windows))]
        self.expand, self.ups = ups[0], tuple(ups[1:])
        self.refine = tuple(Conv(b, b, 3, rng=rng, dtype=dtype, glorot=True) for b in dec)
        hin, hw = config.decoder_out + PAPER_HEAD_INPUTS, config.head_width
        self.head = (Conv(hin, hw, 3, rng=rng, dtype=dtype, glorot=True),
                     Conv(hw, hw, 3, rng=rng, dtype=dtype, glorot=True),
                     _zero_output(hw, 2 if config.offset else 1, 3, rng=rng, dtype=dtype))

    def encode(self, field: jax.Array, fluid: jax.Array) -> jax.Array:
        """A field ``(ny, nx)`` to one vector of 128: two convolutions and a max-pooling per stage."""
        x = jnp.stack(_standardised(field, fluid), axis=-1)
        for k, (wy, wx) in enumerate(self.config.pool_windows):
            x = _leaky(self.encoder[2 * k + 1](_leaky(self.encoder[2 * k](x))))
            h, w = x.shape[0] // wy, x.shape[1] // wx
            x = x[: h * wy, : w * wx].reshape(h, wy, w, wx, -1).max(axis=(1, 3))
        return x.reshape(-1)

    def advance(self, z: jax.Array, memory) -> tuple[jax.Array, tuple]:
        """The core: ``(outputs of all layers concatenated, next memory)``."""
        outs, new = [], []
        if self.config.memory:
            for cell, state in zip(self.core, memory):
                z, cstate = cell(z, state)
                outs.append(z)
                new.append((z, cstate))
        else:
            for layer in self.core:
                z = _leaky(layer(z))
                outs.append(z)
        return jnp.concatenate(outs), tuple(new)

    def decode(self, states: jax.Array) -> jax.Array:
        """The core layers' outputs (one vector) to ``(ny, nx, 16)`` feature maps."""
        shapes = self.config.level_shapes[-2::-1]  # the encoder's map before each pooling, coarsest first
        x = states.reshape(1, 1, -1)
        ups = (self.expand,) + self.ups
        for k, (up, conv, (h, w)) in enumerate(zip(ups, self.refine, shapes)):
            x = up(x)
            if k < len(ups) - 1:  # the code has no activation after the last one
                x = _leaky(x)
            x = jnp.pad(x, ((0, h - x.shape[0]), (0, w - x.shape[1]), (0, 0)), mode="edge")
            x = _leaky(conv(x)) + x
        return x

    def correct(self, features: jax.Array, ctx) -> jax.Array:
        """The head: decoder maps and the 10 physics channels to the raw output ``(ny, nx, 1 or 2)``."""
        physics = _standardised(ctx.q, ctx.fluid) + [ctx.u, ctx.v, ctx.w, ctx.dx_c, ctx.dy_c, ctx.source, ctx.fluid]
        x = jnp.concatenate([features, jnp.stack(physics, axis=-1)], axis=-1)
        first, second, out = self.head
        x = _leaky(first(x)) + jnp.pad(x, ((0, 0), (0, 0), (self.config.head_width - x.shape[-1], 0)))
        x = _leaky(second(x)) + x
        return out(x)

    def __call__(self, ctx, memory, base: jax.Array) -> tuple[jax.Array, tuple]:
        c = self.config
        if ctx.q.shape != (c.ny, c.nx):
            raise ValueError(f"closure expects fields of ({c.ny}, {c.nx}), got {ctx.q.shape}")
        _check_memory(c, memory)
        if c.memory:  # the paper's h_t: the LSTM has read the fields up to this step's start
            states = jnp.concatenate([h for h, _ in memory])
        else:
            states, _ = self.advance(self.encode(ctx.q, ctx.fluid), ())
        q_next = _output(self.correct(self.decode(states), ctx), base, ctx.fluid, c.offset)
        if c.memory:  # then the LSTM reads the field this step leaves
            _, memory = self.advance(self.encode(q_next, ctx.fluid), memory)
        return q_next, memory


class ClosureNet(eqx.Module):
    """The closure network of a :class:`NetConfig`: :class:`QuickNet`, :class:`PaperNet` or :class:`LocalNet` by size.

    ``net(ctx, memory, base) -> (q_next, memory)``: ``q_next`` is ``base`` (the field the
    step would keep) corrected on fluid cells (module docstring); ``init_memory(dtype)``
    the memory at t = 0 (``()`` without memory).
    """

    body: QuickNet | PaperNet | LocalNet

    def __init__(self, config: NetConfig, *, key, dtype=None):
        dtype = jnp.float32 if dtype is None else dtype
        body = PaperNet if config.size == "paper" else LocalNet if config.size in LOCAL_SIZES else QuickNet
        self.body = body(config, rng=rng_from_key(key), dtype=dtype)

    @property
    def config(self) -> NetConfig:
        return self.body.config

    @property
    def dtype(self):
        """The dtype of the network's arrays."""
        return self.body.head[-1].weight.dtype

    @property
    def expand(self):
        """The layer from the core's output to the coarsest map (quick: a Dense; paper: a transposed convolution).

        The local network has none.
        """
        return self.body.expand

    def init_memory(self, dtype=None) -> tuple:
        """Zero ``(h, c)`` per LSTM layer, or ``()`` without memory; ``dtype`` defaults to the network's."""
        return _init_memory(self.config, self.dtype if dtype is None else dtype)

    def __call__(self, ctx, memory, base: jax.Array) -> tuple[jax.Array, tuple]:
        """The corrected field ``(ny, nx)`` from ``base`` and the next memory."""
        return self.body(ctx, memory, base)
