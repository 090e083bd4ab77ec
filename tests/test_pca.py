"""PCA and probabilistic PCA against scikit-learn, closed forms and the seed's numbers."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numerics import assert_bitwise, assert_close
from scipy import sparse
from scipy.stats import multivariate_normal
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.decomposition import PCA as SkPCA
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from latent_jax.linear import (
    PCA,
    CovarianceAccumulator,
    PCAState,
    accumulator_finalize,
    accumulator_init,
    accumulator_merge,
    accumulator_update,
    decode,
    encode,
    fit_pca,
    fit_pca_chunks,
    fit_ppca,
    ppca_covariance,
    ppca_log_likelihood,
    ppca_params,
    ppca_posterior,
    ppca_sample,
    reconstruction_error,
)


def make_data(n: int, d: int, rank: int | None = None, seed: int = 0) -> np.ndarray:
    """Float64 data with well separated variances, a given rank and an offset from 0."""
    rng = np.random.default_rng(seed)
    r = min(n, d) if rank is None else rank
    latent = rng.standard_normal((n, r)) * np.linspace(3.0, 0.5, r)
    mixing = np.linalg.qr(rng.standard_normal((d, r)))[0].T
    return latent @ mixing + 2.0 * rng.standard_normal(d) + 5.0


def align_signs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Flips the rows of ``a`` to agree in sign with the rows of ``b``."""
    signs = np.sign(np.sum(a * b, axis=1, keepdims=True))
    return a * np.where(signs == 0, 1.0, signs)


# (n_samples, n_features, rank, n_components, has_density): has_density is False where the
# probabilistic PCA density is degenerate (zero noise variance with Q < D).
CASES = {
    "tall": (400, 12, None, 4, True),
    "tall-all": (400, 12, None, None, True),
    "wide": (20, 40, None, 5, True),
    "wide-all": (20, 40, None, None, False),
    "rank-deficient": (300, 15, 5, 3, True),
    "rank-deficient-all": (300, 15, 5, None, False),
}


@pytest.fixture(scope="module", params=list(CASES), ids=list(CASES))
def fitted(request):
    n, d, rank, q, has_density = CASES[request.param]
    x = make_data(n, d, rank, seed=len(request.param))
    ours = PCA(q).fit(x)
    ref = SkPCA(q, svd_solver="full").fit(x)
    return x, ours, ref, has_density


def component_tolerance(x: np.ndarray, ref: SkPCA) -> np.ndarray:
    """Per-component tolerance: float32 round-off in the covariance over the eigen-gap."""
    spectrum = SkPCA(svd_solver="full").fit(x).explained_variance_
    gaps = np.minimum(
        np.abs(np.diff(spectrum, prepend=np.inf)), np.abs(np.diff(spectrum, append=-np.inf))
    )[: ref.n_components_]
    return np.maximum(1e-5, 1e-6 * spectrum[0] / gaps)[:, None]


