"""The training engine shared by every variant, and forecasts from a trained run.

Protocol (the paper's, with the public code's defects corrected):

* **Curriculum.** Phases of increasing horizon (default 60, 120, 300, 600 s). In every
  phase each rollout starts at t = 0 from the dataset's initial field (and zero closure
  memory) and runs to the phase's horizon.
* **Truncated windows.** A rollout is cut into windows of ``window_s`` (60 s). Each window
  is one optimiser step: forward through the window, loss on the window's snapshots,
  gradients, update. The window's final field and memory, with gradients stopped, seed
  the next window.
* **Snapshots.** The dataset's snapshot interval must be a whole number of model steps
  (0.4 s). Window ``k`` covers the snapshots at ``t_k + j * interval`` for ``j = 1 .. F``:
  every snapshot after t = 0 is compared, exactly once, with the prediction at exactly its
  own time; the one at a window's end belongs to that window (nothing is dropped).
* **Loss** per snapshot, averaged over snapshots and the batch (state normalised by
  ``c_ref``): ``"cell"`` (default, the paper's per-cell relative squared error)
  ``mean_fluid((p - t)^2 / (t^2 + floor * mean_fluid(t^2)))``, where the floor (default
  0.1) keeps cells far from the plume from dividing by zero; or ``"field"``, the squared
  relative L2 error ``sum (p - t)^2 / sum t^2``. Optional terms: ``weight_decay`` times the
  sum of squared network weights (closure and source net) and ``smoothness`` times the
  mean squared jump of the diffusivity logits between neighbouring faces.
* **Optimiser.** Adam after global-norm clipping. Batches of ``batch_size`` scenarios
  (train split), reshuffled each epoch with a key derived from the run key and the epoch
  number (the last batch wraps around, so every batch has the same shape).
* **One jitted train step** (loss, gradients, update) compiled once: every window of every
  phase has the same shapes, so nothing recompiles (``make_train_step`` counts traces).
* **Non-finite loss.** The step keeps the previous parameters and optimiser state (the
  last good state), says so, and abandons the rest of that batch's rollout; after
  ``max_bad_steps`` such steps training stops with an error.
* **Checkpoints** after every ``checkpoint_every`` epochs and at the end (see
  :mod:`plumecast.io.checkpoint`); ``resume=True`` continues from the latest one and ends
  with exactly the parameters an uninterrupted run would have.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import plumecast
from plumecast.closure import closure_trainable_spec, get_variant, make_closure
from plumecast.closure.reservoir import LAYERED_SETTINGS, static_settings
from plumecast.io.checkpoint import (
    CheckpointError,
    key_from_json,
    key_to_json,
    latest_checkpoint,
    load_checkpoint,
    read_json,
    save_checkpoint,
    write_json_atomic,
)
from plumecast.io.dataset import read_dataset
from plumecast.metrics import relative_l2
from plumecast.physics import operators as ops_
from plumecast.physics.model import CoarseModel, Forcing, GridConfig, concentration_scale, model_from_dataset, trainable_spec
from plumecast.rollout import forcing_from_track, init_carry, rollout

__all__ = [
    "TrainConfig",
    "PRESETS",
    "preset_config",
    "TrainError",
    "PreparedData",
    "prepare_data",
    "make_train_step",
    "train",
    "load_run",
    "forecast",
    "forecast_dataset",
    "final_time_errors",
]


# Snapshot losses: "field" the squared relative L2 error of the snapshot, "cell" the paper's
# per-cell relative squared error (floored at loss_floor times the mean square), their sum,
# or "field+root": the field loss plus the same on square roots of the fields (offset by
# loss_floor times the mean), which weighs the low background more than the field loss
# does (the field loss is dominated by the few cells near a source).
LOSSES = ("field", "cell", "field+cell", "field+root")


class TrainError(ValueError):
    """Training or forecasting cannot proceed as asked; the message names the problem."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (saved as JSON in ``RUN_DIR/config.json``)."""

    variant: str = "physics"
    closure_options: dict = field(default_factory=dict)
    preset: str = "custom"
    dt_s: float = 0.4
    substeps: int = 4
    window_s: float = 60.0
    curriculum_s: tuple[float, ...] = (60.0, 120.0, 300.0, 600.0)
    epochs: tuple[int, ...] = (500, 500, 500, 500)
    batch_size: int = 5
    learning_rate: float = 1e-5
    clip_norm: float = 0.1
    loss: str = "cell"
    loss_floor: float = 0.1
    weight_decay: float = 0.0
    smoothness: float = 0.0
    remat: bool = True
    checkpoint_every: int = 1
    seed: int = 0
    source_scale_max: float = 10.0
    # Learned exchange between the plane and the rest of the room (physics/model.py), 1/s;
    # 0 switches it off (the paper's model has none).
    exchange_max_per_s: float = 0.05
    exchange_init_per_s: float = 1e-3
    # The source-rate net also reads the flow at the source (physics/model.py).
    source_flow_features: bool = False
    # The learned observation factor of the plane (physics/model.py): bound of |log g|; 0 = off.
    observation_log_max: float = 0.0
    observation_spacing_cells: int = 1
    layer_height_m: float | None = None
    dtype: str = "float32"
    max_bad_steps: int = 20
    # A trained run whose coarse model (Dx, Dy, exchange, source scale, c_ref) starts this one; the
    # closure still starts near zero, so training begins from that run's forecasts.
    init_from: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "curriculum_s", tuple(float(h) for h in self.curriculum_s))
        object.__setattr__(self, "epochs", tuple(int(e) for e in self.epochs))
        object.__setattr__(self, "closure_options", dict(self.closure_options))
        if len(self.epochs) != len(self.curriculum_s):
            raise TrainError(f"epochs {self.epochs} must give one count per curriculum phase {self.curriculum_s}")
        if any(e < 0 for e in self.epochs) or not self.curriculum_s:
            raise TrainError("curriculum needs at least one phase and non-negative epoch counts")
        if list(self.curriculum_s) != sorted(self.curriculum_s):
            raise TrainError(f"curriculum horizons must increase, got {self.curriculum_s}")
        for h in self.curriculum_s:
            if not math.isclose(h / self.window_s, round(h / self.window_s), abs_tol=1e-9) or h < self.window_s:
                raise TrainError(f"curriculum horizon {h} s is not a whole number of {self.window_s} s windows")
        if self.loss not in LOSSES:
            raise TrainError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.batch_size < 1 or self.substeps < 1 or self.dt_s <= 0 or self.window_s <= 0:
            raise TrainError("batch_size, substeps, dt_s and window_s must be positive")
        if not (self.learning_rate > 0 and self.clip_norm > 0):
            raise TrainError("learning_rate and clip_norm must be positive")
        if self.dtype not in ("float32", "float64"):
            raise TrainError(f"dtype must be float32 or float64, got {self.dtype!r}")
        if not (math.isfinite(self.observation_log_max) and self.observation_log_max >= 0):
            raise TrainError(f"observation_log_max must be finite and >= 0, got {self.observation_log_max}")
        if isinstance(self.observation_spacing_cells, bool) or not (
                isinstance(self.observation_spacing_cells, int) and self.observation_spacing_cells >= 1):
            raise TrainError(f"observation_spacing_cells must be a whole number >= 1, got {self.observation_spacing_cells!r}")
        get_variant(self.variant)  # raises for unknown names

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["curriculum_s"] = list(self.curriculum_s)
        d["epochs"] = list(self.epochs)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise TrainError(f"unknown training config keys {unknown}")
        return cls(**d)

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


