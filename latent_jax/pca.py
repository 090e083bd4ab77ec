r"""Principal component analysis and probabilistic PCA as pure functions in ``jax.numpy``.

PCA finds the orthonormal directions :math:`v_1, \dots, v_Q` that minimize the L2
reconstruction loss :math:`\mathcal{L} = \sum_i \lVert \hat x_i - x_i \rVert^2` with the encoder
:math:`z = V^\top (x - \bar x)` and the decoder :math:`\hat x = V z + \bar x`. They are the top-Q
eigenvectors of the covariance :math:`\mathrm{Cov}(X, X)`, and the loss left over is

.. math::

    \mathcal{L} = N \Big(\sum_{j=1}^{D} \lambda_j - \sum_{j=1}^{Q} \lambda_j\Big)
    = \sum_i \lVert x_i - \bar x \rVert^2 - \sum_i \lVert z_i \rVert^2,

with :math:`\lambda_j` the eigenvalues of the biased (``1/N``) covariance. :func:`fit_pca`
computes exactly that: the scatter matrix of the centred data, accumulated block by block with
Chan et al.'s stable merge, then ``jnp.linalg.eigh``. The same accumulator, exposed as
:class:`CovarianceAccumulator` with :func:`accumulator_update` and :func:`accumulator_finalize`,
fits data that arrives in chunks (:func:`fit_pca_chunks`) and gives the same result.

Conventions (the ones scikit-learn uses, made explicit):

* ``ddof`` sets the covariance normalization :math:`1/(N - \mathrm{ddof})`. ``ddof=1`` (the
  default) gives scikit-learn's ``explained_variance_``; ``ddof=0`` gives the biased covariance
  of the tutorial's identity and of the probabilistic PCA maximum likelihood. Singular values and
  explained-variance ratios do not depend on it.
* ``components`` has shape (n_components, n_features): its rows are the principal axes, so the
  tutorial's :math:`V` is ``components.T``.
* Signs are deterministic: in each component the entry of largest magnitude is positive
  (scikit-learn's ``svd_flip`` with ``u_based_decision=False``).
* ``noise_variance`` is the mean of the discarded eigenvalues among the first
  ``min(n_samples, n_features)`` (scikit-learn's rule; zero when nothing is discarded). For
  ``n_samples >= n_features`` this is the probabilistic PCA maximum likelihood with the chosen
  ``ddof``; :func:`fit_ppca` gives the exact maximum likelihood for any shape.

Probabilistic PCA (Tipping & Bishop, 1999) models :math:`x = W z + \mu + \epsilon` with
:math:`z \sim \mathcal{N}(0, I_Q)` and :math:`\epsilon \sim \mathcal{N}(0, \sigma^2 I_D)`. Its
maximum likelihood is closed form: :math:`\sigma^2` is the mean of the :math:`D - Q` discarded
eigenvalues and :math:`W = V (\Lambda - \sigma^2 I)^{1/2}`; see :func:`ppca_params`,
:func:`ppca_log_likelihood`, :func:`ppca_posterior` and :func:`ppca_sample`.

:class:`PCA` wraps all of it in a scikit-learn estimator (``fit``/``transform``/
``inverse_transform``/``score_samples``, attributes ending in ``_``) for pipelines; it passes
scikit-learn's ``check_estimator`` and computes float64 data in float64 inside a scoped
``jax.enable_x64(True)``, whatever the global setting.

References:
    M. E. Tipping and C. M. Bishop, "Probabilistic principal component analysis", Journal of
    the Royal Statistical Society B 61(3), 1999.
    T. F. Chan, G. H. Golub and R. J. LeVeque, "Updating formulae and a pairwise algorithm for
    computing sample variances", 1979.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array, lax
from jax.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

from latent_jax import validation
from latent_jax._deprecation import deprecated_names

__all__ = [
    "PCA",
    "CovarianceAccumulator",
    "PCAState",
    "PPCAParams",
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
]

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
    components = vectors[:, ::-1][:, :n_components].T
    # Deterministic signs: the largest-magnitude entry of each component is positive.
    pivot = jnp.argmax(jnp.abs(components), axis=1)
    signs = jnp.sign(components[jnp.arange(n_components), pivot])
    components = components * jnp.where(signs == 0, 1.0, signs).astype(dtype)[:, None]

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


# --------------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------------


def _state_from_outputs(outputs: tuple[Array, ...], n_samples: int, ddof: int) -> PCAState:
    return PCAState(*outputs, n_samples=n_samples, ddof=ddof)


def fit_pca(
    x: ArrayLike,
    n_components: int | None = None,
    *,
    ddof: int = 1,
    block_rows: int | None = None,
) -> PCAState:
    r"""Fits PCA by eigendecomposition of the covariance of ``x``.

    The scatter matrix of the centred data is accumulated over blocks of rows with Chan et
    al.'s merge (each block centred on its own mean, so float32 keeps its accuracy for data far
    from the origin), then ``jnp.linalg.eigh`` gives the principal axes.

    Args:
        x: array of shape (n_samples, n_features), finite real numbers. Integer and bool data
            are converted to the default float dtype; float64 stays float64 only with
            ``jax_enable_x64``.
        n_components: the number Q of components to keep, in ``[1, min(n_samples,
            n_features)]``; ``None`` keeps ``min(n_samples, n_features)`` (the full spectrum
            of the tutorial's eigenvalue bar chart).
        ddof: the covariance is normalized by ``n_samples - ddof``. The default 1 matches
            scikit-learn's ``explained_variance_``; 0 gives the biased covariance.
        block_rows: rows per block of the accumulation; ``None`` picks about 4M elements per
            block. It changes memory use and round-off, not the result.

    Returns:
        A :class:`PCAState`.

    Raises:
        TypeError: ``x`` is not numeric, or ``n_components``/``ddof``/``block_rows`` is not an
            int.
        ValueError: ``x`` is not 2-D, is empty, holds NaN/Inf, or has no more rows than
            ``ddof``; ``n_components`` is outside ``[1, min(n_samples, n_features)]``; the
            variances of ``x`` overflow (or underflow) the dtype JAX computes in (float32
            data beyond about 1e18, or float64 data without ``jax_enable_x64``).

    Note:
        With a traced ``x`` (inside ``jax.jit``) the NaN/Inf check is skipped. Data of
        extreme magnitude (whose squares would overflow or underflow the dtype) are divided
        by a power of two near ``max |x|`` before the covariance, an exact operation, and the
        results are scaled back; other data are used as they are.
    """
    x = _validate_data(x, "x", finite=False)  # _fit checks the values as it reads them
    n_samples, n_features = x.shape
    ddof = _check_ddof(ddof, n_samples)
    n_components = _check_n_components(n_components, n_samples, n_features)
    block_rows = _check_block_rows(block_rows, n_features)
    return _fit(x, n_components, ddof, block_rows)


class _VarianceOverflowError(ValueError):
    """The variances of the data overflow (or underflow) the dtype of the computation."""


def _extreme_scale(x: np.ndarray | Array, dtype: Any) -> float:
    """A power of two to divide ``x`` by before the covariance, or 1.0 when none is needed.

    Squares of entries near the largest (or smallest) float of ``dtype`` overflow (or
    underflow) in the scatter matrix; dividing by a power of two near ``max |x|`` is exact
    and rescaling the results afterwards (:func:`_rescaled`) gives the same fit. Ordinary data
    are not scaled, so their results do not change by a bit; traced data are never scaled.
    """
    if isinstance(x, jax.core.Tracer) or x.size == 0:
        return 1.0
    largest = float(np.max(np.abs(x)) if isinstance(x, np.ndarray) else jnp.max(jnp.abs(x)))
    return _scale_for(largest, x.shape, dtype)


def _scale_for(largest: float, shape: tuple[int, int], dtype: Any) -> float:
    """:func:`_extreme_scale` for data of ``shape`` whose largest magnitude is ``largest``."""
    info = jnp.finfo(dtype)
    high = math.sqrt(float(info.max) / (16.0 * shape[0] * shape[1]))
    low = math.sqrt(float(info.tiny)) / float(info.eps)
    if largest == 0.0 or low <= largest <= high:
        return 1.0
    return math.ldexp(1.0, math.frexp(largest)[1])


def _rescaled(state: PCAState, scale: float, name: str) -> PCAState:
    """The fit of ``x`` from the fit of ``x / scale`` (see :func:`_extreme_scale`).

    Raises:
        ValueError: if the variances of ``x`` are too large for the dtype JAX computes in.
    """
    dtype = state.mean.dtype
    biggest = float(state.eigenvalues[0]) * scale * scale
    info = jnp.finfo(dtype)
    if biggest > float(info.max) or 0.0 < biggest < float(info.tiny):
        how = "overflow" if biggest > 1.0 else "underflow"
        fix = "rescale the data"
        if jnp.dtype(dtype) != jnp.float64:
            fix = (
                "pass float64 data inside jax.enable_x64(True) (or use latent_jax.PCA, which "
                f"fits float64 data in float64), or {fix}"
            )
        raise _VarianceOverflowError(
            f"{name}'s variances (up to {biggest:.3g}) {how} {jnp.dtype(dtype).name}, the "
            f"dtype JAX computes in: {fix}"
        )
    square = jnp.asarray(scale * scale, dtype)
    return state._replace(
        mean=state.mean * jnp.asarray(scale, dtype),
        eigenvalues=state.eigenvalues * square,
        explained_variance=state.explained_variance * square,
        singular_values=state.singular_values * jnp.asarray(scale, dtype),
        noise_variance=state.noise_variance * square,
    )


def _fit(
    x: np.ndarray | Array, n_components: int, ddof: int, block_rows: int, name: str = "x"
) -> PCAState:
    """The fit on shape-validated input; NaN/Inf are refused, extreme magnitudes scaled.

    Host data take one pass: each block's largest magnitude comes back with the moments, and
    only data that hold NaN/Inf or need scaling (:func:`_extreme_scale`) are read again.
    """
    if isinstance(x, np.ndarray):
        outputs, largest = _host_moments(x, n_components, ddof, block_rows)
        if math.isfinite(largest) and _scale_for(largest, x.shape, outputs[0].dtype) == 1.0:
            return _state_from_outputs(outputs, x.shape[0], ddof)
    validation.check_array(name, x, allow_empty=True, dtype="numeric")  # NaN/Inf: a clear error
    scale = _extreme_scale(x, _float_dtype(np.dtype(x.dtype)))
    if scale != 1.0:
        state = _fit_unscaled(x / scale, n_components, ddof, block_rows)
        return _rescaled(state, scale, name)
    return _fit_unscaled(x, n_components, ddof, block_rows)


def _host_moments(
    x: np.ndarray, n_components: int, ddof: int, block_rows: int
) -> tuple[tuple[Array, ...], float]:
    """The fit's outputs for host data, and the largest magnitude of the data as computed.

    Data of at most ``block_rows`` rows go to the device once and are fitted by one compiled
    call; larger data go block by block (no full-size copy, and the transfer of the next block
    overlaps the reduction of the current one).
    """
    dtype = _float_dtype(x.dtype)
    n_samples = x.shape[0]
    if n_samples <= block_rows:
        outputs, largest = _fit_block_kernel(_to_device(x, dtype), n_components, ddof)
    else:
        acc, largest = _first_block_kernel(_to_device(x[:block_rows], dtype))
        for start in range(block_rows, n_samples, block_rows):
            block = _to_device(x[start : start + block_rows], dtype)
            acc, largest = _update_largest_kernel(acc, largest, block)
        outputs = _finalize_kernel(acc.count, acc.mean, acc.scatter, n_components, ddof)
    # The blocks may share memory with ``x``: finish reading it before returning.
    outputs, largest = jax.block_until_ready((outputs, largest))
    return outputs, float(largest)


def _fit_unscaled(x: np.ndarray | Array, n_components: int, ddof: int, block_rows: int) -> PCAState:
    """The fit of ``x`` as it is."""
    if isinstance(x, np.ndarray):
        outputs, _ = _host_moments(x, n_components, ddof, block_rows)
    else:
        outputs = _fit_kernel(_to_device(x), n_components, ddof, block_rows)
    return _state_from_outputs(outputs, x.shape[0], ddof)


def accumulator_init(n_features: int, dtype: Any = None) -> CovarianceAccumulator:
    """An empty :class:`CovarianceAccumulator`.

    Args:
        n_features: the number of columns of the chunks to come.
        dtype: floating dtype of the mean and scatter; ``None`` is JAX's default float.

    Returns:
        A :class:`CovarianceAccumulator` with count 0.
    """
    n_features = validation.check_int("n_features", n_features, 1)
    dtype = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"dtype must be a floating dtype; got {dtype}.")
    return CovarianceAccumulator(
        count=jnp.zeros((), jnp.int32),
        mean=jnp.zeros((n_features,), dtype),
        scatter=jnp.zeros((n_features, n_features), dtype),
    )


def _check_accumulator(acc: Any, name: str = "acc") -> CovarianceAccumulator:
    if not isinstance(acc, CovarianceAccumulator):
        raise TypeError(
            f"{name} must be a CovarianceAccumulator (from accumulator_init); got "
            f"{type(acc).__name__}."
        )
    return acc


def accumulator_update(
    acc: CovarianceAccumulator, chunk: ArrayLike, mask: ArrayLike | None = None
) -> CovarianceAccumulator:
    r"""Adds the rows of ``chunk`` to the running moments (Chan et al.'s parallel merge).

    With counts :math:`n_a, n_b`, means :math:`\mu_a, \mu_b`, scatters :math:`M_a, M_b` and
    :math:`\delta = \mu_b - \mu_a`:
    :math:`\mu = \mu_a + \delta\, n_b / n`,
    :math:`M = M_a + M_b + \delta\delta^\top n_a n_b / n`.

    Only shapes are checked here, so the function also works on traced arrays (for example
    inside ``jax.lax.scan``); :func:`fit_pca_chunks` also checks values.

    Args:
        acc: the running :class:`CovarianceAccumulator`.
        chunk: array of shape (chunk_rows, n_features).
        mask: optional array of shape (chunk_rows,); rows where it is zero/False are ignored
            (padding of a ragged last batch).

    Returns:
        The updated :class:`CovarianceAccumulator`.
    """
    acc = _check_accumulator(acc)
    n_features = acc.mean.shape[0]
    chunk = _as_array(chunk, "chunk")
    if chunk.ndim != 2 or chunk.shape[1] != n_features:
        raise ValueError(
            f"chunk must be a 2-D array of shape (chunk_rows, {n_features}) to match the "
            f"accumulator; got shape {tuple(chunk.shape)}."
        )
    chunk = _to_device(chunk, acc.mean.dtype)
    if mask is None:
        if chunk.shape[0] == 0:
            return acc
        return _update_kernel(acc, chunk)
    mask = _as_array(mask, "mask")
    if mask.shape != (chunk.shape[0],):
        raise ValueError(
            f"mask must have shape ({chunk.shape[0]},), one entry per row of chunk; got shape "
            f"{tuple(mask.shape)}."
        )
    return _update_masked_kernel(acc, chunk, jnp.asarray(mask))


def accumulator_merge(a: CovarianceAccumulator, b: CovarianceAccumulator) -> CovarianceAccumulator:
    """Merges two accumulators (for example from two devices or two workers).

    Args:
        a: a :class:`CovarianceAccumulator`.
        b: a :class:`CovarianceAccumulator` with the same number of features.

    Returns:
        The accumulator of the rows of both.
    """
    a = _check_accumulator(a, "a")
    b = _check_accumulator(b, "b")
    if a.mean.shape != b.mean.shape:
        raise ValueError(
            f"a and b must have the same number of features; got {a.mean.shape[0]} and "
            f"{b.mean.shape[0]}."
        )
    return _merge_kernel(a, b)


def accumulator_finalize(
    acc: CovarianceAccumulator, n_components: int | None = None, *, ddof: int = 1
) -> PCAState:
    """Turns accumulated moments into a fitted :class:`PCAState`.

    Args:
        acc: a :class:`CovarianceAccumulator` holding at least ``ddof + 1`` rows.
        n_components: as in :func:`fit_pca`.
        ddof: as in :func:`fit_pca`.

    Returns:
        A :class:`PCAState`, the same as :func:`fit_pca` on all the rows at once.
    """
    acc = _check_accumulator(acc)
    n_samples = int(acc.count)
    n_features = acc.mean.shape[0]
    if n_samples == 0:
        raise ValueError("acc must hold at least one row; it is empty (count=0).")
    if not bool(_all_finite(acc.scatter)):
        raise ValueError("acc must hold finite moments; its scatter matrix has NaN/Inf entries.")
    ddof = _check_ddof(ddof, n_samples)
    n_components = _check_n_components(n_components, n_samples, n_features)
    outputs = _finalize_kernel(acc.count, acc.mean, acc.scatter, n_components, ddof)
    return _state_from_outputs(outputs, n_samples, ddof)


def fit_pca_chunks(
    chunks: Iterable[ArrayLike] | Callable[[], Iterable[ArrayLike]],
    n_components: int | None = None,
    *,
    ddof: int = 1,
    dtype: Any = None,
) -> PCAState:
    """Fits PCA on data that arrives in chunks, in memory that does not grow with the rows.

    Each chunk's moments are merged into a :class:`CovarianceAccumulator`; the result equals
    :func:`fit_pca` on the concatenated chunks up to round-off. Each distinct chunk length
    compiles the update once, so keep the lengths few (for example a fixed size and a last,
    shorter one).

    Args:
        chunks: an iterable of arrays of shape (chunk_rows, n_features), or a callable that
            returns one (for example a generator function).
        n_components: as in :func:`fit_pca`, checked against the total number of rows.
        ddof: as in :func:`fit_pca`.
        dtype: floating dtype of the accumulation; ``None`` follows the first chunk.

    Returns:
        A :class:`PCAState`.

    Raises:
        TypeError: ``chunks`` is not iterable, or a chunk is not numeric.
        ValueError: a chunk is not 2-D, holds NaN/Inf or has a different number of features
            from the first; no rows arrived; ``n_components`` or ``ddof`` is out of range.
    """
    if callable(chunks):
        chunks = chunks()
    try:
        iterator = iter(chunks)
    except TypeError:
        raise TypeError(
            "chunks must be an iterable of 2-D arrays or a callable returning one; got "
            f"{type(chunks).__name__}."
        ) from None
    acc = None
    previous = None
    n_rows = 0
    for i, chunk in enumerate(iterator):
        name = f"chunks[{i}]"
        chunk = validation.check_array(
            name, chunk, ndim=2, axes="(chunk_rows, n_features)", allow_empty=True, dtype="numeric"
        )
        if acc is None:
            if chunk.shape[1] == 0:
                raise ValueError(f"{name} must have at least one feature; got shape (..., 0).")
            acc_dtype = _float_dtype(np.dtype(chunk.dtype)) if dtype is None else dtype
            acc = accumulator_init(chunk.shape[1], acc_dtype)
        elif chunk.shape[1] != acc.mean.shape[0]:
            raise ValueError(
                f"{name} must have {acc.mean.shape[0]} features like chunks[0]; got shape "
                f"{tuple(chunk.shape)}."
            )
        n_rows += chunk.shape[0]
        if n_rows > np.iinfo(np.int32).max:
            raise ValueError(
                f"chunks must hold at most {np.iinfo(np.int32).max} rows in all (int32 count); "
                f"{name} goes past it."
            )
        acc = accumulator_update(acc, chunk)
        # Let the next chunk be produced while this one is reduced, but keep at most two
        # updates in flight so that memory stays flat however fast chunks arrive.
        if previous is not None:
            jax.block_until_ready(previous)
        previous = acc
    if acc is None or n_rows == 0:
        raise ValueError("chunks must yield at least one row; got no rows.")
    return accumulator_finalize(acc, n_components, ddof=ddof)


def fit_ppca(x: ArrayLike, n_components: int) -> PCAState:
    r"""Maximum-likelihood probabilistic PCA (Tipping & Bishop, 1999) in closed form.

    The eigenvalues are those of the biased covariance (``ddof=0``) and the noise variance is
    the mean of all :math:`D - Q` discarded ones, :math:`\sigma^2 = \frac{1}{D-Q}
    \sum_{j>Q}\lambda_j` (zero when ``n_components == n_features``); :func:`ppca_params`
    turns the state into :math:`W` and :math:`\sigma^2`.

    Args:
        x: array of shape (n_samples, n_features), as in :func:`fit_pca`.
        n_components: Q, in ``[1, min(n_samples, n_features)]``.

    Returns:
        A :class:`PCAState` with ``ddof=0`` and the maximum-likelihood ``noise_variance``.
    """
    if n_components is None:
        raise TypeError("n_components must be an int for probabilistic PCA; got None.")
    state = fit_pca(x, n_components, ddof=0)
    return state._replace(noise_variance=_ml_noise_kernel(state.eigenvalues, n_components))


# --------------------------------------------------------------------------------------------
# Encoding, decoding, reconstruction
# --------------------------------------------------------------------------------------------


def encode(state: PCAState, x: ArrayLike, *, whiten: bool = False) -> Array:
    r"""Projects data onto the principal axes, :math:`z = V^\top (x - \bar x)`.

    Args:
        state: a fitted :class:`PCAState`.
        x: array of shape (..., n_features).
        whiten: divide each code by :math:`\sqrt{\lambda_j}` so the codes of the training data
            have unit variance.

    Returns:
        Array of shape (..., n_components).
    """
    state = _check_state(state)
    x = _check_last_axis(x, state.mean.shape[0], "x", "features")
    return _encode_kernel(state.mean, state.components, state.explained_variance, x, bool(whiten))


def decode(state: PCAState, z: ArrayLike, *, whiten: bool = False) -> Array:
    r"""Maps codes back to data space, :math:`\hat x = V z + \bar x`.

    Args:
        state: a fitted :class:`PCAState`.
        z: array of shape (..., n_components).
        whiten: the codes are whitened (as from ``encode(..., whiten=True)``).

    Returns:
        Array of shape (..., n_features).
    """
    state = _check_state(state)
    z = _check_last_axis(z, state.components.shape[0], "z", "components")
    return _decode_kernel(state.mean, state.components, state.explained_variance, z, bool(whiten))


def reconstruction_error(state: PCAState, x: ArrayLike) -> Array:
    r"""Squared L2 reconstruction error :math:`\lVert \hat x - x \rVert^2` of each example.

    Its sum over the training data is the tutorial's loss :math:`\mathcal{L}(Z^*, V)`, which equals
    :math:`N(\sum_{j} \lambda_j - \sum_{j \le Q} \lambda_j)` with the ``ddof=0`` eigenvalues.

    Args:
        state: a fitted :class:`PCAState`.
        x: array of shape (..., n_features).

    Returns:
        Array of shape (...), one error per example.
    """
    state = _check_state(state)
    x = _check_last_axis(x, state.mean.shape[0], "x", "features")
    return _reconstruction_error_kernel(state.mean, state.components, x)


# --------------------------------------------------------------------------------------------
# Probabilistic PCA
# --------------------------------------------------------------------------------------------


def ppca_params(state: PCAState) -> PPCAParams:
    r"""The probabilistic PCA weight :math:`W = V(\Lambda - \sigma^2 I)^{1/2}` and :math:`\sigma^2`.

    Differences :math:`\lambda_j - \sigma^2` below zero (possible only for states not fitted by
    :func:`fit_pca`) are clipped at zero, as scikit-learn does.

    Args:
        state: a fitted :class:`PCAState` (from :func:`fit_ppca` for the maximum likelihood).

    Returns:
        :class:`PPCAParams` with ``weight`` of shape (n_features, n_components).
    """
    state = _check_state(state)
    weight = _ppca_params_kernel(state.components, state.explained_variance, state.noise_variance)
    return PPCAParams(weight=weight, noise_variance=state.noise_variance)


def ppca_covariance(state: PCAState) -> Array:
    r"""The model covariance :math:`W W^\top + \sigma^2 I`.

    Args:
        state: a fitted :class:`PCAState`.

    Returns:
        Array of shape (n_features, n_features).
    """
    state = _check_state(state)
    return _ppca_covariance_kernel(state.components, state.explained_variance, state.noise_variance)


def ppca_log_likelihood(state: PCAState, x: ArrayLike) -> Array:
    r"""Log-density of each example under :math:`\mathcal{N}(\bar x, W W^\top + \sigma^2 I)`.

    The covariance has eigenvalues :math:`\max(\lambda_j, \sigma^2)` on the retained axes and
    :math:`\sigma^2` on the rest, so with :math:`z = V^\top(x - \bar x)` and the residual
    :math:`r = x - \bar x - V z`,

    .. math::

        \log p(x) = -\tfrac12\Big[D \log 2\pi + \sum_{j\le Q}\log\lambda_j + (D-Q)\log\sigma^2
        + \sum_{j\le Q} \frac{z_j^2}{\lambda_j} + \frac{\lVert r\rVert^2}{\sigma^2}\Big].

    With a zero noise variance and ``n_components < n_features`` the density is degenerate and
    the result is not finite.

    Args:
        state: a fitted :class:`PCAState`.
        x: array of shape (..., n_features).

    Returns:
        Array of shape (...), one log-likelihood per example.
    """
    state = _check_state(state)
    x = _check_last_axis(x, state.mean.shape[0], "x", "features")
    return _log_likelihood_kernel(
        state.mean, state.components, state.explained_variance, state.noise_variance, x
    )


def ppca_posterior(state: PCAState, x: ArrayLike) -> tuple[Array, Array]:
    r"""Posterior :math:`p(z \mid x) = \mathcal{N}(M^{-1} W^\top (x - \bar x), \sigma^2 M^{-1})`.

    Here :math:`M = W^\top W + \sigma^2 I`, diagonal with entries :math:`\lambda_j`, so the mean
    is :math:`\sqrt{\lambda_j - \sigma^2}\, z_j / \lambda_j` and the covariance
    :math:`\mathrm{diag}(\sigma^2 / \lambda_j)`, the same for every example.

    Args:
        state: a fitted :class:`PCAState`.
        x: array of shape (..., n_features).

    Returns:
        ``(mean, covariance)``: the posterior means, array of shape (..., n_components), and the
        shared posterior covariance, array of shape (n_components, n_components).
    """
    state = _check_state(state)
    x = _check_last_axis(x, state.mean.shape[0], "x", "features")
    return _posterior_kernel(
        state.mean, state.components, state.explained_variance, state.noise_variance, x
    )


def ppca_sample(key: Array, state: PCAState, n_samples: int) -> Array:
    r"""Draws :math:`x = W z + \bar x + \sigma\epsilon` with :math:`z, \epsilon` standard normal.

    Args:
        key: a ``jax.random`` key, consumed here.
        state: a fitted :class:`PCAState`.
        n_samples: the number of draws, a positive int.

    Returns:
        Array of shape (n_samples, n_features) whose covariance is :func:`ppca_covariance`.
    """
    state = _check_state(state)
    n_samples = validation.check_int("n_samples", n_samples, 1)
    key = validation.check_key("key", key)
    return _sample_kernel(
        key,
        state.mean,
        state.components,
        state.explained_variance,
        state.noise_variance,
        n_samples,
    )


# --------------------------------------------------------------------------------------------
# scikit-learn estimator
# --------------------------------------------------------------------------------------------


def _sklearn_validate_data(estimator: BaseEstimator, X: Any, **kwargs: Any) -> np.ndarray:
    """``sklearn.utils.validation.validate_data`` (scikit-learn >= 1.6) or its older method.

    A ragged nested list is refused with a message that says so, not NumPy's own.
    """
    try:
        from sklearn.utils.validation import validate_data
    except ImportError:  # scikit-learn 1.5
        validate_data = type(estimator)._validate_data
    try:
        return validate_data(estimator, X, **kwargs)
    except ValueError as err:
        if "inhomogeneous" not in str(err):
            raise
        raise ValueError(
            f"X must be a rectangular array; got a ragged nested sequence ({err})"
        ) from err


def _precision_scope(dtype: np.dtype) -> contextlib.AbstractContextManager:
    """A context in which JAX computes in ``dtype``: 64-bit types for float64, else nothing.

    ``jax.enable_x64(True)`` is a scoped (thread-local) override of ``jax_enable_x64``: it
    leaves the setting of the rest of the program as it was.
    """
    if np.dtype(dtype) != np.float64:
        return contextlib.nullcontext()
    enable_x64 = getattr(jax, "enable_x64", None)
    if enable_x64 is None:  # older JAX
        from jax.experimental import enable_x64
    return enable_x64(True)


def _host(x: Array, dtype: np.dtype) -> np.ndarray:
    """A JAX result as an ordinary, writeable NumPy array of ``dtype`` (a copy)."""
    return np.array(x, dtype=dtype)


class PCA(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
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

    def __sklearn_tags__(self):
        """scikit-learn's tags: a transformer that keeps float32 and float64."""
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

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
        x = _sklearn_validate_data(
            self, X, dtype=[np.float64, np.float32], ensure_min_samples=2, reset=True
        )
        n_samples, n_features = x.shape
        n_components = _check_n_components(self.n_components, n_samples, n_features)
        dtype = x.dtype
        try:
            with _precision_scope(dtype):
                state = _fit(x, n_components, 1, _check_block_rows(None, n_features), "X")
        except _VarianceOverflowError:
            if dtype == np.float64:
                raise
            # float32 data whose variances only float64 holds (|X| beyond about 1e18, or
            # below about 1e-19).
            x = x.astype(np.float64)
            dtype = x.dtype
            with _precision_scope(dtype):
                state = _fit(x, n_components, 1, _check_block_rows(None, n_features), "X")
        with _precision_scope(dtype):
            host = [_host(a, dtype) for a in state[:7]]
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

    def _check_input(self, X: ArrayLike) -> np.ndarray:
        check_is_fitted(self)
        return _sklearn_validate_data(self, X, dtype=[np.float64, np.float32], reset=False)

    def _dtype(self, x: np.ndarray) -> np.dtype:
        """The dtype a method computes and returns in: the wider of the fit's and ``x``'s."""
        return np.result_type(x.dtype, self.components_.dtype)

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
        with _precision_scope(dtype):
            mean, components, variance = self._kernel_args(dtype)
            z = _encode_kernel(mean, components, variance, _to_device(x, dtype), bool(self.whiten))
            return _host(z, dtype)

    def fit_transform(self, X: ArrayLike, y: Any = None) -> np.ndarray:
        """Fits to ``X`` and returns its codes, array of shape (n_samples, n_components_)."""
        return self._transform(self._fit_data(X))

    def inverse_transform(self, X: ArrayLike) -> np.ndarray:
        """Maps codes, array of shape (n_samples, n_components_), back to data space."""
        check_is_fitted(self)
        z = check_array(X, input_name="X", dtype=[np.float64, np.float32])
        if z.shape[1] != self.n_components_:
            raise ValueError(
                f"X has {z.shape[1]} columns, but inverse_transform expects n_components_="
                f"{self.n_components_} codes per row."
            )
        dtype = self._dtype(z)
        with _precision_scope(dtype):
            mean, components, variance = self._kernel_args(dtype)
            x = _decode_kernel(mean, components, variance, _to_device(z, dtype), bool(self.whiten))
            return _host(x, dtype)

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """Probabilistic PCA log-likelihood of each row of ``X``, array of shape (n_samples,)."""
        x = self._check_input(X)
        dtype = self._dtype(x)
        with _precision_scope(dtype):
            mean, components, variance = self._kernel_args(dtype)
            noise = jnp.asarray(self.noise_variance_, dtype)
            log_p = _log_likelihood_kernel(mean, components, variance, noise, _to_device(x, dtype))
            return _host(log_p, dtype)

    def score(self, X: ArrayLike, y: Any = None) -> float:
        """Average probabilistic PCA log-likelihood of the rows of ``X``."""
        return float(np.mean(self.score_samples(X)))

    def get_covariance(self) -> np.ndarray:
        """Model covariance ``W W^T + noise_variance_ I``, of shape (n_features, n_features)."""
        check_is_fitted(self)
        dtype = self.components_.dtype
        with _precision_scope(dtype):
            _, components, variance = self._kernel_args(dtype)
            noise = jnp.asarray(self.noise_variance_, dtype)
            return _host(_ppca_covariance_kernel(components, variance, noise), dtype)

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


__getattr__ = deprecated_names(
    __name__, {"fit_pca_streaming": ("latent_jax.pca.fit_pca_chunks", lambda: fit_pca_chunks)}
)
