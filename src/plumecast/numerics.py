"""Numerical settings that plumecast switches on where it needs them, never on import.

JAX computes in float32 unless its 64-bit mode is on; with it off, a requested float64
silently becomes float32. The 3D reference solver (the scalar transport of
:mod:`plumecast.reference.transport`, and through it generation and the OpenFOAM
cross-validation) and the verification tests need float64: its mass budget is checked to
round-off and its explicit time loop runs for thousands of steps. Importing plumecast
leaves JAX's setting alone, so a program that uses only the learned float32 model keeps
JAX's default; the solver entry points call :func:`enable_x64` themselves.

Training on the CPU is bit-reproducible only with XLA's concurrency-optimised scheduler
off: with it (XLA's default) the same jitted training step on the same inputs differs by a
few float32 ulps from call to call, and training grows that into seed-sized differences
(docs/results.md, session 33). The ``plumecast`` command calls :func:`reproducible_cpu`
before JAX starts; a program using the Python API calls it first thing, or sets the flag.
"""

from __future__ import annotations

import os

import jax

__all__ = ["enable_x64", "reproducible_cpu", "REPRODUCIBLE_XLA_FLAG"]

REPRODUCIBLE_XLA_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler=false"


def enable_x64() -> None:
    """Switch on JAX's 64-bit mode (``jax_enable_x64``) for the rest of the process.

    Needed wherever float64 JAX arrays are made: the 3D reference solver calls it at its
    entry points, and a model asked for ``float64`` should call it before building arrays.
    Idempotent (a second call changes nothing). It is process-wide, as JAX's setting is:
    arrays made before the call keep their dtype, and jitted functions are traced anew
    for the new mode.
    """
    if not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)


def reproducible_cpu() -> bool:
    """Ask XLA for run-to-run identical CPU results (:data:`REPRODUCIBLE_XLA_FLAG` in ``XLA_FLAGS``).

    Takes effect only if JAX's CPU backend has not started yet (XLA reads the flags once,
    at the first computation). A user's own setting of the same flag in ``XLA_FLAGS`` is
    kept. Returns True when the flag is now asked for. Measured cost on the 2-core CPU:
    about 5 % longer trainings (``benchmarks/bench_reproducible.py``: 22.6 against 21.5 s, medians
    of three short trainings of the main job's plane physics).
    """
    name = REPRODUCIBLE_XLA_FLAG.split("=")[0]
    flags = os.environ.get("XLA_FLAGS", "")
    if name in flags:
        return REPRODUCIBLE_XLA_FLAG in flags.split()
    os.environ["XLA_FLAGS"] = f"{flags} {REPRODUCIBLE_XLA_FLAG}".strip()
    return True
