"""Resuming on purpose: interrupted runs end bit-identical, other models, objectives and data
are refused by name, optimizer changes are allowed when asked and recorded, edited
manifests are refused, a full disk keeps the last good checkpoint, and a diverging call keeps
its good epochs."""

from __future__ import annotations

import dataclasses
import errno
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numerics import assert_bitwise, assert_trees_bitwise

from latent_jax import corruption, schedules
from latent_jax.models.mlp import VAE, Autoencoder
from latent_jax.objectives import (
    Objective,
    autoencoder_objective,
    denoising_objective,
    vae_objective,
)
from latent_jax.runs import checkpoint as ckpt
from latent_jax.train import NonFiniteLossError, TrainConfig, fit
from latent_jax.train.checkpoints import run_metadata

KEY = jax.random.key(0)
X = np.random.default_rng(0).normal(size=(12, 6)).astype(np.float32)
X_TEST = X[:4]
BASE = TrainConfig(
    learning_rate=1e-2,
    batch_size=4,
    epochs=4,
    epochs_per_call=2,
    log_every=0,
    quiet=True,
    compiler_options={"xla_backend_optimization_level": 0},
)
AE = autoencoder_objective(Autoencoder(input_dim=6, hidden_dims=(4,), latent_dim=2))
MODEL_VAE = VAE(input_dim=6, hidden_dims=(4,), latent_dim=2)
GAUSSIAN_VAE = vae_objective(MODEL_VAE, likelihood="gaussian")


# A resumed run replays the uninterrupted run's compiled programs on the same state: rule 1 of
# tests/numerics.py, bit for bit.
def _same_tree(a, b) -> None:
    assert_trees_bitwise(a, b)


def _same_history(a, b) -> None:
    assert set(a) == set(b)
    for name in a:
        if name != "epoch_time":
            assert_bitwise(a[name], b[name], err_msg=name)


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory):
    """An uninterrupted 4-epoch run, checkpointing every epoch."""
    folder = tmp_path_factory.mktemp("ae")
    config = dataclasses.replace(BASE, checkpoint_dir=str(folder), checkpoint_every=1)
    state, history = fit(AE, X, X_TEST, config, KEY)
    return folder, config, state, history


@pytest.fixture(scope="module")
def vae_checkpoint(tmp_path_factory):
    """A Gaussian VAE's checkpoint metadata at epoch 1 (what resuming checks first), over a
    payload without a state: nothing is initialized or compiled."""
    folder = tmp_path_factory.mktemp("vae")
    meta = run_metadata(BASE, GAUSSIAN_VAE, 1, len(X), 0, (6,), None, str(jax.random.key_impl(KEY)))
    tree = {"state": {}, "history": {}, "key_data": np.asarray(jax.random.key_data(KEY))}
    ckpt.save_checkpoint(folder, tree, epoch=1, metadata=meta)
    return folder


class _Interrupt(Exception):
    pass


def test_a_run_interrupted_in_a_callback_resumes_to_the_same_history_and_parameters(
    ae_run, tmp_path
):
    _, config, state, history = ae_run
    config = dataclasses.replace(config, checkpoint_dir=str(tmp_path))

    def interrupt(state, history):
        if history.num_epochs == 3:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        fit(AE, X, X_TEST, config, KEY, callbacks=[interrupt])
    assert ckpt.load_checkpoint(tmp_path).epoch == 3  # checkpointed before the callbacks
    resumed, resumed_history = fit(AE, X, X_TEST, config, resume=tmp_path)
    _same_tree(resumed, state)
    _same_history(resumed_history, history)
    assert list(resumed_history) == list(history)  # the columns in their order
    assert ckpt.read_metadata(tmp_path)["resumed"] == [{"epoch": 3, "changed": {}}]


@pytest.mark.parametrize(
    ("objective", "match"),
    [
        (
            vae_objective(MODEL_VAE, likelihood="bernoulli"),
            "objective likelihood: checkpoint has 'gaussian', this run 'bernoulli'",
        ),
        (
            vae_objective(MODEL_VAE, schedules.constant(50.0), likelihood="gaussian"),
            r"objective beta_schedule: checkpoint has 'latent_jax.schedules.constant\(value=1.0\)'"
            r", this run 'latent_jax.schedules.constant\(value=50.0\)'",
        ),
        (
            vae_objective(VAE(input_dim=6, hidden_dims=(4,), latent_dim=3), likelihood="gaussian"),
            "model latent_dim: checkpoint has 2, this run 3",
        ),
        (AE, "model class: checkpoint has 'VAE', this run 'Autoencoder'"),
    ],
)
def test_resume_refuses_another_model_or_objective_naming_the_field(
    vae_checkpoint, objective, match
):
    with pytest.raises(ValueError, match=match):
        fit(objective, X, None, BASE, resume=vae_checkpoint)


