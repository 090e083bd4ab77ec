"""load_run: a run folder reloads its model, variables, config, normalizer and history; only
latent_jax's own model classes are ever built from a file."""

from __future__ import annotations

import dataclasses
import json

import jax
import numpy as np
import pytest
from numerics import assert_bitwise, assert_trees_bitwise

from latent_jax import runs
from latent_jax.data import Standardizer
from latent_jax.models.conv import ConvSpec, ConvVAE
from latent_jax.models.factorvae import FactorVAE
from latent_jax.models.inference import predict
from latent_jax.models.mlp import Autoencoder
from latent_jax.models.spec import MODEL_CLASSES, SpecError, build_module, module_spec
from latent_jax.models.vampprior import VampPrior
from latent_jax.objectives import autoencoder_objective, vae_objective
from latent_jax.runs import checkpoint as ckpt
from latent_jax.train import TrainConfig, fit, fit_many

FAST = {"xla_backend_optimization_level": 0}
CONFIG = TrainConfig(
    learning_rate=1e-2, batch_size=8, epochs=3, quiet=True, log_every=0, compiler_options=FAST
)
X = np.random.default_rng(0).normal(size=(24, 5)).astype(np.float32)
# 8x8 images, one strided conv with BatchNorm: a ConvVAE with batch_stats that compiles fast.
TINY_CONV_VAE = ConvVAE(
    image_shape=(8, 8, 1),
    hidden_dim=8,
    latent_dim=2,
    encoder_convs=(ConvSpec(4, 3, 2, 1, batch_norm=True),),
    decoder_convs=(),
    output_conv=(4, 2, 1),
)


def test_every_registered_model_round_trips_through_its_json_spec():
    conv = TINY_CONV_VAE
    for module in (
        conv,
        Autoencoder(input_dim=5, hidden_dims=(4, 3)),
        *(cls() for cls in MODEL_CLASSES.values() if cls not in (FactorVAE, VampPrior)),
        FactorVAE(vae=conv, discriminator_width=7),  # a wrapper: its VAE is a nested spec
        VampPrior(vae=conv, n_pseudo_inputs=7, pseudo_input_range=(0.0, 1.0)),
    ):
        spec = json.loads(json.dumps(module_spec(module)))
        assert build_module(spec) == module
    assert module_spec(object()) is None


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"class": "os.system", "fields": {}}, "does not build"),
        ({"class": "Autoencoder", "fields": {"evil": 1}}, r"has no fields \['evil'\]"),
        ({"class": "ConvVAE", "fields": {"encoder_convs": [{"Popen": {}}]}}, "unknown value"),
        ("Autoencoder", "a model spec is"),
    ],
)
def test_a_spec_outside_the_allow_list_is_refused(spec, match):
    with pytest.raises(SpecError, match=match):
        build_module(spec, where="run.json")


def test_a_fit_checkpoint_dir_reloads_in_one_call(tmp_path):
    model = Autoencoder(input_dim=5, hidden_dims=(4,), latent_dim=2)
    config = dataclasses.replace(CONFIG, checkpoint_dir=str(tmp_path))
    state, history = fit(autoencoder_objective(model), X, X[:6], config, jax.random.key(0))
    run = runs.load_run(tmp_path)
    assert run.model == model and run.epoch == 3 and run.n_runs is None
    assert_trees_bitwise(run.variables, state.variables)
    assert_bitwise(run.history["test_loss"], history["test_loss"])
    np.testing.assert_array_equal(run.history["epoch"], [1, 2, 3])
    assert run.train_config == config
    # The reloaded model reconstructs exactly as the trained one does: run.apply is predict,
    # the same compiled program for these 6 rows, on the same (restored) parameters.
    assert_bitwise(run.apply(X[:6]), predict(model, state.variables, X[:6]))
    assert_bitwise(run.encode(X[:6]), predict(model, state.variables, X[:6], method="encode"))


def test_a_run_folder_brings_its_config_normalizer_metrics_and_batch_norm(tmp_path):
    images = np.random.default_rng(1).uniform(size=(12, 8, 8, 1)).astype(np.float32)
    model = TINY_CONV_VAE
    config = dataclasses.replace(CONFIG, checkpoint_dir=str(tmp_path / runs.CHECKPOINTS))
    state, _ = fit(vae_objective(model), images, None, config, jax.random.key(1))
    runs.write_config(
        tmp_path,
        command="vae",
        data={"source": "test"},
        model={"latent_dim": 2},
        training=config,
        seed=1,
        preset="tiny",
    )
    normalizer = Standardizer(np.float64(0.5), np.float64(0.25))
    (tmp_path / runs.NORMALIZER).write_text(json.dumps(normalizer.to_dict()))
    (tmp_path / runs.METRICS).write_text(json.dumps({"test_loss": 1.5}))
    run = runs.load_run(tmp_path)
    assert run.config["command"] == "vae" and run.config["preset"] == "tiny"
    assert run.config["training"]["epochs"] == 3 and run.train_config == config
    assert run.metrics == {"test_loss": 1.5}
    assert float(run.normalizer.mean) == 0.5 and float(run.normalizer.std) == 0.25
    assert "batch_stats" in run.variables
    assert_trees_bitwise(run.variables, state.variables)
    mean, _ = run.encode(images[:3])
    assert_bitwise(mean, predict(model, state.variables, images[:3], method="encode")[0])


def test_several_runs_reload_together_and_one_by_one(tmp_path):
    model = Autoencoder(input_dim=5, hidden_dims=(4,), latent_dim=2)
    keys = jax.random.split(jax.random.key(2), 3)
    config = dataclasses.replace(CONFIG, checkpoint_dir=str(tmp_path))
    state, history = fit_many(autoencoder_objective(model), X, X[:6], config, keys)
    run = runs.load_run(tmp_path)
    assert run.n_runs == 3 and run.history["train_loss[2]"].shape == (3,)
    with pytest.raises(ValueError, match="call select"):
        run.apply(X[:2])
    second = run.select(1)
    assert_bitwise(second.history["test_loss"], history["test_loss"][1])
    assert_trees_bitwise(second.variables, jax.tree.map(lambda b: b[1], state.variables))
    assert second.apply(X[:2]).shape == (2, 5)


def test_folders_latent_jax_did_not_write_are_refused_by_name(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        runs.load_run(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="has no checkpoints"):
        runs.load_run(tmp_path)
    state = {"state": {"params": {"w": np.zeros(2, np.float32)}, "model_state": {}}}
    foreign = tmp_path / "foreign"
    meta = {"kind": "latent_jax.train", "model_spec": {"class": "subprocess.Popen", "fields": {}}}
    ckpt.save_checkpoint(foreign, state, epoch=1, metadata=meta)
    with pytest.raises(ValueError, match=r"checkpoint_00000001\.json names the model class"):
        runs.load_run(foreign)
    old = tmp_path / "old"
    ckpt.save_checkpoint(old, state, epoch=1, metadata={"kind": "latent_jax.train"})
    with pytest.raises(ValueError, match="older latent_jax"):
        runs.load_run(old)
    other = tmp_path / "other"
    ckpt.save_checkpoint(other, state, epoch=1, metadata={"kind": "something else"})
    with pytest.raises(ValueError, match="not a latent_jax training checkpoint"):
        runs.load_run(other)
    parent = tmp_path / "parent"
    ckpt.save_checkpoint(parent / "autoencoder" / runs.CHECKPOINTS, state, epoch=1, metadata=meta)
    with pytest.raises(ValueError, match=r"holds the runs \['autoencoder'\]"):
        runs.load_run(parent)
