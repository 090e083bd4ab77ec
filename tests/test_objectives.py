"""Objectives: every term against a NumPy reference, masked reductions, the β identity."""

from __future__ import annotations

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numerics import assert_bitwise, assert_close

from latent_jax import corruption, schedules
from latent_jax.models.mlp import VAE, Autoencoder
from latent_jax.objectives import (
    Batch,
    autoencoder_objective,
    denoising_objective,
    masked_mean,
    split_variables,
    vae_objective,
)

KEY = jax.random.key(0)
STEP = jnp.asarray(7, jnp.int32)
EPOCH = jnp.asarray(3, jnp.int32)


class Scale(nn.Module):
    """x -> a * x with a scalar parameter a = 1 at init: the identity, but trainable."""

    @nn.compact
    def __call__(self, x):
        return self.param("a", nn.initializers.ones, ()) * x


class WrongWidth(nn.Module):
    """An 'autoencoder' whose output has 7 features whatever the input."""

    @nn.compact
    def __call__(self, x):
        return nn.Dense(7)(x)


def _data(n=6, d=5, seed=0):
    return jnp.asarray(np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32))


MASK = jnp.asarray([1.0, 1.0, 1.0, 1.0, 0.0, 0.0])


def _loss(objective, variables, batch, train=True, key=KEY, step=STEP, epoch=EPOCH):
    params, state = split_variables(variables)
    return objective.loss(params, state, batch, key, step, epoch, train)


def test_masked_mean_ignores_padding_even_when_not_finite():
    values = jnp.asarray([1.0, 2.0, 3.0, jnp.nan, jnp.inf])
    mask = jnp.asarray([1.0, 1.0, 1.0, 0.0, 0.0])
    assert float(masked_mean(values, mask)) == 2.0
    assert float(masked_mean(values[:3], jnp.zeros(3))) == 0.0


def test_autoencoder_loss_is_the_mse_over_real_rows():
    model = Autoencoder(input_dim=5, hidden_dims=(4,), latent_dim=2)
    objective = autoencoder_objective(model)
    x = _data()
    variables = objective.init(KEY, x)
    loss, (metrics, new_state) = _loss(objective, variables, Batch(x, MASK))
    recon = np.asarray(model.apply(variables, x))
    expected = np.mean((recon[:4] - np.asarray(x)[:4]) ** 2)
    # Against NumPy's mean of the same squares: ops = the network's fan-ins 5 + 4 + 2 + 4,
    # a difference and a square, and the mean over 4 x 5 (then 6 x 5) values.
    assert_close(float(loss), expected, ops=37)
    assert float(metrics["loss"]) == float(loss) == float(metrics["reconstruction"])
    assert new_state == {}
    # Full batch: PyTorch's nn.MSELoss(), the mean over every element.
    full, _ = _loss(objective, variables, Batch(x, jnp.ones(6)))
    assert_close(float(full), np.mean((recon - np.asarray(x)) ** 2), ops=47)
    # What sits in the padding rows does not matter.
    garbage = x.at[4:].set(1e3)
    padded, _ = _loss(objective, variables, Batch(garbage, MASK))
    np.testing.assert_allclose(float(padded), float(loss), rtol=1e-6)


def test_denoising_compares_the_output_with_the_clean_input():
    noise = corruption.gaussian(0.5)
    denoising = denoising_objective(Scale(), noise)
    plain = autoencoder_objective(Scale())
    x = _data()
    variables = denoising.init(KEY, x)
    loss, (metrics, _) = _loss(denoising, variables, Batch(x, MASK))
    # The identity model returns its noisy input, so its loss is the noise's own error...
    noise_key = jax.random.split(KEY)[0]
    noisy = np.asarray(noise(noise_key, x))
    expected = np.mean((noisy[:4] - np.asarray(x)[:4]) ** 2)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    np.testing.assert_allclose(float(metrics["corrupted_mse"]), expected, rtol=1e-5)
    assert float(loss) > 0.1
    # ...whereas compared with its own (noisy) input it would score 0, like the plain AE does.
    plain_loss, _ = _loss(plain, variables, Batch(x, MASK))
    assert float(plain_loss) == 0.0
    # Without noise the denoising objective is the autoencoder objective.
    clean = denoising_objective(Scale(), corruption.identity)
    clean_loss, _ = _loss(clean, variables, Batch(x, MASK))
    assert float(clean_loss) == 0.0


