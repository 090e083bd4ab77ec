"""The scikit-learn estimator of PCA and probabilistic PCA, :class:`PCA`: ``fit``/``transform``/
``inverse_transform``/``score_samples`` and attributes ending in ``_``, for pipelines. It passes
scikit-learn's ``check_estimator`` and computes float64 data in float64 inside a scoped
``jax.enable_x64(True)``, whatever the global setting. Its methods after ``fit`` (projections,
the probabilistic PCA density and covariance) are those of any fitted PCA, ``_PCAModel``, which
:class:`~latent_jax.linear.IncrementalPCA` shares.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from latent_jax import validation
from latent_jax.linear import estimator_support as support
from latent_jax.linear.kernels import (
    PCAState,
    _check_block_rows,
    _check_n_components,
    _decode_kernel,
    _encode_kernel,
    _log_likelihood_kernel,
    _ppca_covariance_kernel,
    _to_device,
)
from latent_jax.linear.pca import _fit, _VarianceOverflowError


class _PCAModel(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """The methods of a fitted PCA: projections, the probabilistic PCA density and covariance.

    Subclasses fit ``mean_``, ``components_``, ``explained_variance_``, ``noise_variance_`` and
    ``n_components_``, and have a ``whiten`` parameter.
    """

    def _check_input(self, X: ArrayLike) -> np.ndarray:
        check_is_fitted(self)
        return support.validate_data(self, X, dtype=[np.float64, np.float32], reset=False)

    def __sklearn_tags__(self):
        """scikit-learn's tags: a transformer that keeps float32 and float64."""
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _dtype(self, x: np.ndarray) -> np.dtype:
        """The dtype a method computes and returns in: the wider of the fit's and ``x``'s."""
        return support.wider_dtype(x, self.components_)

    def _kernel_args(self, dtype: np.dtype) -> tuple[Array, Array, Array]:
        """The fitted mean, components and variances as device arrays of ``dtype``."""
        return tuple(
            jax.device_put(np.asarray(a, dtype=dtype))
            for a in (self.mean_, self.components_, self.explained_variance_)
        )

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Codes of ``X``, array of shape (n_samples, n_components_)."""
        return self._transform(self._check_input(X))

    def _transform(self, x: np.ndarray) -> np.ndarray:
        dtype = self._dtype(x)
        with support.precision_scope(dtype):
            mean, components, variance = self._kernel_args(dtype)
            z = _encode_kernel(mean, components, variance, _to_device(x, dtype), bool(self.whiten))
            return support.host(z, dtype)

    def inverse_transform(self, X: ArrayLike) -> np.ndarray:
        """Maps codes, array of shape (n_samples, n_components_), back to data space."""
        check_is_fitted(self)
        z = support.check_codes(X, self.n_components_)
        dtype = self._dtype(z)
        with support.precision_scope(dtype):
            mean, components, variance = self._kernel_args(dtype)
            x = _decode_kernel(mean, components, variance, _to_device(z, dtype), bool(self.whiten))
            return support.host(x, dtype)

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """Probabilistic PCA log-likelihood of each row of ``X``, array of shape (n_samples,)."""
        x = self._check_input(X)
        dtype = self._dtype(x)
        with support.precision_scope(dtype):
            mean, components, variance = self._kernel_args(dtype)
            noise = jnp.asarray(self.noise_variance_, dtype)
            log_p = _log_likelihood_kernel(mean, components, variance, noise, _to_device(x, dtype))
            return support.host(log_p, dtype)

    def score(self, X: ArrayLike, y: Any = None) -> float:
        """Average probabilistic PCA log-likelihood of the rows of ``X``."""
        return float(np.mean(self.score_samples(X)))

    def get_covariance(self) -> np.ndarray:
        """Model covariance ``W W^T + noise_variance_ I``, of shape (n_features, n_features)."""
        check_is_fitted(self)
        dtype = self.components_.dtype
        with support.precision_scope(dtype):
            _, components, variance = self._kernel_args(dtype)
            noise = jnp.asarray(self.noise_variance_, dtype)
            return support.host(_ppca_covariance_kernel(components, variance, noise), dtype)

    def get_precision(self) -> np.ndarray:
        """Inverse of :meth:`get_covariance`, from the eigenvalues (no matrix inversion)."""
        check_is_fitted(self)
        spectrum = np.maximum(self.explained_variance_, self.noise_variance_)
        v = self.components_
        precision = (v.T / spectrum) @ v
        if v.shape[0] < v.shape[1]:
            rest = np.eye(v.shape[1], dtype=v.dtype) - v.T @ v
            precision = precision + rest / self.noise_variance_
        return precision

    @property
    def _n_features_out(self) -> int:
        return self.components_.shape[0]


class PCA(_PCAModel):
    """Principal component analysis with scikit-learn's interface, computed in JAX.

    A drop-in for ``sklearn.decomposition.PCA`` in pipelines: the same learned attributes with
    the same conventions (``explained_variance_`` with ``ddof=1``, ``noise_variance_`` as the
    mean of the discarded eigenvalues, the same component signs), the probabilistic PCA
    ``score_samples``/``score``, and scikit-learn's input checks and messages
    (``validate_data``): ``n_features_in_``, ``feature_names_in_`` for data frames,
    ``get_feature_names_out`` and ``set_output``.

    Precision follows the data, as in scikit-learn: float32 input is computed and returned in
    float32; float64 input (and integer, bool or object input, converted to float64) is
    computed and returned in float64 (so is float32 input whose variances float32 cannot
    hold, beyond about 1e18 or below 1e-19: its attributes are float64; data of extreme
    magnitude are scaled exactly, by a power of two, see :func:`fit_pca`). The float64
    computations run inside
    ``jax.enable_x64(True)``, a scoped, thread-local override: JAX's global ``jax_enable_x64``
    setting, and so the rest of the program, is left as it was. ``transform`` and the other
    methods compute in the wider of the fitted dtype and the input's. Every returned array
    (and every fitted array attribute) is an ordinary writeable NumPy array.

    Sparse input is refused with scikit-learn's message (pass ``X.toarray()``).

    Args:
        n_components: components to keep, in ``[1, min(n_samples, n_features)]``; ``None``
            keeps ``min(n_samples, n_features)``.
        whiten: scale the codes of ``transform`` to unit variance (and undo it in
            ``inverse_transform``). ``score_samples`` does not depend on it; scikit-learn's
            does, because its ``get_covariance`` rescales the components when whitening.

    Attributes:
        components_: array of shape (n_components_, n_features_in_).
        explained_variance_: array of shape (n_components_,).
        explained_variance_ratio_: array of shape (n_components_,).
        singular_values_: array of shape (n_components_,).
        mean_: array of shape (n_features_in_,).
        noise_variance_: NumPy scalar of the fitted dtype.
        n_components_: int.
        n_features_in_: int.
        feature_names_in_: array of shape (n_features_in_,), the column names, set only when
            ``X`` has string column names (a data frame).
        n_samples_: int.
        state_: the :class:`PCAState` behind it all, for the functional API, holding the same
            NumPy arrays as the attributes above (plus the whole spectrum in ``eigenvalues``).
            For a float64 fit, call the functional API inside ``jax.enable_x64(True)`` to keep
            float64; outside it JAX computes in float32.
    """

    def __init__(self, n_components: int | None = None, *, whiten: bool = False):
        self.n_components = n_components
        self.whiten = whiten

    def fit(self, X: ArrayLike, y: Any = None) -> PCA:
        """Fits the model to ``X``, array of shape (n_samples, n_features); returns ``self``.

        Raises:
            TypeError: ``n_components`` is not an int or ``None``, ``whiten`` is not a bool,
                or ``X`` is sparse or not numeric.
            ValueError: ``X`` is not 2-D, has fewer than 2 samples or no feature, holds
                NaN/Inf or complex values; ``n_components`` is out of range.
        """
        self._fit_data(X)
        return self

    def _fit_data(self, X: ArrayLike) -> np.ndarray:
        """Fits; returns ``X`` as validated."""
        validation.check_bool("whiten", self.whiten)
        x = support.validate_data(
            self, X, dtype=[np.float64, np.float32], ensure_min_samples=2, reset=True
        )
        n_samples, n_features = x.shape
        n_components = _check_n_components(self.n_components, n_samples, n_features)
        dtype = x.dtype
        try:
            with support.precision_scope(dtype):
                state = _fit(x, n_components, 1, _check_block_rows(None, n_features), "X")
        except _VarianceOverflowError:
            if dtype == np.float64:
                raise
            # float32 data whose variances only float64 holds (|X| beyond about 1e18, or
            # below about 1e-19).
            x = x.astype(np.float64)
            dtype = x.dtype
            with support.precision_scope(dtype):
                state = _fit(x, n_components, 1, _check_block_rows(None, n_features), "X")
        with support.precision_scope(dtype):
            host = [support.host(a, dtype) for a in state[:7]]
        self.state_ = PCAState(*host, n_samples=n_samples, ddof=state.ddof)
        (
            self.mean_,
            self.components_,
            _,
            self.explained_variance_,
            self.explained_variance_ratio_,
            self.singular_values_,
            noise,
        ) = host
        self.noise_variance_ = noise[()]
        self.n_components_ = n_components
        self.n_samples_ = n_samples
        return x

    def fit_transform(self, X: ArrayLike, y: Any = None) -> np.ndarray:
        """Fits to ``X`` and returns its codes, array of shape (n_samples, n_components_)."""
        return self._transform(self._fit_data(X))
