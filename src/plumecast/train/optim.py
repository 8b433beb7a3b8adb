"""The optimiser: Adam after global-norm clipping, an optional decaying rate, an optional parameter average.

* :func:`make_optimizer` chains ``clip_by_global_norm``, Adam and, with
  ``Schedule.average_decay = d > 0``, :func:`parameter_average`, which passes the updates
  through unchanged and keeps in its state the exponential average of the parameters the
  updates lead to (Polyak-Ruppert averaging in its exponential form). The optimiser goes
  on from the raw parameters; :func:`averaged_parameters` gives the average, debiased as
  Adam's moments are, which is the model a run validates, selects and returns. Living in
  the optimiser state, the average is checkpointed, resumed and replicated over devices
  with it, and a step that is skipped for a non-finite loss leaves it as it was.
* :func:`set_learning_rate` sets the rate of a decaying schedule once per epoch, in the
  state (``optax.inject_hyperparams``), so the jitted step is not traced again.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from plumecast.train.config import Schedule

__all__ = ["make_optimizer", "set_learning_rate", "parameter_average", "ParameterAverageState", "averaged_parameters"]


class ParameterAverageState(NamedTuple):
    """``count`` updates so far; ``average``: ``sum_k (1 - d) d^(count - k) params_k``, not yet debiased."""

    count: jax.Array
    average: Any


def parameter_average(decay: float) -> optax.GradientTransformation:
    """Keeps the exponential average (weight ``decay`` per step on the past) of the updated parameters."""

    def init(params):
        return ParameterAverageState(jnp.zeros((), jnp.int32), jax.tree.map(jnp.zeros_like, params))

    def update(updates, state, params):
        new = eqx.apply_updates(params, updates)
        average = jax.tree.map(lambda a, p: decay * a + (1.0 - decay) * p, state.average, new)
        return updates, ParameterAverageState(state.count + 1, average)

    return optax.GradientTransformation(init, update)


def make_optimizer(schedule: Schedule):
    """Adam after global-norm clipping; with a decaying rate the rate lives in the state (:func:`set_learning_rate`);
    with ``schedule.average_decay`` the parameter average last (:func:`parameter_average`)."""
    adam = optax.adam if schedule.lr_decay == "constant" else optax.inject_hyperparams(optax.adam)
    parts = [optax.clip_by_global_norm(schedule.clip_norm), adam(learning_rate=schedule.learning_rate)]
    if schedule.average_decay:
        parts.append(parameter_average(schedule.average_decay))
    return optax.chain(*parts)


def set_learning_rate(opt_state, learning_rate: float):
    """``opt_state`` of :func:`make_optimizer` with a decaying rate, its rate set to ``learning_rate`` (same device
    placement, so the jitted step is not traced again)."""
    adam_state = opt_state[1]
    old = adam_state.hyperparams["learning_rate"]
    new = jax.device_put(np.asarray(learning_rate, old.dtype), old.sharding)
    adam_state = adam_state._replace(hyperparams={**adam_state.hyperparams, "learning_rate": new})
    return (opt_state[0], adam_state, *opt_state[2:])


def averaged_parameters(params, opt_state, schedule: Schedule):
    """The parameters a run's model has: ``params`` itself, or with averaging their debiased average
    (``params`` before the first update)."""
    if not schedule.average_decay:
        return params
    state = opt_state[-1]
    if int(state.count) == 0:
        return params
    debias = 1.0 - schedule.average_decay ** int(state.count)
    return jax.tree.map(lambda a: (a / debias).astype(a.dtype), state.average)
