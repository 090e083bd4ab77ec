r"""The mutual information gap (Chen et al. 2018, "Isolating Sources of Disentanglement in
Variational Autoencoders", Section 5), as disentanglement_lib computes it
(``evaluation/metrics/mig.py``, its ``discrete_mig``).

Over ``num_train`` points, with the codes discretized into ``num_bins`` histogram bins each
(:func:`~latent_jax.disentanglement.histogram_discretize`),

.. math::

    \mathrm{MIG} = \frac1K \sum_{k=1}^K \frac{I(c_{j^{(k)}}; v_k) - \max_{j \ne j^{(k)}}
    I(c_j; v_k)}{H(v_k)}, \qquad j^{(k)} = \arg\max_j I(c_j; v_k),

the gap between the two codes most informative about each factor, normalized by the factor's
entropy (plug-in estimates in nats, :mod:`latent_jax.disentanglement.information`). A code
equal to a factor (up to a bijection of its values) has :math:`I = H(v_k)`; a second code that
carries the same factor closes the gap.

Departure from disentanglement_lib: a factor that takes one value in the sample (entropy 0)
raises ValueError, where disentanglement_lib divides by zero.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from latent_jax import validation
from latent_jax.disentanglement.classifiers import check_labels
from latent_jax.disentanglement.defaults import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_NUM_BINS,
    DEFAULT_SAMPLE_SIZES,
)
from latent_jax.disentanglement.ground_truth import CodeSampler
from latent_jax.disentanglement.information import discretized_information

__all__ = ["mig", "mutual_information_gap"]

_SIZES = DEFAULT_SAMPLE_SIZES["mig"]


def mutual_information_gap(information: Any, entropy: Any) -> float:
    """MIG from the mutual information matrix and the factors' entropies.

    Args:
        information: array of shape (num_codes >= 2, num_factors), :math:`I(c_j; v_k)`.
        entropy: array of shape (num_factors,), :math:`H(v_k) > 0`.

    Returns:
        The mean over factors of the normalized gap between the two largest informations.
    """
    information = np.asarray(information, np.float64)
    entropy = np.asarray(entropy, np.float64)
    if information.ndim != 2 or information.shape[0] < 2:
        raise ValueError(
            "MIG needs the information of at least 2 codes: information must have shape "
            f"(num_codes >= 2, num_factors), got shape {information.shape}"
        )
    if entropy.shape != information.shape[1:] or np.any(entropy <= 0):
        raise ValueError(
            f"entropy must be positive with shape {information.shape[1:]}, got {entropy!r}"
        )
    top = np.sort(information, axis=0)
    return float(np.mean((top[-1] - top[-2]) / entropy))


def mig(
    representation_fn: Callable[[Any], Any],
    ground_truth_data: Any,
    key: Any,
    *,
    num_train: int = _SIZES["num_train"],
    num_bins: int = DEFAULT_NUM_BINS,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> dict[str, float]:
    """The mutual information gap of a representation.

    Args:
        representation_fn: observations (batch, ...) -> codes (batch, num_codes >= 2).
        ground_truth_data: the data (:class:`~latent_jax.disentanglement.GroundTruthData`).
        key: a ``jax.random`` key; the same key gives the same score.
        num_train: points drawn (disentanglement_lib: 10000).
        num_bins: histogram bins per code dimension (20).
        batch_size: observations per call of ``representation_fn``.

    Returns:
        ``mig``.
    """
    key = validation.check_key("key", key)
    num_train = validation.check_int("num_train", num_train, 2)
    num_bins = validation.check_int("num_bins", num_bins, 1)
    sampler = CodeSampler(representation_fn, ground_truth_data, batch_size)
    codes, factors = sampler.sample(key, num_train)
    check_labels("mig", factors, "num_train")
    if codes.shape[1] < 2:
        raise ValueError(
            f"mig needs at least 2 codes (the gap between the top two), got {codes.shape[1]}"
        )
    information, entropy = discretized_information(codes, factors, num_bins)
    return {"mig": mutual_information_gap(information, entropy)}
