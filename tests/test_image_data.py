"""Image loaders (AT&T folders, Olivetti cache, bundled sets, folders, arrays), the seed's
normalization, and their errors."""

import io
import os
import urllib.error
import urllib.request
import zipfile

import joblib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numerics import assert_bitwise
from PIL import Image
from sklearn.model_selection import train_test_split

from latent_jax import data
from latent_jax.data import images as image_data

ATT_H, ATT_W = 112, 92
# subject -> file numbers; s10 checks numeric subject order, 10.pgm numeric file order
ATT_TREE = {1: (1, 2), 2: (1, 2, 10), 3: (1, 2), 10: (1, 2)}


def _pgm(path, value, shape=(ATT_H, ATT_W)):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = np.full(shape, value, np.uint8)
    pixels[0, 0] = 255 - value  # not constant, so a transposed read would show
    Image.fromarray(pixels).save(path)


def _code(subject, number):
    return 10 * subject + number


@pytest.fixture
def att_root(tmp_path):
    root = tmp_path / "faces"
    for subject, numbers in ATT_TREE.items():
        for number in numbers:
            _pgm(str(root / f"s{subject}" / f"{number}.pgm"), _code(subject, number))
    (root / "README").write_text("not an image")
    _pgm(str(root / "other" / "1.pgm"), 0)  # not a subject folder: ignored
    return root


def _expected_order():
    return [(s, n) for s in sorted(ATT_TREE) for n in sorted(ATT_TREE[s])]


def test_att_loader_reads_shapes_labels_and_numeric_order(att_root):
    images, labels = image_data.load_att_faces(att_root)
    order = _expected_order()
    assert images.shape == (len(order), ATT_H, ATT_W, 1)
    assert images.dtype == np.float32
    np.testing.assert_array_equal(labels, [s for s, _ in order])
    assert labels.dtype == np.int64
    # raw 0..255 grey levels, in subject then file order, rows by height
    assert_bitwise(images[:, 1, 1, 0], np.float32([_code(s, n) for s, n in order]))
    assert_bitwise(images[:, 0, 0, 0], np.float32([255 - _code(s, n) for s, n in order]))
    assert image_data.is_att_folder(att_root)


def test_att_loader_resizes(att_root):
    images, _ = image_data.load_att_faces(att_root, size=(56, 46))
    assert images.shape == (9, 56, 46, 1)


def test_att_loader_names_a_corrupt_file(att_root):
    bad = att_root / "s2" / "2.pgm"
    bad.write_bytes(b"this is not a picture")
    with pytest.raises(ValueError, match=r"cannot read image file .*s2.*2\.pgm"):
        image_data.load_att_faces(att_root)


def test_att_loader_names_a_truncated_file(att_root):
    bad = att_root / "s3" / "1.pgm"
    bad.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"cannot read image file .*s3.*1\.pgm"):
        image_data.load_att_faces(att_root)


def test_att_loader_names_two_files_of_different_sizes(att_root):
    _pgm(str(att_root / "s3" / "2.pgm"), 5, shape=(50, 40))
    with pytest.raises(ValueError, match=r"s1.*1\.pgm' is 112×92.*s3.*2\.pgm' is 50×40"):
        image_data.load_att_faces(att_root)
    images, _ = image_data.load_att_faces(att_root, size=(50, 40))
    assert images.shape == (9, 50, 40, 1)


def test_att_missing_folder_says_how_to_get_it(tmp_path):
    root = tmp_path / "nothing"
    with pytest.raises(FileNotFoundError, match=r"att_faces\.zip.*s1.1\.pgm.*download=True"):
        image_data.load_att_faces(root)