PRESETS: dict[str, TrainConfig] = {
    # The paper's protocol: 500 epochs per phase, Adam 1e-5, clip 0.1, batches of 5.
    "paper": TrainConfig(preset="paper"),
    # Sized for a shared 2-core CPU: physics-only training on paper-room in about 5 minutes
    # (1680 train steps). A larger step size suits the few O(1) physics parameters; the
    # field loss (squared relative L2 per snapshot) targets the headline error directly,
    # where the per-cell loss spends its effort on cells far from the plume (on a
    # paper-room-sized synthetic set: final-time error 0.98 with "field" vs 3.9 with "cell").
    "quick": TrainConfig(
        preset="quick",
        epochs=(50, 25, 12, 12),
        learning_rate=2e-2,
        clip_norm=1.0,
        loss="field",
        smoothness=1e-3,
    ),
}


# What a preset changes for variants with a closure (networks need other steps than the
# few physics parameters): quick trains the closure at 1e-3 over a shorter curriculum,
# best started from a trained physics run (--init-from); paper sizes it as the paper.
CLOSURE_PRESETS: dict[str, dict] = {
    "quick": dict(learning_rate=1e-3, epochs=(10, 5, 3, 2)),
    "paper": dict(closure_options={"size": "paper"}),
}


def preset_config(name: str, **overrides) -> TrainConfig:
    """The preset ``name`` for ``overrides['variant']`` (default physics), then the overrides."""
    if name not in PRESETS:
        raise TrainError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    variant = overrides.get("variant", PRESETS[name].variant)
    base = PRESETS[name].replace(variant=variant)
    if not get_variant(variant).physical:
        base = base.replace(**CLOSURE_PRESETS.get(name, {}))
    return base.replace(**overrides)


# --------------------------------------------------------------------------- data


