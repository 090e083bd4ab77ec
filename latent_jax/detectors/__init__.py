"""Anomaly-detector backends, found by their ``method`` name; :class:`latent_jax.AnomalyDetector`
(:mod:`latent_jax.anomaly`) is the estimator that delegates to them.

* :mod:`~latent_jax.detectors.base`: :class:`DetectorBackend` (what a backend implements),
  :func:`register_backend`, :func:`methods`, :func:`backend_class`.
* :mod:`~latent_jax.detectors.linear`: ``pca``, ``ppca``, ``robust-pca``, fitted in closed
  form.
* :mod:`~latent_jax.detectors.networks`: ``autoencoder``, ``vae``, ``deep-svdd``, trained by
  the engine.

Adding a detector: a :class:`DetectorBackend` subclass with ``method`` set, decorated with
``@register_backend`` in a module here, one import line below, and its tests; the estimator,
the ``anomaly`` and ``one-class`` commands' ``--methods`` and persistence then take it.
"""

# Importing a module registers its backends, in this order (the order of ``methods()``).
from latent_jax.detectors import linear as linear
from latent_jax.detectors import networks as networks
from latent_jax.detectors.base import (
    DetectorBackend,
    TrainingRun,
    backend_class,
    methods,
    register_backend,
)

__all__ = ["DetectorBackend", "TrainingRun", "backend_class", "methods", "register_backend"]
