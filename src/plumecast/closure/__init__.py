"""Closures: the learned part of a model step, and the registry of model variants.

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

Variants: a variant name maps to a factory ``factory(model, *, key, **options)`` that
returns a :class:`Closure` or ``None`` (no closure: the physics-only model). ``physics``
is registered here; closure modules register theirs with :func:`register_variant` and are
imported at the bottom of this file. The training config stores the variant name and its
options, so a checkpoint can rebuild the closure's structure before loading its leaves.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import equinox as eqx
import jax

if TYPE_CHECKING:  # pragma: no cover
    from plumecast.physics.model import ClosureContext, CoarseModel

__all__ = ["Closure", "Variant", "register_variant", "variant_names", "get_variant", "make_closure", "closure_trainable_spec"]


class Closure(eqx.Module):
    """A learned per-step correction with optional memory (the protocol every closure follows).

    ``uses_physics``: whether the physics substeps run before the closure. A closure
    returns the next normalised field (unmasked is fine: the step masks it); to start as
    the physics model, an untrained closure should return ``ctx.q_physics``.
    """

    uses_physics: eqx.AbstractClassVar[bool]

    @abc.abstractmethod
    def init_memory(self) -> Any:
        """The memory pytree at t = 0 for one unbatched state (``()`` when memoryless)."""

    @abc.abstractmethod
    def __call__(self, ctx: "ClosureContext", memory: Any) -> tuple[Any, Any]:
        """``(q_next, memory_next)`` for one step."""


@dataclass(frozen=True)
class Variant:
    name: str
    factory: Callable[..., Closure | None]
    description: str
    # Whether its learned parts are O(1) physical parameters only (no network), trained
    # with the physics' settings of a preset rather than the closure networks'.
    physical: bool = False


_VARIANTS: dict[str, Variant] = {}


def register_variant(name: str, factory: Callable[..., Closure | None], description: str, *,
                     physical: bool = False) -> None:
    """Register ``factory(model, *, key, **options) -> Closure | None`` under ``name``."""
    if name in _VARIANTS:
        raise ValueError(f"variant {name!r} is already registered")
    _VARIANTS[name] = Variant(name, factory, description, physical)


def variant_names() -> list[str]:
    return list(_VARIANTS)


def get_variant(name: str) -> Variant:
    try:
        return _VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown variant {name!r}; known: {', '.join(_VARIANTS)}") from None


def make_closure(name: str, model: "CoarseModel", *, key, **options) -> Closure | None:
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


def _physics(model, *, key=None, **options):
    if options:
        raise ValueError(f"variant 'physics' takes no options, got {sorted(options)}")
    return None


register_variant("physics", _physics, "coarse physics only (learned Dx, Dy and source scale), no closure",
                 physical=True)

# Learned closures register their variants on import (last: they import from this module).
from plumecast.closure import memory as _memory  # noqa: E402,F401
from plumecast.closure import markovian as _markovian  # noqa: E402,F401
from plumecast.closure import datadriven as _datadriven  # noqa: E402,F401
from plumecast.closure import layered as _layered  # noqa: E402,F401
