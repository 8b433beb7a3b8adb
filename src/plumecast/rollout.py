"""Rollouts: many model steps as one ``lax.scan`` (functions, not methods).

Time layout: a rollout of ``n_steps`` model steps of ``dt`` (0.4 s by default, each with
the model's physics substeps, 4 by default) is cut into ``n_steps / steps_per_frame``
frames. After each frame a *hook* decides what is kept: the field (the default), probes,
or only a loss against the frame's target (``frame_data``), so a differentiated rollout
need not store whole trajectories. The carry is ``(q, memory)``: the normalised field and
the closure memory (``()`` without a closure); see :mod:`plumecast.closure`.

``checkpoint=True`` wraps each model step in ``jax.checkpoint``: reverse mode then stores
only the carry per step and recomputes the step's internals, trading about one extra
forward pass for memory (gradients are identical; a test checks it).

All functions act on one unbatched state; batch with ``jax.vmap`` over ``carry``,
``forcing`` and ``frame_data`` with the model and closure broadcast.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from plumecast.physics.model import CoarseModel, Forcing, PhysicsOperators

__all__ = ["Forcing", "init_carry", "step", "rollout", "save_field", "track_at_steps", "forcing_from_track"]

Carry = tuple[jax.Array, Any]


def init_carry(closure, q0) -> Carry:
    """The carry at t = 0: the field and the closure's initial memory."""
    return (q0, () if closure is None else closure.init_memory())


def step(model: CoarseModel, closure, carry: Carry, forcing: Forcing, ops: PhysicsOperators | None = None) -> Carry:
    """One model step: physics substeps (unless the closure replaces them), then the closure."""
    q, memory = carry
    ops = model.prepare() if ops is None else ops
    if jnp.ndim(forcing.x) > 0:  # several sources: per-source deposits, summed (the closure sees both)
        parts = model.source_terms(forcing, ops)
        source = jnp.sum(parts, axis=0)
    else:
        parts = None
        source = model.source_term(forcing, ops)
    if closure is None:
        return model.physics(q, source, ops), memory
    # A closure whose physics spreads sources over heights (the column) takes part of each
    # emission off the plane; the closure still sees the whole emission in its context.
    factor = closure.plane_source_factor(jnp.asarray(forcing.z, source.dtype))
    plane_source = source * factor if parts is None else jnp.tensordot(factor, parts, axes=1)
    q_phys = model.physics(q, plane_source, ops) if closure.uses_physics else q
    ctx = model.closure_context(q, q_phys, source, ops, forcing, source_parts=parts)
    q_next, memory = closure(ctx, memory)
    return q_next.astype(q.dtype) * ops.fluid, memory


def save_field(carry: Carry, frame_data) -> jax.Array:
    """The default hook: keep the field at the end of each frame."""
    return carry[0]


def rollout(
    model: CoarseModel,
    closure,
    carry: Carry,
    forcing: Forcing,
    *,
    steps_per_frame: int = 1,
    frame_data: Any = None,
    hook: Callable[[Carry, Any], Any] | None = None,
    checkpoint: bool = False,
) -> tuple[Carry, Any]:
    """Advance ``carry`` through the steps of ``forcing``; return ``(final carry, frames)``.

    ``forcing`` holds one entry per step (leading axis ``n_steps``); ``frame_data`` (any
    pytree with leading axis ``n_frames``, or None) is handed to ``hook(carry, data)``
    after each frame, and the hook outputs are stacked along a leading frame axis.
    """
    q = carry[0]
    if q.shape != model.config.shape:
        raise ValueError(
            f"rollout takes one unbatched field of shape {model.config.shape}, got {q.shape}; vmap for batches"
        )
    n_steps = forcing.t.shape[0]
    if steps_per_frame < 1 or n_steps % steps_per_frame:
        raise ValueError(f"{n_steps} steps do not split into frames of {steps_per_frame} steps")
    n_frames = n_steps // steps_per_frame
    hook = save_field if hook is None else hook
    ops = model.prepare()

    def one(c, f):
        return step(model, closure, c, f, ops), None

    body = jax.checkpoint(one, prevent_cse=False) if checkpoint else one
    frames = jax.tree.map(lambda a: a.reshape((n_frames, steps_per_frame) + a.shape[1:]), forcing)

    def frame(c, xs):
        f, data = xs
        c, _ = jax.lax.scan(body, c, f)
        return c, hook(c, data)

    return jax.lax.scan(frame, carry, (frames, frame_data))


def track_at_steps(times_s, x, y, z, rate, *, dt: float, n_steps: int, t0: float = 0.0) -> tuple[np.ndarray, ...]:
    """``(t, x, y, z, rate)`` per step as float64 NumPy arrays (see :func:`forcing_from_track`)."""
    times_s = np.asarray(times_s, float)
    t = t0 + dt * np.arange(n_steps)
    mid = t + 0.5 * dt
    return (t, *(np.interp(mid, times_s, np.asarray(a, float)) for a in (x, y, z, rate)))


def forcing_from_track(times_s, x, y, z, rate, *, dt: float, n_steps: int, t0: float = 0.0, dtype="float32") -> Forcing:
    """Per-step forcing from a source track sampled at ``times_s``.

    Position and rate are linearly interpolated at each step's midpoint ``t0 + (k + 1/2)
    dt`` (exact for a rate linear within the step), held constant beyond the track's ends.
    """
    dt_ = jnp.dtype(dtype)
    return Forcing(*(jnp.asarray(a, dt_) for a in track_at_steps(times_s, x, y, z, rate, dt=dt, n_steps=n_steps, t0=t0)))
