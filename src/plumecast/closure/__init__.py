"""Closures: the learned part of a model step, and the one registry of model variants.

A model step (see :func:`plumecast.rollout.step`) is

1. the physics substeps of the coarse model, unless the closure says it replaces them
   (``uses_physics = False``, the data-driven variant);
2. the closure, once per step: ``q_next, memory = closure(ctx, memory)`` where ``ctx`` is
   a :class:`~plumecast.physics.model.ClosureContext` (the normalised field before and
   after the physics, velocities, learned diffusivities, source increment, mask, time);
3. the result masked to fluid cells.

The carry of a rollout is ``(q, memory)``. ``memory`` is any pytree of arrays that the
closure creates with ``init_memory()`` (``()`` for closures without memory); it is carried
through the whole rollout, across truncated training windows, from its initial value at
t = 0. A closure acts on one unbatched field; rollouts are batched with ``jax.vmap``.

Variants: :data:`VARIANTS` below is the only place that names them. A variant maps to a
factory ``factory(model, *, key, **options)`` that returns a :class:`Closure` or ``None``
(no closure: the physics-only model). The training config stores the variant name and its
options (plain JSON), so a checkpoint can rebuild the closure's structure before loading
its leaves. Options: ``size`` (``"quick"`` | ``"paper"`` | ``"local"`` | ``"invariant"``) for the network variants, and
``reservoir`` (false, true = ``"layered"``, or ``"column"``) for ``memory`` and
``markovian``: the closure continues a physics with the off-plane layer or the column (a
``layered`` or ``column`` run, ``init_from``), and ``target`` (``"plane"`` | ``"exchange"``)
for them: what the network corrects, the plane's field or, on the column, its vertical
exchange (:mod:`plumecast.closure.exchange`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import equinox as eqx
import jax

from plumecast.closure.base import Closure
from plumecast.closure.datadriven import make_datadriven
from plumecast.closure.layered import make_column_variant, make_layered
from plumecast.closure.markovian import make_markovian
from plumecast.closure.memory import make_memory

__all__ = ["Closure", "Variant", "VARIANTS", "variant_names", "get_variant", "make_closure", "closure_trainable_spec"]


@dataclass(frozen=True)
class Variant:
    name: str
    factory: Callable[..., Closure | None]
    description: str
    # Whether its learned parts are O(1) physical parameters only (no network): it trains
    # with a preset's physics settings rather than the closure networks'.
    physical: bool = False


def _physics(model, *, key=None, **options):
    if options:
        raise ValueError(f"variant 'physics' takes no options, got {sorted(options)}")
    return None


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("physics", _physics, "coarse physics only (learned Dx, Dy, exchange and source scale), no closure",
            physical=True),
    Variant("layered", make_layered,
            "coarse physics + a learned off-plane layer (capture, spreading, return, source share), no network",
            physical=True),
    Variant("column", make_column_variant,
            "coarse physics as one level of a column of levels moved by the 3D flow at their heights (learned "
            "horizontal and vertical diffusivities, sinks; sources at their height), no network; needs flow levels",
            physical=True),
    Variant("memory", make_memory, "non-Markovian hybrid (the paper's): physics + CNN encoder, LSTM memory carried "
            "through the rollout, decoder, residual head"),
    Variant("markovian", make_markovian, "physics + the same closure network without memory (MLP core)"),
    Variant("datadriven", make_datadriven, "no physics: the memory network alone advances the field"),
)}


def variant_names() -> list[str]:
    return list(VARIANTS)


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}") from None


def make_closure(name: str, model, *, key, **options) -> Closure | None:
    """The closure of variant ``name`` for ``model`` (``None`` for physics only)."""
    closure = get_variant(name).factory(model, key=key, **options)
    if closure is not None and not isinstance(closure, Closure):
        raise TypeError(f"variant {name!r} built a {type(closure).__name__}, not a Closure")
    return closure


def closure_trainable_spec(closure: Closure | None):
    """Every inexact array of a closure is trained (a closure keeps fixed arrays out itself)."""
    if closure is None:
        return None
    return jax.tree.map(eqx.is_inexact_array, closure)
