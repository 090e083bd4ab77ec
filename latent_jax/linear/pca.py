r"""Principal component analysis as pure functions in ``jax.numpy``: the fit and the projections.

PCA finds the orthonormal directions :math:`v_1, \dots, v_Q` that minimize the L2
reconstruction loss :math:`\mathcal{L} = \sum_i \lVert \hat x_i - x_i \rVert^2` with the encoder
:math:`z = V^\top (x - \bar x)` and the decoder :math:`\hat x = V z + \bar x`. They are the top-Q
eigenvectors of the covariance :math:`\mathrm{Cov}(X, X)`, and the loss left over is

.. math::

    \mathcal{L} = N \Big(\sum_{j=1}^{D} \lambda_j - \sum_{j=1}^{Q} \lambda_j\Big)
    = \sum_i \lVert x_i - \bar x \rVert^2 - \sum_i \lVert z_i \rVert^2,

with :math:`\lambda_j` the eigenvalues of the biased (``1/N``) covariance. :func:`fit_pca`
computes exactly that: the scatter matrix of the centred data, accumulated block by block with
Chan et al.'s stable merge, then ``jnp.linalg.eigh``. The same accumulator
(:mod:`latent_jax.linear.accumulator`) fits data that arrives in chunks
(:func:`~latent_jax.linear.fit_pca_chunks`) and gives the same result.

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
  ``ddof``; :func:`~latent_jax.linear.fit_ppca` gives the exact maximum likelihood for any
  shape.

Probabilistic PCA, built on the same fit, is :mod:`latent_jax.linear.ppca`; the
scikit-learn estimator wrapping both is :class:`latent_jax.linear.PCA`.

References:
    T. F. Chan, G. H. Golub and R. J. LeVeque, "Updating formulae and a pairwise algorithm for
    computing sample variances", 1979.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from latent_jax import validation
from latent_jax.linear.kernels import (
    PCAState,
    _check_block_rows,
    _check_ddof,
    _check_last_axis,
    _check_n_components,
    _check_state,
    _decode_kernel,
    _encode_kernel,
    _finalize_kernel,
    _first_block_kernel,
    _fit_block_kernel,
    _fit_kernel,
    _float_dtype,
    _reconstruction_error_kernel,
    _to_device,
    _update_largest_kernel,
    _validate_data,
)

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
