"""The ``layered`` variant: the coarse physics with an off-plane layer, and no network.

A two-zone physics: the plane of :mod:`plumecast.physics.model` plus the
:class:`~plumecast.closure.reservoir.Reservoir` below and above it, which takes a learned
share of what the exchange term removes from the plane, spreads it horizontally with
learned diffusivities and returns it at a learned per-cell rate (optionally venting a
learned share to exhausts off the plane). Every parameter is an O(1) physical logit, so
the variant trains from scratch with the physics preset (its learning rate and
curriculum), not with the closure networks' settings. It answers
whether the mass that leaves the plane and comes back (the plane sees the room's
background rise) is what the plane-only physics misses, before any network is added.

Options: the reservoir's settings (``return_max_per_s``, ``return_init_per_s``,
``capture_init``, ``spread_max_m2_s``, ``spread_init_m2_s``, ``advect_max_m_s``,
``drift_form``, ``source_share_max``, ``source_share_init``, ``vent_max_per_s``,
``vent_init_per_s``, ``logit_scale``), over
:data:`~plumecast.closure.reservoir.LAYERED_SETTINGS` (spreading on, ``logit_scale`` 1).
A ``memory`` or ``markovian`` closure started from a layered run (``--init-from``) with
``reservoir: "layered"`` keeps the trained layer and its settings.
"""

from __future__ import annotations

from typing import ClassVar

from plumecast.closure import Closure, register_variant
from plumecast.closure.reservoir import LAYERED_SETTINGS, Reservoir, make_reservoir

__all__ = ["LayeredClosure", "make_layered"]


class LayeredClosure(Closure):
    """Physics, then the off-plane layer's return: ``q_next = q_physics + back``; memory = the layer field."""

    uses_physics: ClassVar[bool] = True
    reservoir: Reservoir

    def init_memory(self):
        return self.reservoir.init_state()

    def __call__(self, ctx, memory):
        back, s = self.reservoir(memory, ctx)
        return ctx.q_physics + back, s


def make_layered(model, *, key=None, **options) -> LayeredClosure:
    return LayeredClosure(make_reservoir(model, {**LAYERED_SETTINGS, **options}, variant="layered"))


register_variant("layered", make_layered,
                 "coarse physics + a learned off-plane layer (capture, spreading, return), no network", physical=True)
