"""Linear latent-variable models: PCA, probabilistic PCA and robust PCA, as pure JAX functions
and as scikit-learn estimators.

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

Streaming a source larger than memory through the accumulator is
:func:`latent_jax.data.streaming.fit_pca_source`.
"""

from latent_jax.linear.accumulator import (
    accumulator_finalize,
    accumulator_init,
    accumulator_merge,
    accumulator_update,
    fit_pca_chunks,
)
from latent_jax.linear.estimators import PCA
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
