r"""The VAE family's bounds, in one place: training (:mod:`~latent_jax.objectives.vae`,
:mod:`~latent_jax.objectives.iwae`), evaluation (:mod:`latent_jax.metrics`) and the VAE
anomaly detector (:mod:`latent_jax.anomaly`) all compute them here.

For an encoder :math:`q(z|x) = \mathcal{N}(\mu, \mathrm{diag}\,e^{l})`, draws
:math:`z_i = \mu + e^{l/2} \epsilon_i`, the prior :math:`\mathcal{N}(0, I)` and a decoder's
:math:`\log p(x|z)`:

* :func:`log_likelihood`: :math:`\log p(x|z)` of each example for a likelihood name;
* :func:`log_weights`: :math:`\log w_i = \log p(x|z_i) + \log p(z_i) - \log q(z_i|x)`;
* :func:`importance_weighted_bound`: :math:`\mathcal{L}_k = \log \frac1k \sum_i w_i`
  (Burda et al. 2016; k = 1 is the ELBO estimator with every term sampled);
* :func:`elbo`: :math:`\frac1S \sum_s \log p(x|z_s) - D_{KL}(q(z|x) \,\|\, p(z))`, the KL
  term in closed form.

The likelihoods: ``"gaussian"`` (:math:`\mathcal{N}(x; \hat x, e^{l_x} I)`), ``"bernoulli"``
(the decoder's output as logits) and ``"sse"``, the tutorial's summed squared error, which
is the negative log-density of a Gaussian of variance 1/2 up to the constant
:math:`\tfrac D2 \log \pi`. Training minimizes the summed squared error itself
(:func:`latent_jax.objectives.vae.reconstruction_term`; the constant changes no gradient),
evaluation scores the normalized density (:data:`SSE_LOGVAR`).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax import Array

from latent_jax.gaussian import (
    bernoulli_log_likelihood,
    gaussian_log_likelihood,
    kl_standard_normal,
)

LIKELIHOODS = ("sse", "gaussian", "bernoulli")
# The summed squared error is the negative log-density of a Gaussian of variance 1/2.
SSE_LOGVAR = math.log(0.5)
LEARNED = "learned"


def check_likelihood(likelihood: Any, obs_logvar: Any) -> bool:
    """Checks a likelihood name and its observation noise.

    Args:
        likelihood: one of :data:`LIKELIHOODS`.
        obs_logvar: the Gaussian likelihood's log-variance, a finite real number, or
            ``"learned"`` (the model's ``observation_logvar()``; Gaussian only).

    Returns:
        Whether the noise is learned.

    Raises:
        ValueError: for an unknown likelihood, a non-finite log-variance, or ``"learned"``
            with another likelihood than ``"gaussian"``.
        TypeError: for a log-variance that is neither a real number nor ``"learned"`` (another
            string included).
    """
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
    if isinstance(obs_logvar, str) and obs_logvar == LEARNED:
        if likelihood != "gaussian":
            raise ValueError(
                f'obs_logvar="learned" needs likelihood="gaussian", got {likelihood!r}'
            )
        return True
    if isinstance(obs_logvar, bool) or not isinstance(obs_logvar, int | float):
        raise TypeError(f'obs_logvar must be a real number or "learned", got {obs_logvar!r}')
    if not math.isfinite(obs_logvar):
        raise ValueError(f"obs_logvar must be finite, got {obs_logvar=}")
    return False


def log_likelihood(
    x: Array, output: Array, likelihood: str, obs_logvar: float | Array = 0.0
) -> Array:
    r""":math:`\log p(x \mid z)` of each example, given the decoder's output for z.

    Args:
        x: array of shape (batch, ...features).
        output: the decoder's output, the same shape (logits for ``"bernoulli"``).
        likelihood: one of :data:`LIKELIHOODS` (``"sse"`` as the Gaussian of variance 1/2).
        obs_logvar: the Gaussian's log-variance (a number or a traced array, a scalar or one
            per feature); ignored by the other likelihoods.

    Returns:
        Array of shape (batch,), in nats.
    """
    x = jnp.reshape(x, (x.shape[0], -1))
    output = jnp.reshape(output, (output.shape[0], -1))
    if likelihood == "bernoulli":
        return bernoulli_log_likelihood(x, output)
    logvar = SSE_LOGVAR if likelihood == "sse" else obs_logvar
    return gaussian_log_likelihood(x, output, logvar)


def draw_latents(mean: Array, logvar: Array, eps: Array) -> Array:
    r"""The reparameterized draws :math:`z = \mu + e^{l/2} \epsilon`.

    Args:
        mean: posterior means, array of shape (batch, latent_dim).
        logvar: posterior log-variances, the same shape.
        eps: standard normal noise, of shape (..., batch, latent_dim).

    Returns:
        Array of ``eps``'s shape.
    """
    return mean + jnp.exp(0.5 * logvar) * eps


def log_posterior_of_noise(logvar: Array, eps: Array) -> Array:
    r""":math:`\log q(z|x)` at :math:`z = \mu + e^{l/2}\epsilon`, computed from
    :math:`\epsilon` itself: exact, with no cancellation in :math:`(z - \mu) / \sigma`.

    Args:
        logvar: posterior log-variances, array of shape (batch, latent_dim).
        eps: the draws' noise, of shape (..., batch, latent_dim).

    Returns:
        Array of shape (..., batch).
    """
    return -0.5 * jnp.sum(math.log(2 * math.pi) + logvar + jnp.square(eps), axis=-1)


def log_weights(log_px: Array, z: Array, log_qz: Array, log_pz: Array | None = None) -> Array:
    r"""The importance log-weights :math:`\log p(x|z) + \log p(z) - \log q(z|x)`.

    Args:
        log_px: :math:`\log p(x|z_i)`, array of shape (k, batch).
        z: the draws, array of shape (k, batch, latent_dim).
        log_qz: :math:`\log q(z_i|x)`, array of shape (k, batch).
        log_pz: :math:`\log p(z_i)` under the model's prior, array of shape (k, batch);
            ``None``: the standard normal :math:`\log \mathcal{N}(z_i; 0, I)`.

    Returns:
        Array of shape (k, batch).
    """
    if log_pz is None:
        log_pz = gaussian_log_likelihood(z, 0.0, 0.0)
    return log_px + log_pz - log_qz


def importance_weighted_bound(log_w: Array) -> Array:
    r""":math:`\mathcal{L}_k = \log \frac1k \sum_i w_i` of each example.

    Args:
        log_w: log-weights, array of shape (k, batch) (:func:`log_weights`).

    Returns:
        Array of shape (batch,).
    """
    return jax.nn.logsumexp(log_w, axis=0) - math.log(log_w.shape[0])


def elbo(log_px: Array, mean: Array, logvar: Array) -> Array:
    r"""The ELBO estimator of each example: :math:`\log p(x|z)` averaged over the draws, minus
    the closed-form :math:`D_{KL}(q(z|x) \,\|\, \mathcal{N}(0, I))`.

    Args:
        log_px: :math:`\log p(x|z_s)`, array of shape (S, batch).
        mean: posterior means, array of shape (batch, latent_dim).
        logvar: posterior log-variances, the same shape.

    Returns:
        Array of shape (batch,).
    """
    return jnp.mean(log_px, axis=0) - kl_standard_normal(mean, logvar)
