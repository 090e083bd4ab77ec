"""Data: tables, images and MNIST; the one split and normalization; sources read on demand.

* :mod:`~latent_jax.data.tabular`: tables (named sets, ``.npy``/``.npz``/``.csv`` files), the
  one split rule (:func:`split_indices`, :func:`split_dataset`), :class:`Standardizer` and
  :class:`Dataset`. Its names are the package's own (``latent_jax.data.split_dataset``).
* :mod:`~latent_jax.data.images`: named image sets, image folders and arrays, resized and
  normalized (``load_image_dataset``, :class:`~latent_jax.data.images.ImageDataConfig`).
* :mod:`~latent_jax.data.mnist`: MNIST and Fashion-MNIST from their IDX files, and the bundled
  ``mnist-5k``.
* :mod:`~latent_jax.data.dsprites`: dSprites (:class:`~latent_jax.data.dsprites.DSprites`), a
  ground-truth-factor data set drawn on demand or read from DeepMind's file, for the
  disentanglement metrics; the named image set ``dsprites``.
* :mod:`~latent_jax.data.streaming`: data larger than memory, read on demand (sources,
  shuffled batches, a prefetch thread), and ``latent-jax train``'s reading of files.

``latent_jax.image_data``, ``latent_jax.mnist`` and ``latent_jax.streaming`` are the old paths
of ``images``, ``mnist`` and ``streaming``, kept for one release with a ``DeprecationWarning``.
"""

from typing import Any as _Any

from latent_jax.data import tabular as _tabular
from latent_jax.data.tabular import (
    NORMALIZATIONS,
    SYNTHETIC_CLASSIFICATION,
    SYNTHETIC_CLASSIFICATION_PARAMS,
    TABULAR_NAMES,
    TABULAR_SUFFIXES,
    Dataset,
    Standardizer,
    check_finite_array,
    check_regular_file,
    fit_normalizer,
    load_array_file,
    load_digits_features,
    load_npy,
    load_synthetic_classification,
    load_tabular,
    resolve_source_name,
    split_dataset,
    split_indices,
)

__all__ = [
    "NORMALIZATIONS",
    "SYNTHETIC_CLASSIFICATION",
    "SYNTHETIC_CLASSIFICATION_PARAMS",
    "TABULAR_NAMES",
    "TABULAR_SUFFIXES",
    "Dataset",
    "Standardizer",
    "check_finite_array",
    "check_regular_file",
    "fit_normalizer",
    "load_array_file",
    "load_digits_features",
    "load_npy",
    "load_synthetic_classification",
    "load_tabular",
    "resolve_source_name",
    "split_dataset",
    "split_indices",
]


def __getattr__(name: str) -> _Any:
    # The table module's other names, its renamed ones with their DeprecationWarning.
    return getattr(_tabular, name)
