"""Disentanglement metrics (latent_jax.disentanglement) on data whose observations are the
factors themselves, as disentanglement_lib's own tests run them (its
``dummy_data.IdentityObservationsData``: 10 factors of 10 values): an identity representation
scores near 1 and a constant one near 0 within disentanglement_lib's test bounds, duplicated and
mixed codes score lower; MIG, SAP's R², the mutual information matrix, the histogram bins, DCI
and modularity against float64 closed forms, NumPy and scikit-learn; determinism; errors."""

import logging
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numerics import assert_bitwise, assert_close
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import mutual_info_score

from latent_jax import disentanglement as dis
from latent_jax.disentanglement.classifiers import Fitter


class IdentityData:
    """Factors of ``num_values`` uniform values each; an observation is its factor vector."""

    def __init__(self, num_values=(10,) * 10):
        self.factors_num_values = tuple(num_values)
        self.num_factors = len(num_values)

    def sample_factors(self, key, n):
        rng = np.random.default_rng(np.asarray(jax.random.key_data(key)))
        return rng.integers(0, self.factors_num_values, size=(n, self.num_factors))

    def sample_observations_from_factors(self, factors, key):
        return factors


DATA = IdentityData()
KEY = jax.random.key(0)
_Q = np.linalg.qr(np.random.default_rng(1).normal(size=(10, 10)))[0]


def identity(x):
    return np.asarray(x, np.float64)


def constant(x):
    return np.zeros(np.shape(x))


def duplicated(x):
    return np.hstack([identity(x), identity(x)])


def rotated(x):
    """A random rotation of the standardized factors: every code mixes every factor."""
    return (identity(x) - 4.5) / math.sqrt(99 / 12) @ _Q


def shuffled_per_example(seed=0):
    """Each observation's factors in a random order (disentanglement_lib's bad DCI and
    modularity representation): every code is any factor."""
    rng = np.random.default_rng(seed)
    return lambda x: rng.permuted(identity(x), axis=1)


class Recorder:
    """A representation that keeps the factors it saw (the observations here)."""

    def __init__(self, fn):
        self.fn, self.seen = fn, []

    def __call__(self, x):
        self.seen.append(np.asarray(x))
        return self.fn(x)

    @property
    def factors(self):
        return np.concatenate(self.seen)


# disentanglement_lib's beta_vae_test: identity in [0.9, 1] (5 points a sample).
BETA_VAE = dict(num_train=500, num_eval=500, points_per_sample=5)
# factor_vae_test: identity in [0.9, 1], constant in [0, 0.2].
FACTOR_VAE = dict(num_train=500, num_eval=500, num_variance_estimate=500, points_per_sample=5)


def test_beta_vae_score_identity_near_one_constant_at_chance_rotation_lower():
    scores = dis.beta_vae_score(identity, DATA, KEY, **BETA_VAE)
    assert 0.9 <= scores["beta_vae_train_accuracy"] <= 1.0
    assert 0.9 <= scores["beta_vae_eval_accuracy"] <= 1.0
    assert scores["beta_vae_score"] == scores["beta_vae_eval_accuracy"]
    assert dis.beta_vae_score(constant, DATA, KEY, **BETA_VAE)["beta_vae_score"] <= 0.2
    assert dis.beta_vae_score(rotated, DATA, KEY, **BETA_VAE)["beta_vae_score"] < 0.9


def test_factor_vae_score_bounds_and_its_pruning_rule():
    scores = dis.factor_vae_score(identity, DATA, KEY, **FACTOR_VAE)
    assert 0.9 <= scores["factor_vae_train_accuracy"] <= 1.0
    assert 0.9 <= scores["factor_vae_score"] == scores["factor_vae_eval_accuracy"] <= 1.0
    assert scores["factor_vae_num_active_dims"] == 10
    bad = dis.factor_vae_score(constant, DATA, KEY, **FACTOR_VAE)
    assert bad == dict.fromkeys(scores, 0.0)
    assert dis.factor_vae_score(rotated, DATA, KEY, **FACTOR_VAE)["factor_vae_score"] < 0.5
    # A dimension is kept when its standard deviation is at least 0.05 (absolute): one of
    # deviation ~0.03 is pruned, one of ~0.08 is not.
    for deviation, active in ((0.03, 10), (0.08, 11)):

        def with_extra(x, deviation=deviation):
            codes = identity(x)
            return np.hstack([codes, deviation * (codes[:, :1] - 4.5) / math.sqrt(99 / 12)])

        got = dis.factor_vae_score(with_extra, DATA, KEY, **FACTOR_VAE)
        assert got["factor_vae_num_active_dims"] == active


