r"""DIP-VAE (Kumar, Sattigeri & Balakrishnan 2018, "Variational Inference of Disentangled
Latent Concepts from Unlabeled Observations", ICLR).

The VAE's loss plus a penalty that pushes a covariance of the codes towards the identity
(the paper's eqs. 6 and 7, as losses):

.. math::

    \ell = \mathrm{rec} + D_{KL}(q(z|x)\,\|\,\mathcal{N}(0, I))
        + \lambda_{od} \sum_{i \ne j} C_{ij}^2 + \lambda_d \sum_i (C_{ii} - 1)^2,

where for **DIP-VAE-I** (eq. 6) :math:`C = \mathrm{Cov}_{p(x)}[\mu(x)]`, the covariance of the
posterior means, and for **DIP-VAE-II** (eq. 7) :math:`C = \mathrm{Cov}_{q(z)}[z] =
\mathbb{E}_{p(x)}[\Sigma(x)] + \mathrm{Cov}_{p(x)}[\mu(x)]`, the covariance of the aggregate
posterior (eq. 5, the law of total covariance, with :math:`\Sigma(x) = \mathrm{diag}\,
e^{\mathrm{logvar}(x)}`). :math:`p(x)` is the empirical distribution of the batch's real rows.
Matching the aggregate posterior's moments to the prior's decorrelates the codes.

The paper's experiments set :math:`\lambda_d = 10\,\lambda_{od}` for DIP-VAE-I (Figure 1,
:math:`\lambda_{od}` from 1 to 50 and more) and :math:`\lambda_d = \lambda_{od}` for
DIP-VAE-II; google-research's disentanglement_lib uses the same ratios (``lambda_d_factor`` 10
and 1, :math:`\lambda_{od}` swept over 1 to 50), and these are the defaults here, with
:math:`\lambda_{od} = 10`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
from jax import Array

from latent_jax import validation
from latent_jax.objectives.base import (
    Batch,
    Context,
    Metrics,
    Objective,
    context_loss,
    masked_mean,
)
from latent_jax.objectives.registry import Option, register_objective
from latent_jax.objectives.vae import BINARIZE, LIKELIHOOD, ElboTerms

__all__ = ["DIP_KINDS", "dip_covariance", "dip_penalties", "dip_vae_objective"]

DIP_KINDS = ("i", "ii")
# λ_d / λ_od when λ_d is not given: the paper's experiments (see the module docstring).
_DIAGONAL_FACTOR = {"i": 10.0, "ii": 1.0}


def _check_codes(mean: Any, logvar: Any, mask: Any) -> tuple[Array, Array, Array]:
    mean, logvar, mask = jnp.asarray(mean), jnp.asarray(logvar), jnp.asarray(mask)
    if mean.ndim != 2:
        raise ValueError(f"mean must have shape (batch, latent_dim), got shape {mean.shape}")
    if logvar.shape != mean.shape:
        raise ValueError(f"logvar must have the shape of mean {mean.shape}, got {logvar.shape}")
    if mask.shape != mean.shape[:1]:
        raise ValueError(f"mask must have shape ({mean.shape[0]},), got shape {mask.shape}")
    return mean, logvar, mask


def dip_covariance(mean: Array, logvar: Array, mask: Array, kind: str) -> Array:
    r"""The covariance DIP-VAE pushes towards the identity, over a batch's real rows.

    The expectations are under the empirical distribution of the M real rows (``mask`` 1):
    mask-weighted means with the 1/M normalization (not 1/(M-1)),

    .. math::

        \bar\mu = \tfrac1M \sum_n m_n \mu_n, \qquad
        \mathrm{Cov}_{p(x)}[\mu(x)] = \tfrac1M \sum_n m_n (\mu_n - \bar\mu)(\mu_n - \bar\mu)^\top,

    the DIP-VAE-I matrix (eq. 6); DIP-VAE-II (eq. 7) adds :math:`\mathbb{E}_{p(x)}[\Sigma(x)] =
    \mathrm{diag}(\tfrac1M \sum_n m_n e^{\mathrm{logvar}_n})`. Padding rows (mask 0) do not
    enter, whatever they hold; an empty mask gives the zero matrix (and for ``"ii"`` zero
    variances too).

    Args:
        mean: posterior means, array of shape (batch, latent_dim).
        logvar: posterior log-variances, shape (batch, latent_dim).
        mask: shape (batch,), 1.0 for real rows and 0.0 for padding.
        kind: ``"i"`` (:math:`\mathrm{Cov}[\mu]`) or ``"ii"`` (:math:`\mathrm{Cov}_{q(z)}[z]`).

    Returns:
        Array of shape (latent_dim, latent_dim), symmetric.

    Raises:
        ValueError: for an unknown ``kind`` or shapes that do not fit.
    """
    kind = validation.check_choice("kind", kind, DIP_KINDS)
    mean, logvar, mask = _check_codes(mean, logvar, mask)
    real = (mask > 0)[:, None]
    weights = jnp.where(mask > 0, mask, 0.0).astype(mean.dtype)
    weights = weights / jnp.maximum(jnp.sum(weights), 1.0)
    mean = jnp.where(real, mean, 0.0)
    centred = jnp.where(real, mean - jnp.sum(weights[:, None] * mean, axis=0), 0.0)
    covariance = (weights[:, None] * centred).T @ centred
    if kind == "ii":
        variances = jnp.where(real, jnp.exp(jnp.where(real, logvar, 0.0)), 0.0)
        covariance = covariance + jnp.diag(jnp.sum(weights[:, None] * variances, axis=0))
    return covariance


def dip_penalties(covariance: Array) -> tuple[Array, Array]:
    r"""DIP-VAE's two penalties on a covariance matrix: its distance to the identity.

    Args:
        covariance: array of shape (d, d).

    Returns:
        ``(off_diagonal, diagonal)``: :math:`\sum_{i \ne j} C_{ij}^2` and
        :math:`\sum_i (C_{ii} - 1)^2`, scalars.
    """
    covariance = jnp.asarray(covariance)
    if covariance.ndim != 2 or covariance.shape[0] != covariance.shape[1]:
        raise ValueError(f"covariance must be a square matrix, got shape {covariance.shape}")
    off = jnp.where(jnp.eye(covariance.shape[0], dtype=bool), 0.0, covariance)
    return jnp.sum(jnp.square(off)), jnp.sum(jnp.square(jnp.diagonal(covariance) - 1.0))


def dip_vae_objective(
    model: nn.Module,
    *,
    kind: str = "i",
    lambda_od: float = 10.0,
    lambda_d: float | None = None,
    likelihood: str = "sse",
    binarize: bool = False,
    obs_logvar: float | str = 0.0,
) -> Objective:
    r"""DIP-VAE's objective: the VAE's loss plus the covariance penalty of eq. 6 or 7.

    .. math::

        \ell = \mathrm{rec} + \mathrm{KL} + \lambda_{od} \sum_{i \ne j} C_{ij}^2
            + \lambda_d \sum_i (C_{ii} - 1)^2,

    ``reconstruction`` and ``kl`` are the masked means of :func:`~latent_jax.objectives.
    vae_objective`'s terms (β = 1; its likelihoods, binarization and key use, so the draws are
    the VAE's); :math:`C` is :func:`dip_covariance` of the batch's posterior means (and, for
    ``kind="ii"``, log-variances) over its real rows: a statistic of the batch, not of one
    example, as in the paper's minibatch estimate. With ``lambda_od = lambda_d = 0`` the loss
    is the VAE's negative ELBO, draw for draw.

    Metrics: ``loss``, ``reconstruction``, ``kl``, ``dip`` (:math:`\lambda_{od}\,
    \mathrm{off} + \lambda_d\, \mathrm{diag}`), ``dip_off_diagonal`` (:math:`\sum_{i \ne j}
    C_{ij}^2`) and ``dip_diagonal`` (:math:`\sum_i (C_{ii} - 1)^2`); ``loss ==
    reconstruction + kl + dip`` for the reported values.

    Args:
        model: a linen VAE, ``model(x, key) -> (reconstruction, mean, logvar)`` with ``mean``
            and ``logvar`` of shape (batch, latent_dim).
        kind: ``"i"`` (DIP-VAE-I, eq. 6) or ``"ii"`` (DIP-VAE-II, eq. 7).
        lambda_od: :math:`\lambda_{od}`, the weight of the off-diagonal penalty, >= 0.
        lambda_d: :math:`\lambda_d`, the weight of the diagonal penalty, >= 0; ``None``: the
            paper's choice, ``10 * lambda_od`` for DIP-VAE-I and ``lambda_od`` for
            DIP-VAE-II (its experiments; see the module docstring).
        likelihood: ``"sse"``, ``"gaussian"`` or ``"bernoulli"``.
        binarize: train on dynamically binarized inputs.
        obs_logvar: the Gaussian likelihood's log-variance, or ``"learned"``.

    Returns:
        The :class:`~latent_jax.objectives.Objective`, named ``"dip-vae-i"`` or
        ``"dip-vae-ii"``.

    Raises:
        ValueError: for an unknown ``kind`` or a negative or non-finite weight.
    """
    kind = validation.check_choice("kind", kind, DIP_KINDS)
    lambda_od = validation.check_real("lambda_od", lambda_od, nonnegative=True)
    if lambda_d is None:
        lambda_d = _DIAGONAL_FACTOR[kind] * lambda_od
    lambda_d = validation.check_real("lambda_d", lambda_d, nonnegative=True)
    terms = ElboTerms(model, likelihood=likelihood, binarize=binarize, obs_logvar=obs_logvar)

    @context_loss
    def loss(
        params: Any, model_state: Mapping[str, Any], batch: Batch, key: Array, context: Context
    ) -> tuple[Array, tuple[Metrics, dict]]:
        encoded = terms.encoded(params, model_state, batch, key, context.train)
        rec = masked_mean(encoded.reconstruction, batch.mask)
        kl = masked_mean(encoded.kl, batch.mask)
        covariance = dip_covariance(encoded.mean, encoded.logvar, batch.mask, kind)
        off, diagonal = dip_penalties(covariance)
        dip = jnp.float32(lambda_od) * off + jnp.float32(lambda_d) * diagonal
        value = rec + kl + dip
        metrics = {
            "loss": value,
            "reconstruction": rec,
            "kl": kl,
            "dip": dip,
            "dip_off_diagonal": off,
            "dip_diagonal": diagonal,
        }
        return value, (metrics, encoded.model_state)

    spec = {
        "kind": kind,
        "lambda_od": lambda_od,
        "lambda_d": lambda_d,
        "likelihood": likelihood,
        "binarize": terms.binarize,
        "obs_logvar": obs_logvar,
    }
    return Objective(init=terms.init, loss=loss, model=model, name=f"dip-vae-{kind}", spec=spec)


_LAMBDA_OD = Option(
    "lambda_od", float, 10.0, "weight of the off-diagonal covariance penalty (DIP-VAE)"
)
_LAMBDA_D = Option(
    "lambda_d",
    float,
    None,
    "weight of the diagonal covariance penalty (default: 10 * --lambda-od for dip-vae-i, "
    "--lambda-od for dip-vae-ii, as Kumar et al.)",
)


@register_objective(
    "dip-vae-i",
    trains="vae",
    options=(LIKELIHOOD, BINARIZE, _LAMBDA_OD, _LAMBDA_D),
    help="DIP-VAE-I: reconstruction + KL + a penalty on Cov[mu(x)] - I (Kumar et al. 2018)",
)
def _dip_vae_i(
    model: nn.Module, *, likelihood: str, binarize: bool, lambda_od: float, lambda_d: float | None
) -> Objective:
    return dip_vae_objective(
        model,
        kind="i",
        lambda_od=lambda_od,
        lambda_d=lambda_d,
        likelihood=likelihood,
        binarize=binarize,
    )


@register_objective(
    "dip-vae-ii",
    trains="vae",
    options=(LIKELIHOOD, BINARIZE, _LAMBDA_OD, _LAMBDA_D),
    help="DIP-VAE-II: reconstruction + KL + a penalty on Cov_q(z)[z] - I (Kumar et al. 2018)",
)
def _dip_vae_ii(
    model: nn.Module, *, likelihood: str, binarize: bool, lambda_od: float, lambda_d: float | None
) -> Objective:
    return dip_vae_objective(
        model,
        kind="ii",
        lambda_od=lambda_od,
        lambda_d=lambda_d,
        likelihood=likelihood,
        binarize=binarize,
    )
