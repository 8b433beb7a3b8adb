"""A dataset laid out for rollouts: per-scenario fields and the per-step forcing.

The dataset's snapshot interval must be a whole number of model steps; each scenario's
source track becomes one :class:`~plumecast.physics.model.Forcing` entry per step
(:func:`plumecast.rollout.track_at_steps`), and every step's source must land on
fluid cells of the plane, or its emission would silently vanish.

**Eager or lazy.** By default the concentration, the one large variable (scenario x time
x y x x), is an array in memory. With ``lazy=True`` it stays in the file
(:class:`LazyConcentration`, read through :func:`plumecast.io.dataset.open_dataset_lazy`):
``prep.conc[idx, a:b]`` reads just those scenarios and snapshots, so training and
evaluation hold one batch or one chunk of scenarios at a time; the source tracks, the
per-step forcing and the plane fields stay in memory (they are small). Both give the
same numbers: a lazy read is the same float32 values, divided by the same scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from plumecast.errors import TrainError
from plumecast.physics.model import Forcing
from plumecast.rollout import track_at_steps

__all__ = ["PreparedData", "LazyConcentration", "prepare_data", "time_layout", "concentration_scale_of"]


@dataclass
class PreparedData:
    """A dataset laid out for rollouts: per-scenario fields and per-step forcing."""

    names: list[str]
    splits: list[str]
    times: np.ndarray  # snapshot times, s
    conc: np.ndarray | LazyConcentration  # (n, T, ny, nx) concentration, mass/m^3 (lazy: read by index)
    forcing: Forcing  # numpy fields of shape (n, n_steps)
    steps_per_snapshot: int
    n_steps: int

    def indices(self, split: str) -> np.ndarray:
        return np.array([i for i, s in enumerate(self.splits) if s == split], dtype=int)

    def index(self, name: str) -> int:
        if name not in self.names:
            shown = ", ".join(self.names[:8]) + (" ..." if len(self.names) > 8 else "")
            raise TrainError(f"no scenario {name!r} in the dataset (scenarios: {shown})")
        return self.names.index(name)


class LazyConcentration:
    """A dataset's concentration ``(n, T, ny, nx)`` left in its file, read by index as numpy ``float32``.

    ``conc[idx, a:b]``, ``conc[idx, 0]``, ``conc[i]``: the first index picks scenarios (an
    integer, a slice, or integer indices in any order, repeats allowed), the others are
    integers or slices of time, y and x; only that block is read (each scenario once,
    in file order). ``conc / c`` is a view whose reads are divided by ``c``, the same
    float32 division the eager path applies to the whole array. Turning the whole thing
    into one array (``np.asarray(conc)``) is refused: that is the eager path's job.
    """

    def __init__(self, array, divisors: tuple[float, ...] = ()):
        self._array = array  # a lazily indexed xarray DataArray (scenario, time, y, x)
        self._divisors = tuple(divisors)
        self.shape = tuple(int(n) for n in array.shape)
        self.ndim = len(self.shape)
        self.dtype = np.dtype(np.float32)
        self._scales: dict = {}  # concentration_scale_of results (each costs two passes over the data)

    def __len__(self) -> int:
        return self.shape[0]

    def __truediv__(self, divisor) -> "LazyConcentration":
        return LazyConcentration(self._array, self._divisors + (divisor,))

    def __array__(self, *args, **kwargs):
        raise TypeError("a lazy concentration is read by index (conc[idx, a:b]), never whole; use eager loading to "
                        "hold it in memory")

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        first, rest = key[0], key[1:]
        for k in rest:
            if not isinstance(k, (int, np.integer, slice)):
                raise TypeError(f"a lazy concentration takes integers or slices after the scenario index, got {k!r}")
        if isinstance(first, (int, np.integer)):
            return self._read(np.asarray([first]), rest)[0]
        scenarios = np.arange(self.shape[0])[first]  # a slice, a list or an array of indices, as numpy reads it
        unique, inverse = np.unique(scenarios, return_inverse=True)
        block = self._read(unique, rest)
        return block if unique.size == scenarios.size and (unique == scenarios).all() else block[inverse]

    def _read(self, scenarios: np.ndarray, rest: tuple):
        """The block of sorted, distinct ``scenarios`` (and ``rest``), read from the file and scaled."""
        values = np.asarray(self._array[(scenarios,) + rest].values, np.float32)
        for d in self._divisors:
            values = values / d
        return values


def time_layout(times: np.ndarray, dt: float) -> tuple[int, int]:
    """``(model steps per snapshot, model steps in all)`` of uniformly spaced snapshot times."""
    if len(times) < 2:
        raise TrainError("the dataset needs at least two snapshots (the initial field and one more)")
    gaps = np.diff(times)
    interval = float(gaps[0])
    if not np.allclose(gaps, interval, rtol=1e-6, atol=1e-9):
        raise TrainError("snapshot times must be uniformly spaced")
    spf = interval / dt
    if not math.isclose(spf, round(spf), rel_tol=0, abs_tol=1e-6) or round(spf) < 1:
        raise TrainError(f"snapshot interval {interval:g} s is not a whole number of {dt:g} s model steps")
    spf = int(round(spf))
    return spf, spf * (len(times) - 1)


def prepare_data(ds, dt: float, dtype: str = "float32", fluid=None, lazy: bool = False) -> PreparedData:
    """Check a dataset against the model's time step and build the per-step forcing.

    ``lazy``: leave the concentration in ``ds``'s file (a :class:`LazyConcentration`; open
    ``ds`` with :func:`plumecast.io.dataset.open_dataset_lazy` so that nothing else holds
    it either) instead of one array in memory.
    """
    times = np.asarray(ds["time"].values, float)
    spf, n_steps = time_layout(times, dt)
    names = [str(s) for s in ds["scenario"].values]
    splits = [str(s) for s in ds["split"].values]
    track = {k: np.asarray(ds[f"source_{k}"].values, float) for k in ("x", "y", "z", "rate")}
    per = [Forcing(*track_at_steps(times, track["x"][i], track["y"][i], track["z"][i], track["rate"][i], dt=dt,
                                   n_steps=n_steps, t0=float(times[0])))
           for i in range(len(names))]
    forcing = Forcing(*(np.stack([getattr(f, k) for f in per]).astype(dtype) for k in ("t", "x", "y", "z", "rate")))
    fluid = np.asarray(ds["fluid"].values, float) if fluid is None else np.asarray(fluid, float)
    x0, y0 = float(ds["x"].values[0]), float(ds["y"].values[0])
    dx, dy = float(ds.attrs["dx_m"]), float(ds.attrs["dy_m"])
    ny, nx = fluid.shape
    for i, name in enumerate(names):
        xs, ys = np.asarray(per[i].x), np.asarray(per[i].y)
        outside = np.flatnonzero((np.asarray(per[i].rate) > 0)
                                 & ((np.abs(xs - (x0 + dx * (nx - 1) / 2)) > dx * nx / 2 + 1e-9)
                                    | (np.abs(ys - (y0 + dy * (ny - 1) / 2)) > dy * ny / 2 + 1e-9)))
        if outside.size:  # not silently moved onto the grid
            k = int(outside[0])
            raise TrainError(f"scenario {name!r}: the source at ({xs[k]:.2f}, {ys[k]:.2f}) m, t = {float(per[i].t[k]):.1f} "
                             f"s, lies outside the plane (x {x0 - dx / 2:g} .. {x0 + (nx - 0.5) * dx:g} m, y "
                             f"{y0 - dy / 2:g} .. {y0 + (ny - 0.5) * dy:g} m)")
        sx = np.clip((xs - x0) / dx, 0, nx - 1)
        sy = np.clip((ys - y0) / dy, 0, ny - 1)
        ix, iy = np.clip(np.floor(sx).astype(int), 0, nx - 2), np.clip(np.floor(sy).astype(int), 0, ny - 2)
        fx, fy = sx - ix, sy - iy
        total = ((1 - fy) * (1 - fx) * fluid[iy, ix] + (1 - fy) * fx * fluid[iy, ix + 1]
                 + fy * (1 - fx) * fluid[iy + 1, ix] + fy * fx * fluid[iy + 1, ix + 1])
        bad = np.flatnonzero(total <= 1e-9)
        if bad.size:
            k = int(bad[0])
            raise TrainError(
                f"scenario {name!r}: the source at ({xs[k]:.2f}, {ys[k]:.2f}) m, t = {float(per[i].t[k]):.1f} s, "
                "lies in solid cells of the plane; its emission could not be deposited"
            )
    conc = LazyConcentration(ds["concentration"]) if lazy else np.asarray(ds["concentration"].values, np.float32)
    return PreparedData(names, splits, times, conc, forcing, spf, n_steps)


def concentration_scale_of(prep: PreparedData, indices, fluid) -> float:
    """:func:`~plumecast.physics.model.concentration_scale` of scenarios ``indices``, eager or lazy, the same number.

    Lazy data is read one scenario at a time, twice: once to count the positive fluid-cell
    values, once to keep the largest of them, as many as the 99th percentile needs (about
    1 % of them); the percentile is then numpy's (linear interpolation, in float32).
    """
    from plumecast.physics.model import concentration_scale

    indices = np.asarray(indices, int)
    if not isinstance(prep.conc, LazyConcentration):
        return concentration_scale(prep.conc[indices], fluid)
    mask = np.asarray(fluid) > 0
    cache_key = (indices.tobytes(), mask.tobytes())
    if cache_key not in prep.conc._scales:
        prep.conc._scales[cache_key] = _streamed_scale(prep.conc, indices, mask)
    return prep.conc._scales[cache_key]


def _streamed_scale(conc: LazyConcentration, indices: np.ndarray, mask: np.ndarray) -> float:
    def positives(i):
        c = conc[int(i)]
        return c[np.broadcast_to(mask, c.shape) & (c > 0)]

    n = sum(int(positives(i).size) for i in indices)
    if n == 0:
        return 1.0
    # numpy.percentile(values, 99.0), method "linear": the virtual index (n - 1) q, its floor
    # and the next rank (the last when the index reaches it), and their interpolation.
    virtual = (n - 1) * np.true_divide(99.0, 100)
    lower = n - 1 if virtual >= n - 1 else int(np.floor(virtual))
    keep = n - lower  # values of rank lower .. n - 1
    top = np.zeros(0, np.float32)
    for i in indices:
        top = np.concatenate([top, positives(i)])
        if top.size > keep:
            top = np.partition(top, top.size - keep)[top.size - keep:]
    top = np.sort(top)
    a = top[0]
    b = top[1] if keep > 1 else top[0]
    gamma = float(virtual - lower)
    diff = b - a
    scale = float(b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma)
    return scale if np.isfinite(scale) and scale > 0 else 1.0
