"""AnomalyDetector: thresholds, planted outliers, agreement with scikit-learn, persistence,
errors; the anomaly-detection experiment end to end."""

import json

import jax
import numpy as np
import pytest
from cli_checks import assert_config_round_trips
from numerics import assert_bitwise, assert_close, assert_trees_bitwise
from PIL import Image
from sklearn.covariance import LedoitWolf
from sklearn.decomposition import PCA as SkPCA
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import StandardScaler

from latent_jax import cli, load_run
from latent_jax import data as data_lib
from latent_jax import linear as pca_lib
from latent_jax.anomaly import AnomalyDetector, NoResidualWarning
from latent_jax.data import images as image_data
from latent_jax.experiments import anomaly as anomaly_experiment
from latent_jax.models.mlp import Autoencoder
from latent_jax.objectives import autoencoder_objective
from latent_jax.runs import checkpoint as ckpt
from latent_jax.train import TrainConfig, fit

N_FEATURES = 8
FAST = {"epochs": 40, "batch_size": 64, "hidden_dims": (16,), "latent_dim": 2}


def _synthetic(seed=0, n=256, n_outliers=20):
    """Inliers near a 2-D plane in 8 dimensions; outliers pushed far off it."""
    basis = np.linalg.qr(np.random.default_rng(42).normal(size=(N_FEATURES, N_FEATURES)))[0]
    rng = np.random.default_rng(seed)
    plane, normal = basis[:, :2], basis[:, 2:]
    inliers = rng.normal(size=(n, 2)) @ plane.T + 0.05 * rng.normal(size=(n, N_FEATURES))
    codes = rng.normal(size=(n_outliers, 2)) @ plane.T
    off = rng.normal(size=(n_outliers, N_FEATURES - 2))
    off = 4.0 * off / np.linalg.norm(off, axis=1, keepdims=True)
    outliers = codes + off @ normal.T
    return inliers.astype(np.float32), outliers.astype(np.float32)


INLIERS, OUTLIERS = _synthetic()
TEST_INLIERS, _ = _synthetic(seed=1)


@pytest.fixture(scope="module")
def fitted():
    detectors = {
        "pca": AnomalyDetector("pca", n_components=2, statistic="reconstruction").fit(INLIERS),
        "ppca": AnomalyDetector("ppca", n_components=2).fit(INLIERS),
        "autoencoder": AnomalyDetector("autoencoder", **FAST).fit(INLIERS),
        "vae": AnomalyDetector("vae", obs_logvar=-2.0, **FAST).fit(INLIERS),
    }
    detectors["vae-recprob"] = detectors["vae"].rescored("reconstruction_probability")
    detectors["pca-hotelling"] = detectors["pca"].rescored("hotelling")
    assert detectors["pca-hotelling"].statistic == "hotelling"
    detectors["pca-mahalanobis"] = detectors["pca"].rescored("mahalanobis")
    return detectors


@pytest.mark.parametrize(
    "name", ["pca", "pca-mahalanobis", "ppca", "autoencoder", "vae", "vae-recprob"]
)
def test_planted_outliers_score_higher_than_inliers(fitted, name):
    detector = fitted[name]
    inlier_scores = detector.decision_function(TEST_INLIERS)
    outlier_scores = detector.decision_function(OUTLIERS)
    assert inlier_scores.shape == (len(TEST_INLIERS),)
    # Every planted outlier above the 95th percentile of held-out inliers.
    assert outlier_scores.min() > np.quantile(inlier_scores, 0.95)
    assert np.all(detector.predict(OUTLIERS) == 1)


