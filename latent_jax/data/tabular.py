"""Datasets, splits and normalization, all in NumPy (arrays reach the device in ``train``).

Sources:
    * ``"synthetic-classification"`` — the tutorial's synthetic classification set:
      ``make_classification`` with 10,000 samples, 50 features, 10 informative and 10
      redundant, 3 classes (``"seed"`` is its deprecated old name).
    * ``"digits"`` — scikit-learn's 1,797 real 8×8 handwritten digits (bundled, no download),
      pixels scaled to [0, 1].
    * a ``.npy`` / ``.npz`` / ``.csv`` file of shape (n_samples, n_features), optionally with a
      label column.

Splitting and normalizing happen in one place, :func:`split_dataset` (on top of
:func:`split_indices`): every loader and experiment calls it, so a seed gives the same split
everywhere. Normalization is a :class:`Standardizer` fitted on the training split only, stored
with a run (``to_dict``) and inverted for display.
"""

from __future__ import annotations

import dataclasses
import numbers
import os
import stat
import zipfile
from typing import Any

import numpy as np
from sklearn import datasets as sk_datasets
from sklearn.model_selection import train_test_split

from latent_jax import validation
from latent_jax._deprecation import deprecated_names, warn_deprecated
from latent_jax.data.mnist import MNIST_5K, MNIST_5K_SPLIT_SEED, MNIST_5K_TEST_SIZE, load_mnist_5k

SYNTHETIC_CLASSIFICATION = "synthetic-classification"
SYNTHETIC_CLASSIFICATION_PARAMS = {
    "n_samples": 10_000,
    "n_features": 50,
    "n_redundant": 10,
    "n_informative": 10,
    "n_clusters_per_class": 2,
    "n_classes": 3,
    "class_sep": 2,
}
TABULAR_SUFFIXES = (".npy", ".npz", ".csv")
# The tabular data sets :func:`load_tabular` knows by name.
TABULAR_NAMES = (SYNTHETIC_CLASSIFICATION, "digits", MNIST_5K)
# How split_dataset normalizes: per feature (scikit-learn's StandardScaler, ddof 0), one
# scalar mean and std over every value (the tutorial's faces, ddof 1), or not at all.
NORMALIZATIONS = ("per-feature", "global", "none")
# Old names kept for one release: name -> (new name, what to use instead).
_DEPRECATED_SOURCES = {"seed": SYNTHETIC_CLASSIFICATION}


@dataclasses.dataclass(frozen=True)
class Standardizer:
    """Affine normalization ``(x - mean) / std`` with its inverse.

    Attributes:
        mean: array broadcastable to one example (per-feature), or a scalar (the tutorial's face
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
                true, else a single scalar pair over every entry (the tutorial's faces, which use
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
    """A train/test split (and optionally a validation split), normalized, with labels when
    the source has them. Built by :func:`split_dataset`.

    Attributes:
        x_train: float32 array of shape (n_train, ...features), normalized.
        x_test: float32 array of shape (n_test, ...features), normalized.
        y_train: int array of shape (n_train,), or None.
        y_test: int array of shape (n_test,), or None.
        normalizer: the :class:`Standardizer` fitted on the raw training split, or None.
        name: where the data came from.
        x_val: float32 array of shape (n_val, ...features), normalized like the others, or
            None when no validation split was asked for.
        y_val: int array of shape (n_val,), or None.
    """

    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray | None
    y_test: np.ndarray | None
    normalizer: Standardizer | None
    name: str
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """The shape of one example."""
        return tuple(self.x_train.shape[1:])


def check_finite_array(x: Any, name: str, *, min_ndim: int = 2) -> np.ndarray:
    """Validates a data array at a public boundary (:func:`latent_jax.validation.check_array`).

    Args:
        x: array-like data.
        name: the argument's name, used in error messages.
        min_ndim: the least number of dimensions accepted.

    Returns:
        ``x`` as a NumPy array of its own numeric dtype.

    Raises:
        TypeError: if ``x`` is not numeric.
        ValueError: if ``x`` has too few dimensions, no rows, or NaN/Inf entries.
    """
    return np.asarray(validation.check_array(name, x, min_ndim=min_ndim, dtype="numeric"))


def load_synthetic_classification(random_state: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """The tutorial's synthetic classification set (``make_classification`` with
    :data:`SYNTHETIC_CLASSIFICATION_PARAMS`).

    Args:
        random_state: the generator's seed; the tutorial uses 42.

    Returns:
        ``(x, y)``: float64 array of shape (10000, 50) and int array of shape (10000,).
    """
    return sk_datasets.make_classification(
        **SYNTHETIC_CLASSIFICATION_PARAMS, random_state=random_state
    )


def load_digits_features() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled handwritten digits as feature vectors.

    For the images with a channel axis, (1797, 8, 8, 1), use
    :func:`latent_jax.data.images.load_digits`.

    Returns:
        ``(x, y)``: float32 array of shape (1797, 64), the 8×8 pixels row by row with values
        in [0, 1] (the raw 0–16 grey levels divided by 16), and int64 labels of shape (1797,).
    """
    digits = sk_datasets.load_digits()
    pixels = (digits.images / 16.0).astype(np.float32)
    return pixels.reshape(len(pixels), -1), digits.target.astype(np.int64)


