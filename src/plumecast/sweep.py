"""Sweeps: a static source at every candidate location, forecast in batches, and the maps a user acts on.

``plumecast sweep RUN --out DIR`` puts a static source of ``--rate`` (mass/s) at every
fluid cell centre of the plane (or on a ``--stride K`` lattice of them, or at the points
of a ``--points`` CSV), at one or several ``--height`` values (default: the plane
height), forecasts each for ``--horizon`` seconds (default: the training horizon; up to
twice it with a warning) in ``vmap`` batches of ``--batch`` sources through
:func:`plumecast.forecast.rollout_exposure` (the exposure is accumulated in the scan, so
memory does not grow with the horizon), and writes, batch by batch:

* ``DIR/sweep.nc``: per candidate source ``exposure (source, y, x)``, the plane
  concentration integrated over the horizon (mass s/m^3); the candidates' positions;
  per receptor ``arrival_s (source, receptor)`` (first time the receptor's concentration
  reaches ``--threshold``; NaN: not within the horizon), ``receptor_exposure`` and
  ``receptor_peak``; and per cell ``worst_exposure (y, x)``, the largest exposure over all
  candidate sources, with ``worst_source`` (the index of the source that gives it);
* ``DIR/worst-exposure.png``, and per receptor ``DIR/receptor-NAME.png``: the source
  locations that reach the receptor first (arrival time) and hardest (exposure);
* ``DIR/summary.json``: the fastest and hardest-hitting sources per receptor, the cell
  with the worst case, timings.

A receptor is ``NAME=x,y`` or ``x,y`` (metres, a fluid cell of the plane); several
``--receptor`` options with the same NAME form one receptor (the reception desk's cells):
its arrival is the earliest over its points, its exposure the mean, its peak the highest.

CSV points: one point per line, ``x,y`` or ``x,y,z`` in metres (z: the height; without
it every ``--height``), an optional header line, ``#`` comments. A point outside the
room's air is an error that names its line; lattice cells whose source would sit inside
an obstacle at the asked height are left out, and counted.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import plumecast
from plumecast.io.atomic import atomic_path

__all__ = ["SweepError", "Receptor", "parse_receptors", "read_points_csv", "candidate_sources", "SweepResult",
           "run_sweep", "sweep_forcing"]

SWEEP_FILE = "sweep.nc"


class SweepError(ValueError):
    """A sweep that cannot run as asked; the message names the problem."""


@dataclass
class Receptor:
    """A named receptor: one or several points of the plane and their cells."""

    name: str
    points: list = field(default_factory=list)  # (x, y) metres
    cells: list = field(default_factory=list)  # (j, i)


def _number(text: str, what: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise SweepError(f"{what}: {text!r} is not a number") from None
    if not math.isfinite(v):
        raise SweepError(f"{what}: {text!r} is not a finite number")
    return v


def parse_receptors(items: list[str], room) -> list[Receptor]:
    """Receptors from ``NAME=x,y`` or ``x,y`` strings; points must lie in fluid cells of the plane."""
    out: dict[str, Receptor] = {}
    unnamed = 0
    for item in items:
        name, sep, xy = item.rpartition("=")
        if not sep:
            unnamed += 1
            while f"r{unnamed}" in out:
                unnamed += 1
        name = name.strip() if sep else f"r{unnamed}"
        if sep and not name:
            raise SweepError(f"--receptor {item!r}: an empty name before '='")
        parts = [p.strip() for p in xy.split(",")]
        if len(parts) != 2:
            raise SweepError(f"--receptor {item!r}: expected x,y or NAME=x,y (metres)")
        x, y = (_number(p, f"--receptor {item!r}") for p in parts)
        cell = room.cell_of(x, y)
        if cell is None:
            raise SweepError(f"--receptor {item!r}: ({x:g}, {y:g}) m is outside the plane")
        if not room.fluid[cell]:
            raise SweepError(f"--receptor {item!r}: ({x:g}, {y:g}) m lies in a solid cell of the plane")
        r = out.setdefault(name, Receptor(name))
        r.points.append((x, y))
        if cell not in r.cells:
            r.cells.append(cell)
    return list(out.values())


def read_points_csv(path: str | Path) -> list[tuple[int, tuple[float, ...]]]:
    """``(line number, (x, y) or (x, y, z))`` of a points CSV (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"{path}: no such file")
    rows = []
    header_allowed = True
    with open(path, newline="") as f:
        for n, row in enumerate(csv.reader(f), start=1):
            cells = [c.strip() for c in row]
            if not cells or not any(cells) or cells[0].startswith("#"):
                continue
            try:
                values = tuple(float(c) for c in cells)
            except ValueError:
                if header_allowed:  # the first line may name the columns
                    header_allowed = False
                    continue
                raise SweepError(f"{path}:{n}: {','.join(cells)!r} is not x,y or x,y,z in metres") from None
            if len(values) not in (2, 3) or not all(math.isfinite(v) for v in values):
                raise SweepError(f"{path}:{n}: expected x,y or x,y,z (finite, metres), got {','.join(cells)!r}")
            header_allowed = False
            rows.append((n, values))
    if not rows:
        raise SweepError(f"{path}: no points (expected lines x,y or x,y,z in metres)")
    return rows


