"""Robust PCA (principal component pursuit): exact recovery, a NumPy reference, the estimator."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
from numerics import assert_bitwise
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from latent_jax import AnomalyDetector, RobustPCA, robust_pca


def pcp_problem(n: int, rank: int, fraction: float, seed: int = 0):
    """Candès et al.'s experiment: L0 = X Y^T with N(0, 1/n) factors, a Bernoulli support of
    ``fraction`` of the entries with random signs for S0."""
    rng = np.random.default_rng(seed)
    low = rng.normal(0, 1 / math.sqrt(n), (n, rank)) @ rng.normal(0, 1 / math.sqrt(n), (rank, n))
    support = rng.random((n, n)) < fraction
    sparse = np.where(support, rng.choice([-1.0, 1.0], (n, n)), 0.0)
    return low, sparse


def numpy_inexact_alm(m, lam=None, tol=1e-7, max_iter=1000, rho=1.5):
    """Lin, Chen & Ma's inexact ALM in float64 NumPy with a full thin SVD (the reference)."""
    lam = 1 / math.sqrt(max(m.shape)) if lam is None else lam
    norm_two = np.linalg.norm(m, 2)
    y = m / max(norm_two, np.abs(m).max() / lam)
    mu = 1.25 / norm_two
    mu_max = mu * 1e7
    sparse = np.zeros_like(m)
    norm_fro = np.linalg.norm(m)
    iterations = 0
    residual = np.inf
    while iterations < max_iter and residual >= tol:
        u, s, vt = np.linalg.svd(m - sparse + y / mu, full_matrices=False)
        low = (u * np.maximum(s - 1 / mu, 0)) @ vt
        t = m - low + y / mu
        sparse = np.sign(t) * np.maximum(np.abs(t) - lam / mu, 0)
        z = m - low - sparse
        y = y + mu * z
        mu = min(mu * rho, mu_max)
        residual = np.linalg.norm(z) / norm_fro
        iterations += 1
    return low, sparse, iterations


@pytest.fixture(scope="module")
def recovery():
    """n = 200, rank 0.05 n, 5% gross errors: inside the regime of exact recovery."""
    low0, sparse0 = pcp_problem(200, 10, 0.05)
    with jax.enable_x64(True):
        low, sparse, info = robust_pca(low0 + sparse0)
        low, sparse = np.asarray(low), np.asarray(sparse)
    return low0, sparse0, low, sparse, info


def test_exact_recovery_inside_the_regime_float64(recovery):
    low0, sparse0, low, sparse, info = recovery
    assert low.dtype == np.float64
    assert np.linalg.norm(low - low0) / np.linalg.norm(low0) < 1e-5
    np.testing.assert_array_equal(sparse != 0, sparse0 != 0)
    assert bool(info.converged) and float(info.residual) < 1e-7
    assert int(info.rank) == 10
    assert float(info.lam) == pytest.approx(1 / math.sqrt(200))


def test_equals_the_numpy_reference(recovery):
    low0, sparse0, low, sparse, info = recovery
    with threadpool_limits(1):  # LAPACK's threads only spin on a busy 2-core machine
        ref_low, ref_sparse, iterations = numpy_inexact_alm(low0 + sparse0)
    assert int(info.iterations) == iterations
    np.testing.assert_allclose(low, ref_low, rtol=0, atol=1e-10)
    np.testing.assert_allclose(sparse, ref_sparse, rtol=0, atol=1e-10)


@pytest.mark.slow
def test_fails_outside_the_regime():
    # rank 0.3 n and 30% gross errors: far past the phase transition (the same compiled shape).
    low0, sparse0 = pcp_problem(200, 60, 0.3, seed=1)
    with jax.enable_x64(True):
        low, _, info = robust_pca(low0 + sparse0)
        assert np.linalg.norm(np.asarray(low) - low0) / np.linalg.norm(low0) > 0.1
        assert int(info.rank) > 60


def test_all_zero_input_and_validation():
    low, sparse, info = robust_pca(np.zeros((60, 40), np.float32))  # compiled for small_problem
    assert not np.any(np.asarray(low)) and not np.any(np.asarray(sparse))
    assert int(info.iterations) == 0 and bool(info.converged)
    with pytest.raises(ValueError, match="x must have shape"):
        robust_pca(np.ones(5))
    with pytest.raises(ValueError, match="NaN"):
        robust_pca(np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match="lam must be > 0"):
        robust_pca(np.ones((3, 3)), lam=0.0)
    with pytest.raises(ValueError, match="rho must be > 1"):
        robust_pca(np.ones((3, 3)), rho=1.0)
    with pytest.raises(ValueError, match="svd_solver must be one of"):
        robust_pca(np.ones((3, 3)), svd_solver="lanczos")
    with pytest.raises(TypeError, match="max_iter must be an int"):
        robust_pca(np.ones((3, 3)), max_iter=2.5)


