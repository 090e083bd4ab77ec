"""Argument checks shared by the public functions: clear errors that name the argument.

This is the one module of boundary checks (a finite real array of a given rank, a key, an int,
a real, a fraction in an interval, a choice, a bool); modules call these instead of keeping
private copies. Every check raises ``TypeError`` for a value of the wrong type and
``ValueError`` for one out of range, with the argument's name, what was expected and what
arrived, e.g.
``batch_size must be >= 1, got batch_size=0``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence, Set
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def check_int(name: str, value: Any, minimum: int | None = None) -> int:
    """``value`` as an int (NumPy integers included, bools not), at least ``minimum``.

    Args:
        name: the argument's name, for the message.
        value: the value to check.
        minimum: the smallest allowed value; ``None`` for no bound.

    Returns:
        ``int(value)``.

    Raises:
        TypeError: if ``value`` is not an integer.
        ValueError: if it is below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {name}={value}")
    return int(value)


def check_real(
    name: str, value: Any, *, positive: bool = False, nonnegative: bool = False
) -> float:
    """``value`` as a finite float (bools not accepted), optionally > 0 or >= 0.

    Args:
        name: the argument's name, for the message.
        value: the value to check.
        positive: require ``value > 0``.
        nonnegative: require ``value >= 0``.

    Returns:
        ``float(value)``.

    Raises:
        TypeError: if ``value`` is not a real number.
        ValueError: if it is NaN, infinite or out of the requested range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} ({value!r})")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {name}={value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {name}={value}")
    if nonnegative and value < 0:
        raise ValueError(f"{name} must be >= 0, got {name}={value}")
    return float(value)


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is a bool (NumPy bools included).

    Raises:
        TypeError: for anything else (``0``/``1`` included).
    """
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} ({value!r})")
    return bool(value)


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """``value`` if it is one of ``choices``.

    Raises:
        ValueError: naming the choices and the value, e.g.
            ``optimizer must be one of ('adam', 'sgd'), got optimizer='adan'``.
    """
    try:
        ok = value in tuple(choices)
    except TypeError:  # an unhashable or incomparable value is simply not a choice
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {name}={value!r}")
    return value


def check_fraction(
    name: str,
    value: Any,
    *,
    low: float = 0.0,
    high: float = 1.0,
    closed: str = "neither",
) -> float:
    """``value`` as a float in an interval of [low, high].

    Args:
        name: the argument's name, for the message.
        value: the value to check.
        low: the lower end.
        high: the upper end.
        closed: which ends belong to the interval: ``"neither"`` (open, the default),
            ``"left"``, ``"right"`` or ``"both"``.

    Returns:
        ``float(value)``.

    Raises:
        TypeError: if ``value`` is not a real number.
        ValueError: if it is outside the interval, e.g.
            ``test_size must be in (0, 1), got test_size=1.5``.
    """
    check_choice("closed", closed, ("neither", "left", "right", "both"))
    value = check_real(name, value)
    left_ok = value >= low if closed in ("left", "both") else value > low
    right_ok = value <= high if closed in ("right", "both") else value < high
    if not (left_ok and right_ok):
        left = "[" if closed in ("left", "both") else "("
        right = "]" if closed in ("right", "both") else ")"
        raise ValueError(f"{name} must be in {left}{low:g}, {high:g}{right}, got {name}={value:g}")
    return value


