"""Evaluate a trained run on one split of a dataset: forecasts of every scenario, metrics.

``evaluate_run(run_dir, data, split)`` loads the run's latest checkpoint (through
:func:`plumecast.train.load_run`), checks that the dataset lies on the model's grid (same
cells, spacing, origin, fluid mask and plane flow; anything else is an
:class:`EvaluationError` that says what differs), rolls out every scenario of the split
from its t = 0 field with :func:`plumecast.rollout.rollout` (vmapped over fixed-size
chunks of scenarios, so one compiled forecast serves the whole split), and computes the
metrics of :mod:`plumecast.metrics` at every snapshot time. Reports are written by
:mod:`plumecast.report`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from plumecast import metrics as M
from plumecast.io.dataset import SPLITS, DatasetError, read_dataset
from plumecast.rollout import init_carry, rollout

__all__ = ["EvaluationError", "Evaluation", "check_compatible", "forecast_scenarios", "evaluate_run", "evaluate_system"]


class EvaluationError(ValueError):
    """An evaluation that cannot run as asked; the message names the problem."""


@dataclass
class Evaluation:
    """Forecasts and metrics of one run on one split of one dataset."""

    run_dir: str
    variant: str
    preset: str
    data: str
    split: str
    scenarios: list[str]
    times: np.ndarray  # (T,) s
    x: np.ndarray  # (nx,) m
    y: np.ndarray  # (ny,) m
    fluid: np.ndarray  # (ny, nx)
    truth: np.ndarray  # (n, T, ny, nx) concentration
    forecast: np.ndarray  # (n, T, ny, nx)
    per_time: dict[str, np.ndarray]  # metric -> (n, T)
    summary: dict  # metrics.summarise(per_time)
    rollout_seconds: float  # wall time of all forecasts, compilation included
    mass_unit: str = ""
    non_finite: list[str] = field(default_factory=list)  # scenarios whose forecast is not finite
    system: tuple | None = None  # the (model, closure) evaluated, for pictures of what it learned

    @property
    def label(self) -> str:
        return Path(self.run_dir).name or str(self.run_dir)


def check_compatible(model, ds, *, run: str = "the model", data: str = "the dataset") -> None:
    """Raise :class:`EvaluationError` unless ``ds`` lies on ``model``'s grid and flow."""
    c = model.config
    ny, nx = int(ds.sizes["y"]), int(ds.sizes["x"])
    if (ny, nx) != (c.ny, c.nx):
        raise EvaluationError(
            f"grid mismatch: {run} has a {c.ny} x {c.nx} (y x x) grid but {data} is {ny} x {nx}; "
            "evaluate a run on data of the room it was trained for"
        )
    dx, dy = float(ds.attrs["dx_m"]), float(ds.attrs["dy_m"])
    x0, y0 = float(ds["x"].values[0]), float(ds["y"].values[0])
    if not np.allclose([dx, dy], [c.dx, c.dy], rtol=1e-6):
        raise EvaluationError(f"grid mismatch: {run} has cells of {c.dx} x {c.dy} m but {data} of {dx} x {dy} m")
    if not np.allclose([x0, y0], [c.x0, c.y0], rtol=1e-6, atol=1e-9):
        raise EvaluationError(
            f"grid mismatch: {run} has its first cell centre at ({c.x0}, {c.y0}) m but {data} at ({x0}, {y0}) m"
        )
    mf, df = np.asarray(model.fluid) > 0, np.asarray(ds["fluid"].values) > 0
    if not np.array_equal(mf, df):
        raise EvaluationError(
            f"grid mismatch: the fluid masks of {run} and {data} differ in {int((mf != df).sum())} cells"
        )
    for name in ("u", "v", "w"):
        a, b = np.asarray(ds[name].values, float) * mf, np.asarray(getattr(model, name), float)
        if not np.allclose(a, b, rtol=1e-4, atol=1e-6):
            raise EvaluationError(f"flow mismatch: the plane velocity {name!r} of {data} differs from the one of {run}")


@eqx.filter_jit
def _forecast_batch(model, closure, q0, forcing, steps_per_frame: int):
    def one(q, f):
        _, frames = rollout(model, closure, init_carry(closure, q), f, steps_per_frame=steps_per_frame)
        return frames

    return jax.vmap(one)(q0, forcing)


