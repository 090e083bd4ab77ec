r"""Factor analysis: probabilistic PCA with one noise variance per feature (Bishop, 2006,
§12.2.4), fitted by scikit-learn's SVD-based EM, in ``jax.numpy``.

The model is :math:`x = W^\top z + \mu + \epsilon` with :math:`z \sim \mathcal{N}(0, I_Q)` and
:math:`\epsilon \sim \mathcal{N}(0, \Psi)`, :math:`\Psi = \mathrm{diag}(\psi)`; ``components_``
is :math:`W` of shape (Q, D). Each EM iteration (Barber, 2012, Algorithm 21.1, as
scikit-learn's ``FactorAnalysis``) takes the leading Q eigenpairs :math:`(s_j^2, v_j)` of
the noise-scaled covariance :math:`\tilde C = \Psi^{-1/2} C \Psi^{-1/2}` (:math:`C` the
biased sample covariance), sets

.. math::

    W = \mathrm{diag}\big(\sqrt{\max(s^2 - 1, 0)}\big)\, V^\top \Psi^{1/2}, \qquad
    \psi \leftarrow \max\big(\mathrm{diag}(C) - \mathrm{diag}(W^\top W), 10^{-12}\big),

and records the log-likelihood
:math:`-\tfrac N2\big(D\log 2\pi + Q + \sum_j \log s_j^2 + \sum_{j > Q} s_j^2 + \sum_i \log
\psi_i\big)`, stopping when it rises by less than ``tol``.

scikit-learn takes the singular values of the scaled data matrix
:math:`X \Psi^{-1/2} / \sqrt N`, of shape (N, D), in every iteration. Their squares are the
eigenvalues of :math:`\tilde C`, so here the covariance is accumulated once (the blocked
scatter of :mod:`latent_jax.linear.kernels`) and every iteration works on a (D, D) matrix:
``svd_method="lapack"`` is its full eigendecomposition (``jnp.linalg.eigh``, the same numbers
as scikit-learn's LAPACK SVD), ``"randomized"`` a randomized subspace iteration
(``iterated_power`` power steps, 10 oversamples as scikit-learn's ``randomized_svd``, a fresh
Gaussian test matrix each iteration) followed by the Rayleigh-Ritz projection, which for D at
most Q + 10 is exact. The whole EM
loop is one compiled ``lax.while_loop``.

Component signs follow :func:`latent_jax.linear.fit_pca`'s rule (the largest-magnitude entry
of each row is positive; scikit-learn leaves LAPACK's signs); the rotations ``varimax`` and
``quartimax`` (Kaiser, 1958) are scikit-learn's iteration, compiled.

References:
    - Bishop, C. M., "Pattern Recognition and Machine Learning", Springer, 2006, §12.2.4.
    - Barber, D., "Bayesian Reasoning and Machine Learning", Cambridge University Press,
      2012, Algorithm 21.1.
    - Kaiser, H. F., "The varimax criterion for analytic rotation in factor analysis",
      Psychometrika 23(3), 1958.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array, lax
from jax.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from latent_jax import validation
from latent_jax.linear import estimator_support as support
from latent_jax.linear.kernels import (
    _blocked_moments,
    _check_block_rows,
    _chunk_moments,
    _flip_rows,
    _randomized_eigh,
    _to_device,
)

__all__ = ["ROTATIONS", "SVD_METHODS", "FactorAnalysis"]

SVD_METHODS = ("randomized", "lapack")
ROTATIONS = ("varimax", "quartimax")
_LOG_2PI = math.log(2.0 * math.pi)
# scikit-learn's floor of the noise variances and guard of their square roots.
_SMALL = 1e-12
# The rotation's stopping rule (scikit-learn's, not exposed there either).
_ROTATION_TOL = 1e-6
_ROTATION_MAX_ITER = 100
_HIGHEST = lax.Precision.HIGHEST


def _matmul(a: Array, b: Array) -> Array:
    return jnp.matmul(a, b, precision=_HIGHEST)


# --------------------------------------------------------------------------------------------
# Compiled kernels
# --------------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("block_rows",))
def _moments_kernel(x: Array, block_rows: int) -> tuple[Array, Array]:
    """The mean and the biased covariance of the rows of ``x``."""
    count, mean, scatter = _blocked_moments(x, block_rows)
    return mean, scatter / count.astype(x.dtype)


@jax.jit
def _masked_moments_kernel(x: Array, mask: Array) -> tuple[Array, Array]:
    """The mean and the biased covariance of the rows of ``x`` where ``mask`` is True."""
    count, mean, scatter = _chunk_moments(x, mask)
    return mean, scatter / count.astype(x.dtype)


def _leading_eigen(
    m: Array, key: Array, n_components: int, svd_method: str, iterated_power: int
) -> tuple[Array, Array, Array]:
    """The leading eigenvalues (descending) and eigenvectors (rows) of the symmetric PSD
    ``m``, and the sum of the other eigenvalues."""
    if svd_method == "lapack":
        values, vectors = jnp.linalg.eigh(m)
        values = jnp.maximum(values[::-1], 0.0)
        top = values[:n_components]
        rows = vectors[:, ::-1][:, :n_components].T
        rest = jnp.sum(values[n_components:])
    else:
        top, vectors = _randomized_eigh(m, key, n_components, iterated_power)
        top = jnp.maximum(top, 0.0)
        rows = vectors.T
        rest = jnp.maximum(jnp.trace(m) - jnp.sum(top), 0.0)
    return top, _flip_rows(rows), rest


@functools.partial(
    jax.jit, static_argnames=("n_components", "max_iter", "svd_method", "iterated_power")
)
def _em_kernel(
    cov: Array,
    psi: Array,
    n_samples: Array,
    tol: Array,
    key: Array,
    *,
    n_components: int,
    max_iter: int,
    svd_method: str,
    iterated_power: int,
) -> tuple[Array, Array, Array, Array, Array]:
    """scikit-learn's EM iteration on the covariance; returns ``(W, psi, log-likelihoods,
    iterations, converged)``, the log-likelihoods padded with NaN to ``max_iter``."""
    dtype = cov.dtype
    n_features = cov.shape[0]
    variance = jnp.diag(cov)
    constant = n_features * _LOG_2PI + n_components
    tiny = jnp.finfo(dtype).tiny

    def body(carry):
        i, psi, _, old_ll, lls, _ = carry
        sqrt_psi = jnp.sqrt(psi) + _SMALL
        scaled = cov / jnp.outer(sqrt_psi, sqrt_psi)
        s2, rows, unexplained = _leading_eigen(
            scaled, jax.random.fold_in(key, i), n_components, svd_method, iterated_power
        )
        w = jnp.sqrt(jnp.maximum(s2 - 1.0, 0.0))[:, None] * rows * sqrt_psi
        log_det = jnp.sum(jnp.log(jnp.maximum(s2, tiny))) + jnp.sum(jnp.log(psi))
        ll = -0.5 * n_samples * (constant + log_det + unexplained)
        done = ll - old_ll < tol
        new_psi = jnp.maximum(variance - jnp.sum(jnp.square(w), axis=0), _SMALL)
        return i + 1, jnp.where(done, psi, new_psi), w, ll, lls.at[i].set(ll), done

    def cond(carry):
        i, *_, done = carry
        return (i < max_iter) & ~done

    start = (
        jnp.int32(0),
        psi,
        jnp.zeros((n_components, n_features), dtype),
        jnp.asarray(-jnp.inf, dtype),
        jnp.full((max_iter,), jnp.nan, dtype),
        jnp.asarray(False),
    )
    i, psi, w, _, lls, done = lax.while_loop(cond, body, start)
    return w, psi, lls, i, done


@functools.partial(jax.jit, static_argnames=("method",))
def _rotation_kernel(components: Array, method: str) -> Array:
    """scikit-learn's orthogonal rotation of the loadings ``components.T`` (Kaiser, 1958)."""
    loadings = components.T
    n_rows, n_cols = loadings.shape

    def body(carry):
        i, rotation, var, _ = carry
        rotated = _matmul(loadings, rotation)
        target = rotated**3
        if method == "varimax":
            target = target - rotated * (jnp.sum(rotated**2, axis=0) / n_rows)
        u, s, vt = jnp.linalg.svd(_matmul(loadings.T, target))
        new_var = jnp.sum(s)
        stop = (var != 0) & (new_var < var * (1 + _ROTATION_TOL))
        return i + 1, _matmul(u, vt), new_var, stop

    def cond(carry):
        i, *_, stop = carry
        return (i < _ROTATION_MAX_ITER) & ~stop

    dtype = loadings.dtype
    start = (jnp.int32(0), jnp.eye(n_cols, dtype=dtype), jnp.zeros((), dtype), jnp.asarray(False))
    _, rotation, _, _ = lax.while_loop(cond, body, start)
    return _matmul(loadings, rotation).T


