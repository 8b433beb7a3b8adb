"""The off-plane layer: the memory of the mass that has left the plane, per cell.

The coarse physics removes mass from the plane at the learned exchange rate ``lambda``
(``physics/model.py``); in the 3D room part of that mass sits above or below the plane
and comes back later. A layer field ``s`` (normalised plane units, one value per plane
cell: the air above and below it) holds a learned share of what left and returns it at a
learned rate: in one step of ``dt``

    back = s (1 - exp(-mu dt)),   s <- spread(s - back + kappa * exchanged + sigma * source),
    q <- q + back

with ``0 <= mu <= RETURN_MAX_PER_S`` and ``0 <= kappa <= 1`` per cell (the rest of the
exchanged mass has left the room, through the exhausts). ``spread`` is horizontal
diffusion of the layer in the physics' explicit substeps with learned face diffusivities
``0 <= D_s <= SPREAD_MAX_M2_S`` (the off-plane air mixes across the room: ceiling
diffusers, the return of the recirculation); the bound is checked against the positive
limit of the substeps, so every substep stays positive and conservative whatever is
learned.

A source emits into the air around it, not only into the plane: the layer also receives
``sigma * source`` of each step's source increment, where ``0 <= sigma(x, y, z) <=
SOURCE_SHARE_MAX`` is a small net of the source position (the features the physics'
source-rate net reads), so that part of the emission reaches the plane late and spread,
through the layer (a moving source leaves a trail in the air off the plane that comes
back later). With several sources in one rollout the share is taken per source, at each
source's own position, and the shares of the sources' increments are summed.

This is a memory in the exact sense of the paper's non-Markovian closure (the plane's
future depends on its past through ``s``), with the structure of a mobile-immobile
(dual-domain) transport model and of a two-zone room model: positive, mass-conserving
(plane + layer + what left the room change by exactly what the source put into the
plane and the layer), and bounded whatever is learned.

Start: ``mu`` at ``RETURN_INIT_PER_S`` (a return time of hours), ``kappa`` 1/2,
``D_s`` at ``SPREAD_INIT_M2_S`` and ``sigma`` at ``SOURCE_SHARE_INIT``, so an untrained
layer returns next to nothing and the model starts as the physics. These constants are
the settings every result of docs/results.md since "A source-fed layer" was obtained
with; the variants that lost (a vent to exhausts, a free or solenoidal drift, the layer
as a closure of its own with fast logits) were removed (docs/results.md keeps their
history).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from plumecast.physics import operators as ops_

__all__ = ["Reservoir", "make_reservoir"]

RETURN_MAX_PER_S = 0.05
RETURN_INIT_PER_S = 1e-4
CAPTURE_INIT = 0.5
# Below the positive bound of 4 substeps of 0.1 s on 0.5 m cells (0.5625 m^2/s): mixes a
# 25 m room in about 10 minutes at the top.
SPREAD_MAX_M2_S = 0.5
SPREAD_INIT_M2_S = 0.05
SOURCE_SHARE_MAX = 1.0
SOURCE_SHARE_INIT = 1e-3


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


class Reservoir(eqx.Module):
    """Per-cell return rate, capture share, face spreading and source share of the off-plane layer."""

    theta_return: jax.Array  # (ny, nx)
    theta_capture: jax.Array  # (ny, nx)
    theta_spread_x: jax.Array  # (ny, nx - 1)
    theta_spread_y: jax.Array  # (ny - 1, nx)
    source_share_net: eqx.nn.MLP
    dt: float = eqx.field(static=True)
    dx: float = eqx.field(static=True)
    dy: float = eqx.field(static=True)
    substeps: int = eqx.field(static=True)

    def __init__(self, shape, *, dt: float, dtype, key, dx: float = 1.0, dy: float = 1.0, substeps: int = 1,
                 stability_limit: float = 0.9):
        if not (dx > 0 and dy > 0 and dt > 0 and substeps >= 1):
            raise ValueError(f"bad layer spacing/step dx={dx}, dy={dy}, dt={dt}, substeps={substeps}")
        # One explicit substep is positive when dt_sub * (sum of D / h^2 over a cell's four
        # faces) <= 1 (operators.outflow_rates); kept below the physics' own limit.
        dt_sub = dt / substeps
        bound = stability_limit / (dt_sub * (2.0 / dx**2 + 2.0 / dy**2))
        if SPREAD_MAX_M2_S > bound:
            raise ValueError(f"the layer's spreading bound {SPREAD_MAX_M2_S} m^2/s is above the positive limit "
                             f"{bound:.4g} m^2/s of {substeps} explicit substeps of {dt_sub:g} s on {dx:g} x {dy:g} m "
                             "cells; use more substeps")
        ny, nx = shape
        full = lambda shp, value: jnp.full(shp, _logit(value), dtype)  # noqa: E731
        self.theta_return = full(shape, RETURN_INIT_PER_S / RETURN_MAX_PER_S)
        self.theta_capture = full(shape, CAPTURE_INIT)
        self.theta_spread_x = full((ny, nx - 1), SPREAD_INIT_M2_S / SPREAD_MAX_M2_S)
        self.theta_spread_y = full((ny - 1, nx), SPREAD_INIT_M2_S / SPREAD_MAX_M2_S)
        # Zero last weights: every source starts at the initial share.
        net = eqx.nn.MLP(3, 1, 16, 1, activation=jnp.tanh, key=key, dtype=dtype)
        bias = jnp.full((1,), _logit(SOURCE_SHARE_INIT / SOURCE_SHARE_MAX), dtype)
        self.source_share_net = eqx.tree_at(lambda n: (n.layers[-1].weight, n.layers[-1].bias), net,
                                            (jnp.zeros_like(net.layers[-1].weight), bias))
        self.dt, self.dx, self.dy, self.substeps = float(dt), float(dx), float(dy), int(substeps)

    def return_rate(self, fluid) -> jax.Array:
        """``mu`` per cell, 1/s (zero on solids)."""
        return RETURN_MAX_PER_S * jax.nn.sigmoid(self.theta_return) * fluid

    def capture(self) -> jax.Array:
        """``kappa`` per cell: the share of the exchanged mass that enters the layer."""
        return jax.nn.sigmoid(self.theta_capture)

    def spread_diffusivities(self, fluid) -> tuple[jax.Array, jax.Array]:
        """``(D_s x-faces, D_s y-faces)`` in m^2/s, zero on faces touching solids."""
        mx, my = ops_.face_masks(fluid)
        return (SPREAD_MAX_M2_S * jax.nn.sigmoid(self.theta_spread_x) * mx,
                SPREAD_MAX_M2_S * jax.nn.sigmoid(self.theta_spread_y) * my)

    def source_share(self, source_position: jax.Array) -> jax.Array:
        """``sigma``: the share of a step's source increment that also enters the layer (scalar)."""
        o = self.source_share_net(source_position.astype(self.theta_return.dtype))[0]
        return SOURCE_SHARE_MAX * jax.nn.sigmoid(o)

    def init_state(self) -> jax.Array:
        return jnp.zeros_like(self.theta_return)

    def plane_source_factor(self, z_m: jax.Array) -> jax.Array:
        """1: the plane receives the whole emission (the layer's share comes on top, ``sigma``)."""
        return jnp.ones_like(z_m)

    def __call__(self, s: jax.Array, ctx) -> tuple[jax.Array, jax.Array]:
        """``(back, s_next)``: the mass returned to the plane this step and the layer after it.

        ``ctx`` is the step's :class:`~plumecast.physics.model.ClosureContext` (what the
        exchange took, the source increment and position, the mask).
        """
        fluid = ctx.fluid
        back = s * -jnp.expm1(-self.dt * self.return_rate(fluid))
        if ctx.source_parts is None:
            gained = self.capture() * ctx.exchanged + self.source_share(ctx.source_position) * ctx.source
        else:  # several sources: each source's share of its own increment
            shares = jax.vmap(self.source_share)(ctx.source_position)
            gained = self.capture() * ctx.exchanged + jnp.tensordot(shares, ctx.source_parts, axes=1)
        s_next = (s - back + gained) * fluid
        Dx, Dy = self.spread_diffusivities(fluid)
        no_drift_x, no_drift_y = jnp.zeros_like(Dx), jnp.zeros_like(Dy)
        stencil = ops_.substep_stencil(no_drift_x, no_drift_y, Dx, Dy, fluid, self.dx, self.dy, self.dt / self.substeps)
        s_next = jax.lax.fori_loop(0, self.substeps, lambda _, a: ops_.apply_stencil(a, stencil, 0.0), s_next)
        return back, s_next


def make_reservoir(model, *, key) -> Reservoir:
    """The off-plane layer on ``model``'s grid (clear error when the model has no exchange to feed it)."""
    c = model.config
    if not c.exchange_max_per_s > 0:
        raise ValueError("the off-plane layer holds what the exchange term takes out of the plane; this model has "
                         "the exchange off (exchange_max_per_s = 0)")
    return Reservoir(c.shape, dt=c.dt, dtype=c.jdtype, key=key, dx=c.dx, dy=c.dy, substeps=c.substeps,
                     stability_limit=c.stability_limit)
