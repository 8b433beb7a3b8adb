"""The ``markovian`` variant: the same physics and network family, without memory.

Ablation of the paper: the encoder -> core -> decoder -> head network of
:mod:`plumecast.closure.networks` with the LSTM stack replaced by an MLP of the same
widths, so the correction of a step depends only on the state at that step. Options as
for ``memory``: the off-plane layer (``reservoir: true``) is part of the physics, so the
Markovian ablation on a layered physics keeps it; its network still sees only the
present step. ``target = "exchange"`` on the column: the memoryless form of
:mod:`plumecast.closure.exchange`.
"""

from __future__ import annotations

from typing import ClassVar

from plumecast.closure.base import Closure, build_net, closure_options, split_key
from plumecast.closure.networks import ClosureNet
from plumecast.closure.column import Column
from plumecast.closure.exchange import ExchangeClosure, make_exchange, pop_target
from plumecast.closure.layered import off_plane_physics
from plumecast.closure.reservoir import Reservoir

__all__ = ["MarkovianClosure", "make_markovian"]


class MarkovianClosure(Closure):
    """Physics (with the off-plane layer's return when it has one), then a memoryless correction."""

    uses_physics: ClassVar[bool] = True
    net: ClosureNet
    reservoir: Reservoir | Column | None

    def layer(self):
        return self.reservoir

    def init_memory(self):
        return () if self.reservoir is None else self.reservoir.init_state()

    def __call__(self, ctx, memory):
        if self.reservoir is None:
            q_next, _ = self.net(ctx, (), ctx.q_physics)
            return q_next, ()
        back, s = self.reservoir(memory, ctx)
        q_next, _ = self.net(ctx, (), ctx.q_physics + back)
        return q_next, s


def make_markovian(model, *, key=None, **options) -> MarkovianClosure | ExchangeClosure:
    options = closure_options(options, variant="markovian", allowed=("size", "reservoir", "target"))
    if pop_target(options) == "exchange":
        return make_exchange(model, key=key, memory=False, variant="markovian", **options)
    k_net, k_layer = split_key(key)
    net = build_net(model, key=k_net, memory=False, variant="markovian", size=options.get("size", "quick"))
    layer = off_plane_physics(model, options.get("reservoir", False), key=k_layer)
    return MarkovianClosure(net=net, reservoir=layer)
