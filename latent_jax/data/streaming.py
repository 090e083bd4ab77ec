"""Data larger than memory: row sources read on demand, shuffled batches, a prefetch thread.

A *source* holds N examples and reads any rows on request: :class:`ArraySource` (a NumPy
array, or a memory-mapped ``.npy`` through :func:`open_source`, of which only the rows asked
for are read) and :class:`ImageFolderSource` (one image file per row, decoded when read).
:func:`iter_batches` walks one epoch of a source in the order :func:`epoch_order` draws from a
key, every example exactly once, in fixed-size batches whose last, ragged one is padded with
zero rows and masked; a background thread reads the next batches while the device trains on
the current one. :func:`iter_chunks` reads a source in order (for statistics), and
:func:`fit_pca_source` runs the streaming PCA of :mod:`latent_jax.linear` over it, in memory
that does not grow with N, and :func:`partial_fit_source` feeds it to an estimator's
``partial_fit`` (:class:`latent_jax.IncrementalPCA`). Training on a source is
:func:`latent_jax.train.fit_stream`.

The in-memory path (:func:`latent_jax.train.fit` on an array) stays the fast default when the
data fit in memory; streaming pays one host-to-device copy per batch.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from jax import Array

from latent_jax import fingerprint, linear, validation
from latent_jax import shuffle as shuffle_rows
from latent_jax._deprecation import deprecated_names
from latent_jax.data import images as image_data

__all__ = [
    "ArraySource",
    "ImageFolderSource",
    "epoch_order",
    "fit_pca_source",
    "iter_batches",
    "iter_chunks",
    "load_training_split",
    "open_source",
    "open_training_data",
    "partial_fit_source",
    "split_tail",
]


class ArraySource:
    """Rows of an array (in memory or memory-mapped), read as float32 on demand.

    Args:
        array: array of shape (n, ...features), numeric and real.
        name: how errors name it (a path for files).

    Raises:
        TypeError: for a non-numeric or complex array.
        ValueError: for fewer than 2 dimensions or no rows.
    """

    def __init__(self, array: Any, name: str = "data"):
        array = array if isinstance(array, np.ndarray) else np.asarray(array)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be a real numeric array, got dtype {array.dtype}")
        if array.ndim < 2 or array.shape[0] == 0 or array.size == 0:
            raise ValueError(
                f"{name} must have shape (n_samples, ...features) with at least one row and "
                f"2 dimensions, got shape {array.shape}"
            )
        self.array = array
        self.name = name

    def __len__(self) -> int:
        return int(self.array.shape[0])

    @property
    def example_shape(self) -> tuple[int, ...]:
        """The shape of one example, e.g. (n_features,) or (height, width, channels)."""
        return tuple(int(d) for d in self.array.shape[1:])

    def fingerprint(self) -> str:
        """The rows' fingerprint: a memory-mapped file's identity (path, size, mtime, and the
        array's offset and shape in it), else a checksum of the values
        (:mod:`latent_jax.fingerprint`)."""
        if isinstance(self.array, np.memmap) and self.array.filename is not None:
            layout = (self.array.offset, self.array.shape, str(self.array.dtype))
            return fingerprint.file_fingerprint([self.array.filename], layout)
        return fingerprint.row_fingerprint(self.array)

    def read(self, indices: np.ndarray) -> np.ndarray:
        """Rows ``indices`` (increasing, for sequential disk access), float32, checked finite.

        Args:
            indices: int array of shape (k,).

        Returns:
            float32 array of shape (k, ...features).
        """
        if len(indices) and np.all(np.diff(indices) == 1):
            rows = self.array[indices[0] : indices[-1] + 1]  # one contiguous read
        else:
            rows = self.array[indices]
        rows = np.asarray(rows, np.float32)
        if not np.isfinite(rows).all():
            bad = int(rows.size - np.count_nonzero(np.isfinite(rows)))
            raise ValueError(f"{self.name} contains {bad} NaN or infinite values; clean them")
        validation.check_squares_fit_float32(self.name, rows)
        return rows


class ImageFolderSource:
    """The images under a folder (recursively), one example per file, decoded when read.

    Args:
        path: the folder.
        size: (height, width) to resize every image to; ``None`` keeps the first image's
            size (then every image must have it).
        grayscale: one grey channel, otherwise RGB.
        scale: a factor applied to the pixel values (``1 / 255`` maps 8-bit images to [0, 1]).

    Raises:
        FileNotFoundError: when the folder is missing or holds no image.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        size: Sequence[int] | None = None,
        grayscale: bool = True,
        scale: float = 1.0,
    ):
        root = os.fspath(path)
        if not os.path.isdir(root):
            raise FileNotFoundError(f"image folder not found: {root!r}")
        relative = image_data._folder_images(root)
        if not relative:
            raise FileNotFoundError(
                f"no images in {root!r}: expected files ending in "
                f"{', '.join(image_data.IMAGE_SUFFIXES)}"
            )
        self.paths = [os.path.join(root, r) for r in relative]
        self.grayscale = grayscale
        self.scale = float(scale)
        self.size = image_data._check_size(size)
        first = image_data._read_image(self.paths[0], grayscale, self.size)
        self._shape = tuple(int(d) for d in first.shape)
        self.name = root

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def example_shape(self) -> tuple[int, ...]:
        """(height, width, channels) of every image."""
        return self._shape

    def fingerprint(self) -> str:
        """The images' fingerprint: each file's identity (path, size, mtime), with the size,
        colour and scale they are read at (:func:`latent_jax.fingerprint.file_fingerprint`)."""
        return fingerprint.file_fingerprint(self.paths, (self.size, self.grayscale, self.scale))

    def read(self, indices: np.ndarray) -> np.ndarray:
        """Images ``indices`` as float32 of shape (k, height, width, channels).

        Raises:
            ValueError: naming the file, for an unreadable file or one of another size.
        """
        out = np.empty((len(indices), *self._shape), np.float32)
        for row, index in enumerate(indices):
            image = image_data._read_image(self.paths[int(index)], self.grayscale, self.size)
            if image.shape != self._shape:
                raise ValueError(
                    f"image {self.paths[int(index)]!r} has shape {image.shape}, the first has "
                    f"{self._shape}; pass size=(height, width) to resize them all"
                )
            out[row] = image
        if self.scale != 1.0:
            out *= self.scale
        return out


