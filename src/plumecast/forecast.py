"""Forecasts of a trained system: the one forecasting API of plumecast.

A *system* is ``(model, closure)`` (:mod:`plumecast.physics.model`, :mod:`plumecast.closure`).
Every forecast, wherever it is asked for (training summaries, ``evaluate``, the CLI, the
scripts and benchmarks), goes through :func:`rollout_frames`: one jitted, vmapped
rollout of a batch of start fields under a batch of per-step forcings. The functions
around it lay datasets out for it (:func:`forecast_scenarios`, :func:`forecast`), check
that a dataset lies on the model's grid (:func:`check_grid`) and write a forecast in the
dataset schema (:func:`forecast_dataset`). :func:`forecast`, :func:`forecast_spread`,
:func:`forecast_dataset` and the what-if (:func:`plumecast.whatif.forecast_whatif`) also take
a list of systems, an ensemble (seeds of one model): its forecast is the members' mean,
with their spread (:func:`forecast_ensemble`; members checked by :func:`check_members`).

States meet concentrations only through ``model.encode`` / ``model.decode`` (which apply
the learned observation factor, when there is one).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import plumecast
from plumecast.errors import TrainError
from plumecast.forcing import PreparedData, prepare_data
from plumecast.metrics import relative_l2
from plumecast.rollout import init_carry, rollout, step

__all__ = ["check_grid", "check_members", "rollout_frames", "rollout_exposure", "forecast_scenarios",
           "ensemble_moments", "forecast_ensemble", "final_time_errors", "as_members", "forecast", "forecast_spread", "forecast_dataset",
           "with_spread"]


def check_grid(model, ds, *, run: str = "the model", data: str = "the dataset") -> None:
    """Raise :class:`TrainError` unless ``ds`` lies on ``model``'s grid and flow (the message says what differs)."""
    c = model.config
    ny, nx = int(ds.sizes["y"]), int(ds.sizes["x"])
    if (ny, nx) != (c.ny, c.nx):
        raise TrainError(f"grid mismatch: {run} has a {c.ny} x {c.nx} (y x x) grid but {data} is {ny} x {nx}; "
                         "use data of the room the model was trained for")
    dx, dy = float(ds.attrs["dx_m"]), float(ds.attrs["dy_m"])
    x0, y0 = float(ds["x"].values[0]), float(ds["y"].values[0])
    if not np.allclose([dx, dy], [c.dx, c.dy], rtol=1e-6):
        raise TrainError(f"grid mismatch: {run} has cells of {c.dx} x {c.dy} m but {data} of {dx} x {dy} m")
    if not np.allclose([x0, y0], [c.x0, c.y0], rtol=1e-6, atol=1e-9):
        raise TrainError(f"grid mismatch: {run} has its first cell centre at ({c.x0}, {c.y0}) m but {data} at "
                         f"({x0}, {y0}) m")
    mf, df = np.asarray(model.fluid) > 0, np.asarray(ds["fluid"].values) > 0
    if not np.array_equal(mf, df):
        raise TrainError(f"grid mismatch: the fluid masks of {run} and {data} differ in {int((mf != df).sum())} cells")
    for name in ("u", "v", "w"):
        a, b = np.asarray(ds[name].values, float) * mf, np.asarray(getattr(model, name), float)
        if not np.allclose(a, b, rtol=1e-4, atol=1e-6):
            raise TrainError(f"flow mismatch: the plane velocity {name!r} of {data} differs from the one of {run}")


@eqx.filter_jit
def rollout_frames(model, closure, q0, forcing, steps_per_frame: int):
    """States ``(B, F, ny, nx)`` after every ``steps_per_frame`` steps, for start states ``q0 (B, ny, nx)``.

    ``forcing`` holds ``(B, n_steps)`` arrays; closure memory starts at zero. Compiled
    once per shape: callers pad batches to a fixed size.
    """

    def one(q, f):
        _, frames = rollout(model, closure, init_carry(closure, q), f, steps_per_frame=steps_per_frame)
        return frames

    return jax.vmap(one)(q0, forcing)