def candidate_sources(room, *, heights, stride: int | None = None, points=None, origin: str = "--points"):
    """``(xyz (N, 3), notes)``: the candidate source positions and what was left out.

    Without ``points``: the fluid cell centres of the plane (every ``stride``-th cell in
    x and y), at each height, leaving out those where a source would sit in an obstacle.
    With ``points`` (from :func:`read_points_csv`): those points, each at its own height
    or at each of ``heights``; one outside the room's air is an error.
    """
    heights = [float(h) for h in heights]
    for h in heights:
        if not math.isfinite(h):
            raise SweepError(f"--height {h} is not a finite number")
        problem = room.where(float(room.x[0]), float(room.y[0]), h) if h < 0 or (
            room.room_size_m is not None and h > room.room_size_m[2]) else None
        if problem:
            raise SweepError(f"--height {h:g} m: a source there is {problem}")
    notes = []
    out = []
    if points is None:
        k = 1 if stride is None else int(stride)
        if k < 1:
            raise SweepError(f"--stride must be >= 1, got {stride}")
        ny, nx = room.shape
        js, is_ = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        pick = (np.asarray(room.fluid) > 0) & (js % k == 0) & (is_ % k == 0)
        for h in heights:
            left = 0
            for j, i in zip(*np.nonzero(pick)):
                x, y = float(room.x[i]), float(room.y[j])
                if room.where(x, y, h) is None and room.plane_ok(x, y):
                    out.append((x, y, h))
                else:
                    left += 1
            if left:
                notes.append(f"{left} cell(s) left out at z = {h:g} m: a source there would sit inside an obstacle")
    else:
        for n, values in points:
            zs = [values[2]] if len(values) == 3 else heights
            for z in zs:
                x, y = values[0], values[1]
                problem = room.where(x, y, z)
                if problem is None and not room.plane_ok(x, y):
                    problem = "over solid cells of the plane (its emission could not be deposited)"
                if problem:
                    raise SweepError(f"{origin} line {n}: a source at ({x:g}, {y:g}, {z:g}) m is {problem}")
                out.append((x, y, z))
    if not out:
        raise SweepError("no candidate source left to sweep")
    return np.asarray(out, float), notes


def sweep_forcing(xyz, rate: float, *, dt: float, n_steps: int, dtype="float32"):
    """Per-step forcing ``(B, n_steps)`` of static sources at ``xyz (B, 3)`` with a constant ``rate``."""
    from plumecast.physics.model import Forcing

    xyz = np.asarray(xyz, float)
    b = len(xyz)
    t = np.broadcast_to(0.0 + dt * np.arange(n_steps), (b, n_steps))
    cols = [np.broadcast_to(xyz[:, k : k + 1], (b, n_steps)) for k in range(3)]
    r = np.full((b, n_steps), float(rate))
    return Forcing(*(np.ascontiguousarray(a).astype(dtype) for a in (t, *cols, r)))


@dataclass
class SweepResult:
    """What a sweep wrote, and the per-source and per-cell results the pictures show."""

    out_dir: Path
    xyz: np.ndarray  # (N, 3)
    receptors: list
    arrival: np.ndarray  # (N, R) s, NaN: never within the horizon
    receptor_exposure: np.ndarray  # (N, R)
    receptor_peak: np.ndarray  # (N, R)
    worst_exposure: np.ndarray  # (ny, nx)
    worst_source: np.ndarray  # (ny, nx), -1 in solids
    seconds: float
    summary: dict


