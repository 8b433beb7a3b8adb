"""What-if forecasts: a trained run, its stored room and sources nobody has simulated.

A what-if file (TOML) describes one or several sources and the time span::

    name = "printer-leak"             # optional; default: the file name
    horizon_s = 40                    # forecast span, s
    output_interval_s = 2             # optional; default: the training snapshot interval

    [[sources]]
    name = "printer"                  # optional
    position_m = [2.9, 1.3, 0.75]     # or path = [[t, x, y, z], ...] (held at its ends)
    rate = [[0.0, 1.0], [20.0, 0.5]]  # mass/s: a number, or [t, rate] pairs (linear, held at the ends)
    start_s = 0                       # optional: emits from start_s ...
    stop_s = 30                       # ... until stop_s (optional)

Positions are metres in the room's frame (the dataset's), times seconds from the start of
the forecast, which starts from clean air. The file is checked by a pydantic schema:
unknown keys (with a "did you mean"), wrong types, NaN or infinite numbers, negative rates
or times, times that do not increase are one-line errors. Sources are checked as the
generator checks them: a source inside a desk, a wall, outside the room, below the floor
or above the ceiling, or a path that passes through a wall at any time of the horizon
(sampled finer than the room's cells) is an error that names the source, the place and
the time; so is a source whose emission would land on solid cells of the plane.

Horizons beyond the training horizon are forecast up to twice it, with a warning (the
model was not trained that long); beyond, refused.

Per step the forcing is the source at the step's midpoint, its rate there times the share
of the step during which the source is on (so a start or stop inside a step emits exactly
the right mass). Several sources run in one rollout: :class:`~plumecast.physics.model.Forcing`
carries a source axis, and the model sums the sources' deposits, each with the learned
source scale at its own position (see ``docs/surrogate.md`` for what the closures see).
One source is the one-source forcing of a dataset scenario, so the what-if of a dataset
scenario's source is that scenario's forecast, bit for bit.
"""

from __future__ import annotations

import difflib
import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

import plumecast
from plumecast.physics.model import Forcing

__all__ = ["WhatIfError", "WhatIf", "WhatIfSource", "load_whatif", "parse_whatif", "check_horizon", "whatif_forcing",
           "check_sources", "WhatIfPlan", "plan_whatif", "forecast_whatif", "HORIZON_FACTOR_MAX"]

HORIZON_FACTOR_MAX = 2.0
GENERATOR = "plumecast-whatif"


class WhatIfError(ValueError):
    """A what-if file or request that cannot be forecast as written; the message names the problem."""


