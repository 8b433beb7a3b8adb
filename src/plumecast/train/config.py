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
import json
import math
from typing import Annotated, Any, Literal

import annotated_types as at
from pydantic import AllowInfNan, ConfigDict, Field, Strict, field_validator
from pydantic.dataclasses import dataclass

from plumecast.closure import get_variant
from plumecast.errors import TrainError
from plumecast.schema import NonNegative, NonNegativeWhole, Positive, PositiveWhole, raising, suggest

__all__ = ["PhysicsSettings", "Schedule", "Objective", "TrainConfig", "LOSSES", "PRESETS", "preset_config",
           "parse_overrides"]

# Snapshot losses (train/loss.py): "field" the squared relative L2 error of the snapshot,
# "cell" the paper's per-cell relative squared error, "field+root" the field loss plus the
# same on square roots (the room's background weighs in), "field+log" the field loss plus the
# mean squared log ratio (every cell's ratio alike: the background's pattern, for ranks).
LOSSES = ("field", "cell", "field+root", "field+log")

# Each settings object is a frozen pydantic dataclass: typed, ranged and finite fields,
# unknown names refused, checked wherever it is built (including dataclasses.replace);
# a failure raises TrainError naming the key. Frozen dataclasses stay hashable, so
# Schedule and Objective can be static arguments of a jitted function.
_SETTINGS = ConfigDict(extra="forbid")
AtLeastOne = Annotated[float, Strict(), AllowInfNan(False), at.Ge(1)]


@raising(TrainError, table_word="object")
@dataclass(frozen=True, config=_SETTINGS)
class PhysicsSettings:
    """The coarse model being trained (:mod:`plumecast.physics.model`)."""

    dt_s: Positive = 0.4
    substeps: PositiveWhole = 4
    # Bound of the learned exchange between the plane and the rest of the room, 1/s; 0 = off.
    exchange_max_per_s: NonNegative = 0.05
    source_scale_max: AtLeastOne = 10.0
    # The learned observation factor of the plane: bound of |log g| (0 = off) and the
    # spacing of its control points in cells.
    observation_log_max: NonNegative = 0.0
    observation_spacing_cells: PositiveWhole = 1
    layer_height_m: Positive | None = None  # None: the room height of the dataset's scenario config
    # Advection of the plane (and column levels): first-order upwind, or van Leer flux-limited
    # (TVD, far less numerical diffusion; may need more substeps).
    advection: Literal["upwind", "tvd"] = "upwind"
    # Where the transport's face velocities come from (physics.model.GridConfig.flow): "auto"
    # takes the 3D flow's summed fluxes for a physics with the column when the dataset carries
    # them, else the sampled flow; "sampled" and "fluxes" force one ("fluxes" fails without them).
    flow: Literal["auto", "sampled", "fluxes"] = "auto"
    dtype: Literal["float32", "float64"] = "float32"


@raising(TrainError, table_word="object")
@dataclass(frozen=True, config=_SETTINGS)
class Schedule:
    """Curriculum, truncated windows, batches, the optimiser (Adam after global-norm clipping) and early stopping.

    ``patience``: with val scenarios in the data, a curriculum phase ends after this many
    validations (one per epoch) without a new best val score; 0 = off (every epoch runs).
    The best-on-val model is the run's selected model either way (train/select.py).
    ``train_physics = False`` trains a closure's network alone on a fixed physics.
    ``lr_decay = "cosine"`` lowers the learning rate epoch by epoch within each phase
    (:meth:`epoch_learning_rate`), so late epochs settle instead of jumping around the
    best val score.
    ``rollbacks``: how many times a diverging run (an epoch in which a quarter of the
    steps were not finite, :data:`plumecast.train.loop.DIVERGED_SHARE`, or after which the val
    forecast is not finite where it was before; without val, its last step) goes back to the
    start of that epoch and runs it again at half the learning rate before it stops with an
    error; 0 = off (non-finite steps are only skipped, and training stops after
    :data:`~plumecast.train.loop.MAX_BAD_STEPS` of them).
    ``average_decay = d > 0`` makes the run's model (validated, selected, saved as
    ``RUN/selected`` and as the last model) the exponential average of the parameters over
    the optimiser steps, weight ``d`` per step on the past (a time constant of ``1 / (1 -
    d)`` steps; :mod:`plumecast.train.optim`); the optimiser goes on from the raw ones.
    """

    curriculum_s: tuple[Positive, ...] = (60.0, 120.0, 300.0, 600.0)
    epochs: tuple[NonNegativeWhole, ...] = (500, 500, 500, 500)
    window_s: Positive = 60.0
    batch_size: PositiveWhole = 5
    learning_rate: Positive = 1e-5
    # "cosine": each curriculum phase's epochs step the rate down from learning_rate to
    # lr_final_share of it along a half cosine (set once per epoch); "constant": no decay.
    lr_decay: Literal["constant", "cosine"] = "constant"
    lr_final_share: Annotated[float, AllowInfNan(False), at.Ge(0), at.Le(1)] = 0.05
    clip_norm: Positive = 0.1
    average_decay: Annotated[float, AllowInfNan(False), at.Ge(0), at.Lt(1)] = 0.0
    patience: NonNegativeWhole = 0
    rollbacks: NonNegativeWhole = 3
    # False: only a closure's network learns; the physics (the model and the closure's
    # off-plane layer or column, as init_from left them) stays fixed.
    train_physics: bool = True

    def epoch_learning_rate(self, epoch_in_phase: int, phase_epochs: int) -> float:
        """The learning rate of epoch ``epoch_in_phase`` (0-based) of a phase of ``phase_epochs`` epochs."""
        if self.lr_decay == "constant" or phase_epochs <= 1:
            return float(self.learning_rate)
        share = self.lr_final_share + (1.0 - self.lr_final_share) * 0.5 * (
            1.0 + math.cos(math.pi * epoch_in_phase / (phase_epochs - 1)))
        return float(self.learning_rate * share)

    def __post_init__(self):
        if not self.curriculum_s or len(self.epochs) != len(self.curriculum_s):
            raise ValueError(f"epochs {list(self.epochs)} must give one count per curriculum phase of curriculum_s "
                             f"{list(self.curriculum_s)}")
        if list(self.curriculum_s) != sorted(self.curriculum_s):
            raise ValueError(f"curriculum_s horizons must increase, got {list(self.curriculum_s)}")
        for h in self.curriculum_s:
            n = h / self.window_s
            if not (math.isfinite(n) and n <= 1e9) or not math.isclose(n, round(n), abs_tol=1e-9) or h < self.window_s:
                raise ValueError(f"curriculum_s horizon {h:g} s is not a whole number of window_s = {self.window_s:g} s "
                                 "windows")


