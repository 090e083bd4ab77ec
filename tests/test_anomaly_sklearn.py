"""AnomalyDetector as a scikit-learn estimator with PyOD's API: scikit-learn's own checks,
pipelines and model selection, score orientation, PyOD's attributes and probabilities, the
default number of PCA components, deprecated names and checkpoints of the previous version."""

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from numerics import assert_bitwise, assert_close
from sklearn.base import clone
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from latent_jax.anomaly import AnomalyDetector, NoResidualWarning
from latent_jax.runs import checkpoint as ckpt

FIXTURES = Path(__file__).parent / "fixtures" / "anomaly_v1"

# scikit-learn's outlier detectors label inliers 1 and outliers -1; PyOD's (and this) 1 and 0.
LABEL_CONVENTION = "PyOD's labels (1 = anomaly, 0 = normal), not scikit-learn's -1/1"


def _expected_failed_checks(estimator):
    del estimator
    return {
        "check_outliers_train": LABEL_CONVENTION,
        "check_outliers_fit_predict": LABEL_CONVENTION,
    }


@parametrize_with_checks(
    [AnomalyDetector("pca"), AnomalyDetector("ppca", statistic=None)],
    expected_failed_checks=_expected_failed_checks,
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


# Every other method, in the slow suite: fa and robust-pca take 5-7 s, the trained methods
# (networks small enough for the checks' many fits) about 45 s each.
TINY = {"epochs": 1, "hidden_dims": (8,), "latent_dim": 2, "channels": (2,)}


@pytest.mark.slow
@parametrize_with_checks(
    [
        AnomalyDetector("fa"),
        AnomalyDetector("robust-pca"),
        AnomalyDetector("autoencoder", **TINY),
        AnomalyDetector("vae", n_samples=2, **TINY),
        AnomalyDetector("deep-svdd", **TINY),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_scikit_learn_estimator_checks_of_the_other_methods(estimator, check):
    check(estimator)


def test_a_trained_methods_score_does_not_depend_on_the_other_rows():
    # scikit-learn's check_methods_subset_invariance, at the sizes that broke it: XLA's
    # round-off changes with the batch's shape unless every block has the same one.
    x = np.random.default_rng(0).normal(size=(40, 5)).astype(np.float32)
    detector = AnomalyDetector("autoencoder", **TINY).fit(x)
    whole = detector.decision_function(x)
    parts = np.concatenate([detector.decision_function(x[i : i + 7]) for i in range(0, 40, 7)])
    assert_bitwise(parts, whole)


def _labelled(seed=0, n_normal=240, n_anomalous=24, d=6, rank=2, offset=3.0):
    """Normal rows near a ``rank``-dimensional subspace of ``d``; anomalies ``offset`` off it."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(np.random.default_rng(7).normal(size=(d, d)))[0]
    normal = rng.normal(size=(n_normal, rank)) @ basis[:, :rank].T
    normal += 0.05 * rng.normal(size=normal.shape)
    off = rng.normal(size=(n_anomalous, d - rank))
    anomalous = rng.normal(size=(n_anomalous, rank)) @ basis[:, :rank].T
    anomalous += offset * (off / np.linalg.norm(off, axis=1, keepdims=True)) @ basis[:, rank:].T
    x = np.concatenate([normal, anomalous])
    y = np.r_[np.zeros(n_normal), np.ones(n_anomalous)].astype(int)
    order = rng.permutation(len(x))
    return x[order], y[order]


X, Y = _labelled()
X_TEST, Y_TEST = _labelled(seed=1)


def test_pipeline_grid_search_over_contamination_and_n_components():
    # 9% anomalies, 2 off a 3-D subspace of 8 features (training data contaminated).
    x, y = _labelled(d=8, rank=3, offset=2.0)
    detector = AnomalyDetector("pca", statistic="reconstruction", scaling="none")
    pipeline = make_pipeline(StandardScaler(), detector)
    grid = {
        "anomalydetector__contamination": [0.02, 0.1, 0.3],
        "anomalydetector__n_components": [1, 3, 6],
    }
    cv = KFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(pipeline, grid, scoring="f1", cv=cv).fit(x, y)
    assert search.best_params_ == {
        "anomalydetector__contamination": 0.1,
        "anomalydetector__n_components": 3,
    }
    assert search.best_score_ > 0.9
    assert search.best_estimator_[-1].n_components_ == 3
    x_test, y_test = _labelled(seed=1, d=8, rank=3, offset=2.0)
    assert roc_auc_score(y_test, search.decision_function(x_test)) > 0.99


def test_cross_val_score_and_pipeline_predict():
    cv = KFold(3, shuffle=True, random_state=0)
    scores = cross_val_score(
        AnomalyDetector("ppca", n_components=2), X, Y, scoring="roc_auc", cv=cv
    )
    assert scores.shape == (3,) and scores.min() > 0.95
    pipeline = make_pipeline(StandardScaler(), AnomalyDetector("pca", n_components=2)).fit(X)
    assert pipeline.predict(X_TEST).shape == (len(X_TEST),)


def _auroc_through_scikit_learns_convention(estimator):
    """The AUROC of scikit-learn's idiom: ``-score_samples`` is the anomaly score."""
    estimator.fit(X[Y == 0])
    return roc_auc_score(Y_TEST, -estimator.score_samples(X_TEST))


def test_score_samples_has_scikit_learns_orientation():
    forest = _auroc_through_scikit_learns_convention(IsolationForest(random_state=0))
    for method in ("pca", "ppca"):
        ours = _auroc_through_scikit_learns_convention(AnomalyDetector(method, n_components=2))
        # The same code, the same orientation: both well above chance, none flipped to ~0.
        assert forest > 0.9 and ours > 0.99, (method, forest, ours)
    # PyOD's decision_function is the anomaly score itself.
    detector = AnomalyDetector("pca", n_components=2).fit(X[Y == 0])
    assert roc_auc_score(Y_TEST, detector.decision_function(X_TEST)) > 0.99
    assert_bitwise(detector.score_samples(X_TEST), -detector.decision_function(X_TEST))


def test_clone_and_get_params_round_trip():
    detector = AnomalyDetector(
        "vae", 0.05, n_components=3, statistic="reconstruction_probability", hidden_dims=(8, 4)
    )
    params = detector.get_params()
    assert params["contamination"] == 0.05 and params["hidden_dims"] == (8, 4)
    assert params["statistic"] == "reconstruction_probability"
    twin = clone(detector)
    assert twin is not detector and twin.get_params() == params
    assert AnomalyDetector(**params).get_params() == params
    twin.set_params(method="pca", n_components=2, statistic="hotelling")
    assert twin.get_params()["method"] == "pca" and detector.method == "vae"
    # Stored as given, validated in fit.
    odd = AnomalyDetector("svm", contamination=2.0, hidden_dims=[3])
    assert odd.method == "svm" and odd.contamination == 2.0 and odd.hidden_dims == [3]
    with pytest.raises(ValueError, match="method must be one of"):
        odd.fit(X)
    fitted = AnomalyDetector("pca", n_components=2).fit(X)
    assert clone(fitted).get_params() == fitted.get_params()
    assert not hasattr(clone(fitted), "threshold_")


def test_pyod_attributes_fit_predict_and_predict_proba():
    detector = AnomalyDetector("pca", 0.1, n_components=2)
    labels = detector.fit_predict(X)
    np.testing.assert_array_equal(labels, detector.labels_)
    np.testing.assert_array_equal(labels, detector.predict(X))
    # fit scored the training rows with the program decision_function runs on them.
    assert_bitwise(detector.decision_scores_, detector.decision_function(X))
    assert detector.threshold_ == pytest.approx(np.quantile(detector.decision_scores_, 0.9))
    assert abs(labels.mean() - 0.1) <= 1 / len(X)
    scores = detector.decision_function(X_TEST)
    for method in ("linear", "unify"):
        proba = detector.predict_proba(X_TEST, method=method)
        assert proba.shape == (len(X_TEST), 2) and proba.dtype == np.float64
        assert proba.min() >= 0.0 and proba.max() <= 1.0
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        # Monotone in the anomaly score: the rank of P(anomaly) never contradicts it.
        order = np.argsort(scores)
        assert np.all(np.diff(proba[order, 1]) >= 0)
    train = detector.predict_proba(X)[:, 1]
    assert train.min() == 0.0 and train.max() == 1.0  # linear: the training range to [0, 1]
    train = detector.decision_scores_
    expected = (scores - train.min()) / np.ptp(train)
    np.testing.assert_allclose(detector.predict_proba(X_TEST)[:, 1], np.clip(expected, 0, 1))
    with pytest.raises(ValueError, match="method must be one of"):
        detector.predict_proba(X_TEST, method="softmax")


@pytest.mark.parametrize("d", [3, 5])
def test_default_components_leave_a_residual_on_low_dimensional_data(d):
    x = np.random.default_rng(d).normal(size=(400, d)) * np.arange(1, d + 1)
    detector = AnomalyDetector("pca").fit(x)  # no warning: filterwarnings = error
    # Independent standardized features: 90% of the variance needs all d; one is left over.
    assert detector.n_components_ == d - 1
    # The reconstruction error is the residual direction's variance, not round-off.
    assert np.median(detector.decision_scores_) > 0.1
    labels = [detector.predict(x[i : i + 50]) for i in range(0, len(x), 50)]
    np.testing.assert_array_equal(np.concatenate(labels), detector.labels_)
    assert AnomalyDetector("ppca").fit(x).n_components_ == d - 1


def test_default_components_warn_when_the_data_leave_no_residual():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 300, 1))
    # Rank 2 in 3 features: one component, one real residual direction, no warning.
    assert (
        AnomalyDetector("pca", statistic="reconstruction")
        .fit(np.hstack([a, b, a + b]))
        .n_components_
        == 1
    )
    # Rank 1: nothing varies outside the first component.
    with pytest.warns(NoResidualWarning, match=r"vary in 1 direction\(s\) only"):
        AnomalyDetector("pca", statistic="reconstruction").fit(np.hstack([a, 2 * a, -a]))
    # Explicit choices that keep every direction warn too; Hotelling's T^2 needs no residual.
    x = rng.normal(size=(300, 3))
    with pytest.warns(NoResidualWarning, match="n_components=3 keeps 3"):
        AnomalyDetector("pca", n_components=3, statistic="reconstruction").fit(x)
    with pytest.warns(NoResidualWarning, match="n_components=0.99"):
        AnomalyDetector("pca", n_components=0.99, statistic="reconstruction").fit(x)
    AnomalyDetector("pca", n_components=3, statistic="hotelling").fit(x)
    # The default Mahalanobis distance weighs every direction: nothing to warn about.
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoResidualWarning)
        AnomalyDetector("pca").fit(np.hstack([a, 2 * a, -a]))