# ---------------------------------------------------------------------------------- schema
class WhatIfSource(BaseModel):
    """One source of a what-if file: a position or a path, a rate, and when it is on."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    name: str | None = None
    position_m: tuple[float, float, float] | None = None
    path: tuple[tuple[float, float, float, float], ...] | None = None
    rate: Any = Field(description="mass/s: a number, or [t_s, rate] pairs")
    start_s: float = Field(0.0, ge=0.0)
    stop_s: float | None = Field(None, gt=0.0)

    @field_validator("rate", mode="before")
    @classmethod
    def _rate(cls, v):
        if isinstance(v, bool):
            raise ValueError("rate must be a number (mass/s) or a list of [t_s, rate] pairs, got a boolean")
        if isinstance(v, (int, float)):
            pairs = [(0.0, float(v))]
        elif isinstance(v, (list, tuple)):
            if not v:
                raise ValueError("is empty; give a number or at least one [t_s, rate] pair")
            pairs = []
            for p in v:
                if (not isinstance(p, (list, tuple)) or len(p) != 2
                        or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in p)):
                    raise ValueError(f"rate pairs must be [t_s, rate] pairs of numbers, got {p!r}")
                pairs.append((float(p[0]), float(p[1])))
        else:
            raise ValueError(f"rate must be a number (mass/s) or a list of [t_s, rate] pairs, got {v!r}")
        arr = np.asarray(pairs, float)
        if not np.isfinite(arr).all():
            raise ValueError("must be finite, not NaN or infinite")
        if (arr[:, 1] < 0).any():
            raise ValueError(f"must be >= 0 mass/s, got {arr[:, 1].min():g}")
        if (np.diff(arr[:, 0]) <= 0).any():
            raise ValueError(f"times must increase, got {arr[:, 0].tolist()}")
        return tuple(pairs)

    @field_validator("path")
    @classmethod
    def _path(cls, v):
        if v is None:
            return v
        if len(v) < 2:
            raise ValueError("needs at least two [t_s, x_m, y_m, z_m] waypoints")
        t = [w[0] for w in v]
        if any(b <= a for a, b in zip(t, t[1:])):
            raise ValueError(f"times must increase, got {t}")
        return v

    @model_validator(mode="after")
    def _one_place(self):
        if (self.position_m is None) == (self.path is None):
            raise ValueError("a source needs exactly one of 'position_m' and 'path'")
        if self.stop_s is not None and not self.stop_s > self.start_s:
            raise ValueError(f"stop_s ({self.stop_s:g} s) must be after start_s ({self.start_s:g} s)")
        return self

    # ---------------------------------------------------------------- the track
    def position_at(self, t) -> np.ndarray:
        """``(..., 3)`` positions (m) at times ``t`` (a path is linear between waypoints, held at its ends)."""
        t = np.asarray(t, float)
        if self.path is None:
            return np.broadcast_to(np.asarray(self.position_m, float), t.shape + (3,)).copy()
        p = np.asarray(self.path, float)
        return np.stack([np.interp(t, p[:, 0], p[:, k]) for k in (1, 2, 3)], axis=-1)

    def rate_curve(self, t) -> np.ndarray:
        """The rate law at times ``t`` (linear between pairs, held at the ends), ignoring start/stop."""
        r = np.asarray(self.rate, float)
        return np.interp(np.asarray(t, float), r[:, 0], r[:, 1])

    def on(self, t) -> np.ndarray:
        """1 where the source is on at times ``t`` (``start_s <= t < stop_s``), else 0."""
        t = np.asarray(t, float)
        stop = math.inf if self.stop_s is None else self.stop_s
        return ((t >= self.start_s) & (t < stop)).astype(float)

    def on_share(self, t0, dt: float) -> np.ndarray:
        """The share of each step ``[t0, t0 + dt]`` during which the source is on."""
        t0 = np.asarray(t0, float)
        stop = math.inf if self.stop_s is None else self.stop_s
        return np.clip(np.minimum(t0 + dt, stop) - np.maximum(t0, self.start_s), 0.0, dt) / dt

    @property
    def always_on(self) -> bool:
        return self.start_s == 0.0 and self.stop_s is None


class WhatIf(BaseModel):
    """A what-if file: the horizon, the output interval and the sources."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    name: str | None = None
    horizon_s: float = Field(gt=0.0)
    output_interval_s: float | None = Field(None, gt=0.0)
    sources: tuple[WhatIfSource, ...] = Field(min_length=1)

    def source_label(self, k: int) -> str:
        s = self.sources[k]
        return f"source {k + 1}" + (f" ({s.name!r})" if s.name else "")


def _where(loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part + 1}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _format_error(e: ValidationError, origin: str) -> str:
    errors = e.errors()
    # An invalid source also fails the sources' length check: report the source's own problem.
    nested = {tuple(x["loc"][:1]) for x in errors if len(x["loc"]) > 1}
    errors = [x for x in errors if not (x["type"] == "too_short" and tuple(x["loc"]) in nested)] or errors
    errors.sort(key=lambda x: {"extra_forbidden": 0, "missing": 1}.get(x["type"], 2))  # stable: file order otherwise
    err = errors[0]
    loc = tuple(err["loc"])
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    if err["type"] == "extra_forbidden":
        key = str(loc[-1])
        parent = loc[:-1]
        known = list(WhatIfSource.model_fields) if parent and parent[0] == "sources" else list(WhatIf.model_fields)
        near = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else f"; known keys: {', '.join(known)}"
        where = f" in {_where(parent)}" if parent else ""
        return f"{origin}: unknown key {key!r}{where}{hint}{more}"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if err["type"] == "missing" and loc and isinstance(loc[-1], int):  # a tuple too short
        shape = "[t_s, x_m, y_m, z_m] waypoints" if "path" in loc else "[x, y, z] in metres"
        return f"{origin}: {_where(loc[:-1])}: expected {shape}, got too few numbers{more}"
    if err["type"] == "missing":
        return f"{origin}: missing key {_where(loc)!r}{more}"
    if err["type"] == "too_long" and "position_m" in loc:
        msg = "expected [x, y, z] in metres, got more numbers"
    if err["type"] == "too_short" and loc == ("sources",):
        msg = "needs at least one [[sources]] table"
    if err["type"] == "finite_number":
        msg = "must be a finite number, not NaN or infinite"
    where = _where(loc)
    return f"{origin}: {where + ': ' if where else ''}{msg}{more}"


