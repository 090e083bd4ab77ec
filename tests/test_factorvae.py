"""FactorVAE (Kim & Mnih 2018): the dimension-wise permutation, both groups' losses against
float64 NumPy written from the paper, the discriminator's density-ratio estimate of a
Gaussian's total correlation, and a run trained, recorded, reloaded and sampled."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from numerics import assert_close

from latent_jax import cli, generate, runs
from latent_jax.models.factorvae import FactorVAE, TotalCorrelationDiscriminator
from latent_jax.models.mlp import VAE
from latent_jax.models.spec import build_module, module_spec
from latent_jax.objectives import Batch, factorvae_objective, vae_objective
from latent_jax.objectives.factorvae import permute_dimensions

KEY = jax.random.key(0)
SMALL_VAE = VAE(input_dim=6, hidden_dims=(5,), latent_dim=3)


def _batch(n: int = 8, padding: int = 0, seed: int = 0) -> Batch:
    x = np.random.default_rng(seed).normal(size=(n + padding, 6)).astype(np.float32)
    mask = np.r_[np.ones(n), np.zeros(padding)].astype(np.float32)
    return Batch(jnp.asarray(x), jnp.asarray(mask))


def _split(variables):
    return variables["params"], {k: v for k, v in variables.items() if k != "params"}


def _np_mlp(layers, z: np.ndarray, slope: float = 0.2) -> np.ndarray:
    """The discriminator in float64: leaky-ReLU hidden layers, one linear logit."""
    h = np.asarray(z, np.float64)
    for i, (kernel, bias) in enumerate(layers):
        h = h @ np.asarray(kernel, np.float64) + np.asarray(bias, np.float64)
        if i < len(layers) - 1:
            h = np.where(h > 0, h, slope * h)
    return h[:, 0]


def _layers(discriminator_params, depth: int):
    names = [f"dense{i}" for i in range(depth)] + ["logit"]
    return [(discriminator_params[n]["kernel"], discriminator_params[n]["bias"]) for n in names]


def _softplus(a: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, a)


def test_permuting_shuffles_each_dimension_of_the_real_rows_on_its_own():
    z = jnp.arange(40.0).reshape(10, 4)
    mask = jnp.asarray([1.0] * 7 + [0.0] * 3)
    permuted, permuted_mask = permute_dimensions(KEY, z, mask)
    assert permuted_mask.tolist() == [1.0] * 7 + [0.0] * 3
    columns = np.asarray(permuted)[:7]
    for k in range(4):  # each column: the real rows' values, each once
        assert sorted(columns[:, k].tolist()) == np.asarray(z)[:7, k].tolist()
    # The rows of the columns come from independent permutations, not one shared.
    rows = (columns - np.arange(4)) / 4
    assert not all(np.array_equal(rows[:, 0], rows[:, k]) for k in range(1, 4))
    # Real rows anywhere in the batch: only they are drawn.
    scattered = jnp.asarray([0.0, 1.0] * 5)
    picked, picked_mask = permute_dimensions(KEY, z, scattered)
    assert float(picked_mask.sum()) == 5.0
    assert set(np.asarray(picked)[:5, 0].tolist()) == {4.0, 12.0, 20.0, 28.0, 36.0}


@pytest.mark.numerics
@pytest.mark.parametrize("padding", [0, 3])
def test_both_losses_are_the_papers_formulas(padding):
    """The VAE's loss is rec + KL + gamma E_q[log D/(1 - D)] and the discriminator's the
    cross-entropy of Algorithm 2, against float64 NumPy on the same draws."""
    objective = factorvae_objective(
        SMALL_VAE, gamma=3.0, discriminator_width=7, discriminator_depth=2
    )
    batch = _batch(8, padding)
    variables = objective.init(KEY, batch.x)
    params, state = _split(variables)
    key = jax.random.key(5)
    _, (metrics, _) = objective.loss(params, state, batch, key, 0, 0, True)
    # The draws the VAE decodes: z = mean + exp(logvar / 2) eps, eps from the sample key.
    sample_key, _ = jax.random.split(key)
    mean, logvar = objective.model.apply(variables, batch.x, method="encode")
    eps = np.asarray(jax.random.normal(sample_key, mean.shape), np.float64)
    mean, logvar = np.asarray(mean, np.float64), np.asarray(logvar, np.float64)
    z = mean + np.exp(0.5 * logvar) * eps
    real = np.asarray(batch.mask) > 0
    layers = _layers(params["discriminator"], 2)
    tc = _np_mlp(layers, z)[real].mean()
    codes = jnp.asarray(z, jnp.float32)
    output = np.asarray(objective.model.apply(variables, codes, method="decode"))
    rec = np.sum((output - np.asarray(batch.x)) ** 2, axis=1)[real].mean()
    kl = (0.5 * np.sum(mean**2 + np.exp(logvar) - 1.0 - logvar, axis=1))[real].mean()
    # rec: a decoder of fan-ins 3 + 5 and a sum of 6 squares; tc: fan-ins 3 + 7 + 7 and the
    # mean of 8 logits, after the draw (NORMAL_OPS is inside z).
    assert_close(metrics["tc"], tc, ops=60)
    assert_close(metrics["reconstruction"], rec, ops=60)
    assert_close(metrics["kl"], kl, ops=60)
    assert_close(metrics["vae_loss"], rec + kl + 3.0 * tc, ops=120)
    # The discriminator: real draws against the dimension-wise permutation of the same draws.
    shuffled, shuffled_mask = permute_dimensions(
        jax.random.fold_in(key, 1), jnp.asarray(z, jnp.float32), batch.mask
    )
    joint = _np_mlp(layers, z)[real]
    product = _np_mlp(layers, np.asarray(shuffled, np.float64))[np.asarray(shuffled_mask) > 0]
    loss_d = _softplus(-joint).mean() + _softplus(product).mean()
    assert_close(metrics["discriminator_loss"], loss_d, ops=120)
    accuracy = 0.5 * ((joint > 0).mean() + (product < 0).mean())
    assert float(metrics["discriminator_accuracy"]) == pytest.approx(accuracy, abs=1e-6)
    assert_close(metrics["loss"], rec + kl + 3.0 * tc + loss_d, ops=240)


@pytest.mark.slow
def test_each_group_is_differentiated_into_its_own_parameters_only():
    objective = factorvae_objective(SMALL_VAE, discriminator_width=5, discriminator_depth=1)
    batch = _batch(6)
    params, state = _split(objective.init(KEY, batch.x))

    def grads(group):
        loss = objective.group_losses[group]
        return jax.grad(lambda p: loss(p, state, batch, KEY, 0, 0, True)[0])(params)

    # The discriminator's loss does not reach the VAE (its codes are detached).
    to_vae = grads("discriminator")["vae"]
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(to_vae))
    # The VAE's loss reaches the encoder through gamma * tc.
    assert float(jnp.abs(grads("vae")["vae"]["mean_layer"]["kernel"]).max()) > 0.0


def test_with_gamma_zero_the_vae_group_is_the_vae():
    objective = factorvae_objective(
        SMALL_VAE, gamma=0.0, discriminator_width=5, discriminator_depth=1
    )
    batch = _batch(8, 2)
    variables = objective.init(KEY, batch.x)
    params, state = _split(variables)
    value, _ = objective.group_losses["vae"](params, state, batch, KEY, 0, 0, True)
    plain = vae_objective(SMALL_VAE)
    expected, _ = plain.loss(params["vae"], {}, batch, KEY, 0, 0, True)
    assert_close(value, expected, ops=40)  # the same program but for a zero term added


def _train_discriminator(codes: np.ndarray, steps: int = 600) -> tuple[float, float]:
    """Trains a discriminator on (z, permuted z) as FactorVAE's second group does; returns
    its accuracy on fresh draws and its mean logit on them (the TC estimate)."""
    disc = TotalCorrelationDiscriminator(width=64, depth=2)
    params = disc.init(KEY, jnp.zeros((2, codes.shape[1])))
    optimizer = optax.adam(3e-3)
    opt_state = optimizer.init(params)
    train, held_out = jnp.asarray(codes[:4000]), jnp.asarray(codes[4000:])
    ones = jnp.ones(256)

    def loss(p, z, key):
        shuffled, _ = permute_dimensions(key, z, ones)
        return jnp.mean(jax.nn.softplus(-disc.apply(p, z))) + jnp.mean(
            jax.nn.softplus(disc.apply(p, shuffled))
        )

    @jax.jit
    def step(p, s, key):
        batch_key, perm_key = jax.random.split(key)
        rows = jax.random.choice(batch_key, train.shape[0], (256,), replace=False)
        g = jax.grad(loss)(p, train[rows], perm_key)
        updates, s = optimizer.update(g, s)
        return optax.apply_updates(p, updates), s

    for i in range(steps):
        params, opt_state = step(params, opt_state, jax.random.fold_in(KEY, i))
    mask = jnp.ones(held_out.shape[0])
    shuffled, _ = permute_dimensions(jax.random.key(9), held_out, mask)
    joint, product = disc.apply(params, held_out), disc.apply(params, shuffled)
    accuracy = 0.5 * (float(jnp.mean(joint > 0)) + float(jnp.mean(product < 0)))
    return accuracy, float(jnp.mean(joint))


def test_the_discriminator_separates_correlated_codes_and_not_independent_ones():
    """On 2-D Gaussian codes of correlation rho its mean logit estimates the total correlation
    -log(1 - rho^2) / 2; on independent codes it cannot beat chance."""
    rng = np.random.default_rng(0)
    rho = 0.9
    cov = np.array([[1.0, rho], [rho, 1.0]])
    correlated = rng.multivariate_normal([0.0, 0.0], cov, size=6000).astype(np.float32)
    independent = rng.normal(size=(6000, 2)).astype(np.float32)
    accuracy, tc = _train_discriminator(correlated)
    # The Bayes classifier of N(0, cov) against N(0, I) is right about 76% of the time at
    # rho = 0.9 (a Monte Carlo of the likelihood ratio's sign); a trained MLP gets close.
    assert accuracy > 0.7
    # The density ratio's mean is the TC, 0.830 nats; a 64-unit MLP after 600 steps
    # estimates it within 0.2 (its finite-sample and approximation error, seen 0.05-0.1).
    assert tc == pytest.approx(-0.5 * np.log(1 - rho**2), abs=0.2)
    accuracy, tc = _train_discriminator(independent)
    # 2,000 held-out codes: chance is 0.5 with a standard error of about 0.011.
    assert abs(accuracy - 0.5) < 0.06
    assert abs(tc) < 0.1


def test_the_model_is_recorded_with_its_vae_and_rebuilt():
    model = FactorVAE(vae=SMALL_VAE, discriminator_width=4, discriminator_depth=1)
    spec = module_spec(model)
    assert spec["fields"]["vae"] == {"Module": module_spec(SMALL_VAE)}
    assert build_module(json.loads(json.dumps(spec))) == model
    assert model.latent_dim == 3


def test_a_factorvae_model_is_taken_as_it_is():
    """A reloaded FactorVAE (run.model) builds its objective again, with the given sizes."""
    model = FactorVAE(vae=SMALL_VAE, discriminator_width=4, discriminator_depth=1)
    objective = factorvae_objective(model, discriminator_width=6, discriminator_depth=2)
    assert objective.model == FactorVAE(vae=SMALL_VAE, discriminator_width=6, discriminator_depth=2)


def test_bad_settings_are_refused_by_name():
    with pytest.raises(ValueError, match="gamma"):
        factorvae_objective(SMALL_VAE, gamma=-1.0)
    with pytest.raises(ValueError, match="discriminator_depth"):
        factorvae_objective(SMALL_VAE, discriminator_depth=0)
    with pytest.raises(TypeError, match="flax.linen Module"):
        factorvae_objective("vae")


@pytest.mark.slow
def test_train_takes_factorvae_records_it_and_reloads_it(tmp_path):
    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(0).normal(size=(60, 6)).astype(np.float32))
    out = tmp_path / "run"
    argv = ["train", "--data", str(data), "--model", "vae", "--hidden-dims", "5"]
    argv += ["--latent-dim", "2", "--epochs", "2", "--batch-size", "16", "--quiet"]
    argv += ["--objective", "factorvae", "--gamma", "4", "--discriminator-width", "8"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for name in ("tc", "discriminator_loss", "discriminator_accuracy", "reconstruction", "kl"):
        assert f"train_{name}" in metrics["history"] and name in metrics["test"]
    settings = json.loads((out / "config.json").read_text())["settings"]
    assert settings["gamma"] == 4.0 and settings["discriminator_width"] == 8
    assert settings["discriminator_depth"] == 6 and "k" not in settings
    run = runs.load_run(out)
    assert run.model == FactorVAE(
        vae=VAE(input_dim=6, hidden_dims=(5,), latent_dim=2), discriminator_width=8
    )
    assert set(run.variables["params"]) == {"vae", "discriminator"}
    assert generate.sample_prior(KEY, run.model, run.variables, 3).shape == (3, 6)
    mean, _ = run.encode(np.zeros((4, 6), np.float32))
    assert mean.shape == (4, 2)
    # The same command resumes the run: the wrapper and its options are the same objective.
    assert cli.main([*argv, "--epochs", "3", "--resume", "--out", str(out)]) == 0
    assert runs.load_run(out).epoch == 3
