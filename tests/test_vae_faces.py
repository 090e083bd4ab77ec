"""The seed's second example end to end: a convolutional VAE trained on images, its figures,
metrics, presets, β schedules and errors."""

import csv
import json
import math

import numpy as np
import pytest
from cli_checks import assert_config_round_trips
from numerics import assert_bitwise, assert_close
from PIL import Image

from latent_jax import cli, generate, load_run
from latent_jax.data import images as image_data
from latent_jax.experiments import common, evaluate_vae, vae_faces

FIGURES = (
    "dataset_preview.png",
    "loss_curves.png",
    "reconstructions.png",
    "samples.png",
    "interpolation.png",
    "traversal.png",
)
EPOCHS = 40  # 320 training images in batches of 64: 200 optimizer steps
BETA_MAX, BETA_TAU = 1.0, 5.0


def _parse(*flags):
    return cli.parse_command(["vae", *flags])


@pytest.fixture(scope="module")
def digits_file(tmp_path_factory):
    """400 of scikit-learn's 8x8 digits as a .npy file of shape (400, 8, 8, 1)."""
    path = tmp_path_factory.mktemp("data") / "digits.npy"
    np.save(path, image_data.load_digits()[0][:400])
    return path


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory, digits_file):
    out = tmp_path_factory.mktemp("vae")
    flags = ["--data", str(digits_file), "--epochs", str(EPOCHS), "--out", str(out)]
    flags += ["--beta-max", str(BETA_MAX), "--beta-tau", str(BETA_TAU), "--quiet"]
    assert cli.main(["vae", *flags]) == 0
    return out


def _read(out, name):
    return json.loads((out / name).read_text())