def test_att_download_offline_fails_clearly(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(ConnectionError, match=r"cl\.cam\.ac\.uk.*no route.*unpack it so that"):
        image_data.load_att_faces(tmp_path / "data", download=True)
    assert not (tmp_path / "data" / "att_faces.zip.part").exists()


@pytest.mark.parametrize("prefix", ["", "att_faces/"])
def test_att_download_unpacks_the_archive(tmp_path, monkeypatch, prefix):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for subject, number in [(1, 1), (1, 2), (2, 1)]:
            pixels = np.full((6, 5), _code(subject, number), np.uint8)
            image = io.BytesIO()
            Image.fromarray(pixels).save(image, format="PPM")  # greyscale -> P5 .pgm
            archive.writestr(f"{prefix}s{subject}/{number}.pgm", image.getvalue())
        archive.writestr(f"{prefix}README", "faces")
    requested = []

    def fake_urlopen(url, timeout):
        requested.append(url)
        return io.BytesIO(buffer.getvalue())

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    images, labels = image_data.load_att_faces(tmp_path / "data", download=True)
    assert requested == [image_data.ATT_FACES_URL]
    assert images.shape == (3, 6, 5, 1)
    np.testing.assert_array_equal(labels, [1, 1, 2])
    assert_bitwise(images[:, 0, 0, 0], np.float32([11, 12, 21]))
    assert not (tmp_path / "data" / "att_faces.zip").exists()


def test_load_images_dispatches_att_by_path_and_name(att_root):
    images, labels, name = image_data.load_images(str(att_root))
    assert images.shape == (9, ATT_H, ATT_W, 1) and labels[-1] == 10 and name == str(att_root)
    images, labels, name = image_data.load_images("att", data_dir=att_root)
    assert images.shape == (9, ATT_H, ATT_W, 1) and name == "att"


def test_bundled_lfw_subset():
    images, labels = image_data.load_lfw_subset()
    assert images.shape == (200, 25, 25, 1) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    np.testing.assert_array_equal(labels, [1] * 100 + [0] * 100)


def test_bundled_digits_match_the_tabular_loader():
    images, labels = image_data.load_digits()
    flat, flat_labels = data.load_digits_features()
    assert images.shape == (1797, 8, 8, 1)
    assert_bitwise(images.reshape(1797, 64), flat)
    np.testing.assert_array_equal(labels, flat_labels)


def test_olivetti_absent_from_the_cache_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Olivetti.*cache.*download=True"):
        image_data.load_olivetti(data_home=tmp_path)


def test_olivetti_download_offline_fails_clearly(tmp_path, monkeypatch):
    def offline(**kwargs):
        assert kwargs["download_if_missing"] is True
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(image_data.sk_datasets, "fetch_olivetti_faces", offline)
    with pytest.raises(ConnectionError, match=r"could not download the Olivetti faces.*no route"):
        image_data.load_olivetti(download=True, data_home=tmp_path)


def test_olivetti_reads_the_cache(tmp_path):
    # scikit-learn caches the 400 faces as (400, 4096) in olivetti_py3.pkz under data_home
    faces = np.tile(np.arange(400, dtype=np.float64)[:, None], (1, 4096))
    joblib.dump(faces, tmp_path / "olivetti_py3.pkz", compress=3)
    images, labels = image_data.load_olivetti(data_home=tmp_path)
    assert images.shape == (400, 64, 64, 1) and images.dtype == np.float32
    np.testing.assert_array_equal(labels, np.repeat(np.arange(1, 41), 10))
    np.testing.assert_allclose(images[:, 0, 0, 0], np.arange(400) / 399, rtol=1e-6)


def _write_image(path, array, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = Image.fromarray(array)
    image = image.convert(mode) if mode else image
    image.save(path)


def test_image_folder_labels_order_and_channels(tmp_path):
    rgb = np.zeros((6, 4, 3), np.uint8)
    rgb[..., 0] = 200
    _write_image(str(tmp_path / "cats" / "img10.png"), rgb)
    _write_image(str(tmp_path / "cats" / "img2.jpg"), np.full((6, 4), 50, np.uint8))
    _write_image(str(tmp_path / "dogs" / "a.bmp"), np.full((6, 4), 90, np.uint8))
    (tmp_path / "dogs" / "notes.txt").write_text("skip me")
    _write_image(str(tmp_path / "dogs" / ".hidden.png"), np.zeros((9, 9), np.uint8))
    images, labels = image_data.load_image_folder(tmp_path)
    assert images.shape == (3, 6, 4, 1)
    assert image_data.image_folder_classes(tmp_path) == ["cats", "dogs"]
    np.testing.assert_array_equal(labels, [0, 0, 1])
    # natural order: img2 before img10; grey of pure red is 0.299 * 200
    np.testing.assert_allclose(images[:, 0, 0, 0], [50, round(0.299 * 200), 90], atol=1)
    colour, _ = image_data.load_image_folder(tmp_path, grayscale=False, size=(3, 2))
    assert colour.shape == (3, 3, 2, 3)
    np.testing.assert_allclose(colour[1, ..., 0], 200)
    np.testing.assert_allclose(colour[1, ..., 1:], 0)


def test_image_folder_without_subfolders_has_no_labels(tmp_path):
    for i in range(3):
        _write_image(str(tmp_path / f"{i}.png"), np.full((5, 5), i, np.uint8))
    images, labels, _ = image_data.load_images(str(tmp_path))
    assert images.shape == (3, 5, 5, 1) and labels is None


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        image_data.load_image_folder(tmp_path / "missing")
    (tmp_path / "readme.txt").write_text("no images")
    with pytest.raises(FileNotFoundError, match=r"no images in .*\.png"):
        image_data.load_image_folder(tmp_path)
    _write_image(str(tmp_path / "a.png"), np.zeros((5, 5), np.uint8))
    _write_image(str(tmp_path / "b.png"), np.zeros((7, 5), np.uint8))
    with pytest.raises(ValueError, match=r"a\.png' is 5×5 .*b\.png' is 7×5.*size="):
        image_data.load_image_folder(tmp_path)
    (tmp_path / "c.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(ValueError, match=r"cannot read image file .*c\.jpg"):
        image_data.load_image_folder(tmp_path, size=(5, 5))
    with pytest.raises(ValueError, match=r"size\[1\] must be >= 1, got size\[1\]=0"):
        image_data.load_image_folder(tmp_path, size=(5, 0))
    with pytest.raises(ValueError, match=r"size must be \(height, width\), got \(5,\)"):
        image_data.load_image_folder(tmp_path, size=(5,))


def test_npy_images(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4))
    images, labels, _ = image_data.load_images(str(path))
    assert images.shape == (2, 3, 4, 1) and images.dtype == np.float32 and labels is None
    np.save(path, np.zeros((2, 3, 4, 3)))
    assert image_data.load_npy_images(path).shape == (2, 3, 4, 3)
    np.save(path, np.zeros((2, 12)))
    with pytest.raises(ValueError, match=r"must have shape \(n, height, width\)"):
        image_data.load_npy_images(path)
    bad = np.zeros((2, 3, 4))
    bad[1, 1, 1] = np.nan
    np.save(path, bad)
    with pytest.raises(ValueError, match="NaN"):
        image_data.load_npy_images(path)


def test_unknown_source_lists_the_choices():
    with pytest.raises(ValueError, match=r"unknown image source 'faces'.*lfw-faces"):
        image_data.load_images("faces")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        image_data.load_images("data/missing_faces")


def test_named_source_resizes():
    images, labels, name = image_data.load_images("lfw-subset", size=(12, 10))
    assert images.shape == (200, 12, 10, 1) and name == "lfw-subset" and len(labels) == 200
    assert 0.0 <= images.min() and images.max() <= 1.0


def test_resize_keeps_constants_and_range():
    images = np.full((2, 8, 8, 3), 0.25, np.float32)
    resized = image_data.resize_images(images, (5, 3))
    assert resized.shape == (2, 5, 3, 3)
    np.testing.assert_allclose(resized, 0.25, rtol=1e-6)


def test_global_normalization_is_the_seeds_on_the_training_split():
    dataset = image_data.load_image_dataset("lfw-subset", test_size=0.2, random_state=42)
    images, labels = image_data.load_lfw_subset()
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=0.2, random_state=42
    )
    assert dataset.x_train.shape == (160, 25, 25, 1) and dataset.x_test.shape == (40, 25, 25, 1)
    assert dataset.x_train.dtype == np.float32 and dataset.feature_shape == (25, 25, 1)
    np.testing.assert_array_equal(dataset.y_train, y_train)
    np.testing.assert_array_equal(dataset.y_test, y_test)
    normalizer = dataset.normalizer
    assert np.ndim(normalizer.mean) == 0 and np.ndim(normalizer.std) == 0
    np.testing.assert_allclose(normalizer.mean, x_train.astype(np.float64).mean(), rtol=1e-12)
    np.testing.assert_allclose(normalizer.std, x_train.astype(np.float64).std(ddof=1), rtol=1e-12)
    # normalized training pixels have mean 0 and (ddof 1) std 1; inversion gives the pixels back
    assert abs(float(dataset.x_train.mean())) < 1e-5
    np.testing.assert_allclose(dataset.x_train.std(ddof=1), 1.0, rtol=1e-4)
    np.testing.assert_allclose(normalizer.inverse_transform(dataset.x_train), x_train, atol=1e-5)
    np.testing.assert_allclose(normalizer.inverse_transform(dataset.x_test), x_test, atol=1e-5)
    restored = data.Standardizer.from_dict(normalizer.to_dict())
    assert_bitwise(restored.transform(x_test), dataset.x_test)  # the same float64 statistics


def test_split_depends_only_on_the_seed():
    a = image_data.load_image_dataset("digits", random_state=1)
    b = image_data.load_image_dataset("digits", random_state=1)
    c = image_data.load_image_dataset("digits", random_state=2)
    assert_bitwise(a.x_train, b.x_train)
    assert not np.array_equal(a.y_train, c.y_train)


def test_per_pixel_and_no_normalization(att_root):
    raw = image_data.load_image_dataset(att_root, normalization="none", test_size=0.25)
    assert raw.normalizer is None and raw.x_train.max() > 1.0
    pixel = image_data.load_image_dataset(att_root, normalization="per-pixel", test_size=0.25)
    assert pixel.normalizer.mean.shape == (ATT_H, ATT_W, 1)
    np.testing.assert_allclose(pixel.x_train.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(pixel.normalizer.inverse_transform(pixel.x_test), raw.x_test)


@settings(deadline=None, max_examples=25)
@given(
    hnp.arrays(
        np.float32,
        st.tuples(st.integers(2, 6), st.integers(1, 5), st.integers(1, 5), st.sampled_from([1, 3])),
        elements=st.floats(0, 255, width=32),
    ),
    st.booleans(),
)
def test_normalization_round_trips(images, per_feature):
    normalizer = data.Standardizer.fit(
        images, per_feature=per_feature, ddof=0 if per_feature else 1
    )
    normalized = normalizer.transform(images)
    assert np.all(np.isfinite(normalized))
    np.testing.assert_allclose(normalizer.inverse_transform(normalized), images, atol=1e-3)


def test_dataset_argument_errors():
    with pytest.raises(ValueError, match="test_size must be in"):
        image_data.load_image_dataset("digits", test_size=1.0)
    with pytest.raises(ValueError, match="normalization must be one of"):
        image_data.load_image_dataset("digits", normalization="minmax")


def test_check_image_shape_names_both_shapes():
    images = np.zeros((3, 25, 25, 1), np.float32)
    image_data.check_image_shape(images, (25, 25, 1), "x")
    with pytest.raises(
        ValueError,
        match=r"x has images of shape \(25, 25, 1\) but the model "
        r"expects \(112, 92, 1\)",
    ):
        image_data.check_image_shape(images, (112, 92, 1), "x")
    with pytest.raises(ValueError, match=r"images has images of shape \(25, 25\)"):
        image_data.check_image_shape(images[..., 0], (25, 25, 1))