Source = ArraySource | ImageFolderSource


def open_source(data: Any, **image_options: Any) -> Source:
    """A source for a path (``.npy`` memory-mapped, or an image folder), an array or a source.

    Args:
        data: a :class:`ArraySource` / :class:`ImageFolderSource`, an array of shape
            (n, ...features), a ``.npy`` file (opened with ``mmap_mode="r"``: nothing is read
            until rows are asked for) or a folder of images.
        **image_options: ``size``, ``grayscale``, ``scale`` for an image folder.

    Returns:
        The source.

    Raises:
        FileNotFoundError: for a missing path.
        ValueError: for a file that is neither ``.npy`` nor a folder.
    """
    if isinstance(data, ArraySource | ImageFolderSource):
        return data
    if isinstance(data, str | os.PathLike):
        path = os.fspath(data)
        if os.path.isdir(path):
            return ImageFolderSource(path, **image_options)
        if not os.path.exists(path):
            raise FileNotFoundError(f"data file not found: {path!r}")
        if not path.endswith(".npy"):
            raise ValueError(
                f"streaming reads .npy files (memory-mapped) or image folders, got {path!r}; "
                "convert other formats with numpy.save"
            )
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as error:
            raise ValueError(f"cannot memory-map {path!r}: {error}") from error
        return ArraySource(array, path)
    return ArraySource(data)


