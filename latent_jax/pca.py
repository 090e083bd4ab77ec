"""Moved to :mod:`latent_jax.linear` (PCA and probabilistic PCA); this module serves the old
names with a ``DeprecationWarning`` for one release."""

from latent_jax._deprecation import moved_module as _moved_module
from latent_jax.linear import accumulator as _accumulator
from latent_jax.linear import estimators as _estimators
from latent_jax.linear import kernels as _kernels
from latent_jax.linear import pca as _pca
from latent_jax.linear import ppca as _ppca

__getattr__ = _moved_module(
    __name__,
    "latent_jax.linear",
    {
        "latent_jax.linear.pca": _pca,
        "latent_jax.linear.accumulator": _accumulator,
        "latent_jax.linear.ppca": _ppca,
        "latent_jax.linear.estimators": _estimators,
        "latent_jax.linear.kernels": _kernels,
    },
    renamed={"fit_pca_streaming": "fit_pca_chunks"},
)
