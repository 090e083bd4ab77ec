r"""How good is a trained VAE: marginal likelihood bounds and posterior-collapse diagnostics.

* :func:`iwae_bound`: the importance-weighted bound of Burda et al. (2016),

  .. math::

      \mathcal{L}_k(x) = \mathbb{E}_{z_{1..k} \sim q(z|x)}\Big[\log \frac1k \sum_{i=1}^k
      \frac{p(x \mid z_i)\, p(z_i)}{q(z_i \mid x)}\Big],

  a lower bound on :math:`\log p(x)` that is non-decreasing in :math:`k`, equals the ELBO at
  :math:`k = 1` and tends to :math:`\log p(x)` as :math:`k \to \infty`. The samples are drawn
  and decoded in chunks and combined with a streaming ``logsumexp``, so memory grows with the
  chunk, not with :math:`k`: ``k`` in the thousands fits. Sample ``i`` always uses the key
  ``fold_in(key, i)``, so the result does not depend on the chunk size.
* :func:`elbo`: the usual estimator (reconstruction term by sampling, closed-form KL).
* :func:`active_units` (Burda et al. §5.2): latent dimension :math:`u` is active when
  :math:`\mathrm{Var}_x(\mathbb{E}_{q(z|x)}[z_u]) > 0.01`; a collapsed dimension's posterior
  mean ignores the input.
* :func:`kl_per_dimension`: :math:`D_{KL}(q(z_u|x)\,\|\,\mathcal{N}(0,1))` averaged over the
  data, one value per latent dimension (a collapsed dimension's is about 0).
* :func:`evaluate_vae`: all of them over a dataset, with the negative log-likelihood estimate
  :math:`-\mathcal{L}_k` in nats and in bits per dimension.

Every function works for any VAE of the library (``encode(x) -> (mean, logvar)`` and
``decode(z) -> output``, see :mod:`latent_jax.objectives`) and any of its likelihoods, named as
in :func:`latent_jax.objectives.vae_objective`:

* ``"gaussian"``: :math:`\mathcal{N}(x; \hat x, e^{l} I)` with ``obs_logvar`` :math:`l` a
  number, or ``"learned"`` for the model's ``observation_logvar()``;
* ``"bernoulli"``: independent Bernoullis with the decoder output as logits (for grey levels in
  [0, 1] the continuous relaxation, not a normalized density);
* ``"sse"``: the summed squared error is :math:`-\log\mathcal{N}(x; \hat x, \tfrac12 I)` up to
  the constant :math:`\tfrac D2\log\pi`, so it is scored as that Gaussian (variance 1/2).

Bounds are per example, in nats, for the data as the model sees them (after any
normalization: a density of standardized pixels differs from one of raw pixels by the log
of the scaling's Jacobian).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array, lax

from latent_jax import validation
from latent_jax.gaussian import (
    kl_standard_normal,
)
from latent_jax.models.inference import apply_inference
from latent_jax.objectives import bound
from latent_jax.objectives.base import split_variables
from latent_jax.objectives.bound import LIKELIHOODS as LIKELIHOODS
from latent_jax.objectives.bound import log_likelihood as log_likelihood
from latent_jax.objectives.vae import noise_logvar

__all__ = [
    "ACTIVE_UNIT_THRESHOLD",
    "active_units",
    "elbo",
    "evaluate_vae",
    "iwae_bound",
    "kl_per_dimension",
    "log_likelihood",
    "psnr",
]

ACTIVE_UNIT_THRESHOLD = 0.01


# A model's own prior density (the VampPrior's), used in the bounds where it has one.
PRIOR_DENSITY = "log_prior"


def _noise_logvar(model: Any, variables: Any, obs_logvar: Any) -> Any:
    """The observation log-variance: ``obs_logvar``, or the model's when it is learned."""
    params, model_state = split_variables(variables)
    learned = isinstance(obs_logvar, str)
    return noise_logvar(model, params, model_state, learned, obs_logvar)


