"""Locating a static source from sensor readings: a library scan, a posterior over cells, gradient refinement.

Unknowns: the source's position on the plane (x, y; its height is one of a few given
classes, the plane height by default), its emission rate ``r`` (mass/s, constant) and its
start ``t_s`` (s since the run's t = 0; the source emits from ``t_s`` on).

**Noise model.** A reading ``y`` of a sensor with detection limit ``L`` whose true value
the model predicts as ``mu`` is log-normal around it with a heavy tail:
``log y = log mu + sigma e`` with ``e`` Student-t with ``tail`` degrees of freedom
(``tail = inf``: Gaussian), ``sigma^2 = noise^2 + model_error^2`` (the sensors' own
multiplicative noise and the model's error at a point, both as log standard deviations;
``model_error_by_age`` makes the latter a function of the time since the candidate's release).
Readings below ``L`` are censored: they only say ``y < L``, with probability
``Phi((log L - log mu) / sigma)``. A prediction is floored at ``1e-3 L`` so that a
candidate that puts nothing where a sensor reads something is very unlikely, not impossible.

**Candidates (the scan).** The model's response to a source of the reference rate
``rate_ref`` switched on at t = 0 is computed for every candidate (every fluid cell, or
a lattice of every ``stride``-th cell, at each height class) with the batched forward
model, keeping only the sensors' values at every model step (a scan that accumulates
``(steps, sensors)`` samples, so memory stays small whatever the grid). The model is
time-invariant for a static source in a steady flow (no closure reads the time), so the
response to a source starting at ``t_s`` is that response shifted by ``t_s``: one library
serves every start on a grid of ``start_points`` times in ``[0, t_first)`` (``t_first``:
the first reading above its limit; uniform prior). The rate is handled in closed form
around its maximum-likelihood value: ``log r_hat`` is the mean of ``log y - log g`` over the
detected readings (``g`` the library response), and the likelihood is summed over 13
offsets of ``log r`` within +-3 standard errors (``sigma / sqrt(n_detected)``) of it (a
log-uniform prior on the rate). For a linear model (physics, layered) scaling the
library by ``r / rate_ref`` is exact; for the memory hybrid it is the linearisation that
the refinement then corrects. The posterior over cells sums over starts, rates and heights.

**Refinement.** The ``refine`` best distinct cells of the scan are refined by gradient
descent (Adam, Optax) through the full differentiable model: continuous ``x, y`` (within
1.5 cells of the candidate; the source deposit is bilinear), ``log r`` and ``t_s`` (the
release a smooth ramp ``sigmoid((t - t_s) / dt)``), on the same likelihood.

**Estimate.** ``estimate="median"`` (the default): the point of the open plane whose
expected distance to the source under the posterior is least (the Bayes point for the
position error in metres: the geometric median, searched on a lattice of 5 x 5 points in
every fluid cell, so never in a solid), with the rate and start of the scan's best at the
nearest candidate cell. When one or two sensors see the plume the posterior is a long ridge
or a ring upstream of them and the likelihood's maximum sits at its near end (a near, weak,
late source); the median sits in its middle. ``"cell-median"``: the same among the centres
of the cells holding the posterior. Both medians were chosen over the refined point, and
the sub-cell one over the cell one, on the training and validation scenarios
(docs/locate.md). ``estimate="refined"``: the refined point of highest likelihood. The
median and the refined points are in the result.

**Credible region.** The smallest set of cells holding ``credible`` (90 %) of the
posterior over positions; its area in m^2. A region larger than ``flat_share`` of the
plane, or no reading above its detection limit, means the readings cannot locate a
source: the result says so (status ``cannot_locate``) with the reason.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from plumecast.locate.readings import LocateError, Readings
from plumecast.physics import operators as ops_
from plumecast.physics.model import Forcing
from plumecast.rollout import init_carry, rollout

__all__ = ["LocateSettings", "Library", "LocateResult", "candidates", "build_library", "locate", "default_limit"]

# Default detection limit: this share of the run's concentration scale c_ref (the 99th
# percentile of the training data's positive plane concentrations).
LIMIT_SHARE = 0.01
FLOOR_SHARE = 1e-3  # a prediction is floored at this share of the detection limit
RATE_OFFSETS = np.linspace(-3.0, 3.0, 13)  # log-rate offsets, in standard errors
LOG_RATE_SPAN = 9.2  # log-rate prior: rate_ref * exp(+-9.2), four decades either way
BOX_CELLS = 1.5  # the refinement keeps within this many cells of its candidate
# What `locate` reports as the source: "median", the point of the open plane (on a lattice of
# MEDIAN_SUBDIVISIONS^2 points per cell) whose expected distance to the source is least under
# the posterior; "cell-median", the same restricted to cell centres; rate and start: the scan's
# best at the nearest candidate cell. "refined": the gradient-refined point of highest
# likelihood (the scan's best cell without refinement).
ESTIMATES = ("median", "cell-median", "refined")
MEDIAN_SUBDIVISIONS = 5


@dataclass(frozen=True)
class LocateSettings:
    """How :func:`locate` searches (see the module docstring for the method)."""

    heights: tuple[float, ...] | None = None  # source height classes, m; None: the plane height
    detection_limit: float | None = None  # mass/m^3, for readings without their own; None: 1 % of c_ref
    noise: float = 0.1  # the sensors' multiplicative noise, log standard deviation
    model_error: float = 0.5  # the model's error at a point, log standard deviation
    # the model error by the time since the candidate's release: ((age_s, log sd), ...), linear between the ages and
    # constant beyond them; None: `model_error` at every age
    model_error_by_age: tuple[tuple[float, float], ...] | None = None
    tail: float = 4.0  # Student-t degrees of freedom of the log residual (inf: Gaussian)
    correlation_s: float = 60.0  # the model error's correlation time: a sensor's readings closer than this share weight
    stride: int = 1  # candidate lattice: every stride-th cell in x and y
    start_points: int = 32  # start times on the grid in [0, first detection)
    refine: int = 3  # candidates refined by gradients (0: none)
    estimate: str = "median"  # the estimate: the posterior's spatial median (sub-cell or "cell-median"), or the best refined point
    iterations: int = 30  # Adam steps per refined candidate
    learning_rate: float = 0.1
    credible: float = 0.9
    flat_share: float = 0.5  # a credible region above this share of the plane: cannot locate
    rate_ref: float = 1.0  # the library's source rate, mass/s
    batch: int = 32  # candidates per forward batch

    def __post_init__(self):
        def bad(msg):
            raise LocateError(msg)

        if self.heights is not None:
            if len(self.heights) == 0 or not all(math.isfinite(h) for h in self.heights):
                bad(f"heights must be finite numbers, got {self.heights}")
        if self.detection_limit is not None and not (math.isfinite(self.detection_limit) and self.detection_limit > 0):
            bad(f"the detection limit must be a positive number, got {self.detection_limit}")
        for name in ("noise", "model_error"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                bad(f"{name} must be a finite number >= 0, got {v}")
        if math.hypot(self.noise, self.model_error) <= 0:
            bad("noise and model_error cannot both be 0")
        if self.model_error_by_age is not None:
            table = np.asarray(self.model_error_by_age, float)
            if (table.ndim != 2 or table.shape[1] != 2 or len(table) == 0 or not np.isfinite(table).all()
                    or (table[:, 1] < 0).any() or (np.diff(table[:, 0]) <= 0).any()
                    or (self.noise <= 0 and (table[:, 1] <= 0).any())):
                bad("model_error_by_age must be (age_s, log sd) pairs with increasing ages and finite sds >= 0 (> 0 "
                    f"without noise), got {self.model_error_by_age}")
        if not (math.isfinite(self.correlation_s) and self.correlation_s >= 0):
            bad(f"correlation_s must be a finite number >= 0, got {self.correlation_s}")
        if not self.tail > 0:
            bad(f"tail (Student-t degrees of freedom) must be > 0, got {self.tail}")
        for name in ("stride", "start_points", "batch"):
            if int(getattr(self, name)) < 1:
                bad(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.estimate not in ESTIMATES:
            bad(f"estimate must be one of {', '.join(ESTIMATES)}, got {self.estimate!r}")
        if self.refine < 0 or self.iterations < 0:
            bad("refine and iterations must be >= 0")
        if not 0 < self.credible < 1:
            bad(f"credible must lie in (0, 1), got {self.credible}")
        if not 0 < self.flat_share <= 1:
            bad(f"flat_share must lie in (0, 1], got {self.flat_share}")
        if not (math.isfinite(self.rate_ref) and self.rate_ref > 0):
            bad(f"rate_ref must be > 0, got {self.rate_ref}")

    @property
    def sigma(self) -> float:
        """The total log sd at a typical age (``model_error``); sets the rate's search span."""
        return math.hypot(self.noise, self.model_error)

    def error_table(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ages_s, model error log sd)`` for :func:`_sigma_at`: the by-age table, or ``model_error`` at every age."""
        if self.model_error_by_age is None:
            return np.zeros(1), np.asarray([self.model_error], float)
        table = np.asarray(self.model_error_by_age, float)
        return table[:, 0], table[:, 1]


def _sigma_at(age_s, noise, ages_s, errors):
    """The log sd of a reading ``age_s`` seconds after the candidate's release: noise and the model error there."""
    e = jnp.interp(age_s, ages_s, errors)
    return jnp.sqrt(noise * noise + e * e)