@eqx.filter_jit
def rollout_exposure(model, closure, q0, forcing, receptor_cells, threshold):
    """Time-integrated exposure and receptor arrival, accumulated in the scan (no frames kept).

    The variant of :func:`rollout_frames` for sweeps: for start states ``q0 (B, ny, nx)``
    and forcings ``(B, n_steps)`` it returns ``(exposure (B, ny, nx), arrival (B, R), peak
    (B, R))``: the plane concentration integrated over the rollout (trapezoid rule over
    the model steps, mass s/m^3), and at the cells ``receptor_cells (R,)`` (flat indices)
    the first time the concentration reaches ``threshold`` (mass/m^3; linear between
    steps; ``inf`` when it never does) and the highest concentration at the ends of the
    steps. Memory is the carry's, whatever the horizon. Compiled once per shape.
    """
    dt = model.config.dt
    g = model.observe(jnp.ones(model.config.shape, model.config.jdtype)) * model.config.c_ref  # concentration per unit state
    cells = jnp.asarray(receptor_cells)
    thr = jnp.asarray(threshold, model.config.jdtype)

    def one(q, f):
        ops = model.prepare()
        c0 = q * g
        r0 = c0.reshape(-1)[cells]
        arrival0 = jnp.where(r0 >= thr, 0.0, jnp.inf).astype(c0.dtype)

        def body(acc, fs):
            carry, expo, c_prev, arrival, peak = acc
            carry = step(model, closure, carry, fs, ops)
            c = carry[0] * g
            expo = expo + (0.5 * dt) * (c_prev + c)
            r_prev, r_now = c_prev.reshape(-1)[cells], c.reshape(-1)[cells]
            crossing = jnp.isinf(arrival) & (r_now >= thr)
            frac = jnp.clip((thr - r_prev) / jnp.where(r_now > r_prev, r_now - r_prev, 1.0), 0.0, 1.0)
            arrival = jnp.where(crossing, fs.t + dt * frac, arrival)
            return (carry, expo, c, arrival, jnp.maximum(peak, r_now)), None

        acc0 = (init_carry(closure, q), jnp.zeros_like(c0), c0, arrival0, r0)
        (_, expo, _, arrival, peak), _ = jax.lax.scan(body, acc0, f)
        return expo, arrival, peak

    return jax.vmap(one)(q0, forcing)


def forecast_scenarios(system, prep: PreparedData, indices, *, chunk: int = 8, final_only: bool = False) -> np.ndarray:
    """Concentration forecasts of scenarios ``indices`` of prepared data, from their t = 0 fields.

    ``(n, T, ny, nx)`` with frame 0 the dataset's initial field and the rest the model at
    the snapshot times; with ``final_only``, ``(n, ny, nx)`` at the final time (one frame
    per rollout, nothing else kept). Scenarios run ``chunk`` at a time, the last chunk
    padded, so one compiled rollout serves every chunk and split.
    """
    model, closure = system
    indices = np.asarray(indices, int)
    if indices.size == 0:
        return np.zeros((0,) + ((model.config.ny, model.config.nx) if final_only else (len(prep.times), model.config.ny,
                                                                                    model.config.nx)))
    chunk = max(1, min(chunk, len(indices)))
    steps_per_frame = prep.n_steps if final_only else prep.steps_per_snapshot
    out = []
    for s in range(0, len(indices), chunk):
        idx = indices[s : s + chunk]
        padded = np.resize(idx, chunk)
        q0 = model.encode(prep.conc[padded, 0])
        forcing = jax.tree.map(lambda a: jnp.asarray(a[padded]), prep.forcing)
        frames = np.asarray(model.decode(rollout_frames(model, closure, q0, forcing, steps_per_frame)))[: len(idx)]
        out.append(frames[:, -1] if final_only else np.concatenate([prep.conc[idx, :1], frames], axis=1))
    return np.concatenate(out, axis=0)


def check_members(systems, names=None) -> None:
    """Raise :class:`TrainError` unless every system forecasts on the first one's grid, flow and time step.

    The members of an ensemble share one :class:`PreparedData` (built for the first
    member's time step), so a member with another step or grid would be fed the wrong
    forcing; the message names the member and what differs.
    """
    systems = list(systems)
    if not systems:
        raise TrainError("an ensemble needs at least one member")
    names = list(names) if names is not None else [f"member {i}" for i in range(len(systems))]
    first = systems[0][0]
    c0 = first.config
    for name, (model, _) in zip(names[1:], systems[1:]):
        c = model.config
        for field, unit in (("dt", " s"), ("substeps", ""), ("dtype", "")):
            if getattr(c, field) != getattr(c0, field):
                raise TrainError(f"ensemble mismatch: {name} has {field} {getattr(c, field)}{unit} but {names[0]} "
                                 f"has {getattr(c0, field)}{unit}; members must share the time step and precision")
        if (c.ny, c.nx, c.dx, c.dy, c.x0, c.y0) != (c0.ny, c0.nx, c0.dx, c0.dy, c0.x0, c0.y0):
            raise TrainError(f"ensemble mismatch: {name} and {names[0]} are on different grids "
                             f"({c.ny} x {c.nx} cells of {c.dx} x {c.dy} m against {c0.ny} x {c0.nx} of {c0.dx} x {c0.dy} m)")
        for field in ("fluid", "u", "v", "w"):
            if not np.allclose(np.asarray(getattr(model, field)), np.asarray(getattr(first, field)), rtol=1e-4, atol=1e-6):
                raise TrainError(f"ensemble mismatch: the plane {field!r} of {name} differs from the one of {names[0]}")


