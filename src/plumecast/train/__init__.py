"""Training: the engine shared by every variant, split by what each part is.

* :mod:`~plumecast.train.config`: :class:`TrainConfig` (three small typed settings:
  physics, schedule, objective) and the presets;
* :mod:`~plumecast.train.windows`: the curriculum cut into truncated windows and batches;
* :mod:`~plumecast.train.loss`: the window loss and regularisers;
* :mod:`~plumecast.train.optim`: the optimiser (clipped Adam, the rate's decay, the
  optional parameter average);
* :mod:`~plumecast.train.system`: the ``(model, closure)`` a run trains, built or loaded;
* :mod:`~plumecast.train.select`: the val score and the run's selected (best-on-val) model;
* :mod:`~plumecast.train.loop`: the jitted window update and batch rollout, the epoch loop,
  validation, early stopping, checkpoints.

Protocol (the paper's, with the public code's defects corrected): every rollout starts at
t = 0; every snapshot is compared once, at its own time; later phases start at t = 0 too;
checkpoints are Equinox leaves plus JSON, never pickle. Only the ``val`` split chooses
(the selected checkpoint, early stopping); ``test`` and ``ood`` are only reported
(docs/evaluation.md, "Protocol: choose on val, report test and OOD"). Forecasts of a trained run are
:mod:`plumecast.forecast`'s.
"""

from plumecast.errors import TrainError
from plumecast.train.config import PRESETS, Objective, PhysicsSettings, Schedule, TrainConfig, preset_config
from plumecast.train.loop import TrainResult, train
from plumecast.train.system import build_system, load_run

__all__ = ["TrainError", "TrainConfig", "PhysicsSettings", "Schedule", "Objective", "PRESETS", "preset_config",
           "TrainResult", "train", "build_system", "load_run"]