def test_attributes_match_sklearn(fitted):
    _, ours, ref, _ = fitted
    scale = ref.explained_variance_[0]
    assert ours.n_components_ == ref.n_components_
    assert ours.n_features_in_ == ref.n_features_in_
    assert ours.n_samples_ == ref.n_samples_
    np.testing.assert_allclose(ours.mean_, ref.mean_, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        ours.explained_variance_, ref.explained_variance_, rtol=1e-4, atol=1e-5 * scale
    )
    np.testing.assert_allclose(
        ours.explained_variance_ratio_, ref.explained_variance_ratio_, rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(
        ours.singular_values_,
        ref.singular_values_,
        rtol=1e-4,
        atol=3e-3 * ref.singular_values_[0],  # the sqrt of round-off at zero eigenvalues
    )
    np.testing.assert_allclose(ours.noise_variance_, ref.noise_variance_, rtol=1e-4, atol=1e-5)


def test_components_match_sklearn_up_to_sign(fitted):
    x, ours, ref, _ = fitted
    # Components are determined only where the variance is non-zero.
    determined = ref.explained_variance_ > 1e-6 * ref.explained_variance_[0]
    got = align_signs(ours.components_[determined], ref.components_[determined])
    error = np.abs(got - ref.components_[determined])
    assert np.all(error <= component_tolerance(x, ref)[determined])


def test_signs_are_deterministic_like_sklearn(fitted):
    x, ours, ref, _ = fitted
    rows = np.arange(ours.n_components_)
    pivot = np.argmax(np.abs(ours.components_), axis=1)
    assert np.all(ours.components_[rows, pivot] > 0)
    # Same rule as scikit-learn: where the component is determined, no flip is needed.
    determined = ref.explained_variance_ > 1e-6 * ref.explained_variance_[0]
    error = np.abs(ours.components_[determined] - ref.components_[determined])
    assert np.all(error <= component_tolerance(x, ref)[determined])


def test_components_orthonormal(fitted):
    _, ours, _, _ = fitted
    v = ours.components_.astype(np.float64)
    np.testing.assert_allclose(v @ v.T, np.eye(v.shape[0]), atol=1e-5)


def test_transform_inverse_and_score_match_sklearn(fitted):
    x, ours, ref, has_density = fitted
    # Codes are compared on the determined components (non-zero variance) only.
    determined = ref.explained_variance_ > 1e-6 * ref.explained_variance_[0]
    codes = ours.transform(x)
    ref_codes = ref.transform(x)
    np.testing.assert_allclose(
        align_signs(codes.T[determined], ref_codes.T[determined]).T,
        ref_codes[:, determined],
        atol=2e-4,
    )
    np.testing.assert_allclose(
        ours.inverse_transform(codes), ref.inverse_transform(ref_codes), atol=2e-4
    )
    np.testing.assert_allclose(ours.fit_transform(x), codes, atol=1e-5)
    if has_density:
        np.testing.assert_allclose(ours.score_samples(x), ref.score_samples(x), rtol=1e-4)
        assert ours.score(x) == pytest.approx(ref.score(x), rel=1e-4)
        np.testing.assert_allclose(
            ours.get_covariance(), ref.get_covariance(), atol=1e-4 * ref.explained_variance_[0]
        )
        np.testing.assert_allclose(
            ours.get_precision() @ ref.get_covariance(), np.eye(x.shape[1]), atol=1e-3
        )


def test_whitening_matches_sklearn():
    x = make_data(200, 8, seed=3)
    ours = PCA(3, whiten=True).fit(x)
    ref = SkPCA(3, whiten=True, svd_solver="full").fit(x)
    codes = ours.transform(x)
    np.testing.assert_allclose(codes, ref.transform(x), atol=1e-4)
    np.testing.assert_allclose(np.var(codes, axis=0, ddof=1), np.ones(3), rtol=1e-4)
    np.testing.assert_allclose(ours.inverse_transform(codes), ref.inverse_transform(codes), 1e-4)
    state = ours.state_
    np.testing.assert_allclose(
        decode(state, encode(state, x, whiten=True), whiten=True),
        decode(state, encode(state, x)),
        atol=1e-4,
    )


def test_explained_variance_is_variance_of_codes():
    x = make_data(300, 10, seed=4)
    state = fit_pca(x, 4)
    z = np.asarray(encode(state, x), dtype=np.float64)
    np.testing.assert_allclose(np.var(z, axis=0, ddof=1), state.explained_variance, rtol=1e-4)
    evals = np.linalg.eigvalsh(np.cov(x, rowvar=False))[::-1]
    # float32 against float64: every eigenvalue moves by the covariance's round-off, relative
    # to the largest (ops = its sums over 300 rows and the eigensolver's 10 features).
    assert_close(state.eigenvalues, evals, ops=310)


def test_full_rank_round_trip():
    x = make_data(50, 6, seed=5)
    state = fit_pca(x)
    np.testing.assert_allclose(decode(state, encode(state, x)), x, atol=1e-4)
    np.testing.assert_allclose(reconstruction_error(state, x), 0.0, atol=1e-7 * np.sum(x**2))


@settings(deadline=None, max_examples=8)
@given(
    n=st.sampled_from([5, 17, 40]),
    d=st.sampled_from([2, 5, 7]),
    q_frac=st.floats(0.0, 1.0),
    ddof=st.sampled_from([0, 1]),
    seed=st.integers(0, 2**16),
)
def test_seed_identity_reconstruction_loss(n, d, q_frac, ddof, seed):
    """L = N (sum of all - sum of top Q eigenvalues) = total variance - variance of codes."""
    x = make_data(n, d, seed=seed)
    q = max(1, round(q_frac * min(n, d)))
    state = fit_pca(x, q, ddof=ddof)
    loss = float(np.sum(np.asarray(reconstruction_error(state, x), dtype=np.float64)))
    eig = np.asarray(state.eigenvalues, dtype=np.float64) * (n - ddof) / n  # biased Cov(X, X)
    closed_form = n * (eig.sum() - eig[:q].sum())
    z = np.asarray(encode(state, x), dtype=np.float64)
    total = np.sum((x - x.mean(axis=0)) ** 2)
    scale = 1e-5 * total
    assert loss == pytest.approx(closed_form, abs=scale)
    assert loss == pytest.approx(total - np.sum(z**2), abs=scale)
    # ... and it is the least loss: the exact float64 eigen-solution gives the same value.
    evals = np.linalg.eigvalsh(np.cov(x, rowvar=False, bias=True))[::-1]
    assert loss == pytest.approx(n * (evals.sum() - evals[:q].sum()), abs=scale)


@pytest.fixture(scope="module")
def seed_data():
    x, y = make_classification(
        n_samples=10000,
        n_features=50,
        n_redundant=10,
        n_informative=10,
        random_state=42,
        n_clusters_per_class=2,
        n_classes=3,
        class_sep=2,
    )
    x_train, _, _, _ = train_test_split(x, y, test_size=0.2, random_state=42)
    return StandardScaler().fit(x_train).transform(x_train)


def test_seed_cumulative_explained_variance(seed_data):
    state = fit_pca(seed_data)  # all 50 components, as the seed's bar chart
    assert state.explained_variance_ratio.shape == (50,)
    cumulative = np.cumsum(np.asarray(state.explained_variance_ratio, dtype=np.float64))
    assert f"{cumulative[4]:.2%}" == "31.61%"
    ref = SkPCA(n_components=None, svd_solver="auto").fit(seed_data)
    # float32 against float64, 10 of the 50 eigenvalues 0 (redundant features): those are
    # round-off of the largest, ops = the covariance's sums over 8000 rows and the 50 features.
    assert_close(state.explained_variance, ref.explained_variance_, ops=8050)


# ------------------------------------------------------------------------------------------
# Streaming
# ------------------------------------------------------------------------------------------


def assert_states_close(a: PCAState, b: PCAState, x: np.ndarray) -> None:
    """Two fits of ``x`` by other programs (blocks, chunks, merges) agree to round-off.

    ops = the rows summed into the covariance plus the eigensolver's features. The mean's
    round-off is relative to the data's magnitude; every eigenvalue (and the noise variance,
    their mean) moves by the covariance's, relative to the largest (Weyl); a component by that
    over its eigen-gap (Davis-Kahan).
    """
    ops = x.shape[0] + x.shape[1]
    largest = float(b.eigenvalues[0])
    assert a.n_samples == b.n_samples
    assert_close(a.mean, b.mean, ops=ops, scale=float(np.max(np.abs(x))))
    assert_close(a.eigenvalues, b.eigenvalues, ops=ops, scale=largest)
    eigenvalues = np.asarray(b.eigenvalues, np.float64)
    gaps = np.minimum(
        np.abs(np.diff(eigenvalues, prepend=np.inf)), np.abs(np.diff(eigenvalues, append=-np.inf))
    )
    for j in range(b.components.shape[0]):
        assert_close(a.components[j], b.components[j], ops=ops, scale=largest / gaps[j])
    assert_close(a.noise_variance, b.noise_variance, ops=ops, scale=largest)
    assert_close(a.singular_values, b.singular_values, ops=ops)


def test_streaming_equals_one_shot():
    x = make_data(1000, 9, seed=6).astype(np.float32)
    one_shot = fit_pca(x, 4)
    bounds = [0, 128, 256, 384, 512, 640, 768, 896, 1000]  # a ragged last chunk
    chunks = [x[a:b] for a, b in itertools.pairwise(bounds)]
    assert_states_close(fit_pca_chunks(chunks, 4), one_shot, x)
    assert_states_close(fit_pca_chunks(lambda: iter(chunks), 4), one_shot, x)
    assert_states_close(fit_pca(x, 4, block_rows=100), one_shot, x)


def test_accumulator_merge_and_mask():
    x = make_data(300, 5, seed=7).astype(np.float32)
    acc_a = accumulator_update(accumulator_init(5), x[:120])
    acc_b = accumulator_update(accumulator_init(5), x[120:])
    merged = accumulator_merge(acc_a, acc_b)
    whole = accumulator_update(accumulator_init(5), x)
    # Sums over (at most) the 300 rows in other orders: the mean's round-off is relative to
    # the data, the scatter's to its largest (diagonal) entry.
    x_scale = float(np.max(np.abs(x)))
    assert_close(merged.mean, whole.mean, ops=300, scale=x_scale)
    assert_close(merged.scatter, whole.scatter, ops=300)
    assert int(merged.count) == 300
    mask = np.arange(300) % 3 != 0
    masked = accumulator_update(accumulator_init(5), x, mask)
    direct = accumulator_update(accumulator_init(5), x[mask])
    assert int(masked.count) == int(mask.sum())
    assert_close(masked.mean, direct.mean, ops=300, scale=x_scale)
    assert_close(masked.scatter, direct.scatter, ops=300)
    x64 = x.astype(np.float64)
    assert_close(whole.scatter / 299, np.cov(x64, rowvar=False), ops=300)
    assert_states_close(accumulator_finalize(merged, 2), fit_pca(x, 2), x)


def test_accumulator_works_inside_scan():
    x = make_data(256, 4, seed=8).astype(np.float32)
    batches = jnp.asarray(x).reshape(8, 32, 4)

    def step(acc, batch):
        return accumulator_update(acc, batch), None

    acc, _ = jax.lax.scan(step, accumulator_init(4), batches)
    assert_states_close(accumulator_finalize(acc, 3), fit_pca(x, 3), x)


def test_float32_accuracy_far_from_origin():
    """Per-block centring keeps float32 accurate when the mean dwarfs the spread."""
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((20000, 6)) * np.linspace(2.0, 0.5, 6) + 1e3).astype(np.float32)
    exact = np.linalg.eigvalsh(np.cov(x.astype(np.float64), rowvar=False))[::-1]
    for state in (
        fit_pca(x, 6),
        fit_pca_chunks([x[i : i + 3000] for i in range(0, 20000, 3000)], 6),
    ):
        np.testing.assert_allclose(state.eigenvalues, exact, rtol=1e-4)