def _mig_closed_form(factors):
    """MIG of codes that are the factors permuted (code j = factor permutation[j]): the
    matched code's information is H(v_k), the runner-up's the largest plug-in information of
    another factor with v_k (float64, scikit-learn)."""
    k = factors.shape[1]
    entropy = np.array([mutual_info_score(factors[:, i], factors[:, i]) for i in range(k)])
    gaps = []
    for i in range(k):
        others = [mutual_info_score(factors[:, j], factors[:, i]) for j in range(k) if j != i]
        gaps.append((entropy[i] - max(others)) / entropy[i])
    return float(np.mean(gaps))


@pytest.mark.numerics
def test_mig_of_permuted_factors_equals_its_closed_form():
    permutation = np.random.default_rng(2).permutation(10)
    # An affine map of each factor (values 3 apart, bins 27/20 wide): a bijection of the bins.
    recorder = Recorder(lambda x: 3.0 * identity(x)[:, permutation] + 1.0)
    got = dis.mig(recorder, DATA, KEY, num_train=3000)["mig"]
    want = _mig_closed_form(recorder.factors)
    # float32 logarithms of probabilities >= 1/3000: each information to ~100 eps of log(3000).
    assert_close(got, want, ops=100, scale=math.log(3000))
    # The runner-up is the plug-in bias of independent factors, (K-1)^2 / 2n nats on average.
    assert 1.0 - 3 * 81 / (2 * 3000) / math.log(10) < got < 1.0


def test_mig_bounds_of_disentanglement_lib():
    # mig_test, 3000 points: identity in [0.9, 1], constant in [0, 0.2], duplicated in [0, 0.1].
    assert 0.9 <= dis.mig(identity, DATA, KEY, num_train=3000)["mig"] <= 1.0
    assert dis.mig(constant, DATA, KEY, num_train=3000)["mig"] == 0.0
    assert 0.0 <= dis.mig(duplicated, DATA, KEY, num_train=3000)["mig"] <= 0.1
    assert dis.mig(rotated, DATA, KEY, num_train=3000)["mig"] < 0.5
    # A JAX representation (a jitted function, JAX output) scores as its NumPy twin.
    as_jax = jax.jit(lambda x: jnp.asarray(x, jnp.float32))
    assert dis.mig(as_jax, DATA, KEY, num_train=3000) == dis.mig(
        identity, DATA, KEY, num_train=3000
    )


def test_sap_continuous_bounds_and_r_squared_closed_form():
    # sap_score_test (continuous factors, 3000 points): identity in [0.9, 1], constant and
    # duplicated in [0, 0.2].
    sizes = dict(num_train=3000, continuous_factors=True)
    recorder = Recorder(identity)
    got = dis.sap(recorder, DATA, KEY, **sizes)["sap"]
    assert 0.9 <= got <= 1.0
    assert dis.sap(constant, DATA, KEY, **sizes)["sap"] == 0.0
    assert 0.0 <= dis.sap(duplicated, DATA, KEY, **sizes)["sap"] <= 0.2
    # The score matrix is the squared correlation of each code with each factor.
    factors = recorder.factors
    squared = np.corrcoef(factors.T.astype(np.float64)) ** 2
    top = np.sort(squared, axis=0)
    assert_close(got, np.mean(top[-1] - top[-2]), ops=50, dtype=np.float64)


def test_sap_discrete_identity_above_duplicated_and_constant():
    # Linear SVMs on each code alone (disentanglement_lib's study setting), 4 factors to stay
    # fast: a duplicated code ties with its twin and a constant one with every other.
    data = IdentityData((10,) * 4)
    sizes = dict(num_train=300, num_test=300)
    assert dis.sap(identity, data, KEY, **sizes)["sap"] > 0.1
    assert dis.sap(duplicated, data, KEY, **sizes)["sap"] == 0.0
    assert dis.sap(constant, data, KEY, **sizes)["sap"] == 0.0


# dci_test's closed forms: (importance matrix, disentanglement, completeness).
DIAGONAL = np.diag(5.0 * np.ones(5))
IMPORTANCE_CASES = [
    (DIAGONAL, 1.0, 1.0),
    (np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), 1.0, 1.0),
    (np.zeros((10, 10)), 0.0, 0.0),
    (np.vstack([DIAGONAL, DIAGONAL]), 1.0, 1.0 - math.log(2) / math.log(10)),
    (DIAGONAL[:2, :], 1.0, 1.0),
    (np.hstack([DIAGONAL, DIAGONAL]), 1.0 - math.log(2) / math.log(10), 1.0),
]