def test_denoising_gradient_pulls_towards_the_clean_input():
    # For a * (x + noise) against x the optimal scale is below 1 (shrinkage): the gradient at
    # a = 1 is positive. Against the noisy input it would be exactly 0.
    objective = denoising_objective(Scale(), corruption.gaussian(1.0))
    x = _data(n=64, d=8)
    params, state = split_variables(objective.init(KEY, x))

    def loss(p):
        return objective.loss(p, state, Batch(x, jnp.ones(64)), KEY, STEP, EPOCH, True)[0]

    assert float(jax.grad(loss)(params)["a"]) > 0.0


@pytest.fixture(scope="module")
def vae_setup():
    model = VAE(input_dim=5, hidden_dims=(4,), latent_dim=3)
    x = _data()
    variables = vae_objective(model).init(KEY, x)
    sample_key = jax.random.split(KEY)[0]
    recon, mean, logvar = (np.asarray(a) for a in model.apply(variables, x, sample_key))
    return model, x, variables, recon, mean, logvar


def _np_kl(mean, logvar):
    return -0.5 * np.sum(1 + logvar - mean**2 - np.exp(logvar), axis=-1)


def test_vae_terms_match_numpy_and_add_up_with_beta(vae_setup):
    model, x, variables, recon, mean, logvar = vae_setup
    beta = schedules.linear(0.0, 1.0, num_steps=10)
    objective = vae_objective(model, beta, likelihood="sse", beta_unit="epoch")
    loss, (metrics, _) = _loss(objective, variables, Batch(x, MASK))
    xn = np.asarray(x)
    sse = np.sum((recon - xn) ** 2, axis=-1)[:4].mean()
    kl = _np_kl(mean, logvar)[:4].mean()
    np.testing.assert_allclose(float(metrics["reconstruction"]), sse, rtol=1e-5)
    np.testing.assert_allclose(float(metrics["kl"]), kl, rtol=1e-5)
    assert float(metrics["beta"]) == pytest.approx(0.3)  # epoch 3 of a 10-epoch ramp
    # The identity holds exactly for the reported float32 values (documented: the loss is
    # computed from them, by the same two operations).
    assert_bitwise(metrics["loss"], metrics["reconstruction"] + metrics["beta"] * metrics["kl"])
    assert float(loss) == float(metrics["loss"])


def test_vae_beta_counts_steps_or_epochs(vae_setup):
    model, x, variables, *_ = vae_setup
    beta = schedules.linear(0.0, 1.0, num_steps=100)
    by_step = vae_objective(model, beta, beta_unit="step")
    by_epoch = vae_objective(model, beta, beta_unit="epoch")
    _, (m_step, _) = _loss(by_step, variables, Batch(x, MASK))
    _, (m_epoch, _) = _loss(by_epoch, variables, Batch(x, MASK))
    assert float(m_step["beta"]) == pytest.approx(0.07)
    assert float(m_epoch["beta"]) == pytest.approx(0.03)
    _, (m_default, _) = _loss(vae_objective(model), variables, Batch(x, MASK))
    assert float(m_default["beta"]) == 1.0


def test_vae_gaussian_and_bernoulli_likelihoods(vae_setup):
    model, x, variables, recon, *_ = vae_setup
    xn = np.asarray(x)
    d = xn.shape[1]
    _, (gauss, _) = _loss(vae_objective(model, likelihood="gaussian"), variables, Batch(x, MASK))
    sse = np.sum((recon - xn) ** 2, axis=-1)[:4]
    expected = np.mean(0.5 * sse + 0.5 * d * math.log(2 * math.pi))
    np.testing.assert_allclose(float(gauss["reconstruction"]), expected, rtol=1e-5)
    wide = vae_objective(model, likelihood="gaussian", obs_logvar=math.log(4.0))
    _, (gauss4, _) = _loss(wide, variables, Batch(x, MASK))
    expected4 = np.mean(sse / 8 + 0.5 * d * (math.log(2 * math.pi) + math.log(4.0)))
    np.testing.assert_allclose(float(gauss4["reconstruction"]), expected4, rtol=1e-5)

    probs = (xn > 0).astype(np.float32)  # binary targets in {0, 1}
    objective = vae_objective(model, likelihood="bernoulli")
    _, (bern, _) = _loss(objective, variables, Batch(jnp.asarray(probs), MASK))
    sample_key = jax.random.split(KEY)[0]
    logits = np.asarray(model.apply(variables, jnp.asarray(probs), sample_key)[0], np.float64)
    bce = np.logaddexp(0, logits) - probs * logits  # softplus(a) - x a, stable
    np.testing.assert_allclose(
        float(bern["reconstruction"]), np.sum(bce, axis=-1)[:4].mean(), rtol=1e-5
    )


