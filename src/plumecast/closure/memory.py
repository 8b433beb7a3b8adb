"""The ``memory`` variant: the paper's non-Markovian closure, the default hybrid.

After the physics substeps of each 0.4 s step, ``q_next = q_physics e^r`` where the
bounded log-rate ``r`` comes from :class:`~plumecast.closure.networks.ClosureNet` with a stack of LSTM cells:
the encoder reads the field after the physics, the LSTM state (the closure memory, zero at
t = 0) carries what the plane cannot see (vertical exchange, history of the source), and
the residual head combines the decoded memory with the local physics inputs. The step
masks the result to fluid cells.

Options (JSON values): ``size`` (``quick`` | ``paper``), ``channels``, ``core_width``,
``core_layers`` (the LSTM stack), ``head_width``, ``init_scale``; see
:mod:`plumecast.closure.networks`.
"""

from __future__ import annotations

from typing import ClassVar


from plumecast.closure import Closure, register_variant
from plumecast.closure.networks import ClosureNet, resolve_options

__all__ = ["MemoryClosure", "make_memory"]


class MemoryClosure(Closure):
    """Physics, then a correction from an encoder -> LSTM stack -> decoder -> head network."""

    uses_physics: ClassVar[bool] = True
    net: ClosureNet

    def init_memory(self):
        return self.net.init_memory(self.net.expand.weight.dtype)

    def __call__(self, ctx, memory):
        return self.net(ctx, memory, ctx.q_physics)


def build_net(model, *, key, memory: bool, variant: str, options: dict, offset: bool = False) -> ClosureNet:
    """The closure network for ``model``'s grid and dtype from a variant's options."""
    c = model.config
    config = resolve_options(c.ny, c.nx, memory=memory, variant=variant, options=options, offset=offset)
    return ClosureNet(config, key=key, dtype=c.jdtype)


def make_memory(model, *, key=None, **options) -> MemoryClosure:
    return MemoryClosure(build_net(model, key=key, memory=True, variant="memory", options=options))


register_variant(
    "memory",
    make_memory,
    "non-Markovian hybrid (the paper's): physics + CNN encoder, LSTM memory carried through the rollout, decoder, residual head",
)

