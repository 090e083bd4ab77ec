r"""The importance-weighted autoencoder's objective (Burda, Grosse & Salakhutdinov 2016)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import Array

from latent_jax import validation
from latent_jax.gaussian import gaussian_log_likelihood, kl_standard_normal
from latent_jax.objectives import bound
from latent_jax.objectives.base import (
    Batch,
    Context,
    Metrics,
    ModelCaller,
    Objective,
    check_model,
    check_reconstruction,
    context_loss,
    masked_mean,
)
from latent_jax.objectives.registry import Option, register_objective
from latent_jax.objectives.vae import (
    BINARIZE,
    LIKELIHOOD,
    binarized,
    check_noise,
    check_posterior,
    noise_logvar,
    reconstruction_term,
)

__all__ = ["GRADIENT_ESTIMATORS", "iwae_objective"]

GRADIENT_ESTIMATORS = ("standard", "dreg")


def iwae_objective(
    model: nn.Module,
    k: int,
    *,
    likelihood: str = "bernoulli",
    binarize: bool = False,
    gradient: str = "standard",
    obs_logvar: float | str = 0.0,
) -> Objective:
    r"""The importance-weighted autoencoder's objective (Burda, Grosse & Salakhutdinov 2016).

    Per example, minus the k-sample importance-weighted bound

    .. math::

        \mathcal{L}_k(x) = \log \frac1k \sum_{i=1}^k w_i, \qquad
        w_i = \frac{p(x \mid z_i)\, p(z_i)}{q(z_i \mid x)}, \quad z_i \sim q(z \mid x),

    then the masked mean over the batch. :math:`\mathcal{L}_k` is a lower bound on
    :math:`\log p(x)`, non-decreasing in k in expectation. :math:`\log p(x \mid z)` is minus
    the reconstruction term of :func:`vae_objective` for the same ``likelihood`` (for
    ``"sse"``, minus the summed squared error: a Gaussian of variance 1/2 up to a constant,
    which shifts the bound and leaves its gradient alone). The k latents of an example are
    decoded as one batch of k × batch rows.

    At ``k = 1`` (with ``gradient="standard"``) the bound is the ELBO with the closed-form KL
    term, the VAE's estimator (same expectation as the sampled log-weight, lower variance):
    the loss, its gradient and the new model state are those of ``vae_objective(model,
    likelihood=likelihood, binarize=binarize)`` (β = 1) for the same key, to float32
    round-off. For ``k > 1`` the weights use :math:`\log q(z_i|x)` and :math:`\log p(z_i)`
    sampled.

    ``gradient="dreg"`` is the doubly reparameterized estimator of Tucker et al. (2019): the
    decoder's gradient is the standard one, :math:`\sum_i \tilde w_i \nabla_\theta \log w_i`;
    the encoder's gets only the path through :math:`z_i`, with :math:`\log q` evaluated at
    stopped variational parameters and weighted by the squared normalized weights
    :math:`\tilde w_i^2` (:math:`\tilde w_i = w_i / \sum_j w_j`): unbiased, and of lower
    variance as k grows. Its value is the standard bound's (its sampled form also at k = 1);
    it costs one more decoder pass (to know the weights before the reweighted pass; that
    pass's BatchNorm statistics are discarded).

    Keys, as in :func:`vae_objective`: with ``binarize`` a binarization key is split off first
    (:func:`bernoulli_binarize`, evaluation on the engine's fixed key), then
    ``sample_key, model_key = split(key)``; the k draws are
    ``normal(sample_key, (k, batch, latent_dim))``.

    Metrics (masked means over examples): ``loss`` (:math:`-\mathcal{L}_k`), ``iwae_bound``
    (:math:`\mathcal{L}_k`), ``elbo`` (``-(reconstruction + kl)``, the ELBO estimate from the
    same draws), ``reconstruction`` (the reconstruction term averaged over the k draws),
    ``kl`` (closed form) and ``ess``, the effective sample size of the normalized weights
    :math:`1 / \sum_i \tilde w_i^2`, in [1, k].

    Args:
        model: a linen VAE with ``encode(x) -> (mean, logvar)`` and ``decode(z) -> output``
            (each may declare ``train`` and ``mask``, like :class:`~latent_jax.models.conv.
            ConvVAE`), and ``model(x, key)`` for initialization.
        k: the number of importance samples, >= 1.
        likelihood: ``"sse"``, ``"gaussian"`` or ``"bernoulli"`` (the default, with the
            decoder's output as logits).
        binarize: train on dynamically binarized inputs (see :func:`vae_objective`).
        gradient: ``"standard"`` or ``"dreg"``.
        obs_logvar: the Gaussian likelihood's log-variance, or ``"learned"``.

    Returns:
        The :class:`Objective` (named ``"iwae"``).

    Raises:
        TypeError: for a model without ``encode``/``decode`` or a non-bool ``binarize``.
        ValueError: for ``k < 1`` or an unknown likelihood or gradient estimator.
    """
    check_model(model)
    for method in ("encode", "decode"):
        if not callable(getattr(model, method, None)):
            raise TypeError(
                f"model must be a VAE with encode and decode methods, got {type(model).__name__}"
            )
    k = validation.check_int("k", k, 1)
    learned_noise = check_noise(model, likelihood, obs_logvar)
    binarize = validation.check_bool("binarize", binarize)
    gradient = validation.check_choice("gradient", gradient, GRADIENT_ESTIMATORS)
    closed_form_kl = k == 1 and gradient == "standard"
    caller, encoder, decoder = (
        ModelCaller(model),
        ModelCaller(model, "encode"),
        ModelCaller(model, "decode"),
    )

    def init(key: Array, x: Array) -> dict:
        init_key, sample_key = jax.random.split(key)
        return caller.init(init_key, x, sample_key)

    @context_loss
    def loss(
        params: Any, model_state: Mapping[str, Any], batch: Batch, key: Array, context: Context
    ) -> tuple[Array, tuple[Metrics, dict]]:
        train = context.train
        batch, key = binarized(batch, key, binarize)
        sample_key, model_key = jax.random.split(key)
        posterior, state = encoder.apply(params, model_state, batch, model_key, train)
        mean, logvar = check_posterior(posterior, batch.x)
        n = batch.x.shape[0]
        eps = jax.random.normal(sample_key, (k, *mean.shape), mean.dtype)
        z = bound.draw_latents(mean, logvar, eps)
        x_rep = jnp.broadcast_to(batch.x, (k, *batch.x.shape)).reshape((k * n, *batch.x.shape[1:]))
        rows = Batch(x_rep, jnp.tile(batch.mask, k))
        logvar_x = noise_logvar(model, params, model_state, learned_noise, obs_logvar)

        def log_likelihood(z: Array, state: dict) -> tuple[Array, dict]:
            """log p(x | z_i), shape (k, batch), and the model state after decoding."""
            output, state = decoder.apply(
                params, state, rows._replace(x=z.reshape((k * n, -1))), model_key, train
            )
            check_reconstruction(output, x_rep, "the VAE's decode")
            rec = reconstruction_term(likelihood, output, x_rep, logvar_x)
            return -rec.reshape((k, n)), state

        def log_weights(log_px: Array, z: Array, z_mean: Array, z_logvar: Array) -> Array:
            """The log-weights with log q evaluated at the given variational parameters."""
            return bound.log_weights(log_px, z, gaussian_log_likelihood(z, z_mean, z_logvar))

        kl_i = kl_standard_normal(mean, logvar)
        kl = masked_mean(kl_i, batch.mask)
        if gradient == "dreg":
            # The normalized weights first (no gradient, BatchNorm updates dropped), then the
            # bound again at a z whose gradient to the encoder is scaled by them: the
            # encoder's path gradient w_i * d/dz log w_i becomes w_i^2 * d/dz log w_i.
            frozen = jax.lax.stop_gradient
            log_px, _ = log_likelihood(frozen(z), state)
            weights = jax.nn.softmax(
                frozen(log_weights(log_px, frozen(z), frozen(mean), frozen(logvar))), axis=0
            )
            z = frozen(z) + weights[..., None] * (z - frozen(z))
            log_px, state = log_likelihood(z, state)
            log_w = log_weights(log_px, z, frozen(mean), frozen(logvar))
        else:
            log_px, state = log_likelihood(z, state)
            log_w = bound.log_weights(log_px, z, bound.log_posterior_of_noise(logvar, eps))
        rec = masked_mean(-jnp.mean(log_px, axis=0), batch.mask)
        if closed_form_kl:
            value = rec + kl
            ess = jnp.ones((), jnp.float32)
        else:
            value = masked_mean(-bound.importance_weighted_bound(log_w), batch.mask)
            normalized = jax.nn.softmax(log_w, axis=0)
            ess = masked_mean(1.0 / jnp.sum(jnp.square(normalized), axis=0), batch.mask)
        metrics = {
            "loss": value,
            "iwae_bound": -value,
            "elbo": -(rec + kl),
            "reconstruction": rec,
            "kl": kl,
            "ess": ess,
        }
        return value, (metrics, state)

    spec = {
        "k": k,
        "likelihood": likelihood,
        "binarize": binarize,
        "gradient": gradient,
        "obs_logvar": obs_logvar,
    }
    return Objective(init=init, loss=loss, model=model, name="iwae", spec=spec)


@register_objective(
    "iwae",
    trains="vae",
    options=(
        LIKELIHOOD,
        BINARIZE,
        Option("k", int, 1, "importance samples"),
        Option(
            "gradient_estimator",
            str,
            "standard",
            "the bound's gradient: standard, or dreg (doubly reparameterized)",
            GRADIENT_ESTIMATORS,
        ),
    ),
    help="the importance-weighted bound with --k samples (beta = 1)",
)
def _iwae(
    model: nn.Module, *, likelihood: str, binarize: bool, k: int, gradient_estimator: str
) -> Objective:
    return iwae_objective(
        model, k, likelihood=likelihood, binarize=binarize, gradient=gradient_estimator
    )