def open_training_data(
    path: str | os.PathLike,
    *,
    image_size: Sequence[int] | None = None,
    stream: bool = False,
    flag: str = "--data",
) -> Source:
    """The rows of a training file or folder, as ``latent-jax train`` reads them.

    A folder of images is scaled to [0, 1] (read into memory, or decoded per batch with
    ``stream``); a ``.npy`` file is memory-mapped; a ``.csv`` table (or ``.npz``) is read into
    memory. Data held in memory is checked to be finite here, naming the file; a streamed file
    is checked batch by batch as it is read.

    Args:
        path: the file or folder.
        image_size: (height, width) to resize a folder's images to.
        stream: read a folder's images when their rows are asked for.
        flag: how errors name the path (the command's flag).

    Returns:
        The source of every row.

    Raises:
        FileNotFoundError: for a missing path.
        ValueError: for unreadable or non-finite data, naming the path.
    """
    from latent_jax.data import tabular as data

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{flag} {path!r} does not exist")
    if os.path.isdir(path):
        if stream:
            return ImageFolderSource(path, size=image_size, scale=1 / 255)
        images, _ = image_data.load_image_folder(path, size=image_size)
        array = images / 255.0
    elif path.endswith(".npy"):
        array = data.load_npy(path, mmap_mode="r")  # rows read when needed
    else:
        array, _ = data.load_array_file(path)
    if not (stream and isinstance(array, np.memmap)):
        array = validation.check_finite_rows(f"{flag} {path!r}", array)
    return ArraySource(array, path)


def split_tail(
    source: Source, *, test_size: float, max_test_rows: int, flag: str = "--data"
) -> tuple[Source, np.ndarray | None]:
    """Holds out the last rows of a source, unshuffled, so the training rows stay one slice of
    the file.

    Args:
        source: every row.
        test_size: the held-out fraction, in [0, 1).
        max_test_rows: at most this many held-out rows.
        flag: how errors name the data.

    Returns:
        ``(train_source, test_rows)``: the source of the first rows, and the last
        ``min(round(test_size * n), max_test_rows)`` rows read into an array (``None`` when
        there are none).

    Raises:
        ValueError: for a fraction outside [0, 1) or no rows left for training.
    """
    from latent_jax.data import tabular as data

    n = len(source)
    test_size = validation.check_fraction("--test-size", test_size, closed="left")
    n_test = min(round(test_size * n), max_test_rows) if test_size else 0
    if n - n_test < 1:
        raise ValueError(f"{flag} {source.name!r} has {n} rows: none left for training")
    train_rows, _, test_rows = data.split_indices(n, test_size=n_test, shuffle=False)
    test = source.read(test_rows) if n_test else None
    if isinstance(source, ArraySource):
        return ArraySource(source.array[: len(train_rows)], source.name), test
    source.paths = source.paths[: len(train_rows)]
    return source, test


def load_training_split(
    data: str | os.PathLike,
    *,
    test_size: float,
    max_test_rows: int,
    image_size: Sequence[int] | None = None,
    stream: bool = False,
    seed: int = 0,
    data_dir: str | os.PathLike = "data",
) -> tuple[Source, np.ndarray | None]:
    """The training rows and held-out rows of ``latent-jax train --data``.

    A data set the library names (:data:`latent_jax.data.images.DATASET_NAMES`) is split by
    the library's rule (:func:`latent_jax.data.images.load_image_dataset`: shuffled with
    ``seed``, or the data set's fixed split), its pixels in [0, 1]; a file or folder
    (:func:`open_training_data`) holds out its last rows, unshuffled (:func:`split_tail`).

    Args:
        data: a data set name, or a file or folder.
        test_size: the held-out fraction, in [0, 1).
        max_test_rows: at most this many held-out rows.
        image_size: (height, width) to resize images to.
        stream: read a folder's images when their rows are asked for.
        seed: the seed of a named data set's split.
        data_dir: the folder holding the MNIST files, for ``"mnist"`` and ``"fashion-mnist"``.

    Returns:
        ``(train_source, test_rows)``; ``test_rows`` is ``None`` when nothing is held out.

    Raises:
        FileNotFoundError: for a missing path or data set.
        ValueError: for unreadable data, naming it, or no rows left for training.
    """
    name = os.fspath(data)
    if name not in image_data.DATASET_NAMES:
        source = open_training_data(name, image_size=image_size, stream=stream)
        return split_tail(source, test_size=test_size, max_test_rows=max_test_rows)
    test_size = validation.check_fraction("--test-size", test_size, closed="left")
    if not test_size:
        images, _, _ = image_data.load_images(name, size=image_size, data_dir=data_dir)
        return ArraySource(images, name), None
    split = image_data.load_image_dataset(
        name,
        test_size=test_size,
        random_state=seed,
        size=image_size,
        normalization="none",
        data_dir=data_dir,
    )
    return ArraySource(split.x_train, name), split.x_test[:max_test_rows]


