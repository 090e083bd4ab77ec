"""A run folder tells the truth about what was trained and keeps what was trained.

One test (or more) for each way a run could lie or lose its work: resuming on other data,
a refused resume rewriting config.json, a resumed run shortened, a non-finite "last good"
checkpoint, files left by failed runs, partial outputs on a full disk, data whose squares
overflow float32, an interrupt (a real signal to a real process), and a failed download.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from latent_jax import cli, runs
from latent_jax.data import mnist
from latent_jax.models.mlp import Autoencoder
from latent_jax.objectives import Objective, autoencoder_objective, masked_mean
from latent_jax.runs import checkpoint as ckpt
from latent_jax.train import NonFiniteLossError, TrainConfig, fit, fit_stream

KEY = jax.random.key(0)
CONFIG = TrainConfig(learning_rate=0.01, batch_size=4, epochs=2, quiet=True)
AE = autoencoder_objective(Autoencoder(input_dim=5, hidden_dims=(4,), latent_dim=2))


def _rows(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 5)).astype(np.float32)


def _train(data: Path, out: Path, *extra: str) -> int:
    """``latent-jax train`` in this process; its exit code."""
    argv = ["train", "--data", str(data), "--out", str(out), "--epochs", "2"]
    return cli.main([*argv, "--batch-size", "8", "--checkpoint-every", "1", "--quiet", *extra])


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# ---------------------------------------------------------------------- 1. other data


def test_fit_refuses_to_resume_on_permuted_or_rescaled_rows(tmp_path):
    x, x_test = _rows(20, 0), _rows(6, 1)
    fit(AE, x, x_test, dataclasses.replace(CONFIG, checkpoint_dir=str(tmp_path)), KEY)
    longer = dataclasses.replace(CONFIG, epochs=3)
    for other, part in ((x[::-1], "train"), (x * 1.5, "train"), (x_test[::-1], "test")):
        train, test = (other, x_test) if part == "train" else (x, other)
        with pytest.raises(ValueError, match=rf"on other data \({part} rows: checkpoint has rows:"):
            fit(AE, train, test, longer, resume=tmp_path)
    # Allowed on purpose, the change is recorded with the resumption.
    fit(AE, x[::-1], x_test, longer, resume=tmp_path, allow_changes=("data",))
    record = ckpt.read_metadata(tmp_path)["resumed"][-1]
    assert record["epoch"] == 2 and set(record["changed"]) == {"data"}
    # The same rows resume: from a host array, a device array, another block layout.
    fit(AE, jnp.asarray(x[::-1]), x_test, dataclasses.replace(CONFIG, epochs=4), resume=tmp_path)


def test_a_streamed_file_rewritten_in_place_is_other_data(tmp_path):
    data = tmp_path / "x.npy"
    np.save(data, _rows(20, 0))
    config = dataclasses.replace(CONFIG, checkpoint_dir=str(tmp_path / "ckpt"))
    fit_stream(AE, str(data), None, config, KEY)
    fingerprint = ckpt.read_metadata(tmp_path / "ckpt")["data_fingerprint"]["train"]
    assert fingerprint.startswith("files:")
    np.save(data, _rows(20, 1))
    os.utime(data, ns=(1, 1))  # a new mtime, whatever the clock's resolution
    with pytest.raises(ValueError, match="on other data"):
        fit_stream(
            AE, str(data), None, dataclasses.replace(CONFIG, epochs=3), resume=config.checkpoint_dir
        )


def test_train_resume_on_another_file_is_refused_unless_overridden(tmp_path, capsys):
    first, second = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(first, _rows(40, 0))
    np.save(second, _rows(40, 1))  # the same shape, other values
    out = tmp_path / "run"
    assert _train(first, out) == 0
    before = _files(out)
    assert _train(second, out, "--resume", "--epochs", "3") == cli.EXIT_ERROR
    assert "on other data (train rows: checkpoint has rows:" in capsys.readouterr().err
    assert _files(out) == before  # nothing trained, nothing rewritten
    assert _train(second, out, "--resume", "--epochs", "3", "--override", "data") == 0
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["data"] == str(second)
    assert set(config["resumed"][-1]["changed"]) == {"data"}


# ------------------------------------------------------- 2. a refused resume rewrites nothing


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--learning-rate", "0.5"], "learning_rate: checkpoint has 0.001, this run 0.5"),
        (["--latent-dim", "3"], "another model"),
        (["--model", "vae"], "another model or objective"),
        (["--seed", "7"], "with a different key"),
        (["--batch-size", "4"], "batch_size: checkpoint has 8, this run 4"),
    ],
)
def test_a_refused_resume_leaves_the_run_folder_as_it_was(tmp_path, capsys, extra, message):
    data = tmp_path / "x.npy"
    np.save(data, _rows(40, 0))
    out = tmp_path / "run"
    assert _train(data, out) == 0
    before = _files(out)
    assert _train(data, out, "--resume", "--epochs", "3", *extra) == cli.EXIT_ERROR
    assert message in capsys.readouterr().err
    assert _files(out) == before
    assert runs.load_run(out).config["training"]["learning_rate"] == 0.001


def test_a_refused_tampered_checkpoint_leaves_config_json_alone(tmp_path, capsys):
    data = tmp_path / "x.npy"
    np.save(data, _rows(40, 0))
    out = tmp_path / "run"
    assert _train(data, out) == 0
    payload = max((out / "checkpoints").glob("*.msgpack"))
    payload.write_bytes(payload.read_bytes()[:-5])
    before = _files(out)
    assert _train(data, out, "--resume", "--epochs", "3", "--learning-rate", "0.002",
                  "--override", "learning_rate") == cli.EXIT_ERROR  # fmt: skip
    assert "truncated or corrupt" in capsys.readouterr().err
    assert _files(out) == before


def test_an_accepted_resume_records_its_new_settings(tmp_path):
    data = tmp_path / "x.npy"
    np.save(data, _rows(40, 0))
    out = tmp_path / "run"
    assert _train(data, out) == 0
    argv = ["--resume", "--epochs", "3", "--learning-rate", "0.002", "--override", "learning_rate"]
    assert _train(data, out, *argv) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["learning_rate"] == 0.002 and config["training"]["epochs"] == 3
    assert config["resumed"] == [{"epoch": 2, "changed": {"learning_rate": [0.001, 0.002]}}]


# ------------------------------------------------------------- 3. a finished run shortened


def test_resuming_a_finished_run_with_fewer_epochs_is_refused(tmp_path, capsys):
    data = tmp_path / "x.npy"
    np.save(data, _rows(40, 0))
    out = tmp_path / "run"
    assert _train(data, out, "--epochs", "4") == 0
    before = _files(out)
    assert _train(data, out, "--resume", "--epochs", "3") == cli.EXIT_ERROR
    assert "it has trained 4 epochs already (a run cannot be shortened" in capsys.readouterr().err
    assert _files(out) == before
    library = dataclasses.replace(CONFIG, checkpoint_dir=str(tmp_path / "library"))
    fit(AE, _rows(20, 0), None, library, KEY)
    with pytest.raises(ValueError, match="pass epochs >= 2"):
        fit(
            AE,
            _rows(20, 0),
            None,
            dataclasses.replace(CONFIG, epochs=1),
            resume=tmp_path / "library",
        )


# --------------------------------------------------------- 4. the last good checkpoint is good


def test_a_resumed_run_that_diverges_names_the_checkpoint_it_resumed(tmp_path, capsys):
    data = tmp_path / "x.npy"
    np.save(data, _rows(40, 0))
    out = tmp_path / "run"
    assert _train(data, out) == 0
    before = _files(out)
    argv = ["--resume", "--epochs", "4", "--learning-rate", "1e30", "--override", "learning_rate"]
    assert _train(data, out, *argv) == cli.EXIT_DIVERGED
    err = capsys.readouterr().err
    kept = ckpt.latest_checkpoint(out / "checkpoints")
    assert "non-finite loss at epoch 3" in err and f"the last good checkpoint is {kept}" in err
    assert _files(out) == before  # nothing new trained: the folder as it was


def _gradient_overflow_objective(from_epoch: int) -> Objective:
    """``loss = sum(w) * s``: ``s`` is 1, then 1e20 from epoch ``from_epoch`` (0-based). The
    loss (3e20) and the parameters stay finite, but Adam's second moment, ``grad**2 = 1e40``,
    overflows float32: the state is non-finite while the loss is not."""

    def init(key, x):
        del key, x
        return {"params": {"w": jnp.ones((3,), jnp.float32)}}

    def loss(params, model_state, batch, key, step, epoch, train):
        del key, step, train
        scale = jnp.where(epoch >= from_epoch, 1e20, 1.0).astype(jnp.float32)
        value = masked_mean(jnp.full(batch.x.shape[:1], jnp.sum(params["w"]) * scale), batch.mask)
        return value, ({"loss": value}, model_state)

    return Objective(init=init, loss=loss, model=None, name="overflow")


def test_a_non_finite_optimizer_state_is_a_divergence_and_never_checkpointed(tmp_path):
    config = dataclasses.replace(
        CONFIG, epochs=6, epochs_per_call=6, checkpoint_every=1, checkpoint_dir=str(tmp_path)
    )
    with pytest.raises(NonFiniteLossError, match="non-finite parameters or optimizer state "
                       "after epoch 3") as info:  # fmt: skip
        fit(_gradient_overflow_objective(2), _rows(8, 0), None, config, KEY)
    assert info.value.epoch == 3 and info.value.step is None
    assert Path(info.value.checkpoint).name == "checkpoint_00000002.json"
    assert [epoch for epoch, _ in ckpt.list_checkpoints(tmp_path)] == [1, 2]
    for epoch, path in ckpt.list_checkpoints(tmp_path):
        state = ckpt.load_checkpoint(path).tree["state"]
        assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(state)), epoch


def _holds_floats(tree) -> bool:
    leaves = jax.tree.leaves(tree)
    return any(isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.size for v in leaves)


def test_a_checkpoint_holding_a_non_finite_state_is_not_resumed(tmp_path):
    config = dataclasses.replace(CONFIG, checkpoint_dir=str(tmp_path / "good"))
    fit(AE, _rows(20, 0), None, config, KEY)
    good = ckpt.load_checkpoint(tmp_path / "good")
    tree = good.tree
    holder, name = tree["state"], "opt_state"  # Adam's moments: the first float array in them
    while not isinstance(holder[name], np.ndarray):
        holder = holder[name]
        name = next(k for k, v in holder.items() if _holds_floats(v))
    holder[name] = np.full_like(holder[name], np.inf)
    ckpt.save_checkpoint(tmp_path / "bad", tree, epoch=good.epoch, metadata=good.metadata)
    with pytest.raises(ckpt.CheckpointError, match="non-finite parameters or optimizer state"):
        fit(AE, _rows(20, 0), None, dataclasses.replace(CONFIG, epochs=3), resume=tmp_path / "bad")


# ------------------------------------------------------------- 5. failed runs leave nothing


@pytest.mark.parametrize("stream", [False, True])
def test_nan_in_the_data_file_is_named_and_writes_nothing(tmp_path, capsys, stream):
    x = _rows(40, 0)
    x[13, 2] = np.nan
    data = tmp_path / "x.npy"
    np.save(data, x)
    out = tmp_path / "run"
    assert _train(data, out, *(["--stream"] if stream else [])) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert str(data) in err and "NaN" in err and "train_x" not in err
    assert not out.exists()


def test_a_corrupt_image_in_a_streamed_folder_writes_nothing(tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(12):
        pixels = rng.integers(0, 256, (8, 8), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{index:02d}.png")
    (folder / "07.png").write_bytes(b"not an image")
    out = tmp_path / "run"
    argv = ["--stream", "--model", "conv-vae", "--test-size", "0"]
    assert _train(folder, out, *argv) == cli.EXIT_ERROR
    assert "07.png" in capsys.readouterr().err
    assert not out.exists()


def test_a_full_disk_at_the_first_checkpoint_writes_nothing(tmp_path, capsys, monkeypatch):
    data = tmp_path / "x.npy"
    np.save(data, _rows(40, 0))

    def full(directory, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", os.fspath(directory))

    monkeypatch.setattr(ckpt, "save_checkpoint", full)
    out = tmp_path / "run"
    assert _train(data, out) == cli.EXIT_ERROR
    assert "the disk is full" in capsys.readouterr().err
    assert not out.exists()


def test_a_failure_in_an_existing_folder_removes_only_what_it_added(tmp_path):
    data = tmp_path / "x.npy"
    x = _rows(40, 0)
    x[0, 0] = np.inf
    np.save(data, x)
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert _train(data, out, "--stream") == cli.EXIT_ERROR
    assert _files(out) == {"notes.txt": b"mine"}


# ------------------------------------------------------- 6. partial outputs on a full disk


def test_pca_on_a_disk_that_fills_at_any_write_leaves_no_partial_file(tmp_path, monkeypatch):
    # A full disk shows when a file's data are flushed: fsync of the n-th file written fails.
    real_fsync = os.fsync

    def filling_at(failing: int | None, written: list) -> object:
        def fsync(fd):
            if stat.S_ISREG(os.fstat(fd).st_mode):
                written.append(fd)
                if len(written) - 1 == failing:
                    raise OSError(errno.ENOSPC, "No space left on device")
            return real_fsync(fd)

        return fsync

    written: list = []
    monkeypatch.setattr(os, "fsync", filling_at(None, written))
    assert cli.main(["pca", "--out", str(tmp_path / "whole")]) == 0
    files = len(written)
    assert files >= 3  # config.json, the figure, components.npz, metrics.json
    for failing in range(files):
        monkeypatch.setattr(os, "fsync", filling_at(failing, []))
        out = tmp_path / f"full{failing}"
        assert cli.main(["pca", "--out", str(out)]) == cli.EXIT_ERROR
        assert not out.exists(), failing  # a fresh run's folder goes with its failure


def test_figures_and_arrays_replace_earlier_ones_whole_or_not_at_all(tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert cli.main(["pca", "--out", str(out)]) == 0
    before = _files(out)
    monkeypatch.setattr(
        os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left"))
    )
    assert cli.main(["pca", "--out", str(out), "--n-components", "3"]) == cli.EXIT_ERROR
    assert _files(out) == before
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


# ----------------------------------------------------------- 7. squares overflowing float32


def test_data_whose_squares_overflow_float32_is_refused_when_read(tmp_path, capsys):
    data = tmp_path / "huge.npy"
    np.save(data, _rows(40, 0) * 1e30)
    out = tmp_path / "run"
    assert _train(data, out) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert str(data) in err and "overflow float32" in err and "e+30" in err
    assert not out.exists()
    with pytest.raises(ValueError, match=r"train_x holds values up to .*e\+30 .*standardize"):
        fit(AE, _rows(20, 0) * 1e30, None, CONFIG, KEY)


def test_large_data_whose_squares_fit_is_accepted():
    # 1e6 squared is 1e12; Adam's second moments (squared gradients, about 1e24) fit too.
    state, _ = fit(AE, _rows(20, 0) * 1e6, None, dataclasses.replace(CONFIG, epochs=1), KEY)
    assert state.epoch == 1


# ------------------------------------------------------------------------- 8. interrupts


def _interrupt(tmp_path: Path, signum: int) -> tuple[subprocess.CompletedProcess, Path, list]:
    """Starts ``latent-jax train`` for 100,000 epochs, checkpointing only at its end, and
    sends ``signum`` once it has trained two epochs; returns the process, ``--out`` and the
    command without ``--epochs``."""
    data = tmp_path / "x.npy"
    np.save(data, _rows(400, 0))
    out = tmp_path / "run"
    command = [sys.executable, "-m", "latent_jax", "train", "--data", str(data), "--out", str(out)]
    command += ["--checkpoint-every", "0", "--batch-size", "16", "--quiet"]
    process = subprocess.Popen(
        [*command, "--epochs", "100000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    history = out / "history.csv"
    while time.monotonic() < deadline and process.poll() is None:
        if history.exists() and len(history.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    assert process.poll() is None, process.communicate()
    assert not ckpt.list_checkpoints(out / "checkpoints")  # it checkpoints only at its end
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr), out, command


# SIGTERM takes the same path as SIGINT (interrupts.training), so it runs in the slow suite.
@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGINT, 130), pytest.param(signal.SIGTERM, 143, marks=pytest.mark.slow)],
)
def test_a_signal_checkpoints_the_run_and_says_how_to_resume(tmp_path, signum, code):
    done, out, command = _interrupt(tmp_path, signum)
    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr, done.stderr
    saved = ckpt.list_checkpoints(out / "checkpoints")
    assert len(saved) == 1
    epoch, path = saved[0]
    name = signal.Signals(signum).name
    # One line, the last, says where the work is and what to do (the lines before it are the
    # command's progress log).
    assert lines[-1].startswith(f"latent-jax train: interrupted by {name} after epoch {epoch}")
    assert f"checkpoint {path}" in lines[-1] and "the same command with --resume" in lines[-1]
    history = (out / "history.csv").read_text().splitlines()
    assert len(history) == epoch + 1  # the header and every epoch trained
    # The same command plus --resume continues from it (a few epochs more, to end soon).
    resumed = [*command, "--epochs", str(epoch + 2), "--resume"]
    subprocess.run(resumed, check=True, capture_output=True, timeout=300)
    assert ckpt.load_checkpoint(out / "checkpoints").epoch == epoch + 2


# -------------------------------------------------------------------------- 9. downloads


def test_a_failed_download_leaves_no_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(mnist.MIRRORS, mnist.MNIST, ["file:///nonexistent/mirror/"])
    root = tmp_path / "data"
    argv = ["vae", "--data", "mnist", "--download", "--data-dir", str(root)]
    assert cli.main([*argv, "--out", str(tmp_path / "run")]) == cli.EXIT_ERROR
    assert "could not download" in capsys.readouterr().err
    assert not root.exists() and not (tmp_path / "run").exists()
    # A folder that was there stays; only what the download made goes.
    root.mkdir()
    with pytest.raises(ConnectionError):
        mnist.download_mnist(mnist.MNIST, root)
    assert list(root.iterdir()) == []
