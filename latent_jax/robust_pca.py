"""Moved to :mod:`latent_jax.linear.robust_pca`; this module serves the old names with a
``DeprecationWarning`` for one release."""

import importlib as _importlib

from latent_jax._deprecation import moved_module as _moved_module

# By its dotted name: the attribute latent_jax.linear.robust_pca is the function.
_HOME = "latent_jax.linear.robust_pca"

__getattr__ = _moved_module(__name__, "latent_jax.linear", {_HOME: _importlib.import_module(_HOME)})