def _encode(model: Any, variables: Any, x: Array) -> tuple[Array, Array]:
    out = apply_inference(model, variables, x, method="encode")
    if not isinstance(out, tuple | list) or len(out) != 2:
        raise TypeError(f"{type(model).__name__}.encode must return (mean, logvar) for a VAE")
    mean, logvar = out
    return jnp.reshape(mean, (x.shape[0], -1)), jnp.reshape(logvar, (x.shape[0], -1))


def _decode(model: Any, variables: Any, z: Array) -> Array:
    return apply_inference(model, variables, z, method="decode")


def _log_prior(model: Any, variables: Any, z: Array) -> Array | None:
    """``log p(z)`` of a model with a prior of its own (``log_prior``, a VampPrior), shape
    ``z.shape[:-1]``; ``None`` for the standard normal."""
    if not callable(getattr(type(model), PRIOR_DENSITY, None)):
        return None
    flat = jnp.reshape(z, (-1, z.shape[-1]))
    return jnp.reshape(apply_inference(model, variables, flat, method=PRIOR_DENSITY), z.shape[:-1])


def _log_weights(
    model: Any,
    variables: Any,
    x: Array,
    mean: Array,
    logvar: Array,
    keys: Array,
    likelihood: str,
    noise: Any,
) -> Array:
    """log p(x, z_i) - log q(z_i | x) for the samples of ``keys`` (m,): shape (m, batch)."""
    m, batch = keys.shape[0], x.shape[0]
    eps = jax.vmap(lambda k: jax.random.normal(k, mean.shape, mean.dtype))(keys)
    z = bound.draw_latents(mean, logvar, eps)
    output = _decode(model, variables, jnp.reshape(z, (m * batch, -1)))
    x_rep = jnp.broadcast_to(x, (m, *x.shape)).reshape((m * batch, *x.shape[1:]))
    log_px = log_likelihood(x_rep, output, likelihood, noise).reshape((m, batch))
    log_qz = bound.log_posterior_of_noise(logvar, eps)
    return bound.log_weights(log_px, z, log_qz, _log_prior(model, variables, z))