def test_float64_matches_sklearn_to_1e_10():
    x = make_data(500, 20, seed=10)
    ref = SkPCA(8, svd_solver="full").fit(x)
    with jax.enable_x64(True):
        ours = PCA(8).fit(x)
        assert ours.explained_variance_.dtype == np.float64
        np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=1e-10)
        np.testing.assert_allclose(ours.singular_values_, ref.singular_values_, rtol=1e-10)
        np.testing.assert_allclose(ours.noise_variance_, ref.noise_variance_, rtol=1e-10)
        np.testing.assert_allclose(ours.components_, ref.components_, atol=1e-10)
        np.testing.assert_allclose(ours.score_samples(x), ref.score_samples(x), rtol=1e-10)


def test_encode_decode_jit_agree_with_eager():
    x = make_data(60, 7, seed=11)
    state = fit_pca(x, 3)
    xj = jnp.asarray(x, jnp.float32)
    for fn in (
        lambda s, a: encode(s, a),
        lambda s, a: decode(s, encode(s, a, whiten=True), whiten=True),
        reconstruction_error,
        ppca_log_likelihood,
    ):
        # Inside a jit and alone: ops = at most a centring, projections onto 3 components and
        # back, squares and sums over 7 features, and the density's few more: 30.
        assert_close(jax.jit(fn)(state, xj), fn(state, xj), ops=30)
    # A single example of shape (n_features,) works too.
    np.testing.assert_allclose(encode(state, x[0]), encode(state, x[:1])[0], atol=1e-5)