@pytest.mark.parametrize(("matrix", "disentanglement", "completeness"), IMPORTANCE_CASES)
def test_dci_from_importance_closed_forms(matrix, disentanglement, completeness):
    got = dis.dci_from_importance(matrix)
    # float64; the 1e-11 smoothing inside the entropies moves them by ~1e-9.
    np.testing.assert_allclose(got, (disentanglement, completeness), atol=1e-7)


def test_dci_lasso_identity_near_one_shuffled_codes_near_zero():
    sizes = dict(num_train=500, num_test=500, importance="lasso")
    scores = dis.dci(identity, DATA, KEY, **sizes)
    assert 0.9 <= scores["dci_disentanglement"] <= 1.0
    assert 0.9 <= scores["dci_completeness"] <= 1.0
    assert scores["dci_informativeness"] == scores["dci_informativeness_test"] == 1.0
    bad = dis.dci(shuffled_per_example(), DATA, KEY, **sizes)
    assert 0.0 <= bad["dci_disentanglement"] <= 0.2
    assert 0.0 <= bad["dci_completeness"] <= 0.2
    mixed = dis.dci(rotated, DATA, KEY, **sizes)
    assert mixed["dci_disentanglement"] < 0.5
    assert mixed["dci_informativeness"] > 0.9  # a rotation loses no information


def test_dci_gradient_boosted_trees_identity_and_duplicated_codes():
    # dci_test with gradient-boosted trees, on 3 factors of 5 values to stay fast:
    # identity in [0.9, 1]; duplicated codes keep disentanglement in [0.9, 1] and split each
    # factor's importance over two codes, completeness 1 - log 2 / log(num_codes) +- 0.1.
    data = IdentityData((5, 5, 5))
    sizes = dict(num_train=200, num_test=200)
    scores = dis.dci(identity, data, KEY, **sizes)
    assert 0.9 <= scores["dci_disentanglement"] <= 1.0
    assert 0.9 <= scores["dci_completeness"] <= 1.0
    assert scores["dci_informativeness_train"] == 1.0
    twice = dis.dci(duplicated, data, KEY, **sizes)
    assert 0.9 <= twice["dci_disentanglement"] <= 1.0
    assert abs(twice["dci_completeness"] - (1 - math.log(2) / math.log(6))) <= 0.1


# modularity_explicitness_test's closed forms: (mutual information, modularity).
MODULARITY_CASES = [
    (DIAGONAL, 1.0),
    (np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), 2.0 / 3.0),
    (np.zeros((10, 10)), 0.0),
    (np.vstack([DIAGONAL, DIAGONAL]), 1.0),
    (DIAGONAL[:2, :], 1.0),
    (np.hstack([DIAGONAL, DIAGONAL]), 1.0 - 1.0 / 9.0),
]


@pytest.mark.parametrize(("information", "modularity"), MODULARITY_CASES)
def test_modularity_score_closed_forms(information, modularity):
    assert_close(dis.modularity_score(information), modularity, ops=20, dtype=np.float64)


def test_modularity_explicitness_bounds():
    # modularity_explicitness_test: identity and duplicated in [0.9, 1].
    sizes = dict(num_train=600, num_test=400)
    scores = dis.modularity_explicitness(identity, DATA, KEY, **sizes)
    assert 0.9 <= scores["modularity"] <= 1.0
    assert scores["explicitness"] == scores["explicitness_test"] > 0.9
    assert 0.9 <= dis.modularity_explicitness(duplicated, DATA, KEY, **sizes)["modularity"] <= 1.0
    # A constant code predicts every class with the same probability: ROC-AUC 1/2 exactly.
    flat = dis.modularity_explicitness(constant, DATA, KEY, **sizes)
    assert flat["modularity"] == 0.0
    assert flat["explicitness_train"] == flat["explicitness_test"] == 0.5


def test_modularity_of_codes_shuffled_per_example_is_low():
    # modularity_explicitness_test: codes shuffled per example, 20000 points, in [0, 0.2];
    # the metric's modularity is modularity_score of this matrix (the classifiers skipped).
    factors = np.random.default_rng(5).integers(0, 10, size=(20_000, 10))
    codes = shuffled_per_example()(factors)
    information = dis.mutual_information_matrix(codes, factors)
    assert 0.0 <= dis.modularity_score(information) <= 0.2


