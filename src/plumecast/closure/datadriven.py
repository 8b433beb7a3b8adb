"""The ``datadriven`` variant: no physics terms; the memory network alone advances the field.

Ablation of the paper: ``uses_physics = False``, so the step skips the physics substeps
and ``q_next = max(q e^r + o, 0)`` with ``r, o`` from the same network as ``memory`` (LSTM memory
carried through the rollout). The network still sees the physics *inputs* (velocity,
learned diffusivities, the source increment, mask) but no physics operator acts on the
field: an untrained data-driven model keeps the field where it is. Options as for
``memory``.
"""

from __future__ import annotations

from typing import ClassVar

from plumecast.closure import Closure, register_variant
from plumecast.closure.memory import build_net
from plumecast.closure.networks import ClosureNet

__all__ = ["DataDrivenClosure", "make_datadriven"]


class DataDrivenClosure(Closure):
    """No physics: the field advanced by the memory network alone."""

    uses_physics: ClassVar[bool] = False
    net: ClosureNet

    def init_memory(self):
        return self.net.init_memory(self.net.expand.weight.dtype)

    def __call__(self, ctx, memory):
        return self.net(ctx, memory, ctx.q)


def make_datadriven(model, *, key=None, **options) -> DataDrivenClosure:
    return DataDrivenClosure(build_net(model, key=key, memory=True, variant="datadriven", options=options, offset=True))


register_variant("datadriven", make_datadriven, "no physics: the memory network alone advances the field")