def _digits_as_8x8_images() -> tuple[np.ndarray, np.ndarray]:
    """The digits as (1797, 8, 8) images: what the deprecated ``load_digits_images`` gave."""
    x, y = load_digits_features()
    return x.reshape(len(x), 8, 8), y


__getattr__ = deprecated_names(
    "latent_jax.data",
    {
        "load_seed_classification": (
            "latent_jax.data.load_synthetic_classification",
            lambda: load_synthetic_classification,
        ),
        "load_digits_images": (
            "latent_jax.data.load_digits_features (shape (n, 64)) or "
            "latent_jax.data.images.load_digits (shape (n, 8, 8, 1))",
            lambda: _digits_as_8x8_images,
        ),
        "SEED_DATASET_PARAMS": (
            "latent_jax.data.SYNTHETIC_CLASSIFICATION_PARAMS",
            lambda: SYNTHETIC_CLASSIFICATION_PARAMS,
        ),
    },
)


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
    path = check_regular_file(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in TABULAR_SUFFIXES:
        raise ValueError(f"data file {path!r} must end in one of {TABULAR_SUFFIXES}")
    if suffix == ".npy":
        table = load_npy(path)
    else:
        try:
            table = _read_csv(path) if suffix == ".csv" else _read_npz(path)
        except (OSError, ValueError) as error:
            cause = error.strerror if isinstance(error, OSError) and error.strerror else error
            raise ValueError(f"cannot read data file {path!r}: {cause}") from error
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


_FILE_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
# The first bytes of a .npy file and of a .npz (zip) archive.
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK"


def check_regular_file(path: str | os.PathLike, what: str = "data file") -> str:
    """Checks that ``path`` is a regular file, without opening it.

    Named pipes and devices are refused up front: reading one could wait forever.

    Args:
        path: the file.
        what: how the message calls it.

    Returns:
        ``path`` as a string.

    Raises:
        FileNotFoundError: if nothing is at ``path``.
        ValueError: if it is a folder, a named pipe, a device or a socket, or cannot be
            inspected, naming the file.
    """
    path = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path!r}") from None
    except OSError as error:
        raise ValueError(f"cannot read {what} {path!r}: {error.strerror or error}") from error
    for is_kind, kind in _FILE_KINDS:
        if is_kind(mode):
            raise ValueError(f"{what} {path!r} is {kind}, not a regular file")
    return path


def load_npy(path: str | os.PathLike, *, mmap_mode: str | None = None) -> np.ndarray:
    """Reads a ``.npy`` array safely: never unpickles, and every failure names the file.

    Args:
        path: the ``.npy`` file.
        mmap_mode: NumPy's ``mmap_mode`` (``"r"`` maps the file; rows are read when used).

    Returns:
        The array as stored (memory-mapped with ``mmap_mode``).

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: for a file that is not regular (a pipe, a device), cannot be read, is not
            a NumPy array file, holds Python objects, or is truncated, naming the file.
    """
    path = check_regular_file(path)
    try:
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except OSError as error:
        raise ValueError(f"cannot read data file {path!r}: {error.strerror or error}") from error
    except (ValueError, EOFError) as error:
        raise ValueError(_npy_problem(path, error)) from None


