"""JAX's persistent compilation cache, on by default for the command line, in a per-user folder.

Compiling the training chunk is a large part of a short run's time (the faces demo's VAE: about
6 s on a 2-core CPU, more than its 40 epochs take). JAX can keep compiled programs on disk and
reuse them in a later process with the same program, shapes, JAX version and machine;
:func:`enable` turns that on in a folder that belongs to the user:

* ``$LATENT_JAX_CACHE_DIR`` if set, else the platform's per-user cache folder
  (``$XDG_CACHE_HOME`` or ``~/.cache`` on Linux, ``~/Library/Caches`` on macOS,
  ``%LOCALAPPDATA%`` on Windows) + ``latent_jax/jax-compilation``;
* created with mode 0700; a folder that others can write to, or that another user owns, is
  refused (a program read from it could be someone else's), with a warning, and nothing is
  cached.

``latent-jax`` calls :func:`enable` unless ``--no-compile-cache`` is given or
``LATENT_JAX_NO_COMPILE_CACHE`` is set (to anything but ``0`` or empty).
:meth:`latent_jax.AnomalyDetector.fit` calls :func:`enable_default`: the same, unless JAX
already has a cache folder (yours is kept). A detector fitted on a few hundred rows trains
for a fraction of a second and compiles for more than a second; a detector fitted again, in
this process or a later one, on data of the same shape loads its programs instead (the
engine builds its training program per fit, so even the same process would compile again).
Importing latent_jax leaves JAX's configuration alone.
"""

from __future__ import annotations

import logging
import os
import stat
import sys

import jax

__all__ = [
    "DIR_VARIABLE",
    "DISABLE_VARIABLE",
    "default_directory",
    "disabled_by_environment",
    "enable",
    "enable_default",
]

logger = logging.getLogger(__name__)

DIR_VARIABLE = "LATENT_JAX_CACHE_DIR"
DISABLE_VARIABLE = "LATENT_JAX_NO_COMPILE_CACHE"
# Programs that compile faster than this are not worth a file (JAX's default is 1 s, which
# leaves out the many sub-second programs of a run: initialization, evaluation, plots).
_MIN_COMPILE_SECONDS = 0.1


def default_directory() -> str:
    """The cache folder :func:`enable` uses when given none (see the module docstring)."""
    if os.environ.get(DIR_VARIABLE):
        return os.path.abspath(os.path.expanduser(os.environ[DIR_VARIABLE]))
    if sys.platform == "darwin":
        base = os.path.expanduser("~/Library/Caches")
    elif os.name == "nt":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "latent_jax", "jax-compilation")


def disabled_by_environment() -> bool:
    """Whether ``LATENT_JAX_NO_COMPILE_CACHE`` asks for no cache."""
    return os.environ.get(DISABLE_VARIABLE, "").strip() not in ("", "0")


def _unsafe(directory: str) -> str | None:
    """Why ``directory`` must not hold programs this process runs, or ``None``."""
    info = os.stat(directory)
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "others can write to it"
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return "another user owns it"
    return None


def enable(directory: str | os.PathLike | None = None) -> str | None:
    """Turns on JAX's persistent compilation cache in ``directory`` (a per-user default).

    Args:
        directory: the cache folder; ``None`` is :func:`default_directory`.

    Returns:
        The folder in use, or ``None`` when it could not be used safely (a warning says why).
    """
    path = default_directory() if directory is None else os.path.abspath(os.fspath(directory))
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        reason = _unsafe(path)
    except OSError as err:
        reason = f"it cannot be created ({err.strerror or err})"
    if reason is not None:
        logger.warning("not caching compiled programs in %s: %s", path, reason)
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", _MIN_COMPILE_SECONDS)
    logger.debug("compiled programs are cached in %s", path)
    return path


def enable_default() -> str | None:
    """Turns the cache on as the library's detectors do (see the module docstring).

    Returns:
        The folder in use: JAX's own setting when it has one, else :func:`enable`'s; ``None``
        when ``LATENT_JAX_NO_COMPILE_CACHE`` asks for no cache or the folder is unsafe.
    """
    if disabled_by_environment():
        return None
    configured = jax.config.jax_compilation_cache_dir
    if configured:
        return configured
    return enable()
