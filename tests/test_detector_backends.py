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
    assert detectors.methods()[:6] == (
        "pca",
        "ppca",
        "robust-pca",
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
