r"""FactorVAE (Kim & Mnih 2018, "Disentangling by Factorising"): the VAE's bound plus γ times
a discriminator's estimate of the total correlation of the codes.

.. math::

    \mathcal{L}_{\mathrm{VAE}} = \mathrm{rec} + D_{KL}(q(z|x)\,\|\,p(z))
        + \gamma\, \mathbb{E}_{q(z)}\Bigl[\log \frac{D(z)}{1 - D(z)}\Bigr],

    \mathcal{L}_{D} = -\mathbb{E}_{q(z)}[\log D(z)] - \mathbb{E}_{\bar q(z)}[\log(1 - D(\tilde z))],

(the paper's eq. 2 as a loss, and the discriminator's cross-entropy of Algorithm 2), where
:math:`\tilde z` are the batch's codes with every dimension shuffled across the batch on its
own, draws from :math:`\bar q(z) = \prod_j q(z_j)`. The density-ratio trick makes the
discriminator's logit :math:`\ell(z) = \log D(z) - \log(1 - D(z))` an estimate of
:math:`\log q(z) / \bar q(z)`, whose mean over :math:`q(z)` is the total correlation
:math:`\mathrm{TC}(z) = D_{KL}(q(z)\,\|\,\bar q(z))`.

The VAE and the discriminator are the two parameter groups of a
:class:`~latent_jax.objectives.GroupedObjective` (``"vae"`` then ``"discriminator"``), updated
in the same compiled step: the VAE's loss is differentiated with respect to the VAE's
parameters only, the discriminator's with respect to its own (so the γ term trains the
encoder against a fixed discriminator, as in Algorithm 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import Array

from latent_jax import validation
from latent_jax.gaussian import reparameterize
from latent_jax.models.factorvae import FactorVAE
from latent_jax.objectives.base import (
    Batch,
    Context,
    GroupedObjective,
    Metrics,
    ModelCaller,
    check_model,
    context_loss,
    flatten_examples,
    grouped_objective,
    masked_mean,
)
from latent_jax.objectives.registry import Option, register_objective
from latent_jax.objectives.vae import BINARIZE, LIKELIHOOD, ElboTerms, binarized

__all__ = ["FACTORVAE_GROUPS", "factorvae_objective", "permute_dimensions"]

FACTORVAE_GROUPS = ("vae", "discriminator")


def permute_dimensions(key: Array, z: Array, mask: Array) -> tuple[Array, Array]:
    """Kim & Mnih's Algorithm 1 (``permute_dims``): each dimension of the codes shuffled
    across the batch on its own, which draws from the product of the marginals.

    Only the real rows (``mask > 0``) are shuffled; they fill the first ``sum(mask)`` rows of
    the result, whatever their positions in ``z``.

    Args:
        key: PRNG key of the permutations.
        z: codes, array of shape (batch, latent_dim).
        mask: array of shape (batch,), 1.0 for real rows.

    Returns:
        ``(permuted, permuted_mask)``: array of shape (batch, latent_dim), and the mask of its
        real rows, shape (batch,).
    """
    real = mask > 0
    # Padding rows sort after every real row: the first m indices of each column are the
    # real rows in a random order, drawn independently per column.
    order = jax.random.uniform(key, z.shape) + jnp.where(real, 0.0, 2.0)[:, None]
    rows = jnp.argsort(order, axis=0)
    permuted = jnp.take_along_axis(z, rows, axis=0)
    return permuted, (jnp.arange(z.shape[0]) < jnp.sum(real)).astype(mask.dtype)


def factorvae_objective(
    model: nn.Module,
    *,
    gamma: float = 10.0,
    discriminator_width: int = 1000,
    discriminator_depth: int = 6,
    likelihood: str = "sse",
    binarize: bool = False,
    obs_logvar: float | str = 0.0,
) -> GroupedObjective:
    r"""FactorVAE's objective: the VAE's loss with γ times the total-correlation estimate,
    and the discriminator's cross-entropy, as two parameter groups.

    Each step: the VAE's terms as :func:`~latent_jax.objectives.vae_objective` computes them
    (likelihoods, binarization, keys), the discriminator's logits :math:`\ell` on the draws
    :math:`z \sim q(z|x)` and ``tc`` their masked mean; then the discriminator's loss on the
    same batch's draws (re-encoded with the VAE just updated, the same key; no gradient to
    the VAE) against their dimension-wise permutation (:func:`permute_dimensions`, with a key
    split off the step's). In training mode BatchNorm statistics update in the VAE's step only.

    Kim & Mnih train the discriminator with Adam (learning rate 1e-4, β₁ = 0.5, β₂ = 0.9);
    give it its own optimizer with ``TrainConfig(group_optimizers={"discriminator": {...}})``,
    otherwise both groups use the run's optimizer.

    Metrics: ``reconstruction``, ``kl``, ``tc`` (the density-ratio estimate of the total
    correlation), ``vae_loss`` (``reconstruction + kl + gamma * tc``),
    ``discriminator_loss``, ``discriminator_accuracy`` (the fraction of real and permuted
    codes it classifies right), and ``loss``, the sum of the two groups' losses.

    Args:
        model: a linen VAE (``model(x, key) -> (reconstruction, mean, logvar)``, registered,
            with ``encode`` and ``decode``), which is wrapped with the discriminator in a
            :class:`~latent_jax.models.factorvae.FactorVAE`; or such a wrapper.
        gamma: γ, the weight of the total correlation, >= 0. Kim & Mnih sweep γ over 10-100
            on dSprites (Figure 4; Locatello et al. 2019 use {10, 20, 30, 40, 50, 100}).
        discriminator_width: units per hidden layer (the paper: 1000).
        discriminator_depth: hidden layers (the paper: 6).
        likelihood: ``"sse"``, ``"gaussian"`` or ``"bernoulli"``.
        binarize: train on dynamically binarized inputs.
        obs_logvar: the Gaussian likelihood's log-variance, or ``"learned"``.

    Returns:
        The :class:`~latent_jax.objectives.GroupedObjective` named ``"factorvae"``, whose
        ``model`` is the :class:`~latent_jax.models.factorvae.FactorVAE`.

    Raises:
        ValueError: for a negative ``gamma`` or a discriminator size below 1.
    """
    check_model(model)
    gamma = validation.check_real("gamma", gamma, nonnegative=True)
    width = validation.check_int("discriminator_width", discriminator_width, 1)
    depth = validation.check_int("discriminator_depth", discriminator_depth, 1)
    if isinstance(model, FactorVAE):
        model = model.clone(discriminator_width=width, discriminator_depth=depth)
    else:
        model = FactorVAE(vae=model, discriminator_width=width, discriminator_depth=depth)
    terms = ElboTerms(model, likelihood=likelihood, binarize=binarize, obs_logvar=obs_logvar)
    encoder = ModelCaller(model, method="encode")

    def logits(params: Any, model_state: Mapping[str, Any], z: Array) -> Array:
        return model.apply({"params": params, **model_state}, z, method="discriminate")

    @context_loss
    def vae_step(
        params: Any, model_state: Mapping[str, Any], batch: Batch, key: Array, context: Context
    ) -> tuple[Array, tuple[Metrics, dict]]:
        encoded = terms.encoded(params, model_state, batch, key, context.train)
        rec = masked_mean(encoded.reconstruction, batch.mask)
        kl = masked_mean(encoded.kl, batch.mask)
        tc = masked_mean(logits(params, model_state, encoded.z), batch.mask)
        value = rec + kl + jnp.float32(gamma) * tc
        metrics = {"reconstruction": rec, "kl": kl, "tc": tc, "vae_loss": value}
        return value, (metrics, encoded.model_state)

    @context_loss
    def discriminator_step(
        params: Any, model_state: Mapping[str, Any], batch: Batch, key: Array, context: Context
    ) -> tuple[Array, tuple[Metrics, dict]]:
        # The VAE step's draws: the same binarization and reparameterization keys.
        codes, key = binarized(batch, key, terms.binarize)
        sample_key, model_key = jax.random.split(key)
        (mean, logvar), _ = encoder.apply(params, model_state, codes, model_key, context.train)
        z = reparameterize(sample_key, flatten_examples(mean), flatten_examples(logvar))
        z = jax.lax.stop_gradient(z)
        shuffled, shuffled_mask = permute_dimensions(jax.random.fold_in(key, 1), z, batch.mask)
        joint, product = logits(params, model_state, z), logits(params, model_state, shuffled)
        value = masked_mean(jax.nn.softplus(-joint), batch.mask) + masked_mean(
            jax.nn.softplus(product), shuffled_mask
        )
        accuracy = 0.5 * (
            masked_mean((joint > 0).astype(jnp.float32), batch.mask)
            + masked_mean((product < 0).astype(jnp.float32), shuffled_mask)
        )
        metrics = {"discriminator_loss": value, "discriminator_accuracy": accuracy}
        # The statistics of this second pass are dropped: BatchNorm updates once a step.
        return value, (metrics, dict(model_state))

    spec = {
        "gamma": gamma,
        "discriminator_width": width,
        "discriminator_depth": depth,
        "likelihood": likelihood,
        "binarize": terms.binarize,
        "obs_logvar": obs_logvar,
    }
    return grouped_objective(
        terms.init,
        {"vae": vae_step, "discriminator": discriminator_step},
        model=model,
        name="factorvae",
        spec=spec,
    )


@register_objective(
    "factorvae",
    trains="vae",
    options=(
        LIKELIHOOD,
        BINARIZE,
        Option("gamma", float, 10.0, "weight of the total-correlation estimate (FactorVAE)"),
        Option("discriminator_width", int, 1000, "units per discriminator layer (paper: 1000)"),
        Option("discriminator_depth", int, 6, "discriminator hidden layers (paper: 6)"),
    ),
    help="FactorVAE: ELBO + gamma * a discriminator's total-correlation estimate (Kim & Mnih)",
)
def _factorvae(
    model: nn.Module,
    *,
    likelihood: str,
    binarize: bool,
    gamma: float,
    discriminator_width: int,
    discriminator_depth: int,
) -> GroupedObjective:
    return factorvae_objective(
        model,
        gamma=gamma,
        discriminator_width=discriminator_width,
        discriminator_depth=discriminator_depth,
        likelihood=likelihood,
        binarize=binarize,
    )
