"""Argument checks shared by the public functions: clear errors that name the argument.

Every check raises ``TypeError`` for a value of the wrong type and ``ValueError`` for one out of
range, with the argument's name, what was expected and what arrived, e.g.
``batch_size must be >= 1, got batch_size=0``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any


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