def parse_whatif(config: dict, origin: str = "what-if") -> WhatIf:
    """A what-if from a parsed TOML table; :class:`WhatIfError` names the first problem."""
    try:
        return WhatIf.model_validate(config)
    except ValidationError as e:
        raise WhatIfError(_format_error(e, origin)) from None


def load_whatif(path: str | Path) -> WhatIf:
    """Read and check a what-if TOML file (the source positions are checked against a room by :func:`check_sources`)."""
    path = Path(path)
    if not path.is_file():
        raise WhatIfError(f"{path}: no such file" + (" (it is a directory)" if path.is_dir() else ""))
    try:
        config = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise WhatIfError(f"{path}: malformed TOML: {e}") from None
    spec = parse_whatif(config, str(path))
    if spec.name is None:
        spec = spec.model_copy(update={"name": path.stem})
    return spec


# ---------------------------------------------------------------------------------- checks
def check_horizon(horizon_s: float, trained_s: float, what: str = "the horizon") -> str | None:
    """A warning beyond the training horizon (up to ``HORIZON_FACTOR_MAX`` times it); :class:`WhatIfError` beyond."""
    if not (math.isfinite(horizon_s) and horizon_s > 0):
        raise WhatIfError(f"{what} must be a positive number of seconds, got {horizon_s}")
    if horizon_s > HORIZON_FACTOR_MAX * trained_s * (1 + 1e-9):
        raise WhatIfError(f"{what} {horizon_s:g} s is more than {HORIZON_FACTOR_MAX:g}x the {trained_s:g} s the run was "
                          f"trained on: refused (forecasts up to {HORIZON_FACTOR_MAX * trained_s:g} s are allowed)")
    if horizon_s > trained_s * (1 + 1e-9):
        return (f"{what} {horizon_s:g} s is beyond the {trained_s:g} s the run was trained on: the model "
                "extrapolates in time")
    return None


def _sample_times(src: WhatIfSource, horizon_s: float, spacing_m: float) -> np.ndarray:
    """Times at which a source is checked: one for a static source; for a path, finer than ``spacing_m`` along it."""
    if src.path is None:
        return np.zeros(1)
    p = np.asarray(src.path, float)
    t = [np.arange(0.0, horizon_s + 1e-9, 0.1), [horizon_s]]
    for a, b in zip(p[:-1], p[1:]):
        lo, hi = max(a[0], 0.0), min(b[0], horizon_s)
        if hi < lo:
            continue
        length = float(np.linalg.norm((b[1:] - a[1:]) * (hi - lo) / (b[0] - a[0])))
        t.append(np.linspace(lo, hi, max(2, int(math.ceil(length / spacing_m)) + 1)))
    return np.unique(np.concatenate(t))


