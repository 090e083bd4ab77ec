"""The seed's first example end to end: PCA against an autoencoder."""

import json
import os
import stat
import subprocess
import sys

import jax
import numpy as np
import optax
import pytest
from numerics import assert_bitwise
from PIL import Image

from latent_jax import cli, data, load_run
from latent_jax.experiments import reduce
from latent_jax.objectives import autoencoder_objective
from latent_jax.train import evaluate
from latent_jax.train.state import state_from_variables

FIGURES = {
    "explained_variance.png": (1000, 600),
    "loss_curves.png": (1000, 600),
    "latent_scatter.png": (2000, 800),
}


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory):
    """Three epochs of the seed's configuration, with the scatter's labels captured."""
    out = tmp_path_factory.mktemp("reduce")
    captured = {}
    original = reduce.plots.latent_scatter_pair

    def spy(panels, labels, path, **kwargs):
        captured["labels"] = labels
        captured["panels"] = panels
        return original(panels, labels, path, **kwargs)

    reduce.plots.latent_scatter_pair = spy
    try:
        code = cli.main(["reduce", "--epochs", "3", "--out", str(out), "--quiet"])
    finally:
        reduce.plots.latent_scatter_pair = original
    assert code == 0
    return out, captured


def test_writes_every_output(seed_run):
    out, _ = seed_run
    metrics = json.loads((out / "metrics.json").read_text())
    for key in (
        "pca_cumulative_explained_variance",
        "pca_test_mse",
        "ae_train_mse",
        "ae_test_mse",
        "train_seconds",
        "compile_seconds",
    ):
        assert np.isfinite(metrics[key]), key
    assert round(metrics["pca_cumulative_explained_variance"], 4) == 0.3161
    np.testing.assert_allclose(metrics["pca_test_mse"], 0.6895, atol=5e-4)
    assert metrics["epochs"] == 3 and metrics["environment"]["jax"]
    config = json.loads((out / "config.json").read_text())
    assert config["command"] == "reduce" and config["training"]["batch_size"] == 128
    assert config["model"]["hidden_dims"] == [30, 10] and config["seed"] == 42
    for name, size in FIGURES.items():
        with Image.open(out / name) as figure:
            figure.verify()
        with Image.open(out / name) as figure:
            assert figure.format == "PNG" and figure.size == size, name
    assert any((out / "checkpoints").iterdir())
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((out / "metrics.json").stat().st_mode) == 0o666 & ~umask


def test_the_folder_reloads_the_autoencoder_that_scores_the_saved_test_mse(seed_run):
    out, _ = seed_run
    run = load_run(out)
    metrics = json.loads((out / "metrics.json").read_text())
    dataset = data.load_tabular("synthetic-classification")
    assert_bitwise(run.normalizer.mean, dataset.normalizer.mean)
    # The run's evaluation program (the optimizer state it does not read aside) on the
    # parameters it saved: the saved number, bit for bit.
    state = state_from_variables(run.variables, optax.identity())
    scores = evaluate(
        autoencoder_objective(run.model), state, dataset.x_test, reduce.evaluation_key(42)
    )
    assert float(scores["loss"]) == metrics["ae_test_mse"]
    rows = (out / "history.csv").read_text().splitlines()
    assert rows[0].split(",")[:2] == ["epoch", "epoch_time"] and len(rows) == 1 + 3
    np.testing.assert_array_equal(run.history["epoch"], [1, 2, 3])


def test_scatter_uses_the_true_class_labels(seed_run):
    _, captured = seed_run
    expected = data.load_tabular("synthetic-classification").y_train
    np.testing.assert_array_equal(captured["labels"], expected)
    assert set(captured["panels"]) == {"PCA", "Autoencoder"}
    assert all(codes.shape == (8000, 5) for codes in captured["panels"].values())