# ------------------------------------------------------------------------------------------
# Probabilistic PCA
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "d", "q"), [(300, 5, 2), (30, 50, 4)], ids=["tall", "wide"])
def test_ppca_log_likelihood_at_ml_is_closed_form(n, d, q):
    x = make_data(n, d, seed=n)
    state = fit_ppca(x, q)
    lam = np.linalg.eigvalsh(np.cov(x, rowvar=False, bias=True))[::-1]
    sigma2 = lam[q:].sum() / (d - q)
    # float32 against float64: the mean of eigenvalues that each move by the covariance's
    # round-off, relative to the largest (ops = its sums over n rows, the solver's d).
    assert_close(state.noise_variance, sigma2, ops=n + d, scale=lam[0])
    closed = (
        -0.5
        * n
        * (d * math.log(2 * math.pi) + np.log(lam[:q]).sum() + (d - q) * math.log(sigma2) + d)
    )
    total = float(np.sum(np.asarray(ppca_log_likelihood(state, x), dtype=np.float64)))
    assert total == pytest.approx(closed, rel=1e-4)
    # The same density as a plain multivariate normal with the model covariance.
    cov = np.asarray(ppca_covariance(state), dtype=np.float64)
    ref = multivariate_normal(np.asarray(state.mean, np.float64), cov).logpdf(x[:20])
    np.testing.assert_allclose(ppca_log_likelihood(state, x[:20]), ref, rtol=1e-4)
    # It is a maximum: moving the noise variance either way lowers the likelihood.
    for factor in (0.9, 1.1):
        moved = state._replace(noise_variance=state.noise_variance * factor)
        assert float(np.sum(ppca_log_likelihood(moved, x))) < total


