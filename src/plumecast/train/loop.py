"""The training loop: one jitted train step, epochs over truncated windows, checkpoints and resume.

* **One jitted train step** (loss, gradients, update): a module-level ``eqx.filter_jit``
  function whose settings (schedule's optimiser, objective, steps per frame) are static
  and hashable, so every window of every phase, and every run in the process with the
  same settings, reuses one compilation (:func:`train_step_traces` counts them).
* **Non-finite loss.** The step keeps the previous parameters and optimiser state (the
  last good state), says so, and abandons the rest of that batch's rollout; after
  ``MAX_BAD_STEPS`` such steps training stops with an error.
* **Checkpoints** after every epoch and at the end (:mod:`plumecast.io.checkpoint`);
  ``resume=True`` continues from the latest one and ends with exactly the parameters an
  uninterrupted run would have.
* **The room goes with the run**: ``RUN/room.nc`` (:mod:`plumecast.io.room`: plane grid,
  fluid mask, flow, units, training horizon, the 3D room when the data describes it) with
  its SHA-256 in ``config.json``, so a trained run forecasts new sources without the data.
"""

from __future__ import annotations

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
from plumecast.errors import TrainError
from plumecast.forcing import prepare_data
from plumecast.forecast import final_time_errors
from plumecast.io.checkpoint import (key_from_json, key_to_json, latest_checkpoint, load_checkpoint, read_json,
                                     save_checkpoint, write_json_atomic)
from plumecast.io.dataset import read_dataset
from plumecast.io.room import room_from_dataset, store_run_room
from plumecast.physics.model import GridConfig
from plumecast.train.config import QUICK, Objective, Schedule, TrainConfig
from plumecast.train.loss import regulariser, window_loss
from plumecast.train.system import build_system, system_spec
from plumecast.train.windows import epoch_batches, window_plan, window_slice

__all__ = ["MAX_BAD_STEPS", "TrainResult", "make_optimizer", "train_step", "train_step_traces", "train"]

MAX_BAD_STEPS = 20
_traces = [0]


def make_optimizer(schedule: Schedule):
    return optax.chain(optax.clip_by_global_norm(schedule.clip_norm), optax.adam(schedule.learning_rate))


def train_step_traces() -> int:
    """How many times :func:`train_step` has been traced (compiled) in this process."""
    return _traces[0]


@eqx.filter_jit
def train_step(params, static, opt_state, carry, forcing, targets, schedule: Schedule, objective: Objective,
               steps_per_frame: int):
    """One optimiser step over a batch of windows: ``(params, opt_state, carry, loss, ok)``.

    ``carry`` is batched (B, ...), ``forcing`` (B, steps) and ``targets`` (B, F, ny, nx).
    When the loss or a gradient is not finite (``ok`` False) the returned parameters and
    optimiser state are the ones passed in.
    """
    _traces[0] += 1
    optimizer = make_optimizer(schedule)

    def loss_fn(params, carry):
        model, closure = eqx.combine(params, static)
        per, carry = jax.vmap(
            lambda c, f, t: window_loss(model, closure, c, f, t, steps_per_frame=steps_per_frame, objective=objective)
        )(carry, forcing, targets)
        return jnp.mean(per) + regulariser((model, closure), objective), carry

    (loss, new_carry), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(params, carry)
    updates, new_opt = optimizer.update(grads, opt_state, params)
    new_params = eqx.apply_updates(params, updates)
    finite = [jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]
    ok = jnp.isfinite(loss) & jnp.all(jnp.stack(finite)) if finite else jnp.isfinite(loss)
    keep = lambda new, old: jnp.where(ok, new, old)  # noqa: E731
    params = jax.tree.map(keep, new_params, params)
    opt_state = jax.tree.map(keep, new_opt, opt_state)
    return params, opt_state, jax.lax.stop_gradient(new_carry), loss, ok


