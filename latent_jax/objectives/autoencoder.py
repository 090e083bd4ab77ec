r"""The autoencoders' objectives: the plain autoencoder and the denoising autoencoder.

Per example, the mean over features of the squared error: for a full batch the loss is
exactly PyTorch's ``nn.MSELoss()`` (the mean over all elements), the tutorial's criterion.
Models are called as ``model.apply(variables, x, train=train, mask=mask) -> reconstruction``
with the shape of ``x``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
from jax import Array

from latent_jax.corruption import CorruptionFn
from latent_jax.objectives.base import (
    Batch,
    Context,
    Metrics,
    ModelCaller,
    Objective,
    check_model,
    check_reconstruction,
    context_loss,
    describe_function,
    masked_mean,
    per_example_mse,
)
from latent_jax.objectives.registry import register_objective

__all__ = ["autoencoder_objective", "denoising_objective"]


def autoencoder_objective(model: nn.Module) -> Objective:
    """The plain autoencoder's objective: mean squared reconstruction error.

    Per example: the mean over features of :math:`(\\hat x - x)^2`; per batch: the masked mean
    over examples (for a full batch, PyTorch's ``nn.MSELoss()``, the tutorial's criterion).

    Metrics: ``loss`` and ``reconstruction`` (the same value).

    Args:
        model: a linen autoencoder, ``model(x) -> reconstruction`` of the shape of ``x``.

    Returns:
        The :class:`Objective`.
    """
    check_model(model)
    caller = ModelCaller(model)

    @context_loss
    def loss(
        params: Any, model_state: Mapping[str, Any], batch: Batch, key: Array, context: Context
    ) -> tuple[Array, tuple[Metrics, dict]]:
        train = context.train
        reconstruction, new_state = caller.apply(params, model_state, batch, key, train)
        check_reconstruction(reconstruction, batch.x, "the autoencoder")
        value = masked_mean(per_example_mse(reconstruction, batch.x), batch.mask)
        return value, ({"loss": value, "reconstruction": value}, new_state)

    return Objective(init=caller.init, loss=loss, model=model, name="autoencoder")


def denoising_objective(model: nn.Module, corruption: CorruptionFn) -> Objective:
    """The denoising autoencoder's objective: reconstruct the clean input from a corrupted one.

    The model sees ``corruption(key, x)``; the loss compares its output with the **clean**
    ``x`` (per example the mean over features of the squared error, then the masked mean).
    The corruption key is split from the step's key, so every step draws fresh noise and
    evaluation (which uses a fixed key) sees the same noise every epoch.

    Metrics: ``loss`` and ``reconstruction`` (the same value), and ``corrupted_mse``, the
    error of the corrupted input itself against the clean one: the score of a model that
    returns its input, for comparison.

    Args:
        model: a linen autoencoder, ``model(x) -> reconstruction`` of the shape of ``x``.
        corruption: ``corrupt(key, x) -> x_noisy`` (see :mod:`latent_jax.corruption`).

    Returns:
        The :class:`Objective`.
    """
    check_model(model)
    if not callable(corruption):
        raise TypeError(f"corruption must be callable (key, x) -> x, got {corruption!r}")
    caller = ModelCaller(model)

    @context_loss
    def loss(
        params: Any, model_state: Mapping[str, Any], batch: Batch, key: Array, context: Context
    ) -> tuple[Array, tuple[Metrics, dict]]:
        train = context.train
        noise_key, model_key = jax.random.split(key)
        noisy = corruption(noise_key, batch.x)
        if noisy.shape != batch.x.shape:
            raise ValueError(
                f"corruption changed the input's shape from {batch.x.shape} to {noisy.shape}"
            )
        noisy = noisy.astype(batch.x.dtype)
        reconstruction, new_state = caller.apply(
            params, model_state, batch._replace(x=noisy), model_key, train
        )
        check_reconstruction(reconstruction, batch.x, "the denoising autoencoder")
        value = masked_mean(per_example_mse(reconstruction, batch.x), batch.mask)
        baseline = masked_mean(per_example_mse(noisy, batch.x), batch.mask)
        metrics = {"loss": value, "reconstruction": value, "corrupted_mse": baseline}
        return value, (metrics, new_state)

    spec = {"corruption": describe_function(corruption)}
    return Objective(init=caller.init, loss=loss, model=model, name="denoising", spec=spec)


@register_objective("autoencoder", trains="autoencoder", help="mean squared reconstruction error")
def _autoencoder(model: nn.Module) -> Objective:
    return autoencoder_objective(model)
