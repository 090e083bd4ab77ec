"""Objectives and models are found by name: the registries, the capacity-annealed β-VAE
(an objective added through them) and pythae's MNIST VAE (a model added through them),
trained, reloaded and sampled end to end."""

from __future__ import annotations

import dataclasses
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numerics import assert_close

from latent_jax import cli, generate, objectives, runs
from latent_jax.models import registry
from latent_jax.models.benchmark_nets import PythaeMNISTVAE
from latent_jax.models.mlp import VAE
from latent_jax.models.spec import SpecError, build_module, module_spec
from latent_jax.objectives import Batch, annealed_vae_objective, build_objective, vae_objective
from latent_jax.train import TrainConfig, fit

KEY = jax.random.key(0)
SMALL_VAE = VAE(input_dim=6, hidden_dims=(5,), latent_dim=2)


def _rows(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 6)).astype(np.float32)


def _loss(objective, variables, x, epoch: int, key=KEY):
    params = variables["params"]
    state = {k: v for k, v in variables.items() if k != "params"}
    batch = Batch(jnp.asarray(x), jnp.ones(len(x), jnp.float32))
    count = jnp.int32(epoch)
    return objective.loss(params, state, batch, key, count, count, False)


# ---------------------------------------------------------------------- the objective registry


def test_every_objective_is_listed_by_its_command_line_name():
    family = ("beta-tcvae", "dip-vae-i", "dip-vae-ii", "factorvae", "infovae-mmd", "rae-gp")
    family += ("rae-l2", "wae-mmd")
    family += ("ciwae", "miwae", "piwae")
    family += ("vamp",)
    assert objectives.available() == tuple(
        sorted(("annealed-vae", "autoencoder", "elbo", "iwae", "vq-vae", *family))
    )
    assert objectives.available("vq-vae") == ("vq-vae",)
    assert objectives.available("vae") == tuple(sorted(("annealed-vae", "elbo", "iwae", *family)))
    entry = objectives.objective_entry("annealed-vae")
    assert entry.trains == "vae" and entry.accepts("gamma") and not entry.accepts("k")
    assert [o.flag for o in entry.options][2:] == ["--gamma", "--capacity-max", "--capacity-epochs"]


def test_building_by_name_fills_defaults_and_refuses_what_does_not_apply():
    iwae = build_objective("iwae", SMALL_VAE, k=3)
    assert iwae.describe()["k"] == 3 and iwae.describe()["likelihood"] == "sse"
    with pytest.raises(ValueError, match=r"objective 'elbo' takes no \['k'\]"):
        build_objective("elbo", SMALL_VAE, k=3)
    with pytest.raises(ValueError, match=r"objective must be one of .*'elbo'.*got 'vea'"):
        build_objective("vea", SMALL_VAE)
    with pytest.raises(ValueError, match="capacity_epochs is needed"):
        build_objective("annealed-vae", SMALL_VAE)


def test_a_name_cannot_be_registered_twice():
    with pytest.raises(ValueError, match="'elbo' is registered already"):
        objectives.register_objective("elbo", trains="vae")(lambda model: None)
    with pytest.raises(ValueError, match="its builder takes no"):
        objectives.register_objective(
            "x", trains="vae", options=(objectives.Option("gamma", float, 1.0, ""),)
        )(lambda model: None)


# ------------------------------------------------------------- the capacity-annealed β-VAE


def test_the_capacity_rises_linearly_then_stays():
    objective = annealed_vae_objective(SMALL_VAE, gamma=2.0, capacity_max=3.0, capacity_epochs=4)
    x = _rows(8)
    variables = objective.init(KEY, x)
    capacities = [float(_loss(objective, variables, x, e)[1][0]["capacity"]) for e in range(7)]
    assert capacities == [0.0, 0.75, 1.5, 2.25, 3.0, 3.0, 3.0]


@pytest.mark.parametrize("epoch", [0, 2, 9])
def test_the_loss_is_reconstruction_plus_gamma_times_the_gap(epoch):
    objective = annealed_vae_objective(SMALL_VAE, gamma=7.0, capacity_max=2.0, capacity_epochs=4)
    x = _rows(8)
    variables = objective.init(KEY, x)
    value, (metrics, _) = _loss(objective, variables, x, epoch)
    gap = abs(float(metrics["kl"]) - float(metrics["capacity"]))
    assert_close(metrics["kl_gap"], gap, ops=1)
    # rec + 7 * gap: a product and a sum.
    assert_close(value, float(metrics["reconstruction"]) + 7.0 * gap, ops=2)


