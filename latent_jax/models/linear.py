r"""The linear VAE: probabilistic PCA's model with an amortized diagonal Gaussian posterior.

Generative model (probabilistic PCA, Tipping & Bishop 1999):

.. math::

    z \sim \mathcal{N}(0, I_Q), \qquad x = W z + \mu + \epsilon, \quad
    \epsilon \sim \mathcal{N}(0, \sigma^2 I_D),

with :math:`W`, :math:`\mu` and :math:`\log\sigma^2` learned. Encoder:
:math:`q(z \mid x) = \mathcal{N}(V x + b, \mathrm{diag}(s))`, linear in :math:`x` with a
learned log-variance vector :math:`\log s` that does not depend on :math:`x` (the exact
posterior's covariance :math:`\sigma^2 (W^\top W + \sigma^2 I)^{-1}` does not either).

Lucas et al. (NeurIPS 2019, "Don't Blame the ELBO!") show that the ELBO of this model has the
maximum-likelihood PPCA solution as its global optimum, where the diagonal posterior is exact
(the columns of :math:`W` are orthogonal) and the ELBO equals the log-likelihood. Train it with
``vae_objective(model, likelihood="gaussian", obs_logvar="learned")``; :func:`exact_elbo`
evaluates its ELBO in closed form (the expectation over :math:`q` of a linear-Gaussian
likelihood needs no sampling).

The call convention is the library's VAE convention (``__call__(x, key) -> (reconstruction,
mean, logvar)``, ``encode``, ``decode``), plus ``observation_logvar()``.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from latent_jax import validation
from latent_jax.gaussian import gaussian_log_likelihood, kl_standard_normal, reparameterize
from latent_jax.models.mlp import _check_features
from latent_jax.models.registry import register_model

__all__ = ["LinearVAE", "decoder_weight", "exact_elbo", "linear_vae_variables"]


@register_model
class LinearVAE(nn.Module):
    """A VAE whose encoder and decoder are affine maps and whose noise variance is learned.

    Parameters (``params``): ``encoder`` (Dense: kernel (input_dim, latent_dim), bias),
    ``encoder_logvar`` (latent_dim,), ``decoder`` (Dense: kernel (latent_dim, input_dim) =
    :math:`W^\\top`, bias = :math:`\\mu`) and ``obs_logvar`` (a scalar, :math:`\\log\\sigma^2`).

    Attributes:
        input_dim: D, the number of features.
        latent_dim: Q, the latent dimension (<= input_dim).
        init_obs_logvar: the initial :math:`\\log\\sigma^2`.
    """

    input_dim: int = 20
    latent_dim: int = 5
    init_obs_logvar: float = 0.0

    def __post_init__(self) -> None:
        validation.check_int("input_dim", self.input_dim, 1)
        validation.check_int("latent_dim", self.latent_dim, 1)
        if self.latent_dim > self.input_dim:
            raise ValueError(
                f"latent_dim must be <= input_dim, got latent_dim={self.latent_dim}, "
                f"input_dim={self.input_dim}"
            )
        if not math.isfinite(float(self.init_obs_logvar)):
            raise ValueError(f"init_obs_logvar must be finite, got {self.init_obs_logvar}")
        super().__post_init__()

    def setup(self) -> None:
        self.encoder = nn.Dense(self.latent_dim)
        self.encoder_logvar = self.param(
            "encoder_logvar", nn.initializers.zeros, (self.latent_dim,)
        )
        self.decoder = nn.Dense(self.input_dim)
        self.obs_logvar = self.param(
            "obs_logvar", nn.initializers.constant(self.init_obs_logvar), ()
        )

    def encode(self, x: Array, *, train: bool = False) -> tuple[Array, Array]:
        """Posterior ``(mean, logvar)``, each (batch, latent_dim), for ``x`` (batch, input_dim)."""
        del train
        mean = self.encoder(_check_features("x", x, self.input_dim))
        return mean, jnp.broadcast_to(self.encoder_logvar, mean.shape)

    def decode(self, z: Array, *, train: bool = False) -> Array:
        """The likelihood mean :math:`Wz + \\mu`, (batch, input_dim), for ``z`` (batch, Q)."""
        del train
        return self.decoder(_check_features("z", z, self.latent_dim))

    def observation_logvar(self) -> Array:
        """The learned noise log-variance :math:`\\log\\sigma^2`, a scalar."""
        return self.obs_logvar

    def __call__(self, x: Array, key: Array, *, train: bool = False) -> tuple[Array, Array, Array]:
        """Encodes, draws ``z = mean + exp(logvar / 2) * eps`` with ``key``, decodes.

        Args:
            x: array of shape (batch, input_dim).
            key: ``jax.random`` key of the reparameterization draw.
            train: ignored; accepted for the library's uniform interface.

        Returns:
            ``(reconstruction, mean, logvar)`` of shapes (batch, input_dim),
            (batch, latent_dim), (batch, latent_dim).
        """
        mean, logvar = self.encode(x, train=train)
        z = reparameterize(key, mean, logvar)
        return self.decode(z, train=train), mean, logvar


def decoder_weight(variables: Any) -> Array:
    """The decoder's :math:`W`, array of shape (input_dim, latent_dim)."""
    return jnp.asarray(variables["params"]["decoder"]["kernel"]).T