def epoch_order(key: Array, n: int, shuffle: bool = True) -> np.ndarray:
    """The order of one epoch: the permutation of ``range(n)`` that ``key`` gives the engine.

    This is :func:`latent_jax.shuffle.permutation`, the order in which
    :func:`~latent_jax.train.fit` and :func:`~latent_jax.train.fit_stream` visit the rows for
    an epoch's shuffle key, brought to the host: the same key gives the same order on every
    machine and process.

    Args:
        key: a ``jax.random`` key (an epoch's shuffle key).
        n: the number of examples, >= 1.
        shuffle: ``False`` returns ``arange(n)``.

    Returns:
        int array of shape (n,).
    """
    n = validation.check_int("n", n, 1)
    if not shuffle:
        return np.arange(n)
    return np.asarray(shuffle_rows.permutation(key, n))


class _Prefetcher:
    """Runs a generator in a daemon thread, keeping up to ``depth`` items ready."""

    _DONE = object()

    def __init__(self, generator: Iterator[Any], depth: int):
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(generator,), daemon=True)
        self._thread.start()

    def _put(self, entry: tuple[Any, BaseException | None]) -> bool:
        """Waits for room unless the consumer has gone; whether the entry was queued."""
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, generator: Iterator[Any]) -> None:
        try:
            for item in generator:
                if not self._put((item, None)):
                    return
            self._put((self._DONE, None))
        except BaseException as error:  # handed to the consumer, raised there
            self._put((self._DONE, error))

    def __iter__(self) -> Iterator[Any]:
        try:
            while True:
                item, error = self._queue.get()
                if error is not None:
                    raise error
                if item is self._DONE:
                    return
                yield item
        finally:
            self._stop.set()


