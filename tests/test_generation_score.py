"""The generation score: a small digit classifier's confidence, label entropy and Fréchet
distance in its feature space; real digits score near the top, noise near the bottom."""

import json
import math

import jax
import numpy as np
import pytest
import scipy.linalg

from latent_jax import cli, generate
from latent_jax.data import images as image_data
from latent_jax.models.conv import ConvSpec, ConvVAE

KEYS = ("confident_fraction", "label_entropy", "frechet_distance")


@pytest.fixture(scope="module")
def digits():
    return image_data.load_image_dataset("digits", normalization="none")


@pytest.fixture(scope="module")
def scorer(digits):
    return generate.GenerationScorer.fit(digits.x_train, digits.y_train, random_state=0)


def test_real_digits_score_near_the_top_and_noise_near_the_bottom(digits, scorer):
    x_test = digits.x_test
    half = len(x_test) // 2
    real = scorer.score(x_test[:half], x_test[half:])
    noise = np.random.default_rng(0).uniform(size=(half, 8, 8, 1)).astype(np.float32)
    fake = scorer.score(noise, x_test[half:])
    assert real["n_generated"] == half and fake["n_generated"] == half
    assert real["confident_fraction"] > 0.8
    assert real["label_entropy"] > math.log(10) - 0.05
    assert fake["confident_fraction"] < 0.5 or fake["label_entropy"] < 1.0
    assert fake["frechet_distance"] > 10 * real["frechet_distance"]
    # one digit copied many times: confident, but a single label
    ones = np.repeat(x_test[:1], 50, axis=0)
    collapsed = scorer.score(ones + 0.0, x_test)
    assert collapsed["label_entropy"] == 0.0


def test_identical_sets_are_at_distance_zero(digits, scorer):
    score = scorer.score(digits.x_test, digits.x_test.reshape(len(digits.x_test), 64))
    assert abs(score["frechet_distance"]) < 1e-6 * scorer.features(digits.x_test).var(0).sum()
    assert set(KEYS) <= set(score)


def test_frechet_distance_is_the_closed_form():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 3))
    cov1, cov2 = a @ a.T, b @ b.T  # cov2 is singular
    mean1, mean2 = rng.normal(size=6), rng.normal(size=6)
    root = scipy.linalg.sqrtm(scipy.linalg.sqrtm(cov1) @ cov2 @ scipy.linalg.sqrtm(cov1))
    expected = np.sum((mean1 - mean2) ** 2) + np.trace(cov1 + cov2 - 2 * np.real(root))
    np.testing.assert_allclose(
        generate.frechet_distance(mean1, cov1, mean2, cov2), expected, rtol=1e-8
    )
    # one dimension: (m1 - m2)^2 + (s1 - s2)^2
    got = generate.frechet_distance([1.0], [[4.0]], [3.0], [[9.0]])
    np.testing.assert_allclose(got, 4.0 + 1.0, rtol=1e-12)
    assert generate.frechet_distance(mean1, cov1, mean1, cov1) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match=r"cov2 must have shape \(6, 6\) to match mean1"):
        generate.frechet_distance(mean1, cov1, mean2, cov2[:3])


def test_bad_images_get_clear_errors(digits, scorer):
    with pytest.raises(ValueError, match="generated has images of 100 pixels but the scorer"):
        scorer.score(np.zeros((4, 10, 10, 1)), digits.x_test)
    with pytest.raises(ValueError, match=r"generated must hold pixel values in \[0, 1\]"):
        scorer.score(np.full((4, 8, 8, 1), 2.0), digits.x_test)
    with pytest.raises(ValueError, match="x_real needs at least 2 images"):
        scorer.score(digits.x_test, digits.x_test[:1])
    with pytest.raises(ValueError, match="y_train must have shape"):
        generate.GenerationScorer.fit(digits.x_train, digits.y_train[:5])
    with pytest.raises(ValueError, match="at least 2 classes"):
        generate.GenerationScorer.fit(digits.x_train[:5], np.zeros(5, np.int64))


def test_generation_score_fits_and_scores(digits):
    score = generate.generation_score(
        digits.x_test[:40],
        x_train=digits.x_train[:300],
        y_train=digits.y_train[:300],
        x_real=digits.x_test[40:],
    )
    assert set(score) == {*KEYS, "n_generated"} and score["n_generated"] == 40


def test_a_digits_vae_reports_the_generation_score_of_prior_samples():
    # the function the vae command calls on digit data, on an untrained one-convolution VAE
    # with random positive variables (BatchNorm variances included): nothing to compile but
    # the decoder
    dataset = image_data.load_image_dataset("digits")
    one_conv = (ConvSpec(4, 3, 2, 1),)
    model = ConvVAE(
        image_shape=(8, 8, 1),
        hidden_dim=16,
        latent_dim=4,
        encoder_convs=one_conv,
        decoder_convs=one_conv,
    )
    key = jax.random.key(0)
    shapes = jax.eval_shape(model.init, key, dataset.x_train[:2], key)
    rng = np.random.default_rng(0)
    variables = jax.tree.map(lambda s: rng.uniform(0, 0.1, s.shape).astype(s.dtype), shapes)
    score = generate.generation_metrics(model, variables, dataset, seed=0)
    assert score["n_generated"] == generate.N_GENERATED
    for name in KEYS:
        assert math.isfinite(score[name]) and math.isfinite(score["real_test_halves"][name])
    assert score["scorer_test_accuracy"] > 0.9
    assert score["frechet_distance"] > score["real_test_halves"]["frechet_distance"]


@pytest.mark.slow
def test_a_digits_vae_run_writes_the_generation_score(tmp_path):
    out = tmp_path / "vae"
    flags = ["--data", "digits", "--epochs", "2", "--log-every", "0", "--quiet"]
    assert cli.main(["vae", *flags, "--checkpoint-every", "0", "--out", str(out)]) == 0
    generation = json.loads((out / "metrics.json").read_text())["generation"]
    assert generation["n_generated"] == generate.N_GENERATED
    for name in KEYS:
        assert math.isfinite(generation[name])
