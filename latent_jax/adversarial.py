r"""The GAN's adversarial objective, on the engine's parameter groups.

The engine trains a GAN's generator and discriminator as the parameter groups of a
:class:`~latent_jax.objectives.GroupedObjective` (the objective protocol,
:mod:`latent_jax.objectives.base`, where it is defined with :func:`combined_loss` and
:func:`grouped_objective`; all three are re-exported here): each group's loss is
differentiated with respect to its own parameters and applied by its own optimizer.

The GAN (Goodfellow et al. 2014) with the non-saturating generator loss, as DCGAN (Radford et
al. 2016) trains it. With :math:`D(x) = \sigma(\ell(x))` for the discriminator's logit
:math:`\ell` and fakes :math:`G(z)`, :math:`z \sim \mathcal{N}(0, I)`, per example

.. math::

    L_D = -\log D(x) - \log(1 - D(G(z))) = \mathrm{softplus}(-\ell(x))
        + \mathrm{softplus}(\ell(G(z))),

    L_G = -\log D(G(z)) = \mathrm{softplus}(-\ell(G(z))) \quad \text{(non-saturating)},

    L_G^{\text{minimax}} = \log(1 - D(G(z))) = -\mathrm{softplus}(\ell(G(z))),

each reduced to the masked mean over the batch's real rows (a ragged batch draws as many fakes
as it has real rows). Softplus of the logits is the stable form of the logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from latent_jax import validation
from latent_jax.objectives.base import (
    Batch,
    Context,
    GroupedObjective,
    Metrics,
    combined_loss,
    context_loss,
    grouped_objective,
    masked_mean,
)

__all__ = [
    "GENERATOR_LOSSES",
    "GroupedObjective",
    "combined_loss",
    "discriminator_loss",
    "gan_objective",
    "generator_loss",
    "grouped_objective",
    "mode_coverage",
    "ring_of_gaussians",
]

GENERATOR_LOSSES = ("non-saturating", "minimax")
GAN_GROUPS = ("discriminator", "generator")


def discriminator_loss(real_logits: Array, fake_logits: Array, mask: Array) -> Array:
    """The discriminator's loss: ``softplus(-l_real) + softplus(l_fake)``, masked mean.

    Args:
        real_logits: array of shape (batch,), the logits of real samples.
        fake_logits: array of shape (batch,), the logits of generated samples.
        mask: array of shape (batch,), 1.0 for the rows that count.

    Returns:
        A scalar: :math:`-\\log D(x) - \\log(1 - D(G(z)))` averaged over the rows.
    """
    per_example = jax.nn.softplus(-real_logits) + jax.nn.softplus(fake_logits)
    return masked_mean(per_example, mask)


def generator_loss(fake_logits: Array, mask: Array, kind: str = "non-saturating") -> Array:
    """The generator's loss on the logits of its samples, masked mean.

    Args:
        fake_logits: array of shape (batch,).
        mask: array of shape (batch,), 1.0 for the rows that count.
        kind: ``"non-saturating"``, :math:`-\\log D(G(z)) = \\mathrm{softplus}(-\\ell)`
            (Goodfellow et al.'s practical choice, DCGAN's), or ``"minimax"``,
            :math:`\\log(1 - D(G(z))) = -\\mathrm{softplus}(\\ell)`, the game's own value.

    Returns:
        A scalar.
    """
    validation.check_choice("kind", kind, GENERATOR_LOSSES)
    if kind == "non-saturating":
        return masked_mean(jax.nn.softplus(-fake_logits), mask)
    return masked_mean(-jax.nn.softplus(fake_logits), mask)


def _apply(
    model: nn.Module,
    params: Any,
    model_state: Mapping[str, Any],
    part: str,
    inputs: Array,
    train: bool,
    mask: Array,
) -> tuple[Array, dict]:
    """``model.<method>(inputs)`` for ``part`` (generator/discriminator): output, new state.

    In training mode the part's BatchNorm statistics come back updated (only that part's
    entries of ``model_state`` change).
    """
    method = "generate" if part == "generator" else "discriminate"
    variables = {"params": params, **model_state}
    kwargs = {"method": method, "train": train, "mask": mask}
    if not (train and model_state):
        return model.apply(variables, inputs, **kwargs), dict(model_state)
    out, updates = model.apply(variables, inputs, mutable=list(model_state), **kwargs)
    new_state = dict(model_state)
    for collection, values in updates.items():
        if part in values:
            new_state[collection] = {**model_state[collection], part: values[part]}
    return out, new_state


def gan_objective(model: nn.Module, *, generator_kind: str = "non-saturating") -> GroupedObjective:
    """The GAN's objective: the discriminator's and the generator's losses, two groups.

    The groups are ``("discriminator", "generator")``, updated in that order (DCGAN's
    loop: a discriminator step on real and generated samples, then a generator step).
    Each batch draws ``z ~ N(0, I)`` of shape (batch, latent_dim) from its key; both groups'
    losses use the same draw, so the generator step scores the very samples the
    discriminator step just saw (as DCGAN's reference loop does), through the updated
    discriminator when the updates alternate. Generated samples are detached in the
    discriminator's loss. In training mode the generator's BatchNorm statistics update in its
    own step, the discriminator's in both (real and fake batches separately, as DCGAN runs
    them); evaluation uses the running statistics and the evaluation key's draw.

    Metrics: ``discriminator_loss``, ``d_real`` and ``d_fake`` (the mean of
    :math:`D(x)` over real and over generated samples, in the discriminator's step),
    ``generator_loss``, and ``loss`` (their sum; the engine's non-finite check and early
    stopping read it).

    Args:
        model: a GAN module (:class:`latent_jax.models.gan.DCGAN`,
            :class:`~latent_jax.models.gan.MLPGAN`): submodules ``generator`` and
            ``discriminator``, methods ``generate(z, train, mask)`` and
            ``discriminate(x, train, mask)``, and a ``latent_dim``.
        generator_kind: ``"non-saturating"`` (default) or ``"minimax"``, see
            :func:`generator_loss`.

    Returns:
        The :class:`GroupedObjective`, named ``"gan"``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a flax.linen Module, got {type(model).__name__}")
    for method in ("generate", "discriminate"):
        if not callable(getattr(model, method, None)):
            raise TypeError(f"model must have a {method}() method, got {type(model).__name__}")
    latent_dim = validation.check_int("model.latent_dim", getattr(model, "latent_dim", None), 1)
    validation.check_choice("generator_kind", generator_kind, GENERATOR_LOSSES)

    def init(key: Array, x: Array) -> dict:
        z = jnp.zeros((x.shape[0], latent_dim), jnp.float32)
        return dict(model.init({"params": key}, z, x, train=False))

    def fakes(params: Any, model_state: Any, batch: Batch, key: Array, train: bool) -> Any:
        z = jax.random.normal(key, (batch.x.shape[0], latent_dim), jnp.float32)
        samples, state = _apply(model, params, model_state, "generator", z, train, batch.mask > 0)
        if samples.shape != batch.x.shape:
            raise ValueError(
                f"the generator makes samples of shape {tuple(samples.shape[1:])} for data of "
                f"shape {tuple(batch.x.shape[1:])}"
            )
        return samples.astype(batch.x.dtype), state

    @context_loss
    def discriminator_step(
        params: Any, model_state: Mapping[str, Any], batch: Batch, key: Array, context: Context
    ) -> tuple[Array, tuple[Metrics, dict]]:
        train = context.train
        samples, _ = fakes(params, model_state, batch, key, train)  # G's statistics: its step
        samples = jax.lax.stop_gradient(samples)
        rows = batch.mask > 0
        real, state = _apply(model, params, model_state, "discriminator", batch.x, train, rows)
        fake, state = _apply(model, params, state, "discriminator", samples, train, rows)
        value = discriminator_loss(real, fake, batch.mask)
        metrics = {
            "discriminator_loss": value,
            "d_real": masked_mean(jax.nn.sigmoid(real), batch.mask),
            "d_fake": masked_mean(jax.nn.sigmoid(fake), batch.mask),
        }
        return value, (metrics, state)

    @context_loss
    def generator_step(
        params: Any, model_state: Mapping[str, Any], batch: Batch, key: Array, context: Context
    ) -> tuple[Array, tuple[Metrics, dict]]:
        train = context.train
        samples, state = fakes(params, model_state, batch, key, train)
        fake, state = _apply(model, params, state, "discriminator", samples, train, batch.mask > 0)
        value = generator_loss(fake, batch.mask, generator_kind)
        return value, ({"generator_loss": value}, state)

    return grouped_objective(
        init,
        {"discriminator": discriminator_step, "generator": generator_step},
        model=model,
        name="gan",
        spec={"generator_loss": generator_kind},
    )


def ring_of_gaussians(
    n: int, *, n_modes: int = 8, radius: float = 2.0, std: float = 0.05, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The GAN's usual toy data: ``n`` points from equal Gaussians centred on a circle.

    Args:
        n: points, >= 1.
        n_modes: Gaussians, their centres at angles ``2 pi k / n_modes``, >= 1.
        radius: the circle's radius, > 0.
        std: each Gaussian's standard deviation, > 0.
        seed: the NumPy seed of the draw.

    Returns:
        ``(x, centers)``: float32 arrays of shape (n, 2) and (n_modes, 2).
    """
    n = validation.check_int("n", n, 1)
    n_modes = validation.check_int("n_modes", n_modes, 1)
    radius = validation.check_real("radius", radius, positive=True)
    std = validation.check_real("std", std, positive=True)
    angles = 2.0 * np.pi * np.arange(n_modes) / n_modes
    centers = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    rng = np.random.default_rng(seed)
    x = centers[rng.integers(0, n_modes, n)] + std * rng.normal(size=(n, 2))
    return x.astype(np.float32), centers.astype(np.float32)


def mode_coverage(samples: Any, centers: Any, radius: float) -> tuple[np.ndarray, float]:
    """How many samples fall near each mode: the mode-collapse check of a GAN on toy data.

    Args:
        samples: array of shape (n, d).
        centers: the modes' centres, array of shape (n_modes, d).
        radius: a sample counts for its nearest centre when closer than this (3 standard
            deviations of the mode, typically), > 0.

    Returns:
        ``(counts, fraction)``: int array of shape (n_modes,), the samples within ``radius``
        of each centre, and the fraction of all samples within ``radius`` of some centre
        (the "high-quality" samples).
    """
    samples = np.asarray(validation.check_array("samples", samples, ndim=2), np.float64)
    centers = np.asarray(validation.check_array("centers", centers, ndim=2), np.float64)
    if samples.shape[1] != centers.shape[1]:
        raise ValueError(f"samples have {samples.shape[1]} features but centers {centers.shape[1]}")
    radius = validation.check_real("radius", radius, positive=True)
    distance = np.linalg.norm(samples[:, None, :] - centers[None, :, :], axis=-1)
    near = distance.min(axis=1) < radius
    counts = np.bincount(distance.argmin(axis=1)[near], minlength=len(centers))
    return counts, float(np.mean(near))