@pytest.mark.parametrize(
    "name", ["pca", "pca-mahalanobis", "ppca", "autoencoder", "vae", "vae-recprob"]
)
def test_predict_marks_the_contamination_fraction_of_the_training_data(fitted, name):
    detector = fitted[name]
    labels = detector.predict(INLIERS)
    assert set(np.unique(labels)) <= {0, 1} and labels.dtype == np.int64
    # Linear-interpolated quantile: within one row of the requested fraction.
    assert abs(labels.mean() - 0.1) <= 1.0 / len(INLIERS)
    # fit scored the training rows with the program decision_function runs on them.
    assert_bitwise(detector.decision_scores_, detector.decision_function(INLIERS))
    np.testing.assert_array_equal(detector.labels_, labels)
    assert_bitwise(detector.score_samples(INLIERS), -detector.decision_scores_)


@pytest.mark.parametrize("contamination", [0.01, 0.05, 0.25, 0.5])
def test_contamination_sets_the_quantile(contamination):
    detector = AnomalyDetector("pca", contamination, n_components=2).fit(INLIERS)
    assert abs(detector.predict(INLIERS).mean() - contamination) <= 1.0 / len(INLIERS)
    assert detector.threshold_ == pytest.approx(
        np.quantile(detector.decision_scores_, 1 - contamination)
    )


def test_explicit_threshold_and_decision_function():
    detector = AnomalyDetector("pca", threshold=0.05, n_components=2).fit(INLIERS)
    assert detector.threshold_ == 0.05
    x = np.concatenate([TEST_INLIERS, OUTLIERS])
    scores = detector.decision_function(x)
    assert_bitwise(detector.score_samples(x), -scores)
    np.testing.assert_array_equal(detector.predict(x), (scores > 0.05).astype(int))
    assert AnomalyDetector("pca", None, threshold=1.0).threshold == 1.0


def test_pca_scores_agree_with_scikit_learn():
    detector = AnomalyDetector("pca", n_components=3, statistic="reconstruction").fit(INLIERS)
    scaler = StandardScaler().fit(INLIERS)
    reference = SkPCA(3).fit(scaler.transform(INLIERS))
    z = scaler.transform(OUTLIERS)
    expected = np.sum((z - reference.inverse_transform(reference.transform(z))) ** 2, axis=1)
    np.testing.assert_allclose(detector.decision_function(OUTLIERS), expected, rtol=1e-4)


@pytest.mark.parametrize("shape", [(300, 12), (40, 60)])
def test_default_pca_score_is_the_ledoit_wolf_mahalanobis_distance(shape):
    # More rows than features (every direction spanned), and fewer (the complement of the
    # rows' span weighted by 1 / (alpha * mu)).
    rng = np.random.default_rng(4)
    mixing = rng.normal(size=(shape[1], shape[1])) * np.linspace(2.0, 0.1, shape[1])
    x = rng.normal(size=shape) @ mixing
    test = rng.normal(size=(25, shape[1])) @ mixing + rng.normal(size=(25, shape[1]))
    detector = AnomalyDetector("pca").fit(x)
    assert detector.options_["statistic"] == "mahalanobis"
    scaler = StandardScaler().fit(x)
    reference = LedoitWolf().fit(scaler.transform(x))
    np.testing.assert_allclose(detector.backend_.shrinkage, reference.shrinkage_, rtol=1e-5)
    expected = reference.mahalanobis(scaler.transform(test))
    np.testing.assert_allclose(detector.decision_function(test), expected, rtol=1e-4)


def test_hotelling_score_is_the_mahalanobis_distance_in_the_principal_subspace():
    detector = AnomalyDetector("pca", n_components=2, statistic="hotelling").fit(INLIERS)
    scaler = StandardScaler().fit(INLIERS)
    reference = SkPCA(2).fit(scaler.transform(INLIERS))
    z = reference.transform(scaler.transform(OUTLIERS))
    expected = np.sum(z**2 / reference.explained_variance_, axis=1)
    np.testing.assert_allclose(detector.decision_function(OUTLIERS), expected, rtol=1e-4)


