"""A dataset laid out for rollouts: per-scenario fields and the per-step forcing.

The dataset's snapshot interval must be a whole number of model steps; each scenario's
source track becomes one :class:`~plumecast.physics.model.Forcing` entry per step
(:func:`plumecast.rollout.track_at_steps`), and every step's source must land on
fluid cells of the plane, or its emission would silently vanish.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from plumecast.errors import TrainError
from plumecast.physics.model import Forcing
from plumecast.rollout import track_at_steps

__all__ = ["PreparedData", "prepare_data", "time_layout"]


@dataclass
class PreparedData:
    """A dataset laid out for rollouts: per-scenario fields and per-step forcing."""

    names: list[str]
    splits: list[str]
    times: np.ndarray  # snapshot times, s
    conc: np.ndarray  # (n, T, ny, nx) concentration, mass/m^3
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


def prepare_data(ds, dt: float, dtype: str = "float32", fluid=None) -> PreparedData:
    """Check a dataset against the model's time step and build the per-step forcing."""
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
    return PreparedData(names, splits, times, np.asarray(ds["concentration"].values, np.float32), forcing, spf, n_steps)
