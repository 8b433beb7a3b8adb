"""The loss of one truncated window: snapshot losses plus the regularisers of an :class:`Objective`.

Per snapshot (state normalised by ``c_ref``, what the plane shows is ``g q``; fluid cells):

* ``"cell"``, the paper's per-cell relative squared error
  ``mean((p - t)^2 / (t^2 + floor * mean(t^2)))``, where the floor keeps cells far from
  the plume from dividing by zero;
* ``"field"``, the squared relative L2 error ``sum (p - t)^2 / sum t^2``;
* ``"field+root"``, the field loss plus the same on square roots of the fields (offset by
  ``floor`` times the mean), which weighs the low background more than the field loss
  does (the field loss is dominated by the few cells near a source).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from plumecast.physics import operators as ops_
from plumecast.rollout import rollout
from plumecast.train.config import Objective

__all__ = ["snapshot_loss", "regulariser", "window_loss"]


def snapshot_loss(kind: str, floor: float):
    """``loss(p, t, fluid)`` of one predicted snapshot against its target (normalised fields)."""

    def field_loss(p, t, fluid):
        return jnp.sum((p - t) ** 2 * fluid) / (jnp.sum(t**2 * fluid) + 1e-12)

    def cell_loss(p, t, fluid):
        n = jnp.maximum(jnp.sum(fluid), 1.0)
        t2 = t**2 * fluid
        scale = floor * jnp.sum(t2) / n + 1e-12
        return jnp.sum((p - t) ** 2 * fluid / (t2 + scale)) / n

    def root_loss(p, t, fluid):
        n = jnp.maximum(jnp.sum(fluid), 1.0)
        offset = floor * jnp.sum(jnp.abs(t) * fluid) / n + 1e-12
        root = lambda a: jnp.sqrt(jnp.maximum(a, 0.0) + offset)  # noqa: E731
        roots_squared = jnp.sum((jnp.maximum(t, 0.0) + offset) * fluid)  # sum of root(t)^2
        return field_loss(p, t, fluid) + jnp.sum((root(p) - root(t)) ** 2 * fluid) / roots_squared

    return {"field": field_loss, "cell": cell_loss, "field+root": root_loss}[kind]


def regulariser(system, objective: Objective):
    """The spatial smoothness of the diffusivity logits and the weight decay of the networks."""
    model, closure = system
    total = 0.0
    if objective.smoothness > 0:
        mx, my = ops_.face_masks(jax.lax.stop_gradient(model.fluid))
        terms = []
        for th, m in ((model.theta_x, mx), (model.theta_y, my)):
            for axis in (0, 1):
                d = jnp.diff(th, axis=axis)  # jumps between neighbouring faces, both open
                mm = (m[:-1, :] * m[1:, :]) if axis == 0 else (m[:, :-1] * m[:, 1:])
                terms.append(jnp.sum(mm * d**2) / jnp.maximum(jnp.sum(mm), 1.0))
        total = total + objective.smoothness * sum(terms) / len(terms)
    if objective.weight_decay > 0:
        nets = (model.source_net, closure)
        leaves = [a for a in jax.tree.leaves(eqx.filter(nets, eqx.is_inexact_array)) if a.ndim >= 2]
        if leaves:
            total = total + objective.weight_decay * sum(jnp.sum(a**2) for a in leaves)
    return total


def window_loss(model, closure, carry, forcing, targets, *, steps_per_frame: int, objective: Objective):
    """Mean snapshot loss of one window for one scenario (plus its temporal smoothness), and the carry at its end.

    Each model step is rematerialised in the backward pass (``jax.checkpoint``): the
    memory of a window is then the carries, not every step's internals.
    """
    snap = snapshot_loss(objective.loss, objective.loss_floor)
    fluid = jax.lax.stop_gradient(model.fluid)
    # What the plane shows is g times the state (ones without an observation factor); g is
    # built once per window, not per frame inside the rollout.
    g = model.observation_factor()
    temporal = objective.temporal_smoothness > 0

    def hook(c, target):
        shown = g * c[0]
        return (snap(shown, target, fluid), shown) if temporal else snap(shown, target, fluid)

    start = g * carry[0]
    carry, out = rollout(model, closure, carry, forcing, steps_per_frame=steps_per_frame, frame_data=targets,
                         hook=hook, checkpoint=True)
    if not temporal:
        return jnp.mean(out), carry
    losses, shown = out
    previous = jnp.concatenate([start[None], shown[:-1]], axis=0)
    change = jnp.sum((shown - previous) ** 2 * fluid, axis=(1, 2)) / (jnp.sum(targets**2 * fluid, axis=(1, 2)) + 1e-12)
    return jnp.mean(losses) + objective.temporal_smoothness * jnp.mean(change), carry