def test_ppca_params_reproduce_covariance():
    x = make_data(300, 5, seed=12)
    state = fit_ppca(x, 2)
    weight, sigma2 = ppca_params(state)
    assert weight.shape == (5, 2)
    lam = np.asarray(state.eigenvalues, np.float64)
    # W^T W is diagonal with lambda_j - sigma^2 (W = V (Lambda - sigma^2 I)^1/2).
    np.testing.assert_allclose(weight.T @ weight, np.diag(lam[:2] - float(sigma2)), atol=1e-4)
    expected = np.asarray(weight @ weight.T) + float(sigma2) * np.eye(5)
    np.testing.assert_allclose(ppca_covariance(state), expected, rtol=1e-5, atol=1e-6)


def test_ppca_posterior_closed_form():
    x = make_data(300, 5, seed=13)
    state = fit_ppca(x, 2)
    weight, sigma2 = (np.asarray(a, np.float64) for a in ppca_params(state))
    m = weight.T @ weight + sigma2 * np.eye(2)
    expected_mean = (x[:10] - np.asarray(state.mean)) @ weight @ np.linalg.inv(m).T
    mean, cov = ppca_posterior(state, x[:10])
    assert mean.shape == (10, 2)
    assert cov.shape == (2, 2)
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-4, atol=1e-5)
    # Ours is diagonal by construction; the float64 reference's off-diagonal entries are the
    # round-off of the float32 weights' W^T W (ops = its 5 features, sigma^2, the inverse).
    assert_close(cov, sigma2 * np.linalg.inv(m), ops=8)


def test_ppca_samples_have_model_covariance():
    x = make_data(300, 5, seed=14)
    state = fit_ppca(x, 2)
    n = 40000
    samples = np.asarray(ppca_sample(jax.random.key(0), state, n), dtype=np.float64)
    assert samples.shape == (n, 5)
    model = np.asarray(ppca_covariance(state), dtype=np.float64)
    diag = np.diag(model)
    # Standard errors of sample means and covariances of a Gaussian.
    mean_se = np.sqrt(diag / n)
    cov_se = np.sqrt((np.outer(diag, diag) + model**2) / n)
    assert np.all(np.abs(samples.mean(axis=0) - np.asarray(state.mean)) < 5 * mean_se)
    assert np.all(np.abs(np.cov(samples, rowvar=False) - model) < 5 * cov_se)
    # Same key, same draws; another key, other draws.
    again = np.asarray(ppca_sample(jax.random.key(0), state, 5))
    assert_bitwise(again, ppca_sample(jax.random.key(0), state, 5))  # the same program again
    assert not np.allclose(again, np.asarray(ppca_sample(jax.random.key(1), state, 5)))


# ------------------------------------------------------------------------------------------
# Estimator
# ------------------------------------------------------------------------------------------


def test_estimator_api_and_pipeline():
    x = make_data(120, 6, seed=15)
    est = PCA(3)
    assert est.fit(x) is est
    assert est.get_params() == {"n_components": 3, "whiten": False}
    copy = clone(est).set_params(n_components=2)
    assert copy.n_components == 2
    assert not hasattr(copy, "components_")
    assert list(est.get_feature_names_out()) == ["pca0", "pca1", "pca2"]
    assert isinstance(est.transform(x), np.ndarray)
    pipe = make_pipeline(StandardScaler(), PCA(2)).fit(x)
    expected = PCA(2).fit_transform(StandardScaler().fit_transform(x))
    np.testing.assert_allclose(pipe.transform(x), expected, atol=1e-5)
    assert isinstance(est.state_, PCAState)


