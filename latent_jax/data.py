"""Datasets, splits and normalization, all in NumPy (arrays reach the device in ``train``).

Sources:
    * ``"seed"`` — the seed's synthetic classification set: ``make_classification`` with
      10,000 samples, 50 features, 10 informative and 10 redundant, 3 classes.
    * ``"digits"`` — scikit-learn's 1,797 real 8×8 handwritten digits (bundled, no download),
      pixels scaled to [0, 1].
    * a ``.npy`` / ``.npz`` / ``.csv`` file of shape (n_samples, n_features), optionally with a
      label column.

Normalization is a :class:`Standardizer` fitted on the training split only, stored with a run
(``to_dict``) and inverted for display.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
from sklearn import datasets as sk_datasets
from sklearn.model_selection import train_test_split

SEED_DATASET_PARAMS = {
    "n_samples": 10_000,
    "n_features": 50,
    "n_redundant": 10,
    "n_informative": 10,
    "n_clusters_per_class": 2,
    "n_classes": 3,
    "class_sep": 2,
}
TABULAR_SUFFIXES = (".npy", ".npz", ".csv")


@dataclasses.dataclass(frozen=True)
class Standardizer:
    """Affine normalization ``(x - mean) / std`` with its inverse.

    Attributes:
        mean: array broadcastable to one example (per-feature), or a scalar (the seed's face
            normalization uses one mean and one standard deviation over all pixels).
        std: same shape as ``mean``; zero deviations are stored as 1 so constant features map
            to 0 instead of NaN.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, *, per_feature: bool = True, ddof: int = 0) -> Standardizer:
        """Fits the normalization on training data.

        Args:
            x: array of shape (n_samples, ...features).
            per_feature: one mean/std per feature (scikit-learn's ``StandardScaler``, ddof 0) if
                true, else a single scalar pair over every entry (the seed's faces, which use
                pandas' ddof 1).
            ddof: delta degrees of freedom of the standard deviation.

        Returns:
            The fitted standardizer.
        """
        x = np.asarray(x, np.float64)
        axis = 0 if per_feature else None
        mean = x.mean(axis=axis)
        std = x.std(axis=axis, ddof=ddof)
        std = np.where(std > 0, std, 1.0)
        return cls(np.asarray(mean), np.asarray(std))

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Returns ``(x - mean) / std`` as float32."""
        return ((np.asarray(x, np.float64) - self.mean) / self.std).astype(np.float32)

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        """Returns ``x * std + mean`` as float32, the original units."""
        return (np.asarray(x, np.float64) * self.std + self.mean).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable description, inverted by :meth:`from_dict`."""
        return {"mean": np.asarray(self.mean).tolist(), "std": np.asarray(self.std).tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Standardizer:
        """Rebuilds a standardizer saved with :meth:`to_dict`."""
        return cls(np.asarray(d["mean"], np.float64), np.asarray(d["std"], np.float64))


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A train/test split, normalized, with labels when the source has them.

    Attributes:
        x_train: float32 array of shape (n_train, ...features), normalized.
        x_test: float32 array of shape (n_test, ...features), normalized.
        y_train: int array of shape (n_train,), or None.
        y_test: int array of shape (n_test,), or None.
        normalizer: the :class:`Standardizer` fitted on the raw training split, or None.
        name: where the data came from.
    """

    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray | None
    y_test: np.ndarray | None
    normalizer: Standardizer | None
    name: str

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """The shape of one example."""
        return tuple(self.x_train.shape[1:])


def check_finite_array(x: Any, name: str, *, min_ndim: int = 2) -> np.ndarray:
    """Validates a data array at a public boundary.

    Args:
        x: array-like data.
        name: the argument's name, used in error messages.
        min_ndim: the least number of dimensions accepted.

    Returns:
        ``x`` as a NumPy array.

    Raises:
        TypeError: if ``x`` is not numeric.
        ValueError: if ``x`` has too few dimensions, no rows, or NaN/Inf entries.
    """
    array = np.asarray(x)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise TypeError(f"{name} must be a numeric array, got dtype {array.dtype}")
    if array.ndim < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimensions (n_samples, ...), "
            f"got shape {array.shape}"
        )
    if array.shape[0] == 0 or array.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {array.shape}")
    if np.issubdtype(array.dtype, np.inexact) and not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(
            f"{name} contains {bad} NaN or infinite values; clean or impute them first"
        )
    return array


def load_seed_classification(random_state: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """The seed's synthetic data set (``make_classification`` with the seed's parameters).

    Args:
        random_state: the generator seed; the seed uses 42.

    Returns:
        ``(x, y)``: float64 array of shape (10000, 50) and int array of shape (10000,).
    """
    return sk_datasets.make_classification(**SEED_DATASET_PARAMS, random_state=random_state)


def load_digits_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled handwritten digits.

    Returns:
        ``(x, y)``: float32 images of shape (1797, 8, 8) with values in [0, 1] (the raw 0–16
        grey levels divided by 16), and int labels of shape (1797,).
    """
    digits = sk_datasets.load_digits()
    return (digits.images / 16.0).astype(np.float32), digits.target.astype(np.int64)


