"""The training loop: jitted window updates, epochs over truncated windows, val selection, checkpoints, resume.

* **One window update** (:func:`window_update`: loss, gradients, clipped Adam step) is the
  math of every optimiser step. It runs inside :func:`train_rollout`, one jitted call
  that carries a batch's rollout through all windows of a phase (a ``while`` loop over
  windows on the device, the window count a traced argument), so every phase, and every
  run in the process with the same settings and shapes, reuses one compilation
  (:func:`train_step_traces` counts them). The training split lives on the device for the
  whole run (:class:`TrainData`), windows are cut from it inside the call, and the host
  syncs once per batch rollout, not once per window (``float(loss)`` and ``bool(ok)`` per
  window cost a device round trip each; docs/evaluation.md, "Training speed", has the
  figures). :func:`train_step` is the same update jitted alone, one window per call: the
  earlier loop, kept as the reference the fused one is tested against and timed by
  ``benchmarks/bench_train.py``.
* **Non-finite loss.** The step keeps the previous parameters and optimiser state (the
  last good state), says so, and abandons the rest of that batch's rollout (its later
  windows change nothing). A skipped step cannot undo parameters that make every rollout
  blow up, so an epoch has diverged when ``DIVERGED_SHARE`` of its steps were not finite, or
  when the model it leaves cannot forecast: its val forecast is not finite where the one before
  it was (without val scenarios: its last step was not finite). The run then goes back to the
  epoch's start and runs it again at half the learning rate, up to ``Schedule.rollbacks`` times
  in all (each named in the checkpoints and the summary, and kept on resume), then stops with
  an error. With ``rollbacks = 0``, or
  steps that fail now and then, training stops after ``MAX_BAD_STEPS`` such steps.
* **Validation** (:mod:`plumecast.train.select`): after every epoch (and once before the
  first) the val score of a full rollout from t = 0; the best model so far is the run's
  selected model, ``RUN/selected/``. With ``patience > 0`` a curriculum phase ends after
  that many validations without a new best. Without val scenarios training runs every
  epoch and the last model is the run's model (said once).
* **Checkpoints** after every epoch and at the end (:mod:`plumecast.io.checkpoint`), the
  val curve and selection state inside; ``resume=True`` continues from the latest one and
  ends with exactly the parameters and selection an uninterrupted run would have.
* **Data parallel** over all local devices (:func:`batch_mesh`): a 1D mesh over
  ``jax.devices()``, each batch's rows split over it (``with_sharding_constraint`` on the
  batch axis inside :func:`train_rollout`), parameters, optimiser state and the training
  split replicated; XLA sums the gradients across devices. With one device the mesh is
  None and nothing changes. A batch that does not divide by the device count is padded
  with copies of its own rows whose weight in the loss is zero (:func:`window_update`'s
  ``weights``), so every batch size trains and the step equals the unpadded one to float
  round-off (tests/test_sharding.py). Only the fused engine shards; the per-window
  reference engine runs on one device.
* **Lazy data** (``train(..., lazy=True)``, ``plumecast train --lazy``): the dataset is
  opened with :func:`~plumecast.io.dataset.open_dataset_lazy` and its concentration read
  per batch (:class:`~plumecast.forcing.LazyConcentration`): the fused engine builds each
  batch's own :class:`TrainData` (its rows, the windows of the current phase; the later
  windows' targets are zeros that phase never reads), read from the file while the
  previous batch's rollout runs; validation and the summary read one chunk of scenarios
  at a time. Same numbers as eager loading (tests/test_lazy.py); memory is a batch, not
  the training split (docs/benchmarks.md, "Datasets larger than memory").
* **The room goes with the run**: ``RUN/room.nc`` (:mod:`plumecast.io.room`: plane grid,
  fluid mask, flow, units, training horizon, the 3D room when the data describes it) with
  its SHA-256 in ``config.json``, so a trained run forecasts new sources without the data.
"""

from __future__ import annotations

import time
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import plumecast
from plumecast.errors import TrainError
from plumecast.forcing import PreparedData, prepare_data
from plumecast.forecast import final_time_errors, point_log_errors
from plumecast.io.checkpoint import (key_from_json, key_to_json, latest_checkpoint, load_checkpoint, read_json,
                                     save_checkpoint, write_json_atomic)
from plumecast.io.dataset import SPLITS, open_dataset_lazy, read_dataset
from plumecast.io.room import room_from_dataset, store_run_room
from plumecast.physics.model import Forcing, GridConfig
from plumecast.train.config import QUICK, Objective, Schedule, TrainConfig
from plumecast.train.loss import regulariser, window_loss
from plumecast.train.optim import averaged_parameters, make_optimizer, set_learning_rate
from plumecast.train.select import VAL_SPLIT, pick_evidence, read_selected, val_score, write_selected
from plumecast.train.system import build_system, system_spec
from plumecast.train.windows import WindowPlan, epoch_batches, window_plan, window_slice

__all__ = ["MAX_BAD_STEPS", "DIVERGED_SHARE", "TrainResult", "TrainData", "make_optimizer", "set_learning_rate",
           "window_update", "train_step", "train_rollout", "train_data", "batch_train_data", "train_rows",
           "train_step_traces", "train", "epoch_per_window", "epoch_fused", "batch_mesh", "BATCH_AXIS"]