def test_at_zero_capacity_and_gamma_one_it_is_the_vaes_negative_elbo():
    # C(0) = 0 and the KL is >= 0: |KL - 0| = KL, so the loss is the ELBO's, draw for draw.
    annealed = annealed_vae_objective(SMALL_VAE, gamma=1.0, capacity_max=5.0, capacity_epochs=3)
    plain = vae_objective(SMALL_VAE)
    x = _rows(8)
    variables = annealed.init(KEY, x)
    got, (got_metrics, _) = _loss(annealed, variables, x, 0)
    want, (want_metrics, _) = _loss(plain, variables, x, 0)
    for name in ("reconstruction", "kl"):
        assert float(got_metrics[name]) == float(want_metrics[name])  # the same terms' program
    assert_close(got, want, ops=2)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="gamma"):
        annealed_vae_objective(SMALL_VAE, gamma=0.0, capacity_epochs=3)
    with pytest.raises(ValueError, match="capacity_max"):
        annealed_vae_objective(SMALL_VAE, capacity_max=-1.0, capacity_epochs=3)
    with pytest.raises(ValueError, match="capacity_epochs must be >= 1"):
        annealed_vae_objective(SMALL_VAE, capacity_epochs=0)


def test_train_takes_the_annealed_objective_its_flags_and_records_them(tmp_path, capsys):
    data = tmp_path / "x.npy"
    np.save(data, _rows(60))
    out = tmp_path / "run"
    argv = ["train", "--data", str(data), "--model", "vae", "--hidden-dims", "5"]
    argv += ["--latent-dim", "2", "--epochs", "5", "--batch-size", "16", "--quiet"]
    flags = ["--objective", "annealed-vae", "--gamma", "4", "--capacity-max", "2"]
    assert cli.main([*argv, *flags, "--capacity-epochs", "4", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["history"]["train_capacity"] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert {"train_kl", "train_kl_gap", "test_capacity"} <= set(metrics["history"])
    config = json.loads((out / "config.json").read_text())
    assert config["settings"]["objective"] == "annealed-vae"
    assert config["settings"]["gamma"] == 4.0 and config["settings"]["capacity_epochs"] == 4
    run = runs.load_run(out)
    assert run.model == VAE(input_dim=6, hidden_dims=(5,), latent_dim=2)
    assert generate.sample_prior(KEY, run.model, run.variables, 3).shape == (3, 6)
    # Without --capacity-epochs the capacity rises over the whole run.
    again = tmp_path / "whole"
    assert cli.main([*argv, *flags, "--out", str(again)]) == 0
    history = json.loads((again / "metrics.json").read_text())["history"]
    assert_close(history["train_capacity"], [0.0, 0.4, 0.8, 1.2, 1.6], ops=2)  # 2 * e / 5
    # An option of another objective is refused by name, before anything is written.
    assert cli.main([*argv, "--gamma", "4", "--out", str(tmp_path / "x")]) == cli.EXIT_ERROR
    users = "annealed-vae or beta-tcvae or factorvae"
    assert f"--gamma 4.0 is an option of --objective {users}, not of --objective elbo" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_the_vae_command_takes_the_annealed_objective(tmp_path, capsys):
    out = tmp_path / "faces"
    argv = ["vae", "--preset", "cpu-demo", "--epochs", "2", "--objective", "annealed-vae"]
    argv += ["--gamma", "2", "--capacity-max", "10", "--capacity-epochs", "2", "--quiet"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["beta_schedule"] == "none (--objective annealed-vae)"
    assert metrics["final_beta"] is None and metrics["final_capacity"] == 5.0
    assert "capacity C = 5 nats" in capsys.readouterr().out


# -------------------------------------------------------------------------- the model registry


def test_every_library_model_is_registered_and_the_named_ones_are_chosen_by_name():
    names = registry.model_entries()
    assert set(names) == {"ae", "vae", "conv-vae", "conv-ae", "pythae-mnist-vae", "vq-vae"}
    assert set(registry.model_entries(kind="vq-vae")) == {"vq-vae"}
    assert registry.model_entry("pythae-mnist-vae").cls is PythaeMNISTVAE
    assert set(registry.model_entries(kind="vae")) == {"vae", "conv-vae", "pythae-mnist-vae"}
    with pytest.raises(ValueError, match="model must be one of"):
        registry.model_entry("resnet")
    assert "PythaeMNISTVAE" in registry.model_classes() and "DCGAN" in registry.model_classes()


def test_a_model_registered_outside_the_library_is_rebuilt_from_its_spec():
    @registry.register_model
    class TinyTestModel(nn.Module):
        width: int = 3

        @nn.compact
        def __call__(self, x):
            return nn.Dense(self.width)(x)

    spec = module_spec(TinyTestModel(width=4))
    assert spec == {"class": "TinyTestModel", "fields": {"width": 4}}
    assert build_module(spec) == TinyTestModel(width=4)
    with pytest.raises(SpecError, match="'Unregistered', which latent_jax does not build"):
        build_module({"class": "Unregistered", "fields": {}})
    with pytest.raises(ValueError, match="registered already"):

        @registry.register_model
        class TinyTestModel(nn.Module):  # another class of the same name
            pass


def test_a_named_model_needs_a_kind_an_architecture_and_a_builder():
    with pytest.raises(ValueError, match="needs kind in"):
        registry.register_model(name="x", kind="gan", architecture="mlp")(VAE)
    with pytest.raises(TypeError, match="needs a for_data"):

        @registry.register_model(name="y", kind="vae", architecture="mlp")
        class NoBuilder(nn.Module):
            pass


def test_sample_prior_asks_the_model_for_its_prior():
    class ShiftedPriorVAE(nn.Module):
        """A VAE whose prior is N(5, I): its latents come from its own sample_latents."""

        latent_dim: int = 2

        @nn.compact
        def decode(self, z, **kwargs):
            return z

        def sample_latents(self, key, n):
            return 5.0 + jax.random.normal(key, (n, self.latent_dim))

        def __call__(self, x):
            return self.decode(x)

    model = ShiftedPriorVAE()
    variables = model.init(KEY, jnp.zeros((1, 2)))
    draws = generate.sample_prior(KEY, model, variables, 400)
    assert abs(float(np.mean(draws)) - 5.0) < 0.2
    plain = generate.sample_prior(KEY, SMALL_VAE, SMALL_VAE.init(KEY, _rows(2), KEY), 4)
    assert plain.shape == (4, 6)  # latent_dim from the model


# ---------------------------------------------------------------- pythae's MNIST VAE


def test_pythaes_mnist_vae_has_pythaes_layout_and_size():
    model = PythaeMNISTVAE()
    x = jnp.zeros((2, 28, 28, 1))
    variables = jax.eval_shape(lambda: model.init(KEY, x, KEY))
    count = sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(variables["params"]))
    assert count == 17_232_033  # pythae's Encoder_Conv_VAE_MNIST + Decoder_Conv_AE_MNIST
    shapes = jax.eval_shape(model.apply, variables, x, KEY)
    assert [s.shape for s in shapes] == [(2, 28, 28, 1), (2, 16), (2, 16)]
    with pytest.raises(
        ValueError, match=r"take 28x28 images .* got examples of shape \(32, 32, 1\)"
    ):
        PythaeMNISTVAE.for_data((32, 32, 1), latent_dim=4)


@pytest.mark.slow
def test_pythaes_mnist_vae_trains_reloads_and_samples(tmp_path):
    model = PythaeMNISTVAE(latent_dim=3, encoder_features=(4, 4, 8, 8), decoder_features=(8, 4))
    x = np.random.default_rng(0).uniform(size=(24, 28, 28, 1)).astype(np.float32)
    objective = vae_objective(model, likelihood="bernoulli")
    config = TrainConfig(epochs=3, batch_size=8, quiet=True, checkpoint_dir=str(tmp_path))
    _, history = fit(objective, x, x[:8], config, KEY)
    assert history["train_loss"][-1] < history["train_loss"][0]
    run = runs.load_run(tmp_path)
    assert run.model == model and "batch_stats" in run.variables
    samples = generate.sample_prior(KEY, run.model, run.variables, 5)
    assert samples.shape == (5, 28, 28, 1) and bool(jnp.all(jnp.isfinite(samples)))
    assert dataclasses.asdict(run.train_config)["epochs"] == 3


@pytest.mark.slow
def test_train_trains_pythaes_mnist_vae_by_name_at_full_width(tmp_path):
    from latent_jax.data.mnist import load_mnist_5k

    images, _ = load_mnist_5k()
    data = tmp_path / "digits.npy"
    np.save(data, images[:64].astype(np.float32))
    out = tmp_path / "run"
    argv = ["train", "--data", str(data), "--model", "pythae-mnist-vae", "--latent-dim", "16"]
    argv += ["--likelihood", "bernoulli", "--epochs", "1", "--batch-size", "32", "--quiet"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    assert runs.load_run(out).model == PythaeMNISTVAE(latent_dim=16)
