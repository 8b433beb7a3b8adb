"""An off-plane reservoir: the memory of the mass that has left the plane, per cell.

The coarse physics removes mass from the plane at the learned exchange rate ``lambda``
(``physics/model.py``); in the 3D room part of that mass sits above or below the plane
and comes back later, near where it left. A per-cell reservoir ``s`` (normalised plane
units) holds a learned share of what left and returns it at a learned rate: in one step of
``dt``

    back = s (1 - exp(-mu dt)),   s <- s - back + kappa * exchanged,   q <- q + back

with ``0 <= mu <= return_max_per_s`` and ``0 <= kappa <= 1`` per cell (the rest of the
exchanged mass has left the room, through the exhausts). This is a memory in the exact
sense of the paper's non-Markovian closure (the plane's future depends on its past through
``s``), with the structure of a mobile-immobile (dual-domain) transport model: positive,
mass-conserving (plane + reservoir + what left the room), and bounded whatever is learned.

Start: ``mu`` starts at ``return_init_per_s`` (1e-4 /s by default: a return time of
hours), so an untrained reservoir returns next to nothing and the model starts as the
physics. The logits are multiplied by ``LOGIT_SCALE`` inside the sigmoid: the closure
trains at a network's learning rate (1e-3), and these are O(1) physical logits like the
physics' own, which train at 2e-2.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp

__all__ = ["Reservoir", "LOGIT_SCALE"]

LOGIT_SCALE = 20.0


class Reservoir(eqx.Module):
    """Per-cell return rate and capture share of the off-plane reservoir (see the module docstring)."""

    theta_return: jax.Array  # (ny, nx)
    theta_capture: jax.Array  # (ny, nx)
    return_max_per_s: float = eqx.field(static=True)
    dt: float = eqx.field(static=True)

    def __init__(self, shape, *, dt: float, dtype, return_max_per_s: float = 0.05, return_init_per_s: float = 1e-4,
                 capture_init: float = 0.5):
        if not (return_max_per_s > 0 and 0 < return_init_per_s < return_max_per_s):
            raise ValueError(f"reservoir rates need 0 < return_init_per_s ({return_init_per_s}) < return_max_per_s "
                             f"({return_max_per_s})")
        if not 0 < capture_init < 1:
            raise ValueError(f"capture_init must lie in (0, 1), got {capture_init}")
        p = return_init_per_s / return_max_per_s
        self.theta_return = jnp.full(shape, math.log(p / (1 - p)) / LOGIT_SCALE, dtype)
        self.theta_capture = jnp.full(shape, math.log(capture_init / (1 - capture_init)) / LOGIT_SCALE, dtype)
        self.return_max_per_s = float(return_max_per_s)
        self.dt = float(dt)

    def return_rate(self, fluid) -> jax.Array:
        """``mu`` per cell, 1/s (zero on solids)."""
        return self.return_max_per_s * jax.nn.sigmoid(LOGIT_SCALE * self.theta_return) * fluid

    def capture(self) -> jax.Array:
        """``kappa`` per cell: the share of the exchanged mass that enters the reservoir."""
        return jax.nn.sigmoid(LOGIT_SCALE * self.theta_capture)

    def init_state(self) -> jax.Array:
        return jnp.zeros_like(self.theta_return)

    def __call__(self, s: jax.Array, exchanged: jax.Array, fluid: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(back, s_next)``: the mass returned to the plane this step and the reservoir after it."""
        back = s * -jnp.expm1(-self.dt * self.return_rate(fluid))
        s_next = (s - back + self.capture() * exchanged) * fluid
        return back, s_next
