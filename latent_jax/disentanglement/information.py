r"""Discretized codes and their mutual information with the factors, in ``jax.numpy``.

MIG and modularity measure what each code says about each factor as the mutual information of
the code, discretized, with the factor (disentanglement_lib, ``evaluation/metrics/utils.py``):

* :func:`histogram_discretize`: each code dimension cut into ``num_bins`` equal-width bins over
  its sampled range, as ``np.digitize(x, np.histogram(x, num_bins)[1][:-1])``: bin ``b`` holds
  :math:`e_b \le x < e_{b+1}` with :math:`e_b = \min x + b\,(\max x - \min x)/B`, the maximum
  falls in the last bin, and a constant code (range 0) gets numpy's range
  :math:`[x - \tfrac12, x + \tfrac12]`. Bins are numbered from 0 here (from 1 in
  disentanglement_lib's), which changes no information.
* :func:`mutual_information_matrix`: the plug-in estimate, in nats, of
  :math:`I(c_j; v_k) = \sum_{b, a} \hat p(b, a) \log \frac{\hat p(b, a)}{\hat p(b)\, \hat p(a)}`
  for every code ``j`` and factor ``k`` (what ``sklearn.metrics.mutual_info_score`` gives one
  pair at a time), from one joint histogram per pair counted by a single matrix product of
  one-hot codes; the factors' entropies :math:`H(v_k) = I(v_k; v_k)` come with it.

Both run in float32 (float64 under ``jax_enable_x64``): the counts are exact, the logarithms
carry float32 round-off, and a code within round-off of a bin edge may land in the
neighbouring bin of a float64 computation.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from latent_jax import validation
from latent_jax.disentanglement.defaults import DEFAULT_NUM_BINS

__all__ = ["discretized_information", "histogram_discretize", "mutual_information_matrix"]


@functools.partial(jax.jit, static_argnames="num_bins")
def _bins(codes: jax.Array, num_bins: int) -> jax.Array:
    low = codes.min(axis=0)
    high = codes.max(axis=0)
    flat = low == high
    low = jnp.where(flat, low - 0.5, low)
    high = jnp.where(flat, high + 0.5, high)
    step = (high - low) / num_bins
    edges = low + jnp.arange(num_bins, dtype=codes.dtype)[:, None] * step  # (B, C) left edges
    # The bin is the number of left edges at or below the code, less one (np.digitize).
    return jnp.sum(codes[:, None, :] >= edges[None], axis=1, dtype=jnp.int32) - 1


@functools.partial(jax.jit, static_argnames=("num_bins", "num_classes"))
def _information(
    bins: jax.Array, labels: jax.Array, num_bins: int, num_classes: int
) -> tuple[jax.Array, jax.Array]:
    n = bins.shape[0]
    codes = jax.nn.one_hot(bins, num_bins)  # (n, C, B)
    factors = jax.nn.one_hot(labels, num_classes)  # (n, F, K)
    joint = jnp.einsum("ncb,nfk->cfbk", codes, factors, precision=jax.lax.Precision.HIGHEST) / n
    p_code = codes.mean(axis=0)  # (C, B)
    p_factor = factors.mean(axis=0)  # (F, K)
    independent = p_code[:, None, :, None] * p_factor[None, :, None, :]
    seen = joint > 0
    log_ratio = jnp.log(jnp.where(seen, joint, 1.0)) - jnp.log(jnp.where(seen, independent, 1.0))
    information = jnp.sum(joint * log_ratio, axis=(2, 3))
    occupied = p_factor > 0
    entropy = -jnp.sum(p_factor * jnp.log(jnp.where(occupied, p_factor, 1.0)), axis=1)
    return information, entropy


def _check_codes(codes: Any) -> jax.Array:
    codes = validation.check_array("codes", codes, ndim=2, axes="(n, num_codes)")
    return jnp.asarray(codes)


def _check_bins(num_bins: Any) -> int:
    return validation.check_int("num_bins", num_bins, 1)


def histogram_discretize(codes: Any, num_bins: int = DEFAULT_NUM_BINS) -> np.ndarray:
    """Each code dimension's equal-width histogram bin (disentanglement_lib's discretizer).

    Args:
        codes: array of shape (n, num_codes).
        num_bins: bins per code dimension, over its range in ``codes``.

    Returns:
        int32 array of shape (n, num_codes), values in ``[0, num_bins)``.
    """
    num_bins = _check_bins(num_bins)
    return np.asarray(_bins(_check_codes(codes), num_bins))


def _labels(factors: Any, n: int) -> tuple[np.ndarray, int]:
    factors = validation.check_array(
        "factors", factors, ndim=2, axes="(n, num_factors)", dtype="numeric"
    )
    factors = np.asarray(factors)
    if factors.dtype.kind not in "iub" and not np.array_equal(factors, np.round(factors)):
        raise ValueError("factors must hold discrete values (integers), got fractional values")
    if factors.shape[0] != n:
        raise ValueError(
            f"factors must have one row per row of codes ({n}), got shape {factors.shape}"
        )
    labels = np.empty(factors.shape, np.int32)
    num_classes = 1
    for k in range(factors.shape[1]):
        values, labels[:, k] = np.unique(factors[:, k], return_inverse=True)
        num_classes = max(num_classes, len(values))
    return labels, num_classes


def discretized_information(
    codes: Any, factors: Any, num_bins: int = DEFAULT_NUM_BINS
) -> tuple[np.ndarray, np.ndarray]:
    """The mutual information of the discretized codes with the factors, and the factors' entropy.

    Args:
        codes: array of shape (n, num_codes).
        factors: array of shape (n, num_factors) of discrete values (any integer labels).
        num_bins: bins per code dimension (:func:`histogram_discretize`).

    Returns:
        ``(information, entropy)``: float64 arrays of shapes (num_codes, num_factors) and
        (num_factors,), in nats.
    """
    num_bins = _check_bins(num_bins)
    codes = _check_codes(codes)
    labels, num_classes = _labels(factors, codes.shape[0])
    information, entropy = _information(
        _bins(codes, num_bins), jnp.asarray(labels), num_bins, num_classes
    )
    return np.asarray(information, np.float64), np.asarray(entropy, np.float64)


def mutual_information_matrix(
    codes: Any, factors: Any, num_bins: int = DEFAULT_NUM_BINS
) -> np.ndarray:
    """The discretized mutual information of every code with every factor, for a figure.

    The matrix MIG and modularity are computed from (disentanglement_lib's
    ``discrete_mutual_info`` of the histogram-discretized codes).

    Args:
        codes: array of shape (n, num_codes).
        factors: array of shape (n, num_factors) of discrete values (any integer labels).
        num_bins: bins per code dimension (:func:`histogram_discretize`).

    Returns:
        float64 array of shape (num_codes, num_factors), in nats.
    """
    return discretized_information(codes, factors, num_bins)[0]