def test_hotelling_flags_what_the_reconstruction_error_misses(fitted):
    # Points on the normal plane but far out along it: reconstructed perfectly, unusual codes.
    rng = np.random.default_rng(5)
    far = 6.0 * (TEST_INLIERS[:20] / np.linalg.norm(TEST_INLIERS[:20], axis=1, keepdims=True))
    far = far + 0.05 * rng.normal(size=far.shape).astype(np.float32)
    for name, flags in (("pca-hotelling", True), ("pca", False)):
        inlier_scores = fitted[name].decision_function(TEST_INLIERS)
        far_scores = fitted[name].decision_function(far)
        assert (far_scores.min() > np.quantile(inlier_scores, 0.95)) == flags, name


def test_kaiser_rule_keeps_the_eigenvalues_above_their_mean():
    x = np.random.default_rng(3).normal(size=(300, 12)) * np.linspace(3, 0.2, 12)
    detector = AnomalyDetector("pca", n_components="kaiser").fit(x)
    variances = SkPCA().fit(StandardScaler().fit_transform(x)).explained_variance_
    assert detector.n_components_ == int(np.sum(variances > variances.mean()))
    assert 1 <= detector.n_components_ < 12
    # Fewer rows than features: the average is over the n - 1 non-zero eigenvalues, not over
    # d values of which d - n + 1 are zero whatever the data.
    wide = np.random.default_rng(4).normal(size=(20, 50)) * np.linspace(3, 0.2, 50)
    detector = AnomalyDetector("pca", n_components="kaiser").fit(wide)
    variances = SkPCA().fit(StandardScaler().fit_transform(wide)).explained_variance_[:19]
    assert detector.n_components_ == int(np.sum(variances > variances.mean()))


def test_variance_fraction_picks_the_components_scikit_learn_picks():
    x = np.random.default_rng(3).normal(size=(300, 12)) * np.linspace(3, 0.2, 12)
    for fraction in (0.5, 0.8, 0.95):
        detector = AnomalyDetector("pca", n_components=fraction, statistic="reconstruction")
        reference = SkPCA(fraction).fit(StandardScaler().fit_transform(x))
        if reference.n_components_ < 12:
            detector.fit(x)
        else:  # the 12 standardized features are independent: 95% needs all of them
            with pytest.warns(NoResidualWarning, match="no residual subspace"):
                detector.fit(x)
        assert detector.n_components_ == reference.n_components_


def test_ppca_score_is_the_negative_closed_form_log_likelihood():
    detector = AnomalyDetector("ppca", n_components=2, scaling="none").fit(INLIERS)
    state = pca_lib.fit_ppca(INLIERS, 2)
    expected = -np.asarray(pca_lib.ppca_log_likelihood(state, OUTLIERS))
    np.testing.assert_allclose(detector.decision_function(OUTLIERS), expected, rtol=1e-5)


def test_reconstruction_probability_is_below_the_negative_elbo(fitted):
    # Jensen: -log mean_l p(x|z_l) <= -mean_l log p(x|z_l) <= -mean_l log p(x|z_l) + KL.
    x = np.concatenate([TEST_INLIERS, OUTLIERS])
    elbo = fitted["vae"].decision_function(x)
    recprob = fitted["vae-recprob"].decision_function(x)
    assert np.all(recprob <= elbo + 1e-4)


def test_scores_do_not_depend_on_the_other_rows(fitted):
    x = np.concatenate([TEST_INLIERS, OUTLIERS])
    for name in ("autoencoder", "vae"):
        whole = fitted[name].decision_function(x)
        # Programs for 5 rows and for 276. ops, the VAE's longest chain (the autoencoder's is
        # 58): the encoder 27 (Dense 8 -> 16, LeakyReLU, Dense 16 -> 2), exp(logvar / 2) and
        # the draw 7, the decoder 21, the log-likelihood over 8 features 12, the mean over 16
        # draws 16 and the KL 1.
        assert_close(fitted[name].decision_function(x[-5:]), whole[-5:], ops=84)


