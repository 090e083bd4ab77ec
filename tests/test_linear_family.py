"""The linear family's scikit-learn estimators (``FactorAnalysis``, ``IncrementalPCA``,
``KernelPCA``, ``FastICA``): scikit-learn's own checks, agreement with scikit-learn's numbers on
the same data, dtypes, feature names, streaming, the ``fa`` detector and errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numerics import assert_bitwise
from sklearn import decomposition as sk
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from latent_jax import (
    AnomalyDetector,
    FactorAnalysis,
    FastICA,
    IncrementalPCA,
    KernelPCA,
    fit_pca,
    partial_fit_source,
)


# As scikit-learn's own suite runs these checks: some fit random data with few iterations
# (check_f_contiguous_array_estimator fits FastICA from a random start without a seed).
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(
    [
        FactorAnalysis(),
        IncrementalPCA(),
        KernelPCA(kernel="rbf", fit_inverse_transform=True),
        FastICA(),
    ]
)
def test_sklearn_check_estimator(estimator, check):
    check(estimator)


def relative(a, b) -> float:
    """The largest difference relative to the reference's largest magnitude."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def signs_aligned(a: np.ndarray, b: np.ndarray, axis: int) -> np.ndarray:
    """``a`` with each row (axis 1) or column (axis 0) flipped to point like ``b``'s."""
    signs = np.sign(np.sum(a * b, axis=axis, keepdims=True))
    return a * signs


def factor_data(n: int = 300, d: int = 12, k: int = 3, seed: int = 0) -> np.ndarray:
    """Data of a factor model: k factors, unequal noise variances, an offset."""
    rng = np.random.default_rng(seed)
    loadings = rng.normal(size=(k, d)) * 2.0
    noise = rng.uniform(0.1, 1.0, d)
    return rng.normal(size=(n, k)) @ loadings + rng.normal(size=(n, d)) * np.sqrt(noise) + 3.0


def spread_data(n: int = 120, d: int = 6, seed: int = 0) -> np.ndarray:
    """Distinct variances per feature, away from the origin; uniform, so that independent
    components exist (FastICA converges)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.7, 1.7, size=(n, d)) * np.linspace(3.0, 0.5, d) + 2.0


# --------------------------------------------------------------------------------------------
# FactorAnalysis
# --------------------------------------------------------------------------------------------


def test_factor_analysis_matches_sklearn_in_float64():
    """The same EM on the same data: log-likelihoods and noise variances to 1e-6 (measured
    about 1e-12 with the exact eigensolver on both sides)."""
    x = factor_data()
    held_out = factor_data(seed=1)
    ref = sk.FactorAnalysis(3, svd_method="lapack").fit(x)
    ours = FactorAnalysis(3, svd_method="lapack").fit(x)
    assert ours.n_iter_ == ref.n_iter_
    assert len(ours.loglike_) == ours.n_iter_
    assert relative(ours.loglike_, ref.loglike_) < 1e-6
    assert np.max(np.abs(ours.noise_variance_ / ref.noise_variance_ - 1)) < 1e-6
    assert relative(ours.score_samples(held_out), ref.score_samples(held_out)) < 1e-6
    assert abs(ours.score(held_out) / ref.score(held_out) - 1) < 1e-6
    assert relative(ours.get_covariance(), ref.get_covariance()) < 1e-6
    assert relative(ours.get_precision(), ref.get_precision()) < 1e-6
    # The factors' signs are LAPACK's in scikit-learn, the largest entry's here.
    aligned = signs_aligned(ours.components_, ref.components_, axis=1)
    assert relative(aligned, ref.components_) < 1e-6
    codes = signs_aligned(ours.transform(held_out), ref.transform(held_out), axis=0)
    assert relative(codes, ref.transform(held_out)) < 1e-6


def test_factor_analysis_randomized_and_rotations():
    """The randomized eigensolver (30 features, 3 factors: the subspace is not all of it)
    against the exact fit; varimax and quartimax against scikit-learn's."""
    x = factor_data(n=400, d=30, seed=2)
    exact = sk.FactorAnalysis(3, svd_method="lapack").fit(x)
    ours = FactorAnalysis(3, svd_method="randomized", random_state=0).fit(x)
    # Measured 3e-8 (scikit-learn's own randomized fit: 4e-8).
    assert np.max(np.abs(ours.noise_variance_ / exact.noise_variance_ - 1)) < 1e-5
    assert relative(ours.loglike_[-1], exact.loglike_[-1]) < 1e-6
    for rotation in ("varimax", "quartimax"):
        ref = sk.FactorAnalysis(3, svd_method="lapack", rotation=rotation).fit(x)
        rotated = FactorAnalysis(3, svd_method="lapack", rotation=rotation).fit(x)
        aligned = signs_aligned(rotated.components_, ref.components_, axis=1)
        assert relative(aligned, ref.components_) < 1e-6, rotation
        # A rotation leaves the model (W^T W) as it is.
        assert relative(rotated.get_covariance(), ref.get_covariance()) < 1e-6