def iter_batches(
    source: Any,
    batch_size: int,
    order: np.ndarray,
    *,
    width: int | None = None,
    part: tuple[int, int] | None = None,
    group: int = 1,
    prefetch: int = 2,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of a source in batches, read by a background thread.

    Batch ``b`` holds the examples ``order[b * batch_size : (b + 1) * batch_size]``; the last
    may hold fewer, and every batch is padded with zero rows (mask 0) to ``width`` columns.

    Args:
        source: a source, or anything :func:`open_source` takes.
        batch_size: real examples per batch, >= 1.
        order: int array of shape (n,), the epoch's order (see :func:`epoch_order`).
        width: columns per batch (>= batch_size; e.g. a multiple of the devices); ``None`` is
            ``batch_size``.
        part: ``(start, stop)``: read only these columns of every batch (one process's share
            of a multi-process batch); ``None`` reads all.
        group: batches stacked per item (the last item may hold fewer).
        prefetch: items read ahead, >= 1.

    Yields:
        ``(x, mask)``: float32 of shape (k, columns, ...features) and (k, columns), with
        ``k <= group`` and ``columns = stop - start``.
    """
    source = open_source(source)
    batch_size = validation.check_int("batch_size", batch_size, 1)
    group = validation.check_int("group", group, 1)
    prefetch = validation.check_int("prefetch", prefetch, 1)
    width = batch_size if width is None else validation.check_int("width", width, 1)
    if width < batch_size:
        raise ValueError(f"width must be >= batch_size={batch_size}, got width={width}")
    order = np.asarray(order)
    n = len(order)
    start, stop = (0, width) if part is None else part
    if not 0 <= start < stop <= width:
        raise ValueError(f"part must be (start, stop) with 0 <= start < stop <= {width}: {part}")
    n_batches = -(-n // batch_size)
    shape = source.example_shape

    def produce() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for first in range(0, n_batches, group):
            count = min(group, n_batches - first)
            x = np.zeros((count, stop - start, *shape), np.float32)
            mask = np.zeros((count, stop - start), np.float32)
            for k in range(count):
                b = first + k
                rows = order[b * batch_size : min((b + 1) * batch_size, n)]
                rows = rows[start : min(stop, len(rows))]  # this part's real columns
                if len(rows):
                    # Read in increasing order (sequential on disk), then put back in order.
                    sort = np.argsort(rows, kind="stable")
                    x[k, sort] = source.read(rows[sort])
                    mask[k, : len(rows)] = 1.0
            yield x, mask

    return iter(_Prefetcher(produce(), prefetch))


def iter_chunks(source: Any, chunk_rows: int = 65536, *, prefetch: int = 2) -> Iterator[np.ndarray]:
    """The rows of a source in order, in chunks read ahead by a background thread.

    Args:
        source: a source, or anything :func:`open_source` takes.
        chunk_rows: rows per chunk (the last may be shorter), >= 1.
        prefetch: chunks read ahead, >= 1.

    Yields:
        float32 arrays of shape (rows, ...features).
    """
    source = open_source(source)
    chunk_rows = validation.check_int("chunk_rows", chunk_rows, 1)
    n = len(source)

    def produce() -> Iterator[np.ndarray]:
        for first in range(0, n, chunk_rows):
            yield source.read(np.arange(first, min(first + chunk_rows, n)))

    return iter(_Prefetcher(produce(), validation.check_int("prefetch", prefetch, 1)))


def fit_pca_source(
    source: Any,
    n_components: int | None = None,
    *,
    chunk_rows: int = 65536,
    ddof: int = 1,
    prefetch: int = 2,
) -> linear.PCAState:
    """PCA of a source too large for memory: :func:`latent_jax.linear.fit_pca_chunks` over
    :func:`iter_chunks` (examples flattened to vectors).

    Args:
        source: a source, or anything :func:`open_source` takes (a ``.npy`` path is
            memory-mapped).
        n_components: as in :func:`latent_jax.linear.fit_pca`.
        chunk_rows: rows read and reduced at a time; memory grows with it, not with N.
        ddof: as in :func:`latent_jax.linear.fit_pca`.
        prefetch: chunks read ahead.

    Returns:
        The :class:`latent_jax.linear.PCAState`, equal to ``fit_pca`` on all rows up to round-off.
    """
    chunks = iter_chunks(source, chunk_rows, prefetch=prefetch)
    return linear.fit_pca_chunks((c.reshape(len(c), -1) for c in chunks), n_components, ddof=ddof)


def partial_fit_source(
    estimator: Any, source: Any, *, chunk_rows: int | None = None, prefetch: int = 2
) -> Any:
    """Feeds a source too large for memory to ``estimator.partial_fit``, one chunk at a time:
    scikit-learn's out-of-core pattern over :func:`iter_chunks` (examples flattened to
    vectors, read as float32).

    With :class:`latent_jax.IncrementalPCA` (or scikit-learn's), the result is that of
    ``partial_fit`` called on the same chunks in memory: ``fit`` on the whole array when
    ``chunk_rows`` is its ``batch_size`` and the last chunk is not smaller than
    ``n_components``.

    Args:
        estimator: anything with ``partial_fit(X)``, for example
            ``latent_jax.IncrementalPCA(n_components=10)``; previous ``partial_fit`` calls
            are continued, not forgotten.
        source: a source, or anything :func:`open_source` takes (a ``.npy`` path is
            memory-mapped).
        chunk_rows: rows per ``partial_fit`` call, >= 1; ``None`` for the estimator's
            ``batch_size`` if it has one set, else 5 times the features per example
            (scikit-learn's ``IncrementalPCA`` default).
        prefetch: chunks read ahead.

    Returns:
        ``estimator``, fitted.

    Raises:
        TypeError: ``estimator`` has no ``partial_fit``.
    """
    if not callable(getattr(estimator, "partial_fit", None)):
        raise TypeError(f"estimator must have a partial_fit method; got {type(estimator).__name__}")
    source = open_source(source)
    if chunk_rows is None:
        chunk_rows = getattr(estimator, "batch_size", None) or 5 * int(
            np.prod(source.example_shape)
        )
    for chunk in iter_chunks(source, chunk_rows, prefetch=prefetch):
        estimator.partial_fit(chunk.reshape(len(chunk), -1))
    return estimator


__getattr__ = deprecated_names(
    __name__,
    {"fit_pca_stream": ("latent_jax.data.streaming.fit_pca_source", lambda: fit_pca_source)},
)