def forecast_scenarios(system, prep, indices, *, chunk: int = 8) -> np.ndarray:
    """Concentration forecasts ``(n, T, ny, nx)`` of scenarios ``indices`` of prepared data.

    Frame 0 is the dataset's initial field; the rest are the model's rollout at the
    snapshot times. Scenarios run ``chunk`` at a time (the last chunk padded), so one
    compiled forecast serves every chunk.
    """
    model, closure = system
    indices = np.asarray(indices, int)
    chunk = max(1, min(chunk, len(indices)))
    out = []
    for s in range(0, len(indices), chunk):
        idx = indices[s : s + chunk]
        padded = np.resize(idx, chunk)
        q0 = model.encode(prep.conc[padded, 0])
        forcing = jax.tree.map(lambda a: jnp.asarray(a[padded]), prep.forcing)
        frames = np.asarray(_forecast_batch(model, closure, q0, forcing, prep.steps_per_snapshot))[: len(idx)]
        out.append(np.concatenate([prep.conc[idx, :1], np.asarray(model.decode(frames))], axis=1))
    return np.concatenate(out, axis=0)


def evaluate_system(system, ds, split: str, *, run_dir: str = "", variant: str = "", preset: str = "", data: str = "",
                    chunk: int = 8) -> Evaluation:
    """Forecast and score every scenario of ``split`` with a ``(model, closure)`` system."""
    from plumecast.train import TrainError, prepare_data

    if split not in SPLITS:
        raise EvaluationError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    model = system[0]
    check_compatible(model, ds, run=run_dir or "the model", data=data or "the dataset")
    try:
        prep = prepare_data(ds, model.config.dt, model.config.dtype, fluid=np.asarray(model.fluid))
    except TrainError as e:
        raise EvaluationError(str(e)) from None
    indices = prep.indices(split)
    if indices.size == 0:
        present = sorted(set(prep.splits))
        raise EvaluationError(f"{data or 'the dataset'} has no scenario in the {split!r} split (it has: {', '.join(present)})")
    t0 = time.perf_counter()
    pred = forecast_scenarios(system, prep, indices, chunk=chunk)
    seconds = time.perf_counter() - t0
    truth = prep.conc[indices].astype(float)
    fluid = np.asarray(ds["fluid"].values, float)
    x, y = np.asarray(ds["x"].values, float), np.asarray(ds["y"].values, float)
    names = [prep.names[i] for i in indices]
    bad = [n for n, p in zip(names, pred) if not np.isfinite(p).all()]
    per = [M.scenario_metrics(p, t, fluid, prep.times, x, y) for p, t in zip(pred, truth)]
    per_time = {m: np.stack([d[m] for d in per]) for m in M.METRICS}
    return Evaluation(
        run_dir=str(run_dir),
        variant=variant,
        preset=preset,
        data=str(data),
        split=split,
        scenarios=names,
        times=np.asarray(prep.times, float),
        x=x,
        y=y,
        fluid=fluid,
        truth=truth,
        forecast=pred,
        per_time=per_time,
        summary=M.summarise(per_time),
        rollout_seconds=seconds,
        mass_unit=str(ds.attrs.get("mass_unit", "")),
        non_finite=bad,
        system=tuple(system),
    )


def load_system(run_dir: str | Path):
    """``(system, train_config)`` of a run's latest checkpoint; :class:`EvaluationError` if unreadable."""
    from plumecast.io.checkpoint import CheckpointError
    from plumecast.train import TrainError, load_run

    try:
        system, config, _ = load_run(run_dir)
    except (TrainError, CheckpointError) as e:
        raise EvaluationError(str(e)) from None
    return system, config


def evaluate_run(run_dir: str | Path, data, split: str = "test", *, chunk: int = 8) -> Evaluation:
    """Evaluate the latest checkpoint of ``run_dir`` on ``split`` of ``data`` (path or Dataset)."""
    system, config = load_system(run_dir)
    label = str(data) if isinstance(data, (str, Path)) else "the dataset"
    if isinstance(data, (str, Path)):
        try:
            data = read_dataset(data)
        except DatasetError as e:
            raise EvaluationError(str(e)) from None
    return evaluate_system(system, data, split, run_dir=str(run_dir), variant=config.variant, preset=config.preset,
                           data=label, chunk=chunk)