def test_resume_refuses_a_denoising_objective_on_an_autoencoders_checkpoint(ae_run):
    folder = ae_run[0]
    denoising = denoising_objective(AE.model, corruption.gaussian(0.1))
    with pytest.raises(ValueError, match="objective name: checkpoint has 'autoencoder', this run"):
        fit(denoising, X, X_TEST, BASE, resume=folder)
    with pytest.raises(ValueError, match="n_train=12, this call has n_train=8"):
        fit(AE, X[:8], X_TEST, BASE, resume=folder)


def test_changing_the_learning_rate_needs_asking_and_is_recorded(ae_run, tmp_path):
    folder, config, _, _ = ae_run
    manifest = ckpt.list_checkpoints(folder)[0][1]  # epoch 3
    gentler = dataclasses.replace(config, learning_rate=1e-3, checkpoint_dir=str(tmp_path))
    with pytest.raises(
        ValueError,
        match=r"learning_rate: checkpoint has 0.01, this run 0.001.*"
        r"allow_changes=\('learning_rate',\)",
    ):
        fit(AE, X, X_TEST, gentler, resume=manifest)
    with pytest.raises(ValueError, match="allow_changes may name only the optimizer settings"):
        fit(AE, X, X_TEST, gentler, resume=manifest, allow_changes=("batch_size",))
    _, history = fit(AE, X, X_TEST, gentler, resume=manifest, allow_changes=("learning_rate",))
    assert history.num_epochs == 4
    record = {"epoch": 3, "changed": {"learning_rate": [0.01, 0.001]}}
    assert ckpt.read_metadata(tmp_path)["resumed"] == [record]


def test_an_edited_manifest_is_refused_naming_the_file(ae_run, tmp_path):
    folder, config, _, _ = ae_run
    _, manifest = ckpt.list_checkpoints(folder)[-1]
    copy = tmp_path / "checkpoint_00000004.json"
    for edit in ({"epoch": 2}, {"metadata": {"n_train": 11}}):
        data = json.loads(Path(manifest).read_text())
        payload = (folder / data["payload"]).read_bytes()
        (tmp_path / data["payload"]).write_bytes(payload)
        for name, value in edit.items():
            data[name] = {**data[name], **value} if isinstance(value, dict) else value
        copy.write_text(json.dumps(data))
        with pytest.raises(ckpt.CheckpointError, match=f"{copy}.*modified after it was written"):
            fit(AE, X, X_TEST, config, resume=copy)


def test_a_full_disk_keeps_the_last_good_checkpoint_and_says_how_much_space(tmp_path, monkeypatch):
    config = dataclasses.replace(BASE, checkpoint_dir=str(tmp_path), checkpoint_every=2)
    real_write = ckpt.atomic_write

    def full_after_epoch_2(path, data):
        if ckpt.list_checkpoints(tmp_path):
            raise OSError(errno.ENOSPC, "No space left on device", path)
        real_write(path, data)

    monkeypatch.setattr(ckpt, "atomic_write", full_after_epoch_2)
    with pytest.raises(ckpt.CheckpointWriteError) as info:
        fit(AE, X, X_TEST, config, KEY)
    error = info.value
    assert error.errno == errno.ENOSPC and error.directory == str(tmp_path)
    assert error.nbytes > 0
    assert f"cannot write a checkpoint into {tmp_path}: the disk is full" in str(error)
    assert f"needs {error.nbytes} bytes" in str(error)
    monkeypatch.undo()
    assert ckpt.load_checkpoint(tmp_path).epoch == 2
    assert len(list(tmp_path.glob("*.msgpack"))) == 1


@pytest.mark.slow  # a compile of its own; test_train checks the epochs kept in the default run
def test_a_diverging_call_keeps_its_good_epochs(ae_run, tmp_path):
    def loss(params, model_state, batch, key, step, epoch, train=True):
        value, (metrics, state) = AE.loss(params, model_state, batch, key, step, epoch, train)
        value = value + jnp.where(epoch >= 2, jnp.nan, 0.0)
        return value, ({**metrics, "loss": value}, state)

    blowing = Objective(AE.init, loss, AE.model, AE.name)
    config = dataclasses.replace(BASE, epochs=6, epochs_per_call=6, checkpoint_dir=str(tmp_path))
    with pytest.raises(NonFiniteLossError, match="non-finite loss at epoch 3") as info:
        fit(blowing, X, X_TEST, config, KEY)
    # Epochs 1 and 2 ran in the failing call; they are kept, and checkpointed.
    assert info.value.history.num_epochs == 2
    assert ckpt.load_checkpoint(info.value.checkpoint).epoch == 2
    _same_history(info.value.history, ae_run[3].head(2))