def test_estimator_not_fitted():
    with pytest.raises(NotFittedError, match="not fitted"):
        PCA(2).transform(np.ones((3, 2)))


# ------------------------------------------------------------------------------------------
# Bad input: each raises before anything is compiled, naming the argument
# ------------------------------------------------------------------------------------------

GOOD = make_data(10, 4, seed=16)


@pytest.mark.parametrize(
    ("x", "kwargs", "error", "match"),
    [
        (
            np.where(np.eye(10, 4) > 0, np.nan, GOOD),
            {},
            ValueError,
            r"x contains 4 NaN or infinite values \(4 NaN, 0 infinite",
        ),
        (
            np.where(np.eye(10, 4) > 0, np.inf, GOOD),
            {},
            ValueError,
            r"x contains 4 NaN or infinite values \(0 NaN, 4 infinite",
        ),
        (
            jnp.asarray(GOOD).at[2, 1].set(jnp.nan),
            {},
            ValueError,
            r"x contains 1 NaN or infinite values .*the first at index \(2, 1\)",
        ),
        (
            np.ones(5),
            {},
            ValueError,
            r"x must have shape \(n_samples, n_features\), got shape \(5,\) \(use x\.reshape",
        ),
        (
            np.ones((2, 3, 4)),
            {},
            ValueError,
            r"x must have shape \(n_samples, n_features\), got shape \(2, 3, 4\)",
        ),
        (np.ones((0, 4)), {}, ValueError, r"x must have at least 1 sample.*\(0, 4\)"),
        (np.ones((4, 0)), {}, ValueError, r"x must have at least one feature.*\(4, 0\)"),
        (
            GOOD,
            {"n_components": 0},
            ValueError,
            r"n_components=0 must be between 1 and min\(n_samples, n_features\)=4",
        ),
        (GOOD, {"n_components": 5}, ValueError, r"n_components=5 must be between 1 and .*=4"),
        (
            GOOD[:3],
            {"n_components": 4},
            ValueError,
            r"n_components=4 .*=3 for data of shape \(3, 4\)",
        ),
        (GOOD, {"n_components": -1}, ValueError, r"n_components=-1 must be between"),
        (
            GOOD,
            {"n_components": 2.0},
            TypeError,
            r"n_components must be an int, got float \(2\.0\)",
        ),
        (
            GOOD,
            {"n_components": True},
            TypeError,
            r"n_components must be an int, got bool \(True\)",
        ),
        (GOOD, {"ddof": 10}, ValueError, r"ddof=10 must be >= 0 and smaller than n_samples=10"),
        (GOOD, {"ddof": -1}, ValueError, r"ddof=-1"),
        (GOOD[:1], {}, ValueError, r"ddof=1 must be >= 0 and smaller than n_samples=1"),
        (GOOD, {"block_rows": 0}, ValueError, r"block_rows must be >= 1, got block_rows=0"),
        (
            np.array([["a", "b"], ["c", "d"]]),
            {},
            TypeError,
            r"x must be a numeric array, got dtype <U1",
        ),
        (np.ones((3, 2), complex), {}, TypeError, r"x must be real, got complex dtype complex128"),
        (
            [[1.0, 2.0], [3.0]],
            {},
            ValueError,
            r"x must be a rectangular array; got a ragged nested sequence",
        ),
        (None, {}, TypeError, r"x must be an array-like of numbers, got NoneType"),
    ],
)
def test_fit_pca_bad_input(x, kwargs, error, match):
    with pytest.raises(error, match=match):
        fit_pca(x, **kwargs)