def load_array_file(
    path: str | os.PathLike, label_column: int | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Reads a numeric table from ``.npy``, ``.npz`` (first array) or ``.csv``.

    A CSV may have one header line; every other cell must be numeric.

    Args:
        path: the file.
        label_column: index of a column holding integer labels (negative counts from the end),
            removed from the features; None for no labels.

    Returns:
        ``(x, y)``: float32 features of shape (n_samples, ...) and int labels or None.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if the file cannot be parsed, naming the file and the cause.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"data file not found: {path!r}")
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in TABULAR_SUFFIXES:
        raise ValueError(f"data file {path!r} must end in one of {TABULAR_SUFFIXES}")
    try:
        if suffix == ".csv":
            table = _read_csv(path)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                if not archive.files:
                    raise ValueError("the archive holds no arrays")
                table = archive[archive.files[0]]
        else:
            table = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read data file {path!r}: {error}") from error
    table = check_finite_array(table, f"data in {path!r}", min_ndim=2)
    labels = None
    if label_column is not None:
        if table.ndim != 2:
            raise ValueError(
                f"label_column needs a 2-D table, but {path!r} holds shape {table.shape}"
            )
        if not -table.shape[1] <= label_column < table.shape[1]:
            raise ValueError(
                f"label_column={label_column} is out of range for {table.shape[1]} columns "
                f"in {path!r}"
            )
        column = table[:, label_column]
        if not np.all(column == np.round(column)):
            raise ValueError(f"label column {label_column} of {path!r} holds non-integer values")
        labels = column.astype(np.int64)
        table = np.delete(table, label_column, axis=1)
    return table.astype(np.float32), labels


def _read_csv(path: str) -> np.ndarray:
    with open(path, encoding="utf-8") as handle:
        lines = [line.strip() for line in handle if line.strip()]
    if not lines:
        raise ValueError("the file is empty")
    rows = [line.split(",") for line in lines]
    if not _is_numeric_row(rows[0]):
        rows = rows[1:]  # a header line
    widths = {len(row) for row in rows}
    if len(widths) > 1:
        raise ValueError(f"rows have different numbers of columns: {sorted(widths)}")
    for line_number, row in enumerate(rows, start=len(lines) - len(rows) + 1):
        for column, cell in enumerate(row):
            try:
                float(cell)
            except ValueError:
                raise ValueError(
                    f"non-numeric value {cell!r} at line {line_number}, column {column}"
                ) from None
    return np.asarray(rows, dtype=np.float64)


def _is_numeric_row(row: list[str]) -> bool:
    try:
        [float(cell) for cell in row]
    except ValueError:
        return False
    return True


def load_tabular(
    source: str,
    *,
    label_column: int | None = None,
    test_size: float = 0.2,
    random_state: int = 42,
    standardize: bool = True,
) -> Dataset:
    """Loads a tabular data set, splits it and standardizes it on the training split.

    This is the seed's first example's pipeline: ``train_test_split(test_size=0.2,
    random_state=42)`` then ``StandardScaler`` fitted on the training split.

    Args:
        source: ``"seed"``, ``"digits"`` (flattened to 64 features) or a ``.npy``/``.npz``/
            ``.csv`` path.
        label_column: for files, the column holding labels (see :func:`load_array_file`).
        test_size: fraction of rows held out, in (0, 1).
        random_state: seed of the split.
        standardize: standardize per feature with statistics of the training split.

    Returns:
        The :class:`Dataset`.
    """
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size=}")
    if source == "seed":
        x, y = load_seed_classification(random_state)
    elif source == "digits":
        images, y = load_digits_images()
        x = images.reshape(len(images), -1)
    else:
        x, y = load_array_file(source, label_column)
        if x.ndim != 2:
            raise ValueError(f"tabular data must be 2-D (n_samples, n_features), got {x.shape}")
    if len(x) < 2:
        raise ValueError(f"data set {source!r} needs at least 2 rows to split, got {len(x)}")
    arrays = (x,) if y is None else (x, y)
    parts = train_test_split(*arrays, test_size=test_size, random_state=random_state)
    x_train, x_test = parts[0], parts[1]
    y_train, y_test = (parts[2], parts[3]) if y is not None else (None, None)
    normalizer = Standardizer.fit(x_train) if standardize else None
    if normalizer is not None:
        x_train, x_test = normalizer.transform(x_train), normalizer.transform(x_test)
    return Dataset(
        x_train=np.asarray(x_train, np.float32),
        x_test=np.asarray(x_test, np.float32),
        y_train=y_train,
        y_test=y_test,
        normalizer=normalizer,
        name=source,
    )
