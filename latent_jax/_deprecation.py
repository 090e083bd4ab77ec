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


def moved_module(
    module: str, new_home: str, homes: Mapping[str, Any], renamed: Mapping[str, str] | None = None
) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for a module whose contents moved: every name read from
    the old module is served from its new home with a ``DeprecationWarning``.

    Args:
        module: the old module's ``__name__``.
        new_home: the public home to name in the messages (``"latent_jax.linear"``).
        homes: the new modules, by dotted name, searched in order for the name.
        renamed: old name -> the name it now has (looked up the same way).

    Returns:
        The ``__getattr__`` function to assign in the old module.
    """
    renamed = dict(renamed or {})

    def __getattr__(name: str) -> Any:
        target = renamed.get(name, name)
        for home_name, home in homes.items():
            if hasattr(home, target):
                shown = new_home if not target.startswith("_") else home_name
                warn_deprecated(f"{module}.{name}", f"{shown}.{target}")
                return getattr(home, target)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
