"""The ``memory`` variant: the paper's non-Markovian closure, the default hybrid.

After the physics substeps of each 0.4 s step, ``q_next = q_physics e^r`` where the
bounded log-rate ``r`` comes from :class:`~plumecast.closure.networks.ClosureNet` with a
stack of LSTM cells: the encoder reads the field after the physics, the LSTM state (the
closure memory, zero at t = 0) carries what the plane cannot see (vertical exchange,
history of the source), and the residual head combines the decoded memory with the local
physics inputs. The step masks the result to fluid cells.

Options: ``size`` (``"quick"`` | ``"paper"`` | ``"local"`` | ``"invariant"``, :mod:`plumecast.closure.networks`) and
``reservoir`` (true or ``"layered"``: the physics it continues has the off-plane layer of
the ``layered`` variant; ``"column"``: the column of the ``column`` variant; started from
such a run, the closure keeps that run's trained layer or column), and ``target``
(``"plane"``, the default: the network corrects the plane's field as above;
``"exchange"``: on the column, it changes the column's vertical exchange instead,
:mod:`plumecast.closure.exchange`).
"""

from __future__ import annotations

from typing import ClassVar

from plumecast.closure.base import Closure, build_net, closure_options, split_key
from plumecast.closure.networks import ClosureNet
from plumecast.closure.column import Column
from plumecast.closure.exchange import ExchangeClosure, make_exchange, pop_target
from plumecast.closure.layered import off_plane_physics
from plumecast.closure.reservoir import Reservoir

__all__ = ["MemoryClosure", "make_memory"]


class MemoryClosure(Closure):
    """Physics (with the off-plane layer's return when it has one), then encoder -> LSTM stack -> decoder -> head.

    With a layer the memory is ``(network memory, layer field)`` and the mass the layer
    returns joins the physics' field before the network redistributes it.
    """

    uses_physics: ClassVar[bool] = True
    net: ClosureNet
    reservoir: Reservoir | Column | None

    def layer(self):
        return self.reservoir

    def init_memory(self):
        memory = self.net.init_memory(self.net.dtype)
        return memory if self.reservoir is None else (memory, self.reservoir.init_state())

    def __call__(self, ctx, memory):
        if self.reservoir is None:
            return self.net(ctx, memory, ctx.q_physics)
        memory, s = memory
        back, s = self.reservoir(s, ctx)
        q_next, memory = self.net(ctx, memory, ctx.q_physics + back)
        return q_next, (memory, s)


def make_memory(model, *, key=None, **options) -> MemoryClosure | ExchangeClosure:
    options = closure_options(options, variant="memory", allowed=("size", "reservoir", "target"))
    if pop_target(options) == "exchange":
        return make_exchange(model, key=key, memory=True, variant="memory", **options)
    k_net, k_layer = split_key(key)
    net = build_net(model, key=k_net, memory=True, variant="memory", size=options.get("size", "quick"))
    layer = off_plane_physics(model, options.get("reservoir", False), key=k_layer)
    return MemoryClosure(net=net, reservoir=layer)
