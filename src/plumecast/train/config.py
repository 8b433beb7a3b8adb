"""What defines a training run: three small typed settings and the presets.

A :class:`TrainConfig` is the variant (and its closure options), the seed, the run it
starts from, and three frozen settings objects, each saved as JSON with the run:

* :class:`PhysicsSettings`: the coarse model being trained (time step, substeps, the
  bounds of the learned exchange, source scale and observation factor, dtype);
* :class:`Schedule`: the curriculum, truncated windows, batches and the optimiser;
* :class:`Objective`: the snapshot loss and its regularisers.

``TrainConfig.replace(**changes)`` takes the names of any field of the three (they are
unique), so ``plumecast train --set observation_log_max=1.0`` needs no prefix; every
value is checked when the settings are built.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from plumecast.closure import get_variant
from plumecast.errors import TrainError

__all__ = ["PhysicsSettings", "Schedule", "Objective", "TrainConfig", "LOSSES", "PRESETS", "preset_config"]

# Snapshot losses (train/loss.py): "field" the squared relative L2 error of the snapshot,
# "cell" the paper's per-cell relative squared error, "field+root" the field loss plus the
# same on square roots (the room's background weighs in).
LOSSES = ("field", "cell", "field+root")


def _positive(name: str, value, *, integer: bool = False, zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise TrainError(f"{name} must be a{' whole' if integer else ''} number, got {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        raise TrainError(f"{name} must be finite and {'>= 0' if zero else '> 0'}, got {value!r}")


@dataclass(frozen=True)
class PhysicsSettings:
    """The coarse model being trained (:mod:`plumecast.physics.model`)."""

    dt_s: float = 0.4
    substeps: int = 4
    # Bound of the learned exchange between the plane and the rest of the room, 1/s; 0 = off.
    exchange_max_per_s: float = 0.05
    source_scale_max: float = 10.0
    # The learned observation factor of the plane: bound of |log g| (0 = off) and the
    # spacing of its control points in cells.
    observation_log_max: float = 0.0
    observation_spacing_cells: int = 1
    layer_height_m: float | None = None  # None: the room height of the dataset's scenario config
    dtype: str = "float32"

    def __post_init__(self):
        _positive("dt_s", self.dt_s)
        _positive("substeps", self.substeps, integer=True)
        _positive("exchange_max_per_s", self.exchange_max_per_s, zero=True)
        _positive("observation_log_max", self.observation_log_max, zero=True)
        _positive("observation_spacing_cells", self.observation_spacing_cells, integer=True)
        _positive("source_scale_max", self.source_scale_max)
        if self.source_scale_max < 1:
            raise TrainError(f"source_scale_max must be >= 1, got {self.source_scale_max}")
        if self.layer_height_m is not None:
            _positive("layer_height_m", self.layer_height_m)
        if self.dtype not in ("float32", "float64"):
            raise TrainError(f"dtype must be float32 or float64, got {self.dtype!r}")


@dataclass(frozen=True)
class Schedule:
    """Curriculum, truncated windows, batches and the optimiser (Adam after global-norm clipping)."""

    curriculum_s: tuple[float, ...] = (60.0, 120.0, 300.0, 600.0)
    epochs: tuple[int, ...] = (500, 500, 500, 500)
    window_s: float = 60.0
    batch_size: int = 5
    learning_rate: float = 1e-5
    clip_norm: float = 0.1

    def __post_init__(self):
        for name in ("curriculum_s", "epochs"):
            if not isinstance(getattr(self, name), (list, tuple)):
                raise TrainError(f"{name} must be a list, got {getattr(self, name)!r}")
        for e in self.epochs:
            _positive("every entry of epochs", e, integer=True, zero=True)
        for h in self.curriculum_s:
            _positive("every entry of curriculum_s", h)
        object.__setattr__(self, "curriculum_s", tuple(float(h) for h in self.curriculum_s))
        object.__setattr__(self, "epochs", tuple(self.epochs))
        _positive("window_s", self.window_s)
        _positive("batch_size", self.batch_size, integer=True)
        _positive("learning_rate", self.learning_rate)
        _positive("clip_norm", self.clip_norm)
        if not self.curriculum_s or len(self.epochs) != len(self.curriculum_s):
            raise TrainError(f"epochs {self.epochs} must give one count per curriculum phase {self.curriculum_s}")
        if list(self.curriculum_s) != sorted(self.curriculum_s):
            raise TrainError(f"curriculum horizons must increase, got {self.curriculum_s}")
        for h in self.curriculum_s:
            if not math.isclose(h / self.window_s, round(h / self.window_s), abs_tol=1e-9) or h < self.window_s:
                raise TrainError(f"curriculum horizon {h} s is not a whole number of {self.window_s} s windows")


@dataclass(frozen=True)
class Objective:
    """The loss of a window: a snapshot loss (``LOSSES``, floored at ``loss_floor``) plus regularisers.

    ``weight_decay`` times the sum of squared network weights; ``smoothness`` times the
    mean squared jump of the diffusivity logits between neighbouring faces (space);
    ``temporal_smoothness`` times the mean squared change of the predicted plane field
    between consecutive snapshots, over the snapshot's mean square (time).
    """

    loss: str = "cell"
    loss_floor: float = 0.1
    weight_decay: float = 0.0
    smoothness: float = 0.0
    temporal_smoothness: float = 0.0

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise TrainError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        _positive("loss_floor", self.loss_floor)
        for name in ("weight_decay", "smoothness", "temporal_smoothness"):
            _positive(name, getattr(self, name), zero=True)


_PARTS = {"physics": PhysicsSettings, "schedule": Schedule, "objective": Objective}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (saved as JSON in ``RUN_DIR/config.json``)."""

    variant: str = "physics"
    closure_options: dict = field(default_factory=dict)
    preset: str = "custom"
    seed: int = 0
    # A trained run whose coarse model (Dx, Dy, exchange, source scale, observation factor,
    # c_ref) and off-plane layer start this one; a network closure still starts at zero, so
    # training begins from that run's forecasts.
    init_from: str | None = None
    physics: PhysicsSettings = field(default_factory=PhysicsSettings)
    schedule: Schedule = field(default_factory=Schedule)
    objective: Objective = field(default_factory=Objective)

    def __post_init__(self):
        if not isinstance(self.closure_options, dict):
            raise TrainError(f"closure_options must be an object, got {self.closure_options!r}")
        object.__setattr__(self, "closure_options", dict(self.closure_options))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TrainError(f"seed must be a whole number, got {self.seed!r}")
        if self.init_from is not None and not isinstance(self.init_from, str):
            raise TrainError(f"init_from must be a run directory, got {self.init_from!r}")
        for name, cls in _PARTS.items():
            if not isinstance(getattr(self, name), cls):
                raise TrainError(f"{name} must be a {cls.__name__}")
        try:
            get_variant(self.variant)
        except ValueError as e:
            raise TrainError(str(e)) from None

    @staticmethod
    def field_names() -> list[str]:
        """Every name ``replace`` and ``--set`` take."""
        top = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in _PARTS]
        return top + [f.name for cls in _PARTS.values() for f in dataclasses.fields(cls)]

    def replace(self, **changes) -> "TrainConfig":
        """A copy with ``changes``, each a field of the config or of one of its settings."""
        top = {k: v for k, v in changes.items() if k not in self._part_of}
        parts = {}
        for k, v in changes.items():
            if k in self._part_of:
                parts.setdefault(self._part_of[k], {})[k] = v
        unknown = sorted(set(top) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise TrainError(f"unknown training config field(s) {unknown}; known: {', '.join(sorted(self.field_names()))}")
        for part, values in parts.items():
            top[part] = dataclasses.replace(getattr(self, part), **values)
        return dataclasses.replace(self, **top)

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["schedule"]["curriculum_s"] = list(self.schedule.curriculum_s)
        d["schedule"]["epochs"] = list(self.schedule.epochs)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "TrainConfig":
        if not isinstance(d, dict):
            raise TrainError("the training config must be a JSON object")
        d = dict(d)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise TrainError(f"unknown training config keys {unknown}")
        for name, part in _PARTS.items():
            values = d.get(name, {})
            if not isinstance(values, dict):
                raise TrainError(f"training config {name!r} must be an object")
            bad = sorted(set(values) - {f.name for f in dataclasses.fields(part)})
            if bad:
                raise TrainError(f"unknown {name} settings {bad}")
            d[name] = part(**values)
        return cls(**d)


TrainConfig._part_of = {f.name: name for name, c in _PARTS.items() for f in dataclasses.fields(c)}


# The paper's protocol (arXiv 2511.21369; docs/evaluation.md lists what plumecast cannot
# reproduce exactly and why): curriculum 60 / 120 / 300 / 600 s with 500 epochs each,
# Adam 1e-5 after clipping at 0.1, batches of 5 windows of 60 s, the per-cell relative
# loss with small weight-decay and temporal-smoothness terms, no exchange term, the
# paper-size network.
PAPER = TrainConfig(
    preset="paper",
    closure_options={"size": "paper"},
    physics=PhysicsSettings(exchange_max_per_s=0.0),
    objective=Objective(loss="cell", weight_decay=1e-6, temporal_smoothness=1e-6),
)
# Sized for a shared 2-core CPU: physics-only training on paper-room in about 5 minutes
# (1680 train steps). A larger step suits the few O(1) physics parameters; the field loss
# targets the headline error directly, where the per-cell loss spends its effort on cells
# far from the plume (docs/results.md).
QUICK = TrainConfig(
    preset="quick",
    schedule=Schedule(epochs=(50, 25, 12, 12), learning_rate=2e-2, clip_norm=1.0),
    objective=Objective(loss="field", smoothness=1e-3),
)
PRESETS: dict[str, TrainConfig] = {"paper": PAPER, "quick": QUICK}

# What a preset changes for a variant with a network (networks need other steps than the
# few physics parameters): quick trains it at 1e-3 over a shorter curriculum, best
# started from a trained physics run (--init-from). The paper's protocol is one for all.
NETWORK_SCHEDULES: dict[str, dict] = {"quick": dict(learning_rate=1e-3, epochs=(10, 5, 3, 2))}


def preset_config(name: str, **overrides) -> TrainConfig:
    """The preset ``name`` for ``overrides['variant']`` (default physics), then the overrides."""
    if name not in PRESETS:
        raise TrainError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    base = PRESETS[name]
    variant = overrides.get("variant", base.variant)
    base = base.replace(variant=variant)
    if get_variant(variant).physical:
        base = base.replace(closure_options={})  # no network to size
    else:
        base = base.replace(**NETWORK_SCHEDULES.get(name, {}))
    return base.replace(**overrides)
