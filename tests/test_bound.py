"""The VAE family's bounds (latent_jax.objectives.bound) against closed forms, and the three
places that use them (training, metrics, the VAE detector) agreeing through them."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numerics import assert_close
from scipy import stats

from latent_jax.gaussian import kl_standard_normal
from latent_jax.objectives import bound

RNG = np.random.default_rng(0)
MEAN = RNG.normal(size=(4, 3)).astype(np.float32)
LOGVAR = RNG.normal(scale=0.5, size=(4, 3)).astype(np.float32)
EPS = RNG.normal(size=(5, 4, 3)).astype(np.float32)


@pytest.mark.numerics
def test_the_posterior_density_from_the_noise_is_the_normal_density_at_the_draw():
    z = bound.draw_latents(MEAN, LOGVAR, EPS)
    std = np.exp(0.5 * LOGVAR.astype(np.float64))
    expected = stats.norm.logpdf(np.asarray(z, np.float64), MEAN, std).sum(-1)
    # the draw, then a sum of 3 log-densities of ~6 operations each
    assert_close(bound.log_posterior_of_noise(LOGVAR, EPS), expected, ops=30)


@pytest.mark.numerics
def test_the_log_weights_and_the_bound_against_scipy():
    z = bound.draw_latents(MEAN, LOGVAR, EPS)
    log_px = RNG.normal(size=(5, 4)).astype(np.float32)
    log_qz = bound.log_posterior_of_noise(LOGVAR, EPS)
    log_w = bound.log_weights(log_px, z, log_qz)
    prior = stats.norm.logpdf(np.asarray(z, np.float64)).sum(-1)
    assert_close(log_w, log_px + prior - np.asarray(log_qz, np.float64), ops=40)
    expected = np.log(np.mean(np.exp(np.asarray(log_w, np.float64)), axis=0))
    assert_close(bound.importance_weighted_bound(log_w), expected, ops=20)
    # one sample: the bound is its log-weight
    assert_close(bound.importance_weighted_bound(log_w[:1]), log_w[0], ops=4)


@pytest.mark.numerics
def test_the_elbo_is_the_mean_log_likelihood_minus_the_closed_form_kl():
    log_px = RNG.normal(size=(5, 4)).astype(np.float32)
    kl = 0.5 * np.sum(np.exp(LOGVAR) + MEAN**2 - 1.0 - LOGVAR, axis=-1)
    assert_close(bound.elbo(log_px, MEAN, LOGVAR), log_px.mean(0) - kl, ops=20)
    assert_close(kl_standard_normal(MEAN, LOGVAR), kl, ops=20)


@pytest.mark.numerics
def test_the_summed_squared_error_is_a_gaussian_of_variance_one_half():
    x = RNG.normal(size=(3, 2, 2)).astype(np.float32)
    output = RNG.normal(size=(3, 2, 2)).astype(np.float32)
    sse = np.sum((x - output).reshape(3, -1) ** 2, axis=1)
    expected = -sse - 0.5 * 4 * math.log(math.pi)
    assert_close(bound.log_likelihood(x, output, "sse"), expected, ops=20)
    bern = bound.log_likelihood((x > 0).astype(np.float32), output, "bernoulli")
    p = jax.nn.sigmoid(jnp.asarray(output.reshape(3, -1), jnp.float32))
    y = (x > 0).reshape(3, -1)
    assert_close(bern, np.sum(np.where(y, np.log(p), np.log1p(-p)), axis=1), ops=20)


def test_likelihood_checks_name_the_argument():
    assert bound.check_likelihood("gaussian", "learned") is True
    assert bound.check_likelihood("sse", 0.0) is False
    with pytest.raises(ValueError, match="likelihood must be one of"):
        bound.check_likelihood("poisson", 0.0)
    with pytest.raises(ValueError, match='needs likelihood="gaussian"'):
        bound.check_likelihood("bernoulli", "learned")
    with pytest.raises(TypeError, match='real number or "learned"'):
        bound.check_likelihood("gaussian", "fixed")
    with pytest.raises(ValueError, match="finite"):
        bound.check_likelihood("gaussian", float("nan"))