def test_factor_analysis_special_cases_and_errors():
    x = factor_data(n=60, d=5)
    # No factor: a diagonal Gaussian with the per-feature variances.
    none = FactorAnalysis(0).fit(x)
    assert none.components_.shape == (0, 5)
    np.testing.assert_allclose(none.noise_variance_, np.var(x, axis=0), rtol=1e-12)
    ref = sk.FactorAnalysis(0).fit(x)
    np.testing.assert_allclose(none.score_samples(x), ref.score_samples(x), rtol=1e-10)
    psi = np.linspace(0.5, 2.0, 5)
    ref = sk.FactorAnalysis(2, svd_method="lapack", noise_variance_init=psi).fit(x)
    ours = FactorAnalysis(2, svd_method="lapack", noise_variance_init=psi).fit(x)
    assert relative(ours.loglike_, ref.loglike_) < 1e-10
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        FactorAnalysis(2, max_iter=2, tol=0.0).fit(x)
    with pytest.raises(ValueError, match="n_components=6 must be between 0 and n_features=5"):
        FactorAnalysis(6).fit(x)
    with pytest.raises(ValueError, match="svd_method must be one of"):
        FactorAnalysis(svd_method="arpack").fit(x)
    with pytest.raises(ValueError, match="rotation must be one of"):
        FactorAnalysis(rotation="oblimin").fit(x)
    with pytest.raises(ValueError, match="noise_variance_init must hold n_features=5 positive"):
        FactorAnalysis(noise_variance_init=np.ones(4)).fit(x)


# --------------------------------------------------------------------------------------------
# IncrementalPCA
# --------------------------------------------------------------------------------------------


def incremental_pairs(ours, ref):
    aligned = signs_aligned(ours.components_, ref.components_, axis=1)
    assert relative(aligned, ref.components_) < 1e-10
    assert relative(ours.singular_values_, ref.singular_values_) < 1e-10
    assert relative(ours.explained_variance_, ref.explained_variance_) < 1e-10
    assert relative(ours.explained_variance_ratio_, ref.explained_variance_ratio_) < 1e-10
    assert relative(ours.mean_, ref.mean_) < 1e-12
    assert relative(ours.var_, ref.var_) < 1e-12
    assert np.isclose(ours.noise_variance_, ref.noise_variance_, rtol=1e-10, atol=1e-14)
    assert ours.n_samples_seen_ == ref.n_samples_seen_


