"""The loss of one truncated window: snapshot losses plus the regularisers of an :class:`Objective`.

Per snapshot (state normalised by ``c_ref``, what the plane shows is ``g q``; fluid cells):

* ``"cell"``, the paper's per-cell relative squared error
  ``mean((p - t)^2 / (t^2 + floor * mean(t^2)))``, where the floor keeps cells far from
  the plume from dividing by zero;
* ``"field"``, the squared relative L2 error ``sum (p - t)^2 / sum t^2``;
* ``"field+root"``, the field loss plus the same on square roots of the fields (offset by
  ``floor`` times the mean), which weighs the low background more than the field loss
  does (the field loss is dominated by the few cells near a source);
* ``"field+log"``, the field loss plus the mean squared difference of the logarithms of
  the fields (offset as the roots'): every fluid cell's ratio counts alike, so the
  background's pattern, which decides the Spearman rank correlation away from the plume,
  weighs as much as the plume.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from plumecast.closure.networks import ClosureNet
from plumecast.physics import operators as ops_
from plumecast.rollout import rollout
from plumecast.train.config import Objective

__all__ = ["snapshot_loss", "regulariser", "network_weights", "window_loss"]


def snapshot_loss(kind: str, floor: float):
    """``loss(p, t, fluid, reference=None)`` of one predicted snapshot against its target (normalised fields).

    The scales that make a loss relative (the target's sum of squares, its mean for the
    floors) are taken over ``reference``, the window's target frames ``(F, ny, nx)``
    (``t`` alone when None). Per snapshot they would make a nearly empty target frame
    (the first seconds of a source below or above the plane, whose plume has not reached
    it) weigh without bound, and training then learns to keep the plane empty: measured on
    l-office OpenFOAM, the column's val error went from 0.38 to 0.91 in four epochs.
    """

    def stats(t, fluid, reference):
        ref = (t if reference is None else reference).reshape((-1,) + t.shape[-2:])
        n = jnp.maximum(jnp.sum(fluid), 1.0)
        squares = jnp.mean(jnp.sum(ref**2 * fluid, axis=(1, 2)))  # mean over frames of sum t^2
        mean_abs = jnp.mean(jnp.sum(jnp.abs(ref) * fluid, axis=(1, 2))) / n
        return n, squares, mean_abs

    def field_loss(p, t, fluid, reference=None):
        _, squares, _ = stats(t, fluid, reference)
        return jnp.sum((p - t) ** 2 * fluid) / (squares + 1e-12)

    def cell_loss(p, t, fluid, reference=None):
        n, squares, _ = stats(t, fluid, reference)
        scale = floor * squares / n + 1e-12
        return jnp.sum((p - t) ** 2 * fluid / (t**2 * fluid + scale)) / n

    def root_loss(p, t, fluid, reference=None):
        n, _, mean_abs = stats(t, fluid, reference)
        offset = floor * mean_abs + 1e-12
        root = lambda a: jnp.sqrt(jnp.maximum(a, 0.0) + offset)  # noqa: E731
        # sum of root(t)^2 over the fluid, from the same window scale as the field part
        roots_squared = n * (mean_abs + offset)
        return field_loss(p, t, fluid, reference) + jnp.sum((root(p) - root(t)) ** 2 * fluid) / roots_squared

    def log_loss(p, t, fluid, reference=None):
        n, _, mean_abs = stats(t, fluid, reference)
        offset = floor * mean_abs + 1e-12
        log = lambda a: jnp.log(jnp.maximum(a, 0.0) + offset)  # noqa: E731
        return field_loss(p, t, fluid, reference) + jnp.sum((log(p) - log(t)) ** 2 * fluid) / n

    return {"field": field_loss, "cell": cell_loss, "field+root": root_loss, "field+log": log_loss}[kind]


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
        weights = network_weights(system)
        if weights:
            total = total + objective.weight_decay * sum(jnp.sum(a**2) for a in weights)
    return total


def network_weights(system) -> list[jax.Array]:
    """The weight arrays (not biases) of a system's neural networks: the closure network and the source MLPs.

    Only networks: a closure's off-plane layer or column holds per-cell logits of physics
    (diffusivities, exchange) that are arrays too, and decaying them towards zero would
    pull the physics towards a fixed diffusivity rather than the closure towards none.
    """
    is_net = lambda x: isinstance(x, (ClosureNet, eqx.nn.MLP))  # noqa: E731
    nets = [x for x in jax.tree.leaves(system, is_leaf=is_net) if is_net(x)]
    return [a for a in jax.tree.leaves(eqx.filter(nets, eqx.is_inexact_array)) if a.ndim >= 2]


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
        loss = snap(shown, target, fluid, targets)
        return (loss, shown) if temporal else loss

    start = g * carry[0]
    carry, out = rollout(model, closure, carry, forcing, steps_per_frame=steps_per_frame, frame_data=targets,
                         hook=hook, checkpoint=True)
    if not temporal:
        return jnp.mean(out), carry
    losses, shown = out
    previous = jnp.concatenate([start[None], shown[:-1]], axis=0)
    change = jnp.sum((shown - previous) ** 2 * fluid, axis=(1, 2)) / (jnp.sum(targets**2 * fluid, axis=(1, 2)) + 1e-12)
    return jnp.mean(losses) + objective.temporal_smoothness * jnp.mean(change), carry
