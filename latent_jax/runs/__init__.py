"""Runs on disk: the run folder, its checkpoints, and one writer at a time.

* :mod:`~latent_jax.runs.folder`: the run folder's layout (config.json, metrics.json,
  history.csv, normalizer.json, checkpoints/), :func:`write_config` and :func:`load_run`, which
  reloads any run in one call as a :class:`Run`.
* :mod:`~latent_jax.runs.checkpoint`: atomic, verified, pickle-free checkpoints (arrays as
  msgpack, a JSON manifest with their checksums); the training engine's checkpoint format
  (:mod:`latent_jax.train.checkpoints`) and the saved detectors are built on it.
* :mod:`~latent_jax.runs.locks`: one writer per folder across processes.

``latent_jax.checkpoint`` and ``latent_jax.locks`` are the old paths of the last two, kept
for one release with a ``DeprecationWarning``.
"""

from latent_jax.runs.folder import (
    CHECKPOINTS,
    CONFIG,
    DETECTOR_KIND,
    HISTORY,
    METRICS,
    NORMALIZER,
    Run,
    load_run,
    write_config,
)

__all__ = [
    "CHECKPOINTS",
    "CONFIG",
    "DETECTOR_KIND",
    "HISTORY",
    "METRICS",
    "NORMALIZER",
    "Run",
    "load_run",
    "write_config",
]