@pytest.mark.parametrize(
    "name", ["pca", "pca-hotelling", "ppca", "autoencoder", "vae", "vae-recprob"]
)
def test_save_and_load_give_identical_scores(fitted, name, tmp_path):
    detector = fitted[name]
    detector.save(tmp_path / "detector")
    loaded = AnomalyDetector.load(tmp_path / "detector")
    x = np.concatenate([TEST_INLIERS, OUTLIERS])
    # The same scoring program on the parameters the file restored: bit for bit.
    assert_bitwise(loaded.decision_function(x), detector.decision_function(x))
    assert loaded.threshold_ == detector.threshold_
    np.testing.assert_array_equal(loaded.predict(x), detector.predict(x))
    np.testing.assert_array_equal(loaded.labels_, detector.labels_)
    assert loaded.get_params() == detector.get_params() and loaded.options_ == detector.options_


def test_load_refuses_files_that_do_not_hold_a_detector_by_name(tmp_path, fitted):
    model = Autoencoder(input_dim=N_FEATURES, hidden_dims=(4,), latent_dim=2)
    config = TrainConfig(epochs=1, batch_size=64, quiet=True, checkpoint_dir=str(tmp_path / "run"))
    fit(autoencoder_objective(model), INLIERS, None, config, jax.random.key(0))
    with pytest.raises(ckpt.CheckpointError, match=r"does not hold an AnomalyDetector.*load_run"):
        AnomalyDetector.load(tmp_path / "run")
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"hello": "world"}))
    with pytest.raises(ckpt.CheckpointError, match="foreign.json"):
        AnomalyDetector.load(foreign)
    # A detector checkpoint whose metadata this version cannot read: named, not a KeyError.
    manifest = fitted["pca"].save(tmp_path / "detector")
    loaded = ckpt.load_checkpoint(manifest)
    metadata = {k: v for k, v in loaded.metadata.items() if k != "feature_shape"}
    bad = ckpt.save_checkpoint(tmp_path / "bad", loaded.tree, epoch=0, metadata=metadata)
    with pytest.raises(ckpt.CheckpointError, match=r"holds no AnomalyDetector.*feature_shape"):
        AnomalyDetector.load(bad)
    with pytest.raises(ValueError, match="checkpoint_dir and callbacks"):
        AnomalyDetector("pca").fit(INLIERS, checkpoint_dir=str(tmp_path / "x"))


def test_images_with_and_without_channel_axis():
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(60, 6, 5)).astype(np.float32)
    detector = AnomalyDetector("pca", n_components=3).fit(images)
    assert detector.feature_shape_ == (6, 5, 1) and detector.n_features_in_ == 30
    assert_bitwise(detector.score_samples(images), detector.score_samples(images[..., None]))
    with pytest.raises(ValueError, match=r"fitted on examples of shape \(6, 5, 1\)"):
        detector.score_samples(images.reshape(60, 30))


def test_predict_before_fit_is_a_clear_error():
    detector = AnomalyDetector("pca")
    for method in (detector.predict, detector.score_samples, detector.decision_function):
        with pytest.raises(NotFittedError, match=r"not fitted yet: call fit\(X\)"):
            method(INLIERS)
    with pytest.raises(NotFittedError, match="not fitted"):
        detector.save("unused")


def test_feature_count_mismatch_is_a_clear_error(fitted):
    with pytest.raises(
        ValueError, match="X has 5 features, but AnomalyDetector is expecting 8 features"
    ):
        fitted["pca"].predict(INLIERS[:, :5])
    with pytest.raises(ValueError, match=r"shape \(4, 2\) \(8 features\).*\(8,\) \(8 features\)"):
        fitted["pca"].predict(INLIERS.reshape(-1, 4, 2))


