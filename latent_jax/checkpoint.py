"""Moved to :mod:`latent_jax.runs.checkpoint`; this module serves the old names with a
``DeprecationWarning`` for one release."""

from latent_jax._deprecation import moved_module as _moved_module
from latent_jax.runs import checkpoint as _checkpoint

__getattr__ = _moved_module(
    __name__, "latent_jax.runs.checkpoint", {"latent_jax.runs.checkpoint": _checkpoint}
)
