"""The system a run trains, ``(model, closure)``: built from a config, or loaded from a run directory.

A run directory holds ``config.json`` (the :class:`TrainConfig`, the model's
:class:`~plumecast.physics.model.GridConfig`, what the data was), checkpoints
(:mod:`plumecast.io.checkpoint`; the latest is the last model) and, when the data had
val scenarios, the selected (best-on-val) model (:mod:`plumecast.train.select`), which
:func:`load_run` gives by default. The config rebuilds the system's structure (a
*skeleton*) into which the checkpoint's leaves are read.

Starting from another run (``init_from``): its coarse model replaces the new one, and when
its closure carries the off-plane layer (``closure.layer()``) the new closure must carry
one too and takes it over: both are physics being continued, not network.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import equinox as eqx
import jax
import numpy as np

from plumecast.closure import closure_trainable_spec, make_closure
from plumecast.errors import TrainError
from plumecast.forcing import PreparedData, concentration_scale_of
from plumecast.forecast import check_grid
from plumecast.io.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint, read_json
from plumecast.physics.model import CoarseModel, GridConfig, model_from_dataset, trainable_spec
from plumecast.train.config import PhysicsSettings, TrainConfig
from plumecast.train.optim import averaged_parameters, make_optimizer

__all__ = ["build_system", "skeleton_system", "system_spec", "load_run", "resolve_flow"]


def build_system(ds, config: TrainConfig, prep: PreparedData):
    """The untrained ``(model, closure)`` of a run, deterministic in the config's seed."""
    train_idx = prep.indices("train")
    if train_idx.size == 0:
        raise TrainError("the dataset has no scenario in the 'train' split")
    k_model, k_closure = jax.random.split(jax.random.PRNGKey(config.seed))
    p = config.physics
    if config.init_from:
        start_system, start_config, _ = load_run(config.init_from)
        model = start_system[0]
        check_grid(model, ds, run=f"init_from run {config.init_from}")
        if start_config.physics != p:
            diff = [f.name for f in dataclasses.fields(PhysicsSettings) if getattr(start_config.physics, f.name)
                    != getattr(p, f.name)]
            raise TrainError(f"init_from run {config.init_from} differs in {', '.join(diff)}; start from a run with "
                             "the same physics settings")
    else:
        c_ref = concentration_scale_of(prep, train_idx, np.asarray(ds["fluid"].values))
        try:
            model = model_from_dataset(
                ds, c_ref=c_ref, dt=p.dt_s, substeps=p.substeps, layer_height_m=p.layer_height_m,
                source_scale_max=p.source_scale_max, exchange_max_per_s=p.exchange_max_per_s,
                observation_log_max=p.observation_log_max, observation_spacing_cells=p.observation_spacing_cells,
                advection=p.advection, flow=resolve_flow(p.flow, config, ds), dtype=p.dtype, key=k_model,
            )
        except ValueError as e:  # a flow too fast for the substeps, levels above layer_height_m, ...
            raise TrainError(str(e)) from None
    try:
        closure = make_closure(config.variant, model, key=k_closure, **config.closure_options)
    except (TypeError, ValueError) as e:
        raise TrainError(f"bad closure options {config.closure_options}: {e}") from None
    if config.init_from and start_system[1] is not None and start_system[1].layer() is not None:
        closure = _take_layer(config, closure, start_system[1].layer())
    return (model, closure)


def uses_column(config: TrainConfig) -> bool:
    """Whether the run's physics carries the column (the column variant, or a closure continuing one)."""
    return config.variant == "column" or config.closure_options.get("reservoir") == "column"


def resolve_flow(flow: str, config: TrainConfig, ds) -> str:
    """The model's ``GridConfig.flow`` for the setting ``flow`` ("auto": fluxes for a column where the data has them)."""
    if flow != "auto":
        return flow
    return "fluxes" if uses_column(config) and "flux_x_level" in ds.variables else "sampled"


def _take_layer(config: TrainConfig, closure, layer):
    """The closure with the start run's trained off-plane layer."""
    if closure is None or closure.layer() is None:
        raise TrainError(f"init_from run {config.init_from} has an off-plane layer in its physics; give the "
                         f"{config.variant!r} variant the same (closure option reservoir = true) or start from a run "
                         "without one")
    if jax.tree.structure(closure.layer()) != jax.tree.structure(layer):
        raise TrainError(f"the off-plane layer of init_from run {config.init_from} has another structure")
    return eqx.tree_at(lambda c: c.layer(), closure, layer)


def system_spec(system, *, train_physics: bool = True):
    """Filter spec (pytree of bools) of the trained leaves of ``(model, closure)``.

    ``train_physics=False``: the network's leaves only; the model and the closure's
    off-plane layer or column (physics, not network) stay fixed.
    """
    model, closure = system
    spec = (trainable_spec(model), closure_trainable_spec(closure))
    if train_physics:
        return spec
    model_spec = jax.tree.map(lambda _: False, spec[0])
    closure_spec = spec[1]
    if closure is not None and closure.layer() is not None:
        closure_spec = eqx.tree_at(lambda c: c.layer(), closure_spec, jax.tree.map(lambda _: False, closure_spec.layer()))
    return (model_spec, closure_spec)


def skeleton_system(grid: GridConfig, config: TrainConfig):
    """A system with a run's structure, to read checkpoint leaves into."""
    model = CoarseModel.skeleton(grid)
    closure = make_closure(config.variant, model, key=jax.random.PRNGKey(0), **config.closure_options)
    return (model, closure)


def load_run(run_dir: str | Path, model: str = "selected"):
    """``(system, train_config, run_json)`` of a run: its selected model, or with ``model="last"`` its latest checkpoint's
    (the parameters' average there when the run averages them, ``Schedule.average_decay``).

    The selected model is the best on the val split (``RUN/selected``, written by
    training when the data has val scenarios); a run without one (no val split, or
    trained before selection existed) gives its latest checkpoint for both.
    """
    from plumecast.train.select import read_selected, selected_path

    if model not in ("selected", "last"):
        raise TrainError(f"unknown model {model!r} of a run; expected selected or last")
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
        skeleton = skeleton_system(grid, config)
        info = read_selected(run_dir) if model == "selected" else None
        if info is not None:
            system = eqx.tree_deserialise_leaves(selected_path(run_dir, info), skeleton)
        elif config.schedule.average_decay:  # the last model is the parameters' average, kept in the optimiser state
            spec = system_spec(skeleton, train_physics=config.schedule.train_physics)
            params, static = eqx.partition(skeleton, spec)
            system, opt_state, _ = load_checkpoint(ckpt, system_like=skeleton,
                                                   opt_state_like=make_optimizer(config.schedule).init(params))
            params, static = eqx.partition(system, spec)
            system = eqx.combine(averaged_parameters(params, opt_state, config.schedule), static)
        else:
            system, _, _ = load_checkpoint(ckpt, system_like=skeleton)
    except (CheckpointError, KeyError, TypeError, ValueError, OSError, RuntimeError) as e:
        raise TrainError(f"{run_dir}: cannot load the run ({e})") from None
    return system, config, run
