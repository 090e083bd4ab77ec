r"""Diagonal Gaussians: reparameterized sampling, closed-form KL terms, log-likelihoods.

Every function is batched over leading axes, reduces over the last axis (the latent or feature
dimension) where it returns one value per example, and is safe under ``jax.jit``.

The KL terms are the tutorial's closed forms. For :math:`q = \mathcal{N}(\mu, \sigma^2 I)` and the
standard normal prior,

.. math::

    D_{KL}(q \,\|\, \mathcal{N}(0, I)) = -\tfrac12 \sum_i \left[1 + \log\sigma_i^2 - \mu_i^2
    - \sigma_i^2\right],

and for two diagonal Gaussians :math:`p = \mathcal{N}(\mu^{(1)}, \sigma^{(1)2})`,
:math:`q = \mathcal{N}(\mu^{(2)}, \sigma^{(2)2})`,

.. math::

    D_{KL}(p \,\|\, q) = \sum_i \left[\log\frac{\sigma^{(2)}_i}{\sigma^{(1)}_i} - \tfrac12
    + \frac{\sigma^{(1)2}_i + (\mu^{(1)}_i - \mu^{(2)}_i)^2}{2\sigma^{(2)2}_i}\right].
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

_LOG_2PI = math.log(2.0 * math.pi)


def reparameterize(key: Array, mean: ArrayLike, logvar: ArrayLike) -> Array:
    r"""Draws :math:`z = \mu + \sigma \odot \epsilon` with :math:`\epsilon \sim \mathcal{N}(0, I)`.

    The randomness sits in ``epsilon`` alone, so gradients flow to ``mean`` and ``logvar``
    (the tutorial's reparameterization trick).

    Args:
        key: a ``jax.random`` key; the caller splits it, this function consumes it.
        mean: array of shape (..., latent_dim), the Gaussian means.
        logvar: array broadcastable to ``mean``, the log-variances :math:`\log\sigma^2`.

    Returns:
        Array of the broadcast shape of ``mean`` and ``logvar``, one sample per entry.
    """
    mean = jnp.asarray(mean)
    logvar = jnp.asarray(logvar)
    shape = jnp.broadcast_shapes(mean.shape, logvar.shape)
    # The draw keeps the parameters' floating dtype (bfloat16 under mixed precision), float32
    # for anything else; it is made in float32 either way, so a bfloat16 run sees the same
    # noise, rounded.
    dtype = jnp.result_type(mean, logvar)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.float32
    eps = jax.random.normal(key, shape, jnp.promote_types(dtype, jnp.float32)).astype(dtype)
    return mean + jnp.exp(0.5 * logvar) * eps


def kl_standard_normal(mean: ArrayLike, logvar: ArrayLike) -> Array:
    r"""KL divergence :math:`D_{KL}(\mathcal{N}(\mu, \sigma^2 I) \,\|\, \mathcal{N}(0, I))`.

    Computed as :math:`\tfrac12 \sum_i [\mu_i^2 + (e^{l_i} - 1 - l_i)]` with ``expm1`` so the
    per-dimension term stays accurate (and non-negative) for tiny ``|logvar|`` and does not
    overflow for ``logvar`` up to about 88 in float32.

    Args:
        mean: array of shape (..., latent_dim).
        logvar: array broadcastable to ``mean``.

    Returns:
        Array of shape (...): one KL value per example, summed over the last axis.
    """
    mean = jnp.asarray(mean)
    logvar = jnp.asarray(logvar)
    per_dim = 0.5 * (jnp.square(mean) + (jnp.expm1(logvar) - logvar))
    return jnp.sum(per_dim, axis=-1)


def kl_diag_gaussians(
    mean_p: ArrayLike, logvar_p: ArrayLike, mean_q: ArrayLike, logvar_q: ArrayLike
) -> Array:
    r"""KL divergence :math:`D_{KL}(p \,\|\, q)` between two diagonal Gaussians.

    With :math:`d = l_p - l_q` (difference of log-variances) the per-dimension term is
    :math:`\tfrac12 [(e^{d} - 1 - d) + (\mu_p - \mu_q)^2 e^{-l_q}]`, algebraically the tutorial's
    theorem, written so that it is exactly zero when the two Gaussians are equal.

    Args:
        mean_p: array of shape (..., dim), means of ``p``.
        logvar_p: array broadcastable to ``mean_p``, log-variances of ``p``.
        mean_q: array broadcastable to ``mean_p``, means of ``q``.
        logvar_q: array broadcastable to ``mean_p``, log-variances of ``q``.

    Returns:
        Array of shape (...): one KL value per example, summed over the last axis.
    """
    mean_p, logvar_p, mean_q, logvar_q = (
        jnp.asarray(a) for a in (mean_p, logvar_p, mean_q, logvar_q)
    )
    log_ratio = logvar_p - logvar_q
    per_dim = 0.5 * (
        (jnp.expm1(log_ratio) - log_ratio) + jnp.square(mean_p - mean_q) * jnp.exp(-logvar_q)
    )
    return jnp.sum(per_dim, axis=-1)


def gaussian_log_likelihood(x: ArrayLike, mean: ArrayLike, logvar: ArrayLike = 0.0) -> Array:
    r"""Log density of ``x`` under :math:`\mathcal{N}(\mu, \mathrm{diag}(e^{l}))`, with constants.

    .. math::

        \log p(x) = -\tfrac12 \sum_i \left[\log 2\pi + l_i + (x_i - \mu_i)^2 e^{-l_i}\right].

    Args:
        x: array of shape (..., dim), the observations.
        mean: array broadcastable to ``x``.
        logvar: array broadcastable to ``x``; the default 0 is unit variance.

    Returns:
        Array of shape (...): one log density per example, summed over the last axis.
    """
    x, mean, logvar = jnp.asarray(x), jnp.asarray(mean), jnp.asarray(logvar)
    per_dim = -0.5 * (_LOG_2PI + logvar + jnp.square(x - mean) * jnp.exp(-logvar))
    per_dim = jnp.broadcast_to(per_dim, jnp.broadcast_shapes(x.shape, mean.shape, logvar.shape))
    return jnp.sum(per_dim, axis=-1)


def bernoulli_log_likelihood(x: ArrayLike, logits: ArrayLike) -> Array:
    r"""Log probability of ``x`` in [0, 1] under independent Bernoullis with the given logits.

    .. math::

        \log p(x) = \sum_i \left[x_i \log s(a_i) + (1 - x_i) \log(1 - s(a_i))\right],

    with :math:`s` the logistic sigmoid, evaluated through ``log_sigmoid`` so that large logits
    neither overflow nor lose precision. For non-binary ``x`` in [0, 1] this is the continuous
    relaxation commonly used for grey-level images (not a normalized density).

    Args:
        x: array of shape (..., dim) with values in [0, 1].
        logits: array broadcastable to ``x``, the pre-sigmoid decoder outputs.

    Returns:
        Array of shape (...): one log probability per example, summed over the last axis.
    """
    x, logits = jnp.asarray(x), jnp.asarray(logits)
    per_dim = x * jax.nn.log_sigmoid(logits) + (1.0 - x) * jax.nn.log_sigmoid(-logits)
    return jnp.sum(per_dim, axis=-1)