@dataclass
class PreparedData:
    """A dataset laid out for rollouts: per-scenario normalised fields and per-step forcing."""

    names: list[str]
    splits: list[str]
    times: np.ndarray  # snapshot times, s
    conc: np.ndarray  # (n, T, ny, nx) concentration, mass/m^3
    forcing: Forcing  # numpy fields of shape (n, n_steps)
    steps_per_snapshot: int
    n_steps: int

    def indices(self, split: str) -> np.ndarray:
        return np.array([i for i, s in enumerate(self.splits) if s == split], dtype=int)

    def index(self, name: str) -> int:
        if name not in self.names:
            shown = ", ".join(self.names[:8]) + (" ..." if len(self.names) > 8 else "")
            raise TrainError(f"no scenario {name!r} in the dataset (scenarios: {shown})")
        return self.names.index(name)


def _time_layout(times: np.ndarray, dt: float) -> tuple[int, int]:
    if len(times) < 2:
        raise TrainError("the dataset needs at least two snapshots (the initial field and one more)")
    gaps = np.diff(times)
    interval = float(gaps[0])
    if not np.allclose(gaps, interval, rtol=1e-6, atol=1e-9):
        raise TrainError("snapshot times must be uniformly spaced")
    spf = interval / dt
    if not math.isclose(spf, round(spf), rel_tol=0, abs_tol=1e-6) or round(spf) < 1:
        raise TrainError(f"snapshot interval {interval:g} s is not a whole number of {dt:g} s model steps")
    spf = int(round(spf))
    return spf, spf * (len(times) - 1)


def prepare_data(ds, dt: float, dtype: str = "float32", fluid=None) -> PreparedData:
    """Check a dataset against the model's time step and build the per-step forcing."""
    times = np.asarray(ds["time"].values, float)
    spf, n_steps = _time_layout(times, dt)
    names = [str(s) for s in ds["scenario"].values]
    splits = [str(s) for s in ds["split"].values]
    track = {k: np.asarray(ds[f"source_{k}"].values, float) for k in ("x", "y", "z", "rate")}
    per = [
        forcing_from_track(times, track["x"][i], track["y"][i], track["z"][i], track["rate"][i], dt=dt, n_steps=n_steps,
                           t0=float(times[0]), dtype="float64")
        for i in range(len(names))
    ]
    forcing = Forcing(*(np.stack([np.asarray(getattr(f, k)) for f in per]).astype(dtype) for k in ("t", "x", "y", "z", "rate")))
    # Every step's source must land on fluid cells, or its mass would silently vanish.
    fluid = np.asarray(ds["fluid"].values, float) if fluid is None else np.asarray(fluid, float)
    x0, y0 = float(ds["x"].values[0]), float(ds["y"].values[0])
    dx, dy = float(ds.attrs["dx_m"]), float(ds.attrs["dy_m"])
    ny, nx = fluid.shape
    for i, name in enumerate(names):
        xs, ys = np.asarray(per[i].x), np.asarray(per[i].y)
        sx = np.clip((xs - x0) / dx, 0, nx - 1)
        sy = np.clip((ys - y0) / dy, 0, ny - 1)
        ix, iy = np.clip(np.floor(sx).astype(int), 0, nx - 2), np.clip(np.floor(sy).astype(int), 0, ny - 2)
        fx, fy = sx - ix, sy - iy
        total = ((1 - fy) * (1 - fx) * fluid[iy, ix] + (1 - fy) * fx * fluid[iy, ix + 1]
                 + fy * (1 - fx) * fluid[iy + 1, ix] + fy * fx * fluid[iy + 1, ix + 1])
        bad = np.flatnonzero(total <= 1e-9)
        if bad.size:
            k = int(bad[0])
            raise TrainError(
                f"scenario {name!r}: the source at ({xs[k]:.2f}, {ys[k]:.2f}) m, t = {float(per[i].t[k]):.1f} s, "
                "lies in solid cells of the plane; its emission could not be deposited"
            )
    return PreparedData(names, splits, times, np.asarray(ds["concentration"].values, np.float32), forcing, spf, n_steps)


# --------------------------------------------------------------------------- system


def build_system(ds, config: TrainConfig, prep: PreparedData):
    """The untrained ``(model, closure)`` of a run, deterministic in the config's seed."""
    train_idx = prep.indices("train")
    if train_idx.size == 0:
        raise TrainError("the dataset has no scenario in the 'train' split")
    fluid = np.asarray(ds["fluid"].values)
    c_ref = concentration_scale(prep.conc[train_idx], fluid)
    k_model, k_closure = jax.random.split(jax.random.PRNGKey(config.seed))
    start_reservoir = None
    if config.init_from:
        model, start_reservoir = _start_model(config, ds)
    else:
        try:
            model = model_from_dataset(
                ds, c_ref=c_ref, dt=config.dt_s, substeps=config.substeps, layer_height_m=config.layer_height_m,
                source_scale_max=config.source_scale_max, exchange_max_per_s=config.exchange_max_per_s,
                exchange_init_per_s=config.exchange_init_per_s, source_flow_features=config.source_flow_features,
                observation_log_max=config.observation_log_max,
                observation_spacing_cells=config.observation_spacing_cells, dtype=config.dtype, key=k_model,
            )
        except ops_.StabilityError as e:
            raise TrainError(str(e)) from None
    closure = make_closure(config.variant, model, key=k_closure, **config.closure_options)
    if start_reservoir is not None:
        closure = _keep_reservoir(config, closure, start_reservoir)
    return (model, closure)