# 14 s: fit_many's runs equal the single runs in tests/test_train.py; this is the command's
# --seeds end to end.
@pytest.mark.slow
def test_several_seeds_train_different_models_and_seed_zero_is_the_single_run(tmp_path):
    table = np.random.default_rng(0).normal(size=(120, 6)).astype(np.float32)
    path = tmp_path / "table.npy"
    np.save(path, table)
    common = ["--data", str(path), "--epochs", "2", "--batch-size", "32", "--latent-dim", "2"]
    common += ["--hidden-dims", "4", "--quiet"]
    single = reduce.run(cli.parse_command(["reduce", *common, "--out", str(tmp_path / "a")]))
    many = reduce.run(
        cli.parse_command(["reduce", *common, "--seeds", "3", "--out", str(tmp_path / "b")])
    )
    per_seed = many["ae_test_mse_per_seed"]
    assert len(per_seed) == 3 and len(set(per_seed)) == 3
    # Training in another program (the seeds vmapped): 8 Adam steps carry its last-bit
    # differences; 1e-5 (~80 eps) leaves room (equal under SSE4_2, AVX2 and AVX-512).
    np.testing.assert_allclose(per_seed[0], single["ae_test_mse"], rtol=1e-5)
    np.testing.assert_allclose(many["ae_test_mse_mean"], np.mean(per_seed), rtol=1e-6)
    assert many["run_devices"] == 1  # this test process started JAX with one CPU device


@pytest.mark.slow  # a fresh process compiles everything again
def test_seeds_on_a_fresh_process_spread_over_the_cores_with_the_same_results(tmp_path):
    # The script in a new interpreter exposes one CPU device per core (here 2 are forced, so
    # that the test means the same on any machine) and spreads the 4 runs over them.
    table = np.random.default_rng(0).normal(size=(120, 6)).astype(np.float32)
    path = tmp_path / "table.npy"
    np.save(path, table)
    flags = ["--data", str(path), "--epochs", "2", "--batch-size", "32", "--latent-dim", "2"]
    flags += ["--hidden-dims", "4", "--quiet", "--seeds", "4"]
    script = os.path.join(os.path.dirname(__file__), "..", "scripts", "pca_vs_autoencoder.py")
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    env.update(JAX_PLATFORMS="cpu", JAX_NUM_CPU_DEVICES="2")
    command = [sys.executable, script, *flags, "--out", str(tmp_path / "spread")]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    spread = json.loads((tmp_path / "spread" / "metrics.json").read_text())
    assert spread["run_devices"] == 2
    here = reduce.run(cli.parse_command(["reduce", *flags, "--out", str(tmp_path / "here")]))
    # This process has one device, or one per core if its backend started in reduce.run.
    assert here["run_devices"] == len(jax.devices())
    # Training in other programs (two devices, another process): a training tolerance, as above.
    np.testing.assert_allclose(spread["ae_test_mse_per_seed"], here["ae_test_mse_per_seed"], 1e-5)


def test_bad_inputs_get_clear_errors(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3,x\n")
    assert cli.main(["reduce", "--data", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "non-numeric value 'x'" in capsys.readouterr().err
    never = tmp_path / "never-created"
    assert cli.main(["reduce", "--data", str(tmp_path / "none.csv"), "--out", str(never)]) == 2
    assert not never.exists()
    assert "data file not found" in capsys.readouterr().err
    assert cli.main(["reduce", "--seeds", "0", "--out", str(tmp_path / "o")]) == 2
    assert "--seeds must be >= 1" in capsys.readouterr().err


@pytest.mark.slow
def test_seed_claim_the_autoencoder_reconstructs_better_than_pca(tmp_path):
    """The seed's 500 epochs: test MSE at most 0.640 (the seed printed 0.6344), below PCA's."""
    args = cli.parse_command(["reduce", "--out", str(tmp_path), "--quiet"])
    metrics = reduce.run(args)
    assert metrics["epochs"] == 500
    assert metrics["ae_test_mse"] <= 0.640
    assert metrics["ae_test_mse"] < metrics["pca_test_mse"]