def _numpy_bins(codes, num_bins):
    """disentanglement_lib's discretizer in float64 NumPy, from 0."""
    return np.stack(
        [np.digitize(c, np.histogram(c, num_bins)[1][:-1]) - 1 for c in codes.T], axis=1
    )


@pytest.mark.numerics
def test_histogram_bins_match_numpy_and_disentanglement_lib():
    # utils_test: [[0.1 .. 0.6], [0.6 .. 0.1]] in 3 bins are [[1,1,2,2,3,3],[3,3,2,2,1,1]] (from 1).
    target = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.6, 0.5, 0.4, 0.3, 0.2, 0.1]])
    want = np.array([[1, 1, 2, 2, 3, 3], [3, 3, 2, 2, 1, 1]]) - 1
    assert_bitwise(dis.histogram_discretize(target.T, num_bins=3), want.T)
    codes = np.random.default_rng(3).normal(size=(2000, 4)) * [1.0, 10.0, 0.1, 3.0]
    codes[:, 3] = 7.0  # a constant code: one bin
    bins = dis.histogram_discretize(codes.astype(np.float32))
    reference = _numpy_bins(codes.astype(np.float32).astype(np.float64), 20)
    # float32 edges differ from float64 ones by round-off: only codes that close may differ.
    span = codes.max(0) - codes.min(0)
    edges = codes.min(0) + span * np.arange(21)[:, None] / 20
    distance = np.min(np.abs(codes[None] - edges[:, None]), axis=0)
    near_edge = distance <= 1e-5 * np.maximum(span, 1.0)
    assert_bitwise(bins[~near_edge], reference[~near_edge])
    assert bins.min() == 0 and bins[:, :3].max() == 19 and np.all(bins[:, 3] == bins[0, 3])


@pytest.mark.numerics
def test_mutual_information_matrix_matches_numpy_histograms_and_sklearn():
    rng = np.random.default_rng(4)
    factors = rng.integers(0, [3, 5, 8], size=(3000, 3))
    codes = np.stack(
        [
            factors[:, 0] + 0.1 * rng.normal(size=3000),
            factors[:, 1] * factors[:, 2],
            rng.normal(size=3000),
        ],
        axis=1,
    ).astype(np.float32)
    got = dis.mutual_information_matrix(codes, factors + 7)  # any integer labels
    bins = _numpy_bins(codes.astype(np.float64), 20)
    want = np.array(
        [[mutual_info_score(factors[:, k], bins[:, j]) for k in range(3)] for j in range(3)]
    )
    # Summed over 20 x 8 cells, float32 logarithms of probabilities >= 1/3000.
    assert_close(got, want, ops=20 * 8, scale=math.log(3000))
    # utils_test: the discrete information of two labellings, log 2 on the diagonal.
    xs = np.array([[1, 2, 1, 2], [1, 1, 2, 2]]).T
    ys = np.array([[1, 2, 1, 2], [2, 2, 1, 1]]).T
    assert_close(
        dis.mutual_information_matrix(xs, ys, num_bins=2), np.diag([math.log(2)] * 2), ops=8
    )


def test_evaluate_all_is_deterministic_and_keys_each_metric_by_its_place():
    options = {"dci": {"importance": "lasso"}, "sap": {"continuous_factors": True}}
    run = dict(scale=0.03, metrics=("factor_vae_score", "mig", "sap", "dci"), options=options)
    first = dis.evaluate_all(identity, DATA, KEY, **run)
    assert set(first) == {
        "factor_vae_score", "factor_vae_train_accuracy", "factor_vae_eval_accuracy",
        "factor_vae_num_active_dims", "mig", "sap", "dci_disentanglement", "dci_completeness",
        "dci_informativeness", "dci_informativeness_train", "dci_informativeness_test",
    }  # fmt: skip
    assert dis.evaluate_all(identity, DATA, KEY, **run) == first
    other = dis.evaluate_all(rotated, DATA, jax.random.key(1), **run)
    assert other != dis.evaluate_all(rotated, DATA, KEY, **run)
    # mig is metric 2 of 6 and runs with 3% of 10000 points whichever others run.
    alone = dis.evaluate_all(identity, DATA, KEY, scale=0.03, metrics=("mig",))
    key = jax.random.split(KEY, 6)[2]
    assert alone == {"mig": first["mig"]} == dis.mig(identity, DATA, key, num_train=300)


class _WrongFactorShape(IdentityData):
    def sample_factors(self, key, n):
        return super().sample_factors(key, n)[:, :9]