@raising(TrainError, table_word="object")
@dataclass(frozen=True, config=_SETTINGS)
class Objective:
    """The loss of a window: a snapshot loss (``LOSSES``, floored at ``loss_floor``) plus regularisers.

    ``weight_decay`` times the sum of squared network weights; ``smoothness`` times the
    mean squared jump of the diffusivity logits between neighbouring faces (space);
    ``temporal_smoothness`` times the mean squared change of the predicted plane field
    between consecutive snapshots, over the snapshot's mean square (time).
    """

    loss: Literal[LOSSES] = "cell"
    loss_floor: Positive = 0.1
    weight_decay: NonNegative = 0.0
    smoothness: NonNegative = 0.0
    temporal_smoothness: NonNegative = 0.0


_PARTS = {"physics": PhysicsSettings, "schedule": Schedule, "objective": Objective}


@raising(TrainError, table_word="object")
@dataclass(frozen=True, config=_SETTINGS)
class TrainConfig:
    """Everything that defines a training run (saved as JSON in ``RUN_DIR/config.json``)."""

    variant: str = "physics"
    closure_options: dict[str, Any] = Field(default_factory=dict)
    preset: str = "custom"
    seed: Annotated[int, Strict(), at.Ge(0), at.Lt(2**32)] = 0
    # A trained run whose coarse model (Dx, Dy, exchange, source scale, observation factor,
    # c_ref) and off-plane layer start this one; a network closure still starts at zero, so
    # training begins from that run's forecasts.
    init_from: str | None = None
    physics: PhysicsSettings = Field(default_factory=PhysicsSettings)
    schedule: Schedule = Field(default_factory=Schedule)
    objective: Objective = Field(default_factory=Objective)

    @field_validator("variant")
    @classmethod
    def _known_variant(cls, name: str) -> str:
        get_variant(name)  # ValueError naming the known ones
        return name

    def __post_init__(self):
        if not self.schedule.train_physics and get_variant(self.variant).physical:
            raise ValueError(f"train_physics = false leaves nothing to train: variant {self.variant!r} has no "
                             "closure network")

    @field_validator("closure_options")
    @classmethod
    def _json_options(cls, options: dict) -> dict:
        try:
            json.dumps(options, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ValueError(f"must be plain JSON ({e})") from None
        return dict(options)

    @staticmethod
    def field_names() -> list[str]:
        """Every name ``replace`` and ``--set`` take."""
        top = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in _PARTS]
        return top + [f.name for cls in _PARTS.values() for f in dataclasses.fields(cls)]

    def replace(self, **changes) -> "TrainConfig":
        """A copy with ``changes``, each a field of the config or of one of its settings."""
        names = {f.name for f in dataclasses.fields(self)} - set(_PARTS)
        unknown = sorted(set(changes) - names - set(_PART_OF))
        if unknown:
            known = self.field_names()
            hint = suggest(unknown[0], known)
            raise TrainError(f"unknown training config field(s) {unknown}{hint} (known: {', '.join(sorted(known))})")
        top = {k: v for k, v in changes.items() if k in names}
        parts: dict[str, dict] = {}
        for k, v in changes.items():
            if k in _PART_OF:
                parts.setdefault(_PART_OF[k], {})[k] = v
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
        for name, part in _PARTS.items():
            values = d.get(name, {})
            if isinstance(values, part):
                continue
            if not isinstance(values, dict):
                raise TrainError(f"training config {name!r} must be an object")
            try:
                d[name] = part(**values)
            except TrainError as e:
                raise TrainError(f"{name} settings: {e}") from None
        return cls(**d)


_PART_OF = {f.name: name for name, c in _PARTS.items() for f in dataclasses.fields(c)}


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
# far from the plume (docs/results.md). Patience 10 is generous: it only cuts the long
# first phase (50 epochs) once val has not improved for a fifth of it.
QUICK = TrainConfig(
    preset="quick",
    schedule=Schedule(epochs=(50, 25, 12, 12), learning_rate=2e-2, clip_norm=1.0, patience=10),
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


def parse_overrides(items) -> dict:
    """``{key: value}`` of ``KEY=VALUE`` strings (``--set``): JSON values, else the bare string.

    Raises :class:`ValueError` naming an item without ``=``.
    """
    changes = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            changes[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            changes[key.strip()] = value  # a bare string
    return changes
