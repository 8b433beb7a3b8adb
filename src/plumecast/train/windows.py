"""Truncated windows and batches: how the training split is cut into optimiser steps.

* **Curriculum.** Phases of increasing horizon. In every phase each rollout starts at
  t = 0 from the dataset's initial field (and zero closure memory) and runs to the
  phase's horizon, cut into windows of ``window_s``; each window is one optimiser step,
  and its final field and memory (gradients stopped) seed the next window.
* **Snapshots.** Window ``k`` covers the snapshots at ``t_k + j * interval`` for
  ``j = 1 .. F``: every snapshot after t = 0 is compared, exactly once, with the
  prediction at exactly its own time; the one at a window's end belongs to that window.
* **Batches.** ``batch_size`` train scenarios per step, reshuffled each epoch with a key
  derived from the run key and the epoch number; the last batch wraps around, so every
  batch has the same shape and nothing recompiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from plumecast.errors import TrainError
from plumecast.forcing import PreparedData
from plumecast.train.config import Schedule

__all__ = ["WindowPlan", "window_plan", "epoch_batches", "window_slice"]


@dataclass(frozen=True)
class WindowPlan:
    frames: int  # snapshots per window
    steps: int  # model steps per window
    windows: tuple[int, ...]  # windows per rollout, per curriculum phase


def window_plan(schedule: Schedule, prep: PreparedData, dt_s: float) -> WindowPlan:
    """Frames and steps per window and windows per phase; errors when the data cannot be cut so."""
    interval = prep.steps_per_snapshot * dt_s
    frames = schedule.window_s / interval
    if not math.isclose(frames, round(frames), abs_tol=1e-9) or round(frames) < 1:
        raise TrainError(f"window {schedule.window_s:g} s is not a whole number of {interval:g} s snapshot intervals")
    horizon = float(prep.times[-1] - prep.times[0])
    if schedule.curriculum_s[-1] > horizon + 1e-9:
        raise TrainError(f"curriculum horizon {schedule.curriculum_s[-1]:g} s exceeds the dataset's {horizon:g} s; "
                         "shorten the curriculum")
    F = int(round(frames))
    return WindowPlan(F, F * prep.steps_per_snapshot, tuple(int(round(h / schedule.window_s)) for h in schedule.curriculum_s))


def epoch_batches(key, epoch: int, train_idx: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """The batches of scenario indices of one epoch (a permutation from the key and epoch, wrapped to full batches)."""
    n_batches = max(1, math.ceil(len(train_idx) / batch_size))
    perm = np.asarray(jax.random.permutation(jax.random.fold_in(key, epoch), len(train_idx)))
    order = train_idx[np.resize(perm, n_batches * batch_size)]
    return [order[b * batch_size : (b + 1) * batch_size] for b in range(n_batches)]


def window_slice(prep: PreparedData, conc_normalised: np.ndarray, idx: np.ndarray, k: int, plan: WindowPlan, dtype):
    """``(forcing, targets)`` of window ``k`` for scenarios ``idx``: ``(B, steps)`` forcing, ``(B, F, ny, nx)`` targets."""
    forcing = jax.tree.map(lambda a: jnp.asarray(a[idx, k * plan.steps : (k + 1) * plan.steps]), prep.forcing)
    targets = jnp.asarray(conc_normalised[idx, k * plan.frames + 1 : (k + 1) * plan.frames + 1], dtype)
    return forcing, targets