class _OutOfRange(IdentityData):
    def sample_factors(self, key, n):
        return super().sample_factors(key, n) + 1


class _OneValue(IdentityData):
    def sample_factors(self, key, n):
        factors = super().sample_factors(key, n)
        factors[:, 2] = 4
        return factors


class _NotData:
    factors_num_values = (10,) * 10

    def sample_factors(self, key, n):
        return np.zeros((n, 10), int)


def _growing():
    calls = []

    def fn(x):
        calls.append(1)
        return identity(x)[:, : 9 + len(calls) % 2]

    return fn


ERRORS = [
    (lambda: dis.mig(lambda x: identity(x)[:-1], DATA, KEY, num_train=40), ValueError,
     r"one row of codes per observation: given 40 observations it returned shape \(39, 10\)"),
    (lambda: dis.mig(lambda x: identity(x)[:, 0], DATA, KEY, num_train=40), ValueError,
     r"must have shape \(batch, num_codes\), got shape \(40,\)"),
    (lambda: dis.mig(_growing(), DATA, KEY, num_train=40, batch_size=16), ValueError,
     "the same number of codes for every batch"),
    (lambda: dis.mig(lambda x: identity(x) * np.nan, DATA, KEY, num_train=40), ValueError,
     "NaN"),
    (lambda: dis.mig(identity, _WrongFactorShape(), KEY, num_train=40), ValueError,
     r"sample_factors\(key, 40\) must return shape \(n, num_factors\) = \(40, 10\), got shape "
     r"\(40, 9\)"),
    (lambda: dis.mig(identity, _OutOfRange(), KEY, num_train=40), ValueError,
     r"factor 0 in \[0, 10\)"),
    (lambda: dis.mig(identity, _OneValue(), KEY, num_train=40), ValueError,
     "factor 2 took a single value in the 40 points drawn"),
    (lambda: dis.mig(identity, _NotData(), KEY), TypeError,
     "without num_factors, sample_observations_from_factors"),
    (lambda: dis.mig(identity, IdentityData((10, 1)), KEY), ValueError,
     r"factors_num_values\[1\] must be >= 2"),
    (lambda: dis.mig("encoder", DATA, KEY), TypeError, "representation_fn must be a function"),
    (lambda: dis.mig(identity, DATA, 0), TypeError, "key must be a jax.random.key"),
    (lambda: dis.mig(lambda x: identity(x)[:, :1], DATA, KEY, num_train=40), ValueError,
     "at least 2 codes"),
    (lambda: dis.dci(identity, DATA, KEY, importance="forest"), ValueError,
     r"importance must be one of \('gbt', 'lasso'\)"),
    (lambda: dis.factor_vae_score(identity, DATA, KEY, points_per_sample=1), ValueError,
     "points_per_sample must be >= 2"),
    (lambda: dis.evaluate_all(identity, DATA, KEY, metrics=("mig", "irs")), ValueError,
     "metrics must be one of"),
    (lambda: dis.evaluate_all(identity, DATA, KEY, metrics=("mig",), options={"dci": {}}),
     ValueError, "options names a metric that does not run: 'dci'"),
    (lambda: dis.mutual_information_matrix(np.zeros((5, 2)), np.zeros((4, 2), int)), ValueError,
     r"factors must have one row per row of codes \(5\)"),
    (lambda: dis.dci_from_importance(np.ones((1, 3))), ValueError, "at least 2 codes and 2"),
    (lambda: dis.gaussian_total_correlation(np.ones((2, 3))), ValueError,
     r"symmetric \(d, d\) matrix, got shape \(2, 3\)"),
    (lambda: dis.gaussian_total_correlation(np.ones((2, 2))), ValueError, "positive definite"),
    (lambda: dis.gaussian_wasserstein_correlation(np.diag([1.0, 0.0])), ValueError,
     "positive diagonal"),
    (lambda: dis.unsupervised_scores(lambda x: identity(x)[:, :1], DATA, KEY, num_train=40),
     ValueError, "at least 2 codes"),
]  # fmt: skip


def _spd(d, seed):
    a = np.random.default_rng(seed).normal(size=(d, d))
    return a @ a.T + 0.5 * np.eye(d)