def run_sweep(system, room, xyz, *, rate: float, horizon_s: float, receptors: list[Receptor], threshold: float,
              batch: int = 64, out_dir: str | Path, about: dict | None = None, on_batch=None,
              notes: list | None = None) -> SweepResult:
    """Forecast a static source at each of ``xyz`` and write ``DIR/sweep.nc`` batch by batch (see the module docstring).

    ``on_batch(done, total)`` is called after each batch. Nothing is left at
    ``DIR/sweep.nc`` when the sweep fails or is interrupted.
    """
    import jax
    import jax.numpy as jnp
    import netCDF4

    from plumecast.forecast import check_grid, rollout_exposure

    model, closure = system
    c = model.config
    check_grid(model, room.as_dataset(), data="its stored room")
    if not (math.isfinite(rate) and rate >= 0):
        raise SweepError(f"--rate must be a finite number >= 0 mass/s, got {rate}")
    if not (math.isfinite(threshold) and threshold > 0):
        raise SweepError(f"--threshold must be a finite number > 0 (mass/m^3), got {threshold}")
    if batch < 1:
        raise SweepError(f"--batch must be >= 1, got {batch}")
    n_steps = horizon_s / c.dt
    if not math.isclose(n_steps, round(n_steps), rel_tol=0, abs_tol=1e-6) or round(n_steps) < 1:
        raise SweepError(f"the horizon {horizon_s:g} s is not a whole number of the run's {c.dt:g} s model steps")
    n_steps = int(round(n_steps))
    out_dir = Path(out_dir)
    xyz = np.asarray(xyz, float)
    n = len(xyz)
    ny, nx = c.shape
    batch = min(batch, n)
    flat = [j * nx + i for r in receptors for (j, i) in r.cells]
    owner = np.asarray([k for k, r in enumerate(receptors) for _ in r.cells], int)
    cells = jnp.asarray(np.asarray(flat if flat else [0], np.int32))
    R = len(receptors)
    arrival = np.full((n, R), np.nan)
    r_expo = np.zeros((n, R))
    r_peak = np.zeros((n, R))
    worst = np.zeros((ny, nx))
    worst_src = np.full((ny, nx), -1, np.int32)
    fluid = np.asarray(room.fluid) > 0
    unit = room.mass_unit
    q0 = jnp.zeros((batch,) + c.shape, c.jdtype)
    t0 = time.perf_counter()
    path = out_dir / SWEEP_FILE
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path) as tmp:
            nc = netCDF4.Dataset(tmp, "w", format="NETCDF4")
            try:
                nc.createDimension("source", None)
                nc.createDimension("y", ny)
                nc.createDimension("x", nx)
                nc.createDimension("receptor", R)
                nc.createDimension("receptor_point", int(sum(len(r.points) for r in receptors)))
                for name, dim, values in (("x", "x", room.x), ("y", "y", room.y)):
                    v = nc.createVariable(name, "f8", (dim,))
                    v[:] = values
                    v.units = "m"
                v = nc.createVariable("fluid", "i1", ("y", "x"))
                v[:] = fluid.astype(np.int8)
                sv = {k: nc.createVariable(f"source_{k}", "f8", ("source",)) for k in ("x", "y", "z")}
                for v in sv.values():
                    v.units = "m"
                ev = nc.createVariable("exposure", "f4", ("source", "y", "x"), zlib=True, complevel=1,
                                       chunksizes=(1, ny, nx))
                ev.units = f"{unit} s/m^3"
                ev.long_name = "plane concentration integrated over the horizon, per candidate source"
                av = nc.createVariable("arrival_s", "f8", ("source", "receptor"), fill_value=np.nan)
                av.units = "s"
                av.long_name = f"first time the receptor's concentration reaches {threshold:g} {unit}/m^3 (NaN: never)"
                xv = nc.createVariable("receptor_exposure", "f8", ("source", "receptor"))
                xv.units = f"{unit} s/m^3"
                pv = nc.createVariable("receptor_peak", "f8", ("source", "receptor"))
                pv.units = f"{unit}/m^3"
                rn = nc.createVariable("receptor_name", str, ("receptor",))
                for k, r in enumerate(receptors):
                    rn[k] = r.name
                pts = [(k, p) for k, r in enumerate(receptors) for p in r.points]
                for name, col in (("receptor_point_x", 0), ("receptor_point_y", 1)):
                    v = nc.createVariable(name, "f8", ("receptor_point",))
                    v[:] = np.asarray([p[col] for _, p in pts], float)
                    v.units = "m"
                v = nc.createVariable("receptor_point_receptor", "i4", ("receptor_point",))
                v[:] = np.asarray([k for k, _ in pts], np.int32)
                for s in range(0, n, batch):
                    idx = np.arange(s, min(s + batch, n))
                    padded = np.resize(idx, batch)
                    forcing = sweep_forcing(xyz[padded], rate, dt=c.dt, n_steps=n_steps, dtype=c.dtype)
                    expo, arr, peak = rollout_exposure(model, closure, q0, jax.tree.map(jnp.asarray, forcing), cells,
                                                       threshold)
                    expo = np.asarray(expo, float)[: len(idx)] * fluid
                    arr = np.asarray(arr, float)[: len(idx)]
                    peak = np.asarray(peak, float)[: len(idx)]
                    if not np.isfinite(expo).all():
                        raise SweepError(f"the forecast of the source at {tuple(np.round(xyz[idx[0]], 3))} m is not finite")
                    for k in range(R):
                        m = owner == k
                        a = arr[:, m].min(axis=1)
                        arrival[idx, k] = np.where(np.isfinite(a), a, np.nan)
                        r_expo[idx, k] = expo.reshape(len(idx), -1)[:, np.asarray(flat)[m]].mean(axis=1)
                        r_peak[idx, k] = peak[:, m].max(axis=1)
                    better = expo.max(axis=0) > worst
                    worst_src = np.where(better, idx[expo.argmax(axis=0)], worst_src)
                    worst = np.maximum(worst, expo.max(axis=0))
                    for k, key in enumerate(("x", "y", "z")):
                        sv[key][idx] = xyz[idx, k]
                    ev[idx[0] : idx[-1] + 1] = expo.astype(np.float32)
                    av[idx[0] : idx[-1] + 1] = arrival[idx]
                    xv[idx[0] : idx[-1] + 1] = r_expo[idx]
                    pv[idx[0] : idx[-1] + 1] = r_peak[idx]
                    if on_batch:
                        on_batch(int(idx[-1] + 1), n)
                worst_src = np.where(fluid, worst_src, -1)
                v = nc.createVariable("worst_exposure", "f8", ("y", "x"))
                v[:] = worst * fluid
                v.units = f"{unit} s/m^3"
                v.long_name = "largest exposure over all candidate sources"
                v = nc.createVariable("worst_source", "i4", ("y", "x"))
                v[:] = worst_src
                v.long_name = "index of the candidate source that gives the worst exposure (-1: solid)"
                seconds = time.perf_counter() - t0
                attrs = {
                    "generator": "plumecast-sweep",
                    "generator_version": plumecast.__version__,
                    "rate": float(rate),
                    "rate_units": f"{unit}/s",
                    "horizon_s": float(horizon_s),
                    "threshold": float(threshold),
                    "threshold_units": f"{unit}/m^3",
                    "plane_height_m": float(room.plane_height_m),
                    "dx_m": float(room.dx),
                    "dy_m": float(room.dy),
                    "mass_unit": unit,
                    "dt_s": float(c.dt),
                    "seconds": float(seconds),
                    "about": json.dumps(about or {}, sort_keys=True),
                }
                nc.setncatts(attrs)
            finally:
                nc.close()
    except BaseException:
        if created and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()  # nothing is left of a sweep that failed or was interrupted
        raise
    summary = _summary(xyz, receptors, arrival, r_expo, r_peak, worst, worst_src, room, rate=rate, horizon_s=horizon_s,
                       threshold=threshold, seconds=seconds, about=about, notes=notes or [])
    return SweepResult(out_dir, xyz, receptors, arrival, r_expo, r_peak, worst * fluid, worst_src, seconds, summary)


