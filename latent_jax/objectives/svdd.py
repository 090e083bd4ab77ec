r"""One-class Deep SVDD's objective (Ruff et al., 2018)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import Array

from latent_jax import validation
from latent_jax.objectives.base import (
    Batch,
    Context,
    Metrics,
    ModelCaller,
    Objective,
    check_model,
    context_loss,
    masked_mean,
)

__all__ = ["deep_svdd_objective"]


def deep_svdd_objective(model: nn.Module, *, weight_decay: float = 1e-6) -> Objective:
    r"""One-class Deep SVDD's objective (Ruff et al., 2018): pull the data to the centre.

    .. math::

        \frac{1}{n}\sum_i \lVert \phi(x_i; W) - c \rVert^2
        + \frac{\lambda}{2} \sum_l \lVert W^l \rVert_F^2,

    the first term the masked mean over examples of the model's output (the squared distance
    to the centre :math:`c`, which the model keeps in its variables and training never
    changes), the second the weight decay over every parameter (the paper's networks have
    weights only). The decay is the paper's L2 term inside the loss (PyTorch Adam's
    ``weight_decay``), not AdamW's decoupled decay.

    Metrics: ``loss``, ``distance`` (the mean squared distance) and ``weight_decay`` (the
    penalty term); ``loss == distance + weight_decay``.

    Args:
        model: a network whose ``__call__(x) -> (batch,)`` is the squared distance to its
            centre, such as :class:`latent_jax.models.svdd.DeepSVDDConv`.
        weight_decay: :math:`\lambda`, >= 0 (the paper's: 1e-6).

    Returns:
        The :class:`Objective`.
    """
    check_model(model)
    decay = validation.check_real("weight_decay", weight_decay, nonnegative=True)
    caller = ModelCaller(model)

    @context_loss
    def loss(
        params: Any, model_state: Mapping[str, Any], batch: Batch, key: Array, context: Context
    ) -> tuple[Array, tuple[Metrics, dict]]:
        train = context.train
        distances, new_state = caller.apply(params, model_state, batch, key, train)
        if not hasattr(distances, "shape") or distances.shape != batch.mask.shape:
            raise ValueError(
                "a Deep SVDD model must return one squared distance per example, shape "
                f"{tuple(batch.mask.shape)}, got {getattr(distances, 'shape', distances)!r}"
            )
        distance = masked_mean(distances, batch.mask)
        squares = sum(jnp.sum(jnp.square(w)) for w in jax.tree.leaves(params))
        penalty = 0.5 * decay * jnp.asarray(squares, jnp.float32)
        value = distance + penalty
        return value, ({"loss": value, "distance": distance, "weight_decay": penalty}, new_state)

    return Objective(
        init=caller.init, loss=loss, model=model, name="deep-svdd", spec={"weight_decay": decay}
    )
