"""Detector backends by registry: a backend added from outside the library is a full
``AnomalyDetector`` method (fit, scores, threshold, rescoring rules, save and load)."""

from __future__ import annotations

import numpy as np
import pytest
from numerics import assert_bitwise

from latent_jax import AnomalyDetector, detectors
from latent_jax.detectors import base


class MeanDistance(detectors.DetectorBackend):
    """The squared distance to the training mean (a toy backend)."""

    method = "mean-distance"

    def fit(self, xs, training):
        del training
        self.mean = xs.reshape(len(xs), -1).mean(axis=0)

    def score_block(self, xs):
        return np.sum(np.square(xs.reshape(len(xs), -1) - self.mean), axis=1)

    def arrays(self):
        return {"mean": self.mean}

    @classmethod
    def restore(cls, options, feature_shape, meta, tree):
        backend = cls(options, feature_shape)
        backend.mean = np.asarray(tree["mean"])
        return backend


@pytest.fixture
def registered():
    detectors.register_backend(MeanDistance)
    yield MeanDistance
    del base._BACKENDS[MeanDistance.method]


def test_the_library_registers_its_backends_in_order():
    assert detectors.methods()[:7] == (
        "pca",
        "ppca",
        "robust-pca",
        "fa",
        "autoencoder",
        "vae",
        "deep-svdd",
    )
    assert detectors.backend_class("vae").statistics == ("elbo", "reconstruction_probability")
    assert not detectors.backend_class("pca").trains and detectors.backend_class("vae").trains
    with pytest.raises(ValueError, match="method must be one of"):
        detectors.backend_class("lof")


def test_a_registered_backend_is_a_detector_method(registered, tmp_path):
    rng = np.random.default_rng(0)
    train = rng.normal(size=(200, 4))
    test = np.vstack([rng.normal(size=(5, 4)), rng.normal(loc=6.0, size=(5, 4))])
    detector = AnomalyDetector("mean-distance", contamination=0.05).fit(train)
    assert detector.options_["statistic"] is None and detector.n_components_ is None
    scaled = (train - train.mean(0)) / train.std(0)
    assert np.isclose(detector.threshold_, np.quantile(np.sum(scaled**2, axis=1), 0.95))
    assert list(detector.predict(test)) == [0] * 5 + [1] * 5
    loaded = AnomalyDetector.load(detector.save(tmp_path / "detector"))
    assert_bitwise(loaded.decision_function(test), detector.decision_function(test))
    with pytest.raises(ValueError, match="has one statistic"):
        AnomalyDetector("mean-distance", statistic="hotelling").fit(train)
    with pytest.raises(ValueError, match="checkpoint_dir and callbacks are for the trained"):
        AnomalyDetector("mean-distance").fit(train, checkpoint_dir=tmp_path / "c")
    with pytest.raises(ValueError, match="rescored\\(\\) applies to the methods with a choice"):
        detector.rescored("elbo")


def test_a_name_is_registered_once(registered):
    class Other(MeanDistance):
        pass

    with pytest.raises(ValueError, match="registered already"):
        detectors.register_backend(Other)
    assert detectors.register_backend(MeanDistance) is MeanDistance  # the same class again


def test_a_saved_detector_is_a_run_folder(tmp_path):
    import json

    from latent_jax import load_run
    from latent_jax.runs import checkpoint

    rng = np.random.default_rng(1)
    train = rng.normal(size=(120, 5))
    detector = AnomalyDetector("pca", n_components=2).fit(train)
    folder = tmp_path / "pca"
    manifest = detector.save(folder)
    config = json.loads((folder / "config.json").read_text())
    assert config["command"] == "detector" and config["model"]["method"] == "pca"
    assert config["detector"]["threshold_"] == detector.threshold_
    assert config["data"]["feature_shape"] == [5] and config["data"]["scaling"] == "feature"
    normalizer = json.loads((folder / "normalizer.json").read_text())
    assert_bitwise(np.asarray(normalizer["mean"]), detector.normalizer_.mean)
    assert checkpoint.latest_checkpoint(folder / "checkpoints") == manifest
    test = rng.normal(size=(7, 5))
    for path in (folder, manifest):  # the folder, or the manifest as before
        assert_bitwise(
            AnomalyDetector.load(path).decision_function(test), detector.decision_function(test)
        )
    with pytest.raises(ValueError, match="holds an AnomalyDetector: reload it with"):
        load_run(folder)
    # saved again without a standardization: the folder's normalizer.json goes
    AnomalyDetector("pca", n_components=2, scaling="none").fit(train).save(folder)
    assert not (folder / "normalizer.json").exists()


def test_a_detector_saved_by_the_previous_version_loads(tmp_path):
    """The previous layout: the checkpoint files directly in the folder (format 2)."""
    from latent_jax.runs import checkpoint

    rng = np.random.default_rng(2)
    train, test = rng.normal(size=(100, 4)), rng.normal(size=(6, 4))
    detector = AnomalyDetector("ppca", n_components=2).fit(train)
    new = detector.save(tmp_path / "new")
    loaded = checkpoint.load_checkpoint(new)
    old = tmp_path / "old"
    checkpoint.save_checkpoint(old, loaded.tree, epoch=0, metadata=loaded.metadata, keep=1)
    assert_bitwise(
        AnomalyDetector.load(old).decision_function(test), detector.decision_function(test)
    )
