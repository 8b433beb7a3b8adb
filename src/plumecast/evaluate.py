"""Evaluate a trained run on one split of a dataset: forecasts of every scenario, metrics.

``evaluate_run(run_dir, data, split)`` loads the run's selected model (the best on the val
split; the latest checkpoint for a run without one, or with ``model="last"``; through
:func:`plumecast.train.load_run`), checks that the dataset lies on the model's grid (same
cells, spacing, origin, fluid mask and plane flow; anything else is an
:class:`EvaluationError` that says what differs), rolls out every scenario of the split
from its t = 0 field with :func:`plumecast.forecast.forecast_scenarios` (vmapped over fixed-size
chunks of scenarios, so one compiled forecast serves the whole split), and computes the
metrics of :mod:`plumecast.metrics` at every snapshot time. Reports are written by
:mod:`plumecast.report`.

Splits (:data:`plumecast.io.dataset.SPLITS`) have roles (:data:`SPLIT_ROLES`): ``train``
is fitted, ``val`` chooses (options, checkpoint, early stopping, seeds), ``test`` and
``ood`` are only reported (docs/evaluation.md, "Protocol: choose on val, report test and
OOD"). An evaluation of any split is the same computation; the role goes into the reports.

**Lazy data** (``lazy=True``, ``plumecast evaluate --lazy``): the dataset's concentration
stays in its file (:func:`plumecast.io.dataset.open_dataset_lazy`); scenarios are read,
forecast and scored one chunk at a time, and only their metrics are kept. The
:class:`Evaluation`'s ``truth`` and ``forecast`` are then :class:`ScenarioFrames`: a
scenario's frames are read (truth) or forecast again (forecast) when a report asks for
them, for the few example scenarios it draws. The metrics are the eager path's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from plumecast import metrics as M
from plumecast.errors import TrainError
from plumecast.forcing import prepare_data
from plumecast.forecast import check_grid, forecast_scenarios
from plumecast.io.dataset import SPLITS, DatasetError, open_dataset_lazy, read_dataset

__all__ = ["EvaluationError", "Evaluation", "ScenarioFrames", "SPLIT_ROLES", "check_compatible", "evaluate_run",
           "evaluate_system", "read_data"]

SPLIT_ROLES = {
    "train": "fitted by training",
    "val": "chooses: options, checkpoint, early stopping, seeds",
    "test": "reported only, never used to choose",
    "ood": "reported only (moving sources), never used to choose",
}
assert set(SPLIT_ROLES) == set(SPLITS), "every split of the schema has a role"


class EvaluationError(ValueError):
    """An evaluation that cannot run as asked; the message names the problem."""


class ScenarioFrames:
    """``(n, T, ny, nx)`` frames of a split's scenarios made one scenario at a time, when asked for.

    ``frames[i]`` is scenario ``i``'s ``(T, ny, nx)`` array from ``make(i)``, and
    ``frames[i, k, ...]`` indexes it; the last scenario made is kept, so a figure that
    reads one scenario frame by frame makes it once.
    """

    def __init__(self, shape: tuple[int, ...], make):
        self.shape = tuple(shape)
        self.ndim = len(self.shape)
        self._make = make
        self._last: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        i = int(key[0])
        i = i + self.shape[0] if i < 0 else i
        if not 0 <= i < self.shape[0]:
            raise IndexError(f"scenario {key[0]} of {self.shape[0]}")
        if self._last is None or self._last[0] != i:
            self._last = (i, self._make(i))
        return self._last[1][key[1:]]


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
    truth: np.ndarray | ScenarioFrames  # (n, T, ny, nx) concentration (lazy data: ScenarioFrames)
    forecast: np.ndarray | ScenarioFrames  # (n, T, ny, nx)
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
    try:
        check_grid(model, ds, run=run, data=data)
    except TrainError as e:
        raise EvaluationError(str(e)) from None


def evaluate_system(system, ds, split: str, *, run_dir: str = "", variant: str = "", preset: str = "", data: str = "",
                    chunk: int = 8, lazy: bool = False) -> Evaluation:
    """Forecast and score every scenario of ``split`` with a ``(model, closure)`` system.

    ``lazy``: read ``ds``'s concentration a chunk of scenarios at a time and keep only the
    metrics (the module docstring says how); open ``ds`` with :func:`read_data` so.
    """
    if split not in SPLITS:
        raise EvaluationError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    model = system[0]
    check_compatible(model, ds, run=run_dir or "the model", data=data or "the dataset")
    try:
        prep = prepare_data(ds, model.config.dt, model.config.dtype, fluid=np.asarray(model.fluid), lazy=lazy)
    except TrainError as e:
        raise EvaluationError(str(e)) from None
    indices = prep.indices(split)
    if indices.size == 0:
        present = sorted(set(prep.splits))
        raise EvaluationError(f"{data or 'the dataset'} has no scenario in the {split!r} split (it has: {', '.join(present)})")
    fluid = np.asarray(ds["fluid"].values, float)
    x, y = np.asarray(ds["x"].values, float), np.asarray(ds["y"].values, float)
    names = [prep.names[i] for i in indices]
    chunk = max(1, min(chunk, len(indices)))

    def forecast_of(idx):
        # Padded to a whole chunk, as forecast_scenarios pads its last one: one compiled shape.
        return forecast_scenarios(system, prep, np.resize(idx, chunk), chunk=chunk)[: len(idx)]

    seconds, per, bad = 0.0, [], []
    truths = preds = None  # eager: the whole split's frames, filled a chunk at a time
    for start in range(0, len(indices), chunk):  # eager or lazy, one chunk of scenarios at a time
        idx = indices[start : start + chunk]
        t0 = time.perf_counter()
        pred = forecast_of(idx)
        seconds += time.perf_counter() - t0
        truth = prep.conc[idx].astype(float)
        bad += [names[start + j] for j, p in enumerate(pred) if not np.isfinite(p).all()]
        per += [M.scenario_metrics(p, t, fluid, prep.times, x, y) for p, t in zip(pred, truth)]
        if not lazy:
            if truths is None:
                truths = np.empty((len(indices),) + truth.shape[1:], truth.dtype)
                preds = np.empty((len(indices),) + pred.shape[1:], pred.dtype)
            truths[start : start + len(idx)] = truth
            preds[start : start + len(idx)] = pred
    per_time = {m: np.stack([d[m] for d in per]) for m in M.METRICS}
    if lazy:
        shape = (len(indices),) + tuple(prep.conc.shape[1:])
        truth = ScenarioFrames(shape, lambda i: prep.conc[int(indices[i])].astype(float))
        pred = ScenarioFrames(shape, lambda i: forecast_of(indices[i : i + 1])[0])
    else:
        truth, pred = truths, preds
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


def load_system(run_dir: str | Path, model: str = "selected"):
    """``(system, train_config)`` of a run's selected model (or ``model="last"``); :class:`EvaluationError` if unreadable."""
    from plumecast.io.checkpoint import CheckpointError
    from plumecast.train import load_run

    try:
        system, config, _ = load_run(run_dir, model=model)
    except (TrainError, CheckpointError) as e:
        raise EvaluationError(str(e)) from None
    return system, config


def read_data(path: str | Path, lazy: bool = False):
    """The dataset at ``path``: read whole, or with ``lazy`` opened with its concentration left in the file."""
    try:
        return open_dataset_lazy(path) if lazy else read_dataset(path)
    except DatasetError as e:
        raise EvaluationError(str(e)) from None


def evaluate_run(run_dir: str | Path, data, split: str = "test", *, chunk: int = 8, model: str = "selected",
                 lazy: bool = False) -> Evaluation:
    """Evaluate the selected model of ``run_dir`` (or ``model="last"``) on ``split`` of ``data`` (path or Dataset).

    ``lazy``: see :func:`evaluate_system`; a path is opened lazily and stays open while
    the evaluation's frames are in use (its truth is read from it).
    """
    system, config = load_system(run_dir, model)
    label = str(data) if isinstance(data, (str, Path)) else "the dataset"
    if isinstance(data, (str, Path)):
        data = read_data(data, lazy)
    return evaluate_system(system, data, split, run_dir=str(run_dir), variant=config.variant, preset=config.preset,
                           data=label, chunk=chunk, lazy=lazy)
