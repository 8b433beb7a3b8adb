"""Checkpoint files of a training run: Equinox leaves + JSON, written atomically. No pickle.

Layout of a run directory::

    RUN_DIR/config.json                   run configuration (train config, grid, data)
    RUN_DIR/checkpoints/LATEST            name of the newest complete checkpoint
    RUN_DIR/checkpoints/ckpt-000012/
        model.eqx                         (model, closure) leaves, eqx.tree_serialise_leaves
        opt_state.eqx                     optimiser state leaves
        state.json                        progress counters, PRNG key data, loss history

A checkpoint is written into a fresh temporary directory next to its final place and
renamed when complete (a rename within one filesystem is atomic); ``LATEST`` is then
replaced atomically. A crash at any moment leaves the previous checkpoint intact and
``LATEST`` pointing at a complete one. Leaves are read back into a *skeleton* of the same
structure, rebuilt from the JSON configuration (arrays through ``numpy.load`` without
pickle).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from plumecast.io.atomic import atomic_path

CHECKPOINT_VERSION = 2  # 2: the coarse model gained theta_exchange
_DIR = "checkpoints"
_LATEST = "LATEST"


class CheckpointError(ValueError):
    """A run directory or checkpoint that cannot be read; the message names the problem."""


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """Write JSON through a temporary file beside ``path``, renamed over it."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    return path


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None


def key_to_json(key) -> dict:
    """PRNG key as JSON: its raw key data (and implementation for typed keys)."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return {"typed": True, "impl": str(jax.random.key_impl(key)), "data": np.asarray(jax.random.key_data(key)).tolist()}
    return {"typed": False, "data": np.asarray(key).tolist()}


def key_from_json(d: dict):
    data = jnp.asarray(np.asarray(d["data"], dtype=np.uint32))
    return jax.random.wrap_key_data(data) if d.get("typed") else data


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / _DIR


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of a run, or None."""
    root = checkpoint_dir(run_dir)
    latest = root / _LATEST
    if latest.is_file():
        path = root / latest.read_text().strip()
        if (path / "state.json").is_file():
            return path
    done = sorted(p for p in root.glob("ckpt-*") if (p / "state.json").is_file()) if root.is_dir() else []
    return done[-1] if done else None


def save_checkpoint(run_dir: str | Path, index: int, *, system, opt_state, state: dict, keep: int = 2) -> Path:
    """Write checkpoint number ``index`` atomically and point ``LATEST`` at it."""
    root = checkpoint_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    name = f"ckpt-{index:06d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        eqx.tree_serialise_leaves(tmp / "model.eqx", system)
        eqx.tree_serialise_leaves(tmp / "opt_state.eqx", opt_state)
        write_json_atomic(tmp / "state.json", {"checkpoint_version": CHECKPOINT_VERSION, **state})
        final = root / name
        if final.exists():  # re-saving the same index (e.g. after a resumed run): move the old aside
            shutil.rmtree(final)
        tmp.chmod(0o755)  # mkdtemp makes it private; a checkpoint is an ordinary folder
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    with atomic_path(root / _LATEST) as tmp_latest:
        tmp_latest.write_text(name + "\n")
    if keep > 0:  # keep the new one and the keep - 1 newest others
        others = sorted(p for p in root.glob("ckpt-*") if p.name != name)
        for old in others[: max(0, len(others) - (keep - 1))]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: str | Path, *, system_like, opt_state_like=None):
    """``(system, opt_state, state)`` from a checkpoint directory, into skeletons of the same structure."""
    path = Path(path)
    state = read_json(path / "state.json")
    if state.get("checkpoint_version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {state.get('checkpoint_version')} is not {CHECKPOINT_VERSION} "
            "(written by another plumecast version, whose model had other parameters); train the run again"
        )
    try:
        system = eqx.tree_deserialise_leaves(path / "model.eqx", system_like)
        opt_state = None
        if opt_state_like is not None:
            opt_state = eqx.tree_deserialise_leaves(path / "opt_state.eqx", opt_state_like)
    except (OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: leaves do not match the configured model ({type(e).__name__}: {e})") from None
    return system, opt_state, state
