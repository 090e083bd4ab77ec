r"""Robust PCA by principal component pursuit, solved by the inexact augmented Lagrangian.

Principal component pursuit (Candès, Li, Ma & Wright, 2011) splits a data matrix
:math:`M = L + S` into a low-rank part :math:`L` and a sparse part :math:`S` of gross errors by

.. math::

    \min_{L, S} \; \lVert L \rVert_* + \lambda \lVert S \rVert_1
    \quad \text{subject to} \quad L + S = M,

with :math:`\lambda = 1/\sqrt{\max(n, d)}` by default. When the rank of :math:`L_0` and the
fraction of corrupted entries are small enough, the solution is exactly :math:`(L_0, S_0)`,
whatever the corruptions' magnitudes.

:func:`robust_pca` solves it with the inexact augmented Lagrange multiplier method (Lin, Chen &
Ma, 2010, Algorithm 5), all of it in one compiled ``lax.while_loop``. With
:math:`J(M) = \max(\lVert M \rVert_2, \lVert M \rVert_\infty / \lambda)`,
:math:`Y_0 = M / J(M)`, :math:`S_0 = 0`, :math:`\mu_0 = 1.25 / \lVert M \rVert_2`:

.. math::

    L_{k+1} &= \mathcal{D}_{1/\mu_k}(M - S_k + Y_k / \mu_k) \\
    S_{k+1} &= \mathcal{S}_{\lambda/\mu_k}(M - L_{k+1} + Y_k / \mu_k) \\
    Y_{k+1} &= Y_k + \mu_k (M - L_{k+1} - S_{k+1}) \\
    \mu_{k+1} &= \min(\rho \mu_k, \bar\mu),

where :math:`\mathcal{D}_\tau` shrinks the singular values by :math:`\tau` (singular value
thresholding) and :math:`\mathcal{S}_\tau` the entries (soft thresholding). The loop stops when
:math:`\lVert M - L - S \rVert_F / \lVert M \rVert_F < \mathrm{tol}` or after ``max_iter``
iterations. :math:`\rho = 1.5` is the paper's value (the authors' code also uses 1.6), and
:math:`\bar\mu = 10^7 \mu_0` the cap of the authors' code.

The singular value thresholding costs one SVD per iteration and dominates the time. Two
solvers compute it: ``"full"``, the thin SVD of the whole matrix, and ``"gram"``, the
eigendecomposition of the smaller Gram matrix (:math:`M^\top M` of shape (d, d) when
:math:`n \ge d`), from which :math:`\mathcal{D}_\tau(X) = X V f(\Sigma) V^\top` with
:math:`f(\sigma) = \max(1 - \tau/\sigma, 0)`, without forming :math:`U`. The Gram matrix
squares the condition number: singular values below :math:`\sqrt{\epsilon}\,\sigma_1` are
resolved only roughly, which in float64 (:math:`\sqrt{\epsilon} \approx 1.5 \cdot 10^{-8}`) is
far below any threshold the iteration uses, but not in float32 (:math:`3.5 \cdot 10^{-4}`).
``"auto"`` takes ``"gram"`` for float64 and ``"full"`` for float32.

:class:`RobustPCA` wraps it in a scikit-learn estimator: ``fit`` decomposes the training data,
then a PCA of the low-rank part :math:`L` (centred on :math:`L`'s mean) gives the principal
subspace that ``transform`` projects onto.

References:
    E. J. Candès, X. Li, Y. Ma and J. Wright, "Robust principal component analysis?",
    Journal of the ACM 58(3), 2011.
    Z. Lin, M. Chen and Y. Ma, "The augmented Lagrange multiplier method for exact recovery
    of corrupted low-rank matrices", arXiv:1009.5055, 2010.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array, lax
from jax.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_array, check_is_fitted

from latent_jax import validation
from latent_jax.linear import estimator_support as support
from latent_jax.linear import kernels
from latent_jax.linear import pca as pca_lib

__all__ = ["SVD_SOLVERS", "RobustPCA", "RobustPCAInfo", "default_tol", "robust_pca"]

SVD_SOLVERS = ("auto", "full", "gram")
# The first penalty over the spectral norm, and the cap of the penalty over the first one
# (Lin, Chen & Ma's code: mu = 1.25 / norm_two, mu_bar = mu * 1e7).
MU_SCALE = 1.25
MU_MAX_RATIO = 1e7
# The default tolerance per dtype: float32's round-off leaves a relative residual near 1e-6.
DEFAULT_TOL = {np.dtype(np.float64): 1e-7, np.dtype(np.float32): 1e-5}
_HIGHEST = lax.Precision.HIGHEST


class RobustPCAInfo(NamedTuple):
    """How the iteration of :func:`robust_pca` ended.

    Attributes:
        iterations: int32 scalar array, the iterations run.
        residual: scalar array, :math:`\\lVert M - L - S \\rVert_F / \\lVert M \\rVert_F` at
            the end.
        converged: bool scalar array, ``residual < tol``.
        rank: int32 scalar array, the rank of ``low_rank``: the singular values the last
            thresholding kept.
        lam: scalar array, the :math:`\\lambda` used.
        mu: scalar array, the penalty :math:`\\mu` after the last iteration.
    """

    iterations: Array
    residual: Array
    converged: Array
    rank: Array
    lam: Array
    mu: Array


def default_tol(dtype: Any) -> float:
    """The default stopping tolerance for data of ``dtype``: 1e-7 (float64), 1e-5 (float32)."""
    return DEFAULT_TOL.get(np.dtype(dtype), DEFAULT_TOL[np.dtype(np.float32)])


# --------------------------------------------------------------------------------------------
# Compiled kernel
# --------------------------------------------------------------------------------------------


def _matmul(a: Array, b: Array) -> Array:
    return jnp.matmul(a, b, precision=_HIGHEST)


def _shrink_factors(s: Array, tau: Array) -> tuple[Array, Array]:
    """``max(1 - tau / s, 0)`` for singular values ``s``, and how many exceed ``tau``."""
    keep = s > tau
    return jnp.where(keep, 1.0 - tau / jnp.where(keep, s, 1.0), 0.0), jnp.sum(keep)


def _svt_full(x: Array, tau: Array) -> tuple[Array, Array]:
    """Singular value thresholding by the thin SVD of ``x``; returns the result and its rank."""
    u, s, vt = jnp.linalg.svd(x, full_matrices=False)
    factors, rank = _shrink_factors(s, tau)
    return _matmul(u * (s * factors), vt), rank


def _svt_gram(x: Array, tau: Array) -> tuple[Array, Array]:
    """Singular value thresholding from the eigendecomposition of the smaller Gram matrix."""
    tall = x.shape[0] >= x.shape[1]
    a = x if tall else x.T
    w, v = jnp.linalg.eigh(_matmul(a.T, a))
    factors, rank = _shrink_factors(jnp.sqrt(jnp.maximum(w, 0.0)), tau)
    projector = _matmul(v * factors, v.T)
    return (_matmul(x, projector) if tall else _matmul(projector, x)), rank


def _spectral_norm(x: Array, solver: str) -> Array:
    if solver == "full":
        return jnp.linalg.svd(x, compute_uv=False)[0]
    a = x if x.shape[0] >= x.shape[1] else x.T
    return jnp.sqrt(jnp.maximum(jnp.linalg.eigvalsh(_matmul(a.T, a))[-1], 0.0))


@functools.partial(jax.jit, static_argnames=("solver",))
def _robust_pca_kernel(
    m: Array,
    lam: Array,
    tol: Array,
    max_iter: Array,
    rho: Array,
    mu: Array,
    *,
    solver: str,
) -> tuple[Array, Array, RobustPCAInfo]:
    """The inexact ALM iteration on validated input; ``mu <= 0`` means the default."""
    dtype = m.dtype
    svt = _svt_full if solver == "full" else _svt_gram
    norm_fro = jnp.linalg.norm(m)
    nonzero = norm_fro > 0
    norm_two = _spectral_norm(m, solver)
    dual = jnp.maximum(norm_two, jnp.max(jnp.abs(m)) / lam)
    y = m / jnp.where(nonzero, dual, 1.0)
    mu0 = jnp.where(mu > 0, mu, MU_SCALE / jnp.where(nonzero, norm_two, 1.0))
    mu_max = mu0 * MU_MAX_RATIO
    scale = jnp.where(nonzero, norm_fro, 1.0)

    def cond(carry):
        k, _, _, _, _, residual, _ = carry
        return (k < max_iter) & (residual >= tol)

    def body(carry):
        k, _, s, y, mu, _, _ = carry
        low, rank = svt(m - s + y / mu, 1.0 / mu)
        t = m - low + y / mu
        s = jnp.sign(t) * jnp.maximum(jnp.abs(t) - lam / mu, 0.0)
        z = m - low - s
        y = y + mu * z
        return (
            k + 1,
            low,
            s,
            y,
            jnp.minimum(mu * rho, mu_max),
            jnp.linalg.norm(z) / scale,
            rank.astype(jnp.int32),
        )

    zeros = jnp.zeros_like(m)
    first_residual = jnp.where(nonzero, jnp.asarray(jnp.inf, dtype), jnp.asarray(0.0, dtype))
    start = (jnp.int32(0), zeros, zeros, y, mu0, first_residual, jnp.int32(0))
    k, low, sparse, _, mu, residual, rank = lax.while_loop(cond, body, start)
    info = RobustPCAInfo(
        iterations=k, residual=residual, converged=residual < tol, rank=rank, lam=lam, mu=mu
    )
    return low, sparse, info


# --------------------------------------------------------------------------------------------
# Functional API
# --------------------------------------------------------------------------------------------


def _resolve_solver(solver: Any, dtype: np.dtype) -> str:
    solver = validation.check_choice("svd_solver", solver, SVD_SOLVERS)
    if solver == "auto":
        return "gram" if np.dtype(dtype) == np.float64 else "full"
    return solver


def _check_parameters(
    shape: tuple[int, int],
    dtype: np.dtype,
    lam: Any,
    tol: Any,
    max_iter: Any,
    rho: Any,
    mu: Any,
) -> tuple[float, float, int, float, float]:
    """The iteration's parameters checked, defaults resolved (``mu=0.0`` for the default)."""
    lam = 1.0 / math.sqrt(max(shape)) if lam is None else validation.check_real("lam", lam)
    if lam <= 0:
        raise ValueError(f"lam must be > 0, got lam={lam}")
    tol = default_tol(dtype) if tol is None else validation.check_real("tol", tol, positive=True)
    max_iter = validation.check_int("max_iter", max_iter, 1)
    rho = validation.check_real("rho", rho)
    if rho <= 1:
        raise ValueError(f"rho must be > 1 (the penalty grows by rho each iteration), got {rho=}")
    mu = 0.0 if mu is None else validation.check_real("mu", mu, positive=True)
    return lam, tol, max_iter, rho, mu


