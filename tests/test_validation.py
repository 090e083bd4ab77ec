"""The shared argument checks: types, ranges and messages that name the argument."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numerics import assert_bitwise

from latent_jax.validation import (
    check_array,
    check_bool,
    check_choice,
    check_fraction,
    check_int,
    check_key,
    check_real,
    check_rows,
)


def test_check_int_accepts_python_and_numpy_ints():
    assert check_int("n", 3, 1) == 3 and isinstance(check_int("n", np.int64(4)), int)


@pytest.mark.parametrize(
    ("value", "minimum", "error", "message"),
    [
        (True, None, TypeError, r"n must be an int, got bool \(True\)"),
        (2.0, None, TypeError, r"n must be an int, got float \(2.0\)"),
        ("3", None, TypeError, "n must be an int, got str"),
        (0, 1, ValueError, "n must be >= 1, got n=0"),
    ],
)
def test_check_int_errors(value, minimum, error, message):
    with pytest.raises(error, match=message):
        check_int("n", value, minimum)


def test_check_real_accepts_ints_and_floats():
    assert check_real("x", 2) == 2.0 and check_real("x", np.float32(0.5), positive=True) == 0.5
    assert check_real("x", 0.0, nonnegative=True) == 0.0


@pytest.mark.parametrize(
    ("value", "kwargs", "error", "message"),
    [
        (False, {}, TypeError, r"x must be a real number, got bool \(False\)"),
        (float("nan"), {}, ValueError, "x must be finite, got x=nan"),
        (float("inf"), {}, ValueError, "x must be finite"),
        (0.0, {"positive": True}, ValueError, "x must be > 0, got x=0.0"),
        (-1.0, {"nonnegative": True}, ValueError, "x must be >= 0, got x=-1.0"),
    ],
)
def test_check_real_errors(value, kwargs, error, message):
    with pytest.raises(error, match=message):
        check_real("x", value, **kwargs)


def test_check_bool_and_choice():
    assert check_bool("flag", np.bool_(True)) is True
    with pytest.raises(TypeError, match=r"flag must be a bool, got int \(1\)"):
        check_bool("flag", 1)
    assert check_choice("opt", "adam", ("adam", "sgd")) == "adam"
    with pytest.raises(ValueError, match=r"opt must be one of \('adam', 'sgd'\), got opt='adan'"):
        check_choice("opt", "adan", ("adam", "sgd"))
    with pytest.raises(ValueError, match=r"opt must be one of .*got opt=\[1\]"):
        check_choice("opt", [1], ("adam",))  # unhashable: simply not a choice


@pytest.mark.parametrize(
    ("value", "closed", "ok"),
    [(0.0, "neither", False), (0.0, "left", True), (1.0, "right", True), (1.0, "left", False)],
)
def test_check_fraction_ends(value, closed, ok):
    if ok:
        assert check_fraction("f", value, closed=closed) == value
    else:
        with pytest.raises(ValueError, match=rf"f must be in [\[(]0, 1[\])], got f={value:g}"):
            check_fraction("f", value, closed=closed)


def test_check_fraction_message_names_interval_and_value():
    with pytest.raises(ValueError, match=r"test_size must be in \(0, 1\), got test_size=1.5"):
        check_fraction("test_size", 1.5)
    with pytest.raises(ValueError, match=r"p must be in \[0, 0.5\], got p=0.6"):
        check_fraction("p", 0.6, high=0.5, closed="both")
    with pytest.raises(TypeError, match="p must be a real number"):
        check_fraction("p", "0.5")


def test_check_array_returns_numpy_or_keeps_jax():
    out = check_array("x", [[1, 2], [3, 4]], ndim=2)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    x64 = np.ones((2, 3))
    assert check_array("x", x64) is x64  # a float array is neither copied nor cast
    device = jnp.ones((2, 3))
    assert isinstance(check_array("x", device, ndim=2), jax.Array)
    assert check_array("x", np.arange(3), dtype="numeric").dtype == np.arange(3).dtype
    assert check_array("x", np.array([True]), dtype="numeric").dtype == np.bool_
    assert check_array("x", np.ones(2, np.float32), dtype=np.float64).dtype == np.float64
    assert check_array("x", np.array([1, 2], object)).dtype == np.float64
    assert check_array("x", np.ones((0, 3)), allow_empty=True).shape == (0, 3)


@pytest.mark.parametrize(
    ("value", "kwargs", "error", "match"),
    [
        (None, {}, TypeError, "x must be an array-like of numbers, got NoneType"),
        ("abc", {}, TypeError, "x must be an array-like of numbers, got str"),
        ({"a": 1}, {}, TypeError, "x must be an array-like of numbers, got dict"),
        (np.array(["a"]), {}, TypeError, "x must be a numeric array, got dtype <U1"),
        (np.array([None, "a"], object), {}, TypeError, "x must hold numbers, got an object"),
        (np.ones(2, complex), {}, TypeError, "x must be real, got complex dtype complex128"),
        ([[1.0], [1.0, 2.0]], {}, ValueError, "x must be a rectangular array; got a ragged"),
        (np.ones(3), {"ndim": 2}, ValueError, r"x must have 2 dimensions, got shape \(3,\)"),
        (
            np.ones(3),
            {"ndim": 2, "axes": "(n_samples, n_features)"},
            ValueError,
            r"x must have shape \(n_samples, n_features\), got shape \(3,\) "
            r"\(use x\.reshape\(-1, 1\) for a single feature\)",
        ),
        (np.ones(3), {"ndim": (2, 3)}, ValueError, r"x must have 2 or 3 dimensions, got shape"),
        (np.ones(3), {"min_ndim": 2}, ValueError, r"with at least 2 dimensions, got shape \(3,\)"),
        (np.ones((0, 2)), {}, ValueError, r"x must not be empty, got shape \(0, 2\)"),
        (np.ones(()), {"ndim": 1}, ValueError, r"x must have 1 dimensions, got shape \(\)"),
    ],
)
def test_check_array_errors(value, kwargs, error, match):
    with pytest.raises(error, match=match):
        check_array("x", value, **kwargs)


def test_check_array_refuses_sparse_matrices():
    sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match=r"x is a sparse matrix \(csr_matrix\); pass a dense"):
        check_array("x", sparse.csr_matrix(np.eye(2)))


@pytest.mark.parametrize("device", [False, True])
def test_check_array_counts_non_finite_values_and_names_the_first(device):
    x = np.ones((3, 4), np.float32)
    x[1, 2], x[2, 0], x[2, 3] = np.nan, np.inf, -np.inf
    x = jnp.asarray(x) if device else x
    with pytest.raises(
        ValueError,
        match=r"x contains 3 NaN or infinite values \(1 NaN, 2 infinite; the first at index "
        r"\(1, 2\)\); clean or impute them",
    ):
        check_array("x", x)
    assert check_array("x", x, finite=False) is x


def test_check_array_sum_overflow_is_not_a_non_finite_value():
    big = np.full((4,), np.finfo(np.float32).max, np.float32)  # the sum overflows to inf
    assert check_array("x", big) is big


def test_check_array_under_jit_checks_shape_not_values():
    @jax.jit
    def double(x):
        return 2 * check_array("x", x, ndim=2)

    assert_bitwise(double(jnp.full((1, 2), jnp.nan)), jnp.full((1, 2), jnp.nan))
    with pytest.raises(ValueError, match=r"x must have 2 dimensions, got shape \(3,\)"):
        double(jnp.ones(3))


def test_check_key_accepts_typed_and_legacy_keys():
    typed = jax.random.key(0)
    assert check_key("key", typed) is typed
    legacy = check_key("key", jax.random.PRNGKey(0))
    assert jax.dtypes.issubdtype(legacy.dtype, jax.dtypes.prng_key)
    np.testing.assert_array_equal(jax.random.key_data(legacy), jax.random.PRNGKey(0))
    keys = check_key("keys", jax.random.split(typed, 3), batched=True)
    assert keys.shape == (3,)


@pytest.mark.parametrize(
    ("value", "batched", "error", "match"),
    [
        (0, False, TypeError, r"key must be a jax.random.key \(or legacy PRNGKey\), got int"),
        (None, False, TypeError, r"key must be a jax.random.key .*got NoneType"),
        (np.zeros(2, np.int32), False, TypeError, r"got ndarray of shape \(2,\)"),
        ("split", False, ValueError, r"key must have shape \(\) \(a single key\), got shape"),
        ("one", True, ValueError, r"key must have shape \(K,\) \(one key per run\), got"),
        ("none", True, ValueError, r"key must hold at least one key, got shape \(0,\)"),
    ],
)
def test_check_key_errors(value, batched, error, match):
    named = {
        "split": jax.random.split(jax.random.key(0), 2),
        "one": jax.random.key(0),
        "none": jax.random.split(jax.random.key(0), 2)[:0],
    }
    with pytest.raises(error, match=match):
        check_key(
            "key", named.get(value, value) if isinstance(value, str) else value, batched=batched
        )


def test_check_rows_gives_finite_float32_rows_on_the_device():
    rows = check_rows("x", [[1, 2], [3, 4]])
    assert isinstance(rows, jax.Array) and rows.dtype == jnp.float32 and rows.shape == (2, 2)
    with pytest.raises(ValueError, match="x must have shape .* at least 2 dimensions"):
        check_rows("x", [1.0, 2.0])
    with pytest.raises(ValueError, match="x contains 1 NaN or infinite"):
        check_rows("x", [[1.0, np.inf]])
