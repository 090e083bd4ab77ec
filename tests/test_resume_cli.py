"""The command line checkpoints and resumes: ``latent-jax train`` killed with SIGKILL at
several points and resumed with ``--resume`` ends with the metrics and parameters of an
uninterrupted run; the resume flags are checked before anything is written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from numerics import assert_bitwise

from latent_jax import cli
from latent_jax.runs import checkpoint as ckpt

# Values that differ between runs by nature: wall-clock times and the machine's description.
_TIMINGS = ("train_seconds", "environment")


def _train_command(data: Path, out: Path, *extra: str) -> list[str]:
    command = [sys.executable, "-m", "latent_jax", "train", "--data", str(data)]
    command += ["--epochs", "120", "--batch-size", "8", "--checkpoint-every", "5"]
    return [*command, "--out", str(out), "--quiet", "--no-compile-cache", *extra]


def _comparable_metrics(out: Path) -> dict:
    metrics = json.loads((out / "metrics.json").read_text())
    for name in _TIMINGS:
        metrics.pop(name)
    metrics["history"].pop("epoch_time")
    return metrics


def _history_rows(out: Path) -> list[list[str]]:
    """history.csv without its epoch_time column."""
    lines = [line.split(",") for line in (out / "history.csv").read_text().splitlines()]
    column = lines[0].index("epoch_time")
    return [row[:column] + row[column + 1 :] for row in lines]


def _kill_after_checkpoint(command: list[str], checkpoints: Path, epoch: int) -> int:
    """Starts ``command`` and kills it (SIGKILL) once a manifest of ``epoch`` or later exists.

    Returns:
        The epoch of the latest complete checkpoint left behind.
    """
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while process.poll() is None and time.monotonic() < deadline:
            found = ckpt.list_checkpoints(checkpoints)
            if found and found[-1][0] >= epoch:
                break
            time.sleep(0.01)
        assert process.poll() is None, "the run ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    return ckpt.load_checkpoint(checkpoints).epoch


@pytest.mark.slow
def test_train_killed_at_several_points_resumes_to_an_uninterrupted_runs_outputs(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "x.npy"
    np.save(data, rng.normal(size=(480, 16)).astype(np.float32))
    reference = tmp_path / "reference"
    subprocess.run(_train_command(data, reference), check=True, capture_output=True, timeout=600)

    out = tmp_path / "killed"
    checkpoints = out / "checkpoints"
    kept = [_kill_after_checkpoint(_train_command(data, out), checkpoints, 20)]
    kept.append(_kill_after_checkpoint(_train_command(data, out, "--resume"), checkpoints, 60))
    # The kill may land between a manifest and the pointer to it: the one before is the last.
    assert 15 <= kept[0] < kept[1] < 120
    subprocess.run(
        _train_command(data, out, "--resume"), check=True, capture_output=True, timeout=600
    )

    assert _comparable_metrics(out) == _comparable_metrics(reference)
    assert _history_rows(out) == _history_rows(reference)
    final, expected = (
        ckpt.load_checkpoint(checkpoints),
        ckpt.load_checkpoint(reference / "checkpoints"),
    )
    assert final.epoch == expected.epoch == 120
    # The whole training state (parameters, optimizer moments, step, early-stopping record),
    # the key and the history but its timings.
    for tree in (final.tree, expected.tree):
        tree["history"].pop("epoch_time")
    pairs = zip(jax.tree.leaves(final.tree), jax.tree.leaves(expected.tree), strict=True)
    for got, want in pairs:
        assert_bitwise(got, want)  # the same programs replayed from the checkpoint
    config = json.loads((out / "config.json").read_text())
    assert [record["epoch"] for record in config["resumed"]] == kept
    assert all(record["changed"] == {} for record in config["resumed"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--override", "learning_rate"], "--override applies only with --resume"),
        (["--resume", "--override", "batch_size"], "--override may name only learning_rate"),
        (["--checkpoint-every", "-1"], "--checkpoint-every must be >= 0 epochs, got -1"),
    ],
)
def test_bad_resume_flags_are_clear_errors_and_write_nothing(tmp_path, capsys, extra, message):
    data = tmp_path / "x.npy"
    np.save(data, np.zeros((10, 3), np.float32))
    out = tmp_path / "out"
    assert cli.main(["train", "--data", str(data), "--out", str(out), *extra]) != 0
    assert message in capsys.readouterr().err
    assert not out.exists()