def robust_pca(
    x: ArrayLike,
    *,
    lam: float | None = None,
    tol: float | None = None,
    max_iter: int = 1000,
    rho: float = 1.5,
    mu: float | None = None,
    svd_solver: str = "auto",
) -> tuple[Array, Array, RobustPCAInfo]:
    r"""Principal component pursuit of ``x`` by the inexact ALM method (module docstring).

    Computes in the dtype of ``x`` under JAX's rules: float64 stays float64 only with
    ``jax_enable_x64`` (or inside ``jax.enable_x64(True)``); otherwise float32.
    :class:`RobustPCA` computes float64 data in float64 whatever the global setting.

    Args:
        x: the matrix :math:`M`, array of shape (n, d), finite real numbers.
        lam: the weight :math:`\lambda > 0` of :math:`\lVert S \rVert_1`; ``None`` for
            :math:`1/\sqrt{\max(n, d)}`.
        tol: stop when :math:`\lVert M - L - S\rVert_F / \lVert M\rVert_F < \mathrm{tol}`;
            ``None`` for 1e-7 (float64) or 1e-5 (float32, whose round-off leaves about 1e-6).
        max_iter: the most iterations, >= 1.
        rho: the penalty's growth factor per iteration, > 1.
        mu: the first penalty :math:`\mu_0 > 0`; ``None`` for :math:`1.25 / \lVert M\rVert_2`.
        svd_solver: ``"full"`` (thin SVD), ``"gram"`` (eigendecomposition of the smaller Gram
            matrix) or ``"auto"`` (``"gram"`` for float64, ``"full"`` for float32).

    Returns:
        ``(low_rank, sparse, info)``: :math:`L` and :math:`S`, arrays of shape (n, d) with
        ``low_rank + sparse`` equal to ``x`` up to ``info.residual``, and a
        :class:`RobustPCAInfo`. An all-zero ``x`` gives zeros after no iteration.

    Raises:
        TypeError: ``x`` is not numeric, or a parameter has the wrong type.
        ValueError: ``x`` is not 2-D, is empty or holds NaN/Inf; a parameter is out of range.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> l0 = rng.normal(size=(100, 2)) @ rng.normal(size=(2, 80))
        >>> s0 = np.where(rng.random((100, 80)) < 0.05, 10.0, 0.0)
        >>> low, sparse, info = robust_pca(l0 + s0)
        >>> int(info.rank), bool(info.converged)
        (2, True)
    """
    x = kernels._validate_data(x, "x")
    x = kernels._to_device(x)
    params = _check_parameters(x.shape, x.dtype, lam, tol, max_iter, rho, mu)
    return _run(x, *params, _resolve_solver(svd_solver, x.dtype))