def test_gaussian_total_correlation_is_the_kl_from_the_product_of_marginals():
    assert dis.gaussian_total_correlation(np.diag([0.5, 2.0, 9.0])) == pytest.approx(0.0, abs=1e-12)
    rho = 0.8
    two = np.array([[4.0, rho * 6.0], [rho * 6.0, 9.0]])
    assert dis.gaussian_total_correlation(two) == pytest.approx(-0.5 * math.log(1 - rho**2))
    cov = _spd(5, 3)
    product = np.diag(np.diag(cov))
    # KL(N(0, cov) || N(0, product)) by its textbook formula, with inverse and determinants.
    kl = 0.5 * (
        np.trace(np.linalg.inv(product) @ cov)
        - 5
        + math.log(np.linalg.det(product) / np.linalg.det(cov))
    )
    assert dis.gaussian_total_correlation(cov) == pytest.approx(kl, rel=1e-9)


def test_gaussian_wasserstein_correlation_matches_the_symmetric_closed_form():
    assert dis.gaussian_wasserstein_correlation(np.diag([1.0, 3.0])) == pytest.approx(0.0, abs=1e-9)
    cov = _spd(4, 5)
    # W2^2(N(0, S), N(0, D)) = tr S + tr D - 2 tr (D^1/2 S D^1/2)^1/2, through eigenvalues.
    half = np.diag(np.sqrt(np.diag(cov)))
    eigenvalues = np.linalg.eigvalsh(half @ cov @ half)
    want = 2 * np.trace(cov) - 2 * np.sum(np.sqrt(eigenvalues))
    assert dis.gaussian_wasserstein_correlation(cov) == pytest.approx(want, rel=1e-7)


def test_unsupervised_scores_zero_for_independent_codes_closed_form_for_mixed_ones():
    independent = dis.unsupervised_scores(identity, DATA, KEY, num_train=4000)
    # The sample covariance of independent factors: TC ~ d(d-1)/4n nats of estimation bias.
    assert 0.0 <= independent["gaussian_total_correlation"] < 0.02
    assert independent["num_collapsed_codes"] == 0.0
    mixing = np.eye(10) + 0.6 * np.eye(10, k=1)
    mixed = dis.unsupervised_scores(lambda x: identity(x) @ mixing, DATA, KEY, num_train=4000)
    want = dis.gaussian_total_correlation(mixing.T @ mixing)
    assert mixed["gaussian_total_correlation"] == pytest.approx(want, rel=0.1)
    assert (
        mixed["gaussian_wasserstein_correlation"] > independent["gaussian_wasserstein_correlation"]
    )
    # Neighbouring codes share a factor: their discretized information is far above the bias.
    assert mixed["mutual_info_score"] > 2 * independent["mutual_info_score"]
    # Collapsed codes (a constant one, one of tiny variance tied to a factor, which makes the
    # covariance singular to round-off) are left out of the Gaussian scores and counted.
    padded = dis.unsupervised_scores(
        lambda x: np.hstack(
            [identity(x) @ mixing, np.zeros((len(x), 1)), 1e-9 * identity(x)[:, :1]]
        ),
        DATA,
        KEY,
        num_train=4000,
    )
    assert padded["num_collapsed_codes"] == 2.0
    assert padded["gaussian_total_correlation"] == pytest.approx(
        mixed["gaussian_total_correlation"], rel=1e-9
    )


@pytest.mark.parametrize(("call", "error", "message"), ERRORS)
def test_errors_name_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_models_stopped_at_their_iteration_limit_are_kept_and_counted(caplog):
    """The classifiers' fixed budgets are part of the metrics: no ConvergenceWarning escapes
    (this suite turns warnings into errors), the count goes to the log."""
    x = np.random.default_rng(6).normal(size=(200, 3))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    fitter = Fitter("test")
    with caplog.at_level(logging.INFO, logger="latent_jax.disentanglement.classifiers"):
        fitter.fit(LogisticRegression(max_iter=1), x, y)
        fitter.fit(LogisticRegression(), x, y)
        fitter.report()
    assert (fitter.fitted, fitter.unconverged) == (2, 1)
    assert "test: 1 of 2 scikit-learn models stopped at their iteration limit" in caplog.text


@pytest.mark.slow
def test_every_metric_at_disentanglement_libs_sample_sizes():
    """The whole suite at its default sizes (gradient-boosted DCI included): minutes."""
    scores = dis.evaluate_all(identity, DATA, KEY)
    for name in ("beta_vae_score", "factor_vae_score", "mig", "dci_disentanglement",
                 "dci_completeness", "modularity", "explicitness"):  # fmt: skip
        assert 0.9 <= scores[name] <= 1.0, name
    assert scores["dci_informativeness"] == 1.0
    assert scores["factor_vae_num_active_dims"] == 10