def _npy_problem(path: str, error: Exception) -> str:
    """What is wrong with the ``.npy`` file ``path`` that NumPy refused with ``error``."""
    with open(path, "rb") as handle:
        head = handle.read(len(_NPY_MAGIC))
    if not head.startswith(_NPY_MAGIC):
        shown = "it is empty" if not head else f"it starts with {head!r}"
        return f"data file {path!r} is not a NumPy array file (.npy): {shown}"
    if _is_object_refusal(error):
        return (
            f"data file {path!r} holds Python objects (an object array), which latent_jax "
            "never unpickles: save numbers, e.g. np.save(path, x.astype(np.float32))"
        )
    return f"data file {path!r} is truncated or corrupt: {error}"


def _is_object_refusal(error: Exception) -> bool:
    """Whether NumPy refused to load an array of Python objects (``allow_pickle=False``)."""
    return "pickle" in str(error) or "Python objects" in str(error)


def _read_npz(path: str) -> np.ndarray:
    """The first array of the ``.npz`` archive ``path`` (never unpickled)."""
    with open(path, "rb") as handle:
        if handle.read(len(_ZIP_MAGIC)) != _ZIP_MAGIC:
            raise ValueError("not a NumPy .npz archive")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not archive.files:
                raise ValueError("the archive holds no arrays")
            return archive[archive.files[0]]
    except zipfile.BadZipFile as error:
        raise ValueError(f"the archive is truncated or corrupt ({error})") from None
    except ValueError as error:
        if _is_object_refusal(error):
            raise ValueError(
                "its array holds Python objects, which latent_jax never unpickles"
            ) from None
        raise ValueError(f"the archive is truncated or corrupt ({error})") from None


def _read_csv(path: str) -> np.ndarray:
    with open(path, encoding="utf-8") as handle:
        lines = [line.strip() for line in handle if line.strip()]
    if not lines:
        raise ValueError("the file is empty")
    rows = [line.split(",") for line in lines]
    if not _is_numeric_row(rows[0]):
        rows = rows[1:]  # a header line
    if not rows:
        raise ValueError("no data rows: the file holds a header line only")
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


def _check_size(name: str, value: Any, n: int) -> int | float:
    """A split size: a fraction in (0, 1), or a row count in [0, n) (0: no rows)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        count = validation.check_int(name, value, 0)
        if count >= n:
            raise ValueError(f"{name} must be < the {n} rows to split, got {name}={count}")
        return count
    return validation.check_fraction(name, value)


def _split_once(
    rows: np.ndarray,
    size: int | float,
    *,
    labels: np.ndarray | None,
    random_state: int,
    shuffle: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """``rows`` cut into (kept, held out) with scikit-learn's ``train_test_split`` rule."""
    if isinstance(size, int) and size == 0:
        return rows, rows[:0]
    if not shuffle:
        held = size if isinstance(size, int) else int(np.ceil(size * len(rows)))
        return rows[: len(rows) - held], rows[len(rows) - held :]
    kept, held = train_test_split(rows, test_size=size, random_state=random_state, stratify=labels)
    return kept, held