def test_nan_input_is_a_clear_error(fitted):
    bad = INLIERS.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        AnomalyDetector("pca").fit(bad)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        fitted["autoencoder"].decision_function(bad)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: AnomalyDetector("svm").fit(INLIERS), ValueError, "method must be one of"),
        (
            lambda: AnomalyDetector("pca", 0.7).fit(INLIERS),
            ValueError,
            r"contamination must be in \(0, 0.5\]",
        ),
        (
            lambda: AnomalyDetector("pca", None).fit(INLIERS),
            ValueError,
            "needs an explicit threshold",
        ),
        (lambda: AnomalyDetector("pca", n_component=3), TypeError, "unexpected keyword"),
        (
            lambda: AnomalyDetector("pca", n_components=1.5).fit(INLIERS),
            ValueError,
            "variance fraction",
        ),
        (
            lambda: AnomalyDetector("vae", statistic="max").fit(INLIERS),
            ValueError,
            "statistic must be one of",
        ),
        (
            lambda: AnomalyDetector("pca", statistic="elbo").fit(INLIERS),
            ValueError,
            "statistic must be one of",
        ),
        (
            lambda: AnomalyDetector("ppca", statistic="hotelling").fit(INLIERS),
            ValueError,
            "has one statistic",
        ),
        (
            lambda: AnomalyDetector("pca", n_components="all").fit(INLIERS),
            ValueError,
            "n_components must",
        ),
        (
            lambda: AnomalyDetector("autoencoder", epochs=0).fit(INLIERS),
            ValueError,
            "epochs must be >= 1",
        ),
        (
            lambda: AnomalyDetector("pca").fit(INLIERS[:1]),
            ValueError,
            r"1 sample\(s\).*minimum of 2",
        ),
        (lambda: AnomalyDetector("pca").fit(np.ones(5)), ValueError, "Expected 2D array"),
        (
            lambda: AnomalyDetector("pca", statistic="reconstruction").fit(INLIERS[:, :1]),
            ValueError,
            r"needs at least 2 features, got 1 feature\(s\)",
        ),
        (
            lambda: AnomalyDetector("pca", n_components=9).fit(INLIERS),
            ValueError,
            "n_components=9 must be <= 8",
        ),
        (
            lambda: AnomalyDetector("vae", likelihood="bernoulli").fit(INLIERS),
            ValueError,
            r"needs data in \[0, 1\]",
        ),
        (
            lambda: AnomalyDetector("autoencoder", architecture="conv").fit(INLIERS),
            ValueError,
            "needs images",
        ),
    ],
)
def test_bad_arguments_are_clear_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.slow
def test_convolutional_backends_on_images(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(40, 16, 16, 1)).astype(np.float32)
    for method in ("autoencoder", "vae"):
        detector = AnomalyDetector(
            method, epochs=2, architecture="conv", channels=(4, 8), hidden_dims=(16,)
        )
        detector.fit(images)
        assert detector.backend_.architecture == "conv"
        detector.save(tmp_path / method)
        loaded = AnomalyDetector.load(tmp_path / method)
        assert_bitwise(loaded.decision_function(images), detector.decision_function(images))


@pytest.fixture(scope="module")
def experiment_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("anomaly")
    flags = [
        "--task",
        "all",
        "--splits",
        "1",
        "--classes",
        "3",
        "--methods",
        "pca,ppca,vae",
        "--epochs",
        "3",
    ]
    flags += ["--architecture", "mlp", "--out", str(out), "--quiet"]
    assert cli.main(["anomaly", *flags]) == 0
    return out