def check_array(
    name: str,
    value: Any,
    *,
    ndim: int | tuple[int, ...] | None = None,
    min_ndim: int | None = None,
    axes: str | None = None,
    finite: bool = True,
    allow_empty: bool = False,
    dtype: Any = None,
) -> np.ndarray | jax.Array:
    """``value`` as a real numeric array: the one check every boundary runs on its data.

    NumPy arrays, lists and JAX arrays are accepted (a JAX array stays on its device and is
    checked there, without a copy to the host); bools count as numbers. ``None``, strings,
    mappings, sparse matrices, object arrays of non-numbers, complex data and ragged nested
    lists are refused with a message that says so. A traced array (inside ``jax.jit``) is
    checked for its dtype and shape only: its values are not known yet.

    Args:
        name: the argument's name, for the message (``"train_x"``, ``"x"``).
        value: the data.
        ndim: the required number of dimensions (an int or a tuple of allowed ones).
        min_ndim: the smallest number of dimensions, e.g. 2 for (n_samples, ...features).
        axes: what the dimensions are, for the message of a wrong ``ndim``, e.g.
            ``"(n_samples, n_features)"`` gives ``x must have shape (n_samples, n_features),
            got shape (4,)``.
        finite: refuse NaN and infinite values (counted, with the index of the first).
        allow_empty: accept arrays with no rows or no values.
        dtype: cast to this dtype (e.g. ``np.float32``); ``None`` keeps a float dtype and
            turns integers and bools into float32; ``"numeric"`` keeps any real numeric
            dtype (integers and bools too), as scikit-learn's ``check_array`` does.

    Returns:
        The array: a NumPy array, or a JAX array if ``value`` was one.

    Raises:
        TypeError: for sparse, non-numeric or complex input.
        ValueError: for a wrong number of dimensions, empty data or NaN/Inf values.
    """
    if value is None or isinstance(value, str | bytes | Mapping | Set):
        raise TypeError(f"{name} must be an array-like of numbers, got {type(value).__name__}")
    if hasattr(value, "toarray") and hasattr(value, "nnz"):
        raise TypeError(
            f"{name} is a sparse matrix ({type(value).__name__}); pass a dense array "
            "(e.g. x.toarray())"
        )
    is_device = isinstance(value, jax.Array)
    if is_device:
        array = value
    else:
        try:
            array = np.asarray(value)
        except ValueError as err:  # NumPy >= 1.24 refuses ragged nested sequences
            raise ValueError(
                f"{name} must be a rectangular array; got a ragged nested sequence ({err})"
            ) from err
        if array.dtype == object:
            try:
                array = array.astype(np.float64)
            except (TypeError, ValueError) as err:
                raise TypeError(
                    f"{name} must hold numbers, got an object array that does not convert "
                    f"to float ({err})"
                ) from err
    kind = np.dtype(array.dtype).kind
    # bfloat16 (mixed precision) is a floating dtype NumPy knows only as an extension ("V").
    if kind == "V" and jnp.issubdtype(array.dtype, jnp.floating):
        kind = "f"
    if kind == "c":
        raise TypeError(f"{name} must be real, got complex dtype {array.dtype}")
    if kind not in "biuf":
        raise TypeError(f"{name} must be a numeric array, got dtype {array.dtype}")
    shape = tuple(array.shape)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if array.ndim not in allowed:
            want = " or ".join(str(d) for d in allowed)
            expected = f"shape {axes}" if axes else f"{want} dimensions"
            hint = (
                f" (use {name}.reshape(-1, 1) for a single feature)"
                if allowed == (2,) and array.ndim == 1
                else ""
            )
            raise ValueError(f"{name} must have {expected}, got shape {shape}{hint}")
    if min_ndim is not None and array.ndim < min_ndim:
        raise ValueError(
            f"{name} must have shape (n_samples, ...features) with at least {min_ndim} "
            f"dimensions, got shape {shape}"
        )
    if not allow_empty and (array.size == 0 or (array.ndim and shape[0] == 0)):
        raise ValueError(f"{name} must not be empty, got shape {shape}")
    if isinstance(dtype, str) and dtype == "numeric":
        pass
    elif dtype is not None:
        array = array.astype(dtype, copy=False)
    elif kind != "f":
        array = array.astype(np.float32)
    if finite and kind == "f" and array.size:
        _raise_if_not_finite(name, array)
    return array


@jax.jit
def _all_finite(x: jax.Array) -> jax.Array:
    return jnp.all(jnp.isfinite(x))


def _raise_if_not_finite(name: str, array: np.ndarray | jax.Array) -> None:
    """Raises ValueError if a float ``array`` holds NaN/Inf; skips traced arrays."""
    if isinstance(array, jax.core.Tracer):
        return
    if isinstance(array, np.ndarray):
        # One sum finds any NaN/Inf without a boolean copy of the data; only a non-finite
        # sum (perhaps an overflow) pays for the element-wise check.
        with np.errstate(over="ignore", invalid="ignore"):
            if np.isfinite(np.sum(array)):
                return
    elif bool(_all_finite(array)):
        return
    host = np.asarray(array)
    bad = ~np.isfinite(host)
    n_bad = int(np.count_nonzero(bad))
    if not n_bad:
        return
    n_nan = int(np.count_nonzero(np.isnan(host)))
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    raise ValueError(
        f"{name} contains {n_bad} NaN or infinite values ({n_nan} NaN, {n_bad - n_nan} "
        f"infinite; the first at index {first}); clean or impute them"
    )


