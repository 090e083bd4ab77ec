r"""FastICA (Hyvärinen & Oja, 2000), scikit-learn's ``FastICA`` in ``jax.numpy``: independent
components by the fixed-point iteration on whitened data.

With the data centred and whitened to :math:`\tilde X` (Q rows, unit covariance; ``whiten``),
the unmixing rows :math:`w` maximize an approximation of negentropy with the contrast
:math:`G` (``fun``): ``logcosh`` :math:`G(u) = \log\cosh(\alpha u)/\alpha` (``fun_args``'
``alpha`` in [1, 2]), ``exp`` :math:`-e^{-u^2/2}`, ``cube`` :math:`u^4/4`. Each step is

.. math::

    w^+ = \mathbb E[\tilde x\, g(w^\top \tilde x)] - \mathbb E[g'(w^\top \tilde x)]\, w,

with :math:`g = G'`; ``algorithm="parallel"`` updates every row at once and decorrelates them
symmetrically, :math:`W \leftarrow (W W^\top)^{-1/2} W` (Hyvärinen & Oja, eq. 45),
``"deflation"`` finds the rows one after another, each orthogonalized against those found by
Gram-Schmidt (eq. 43). The iteration stops when
:math:`\max_i \big|\,|w_i^{+\top} w_i| - 1\big| < \mathrm{tol}` or after ``max_iter`` steps;
both algorithms are one compiled ``lax.while_loop`` (the deflation's inside a loop over the
rows).

Whitening follows scikit-learn: ``whiten_solver="svd"`` takes the singular vectors of the
centred data (from the SVD of the triangular factor of its QR factorization, which has the
same singular values and right singular vectors, computed stably and faster than the SVD of
the whole matrix), ``"eigh"`` the eigenvectors of its scatter matrix; the signs make each
vector's first entry positive, and the Q leading directions scaled by :math:`\sqrt N / s_j`
whiten.
``whiten="unit-variance"`` then rescales the sources to unit variance; ``"arbitrary-variance"``
keeps the whitened scale; ``False`` takes the data as whitened already.

The random initial unmixing matrix is drawn from ``random_state`` exactly as scikit-learn draws
it (a NumPy ``RandomState``'s standard normals), so both start from the same matrix.

References:
    A. Hyvärinen and E. Oja, "Independent component analysis: algorithms and applications",
    Neural Networks 13(4-5), 2000.
    A. Hyvärinen, J. Karhunen and E. Oja, "Independent Component Analysis", Wiley, 2001,
    Tables 8.3 and 8.4.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array, lax
from jax.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from latent_jax import validation
from latent_jax.linear import estimator_support as support
from latent_jax.linear.kernels import _scatter, _to_device

__all__ = ["ALGORITHMS", "FUNCTIONS", "WHITEN", "WHITEN_SOLVERS", "FastICA"]

ALGORITHMS = ("parallel", "deflation")
FUNCTIONS = ("logcosh", "exp", "cube")
WHITEN = ("unit-variance", "arbitrary-variance", False)
WHITEN_SOLVERS = ("svd", "eigh")
_HIGHEST = lax.Precision.HIGHEST


def _matmul(a: Array, b: Array) -> Array:
    return jnp.matmul(a, b, precision=_HIGHEST)


# --------------------------------------------------------------------------------------------
# Contrast functions: g(u) and the mean of g'(u) over the real samples (the last axis)
# --------------------------------------------------------------------------------------------


def _masked_mean(values: Array, mask: Array, n_samples: Array) -> Array:
    return jnp.sum(jnp.where(mask, values, 0.0), axis=-1) / n_samples


def _logcosh(u, alpha, mask, n_samples):
    g = jnp.tanh(alpha * u)
    return g, _masked_mean(alpha * (1.0 - jnp.square(g)), mask, n_samples)


def _exp(u, alpha, mask, n_samples):
    gauss = jnp.exp(-0.5 * jnp.square(u))
    return u * gauss, _masked_mean((1.0 - jnp.square(u)) * gauss, mask, n_samples)


def _cube(u, alpha, mask, n_samples):
    return u**3, _masked_mean(3.0 * jnp.square(u), mask, n_samples)


_CONTRASTS = {"logcosh": _logcosh, "exp": _exp, "cube": _cube}


def _contrast(fun: str | Callable, fun_args: tuple) -> Callable:
    """The contrast ``g(u, alpha, mask, n_samples) -> (g(u), mean of g'(u))``; a function of
    the user's sees unpadded samples only and is called as scikit-learn calls it."""
    if callable(fun):
        kwargs = dict(fun_args)
        return lambda u, alpha, mask, n_samples: fun(u, **kwargs)
    return _CONTRASTS[fun]


# --------------------------------------------------------------------------------------------
# Compiled kernels
# --------------------------------------------------------------------------------------------


def _sym_decorrelation(w: Array) -> Array:
    """:math:`(W W^\\top)^{-1/2} W`."""
    s, u = jnp.linalg.eigh(_matmul(w, w.T))
    s = jnp.maximum(s, jnp.finfo(w.dtype).tiny)
    return _matmul(u * (1.0 / jnp.sqrt(s)), _matmul(u.T, w))


def _parallel(x, mask, n_samples, w_init, tol, alpha, max_iter, g):
    def body(carry):
        i, w, _ = carry
        gwx, g_mean = g(_matmul(w, x), alpha, mask, n_samples)
        new = _sym_decorrelation(_matmul(gwx, x.T) / n_samples - g_mean[:, None] * w)
        lim = jnp.max(jnp.abs(jnp.abs(jnp.sum(new * w, axis=1)) - 1.0))
        return i + 1, new, lim

    def cond(carry):
        i, _, lim = carry
        return (i < max_iter) & (lim >= tol)

    start = (jnp.int32(0), _sym_decorrelation(w_init), jnp.asarray(jnp.inf, x.dtype))
    n_iter, w, lim = lax.while_loop(cond, body, start)
    return w, n_iter, lim < tol


def _deflation(x, mask, n_samples, w_init, tol, alpha, max_iter, g):
    n_components = w_init.shape[0]

    def component(j, carry):
        w_all, most = carry

        def body(inner):
            i, w, _ = inner
            gwx, g_mean = g(_matmul(w[None, :], x), alpha, mask, n_samples)
            new = jnp.sum(x * gwx, axis=1) / n_samples - g_mean[0] * w
            # Rows not found yet are zero, so the whole matrix is the rows found.
            new = new - _matmul(_matmul(new[None, :], w_all.T), w_all)[0]
            new = new / jnp.sqrt(jnp.sum(jnp.square(new)))
            return i + 1, new, jnp.abs(jnp.abs(jnp.sum(new * w)) - 1.0)

        def cond(inner):
            i, _, lim = inner
            return (i < max_iter) & (lim >= tol)

        w = w_init[j] / jnp.sqrt(jnp.sum(jnp.square(w_init[j])))
        start = (jnp.int32(0), w, jnp.asarray(jnp.inf, x.dtype))
        n_iter, w, _ = lax.while_loop(cond, body, start)
        return w_all.at[j].set(w), jnp.maximum(most, n_iter)

    w, n_iter = lax.fori_loop(0, n_components, component, (jnp.zeros_like(w_init), jnp.int32(0)))
    # scikit-learn does not report a deflation that ran out of iterations.
    return w, n_iter, jnp.asarray(True)


def _whitening(centred: Array, n_components: int, solver: str) -> tuple[Array, Array]:
    """The whitening matrix (Q, D) of centred rows (zero rows for padding), and whether an
    eigenvalue of the scatter was below ten epsilons (``"eigh"``; then raised to it, as
    scikit-learn does)."""
    if solver == "svd":
        # The SVD of the centred data through its QR factorization (the same singular values
        # and vectors, backward stable, and cheaper for many rows): X = Q R and R = U S V^T
        # make V the left singular vectors of X^T, scikit-learn's u.
        _, s, vt = jnp.linalg.svd(jnp.linalg.qr(centred, mode="r"), full_matrices=False)
        u = vt.T
        degenerate = jnp.asarray(False)
    else:
        values, u = jnp.linalg.eigh(_scatter(centred))
        values, u = values[::-1], u[:, ::-1]
        eps = 10 * jnp.finfo(centred.dtype).eps
        degenerate = jnp.any(values < eps)
        s = jnp.sqrt(jnp.maximum(values, eps))
    # Each singular vector signed by its first entry, as scikit-learn's.
    signs = jnp.sign(u[0])
    u = u * jnp.where(signs == 0, 1.0, signs)
    return (u / s).T[:n_components], degenerate


@functools.partial(jax.jit, static_argnames=("n_components", "whiten", "whiten_solver"))
def _whiten_kernel(
    x: Array, mask: Array, *, n_components: int, whiten: bool, whiten_solver: str
) -> tuple[Array, ...]:
    """The mean, the whitening matrix (Q, D), the whitened samples (Q, N), and whether the
    whitening was degenerate, of the rows ``x`` where ``mask`` is True (the others are
    padding and come out as zero columns)."""
    valid = mask[:, None]
    n_samples = jnp.sum(mask).astype(x.dtype)
    if not whiten:  # the identity whitens (the unmixing times it is the unmixing, exactly)
        identity = jnp.eye(x.shape[1], dtype=x.dtype)
        rows = jnp.where(valid, x, 0.0)
        return jnp.zeros(x.shape[1], x.dtype), identity, rows.T, jnp.asarray(False)
    mean = jnp.sum(jnp.where(valid, x, 0.0), axis=0) / n_samples
    centred = jnp.where(valid, x - mean, 0.0)
    whitening, degenerate = _whitening(centred, n_components, whiten_solver)
    whitened = _matmul(whitening, centred.T) * jnp.sqrt(n_samples)
    return mean, whitening, whitened, degenerate


@functools.partial(jax.jit, static_argnames=("algorithm", "max_iter", "fun", "fun_args"))
def _ica_kernel(
    whitened: Array,
    mask: Array,
    w_init: Array,
    tol: Array,
    alpha: Array,
    *,
    algorithm: str,
    max_iter: int,
    fun: str | Callable,
    fun_args: tuple,
) -> tuple[Array, Array, Array]:
    """The unmixing matrix of the whitened samples (rows: components), the iterations run and
    whether they converged."""
    n_samples = jnp.sum(mask).astype(whitened.dtype)
    solve = _parallel if algorithm == "parallel" else _deflation
    g = _contrast(fun, fun_args)
    return solve(whitened, mask, n_samples, w_init, tol, alpha, max_iter, g)


@functools.partial(jax.jit, static_argnames=("unit_variance",))
def _finish_kernel(
    x: Array, mask: Array, mean: Array, unmixing: Array, whitening: Array, *, unit_variance: bool
) -> tuple[Array, Array, Array]:
    """The components (the unmixing of the whitened data times the whitening, rescaled for
    unit-variance sources), their pseudo-inverse and the sources of the rows ``x``."""
    components = _matmul(unmixing, whitening)
    sources = _matmul(x - mean, components.T)
    if unit_variance:
        valid = mask[:, None]
        n_samples = jnp.sum(mask).astype(x.dtype)
        centre = jnp.sum(jnp.where(valid, sources, 0.0), axis=0) / n_samples
        spread = jnp.where(valid, sources - centre, 0.0)
        std = jnp.sqrt(jnp.sum(jnp.square(spread), axis=0) / n_samples)
        sources, components = sources / std, components / std[:, None]
    return components, jnp.linalg.pinv(components), sources


@jax.jit
def _sources_kernel(x: Array, mean: Array, unmixing: Array) -> Array:
    return _matmul(x - mean, unmixing.T)


@jax.jit
def _mix_kernel(s: Array, mixing: Array, mean: Array) -> Array:
    return _matmul(s, mixing.T) + mean


# --------------------------------------------------------------------------------------------
# Estimator
# --------------------------------------------------------------------------------------------


class FastICA(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """FastICA with scikit-learn's interface, computed in JAX (module docstring).

    A drop-in for ``sklearn.decomposition.FastICA``: the same parameters, attributes and
    methods. Precision follows the data: float32 input is computed and returned in float32,
    float64 input (and integer or bool input) in float64 inside a scoped
    ``jax.enable_x64(True)``. Every returned array and fitted array attribute is an ordinary
    writeable NumPy array. Sparse input is refused.

    Args:
        n_components: components to find, >= 1 (at most ``min(n_samples, n_features)``, with
            a warning as scikit-learn's); ``None`` for ``min(n_samples, n_features)``;
            ignored, with a warning, when ``whiten`` is False.
        algorithm: ``"parallel"`` or ``"deflation"``.
        whiten: ``"unit-variance"``, ``"arbitrary-variance"`` or False (module docstring).
        fun: ``"logcosh"``, ``"exp"``, ``"cube"``, or a function ``fun(u, **fun_args) ->
            (g(u), mean of g'(u) over the last axis)`` written with ``jax.numpy`` (it is
            traced and compiled).
        fun_args: keyword arguments of ``fun``; ``logcosh`` takes ``alpha`` in [1, 2]
            (default 1).
        max_iter: the most iterations, >= 1 (per component for ``deflation``).
        tol: the convergence tolerance, >= 0.
        w_init: array of shape (n_components, n_components), the initial unmixing matrix;
            ``None`` draws standard normals from ``random_state``.
        whiten_solver: ``"svd"`` or ``"eigh"``.
        random_state: None, an int or a ``numpy.random.RandomState``.

    Attributes:
        components_: array of shape (n_components, n_features), the unmixing matrix applied
            to centred data.
        mixing_: array of shape (n_features, n_components), its pseudo-inverse.
        mean_: array of shape (n_features,), set when whitening.
        whitening_: array of shape (n_components, n_features), set when whitening.
        n_iter_: int, the iterations run (the most over the components for ``deflation``).
        n_features_in_: int.
        feature_names_in_: array of shape (n_features_in_,), the column names, set only when
            ``X`` has string column names (a data frame).

    Warns:
        ConvergenceWarning: ``fit`` with ``algorithm="parallel"``, when ``max_iter``
            iterations did not reach ``tol``.
    """

    def __init__(
        self,
        n_components: int | None = None,
        *,
        algorithm: str = "parallel",
        whiten: str | bool = "unit-variance",
        fun: str | Callable = "logcosh",
        fun_args: dict | None = None,
        max_iter: int = 200,
        tol: float = 1e-4,
        w_init: ArrayLike | None = None,
        whiten_solver: str = "svd",
        random_state: Any = None,
    ):
        self.n_components = n_components
        self.algorithm = algorithm
        self.whiten = whiten
        self.fun = fun
        self.fun_args = fun_args
        self.max_iter = max_iter
        self.tol = tol
        self.w_init = w_init
        self.whiten_solver = whiten_solver
        self.random_state = random_state

    def __sklearn_tags__(self):
        """scikit-learn's tags: a transformer that keeps float32 and float64."""
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _check_params(self, n_samples: int, n_features: int) -> tuple[int, dict]:
        """Checks every parameter; returns the number of components and ``fun_args``."""
        validation.check_choice("algorithm", self.algorithm, ALGORITHMS)
        if self.whiten is not False:
            validation.check_choice("whiten", self.whiten, WHITEN[:2])
        if not callable(self.fun):
            validation.check_choice("fun", self.fun, FUNCTIONS)
        fun_args = {} if self.fun_args is None else self.fun_args
        if not isinstance(fun_args, dict):
            raise TypeError(f"fun_args must be a dict or None, got {type(fun_args).__name__}")
        alpha = fun_args.get("alpha", 1.0)
        if not 1 <= validation.check_real("fun_args['alpha']", alpha) <= 2:
            raise ValueError(f"alpha must be in [1,2], got fun_args['alpha']={alpha}")
        validation.check_int("max_iter", self.max_iter, 1)
        validation.check_real("tol", self.tol, nonnegative=True)
        validation.check_choice("whiten_solver", self.whiten_solver, WHITEN_SOLVERS)
        bound = min(n_samples, n_features)
        n_components = self.n_components
        if n_components is not None:
            n_components = validation.check_int("n_components", n_components, 1)
        if not self.whiten:
            if n_components is not None:
                warnings.warn("Ignoring n_components with whiten=False.", UserWarning, stacklevel=3)
            return n_features, fun_args
        if n_components is None:
            return bound, fun_args
        if n_components > bound:
            warnings.warn(
                f"n_components is too large: it will be set to {bound}", UserWarning, stacklevel=3
            )
            return bound, fun_args
        return n_components, fun_args

    def _initial_unmixing(self, n_components: int, dtype: np.dtype) -> np.ndarray:
        if self.w_init is None:
            random_state = check_random_state(self.random_state)
            return np.asarray(random_state.normal(size=(n_components, n_components)), dtype)
        w_init = validation.check_array("w_init", self.w_init, ndim=2, dtype=dtype)
        if w_init.shape != (n_components, n_components):
            raise ValueError(
                f"w_init has invalid shape -- should be {(n_components, n_components)}, got "
                f"{w_init.shape}"
            )
        return w_init

    def fit(self, X: ArrayLike, y: Any = None) -> FastICA:
        """Fits the model to ``X``, array of shape (n_samples, n_features); returns ``self``.

        Raises:
            TypeError: a parameter has the wrong type, or ``X`` is sparse or not numeric.
            ValueError: ``X`` is not 2-D, has fewer than 2 samples, holds NaN/Inf; a
                parameter is out of range.
        """
        self._fit(X, sources=False)
        return self

    def fit_transform(self, X: ArrayLike, y: Any = None) -> np.ndarray:
        """Fits the model and returns the sources of ``X``, array of shape (n_samples,
        n_components)."""
        return self._fit(X, sources=True)

    def _fit(self, X: ArrayLike, sources: bool) -> np.ndarray | None:
        x = support.validate_data(
            self, X, dtype=[np.float64, np.float32], ensure_min_samples=2, reset=True
        )
        n_samples, n_features = x.shape
        n_components, fun_args = self._check_params(n_samples, n_features)
        dtype = x.dtype
        w_init = self._initial_unmixing(n_components, dtype)
        with support.precision_scope(dtype):
            if callable(self.fun):  # the user's function sees the samples as they are
                rows, mask = _to_device(x, dtype), jnp.ones(n_samples, bool)
            else:  # padded to share compiled programs between sample counts
                rows, mask = support.padded_rows(x, dtype)
            mean, whitening, whitened, degenerate = _whiten_kernel(
                rows,
                mask,
                n_components=n_components,
                whiten=bool(self.whiten),
                whiten_solver=self.whiten_solver,
            )
            unmixing, n_iter, converged = _ica_kernel(
                whitened,
                mask,
                w_init,
                jnp.asarray(self.tol, dtype),
                jnp.asarray(fun_args.get("alpha", 1.0), dtype),
                algorithm=self.algorithm,
                max_iter=int(self.max_iter),
                fun=self.fun,
                fun_args=tuple(sorted(fun_args.items())),
            )
            components, mixing, s = _finish_kernel(
                rows,
                mask,
                mean,
                unmixing,
                whitening,
                unit_variance=self.whiten == "unit-variance",
            )
            self.components_ = support.host(components, dtype)
            self.mixing_ = support.host(mixing, dtype)
            if self.whiten:
                self.mean_ = support.host(mean, dtype)
                self.whitening_ = support.host(whitening, dtype)
            self.n_iter_ = int(n_iter)
            s = support.host(s, dtype)[:n_samples] if sources else None
        if bool(degenerate):
            warnings.warn(
                "There are some small singular values, using whiten_solver = 'svd' might "
                "lead to more accurate results.",
                UserWarning,
                stacklevel=3,
            )
        if not bool(converged):
            warnings.warn(
                "FastICA did not converge. Consider increasing tolerance or the maximum number "
                "of iterations.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return s

    def _check_input(self, X: ArrayLike) -> tuple[np.ndarray, np.dtype]:
        check_is_fitted(self)
        x = support.validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return x, support.wider_dtype(x, self.components_)

    def transform(self, X: ArrayLike, copy: bool = True) -> np.ndarray:
        """The sources of ``X`` (``(X - mean_) @ components_.T``), array of shape (n_samples,
        n_components).

        Args:
            X: array of shape (n_samples, n_features).
            copy: accepted for scikit-learn's signature; ``X`` is never modified.
        """
        x, dtype = self._check_input(X)
        with support.precision_scope(dtype):
            mean = self.mean_ if self.whiten else np.zeros(x.shape[1], dtype)
            rows, _ = support.padded_rows(x, dtype)
            s = _sources_kernel(rows, _to_device(mean, dtype), _to_device(self.components_, dtype))
            return support.host(s, dtype)[: len(x)]

    def inverse_transform(self, X: ArrayLike, copy: bool = True) -> np.ndarray:
        """Mixes sources, array of shape (n_samples, n_components), back into data space
        (``X @ mixing_.T + mean_``): array of shape (n_samples, n_features).

        Args:
            X: the sources.
            copy: accepted for scikit-learn's signature; ``X`` is never modified.
        """
        check_is_fitted(self)
        s = support.check_codes(X, self.components_.shape[0])
        dtype = support.wider_dtype(s, self.mixing_)
        with support.precision_scope(dtype):
            mean = self.mean_ if self.whiten else np.zeros(self.mixing_.shape[0], dtype)
            rows, _ = support.padded_rows(s, dtype)
            x = _mix_kernel(rows, _to_device(self.mixing_, dtype), _to_device(mean, dtype))
            return support.host(x, dtype)[: len(s)]

    @property
    def _n_features_out(self) -> int:
        return self.components_.shape[0]