def test_bad_arguments_do_not_compile():
    from latent_jax.linear import kernels as module

    kernels = (module._fit_kernel, module._fit_block_kernel)
    sizes = [kernel._cache_size() for kernel in kernels]
    with pytest.raises(ValueError):
        fit_pca(np.ones((6, 3)), 4)
    with pytest.raises(TypeError):
        fit_pca(np.ones((6, 3)), block_rows=2.5)
    assert [kernel._cache_size() for kernel in kernels] == sizes


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("block_rows", [None, 256])
def test_non_finite_host_data_are_refused_in_any_block(bad, block_rows):
    # One block, or the last of three: the values are checked as the blocks are reduced.
    x = np.random.default_rng(0).standard_normal((600, 3))
    x[555, 1] = bad
    with pytest.raises(
        ValueError, match=r"x contains 1 NaN or infinite .*the first at index \(555, 1\)"
    ):
        fit_pca(x, 2, block_rows=block_rows)


@pytest.fixture(scope="module")
def fitted_small():
    return PCA(2).fit(GOOD)


# The estimator checks its data with scikit-learn's validate_data/check_array, so its
# messages are scikit-learn's.
@pytest.mark.parametrize(
    ("method", "arg", "error", "match"),
    [
        ("transform", np.ones((3, 5)), ValueError, r"X has 5 features, but PCA is expecting 4"),
        ("transform", np.full((3, 4), np.nan), ValueError, r"Input X contains NaN"),
        ("transform", np.ones(4), ValueError, r"1D array(.|\n)*Reshape your data"),
        ("transform", np.ones((0, 4)), ValueError, r"Found array with 0 sample\(s\)"),
        ("score_samples", np.ones((3, 3)), ValueError, r"X has 3 features, but PCA is expecting 4"),
        ("score", np.ones((3, 6)), ValueError, r"X has 6 features"),
        ("inverse_transform", np.ones((3, 4)), ValueError, r"X has 4 columns.*n_components_=2"),
        ("inverse_transform", np.full((3, 2), np.inf), ValueError, r"Input X contains infinity"),
        ("transform", np.ones((3, 4), complex), ValueError, r"Complex data not supported"),
        ("transform", [["a", "b", "c", "d"]], ValueError, r"could not convert string to float"),
    ],
)
def test_estimator_bad_input(fitted_small, method, arg, error, match):
    with pytest.raises(error, match=match):
        getattr(fitted_small, method)(arg)


@pytest.mark.parametrize(
    ("est", "x", "error", "match"),
    [
        (PCA(5), GOOD, ValueError, r"n_components=5 must be between 1 and .*=4"),
        (PCA(0), GOOD, ValueError, r"n_components=0 must be between"),
        (PCA("2"), GOOD, TypeError, r"n_components must be an int, got str \('2'\)"),
        (PCA(2, whiten="yes"), GOOD, TypeError, r"whiten must be a bool, got str \('yes'\)"),
        (
            PCA(1),
            GOOD[:1],
            ValueError,
            r"Found array with 1 sample\(s\) \(shape=\(1, 4\)\) while a minimum of 2 is "
            r"required by PCA",
        ),
        (PCA(1), np.ones((5, 0)), ValueError, r"0 feature\(s\) \(shape=\(5, 0\)\)"),
        (PCA(2), np.where(np.eye(10, 4) > 0, np.nan, GOOD), ValueError, r"Input X contains NaN"),
        (
            PCA(2),
            sparse.csr_matrix(GOOD),
            TypeError,
            r"Sparse data was passed for X, but dense data is required",
        ),
    ],
)
def test_estimator_fit_bad_input(est, x, error, match):
    with pytest.raises(error, match=match):
        est.fit(x)


def test_functional_bad_input():
    state = fit_pca(GOOD, 2)
    with pytest.raises(
        ValueError, match=r"x must have shape \(\.\.\., 4\) with 4 features; got shape \(3, 5\)"
    ):
        encode(state, np.ones((3, 5)))
    with pytest.raises(ValueError, match=r"z must have shape \(\.\.\., 2\) with 2 components"):
        decode(state, np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 4\)"):
        reconstruction_error(state, np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 4\)"):
        ppca_log_likelihood(state, np.float32(1.0))
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 4\)"):
        ppca_posterior(state, np.ones((3, 7)))
    with pytest.raises(TypeError, match=r"state must be a PCAState .*got dict"):
        encode({"mean": 0}, GOOD)
    with pytest.raises(TypeError, match=r"state must be a PCAState"):
        ppca_params(PCA(2).fit(GOOD))
    with pytest.raises(ValueError, match=r"n_samples must be >= 1, got n_samples=0"):
        ppca_sample(jax.random.key(0), state, 0)
    with pytest.raises(TypeError, match=r"n_samples must be an int, got float \(2\.5\)"):
        ppca_sample(jax.random.key(0), state, 2.5)
    with pytest.raises(
        TypeError, match=r"key must be a jax\.random\.key \(or legacy PRNGKey\), got int"
    ):
        ppca_sample(0, state, 3)
    with pytest.raises(TypeError, match=r"n_components must be an int for probabilistic PCA"):
        fit_ppca(GOOD, None)
    with pytest.raises(ValueError, match=r"x contains 8 NaN or infinite values"):
        fit_ppca(np.full((4, 2), np.nan), 1)


