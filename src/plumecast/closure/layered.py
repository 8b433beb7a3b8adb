"""The ``layered`` and ``column`` variants: the coarse physics with what lies off the plane, and no network.

``column``: the plane as one level of a column of coarse levels, each moved by the 3D flow
at its height, with sources entering at their true height
(:mod:`plumecast.closure.column`); it needs a dataset with flow levels.

A two-zone physics: the plane of :mod:`plumecast.physics.model` plus the
:class:`~plumecast.closure.reservoir.Reservoir` below and above it, which takes a learned
share of what the exchange term removes from the plane and of each emission, spreads it
horizontally with learned diffusivities and returns it at a learned per-cell rate. Every
parameter is an O(1) physical logit, so the variant trains from scratch with the physics
preset (its learning rate and curriculum), not with the closure networks' settings. No
options. A ``memory`` or ``markovian`` closure started from a layered run
(``--init-from``) with the option ``reservoir: true`` keeps the trained layer.
"""

from __future__ import annotations

from typing import ClassVar

from plumecast.closure.base import Closure, closure_options, split_key
from plumecast.closure.column import Column, make_column
from plumecast.closure.reservoir import Reservoir, make_reservoir

__all__ = ["LayeredClosure", "make_layered", "make_column_variant", "off_plane_physics", "LAYER_KINDS"]

# The values of the ``reservoir`` option of the network closures: which off-plane physics
# they continue (true is the layered one, for runs made before the column existed).
LAYER_KINDS = (False, True, "layered", "column")


def off_plane_physics(model, kind, *, key) -> Reservoir | Column | None:
    """The off-plane physics named by a ``reservoir`` option value (None for false)."""
    if kind not in LAYER_KINDS:
        raise ValueError(f"reservoir must be true or false, or 'column' ('layered' = true); got {kind!r}")
    if kind is False:
        return None
    return make_column(model, key=key) if kind == "column" else make_reservoir(model, key=key)


class LayeredClosure(Closure):
    """Physics, then the off-plane layer's return: ``q_next = q_physics + back``; memory = the layer field."""

    uses_physics: ClassVar[bool] = True
    reservoir: Reservoir | Column

    def layer(self):
        return self.reservoir

    def init_memory(self):
        return self.reservoir.init_state()

    def __call__(self, ctx, memory):
        back, s = self.reservoir(memory, ctx)
        return ctx.q_physics + back, s


def make_layered(model, *, key=None, **options) -> LayeredClosure:
    closure_options(options, variant="layered", allowed=())
    _, k_layer = split_key(key)
    return LayeredClosure(reservoir=make_reservoir(model, key=k_layer))


def make_column_variant(model, *, key=None, **options) -> LayeredClosure:
    closure_options(options, variant="column", allowed=())
    _, k_layer = split_key(key)
    return LayeredClosure(reservoir=make_column(model, key=k_layer))