MAX_BAD_STEPS = 20
# The share of an epoch's steps that, once not finite, make the epoch diverged (as does a model left that cannot
# forecast val, or without val a non-finite last step): a rollback, Schedule.rollbacks.
DIVERGED_SHARE = 0.25


class _Diverged(Exception):
    """Raised from a batch's report when its epoch has diverged (caught by :func:`train`, which rolls back)."""
BATCH_AXIS = "batch"  # the one axis of the data-parallel mesh
_traces = [0]

# Windows after a release (s) over which a run records its pointwise log error on val (`locate`'s noise model);
# those shorter than the data's horizon, and the horizon.
POINT_ERROR_WINDOWS_S = (60.0, 120.0, 300.0, 600.0)
# A run keeps its training sources' heights when they form a few classes (`locate`'s default).
MAX_HEIGHT_CLASSES = 8


def trained_source_heights(ds) -> list[float] | None:
    """The distinct heights (m, to the mm) of the training split's emitting sources; None beyond a few classes."""
    train = np.asarray([str(s) == "train" for s in ds["split"].values])
    z = np.asarray(ds["source_z"].values, float)[train]
    rate = np.asarray(ds["source_rate"].values, float)[train]
    heights = sorted({round(float(v), 3) for v in z[rate > 0]})
    return heights if 0 < len(heights) <= MAX_HEIGHT_CLASSES else None


def batch_mesh(devices=None) -> Mesh | None:
    """The 1D data-parallel mesh over ``devices`` (default: all of ``jax.devices()``); None for one device."""
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise TrainError("no devices to train on")
    return Mesh(np.asarray(devices), (BATCH_AXIS,)) if len(devices) > 1 else None


def _replicate(tree, mesh: Mesh | None):
    """``tree``'s arrays copied to every device of ``mesh`` (unchanged without a mesh)."""
    if mesh is None:
        return tree
    rep = NamedSharding(mesh, P())
    return jax.tree.map(lambda a: jax.device_put(a, rep) if isinstance(a, (jax.Array, np.ndarray)) else a, tree)


def _split_batch(tree, sharding: NamedSharding | None):
    """Inside a jitted call: ``tree``'s leading (batch) axis split over the mesh (a no-op without one)."""
    if sharding is None:
        return tree
    return jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, sharding), tree)


def train_step_traces() -> int:
    """How many times the train step (:func:`train_step` or :func:`train_rollout`) has been traced in this process."""
    return _traces[0]


def window_update(params, static, opt_state, carry, forcing, targets, schedule: Schedule, objective: Objective,
                  steps_per_frame: int, weights=None):
    """One optimiser step over a batch of windows: ``(params, opt_state, carry, loss, ok)`` (not jitted).

    ``carry`` is batched (B, ...), ``forcing`` (B, steps) and ``targets`` (B, F, ny, nx).
    When the loss or a gradient is not finite (``ok`` False) the returned parameters and
    optimiser state are the ones passed in. ``weights (B,)`` (None: all rows count the
    same) weigh the rows' losses; rows of weight 0 are padding and change nothing.
    """
    optimizer = make_optimizer(schedule)

    def loss_fn(params, carry):
        model, closure = eqx.combine(params, static)
        per, carry = jax.vmap(
            lambda c, f, t: window_loss(model, closure, c, f, t, steps_per_frame=steps_per_frame, objective=objective)
        )(carry, forcing, targets)
        # Without weights the plain mean, so a one-device run is bit for bit what it was.
        data_loss = jnp.mean(per) if weights is None else jnp.sum(weights * per) / jnp.sum(weights)
        return data_loss + regulariser((model, closure), objective), carry

    (loss, new_carry), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(params, carry)
    updates, new_opt = optimizer.update(grads, opt_state, params)
    new_params = eqx.apply_updates(params, updates)
    finite = [jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]
    ok = jnp.isfinite(loss) & jnp.all(jnp.stack(finite)) if finite else jnp.isfinite(loss)
    keep = lambda new, old: jnp.where(ok, new, old)  # noqa: E731
    params = jax.tree.map(keep, new_params, params)
    opt_state = jax.tree.map(keep, new_opt, opt_state)
    return params, opt_state, jax.lax.stop_gradient(new_carry), loss, ok


@eqx.filter_jit
def train_step(params, static, opt_state, carry, forcing, targets, schedule: Schedule, objective: Objective,
               steps_per_frame: int):
    """:func:`window_update` jitted alone: one window per call (the reference path; see the module docstring)."""
    _traces[0] += 1
    return window_update(params, static, opt_state, carry, forcing, targets, schedule, objective, steps_per_frame)


class TrainData(eqx.Module):
    """The training split on the device, up to the last curriculum horizon, in windows' layout.

    ``conc0 (N, ny, nx)`` the t = 0 concentrations (encoded with the current parameters
    at each rollout's start), ``forcing`` ``(N, K_max * steps)`` per step, ``targets (N,
    K_max * F, ny, nx)`` the normalised snapshots after t = 0 (row ``n`` is the ``n``-th
    train scenario; :func:`train_rows` maps dataset indices to rows).
    """

    conc0: jax.Array
    forcing: Forcing
    targets: jax.Array
    frames: int = eqx.field(static=True)
    steps: int = eqx.field(static=True)