def ensemble_moments(member_forecasts) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (over members, ``ddof=0``) of an iterable of equal-shape member forecasts.

    Consumed one member at a time (two float64 accumulators, not every member in memory);
    one member gives itself and zero spread.
    """
    n, total, sq = 0, None, None
    for f in member_forecasts:
        f = np.asarray(f, np.float64)
        total, sq = (f, f * f) if total is None else (total + f, sq + f * f)
        n += 1
    if n == 0:
        raise TrainError("an ensemble needs at least one member")
    mean = total / n
    return mean, np.sqrt(np.maximum(sq / n - mean * mean, 0.0))


def forecast_ensemble(systems, prep: PreparedData, indices, *, chunk: int = 8, final_only: bool = False,
                      names=None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and spread of the forecasts of several systems (a seed ensemble, say), scenario by scenario.

    Each member is rolled out on its own from the t = 0 fields (its own closure memory),
    as :func:`forecast_scenarios` does; the ensemble forecast is the members' mean and
    the spread their standard deviation (:func:`ensemble_moments`), same shapes as
    :func:`forecast_scenarios`'. Members are checked first (:func:`check_members`, whose
    messages use ``names``).
    """
    check_members(systems, names)
    return ensemble_moments(forecast_scenarios(system, prep, indices, chunk=chunk, final_only=final_only)
                            for system in systems)


def final_time_errors(system, prep: PreparedData, indices, chunk: int = 16) -> np.ndarray:
    """Relative L2 error at the dataset's final time per scenario (full rollouts from t = 0, fluid cells)."""
    indices = np.asarray(indices, int)
    final = forecast_scenarios(system, prep, indices, chunk=chunk, final_only=True)
    fluid = np.asarray(system[0].fluid)
    return np.asarray([relative_l2(q, t, fluid) for q, t in zip(final, prep.conc[indices, -1])])


AGE_BIN_S = 30.0  # point_log_errors' bins of the time since the release, s
AGE_BIN_MIN_VALUES = 20  # fewer pairs than this in a bin: no sd for it


def point_log_errors(system, prep: PreparedData, indices, *, windows_s, limit: float, chunk: int = 8,
                     age_bin_s: float = AGE_BIN_S) -> list[dict]:
    """The model's log error at single cells in the first seconds after each release.

    For every scenario of ``indices``, the forecast from its own source against the truth
    at every fluid cell and snapshot in ``(release, release + window]`` where both are at or
    above ``limit`` (mass/m^3): ``log(model / truth)``. One record per window of
    ``windows_s`` (s): ``model_error`` (its standard deviation: how far a sensor's reading
    can be from the forecast because the model is off, the noise model of ``locate``),
    ``bias`` (its mean), ``values`` (how many pairs) and ``by_age``: the same per
    ``age_bin_s`` bin of the time since the release (``age_s`` its middle), since the model
    is furthest off while a plume first arrives. The release is the first model step with a
    positive rate.
    """
    model = system[0]
    indices = np.asarray(indices, int)
    times = np.asarray(prep.times, float)
    fluid = np.asarray(model.fluid) > 0
    errors = {float(w): [] for w in windows_s}
    ages = {float(w): [] for w in windows_s}
    for s in range(0, len(indices), chunk):  # a chunk of trajectories in memory at a time
        part = indices[s : s + chunk]
        frames = forecast_scenarios(system, prep, part, chunk=chunk)
        for n, i in enumerate(part):
            on = np.flatnonzero(np.asarray(prep.forcing.rate[i]).reshape(prep.n_steps, -1).max(axis=1) > 0)
            if on.size == 0:
                continue
            release = float(np.asarray(prep.forcing.t[i])[on[0]])
            truth = np.asarray(prep.conc[i])
            for w in errors:
                k = (times > release + 1e-9) & (times <= release + w + 1e-9)
                pred, true = frames[n][k][:, fluid], truth[k][:, fluid]
                both = (pred >= limit) & (true >= limit)
                errors[w].append(np.log(pred[both] / true[both]))
                ages[w].append(np.broadcast_to((times[k] - release)[:, None], both.shape)[both])
    out = []
    for w, parts in errors.items():
        e = np.concatenate(parts) if parts else np.zeros(0)
        a = np.concatenate(ages[w]) if parts else np.zeros(0)
        by_age = []
        for lo in np.arange(0.0, w - 1e-9, age_bin_s):
            hi = min(lo + age_bin_s, w)
            m = (a > lo + 1e-9) & (a <= hi + 1e-9)
            if m.sum() >= AGE_BIN_MIN_VALUES:
                by_age.append({"age_s": float(0.5 * (lo + hi)), "from_s": float(lo), "to_s": float(hi),
                               "values": int(m.sum()),
                               "model_error": float(e[m].std()), "bias": float(e[m].mean())})
        out.append({"window_s": w, "limit": float(limit), "values": int(e.size),
                    "model_error": float(e.std()) if e.size else None, "bias": float(e.mean()) if e.size else None,
                    "by_age": by_age})
    return out


