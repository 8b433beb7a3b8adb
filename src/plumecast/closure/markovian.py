"""The ``markovian`` variant: the same physics and network family, without memory.

Ablation of the paper: the encoder -> core -> decoder -> head network of
:mod:`plumecast.closure.networks` with the LSTM stack replaced by an MLP of the same
widths, so the correction of a step depends only on the state at that step
(``init_memory()`` is ``()``). Options as for ``memory``, ``reservoir`` included: the
off-plane layer is part of the physics (the ``layered`` variant), so the Markovian
ablation on a layered physics keeps it; its network still sees only the present step.
"""

from __future__ import annotations

from typing import ClassVar

from plumecast.closure import Closure, register_variant
from plumecast.closure.memory import build_net
from plumecast.closure.networks import ClosureNet
from plumecast.closure.reservoir import Reservoir, reservoir_option

__all__ = ["MarkovianClosure", "make_markovian"]


class MarkovianClosure(Closure):
    """Physics (with the off-plane layer's return when it has one), then a memoryless correction (encoder -> MLP -> decoder -> head)."""

    uses_physics: ClassVar[bool] = True
    net: ClosureNet
    reservoir: Reservoir | None = None

    def init_memory(self):
        return () if self.reservoir is None else self.reservoir.init_state()

    def __call__(self, ctx, memory):
        if self.reservoir is None:
            q_next, _ = self.net(ctx, (), ctx.q_physics)
            return q_next, ()
        back, s = self.reservoir(memory, ctx)
        q_next, _ = self.net(ctx, (), ctx.q_physics + back)
        return q_next, s


def make_markovian(model, *, key=None, **options) -> MarkovianClosure:
    options = dict(options)
    reservoir = reservoir_option(model, options.pop("reservoir", False), variant="markovian")
    return MarkovianClosure(build_net(model, key=key, memory=False, variant="markovian", options=options), reservoir)


register_variant("markovian", make_markovian, "physics + the same closure network without memory (MLP core)")
