r"""The βVAE score (Higgins et al. 2017, "β-VAE: Learning Basic Visual Concepts with a
Constrained Variational Framework", Section 3), as disentanglement_lib computes it
(``evaluation/metrics/beta_vae.py``).

One training sample: draw a factor index :math:`k` uniformly, draw ``points_per_sample`` pairs of
factor vectors that agree on factor :math:`k` (the second of each pair is drawn afresh, then
its factor :math:`k` copied from the first), encode the observations of both, and take the
mean absolute difference of the codes, :math:`\frac1L \sum_l |r(x_{1,l}) - r(x_{2,l})|`, as
the features and :math:`k` as the label. A logistic regression (scikit-learn's defaults) trained
on ``num_train`` samples predicts the fixed factor of ``num_eval`` fresh ones; its accuracy on
them is the score. A representation in which each factor moves its own code dimensions leaves
the fixed factor's dimensions unchanged between the pairs, so a linear classifier finds it.

Departures from disentanglement_lib: the samples are drawn and encoded in blocks (the codes of
many samples in one call of the representation) with JAX keys; the logistic regression is
today's scikit-learn default (lbfgs, multinomial), where disentanglement_lib ran the
scikit-learn of its time (liblinear, one-vs-rest).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.linear_model import LogisticRegression

from latent_jax import validation
from latent_jax.disentanglement.classifiers import Fitter, sklearn_seed
from latent_jax.disentanglement.defaults import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_POINTS_PER_SAMPLE,
    DEFAULT_SAMPLE_SIZES,
)
from latent_jax.disentanglement.ground_truth import CodeSampler

__all__ = ["beta_vae_score"]

_SIZES = DEFAULT_SAMPLE_SIZES["beta_vae_score"]
# Samples drawn and encoded together: bounds the memory of a block's codes.
_SAMPLES_PER_BLOCK = 1024


@jax.jit
def _mean_abs_difference(first: jax.Array, second: jax.Array) -> jax.Array:
    return jnp.mean(jnp.abs(first - second), axis=1)


def _training_set(
    sampler: CodeSampler, key: jax.Array, num_samples: int, points: int
) -> tuple[np.ndarray, np.ndarray]:
    """``num_samples`` samples: features (num_samples, num_codes), fixed factors (num_samples,)."""
    features, labels = [], []
    for block, start in enumerate(range(0, num_samples, _SAMPLES_PER_BLOCK)):
        m = min(_SAMPLES_PER_BLOCK, num_samples - start)
        keys = jax.random.split(jax.random.fold_in(key, block), 5)
        fixed = np.asarray(jax.random.randint(keys[0], (m,), 0, sampler.num_factors))
        first = sampler.factors(keys[1], m * points)
        second = sampler.factors(keys[2], m * points)
        rows = np.arange(m * points)
        columns = np.repeat(fixed, points)
        second[rows, columns] = first[rows, columns]
        codes_first = sampler.codes(first, keys[3]).reshape(m, points, -1)
        codes_second = sampler.codes(second, keys[4]).reshape(m, points, -1)
        features.append(np.asarray(_mean_abs_difference(codes_first, codes_second), np.float64))
        labels.append(fixed)
    return np.concatenate(features), np.concatenate(labels)


def beta_vae_score(
    representation_fn: Callable[[Any], Any],
    ground_truth_data: Any,
    key: Any,
    *,
    num_train: int = _SIZES["num_train"],
    num_eval: int = _SIZES["num_eval"],
    points_per_sample: int = DEFAULT_POINTS_PER_SAMPLE,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> dict[str, float]:
    """The βVAE score of a representation: accuracy of a linear classifier of the fixed factor.

    Args:
        representation_fn: observations (batch, ...) -> codes (batch, num_codes).
        ground_truth_data: the data (:class:`~latent_jax.disentanglement.GroundTruthData`).
        key: a ``jax.random`` key; the same key gives the same score.
        num_train: training samples of the classifier (disentanglement_lib: 10000).
        num_eval: evaluation samples (5000).
        points_per_sample: pairs averaged into one sample (disentanglement_lib's
            ``batch_size``, 64).
        batch_size: observations per call of ``representation_fn``.

    Returns:
        ``beta_vae_score`` (the evaluation accuracy), ``beta_vae_train_accuracy`` and
        ``beta_vae_eval_accuracy``.
    """
    key = validation.check_key("key", key)
    num_train = validation.check_int("num_train", num_train, 2)
    num_eval = validation.check_int("num_eval", num_eval, 1)
    points = validation.check_int("points_per_sample", points_per_sample, 1)
    sampler = CodeSampler(representation_fn, ground_truth_data, batch_size)
    train_key, eval_key, model_key = jax.random.split(key, 3)
    x_train, y_train = _training_set(sampler, train_key, num_train, points)
    if np.all(y_train == y_train[0]):
        raise ValueError(
            f"beta_vae_score: the {num_train} training samples all fix factor {y_train[0]}; "
            "the classifier needs two factors at least: draw more (num_train)"
        )
    fitter = Fitter("beta_vae_score")
    model = fitter.fit(LogisticRegression(random_state=sklearn_seed(model_key)), x_train, y_train)
    fitter.report()
    x_eval, y_eval = _training_set(sampler, eval_key, num_eval, points)
    train_accuracy = float(np.mean(model.predict(x_train) == y_train))
    eval_accuracy = float(np.mean(model.predict(x_eval) == y_eval))
    return {
        "beta_vae_score": eval_accuracy,
        "beta_vae_train_accuracy": train_accuracy,
        "beta_vae_eval_accuracy": eval_accuracy,
    }
