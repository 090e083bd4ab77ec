r"""The FactorVAE score (Kim & Mnih 2018, "Disentangling by Factorising", Section 4), as
disentanglement_lib computes it (``evaluation/metrics/factor_vae.py``).

1. The global variance :math:`s_d^2` of each code dimension over ``num_variance_estimate``
   observations (unbiased, ``ddof=1``). A dimension is *active* when its standard deviation
   :math:`s_d` is at least ``prune_threshold`` (0.05, an absolute threshold on the standard
   deviation, not relative); collapsed dimensions take no part. With no active dimension the
   score is 0.
2. One vote: draw a factor index :math:`k` uniformly, draw ``points_per_sample`` factor vectors
   with factor :math:`k` fixed to the first one's value, encode their observations, and take
   :math:`d^* = \arg\min_{d \text{ active}} \mathrm{Var}_l(r_d) / s_d^2` (the local variance
   ``ddof=1``, normalized by the global one). The vote is :math:`(k, d^*)`.
3. The majority-vote classifier maps each dimension :math:`d` to the factor with the most of
   ``num_train`` votes for it (ties to the lowest factor index); its accuracy on
   ``num_eval`` fresh votes, :math:`\sum_d V_{c(d), d} / \sum V`, is the score.

Departures from disentanglement_lib: ``factor_vae_num_active_dims`` is the number of active
dimensions (disentanglement_lib reports the length of its mask, i.e. every dimension); the
votes are indexed by dimension (disentanglement_lib indexes them by position among the active
dimensions, which relabels the classifier's columns and leaves the accuracies unchanged); votes
are drawn and encoded in blocks with JAX keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from latent_jax import validation
from latent_jax.disentanglement.defaults import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_POINTS_PER_SAMPLE,
    DEFAULT_PRUNE_THRESHOLD,
    DEFAULT_SAMPLE_SIZES,
)
from latent_jax.disentanglement.ground_truth import CodeSampler

__all__ = ["factor_vae_score"]

_SIZES = DEFAULT_SAMPLE_SIZES["factor_vae_score"]
# Votes drawn and encoded together: bounds the memory of a block's codes.
_VOTES_PER_BLOCK = 1024


@jax.jit
def _least_varying(codes: jax.Array, global_variance: jax.Array, active: jax.Array) -> jax.Array:
    """The active dimension of least normalized variance in each group: (m,) from (m, L, C)."""
    ratio = jnp.var(codes, axis=1, ddof=1) / jnp.where(active, global_variance, 1.0)
    return jnp.argmin(jnp.where(active, ratio, jnp.inf), axis=1)


def _votes(
    sampler: CodeSampler,
    key: jax.Array,
    num_votes: int,
    points: int,
    global_variance: np.ndarray,
    active: np.ndarray,
) -> np.ndarray:
    """Counts of (fixed factor, least varying dimension): int64 array (num_factors, num_codes)."""
    votes = np.zeros((sampler.num_factors, global_variance.shape[0]), np.int64)
    for block, start in enumerate(range(0, num_votes, _VOTES_PER_BLOCK)):
        m = min(_VOTES_PER_BLOCK, num_votes - start)
        keys = jax.random.split(jax.random.fold_in(key, block), 3)
        fixed = np.asarray(jax.random.randint(keys[0], (m,), 0, sampler.num_factors))
        factors = sampler.factors(keys[1], m * points).reshape(m, points, -1)
        groups = np.arange(m)
        factors[groups, :, fixed] = factors[groups, 0, fixed][:, None]
        codes = sampler.codes(factors.reshape(m * points, -1), keys[2]).reshape(m, points, -1)
        least = np.asarray(_least_varying(codes, global_variance, active))
        np.add.at(votes, (fixed, least), 1)
    return votes


def _accuracy(votes: np.ndarray, classifier: np.ndarray) -> float:
    return float(votes[classifier, np.arange(votes.shape[1])].sum() / votes.sum())


def factor_vae_score(
    representation_fn: Callable[[Any], Any],
    ground_truth_data: Any,
    key: Any,
    *,
    num_train: int = _SIZES["num_train"],
    num_eval: int = _SIZES["num_eval"],
    num_variance_estimate: int = _SIZES["num_variance_estimate"],
    points_per_sample: int = DEFAULT_POINTS_PER_SAMPLE,
    prune_threshold: float = DEFAULT_PRUNE_THRESHOLD,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> dict[str, float]:
    """The FactorVAE score: accuracy of a majority vote of the least varying code dimension.

    Args:
        representation_fn: observations (batch, ...) -> codes (batch, num_codes).
        ground_truth_data: the data (:class:`~latent_jax.disentanglement.GroundTruthData`).
        key: a ``jax.random`` key; the same key gives the same score.
        num_train: votes that train the classifier (disentanglement_lib: 10000).
        num_eval: votes that evaluate it (5000).
        num_variance_estimate: observations of the global variances (10000).
        points_per_sample: points per vote, one factor fixed among them
            (disentanglement_lib's ``batch_size``, 64).
        prune_threshold: the least standard deviation of an active dimension (0.05).
        batch_size: observations per call of ``representation_fn``.

    Returns:
        ``factor_vae_score`` (the evaluation accuracy), ``factor_vae_train_accuracy``,
        ``factor_vae_eval_accuracy`` and ``factor_vae_num_active_dims``.
    """
    key = validation.check_key("key", key)
    num_train = validation.check_int("num_train", num_train, 1)
    num_eval = validation.check_int("num_eval", num_eval, 1)
    num_variance = validation.check_int("num_variance_estimate", num_variance_estimate, 2)
    points = validation.check_int("points_per_sample", points_per_sample, 2)
    threshold = validation.check_real("prune_threshold", prune_threshold, nonnegative=True)
    sampler = CodeSampler(representation_fn, ground_truth_data, batch_size)
    variance_key, train_key, eval_key = jax.random.split(key, 3)
    codes, _ = sampler.sample(variance_key, num_variance)
    global_variance = np.var(codes, axis=0, ddof=1)
    active = np.sqrt(global_variance) >= threshold
    if not active.any():
        return {
            "factor_vae_score": 0.0,
            "factor_vae_train_accuracy": 0.0,
            "factor_vae_eval_accuracy": 0.0,
            "factor_vae_num_active_dims": 0.0,
        }
    train_votes = _votes(sampler, train_key, num_train, points, global_variance, active)
    classifier = np.argmax(train_votes, axis=0)
    eval_votes = _votes(sampler, eval_key, num_eval, points, global_variance, active)
    eval_accuracy = _accuracy(eval_votes, classifier)
    return {
        "factor_vae_score": eval_accuracy,
        "factor_vae_train_accuracy": _accuracy(train_votes, classifier),
        "factor_vae_eval_accuracy": eval_accuracy,
        "factor_vae_num_active_dims": float(active.sum()),
    }
