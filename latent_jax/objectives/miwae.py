r"""The bounds of Rainforth, Kosiorek, Le, Maddison, Igl, Wood & Teh (2018), "Tighter
Variational Bounds are Not Necessarily Better" (ICML): MIWAE, PIWAE and CIWAE.

The paper's central result: with :math:`K` importance weights per estimate and :math:`M`
independent estimates averaged, the gradient estimator of the importance-weighted bound
(Burda et al. 2016; :mod:`~latent_jax.objectives.iwae`)

.. math::

    \Delta_{M,K} = \frac1M \sum_{m=1}^M \nabla \log \hat Z_{m,K}, \qquad
    \hat Z_{m,K} = \frac1K \sum_{k=1}^K w_{m,k}, \quad
    w_{m,k} = \frac{p(x \mid z_{m,k})\, p(z_{m,k})}{q(z_{m,k} \mid x)},

has a signal-to-noise ratio :math:`|\mathbb{E}[\Delta]| / \sigma[\Delta]` of order
:math:`\sqrt{MK}` for the generative network's parameters but :math:`\sqrt{M/K}` for the
inference network's (the paper's Theorem 1): a tighter bound (larger K) helps the decoder and
hurts the encoder. Its three estimators, each a function of the same importance log-weights
(its section "New estimators"):

* ``"miwae"`` (:func:`miwae_objective`): the multiply importance-weighted bound
  :math:`\frac1M \sum_m \log \frac1K \sum_k w_{m,k}`, M·K draws;
* ``"piwae"`` (:func:`piwae_objective`): partially importance-weighted: the generative network
  trained on the IWAE bound of all M·K draws, the inference network on the MIWAE(M, K) bound of
  the same draws;
* ``"ciwae"`` (:func:`ciwae_objective`): the combination
  :math:`\beta\, \mathrm{ELBO} + (1 - \beta)\, \mathrm{IWAE}_K` of K draws.

Every log-weight is :func:`~latent_jax.objectives.bound.log_weights` with
:math:`\log q` from the noise (:func:`~latent_jax.objectives.bound.log_posterior_of_noise`) and
:math:`\log p(x|z)` minus :func:`~latent_jax.objectives.vae.reconstruction_term` for the
likelihood, as in :func:`~latent_jax.objectives.iwae_objective` (for ``"sse"`` minus the summed
squared error, which shifts every bound by a constant and changes no gradient).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import Array

from latent_jax import validation
from latent_jax.gaussian import kl_standard_normal
from latent_jax.objectives import bound
from latent_jax.objectives.base import (
    Batch,
    Context,
    Metrics,
    Objective,
    context_loss,
    masked_mean,
)
from latent_jax.objectives.registry import Option, register_objective
from latent_jax.objectives.vae import (
    BINARIZE,
    LIKELIHOOD,
    EncoderDecoderTerms,
    binarized,
    check_posterior,
)

__all__ = [
    "DEFAULT_BETA",
    "DEFAULT_CIWAE_K",
    "DEFAULT_K",
    "DEFAULT_M",
    "ciwae_objective",
    "miwae_objective",
    "multiply_importance_weighted_bound",
    "piwae_objective",
]

# The paper's MNIST experiments spend a budget of M·K = 64 importance weights per example
# (its section "Experiments", Table 1); (M, K) = (8, 8) is one of the settings it reports for
# MIWAE and PIWAE, and beta = 0.5 (with the K = 64 weights of the budget) one of CIWAE's.
DEFAULT_M = 8
DEFAULT_K = 8
DEFAULT_CIWAE_K = 64
DEFAULT_BETA = 0.5
# PIWAE's generative network: the parameter subtree every VAE of the library names so.
DECODER = "decoder"


def multiply_importance_weighted_bound(log_w: Array) -> Array:
    r"""The MIWAE bound of each example, :math:`\frac1M \sum_{m=1}^M \log \frac1K
    \sum_{k=1}^K w_{m,k}`: the mean over M groups of the importance-weighted bound of each
    group (:func:`~latent_jax.objectives.bound.importance_weighted_bound`).

    ``M = 1`` gives the IWAE bound with K weights; ``K = 1`` the mean of the M log-weights,
    the ELBO estimator with every term sampled.

    Args:
        log_w: log-weights, array of shape (M, K, batch).

    Returns:
        Array of shape (batch,).
    """
    return jnp.mean(jax.vmap(bound.importance_weighted_bound)(log_w), axis=0)


class _Weights(NamedTuple):
    r"""S draws per example through a VAE (:class:`_Sampler`).

    Attributes:
        log_w: the importance log-weights, array of shape (S, batch).
        log_px: :math:`\log p(x|z_s)`, shape (S, batch).
        mean: the posterior means, shape (batch, latent_dim).
        logvar: the posterior log-variances, shape (batch, latent_dim).
        model_state: the model's collections after the encoder and the decoder.
    """

    log_w: Array
    log_px: Array
    mean: Array
    logvar: Array
    model_state: dict


class _Sampler(EncoderDecoderTerms):
    """A VAE's importance log-weights for S draws per example, decoded as one batch of S ×
    batch rows (the rows of draw s are s·batch ... (s+1)·batch - 1, with the batch's mask)."""

    def keys(self, batch: Batch, key: Array) -> tuple[Batch, Array, Array]:
        """The batch (binarized with a key split off first, as iwae_objective does) and the
        draws' and the model's keys."""
        batch, key = binarized(batch, key, self.binarize)
        sample_key, model_key = jax.random.split(key)
        return batch, sample_key, model_key

    def __call__(
        self,
        params: Any,
        model_state: Mapping[str, Any],
        batch: Batch,
        sample_key: Array,
        model_key: Array,
        draws: int,
        train: bool,
    ) -> _Weights:
        posterior, state = self.encoder.apply(params, model_state, batch, model_key, train)
        mean, logvar = check_posterior(posterior, batch.x)
        n = batch.x.shape[0]
        eps = jax.random.normal(sample_key, (draws, *mean.shape), mean.dtype)
        z = bound.draw_latents(mean, logvar, eps)
        x_rep = jnp.broadcast_to(batch.x, (draws, *batch.x.shape))
        x_rep = x_rep.reshape((draws * n, *batch.x.shape[1:]))
        rows = Batch(z.reshape((draws * n, -1)), jnp.tile(batch.mask, draws))
        output, state = self.decoder.apply(params, state, rows, model_key, train)
        rec = self.reconstruction(params, model_state, output, rows._replace(x=x_rep))
        log_px = -rec.reshape((draws, n))
        log_w = bound.log_weights(log_px, z, bound.log_posterior_of_noise(logvar, eps))
        return _Weights(log_w, log_px, mean, logvar, state)


def _sampled_terms(weights: _Weights, mask: Array) -> Metrics:
    """The terms every estimator here reports besides its own bound (masked means): the
    ELBO estimated from all S draws (the mean log-weight), the reconstruction term averaged
    over them and the closed-form KL (for comparison with the other VAE objectives)."""
    return {
        "elbo": masked_mean(jnp.mean(weights.log_w, axis=0), mask),
        "reconstruction": masked_mean(-jnp.mean(weights.log_px, axis=0), mask),
        "kl": masked_mean(kl_standard_normal(weights.mean, weights.logvar), mask),
    }


def _check_draws(m: Any, k: Any) -> tuple[int, int]:
    return validation.check_int("m", m, 1), validation.check_int("k", k, 1)


def miwae_objective(
    model: nn.Module,
    m: int = DEFAULT_M,
    k: int = DEFAULT_K,
    *,
    likelihood: str = "sse",
    binarize: bool = False,
    obs_logvar: float | str = 0.0,
) -> Objective:
    r"""The multiply importance-weighted autoencoder's objective (Rainforth et al. 2018).

    Per example :math:`x` (rows of shape (batch, ...features)), M·K draws
    :math:`z_{m,k} \sim q(z|x)` and minus the MIWAE bound (the paper's section "New
    estimators")

    .. math::

        \mathrm{MIWAE}_{M,K}(x) = \frac1M \sum_{m=1}^M \log \frac1K \sum_{k=1}^K w_{m,k},
        \qquad w_{m,k} = \frac{p(x \mid z_{m,k})\, p(z_{m,k})}{q(z_{m,k} \mid x)},

    then the masked mean over the batch. Its expectation is the IWAE bound with K weights; its
    gradient averages M independent IWAE gradients, so the encoder's signal-to-noise ratio
    grows as :math:`\sqrt{M/K}` (the paper's Theorem 1). ``K = 1`` is the ELBO estimator with M
    draws (every term sampled: the mean of the M log-weights), ``M = 1`` the IWAE bound with K
    draws (the value and gradient of ``iwae_objective(model, k)`` for ``k >= 2`` and the same
    key, to float32 round-off: the same draws). The M·K latents of the batch are decoded as one
    batch of M·K × batch rows.

    Defaults: M = K = 8, a budget of 64 weights per example as in the paper's MNIST
    experiments (its section "Experiments", Table 1, where (8, 8) is one of the settings
    compared with IWAE at K = 64).

    Keys, as in :func:`~latent_jax.objectives.iwae_objective`: with ``binarize`` a
    binarization key is split off first (evaluation on the engine's fixed key), then
    ``sample_key, model_key = split(key)``; the draws are ``normal(sample_key, (m * k, batch,
    latent_dim))``, draw ``s`` in group ``s // k``.

    Metrics (masked means over examples, float32): ``loss`` (:math:`-\mathrm{MIWAE}_{M,K}`,
    exactly minus ``miwae_bound``), ``miwae_bound``, ``iwae_bound`` (the IWAE bound of all
    M·K draws of the example, for comparison), ``elbo`` (the mean of the M·K log-weights),
    ``reconstruction`` (minus :math:`\log p(x|z)` averaged over the draws) and ``kl`` (the
    closed-form :math:`D_{KL}(q(z|x)\,\|\,\mathcal{N}(0, I))`, not part of the loss).

    Args:
        model: a linen VAE with ``encode(x) -> (mean, logvar)``, ``decode(z)`` (each may
            declare ``train`` and ``mask``) and ``model(x, key)`` for initialization.
        m: M, the number of independent importance-weighted estimates averaged, >= 1.
        k: K, the importance weights of each estimate, >= 1.
        likelihood: ``"sse"``, ``"gaussian"`` or ``"bernoulli"`` (logits).
        binarize: train on dynamically binarized inputs (values in [0, 1]).
        obs_logvar: the Gaussian likelihood's log-variance, or ``"learned"``.

    Returns:
        The :class:`~latent_jax.objectives.Objective`, named ``"miwae"``.

    Raises:
        TypeError: for a model without ``encode``/``decode`` or a non-bool ``binarize``.
        ValueError: for ``m < 1``, ``k < 1`` or an unknown likelihood.
    """
    m, k = _check_draws(m, k)
    sampler = _Sampler(model, likelihood=likelihood, binarize=binarize, obs_logvar=obs_logvar)

    @context_loss
    def loss(
        params: Any, model_state: Mapping[str, Any], batch: Batch, key: Array, context: Context
    ) -> tuple[Array, tuple[Metrics, dict]]:
        batch, sample_key, model_key = sampler.keys(batch, key)
        weights = sampler(params, model_state, batch, sample_key, model_key, m * k, context.train)
        n = batch.x.shape[0]
        miwae = multiply_importance_weighted_bound(weights.log_w.reshape((m, k, n)))
        miwae = masked_mean(miwae, batch.mask)
        iwae = masked_mean(bound.importance_weighted_bound(weights.log_w), batch.mask)
        value = -miwae
        metrics = {
            "loss": value,
            "miwae_bound": miwae,
            "iwae_bound": iwae,
            **_sampled_terms(weights, batch.mask),
        }
        return value, (metrics, weights.model_state)

    spec = {
        "m": m,
        "k": k,
        "likelihood": likelihood,
        "binarize": sampler.binarize,
        "obs_logvar": obs_logvar,
    }
    return Objective(init=sampler.init, loss=loss, model=model, name="miwae", spec=spec)


def _check_decoder(params: Any, model: Any) -> None:
    if not isinstance(params, Mapping) or DECODER not in params:
        found = sorted(params) if isinstance(params, Mapping) else type(params).__name__
        raise ValueError(
            f"piwae trains the generative network, params[{DECODER!r}], on the IWAE bound and "
            f"every other parameter on the MIWAE bound, and {type(model).__name__} has no "
            f"{DECODER!r} parameters (its parameters: {found}); use miwae or iwae for this model"
        )


def _with_one_part_trained(params: Mapping[str, Any], decoder: bool) -> dict:
    """``params`` with a gradient only into the decoder (``decoder=True``) or only into every
    other parameter (``decoder=False``); the other part is stopped (same values)."""
    return {
        name: tree if (name == DECODER) == decoder else jax.lax.stop_gradient(tree)
        for name, tree in params.items()
    }


def piwae_objective(
    model: nn.Module,
    m: int = DEFAULT_M,
    k: int = DEFAULT_K,
    *,
    likelihood: str = "sse",
    binarize: bool = False,
    obs_logvar: float | str = 0.0,
) -> Objective:
    r"""The partially importance-weighted autoencoder's objective (Rainforth et al. 2018).

    The paper's PIWAE (section "New estimators") trains each network on its own target, from
    the same M·K draws per example: the generative network :math:`\theta` on the IWAE bound
    with all M·K weights (tighter is better for it: its gradient's signal-to-noise ratio grows
    as :math:`\sqrt{MK}`), the inference network :math:`\phi` on the MIWAE(M, K) bound (see
    :func:`miwae_objective`)

    .. math::

        \nabla_\theta\, \frac{1}{|B|} \sum_x \log \frac{1}{MK} \sum_{m,k} w_{m,k}, \qquad
        \nabla_\phi\, \frac{1}{|B|} \sum_x \frac1M \sum_m \log \frac1K \sum_k w_{m,k}.

    Here :math:`\theta` is ``params["decoder"]`` (every VAE of the library names its decoder
    so) and :math:`\phi` every other parameter (the encoder, and a learned observation noise
    that lives outside the decoder). Both targets are one loss and one ``jax.grad``: each bound
    is computed with a parameter tree whose other part is under ``jax.lax.stop_gradient``
    (the same values: the two passes compute the same numbers), and the loss is

    .. math::

        -\left(\mathrm{IWAE}_{MK}[\theta, \bar\phi] + \mathrm{MIWAE}_{M,K}[\bar\theta, \phi]
        - \overline{\mathrm{MIWAE}_{M,K}}\right)

    (bars: stopped), whose value is exactly minus the IWAE bound and whose gradient is the
    IWAE bound's for the decoder and the MIWAE bound's for the rest: the decoder's gradient is
    that of ``iwae_objective(model, m * k)`` and the encoder's that of
    ``miwae_objective(model, m, k)`` for the same key, to float32 round-off. ``M = 1`` is IWAE.

    Defaults: M = K = 8 (see :func:`miwae_objective`). Keys and draws as in
    :func:`miwae_objective` (draw ``s`` in group ``s // k``).

    Metrics (masked means over examples, float32): ``loss`` (exactly minus ``iwae_bound``,
    the generative network's target; the inference network's is ``miwae_bound``),
    ``iwae_bound`` (M·K weights), ``miwae_bound``, ``elbo`` (the mean of the M·K
    log-weights), ``reconstruction`` and ``kl`` (closed form), as :func:`miwae_objective`.
    Under BatchNorm in training mode the new statistics are those of the first pass (both
    passes see the same rows).

    Args:
        model: a linen VAE with ``encode``, ``decode`` and ``model(x, key)``, with its
            decoder's parameters under ``params["decoder"]``.
        m: M, >= 1.
        k: K, >= 1.
        likelihood: ``"sse"``, ``"gaussian"`` or ``"bernoulli"`` (logits).
        binarize: train on dynamically binarized inputs (values in [0, 1]).
        obs_logvar: the Gaussian likelihood's log-variance, or ``"learned"``.

    Returns:
        The :class:`~latent_jax.objectives.Objective`, named ``"piwae"``.

    Raises:
        TypeError: for a model without ``encode``/``decode`` or a non-bool ``binarize``.
        ValueError: for ``m < 1``, ``k < 1`` or an unknown likelihood; at ``init`` or in the
            loss, for parameters without a ``"decoder"`` subtree (naming the model).
    """
    m, k = _check_draws(m, k)
    sampler = _Sampler(model, likelihood=likelihood, binarize=binarize, obs_logvar=obs_logvar)

    def init(key: Array, x: Array) -> dict:
        variables = sampler.init(key, x)
        _check_decoder(variables.get("params", {}), model)
        return variables

    @context_loss
    def loss(
        params: Any, model_state: Mapping[str, Any], batch: Batch, key: Array, context: Context
    ) -> tuple[Array, tuple[Metrics, dict]]:
        _check_decoder(params, model)
        batch, sample_key, model_key = sampler.keys(batch, key)
        draws, train, n = m * k, context.train, batch.x.shape[0]
        generative = sampler(
            _with_one_part_trained(params, decoder=True),
            model_state,
            batch,
            sample_key,
            model_key,
            draws,
            train,
        )
        inference = sampler(
            _with_one_part_trained(params, decoder=False),
            model_state,
            batch,
            sample_key,
            model_key,
            draws,
            train,
        )
        iwae = masked_mean(bound.importance_weighted_bound(generative.log_w), batch.mask)
        miwae = multiply_importance_weighted_bound(inference.log_w.reshape((m, k, n)))
        miwae = masked_mean(miwae, batch.mask)
        # Value -iwae exactly (x - x = 0); gradient: IWAE's for the decoder, MIWAE's for the
        # rest (each bound sees only its own part of the parameters unstopped).
        value = -(iwae + (miwae - jax.lax.stop_gradient(miwae)))
        metrics = {
            "loss": value,
            "iwae_bound": iwae,
            "miwae_bound": miwae,
            **_sampled_terms(generative, batch.mask),
        }
        return value, (metrics, generative.model_state)

    spec = {
        "m": m,
        "k": k,
        "likelihood": likelihood,
        "binarize": sampler.binarize,
        "obs_logvar": obs_logvar,
    }
    return Objective(init=init, loss=loss, model=model, name="piwae", spec=spec)


def ciwae_objective(
    model: nn.Module,
    k: int = DEFAULT_CIWAE_K,
    *,
    beta: float = DEFAULT_BETA,
    likelihood: str = "sse",
    binarize: bool = False,
    obs_logvar: float | str = 0.0,
) -> Objective:
    r"""The combination importance-weighted autoencoder's objective (Rainforth et al. 2018).

    Per example, K draws :math:`z_k \sim q(z|x)` and minus the CIWAE bound (the paper's
    section "New estimators"), a convex combination of the ELBO and the IWAE bound estimated
    from the same draws:

    .. math::

        \mathrm{CIWAE}_{\beta,K}(x) = \beta\, \frac1K \sum_{k=1}^K \log w_k
        + (1 - \beta) \log \frac1K \sum_{k=1}^K w_k,

    then the masked mean over the batch (the loss is computed from the two reported masked
    means). :math:`\beta = 1` is the ELBO estimator with K draws (every term sampled),
    :math:`\beta = 0` the IWAE bound (``iwae_objective(model, k)``'s value and gradient for
    ``k >= 2`` and the same key, to float32 round-off).

    Defaults: β = 0.5 with K = 64, the budget of the paper's MNIST experiments (its section
    "Experiments", Table 1, where β = 0.5 is one of the settings compared with IWAE).

    Keys and draws as in :func:`~latent_jax.objectives.iwae_objective`: ``normal(sample_key,
    (k, batch, latent_dim))``.

    Metrics (masked means over examples, float32): ``loss`` (exactly minus ``ciwae_bound``),
    ``ciwae_bound`` (``beta * elbo + (1 - beta) * iwae_bound`` of the reported values),
    ``elbo`` (the mean of the K log-weights), ``iwae_bound``, ``reconstruction`` (averaged
    over the draws) and ``kl`` (closed form, not part of the loss).

    Args:
        model: a linen VAE with ``encode``, ``decode`` and ``model(x, key)``.
        k: K, the draws per example, >= 1 (at ``k = 1`` every β gives the sampled ELBO).
        beta: β in [0, 1], the ELBO's weight.
        likelihood: ``"sse"``, ``"gaussian"`` or ``"bernoulli"`` (logits).
        binarize: train on dynamically binarized inputs (values in [0, 1]).
        obs_logvar: the Gaussian likelihood's log-variance, or ``"learned"``.

    Returns:
        The :class:`~latent_jax.objectives.Objective`, named ``"ciwae"``.

    Raises:
        TypeError: for a model without ``encode``/``decode``, a non-real ``beta`` or a
            non-bool ``binarize``.
        ValueError: for ``k < 1``, β outside [0, 1] or an unknown likelihood.
    """
    k = validation.check_int("k", k, 1)
    beta = validation.check_real("beta", beta)
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got beta={beta}")
    sampler = _Sampler(model, likelihood=likelihood, binarize=binarize, obs_logvar=obs_logvar)

    @context_loss
    def loss(
        params: Any, model_state: Mapping[str, Any], batch: Batch, key: Array, context: Context
    ) -> tuple[Array, tuple[Metrics, dict]]:
        batch, sample_key, model_key = sampler.keys(batch, key)
        weights = sampler(params, model_state, batch, sample_key, model_key, k, context.train)
        terms = _sampled_terms(weights, batch.mask)
        iwae = masked_mean(bound.importance_weighted_bound(weights.log_w), batch.mask)
        ciwae = beta * terms["elbo"] + (1.0 - beta) * iwae
        value = -ciwae
        metrics = {"loss": value, "ciwae_bound": ciwae, "iwae_bound": iwae, **terms}
        return value, (metrics, weights.model_state)

    spec = {
        "k": k,
        "beta": beta,
        "likelihood": likelihood,
        "binarize": sampler.binarize,
        "obs_logvar": obs_logvar,
    }
    return Objective(init=sampler.init, loss=loss, model=model, name="ciwae", spec=spec)


M_OPTION = Option(
    "m",
    int,
    DEFAULT_M,
    "independent importance-weighted estimates averaged (M; the paper's MNIST setting: 8)",
)
K_OPTION = Option("k", int, DEFAULT_K, "importance weights per estimate (K; M*K draws in all)")


@register_objective(
    "miwae",
    trains="vae",
    options=(LIKELIHOOD, BINARIZE, M_OPTION, K_OPTION),
    help="the multiply importance-weighted bound, the mean of --m IWAE bounds of --k samples "
    "(Rainforth et al. 2018)",
)
def _miwae(model: nn.Module, *, likelihood: str, binarize: bool, m: int, k: int) -> Objective:
    return miwae_objective(model, m, k, likelihood=likelihood, binarize=binarize)


@register_objective(
    "piwae",
    trains="vae",
    options=(LIKELIHOOD, BINARIZE, M_OPTION, K_OPTION),
    help="the decoder on the IWAE bound of --m x --k samples, the encoder on the MIWAE bound "
    "of the same samples (Rainforth et al. 2018)",
)
def _piwae(model: nn.Module, *, likelihood: str, binarize: bool, m: int, k: int) -> Objective:
    return piwae_objective(model, m, k, likelihood=likelihood, binarize=binarize)


@register_objective(
    "ciwae",
    trains="vae",
    options=(
        LIKELIHOOD,
        BINARIZE,
        Option("k", int, DEFAULT_CIWAE_K, "importance samples (the paper's MNIST budget: 64)"),
        Option(
            "beta",
            float,
            DEFAULT_BETA,
            "weight of the ELBO against the IWAE bound, in [0, 1] (the paper's MNIST setting: 0.5)",
        ),
    ),
    help="beta * ELBO + (1 - beta) * IWAE bound of --k samples (Rainforth et al. 2018)",
)
def _ciwae(model: nn.Module, *, likelihood: str, binarize: bool, k: int, beta: float) -> Objective:
    return ciwae_objective(model, k, beta=beta, likelihood=likelihood, binarize=binarize)
