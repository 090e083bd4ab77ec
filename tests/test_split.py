"""The one split-and-normalize: split_indices and split_dataset, against scikit-learn."""

import numpy as np
import pytest
from numerics import assert_bitwise
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from latent_jax import data

RNG = np.random.default_rng(0)
X = RNG.normal(3.0, 2.0, size=(60, 4))
Y = np.repeat(np.arange(3), 20)


def test_shuffled_split_is_scikit_learns_split_of_the_same_data():
    dataset = data.split_dataset(X, Y, test_size=0.25, random_state=7)
    x_train, x_test, y_train, y_test = train_test_split(X, Y, test_size=0.25, random_state=7)
    assert_bitwise(dataset.x_train, x_train.astype(np.float32))
    assert_bitwise(dataset.x_test, x_test.astype(np.float32))
    np.testing.assert_array_equal(dataset.y_train, y_train)
    np.testing.assert_array_equal(dataset.y_test, y_test)
    assert dataset.x_val is None and dataset.y_val is None and dataset.normalizer is None


def test_validation_rows_come_from_the_training_rows_with_the_same_seed():
    dataset = data.split_dataset(X, test_size=0.2, val_size=0.25, random_state=3)
    train, test = train_test_split(X, test_size=0.2, random_state=3)
    train, val = train_test_split(train, test_size=0.25, random_state=3)
    for got, want in ((dataset.x_train, train), (dataset.x_val, val), (dataset.x_test, test)):
        assert_bitwise(got, want.astype(np.float32))


def test_stratified_split_keeps_class_proportions():
    dataset = data.split_dataset(X, Y, test_size=0.3, val_size=0.5, stratify=True)
    assert np.bincount(dataset.y_test).tolist() == [6, 6, 6]
    assert np.bincount(dataset.y_val).tolist() == [7, 7, 7]
    _, want = train_test_split(np.arange(60), test_size=0.3, random_state=42, stratify=Y)
    np.testing.assert_array_equal(dataset.y_test, Y[want])


def test_normalizer_is_fitted_on_the_training_rows_only():
    dataset = data.split_dataset(X, test_size=0.2, val_size=0.25, normalization="per-feature")
    train, test = train_test_split(X, test_size=0.2, random_state=42)
    train, val = train_test_split(train, test_size=0.25, random_state=42)
    scaler = StandardScaler().fit(train)
    for got, want in ((dataset.x_train, train), (dataset.x_val, val), (dataset.x_test, test)):
        np.testing.assert_allclose(got, scaler.transform(want), rtol=1e-5, atol=1e-5)
    scalar = data.split_dataset(X, normalization="global").normalizer
    assert np.ndim(scalar.mean) == 0


def test_unshuffled_split_holds_out_the_last_rows_and_counts_work():
    train, val, test = data.split_indices(10, test_size=3, val_size=2, shuffle=False)
    assert train.tolist() == [0, 1, 2, 3, 4] and val.tolist() == [5, 6]
    assert test.tolist() == [7, 8, 9]
    train, val, test = data.split_indices(10, test_size=0, shuffle=False)
    assert train.tolist() == list(range(10)) and val is None and test.size == 0
    train, _, test = data.split_indices(10, test_size=0.25, shuffle=False)
    assert (len(train), len(test)) == (7, 3)  # scikit-learn's ceil(0.25 * 10)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"test_size": 1.5}, ValueError, r"test_size must be in \(0, 1\), got test_size=1.5"),
        ({"test_size": 60}, ValueError, "test_size must be < the 60 rows"),
        ({"test_size": "half"}, TypeError, "test_size must be a real number"),
        ({"val_size": 0.0}, ValueError, r"val_size must be in \(0, 1\)"),
        ({"stratify": True}, ValueError, "stratify=True needs the labels y"),
        ({"normalization": "minmax"}, ValueError, "normalization must be one of"),
        ({"random_state": 1.5}, TypeError, "random_state must be an int"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, message):
    with pytest.raises(error, match=message):
        data.split_dataset(X, **kwargs)


def test_too_few_rows_and_mismatched_labels_are_clear_errors():
    with pytest.raises(ValueError, match="needs at least 2 rows"):
        data.split_dataset(X[:1])
    with pytest.raises(ValueError, match=r"y must have shape \(60,\)"):
        data.split_dataset(X, Y[:5])
    with pytest.raises(ValueError, match="needs shuffle=True"):
        data.split_indices(60, labels=Y, shuffle=False)