def _history(out):
    """history.csv as columns of floats."""
    with open(out / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {name: [float(row[name]) for row in rows] for name in rows[0]}


def test_writes_every_output(digits_run):
    out = digits_run
    for name in FIGURES:
        with Image.open(out / name) as figure:
            figure.verify()
        with Image.open(out / name) as figure:
            assert figure.format == "PNG" and min(figure.size) >= 200, name
    assert (out / "checkpoints" / "latest").is_file()
    metrics = _read(out, "metrics.json")
    for key in (
        "final_train_loss",
        "final_test_loss",
        "final_reconstruction_loss",
        "final_kl",
        "final_beta",
        "train_seconds",
        "compile_seconds",
        "test_mse_per_pixel",
    ):
        assert math.isfinite(metrics[key]), key
    assert metrics["train_seconds"] > 0 and metrics["compile_seconds"] >= 0
    assert metrics["environment"]["jax"] and metrics["environment"]["device"]
    assert metrics["image_shape"] == [8, 8, 1] and metrics["epochs"] == EPOCHS
    assert (metrics["n_train"], metrics["n_test"]) == (320, 80)
    # β at the end is the seed's monotonic formula at the last (0-based) epoch
    expected_beta = BETA_MAX * (1 - math.exp(-(EPOCHS - 1) / BETA_TAU))
    # ops: the float32 schedule (a division, expm1 counted 4, a product) and the epoch's
    # sample-weighted mean over 5 batches (~7), against float64.
    assert_close(metrics["final_beta"], expected_beta, ops=13)


def test_config_stores_the_resolved_flags_and_the_normalization(digits_run, digits_file):
    out = digits_run
    config = _read(out, "config.json")
    assert config["command"] == "vae" and config["seed"] == 42
    assert config["model"] == {"hidden_dim": 100, "latent_dim": 10}
    assert config["training"]["learning_rate"] == 1e-4 and config["training"]["batch_size"] == 64
    assert config["data"]["data"] == str(digits_file)
    assert config["settings"]["beta_max"] == BETA_MAX
    # the training split's scalar mean and std (ddof 1), as the seed's normalization
    dataset = image_data.load_image_dataset(str(digits_file))
    normalizer = _read(out, "normalizer.json")
    np.testing.assert_allclose(normalizer["mean"], dataset.normalizer.mean)
    np.testing.assert_allclose(normalizer["std"], dataset.normalizer.std)


def test_the_folder_reloads_the_vae_that_made_the_saved_reconstructions(digits_run):
    out = digits_run
    assert_config_round_trips(out, "vae")
    run = load_run(out)
    model, _, data = evaluate_vae.load_run(str(out))
    assert run.model == model and data.likelihood == "sse"
    dataset = common.load_image_data(run.config["data"], run.config["seed"])
    assert_bitwise(data.x_test, dataset.x_test)
    assert_bitwise(run.normalizer.mean, dataset.normalizer.mean)
    # The run's own reconstruction programs on the parameters it saved: bit for bit.
    _, _, mse = vae_faces.test_reconstructions(run.model, run.variables, dataset)
    assert mse == _read(out, "metrics.json")["test_mse_per_pixel"]
    history = _history(out)
    assert history["epoch"] == list(range(1, EPOCHS + 1))
    assert_bitwise(run.history["test_loss"], history["test_loss"])


def test_loss_is_reconstruction_plus_beta_times_kl(digits_run):
    out = digits_run
    history = _history(out)
    assert len(history["train_loss"]) == EPOCHS
    for split in ("train", "test"):
        loss, rec, kl, beta = (
            np.asarray(history[f"{split}_{name}"], np.float64)
            for name in ("loss", "reconstruction", "kl", "beta")
        )
        np.testing.assert_allclose(loss, rec + beta * kl, rtol=1e-5)
        assert np.all(kl > 0), split
    metrics = _read(out, "metrics.json")
    assert metrics["final_train_loss"] == history["train_loss"][-1]
    assert metrics["final_kl"] == history["train_kl"][-1] > 0


def test_training_lowers_the_test_loss_below_the_mean_image(digits_run, digits_file):
    out = digits_run
    history = _history(out)
    assert history["test_loss"][-1] < 0.5 * history["test_loss"][0]
    # a decoder that ignored its input could do no better than the training mean image
    dataset = image_data.load_image_dataset(str(digits_file))
    mean_image = dataset.x_train.mean(axis=0)
    baseline = np.mean(np.sum((dataset.x_test - mean_image) ** 2, axis=(1, 2, 3)))
    assert history["test_reconstruction"][-1] < 0.6 * baseline


def test_defaults_are_the_seed_and_presets_yield_to_explicit_flags():
    seed = vae_faces.resolve_arguments(_parse())
    assert (seed.data, seed.epochs, seed.batch_size, seed.learning_rate) == (
        "att",
        10_000,
        64,
        1e-4,
    )
    assert (seed.hidden_dim, seed.latent_dim, seed.test_size) == (100, 10, 0.2)
    assert (seed.beta_schedule, seed.beta_unit, seed.beta_tau) == ("monotonic", "epoch", 1000.0)
    assert seed.beta_max == pytest.approx(1 / 30) and seed.likelihood == "sse"
    demo = vae_faces.resolve_arguments(_parse("--preset", "cpu-demo", "--epochs", "3"))
    assert demo.data == "lfw-faces" and demo.epochs == 3
    assert demo.learning_rate == vae_faces.PRESETS["cpu-demo"]["learning_rate"]
    assert demo.latent_dim == 10  # not in the preset: the seed's
    assert _parse("--beta-max", "1/30").beta_max == pytest.approx(1 / 30)


def _beta(*flags, steps_per_epoch=5):
    args = vae_faces.resolve_arguments(_parse(*flags))
    return vae_faces.make_beta_schedule(args, steps_per_epoch)


def test_beta_schedules_follow_their_flags():
    seed = _beta()
    for epoch in (0, 1, 1000, 5000):
        np.testing.assert_allclose(seed(epoch), (1 - math.exp(-epoch / 1000)) / 30, rtol=1e-6)
    np.testing.assert_allclose(_beta("--beta-schedule", "constant", "--beta-max", "0.5")(7), 0.5)
    linear = _beta("--beta-schedule", "linear", "--beta-start", "0.1", "--beta-warmup", "10")
    np.testing.assert_allclose(
        [linear(0), linear(5), linear(20)], [0.1, 0.1 + 0.5 * (1 / 30 - 0.1), 1 / 30], rtol=1e-6
    )
    # cyclical spans the whole run by default: 4 cycles of 25 epochs, ramps over half of each
    cyclical = _beta("--beta-schedule", "cyclical", "--epochs", "100", "--beta-max", "1")
    np.testing.assert_allclose(
        [cyclical(0), cyclical(12.5), cyclical(20), cyclical(25)], [0, 1, 1, 0], atol=1e-6
    )
    # counted in steps, the default span is epochs * steps per epoch
    steps = _beta(
        "--beta-schedule",
        "cyclical",
        "--epochs",
        "10",
        "--beta-unit",
        "step",
        "--beta-cycles",
        "1",
        "--beta-max",
        "1",
    )
    np.testing.assert_allclose(steps(25), 1.0)
    np.testing.assert_allclose(steps(12.5), 0.5)


def _att_folder(root, shape=(12, 10)):
    rng = np.random.default_rng(0)
    for subject in range(1, 4):
        for number in range(1, 5):
            path = root / f"s{subject}" / f"{number}.pgm"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)
    return root