def _posterior_factor(components: Array, noise: Array) -> tuple[Array, Array]:
    """:math:`W \\Psi^{-1}` and the Cholesky factor of :math:`I + W \\Psi^{-1} W^\\top`."""
    scaled = components / noise
    inner = _matmul(scaled, components.T) + jnp.eye(components.shape[0], dtype=components.dtype)
    return scaled, jnp.linalg.cholesky(inner)


@jax.jit
def _transform_kernel(mean: Array, components: Array, noise: Array, x: Array) -> Array:
    """Posterior means :math:`(I + W\\Psi^{-1}W^\\top)^{-1} W \\Psi^{-1} (x - \\mu)`."""
    scaled, chol = _posterior_factor(components, noise)
    projected = _matmul(x - mean, scaled.T)
    return jax.scipy.linalg.cho_solve((chol, True), projected.T).T


@jax.jit
def _log_likelihood_kernel(mean: Array, components: Array, noise: Array, x: Array) -> Array:
    """:math:`\\log \\mathcal{N}(x; \\mu, W^\\top W + \\Psi)` of each row, by the Woodbury
    identity and the determinant lemma (no (D, D) matrix)."""
    n_features = mean.shape[0]
    scaled, chol = _posterior_factor(components, noise)
    centred = x - mean
    projected = jax.scipy.linalg.solve_triangular(chol, _matmul(centred, scaled.T).T, lower=True)
    mahalanobis = jnp.sum(jnp.square(centred) / noise, axis=-1) - jnp.sum(
        jnp.square(projected), axis=0
    )
    log_det = jnp.sum(jnp.log(noise)) + 2.0 * jnp.sum(jnp.log(jnp.diag(chol)))
    return -0.5 * (n_features * _LOG_2PI + log_det + mahalanobis)


