r"""Kernel PCA (Schölkopf, Smola & Müller, 1998), scikit-learn's ``KernelPCA`` in
``jax.numpy``: PCA in the feature space of a kernel, through the eigendecomposition of the
centred Gram matrix.

With the Gram matrix :math:`K_{ij} = k(x_i, x_j)` of the N training rows, centring in feature
space is :math:`\tilde K = K - \mathbf 1 K / N - K \mathbf 1 / N + \mathbf 1 K \mathbf 1 / N^2`
(scikit-learn's ``KernelCenterer``). Its leading eigenpairs :math:`(\lambda_j, a_j)`, unit
:math:`a_j`, give the codes of the training rows :math:`z_{ij} = \sqrt{\lambda_j}\, a_{ij}`
and of new rows :math:`z_j(x) = \tilde k(x)^\top a_j / \sqrt{\lambda_j}`, with
:math:`\tilde k(x)` the new row's kernel against the training rows, centred with the
training statistics.

Kernels (scikit-learn's ``pairwise_kernels`` with the same parameters):
``linear`` :math:`x^\top y`, ``poly`` :math:`(\gamma x^\top y + c_0)^d`, ``rbf``
:math:`\exp(-\gamma \lVert x - y\rVert^2)`, ``sigmoid`` :math:`\tanh(\gamma x^\top y + c_0)`,
``cosine`` :math:`x^\top y / (\lVert x\rVert \lVert y\rVert)` and ``precomputed`` (``X`` is
the Gram matrix). The RBF kernel's squared distances are computed from rows shifted by the
training mean, which leaves them unchanged and keeps float32 accurate far from the origin.

Eigensolvers: ``dense`` is ``jnp.linalg.eigh`` of the whole matrix; ``randomized`` a
randomized subspace iteration with the Rayleigh-Ritz projection
(:func:`~latent_jax.linear.kernels._randomized_eigh`; ``iterated_power="auto"`` is
scikit-learn's rule, 7 power steps when fewer than a tenth of the rows' components are kept,
else 4); ``auto`` takes ``randomized`` where scikit-learn takes ARPACK (more than 200 rows and
fewer than 10 components), and then, as ARPACK there, iterates until it has converged (the
Ritz residuals below 1e-9 of the largest eigenvalue in float64, 1e-4 in float32; at most 100
products, or ``iterated_power`` if set), else ``dense``. The eigenvalues then get
scikit-learn's checks (significant negative eigenvalues are an error, round-off ones become
zero), the eigenvectors its signs (the largest-magnitude entry of each is positive).

``fit_inverse_transform`` learns the pre-image map by kernel ridge regression of the training
rows on their codes (Bakır, Weston & Schölkopf, 2004; scikit-learn's choice of the same kernel
on the codes), :math:`\mathrm{dual} = (k(Z, Z) + \alpha I)^{-1} X`, solved by Cholesky.

References:
    B. Schölkopf, A. Smola and K.-R. Müller, "Nonlinear component analysis as a kernel
    eigenvalue problem", Neural Computation 10(5), 1998.
    G. H. Bakır, J. Weston and B. Schölkopf, "Learning to find pre-images", NeurIPS 16, 2004.
    N. Halko, P.-G. Martinsson and J. A. Tropp, "Finding structure with randomness",
    SIAM Review 53(2), 2011.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array, lax
from jax.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from latent_jax import validation
from latent_jax.linear import estimator_support as support
from latent_jax.linear.kernels import _flip_rows, _randomized_eigh, _to_device

__all__ = ["EIGEN_SOLVERS", "KERNELS", "KernelPCA"]

KERNELS = ("linear", "poly", "rbf", "sigmoid", "cosine", "precomputed")
EIGEN_SOLVERS = ("auto", "dense", "randomized")
# eigen_solver="auto": the randomized solver from this many rows on, for fewer than
# _AUTO_MAX_COMPONENTS components (scikit-learn's rule for ARPACK).
_AUTO_MIN_ROWS = 200
_AUTO_MAX_COMPONENTS = 10
# eigen_solver="auto" runs the randomized solver to convergence (where scikit-learn runs
# ARPACK): until the Ritz residuals are below this fraction of the largest eigenvalue, in at
# most _AUTO_MAX_STEPS products.
_AUTO_TOL = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 1e-4}
_AUTO_MAX_STEPS = 100
# scikit-learn's _check_psd_eigenvalues thresholds: (negative ratio, negative value, small ratio).
_PSD_THRESHOLDS = {
    np.dtype(np.float64): (1e-5, 1e-10, 1e-12),
    np.dtype(np.float32): (5e-3, 1e-6, 2e-7),
}
_HIGHEST = lax.Precision.HIGHEST


def _matmul(a: Array, b: Array) -> Array:
    return jnp.matmul(a, b, precision=_HIGHEST)


# --------------------------------------------------------------------------------------------
# Compiled kernels
# --------------------------------------------------------------------------------------------


def _unit_rows(x: Array) -> Array:
    """Rows scaled to unit norm; zero rows stay zero (scikit-learn's ``normalize``)."""
    norm = jnp.sqrt(jnp.sum(jnp.square(x), axis=1, keepdims=True))
    return x / jnp.where(norm > 0, norm, 1.0)


def _gram(
    x: Array, y: Array, gamma: Array, coef0: Array, kernel: str, degree: float, same: bool
) -> Array:
    """The kernel matrix ``k(x_i, y_j)``, array of shape (len(x), len(y))."""
    if kernel == "precomputed":
        return x
    if kernel == "rbf":
        shift = jnp.mean(y, axis=0)
        x, y = x - shift, y - shift
        squared = (
            jnp.sum(jnp.square(x), axis=1)[:, None]
            + jnp.sum(jnp.square(y), axis=1)[None, :]
            - 2.0 * _matmul(x, y.T)
        )
        squared = jnp.maximum(squared, 0.0)
        if same:  # a row's distance to itself is exactly zero
            squared = squared * (1.0 - jnp.eye(x.shape[0], dtype=x.dtype))
        return jnp.exp(-gamma * squared)
    if kernel == "cosine":
        x, y = _unit_rows(x), _unit_rows(y)
    dot = _matmul(x, y.T)
    if kernel == "poly":
        base = gamma * dot + coef0
        if float(degree).is_integer():
            return lax.integer_pow(base, int(degree))
        return jnp.power(base, jnp.asarray(degree, base.dtype))
    if kernel == "sigmoid":
        return jnp.tanh(gamma * dot + coef0)
    return dot  # linear, cosine


def _checked_spectrum(values: Array) -> tuple[Array, Array, Array]:
    """scikit-learn's checks of a PSD matrix's eigenvalues (``_check_psd_eigenvalues``):
    returns the eigenvalues with negative round-off and positive values below the dtype's
    conditioning limit set to zero, and whether they fail the checks (all negative, or some
    significantly negative: an error)."""
    negative_ratio, negative_value, small_ratio = _PSD_THRESHOLDS.get(
        np.dtype(values.dtype), _PSD_THRESHOLDS[np.dtype(np.float32)]
    )
    largest, smallest = jnp.max(values), jnp.min(values)
    significant = (smallest < -negative_ratio * largest) & (smallest < -negative_value)
    failed = (largest < 0) | significant
    return jnp.where(values < small_ratio * largest, 0.0, values), failed


@functools.partial(
    jax.jit,
    static_argnames=("kernel", "degree", "n_components", "solver", "n_iter", "tol", "inverse"),
)
def _fit_kernel(
    x: Array,
    gamma: Array,
    coef0: Array,
    alpha: Array,
    key: Array,
    *,
    kernel: str,
    degree: float,
    n_components: int,
    solver: str,
    n_iter: int,
    tol: float | None,
    inverse: bool,
) -> tuple[Array, ...]:
    """The whole fit: the leading eigenvalues of the centred Gram matrix (descending, checked
    by :func:`_checked_spectrum`) and eigenvectors (columns), the Gram matrix's column means
    and overall mean, with ``inverse`` the dual coefficients :math:`(k(Z, Z) + \\alpha I)^{-1}
    X` of the training codes ``Z`` (NaN if that matrix is not positive definite), whether the
    eigenvalues failed the checks, and the eigenvalues as computed."""
    gram = _gram(x, x, gamma, coef0, kernel, degree, same=True)
    column_means = jnp.mean(gram, axis=0)
    overall = jnp.mean(column_means)
    # Symmetric up to round-off; eigh reads one triangle, the products do not need more.
    centred = gram - column_means[None, :] - column_means[:, None] + overall
    if solver == "dense":
        values, vectors = jnp.linalg.eigh(centred)
        values, vectors = values[::-1][:n_components], vectors[:, ::-1][:, :n_components]
    else:
        values, vectors = _randomized_eigh(centred, key, n_components, n_iter, tol=tol)
    vectors = _flip_rows(vectors.T).T
    raw = values
    values, failed = _checked_spectrum(values)
    dual = None
    if inverse:
        # Components with a zero eigenvalue give zero codes, which change no kernel value.
        codes = vectors * jnp.sqrt(values)
        ridge = _gram(codes, codes, gamma, coef0, kernel, degree, same=True)
        ridge = ridge + alpha * jnp.eye(ridge.shape[0], dtype=ridge.dtype)
        dual = jax.scipy.linalg.cho_solve((jnp.linalg.cholesky(ridge), True), x)
    return values, vectors, column_means, overall, dual, failed, raw


@functools.partial(jax.jit, static_argnames=("kernel", "degree"))
def _transform_kernel(
    x: Array,
    x_fit: Array,
    column_means: Array,
    overall: Array,
    scaled_vectors: Array,
    gamma: Array,
    coef0: Array,
    *,
    kernel: str,
    degree: float,
) -> Array:
    gram = _gram(x, x_fit, gamma, coef0, kernel, degree, same=False)
    centred = gram - column_means[None, :] - jnp.mean(gram, axis=1, keepdims=True) + overall
    return _matmul(centred, scaled_vectors)


@functools.partial(jax.jit, static_argnames=("kernel", "degree"))
def _preimage_kernel(
    codes: Array,
    codes_fit: Array,
    dual: Array,
    gamma: Array,
    coef0: Array,
    *,
    kernel: str,
    degree: float,
) -> Array:
    return _matmul(_gram(codes, codes_fit, gamma, coef0, kernel, degree, same=False), dual)


# --------------------------------------------------------------------------------------------
# Estimator
# --------------------------------------------------------------------------------------------


class KernelPCA(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Kernel PCA with scikit-learn's interface, computed in JAX (module docstring).

    A drop-in for ``sklearn.decomposition.KernelPCA`` with the same parameter names and
    attributes, except for what belongs to ARPACK (``eigen_solver="arpack"``, ``tol``,
    ``max_iter``), callable kernels (``kernel_params``) and joblib (``n_jobs``), which are not
    here. Precision follows the data: float32 input is computed and returned in float32,
    float64 input (and integer or bool input) in float64 inside a scoped
    ``jax.enable_x64(True)``. Every returned array and fitted array attribute is an ordinary
    writeable NumPy array. Sparse input is refused.

    Args:
        n_components: components to keep, at least 1 (at most the training rows are kept);
            ``None`` keeps every component with a positive eigenvalue.
        kernel: ``"linear"``, ``"poly"``, ``"rbf"``, ``"sigmoid"``, ``"cosine"`` or
            ``"precomputed"``.
        gamma: the ``rbf``, ``poly`` and ``sigmoid`` kernels' scale, >= 0; ``None`` for
            ``1 / n_features``.
        degree: the ``poly`` kernel's degree, >= 0.
        coef0: the ``poly`` and ``sigmoid`` kernels' offset.
        alpha: the ridge of the inverse map, >= 0.
        fit_inverse_transform: learn the pre-image map for :meth:`inverse_transform` (not with
            ``kernel="precomputed"``).
        eigen_solver: ``"auto"``, ``"dense"`` or ``"randomized"``.
        iterated_power: power steps of the randomized solver, >= 0, or ``"auto"``.
        remove_zero_eig: drop components whose eigenvalue is zero (always done when
            ``n_components`` is ``None``).
        random_state: None, an int or a ``numpy.random.RandomState``: the randomized
            solver's test matrix.
        copy_X: keep a copy of the training data in ``X_fit_`` (else a reference when the
            input is already a suitable array).

    Attributes:
        eigenvalues_: array of shape (n_components_,), of the centred kernel, descending.
        eigenvectors_: array of shape (n_samples, n_components_), unit columns.
        X_fit_: array of shape (n_samples, n_features), the training data (the training
            Gram matrix for ``kernel="precomputed"``).
        gamma_: float, the kernel's scale used.
        dual_coef_: array of shape (n_samples, n_features), with ``fit_inverse_transform``.
        X_transformed_fit_: array of shape (n_samples, n_components_), the training codes,
            with ``fit_inverse_transform``.
        n_features_in_: int.
        feature_names_in_: array of shape (n_features_in_,), the column names, set only when
            ``X`` has string column names (a data frame).
    """

    def __init__(
        self,
        n_components: int | None = None,
        *,
        kernel: str = "linear",
        gamma: float | None = None,
        degree: float = 3,
        coef0: float = 1,
        alpha: float = 1.0,
        fit_inverse_transform: bool = False,
        eigen_solver: str = "auto",
        iterated_power: int | str = "auto",
        remove_zero_eig: bool = False,
        random_state: Any = None,
        copy_X: bool = True,
    ):
        self.n_components = n_components
        self.kernel = kernel
        self.gamma = gamma
        self.degree = degree
        self.coef0 = coef0
        self.alpha = alpha
        self.fit_inverse_transform = fit_inverse_transform
        self.eigen_solver = eigen_solver
        self.iterated_power = iterated_power
        self.remove_zero_eig = remove_zero_eig
        self.random_state = random_state
        self.copy_X = copy_X

    def __sklearn_tags__(self):
        """scikit-learn's tags: a transformer that keeps float32 and float64, pairwise for a
        precomputed kernel."""
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.pairwise = self.kernel == "precomputed"
        return tags

    def _check_params(self) -> None:
        validation.check_choice("kernel", self.kernel, KERNELS)
        if self.n_components is not None:
            validation.check_int("n_components", self.n_components, 1)
        if self.gamma is not None:
            validation.check_real("gamma", self.gamma, nonnegative=True)
        validation.check_real("degree", self.degree, nonnegative=True)
        validation.check_real("coef0", self.coef0)
        validation.check_real("alpha", self.alpha, nonnegative=True)
        validation.check_bool("fit_inverse_transform", self.fit_inverse_transform)
        validation.check_choice("eigen_solver", self.eigen_solver, EIGEN_SOLVERS)
        if self.iterated_power != "auto":
            validation.check_int("iterated_power", self.iterated_power, 0)
        validation.check_bool("remove_zero_eig", self.remove_zero_eig)
        validation.check_bool("copy_X", self.copy_X)
        if self.fit_inverse_transform and self.kernel == "precomputed":
            raise ValueError("Cannot fit_inverse_transform with a precomputed kernel.")

    def _kernel_options(self, dtype: np.dtype) -> tuple[Array, Array, dict[str, Any]]:
        """The kernel's scale and offset as device scalars, and its static options."""
        gamma = jnp.asarray(self.gamma_, dtype)
        coef0 = jnp.asarray(float(self.coef0), dtype)
        return gamma, coef0, {"kernel": self.kernel, "degree": float(self.degree)}

    def fit(self, X: ArrayLike, y: Any = None) -> KernelPCA:
        """Fits the model to ``X``, array of shape (n_samples, n_features) (the Gram matrix of
        shape (n_samples, n_samples) for ``kernel="precomputed"``); returns ``self``.

        Raises:
            TypeError: a parameter has the wrong type, or ``X`` is sparse or not numeric.
            ValueError: ``X`` is not 2-D, holds NaN/Inf, is not square for a precomputed
                kernel; a parameter is out of range; the centred kernel has significant
                negative eigenvalues; the ridge system of ``fit_inverse_transform`` is not
                positive definite.
        """
        self._fit(X)
        return self

    def _fit(self, X: ArrayLike) -> np.ndarray:
        """Fits; returns the training codes."""
        self._check_params()
        x = support.validate_data(
            self, X, dtype=[np.float64, np.float32], copy=self.copy_X, reset=True
        )
        n_samples, n_features = x.shape
        if self.kernel == "precomputed" and n_samples != n_features:
            raise ValueError(
                "Precomputed metric requires shape (n_queries, n_indexed); a training kernel "
                f"must be square, got shape {x.shape}."
            )
        n_components = n_samples if self.n_components is None else min(self.n_components, n_samples)
        solver = self.eigen_solver
        if solver == "auto":
            small = n_samples > _AUTO_MIN_ROWS and n_components < _AUTO_MAX_COMPONENTS
            solver = "randomized" if small else "dense"
        n_iter, tol = self.iterated_power, None
        if self.eigen_solver == "auto":
            tol = _AUTO_TOL.get(x.dtype, _AUTO_TOL[np.dtype(np.float32)])
            n_iter = _AUTO_MAX_STEPS if n_iter == "auto" else n_iter
        elif n_iter == "auto":
            n_iter = 7 if n_components < 0.1 * n_samples else 4
        self.gamma_ = 1.0 / n_features if self.gamma is None else float(self.gamma)
        dtype = x.dtype
        key = support.jax_key(self.random_state)
        with support.precision_scope(dtype):
            gamma, coef0, static = self._kernel_options(dtype)
            fitted = _fit_kernel(
                _to_device(x, dtype),
                gamma,
                coef0,
                jnp.asarray(float(self.alpha), dtype),
                key,
                n_components=n_components,
                solver=solver,
                n_iter=int(n_iter),
                tol=tol,
                inverse=bool(self.fit_inverse_transform),
                **static,
            )
            values, vectors, column_means, overall, dual, failed, raw = fitted
            if bool(failed):
                raw = np.asarray(raw)
                raise ValueError(
                    f"The centred kernel has significant negative eigenvalues (down to "
                    f"{raw.min():g}, the largest being {raw.max():g}): the kernel is not "
                    "positive semi-definite; keep fewer components or use another kernel."
                )
            values, vectors = support.host(values, dtype), support.host(vectors, dtype)
            self._column_means = support.host(column_means, dtype)
            self._overall_mean = support.host(overall, dtype)
            if dual is not None:
                dual = support.host(dual, dtype)
        if dual is not None and not np.all(np.isfinite(dual)):
            raise ValueError(
                "The kernel ridge system of fit_inverse_transform is not positive definite "
                f"with alpha={self.alpha}; use a larger alpha."
            )
        if self.remove_zero_eig or self.n_components is None:
            vectors, values = vectors[:, values > 0], values[values > 0]
        self.eigenvalues_, self.eigenvectors_ = values, vectors
        codes = vectors * np.sqrt(values)
        if dual is not None:
            self.dual_coef_ = dual
            self.X_transformed_fit_ = codes
        self.X_fit_ = x
        return codes.copy()

    def fit_transform(self, X: ArrayLike, y: Any = None) -> np.ndarray:
        """Fits to ``X`` and returns the training codes :math:`\\sqrt{\\lambda_j} a_{ij}`,
        array of shape (n_samples, n_components_)."""
        return self._fit(X)

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Codes of ``X``, array of shape (n_samples, n_components_) (for a precomputed kernel
        ``X`` is its kernel against the training rows, of shape (n_samples, n_fit))."""
        check_is_fitted(self)
        x = support.validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        dtype = support.wider_dtype(x, self.eigenvectors_)
        # Components with a zero eigenvalue (kept when remove_zero_eig is False) give zeros.
        positive = self.eigenvalues_ > 0
        scale = np.where(positive, np.sqrt(np.where(positive, self.eigenvalues_, 1.0)), np.inf)
        with support.precision_scope(dtype):
            gamma, coef0, static = self._kernel_options(dtype)
            rows, _ = support.padded_rows(x, dtype)
            z = _transform_kernel(
                rows,
                *(_to_device(a, dtype) for a in (self.X_fit_, self._column_means)),
                jnp.asarray(self._overall_mean, dtype),
                _to_device(self.eigenvectors_ / scale, dtype),
                gamma,
                coef0,
                **static,
            )
            return support.host(z, dtype)[: len(x)]

    def inverse_transform(self, X: ArrayLike) -> np.ndarray:
        """Pre-images of codes, array of shape (n_samples, n_components_), by the kernel ridge
        map of ``fit_inverse_transform``: array of shape (n_samples, n_features_in_).

        Raises:
            NotFittedError: when ``fit_inverse_transform`` was False.
        """
        if not self.fit_inverse_transform:
            raise NotFittedError(
                "The fit_inverse_transform parameter was not set to True when instantiating "
                "and hence the inverse transform is not available."
            )
        check_is_fitted(self)
        z = support.check_codes(X, self.eigenvalues_.shape[0])
        dtype = support.wider_dtype(z, self.dual_coef_)
        with support.precision_scope(dtype):
            gamma, coef0, static = self._kernel_options(dtype)
            rows, _ = support.padded_rows(z, dtype)
            x = _preimage_kernel(
                rows,
                *(_to_device(a, dtype) for a in (self.X_transformed_fit_, self.dual_coef_)),
                gamma,
                coef0,
                **static,
            )
            return support.host(x, dtype)[: len(z)]

    @property
    def _n_features_out(self) -> int:
        return self.eigenvalues_.shape[0]