@functools.partial(
    jax.jit, static_argnames=("model", "num_samples", "chunk_size", "likelihood", "obs_logvar")
)
def _iwae_kernel(
    variables: Any,
    x: Array,
    key: Array,
    *,
    model: Any,
    num_samples: int,
    chunk_size: int,
    likelihood: str,
    obs_logvar: Any,
) -> Array:
    mean, logvar = _encode(model, variables, x)
    noise = _noise_logvar(model, variables, obs_logvar)
    n_chunks = -(-num_samples // chunk_size)

    def body(acc: Array, chunk: Array) -> tuple[Array, None]:
        index = chunk * chunk_size + jnp.arange(chunk_size)
        keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(index)
        log_w = _log_weights(model, variables, x, mean, logvar, keys, likelihood, noise)
        # Samples past num_samples (the last chunk's padding) get weight zero.
        log_w = jnp.where((index < num_samples)[:, None], log_w, -jnp.inf)
        return jnp.logaddexp(acc, jax.nn.logsumexp(log_w, axis=0)), None

    start = jnp.full((x.shape[0],), -jnp.inf, mean.dtype)
    total, _ = lax.scan(body, start, jnp.arange(n_chunks))
    return total - math.log(num_samples)


def iwae_bound(
    model: Any,
    variables: Mapping[str, Any],
    x: Any,
    key: Array,
    *,
    num_samples: int,
    likelihood: str = "gaussian",
    obs_logvar: float | str = 0.0,
    chunk_size: int = 128,
) -> Array:
    r"""The importance-weighted bound :math:`\mathcal{L}_k` of each example (one draw of it).

    Args:
        model: a linen VAE with ``encode`` and ``decode``.
        variables: its variables (``{"params": ..., **collections}``); inference mode.
        x: array of shape (batch, ...features).
        key: a ``jax.random`` key; sample ``i`` draws its noise from ``fold_in(key, i)``.
        num_samples: k >= 1.
        likelihood: ``"gaussian"``, ``"bernoulli"`` or ``"sse"``.
        obs_logvar: the Gaussian's log-variance, or ``"learned"``.
        chunk_size: samples drawn and decoded at once (memory ~ chunk_size * batch * features);
            the result does not depend on it.

    Returns:
        Array of shape (batch,): :math:`\log \frac1k \sum_i w_i` in nats (k = 1: the ELBO
        estimator with the KL term sampled).
    """
    bound.check_likelihood(likelihood, obs_logvar)
    num_samples = validation.check_int("num_samples", num_samples, 1)
    chunk_size = min(validation.check_int("chunk_size", chunk_size, 1), num_samples)
    return _iwae_kernel(
        variables,
        validation.check_rows("x", x),
        validation.check_key("key", key),
        model=model,
        num_samples=num_samples,
        chunk_size=chunk_size,
        likelihood=likelihood,
        obs_logvar=obs_logvar,
    )


@functools.partial(jax.jit, static_argnames=("model", "num_samples", "likelihood", "obs_logvar"))
def _elbo_kernel(
    variables: Any,
    x: Array,
    key: Array,
    *,
    model: Any,
    num_samples: int,
    likelihood: str,
    obs_logvar: Any,
) -> Array:
    mean, logvar = _encode(model, variables, x)
    noise = _noise_logvar(model, variables, obs_logvar)

    own_prior = callable(getattr(type(model), PRIOR_DENSITY, None))

    def one(i: Array) -> Array:
        eps = jax.random.normal(jax.random.fold_in(key, i), mean.shape, mean.dtype)
        z = bound.draw_latents(mean, logvar, eps)
        log_px = log_likelihood(x, _decode(model, variables, z), likelihood, noise)
        if own_prior:  # no closed-form KL: log p(z) - log q(z|x) at the draw
            log_pz = _log_prior(model, variables, z)
            return log_px + log_pz - bound.log_posterior_of_noise(logvar, eps)
        return log_px

    terms = lax.map(one, jnp.arange(num_samples))
    return jnp.mean(terms, axis=0) if own_prior else bound.elbo(terms, mean, logvar)


def elbo(
    model: Any,
    variables: Mapping[str, Any],
    x: Any,
    key: Array,
    *,
    num_samples: int = 1,
    likelihood: str = "gaussian",
    obs_logvar: float | str = 0.0,
) -> Array:
    r"""The ELBO estimator :math:`\frac1S\sum_s \log p(x|z_s) - D_{KL}(q(z|x)\,\|\,p(z))`.

    For a model with a prior of its own (a ``log_prior(z)`` method, as
    :class:`latent_jax.models.vampprior.VampPrior`) the KL term has no closed form and every
    term is sampled: :math:`\frac1S\sum_s [\log p(x|z_s) + \log p(z_s) - \log q(z_s|x)]`;
    :func:`iwae_bound` scores such a model under its prior too. Otherwise:
    the KL term in closed form, the reconstruction term averaged over ``num_samples`` draws
    (sample ``s`` uses ``fold_in(key, s)``, as in :func:`iwae_bound`). Its expectation is
    :math:`\mathcal{L}_1`; with β = 1 it is minus the loss of
    :func:`latent_jax.objectives.vae_objective` (except for ``"sse"``, scored here as a
    normalized Gaussian).

    Args:
        model: a linen VAE with ``encode`` and ``decode``.
        variables: its variables.
        x: array of shape (batch, ...features).
        key: a ``jax.random`` key.
        num_samples: S >= 1.
        likelihood: ``"gaussian"``, ``"bernoulli"`` or ``"sse"``.
        obs_logvar: the Gaussian's log-variance, or ``"learned"``.

    Returns:
        Array of shape (batch,), in nats.
    """
    bound.check_likelihood(likelihood, obs_logvar)
    num_samples = validation.check_int("num_samples", num_samples, 1)
    return _elbo_kernel(
        variables,
        validation.check_rows("x", x),
        validation.check_key("key", key),
        model=model,
        num_samples=num_samples,
        likelihood=likelihood,
        obs_logvar=obs_logvar,
    )


@functools.partial(jax.jit, static_argnames=("model",))
def _encode_kernel(variables: Any, x: Array, *, model: Any) -> tuple[Array, Array]:
    return _encode(model, variables, x)


def _batches(x: Array, batch_size: int) -> list[tuple[Array, int]]:
    """Rows in batches of one shape (the last padded by repeating row 0): (batch, n_real)."""
    n = x.shape[0]
    size = min(batch_size, n)
    out = []
    for start in range(0, n, size):
        rows = x[start : start + size]
        real = rows.shape[0]
        if real < size:
            rows = jnp.concatenate([rows, jnp.broadcast_to(x[:1], (size - real, *x.shape[1:]))])
        out.append((rows, real))
    return out


def _posterior(model: Any, variables: Any, x: Any, batch_size: int) -> tuple[Array, Array]:
    x = validation.check_rows("x", x)
    batch_size = validation.check_int("batch_size", batch_size, 1)
    means, logvars = [], []
    for rows, real in _batches(x, batch_size):
        mean, logvar = _encode_kernel(variables, rows, model=model)
        means.append(mean[:real])
        logvars.append(logvar[:real])
    return jnp.concatenate(means), jnp.concatenate(logvars)


def active_units(
    model: Any,
    variables: Mapping[str, Any],
    x: Any,
    *,
    threshold: float = ACTIVE_UNIT_THRESHOLD,
    batch_size: int = 512,
) -> tuple[int, np.ndarray]:
    r"""Active latent units: :math:`A_u = \mathrm{Var}_x(\mathbb{E}_{q(z|x)}[z_u]) > 0.01`.

    Args:
        model: a linen VAE with ``encode``.
        variables: its variables.
        x: array of shape (n, ...features), n >= 2.
        threshold: the activity threshold (Burda et al. use 0.01).
        batch_size: rows encoded at once.

    Returns:
        ``(count, activity)``: the number of active units and the per-dimension variance of
        the posterior mean over the data (population variance), array of shape (latent_dim,).
    """
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or threshold < 0:
        raise ValueError(f"threshold must be a number >= 0, got {threshold!r}")
    mean, _ = _posterior(model, variables, x, batch_size)
    if mean.shape[0] < 2:
        raise ValueError(f"x needs at least 2 rows for a variance, got {mean.shape[0]}")
    activity = np.var(np.asarray(mean, np.float64), axis=0)
    return int(np.sum(activity > threshold)), activity


def kl_per_dimension(
    model: Any, variables: Mapping[str, Any], x: Any, *, batch_size: int = 512
) -> np.ndarray:
    r""":math:`\frac1N\sum_n D_{KL}(q(z_u|x_n)\,\|\,\mathcal{N}(0, 1))` for every dimension u.

    Args:
        model: a linen VAE with ``encode``.
        variables: its variables.
        x: array of shape (n, ...features).
        batch_size: rows encoded at once.

    Returns:
        Array of shape (latent_dim,), in nats; its sum is the mean KL term of the ELBO.
    """
    mean, logvar = _posterior(model, variables, x, batch_size)
    per_dim = kl_standard_normal(mean[..., None], logvar[..., None])
    return np.asarray(jnp.mean(per_dim, axis=0))


def evaluate_vae(
    model: Any,
    variables: Mapping[str, Any],
    x: Any,
    key: Array,
    *,
    num_samples: int = 1000,
    likelihood: str = "gaussian",
    obs_logvar: float | str = 0.0,
    elbo_samples: int = 100,
    batch_size: int = 64,
    chunk_size: int = 128,
) -> dict[str, Any]:
    """Marginal-likelihood estimates and collapse diagnostics of a VAE over a dataset.

    Batch ``b`` of the data uses the keys ``fold_in(key, 2b)`` (IWAE) and ``fold_in(key, 2b+1)``
    (ELBO).

    Args:
        model: a linen VAE with ``encode`` and ``decode``.
        variables: its variables.
        x: array of shape (n, ...features), n >= 2.
        key: a ``jax.random`` key.
        num_samples: k of the IWAE bound.
        likelihood: ``"gaussian"``, ``"bernoulli"`` or ``"sse"``.
        obs_logvar: the Gaussian's log-variance, or ``"learned"``.
        elbo_samples: draws per example of the ELBO's reconstruction term.
        batch_size: examples per compiled call.
        chunk_size: IWAE samples decoded at once.

    Returns:
        A dict of floats: ``elbo`` and ``iwae`` (means per example, nats) and their standard
        errors over the examples ``elbo_sem``, ``iwae_sem``; ``nll_nats`` (``-iwae``),
        ``nll_bits_per_dim``; ``num_samples``; ``active_units`` and ``latent_dim``;
        ``kl_per_dim`` (list) and ``kl`` (its sum); ``posterior_mean_variance`` (list, the
        activity of each unit); ``n_examples`` and ``n_features``.
    """
    bound.check_likelihood(likelihood, obs_logvar)
    data = validation.check_rows("x", x)
    key = validation.check_key("key", key)
    num_samples = validation.check_int("num_samples", num_samples, 1)
    elbo_samples = validation.check_int("elbo_samples", elbo_samples, 1)
    batch_size = validation.check_int("batch_size", batch_size, 1)
    chunk_size = min(validation.check_int("chunk_size", chunk_size, 1), num_samples)
    common = {"model": model, "likelihood": likelihood, "obs_logvar": obs_logvar}
    iwae_values, elbo_values = [], []
    for b, (rows, real) in enumerate(_batches(data, batch_size)):
        iwae_batch = _iwae_kernel(
            variables,
            rows,
            jax.random.fold_in(key, 2 * b),
            num_samples=num_samples,
            chunk_size=chunk_size,
            **common,
        )
        estimate = _elbo_kernel(
            variables, rows, jax.random.fold_in(key, 2 * b + 1), num_samples=elbo_samples, **common
        )
        iwae_values.append(np.asarray(iwae_batch[:real], np.float64))
        elbo_values.append(np.asarray(estimate[:real], np.float64))
    iwae_all, elbo_all = np.concatenate(iwae_values), np.concatenate(elbo_values)
    n, n_features = int(data.shape[0]), int(np.prod(data.shape[1:]))
    count, activity = active_units(model, variables, data)
    kl_dims = kl_per_dimension(model, variables, data)
    iwae_mean = float(np.mean(iwae_all))
    sem = 1.0 / math.sqrt(max(n - 1, 1))
    return {
        "elbo": float(np.mean(elbo_all)),
        "elbo_sem": float(np.std(elbo_all) * sem),
        "iwae": iwae_mean,
        "iwae_sem": float(np.std(iwae_all) * sem),
        "num_samples": num_samples,
        "nll_nats": -iwae_mean,
        "nll_bits_per_dim": -iwae_mean / (n_features * math.log(2.0)),
        "active_units": count,
        "latent_dim": int(activity.shape[0]),
        "posterior_mean_variance": activity.tolist(),
        "kl_per_dim": kl_dims.tolist(),
        "kl": float(np.sum(kl_dims)),
        "n_examples": n,
        "n_features": n_features,
    }


def psnr(mse: float, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(peak**2 / mse)``.

    Args:
        mse: the mean squared error per value, >= 0.
        peak: the largest value the signal can take (1.0 for images in [0, 1]), > 0.

    Returns:
        The PSNR; ``inf`` for ``mse == 0``.

    Raises:
        ValueError: for a negative or non-finite ``mse`` or a non-positive ``peak``.
    """
    if not math.isfinite(mse) or mse < 0:
        raise ValueError(f"mse must be a finite number >= 0, got mse={mse!r}")
    if not math.isfinite(peak) or peak <= 0:
        raise ValueError(f"peak must be a finite number > 0, got peak={peak!r}")
    return math.inf if mse == 0 else 10.0 * math.log10(peak**2 / mse)
