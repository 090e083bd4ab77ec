r"""Modularity and explicitness (Ridgeway & Mozer 2018, "Learning Deep Disentangled Embeddings
With the F-Statistic Loss", Section 3), as disentanglement_lib computes them
(``evaluation/metrics/modularity_explicitness.py``).

* Modularity: with :math:`m_{jk}` the discretized mutual information of code :math:`j` and
  factor :math:`k` (``num_bins`` histogram bins, :mod:`latent_jax.disentanglement.information`)
  and :math:`\theta_j = \max_k m_{jk}^2`,

  .. math::

      \delta_j = \frac{\sum_k m_{jk}^2 - \theta_j}{\theta_j (K - 1)}, \qquad
      \text{modularity} = \frac1J \sum_j (1 - \delta_j),

  a code informative about one factor only scores 1, and a code with no information scores 0.
* Explicitness: for each factor, a logistic regression (scikit-learn's defaults) on all the
  codes, standardized by the training points' mean and deviation, predicts the factor's
  class probabilities; its one-vs-rest ROC-AUC, averaged over the classes, is the factor's
  explicitness, and ``explicitness`` is the mean over factors on the test points
  (``explicitness_train`` on the training points).

Departures from disentanglement_lib: the logistic regression is today's scikit-learn default
(lbfgs, multinomial; disentanglement_lib ran liblinear, one-vs-rest); a constant code is
centred and left unscaled (disentanglement_lib divides it by a zero deviation); the AUC
averages the classes that occur in the evaluated points both as positives and as negatives
(disentanglement_lib stops with an error when a class is missing from the test points); a
factor that takes one value among the training points raises ValueError.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from latent_jax import validation
from latent_jax.disentanglement.classifiers import (
    Fitter,
    check_labels,
    sklearn_seed,
    standardize,
)
from latent_jax.disentanglement.defaults import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_NUM_BINS,
    DEFAULT_SAMPLE_SIZES,
)
from latent_jax.disentanglement.ground_truth import CodeSampler
from latent_jax.disentanglement.information import discretized_information

__all__ = ["modularity_explicitness", "modularity_score"]

_SIZES = DEFAULT_SAMPLE_SIZES["modularity_explicitness"]


def modularity_score(mutual_information: Any) -> float:
    """Ridgeway & Mozer's modularity of a mutual information matrix.

    Args:
        mutual_information: array of shape (num_codes, num_factors >= 2), non-negative.

    Returns:
        The mean over codes of :math:`1 - \\delta_j` (0 for a code with no information).
    """
    information = validation.check_array(
        "mutual_information",
        mutual_information,
        ndim=2,
        axes="(num_codes, num_factors)",
        dtype=np.float64,
    )
    squared = np.square(np.asarray(information))
    if squared.shape[1] < 2:
        raise ValueError(
            f"modularity needs at least 2 factors, got mutual_information of shape {squared.shape}"
        )
    largest = squared.max(axis=1)
    informative = largest > 0
    delta = (squared.sum(axis=1) - largest) / (
        np.where(informative, largest, 1.0) * (squared.shape[1] - 1)
    )
    return float(np.mean(np.where(informative, 1.0 - delta, 0.0)))


def _auc(model: LogisticRegression, x: np.ndarray, y: np.ndarray, sample: str) -> float:
    """Mean one-vs-rest ROC-AUC over the classes present in ``y`` as positives and negatives."""
    probabilities = model.predict_proba(x)
    indicators = y[:, None] == model.classes_[None, :]
    counts = indicators.sum(axis=0)
    both = (counts > 0) & (counts < len(y))
    if not both.any():
        raise ValueError(
            f"modularity_explicitness: a factor took a single value in the {len(y)} points "
            f"drawn ({sample}); its ROC-AUC is undefined: draw more points"
        )
    return float(roc_auc_score(indicators[:, both], probabilities[:, both]))


def _explicitness(x, y, x_test, y_test, seed) -> tuple[float, float]:
    x, x_test = standardize(x, x_test)
    fitter = Fitter("modularity_explicitness")
    train, test = [], []
    for k in range(y.shape[1]):
        model = fitter.fit(LogisticRegression(random_state=seed), x, y[:, k])
        train.append(_auc(model, x, y[:, k], "num_train"))
        test.append(_auc(model, x_test, y_test[:, k], "num_test"))
    fitter.report()
    return float(np.mean(train)), float(np.mean(test))


def modularity_explicitness(
    representation_fn: Callable[[Any], Any],
    ground_truth_data: Any,
    key: Any,
    *,
    num_train: int = _SIZES["num_train"],
    num_test: int = _SIZES["num_test"],
    num_bins: int = DEFAULT_NUM_BINS,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> dict[str, float]:
    """Modularity and explicitness of a representation.

    Args:
        representation_fn: observations (batch, ...) -> codes (batch, num_codes).
        ground_truth_data: the data (:class:`~latent_jax.disentanglement.GroundTruthData`),
            with at least 2 factors.
        key: a ``jax.random`` key; the same key gives the same scores.
        num_train: training points, also those of the mutual information (10000).
        num_test: test points of explicitness (5000).
        num_bins: histogram bins per code dimension (20).
        batch_size: observations per call of ``representation_fn``.

    Returns:
        ``modularity``, ``explicitness`` (on the test points), ``explicitness_train`` and
        ``explicitness_test``.
    """
    key = validation.check_key("key", key)
    num_train = validation.check_int("num_train", num_train, 2)
    num_test = validation.check_int("num_test", num_test, 2)
    num_bins = validation.check_int("num_bins", num_bins, 1)
    sampler = CodeSampler(representation_fn, ground_truth_data, batch_size)
    if sampler.num_factors < 2:
        raise ValueError("modularity needs at least 2 factors, got 1")
    train_key, test_key, model_key = jax.random.split(key, 3)
    codes, factors = sampler.sample(train_key, num_train)
    codes_test, factors_test = sampler.sample(test_key, num_test)
    check_labels("modularity_explicitness", factors, "num_train")
    information, _ = discretized_information(codes, factors, num_bins)
    train, test = _explicitness(codes, factors, codes_test, factors_test, sklearn_seed(model_key))
    return {
        "modularity": modularity_score(information),
        "explicitness": test,
        "explicitness_train": train,
        "explicitness_test": test,
    }
