"""Linear latent-variable models: PCA, probabilistic PCA, robust PCA, factor analysis,
incremental and kernel PCA and ICA, as pure JAX functions and as scikit-learn estimators.

* :mod:`~latent_jax.linear.kernels`: the fitted state's types (:class:`PCAState`,
  :class:`CovarianceAccumulator`, :class:`PPCAParams`), the argument checks and the jitted
  programs the other modules run.
* :mod:`~latent_jax.linear.pca`: :func:`fit_pca` (the blocked scatter and its
  eigendecomposition, exact at any magnitude) and the projections :func:`encode`,
  :func:`decode`, :func:`reconstruction_error`; its docstring states the conventions
  (``ddof``, component signs, ``noise_variance``).
* :mod:`~latent_jax.linear.accumulator`: PCA of data that arrive in chunks
  (:func:`fit_pca_chunks` and the accumulator it is built on).
* :mod:`~latent_jax.linear.ppca`: probabilistic PCA in closed form (:func:`fit_ppca`, its
  parameters, log-likelihood, posterior and samples).
* :mod:`~latent_jax.linear.robust_pca`: principal component pursuit (:func:`robust_pca`,
  :class:`RobustPCA`).
* :mod:`~latent_jax.linear.estimators`: the scikit-learn estimator :class:`PCA`.
* :mod:`~latent_jax.linear.factor_analysis`: :class:`FactorAnalysis`, probabilistic PCA with
  one noise variance per feature, by scikit-learn's EM (and its varimax/quartimax rotations).
* :mod:`~latent_jax.linear.incremental_pca`: :class:`IncrementalPCA` and its ``partial_fit``
  (Ross et al.'s update; the covariance accumulator where nothing is truncated).
* :mod:`~latent_jax.linear.kernel_pca`: :class:`KernelPCA` (RBF, polynomial, sigmoid, cosine,
  linear and precomputed kernels; dense and randomized eigensolvers; pre-images).
* :mod:`~latent_jax.linear.fastica`: :class:`FastICA` (parallel and deflation FastICA).
* :mod:`~latent_jax.linear.estimator_support`: what the estimators share (scikit-learn's input
  checks, the float64 scope, NumPy results).

Streaming a source larger than memory through the accumulator is
:func:`latent_jax.data.streaming.fit_pca_source`; through an estimator's ``partial_fit``
(:class:`IncrementalPCA`'s), :func:`latent_jax.data.streaming.partial_fit_source`.
"""

from latent_jax.linear.accumulator import (
    accumulator_finalize,
    accumulator_init,
    accumulator_merge,
    accumulator_update,
    fit_pca_chunks,
)
from latent_jax.linear.estimators import PCA
from latent_jax.linear.factor_analysis import FactorAnalysis
from latent_jax.linear.fastica import FastICA
from latent_jax.linear.incremental_pca import IncrementalPCA
from latent_jax.linear.kernel_pca import KernelPCA
from latent_jax.linear.kernels import CovarianceAccumulator, PCAState, PPCAParams
from latent_jax.linear.pca import decode, encode, fit_pca, reconstruction_error
from latent_jax.linear.ppca import (
    fit_ppca,
    ppca_covariance,
    ppca_log_likelihood,
    ppca_params,
    ppca_posterior,
    ppca_sample,
)
from latent_jax.linear.robust_pca import RobustPCA, RobustPCAInfo, robust_pca

__all__ = [
    "PCA",
    "CovarianceAccumulator",
    "FactorAnalysis",
    "FastICA",
    "IncrementalPCA",
    "KernelPCA",
    "PCAState",
    "PPCAParams",
    "RobustPCA",
    "RobustPCAInfo",
    "accumulator_finalize",
    "accumulator_init",
    "accumulator_merge",
    "accumulator_update",
    "decode",
    "encode",
    "fit_pca",
    "fit_pca_chunks",
    "fit_ppca",
    "ppca_covariance",
    "ppca_log_likelihood",
    "ppca_params",
    "ppca_posterior",
    "ppca_sample",
    "reconstruction_error",
    "robust_pca",
]
