r"""Disentanglement, completeness and informativeness (Eastwood & Williams 2018, "A Framework for
the Quantitative Evaluation of Disentangled Representations", Section 2), as disentanglement_lib
computes them (``evaluation/metrics/dci.py``).

One predictor per factor :math:`k` is trained on all codes (``num_train`` points) and tested
on ``num_test``; the importance :math:`R_{jk} \ge 0` of code :math:`j` for factor :math:`k`
fills a matrix of shape (num_codes, num_factors). With :math:`P_{jk} = R_{jk} / \sum_{k'}
R_{jk'}` and :math:`\tilde P_{jk} = R_{jk} / \sum_{j'} R_{j'k}`:

* disentanglement :math:`D = \sum_j \rho_j (1 - H_K(P_{j\cdot}))`, :math:`\rho_j = \sum_k R_{jk}
  / \sum R`, the entropy :math:`H_K` in base num_factors: each code should matter to one factor;
* completeness :math:`C = \sum_k \tilde\rho_k (1 - H_J(\tilde P_{\cdot k}))`,
  :math:`\tilde\rho_k = \sum_j R_{jk} / \sum R`, base num_codes: each factor should be captured
  by one code (disentanglement_lib weights the factors by importance, as here; Eastwood &
  Williams' code averages them);
* informativeness: the predictors' mean accuracy, on the training points and on the test
  points (``dci_informativeness`` is the test accuracy).

As in disentanglement_lib, :math:`10^{-11}` is added to every importance inside the entropies,
and an all-zero matrix weighs the codes (factors) uniformly, so it scores 0.

The predictors (``importance``):

* ``"gbt"`` (disentanglement_lib's, the default): scikit-learn's
  ``GradientBoostingClassifier()`` with its defaults (100 stages of depth-3 trees, one tree per
  class and stage), the importance its ``feature_importances_``. It is slow: at the default
  sizes, on 10 factors of 10 values and a shared 2-core CPU, about 1.5 minutes for codes that
  are the factors and 6 minutes for a rotation of them.
* ``"lasso"`` (Eastwood & Williams' own): a lasso regression (``Lasso(alpha=0.02)``, their
  notebook's setting) of each standardized factor on the standardized codes, the importance
  :math:`|w_{jk}|`; its prediction, rounded to the nearest factor value, gives the accuracy
  that informativeness reports (Eastwood & Williams report the normalized RMSE instead). Under
  a second at the default sizes. The L1 penalty puts the weight of two identical codes on one
  of them, so duplicated codes keep a completeness of 1 here, where the trees share it.

Departures from disentanglement_lib: the trees get a ``random_state`` drawn from the key
(disentanglement_lib leaves them unseeded); a factor that takes one value in the training
sample raises ValueError, and so does an importance matrix of fewer than 2 codes or factors
(the entropies' bases).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import Lasso

from latent_jax import validation
from latent_jax.disentanglement.classifiers import (
    Fitter,
    check_labels,
    sklearn_seed,
    standardize,
)
from latent_jax.disentanglement.defaults import DEFAULT_BATCH_SIZE, DEFAULT_SAMPLE_SIZES
from latent_jax.disentanglement.ground_truth import CodeSampler

__all__ = ["IMPORTANCES", "dci", "dci_from_importance"]

_SIZES = DEFAULT_SAMPLE_SIZES["dci"]
IMPORTANCES = ("gbt", "lasso")
_LASSO_ALPHA = 0.02
_SMOOTHING = 1e-11


def _weighted_specificity(importance: np.ndarray) -> float:
    """:math:`\\sum_j \\rho_j (1 - H(P_{j\\cdot}))` over the rows of ``importance``, entropy in
    base of its number of columns."""
    smoothed = importance + _SMOOTHING
    p = smoothed / smoothed.sum(axis=1, keepdims=True)
    entropy = -np.sum(p * np.log(p), axis=1) / np.log(importance.shape[1])
    total = importance.sum()
    weights = importance.sum(axis=1) / total if total > 0 else np.full(len(p), 1 / len(p))
    return float(np.sum(weights * (1.0 - entropy)))


def dci_from_importance(importance_matrix: Any) -> tuple[float, float]:
    """Disentanglement and completeness of an importance matrix.

    Args:
        importance_matrix: array of shape (num_codes >= 2, num_factors >= 2),
            non-negative.

    Returns:
        ``(disentanglement, completeness)``, each in [0, 1].
    """
    importance = validation.check_array(
        "importance_matrix",
        importance_matrix,
        ndim=2,
        axes="(num_codes, num_factors)",
        dtype=np.float64,
    )
    importance = np.asarray(importance)
    if min(importance.shape) < 2:
        raise ValueError(
            "importance_matrix must have at least 2 codes and 2 factors (the entropies' bases), "
            f"got shape {importance.shape}"
        )
    if np.any(importance < 0):
        raise ValueError("importance_matrix must be non-negative")
    return _weighted_specificity(importance), _weighted_specificity(importance.T)


def _gbt(x, y, x_test, y_test, seed):
    fitter = Fitter("dci")
    importance = np.zeros((x.shape[1], y.shape[1]))
    train, test = [], []
    for k in range(y.shape[1]):
        model = GradientBoostingClassifier(random_state=seed)
        fitter.fit(model, x, y[:, k])
        importance[:, k] = np.abs(model.feature_importances_)
        train.append(np.mean(model.predict(x) == y[:, k]))
        test.append(np.mean(model.predict(x_test) == y_test[:, k]))
    fitter.report()
    return importance, float(np.mean(train)), float(np.mean(test))


def _lasso(x, y, x_test, y_test, num_values):
    x, x_test = standardize(x, x_test)
    fitter = Fitter("dci")
    importance = np.zeros((x.shape[1], y.shape[1]))
    train, test = [], []
    for k in range(y.shape[1]):
        mean, scale = y[:, k].mean(), y[:, k].std()
        model = fitter.fit(Lasso(alpha=_LASSO_ALPHA), x, (y[:, k] - mean) / scale)
        importance[:, k] = np.abs(model.coef_)
        for inputs, target, accuracies in ((x, y, train), (x_test, y_test, test)):
            value = np.clip(np.rint(model.predict(inputs) * scale + mean), 0, num_values[k] - 1)
            accuracies.append(np.mean(value == target[:, k]))
    fitter.report()
    return importance, float(np.mean(train)), float(np.mean(test))


def dci(
    representation_fn: Callable[[Any], Any],
    ground_truth_data: Any,
    key: Any,
    *,
    num_train: int = _SIZES["num_train"],
    num_test: int = _SIZES["num_test"],
    importance: str = "gbt",
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> dict[str, float]:
    """Disentanglement, completeness and informativeness of a representation.

    Args:
        representation_fn: observations (batch, ...) -> codes (batch, num_codes >= 2).
        ground_truth_data: the data (:class:`~latent_jax.disentanglement.GroundTruthData`).
        key: a ``jax.random`` key; the same key gives the same scores.
        num_train: training points (disentanglement_lib: 10000).
        num_test: test points (5000).
        importance: ``"gbt"`` (gradient-boosted trees, disentanglement_lib's) or ``"lasso"``
            (Eastwood & Williams' lasso, far faster); see the module.
        batch_size: observations per call of ``representation_fn``.

    Returns:
        ``dci_disentanglement``, ``dci_completeness``, ``dci_informativeness`` (the test
        accuracy), ``dci_informativeness_train`` and ``dci_informativeness_test``.
    """
    key = validation.check_key("key", key)
    num_train = validation.check_int("num_train", num_train, 2)
    num_test = validation.check_int("num_test", num_test, 1)
    validation.check_choice("importance", importance, IMPORTANCES)
    sampler = CodeSampler(representation_fn, ground_truth_data, batch_size)
    train_key, test_key, model_key = jax.random.split(key, 3)
    codes, factors = sampler.sample(train_key, num_train)
    codes_test, factors_test = sampler.sample(test_key, num_test)
    check_labels("dci", factors, "num_train")
    if importance == "gbt":
        matrix, train, test = _gbt(
            codes, factors, codes_test, factors_test, sklearn_seed(model_key)
        )
    else:
        matrix, train, test = _lasso(codes, factors, codes_test, factors_test, sampler.num_values)
    disentanglement, completeness = dci_from_importance(matrix)
    return {
        "dci_disentanglement": disentanglement,
        "dci_completeness": completeness,
        "dci_informativeness": test,
        "dci_informativeness_train": train,
        "dci_informativeness_test": test,
    }
