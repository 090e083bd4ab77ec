"""Per-epoch history writers: history.csv (one row an epoch, kept through a crash and a resume)
and TensorBoard event files, read back with TensorBoard's own reader."""

from __future__ import annotations

import csv
import dataclasses

import jax
import numpy as np
import pytest

from latent_jax.models.mlp import Autoencoder
from latent_jax.objectives import autoencoder_objective
from latent_jax.train import TrainConfig, fit, fit_many
from latent_jax.train.callbacks import HistoryCSV, TensorBoardWriter, epoch_row

X = np.random.default_rng(0).normal(size=(20, 5)).astype(np.float32)
AE = autoencoder_objective(Autoencoder(input_dim=5, hidden_dims=(4,), latent_dim=2))
# Chunks of 3 epochs: the writers still see one epoch at a time.
CONFIG = TrainConfig(
    learning_rate=1e-2,
    batch_size=8,
    epochs=7,
    epochs_per_call=3,
    quiet=True,
    log_every=0,
    compiler_options={"xla_backend_optimization_level": 0},
)


def _read(path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_history_csv_has_one_row_per_epoch_with_every_metric(tmp_path):
    path = tmp_path / "run" / "history.csv"
    _, history = fit(AE, X, X[:6], CONFIG, jax.random.key(0), callbacks=[HistoryCSV(path)])
    rows = _read(path)
    assert [int(r["epoch"]) for r in rows] == list(range(1, 8))
    assert set(rows[0]) == set(history)  # epoch, epoch_time, train_* and test_*
    assert list(rows[0])[:2] == ["epoch", "epoch_time"]
    for name in ("train_loss", "test_loss"):
        np.testing.assert_allclose([float(r[name]) for r in rows], history[name], rtol=1e-12)


class _Crash(Exception):
    pass


def test_history_csv_survives_a_crash_and_a_resume_rewrites_only_later_epochs(tmp_path):
    path = tmp_path / "history.csv"
    config = dataclasses.replace(CONFIG, checkpoint_dir=str(tmp_path / "ckpt"), checkpoint_every=3)

    def crash(state, history):
        if history.num_epochs == 5:
            raise _Crash

    with pytest.raises(_Crash):
        fit(AE, X, X[:6], config, jax.random.key(1), callbacks=[HistoryCSV(path), crash])
    assert [int(r["epoch"]) for r in _read(path)] == [1, 2, 3, 4, 5]  # flushed as it went
    # The last checkpoint is epoch 6 (written before epoch 5's callbacks ran): the resumed
    # file holds the checkpoint's six epochs and the seventh.
    _, history = fit(
        AE, X, X[:6], config, callbacks=[HistoryCSV(path)], resume=config.checkpoint_dir
    )
    rows = _read(path)
    assert [int(r["epoch"]) for r in rows] == list(range(1, 8))
    np.testing.assert_allclose([float(r["test_loss"]) for r in rows], history["test_loss"])


def test_several_runs_become_one_column_per_run(tmp_path):
    path = tmp_path / "history.csv"
    keys = jax.random.split(jax.random.key(2), 3)
    _, history = fit_many(AE, X, None, CONFIG, keys, callbacks=[HistoryCSV(path)])
    rows = _read(path)
    assert {"train_loss[0]", "train_loss[1]", "train_loss[2]"} <= set(rows[0])
    np.testing.assert_allclose([float(r["train_loss[2]"]) for r in rows], history["train_loss"][2])
    assert epoch_row(history, 0)["epoch"] == 1


def test_tensorboard_events_hold_every_epochs_scalars(tmp_path):
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator"
    )
    with TensorBoardWriter(tmp_path / "tb") as writer:
        _, history = fit(AE, X, X[:6], CONFIG, jax.random.key(3), callbacks=[writer])
    events = event_accumulator.EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train_loss", "test_loss", "epoch_time"} <= tags
    for tag in ("train_loss", "test_reconstruction"):
        scalars = events.Scalars(tag)
        assert [s.step for s in scalars] == list(range(1, 8))
        np.testing.assert_allclose([s.value for s in scalars], history[tag], rtol=1e-6)
