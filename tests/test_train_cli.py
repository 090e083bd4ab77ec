"""`latent-jax train`: your data, in memory or streamed, on one device or a forced CPU mesh."""

import json
import os
import subprocess
import sys

import numpy as np
import optax
import pytest
from cli_checks import assert_config_round_trips
from PIL import Image

from latent_jax import cli, load_run
from latent_jax.experiments import train_cli
from latent_jax.objectives import autoencoder_objective
from latent_jax.train import evaluate
from latent_jax.train.state import state_from_variables


def _table(path, n=300, features=12):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 2)) @ rng.normal(size=(2, features))
    x = (x + 0.1 * rng.normal(size=(n, features))).astype(np.float32)
    np.save(path, x)
    return path


def _read(out, name):
    return json.loads((out / name).read_text())


def test_autoencoder_on_a_npy_file_writes_every_output_and_learns(tmp_path):
    data = _table(tmp_path / "x.npy")
    out = tmp_path / "ae"
    argv = ["train", "--data", str(data), "--epochs", "15", "--batch-size", "32"]
    assert cli.main([*argv, "--out", str(out), "--quiet"]) == 0
    metrics, config = _read(out, "metrics.json"), _read(out, "config.json")
    assert (metrics["n_train"], metrics["n_test"]) == (240, 60)  # the last 20% held out
    assert metrics["example_shape"] == [12] and metrics["devices"] == 1
    assert metrics["model"] == "ae" and config["training"]["epochs"] == 15
    assert config["command"] == "train" and config["model"]["model"] == "ae"
    test_losses = metrics["history"]["test_loss"]
    assert len(test_losses) == 15 and test_losses[-1] < 0.5 * test_losses[0]
    assert metrics["final"]["test_loss"] == pytest.approx(test_losses[-1])
    assert any((out / "checkpoints").iterdir())
    assert len((out / "history.csv").read_text().splitlines()) == 1 + 15
    assert_config_round_trips(out, "train")
    # The folder reloads the autoencoder, which scores the held-out rows as the run did: the
    # run's evaluation program (the optimizer state it does not read aside), bit for bit.
    run = load_run(out)
    state = state_from_variables(run.variables, optax.identity())
    held_out = np.load(data)[240:]
    scores = evaluate(
        autoencoder_objective(run.model), state, held_out, train_cli.evaluation_key(0)
    )
    assert float(scores["loss"]) == metrics["test"]["loss"]


