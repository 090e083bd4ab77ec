"""Disentanglement metrics of a representation against ground-truth factors, as Google
Research's disentanglement_lib defines them (Locatello et al. 2019).

Every metric is a function ``(representation_fn, ground_truth_data, key, **sizes) -> dict``:
``representation_fn`` maps observations (batch, ...) to codes (batch, num_codes) (a trained
encoder's posterior mean, or any function); ``ground_truth_data`` is any object with
``factors_num_values``, ``num_factors``, ``sample_factors(key, n)`` and
``sample_observations_from_factors(factors, key)`` (:class:`GroundTruthData`); ``key`` is a
``jax.random`` key, from which every draw and every scikit-learn seed is derived.

* :mod:`~latent_jax.disentanglement.beta_vae`: :func:`beta_vae_score` (Higgins et al. 2017).
* :mod:`~latent_jax.disentanglement.factor_vae`: :func:`factor_vae_score` (Kim & Mnih 2018).
* :mod:`~latent_jax.disentanglement.mig`: :func:`mig` (Chen et al. 2018).
* :mod:`~latent_jax.disentanglement.sap`: :func:`sap` (Kumar et al. 2018).
* :mod:`~latent_jax.disentanglement.dci`: :func:`dci` (Eastwood & Williams 2018) and
  :func:`dci_from_importance`.
* :mod:`~latent_jax.disentanglement.modularity`: :func:`modularity_explicitness` (Ridgeway &
  Mozer 2018) and :func:`modularity_score`.
* :mod:`~latent_jax.disentanglement.unsupervised`: :func:`unsupervised_scores`, the Gaussian
  total correlation of the codes and its kin (no factors needed).
* :mod:`~latent_jax.disentanglement.suite`: :func:`evaluate_all`, every metric at once.
* :mod:`~latent_jax.disentanglement.information`: :func:`histogram_discretize` and
  :func:`mutual_information_matrix` (``jax.numpy``).
* :mod:`~latent_jax.disentanglement.ground_truth`: the data interface and the batched encoding.
* :mod:`~latent_jax.disentanglement.classifiers`: seeds, label checks and quiet fitting of the
  scikit-learn models.
* :mod:`~latent_jax.disentanglement.defaults`: the sample sizes and settings, from
  disentanglement_lib's study (:data:`DEFAULT_SAMPLE_SIZES`).
"""

from latent_jax.disentanglement.beta_vae import beta_vae_score
from latent_jax.disentanglement.dci import IMPORTANCES, dci, dci_from_importance
from latent_jax.disentanglement.defaults import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_NUM_BINS,
    DEFAULT_SAMPLE_SIZES,
)
from latent_jax.disentanglement.factor_vae import factor_vae_score
from latent_jax.disentanglement.ground_truth import GroundTruthData
from latent_jax.disentanglement.information import (
    histogram_discretize,
    mutual_information_matrix,
)
from latent_jax.disentanglement.mig import mig, mutual_information_gap
from latent_jax.disentanglement.modularity import modularity_explicitness, modularity_score
from latent_jax.disentanglement.sap import sap
from latent_jax.disentanglement.suite import METRICS, evaluate_all
from latent_jax.disentanglement.unsupervised import (
    gaussian_total_correlation,
    gaussian_wasserstein_correlation,
    unsupervised_scores,
)

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_NUM_BINS",
    "DEFAULT_SAMPLE_SIZES",
    "IMPORTANCES",
    "METRICS",
    "GroundTruthData",
    "beta_vae_score",
    "dci",
    "dci_from_importance",
    "evaluate_all",
    "factor_vae_score",
    "gaussian_total_correlation",
    "gaussian_wasserstein_correlation",
    "histogram_discretize",
    "mig",
    "modularity_explicitness",
    "modularity_score",
    "mutual_information_gap",
    "mutual_information_matrix",
    "sap",
    "unsupervised_scores",
]