def test_data_from_an_att_folder_by_path_or_data_dir(tmp_path):
    root = _att_folder(tmp_path / "faces")
    for flags in (("--data", str(root)), ("--data", "att", "--data-dir", str(root))):
        dataset = vae_faces.load_data(vae_faces.resolve_arguments(_parse(*flags)))
        assert dataset.x_train.shape == (9, 12, 10, 1) and dataset.x_test.shape == (3, 12, 10, 1)
        np.testing.assert_allclose(dataset.x_train.mean(), 0.0, atol=1e-5)


def test_missing_att_folder_says_how_to_get_it(tmp_path, capsys):
    code = cli.main(["vae", "--data-dir", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err
    assert "no AT&T faces (s*/*.pgm)" in err and "att_faces.zip" in err
    assert "--data lfw-faces" in err
    assert not (tmp_path / "o").exists()


def test_bad_flags_get_clear_errors(tmp_path, capsys, digits_file):
    with pytest.raises(SystemExit) as exit_info:
        _parse("--beta-schedule", "sigmoid")
    assert exit_info.value.code == 2
    assert "invalid choice: 'sigmoid'" in capsys.readouterr().err
    bad = vae_faces.resolve_arguments(_parse()).replace(beta_schedule="sigmoid")
    with pytest.raises(ValueError, match=r"--beta-schedule must be one of .*'sigmoid'"):
        vae_faces.make_beta_schedule(bad, 5)
    with pytest.raises(ValueError, match=r"--beta-schedule cyclical: ratio must be in \(0, 1\]"):
        _beta("--beta-schedule", "cyclical", "--beta-ratio", "2")
    out = str(tmp_path / "o")
    flags = ["--data", str(digits_file), "--beta-schedule", "linear", "--beta-warmup", "0"]
    assert cli.main(["vae", *flags, "--out", out]) == 2
    assert "--beta-warmup must be >= 1, got 0" in capsys.readouterr().err
    flags = ["--data", str(digits_file), "--beta-schedule", "monotonic", "--beta-tau", "0"]
    assert cli.main(["vae", *flags, "--out", out]) == 2
    assert "--beta-schedule monotonic: tau must be > 0" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing is written before the flags are checked
    cases = {
        ("--epochs", "0"): "--epochs must be >= 1, got 0",
        ("--test-size", "1.5"): r"--test-size must be in (0, 1), got 1.5",
        ("--data", str(tmp_path / "missing" / "dir")): "no such folder",
        ("--data", "kmnist"): "unknown image source 'kmnist'",
        ("--data", "mnist", "--data-dir", str(tmp_path)): "no mnist files in",
    }
    for flags, message in cases.items():
        assert cli.main(["vae", *flags, "--out", out]) == 2, flags
        assert message in capsys.readouterr().err, flags
    with pytest.raises(SystemExit):
        _parse("--learning-rate", "fast")
    assert "expected a number such as 0.5 or 1/30, got 'fast'" in capsys.readouterr().err


def test_convolution_gradients_used_by_the_vae_equal_lax():
    """layers.conv_general_dilated (the VAE's convolutions) computes its own gradients."""
    import jax
    import jax.numpy as jnp

    from latent_jax.models.layers import conv_general_dilated

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(3, 9, 8, 2)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(3, 3, 2, 4)), jnp.float32)
    numbers = ("NHWC", "HWIO", "NHWC")
    for stride, padding in (((2, 2), ((0, 1), (2, 0))), ((3, 1), "SAME")):

        def loss(conv, stride=stride, padding=padding):
            def value(x, k):
                y = conv(x, k, stride, padding, dimension_numbers=numbers)
                return jnp.sum(jnp.sin(y))

            return value

        expected = jax.grad(loss(jax.lax.conv_general_dilated), argnums=(0, 1))(x, kernel)
        got = jax.grad(loss(conv_general_dilated), argnums=(0, 1))(x, kernel)
        # ops: the forward convolution's 18 products, cos (4) and the kernel gradient's sum
        # over 3 images of up to 24 output positions (72).
        for want, have in zip(expected, got, strict=True):
            assert_close(have, want, ops=94)


@pytest.mark.numerics
def test_a_bernoulli_decoders_logits_are_shown_and_scored_as_their_mean():
    logits = np.array([[-2.0, 0.0, 3.0]], np.float32)
    # ops: XLA's logistic (4) against NumPy's float32 exp (4), sum and division.
    assert_close(generate.decoder_mean(logits, "bernoulli"), 1.0 / (1.0 + np.exp(-logits)), ops=10)
    assert_bitwise(generate.decoder_mean(logits, "sse"), logits)
    assert_bitwise(generate.decoder_mean(logits, "gaussian"), logits)