@pytest.mark.slow  # a convolutional VAE compiled for a streamed folder: tens of seconds
def test_conv_vae_streams_an_image_folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(20):
        pixels = (rng.uniform(size=(16, 12)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")
    out = tmp_path / "cvae"
    argv = ["train", "--data", str(folder), "--model", "conv-vae", "--stream"]
    assert cli.main([*argv, "--epochs", "2", "--batch-size", "8", "--out", str(out)]) == 0
    metrics = _read(out, "metrics.json")
    assert metrics["stream"] is True and metrics["example_shape"] == [16, 12, 1]
    final = metrics["final"]
    assert final["train_kl"] > 0 and np.isfinite(final["test_loss"])
    assert final["train_loss"] == pytest.approx(
        final["train_reconstruction"] + final["train_beta"] * final["train_kl"], rel=1e-5
    )


@pytest.mark.slow  # a fresh process compiles everything again
def test_devices_forces_a_cpu_mesh_in_a_fresh_process(tmp_path):
    data = _table(tmp_path / "x.npy", n=96)
    out = tmp_path / "mesh"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    command = [sys.executable, "-m", "latent_jax", "train", "--data", str(data), "--devices"]
    command += ["2", "--epochs", "2", "--batch-size", "10", "--out", str(out), "--quiet"]
    subprocess.run(command, env=env, check=True, capture_output=True, text=True, timeout=300)
    metrics = _read(out, "metrics.json")
    assert metrics["devices"] == 2 and np.isfinite(metrics["final"]["train_loss"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--data", "missing.npy"], "does not exist"),
        (["--data", "x.npy", "--devices", "2", "--mesh", "data=4"], "disagree"),
        (["--epochs", "3"], "--data is required"),
        (["--data", "x.npy", "--clip-norm", "0"], "--clip-norm must be > 0"),
    ],
)
def test_bad_arguments_are_clear_errors(tmp_path, capsys, monkeypatch, extra, message):
    _table(tmp_path / "x.npy", n=20)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", *extra, "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_a_named_data_set_trains_on_the_librarys_split(tmp_path):
    from latent_jax.data import images as image_data

    out = tmp_path / "digits"
    argv = ["train", "--data", "digits", "--epochs", "1", "--seed", "3", "--quiet"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    metrics = _read(out, "metrics.json")
    expected = image_data.load_image_dataset("digits", test_size=0.2, random_state=3)
    assert (metrics["n_train"], metrics["n_test"]) == (len(expected.x_train), len(expected.x_test))
    assert metrics["example_shape"] == [64]  # the MLP sees the 8x8 images flattened


def test_train_schedules_beta_like_the_vae_command(tmp_path, capsys):
    data = _table(tmp_path / "x.npy", n=64)
    out = tmp_path / "beta"
    argv = ["train", "--data", str(data), "--model", "vae", "--epochs", "4", "--quiet"]
    flags = ["--beta-schedule", "cyclical", "--beta-cycles", "2", "--beta-unit", "epoch"]
    assert cli.main([*argv, *flags, "--out", str(out)]) == 0
    history = _read(out, "metrics.json")["history"]
    assert history["train_beta"] == [0.0, 1.0, 0.0, 1.0]
    assert _read(out, "config.json")["settings"]["beta_schedule"] == "cyclical"
    # beta flags on a model or objective that has no beta are refused, naming the flag
    plain = ["train", "--data", str(data), "--beta-max", "3", "--out", str(tmp_path / "ae")]
    assert cli.main(plain) == 2
    assert "--beta-max sets the beta schedule" in capsys.readouterr().err
    iwae = [*argv, "--objective", "iwae", "--beta-schedule", "linear", "--out", str(tmp_path / "i")]
    assert cli.main(iwae) == 2
    assert "--beta-schedule sets the beta schedule" in capsys.readouterr().err


def test_evaluate_vae_scores_a_vae_trained_by_train(tmp_path, capsys):
    data = _table(tmp_path / "x.npy", n=80)
    out = tmp_path / "vae"
    argv = ["train", "--data", str(data), "--model", "vae", "--epochs", "2", "--quiet"]
    assert cli.main([*argv, "--likelihood", "gaussian", "--out", str(out)]) == 0
    capsys.readouterr()
    assert cli.main(["evaluate-vae", str(out), "--k", "4", "--elbo-samples", "2"]) == 0
    evaluation = _read(out, "metrics.json")["evaluation"]
    assert evaluation["n_examples"] == 16 and evaluation["likelihood"] == "gaussian"
    assert evaluation["latent_dim"] == 5


@pytest.mark.parametrize("objective", ["elbo", "iwae", "annealed-vae"])
def test_train_builds_each_vae_objective_as_before_the_beta_flags(objective):
    """With the beta flags at their defaults, train's objective is the one it built before
    it had them (a run saved then resumes: its checkpoint records the same objective)."""
    from latent_jax.models.mlp import VAE
    from latent_jax.objectives import build_objective, objective_entry

    args = cli.parse_command(
        ["train", "--data", "x.npy", "--model", "vae", "--objective", objective]
    )
    built = train_cli._objective(args, (12,), 100)
    entry = objective_entry(objective)
    # What the flags gave before each objective's options came in one field: the defaults.
    options = {o.name: getattr(args, o.name, o.default) for o in entry.options}
    if entry.accepts("epochs"):
        options["epochs"] = args.epochs
    before = build_objective(
        objective, VAE.for_data((12,), latent_dim=5, hidden_dims=(30, 10)), **options
    )
    assert built.describe() == before.describe()
