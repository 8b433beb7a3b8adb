"""The closure protocol: what every learned per-step correction provides."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any

import equinox as eqx
import jax
import jax.numpy as jnp

if TYPE_CHECKING:  # pragma: no cover
    from plumecast.closure.networks import ClosureNet
    from plumecast.closure.reservoir import Reservoir
    from plumecast.physics.model import ClosureContext, CoarseModel

__all__ = ["Closure", "build_net", "closure_options", "split_key"]


class Closure(eqx.Module):
    """A learned per-step correction with optional memory (the protocol every closure follows).

    ``uses_physics``: whether the physics substeps run before the closure. A closure
    returns the next normalised field (unmasked is fine: the step masks it); to start as
    the physics model, an untrained closure should return ``ctx.q_physics``.
    ``layer()``: the off-plane layer (:class:`~plumecast.closure.reservoir.Reservoir`)
    when the closure carries one, else None. It is physics, not network: a run started
    from another (``init_from``) takes over the start run's trained layer.
    """

    uses_physics: eqx.AbstractClassVar[bool]

    def layer(self) -> "Reservoir | None":
        """The off-plane layer this closure carries (a subtree of it), or None."""
        return None

    def plane_source_factor(self, z_m: jax.Array) -> jax.Array:
        """What multiplies the plane's deposit of a source at height ``z_m`` (m) before the physics.

        1 (the whole emission enters the plane) unless the closure carries a physics that
        puts part of it elsewhere (the column: each level gets its share).
        """
        layer = self.layer()
        return jnp.ones_like(z_m) if layer is None else layer.plane_source_factor(z_m)

    @abc.abstractmethod
    def init_memory(self) -> Any:
        """The memory pytree at t = 0 for one unbatched state (``()`` when memoryless)."""

    @abc.abstractmethod
    def __call__(self, ctx: "ClosureContext", memory: Any) -> tuple[Any, Any]:
        """``(q_next, memory_next)`` for one step."""


def closure_options(options: dict, *, variant: str, allowed: tuple[str, ...]) -> dict:
    """A variant's options with unknown keys refused (the message names the known ones)."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"variant {variant!r}: unknown options {unknown}; known: {', '.join(allowed) or 'none'}")
    return dict(options)


def build_net(model: "CoarseModel", *, key, memory: bool, variant: str, size: str = "quick",
              offset: bool = False, column_levels: int = 0) -> "ClosureNet":
    """The closure network of ``size`` for ``model``'s grid and dtype (``column_levels``: size "exchange")."""
    from plumecast.closure.networks import ClosureNet, resolve_options

    c = model.config
    config = resolve_options(c.ny, c.nx, memory=memory, variant=variant, options={"size": size}, offset=offset,
                             column_levels=column_levels)
    return ClosureNet(config, key=key, dtype=c.jdtype)


def split_key(key) -> tuple[jax.Array, jax.Array]:
    """Keys of a closure's network and of its layer (so the run's seed decides both).

    The network keeps the closure's key itself, so its initial weights are those of
    earlier versions for the same seed; the layer's is folded from it.
    """
    key = jax.random.PRNGKey(0) if key is None else key
    return key, jax.random.fold_in(key, 1)
