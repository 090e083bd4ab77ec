"""The shared argument checks: types, ranges and messages that name the argument."""

import numpy as np
import pytest

from latent_jax.validation import check_int, check_real


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
