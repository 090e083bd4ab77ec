"""Denoising: fresh corruption every training step, the clean target, and the experiment end to
end (the corruption functions themselves are tested in test_corruption.py)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cli_checks import assert_config_round_trips
from flax import linen as nn
from numerics import assert_close
from PIL import Image

from latent_jax import cli, load_run
from latent_jax.corruption import Corruption
from latent_jax.experiments import denoising
from latent_jax.objectives import Batch, denoising_objective, split_variables
from latent_jax.pca_denoiser import mean_squared_error
from latent_jax.train import TrainConfig, fit

LEVELS = (0.25, 0.5)


class Shrink(nn.Module):
    """x -> a * x + b with scalar parameters, initialized to the identity."""

    @nn.compact
    def __call__(self, x):
        a = self.param("a", nn.initializers.ones, ())
        b = self.param("b", nn.initializers.zeros, ())
        return a * x + b


def _images(n=64, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, 6, 6, 1)).astype(np.float32)


def test_training_draws_fresh_noise_every_epoch_and_fixed_noise_for_evaluation():
    # The identity-initialized model with a zero learning rate never changes, so the reported
    # corrupted_mse reflects the noise alone.
    objective = denoising_objective(Shrink(), Corruption(mask_fraction=0.3))
    config = TrainConfig(learning_rate=1e-12, batch_size=16, epochs=3, quiet=True, log_every=0)
    x = _images()
    _, history = fit(objective, x, x[:32], config, jax.random.key(0))
    train = history["train_corrupted_mse"]
    test = history["test_corrupted_mse"]
    assert len(set(train.tolist())) == 3  # a new draw every epoch
    assert len(set(test.tolist())) == 1  # evaluation noise is fixed
    # Masking a fraction p of entries of x costs p * E[x^2] = 0.3 / 3 for uniform pixels.
    np.testing.assert_allclose(train, 0.1, atol=0.02)


def test_loss_is_against_the_clean_images_on_image_shaped_batches():
    corruption = Corruption(gaussian_std=0.4, salt_pepper_fraction=0.1, clip=(0.0, 1.0))
    objective = denoising_objective(Shrink(), corruption)
    x = jnp.asarray(_images(8))
    params, state = split_variables(objective.init(jax.random.key(0), x))
    key = jax.random.key(5)
    batch = Batch(x, jnp.ones(8))
    loss, (metrics, _) = objective.loss(params, state, batch, key, jnp.int32(0), jnp.int32(0))
    noisy = corruption(jax.random.split(key)[0], x)
    expected = float(jnp.mean(jnp.square(noisy - x)))
    # The identity returns its noisy input: scored against the clean x this is the noise's
    # error, where a comparison with its own input would give 0.
    assert expected > 0.05
    # The same noise, op by op; the objective averages 36 pixels then 8 rows, this the 288
    # values at once, in another order. ops: the difference and the square (2) and the mean
    # over 288 values.
    assert_close(float(loss), expected, ops=290)
    assert_close(float(metrics["corrupted_mse"]), expected, ops=290)
    # Moving towards the mean (shrinking) lowers the loss against the clean target.
    grads = jax.grad(lambda p: objective.loss(p, state, batch, key, jnp.int32(0), jnp.int32(0))[0])(
        params
    )
    assert float(grads["a"]) > 0


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("denoise")
    flags = ["--levels", ",".join(map(str, LEVELS)), "--epochs", "20", "--out", str(out)]
    assert cli.main(["denoise", *flags, "--quiet"]) == 0
    return out


@pytest.mark.slow
def test_experiment_writes_metrics_and_figures(digits_run):
    out = digits_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["levels"] == list(LEVELS) and metrics["show_level"] == 0.5
    assert metrics["feature_shape"] == [8, 8, 1] and metrics["images"]
    assert metrics["n_train"] + metrics["n_val"] + metrics["n_test"] == 1797
    for result in metrics["results"]:
        assert set(result["methods"]) == {"noisy", "pca", "autoencoder", "dae"}
        for values in result["methods"].values():
            assert values["psnr"] == pytest.approx(10 * np.log10(1.0 / values["mse"]))
        assert 1 <= result["pca_n_components"] <= 64
        assert result["corruption"]["gaussian_std"] == result["level"]
    for name in ("psnr_vs_noise.png", "denoising_examples.png", "dae_loss_curves.png"):
        with Image.open(out / name) as figure:
            assert figure.format == "PNG"
    # The DAE of the shown level is the folder's own; the other models are sub-folders.
    assert (out / "checkpoints" / "latest").is_file()
    for name in ("autoencoder", "dae-0.25"):
        assert (out / name / "checkpoints" / "latest").is_file()
        assert len((out / name / "history.csv").read_text().splitlines()) == 1 + 20
        assert json.loads((out / name / "config.json").read_text())["run"] == name
    config = json.loads((out / "config.json").read_text())
    assert config["command"] == "denoise" and config["training"]["epochs"] == 20
    assert len((out / "history.csv").read_text().splitlines()) == 1 + 20


@pytest.mark.slow
def test_the_folder_reloads_the_dae_that_scores_the_saved_mse(digits_run):
    out = digits_run
    assert_config_round_trips(out, "denoise")
    args = cli.parse_args(["denoise", "--config", str(out / "config.json")])
    d = denoising.load_data(args)
    built = denoising._build_model(args, d)
    run = load_run(out)
    assert run.model == built.model
    index = args.levels.index(denoising.show_level(args))
    _, _, noisy_test = denoising.noisy_splits(args, d, index)
    output = denoising.denoised(built, run.variables, noisy_test, d)
    mse = mean_squared_error(output, d.test)
    metrics = json.loads((out / "metrics.json").read_text())
    # The command's programs on the same noisy rows and the parameters it saved: bit for bit.
    assert mse == metrics["results"][index]["methods"]["dae"]["mse"]
    clean = load_run(out / "autoencoder")
    assert clean.model == built.model and clean.history["epoch"].tolist() == list(range(1, 21))


@pytest.mark.slow
def test_denoisers_beat_the_noisy_input(digits_run):
    metrics = json.loads((digits_run / "metrics.json").read_text())
    psnr = metrics["psnr"]
    for i, _ in enumerate(LEVELS):
        assert psnr["dae"][i] > psnr["noisy"][i] + 3.0
        assert psnr["pca"][i] > psnr["noisy"][i]
    # More noise, lower PSNR, for the noisy input and the denoising autoencoder alike.
    assert psnr["noisy"][0] > psnr["noisy"][1] and psnr["dae"][0] > psnr["dae"][1]


@pytest.mark.slow
def test_experiment_on_a_table_with_masking_noise(tmp_path):
    rng = np.random.default_rng(0)
    table = rng.normal(size=(200, 3)) @ rng.normal(size=(3, 10))
    path = tmp_path / "table.csv"
    np.savetxt(path, table, delimiter=",")
    flags = ["--data", str(path), "--noise", "masking", "--levels", "0.3", "--epochs", "2"]
    flags += ["--hidden-dims", "16", "--latent-dim", "4", "--gaussian-std", "0.1"]
    assert cli.main(["denoise", *flags, "--out", str(tmp_path / "out"), "--quiet"]) == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert not metrics["images"] and metrics["feature_shape"] == [10]
    corruption = metrics["results"][0]["corruption"]
    assert corruption == {
        "gaussian_std": 0.1,
        "mask_fraction": 0.3,
        "salt_pepper_fraction": 0.0,
        "clip": None,
    }
    assert not (tmp_path / "out" / "denoising_examples.png").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--levels", "-0.5"], "--levels must be >= 0"),
        (["--noise", "masking", "--levels", "1.5"], "--levels must be in [0, 1]"),
        (["--show-level", "0.3"], "is not one of --levels"),
        (["--mask-fraction", "2"], "mask_fraction must be in [0, 1]"),
        (["--data", "missing_folder/"], "no such folder"),
    ],
)
def test_bad_flags_are_clear_errors(tmp_path, capsys, flags, message):
    assert cli.main(["denoise", *flags, "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