def test_streaming_bad_input():
    with pytest.raises(
        ValueError, match=r"chunks\[1\] must have 4 features like chunks\[0\]; got shape \(3, 5\)"
    ):
        fit_pca_chunks([np.ones((3, 4)), np.ones((3, 5))])
    with pytest.raises(ValueError, match=r"chunks\[1\] contains 1 NaN or infinite values \(1 NaN"):
        fit_pca_chunks([GOOD, np.where(np.eye(3, 4) > 0.5, np.nan, 1.0)[:1]])
    with pytest.raises(
        ValueError,
        match=r"chunks\[0\] must have shape \(chunk_rows, n_features\), got shape \(4,\)",
    ):
        fit_pca_chunks([np.ones(4)])
    with pytest.raises(ValueError, match=r"chunks must yield at least one row; got no rows"):
        fit_pca_chunks([])
    with pytest.raises(ValueError, match=r"chunks must yield at least one row"):
        fit_pca_chunks([np.ones((0, 3))])
    with pytest.raises(TypeError, match=r"chunks must be an iterable of 2-D arrays.*got int"):
        fit_pca_chunks(3)
    with pytest.raises(TypeError, match=r"chunks\[0\] must be a numeric array, got dtype <U1"):
        fit_pca_chunks([np.array([["a"]])])
    with pytest.raises(ValueError, match=r"n_components=5 must be between 1 and .*=4"):
        fit_pca_chunks([GOOD[:5], GOOD[5:]], 5)
    acc = accumulator_init(4)
    with pytest.raises(
        ValueError, match=r"chunk must be a 2-D array of shape \(chunk_rows, 4\).*\(3, 2\)"
    ):
        accumulator_update(acc, np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"mask must have shape \(3,\).*\(4,\)"):
        accumulator_update(acc, np.ones((3, 4)), np.ones(4))
    with pytest.raises(TypeError, match=r"acc must be a CovarianceAccumulator.*got tuple"):
        accumulator_update((0, 0, 0), np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"acc must hold at least one row; it is empty"):
        accumulator_finalize(acc)
    with pytest.raises(
        ValueError, match=r"a and b must have the same number of features; got 4 and 3"
    ):
        accumulator_merge(acc, accumulator_init(3))
    with pytest.raises(ValueError, match=r"n_features must be >= 1, got n_features=0"):
        accumulator_init(0)
    with pytest.raises(TypeError, match=r"dtype must be a floating dtype; got int32"):
        accumulator_init(3, jnp.int32)
    assert isinstance(acc, CovarianceAccumulator)


@pytest.mark.parametrize("d", [23, 37], ids=["two-column-blocks", "four-column-blocks"])
def test_block_symmetric_scatter_matches_numpy(d, monkeypatch):
    """Wide rows take the block-symmetric product; it must equal the plain covariance."""
    from latent_jax.linear import kernels as module

    # Lower the width threshold so that small (and test-only) shapes take that path.
    monkeypatch.setattr(module, "_SYMMETRIC_MIN_FEATURES", 10)
    x = make_data(300, d, seed=d).astype(np.float32)
    expected = np.cov(x.astype(np.float64), rowvar=False)
    acc = accumulator_update(accumulator_init(d), x)
    # float32 against float64: sums over 300 rows, round-off relative to the largest entry.
    assert_close(acc.scatter / 299, expected, ops=300)
    assert_bitwise(acc.scatter, np.asarray(acc.scatter).T)  # one triangle is a copy
    exact = np.linalg.eigvalsh(expected)[::-1]
    for state in (fit_pca(x, 5), fit_pca(jnp.asarray(x), 5, block_rows=64)):
        np.testing.assert_allclose(state.explained_variance, exact[:5], rtol=1e-4)