@dataclass
class TrainResult:
    run_dir: Path
    system: Any
    history: list = field(default_factory=list)
    completed: bool = True
    trace_count: int = 0  # compilations of the train step during this call (0 when reused)
    summary: dict | None = None


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
          log: Callable[[str], None] | None = None) -> TrainResult:
    """Train a variant on a dataset (path or ``xarray.Dataset``); see the module docstrings of ``plumecast.train``.

    With ``resume``, the configuration is the one saved in ``run_dir`` (``config`` must be
    None or equal to it). ``stop_after_epochs`` ends this call after that many epochs
    (the run can be resumed), as an interruption would.
    """
    from rich.console import Console

    run_dir = Path(run_dir)
    console = Console(stderr=True)
    say = log or (lambda msg: console.print(msg, highlight=False))
    ds = read_dataset(data) if isinstance(data, (str, Path)) else data
    config, saved = _start_run(run_dir, config, resume)
    sched, objective = config.schedule, config.objective
    prep = prepare_data(ds, config.physics.dt_s, config.physics.dtype)
    plan = window_plan(sched, prep, config.physics.dt_s)
    system = build_system(ds, config, prep)
    model0 = system[0]
    if saved is not None and GridConfig.from_json(saved["grid"]) != model0.config:
        raise TrainError(f"the dataset does not match the one {run_dir} was trained on (grid or scales differ)")
    traces_before = train_step_traces()
    spec = system_spec(system)
    params, static = eqx.partition(system, spec)
    opt_state = make_optimizer(sched).init(params)
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
        horizon_s, snapshot_s = float(prep.times[-1] - prep.times[0]), float(prep.times[1] - prep.times[0])
        # The room goes with the run (io/room.py): what-if forecasts and sweeps need no dataset.
        room = store_run_room(run_dir, room_from_dataset(ds, horizon_s=horizon_s, snapshot_s=snapshot_s))
        write_json_atomic(run_dir / "config.json", {
            "plumecast_version": plumecast.__version__,
            "train": config.to_json(),
            "grid": model0.config.to_json(),
            "data": {"generator": str(ds.attrs.get("generator", "")), "scenarios": prep.names, "splits": prep.splits,
                     "horizon_s": horizon_s, "snapshot_s": snapshot_s},
            "room": room,
        })

    train_idx = prep.indices("train")
    n_batches = len(epoch_batches(key, 0, train_idx, sched.batch_size))
    total_epochs = sum(sched.epochs)
    total_steps = sum(e * n_batches * w for e, w in zip(sched.epochs, plan.windows))
    done_steps = sum(min(max(epochs_done - sum(sched.epochs[:p]), 0), sched.epochs[p]) * n_batches * plan.windows[p]
                     for p in range(len(plan.windows)))
    conc_n = prep.conc / model0.config.c_ref
    memory0 = system[1].init_memory() if system[1] is not None else ()
    bad = 0
    epochs_done_at_start = epochs_done
    completed = True
    t_start = time.perf_counter()

    def save(final: bool):
        state = {"epochs_done": epochs_done, "total_epochs": total_epochs, "key": key_to_json(key), "history": history,
                 "done": final, "plumecast_version": plumecast.__version__}
        save_checkpoint(run_dir, epochs_done, system=eqx.combine(params, static), opt_state=opt_state, state=state)

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
                losses = []
                for b, idx in enumerate(epoch_batches(key, epoch, train_idx, sched.batch_size)):
                    # The start field as a state (the observation factor inverted; a constant of the step).
                    carry = (eqx.combine(params, static)[0].encode(prep.conc[idx, 0]),
                             jax.tree.map(lambda a: jnp.broadcast_to(a, (len(idx),) + a.shape), memory0))
                    for k in range(K):
                        forcing, targets = window_slice(prep, conc_n, idx, k, plan, model0.config.jdtype)
                        params, opt_state, carry, loss, ok = train_step(params, static, opt_state, carry, forcing,
                                                                        targets, sched, objective,
                                                                        prep.steps_per_snapshot)
                        if not bool(ok):
                            bad += 1
                            say(f"[yellow]non-finite loss[/] in phase {p + 1} ({horizon:g} s), epoch {e + 1}, batch "
                                f"{b + 1}, window {k + 1}: update skipped, last good parameters and optimiser state "
                                "kept; rest of this rollout abandoned")
                            if bad > MAX_BAD_STEPS:
                                raise TrainError(f"{bad} non-finite steps: training stopped (last good state in {run_dir})")
                            bar.advance(task, K - k)
                            break
                        losses.append(float(loss))
                        bar.update(task, advance=1, loss=float(loss), phase=f"{horizon:g} s")
                epoch += 1
                epochs_done = epoch
                history.append({"phase": p, "horizon_s": horizon, "epoch": e,
                                "loss": float(np.mean(losses)) if losses else None})
                save(final=False)
            if not completed:
                break
            if epoch > max(epochs_done_at_start, sum(sched.epochs[:p])):  # this phase ran in this call
                last = history[-1]["loss"] if history else float("nan")
                say(f"phase {p + 1}/{len(plan.windows)} ({horizon:g} s horizon, {n_epochs} epochs) done: last epoch "
                    f"mean loss {last:.4g}, {time.perf_counter() - t_start:.0f} s elapsed")
    if epochs_done == epochs_done_at_start and completed and resume:
        say("nothing left to train: the run was already complete")
    if completed:
        save(final=True)
    system = eqx.combine(params, static)
    summary = None
    if completed and evaluate:
        summary = _summary(ds, config, prep, system, seconds=time.perf_counter() - t_start, epochs=epochs_done)
        write_json_atomic(run_dir / "summary.json", summary)
        for split in summary["trained"]:
            say(f"{split:5s}: median final-time relative L2 error {summary['untrained'][split]['median']:.3f} untrained "
                f"-> {summary['trained'][split]['median']:.3f} trained")
    return TrainResult(run_dir, system, history, completed, train_step_traces() - traces_before, summary)


def _summary(ds, config: TrainConfig, prep, system, *, seconds: float, epochs: int) -> dict:
    """Final-time relative L2 errors per split, of the untrained and the trained system."""
    summary = {"seconds": seconds, "epochs": epochs, "variant": config.variant, "preset": config.preset,
               "metric": "relative L2 error at the final time, fluid cells"}
    for label, sysm in (("untrained", build_system(ds, config, prep)), ("trained", system)):
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
    return summary


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
