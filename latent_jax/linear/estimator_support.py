"""What the scikit-learn estimators of :mod:`latent_jax.linear` share: scikit-learn's input
checks, the precision a fit computes in, the way results come back to NumPy, and random
states turned into JAX keys.

Every estimator here computes float64 data in float64 inside a scoped
``jax.enable_x64(True)`` (:func:`precision_scope`), float32 data in float32, and returns
ordinary writeable NumPy arrays (:func:`host`).
"""

from __future__ import annotations

import contextlib
from typing import Any

import jax
import numpy as np
from jax import Array
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array

# Seeds drawn from a random state for a JAX key: any non-negative int32.
_SEED_BOUND = np.iinfo(np.int32).max
# Rows are padded to a power of two up to this many, to a multiple of it beyond.
_BUCKET_ROWS = 128


def validate_data(estimator: BaseEstimator, X: Any, **kwargs: Any) -> np.ndarray:
    """``sklearn.utils.validation.validate_data`` (scikit-learn >= 1.6) or its older method.

    It sets or checks ``n_features_in_`` and ``feature_names_in_`` (``reset``) and raises
    scikit-learn's messages; a ragged nested list is refused with a message that says so, not
    NumPy's own.

    Args:
        estimator: the estimator the data are for.
        X: the data.
        **kwargs: ``validate_data``'s keyword arguments (``dtype``, ``reset``,
            ``ensure_min_samples``, ...).

    Returns:
        The validated NumPy array.
    """
    try:
        from sklearn.utils.validation import validate_data as sklearn_validate_data
    except ImportError:  # scikit-learn 1.5
        sklearn_validate_data = type(estimator)._validate_data
    try:
        return sklearn_validate_data(estimator, X, **kwargs)
    except ValueError as err:
        if "inhomogeneous" not in str(err):
            raise
        raise ValueError(
            f"X must be a rectangular array; got a ragged nested sequence ({err})"
        ) from err


def precision_scope(dtype: Any) -> contextlib.AbstractContextManager:
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


def host(x: Array, dtype: Any) -> np.ndarray:
    """A JAX result as an ordinary, writeable NumPy array of ``dtype`` (a copy)."""
    return np.array(x, dtype=dtype)


def bucket(rows: int) -> int:
    """The padded length of ``rows`` rows: a power of two up to 128, then a multiple of 128.

    Programs that treat rows independently (or that mask the padding) then compile once per
    bucket instead of once per length, which is most of their cost on small data.
    """
    if rows <= _BUCKET_ROWS:
        return 1 << max(rows - 1, 0).bit_length()
    return -(-rows // _BUCKET_ROWS) * _BUCKET_ROWS


def padded_rows(x: np.ndarray, dtype: Any) -> tuple[Array, Array]:
    """``x`` padded with zero rows to its :func:`bucket`, on the device in ``dtype``, and the
    boolean mask of its real rows (both arrays of the padded length)."""
    rows = x.shape[0]
    padded = np.zeros((bucket(rows), *x.shape[1:]), dtype)
    padded[:rows] = x
    return jax.device_put(padded), jax.device_put(np.arange(padded.shape[0]) < rows)


def wider_dtype(x: np.ndarray, fitted: np.ndarray) -> np.dtype:
    """The dtype a method computes and returns in: the wider of the fit's and the input's."""
    return np.result_type(x.dtype, fitted.dtype)


def check_codes(X: Any, n_columns: int, method: str = "inverse_transform") -> np.ndarray:
    """Codes given to ``method``: a float32/float64 array of shape (n_samples, n_columns).

    Raises:
        ValueError: for another number of columns (and scikit-learn's ``check_array``
            errors: NaN/Inf, not 2-D, sparse).
    """
    z = check_array(X, input_name="X", dtype=[np.float64, np.float32])
    if z.shape[1] != n_columns:
        raise ValueError(
            f"X has {z.shape[1]} columns, but {method} expects n_components_={n_columns} "
            "codes per row."
        )
    return z


def jax_key(random_state: Any) -> Array:
    """A JAX key from scikit-learn's ``random_state`` (None, an int or a ``RandomState``).

    An int gives the same key every time; a ``RandomState`` is advanced by one draw; None
    draws from NumPy's global random state, as scikit-learn's estimators do.
    """
    seed = check_random_state(random_state).randint(_SEED_BOUND)
    return jax.random.key(int(seed))