def small_problem():
    """60 float32 rows of rank 2 around an offset, 5% of the entries grossly corrupted."""
    rng = np.random.default_rng(3)
    low0 = rng.normal(size=(60, 2)) @ rng.normal(size=(2, 40)) + 4.0
    sparse0 = np.where(rng.random(low0.shape) < 0.05, rng.choice([-20.0, 20.0], low0.shape), 0)
    return (low0 + sparse0).astype(np.float32)


@pytest.fixture(scope="module")
def fitted():
    """The estimator on the recovery problem (the functional fixture's compiled program)."""
    low0, sparse0 = pcp_problem(200, 10, 0.05)
    return low0, low0 + sparse0, RobustPCA().fit(low0 + sparse0)


def relative_error(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def test_estimator_recovers_the_subspace(fitted):
    low0, x, est = fitted
    assert est.converged_ and est.n_iter_ >= 1 and est.residual_ < 1e-7
    assert est.n_components_ == 10 and est.rank_ == 10
    assert relative_error(est.low_rank_, low0) < 1e-5
    assert relative_error(est.low_rank_ + est.sparse_, x) < 1e-7
    np.testing.assert_allclose(est.mean_, low0.mean(axis=0), atol=1e-8)
    # The axes span low0's centred rows: projecting them loses nothing.
    codes = est.transform(low0)
    assert relative_error(est.inverse_transform(codes), low0) < 1e-5
    variance = np.var(est.transform(est.low_rank_), axis=0, ddof=1)
    np.testing.assert_allclose(est.explained_variance_, variance, rtol=1e-8)
    np.testing.assert_allclose(est.components_ @ est.components_.T, np.eye(10), atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_estimator_keeps_the_dtype_and_n_components(dtype, fitted):
    if dtype == np.float32:
        x, est = small_problem(), RobustPCA(n_components=1)
        codes = est.fit_transform(x)
        assert codes.shape == (len(x), 1)
    else:
        _, x, est = fitted
        codes = est.transform(x)
    assert codes.dtype == dtype
    assert est.low_rank_.dtype == dtype and est.components_.dtype == dtype
    assert est.inverse_transform(codes).dtype == dtype
    assert not jax.config.jax_enable_x64


def test_estimator_errors_and_convergence_warning(fitted):
    _, x, est = fitted
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        RobustPCA(max_iter=1).fit(x)
    with pytest.raises(ValueError, match="n_components=201 must be between 1"):
        RobustPCA(n_components=201).fit(x)
    with pytest.raises(ValueError, match="inverse_transform expects n_components_=10"):
        est.inverse_transform(np.zeros((1, 3)))


def test_anomaly_detector_robust_pca_round_trips(tmp_path):
    x = small_problem()
    detector = AnomalyDetector("robust-pca", n_components=1).fit(x)
    assert detector.n_components_ == 1
    detector.save(tmp_path / "detector")
    loaded = AnomalyDetector.load(tmp_path / "detector")
    assert loaded.method == "robust-pca" and loaded.get_params() == detector.get_params()
    # The same program on parameters saved and loaded exactly.
    assert_bitwise(loaded.decision_function(x), detector.decision_function(x))
    assert loaded.threshold_ == detector.threshold_


@pytest.mark.slow
@parametrize_with_checks([RobustPCA()])
def test_sklearn_check_estimator(estimator, check):
    check(estimator)


@pytest.mark.slow
def test_phase_transition_corners():
    """Small rank and sparsity recover; large ones do not, on three seeds each (n = 200)."""
    for seed in range(3):
        for rank, fraction, recovered in ((10, 0.05, True), (20, 0.05, True), (80, 0.35, False)):
            low0, sparse0 = pcp_problem(200, rank, fraction, seed=seed)
            with jax.enable_x64(True):
                low, _, _ = robust_pca(low0 + sparse0)
                error = np.linalg.norm(np.asarray(low) - low0) / np.linalg.norm(low0)
            assert (error < 1e-3) == recovered, (seed, rank, fraction, error)
