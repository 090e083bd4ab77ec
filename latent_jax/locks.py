"""Moved to :mod:`latent_jax.runs.locks`; this module serves the old names with a
``DeprecationWarning`` for one release."""

from latent_jax._deprecation import moved_module as _moved_module
from latent_jax.runs import locks as _locks

__getattr__ = _moved_module(__name__, "latent_jax.runs.locks", {"latent_jax.runs.locks": _locks})
