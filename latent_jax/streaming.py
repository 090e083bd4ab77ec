"""Moved to :mod:`latent_jax.data.streaming`; this module serves the old names with a
``DeprecationWarning`` for one release."""

from latent_jax._deprecation import moved_module as _moved_module
from latent_jax.data import streaming as _streaming

__getattr__ = _moved_module(
    __name__, "latent_jax.data.streaming", {"latent_jax.data.streaming": _streaming}
)
