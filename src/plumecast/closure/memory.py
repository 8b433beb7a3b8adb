"""The ``memory`` variant: the paper's non-Markovian closure, the default hybrid.

After the physics substeps of each 0.4 s step, ``q_next = q_physics e^r`` where the
bounded log-rate ``r`` comes from :class:`~plumecast.closure.networks.ClosureNet` with a stack of LSTM cells:
the encoder reads the field after the physics, the LSTM state (the closure memory, zero at
t = 0) carries what the plane cannot see (vertical exchange, history of the source), and
the residual head combines the decoded memory with the local physics inputs. The step
masks the result to fluid cells.

Options (JSON values): the network's (``size`` (``quick`` | ``paper``), ``channels``,
``core_width``, ``core_layers`` (the LSTM stack), ``head_width``, ``init_scale``,
``field_memory``, ...; see :mod:`plumecast.closure.networks`), and ``reservoir``
(``true``, ``"layered"`` or an object of :class:`~plumecast.closure.reservoir.Reservoir`
settings): an off-plane store of what the exchange term removed, returned to the plane
later; started from a ``layered`` run, ``"layered"`` keeps its trained layer, with the
settings that run was trained with.
"""

from __future__ import annotations

from typing import ClassVar


from plumecast.closure import Closure, register_variant
from plumecast.closure.networks import ClosureNet, resolve_options
from plumecast.closure.reservoir import Reservoir, reservoir_option

__all__ = ["MemoryClosure", "make_memory"]


class MemoryClosure(Closure):
    """Physics, then a correction from an encoder -> LSTM stack -> decoder -> head network.

    With a :class:`~plumecast.closure.reservoir.Reservoir` the memory is ``(network
    memory, reservoir field)`` and the mass the reservoir returns joins the physics' field
    before the network redistributes it.
    """

    uses_physics: ClassVar[bool] = True
    net: ClosureNet
    reservoir: Reservoir | None = None

    def init_memory(self):
        memory = self.net.init_memory(self.net.expand.weight.dtype)
        return memory if self.reservoir is None else (memory, self.reservoir.init_state())

    def __call__(self, ctx, memory):
        if self.reservoir is None:
            return self.net(ctx, memory, ctx.q_physics)
        memory, s = memory
        back, s = self.reservoir(s, ctx)
        q_next, memory = self.net(ctx, memory, ctx.q_physics + back)
        return q_next, (memory, s)


def build_net(model, *, key, memory: bool, variant: str, options: dict, offset: bool = False) -> ClosureNet:
    """The closure network for ``model``'s grid and dtype from a variant's options."""
    c = model.config
    config = resolve_options(c.ny, c.nx, memory=memory, variant=variant, options=options, offset=offset)
    return ClosureNet(config, key=key, dtype=c.jdtype)


def make_memory(model, *, key=None, **options) -> MemoryClosure:
    options = dict(options)
    reservoir = reservoir_option(model, options.pop("reservoir", False), variant="memory")
    return MemoryClosure(build_net(model, key=key, memory=True, variant="memory", options=options), reservoir)


register_variant(
    "memory",
    make_memory,
    "non-Markovian hybrid (the paper's): physics + CNN encoder, LSTM memory carried through the rollout, decoder, residual head",
)

