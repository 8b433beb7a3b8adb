"""The ``markovian`` variant: the same physics and network family, without memory.

Ablation of the paper: the encoder -> core -> decoder -> head network of
:mod:`plumecast.closure.networks` with the LSTM stack replaced by an MLP of the same
widths, so the correction of a step depends only on the state at that step
(``init_memory()`` is ``()``). Options as for ``memory``.
"""

from __future__ import annotations

from typing import ClassVar

from plumecast.closure import Closure, register_variant
from plumecast.closure.memory import build_net
from plumecast.closure.networks import ClosureNet

__all__ = ["MarkovianClosure", "make_markovian"]


class MarkovianClosure(Closure):
    """Physics, then a memoryless correction (encoder -> MLP -> decoder -> head)."""

    uses_physics: ClassVar[bool] = True
    net: ClosureNet

    def init_memory(self):
        return ()

    def __call__(self, ctx, memory):
        q_next, _ = self.net(ctx, (), ctx.q_physics)
        return q_next, ()


def make_markovian(model, *, key=None, **options) -> MarkovianClosure:
    return MarkovianClosure(build_net(model, key=key, memory=False, variant="markovian", options=options))


register_variant("markovian", make_markovian, "physics + the same closure network without memory (MLP core)")
