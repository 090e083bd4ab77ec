"""The latent-jax command line: help, version, the pca subcommand and its errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import latent_jax
from latent_jax import cli


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"latent-jax {latent_jax.__version__}"
    assert cli.main([]) == 2
    assert "pca" in capsys.readouterr().out


def test_python_dash_m_runs_the_command_line():
    result = subprocess.run(
        [sys.executable, "-m", "latent_jax", "pca", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--n-components" in result.stdout


def test_pca_on_a_csv_file_writes_every_output(tmp_path, capsys):
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(200, 2))
    table = latent @ rng.normal(size=(2, 6)) + 0.05 * rng.normal(size=(200, 6))
    labels = (latent[:, 0] > 0).astype(int)
    path = tmp_path / "table.csv"
    np.savetxt(path, np.column_stack([table, labels]), delimiter=",", header="a,b,c,d,e,f,y")
    out = tmp_path / "run"
    code = cli.main(
        [
            "pca",
            "--data",
            str(path),
            "--label-column",
            "-1",
            "--n-components",
            "2",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "Cumulative explained variance for the first 2 components" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_features"] == 6 and metrics["n_train"] == 160
    assert metrics["cumulative_explained_variance"] > 0.95  # two latent factors plus noise
    np.testing.assert_allclose(sum(metrics["explained_variance_ratio"]), 1.0, rtol=1e-5)
    with Image.open(out / "explained_variance.png") as figure:
        assert figure.size == (1000, 600)
    saved = np.load(out / "components.npz")
    assert saved["components"].shape == (2, 6)
    assert json.loads((out / "config.json").read_text())["n_components"] == 2


def test_pca_errors_are_one_clear_line(tmp_path, capsys):
    out = tmp_path / "never-created"
    assert cli.main(["pca", "--data", str(tmp_path / "missing.csv"), "--out", str(out)]) == 2
    assert not out.exists()
    assert "data file not found" in capsys.readouterr().err
    path = tmp_path / "small.npy"
    np.save(path, np.random.default_rng(1).normal(size=(10, 3)))
    assert (
        cli.main(["pca", "--data", str(path), "--n-components", "7", "--out", str(tmp_path)]) == 2
    )
    assert "n_components" in capsys.readouterr().err
