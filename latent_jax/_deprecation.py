"""Old public names kept for one release: a module's ``__getattr__`` that warns and redirects.

A module lists its renamed attributes and installs the hook (PEP 562)::

    __getattr__ = deprecated_names(__name__, {"old_name": ("new_name", lambda: new_name)})

Reading ``module.old_name`` (``from module import old_name`` included) then emits a
``DeprecationWarning`` that names the replacement, and returns what the lambda gives.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any


def warn_deprecated(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Emits the ``DeprecationWarning`` of a renamed name, flag or value.

    Args:
        old: the old name, as the user wrote it (e.g. ``"latent_jax.data.load_digits_images"``).
        new: what to use instead.
        stacklevel: passed to :func:`warnings.warn`; the default points at the caller's caller.
    """
    warnings.warn(
        f"{old} is deprecated and will be removed in the next release; use {new}",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def deprecated_names(
    module: str, names: Mapping[str, tuple[str, Callable[[], Any]]]
) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` serving old names with a ``DeprecationWarning``.

    Args:
        module: the module's ``__name__``, for the messages.
        names: old name -> (what to use instead, a function returning the value to serve).

    Returns:
        The ``__getattr__`` function to assign in the module.
    """

    def __getattr__(name: str) -> Any:
        if name in names:
            new, value = names[name]
            warn_deprecated(f"{module}.{name}", new)
            return value()
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