@pytest.mark.parametrize("n_components", [3, None], ids=["truncated", "exact"])
def test_incremental_pca_matches_sklearn_after_the_same_partial_fits(n_components):
    """Ross et al.'s update truncated to 3 components, and the exact path (every component
    kept: the covariance accumulator) after the same sequence of ragged batches."""
    x = spread_data(n=200, d=8)
    ref = sk.IncrementalPCA(n_components)
    ours = IncrementalPCA(n_components)
    for lo, hi in ((0, 10), (10, 13), (13, 80), (80, 200)):
        ref.partial_fit(x[lo:hi])
        ours.partial_fit(x[lo:hi])
    incremental_pairs(ours, ref)
    codes = signs_aligned(ours.transform(x), ref.transform(x), axis=0)
    assert relative(codes, ref.transform(x)) < 1e-10
    if n_components is None:  # nothing truncated: the PCA of every row seen
        with jax.enable_x64(True):
            exact = fit_pca(x)
        assert relative(ours.explained_variance_, np.asarray(exact.explained_variance)) < 1e-10


def test_incremental_pca_fit_batches_whitening_and_errors():
    x = spread_data(n=103, d=6)
    ref = sk.IncrementalPCA(2, batch_size=20, whiten=True).fit(x)
    ours = IncrementalPCA(2, batch_size=20, whiten=True).fit(x)
    incremental_pairs(ours, ref)
    assert ours.batch_size_ == 20
    codes = signs_aligned(ours.transform(x), ref.transform(x), axis=0)
    assert relative(codes, ref.transform(x)) < 1e-10
    back = ours.inverse_transform(ours.transform(x))
    assert relative(back, ref.inverse_transform(ref.transform(x))) < 1e-10
    with pytest.raises(ValueError, match="less or equal to the batch number of samples 3"):
        IncrementalPCA(4).partial_fit(x[:3])
    with pytest.raises(ValueError, match="n_components=7 invalid for n_features=6"):
        IncrementalPCA(7).fit(x)
    with pytest.raises(ValueError, match="IncrementalPCA is expecting 6 features"):
        ours.partial_fit(x[:, :5])


def test_partial_fit_source_streams_a_npy_file(tmp_path):
    x = spread_data(n=250, d=7).astype(np.float32)
    path = tmp_path / "rows.npy"
    np.save(path, x)
    streamed = partial_fit_source(IncrementalPCA(3, batch_size=60), path)
    in_memory = IncrementalPCA(3)
    for start in range(0, 250, 60):
        in_memory.partial_fit(x[start : start + 60])
    # The same compiled updates on the same float32 chunks.
    assert_bitwise(streamed.components_, in_memory.components_)
    assert streamed.n_samples_seen_ == 250
    assert streamed.components_.dtype == np.float32
    ref = sk.IncrementalPCA(3, batch_size=60).fit(x.astype(np.float64))
    aligned = signs_aligned(streamed.components_, ref.components_, axis=1)
    assert relative(aligned, ref.components_) < 1e-4  # float32 against float64
    with pytest.raises(TypeError, match="must have a partial_fit method"):
        partial_fit_source(KernelPCA(), path)


# --------------------------------------------------------------------------------------------
# KernelPCA
# --------------------------------------------------------------------------------------------


KERNEL_OPTIONS = {
    "rbf": {"kernel": "rbf"},
    "poly": {"kernel": "poly", "degree": 3, "gamma": 0.2},
    "poly-fractional": {"kernel": "poly", "degree": 2.5, "gamma": 0.01, "coef0": 10.0},
    "sigmoid": {"kernel": "sigmoid", "gamma": 0.05},
    "cosine": {"kernel": "cosine"},
    "linear": {"kernel": "linear"},
}


@pytest.mark.parametrize("name", list(KERNEL_OPTIONS))
def test_kernel_pca_transforms_match_sklearn_up_to_sign(name):
    x = spread_data(n=80, d=5, seed=3)
    new = spread_data(n=15, d=5, seed=4)
    options = KERNEL_OPTIONS[name]
    ref = sk.KernelPCA(4, fit_inverse_transform=True, **options).fit(x)
    ours = KernelPCA(4, fit_inverse_transform=True, **options).fit(x)
    assert relative(ours.eigenvalues_, ref.eigenvalues_) < 1e-10
    codes = ours.transform(new)
    assert relative(signs_aligned(codes, ref.transform(new), axis=0), ref.transform(new)) < 1e-9
    fitted = signs_aligned(ours.fit_transform(x), ref.fit_transform(x), axis=0)
    assert relative(fitted, ref.fit_transform(x)) < 1e-9
    # Pre-images of the same codes (the signs of ours turned to scikit-learn's).
    flips = np.sign(np.sum(codes * ref.transform(new), axis=0))
    assert (
        relative(
            ours.inverse_transform(ref.transform(new) * flips),
            ref.inverse_transform(ref.transform(new)),
        )
        < 1e-8
    )