def _start_model(config: TrainConfig, ds):
    """The coarse model of the run named by ``config.init_from`` (checked against ``ds``) and its off-plane layer, if any."""
    (model, closure), start, _ = load_run(config.init_from)
    _check_grid(model, ds)
    same = ("dt_s", "substeps", "dtype", "exchange_max_per_s", "source_flow_features", "observation_log_max",
            "observation_spacing_cells")
    mismatched = [k for k in same if getattr(start, k) != getattr(config, k)]
    if mismatched:
        raise TrainError(f"init_from run {config.init_from} differs in {', '.join(mismatched)}; start from a run with the same settings")
    return model, getattr(closure, "reservoir", None)


def _with_start_layer(config: TrainConfig) -> TrainConfig:
    """``reservoir: "layered"`` started from a ``layered`` run means that run's layer: its settings, written out.

    So a closure continues a layered physics with whatever layer options it was trained
    with (drift, source share), and the saved config rebuilds the same structure.
    """
    if not config.init_from or config.closure_options.get("reservoir") != "layered":
        return config
    path = Path(config.init_from) / "config.json"
    if not path.is_file():
        return config  # build_system reports the missing run
    start = TrainConfig.from_json(read_json(path)["train"])
    if start.variant != "layered":
        return config
    return config.replace(closure_options={**config.closure_options,
                                           "reservoir": {**LAYERED_SETTINGS, **start.closure_options}})


def _keep_reservoir(config: TrainConfig, closure, start_reservoir):
    """The closure with the start run's trained off-plane layer: it is part of the physics being continued."""
    mine = getattr(closure, "reservoir", None)
    if mine is None:
        raise TrainError(f"init_from run {config.init_from} has an off-plane layer (reservoir) in its physics; give the "
                         f"{config.variant!r} closure the same (closure option reservoir = \"layered\") or start from a run "
                         "without one")
    ours, theirs = static_settings(mine), static_settings(start_reservoir)
    if ours != theirs:
        diff = ", ".join(f"{k} {ours[k]} vs {theirs[k]}" for k in ours if ours[k] != theirs[k])
        raise TrainError(f"the reservoir settings differ from those of init_from run {config.init_from} ({diff}); "
                         "use the same settings (reservoir = \"layered\" for a layered run)")
    return eqx.tree_at(lambda c: c.reservoir, closure, start_reservoir)


def system_spec(system):
    model, closure = system
    return (trainable_spec(model), closure_trainable_spec(closure))


def skeleton_system(grid: GridConfig, config: TrainConfig):
    model = CoarseModel.skeleton(grid)
    closure = make_closure(config.variant, model, key=jax.random.PRNGKey(0), **config.closure_options)
    return (model, closure)


def make_optimizer(config: TrainConfig):
    return optax.chain(optax.clip_by_global_norm(config.clip_norm), optax.adam(config.learning_rate))


# --------------------------------------------------------------------------- loss and step


def _snapshot_loss(kind: str, floor: float):
    def loss(q, target, fluid):
        err = (q - target) ** 2 * fluid
        t2 = target**2 * fluid
        n = jnp.maximum(jnp.sum(fluid), 1.0)
        total = 0.0
        if kind in ("field", "field+cell", "field+root"):
            total = total + jnp.sum(err) / (jnp.sum(t2) + 1e-12)
        if kind == "field+root":
            offset = floor * jnp.sum(jnp.abs(target) * fluid) / n + 1e-12
            root = lambda a: jnp.sqrt(jnp.maximum(a, 0.0) + offset)  # noqa: E731
            roots_squared = jnp.sum((jnp.maximum(target, 0.0) + offset) * fluid)  # sum of root(target)^2
            total = total + jnp.sum((root(q) - root(target)) ** 2 * fluid) / roots_squared
        if kind in ("cell", "field+cell"):
            scale = floor * jnp.sum(t2) / n + 1e-12
            total = total + jnp.sum(err / (t2 + scale)) / n
        return total

    return loss