def _summary(xyz, receptors, arrival, r_expo, r_peak, worst, worst_src, room, *, rate, horizon_s, threshold, seconds,
             about, notes, top: int = 5) -> dict:
    unit = room.mass_unit

    def where(k):
        return [round(float(v), 3) for v in xyz[k]]

    out = {
        "run": about or {},
        "sources": int(len(xyz)),
        "notes": notes,
        "rate": rate,
        "horizon_s": horizon_s,
        "threshold": threshold,
        "units": {"rate": f"{unit}/s", "exposure": f"{unit} s/m^3", "threshold": f"{unit}/m^3"},
        "seconds": round(seconds, 3),
        "sources_per_second": round(len(xyz) / seconds, 2) if seconds > 0 else None,
        "receptors": {},
    }
    for k, r in enumerate(receptors):
        a = arrival[:, k]
        reached = np.flatnonzero(np.isfinite(a))
        fastest = reached[np.argsort(a[reached], kind="stable")][:top]
        hardest = np.argsort(-r_expo[:, k], kind="stable")[:top]
        out["receptors"][r.name] = {
            "points_m": [list(p) for p in r.points],
            "sources_reaching": int(reached.size),
            "first": [{"source_m": where(i), "arrival_s": round(float(a[i]), 2)} for i in fastest],
            "hardest": [{"source_m": where(i), "exposure": float(r_expo[i, k]), "peak": float(r_peak[i, k])}
                        for i in hardest],
        }
    j, i = np.unravel_index(int(np.argmax(worst)), worst.shape)
    out["worst_case"] = {"cell_m": [float(room.x[i]), float(room.y[j])], "exposure": float(worst[j, i]),
                         "from_source_m": where(int(worst_src[j, i])) if worst_src[j, i] >= 0 else None}
    return out
