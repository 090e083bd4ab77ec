"""``latent_jax.PCA`` as a scikit-learn estimator: check_estimator, dtypes, writeable outputs."""

from __future__ import annotations

import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numerics import assert_bitwise
from sklearn.decomposition import PCA as SkPCA
from sklearn.utils.estimator_checks import parametrize_with_checks

from latent_jax import PCA


def make_data(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Well-conditioned float64 data: distinct variances, an offset from the origin."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) * np.linspace(3.0, 0.5, d) + 5.0


@parametrize_with_checks([PCA(), PCA(2, whiten=True)])
def test_sklearn_check_estimator(estimator, check):
    check(estimator)


FITTED_ARRAYS = (
    "mean_",
    "components_",
    "explained_variance_",
    "explained_variance_ratio_",
    "singular_values_",
)


def outputs(est: PCA, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every array the estimator returns or holds after fitting on ``x``."""
    codes = est.fit_transform(x)
    result = {
        "fit_transform": codes,
        "transform": est.transform(x),
        "inverse_transform": est.inverse_transform(codes),
        "score_samples": est.score_samples(x),
        "get_covariance": est.get_covariance(),
        "get_precision": est.get_precision(),
    }
    result.update({name: getattr(est, name) for name in FITTED_ARRAYS})
    result.update({f"state_.{name}": getattr(est.state_, name) for name in est.state_._fields[:7]})
    return result


@pytest.mark.parametrize("whiten", [False, True], ids=["plain", "whiten"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved_and_outputs_writeable(dtype, whiten):
    x = make_data(40, 5).astype(dtype)
    est = PCA(3, whiten=whiten)
    for name, value in outputs(est, x).items():
        assert isinstance(value, np.ndarray), name
        assert value.dtype == dtype, name
        assert value.flags.writeable, name
    assert est.noise_variance_.dtype == dtype
    codes = est.transform(x)
    codes /= 2  # in place, as scikit-learn's own tests do
    est.components_ /= np.linalg.norm(est.components_, axis=1, keepdims=True)


def test_float64_leaves_the_global_x64_setting_alone():
    assert not jax.config.jax_enable_x64  # the test suite runs with JAX's default
    est = PCA(2).fit(make_data(30, 4))
    assert est.components_.dtype == np.float64
    assert not jax.config.jax_enable_x64
    assert jnp.zeros(1).dtype == jnp.float32
    assert jnp.asarray(np.ones(1)).dtype == jnp.float32


@pytest.mark.parametrize(
    ("fit_dtype", "data_dtype", "expected"),
    [
        (np.float32, np.float64, np.float64),
        (np.float64, np.float32, np.float64),
        (np.float32, np.int64, np.float64),
        (np.float32, np.float32, np.float32),
    ],
)
def test_methods_compute_in_the_wider_dtype(fit_dtype, data_dtype, expected):
    """As scikit-learn's NumPy arithmetic does: the fit's and the input's dtypes promote."""
    x = make_data(30, 4)
    est = PCA(2).fit(x.astype(fit_dtype))
    data = np.round(x).astype(data_dtype)
    assert est.transform(data).dtype == expected
    assert est.score_samples(data).dtype == expected
    assert est.inverse_transform(est.transform(data).astype(data_dtype)).dtype == expected


def test_integer_and_object_input_is_converted_to_float64():
    x = np.round(make_data(30, 4) * 10)
    for data in (x.astype(np.int64), x.astype(object), x.astype(bool)):
        est = PCA(2).fit(data)
        assert est.components_.dtype == np.float64
        np.testing.assert_allclose(
            est.transform(data), PCA(2).fit_transform(data.astype(np.float64)), rtol=1e-12
        )


def test_float64_matches_sklearn_to_1e_10():
    """Without touching JAX's settings, float64 data is fitted and scored in float64."""
    x = make_data(500, 20, seed=10)
    ref = SkPCA(8, svd_solver="full").fit(x)
    ours = PCA(8).fit(x)

    def close(a, b):
        assert np.max(np.abs(a - b)) <= 1e-10 * np.max(np.abs(b))

    close(ours.explained_variance_, ref.explained_variance_)
    close(ours.explained_variance_ratio_, ref.explained_variance_ratio_)
    close(ours.singular_values_, ref.singular_values_)
    close(ours.mean_, ref.mean_)
    close(ours.components_, ref.components_)
    close(np.asarray(ours.noise_variance_), np.asarray(ref.noise_variance_))
    close(ours.transform(x), ref.transform(x))
    close(ours.inverse_transform(ours.transform(x)), ref.inverse_transform(ref.transform(x)))
    close(ours.score_samples(x), ref.score_samples(x))
    close(ours.get_covariance(), ref.get_covariance())
    # float32 data stays at float32 accuracy.
    ours32 = PCA(8).fit(x.astype(np.float32))
    error = np.max(np.abs(ours32.explained_variance_ - ref.explained_variance_))
    assert 1e-10 < error / ref.explained_variance_[0] < 1e-4


def test_state_is_the_fitted_arrays_and_pickles():
    x = make_data(30, 4)
    est = PCA(2).fit(x)
    assert est.state_.components is est.components_
    assert est.state_.mean is est.mean_
    assert est.state_.eigenvalues.shape == (4,)
    again = pickle.loads(pickle.dumps(est))
    assert_bitwise(again.transform(x), est.transform(x))  # the same program, pickled state
    # The functional API computes in float64 inside the scoped x64 context.
    from latent_jax.linear import encode

    with jax.enable_x64(True):
        codes = np.asarray(encode(est.state_, x))
    assert codes.dtype == np.float64
    np.testing.assert_allclose(codes, est.transform(x), rtol=1e-12)


def test_feature_names_without_a_data_frame():
    x = make_data(30, 4)
    est = PCA(3).fit(x)
    assert not hasattr(est, "feature_names_in_")
    assert list(est.get_feature_names_out()) == ["pca0", "pca1", "pca2"]
    assert list(est.get_feature_names_out(["a", "b", "c", "d"])) == ["pca0", "pca1", "pca2"]
    with pytest.raises(ValueError, match="input_features should have length equal to"):
        est.get_feature_names_out(["a", "b"])
    with pytest.raises(ValueError, match="not fitted"):
        PCA(2).get_feature_names_out()


def test_feature_names_and_pandas_output():
    pd = pytest.importorskip("pandas")
    x = make_data(30, 4)
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    est = PCA(3).set_output(transform="pandas").fit(frame)
    np.testing.assert_array_equal(est.feature_names_in_, ["a", "b", "c", "d"])
    assert est.feature_names_in_.dtype == object
    with pytest.raises(ValueError, match="input_features is not equal to feature_names_in_"):
        est.get_feature_names_out(["a", "b", "c", "e"])
    for codes in (est.transform(frame), est.fit_transform(frame)):
        assert isinstance(codes, pd.DataFrame)
        assert list(codes.columns) == ["pca0", "pca1", "pca2"]
        np.testing.assert_allclose(codes.to_numpy(), PCA(3).fit(x).transform(x), rtol=1e-10)
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        est.transform(x)
    renamed = frame.rename(columns={"a": "z"})
    with pytest.raises(ValueError, match="feature names should match those that were passed"):
        est.transform(renamed)