def _regulariser(system, config: TrainConfig):
    model, closure = system
    total = 0.0
    if config.smoothness > 0:
        mx, my = ops_.face_masks(jax.lax.stop_gradient(model.fluid))
        terms = []
        for th, m in ((model.theta_x, mx), (model.theta_y, my)):
            for axis in (0, 1):
                d = jnp.diff(th, axis=axis)  # jumps between neighbouring faces, both open
                mm = (m[:-1, :] * m[1:, :]) if axis == 0 else (m[:, :-1] * m[:, 1:])
                terms.append(jnp.sum(mm * d**2) / jnp.maximum(jnp.sum(mm), 1.0))
        total = total + config.smoothness * sum(terms) / len(terms)
    if config.weight_decay > 0:
        nets = (model.source_net, closure)
        leaves = [a for a in jax.tree.leaves(eqx.filter(nets, eqx.is_inexact_array)) if a.ndim >= 2]
        if leaves:
            total = total + config.weight_decay * sum(jnp.sum(a**2) for a in leaves)
    return total


def window_loss(model, closure, carry, forcing, targets, *, steps_per_frame, kind="cell", floor=0.1, remat=True):
    """Mean snapshot loss of one window for one scenario, and the carry at its end."""
    snap = _snapshot_loss(kind, floor)
    fluid = jax.lax.stop_gradient(model.fluid)
    # What the plane shows is g times the state (ones without an observation factor); g is
    # built once per window, not per frame inside the rollout.
    g = model.observation_factor()

    def hook(c, target):
        return snap(g * c[0], target, fluid)

    carry, losses = rollout(model, closure, carry, forcing, steps_per_frame=steps_per_frame, frame_data=targets,
                            hook=hook, checkpoint=remat)
    return jnp.mean(losses), carry


def _step_key(config: TrainConfig, steps_per_frame: int) -> tuple:
    return (config.learning_rate, config.clip_norm, config.loss, config.loss_floor, config.remat, config.smoothness,
            config.weight_decay, steps_per_frame)


_STEP_CACHE: dict = {}


def cached_train_step(config: TrainConfig, steps_per_frame: int):
    """``(optimizer, train_step, trace_count)`` shared by runs with the same step settings.

    Several runs in one process (a resumed run, tests, variant sweeps) then reuse one
    compiled step instead of compiling their own.
    """
    key = _step_key(config, steps_per_frame)
    if key not in _STEP_CACHE:
        optimizer = make_optimizer(config)
        _STEP_CACHE[key] = (optimizer, *make_train_step(optimizer, config, steps_per_frame))
    return _STEP_CACHE[key]


def make_train_step(optimizer, config: TrainConfig, steps_per_frame: int):
    """``(train_step, trace_count)``: one jitted step over a batch of windows.

    ``train_step(params, static, opt_state, carry, forcing, targets)`` with batched
    ``carry`` (B, ...), ``forcing`` (B, S) and ``targets`` (B, F, ny, nx) returns
    ``(params, opt_state, carry, loss, ok)``; when the loss or a gradient is not finite
    (``ok`` False) the returned parameters and optimiser state are the ones passed in.
    ``trace_count()`` tells how many times it was traced (compiled).
    """
    traces = [0]

    def loss_fn(params, static, carry, forcing, targets):
        model, closure = eqx.combine(params, static)
        per, carry = jax.vmap(
            lambda c, f, t: window_loss(model, closure, c, f, t, steps_per_frame=steps_per_frame, kind=config.loss,
                                        floor=config.loss_floor, remat=config.remat)
        )(carry, forcing, targets)
        return jnp.mean(per) + _regulariser((model, closure), config), carry

    @eqx.filter_jit
    def train_step(params, static, opt_state, carry, forcing, targets):
        traces[0] += 1
        (loss, new_carry), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(params, static, carry, forcing, targets)
        updates, new_opt = optimizer.update(grads, opt_state, params)
        new_params = eqx.apply_updates(params, updates)
        finite = [jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]
        ok = jnp.isfinite(loss) & jnp.all(jnp.stack(finite)) if finite else jnp.isfinite(loss)
        keep = lambda new, old: jnp.where(ok, new, old)  # noqa: E731
        params = jax.tree.map(keep, new_params, params)
        opt_state = jax.tree.map(keep, new_opt, opt_state)
        return params, opt_state, jax.lax.stop_gradient(new_carry), loss, ok

    return train_step, (lambda: traces[0])


# --------------------------------------------------------------------------- evaluation


def final_time_errors(system, prep: PreparedData, indices, chunk: int = 16) -> np.ndarray:
    """Relative L2 error at the dataset's final time per scenario (full rollouts from t = 0).

    Scenarios run in vmapped chunks of a fixed size (the last one padded), so one compiled
    rollout serves every split and every model of the same structure.
    """
    model, closure = system
    indices = np.asarray(indices, int)
    if indices.size == 0:
        return np.zeros(0)
    chunk = max(1, min(chunk, len(prep.names)))
    out = []
    for s in range(0, len(indices), chunk):
        idx = indices[s : s + chunk]
        padded = np.resize(idx, chunk)
        q0 = model.encode(prep.conc[padded, 0])
        f = jax.tree.map(lambda a: jnp.asarray(a[padded]), prep.forcing)
        qT = np.asarray(_final_fields(model, closure, q0, f))[: len(idx)]
        fluid = np.asarray(model.fluid)
        out.append([relative_l2(q, t, fluid) for q, t in zip(np.asarray(model.decode(qT)), prep.conc[idx, -1])])
    return np.concatenate(out)