def split_indices(
    n: int,
    *,
    test_size: int | float = 0.2,
    val_size: int | float | None = None,
    labels: np.ndarray | None = None,
    random_state: int = 42,
    shuffle: bool = True,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Which rows go to training, validation and test: the one split rule of the library.

    With ``shuffle`` the rows are drawn by scikit-learn's ``train_test_split`` with
    ``random_state`` (so a split equals ``train_test_split(x, test_size=...,
    random_state=...)`` of the same data, the tutorial's split); then, if ``val_size`` is
    given, the validation rows are drawn from the training rows the same way, with the same
    seed. Without ``shuffle`` the test rows are the last ones and the validation rows the last
    of the rest (for ordered or memory-mapped data; nothing is copied by a caller that slices).

    Args:
        n: the number of rows, >= 2.
        test_size: the fraction of rows held out for testing, in (0, 1), or their number, an
            int in [0, n) (0: no test rows).
        val_size: the fraction (or number) of the *training* rows held out for validation,
            or None for no validation split.
        labels: int array of shape (n,) to stratify by (every split keeps the class
            proportions), or None. Needs ``shuffle``.
        random_state: the seed of the shuffled split.
        shuffle: draw the rows at random (see above).

    Returns:
        ``(train, val, test)``: int arrays of row indices, ``val`` None without a validation
        split. Without ``shuffle`` each is a contiguous ascending range.

    Raises:
        TypeError: for a size, seed or flag of the wrong type.
        ValueError: for sizes out of range, fewer than 2 rows, labels of another length, or
            ``labels`` without ``shuffle``.
    """
    n = validation.check_int("n", n, 0)
    if n < 2:
        raise ValueError(f"needs at least 2 rows to split, got {n}")
    test_size = _check_size("test_size", test_size, n)
    random_state = validation.check_int("random_state", random_state, 0)
    shuffle = validation.check_bool("shuffle", shuffle)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise ValueError(
                f"labels must have shape (n,) = ({n},) to stratify by, got {labels.shape}"
            )
        if not shuffle:
            raise ValueError("stratifying by labels needs shuffle=True")
    rows = np.arange(n)
    train, test = _split_once(
        rows, test_size, labels=labels, random_state=random_state, shuffle=shuffle
    )
    val = None
    if val_size is not None:
        val_size = _check_size("val_size", val_size, len(train))
        train, val = _split_once(
            train,
            val_size,
            labels=None if labels is None else labels[train],
            random_state=random_state,
            shuffle=shuffle,
        )
    return train, val, test


def fit_normalizer(x_train: np.ndarray, normalization: str) -> Standardizer | None:
    """The :class:`Standardizer` of ``normalization`` fitted on training data.

    Args:
        x_train: array of shape (n_train, ...features).
        normalization: ``"per-feature"`` (one mean and std per feature, ddof 0: scikit-learn's
            ``StandardScaler``), ``"global"`` (one mean and std over every value, ddof 1: the
            tutorial's faces) or ``"none"``.

    Returns:
        The fitted standardizer, or None for ``"none"``.
    """
    validation.check_choice("normalization", normalization, NORMALIZATIONS)
    if normalization == "none":
        return None
    if normalization == "global":
        return Standardizer.fit(x_train, per_feature=False, ddof=1)
    return Standardizer.fit(x_train, per_feature=True)


def split_dataset(
    x: Any,
    y: Any = None,
    *,
    test_size: int | float = 0.2,
    val_size: int | float | None = None,
    stratify: bool = False,
    random_state: int = 42,
    shuffle: bool = True,
    normalization: str = "none",
    name: str = "arrays",
) -> Dataset:
    """Splits data into training, test and optional validation parts, and normalizes them.

    The one way the library splits and normalizes: the rows of each part come from
    :func:`split_indices`, the normalizer (:func:`fit_normalizer`) is fitted on the training
    part alone and applied to every part, so nothing of the held-out rows leaks into training.

    Args:
        x: array of shape (n, ...features), n >= 2.
        y: int labels of shape (n,), or None.
        test_size: the fraction (or number) of rows held out for testing (see
            :func:`split_indices`; 0 rows gives an empty ``x_test``).
        val_size: the fraction (or number) of the training rows held out for validation, or
            None (then ``x_val`` is None).
        stratify: keep the class proportions of ``y`` in every part.
        random_state: the seed of the split.
        shuffle: draw the rows at random; otherwise the last rows are held out.
        normalization: ``"per-feature"``, ``"global"`` or ``"none"`` (:data:`NORMALIZATIONS`).
        name: the data's name, stored in the :class:`Dataset`.

    Returns:
        The :class:`Dataset`: float32 parts of shape (n_part, ...features), the labels split
        the same way (None without ``y``), and the fitted normalizer (None for ``"none"``).

    Raises:
        TypeError: for arguments of the wrong type.
        ValueError: for sizes out of range, too few rows, labels of another length, or
            ``stratify`` without labels.
    """
    try:
        x = np.asarray(x)
    except ValueError as err:  # NumPy >= 1.24 refuses ragged nested sequences
        raise ValueError(
            f"x must be a rectangular array; got a ragged nested sequence ({err})"
        ) from err
    if x.ndim < 1:
        raise ValueError(f"x must have shape (n, ...features), got shape {x.shape}")
    stratify = validation.check_bool("stratify", stratify)
    labels = None if y is None else np.asarray(y)
    if labels is not None and labels.shape != (len(x),):
        raise ValueError(f"y must have shape ({len(x)},) like the rows of x, got {labels.shape}")
    if stratify and labels is None:
        raise ValueError("stratify=True needs the labels y")
    validation.check_choice("normalization", normalization, NORMALIZATIONS)
    if len(x) < 2:
        raise ValueError(f"data set {name!r} needs at least 2 rows to split, got {len(x)}")
    train, val, test = split_indices(
        len(x),
        test_size=test_size,
        val_size=val_size,
        labels=labels if stratify else None,
        random_state=random_state,
        shuffle=shuffle,
    )
    parts = {"train": x[train], "test": x[test], "val": None if val is None else x[val]}
    normalizer = fit_normalizer(parts["train"], normalization)
    for part, rows in parts.items():
        if rows is not None:
            rows = rows if normalizer is None else normalizer.transform(rows)
            parts[part] = np.asarray(rows, np.float32)

    def take(rows: np.ndarray | None) -> np.ndarray | None:
        return None if labels is None or rows is None else labels[rows]

    return Dataset(
        x_train=parts["train"],
        x_test=parts["test"],
        y_train=take(train),
        y_test=take(test),
        normalizer=normalizer,
        name=name,
        x_val=parts["val"],
        y_val=take(val),
    )


def resolve_source_name(source: str) -> str:
    """``source`` with a deprecated data set name replaced by its new one (with a warning).

    Args:
        source: a data set name or a path.

    Returns:
        ``"synthetic-classification"`` for the old ``"seed"``; anything else unchanged.
    """
    if source in _DEPRECATED_SOURCES:
        new = _DEPRECATED_SOURCES[source]
        warn_deprecated(f"the data set name {source!r}", repr(new))
        return new
    return source


def load_tabular(
    source: str,
    *,
    label_column: int | None = None,
    test_size: float = 0.2,
    random_state: int = 42,
    standardize: bool = True,
) -> Dataset:
    """Loads a tabular data set, splits it and standardizes it on the training split.

    This is the tutorial's first example's pipeline: ``train_test_split(test_size=0.2,
    random_state=42)`` then ``StandardScaler`` fitted on the training split
    (:func:`split_dataset`).

    Args:
        source: ``"synthetic-classification"``, ``"digits"`` (64 features), ``"mnist-5k"``
            (784 features, a fixed stratified split: 1,000 test rows) or a
            ``.npy``/``.npz``/``.csv`` path (``"seed"`` is the deprecated name of the first).
        label_column: for files, the column holding labels (see :func:`load_array_file`).
        test_size: fraction of rows held out, in (0, 1).
        random_state: seed of the split (and of the synthetic data set).
        standardize: standardize per feature with statistics of the training split.

    Returns:
        The :class:`Dataset`, named after the data set (its current name) or the path.
    """
    validation.check_fraction("test_size", test_size)
    source = resolve_source_name(source)
    if source == SYNTHETIC_CLASSIFICATION:
        x, y = load_synthetic_classification(random_state)
    elif source == "digits":
        x, y = load_digits_features()
    elif source == MNIST_5K:
        images, y = load_mnist_5k()
        x = images.reshape(len(images), -1)
    else:
        x, y = load_array_file(source, label_column)
        if x.ndim != 2:
            raise ValueError(f"tabular data must be 2-D (n_samples, n_features), got {x.shape}")
    fixed_split = source == MNIST_5K  # one split for every run, so numbers compare across runs
    return split_dataset(
        x,
        y,
        test_size=MNIST_5K_TEST_SIZE if fixed_split else test_size,
        stratify=fixed_split,
        random_state=MNIST_5K_SPLIT_SEED if fixed_split else random_state,
        normalization="per-feature" if standardize else "none",
        name=source,
    )