@jax.jit
def _covariance_kernel(components: Array, noise: Array) -> Array:
    return _matmul(components.T, components) + jnp.diag(noise)


@jax.jit
def _precision_kernel(components: Array, noise: Array) -> Array:
    """:math:`\\Psi^{-1} - \\Psi^{-1} W^\\top (I + W \\Psi^{-1} W^\\top)^{-1} W \\Psi^{-1}`."""
    scaled, chol = _posterior_factor(components, noise)
    half = jax.scipy.linalg.solve_triangular(chol, scaled, lower=True)
    return jnp.diag(1.0 / noise) - _matmul(half.T, half)


# --------------------------------------------------------------------------------------------
# Estimator
# --------------------------------------------------------------------------------------------


class FactorAnalysis(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Factor analysis with scikit-learn's interface and EM, computed in JAX (module docstring).

    A drop-in for ``sklearn.decomposition.FactorAnalysis``: the same parameters, attributes
    and methods. Precision follows the data: float32 input is computed and returned in
    float32, float64 input (and integer or bool input) in float64 inside a scoped
    ``jax.enable_x64(True)`` (scikit-learn computes everything in float64). Every returned
    array and fitted array attribute is an ordinary writeable NumPy array.

    Args:
        n_components: Q, the factors, in ``[0, n_features]``; ``None`` for ``n_features``.
        tol: stop when the log-likelihood rises by less than this, >= 0.
        copy: accepted for scikit-learn's signature; ``X`` is never modified.
        max_iter: the most EM iterations, >= 1.
        noise_variance_init: array of shape (n_features,), positive, the first
            :math:`\\psi`; ``None`` for ones.
        svd_method: ``"randomized"`` or ``"lapack"`` (module docstring).
        iterated_power: power steps of the randomized eigensolver, >= 0.
        rotation: ``None``, ``"varimax"`` or ``"quartimax"``: rotate ``components_`` after
            the fit.
        random_state: None, an int or a ``numpy.random.RandomState``: the randomized
            eigensolver's test matrices.

    Attributes:
        components_: array of shape (n_components, n_features), :math:`W`.
        noise_variance_: array of shape (n_features,), :math:`\\psi`.
        mean_: array of shape (n_features,).
        loglike_: list of float, the log-likelihood after each iteration.
        n_iter_: int, the iterations run.
        n_features_in_: int.
        feature_names_in_: array of shape (n_features_in_,), the column names, set only when
            ``X`` has string column names (a data frame).
    """

    def __init__(
        self,
        n_components: int | None = None,
        *,
        tol: float = 1e-2,
        copy: bool = True,
        max_iter: int = 1000,
        noise_variance_init: ArrayLike | None = None,
        svd_method: str = "randomized",
        iterated_power: int = 3,
        rotation: str | None = None,
        random_state: Any = 0,
    ):
        self.n_components = n_components
        self.tol = tol
        self.copy = copy
        self.max_iter = max_iter
        self.noise_variance_init = noise_variance_init
        self.svd_method = svd_method
        self.iterated_power = iterated_power
        self.rotation = rotation
        self.random_state = random_state

    def __sklearn_tags__(self):
        """scikit-learn's tags: a transformer that keeps float32 and float64."""
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _check_params(self, n_features: int) -> int:
        """Checks every parameter; returns the number of factors."""
        validation.check_real("tol", self.tol, nonnegative=True)
        validation.check_bool("copy", self.copy)
        validation.check_int("max_iter", self.max_iter, 1)
        validation.check_choice("svd_method", self.svd_method, SVD_METHODS)
        validation.check_int("iterated_power", self.iterated_power, 0)
        if self.rotation is not None:
            validation.check_choice("rotation", self.rotation, ROTATIONS)
        if self.n_components is None:
            return n_features
        n_components = validation.check_int("n_components", self.n_components, 0)
        if n_components > n_features:
            raise ValueError(
                f"n_components={n_components} must be between 0 and n_features={n_features}."
            )
        return n_components

    def _initial_noise(self, n_features: int, dtype: np.dtype) -> np.ndarray:
        if self.noise_variance_init is None:
            return np.ones(n_features, dtype)
        psi = validation.check_array(
            "noise_variance_init", self.noise_variance_init, ndim=1, dtype=dtype
        )
        if psi.shape != (n_features,) or not np.all(psi > 0):
            raise ValueError(
                f"noise_variance_init must hold n_features={n_features} positive variances; "
                f"got shape {psi.shape} with minimum {psi.min() if psi.size else None}."
            )
        return psi

    def fit(self, X: ArrayLike, y: Any = None) -> FactorAnalysis:
        """Fits the model to ``X``, array of shape (n_samples, n_features); returns ``self``.

        Raises:
            TypeError: a parameter has the wrong type, or ``X`` is sparse or not numeric.
            ValueError: ``X`` is not 2-D, has fewer than 2 samples, holds NaN/Inf; a
                parameter is out of range.

        Warns:
            ConvergenceWarning: when ``max_iter`` iterations did not reach ``tol``.
        """
        x = support.validate_data(
            self, X, dtype=[np.float64, np.float32], ensure_min_samples=2, reset=True
        )
        n_samples, n_features = x.shape
        n_components = self._check_params(n_features)
        dtype = x.dtype
        psi = self._initial_noise(n_features, dtype)
        key = support.jax_key(self.random_state)
        block_rows = _check_block_rows(None, n_features)
        with support.precision_scope(dtype):
            if n_samples <= block_rows:  # one block, padded to share compiled programs
                mean, cov = _masked_moments_kernel(*support.padded_rows(x, dtype))
            else:
                mean, cov = _moments_kernel(_to_device(x, dtype), block_rows)
            w, psi, lls, n_iter, converged = _em_kernel(
                cov,
                jnp.asarray(psi),
                jnp.asarray(n_samples, dtype),
                jnp.asarray(self.tol, dtype),
                key,
                n_components=n_components,
                max_iter=int(self.max_iter),
                svd_method=self.svd_method,
                iterated_power=int(self.iterated_power),
            )
            if self.rotation is not None and n_components > 0:
                w = _rotation_kernel(w, self.rotation)
            self.components_ = support.host(w, dtype)
            self.noise_variance_ = support.host(psi, dtype)
            self.mean_ = support.host(mean, dtype)
            self.n_iter_ = int(n_iter)
            self.loglike_ = [float(v) for v in np.asarray(lls)[: self.n_iter_]]
        if not bool(converged):
            warnings.warn(
                f"FactorAnalysis did not converge in max_iter={self.max_iter} iterations "
                f"(tol={self.tol}); increase max_iter.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def _fitted_args(self, dtype: np.dtype) -> tuple[Array, Array, Array]:
        """The fitted mean, components and noise variances as device arrays of ``dtype``."""
        return tuple(
            jax.device_put(np.asarray(a, dtype=dtype))
            for a in (self.mean_, self.components_, self.noise_variance_)
        )

    def _check_input(self, X: ArrayLike) -> tuple[np.ndarray, np.dtype]:
        check_is_fitted(self)
        x = support.validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return x, support.wider_dtype(x, self.components_)

    def transform(self, X: ArrayLike) -> np.ndarray:
        """The posterior means of the factors (Bishop, 2006, eq. 12.66), array of shape
        (n_samples, n_components)."""
        x, dtype = self._check_input(X)
        with support.precision_scope(dtype):
            mean, components, noise = self._fitted_args(dtype)
            rows, _ = support.padded_rows(x, dtype)
            z = _transform_kernel(mean, components, noise, rows)
            return support.host(z, dtype)[: len(x)]

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """The log-likelihood of each row of ``X`` under :math:`\\mathcal{N}(\\mu, W^\\top W +
        \\Psi)`, array of shape (n_samples,)."""
        x, dtype = self._check_input(X)
        with support.precision_scope(dtype):
            mean, components, noise = self._fitted_args(dtype)
            rows, _ = support.padded_rows(x, dtype)
            log_p = _log_likelihood_kernel(mean, components, noise, rows)
            return support.host(log_p, dtype)[: len(x)]

    def score(self, X: ArrayLike, y: Any = None) -> float:
        """The average log-likelihood of the rows of ``X``."""
        return float(np.mean(self.score_samples(X)))

    def get_covariance(self) -> np.ndarray:
        """The model covariance :math:`W^\\top W + \\Psi`, of shape (n_features, n_features)."""
        check_is_fitted(self)
        dtype = self.components_.dtype
        with support.precision_scope(dtype):
            _, components, noise = self._fitted_args(dtype)
            return support.host(_covariance_kernel(components, noise), dtype)

    def get_precision(self) -> np.ndarray:
        """The inverse of :meth:`get_covariance` by the Woodbury identity, of shape
        (n_features, n_features)."""
        check_is_fitted(self)
        dtype = self.components_.dtype
        with support.precision_scope(dtype):
            _, components, noise = self._fitted_args(dtype)
            return support.host(_precision_kernel(components, noise), dtype)

    @property
    def _n_features_out(self) -> int:
        return self.components_.shape[0]