@eqx.filter_jit
def _final_fields(model, closure, q0, forcing):
    def one(q, f):
        (q, _), _ = rollout(model, closure, init_carry(closure, q), f, steps_per_frame=f.t.shape[0], hook=lambda c, d: ())
        return q

    return jax.vmap(one)(q0, forcing)


# --------------------------------------------------------------------------- training loop


@dataclass
class TrainResult:
    run_dir: Path
    system: Any
    history: list = field(default_factory=list)
    completed: bool = True
    trace_count: int = 0  # compilations of the train step during this call (0 when reused)
    summary: dict | None = None


def _phase_plan(config: TrainConfig, prep: PreparedData):
    interval = prep.steps_per_snapshot * config.dt_s
    frames_per_window = config.window_s / interval
    if not math.isclose(frames_per_window, round(frames_per_window), abs_tol=1e-9) or round(frames_per_window) < 1:
        raise TrainError(f"window {config.window_s:g} s is not a whole number of {interval:g} s snapshot intervals")
    horizon = float(prep.times[-1] - prep.times[0])
    if config.curriculum_s[-1] > horizon + 1e-9:
        raise TrainError(
            f"curriculum horizon {config.curriculum_s[-1]:g} s exceeds the dataset's {horizon:g} s; "
            "shorten the curriculum"
        )
    F = int(round(frames_per_window))
    return F, F * prep.steps_per_snapshot, [int(round(h / config.window_s)) for h in config.curriculum_s]


def _console():
    from rich.console import Console

    return Console(stderr=True)