def test_deprecated_names_still_work():
    with pytest.warns(DeprecationWarning, match=r"score=\.\.\.\) is deprecated.*statistic"):
        detector = AnomalyDetector("pca", n_components=2, score="hotelling")
    assert detector.get_params()["statistic"] == "hotelling"
    detector.fit(X)
    with pytest.warns(DeprecationWarning, match="training_scores_ is deprecated"):
        assert_bitwise(detector.training_scores_, detector.decision_scores_)
    with pytest.warns(DeprecationWarning, match="options is deprecated"):
        assert detector.options == detector.options_
    assert detector.options_["statistic"] == "hotelling"
    with pytest.raises(TypeError, match="both statistic and its old name score"):
        AnomalyDetector(score="elbo", statistic="elbo")


@pytest.mark.numerics
@pytest.mark.parametrize("name", ["pca", "ppca", "autoencoder"])
def test_checkpoints_of_the_previous_version_load(name):
    x = np.load(FIXTURES / "x.npy")
    old_scores = np.load(FIXTURES / f"{name}_scores.npy")  # the old score_samples: anomaly
    detector = AnomalyDetector.load(FIXTURES / name)
    # Scored by the previous version's programs. ops, the longest chain of the three: the
    # autoencoder's standardization 1, Dense(6 -> 4) 7, LeakyReLU 1, Dense(4 -> 2) 5,
    # Dense(2 -> 4) 3, LeakyReLU 1, Dense(4 -> 6) 5, the squared error's mean over 6 features 8.
    assert_close(detector.decision_function(x), old_scores, ops=31)
    assert detector.labels_.shape == detector.decision_scores_.shape
    if name == "pca":
        assert detector.statistic == "hotelling" and detector.n_components == 2
    if name == "ppca":
        assert detector.contamination == 0.2 and detector.statistic is None


def test_unreadable_checkpoints_name_the_file(tmp_path):
    manifest = AnomalyDetector("pca", n_components=2).fit(X).save(tmp_path / "new")
    loaded = ckpt.load_checkpoint(manifest)
    newer = ckpt.save_checkpoint(
        tmp_path / "newer", loaded.tree, epoch=0, metadata={**loaded.metadata, "version": 99}
    )
    with pytest.raises(ckpt.CheckpointError, match=r"newer.*format version 99.*upgrade"):
        AnomalyDetector.load(newer)
    # An old checkpoint whose options this version does not know: named, not a TypeError.
    old = shutil.copytree(FIXTURES / "pca", tmp_path / "old")
    manifest = next(Path(old).glob("checkpoint_*.json"))
    meta = json.loads(manifest.read_text())
    meta["metadata"]["options"]["dropout"] = 0.5
    manifest.write_text(json.dumps(meta))
    with pytest.raises(ckpt.CheckpointError, match=r"old.*holds no AnomalyDetector.*dropout"):
        AnomalyDetector.load(old)