def as_members(system) -> list:
    """The members of ``system``: a list of ``(model, closure)`` is an ensemble, one ``(model, closure)`` a member."""
    return list(system) if isinstance(system, list) else [system]


def forecast(system, ds, scenario: str) -> np.ndarray:
    """Concentration ``(T, ny, nx)`` at the dataset's snapshot times for one scenario (t = 0 from the data).

    For an ensemble (a list of systems) the members' mean; :func:`forecast_spread` gives both.
    """
    return forecast_spread(system, ds, scenario)[0]


def forecast_spread(system, ds, scenario: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean and spread ``(T, ny, nx)`` of one scenario's forecast by one system (zero spread) or an ensemble."""
    members = as_members(system)
    model = members[0][0]
    for i, (member, _) in enumerate(members):
        check_grid(member, ds, run=f"ensemble member {i}" if len(members) > 1 else "the model")
    prep = prepare_data(ds, model.config.dt, model.config.dtype, fluid=np.asarray(model.fluid))
    mean, spread = forecast_ensemble(members, prep, [prep.index(scenario)], chunk=1)
    if not np.isfinite(mean[0]).all():
        raise TrainError(f"the forecast of {scenario!r} is not finite")
    return mean[0], spread[0]


def forecast_dataset(system, ds, scenario: str, *, about: dict | None = None):
    """A forecast of one scenario written in the dataset schema (generator ``plumecast-forecast``).

    ``about`` (the run directory, variant, preset, ...) is stored under ``forecast`` in
    the scenario config, beside the data's own config.
    """
    import json

    from plumecast.io.dataset import make_dataset

    conc, spread = forecast_spread(system, ds, scenario)
    n_members = len(as_members(system))
    i = [str(s) for s in ds["scenario"].values].index(scenario)
    try:
        original = json.loads(ds.attrs["scenario_config"])
    except (KeyError, TypeError, ValueError):
        original = {}
    meta = dict(original) if isinstance(original, dict) else {"source_scenario_config": original}
    c = as_members(system)[0][0].config
    meta["forecast"] = {**(about or {}), "scenario": scenario, "data_generator": str(ds.attrs.get("generator", "")),
                        "dt_s": c.dt, "substeps": c.substeps, "ensemble_members": n_members}
    out = make_dataset(
        scenario_names=[scenario],
        splits=[str(ds["split"].values[i])],
        times_s=ds["time"].values,
        x_m=ds["x"].values,
        y_m=ds["y"].values,
        concentration=conc[None],
        u=ds["u"].values,
        v=ds["v"].values,
        w=ds["w"].values,
        nu_t=ds["nu_t"].values,
        fluid_fraction=ds["fluid_fraction"].values,
        source_xyz=np.stack([ds[f"source_{k}"].values[i] for k in ("x", "y", "z")], axis=-1)[None],
        source_rate=ds["source_rate"].values[i][None],
        plane_height_m=float(ds.attrs["plane_height_m"]),
        mass_unit=str(ds.attrs["mass_unit"]),
        generator="plumecast-forecast",
        generator_version=plumecast.__version__,
        scenario_config=meta,
    )
    return with_spread(out, spread, n_members)


def with_spread(ds, spread, n_members: int):
    """``ds`` (one scenario) with ``concentration_spread``, the ensemble's ``(T, ny, nx)`` spread, when it has members."""
    if n_members < 2:
        return ds
    return ds.assign(concentration_spread=(
        ("scenario", "time", "y", "x"), np.asarray(spread, np.float32)[None],
        {"units": ds["concentration"].attrs.get("units", ""),
         "long_name": f"standard deviation of the {n_members} ensemble members' concentration forecasts"}))