def train_data(prep: PreparedData, conc_normalised: np.ndarray, train_idx: np.ndarray, plan: WindowPlan,
               dtype) -> TrainData:
    """:class:`TrainData` of scenarios ``train_idx`` (moved to the device once per run)."""
    k_max = max(plan.windows)
    forcing = jax.tree.map(lambda a: jnp.asarray(a[train_idx, : k_max * plan.steps]), prep.forcing)
    targets = jnp.asarray(conc_normalised[train_idx, 1 : k_max * plan.frames + 1], dtype)
    conc0 = jnp.asarray(prep.conc[train_idx, 0])
    return TrainData(conc0, forcing, targets, plan.frames, plan.steps)


def batch_train_data(prep: PreparedData, conc_normalised, idx: np.ndarray, plan: WindowPlan, n_windows: int,
                     dtype) -> TrainData:
    """:class:`TrainData` of one batch, rows in ``idx``'s order, read for its first ``n_windows`` windows.

    The same layout as :func:`train_data` (``K_max`` windows, so every phase reuses one
    compilation); the targets of windows ``n_windows`` and later are zeros, not read:
    a rollout of ``n_windows`` windows never looks at them.
    """
    k_max = max(plan.windows)
    forcing = jax.tree.map(lambda a: jnp.asarray(a[idx, : k_max * plan.steps]), prep.forcing)
    read = conc_normalised[idx, 1 : n_windows * plan.frames + 1]
    targets = np.zeros((len(idx), k_max * plan.frames) + read.shape[2:], np.dtype(dtype))
    targets[:, : read.shape[1]] = read
    conc0 = jnp.asarray(prep.conc[idx, 0])
    return TrainData(conc0, forcing, jnp.asarray(targets), plan.frames, plan.steps)


def train_rows(train_idx: np.ndarray, idx: np.ndarray) -> jax.Array:
    """Rows of :class:`TrainData` holding the dataset's scenarios ``idx`` (all in ``train_idx``)."""
    position = {int(i): n for n, i in enumerate(train_idx)}
    return jnp.asarray([position[int(i)] for i in idx], jnp.int32)


@eqx.filter_jit
def train_rollout(params, static, opt_state, memory0, data: TrainData, rows, n_windows, schedule: Schedule,
                  objective: Objective, steps_per_frame: int, weights=None, batch_sharding: NamedSharding | None = None):
    """One batch's rollout from t = 0 through its first ``n_windows`` windows, one optimiser step per window.

    ``rows (B,)`` index ``data``; ``n_windows`` is traced (one compilation serves every
    curriculum phase). Returns ``(params, opt_state, losses, oks, ran)``, the last three
    of length ``K_max``: the window's loss, whether its step was finite, whether it ran.
    After a non-finite step the remaining windows leave parameters and optimiser state as
    they are, as the per-window loop abandons that rollout.

    ``weights (B,)`` as in :func:`window_update` (padding rows weigh 0). With
    ``batch_sharding`` (a ``NamedSharding`` over the batch axis, static) the batch's
    forcing, targets and carry are split over its devices; the gather ``data[rows]`` is
    where the split starts, so every device keeps only its rows' windows.
    """
    _traces[0] += 1
    F, S = data.frames, data.steps
    k_max = data.targets.shape[1] // F
    forcing = _split_batch(jax.tree.map(lambda a: a[rows], data.forcing), batch_sharding)
    targets = _split_batch(data.targets[rows], batch_sharding)
    model = eqx.combine(params, static)[0]
    # The start field as a state (the observation factor inverted with the current parameters).
    carry0 = _split_batch((model.encode(data.conc0[rows]),
                           jax.tree.map(lambda a: jnp.broadcast_to(a, (rows.shape[0],) + a.shape), memory0)),
                          batch_sharding)
    dtype = data.targets.dtype

    def window(k, state):
        params, opt_state, carry, alive, losses, oks, ran = state
        f = jax.tree.map(lambda a: jax.lax.dynamic_slice_in_dim(a, k * S, S, axis=1), forcing)
        t = jax.lax.dynamic_slice_in_dim(targets, k * F, F, axis=1)

        # After a non-finite step (alive False) the later windows still run but change nothing:
        # a lax.cond that skipped them compiled 40 % slower, and the failure path is rare.
        p2, o2, carry, loss, ok = window_update(params, static, opt_state, carry, f, t, schedule, objective,
                                                steps_per_frame, weights)
        carry = _split_batch(carry, batch_sharding)  # keep the loop's carry split, as it entered
        ok = ok & alive
        params = jax.tree.map(lambda n, o: jnp.where(alive, n, o), p2, params)
        opt_state = jax.tree.map(lambda n, o: jnp.where(alive, n, o), o2, opt_state)
        losses = losses.at[k].set(loss.astype(dtype))
        oks = oks.at[k].set(ok)
        ran = ran.at[k].set(alive)
        return params, opt_state, carry, alive & ok, losses, oks, ran

    state = (params, opt_state, carry0, jnp.asarray(True), jnp.full((k_max,), jnp.nan, dtype),
             jnp.zeros((k_max,), bool), jnp.zeros((k_max,), bool))
    params, opt_state, _, _, losses, oks, ran = jax.lax.fori_loop(0, n_windows, window, state)
    return params, opt_state, losses, oks, ran