def test_kernel_pca_precomputed_randomized_and_zero_eigenvalues():
    x = spread_data(n=300, d=4, seed=5)
    new = spread_data(n=10, d=4, seed=6)

    def gram(a, b):
        return np.exp(-0.3 * np.sum((a[:, None] - b[None]) ** 2, axis=-1))

    ref = sk.KernelPCA(3, kernel="precomputed").fit(gram(x, x))  # ARPACK
    # 300 rows and 3 components: eigen_solver="auto" is the randomized solver, 20 power steps.
    ours = KernelPCA(3, kernel="precomputed", random_state=0).fit(gram(x, x))
    expected = ref.transform(gram(new, x))
    codes = ours.transform(gram(new, x))
    assert relative(signs_aligned(codes, expected, axis=0), expected) < 1e-6  # measured 1e-7
    dense = KernelPCA(3, kernel="precomputed", eigen_solver="dense").fit(gram(x, x))
    assert relative(signs_aligned(dense.transform(gram(new, x)), expected, axis=0), expected) < 1e-9
    # scikit-learn's randomized rule (7 power steps here) is coarser on these close eigenvalues.
    randomized = KernelPCA(3, kernel="rbf", gamma=0.3, eigen_solver="randomized", random_state=0)
    codes = randomized.fit(x).transform(new)
    assert relative(signs_aligned(codes, expected, axis=0), expected) < 1e-2  # measured 1e-3
    # n_components=None keeps the positive eigenvalues only: a linear kernel on 4 features.
    assert KernelPCA().fit(x).eigenvalues_.shape == (4,)
    kept = KernelPCA(6, remove_zero_eig=False).fit(x)
    assert kept.eigenvalues_.shape == (6,) and np.all(kept.eigenvalues_[4:] == 0)
    assert np.all(kept.transform(new)[:, 4:] == 0)


def test_kernel_pca_errors():
    x = spread_data(n=20, d=3)
    with pytest.raises(ValueError, match="Cannot fit_inverse_transform with a precomputed"):
        KernelPCA(kernel="precomputed", fit_inverse_transform=True).fit(x @ x.T)
    with pytest.raises(ValueError, match="a training kernel must be square"):
        KernelPCA(kernel="precomputed").fit(x)
    with pytest.raises(ValueError, match="eigen_solver must be one of"):
        KernelPCA(eigen_solver="arpack").fit(x)
    with pytest.raises(ValueError, match="significant negative eigenvalues"):
        KernelPCA(kernel="precomputed").fit(-(x @ x.T))
    with pytest.raises(NotFittedError, match="fit_inverse_transform parameter was not"):
        KernelPCA(2).fit(x).inverse_transform(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="inverse_transform expects n_components_=2"):
        KernelPCA(2, fit_inverse_transform=True).fit(x).inverse_transform(np.zeros((1, 3)))


# --------------------------------------------------------------------------------------------
# FastICA
# --------------------------------------------------------------------------------------------


def amari_distance(product: np.ndarray) -> float:
    """Amari et al.'s (1996) distance of ``W A`` from a scaled permutation, in [0, 1]."""
    p = np.abs(product)
    k = p.shape[0]
    rows = np.sum(np.sum(p, axis=1) / np.max(p, axis=1) - 1)
    columns = np.sum(np.sum(p, axis=0) / np.max(p, axis=0) - 1)
    return float((rows + columns) / (2 * k * (k - 1)))


