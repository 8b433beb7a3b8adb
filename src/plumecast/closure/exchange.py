"""A closure that corrects the column's vertical exchange instead of the plane's field.

The plane closures (:mod:`plumecast.closure.memory`, ``target = "plane"``) multiply the
field the physics left by a bounded, mass-rescaled per-cell rate: they can move mass
across the plane but never between the plane and the levels above and below it, which is
where the column's errors on the l-office rooms come from (docs/results.md). With
``target = "exchange"`` (options of ``memory`` and ``markovian``, on ``reservoir =
"column"``) the network instead changes, in each step and each cell, the column's
vertical exchange at every interface between neighbouring levels:

* ``dk = MAX_EXCHANGE_LOGIT tanh(a / MAX_EXCHANGE_LOGIT)``, added to the logit of the
  vertical diffusivity (:meth:`Column.vertical_diffusivity`): ``K`` stays in ``(0,
  VERTICAL_D_MAX_M2_S)``, within at most ``e^3`` of the column's own either way;
* ``dw = W tanh(b)``, a vertical velocity (m/s) added to the flow's own at the
  interface, ``W`` nine tenths of the room the column's substeps leave
  (:meth:`Column.vertical_speed_room`), capped at ``MAX_EXCHANGE_SPEED_M_S``: the
  exchange can then carry mass up or down against the concentration gradient, as the
  resolved 3D flow does where the coarse ``w`` misses it.

The network reads the levels at the step's start (the plane's ``q`` and the off-plane
state) and the step's deposits; the column then takes its step with the changed exchange.

Every step is then still the column's convex update: positive and conserving the
column's mass to round-off whatever the network says (tests check both). The network is
the local one (:class:`~plumecast.closure.networks.LocalNet`, size ``"exchange"``) over
scale-free features of all levels (:func:`~plumecast.closure.networks.exchange_inputs`);
with memory (the ``memory`` variant) each cell carries a gated state of a few channels,
without it (``markovian``) none. Its output convolution starts at zero: an untrained
closure is the column, to round-off (a test checks it).
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp

from plumecast.closure.base import Closure, build_net, split_key
from plumecast.closure.column import Column, make_column
from plumecast.closure.networks import ClosureNet, exchange_inputs

__all__ = ["ExchangeClosure", "make_exchange", "pop_target", "MAX_EXCHANGE_LOGIT", "MAX_EXCHANGE_SPEED_M_S", "TARGETS"]

MAX_EXCHANGE_LOGIT = 3.0
MAX_EXCHANGE_SPEED_M_S = 0.05
SPEED_ROOM_SHARE = 0.9  # of the room the substeps leave: a margin for round-off
# The ``target`` option of the network closures: what the network corrects.
TARGETS = ("plane", "exchange")


class ExchangeClosure(Closure):
    """The column, with its vertical exchange changed every step by a local network (module docstring).

    Memory: ``(network memory, off-plane levels)``.
    """

    uses_physics: ClassVar[bool] = True
    net: ClosureNet
    column: Column

    def layer(self):
        return self.column

    def init_memory(self):
        return (self.net.init_memory(self.net.dtype), self.column.init_state())

    def speed_bound(self, w_face, fluid_L) -> jax.Array:
        """``W`` (m/s): the room the column's vertical substeps leave, capped at ``MAX_EXCHANGE_SPEED_M_S``.

        From the rollout's flow (not stored), so a loaded run has the bound it trained with.
        """
        room = jax.lax.stop_gradient(self.column.vertical_speed_room(w_face, fluid_L))
        return jnp.minimum(MAX_EXCHANGE_SPEED_M_S, SPEED_ROOM_SHARE * room)

    def exchange(self, s, ctx, memory, transport=None):
        """``((dk, dw), memory_next)``: the step's changes of the vertical exchange, each ``(L-1, ny, nx)``.

        ``transport``: the column's :meth:`~Column.level_transport` of ``ctx`` (computed here when not given).
        """
        col = self.column
        fluid_L, _, _, w_face, _ = col.level_transport(ctx) if transport is None else transport
        p = col.plane_level
        levels = jnp.concatenate([s[:p], ctx.q[None], s[p:]], axis=0)
        x = exchange_inputs(levels, col.level_deposits(ctx), w_face, ctx.fluid)
        raw, memory = self.net.body.raw(x, memory, ctx.fluid)
        n = len(col.levels_m) - 1
        raw = jnp.moveaxis(raw, -1, 0)
        dk = MAX_EXCHANGE_LOGIT * jnp.tanh(raw[:n] / MAX_EXCHANGE_LOGIT)
        dw = self.speed_bound(w_face, fluid_L) * jnp.tanh(raw[n:])
        return (dk, dw), memory

    def __call__(self, ctx, memory):
        memory, s = memory
        transport = self.column.level_transport(ctx)  # once per step, for the network and the column
        change, memory = self.exchange(s, ctx, memory, transport)
        back, s = self.column(s, ctx, exchange=change, transport=transport)
        return ctx.q_physics + back, (memory, s)


def pop_target(options: dict) -> str:
    """The ``target`` option of a network closure, taken out of ``options`` (``"plane"`` when absent)."""
    target = options.pop("target", "plane")
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
    return target


def make_exchange(model, *, key=None, memory: bool, variant: str, size: str = "exchange", reservoir=False
                  ) -> ExchangeClosure:
    """The exchange closure of ``variant`` (``memory`` or ``markovian``) on ``model``'s column."""
    if reservoir != "column":
        raise ValueError(f"target 'exchange' corrects the column's vertical exchange: it needs reservoir = 'column', "
                         f"got {reservoir!r}")
    if size != "exchange":
        raise ValueError(f"target 'exchange' has its own network (size 'exchange'), got size {size!r}")
    k_net, k_layer = split_key(key)
    column = make_column(model, key=k_layer)
    net = build_net(model, key=k_net, memory=memory, variant=variant, size="exchange",
                    column_levels=len(column.levels_m))
    return ExchangeClosure(net=net, column=column)
