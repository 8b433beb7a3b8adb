"""Choosing on the validation split: the val score and the run's selected model.

* **Val score** (:func:`val_score`): the median over the ``val`` scenarios of the relative
  L2 error at the dataset's final time of a full rollout from t = 0, through the one
  forecasting API (:func:`plumecast.forecast.final_time_errors`). A forecast that is not
  finite scores ``inf``: a diverging model is never selected (a NaN-ignoring median would
  hide it).
* **Selected model**: the model with the best val score so far (the untrained or started
  model included, as "epoch 0"), stored beside the checkpoints as ``RUN/selected/``:
  ``model-EEEEEE.eqx`` (Equinox leaves, no pickle) and ``selected.json`` (epoch, phase,
  val score, file name). The leaves are written first and ``selected.json`` is replaced
  atomically after, so a crash at any moment leaves a pointer to a complete file. The
  last model stays the resumable checkpoint (:mod:`plumecast.io.checkpoint`).

* **How much the pick means** (:func:`pick_evidence`): the selected model against the last
  one, scenario by scenario on val (how many val scenarios the pick scores lower on, and a
  two-sided sign test). On a small val split the best epoch's edge over its neighbours
  can be noise: on embedded paper-room (8 val scenarios until session 34) the plane physics' picks were lower
  than the last model on only 3-5 of 8, and higher on OOD in two seeds of three
  (docs/results.md, session 33).

Test and OOD scores are never read here: only ``val`` chooses (docs/evaluation.md,
"Protocol: choose on val, report test and OOD").
"""

from __future__ import annotations

from pathlib import Path

import equinox as eqx
import numpy as np

from plumecast.forecast import final_time_errors
from plumecast.io.atomic import atomic_path
from plumecast.io.checkpoint import CheckpointError, read_json, write_json_atomic

__all__ = ["VAL_SPLIT", "val_score", "pick_evidence", "write_selected", "read_selected", "selected_path"]

VAL_SPLIT = "val"
_DIR = "selected"
_POINTER = "selected.json"


def val_score(system, prep, val_idx) -> float:
    """Median final-time relative L2 error over the val scenarios (``inf`` when any forecast is not finite)."""
    err = final_time_errors(system, prep, val_idx)
    if err.size == 0:
        raise ValueError("no val scenarios to score")
    return float(np.median(err)) if np.isfinite(err).all() else float("inf")


def pick_evidence(selected_err, last_err) -> dict:
    """The selected model against the last one on the val scenarios' final-time errors (same order).

    ``{"scenarios", "selected_lower_on", "last_lower_on", "sign_test_p"}``: the two-sided
    sign test over the scenarios where the two differ (1.0 when none does); a non-finite
    error counts as the higher one.
    """
    from scipy.stats import binomtest

    sel, last = (np.asarray(e, float) for e in (selected_err, last_err))
    if sel.shape != last.shape or sel.ndim != 1 or sel.size == 0:
        raise ValueError(f"pick_evidence needs two equal, non-empty lists of val errors, got {sel.shape} and {last.shape}")
    sel, last = (np.where(np.isfinite(e), e, np.inf) for e in (sel, last))
    lower, higher = int(np.sum(sel < last)), int(np.sum(sel > last))
    p = binomtest(lower, lower + higher, 0.5).pvalue if lower + higher else 1.0
    return {"scenarios": int(sel.size), "selected_lower_on": lower, "last_lower_on": higher, "sign_test_p": float(p)}


def write_selected(run_dir: str | Path, system, info: dict) -> Path:
    """Store ``system`` as the run's selected model with ``info`` (epoch, phase, val); atomic."""
    root = Path(run_dir) / _DIR
    root.mkdir(parents=True, exist_ok=True)
    name = f"model-{int(info['epoch']):06d}.eqx"
    with atomic_path(root / name) as tmp:
        eqx.tree_serialise_leaves(tmp, system)
    write_json_atomic(root / _POINTER, {**info, "file": name})
    for old in root.glob("model-*.eqx"):  # earlier selections; the pointer no longer names them
        if old.name != name:
            old.unlink(missing_ok=True)
    return root / name


def read_selected(run_dir: str | Path) -> dict | None:
    """The selection record of a run (``selected.json``), or None when the run has none."""
    path = Path(run_dir) / _DIR / _POINTER
    if not path.is_file():
        return None
    info = read_json(path)
    if not isinstance(info, dict) or "file" not in info or "epoch" not in info:
        raise CheckpointError(f"{path}: not a selection record (no 'file' and 'epoch')")
    if not (path.parent / str(info["file"])).is_file():
        raise CheckpointError(f"{path}: the selected model file {info['file']} is missing")
    return info


def selected_path(run_dir: str | Path, info: dict) -> Path:
    return Path(run_dir) / _DIR / str(info["file"])