def check_sources(spec: WhatIf, room, horizon_s: float | None = None) -> list[str]:
    """Check every source against ``room`` (:class:`~plumecast.io.room.RunRoom`) over the horizon; return warnings.

    Raises :class:`WhatIfError` naming the source, the place and the time when a source
    (at any time, for a path) is outside the room's air or would deposit on solid cells
    of the plane.
    """
    horizon_s = spec.horizon_s if horizon_s is None else horizon_s
    spacing = 0.25 * (room.room_cell_m or min(room.dx, room.dy))
    warnings = []
    for k, src in enumerate(spec.sources):
        label = spec.source_label(k)
        t = _sample_times(src, horizon_s, spacing)
        pos = src.position_at(t)
        what = "path" if src.path is not None else "position"
        for ti, (x, y, z) in zip(t, pos):
            problem = room.where(float(x), float(y), float(z))
            if problem:
                when = f", t = {ti:.1f} s," if src.path is not None else ""
                raise WhatIfError(f"{label}: {what} ({x:.2f}, {y:.2f}, {z:.2f}) m{when} is {problem}")
        ok = room.plane_ok(pos[:, 0], pos[:, 1])
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            x, y, z = pos[i]
            when = f", t = {t[i]:.1f} s," if src.path is not None else ""
            raise WhatIfError(f"{label}: {what} ({x:.2f}, {y:.2f}, {z:.2f}) m{when} lies over solid cells of the "
                              f"plane at {room.plane_height_m:g} m; its emission could not be deposited")
        zr = room.train_source_z_m
        if zr is not None:
            lo, hi = float(pos[:, 2].min()), float(pos[:, 2].max())
            if lo < zr[0] - 1e-9 or hi > zr[1] + 1e-9:
                warnings.append(f"{label} is at z = {lo:g}{'' if lo == hi else f'..{hi:g}'} m, outside the heights "
                                f"the run was trained on ({zr[0]:g}..{zr[1]:g} m): its learned source scale extrapolates")
        if src.start_s >= horizon_s:
            warnings.append(f"{label} starts at {src.start_s:g} s, at or after the end of the {horizon_s:g} s horizon: "
                            "it emits nothing")
        else:
            t_on = np.linspace(src.start_s, min(horizon_s, src.stop_s or horizon_s), 2001)
            knots = np.asarray(src.rate, float)[:, 0]
            t_on = np.concatenate([t_on, knots[(knots >= t_on[0]) & (knots <= t_on[-1])]])
            if not src.rate_curve(t_on).any():
                warnings.append(f"{label} emits nothing within the horizon (its rate is zero while it is on)")
    return warnings


# ---------------------------------------------------------------------------------- forcing
def whatif_forcing(spec: WhatIf, *, dt: float, n_steps: int, dtype="float32") -> Forcing:
    """Per-step forcing (NumPy) of a what-if: ``(n_steps,)`` fields for one source, ``(n_steps, S)`` for several.

    Position and rate at each step's midpoint, as :func:`plumecast.rollout.track_at_steps`
    takes them from a dataset track; the rate times the share of the step the source is on.
    """
    t = 0.0 + dt * np.arange(n_steps)
    mid = t + 0.5 * dt
    xs, ys, zs, rates = [], [], [], []
    for src in spec.sources:
        p = src.position_at(mid)
        r = src.rate_curve(mid)
        if not src.always_on:
            r = r * src.on_share(t, dt)
        xs.append(p[:, 0])
        ys.append(p[:, 1])
        zs.append(p[:, 2])
        rates.append(r)
    if len(spec.sources) == 1:
        fields = (xs[0], ys[0], zs[0], rates[0])
    else:
        fields = tuple(np.stack(a, axis=-1) for a in (xs, ys, zs, rates))
    return Forcing(t.astype(dtype), *(np.asarray(a).astype(dtype) for a in fields))


@dataclass
class WhatIfPlan:
    """A checked what-if on a run's time step: output times, forcing, steps per output frame, warnings."""

    spec: WhatIf
    times: np.ndarray
    forcing: Forcing
    steps_per_frame: int
    warnings: list


def _whole(value: float, unit: float) -> int | None:
    n = value / unit
    return int(round(n)) if math.isclose(n, round(n), rel_tol=0, abs_tol=1e-6) and round(n) >= 1 else None


def plan_whatif(spec: WhatIf, room, grid_config) -> WhatIfPlan:
    """Check a what-if against a run's room and time step and lay it out for a rollout."""
    dt = float(grid_config.dt)
    warnings = []
    w = check_horizon(spec.horizon_s, room.horizon_s, "the horizon")
    if w:
        warnings.append(w)
    interval = float(spec.output_interval_s if spec.output_interval_s is not None else room.snapshot_s)
    spf = _whole(interval, dt)
    if spf is None:
        raise WhatIfError(f"output_interval_s = {interval:g} s is not a whole number of the run's {dt:g} s model steps")
    n_frames = _whole(spec.horizon_s, interval)
    if n_frames is None:
        raise WhatIfError(f"horizon_s = {spec.horizon_s:g} s is not a whole number of {interval:g} s output intervals")
    warnings += check_sources(spec, room)
    n_steps = spf * n_frames
    forcing = whatif_forcing(spec, dt=dt, n_steps=n_steps, dtype=grid_config.dtype)
    times = interval * np.arange(n_frames + 1)
    return WhatIfPlan(spec, times, forcing, spf, warnings)