def default_limit(model) -> float:
    """The default detection limit of a model: 1 % of its concentration scale (mass/m^3)."""
    return LIMIT_SHARE * float(model.config.c_ref)


# ---------------------------------------------------------------------------------- library
def candidates(model, heights, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``(xyz (C, 3), cells (C, 2))``: fluid cell centres on a lattice of ``stride``, at each height (height-major)."""
    c = model.config
    fluid = np.asarray(model.fluid) > 0
    jj, ii = np.nonzero(fluid)
    keep = (jj % stride == stride // 2) & (ii % stride == stride // 2)
    jj, ii = jj[keep], ii[keep]
    if jj.size == 0:
        raise LocateError(f"no fluid cell on the candidate lattice of stride {stride}")
    xyz, cells = [], []
    for z in heights:
        xyz.append(np.stack([c.x0 + ii * c.dx, c.y0 + jj * c.dy, np.full(jj.shape, float(z))], axis=1))
        cells.append(np.stack([jj, ii], axis=1))
    return np.concatenate(xyz), np.concatenate(cells)


def sensor_weights(model, sensor_xy) -> jax.Array:
    """``(K, ny * nx)``: a sensor's concentration (mass/m^3) per unit of the state, bilinear over fluid cells."""
    c = model.config
    fluid = jax.lax.stop_gradient(model.fluid)
    g = model.observation_factor() * c.c_ref
    rows = [(ops_.deposit_weights(jnp.asarray(x, c.jdtype), jnp.asarray(y, c.jdtype), fluid, c.x0, c.y0, c.dx, c.dy)
             * g).reshape(-1) for x, y in np.asarray(sensor_xy, float)]
    return jax.lax.stop_gradient(jnp.stack(rows).astype(c.jdtype))


def _simulate(model, closure, weights, x, y, z, rate, n_steps: int):
    """Sensor values ``(n_steps + 1, K)`` at the model steps ``0, dt, ...`` of one source (per-step ``rate``)."""
    c = model.config
    t = c.dt * jnp.arange(n_steps, dtype=c.jdtype)
    full = lambda v: jnp.full((n_steps,), v, c.jdtype)  # noqa: E731
    f = Forcing(t, full(x), full(y), full(z), jnp.asarray(rate, c.jdtype))
    q0 = jnp.zeros(c.shape, c.jdtype)
    _, s = rollout(model, closure, init_carry(closure, q0), f, steps_per_frame=1,
                   hook=lambda carry, _: weights @ carry[0].reshape(-1))
    return jnp.concatenate([jnp.zeros((1, weights.shape[0]), s.dtype), s], axis=0)


@eqx.filter_jit
def _responses(model, closure, weights, xyz, rate, n_steps: int):
    """Library rows ``(B, n_steps + 1, K)`` of a batch of candidates ``xyz (B, 3)`` at a constant ``rate`` from t = 0."""
    rates = jnp.full((n_steps,), rate, model.config.jdtype)
    return jax.vmap(lambda p: _simulate(model, closure, weights, p[0], p[1], p[2], rates, n_steps))(xyz)


@dataclass
class Library:
    """The scan's forward responses: sensors' values at every model step for every candidate.

    ``responses (C, n_steps + 1, K)``: concentration (mass/m^3) at ``sensor_xy`` (K, 2)
    at times ``k dt`` after a source of ``rate_ref`` at ``xyz[c]`` switched on at 0.
    Independent of the readings' values: one library serves every case with the same
    sensors (a building's fixed layout: computed once, offline).
    """

    xyz: np.ndarray
    cells: np.ndarray
    heights: tuple[float, ...]
    stride: int
    sensor_xy: np.ndarray
    responses: np.ndarray
    dt: float
    rate_ref: float
    seconds: float = 0.0

    @property
    def n_steps(self) -> int:
        return self.responses.shape[1] - 1

    def rows(self, sensor_xy) -> np.ndarray | None:
        """The library's sensor index of each of ``sensor_xy``, or None when one is missing."""
        out = []
        for p in np.asarray(sensor_xy, float):
            d = np.abs(self.sensor_xy - p[None]).max(axis=1)
            k = int(np.argmin(d)) if d.size else -1
            if k < 0 or d[k] > 1e-6:
                return None
            out.append(k)
        return np.asarray(out, int)


def build_library(system, sensor_xy, *, heights, n_steps: int, rate_ref: float = 1.0, stride: int = 1, batch: int = 32,
                  progress=None) -> Library:
    """The scan's responses for every candidate (see :class:`Library`); ``progress(done, total)`` after each batch."""
    model, closure = system
    start = time.perf_counter()
    xyz, cells = candidates(model, heights, stride)
    weights = sensor_weights(model, sensor_xy)
    dtype = model.config.jdtype
    n = len(xyz)
    batch = max(1, min(int(batch), n))
    out = np.zeros((n, n_steps + 1, len(sensor_xy)), np.float32)
    for s in range(0, n, batch):
        idx = np.resize(np.arange(s, min(s + batch, n)), batch)
        r = _responses(model, closure, weights, jnp.asarray(xyz[idx], dtype), float(rate_ref), int(n_steps))
        k = min(batch, n - s)
        out[s : s + k] = np.asarray(r)[:k]
        if progress is not None:
            progress(s + k, n)
    if not np.isfinite(out).all():
        raise LocateError("the model's forecast of a candidate source is not finite")
    return Library(xyz, cells, tuple(float(h) for h in heights), int(stride), np.asarray(sensor_xy, float), out,
                   float(model.config.dt), float(rate_ref), time.perf_counter() - start)


# ---------------------------------------------------------------------------------- likelihood
def reading_weights(readings: Readings, correlation_s: float) -> np.ndarray:
    """Weight of each reading in the (composite) log-likelihood.

    The model's error at a sensor changes slowly (on paper-room the layered run's log
    error at one point correlates at 0.97 10 s apart, 0.83 at 30 s, 0.53 at 60 s), so a
    sensor's readings are not independent pieces of evidence: the ``n`` readings of a
    sensor spanning ``T`` seconds count as ``min(n, 1 + T / correlation_s)`` independent
    ones, shared equally. Without this, 12 readings of one sensor would count as 12 and
    the posterior would be far too sharp. ``correlation_s = 0``: every reading counts fully.
    """
    w = np.ones(len(readings.time))
    if correlation_s <= 0:
        return w
    for k in range(readings.n_sensors):
        m = readings.sensor == k
        n = int(m.sum())
        if n:
            span = float(np.ptp(readings.time[m]))
            w[m] = min(float(n), 1.0 + span / correlation_s) / n
    return w


def _loglik_terms(logmu, logy, detected, loglimit, sigma, tail):
    """Per-reading log-likelihood (constants common to all candidates dropped; ``sigma`` may vary by reading)."""
    z = (logy - logmu) / sigma
    if math.isinf(tail):
        det = -0.5 * z * z - jnp.log(sigma)
    else:
        det = -0.5 * (tail + 1.0) * jnp.log1p(z * z / tail) - jnp.log(sigma)
    cens = jax.scipy.special.log_ndtr((loglimit - logmu) / sigma)
    return jnp.where(detected, det, cens)


@eqx.filter_jit
def _grid_chunk(G, flat_idx, frac, valid, logy, detected, loglimit, floor, weight, offsets, sigma, tail: float,
                n_sensors: int):
    """For a chunk of candidates ``G (B, n+1, K)``: the log-likelihood summed over the rate offsets ``(B, S)``
    and the rate at its best offset ``(B, S)`` (log, relative to the library's rate). ``sigma (R, S)``: each
    reading's log sd for each start."""
    B = G.shape[0]
    Gf = G.reshape(B, -1)
    g = (1.0 - frac) * Gf[:, flat_idx] + frac * Gf[:, flat_idx + n_sensors]  # (B, R, S)
    g = jnp.where(valid, g, 0.0)
    lg = jnp.log(g + floor[None, :, None])
    wd = jnp.where(detected, weight, 0.0)[None, :, None]
    lr0 = jnp.sum(wd * (logy[None, :, None] - lg), axis=1) / jnp.maximum(jnp.sum(wd), 1e-12)  # (B, S)
    lr0 = jnp.clip(lr0, -LOG_RATE_SPAN, LOG_RATE_SPAN)
    lr = lr0[..., None] + offsets  # (B, S, M)
    logmu = lg[..., None] + lr[:, None]  # (B, R, S, M)
    ll = jnp.sum(weight[None, :, None, None] * _loglik_terms(logmu, logy[None, :, None, None],
                                                             detected[None, :, None, None],
                                                             loglimit[None, :, None, None], sigma[None, :, :, None],
                                                             tail), axis=1)
    best = jnp.take_along_axis(lr, jnp.argmax(ll, axis=-1)[..., None], axis=-1)[..., 0]
    return jax.scipy.special.logsumexp(ll, axis=-1), best


def _time_index(times, starts, dt: float, n_steps: int, rows, n_sensors: int):
    """Gather indices of the library at ``times - starts``: ``(flat (R, S), frac (R, S), valid (R, S))``."""
    tau = times[:, None] - starts[None, :]
    valid = tau > 0
    pos = np.clip(tau / dt, 0.0, n_steps - 1e-6)
    k = np.floor(pos).astype(int)
    frac = pos - k
    flat = k * n_sensors + rows[:, None]
    return flat, frac, valid


# ---------------------------------------------------------------------------------- refinement
@eqx.filter_jit
def _refine(model, closure, weights, init, anchors, z, t_hi, times, rows, logy, detected, loglimit, floor, weight,
            noise, ages, errors, tail: float, n_steps: int, iterations: int, learning_rate: float):
    """Adam on ``(a_x, a_y, log r, b)`` of each candidate (vmapped); returns ``(best params, best loss, first loss)``."""
    import optax

    c = model.config
    box = BOX_CELLS * jnp.asarray([c.dx, c.dy], c.jdtype)
    mid = c.dt * (jnp.arange(n_steps, dtype=c.jdtype) + 0.5)
    pos = jnp.clip(times / c.dt, 0.0, n_steps - 1e-6)
    k = jnp.floor(pos).astype(jnp.int32)
    frac = pos - k

    def unpack(p, anchor):
        xy = anchor + box * jnp.tanh(p[:2])
        return xy, p[2], t_hi * jax.nn.sigmoid(p[3])

    def loss(p, anchor, zz):
        xy, logr, ts = unpack(p, anchor)
        rate = jnp.exp(logr) * jax.nn.sigmoid((mid - ts) / c.dt)
        s = _simulate(model, closure, weights, xy[0], xy[1], zz, rate, n_steps)
        mu = (1.0 - frac) * s[k, rows] + frac * s[k + 1, rows]
        logmu = jnp.log(jnp.maximum(mu, 0.0) + floor)
        sigma = _sigma_at(times - ts, noise, ages, errors)
        return -jnp.sum(weight * _loglik_terms(logmu, logy, detected, loglimit, sigma, tail))

    opt = optax.adam(learning_rate)
    grad = jax.value_and_grad(loss)

    def one(p0, anchor, zz):
        state = opt.init(p0)

        def body(carry, _):
            p, st, best_p, best_l = carry
            value, g = grad(p, anchor, zz)
            g = jnp.where(jnp.isfinite(g), g, 0.0)
            better = value < best_l
            best_p = jnp.where(better, p, best_p)
            best_l = jnp.where(better, value, best_l)
            upd, st = opt.update(g, st, p)
            return (optax.apply_updates(p, upd), st, best_p, best_l), value

        (p, _, best_p, best_l), values = jax.lax.scan(body, (p0, state, p0, jnp.asarray(jnp.inf, p0.dtype)), None,
                                                      length=iterations)
        last = loss(p, anchor, zz)
        better = last < best_l
        best_p = jnp.where(better, p, best_p)
        best_l = jnp.where(better, last, best_l)
        xy, logr, ts = unpack(best_p, anchor)
        first = values[0] if iterations > 0 else last
        return jnp.concatenate([xy, jnp.stack([logr, ts])]), best_l, first

    return jax.vmap(one)(init, anchors, z)


# ---------------------------------------------------------------------------------- result
@dataclass
class LocateResult:
    """What :func:`locate` found (``status`` ``located`` or ``cannot_locate``, with ``reason``)."""

    status: str
    reason: str
    estimate: dict | None
    scan_estimate: dict | None
    posterior_mean: dict | None
    posterior_median: dict | None  # the point nearest the source in expectation (the estimate chosen: sub-cell or cell)
    credible: dict | None
    posterior: np.ndarray | None  # (ny, nx) posterior over positions (sums to 1 over cells)
    region: np.ndarray | None  # (ny, nx) bool: the credible region
    start_interval_s: tuple[float, float] | None
    sensors: list[dict]
    noise_model: dict
    search: dict
    refined: list[dict]
    timings: dict
    warnings: list[str] = field(default_factory=list)

    @property
    def located(self) -> bool:
        return self.status == "located"

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("posterior")
        d.pop("region")
        if self.posterior is not None:
            d["posterior_map"] = np.round(self.posterior, 8).tolist()
            d["region_map"] = self.region.astype(int).tolist()
        return d

    def contains(self, model, x: float, y: float) -> bool:
        """Whether the point ``(x, y)`` lies in a cell of the credible region (False without a region)."""
        if self.region is None:
            return False
        c = model.config
        i = int(np.clip(np.floor((x - c.x0) / c.dx + 0.5), 0, c.nx - 1))
        j = int(np.clip(np.floor((y - c.y0) / c.dy + 0.5), 0, c.ny - 1))
        return bool(self.region[j, i])


def spatial_median(post: np.ndarray, xs: np.ndarray, ys: np.ndarray, mass: float = 0.999,
                   fluid: np.ndarray | None = None, subdivisions: int = 1, chunk: int = 4096) -> dict:
    """The point whose expected distance to the source under ``post`` (ny, nx) is least.

    It minimises the posterior's mean position error in metres (the geometric median). The
    weights are the fewest cells holding ``mass`` of the posterior, at their centres, so the
    distance matrix stays small on large grids. ``subdivisions == 1``: the best of those
    cells' centres. ``subdivisions = s > 1``: the best of an s x s lattice of points inside
    every ``fluid`` cell (the whole open plane at 1 / s of a cell, never in a solid,
    as the posterior mean can be), since the continuous median falls between
    centres and, for a ring-shaped posterior, in cells of little mass. Returns the position,
    the expected error and the row and column of the cell holding the point.
    """
    flat = post.ravel()
    order = np.argsort(flat)[::-1]
    n = int(np.searchsorted(np.cumsum(flat[order]), mass * flat.sum()) + 1)
    keep = order[:n]
    j, i = np.unravel_index(keep, post.shape)
    x, y, w = xs[i], ys[j], flat[keep]
    if subdivisions == 1:
        cx, cy, cj, ci = x, y, j, i
    else:
        if fluid is None:
            raise ValueError("a sub-cell median needs the fluid mask")
        dx = float(xs[1] - xs[0]) if len(xs) > 1 else 1.0
        dy = float(ys[1] - ys[0]) if len(ys) > 1 else 1.0
        frac = (np.arange(subdivisions) + 0.5) / subdivisions - 0.5
        fj, fi = np.nonzero(fluid)
        ox, oy = np.meshgrid(frac * dx, frac * dy)
        cx = (xs[fi][:, None] + ox.ravel()[None, :]).ravel()
        cy = (ys[fj][:, None] + oy.ravel()[None, :]).ravel()
        cj, ci = np.repeat(fj, subdivisions ** 2), np.repeat(fi, subdivisions ** 2)
    expected = np.concatenate([np.hypot(cx[a:a + chunk, None] - x[None, :], cy[a:a + chunk, None] - y[None, :]) @ w
                               for a in range(0, len(cx), chunk)])
    k = int(np.argmin(expected))
    return {"x_m": float(cx[k]), "y_m": float(cy[k]), "expected_error_m": float(expected[k] / w.sum()),
            "row": int(cj[k]), "column": int(ci[k])}


def _sensor_table(readings: Readings) -> list[dict]:
    out = []
    for k, sid in enumerate(readings.sensor_ids):
        m = readings.sensor == k
        det = readings.value[m] >= readings.limit[m]
        out.append({"sensor_id": sid, "x_m": float(readings.sensor_xy[k, 0]), "y_m": float(readings.sensor_xy[k, 1]),
                    "readings": int(m.sum()), "above_limit": int(det.sum()),
                    "max_value": float(readings.value[m].max()) if m.any() else None,
                    "first_above_limit_s": float(readings.time[m][det].min()) if det.any() else None})
    return out


def _point(x, y, z, rate, start) -> dict:
    return {"x_m": float(x), "y_m": float(y), "z_m": float(z), "rate": None if rate is None else float(rate),
            "start_s": None if start is None else float(start)}


def locate(system, readings: Readings, settings: LocateSettings | None = None, *, library: Library | None = None,
           progress=None) -> LocateResult:
    """Locate a static source from ``readings`` (already checked with :func:`check_readings`).

    ``library`` (from :func:`build_library` with the readings' sensors among its own and a
    long enough span) is reused; without one the scan computes it. Readings whose
    detection limit is missing get ``settings.detection_limit`` (default: 1 % of the
    model's concentration scale).
    """
    settings = settings or LocateSettings()
    model, closure = system
    c = model.config
    t_start = time.perf_counter()
    limit = settings.detection_limit if settings.detection_limit is not None else default_limit(model)
    readings = readings.with_limit(limit)
    heights = settings.heights if settings.heights is not None else (float(c.plane_height_m),)
    sigma, tail = settings.sigma, float(settings.tail)
    ages, errors = settings.error_table()
    detected = readings.value >= readings.limit
    noise_model = {"kind": "log-normal, Student-t tail" if math.isfinite(tail) else "log-normal",
                   "noise_log_sd": settings.noise, "model_error_log_sd": settings.model_error, "sigma": sigma,
                   "model_error_by_age": None if settings.model_error_by_age is None else
                   [list(map(float, p)) for p in settings.model_error_by_age],
                   "tail_dof": None if math.isinf(tail) else tail, "detection_limit": float(limit),
                   "censored_below_limit": True, "floor_share_of_limit": FLOOR_SHARE}
    noise_model["correlation_s"] = settings.correlation_s
    search = {"heights_m": list(heights), "stride": settings.stride, "start_points": settings.start_points,
              "refine": settings.refine, "iterations": settings.iterations, "rate_ref": settings.rate_ref,
              "estimate": settings.estimate}
    sensors = _sensor_table(readings)

    def cannot(reason, **extra):
        timings = {"total_s": time.perf_counter() - t_start, **extra.pop("timings", {})}
        return LocateResult("cannot_locate", reason, None, None, None, None, extra.get("credible"), extra.get("posterior"),
                            extra.get("region"), None, sensors, noise_model, search, [], timings)

    if not detected.any():
        return cannot(f"no reading is above its detection limit ({len(readings.value)} readings of "
                      f"{readings.n_sensors} sensors, limit {limit:.3g}): nothing to locate from")
    t_first = float(readings.time[detected].min())
    t_last = float(readings.time.max())
    n_steps = max(1, int(math.ceil(t_last / c.dt - 1e-9)) + 1)
    rows = None
    if library is not None:
        rows = library.rows(readings.sensor_xy)
        if (rows is None or library.n_steps < n_steps or library.heights != tuple(heights)
                or library.stride != settings.stride or library.rate_ref != settings.rate_ref):
            library, rows = None, None
    if library is None:
        library = build_library(system, readings.sensor_xy, heights=heights, n_steps=n_steps,
                                rate_ref=settings.rate_ref, stride=settings.stride, batch=settings.batch,
                                progress=progress)
        rows = np.arange(readings.n_sensors)
        library_s = library.seconds
    else:
        library_s = 0.0
    t_grid = time.perf_counter()

    # ---- the scan: a posterior over (candidate, start), rate summed out
    n_starts = settings.start_points
    starts = np.linspace(0.0, t_first, n_starts, endpoint=False) if t_first > 0 else np.zeros(1)
    K = library.responses.shape[2]
    flat, frac, valid = _time_index(readings.time, starts, library.dt, library.n_steps, rows[readings.sensor], K)
    dtype = np.float32
    logy = np.log(np.maximum(readings.value, 1e-30)).astype(dtype)
    loglimit = np.log(readings.limit).astype(dtype)
    floor = (FLOOR_SHARE * readings.limit).astype(dtype)
    weight = reading_weights(readings, settings.correlation_s).astype(dtype)
    n_eff = float(weight[detected].sum())
    offsets = (RATE_OFFSETS * sigma / math.sqrt(max(n_eff, 1e-3))).astype(dtype)
    sigma_rs = np.asarray(_sigma_at(jnp.asarray(readings.time[:, None] - starts[None, :], dtype), settings.noise,
                                    jnp.asarray(ages, dtype), jnp.asarray(errors, dtype)), dtype)  # (R, S)
    C = len(library.xyz)
    ll = np.empty((C, len(starts)), np.float64)
    lrate = np.empty((C, len(starts)), np.float64)
    chunk = 64
    for s in range(0, C, chunk):
        idx = np.resize(np.arange(s, min(s + chunk, C)), chunk)
        a, b = _grid_chunk(jnp.asarray(library.responses[idx]), jnp.asarray(flat), jnp.asarray(frac, dtype),
                           jnp.asarray(valid), jnp.asarray(logy), jnp.asarray(detected), jnp.asarray(loglimit),
                           jnp.asarray(floor), jnp.asarray(weight), jnp.asarray(offsets), jnp.asarray(sigma_rs), tail, K)
        k = min(chunk, C - s)
        ll[s : s + k] = np.asarray(a, np.float64)[:k]
        lrate[s : s + k] = np.asarray(b, np.float64)[:k]
    if not np.isfinite(ll).any():
        return cannot("the likelihood is not finite for any candidate", timings={"library_s": library_s})
    ll = np.where(np.isfinite(ll), ll, -np.inf)
    joint = np.exp(ll - ll.max())
    joint /= joint.sum()
    per_cand = joint.sum(axis=1)
    post = np.zeros(c.shape)
    np.add.at(post, (library.cells[:, 0], library.cells[:, 1]), per_cand)
    # the credible region: the smallest set of candidate cells holding `credible` of the posterior
    order = np.argsort(post.ravel())[::-1]
    cum = np.cumsum(post.ravel()[order])
    n_in = int(np.searchsorted(cum, settings.credible - 1e-12) + 1)
    region = np.zeros(c.ny * c.nx, bool)
    region[order[:n_in]] = True
    region = region.reshape(c.shape)
    cell_area = c.dx * c.dy * settings.stride ** 2
    n_cand_cells = len(np.unique(library.cells, axis=0))
    area = n_in * cell_area
    share = n_in / n_cand_cells
    credible = {"level": settings.credible, "area_m2": float(area), "cells": n_in, "share_of_plane": float(share)}
    # start interval (5 % - 95 % of the start's marginal)
    per_start = joint.sum(axis=0)
    cs = np.cumsum(per_start)
    start_interval = (float(starts[min(np.searchsorted(cs, 0.05), len(starts) - 1)]),
                      float(starts[min(np.searchsorted(cs, 0.95), len(starts) - 1)]))
    ys, xs = c.y0 + np.arange(c.ny) * c.dy, c.x0 + np.arange(c.nx) * c.dx
    mean = {"x_m": float((post.sum(axis=0) * xs).sum()), "y_m": float((post.sum(axis=1) * ys).sum())}
    median = spatial_median(post, xs, ys, fluid=np.asarray(model.fluid) > 0,
                            subdivisions=1 if settings.estimate == "cell-median" else MEDIAN_SUBDIVISIONS)
    # rate and start at the median: the scan's best at the candidate cell nearest to it
    near = np.argmin(np.abs(library.cells - [median["row"], median["column"]]).sum(axis=1))
    at_median = np.flatnonzero((library.cells == library.cells[near]).all(axis=1))
    mc, ms = np.unravel_index(int(np.argmax(ll[at_median])), (len(at_median), ll.shape[1]))
    mc = at_median[mc]
    median.update(_point(median["x_m"], median["y_m"], library.xyz[mc, 2],
                         settings.rate_ref * math.exp(lrate[mc, ms]), starts[ms]))
    best_c, best_s = np.unravel_index(int(np.argmax(ll)), ll.shape)
    scan = _point(*library.xyz[best_c], settings.rate_ref * math.exp(lrate[best_c, best_s]), starts[best_s])
    grid_s = time.perf_counter() - t_grid
    timings = {"library_s": library_s, "scan_s": grid_s}
    if share > settings.flat_share:
        return cannot(f"the readings carry too little information: the {settings.credible:.0%} credible region covers "
                      f"{share:.0%} of the plane ({area:.1f} m^2); sensors upstream of the source or too few readings "
                      "above the limit", credible=credible, posterior=post, region=region, timings=timings)

    # ---- refinement by gradients from the best distinct candidates
    t_ref = time.perf_counter()
    refined = []
    best_refined = dict(scan)
    if settings.refine > 0 and settings.iterations > 0:
        picks = []
        for cand in np.argsort(ll.max(axis=1))[::-1]:
            if len(picks) == settings.refine:
                break
            if all(np.abs(library.cells[cand] - library.cells[p]).max() >= 2 or library.xyz[cand, 2] != library.xyz[p, 2]
                   for p in picks):
                picks.append(int(cand))
        picks = np.asarray(picks)
        sb = np.argmax(ll[picks], axis=1)
        t_hi = max(t_first, c.dt)
        frac0 = np.clip(starts[sb] / t_hi, 0.02, 0.98)
        init = np.stack([np.full(len(picks), 0.01), np.full(len(picks), 0.01),
                         np.log(settings.rate_ref) + lrate[picks, sb], np.log(frac0) - np.log1p(-frac0)], axis=1)
        weights = sensor_weights(model, readings.sensor_xy)
        jd = c.jdtype
        p, best_l, first_l = _refine(
            model, closure, weights, jnp.asarray(init, jd), jnp.asarray(library.xyz[picks, :2], jd),
            jnp.asarray(library.xyz[picks, 2], jd), jnp.asarray(t_hi, jd), jnp.asarray(readings.time, jd),
            jnp.asarray(readings.sensor), jnp.asarray(logy), jnp.asarray(detected), jnp.asarray(loglimit),
            jnp.asarray(floor), jnp.asarray(weight), jnp.asarray(settings.noise, jd), jnp.asarray(ages, jd),
            jnp.asarray(errors, jd), tail, library.n_steps, int(settings.iterations),
            float(settings.learning_rate))
        p, best_l, first_l = np.asarray(p, float), np.asarray(best_l, float), np.asarray(first_l, float)
        for q, cand, bl, fl in zip(p, picks, best_l, first_l):
            refined.append({"from": _point(*library.xyz[cand], None, None), **_point(q[0], q[1], library.xyz[cand, 2],
                            math.exp(q[2]), q[3]), "neg_log_lik_start": float(fl), "neg_log_lik": float(bl)})
        ok = [r for r in refined if math.isfinite(r["neg_log_lik"])]
        if ok:
            best = min(ok, key=lambda r: r["neg_log_lik"])
            best_refined = {k: best[k] for k in ("x_m", "y_m", "z_m", "rate", "start_s")}
    estimate = best_refined if settings.estimate == "refined" else {k: median[k] for k in best_refined}
    timings.update({"refine_s": time.perf_counter() - t_ref, "total_s": time.perf_counter() - t_start})
    return LocateResult("located", "", estimate, scan, mean, median, credible, post, region, start_interval, sensors,
                        noise_model, search, refined, timings)