def train(
    data,
    run_dir: str | Path,
    config: TrainConfig | None = None,
    *,
    resume: bool = False,
    progress: bool = True,
    stop_after_epochs: int | None = None,
    evaluate: bool = True,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train a variant on a dataset (path or ``xarray.Dataset``); see the module docstring.

    With ``resume``, the configuration is the one saved in ``run_dir`` (``config`` must be
    None or equal to it). ``stop_after_epochs`` ends this call after that many epochs
    (the run can be resumed), as an interruption would.
    """
    run_dir = Path(run_dir)
    console = _console()
    say = log or (lambda msg: console.print(msg, highlight=False))
    ds = read_dataset(data) if isinstance(data, (str, Path)) else data
    saved = None
    if resume:
        if latest_checkpoint(run_dir) is None or not (run_dir / "config.json").is_file():
            raise TrainError(f"{run_dir} holds no checkpoint to resume from")
        saved = read_json(run_dir / "config.json")
        saved_cfg = TrainConfig.from_json(saved["train"])
        if config is not None and config != saved_cfg:
            raise TrainError(f"{run_dir} was trained with another configuration; resume without changing it")
        config = saved_cfg
    else:
        if latest_checkpoint(run_dir) is not None:
            raise TrainError(f"{run_dir} already holds a run; use resume or another directory")
        config = _with_start_layer(config or PRESETS["quick"])
    prep = prepare_data(ds, config.dt_s, config.dtype)
    F, S, windows = _phase_plan(config, prep)
    system = build_system(ds, config, prep)
    model0 = system[0]
    if saved is not None and GridConfig.from_json(saved["grid"]) != model0.config:
        raise TrainError(f"the dataset does not match the one {run_dir} was trained on (grid or scales differ)")
    optimizer, step_fn, trace_count = cached_train_step(config, prep.steps_per_snapshot)
    traces_before = trace_count()
    spec = system_spec(system)
    params, static = eqx.partition(system, spec)
    opt_state = optimizer.init(params)
    key = jax.random.PRNGKey(config.seed)
    history: list = []
    epochs_done = 0
    if resume:
        ckpt = latest_checkpoint(run_dir)
        system, opt_state, state = load_checkpoint(ckpt, system_like=system, opt_state_like=opt_state)
        params, static = eqx.partition(system, spec)
        key = key_from_json(state["key"])
        epochs_done = int(state["epochs_done"])
        history = list(state.get("history", []))
        say(f"resuming {run_dir} from {ckpt.name} after {epochs_done} epochs")
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(run_dir / "config.json", {
            "plumecast_version": plumecast.__version__,
            "train": config.to_json(),
            "grid": model0.config.to_json(),
            "data": {
                "generator": str(ds.attrs.get("generator", "")),
                "scenarios": prep.names,
                "splits": prep.splits,
                "horizon_s": float(prep.times[-1] - prep.times[0]),
                "snapshot_s": float(prep.times[1] - prep.times[0]),
            },
        })

    train_idx = prep.indices("train")
    B = config.batch_size
    n_batches = max(1, math.ceil(len(train_idx) / B))
    total_epochs = sum(config.epochs)
    total_steps = sum(e * n_batches * w for e, w in zip(config.epochs, windows))
    done_steps = sum(
        min(max(epochs_done - sum(config.epochs[:p]), 0), config.epochs[p]) * n_batches * windows[p]
        for p in range(len(windows))
    )
    c_ref = model0.config.c_ref
    conc_n = prep.conc / c_ref
    memory0 = system[1].init_memory() if system[1] is not None else ()
    bad = 0
    epochs_done_at_start = epochs_done
    completed = True
    epochs_this_call = 0
    t_start = time.perf_counter()

    def save(final: bool):
        state = {
            "epochs_done": epochs_done,
            "total_epochs": total_epochs,
            "key": key_to_json(key),
            "history": history,
            "done": final,
            "plumecast_version": plumecast.__version__,
        }
        save_checkpoint(run_dir, epochs_done, system=eqx.combine(params, static), opt_state=opt_state, state=state)

    bar = _progress(progress, console)
    with bar:
        task = bar.add_task("training", total=total_steps, completed=done_steps, loss=float("nan"), phase="")
        epoch_counter = 0
        for p, (horizon, n_epochs, K) in enumerate(zip(config.curriculum_s, config.epochs, windows)):
            for e in range(n_epochs):
                if epoch_counter < epochs_done:
                    epoch_counter += 1
                    continue
                if stop_after_epochs is not None and epochs_this_call >= stop_after_epochs:
                    completed = False
                    break
                perm = np.asarray(jax.random.permutation(jax.random.fold_in(key, epoch_counter), len(train_idx)))
                order = train_idx[np.resize(perm, n_batches * B)]
                losses = []
                for b in range(n_batches):
                    idx = order[b * B : (b + 1) * B]
                    # The start field as a state (the observation factor inverted; a constant of the step).
                    carry = (eqx.combine(params, static)[0].encode(prep.conc[idx, 0]),
                             jax.tree.map(lambda a: jnp.broadcast_to(a, (len(idx),) + a.shape), memory0))
                    for k in range(K):
                        f = jax.tree.map(lambda a: jnp.asarray(a[idx, k * S : (k + 1) * S]), prep.forcing)
                        targets = jnp.asarray(conc_n[idx, k * F + 1 : (k + 1) * F + 1], model0.config.jdtype)
                        params, opt_state, carry, loss, ok = step_fn(params, static, opt_state, carry, f, targets)
                        loss = float(loss)
                        if not bool(ok):
                            bad += 1
                            say(
                                f"[yellow]non-finite loss[/] in phase {p + 1} ({horizon:g} s), epoch {e + 1}, batch {b + 1}, "
                                f"window {k + 1}: update skipped, last good parameters and optimiser state kept; "
                                "rest of this rollout abandoned"
                            )
                            if bad > config.max_bad_steps:
                                raise TrainError(f"{bad} non-finite steps: training stopped (last good state in {run_dir})")
                            bar.advance(task, K - k)
                            break
                        losses.append(loss)
                        bar.update(task, advance=1, loss=loss, phase=f"{horizon:g} s")
                epoch_counter += 1
                epochs_done = epoch_counter
                epochs_this_call += 1
                history.append({"phase": p, "horizon_s": horizon, "epoch": e, "loss": float(np.mean(losses)) if losses else None})
                if config.checkpoint_every > 0 and epochs_done % config.checkpoint_every == 0:
                    save(final=False)
            if not completed:
                break
            if epoch_counter > max(epochs_done_at_start, sum(config.epochs[:p])):  # this phase ran in this call
                last = history[-1]["loss"] if history else float("nan")
                say(f"phase {p + 1}/{len(windows)} ({horizon:g} s horizon, {n_epochs} epochs) done: last epoch mean loss "
                    f"{last:.4g}, {time.perf_counter() - t_start:.0f} s elapsed")
    if epochs_this_call == 0 and completed and resume:
        say("nothing left to train: the run was already complete")
    if completed:
        save(final=True)
    elif config.checkpoint_every <= 0 or epochs_done % config.checkpoint_every:
        save(final=False)
    system = eqx.combine(params, static)
    summary = None
    if completed and evaluate:
        untrained = build_system(ds, config, prep)
        summary = {"seconds": time.perf_counter() - t_start, "epochs": epochs_done, "variant": config.variant,
                   "preset": config.preset, "metric": "relative L2 error at the final time, fluid cells"}
        for label, sysm in (("untrained", untrained), ("trained", system)):
            summary[label] = {}
            for split in ("train", "test", "ood"):
                idx = prep.indices(split)
                if idx.size:
                    err = final_time_errors(sysm, prep, idx)
                    summary[label][split] = {
                        "median": float(np.nanmedian(err)),
                        "q25": float(np.nanpercentile(err, 25)),
                        "q75": float(np.nanpercentile(err, 75)),
                        "per_scenario": {prep.names[i]: float(v) for i, v in zip(idx, err)},
                    }
        write_json_atomic(run_dir / "summary.json", summary)
        for split in summary["trained"]:
            say(
                f"{split:5s}: median final-time relative L2 error {summary['untrained'][split]['median']:.3f} untrained "
                f"-> {summary['trained'][split]['median']:.3f} trained"
            )
    return TrainResult(run_dir, system, history, completed, trace_count() - traces_before, summary)


def _progress(enabled: bool, console):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description}[/] {task.fields[phase]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4g}"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    )


# --------------------------------------------------------------------------- forecasts


def load_run(run_dir: str | Path):
    """``(system, train_config, run_json)`` from the latest checkpoint of a run."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise TrainError(f"{run_dir} is not a training run (no config.json)")
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        raise TrainError(f"{run_dir} holds no checkpoint")
    try:
        run = read_json(run_dir / "config.json")
        config = TrainConfig.from_json(run["train"])
        grid = GridConfig.from_json(run["grid"])
        system, _, _ = load_checkpoint(ckpt, system_like=skeleton_system(grid, config))
    except (CheckpointError, KeyError, TypeError) as e:
        raise TrainError(f"{run_dir}: cannot load the run ({e})") from None
    return system, config, run


def _check_grid(model: CoarseModel, ds) -> None:
    c = model.config
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    if (ny, nx) != (c.ny, c.nx):
        raise TrainError(f"grid mismatch: the model is {c.ny} x {c.nx} cells, the dataset {ny} x {nx}")
    x0, y0 = float(ds["x"].values[0]), float(ds["y"].values[0])
    dx, dy = float(ds.attrs["dx_m"]), float(ds.attrs["dy_m"])
    if not np.allclose([dx, dy, x0, y0], [c.dx, c.dy, c.x0, c.y0], rtol=1e-6, atol=1e-9):
        raise TrainError(
            f"grid mismatch: the model has spacing ({c.dx}, {c.dy}) m and origin ({c.x0}, {c.y0}) m, the dataset "
            f"({dx}, {dy}) m and ({x0}, {y0}) m"
        )
    if not np.array_equal(np.asarray(ds["fluid"].values) > 0, np.asarray(model.fluid) > 0):
        raise TrainError("the dataset's fluid mask differs from the model's")
    for name in ("u", "v"):
        if not np.allclose(np.asarray(ds[name].values) * np.asarray(model.fluid), np.asarray(getattr(model, name)),
                           rtol=1e-4, atol=1e-6):
            raise TrainError(f"the dataset's plane velocity {name!r} differs from the flow the model was trained on")


def forecast(system, ds, scenario: str, dtype: str | None = None) -> np.ndarray:
    """Concentration ``(T, ny, nx)`` at the dataset's snapshot times for one scenario (t0 = data)."""
    model, closure = system
    _check_grid(model, ds)
    prep = prepare_data(ds, model.config.dt, model.config.dtype, fluid=np.asarray(model.fluid))
    i = prep.index(scenario)
    q0 = model.encode(prep.conc[i, 0])
    f = jax.tree.map(lambda a: jnp.asarray(a[i]), prep.forcing)
    frames = np.asarray(_forecast_fn(model, closure, q0, f, prep.steps_per_snapshot))
    out = np.concatenate([prep.conc[i, :1], np.asarray(model.decode(frames))], axis=0)
    if not np.isfinite(out).all():
        raise TrainError(f"the forecast of {scenario!r} is not finite")
    return out


@eqx.filter_jit
def _forecast_fn(model, closure, q0, forcing, steps_per_frame: int):
    _, frames = rollout(model, closure, init_carry(closure, q0), forcing, steps_per_frame=steps_per_frame)
    return frames


def forecast_dataset(run_dir: str | Path, ds, scenario: str):
    """A forecast of one scenario written in the dataset schema (generator ``plumecast-forecast``)."""
    from plumecast.io.dataset import make_dataset

    system, config, run = load_run(run_dir)
    conc = forecast(system, ds, scenario)
    i = [str(s) for s in ds["scenario"].values].index(scenario)
    try:
        original = json.loads(ds.attrs["scenario_config"])
    except (TypeError, ValueError):
        original = {}
    meta = dict(original) if isinstance(original, dict) else {"source_scenario_config": original}
    meta["forecast"] = {
        "run_dir": str(Path(run_dir).resolve()),
        "variant": config.variant,
        "preset": config.preset,
        "scenario": scenario,
        "data_generator": str(ds.attrs.get("generator", "")),
        "dt_s": config.dt_s,
        "substeps": config.substeps,
    }
    return make_dataset(
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
