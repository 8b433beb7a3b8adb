"""The ``datadriven`` variant: no physics terms; the memory network alone advances the field.

Ablation of the paper: ``uses_physics = False``, so the step skips the physics substeps
(no advection, no diffusion) and ``q_next = max((q + s) e^r + o, 0)`` with ``s`` the known
emission of the step deposited at the source (the same deposit as the physics source
term) and ``r, o`` from the same network as ``memory`` (LSTM memory carried through the
rollout). The network sees the physics *inputs* (velocity, learned diffusivities, the
source increment, mask) but no operator moves the field: an untrained data-driven model
accumulates the emission where it is released. Without the emission added, the network
alone would have to create the plume from nothing, and at the quick budget it stayed at
the empty field. Option: ``size``.
"""

from __future__ import annotations

from typing import ClassVar

from plumecast.closure.base import Closure, build_net, closure_options, split_key
from plumecast.closure.networks import ClosureNet

__all__ = ["DataDrivenClosure", "make_datadriven"]


class DataDrivenClosure(Closure):
    """No physics: the field advanced by the memory network alone."""

    uses_physics: ClassVar[bool] = False
    net: ClosureNet

    def init_memory(self):
        return self.net.init_memory(self.net.dtype)

    def __call__(self, ctx, memory):
        return self.net(ctx, memory, ctx.q + ctx.source)


def make_datadriven(model, *, key=None, **options) -> DataDrivenClosure:
    options = closure_options(options, variant="datadriven", allowed=("size",))
    k_net, _ = split_key(key)
    net = build_net(model, key=k_net, memory=True, variant="datadriven", size=options.get("size", "quick"), offset=True)
    return DataDrivenClosure(net)
