r"""The SAP score (Kumar et al. 2018, "Variational Inference of Disentangled Latent Concepts
from Unlabeled Observations", Section 3), as disentanglement_lib computes it
(``evaluation/metrics/sap_score.py``).

A score matrix :math:`S` of shape (num_codes, num_factors) says how well each code alone
predicts each factor; the SAP score is the mean over factors of the gap between its two
largest entries, :math:`\frac1K \sum_k (S_{(1)k} - S_{(2)k})`.

* Discrete factors (``continuous_factors=False``, disentanglement_lib's study setting):
  :math:`S_{jk}` is the test accuracy of a linear SVM (``LinearSVC(C=0.01,
  class_weight="balanced")``) trained on code :math:`j` alone to predict factor :math:`k`,
  on ``num_train`` training and ``num_test`` test points.
* Continuous factors: :math:`S_{jk} = \mathrm{Cov}(c_j, v_k)^2 / (\mathrm{Var}(c_j)
  \mathrm{Var}(v_k))`, the :math:`R^2` of a linear regression of the factor on the code
  (``ddof=1``), and 0 for a code of variance at most :math:`10^{-12}`; no test points are
  drawn (disentanglement_lib draws them and leaves them unused).

Departures from disentanglement_lib: a factor that takes one value in the training sample
raises ValueError (the SVM cannot be trained, the :math:`R^2` divides by zero); the SVM is
solved by today's scikit-learn default (``dual="auto"``, the primal problem for these
one-feature fits; disentanglement_lib's scikit-learn solved the dual of the same problem).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from sklearn.svm import LinearSVC

from latent_jax import validation
from latent_jax.disentanglement.classifiers import Fitter, check_labels, sklearn_seed
from latent_jax.disentanglement.defaults import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONTINUOUS_FACTORS,
    DEFAULT_SAMPLE_SIZES,
)
from latent_jax.disentanglement.ground_truth import CodeSampler

__all__ = ["sap"]

_SIZES = DEFAULT_SAMPLE_SIZES["sap"]
_FLAT_VARIANCE = 1e-12


def _r_squared(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """:math:`\\mathrm{Cov}^2 / (\\mathrm{Var} \\mathrm{Var})` of every code and factor (C, K)."""
    centred_codes = codes - codes.mean(axis=0)
    centred_factors = factors - factors.mean(axis=0)
    n = codes.shape[0]
    covariance = centred_codes.T @ centred_factors / (n - 1)
    code_variance = np.sum(centred_codes**2, axis=0) / (n - 1)
    factor_variance = np.sum(centred_factors**2, axis=0) / (n - 1)
    flat = code_variance <= _FLAT_VARIANCE
    ratio = covariance**2 / (np.where(flat, 1.0, code_variance)[:, None] * factor_variance)
    return np.where(flat[:, None], 0.0, ratio)


def _accuracies(
    codes: np.ndarray,
    factors: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    seed: int,
) -> np.ndarray:
    """Test accuracy of a linear SVM on each code alone for each factor: (C, K)."""
    fitter = Fitter("sap")
    scores = np.zeros((codes.shape[1], factors.shape[1]))
    for j in range(codes.shape[1]):
        for k in range(factors.shape[1]):
            svm = LinearSVC(C=0.01, class_weight="balanced", random_state=seed)
            fitter.fit(svm, codes[:, j : j + 1], factors[:, k])
            scores[j, k] = np.mean(svm.predict(codes_test[:, j : j + 1]) == factors_test[:, k])
    fitter.report()
    return scores


def sap(
    representation_fn: Callable[[Any], Any],
    ground_truth_data: Any,
    key: Any,
    *,
    num_train: int = _SIZES["num_train"],
    num_test: int = _SIZES["num_test"],
    continuous_factors: bool = DEFAULT_CONTINUOUS_FACTORS,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> dict[str, float]:
    """The SAP score of a representation.

    Args:
        representation_fn: observations (batch, ...) -> codes (batch, num_codes >= 2).
        ground_truth_data: the data (:class:`~latent_jax.disentanglement.GroundTruthData`).
        key: a ``jax.random`` key; the same key gives the same score.
        num_train: training points (disentanglement_lib: 10000).
        num_test: test points of the discrete score (5000).
        continuous_factors: score by :math:`R^2` instead of SVM accuracy (False).
        batch_size: observations per call of ``representation_fn``.

    Returns:
        ``sap``.
    """
    key = validation.check_key("key", key)
    num_train = validation.check_int("num_train", num_train, 2)
    num_test = validation.check_int("num_test", num_test, 1)
    continuous = validation.check_bool("continuous_factors", continuous_factors)
    sampler = CodeSampler(representation_fn, ground_truth_data, batch_size)
    train_key, test_key, model_key = jax.random.split(key, 3)
    codes, factors = sampler.sample(train_key, num_train)
    check_labels("sap", factors, "num_train")
    if codes.shape[1] < 2:
        raise ValueError(
            f"sap needs at least 2 codes (the gap between the top two), got {codes.shape[1]}"
        )
    if continuous:
        scores = _r_squared(codes, factors.astype(np.float64))
    else:
        codes_test, factors_test = sampler.sample(test_key, num_test)
        scores = _accuracies(codes, factors, codes_test, factors_test, sklearn_seed(model_key))
    top = np.sort(scores, axis=0)
    return {"sap": float(np.mean(top[-1] - top[-2]))}