def _run(
    x: Array, lam: float, tol: float, max_iter: int, rho: float, mu: float, solver: str
) -> tuple[Array, Array, RobustPCAInfo]:
    dtype = x.dtype
    return _robust_pca_kernel(
        x,
        jnp.asarray(lam, dtype),
        jnp.asarray(tol, dtype),
        jnp.asarray(max_iter, jnp.int32),
        jnp.asarray(rho, dtype),
        jnp.asarray(mu, dtype),
        solver=solver,
    )


# --------------------------------------------------------------------------------------------
# scikit-learn estimator
# --------------------------------------------------------------------------------------------


def _numerical_rank(eigenvalues: np.ndarray, n: int, d: int, tol: float) -> int:
    """The directions of the centred low-rank part above the round-off of its computation.

    A direction counts when its singular value exceeds ``max(10 tol, sqrt(max(n, d) eps))``
    times the largest: below that lie the iteration's error (a relative residual under
    ``tol``) and the round-off of an eigendecomposition of a covariance, whose zero
    eigenvalues come out near ``eps`` times the largest.
    """
    spectrum = eigenvalues[: min(n - 1, d)]
    if spectrum.size == 0 or spectrum[0] <= 0:
        return 0
    rtol = max(10.0 * tol, math.sqrt(max(n, d) * float(np.finfo(eigenvalues.dtype).eps)))
    return int(np.sum(spectrum > spectrum[0] * rtol**2))