def check_key(name: str, value: Any, *, batched: bool = False) -> jax.Array:
    """``value`` as a typed ``jax.random`` key: one key, or (``batched``) shape (K,) keys.

    Legacy uint32 ``PRNGKey`` arrays are wrapped into typed keys.

    Raises:
        TypeError: for anything that is not a key.
        ValueError: for the wrong number of keys.
    """
    if isinstance(value, jax.Array) and jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
        typed = value
    else:
        raw = None if value is None else np.asarray(value)
        if raw is None or raw.dtype != np.uint32 or raw.ndim < 1 or raw.shape[-1] != 2:
            shape = "" if raw is None else f" of shape {raw.shape}"
            raise TypeError(
                f"{name} must be a jax.random.key (or legacy PRNGKey), got "
                f"{type(value).__name__}{shape}"
            )
        typed = jax.random.wrap_key_data(jnp.asarray(raw))
    if typed.ndim != int(batched):
        shape = "(K,) (one key per run)" if batched else "() (a single key)"
        raise ValueError(f"{name} must have shape {shape}, got shape {typed.shape}")
    if batched and typed.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one key, got shape {typed.shape}")
    return typed


def check_rows(name: str, value: Any) -> jax.Array:
    """``value`` as a finite float32 device array of shape (n >= 1, ...features).

    What every function that trains or scores a model on data checks first
    (:func:`check_finite_rows`, then on the device).
    """
    return jnp.asarray(check_finite_rows(name, value))


def check_finite_rows(name: str, value: Any) -> np.ndarray | jax.Array:
    """``value`` as float32 rows a model can train on, where it is (host or device).

    :func:`check_array` with at least 2 dimensions, cast to float32, then
    :func:`check_squares_fit_float32`.

    Raises:
        TypeError, ValueError: as :func:`check_array` and :func:`check_squares_fit_float32`.
    """
    rows = check_array(name, value, min_ndim=2, dtype=np.float32)
    check_squares_fit_float32(name, rows)
    return rows


_FLOAT32_MAX = float(np.finfo(np.float32).max)


@jax.jit
def _sum_of_squares(x: jax.Array) -> jax.Array:
    return jnp.vdot(x.ravel(), x.ravel())


@jax.jit
def _largest_magnitude(x: jax.Array) -> jax.Array:
    return jnp.max(jnp.abs(x))


def check_squares_fit_float32(name: str, rows: np.ndarray | jax.Array) -> None:
    """Refuses float32 rows whose squares, summed over one example, overflow float32.

    Every squared-error loss and reconstruction score of such data is infinite: training on
    it can only diverge. One dot product screens the data (no copy); only when the sum of
    all squares overflows is the largest magnitude computed.

    Args:
        name: how the message names the data (``"train_x"``, ``"--data 'x.npy'"``).
        rows: float32 array of shape (n, ...features), finite.

    Raises:
        ValueError: naming the data, its largest magnitude and the limit.
    """
    if isinstance(rows, jax.core.Tracer) or not np.size(rows):
        return
    if isinstance(rows, np.ndarray):
        flat = rows.reshape(-1)
        with np.errstate(over="ignore", invalid="ignore"):
            if np.isfinite(np.dot(flat, flat)):
                return
        largest = float(max(np.max(flat), -np.min(flat)))
    else:
        if bool(jnp.isfinite(_sum_of_squares(rows))):
            return
        largest = float(_largest_magnitude(rows))
    width = max(1, int(np.prod(rows.shape[1:])))
    limit = math.sqrt(_FLOAT32_MAX / width)
    if largest < limit:
        return
    raise ValueError(
        f"{name} holds values up to {largest:.3g} in magnitude: their squares, summed over an "
        f"example's {width} values, overflow float32 (whose largest value is "
        f"{_FLOAT32_MAX:.3g}), so every squared-error loss is infinite; standardize the data "
        f"(subtract its mean, divide by its standard deviation) or rescale it below {limit:.3g}"
    )
