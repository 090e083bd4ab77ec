"""Old public names and command-line values keep working for one release, with a warning."""

import importlib
import json
import sys

import numpy as np
import pytest
from numerics import assert_bitwise

from latent_jax import cli, data
from latent_jax.data import images as image_data
from latent_jax.experiments import anomaly as anomaly_experiment
from latent_jax.experiments import beta_schedules


def test_old_data_names_warn_and_give_what_they_gave():
    with pytest.warns(DeprecationWarning, match="load_synthetic_classification"):
        old = data.load_seed_classification
    assert old is data.load_synthetic_classification
    with pytest.warns(DeprecationWarning, match="SYNTHETIC_CLASSIFICATION_PARAMS"):
        assert data.SEED_DATASET_PARAMS == data.SYNTHETIC_CLASSIFICATION_PARAMS
    with pytest.warns(DeprecationWarning, match="load_digits_features"):
        from latent_jax.data import load_digits_images
    images, labels = load_digits_images()
    x, y = data.load_digits_features()
    assert images.shape == (1797, 8, 8)
    assert_bitwise(images.reshape(1797, 64), x)
    np.testing.assert_array_equal(labels, y)
    with pytest.warns(DeprecationWarning, match=r"images\.load_digits"):
        assert image_data.load_digit_images is image_data.load_digits
    with pytest.raises(AttributeError, match="no attribute 'load_nothing'"):
        data.load_nothing  # noqa: B018


def test_the_old_dataset_name_seed_warns_and_loads_the_same_split():
    with pytest.warns(DeprecationWarning, match="'synthetic-classification'"):
        old = data.load_tabular("seed")
    new = data.load_tabular("synthetic-classification")
    assert_bitwise(old.x_train, new.x_train)
    np.testing.assert_array_equal(old.y_test, new.y_test)
    assert old.name == new.name == "synthetic-classification"


def test_old_experiment_names_warn_and_point_at_the_new_ones():
    with pytest.warns(DeprecationWarning, match="study_schedule"):
        old = beta_schedules.make_schedule
    steps = np.arange(40)
    assert_bitwise(old("linear", 40)(steps), beta_schedules.study_schedule("linear", 40)(steps))
    with pytest.warns(DeprecationWarning, match="score_detectors"):
        assert anomaly_experiment.evaluate is anomaly_experiment.score_detectors
    sys.modules.pop("latent_jax.experiments.evaluate", None)
    with pytest.warns(DeprecationWarning, match="experiments.evaluate_vae"):
        module = importlib.import_module("latent_jax.experiments.evaluate")
    from latent_jax.experiments import evaluate_vae

    assert module.run is evaluate_vae.run


def test_old_subcommand_and_flag_values_still_run_with_a_warning(tmp_path, capsys):
    with pytest.warns(DeprecationWarning, match="'latent-jax evaluate-vae'"):
        assert cli.main(["evaluate", str(tmp_path / "missing")]) == 2
    assert "latent-jax evaluate-vae: error:" in capsys.readouterr().err
    out = tmp_path / "pca"
    with pytest.warns(DeprecationWarning, match="synthetic-classification"):
        assert cli.main(["pca", "--data", "seed", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"] == "synthetic-classification"


def test_generation_names_moved_to_the_library_warn_and_redirect():
    from latent_jax import generate
    from latent_jax.data import images as image_data
    from latent_jax.experiments import vae_faces

    with pytest.warns(DeprecationWarning, match="latent_jax.generate.decoder_mean"):
        assert vae_faces.decoder_mean is generate.decoder_mean
    with pytest.warns(DeprecationWarning, match="latent_jax.data.images.DATASET_TITLES"):
        assert vae_faces.DATASET_TITLES is image_data.DATASET_TITLES
    with pytest.warns(DeprecationWarning, match="latent_jax.generate.generation_metrics"):
        old = vae_faces.generation_metrics
    assert callable(old)


def test_the_linear_models_old_modules_warn_and_redirect():
    import importlib

    import latent_jax
    from latent_jax import linear
    from latent_jax import pca as old_pca

    old_robust_pca = importlib.import_module("latent_jax.robust_pca")  # the module

    with pytest.warns(DeprecationWarning, match="use latent_jax.linear.fit_ppca"):
        assert old_pca.fit_ppca is linear.fit_ppca
    with pytest.warns(DeprecationWarning, match="use latent_jax.linear.PCA"):
        assert old_pca.PCA is linear.PCA
    with pytest.warns(DeprecationWarning, match="use latent_jax.linear.RobustPCA"):
        assert old_robust_pca.RobustPCA is linear.RobustPCA
    # importing the old module keeps the top-level name the function
    assert latent_jax.robust_pca is linear.robust_pca
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        old_pca.nothing  # noqa: B018


def test_the_run_modules_old_paths_warn_and_redirect():
    from latent_jax import checkpoint as old_checkpoint
    from latent_jax import locks as old_locks
    from latent_jax.runs import checkpoint, locks

    with pytest.warns(DeprecationWarning, match="use latent_jax.runs.checkpoint.load_checkpoint"):
        assert old_checkpoint.load_checkpoint is checkpoint.load_checkpoint
    with pytest.warns(DeprecationWarning, match="use latent_jax.runs.locks.folder_lock"):
        assert old_locks.folder_lock is locks.folder_lock


def test_the_data_modules_old_paths_warn_and_redirect():
    from latent_jax import image_data as old_images
    from latent_jax import mnist as old_mnist
    from latent_jax import streaming as old_streaming
    from latent_jax.data import images, mnist, streaming

    with pytest.warns(DeprecationWarning, match="use latent_jax.data.images.load_image_dataset"):
        assert old_images.load_image_dataset is images.load_image_dataset
    with pytest.warns(DeprecationWarning, match="use latent_jax.data.mnist.load_mnist_5k"):
        assert old_mnist.load_mnist_5k is mnist.load_mnist_5k
    with pytest.warns(DeprecationWarning, match="use latent_jax.data.streaming.ArraySource"):
        assert old_streaming.ArraySource is streaming.ArraySource