def mixture(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Four independent non-Gaussian sources mixed into six features; returns (X, A)."""
    rng = np.random.default_rng(seed)
    sources = np.column_stack(
        [
            rng.laplace(size=n),
            rng.uniform(-1.0, 1.0, n),
            rng.choice([-1.0, 1.0], n),
            rng.exponential(size=n) - 1.0,
        ]
    )
    mixing = rng.normal(size=(4, 6))
    noise = 0.01 * rng.normal(size=(n, 6))  # full rank: no degenerate whitening
    return sources @ mixing + noise + 5.0, mixing


@pytest.mark.parametrize(
    ("algorithm", "fun", "whiten_solver"),
    [("parallel", "logcosh", "svd"), ("deflation", "exp", "eigh"), ("parallel", "cube", "eigh")],
)
def test_fastica_unmixes_known_sources_like_sklearn(algorithm, fun, whiten_solver):
    x, mixing = mixture()
    options = {"algorithm": algorithm, "fun": fun, "whiten_solver": whiten_solver}
    ref = sk.FastICA(4, random_state=0, **options).fit(x)
    ours = FastICA(4, random_state=0, **options).fit(x)
    # Sources recovered: W A is a scaled permutation up to the sampling error of 2000 rows
    # (measured 0.015 to 0.036, scikit-learn's to 1e-12).
    assert amari_distance(ours.components_ @ mixing.T) < 0.05
    # The same initial matrix and iterations as scikit-learn: the same unmixing up to
    # permutation and sign (equal in practice).
    product = ours.components_ @ np.linalg.pinv(ref.components_)
    assert amari_distance(product) < 1e-6
    assert ours.n_iter_ == ref.n_iter_
    assert relative(ours.components_, ref.components_) < 1e-8
    assert relative(ours.mixing_, ref.mixing_) < 1e-8
    sources = ours.fit_transform(x)
    np.testing.assert_allclose(np.std(sources, axis=0), 1.0, rtol=1e-10)  # unit-variance
    assert relative(sources, ref.transform(x)) < 1e-8
    assert relative(ours.inverse_transform(sources), ref.inverse_transform(sources)) < 1e-8


def test_fastica_whitening_options_and_errors():
    x, _ = mixture(n=500, seed=1)
    ref = sk.FastICA(3, whiten="arbitrary-variance", random_state=1).fit(x)
    ours = FastICA(3, whiten="arbitrary-variance", random_state=1).fit(x)
    assert relative(ours.whitening_, ref.whitening_) < 1e-10
    assert relative(ours.components_, ref.components_) < 1e-8
    white = ours.transform(x)
    ref_white = sk.FastICA(whiten=False, random_state=2, max_iter=500).fit(white)
    ours_white = FastICA(whiten=False, random_state=2, max_iter=500).fit(white)
    assert not hasattr(ours_white, "mean_")
    assert relative(ours_white.components_, ref_white.components_) < 1e-8
    w_init = np.random.default_rng(3).normal(size=(3, 3))
    ref = sk.FastICA(3, w_init=w_init, fun="cube").fit(x)
    assert (
        relative(FastICA(3, w_init=w_init, fun="cube").fit(x).components_, ref.components_) < 1e-8
    )

    # A contrast of the user's, written with jax.numpy: the cube's, as "cube" computes it.
    def cube(u):
        return u**3, jnp.mean(3.0 * u**2, axis=-1)

    by_name = FastICA(3, fun="cube", random_state=4).fit(x)
    assert (
        relative(FastICA(3, fun=cube, random_state=4).fit(x).components_, by_name.components_)
        < 1e-10
    )
    with pytest.warns(UserWarning, match="n_components is too large: it will be set to 6"):
        FastICA(9, random_state=0).fit(x)
    with pytest.warns(UserWarning, match="Ignoring n_components with whiten=False"):
        FastICA(2, whiten=False, random_state=0).fit(white)
    with pytest.raises(ValueError, match="w_init has invalid shape"):
        FastICA(3, w_init=np.eye(2)).fit(x)
    with pytest.raises(ValueError, match=r"alpha must be in \[1,2\]"):
        FastICA(fun_args={"alpha": 3.0}).fit(x)
    with pytest.raises(ValueError, match="whiten must be one of"):
        FastICA(whiten=True).fit(x)
    with pytest.warns(ConvergenceWarning, match="FastICA did not converge"):
        FastICA(3, max_iter=1, random_state=0).fit(x)


# --------------------------------------------------------------------------------------------
# Shared: dtypes, writeable results, feature names
# --------------------------------------------------------------------------------------------


ESTIMATORS = {
    "FactorAnalysis": lambda: FactorAnalysis(2, rotation="varimax"),
    "IncrementalPCA": lambda: IncrementalPCA(2, batch_size=30),
    "KernelPCA": lambda: KernelPCA(2, kernel="rbf", fit_inverse_transform=True),
    "FastICA": lambda: FastICA(2, random_state=0),
}
FITTED_ARRAYS = {
    "FactorAnalysis": ("components_", "noise_variance_", "mean_"),
    "IncrementalPCA": ("components_", "explained_variance_", "singular_values_", "mean_", "var_"),
    "KernelPCA": ("eigenvalues_", "eigenvectors_", "dual_coef_", "X_transformed_fit_"),
    "FastICA": ("components_", "mixing_", "mean_", "whitening_"),
}


@pytest.mark.parametrize("name", list(ESTIMATORS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved_and_outputs_writeable(name, dtype):
    x = spread_data(n=90, d=5).astype(dtype)
    est = ESTIMATORS[name]()
    codes = est.fit_transform(x)
    results = {"fit_transform": codes, "transform": est.transform(x)}
    if hasattr(est, "inverse_transform"):
        results["inverse_transform"] = est.inverse_transform(codes)
    if hasattr(est, "score_samples"):
        results["score_samples"] = est.score_samples(x)
    results.update({attr: getattr(est, attr) for attr in FITTED_ARRAYS[name]})
    for what, value in results.items():
        assert isinstance(value, np.ndarray), what
        assert value.dtype == dtype, what
        assert value.flags.writeable, what
    codes /= 2  # in place
    assert not jax.config.jax_enable_x64  # the float64 fit left JAX's setting alone


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_feature_names(name):
    pd = pytest.importorskip("pandas")
    x = spread_data(n=60, d=4)
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    est = ESTIMATORS[name]().set_output(transform="pandas").fit(frame)
    np.testing.assert_array_equal(est.feature_names_in_, ["a", "b", "c", "d"])
    prefix = name.lower()
    assert list(est.get_feature_names_out()) == [f"{prefix}0", f"{prefix}1"]
    codes = est.transform(frame)
    assert list(codes.columns) == [f"{prefix}0", f"{prefix}1"]
    assert not hasattr(ESTIMATORS[name]().fit(x), "feature_names_in_")


# --------------------------------------------------------------------------------------------
# The fa detector
# --------------------------------------------------------------------------------------------


def test_fa_detector_scores_by_negative_log_likelihood_and_round_trips(tmp_path):
    x = factor_data(n=200, d=8).astype(np.float32)
    test = np.vstack([factor_data(n=20, d=8, seed=5), factor_data(n=5, d=8, seed=6) + 8.0])
    detector = AnomalyDetector("fa", n_components=3, scaling="none").fit(x)
    assert detector.n_components_ == 3
    model = FactorAnalysis(3).fit(x)
    expected = -model.score_samples(test.astype(np.float32))
    np.testing.assert_allclose(detector.decision_function(test), expected, rtol=1e-5)
    assert np.all(detector.predict(test)[-5:] == 1)
    detector.save(tmp_path / "fa")
    loaded = AnomalyDetector.load(tmp_path / "fa")
    assert loaded.method == "fa" and loaded.n_components_ == 3
    assert_bitwise(loaded.decision_function(test), detector.decision_function(test))
    assert loaded.threshold_ == detector.threshold_
