"""What the metrics' scikit-learn models share: seeds from JAX keys, label checks, fitting,
standardization.

disentanglement_lib fits its classifiers with scikit-learn's fixed iteration budgets; the
budget is part of each metric's definition, so a model that stops at it is kept as it is.
:class:`Fitter` fits without scikit-learn's ``ConvergenceWarning`` and logs, once per metric,
how many models stopped at their budget.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import jax
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

logger = logging.getLogger(__name__)

_SEED_BOUND = 2**31 - 1


def sklearn_seed(key: jax.Array) -> int:
    """An integer ``random_state`` for scikit-learn drawn from ``key``, in [0, 2**31 - 1)."""
    return int(jax.random.randint(key, (), 0, _SEED_BOUND))


def check_labels(metric: str, factors: np.ndarray, sample: str) -> None:
    """Raises ValueError if a factor takes a single value among the sampled ``factors``.

    Args:
        metric: the metric's name, for the message.
        factors: int array of shape (n, num_factors).
        sample: which sample this is and its size argument, e.g. ``"num_train"``.
    """
    for k in range(factors.shape[1]):
        if np.all(factors[:, k] == factors[0, k]):
            raise ValueError(
                f"{metric}: factor {k} took a single value in the {factors.shape[0]} points "
                f"drawn ({sample}); the metric is undefined for it: draw more points"
            )


class Fitter:
    """Fits scikit-learn models quietly, counting those that stopped at their iteration limit.

    Args:
        metric: the metric's name, for the log.
    """

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self.fitted = 0
        self.unconverged = 0

    def fit(self, model: Any, x: np.ndarray, y: np.ndarray) -> Any:
        """``model.fit(x, y)``, a ``ConvergenceWarning`` counted instead of raised."""
        # One BLAS thread: on matrices this small, more threads only contend (tenfold slower
        # fits on a busy machine).
        with warnings.catch_warnings(record=True) as caught, threadpool_limits(1):
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(x, y)
        self.fitted += 1
        stopped = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
        self.unconverged += bool(stopped)
        for w in caught:  # any other warning goes on as it came
            if not issubclass(w.category, ConvergenceWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return model

    def report(self) -> None:
        """Logs how many of the fitted models stopped at their iteration limit, if any did."""
        if self.unconverged:
            logger.info(
                "%s: %d of %d scikit-learn models stopped at their iteration limit (kept, as "
                "disentanglement_lib keeps them)",
                self.metric,
                self.unconverged,
                self.fitted,
            )


def standardize(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both sets standardized by the training set's mean and standard deviation (``ddof=0``).

    A constant column is centred and left unscaled (disentanglement_lib divides it by zero).
    """
    mean = train.mean(axis=0)
    scale = train.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    return (train - mean) / scale, (test - mean) / scale
