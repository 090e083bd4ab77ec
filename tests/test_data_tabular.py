"""Tabular loaders, the seed's split and normalization, and their errors."""

import numpy as np
import pytest
from numerics import assert_bitwise
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from latent_jax import data


def test_seed_dataset_matches_the_seed_pipeline():
    dataset = data.load_tabular("synthetic-classification")
    x, y = data.load_synthetic_classification()
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=42)
    scaler = StandardScaler().fit(x_train)
    assert dataset.x_train.shape == (8000, 50) and dataset.x_test.shape == (2000, 50)
    assert dataset.x_train.dtype == np.float32
    np.testing.assert_allclose(dataset.x_train, scaler.transform(x_train), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dataset.x_test, scaler.transform(x_test), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(dataset.y_train, y_train)
    np.testing.assert_array_equal(dataset.y_test, y_test)
    assert set(np.unique(y)) == {0, 1, 2}


def test_standardizer_round_trips_and_serializes():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(40, 5))
    x[:, 2] = 7.0  # a constant column maps to 0, not NaN
    normalizer = data.Standardizer.fit(x)
    z = normalizer.transform(x)
    assert np.all(np.isfinite(z))
    np.testing.assert_allclose(z[:, 2], 0.0)
    np.testing.assert_allclose(normalizer.inverse_transform(z), x, rtol=1e-5, atol=1e-5)
    restored = data.Standardizer.from_dict(normalizer.to_dict())
    assert_bitwise(restored.transform(x), z)  # the same float64 statistics, through JSON
    scalar = data.Standardizer.fit(x, per_feature=False, ddof=1)
    assert np.ndim(scalar.mean) == 0
    np.testing.assert_allclose(scalar.std, np.std(x, ddof=1))


def test_digits_are_real_images_in_unit_range():
    x, labels = data.load_digits_features()
    assert x.shape == (1797, 64) and labels.shape == (1797,) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    dataset = data.load_tabular("digits", standardize=False)
    assert dataset.x_train.shape[1] == 64


@pytest.mark.parametrize("suffix", [".csv", ".npy", ".npz"])
def test_files_with_a_label_column(tmp_path, suffix):
    rng = np.random.default_rng(1)
    features = rng.normal(size=(30, 4))
    labels = rng.integers(0, 3, size=30)
    table = np.column_stack([features[:, :2], labels, features[:, 2:]])
    path = tmp_path / f"table{suffix}"
    if suffix == ".csv":
        header = "a,b,label,c,d\n"
        path.write_text(header + "\n".join(",".join(str(float(v)) for v in row) for row in table))
    elif suffix == ".npy":
        np.save(path, table)
    else:
        np.savez(path, table=table)
    x, y = data.load_array_file(path, label_column=2)
    np.testing.assert_allclose(x, features, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)
    dataset = data.load_tabular(str(path), label_column=2)
    assert dataset.x_train.shape == (24, 4) and dataset.y_test.shape == (6,)


def test_csv_with_a_non_numeric_column_names_the_cell(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("x,y\n1.0,2.0\n3.0,red\n")
    with pytest.raises(ValueError, match=r"bad\.csv.*non-numeric value 'red' at line 3, column 1"):
        data.load_array_file(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.npy"):
        data.load_array_file(tmp_path / "nowhere.npy")
    with pytest.raises(FileNotFoundError, match="nowhere.csv"):
        data.load_tabular(str(tmp_path / "nowhere.csv"))


def test_bad_tables_raise_clear_errors(tmp_path):
    nan_path = tmp_path / "nan.npy"
    np.save(nan_path, np.array([[1.0, np.nan], [2.0, 3.0]]))
    with pytest.raises(ValueError, match=r"nan\.npy.*1 NaN or infinite"):
        data.load_array_file(nan_path)
    flat_path = tmp_path / "flat.npy"
    np.save(flat_path, np.arange(5.0))
    with pytest.raises(ValueError, match=r"at least 2 dimensions.*got shape \(5,\)"):
        data.load_array_file(flat_path)
    text_path = tmp_path / "table.txt"
    text_path.write_text("1,2\n")
    with pytest.raises(ValueError, match=r"must end in one of"):
        data.load_array_file(text_path)
    ok_path = tmp_path / "ok.npy"
    np.save(ok_path, np.ones((4, 3)))
    with pytest.raises(ValueError, match="label_column=5 is out of range for 3 columns"):
        data.load_array_file(ok_path, label_column=5)
    with pytest.raises(ValueError, match=r"test_size must be in \(0, 1\)"):
        data.load_tabular("synthetic-classification", test_size=1.5)
    with pytest.raises(TypeError, match="numeric array"):
        data.check_finite_array(np.array([["a"]]), "x")