# The two epoch engines take the same arguments and report each batch to ``on_batch(b,
# losses, bad_window)``: the finite windows' losses and the window whose step was not
# finite (None when all were). ``epoch_fused`` is what ``train`` runs; ``epoch_per_window``
# is the earlier loop (one jitted call, one host sync per window), kept for the equality
# test and the benchmark.


def epoch_per_window(params, static, opt_state, batches, n_windows: int, *, prep, conc_n, plan, memory0, sched,
                     objective, on_batch=None, **_):
    dtype = eqx.combine(params, static)[0].config.jdtype
    for b, idx in enumerate(batches):
        carry = (eqx.combine(params, static)[0].encode(prep.conc[idx, 0]),
                 jax.tree.map(lambda a: jnp.broadcast_to(a, (len(idx),) + a.shape), memory0))
        losses, bad_k = [], None
        for k in range(n_windows):
            forcing, targets = window_slice(prep, conc_n, idx, k, plan, dtype)
            params, opt_state, carry, loss, ok = train_step(params, static, opt_state, carry, forcing, targets, sched,
                                                            objective, prep.steps_per_snapshot)
            if not bool(ok):
                bad_k = k
                break
            losses.append(float(loss))
        if on_batch is not None:
            on_batch(b, losses, bad_k)
    return params, opt_state