@pytest.mark.parametrize("likelihood", ["sse", "gaussian", "bernoulli"])
def test_vae_loss_identity_holds_under_jit(vae_setup, likelihood):
    model, x, variables, *_ = vae_setup
    objective = vae_objective(model, schedules.monotonic(0.5, 2.0), likelihood=likelihood)
    params, state = split_variables(variables)
    fn = jax.jit(functools.partial(objective.loss, train=True))
    _, (m, _) = fn(params, state, Batch(x, MASK), KEY, STEP, EPOCH)
    rec, beta, kl = (np.float64(m[k]) for k in ("reconstruction", "beta", "kl"))
    np.testing.assert_allclose(float(m["loss"]), rec + beta * kl, rtol=1e-6)
    assert float(m["kl"]) >= 0.0


class NormVAE(nn.Module):
    """A tiny VAE with BatchNorm, with the conv models' calling convention."""

    @nn.compact
    def __call__(self, x, key, *, train=False):
        h = nn.BatchNorm(use_running_average=not train, momentum=0.9)(nn.Dense(4)(x))
        mean, logvar = nn.Dense(2)(h), nn.Dense(2)(h)
        z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, mean.shape)
        return nn.Dense(x.shape[-1])(z), mean, logvar


def test_batchnorm_statistics_update_in_training_only():
    objective = vae_objective(NormVAE())
    x = _data(n=4)
    variables = objective.init(KEY, x)
    params, state = split_variables(variables)
    assert "batch_stats" in state
    fn = jax.jit(objective.loss, static_argnums=6)
    batch = Batch(x, jnp.ones(4))
    _, (metrics, trained) = fn(params, state, batch, KEY, STEP, EPOCH, True)
    _, (_, evaluated) = fn(params, state, batch, KEY, STEP, EPOCH, False)
    assert jax.tree.structure(trained) == jax.tree.structure(state)
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), trained, state)
    assert any(jax.tree.leaves(changed))
    assert all(jax.tree.leaves(jax.tree.map(lambda a, b: bool(jnp.all(a == b)), evaluated, state)))
    assert set(metrics) == {"loss", "reconstruction", "kl", "beta"}


def test_shape_mismatch_is_a_clear_error():
    objective = autoencoder_objective(WrongWidth())
    x = _data()
    variables = objective.init(KEY, x)
    with pytest.raises(ValueError, match=r"shape \(7,\) per example for inputs of shape \(5,\)"):
        _loss(objective, variables, Batch(x, MASK))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: vae_objective(VAE(), likelihood="poisson"), ValueError, "likelihood must be"),
        (lambda: vae_objective(VAE(), beta_unit="batch"), ValueError, "beta_unit must be"),
        (lambda: vae_objective(VAE(), beta_schedule=0.5), TypeError, "beta_schedule must be"),
        (lambda: vae_objective(VAE(), obs_logvar=float("inf")), ValueError, "obs_logvar"),
        (lambda: autoencoder_objective(lambda x: x), TypeError, "flax.linen Module"),
        (lambda: denoising_objective(Scale(), 0.1), TypeError, "corruption must be callable"),
    ],
)
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_train_flag_must_be_a_bool_not_an_array():
    objective = autoencoder_objective(Scale())
    x = _data()
    with pytest.raises(TypeError, match="train must be a bool, got ArrayImpl"):
        _loss(objective, objective.init(KEY, x), Batch(x, MASK), train=jnp.asarray(True))
