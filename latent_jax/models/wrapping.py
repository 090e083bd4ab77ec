"""How a model that wraps a VAE (:class:`~latent_jax.models.factorvae.FactorVAE`,
:class:`~latent_jax.models.vampprior.VampPrior`) calls the VAE it holds.

The wrapper's methods take ``train`` and ``mask`` and pass each on only where the inner
model's method declares it, so any registered VAE can be wrapped: one with BatchNorm gets its
mode and the rows of its batch statistics, one without needs neither.
"""

from __future__ import annotations

import inspect
from typing import Any

import flax.linen as nn
from jax import Array

__all__ = ["inner_keywords"]


def inner_keywords(
    module: nn.Module, method: str, train: bool, mask: Array | None
) -> dict[str, Any]:
    """``train`` and ``mask`` for the inner model's ``method``, where it declares them.

    Args:
        module: the wrapped linen module.
        method: the name of the method to call (``"__call__"``, ``"encode"``, ``"decode"``).
        train: the mode; passed where ``method`` names ``train`` (or takes ``**kwargs``).
        mask: bool array of shape (batch,), the real rows; passed where ``method`` names
            ``mask`` and it is not ``None``.

    Returns:
        The keyword arguments of the call.
    """
    parameters = inspect.signature(getattr(type(module), method)).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    keywords: dict[str, Any] = {}
    if "train" in parameters or takes_any:
        keywords["train"] = train
    if "mask" in parameters and mask is not None:
        keywords["mask"] = mask
    return keywords
