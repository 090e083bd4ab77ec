"""The PCA kernels: the fitted state's types, argument checks, and the jitted programs every
linear model here runs (the blocked scatter with Chan et al.'s merge, the eigendecomposition,
projections, and probabilistic PCA's closed forms).

The public functions of :mod:`latent_jax.linear.pca`, :mod:`~latent_jax.linear.accumulator`,
:mod:`~latent_jax.linear.ppca` and :mod:`~latent_jax.linear.estimators` check their arguments
in Python and call these kernels.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array, lax

from latent_jax import validation

_LOG_2PI = math.log(2.0 * math.pi)
# Rows per block of the one-shot fit: about 4M elements (16 MB in float32), at most 32768 rows.
# Each block and its centred copy then stay in the last-level cache while the block's matrix
# product is still large enough to run at full speed (measured on a 2-core AVX2 CPU).
_BLOCK_ELEMENTS = 1 << 22
_MAX_BLOCK_ROWS = 1 << 15
_MIN_BLOCK_ROWS = 256
# From this many features on, the scatter matrix is assembled from products of column blocks
# above the diagonal only: XLA has no symmetric rank-k product, and skipping the blocks below
# the diagonal saves up to half of the flops.
_SYMMETRIC_MIN_FEATURES = 256
_HIGHEST = lax.Precision.HIGHEST


class PCAState(NamedTuple):
    """A fitted PCA.

    Attributes:
        mean: array of shape (n_features,), the sample mean :math:`\\bar x`.
        components: array of shape (n_components, n_features); rows are the orthonormal
            principal axes sorted by decreasing variance (the tutorial's ``V`` is its transpose).
        eigenvalues: array of shape (n_features,), the whole spectrum of the covariance with
            normalization ``1/(n_samples - ddof)``, in decreasing order and clipped at zero.
            The last ``n_features - min(n_samples - 1, n_features)`` are zero up to round-off.
        explained_variance: array of shape (n_components,), the first ``n_components``
            eigenvalues.
        explained_variance_ratio: array of shape (n_components,), ``explained_variance``
            divided by the sum of all eigenvalues.
        singular_values: array of shape (n_components,), the singular values of the centred
            data, :math:`\\sqrt{(N - \\mathrm{ddof})\\lambda_j}`.
        noise_variance: scalar array, the mean of the discarded eigenvalues among the first
            ``min(n_samples, n_features)`` (zero when none is discarded).
        n_samples: the number of rows the fit saw.
        ddof: the covariance normalization, ``1/(n_samples - ddof)``.
    """

    mean: Array
    components: Array
    eigenvalues: Array
    explained_variance: Array
    explained_variance_ratio: Array
    singular_values: Array
    noise_variance: Array
    n_samples: int
    ddof: int


class CovarianceAccumulator(NamedTuple):
    """Running count, mean and scatter matrix of the rows seen so far.

    Attributes:
        count: int32 scalar array, the number of rows.
        mean: array of shape (n_features,), their mean (zero while ``count`` is zero).
        scatter: array of shape (n_features, n_features), the sum of outer products of the
            rows centred on ``mean``: the covariance times ``count``.
    """

    count: Array
    mean: Array
    scatter: Array


class PPCAParams(NamedTuple):
    """Probabilistic PCA parameters :math:`x = W z + \\mu + \\epsilon`.

    Attributes:
        weight: array of shape (n_features, n_components),
            :math:`W = V(\\Lambda - \\sigma^2 I)^{1/2}`.
        noise_variance: scalar array, :math:`\\sigma^2`.
    """

    weight: Array
    noise_variance: Array


# --------------------------------------------------------------------------------------------
# Validation (Python, before anything is traced)
# --------------------------------------------------------------------------------------------


def _float_dtype(dtype: np.dtype) -> np.dtype:
    """The floating dtype computations on an array of ``dtype`` run in."""
    default = jnp.result_type(float)
    if dtype.kind == "f" and dtype.itemsize >= 4:
        # float64 becomes float32 unless jax_enable_x64 is on.
        return jnp.dtype(jax.dtypes.canonicalize_dtype(dtype))
    return jnp.dtype(default)


def _as_array(x: Any, name: str) -> np.ndarray | Array:
    """``x`` as a NumPy or JAX array of real numbers in its own dtype; values unchecked."""
    return validation.check_array(name, x, finite=False, allow_empty=True, dtype="numeric")


def _validate_data(
    x: Any, name: str, *, min_samples: int = 1, finite: bool = True
) -> np.ndarray | Array:
    """Validates a (n_samples, n_features) data matrix; returns it as a NumPy or JAX array.

    With ``finite=False`` the values are left unchecked (:func:`_fit` checks them on the way).
    """
    x = validation.check_array(
        name,
        x,
        ndim=2,
        axes="(n_samples, n_features)",
        finite=finite,
        allow_empty=True,
        dtype="numeric",
    )
    n_samples, n_features = x.shape
    if n_features == 0:
        raise ValueError(f"{name} must have at least one feature; got shape {tuple(x.shape)}.")
    if n_samples < min_samples:
        raise ValueError(
            f"{name} must have at least {min_samples} sample(s); got shape {tuple(x.shape)}."
        )
    return x


@jax.jit
def _all_finite(x: Array) -> Array:
    return jnp.all(jnp.isfinite(x))


def _to_device(x: np.ndarray | Array, dtype: Any = None) -> Array:
    """``x`` as a JAX array of ``dtype`` (default: its float dtype), without needless copies.

    ``jax.device_put`` shares the memory of an aligned NumPy array on the CPU, which
    ``jnp.asarray`` would copy.
    """
    dtype = _float_dtype(np.dtype(x.dtype)) if dtype is None else jnp.dtype(dtype)
    if isinstance(x, np.ndarray):
        return jax.device_put(np.asarray(x, dtype=dtype))
    return x if x.dtype == dtype else x.astype(dtype)


def _check_n_components(n_components: Any, n_samples: int, n_features: int) -> int:
    bound = min(n_samples, n_features)
    if n_components is None:
        return bound
    n_components = validation.check_int("n_components", n_components)
    if not 1 <= n_components <= bound:
        raise ValueError(
            f"n_components={n_components} must be between 1 and "
            f"min(n_samples, n_features)={bound} for data of shape ({n_samples}, {n_features})."
        )
    return n_components


def _check_ddof(ddof: Any, n_samples: int) -> int:
    ddof = validation.check_int("ddof", ddof)
    if not 0 <= ddof < n_samples:
        raise ValueError(
            f"ddof={ddof} must be >= 0 and smaller than n_samples={n_samples} "
            "(the covariance is normalized by n_samples - ddof)."
        )
    return ddof


def _check_state(state: Any, name: str = "state") -> PCAState:
    if not isinstance(state, PCAState):
        raise TypeError(
            f"{name} must be a PCAState (from fit_pca, fit_ppca or fit_pca_chunks); "
            f"got {type(state).__name__}."
        )
    return state


def _check_last_axis(x: Any, size: int, name: str, what: str) -> Array:
    """Checks an (..., size) input of a transform and returns it as a float JAX array."""
    x = _as_array(x, name)
    if x.ndim == 0 or x.shape[-1] != size:
        raise ValueError(
            f"{name} must have shape (..., {size}) with {size} {what}; got shape {tuple(x.shape)}."
        )
    return _to_device(x)


def _check_block_rows(block_rows: Any, n_features: int) -> int:
    if block_rows is None:
        return max(_MIN_BLOCK_ROWS, min(_MAX_BLOCK_ROWS, _BLOCK_ELEMENTS // n_features))
    return validation.check_int("block_rows", block_rows, 1)


# --------------------------------------------------------------------------------------------
# Compiled kernels
# --------------------------------------------------------------------------------------------


def _scatter(xc: Array) -> Array:
    """``xc.T @ xc`` for centred rows ``xc`` of shape (rows, n_features)."""
    n_features = xc.shape[1]

    def product(a, b):
        return lax.dot_general(a, b, (((0,), (0,)), ((), ())), precision=_HIGHEST)

    if n_features < _SYMMETRIC_MIN_FEATURES:
        return product(xc, xc)
    # Column blocks: the products on and above the diagonal, mirrored below it.
    n_blocks = 2 if n_features < 2 * _SYMMETRIC_MIN_FEATURES else 4
    width = -(-n_features // n_blocks)
    edges = [(lo, min(lo + width, n_features)) for lo in range(0, n_features, width)]
    columns = [xc[:, lo:hi] for lo, hi in edges]
    rows = []
    for i, (lo, hi) in enumerate(edges):
        row = [jnp.zeros((hi - lo, b_hi - b_lo), xc.dtype) for b_lo, b_hi in edges[:i]]
        row += [product(columns[i], columns[j]) for j in range(i, len(edges))]
        rows.append(jnp.concatenate(row, axis=1))
    upper = jnp.concatenate(rows, axis=0)
    return jnp.triu(upper) + jnp.triu(upper, 1).T


def _chunk_moments(x: Array, mask: Array | None = None) -> tuple[Array, Array, Array]:
    """Count, mean and centred scatter matrix of one chunk, optionally masked."""
    if mask is None:
        count = jnp.asarray(x.shape[0], jnp.int32)
        mean = jnp.mean(x, axis=0)
        xc = x - mean
    else:
        weight = (mask != 0).astype(x.dtype)[:, None]
        count = jnp.sum(mask != 0, dtype=jnp.int32)
        mean = jnp.sum(x * weight, axis=0) / jnp.maximum(count, 1).astype(x.dtype)
        xc = (x - mean) * weight
    return count, mean, _scatter(xc)


def _merge(
    a: tuple[Array, Array, Array], b: tuple[Array, Array, Array]
) -> tuple[Array, Array, Array]:
    """Chan et al.'s pairwise merge of (count, mean, scatter); exact for empty operands."""
    count_a, mean_a, scatter_a = a
    count_b, mean_b, scatter_b = b
    dtype = mean_a.dtype
    count = count_a + count_b
    na = count_a.astype(dtype)
    frac_b = count_b.astype(dtype) / jnp.maximum(count, 1).astype(dtype)
    delta = mean_b - mean_a
    mean = mean_a + delta * frac_b
    scatter = scatter_a + scatter_b + jnp.outer(delta, delta) * (na * frac_b)
    return count, mean, scatter


def _blocked_moments(x: Array, block_rows: int) -> tuple[Array, Array, Array]:
    """Moments of all rows of ``x``, one block of ``block_rows`` rows at a time."""
    n_samples = x.shape[0]
    n_blocks = n_samples // block_rows
    if n_blocks <= 1:
        return _chunk_moments(x)

    def body(i, acc):
        block = lax.dynamic_slice_in_dim(x, i * block_rows, block_rows, axis=0)
        return _merge(acc, _chunk_moments(block))

    acc = lax.fori_loop(1, n_blocks, body, _chunk_moments(x[:block_rows]))
    if n_blocks * block_rows < n_samples:
        acc = _merge(acc, _chunk_moments(x[n_blocks * block_rows :]))
    return acc


def _flip_rows(rows: Array) -> Array:
    """``rows`` with deterministic signs: the largest-magnitude entry of each row is positive
    (scikit-learn's ``svd_flip`` with ``u_based_decision=False``)."""
    pivot = jnp.argmax(jnp.abs(rows), axis=1)
    signs = jnp.sign(jnp.take_along_axis(rows, pivot[:, None], axis=1))
    return rows * jnp.where(signs == 0, 1.0, signs).astype(rows.dtype)


def _randomized_eigh(
    m: Array,
    key: Array,
    n_components: int,
    n_iter: int,
    oversamples: int = 10,
    tol: float | None = None,
) -> tuple[Array, Array]:
    """The ``n_components`` largest eigenvalues (descending) and their eigenvectors (columns)
    of the symmetric ``m``, by a randomized subspace iteration and the Rayleigh-Ritz projection.

    A Gaussian test matrix of ``n_components + oversamples`` columns (at most the order of
    ``m``) is multiplied by ``m`` and orthonormalized (QR) after each product (Halko,
    Martinsson & Tropp, 2011, Algorithm 4.4); the eigendecomposition of ``m`` projected on
    that subspace gives the result. With ``tol=None`` the product is taken ``n_iter + 1``
    times; with a ``tol``, until the Ritz pairs' residuals :math:`\\lVert m v_j - \\theta_j
    v_j\\rVert` fall below ``tol`` times the largest :math:`|\\theta|` (a ``lax.while_loop``,
    at most ``n_iter + 1`` products). When the subspace would be the whole space
    (``n_components + oversamples >= m.shape[0]``), the result is exact and so computed
    directly, by ``jnp.linalg.eigh`` of ``m``.
    """
    order = m.shape[0]
    width = min(n_components + oversamples, order)
    if width == order:
        values, vectors = jnp.linalg.eigh(m)
        return values[::-1][:n_components], vectors[:, ::-1][:, :n_components]

    def product(basis):
        return jnp.matmul(m, basis, precision=_HIGHEST)

    def ritz(basis, image):
        """Ritz values (descending) and vectors of ``basis``, and their relative residual."""
        projected = jnp.matmul(basis.T, image, precision=_HIGHEST)
        values, small = jnp.linalg.eigh(0.5 * (projected + projected.T))
        values, small = values[::-1][:n_components], small[:, ::-1][:, :n_components]
        vectors = jnp.matmul(basis, small, precision=_HIGHEST)
        residual = jnp.matmul(image, small, precision=_HIGHEST) - vectors * values
        scale = jnp.maximum(jnp.max(jnp.abs(values)), jnp.finfo(m.dtype).tiny)
        return values, vectors, jnp.max(jnp.linalg.norm(residual, axis=0)) / scale

    test = jax.random.normal(key, (order, width), m.dtype)
    basis = jnp.linalg.qr(product(test))[0]
    if tol is None:
        for _ in range(n_iter):
            basis = jnp.linalg.qr(product(basis))[0]
        values, vectors, _ = ritz(basis, product(basis))
        return values, vectors

    def body(carry):
        i, basis, *_ = carry
        image = product(basis)
        values, vectors, residual = ritz(basis, image)
        return i + 1, jnp.linalg.qr(image)[0], values, vectors, residual

    def cond(carry):
        i, *_, residual = carry
        return (i <= n_iter) & (residual >= tol)

    start = (
        jnp.int32(0),
        basis,
        jnp.zeros((n_components,), m.dtype),
        jnp.zeros((order, n_components), m.dtype),
        jnp.asarray(jnp.inf, m.dtype),
    )
    _, _, values, vectors, _ = lax.while_loop(cond, body, start)
    return values, vectors


def _finalize(
    count: Array, mean: Array, scatter: Array, n_components: int, ddof: int
) -> tuple[Array, ...]:
    """Eigendecomposition of the scatter matrix and everything derived from it."""
    n_features = scatter.shape[0]
    dtype = scatter.dtype
    n = count.astype(dtype)
    sq_singular, vectors = jnp.linalg.eigh(scatter)
    # eigh sorts ascending; round-off can make the eigenvalues of a PSD matrix slightly negative.
    sq_singular = jnp.maximum(sq_singular[::-1], 0.0)
    components = _flip_rows(vectors[:, ::-1][:, :n_components].T)

    eigenvalues = sq_singular / (n - ddof)
    total = jnp.sum(eigenvalues)
    explained = eigenvalues[:n_components]
    ratio = jnp.where(total > 0, explained / jnp.where(total > 0, total, 1.0), 0.0)
    # scikit-learn's noise variance: the mean of the discarded values among the first
    # min(n_samples, n_features) eigenvalues.
    rank_bound = jnp.minimum(count, n_features)
    index = jnp.arange(n_features)
    discarded = (index >= n_components) & (index < rank_bound)
    n_discarded = jnp.sum(discarded).astype(dtype)
    noise = jnp.sum(jnp.where(discarded, eigenvalues, 0.0)) / jnp.maximum(n_discarded, 1.0)
    singular = jnp.sqrt(sq_singular[:n_components])
    return mean, components, eigenvalues, explained, ratio, singular, noise


@functools.partial(jax.jit, static_argnames=("n_components", "ddof", "block_rows"))
@functools.partial(jax.jit, static_argnames=("n_components", "ddof", "block_rows"))
def _fit_kernel(x: Array, n_components: int, ddof: int, block_rows: int) -> tuple[Array, ...]:
    count, mean, scatter = _blocked_moments(x, block_rows)
    return _finalize(count, mean, scatter, n_components, ddof)


_finalize_kernel = jax.jit(_finalize, static_argnames=("n_components", "ddof"))


@jax.jit
def _update_kernel(acc: CovarianceAccumulator, chunk: Array) -> CovarianceAccumulator:
    return CovarianceAccumulator(*_merge(tuple(acc), _chunk_moments(chunk)))


# The host path's kernels also return the largest magnitude seen (NaN if any value is NaN), so
# that checking the values costs no pass of its own.
@functools.partial(jax.jit, static_argnames=("n_components", "ddof"))
def _fit_block_kernel(x: Array, n_components: int, ddof: int) -> tuple[tuple[Array, ...], Array]:
    return _finalize(*_chunk_moments(x), n_components, ddof), jnp.max(jnp.abs(x))


@jax.jit
def _first_block_kernel(chunk: Array) -> tuple[CovarianceAccumulator, Array]:
    return CovarianceAccumulator(*_chunk_moments(chunk)), jnp.max(jnp.abs(chunk))


@jax.jit
def _update_largest_kernel(
    acc: CovarianceAccumulator, largest: Array, chunk: Array
) -> tuple[CovarianceAccumulator, Array]:
    largest = jnp.maximum(largest, jnp.max(jnp.abs(chunk)))  # jnp.maximum propagates NaN
    return CovarianceAccumulator(*_merge(tuple(acc), _chunk_moments(chunk))), largest


@jax.jit
def _update_masked_kernel(
    acc: CovarianceAccumulator, chunk: Array, mask: Array
) -> CovarianceAccumulator:
    return CovarianceAccumulator(*_merge(tuple(acc), _chunk_moments(chunk, mask)))


@jax.jit
def _merge_kernel(a: CovarianceAccumulator, b: CovarianceAccumulator) -> CovarianceAccumulator:
    return CovarianceAccumulator(*_merge(tuple(a), tuple(b)))


def _whiten_scale(explained_variance: Array) -> Array:
    # Rank-deficient data can leave a retained variance at zero; clip as scikit-learn does.
    scale = jnp.sqrt(explained_variance)
    return jnp.maximum(scale, jnp.finfo(scale.dtype).eps)


@functools.partial(jax.jit, static_argnames=("whiten",))
def _encode_kernel(mean, components, explained_variance, x, whiten):
    z = jnp.matmul(x - mean, components.T, precision=_HIGHEST)
    return z / _whiten_scale(explained_variance) if whiten else z


@functools.partial(jax.jit, static_argnames=("whiten",))
def _decode_kernel(mean, components, explained_variance, z, whiten):
    if whiten:
        components = components * jnp.sqrt(explained_variance)[:, None]
    return jnp.matmul(z, components, precision=_HIGHEST) + mean


@jax.jit
def _reconstruction_error_kernel(mean, components, x):
    centred = x - mean
    z = jnp.matmul(centred, components.T, precision=_HIGHEST)
    residual = centred - jnp.matmul(z, components, precision=_HIGHEST)
    return jnp.sum(jnp.square(residual), axis=-1)


def _ppca_spectrum(explained_variance: Array, noise_variance: Array) -> Array:
    """The model covariance's eigenvalues on the retained axes, max(lambda_j, sigma^2)."""
    return jnp.maximum(explained_variance, noise_variance)


@jax.jit
def _log_likelihood_kernel(mean, components, explained_variance, noise_variance, x):
    n_features = mean.shape[-1]
    n_components = components.shape[0]
    dtype = x.dtype
    spectrum = _ppca_spectrum(explained_variance, noise_variance)
    centred = x - mean
    z = jnp.matmul(centred, components.T, precision=_HIGHEST)
    mahalanobis = jnp.sum(jnp.square(z) / spectrum, axis=-1)
    log_det = jnp.sum(jnp.log(spectrum))
    n_rest = n_features - n_components
    if n_rest > 0:
        # The off-subspace part, from the residual itself rather than |x|^2 - |z|^2, which
        # would cancel catastrophically in float32.
        residual = centred - jnp.matmul(z, components, precision=_HIGHEST)
        mahalanobis = mahalanobis + jnp.sum(jnp.square(residual), axis=-1) / noise_variance
        log_det = log_det + n_rest * jnp.log(noise_variance)
    return (-0.5 * (n_features * _LOG_2PI + log_det + mahalanobis)).astype(dtype)


@functools.partial(jax.jit, static_argnames=("n_components",))
def _ml_noise_kernel(eigenvalues, n_components):
    n_rest = eigenvalues.shape[0] - n_components
    return jnp.sum(eigenvalues[n_components:]) / max(n_rest, 1)


@jax.jit
def _ppca_params_kernel(components, explained_variance, noise_variance):
    scale = jnp.sqrt(jnp.maximum(explained_variance - noise_variance, 0.0))
    return components.T * scale


@jax.jit
def _ppca_covariance_kernel(components, explained_variance, noise_variance):
    weight = _ppca_params_kernel(components, explained_variance, noise_variance)
    cov = jnp.matmul(weight, weight.T, precision=_HIGHEST)
    return cov + noise_variance * jnp.eye(weight.shape[0], dtype=cov.dtype)


@jax.jit
def _posterior_kernel(mean, components, explained_variance, noise_variance, x):
    # With W = V diag(a)^{1/2}, a = max(lambda - sigma^2, 0): M = W^T W + sigma^2 I is
    # diagonal, so the posterior needs no matrix inverse.
    a = jnp.maximum(explained_variance - noise_variance, 0.0)
    m = a + noise_variance
    safe_m = jnp.where(m > 0, m, 1.0)
    z = jnp.matmul(x - mean, components.T, precision=_HIGHEST)
    post_mean = z * jnp.where(m > 0, jnp.sqrt(a) / safe_m, 0.0)
    post_var = jnp.where(m > 0, noise_variance / safe_m, 0.0)
    return post_mean, jnp.diag(post_var)


@functools.partial(jax.jit, static_argnames=("n_samples",))
def _sample_kernel(key, mean, components, explained_variance, noise_variance, n_samples):
    weight = components.T * jnp.sqrt(jnp.maximum(explained_variance - noise_variance, 0.0))
    key_z, key_eps = jax.random.split(key)
    z = jax.random.normal(key_z, (n_samples, components.shape[0]), mean.dtype)
    eps = jax.random.normal(key_eps, (n_samples, mean.shape[0]), mean.dtype)
    return mean + jnp.matmul(z, weight.T, precision=_HIGHEST) + jnp.sqrt(noise_variance) * eps