@jax.jit
def _exact_elbo_kernel(params: Any, x: Array) -> Array:
    enc, dec = params["encoder"], params["decoder"]
    mean = x @ enc["kernel"] + enc["bias"]
    logvar = jnp.broadcast_to(params["encoder_logvar"], mean.shape)
    obs_logvar = params["obs_logvar"]
    # E_q[log N(x; Wz + mu, s2 I)] = log N(x; W m + mu, s2 I) - tr(W diag(v) W^T) / (2 s2).
    log_lik = gaussian_log_likelihood(x, mean @ dec["kernel"] + dec["bias"], obs_logvar)
    trace = jnp.sum(jnp.exp(params["encoder_logvar"]) * jnp.sum(dec["kernel"] ** 2, axis=1))
    return log_lik - 0.5 * trace * jnp.exp(-obs_logvar) - kl_standard_normal(mean, logvar)


def exact_elbo(model: LinearVAE, variables: Any, x: ArrayLike) -> Array:
    r"""The ELBO of each example in closed form, no sampling.

    .. math::

        \mathcal{L}(x) = \log\mathcal{N}(x; W m + \mu, \sigma^2 I)
        - \frac{1}{2\sigma^2}\sum_j s_j \lVert W_{:,j}\rVert^2
        - D_{KL}(\mathcal{N}(m, \mathrm{diag}(s)) \,\|\, \mathcal{N}(0, I)),

    with :math:`m = Vx + b` the posterior mean.

    Args:
        model: the :class:`LinearVAE` (for its shapes).
        variables: its variables, ``{"params": ...}``.
        x: array of shape (batch, input_dim).

    Returns:
        Array of shape (batch,), the ELBO of each example in nats.
    """
    if not isinstance(model, LinearVAE):
        raise TypeError(f"model must be a LinearVAE, got {type(model).__name__}")
    x = _check_features("x", jnp.asarray(x, jnp.float32), model.input_dim)
    return _exact_elbo_kernel(variables["params"], x)


def linear_vae_variables(
    weight: ArrayLike,
    mean: ArrayLike,
    noise_variance: float | ArrayLike,
    encoder_weight: ArrayLike | None = None,
    encoder_bias: ArrayLike | None = None,
    encoder_logvar: ArrayLike | None = None,
) -> dict[str, Any]:
    r"""Variables of a :class:`LinearVAE` with a given decoder (e.g. the PPCA solution).

    By default the encoder is the exact posterior of the decoder,
    :math:`q(z|x) = \mathcal{N}(M^{-1}W^\top(x - \mu), \sigma^2 M^{-1})` with
    :math:`M = W^\top W + \sigma^2 I`, whose covariance is diagonal when the columns of
    :math:`W` are orthogonal (the PPCA weight of :func:`latent_jax.linear.ppca_params` is); for
    another :math:`W` the diagonal of that covariance is used.

    Args:
        weight: W, array of shape (input_dim, latent_dim).
        mean: :math:`\mu`, array of shape (input_dim,).
        noise_variance: :math:`\sigma^2 > 0`.
        encoder_weight: V, array of shape (input_dim, latent_dim), to override the posterior's.
        encoder_bias: b, array of shape (latent_dim,), to override the posterior's.
        encoder_logvar: array of shape (latent_dim,), to override the posterior's.

    Returns:
        ``{"params": ...}`` for a ``LinearVAE(input_dim, latent_dim)``.
    """
    weight = jnp.asarray(weight, jnp.float32)
    mean = jnp.asarray(mean, jnp.float32)
    if weight.ndim != 2 or mean.shape != (weight.shape[0],):
        raise ValueError(
            f"weight must have shape (input_dim, latent_dim) and mean (input_dim,), got "
            f"{weight.shape} and {mean.shape}"
        )
    noise_variance = jnp.asarray(noise_variance, jnp.float32)
    if noise_variance.shape != () or not bool(noise_variance > 0):
        raise ValueError(f"noise_variance must be a positive scalar, got {noise_variance}")
    q = weight.shape[1]
    m_inv = jnp.linalg.inv(weight.T @ weight + noise_variance * jnp.eye(q))
    post_weight = weight @ m_inv  # x -> m: (x - mu) W M^{-1}, M symmetric
    if encoder_weight is None:
        encoder_weight = post_weight
    if encoder_bias is None:
        encoder_bias = -mean @ post_weight
    if encoder_logvar is None:
        encoder_logvar = jnp.log(noise_variance * jnp.diag(m_inv))
    return {
        "params": {
            "encoder": {
                "kernel": jnp.asarray(encoder_weight, jnp.float32),
                "bias": jnp.asarray(encoder_bias, jnp.float32),
            },
            "encoder_logvar": jnp.asarray(encoder_logvar, jnp.float32),
            "decoder": {"kernel": weight.T, "bias": mean},
            "obs_logvar": jnp.log(noise_variance),
        }
    }
