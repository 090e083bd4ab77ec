"""Every metric at once, at disentanglement_lib's sample sizes or a fraction of them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import jax

from latent_jax import validation
from latent_jax.disentanglement.beta_vae import beta_vae_score
from latent_jax.disentanglement.dci import dci
from latent_jax.disentanglement.defaults import DEFAULT_BATCH_SIZE, DEFAULT_SAMPLE_SIZES
from latent_jax.disentanglement.factor_vae import factor_vae_score
from latent_jax.disentanglement.ground_truth import check_ground_truth_data
from latent_jax.disentanglement.mig import mig
from latent_jax.disentanglement.modularity import modularity_explicitness
from latent_jax.disentanglement.sap import sap

__all__ = ["METRICS", "evaluate_all"]

# The metrics by name, in the order evaluate_all runs them; metric i gets key split(key)[i]
# whichever of them run.
METRICS: Mapping[str, Callable[..., dict[str, float]]] = MappingProxyType(
    {
        "beta_vae_score": beta_vae_score,
        "factor_vae_score": factor_vae_score,
        "mig": mig,
        "sap": sap,
        "dci": dci,
        "modularity_explicitness": modularity_explicitness,
    }
)


def _scaled_sizes(name: str, scale: float) -> dict[str, int]:
    return {size: max(2, round(n * scale)) for size, n in DEFAULT_SAMPLE_SIZES[name].items()}


def evaluate_all(
    representation_fn: Callable[[Any], Any],
    ground_truth_data: Any,
    key: Any,
    *,
    scale: float = 1.0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    metrics: Sequence[str] = tuple(METRICS),
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, float]:
    """Runs the metrics on one representation and merges their results.

    Args:
        representation_fn: observations (batch, ...) -> codes (batch, num_codes).
        ground_truth_data: the data (:class:`~latent_jax.disentanglement.GroundTruthData`).
        key: a ``jax.random`` key; metric ``i`` of :data:`METRICS` gets ``split(key, 6)[i]``,
            so a metric's result does not depend on which others run.
        scale: every sample size of :data:`DEFAULT_SAMPLE_SIZES` times this (rounded, at least
            2), e.g. 0.1 for a quick look; 1 is disentanglement_lib's study.
        batch_size: observations per call of ``representation_fn``.
        metrics: which of :data:`METRICS` to run (all by default).
        options: keyword arguments per metric name, applied after ``scale``, e.g.
            ``{"dci": {"importance": "lasso"}, "sap": {"num_train": 2000}}``.

    Returns:
        Every key of the metrics run (``beta_vae_score``, ``factor_vae_score``, ``mig``,
        ``sap``, ``dci_disentanglement``, ``dci_completeness``, ``dci_informativeness``,
        ``modularity``, ``explicitness`` and their extras), as floats.
    """
    key = validation.check_key("key", key)
    scale = validation.check_real("scale", scale, positive=True)
    if isinstance(metrics, str) or not isinstance(metrics, Sequence):
        raise TypeError(f"metrics must be a sequence of metric names, got {metrics!r}")
    for name in metrics:
        validation.check_choice("metrics", name, tuple(METRICS))
    if len(set(metrics)) != len(metrics):
        raise ValueError(f"metrics must not repeat a name, got {tuple(metrics)}")
    options = {} if options is None else options
    if not isinstance(options, Mapping):
        raise TypeError(f"options must map metric names to keyword arguments, got {options!r}")
    for name, kwargs in options.items():
        if name not in metrics:
            raise ValueError(
                f"options names a metric that does not run: {name!r} (running {tuple(metrics)})"
            )
        if not isinstance(kwargs, Mapping):
            raise TypeError(f"options[{name!r}] must be a mapping of keyword arguments")
    check_ground_truth_data(ground_truth_data)
    keys = jax.random.split(key, len(METRICS))
    results: dict[str, float] = {}
    for position, (name, metric) in enumerate(METRICS.items()):
        if name in metrics:
            kwargs = {
                **_scaled_sizes(name, scale),
                "batch_size": batch_size,
                **options.get(name, {}),
            }
            results.update(metric(representation_fn, ground_truth_data, keys[position], **kwargs))
    return results
