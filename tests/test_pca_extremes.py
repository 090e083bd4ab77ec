"""PCA, PPCA and the ppca detector on data of extreme magnitude or with constant columns:
correct finite numbers or a clear error, never a silent NaN."""

import warnings

import jax
import numpy as np
import pytest
from numerics import assert_close
from sklearn.decomposition import PCA as SklearnPCA

from latent_jax import linear
from latent_jax.anomaly import AnomalyDetector, NoResidualWarning
from latent_jax.linear import pca

RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 5)) @ RNG.normal(size=(5, 5))


def _reference(x):
    return SklearnPCA(2).fit(np.asarray(x, np.float64))


@pytest.mark.parametrize("scale", [1e30, 1e-30])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_estimator_on_extreme_magnitudes_matches_scikit_learn(scale, dtype):
    x = (X * scale).astype(dtype)
    ours, ref = linear.PCA(2).fit(x), _reference(x)
    for name in ("explained_variance_", "singular_values_", "mean_", "noise_variance_"):
        value = np.asarray(getattr(ours, name))
        assert np.all(np.isfinite(value)), name
        if name == "mean_":
            # Means of 60 values of both signs, some near 0: round-off is relative to the
            # values summed (ops = the 60 of the sum), in the fit's own precision.
            scale = float(np.max(np.abs(x.astype(np.float64))))
            assert_close(value, ref.mean_, ops=60, dtype=value.dtype, scale=scale, err_msg=name)
        else:
            np.testing.assert_allclose(value, getattr(ref, name), rtol=2e-4, err_msg=name)
    np.testing.assert_allclose(ours.explained_variance_ratio_, ref.explained_variance_ratio_, 2e-4)
    np.testing.assert_allclose(np.abs(ours.components_), np.abs(ref.components_), atol=1e-4)
    if dtype == np.float32:  # variances beyond float32's range: the fit is float64
        assert ours.explained_variance_.dtype == np.float64


def test_estimator_keeps_float32_when_the_scaled_variances_fit():
    x = (X * 1e15).astype(np.float32)  # squares overflow float32, the variances do not
    ours, ref = linear.PCA(2).fit(x), _reference(x)
    assert ours.explained_variance_.dtype == np.float32
    np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=1e-4)


def test_fit_pca_on_huge_float64_data_in_float64_matches_scikit_learn():
    x = X * 1e20
    with jax.enable_x64(True):
        state = pca.fit_pca(x, 2)
        variance = np.asarray(state.explained_variance)
    np.testing.assert_allclose(variance, _reference(x).explained_variance_, rtol=1e-10)


def test_fit_pca_says_when_the_variances_overflow_float32():
    with pytest.raises(ValueError, match=r"x's variances \(up to 1\.\d+e\+41\) overflow float32"):
        pca.fit_pca(X * 1e20, 2)  # float64 data computed in float32 (x64 off)


def test_fit_pca_scales_data_whose_squares_overflow():
    x = (X * 1e17).astype(np.float32)  # squares 1e34 x 60 rows: beyond the safe range
    state = pca.fit_pca(x, 2)
    np.testing.assert_allclose(
        np.asarray(state.explained_variance), _reference(x).explained_variance_, rtol=1e-4
    )


def test_ordinary_data_are_not_rescaled():
    assert pca._extreme_scale(X.astype(np.float32), np.float32) == 1.0


@pytest.mark.parametrize("n_components", [11, 0.999])
def test_ppca_detector_with_a_constant_column_is_finite(n_components):
    x = RNG.normal(size=(120, 12))
    x[:, 3] = 5.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoResidualWarning)  # said, and true: no residual left
        detector = AnomalyDetector("ppca", contamination=0.1, n_components=n_components).fit(x)
    assert detector.n_components_ == 11
    assert np.isfinite(detector.threshold_)
    scores = detector.decision_function(x)
    assert np.all(np.isfinite(scores))
    assert 0 < detector.predict(x).sum() < len(x)
    assert float(detector.backend_.state.noise_variance) > 0


def test_a_ragged_nested_list_is_named_as_such():
    from latent_jax.data import split_dataset

    ragged = [[1.0, 2.0], [3.0]]
    with pytest.raises(ValueError, match="X must be a rectangular array; got a ragged nested"):
        linear.PCA(1).fit(ragged)
    with pytest.raises(ValueError, match="x must be a rectangular array; got a ragged nested"):
        split_dataset(ragged)