def forecast_whatif(system, room, spec: WhatIf, *, about: dict | None = None):
    """A what-if forecast in the dataset schema (generator ``plumecast-whatif``, no truth); ``(dataset, warnings)``.

    ``concentration`` is the forecast, from clean air at t = 0. ``source_x/_y/_z/_rate``
    are the first source's track (the schema holds one); ``sources_x/_y/_z/_rate``
    ``(scenario, source, time)`` hold every source, ``source_name`` their names.

    ``system`` is one ``(model, closure)`` or a list of them, an ensemble (seeds of one
    model, say; :func:`plumecast.forecast.check_members`): then ``concentration`` is the
    members' mean and ``concentration_spread`` their standard deviation, each member
    rolled out on its own.
    """
    import jax.numpy as jnp

    from plumecast.forecast import as_members, check_grid, check_members, ensemble_moments, rollout_frames, with_spread
    from plumecast.io.dataset import make_dataset

    members = as_members(system)
    check_members(members)
    model = members[0][0]
    check_grid(model, room.as_dataset(), data="its stored room")
    plan = plan_whatif(spec, room, model.config)
    q0 = jnp.zeros((1,) + model.config.shape, model.config.jdtype)
    forcing = Forcing(*(jnp.asarray(a)[None] for a in (plan.forcing.t, plan.forcing.x, plan.forcing.y, plan.forcing.z,
                                                        plan.forcing.rate)))
    conc, spread = ensemble_moments(
        np.concatenate([np.zeros((1,) + model.config.shape),
                        np.asarray(m.decode(rollout_frames(m, closure, q0, forcing, plan.steps_per_frame)))[0]])
        for m, closure in members)
    if not np.isfinite(conc).all():
        raise WhatIfError(f"the forecast of {spec.name!r} is not finite")
    times = plan.times
    tracks = np.stack([src.position_at(times) for src in spec.sources])  # (S, T, 3)
    rates = np.stack([src.rate_curve(times) * src.on(times) for src in spec.sources])  # (S, T)
    name = spec.name or "what-if"
    c = model.config
    meta = dict(room.scenario_config)
    meta["name"] = name
    meta["whatif"] = json.loads(spec.model_dump_json())
    meta["forecast"] = {**(about or {}), "scenario": name, "dt_s": c.dt, "substeps": c.substeps,
                        "warnings": plan.warnings, "n_sources": len(spec.sources), "ensemble_members": len(members),
                        "source_variables": "source_* hold source 1; sources_* (scenario, source, time) hold all"}
    ds = make_dataset(
        scenario_names=[name],
        splits=["ood"],
        times_s=times,
        x_m=room.x,
        y_m=room.y,
        concentration=conc[None],
        u=room.u,
        v=room.v,
        w=room.w,
        nu_t=room.nu_t,
        fluid_fraction=room.fluid_fraction,
        source_xyz=tracks[:1],
        source_rate=rates[:1],
        plane_height_m=room.plane_height_m,
        mass_unit=room.mass_unit,
        generator=GENERATOR,
        generator_version=plumecast.__version__,
        scenario_config=meta,
    )
    sst = ("scenario", "source", "time")
    unit = room.mass_unit
    names = np.asarray([s.name or f"source {k + 1}" for k, s in enumerate(spec.sources)], dtype=str)
    ds = ds.assign({
        "sources_x": (sst, tracks[None, :, :, 0], {"units": "m"}),
        "sources_y": (sst, tracks[None, :, :, 1], {"units": "m"}),
        "sources_z": (sst, tracks[None, :, :, 2], {"units": "m"}),
        "sources_rate": (sst, rates[None], {"units": f"{unit}/s"}),
        "source_name": (("source",), names),
    })
    ds = with_spread(ds, spread, len(members))
    ds.attrs["n_sources"] = len(spec.sources)
    ds.attrs["history"] = f"plumecast {plumecast.__version__} forecast (what-if, {len(spec.sources)} source(s))"
    return ds, plan.warnings
