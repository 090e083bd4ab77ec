r"""Scores of a representation without its factors: how correlated its codes are
(disentanglement_lib's ``evaluation/metrics/unsupervised_metrics.py``).

Locatello et al. (2019, Section 5.1) ask whether the regularizers of β-TC-VAE, FactorVAE and
DIP-VAE lower what they penalize, the total correlation of the aggregate posterior, and answer
it with a Gaussian fitted to the codes of ``num_train`` observations, of the *sampled*
representation (a draw of :math:`q(z \mid x)`, what the decoder sees) and of the *mean* one
(what the metrics score). With :math:`\Sigma` the codes' covariance:

* :func:`gaussian_total_correlation`: the total correlation of
  :math:`\mathcal N(0, \Sigma)`, the KL divergence from the product of its marginals,
  :math:`\tfrac12 \bigl(\sum_j \log \Sigma_{jj} - \log \det \Sigma\bigr)` nats;
* :func:`gaussian_wasserstein_correlation`: the squared 2-Wasserstein distance between
  :math:`\mathcal N(0, \Sigma)` and the product of its marginals,
  :math:`2 \operatorname{tr} \Sigma - 2 \operatorname{tr} (\Sigma D)^{1/2}` with
  :math:`D = \operatorname{diag} \Sigma`, also divided by :math:`\operatorname{tr} \Sigma`;
* ``mutual_info_score``: the mean over pairs of distinct codes of their discretized mutual
  information (:mod:`~latent_jax.disentanglement.information`, 20 bins).

Each is 0 for independent codes (the first two for uncorrelated ones).

Departure from disentanglement_lib: a collapsed dimension of a VAE's mean representation
(common) varies by almost nothing, which makes :math:`\Sigma` singular to round-off and
:math:`-\log \det \Sigma` as large as round-off allows (disentanglement_lib reports that
number, or fails); here the codes whose standard deviation over the sample is below
``prune_threshold`` (0.05, the FactorVAE score's rule for a collapsed dimension) are left out
of the two Gaussian scores and counted in ``num_collapsed_codes``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg

from latent_jax import validation
from latent_jax.disentanglement.defaults import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_NUM_BINS,
    DEFAULT_PRUNE_THRESHOLD,
    DEFAULT_SAMPLE_SIZES,
)
from latent_jax.disentanglement.ground_truth import CodeSampler
from latent_jax.disentanglement.information import discretized_information, histogram_discretize

__all__ = [
    "gaussian_total_correlation",
    "gaussian_wasserstein_correlation",
    "unsupervised_scores",
]

_SIZES = DEFAULT_SAMPLE_SIZES["unsupervised_scores"]


def _check_covariance(cov: Any) -> np.ndarray:
    cov = validation.check_array("cov", cov, ndim=2, axes="(d, d)", dtype=np.float64)
    if cov.shape[0] != cov.shape[1] or not np.allclose(cov, cov.T, rtol=1e-6, atol=1e-12):
        raise ValueError(f"cov must be a symmetric (d, d) matrix, got shape {cov.shape}")
    if np.any(np.diag(cov) <= 0):
        raise ValueError(f"cov must have a positive diagonal, got {np.diag(cov)}")
    return cov


def gaussian_total_correlation(cov: Any) -> float:
    """The total correlation of a zero-mean Gaussian, in nats.

    Args:
        cov: a covariance matrix of shape (d, d), positive definite.

    Returns:
        ``0.5 * (sum(log(diag(cov))) - log(det(cov)))``: 0 for a diagonal ``cov``,
        ``-0.5 * log(1 - rho**2)`` for two codes of correlation ``rho``.
    """
    cov = _check_covariance(cov)
    sign, logdet = np.linalg.slogdet(cov)
    if sign <= 0:
        raise ValueError("cov must be positive definite (its determinant is not positive)")
    return float(0.5 * (np.sum(np.log(np.diag(cov))) - logdet))


def gaussian_wasserstein_correlation(cov: Any) -> float:
    """The squared 2-Wasserstein distance from a zero-mean Gaussian to its marginals' product.

    Args:
        cov: a covariance matrix of shape (d, d), positive semi-definite.

    Returns:
        ``2 tr(cov) - 2 tr((cov diag(cov))^(1/2))``: 0 for a diagonal ``cov``.
    """
    cov = _check_covariance(cov)
    root = scipy.linalg.sqrtm(cov * np.diag(cov)[:, None])
    return float(2.0 * np.trace(cov) - 2.0 * np.trace(root).real)


def unsupervised_scores(
    representation_fn: Callable[[Any], Any],
    ground_truth_data: Any,
    key: Any,
    *,
    num_train: int = _SIZES["num_train"],
    num_bins: int = DEFAULT_NUM_BINS,
    prune_threshold: float = DEFAULT_PRUNE_THRESHOLD,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> dict[str, float]:
    """How correlated a representation's codes are, over observations of the data.

    Args:
        representation_fn: observations (batch, ...) -> codes (batch, num_codes >= 2); a
            sampled representation (a fresh draw of the posterior per call) is allowed.
        ground_truth_data: the data (:class:`~latent_jax.disentanglement.GroundTruthData`);
            only its observations are used.
        key: a ``jax.random`` key; the same key gives the same score.
        num_train: observations drawn (disentanglement_lib: 10000).
        num_bins: histogram bins per code for ``mutual_info_score`` (20).
        prune_threshold: codes whose standard deviation is below this are collapsed, left
            out of the Gaussian scores (0.05).
        batch_size: observations per call of ``representation_fn``.

    Returns:
        ``gaussian_total_correlation``, ``gaussian_wasserstein_correlation``,
        ``gaussian_wasserstein_correlation_norm``, ``mutual_info_score`` and
        ``num_collapsed_codes``.
    """
    key = validation.check_key("key", key)
    num_train = validation.check_int("num_train", num_train, 2)
    num_bins = validation.check_int("num_bins", num_bins, 1)
    prune_threshold = validation.check_real("prune_threshold", prune_threshold, positive=True)
    codes, _ = CodeSampler(representation_fn, ground_truth_data, batch_size).sample(key, num_train)
    num_codes = codes.shape[1]
    if num_codes < 2:
        raise ValueError(f"unsupervised_scores needs at least 2 codes, got {num_codes}")
    varying = codes.std(axis=0) >= prune_threshold
    scores = {"num_collapsed_codes": float(num_codes - varying.sum())}
    if varying.sum() >= 1:
        cov = np.atleast_2d(np.cov(codes[:, varying], rowvar=False))
        scores["gaussian_total_correlation"] = gaussian_total_correlation(cov)
        wasserstein = gaussian_wasserstein_correlation(cov)
        scores["gaussian_wasserstein_correlation"] = wasserstein
        scores["gaussian_wasserstein_correlation_norm"] = wasserstein / float(np.trace(cov))
    else:
        scores.update(
            gaussian_total_correlation=0.0,
            gaussian_wasserstein_correlation=0.0,
            gaussian_wasserstein_correlation_norm=0.0,
        )
    information, _ = discretized_information(codes, histogram_discretize(codes, num_bins), num_bins)
    np.fill_diagonal(information, 0.0)
    scores["mutual_info_score"] = float(information.sum() / (num_codes**2 - num_codes))
    return scores
