"""Numerical settings that plumecast switches on where it needs them, never on import.

JAX computes in float32 unless its 64-bit mode is on; with it off, a requested float64
silently becomes float32. The 3D reference solver (the scalar transport of
:mod:`plumecast.reference.transport`, and through it generation and the OpenFOAM
cross-validation) and the verification tests need float64: its mass budget is checked to
round-off and its explicit time loop runs for thousands of steps. Importing plumecast
leaves JAX's setting alone, so a program that uses only the learned float32 model keeps
JAX's default; the solver entry points call :func:`enable_x64` themselves.
"""

from __future__ import annotations

import jax

__all__ = ["enable_x64"]


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