@pytest.mark.slow
def test_experiment_writes_metrics_and_figures(experiment_run):
    out = experiment_run
    metrics = json.loads((out / "metrics.json").read_text())
    expected = {"pca", "pca-hotelling", "ppca", "vae-elbo", "vae-recprob"}
    expected |= {"isolation-forest", "one-class-svm"}
    faces = metrics["tasks"]["faces"]
    assert set(faces["methods"]) == expected
    assert (faces["n_train"], faces["n_test_normal"], faces["n_test_anomalous"]) == (70, 30, 100)
    digits = metrics["tasks"]["digits"]
    assert digits["classes"] == [3] and set(digits["per_class"]) == expected
    for task in (faces, digits):
        for result in task["methods"].values():
            assert 0.0 <= result["auroc"] <= 1.0 and 0.0 <= result["average_precision"] <= 1.0
        assert task["best_latent_jax"] in ("pca-hotelling", "ppca", "vae-elbo", "vae-recprob")
    # Digits are easy enough that even 3 epochs and PCA separate one class from the rest.
    assert digits["methods"]["pca"]["auroc"] > 0.9
    for prefix in ("faces", "digits"):
        for suffix in ("score_histograms", "roc", "ranked"):
            with Image.open(out / f"{prefix}_{suffix}.png") as figure:
                assert figure.format == "PNG"
    config = json.loads((out / "config.json").read_text())
    assert config["command"] == "anomaly" and config["data"]["classes"] == [3]
    loaded = AnomalyDetector.load(out / "detectors" / "faces" / "vae-elbo")
    assert loaded.method == "vae" and loaded.feature_shape_ == (25, 25, 1)


@pytest.mark.slow
def test_the_folder_reloads_the_neural_detector_that_scored_the_saved_auroc(experiment_run):
    out = experiment_run
    assert_config_round_trips(out, "anomaly")
    metrics = json.loads((out / "metrics.json").read_text())
    # The faces task's first split, as the command made it.
    images, labels = image_data.load_lfw_subset()
    faces, non_faces = images[labels == 1], images[labels == 0]
    held_out = data_lib.split_dataset(faces, test_size=0.3, random_state=0).x_test
    test = np.concatenate([held_out, non_faces])
    is_anomaly = np.r_[np.zeros(len(held_out)), np.ones(len(non_faces))].astype(int)
    detector = AnomalyDetector.load(out / "detectors" / "faces" / "vae-elbo")
    results = anomaly_experiment.score_detectors({"vae-elbo": detector}, test, is_anomaly)
    # The command's scoring program on the parameters it saved: the same AUROC, exactly.
    assert (
        results["vae-elbo"]["auroc"]
        == metrics["tasks"]["faces"]["per_split"]["vae-elbo"]["auroc"][0]
    )
    # load_run gives that detector's network and normalization, trained once (3 epochs).
    run = load_run(out)
    assert run.model == detector.backend_.model
    assert_trees_bitwise(run.variables, dict(detector.backend_.variables))
    assert_bitwise(run.normalizer.mean, detector.normalizer_.mean)
    assert run.history["epoch"].tolist() == [1, 2, 3]
    assert len((out / "history.csv").read_text().splitlines()) == 1 + 3


def test_experiment_on_a_labelled_table(tmp_path):
    inliers, outliers = _synthetic()
    table = np.concatenate([inliers, outliers])
    labels = np.r_[np.zeros(len(inliers)), np.ones(len(outliers))]
    path = tmp_path / "table.csv"
    np.savetxt(path, np.column_stack([table, labels]), delimiter=",")
    flags = ["--data", str(path), "--label-column", "-1", "--methods", "pca,ppca"]
    assert cli.main(["anomaly", *flags, "--out", str(tmp_path / "out"), "--quiet"]) == 0
    result = json.loads((tmp_path / "out" / "metrics.json").read_text())["tasks"]["data"]
    assert result["n_test_anomalous"] == len(outliers)
    assert result["methods"]["pca"]["auroc"] > 0.99


def test_experiment_rejects_bad_flags(tmp_path, capsys):
    assert cli.main(["anomaly", "--classes", "12", "--out", str(tmp_path / "x")]) == 2
    assert "--classes must be digits 0-9" in capsys.readouterr().err
    assert cli.main(["anomaly", "--contamination", "0.9", "--out", str(tmp_path / "y")]) == 2
    assert not (tmp_path / "x").exists()


def test_experiment_n_components_flag():
    assert cli.parse_args(["anomaly"]).n_components == "auto"
    for text, value in (("3", 3), ("3.0", 3), ("0.5", 0.5), ("kaiser", "kaiser")):
        assert cli.parse_args(["anomaly", "--n-components", text]).n_components == value
