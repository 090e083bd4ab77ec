"""Test-wide settings: the command line's persistent compilation cache stays off in tests.

``latent-jax`` turns JAX's persistent cache on by default (see
:mod:`latent_jax.persistent_cache`); tests that call the command line in this process must
not write compiled programs into the user's cache folder or change JAX's configuration for
the tests after them. The tests of the cache itself set what they need.
"""

import os

from latent_jax import persistent_cache

os.environ[persistent_cache.DISABLE_VARIABLE] = "1"