def _sharded_rows(rows: jax.Array, mesh: Mesh | None):
    """``(rows, weights, sharding)`` of a batch on ``mesh``: rows padded to a multiple of the device count.

    Padding repeats the batch's own rows (real, finite data) with weight 0, so the loss,
    the gradients and the step are those of the unpadded batch. Without a mesh: the rows
    as they are, no weights, no sharding.
    """
    if mesh is None:
        return rows, None, None
    n_dev, n = mesh.devices.size, int(rows.shape[0])
    padded = -(-n // n_dev) * n_dev
    sharding = NamedSharding(mesh, P(BATCH_AXIS))
    weights = None
    if padded != n:
        rows = jnp.concatenate([rows, jnp.resize(rows, (padded - n,))])
        weights = jax.device_put(jnp.concatenate([jnp.ones(n), jnp.zeros(padded - n)]), sharding)
    return jax.device_put(rows, sharding), weights, sharding


def epoch_fused(params, static, opt_state, batches, n_windows: int, *, prep, data: TrainData | None, train_idx, memory0,
                sched, objective, on_batch=None, mesh: Mesh | None = None, read_batch=None, **_):
    # ``data`` is the training split on the device; None (lazy data): ``read_batch(idx,
    # n_windows)`` gives each batch's own TrainData, whose rows are the batch in order.
    def batch_input(idx):
        if data is not None:
            return data, train_rows(train_idx, idx)
        return _replicate(read_batch(idx, n_windows), mesh), jnp.arange(len(idx), dtype=jnp.int32)

    upcoming = batch_input(batches[0]) if len(batches) else None
    for b, idx in enumerate(batches):
        batch_data, rows = upcoming
        rows, weights, sharding = _sharded_rows(rows, mesh)
        params, opt_state, losses, oks, ran = train_rollout(params, static, opt_state, memory0, batch_data, rows,
                                                            jnp.asarray(n_windows, jnp.int32), sched, objective,
                                                            prep.steps_per_snapshot, weights, sharding)
        if b + 1 < len(batches):  # JAX dispatches the rollout and returns: read the next batch while it runs
            upcoming = batch_input(batches[b + 1])
        losses, oks, ran = np.asarray(losses), np.asarray(oks), np.asarray(ran)  # the one host sync of the rollout
        failed = np.flatnonzero(ran & ~oks)
        bad_k = int(failed[0]) if failed.size else None
        if on_batch is not None:
            on_batch(b, [float(v) for v in losses[ran & oks]], bad_k)
    return params, opt_state


@dataclass
class TrainResult:
    run_dir: Path
    system: Any  # the run's selected model (best on val; the last model when the data has no val split)
    history: list = field(default_factory=list)
    completed: bool = True
    trace_count: int = 0  # compilations of the train step during this call (0 when reused)
    summary: dict | None = None
    val_curve: list = field(default_factory=list)
    selected: dict | None = None  # epoch, phase and val score of the selected model; None without val
    last_system: Any = None  # the model after the last epoch (the resumable checkpoint's)


def _start_run(run_dir: Path, config: TrainConfig | None, resume: bool) -> tuple[TrainConfig, dict | None]:
    """The run's config (the saved one when resuming) and the saved run JSON."""
    if not resume:
        if latest_checkpoint(run_dir) is not None:
            raise TrainError(f"{run_dir} already holds a run; use resume or another directory")
        return config or QUICK, None
    if latest_checkpoint(run_dir) is None or not (run_dir / "config.json").is_file():
        raise TrainError(f"{run_dir} holds no checkpoint to resume from")
    saved = read_json(run_dir / "config.json")
    saved_cfg = TrainConfig.from_json(saved["train"])
    if config is not None and config != saved_cfg:
        raise TrainError(f"{run_dir} was trained with another configuration; resume without changing it")
    return saved_cfg, saved


def train(data, run_dir: str | Path, config: TrainConfig | None = None, *, resume: bool = False,
          progress: bool = True, stop_after_epochs: int | None = None, evaluate: bool = True,
          log: Callable[[str], None] | None = None, engine: str = "fused", devices=None,
          lazy: bool = False) -> TrainResult:
    """Train a variant on a dataset (path or ``xarray.Dataset``); see the module docstrings of ``plumecast.train``.

    With ``resume``, the configuration is the one saved in ``run_dir`` (``config`` must be
    None or equal to it). ``stop_after_epochs`` ends this call after that many epochs
    (the run can be resumed), as an interruption would. ``engine="per-window"`` runs the
    earlier one-call-per-window loop (for the benchmark and the equality test only).
    ``devices`` (default: all of ``jax.devices()``) are the data-parallel devices of the
    fused engine; the module docstring says how batches are split over them. ``lazy``
    reads the concentration per batch instead of holding it (same results; the module
    docstring says how); a path is then opened with :func:`open_dataset_lazy`, a dataset
    is used as it was opened.
    """
    from rich.console import Console

    run_epoch = {"fused": epoch_fused, "per-window": epoch_per_window}.get(engine)
    if run_epoch is None:
        raise TrainError(f"unknown training engine {engine!r}; known: fused, per-window")
    if isinstance(data, (str, Path)):
        with open_dataset_lazy(data) if lazy else read_dataset(data) as ds:  # the file is closed after training
            return train(ds, run_dir, config, resume=resume, progress=progress, stop_after_epochs=stop_after_epochs,
                         evaluate=evaluate, log=log, engine=engine, devices=devices, lazy=lazy)
    ds = data
    run_dir = Path(run_dir)
    console = Console(stderr=True)
    say = log or (lambda msg: console.print(msg, highlight=False))
    config, saved = _start_run(run_dir, config, resume)
    sched, objective = config.schedule, config.objective
    prep = prepare_data(ds, config.physics.dt_s, config.physics.dtype, lazy=lazy)
    plan = window_plan(sched, prep, config.physics.dt_s)
    system = build_system(ds, config, prep)
    model0 = system[0]
    if saved is not None and GridConfig.from_json(saved["grid"]) != model0.config:
        raise TrainError(f"the dataset does not match the one {run_dir} was trained on (grid or scales differ)")
    val_idx = prep.indices(VAL_SPLIT) if saved is None else _resumed_val(saved, prep, run_dir)
    traces_before = train_step_traces()
    spec = system_spec(system, train_physics=sched.train_physics)
    params, static = eqx.partition(system, spec)
    opt_state = make_optimizer(sched).init(params)
    key = jax.random.PRNGKey(config.seed)
    history: list = []
    val_curve: list = []
    best: dict | None = None  # {"epoch", "phase", "val"} of the selected model
    since_best = 0  # validations without a new best in the current phase
    epochs_done = 0
    early_stops: list = []
    rollbacks: list = []  # {"epoch", "phase", "learning_rate"} of each return to an epoch's start at half the rate

    def run_model():  # reads params / opt_state / static as they are bound when called
        """The run's model now: the current parameters, or their average (``Schedule.average_decay``)."""
        return eqx.combine(averaged_parameters(params, opt_state, sched), static)

    if resume:
        ckpt = latest_checkpoint(run_dir)
        system, opt_state, state = load_checkpoint(ckpt, system_like=system, opt_state_like=opt_state)
        params, static = eqx.partition(system, spec)
        key = key_from_json(state["key"])
        epochs_done = int(state["epochs_done"])
        history = list(state.get("history", []))
        val_curve = list(state.get("val_curve", []))
        best = state.get("best")
        since_best = int(state.get("since_best", 0))
        early_stops = list(state.get("early_stops", []))
        rollbacks = list(state.get("rollbacks", []))
        if rollbacks:  # the rate the run had reached: halved once per rollback (exact in floating point)
            sched = replace(sched, learning_rate=sched.learning_rate * 0.5 ** len(rollbacks))
        if best is not None:
            _repair_selected(run_dir, best, epochs_done, run_model())
        say(f"resuming {run_dir} from {ckpt.name} after {epochs_done} epochs")
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        horizon_s, snapshot_s = float(prep.times[-1] - prep.times[0]), float(prep.times[1] - prep.times[0])
        # The room goes with the run (io/room.py): what-if forecasts and sweeps need no dataset.
        room = store_run_room(run_dir, room_from_dataset(ds, horizon_s=horizon_s, snapshot_s=snapshot_s))
        write_json_atomic(run_dir / "config.json", {
            "plumecast_version": plumecast.__version__,
            "train": config.to_json(),
            "grid": model0.config.to_json(),
            "data": {"generator": str(ds.attrs.get("generator", "")), "scenarios": prep.names, "splits": prep.splits,
                     "horizon_s": horizon_s, "snapshot_s": snapshot_s,
                     "source_heights_m": trained_source_heights(ds)},
            "room": room,
        })
    if val_idx.size == 0:
        say(f"no '{VAL_SPLIT}' scenarios in the dataset: no model selection or early stopping; the run's model is its "
            "last" + (" (patience is ignored)" if sched.patience else ""))

    train_idx = prep.indices("train")
    n_batches = len(epoch_batches(key, 0, train_idx, sched.batch_size))
    total_epochs = sum(sched.epochs)
    phase_start = [sum(sched.epochs[:p]) for p in range(len(sched.epochs))]
    total_steps = sum(e * n_batches * w for e, w in zip(sched.epochs, plan.windows))
    done_steps = sum(min(max(epochs_done - phase_start[p], 0), sched.epochs[p]) * n_batches * plan.windows[p]
                     for p in range(len(plan.windows)))
    conc_n = prep.conc / model0.config.c_ref
    memory0 = system[1].init_memory() if system[1] is not None else ()
    data_dev = train_data(prep, conc_n, train_idx, plan, model0.config.jdtype) if engine == "fused" and not lazy else None

    def read_batch(idx, n_windows):
        return batch_train_data(prep, conc_n, idx, plan, n_windows, model0.config.jdtype)

    mesh = batch_mesh(devices) if engine == "fused" else None
    if mesh is not None:  # everything but the batch rows lives whole on every device
        params, opt_state, memory0, data_dev = _replicate((params, opt_state, memory0, data_dev), mesh)
        padded = -(-sched.batch_size // mesh.devices.size) * mesh.devices.size
        say(f"data parallel over {mesh.devices.size} devices ({mesh.devices.flat[0].platform})"
            + (f"; batches of {sched.batch_size} padded to {padded} with zero-weight rows" if padded != sched.batch_size
               else ""))
    bad = [0]
    epochs_done_at_start = epochs_done
    completed = True
    t_start = time.perf_counter()

    def save(final: bool):
        state = {"epochs_done": epochs_done, "total_epochs": total_epochs, "key": key_to_json(key), "history": history,
                 "val_curve": val_curve, "best": best, "since_best": since_best, "early_stops": early_stops,
                 "rollbacks": rollbacks, "done": final, "plumecast_version": plumecast.__version__}
        save_checkpoint(run_dir, epochs_done, system=eqx.combine(params, static), opt_state=opt_state, state=state)

    def validate(epoch: int, phase: int, score: float) -> bool:
        """Record the current model's val ``score``, select it when best; True when it is a new best."""
        nonlocal best, since_best
        val_curve.append({"epoch": epoch, "phase": phase, "val": score})
        if best is None or score < best["val"]:
            best = {"epoch": epoch, "phase": phase, "val": score}
            since_best = 0
            return True
        since_best += 1
        return False

    if val_idx.size and not val_curve:  # epoch 0: the untrained (or started) model is a candidate too
        validate(0, -1, val_score(run_model(), prep, val_idx))
        write_selected(run_dir, run_model(), best)

    with _progress(progress, console) as bar:
        task = bar.add_task("training", total=total_steps, completed=done_steps, loss=float("nan"), phase="")
        epoch = 0
        for p, (horizon, n_epochs, K) in enumerate(zip(sched.curriculum_s, sched.epochs, plan.windows)):
            for e in range(n_epochs):
                if epoch < epochs_done:
                    epoch += 1
                    continue
                if stop_after_epochs is not None and epochs_done - epochs_done_at_start >= stop_after_epochs:
                    completed = False
                    break
                if epoch == phase_start[p]:
                    since_best = 0  # patience counts within a phase: each phase is a new objective
                start = (params, opt_state, bad[0], _completed(bar, task))  # where a rollback returns to
                while True:
                    losses, epoch_bad = [], [0]
                    batches = epoch_batches(key, epoch, train_idx, sched.batch_size)
                    diverged_at = max(1, math.ceil(DIVERGED_SHARE * len(batches)))

                    def on_batch(b, batch_losses, bad_k, p=p, e=e, horizon=horizon, K=K):
                        losses.extend(batch_losses)
                        if bad_k is not None:
                            bad[0] += 1
                            epoch_bad[0] += 1
                            say(f"[yellow]non-finite loss[/] in phase {p + 1} ({horizon:g} s), epoch {e + 1}, batch "
                                f"{b + 1}, window {bad_k + 1}: update skipped, last good parameters and optimiser "
                                "state kept; rest of this rollout abandoned")
                            # A quarter of the epoch has diverged; without val to judge what an epoch leaves, a
                            # failing last step makes it suspect too (with val, the score after it judges).
                            if sched.rollbacks and (epoch_bad[0] >= diverged_at
                                                    or (b + 1 == len(batches) and not val_idx.size)):
                                raise _Diverged
                            if bad[0] > MAX_BAD_STEPS:
                                raise TrainError(f"{bad[0]} non-finite steps: training stopped (last good state in "
                                                 f"{run_dir})")
                        bar.update(task, advance=K, loss=batch_losses[-1] if batch_losses else float("nan"),
                                   phase=f"{horizon:g} s")

                    if sched.lr_decay != "constant":
                        opt_state = set_learning_rate(opt_state, sched.epoch_learning_rate(e, n_epochs))
                    score = None
                    try:
                        params, opt_state = run_epoch(params, static, opt_state, batches, K, prep=prep,
                                                      conc_n=conc_n, plan=plan, data=data_dev, train_idx=train_idx,
                                                      memory0=memory0, sched=sched, objective=objective,
                                                      on_batch=on_batch, mesh=mesh, read_batch=read_batch)
                        if val_idx.size:
                            score = val_score(run_model(), prep, val_idx)
                            # A model that forecast val before this epoch and cannot after it has diverged.
                            if sched.rollbacks and not math.isfinite(score) and math.isfinite(val_curve[-1]["val"]):
                                raise _Diverged
                        break
                    except _Diverged:
                        why = (f"{epoch_bad[0]} of its {len(batches)} steps not finite" if score is None else
                               f"its val forecast not finite; {epoch_bad[0]} of its {len(batches)} steps not finite")
                        if len(rollbacks) >= sched.rollbacks:
                            raise TrainError(
                                f"training diverged: epoch {epoch + 1} ({why}) after {len(rollbacks)} rollback(s) to "
                                f"half the learning rate (now {sched.learning_rate:.3g}); stopped (last good state "
                                f"in {run_dir})") from None
                        params, opt_state, bad[0], done_then = start
                        sched = replace(sched, learning_rate=0.5 * sched.learning_rate)
                        rollbacks.append({"epoch": epoch + 1, "phase": p, "learning_rate": sched.learning_rate})
                        bar.update(task, completed=done_then)
                        say(f"[yellow]epoch {epoch + 1} diverged[/] ({why}): back to its start at half the learning "
                            f"rate, {sched.learning_rate:.3g} (rollback {len(rollbacks)} of at most {sched.rollbacks})")
                epoch += 1
                epochs_done = epoch
                history.append({"phase": p, "horizon_s": horizon, "epoch": e,
                                "loss": float(np.mean(losses)) if losses else None})
                improved = validate(epoch, p, score) if val_idx.size else False
                stop = bool(val_idx.size and sched.patience and since_best >= sched.patience and e + 1 < n_epochs)
                if stop:  # the rest of this phase is skipped, as if run (resume and batch keys stay aligned)
                    early_stops.append({"phase": p, "after_epoch": epoch, "skipped_epochs": n_epochs - e - 1})
                    bar.advance(task, (n_epochs - e - 1) * n_batches * K)
                    epoch = epochs_done = phase_start[p] + n_epochs
                    say(f"phase {p + 1}: no better val score in {sched.patience} validations; phase ended after "
                        f"{e + 1} of {n_epochs} epochs (best val {best['val']:.4g} at epoch {best['epoch']})")
                save(final=False)
                if improved:  # after the checkpoint, whose state names it (_repair_selected covers a crash between)
                    write_selected(run_dir, run_model(), best)
                if stop:
                    break
            if not completed:
                break
            if epoch > max(epochs_done_at_start, phase_start[p]):  # this phase ran in this call
                last = history[-1]["loss"] if history and history[-1]["loss"] is not None else float("nan")
                val = f", val {val_curve[-1]['val']:.4g}" if val_curve else ""
                say(f"phase {p + 1}/{len(plan.windows)} ({horizon:g} s horizon, {n_epochs} epochs) done: last epoch "
                    f"mean loss {last:.4g}{val}, {time.perf_counter() - t_start:.0f} s elapsed")
    if epochs_done == epochs_done_at_start and completed and resume:
        say("nothing left to train: the run was already complete")
    if completed:
        save(final=True)
    last_system = run_model()
    system = _load_selected(run_dir, best, last_system)
    if best is not None:
        say(f"selected on val: epoch {best['epoch']} of {epochs_done} (val {best['val']:.4g}; "
            f"{len(val_curve)} validations)")
    summary = None
    if completed and evaluate:
        summary = _summary(ds, config, prep, system, seconds=time.perf_counter() - t_start, epochs=epochs_done,
                           val_curve=val_curve, best=best, early_stops=early_stops, last_system=last_system)
        summary["rollbacks"] = rollbacks
        write_json_atomic(run_dir / "summary.json", summary)
        for split in summary["trained"]:
            say(f"{split:5s}: median final-time relative L2 error {summary['untrained'][split]['median']:.3f} untrained "
                f"-> {summary['trained'][split]['median']:.3f} trained")
        if summary.get("pick_evidence") and best["epoch"] != epochs_done:
            ev = summary["pick_evidence"]
            say(f"the pick against the last model (epoch {epochs_done}, val {summary['last']['val']:.4g}): lower on "
                f"{ev['selected_lower_on']} of {ev['scenarios']} val scenarios, higher on {ev['last_lower_on']} (sign "
                f"test p = {ev['sign_test_p']:.2f})" + ("; this val split cannot tell the two apart"
                                                          if ev["sign_test_p"] >= 0.05 else ""))
        if summary.get("point_error_val"):
            say("log error at single cells on val, for locate's noise model: " + ", ".join(
                f"{r['model_error']:.2f} within {r['window_s']:g} s" for r in summary["point_error_val"]
                if r["model_error"] is not None))
    return TrainResult(run_dir, system, history, completed, train_step_traces() - traces_before, summary,
                       val_curve=val_curve, selected=best, last_system=last_system)


def _resumed_val(saved: dict, prep, run_dir: Path) -> np.ndarray:
    """The val scenarios of a resumed run: those it started with (a run keeps one val set), found in the data.

    The train scenarios must be the ones it started with too. Data regenerated with val
    scenarios appended resumes a run that had none as it was: without selection.
    """
    names = list(saved.get("data", {}).get("scenarios", prep.names))
    splits = list(saved.get("data", {}).get("splits", prep.splits))
    was = {split: [n for n, s in zip(names, splits) if s == split] for split in ("train", VAL_SPLIT)}
    now_train = [prep.names[i] for i in prep.indices("train")]
    if now_train != was["train"]:
        raise TrainError(f"the dataset's train scenarios differ from the ones {run_dir} was trained on; resume on the "
                         "same data")
    missing = [n for n in was[VAL_SPLIT] if n not in prep.names or prep.splits[prep.names.index(n)] != VAL_SPLIT]
    if missing:
        raise TrainError(f"the val scenarios {missing} of {run_dir} are not val scenarios of the dataset; resume on the "
                         "same data")
    return np.asarray([prep.names.index(n) for n in was[VAL_SPLIT]], dtype=int)


def _repair_selected(run_dir: Path, best: dict, epochs_done: int, system) -> None:
    """Make ``RUN/selected`` agree with a checkpoint's state after a crash between their writes.

    The checkpoint is written first; when it names itself as the best and the selection
    still points at an earlier model, its model is the selected one.
    """
    info = read_selected(run_dir)
    if info is not None and int(info["epoch"]) == int(best["epoch"]):
        return
    if int(best["epoch"]) == epochs_done:
        write_selected(run_dir, system, best)
        return
    raise TrainError(f"{run_dir}: the selected model (epoch {None if info is None else info['epoch']}) does not match "
                     f"the checkpoint's best (epoch {best['epoch']}); the run directory was changed by hand")


def _load_selected(run_dir: Path, best: dict | None, last_system):
    """The selected model (from ``RUN/selected``), or the last one when there is no selection."""
    if best is None:
        return last_system
    from plumecast.train.select import selected_path

    info = read_selected(run_dir)
    return eqx.tree_deserialise_leaves(selected_path(run_dir, info), last_system)


def _summary(ds, config: TrainConfig, prep, system, *, seconds: float, epochs: int, val_curve: list, best: dict | None,
             early_stops: list, last_system) -> dict:
    """Final-time relative L2 errors per split, of the untrained and the selected system, and the val curve.

    Only ``val`` chose ``trained`` (the selected model); the test and OOD figures are
    reported here and used by nothing.
    """
    summary = {"seconds": seconds, "epochs": epochs, "variant": config.variant, "preset": config.preset,
               "metric": "relative L2 error at the final time, fluid cells",
               "selection": ("best val score (median final-time relative L2 over the val scenarios)" if best else
                             "none: the data has no val scenarios; the last model"),
               "selected": best, "val_curve": val_curve, "early_stops": early_stops}
    for label, sysm in (("untrained", build_system(ds, config, prep)), ("trained", system)):
        summary[label] = {}
        for split in SPLITS:
            idx = prep.indices(split)
            if idx.size:
                err = final_time_errors(sysm, prep, idx)
                summary[label][split] = {
                    "median": float(np.nanmedian(err)),
                    "q25": float(np.nanpercentile(err, 25)),
                    "q75": float(np.nanpercentile(err, 75)),
                    "per_scenario": {prep.names[i]: float(v) for i, v in zip(idx, err)},
                }
    val_idx = prep.indices(VAL_SPLIT)
    if best is not None and val_curve:
        summary["last"] = {"epoch": epochs, "val": val_curve[-1]["val"]}
        if val_idx.size:  # is the pick's edge over the last model more than val's noise? (train/select.py)
            picked = summary["trained"]["val"]["per_scenario"]
            last_err = ([picked[prep.names[i]] for i in val_idx] if best["epoch"] == epochs  # the pick is the last
                        else final_time_errors(last_system, prep, val_idx))
            summary["last"]["per_scenario"] = {prep.names[i]: float(v) for i, v in zip(val_idx, last_err)}
            summary["pick_evidence"] = pick_evidence([picked[prep.names[i]] for i in val_idx], last_err)
    if val_idx.size:  # the noise model `locate` uses by default: the selected model's pointwise error on val
        from plumecast.locate.core import default_limit

        horizon = float(prep.times[-1] - prep.times[0])
        windows = sorted({w for w in POINT_ERROR_WINDOWS_S if w < horizon - 1e-9} | {horizon})
        summary["point_error_val"] = point_log_errors(system, prep, val_idx, windows_s=windows,
                                                      limit=default_limit(system[0]))
    return summary


def _completed(bar, task) -> float:
    """The steps the progress bar's ``task`` has completed."""
    return next(t.completed for t in bar.tasks if t.id == task)


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