class RobustPCA(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Robust PCA (principal component pursuit) with scikit-learn's interface, in JAX.

    ``fit`` splits the training data into a low-rank part ``low_rank_`` and a sparse part
    ``sparse_`` with :func:`robust_pca`, then fits a PCA to the low-rank part: ``mean_`` is
    the mean of its rows and ``components_`` the principal axes of those rows centred on it.
    ``transform`` projects ``(X - mean_)`` onto the axes, ``inverse_transform`` maps codes back
    as ``Z @ components_ + mean_`` (the PCA conventions of :class:`latent_jax.PCA`, signs
    included). ``n_components_`` is the numerical rank of the centred low-rank part unless
    ``n_components`` fixes it.

    Precision follows the data, as in :class:`latent_jax.PCA`: float64 input (and integer or
    bool input) is computed in float64 inside a scoped ``jax.enable_x64(True)``; float32 stays
    float32. Every returned array and fitted array attribute is a writeable NumPy array.

    Args:
        n_components: the axes to keep, in ``[1, min(n_samples, n_features)]``; ``None`` for
            the numerical rank of the centred low-rank part (at least 1): its singular values
            above ``max(10 tol, sqrt(max(n, d) eps))`` times the largest.
        lam: :func:`robust_pca`'s :math:`\\lambda`; ``None`` for
            :math:`1/\\sqrt{\\max(n, d)}`.
        tol: :func:`robust_pca`'s tolerance; ``None`` for the dtype's default.
        max_iter: the most iterations.
        rho: the penalty's growth factor.
        svd_solver: ``"auto"``, ``"full"`` or ``"gram"`` (:func:`robust_pca`).

    Attributes:
        low_rank_: array of shape (n_samples, n_features), :math:`L` of the training data.
        sparse_: array of shape (n_samples, n_features), :math:`S` of the training data.
        components_: array of shape (n_components_, n_features), the principal axes of
            ``low_rank_``.
        explained_variance_: array of shape (n_components_,), the variances of ``low_rank_``
            along them (``ddof=1``).
        explained_variance_ratio_: array of shape (n_components_,).
        singular_values_: array of shape (n_components_,), of the centred ``low_rank_``.
        mean_: array of shape (n_features_in_,), the mean of the rows of ``low_rank_``.
        n_components_: int.
        rank_: int, the rank of ``low_rank_`` the iteration reports (uncentred).
        lambda_: float, the :math:`\\lambda` used.
        mu_: float, the last penalty.
        n_iter_: int, the iterations run.
        residual_: float, the relative residual :math:`\\lVert M - L - S\\rVert_F /
            \\lVert M\\rVert_F` at the end.
        converged_: bool; ``fit`` warns (``ConvergenceWarning``) when it is False.
        n_features_in_: int.
        feature_names_in_: the column names of a DataFrame ``X``, when it had string names.
    """

    def __init__(
        self,
        n_components: int | None = None,
        *,
        lam: float | None = None,
        tol: float | None = None,
        max_iter: int = 1000,
        rho: float = 1.5,
        svd_solver: str = "auto",
    ):
        self.n_components = n_components
        self.lam = lam
        self.tol = tol
        self.max_iter = max_iter
        self.rho = rho
        self.svd_solver = svd_solver

    def __sklearn_tags__(self):
        """scikit-learn's tags: a transformer that keeps float32 and float64."""
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def fit(self, X: ArrayLike, y: Any = None) -> RobustPCA:
        """Decomposes ``X``, array of shape (n_samples, n_features); returns ``self``.

        Raises:
            TypeError: a parameter has the wrong type, or ``X`` is sparse or not numeric.
            ValueError: ``X`` is not 2-D, has fewer than 2 samples, holds NaN/Inf; a
                parameter is out of range.

        Warns:
            ConvergenceWarning: when ``max_iter`` iterations did not reach ``tol``.
        """
        self._fit_data(X)
        return self

    def _fit_data(self, X: ArrayLike) -> np.ndarray:
        x = support.validate_data(
            self, X, dtype=[np.float64, np.float32], ensure_min_samples=2, reset=True
        )
        n, d = x.shape
        dtype = x.dtype
        solver = _resolve_solver(self.svd_solver, dtype)
        params = _check_parameters(
            x.shape, dtype, self.lam, self.tol, self.max_iter, self.rho, None
        )
        if self.n_components is not None:
            kernels._check_n_components(self.n_components, n, d)
        with support.precision_scope(dtype):
            low, sparse, info = _run(kernels._to_device(x, dtype), *params, solver)
            # One PCA of every axis (one compiled program per shape), cut to n_components_.
            state = pca_lib._fit(low, min(n, d), 1, kernels._check_block_rows(None, d))
            self.low_rank_ = support.host(low, dtype)
            self.sparse_ = support.host(sparse, dtype)
            mean, components, eigenvalues, _, ratio, singular = (
                support.host(a, dtype) for a in state[:6]
            )
        rank = _numerical_rank(eigenvalues, n, d, params[1])
        q = max(rank, 1) if self.n_components is None else int(self.n_components)
        self.mean_ = mean
        self.components_ = components[:q].copy()
        self.explained_variance_ = eigenvalues[:q].copy()
        self.explained_variance_ratio_ = ratio[:q].copy()
        self.singular_values_ = singular[:q].copy()
        self.n_components_ = q
        self.rank_ = int(info.rank)
        self.lambda_ = float(info.lam)
        self.mu_ = float(info.mu)
        self.n_iter_ = int(info.iterations)
        self.residual_ = float(info.residual)
        self.converged_ = bool(info.converged)
        if not self.converged_:
            warnings.warn(
                f"robust PCA stopped after max_iter={self.n_iter_} iterations with relative "
                f"residual {self.residual_:.3g} >= tol={params[1]:g}; increase max_iter or tol",
                ConvergenceWarning,
                stacklevel=3,
            )
        return x

    def _dtype(self, x: np.ndarray) -> np.dtype:
        return np.result_type(x.dtype, self.components_.dtype)

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Codes ``(X - mean_) @ components_.T``, array of shape (n_samples, n_components_)."""
        check_is_fitted(self)
        x = support.validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return self._transform(x)

    def _transform(self, x: np.ndarray) -> np.ndarray:
        dtype = self._dtype(x)
        return ((x.astype(dtype) - self.mean_) @ self.components_.T).astype(dtype)

    def fit_transform(self, X: ArrayLike, y: Any = None) -> np.ndarray:
        """Fits to ``X`` and returns its codes, array of shape (n_samples, n_components_)."""
        return self._transform(self._fit_data(X))

    def inverse_transform(self, X: ArrayLike) -> np.ndarray:
        """Maps codes, array of shape (n_samples, n_components_), back: ``Z @ components_ +
        mean_``, array of shape (n_samples, n_features_in_)."""
        check_is_fitted(self)
        z = check_array(X, input_name="X", dtype=[np.float64, np.float32])
        if z.shape[1] != self.n_components_:
            raise ValueError(
                f"X has {z.shape[1]} columns, but inverse_transform expects n_components_="
                f"{self.n_components_} codes per row."
            )
        dtype = self._dtype(z)
        return (z.astype(dtype) @ self.components_ + self.mean_).astype(dtype)

    @property
    def _n_features_out(self) -> int:
        return self.components_.shape[0]
