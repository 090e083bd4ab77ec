"""PCA of data that arrive in chunks: the covariance accumulator (Chan et al.'s stable merge of
per-chunk moments) and :func:`fit_pca_chunks`, which gives the result of
:func:`latent_jax.linear.pca.fit_pca` on the concatenated rows in memory that does not grow with
their number.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from latent_jax import validation
from latent_jax.linear.kernels import (
    CovarianceAccumulator,
    PCAState,
    _all_finite,
    _as_array,
    _check_ddof,
    _check_n_components,
    _finalize_kernel,
    _float_dtype,
    _merge_kernel,
    _to_device,
    _update_kernel,
    _update_masked_kernel,
)
from latent_jax.linear.pca import _state_from_outputs


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
