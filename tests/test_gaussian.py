"""Gaussian helpers against float64 NumPy closed forms, Monte Carlo and numerical integration."""

import chex
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized
from hypothesis import given, settings
from hypothesis import strategies as st
from numerics import assert_bitwise, assert_close
from scipy import integrate, stats

from latent_jax.gaussian import (
    bernoulli_log_likelihood,
    gaussian_log_likelihood,
    kl_diag_gaussians,
    kl_standard_normal,
    reparameterize,
)

MEANS = st.floats(-5.0, 5.0, width=32)
LOGVARS = st.floats(-6.0, 6.0, width=32)


def _kl_numpy(mean_p, logvar_p, mean_q, logvar_q):
    """The seed's theorem, term by term, in float64."""
    mean_p, logvar_p, mean_q, logvar_q = (
        np.asarray(a, np.float64) for a in (mean_p, logvar_p, mean_q, logvar_q)
    )
    sigma_p, sigma_q = np.exp(0.5 * logvar_p), np.exp(0.5 * logvar_q)
    terms = (
        np.log(sigma_q / sigma_p) - 0.5 + (sigma_p**2 + (mean_p - mean_q) ** 2) / (2 * sigma_q**2)
    )
    return terms.sum(-1)


def _arrays(elements, shape):
    return hnp.arrays(np.float32, shape, elements=elements)


@st.composite
def gaussian_pairs(draw):
    batch = draw(st.integers(1, 4))
    dim = draw(st.integers(1, 6))
    shape = (batch, dim)
    return tuple(draw(_arrays(e, shape)) for e in (MEANS, LOGVARS, MEANS, LOGVARS))


def _kl_magnitude(mean, logvar, mean_q=0.0, logvar_q=0.0):
    """The largest sum over an example's dimensions of the magnitudes its KL adds up."""
    mean, logvar, mean_q, logvar_q = (
        np.asarray(a, np.float64) for a in (mean, logvar, mean_q, logvar_q)
    )
    d = logvar - logvar_q
    terms = np.abs(np.expm1(d)) + np.abs(d) + (mean - mean_q) ** 2 * np.exp(-logvar_q)
    return float(np.max(np.sum(0.5 * terms, axis=-1)))


def _rtol_close(actual, expected, rtol=2e-4, atol=2e-5):
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=rtol, atol=atol)


@settings(deadline=None, max_examples=50)
@given(gaussian_pairs())
def test_kl_diag_matches_numpy_closed_form(pair):
    mean_p, logvar_p, mean_q, logvar_q = pair
    kl = kl_diag_gaussians(mean_p, logvar_p, mean_q, logvar_q)
    chex.assert_shape(kl, (mean_p.shape[0],))
    _rtol_close(kl, _kl_numpy(mean_p, logvar_p, mean_q, logvar_q))
    assert np.all(np.asarray(kl) >= 0.0)


@settings(deadline=None, max_examples=50)
@given(gaussian_pairs())
def test_kl_standard_normal_matches_numpy_and_special_case(pair):
    mean, logvar, _, _ = pair
    kl = kl_standard_normal(mean, logvar)
    zeros = np.zeros_like(mean)
    _rtol_close(kl, _kl_numpy(mean, logvar, zeros, zeros))
    # Two formulas: per dimension a difference, expm1, a square and a product, two sums, then
    # at most 6 dimensions. KL near 0 is a difference of larger terms: round-off is relative
    # to their magnitudes.
    special = kl_diag_gaussians(mean, logvar, 0.0, 0.0)
    assert_close(kl, special, ops=12, scale=_kl_magnitude(mean, logvar))
    assert np.all(np.asarray(kl) >= 0.0)


@settings(deadline=None, max_examples=50)
@given(gaussian_pairs())
def test_kl_is_zero_exactly_for_equal_gaussians(pair):
    mean, logvar, _, _ = pair
    # Exact: the differences are 0, expm1(0) = 0, and every term is 0.
    assert_bitwise(kl_diag_gaussians(mean, logvar, mean, logvar), np.zeros(len(mean)))
    zeros = np.zeros_like(mean)
    assert_bitwise(kl_standard_normal(zeros, zeros), np.zeros(len(mean)))


@settings(deadline=None, max_examples=50)
@given(gaussian_pairs(), st.data())
def test_kl_is_additive_over_dimensions(pair, data):
    mean_p, logvar_p, mean_q, logvar_q = pair
    dim = mean_p.shape[-1]
    cut = data.draw(st.integers(0, dim))
    parts = [
        kl_diag_gaussians(mean_p[:, s], logvar_p[:, s], mean_q[:, s], logvar_q[:, s])
        for s in (slice(None, cut), slice(cut, None))
    ]
    whole = kl_diag_gaussians(mean_p, logvar_p, mean_q, logvar_q)
    chex.assert_trees_all_close(parts[0] + parts[1], whole, rtol=1e-5, atol=1e-5)


def test_kl_finite_and_positive_for_extreme_logvars():
    logvar = jnp.linspace(-30.0, 30.0, 61)[:, None]
    mean = jnp.zeros_like(logvar)
    for kl in (
        kl_standard_normal(mean, logvar),
        kl_diag_gaussians(mean, logvar, mean, -logvar),
        kl_diag_gaussians(mean + 3.0, logvar, mean, logvar[::-1]),
    ):
        assert np.all(np.isfinite(kl)), kl
        assert np.all(np.asarray(kl) >= 0.0)
    np.testing.assert_allclose(
        kl_standard_normal(mean, logvar),
        _kl_numpy(mean, logvar, 0.0, 0.0),
        rtol=1e-5,
    )


def test_kl_monte_carlo_agrees_within_four_standard_errors():
    mean_p = jnp.array([0.3, -1.2, 2.0])
    logvar_p = jnp.array([-0.5, 0.7, 0.1])
    mean_q = jnp.array([1.0, 0.0, 1.5])
    logvar_q = jnp.array([0.2, -0.3, 0.9])
    n = 100_000
    keys = jax.random.split(jax.random.key(0), n)
    z = jax.vmap(reparameterize, in_axes=(0, None, None))(keys, mean_p, logvar_p)
    log_ratio = gaussian_log_likelihood(z, mean_p, logvar_p) - gaussian_log_likelihood(
        z, mean_q, logvar_q
    )
    log_ratio = np.asarray(log_ratio, np.float64)
    estimate, stderr = log_ratio.mean(), log_ratio.std(ddof=1) / np.sqrt(n)
    exact = float(_kl_numpy(mean_p, logvar_p, mean_q, logvar_q))
    assert abs(estimate - exact) < 4 * stderr, (estimate, exact, stderr)


@pytest.mark.parametrize(
    ("mean_p", "logvar_p", "mean_q", "logvar_q"),
    [(0.0, 0.0, 1.0, 0.5), (2.0, -1.0, -1.0, 1.5), (-0.5, 2.0, 0.0, 0.0), (1.0, -3.0, 1.2, -2.5)],
)
def test_kl_one_dimensional_matches_numerical_integration(mean_p, logvar_p, mean_q, logvar_q):
    p = stats.norm(mean_p, np.exp(0.5 * logvar_p))
    q = stats.norm(mean_q, np.exp(0.5 * logvar_q))
    lo, hi = p.ppf(1e-12), p.isf(1e-12)
    exact, _ = integrate.quad(lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)), lo, hi, limit=200)
    kl = kl_diag_gaussians(
        jnp.array([mean_p]), jnp.array([logvar_p]), jnp.array([mean_q]), jnp.array([logvar_q])
    )
    np.testing.assert_allclose(float(kl), exact, rtol=1e-4, atol=1e-6)


def test_reparameterize_moments():
    mean = jnp.array([1.5, -2.0, 0.0])
    logvar = jnp.array([0.0, np.log(4.0), np.log(0.25)])
    z = reparameterize(jax.random.key(1), jnp.broadcast_to(mean, (200_000, 3)), logvar)
    chex.assert_shape(z, (200_000, 3))
    np.testing.assert_allclose(z.mean(0), mean, atol=0.015)
    np.testing.assert_allclose(z.var(0), np.exp(logvar), rtol=0.015)


def test_reparameterize_gradient_matches_analytic_expectation():
    """d/dθ E[z²] with E[z²] = μ² + exp(logvar): ∂/∂μ = 2μ, ∂/∂logvar = exp(logvar)."""
    n = 200_000
    mean = jnp.array([0.7, -1.3])
    logvar = jnp.array([0.4, -0.8])

    def second_moment(mean, logvar):
        z = reparameterize(jax.random.key(2), jnp.broadcast_to(mean, (n, 2)), logvar)
        return jnp.sum(jnp.mean(z**2, axis=0))

    grad_mean, grad_logvar = jax.grad(second_moment, argnums=(0, 1))(mean, logvar)
    assert np.all(np.isfinite(grad_mean)) and np.all(np.isfinite(grad_logvar))
    np.testing.assert_allclose(grad_mean, 2 * mean, rtol=0.02, atol=0.02)
    np.testing.assert_allclose(grad_logvar, np.exp(logvar), rtol=0.03)


def test_reparameterize_same_key_same_draw_different_key_different_draw():
    mean, logvar = jnp.zeros(4), jnp.zeros(4)
    a = reparameterize(jax.random.key(3), mean, logvar)
    b = reparameterize(jax.random.key(3), mean, logvar)
    c = reparameterize(jax.random.key(4), mean, logvar)
    assert_bitwise(a, b)  # the same program on the same key
    assert not np.allclose(a, c)


def test_gaussian_log_likelihood_is_the_scipy_log_density():
    rng = np.random.default_rng(0)
    x, mean = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    logvar = rng.uniform(-2, 2, size=(5, 3))
    expected = stats.norm(mean, np.exp(0.5 * logvar)).logpdf(x).sum(-1)
    np.testing.assert_allclose(
        gaussian_log_likelihood(x.astype(np.float32), mean, logvar), expected, rtol=1e-5
    )
    expected_unit = stats.norm(mean, 1.0).logpdf(x).sum(-1)
    np.testing.assert_allclose(gaussian_log_likelihood(x, mean), expected_unit, rtol=1e-5)


def test_bernoulli_log_likelihood_matches_scipy_and_stays_finite():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 2, size=(4, 6)).astype(np.float32)
    logits = rng.normal(scale=3.0, size=(4, 6)).astype(np.float32)
    expected = stats.bernoulli(1 / (1 + np.exp(-logits.astype(np.float64)))).logpmf(x).sum(-1)
    np.testing.assert_allclose(bernoulli_log_likelihood(x, logits), expected, rtol=1e-5)
    extreme = bernoulli_log_likelihood(jnp.array([[1.0, 0.0]]), jnp.array([[-200.0, 200.0]]))
    np.testing.assert_allclose(extreme, [-400.0], rtol=1e-6)


@pytest.mark.numerics
class JitAgreementTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("small", 1.0), ("large", 25.0))
    def test_kl_functions_jit_and_eager_agree(self, scale):
        rng = np.random.default_rng(5)
        args = [rng.normal(scale=scale, size=(3, 4)).astype(np.float32) for _ in range(4)]
        eager = kl_diag_gaussians(*args)
        # Fused and op by op: per dimension two differences, expm1, exp, a square, a product
        # and two sums, then 4 dimensions; round-off relative to the terms' magnitudes.
        assert_close(
            self.variant(kl_diag_gaussians)(*args), eager, ops=12, scale=_kl_magnitude(*args)
        )
        assert_close(
            self.variant(kl_standard_normal)(args[0], args[1]),
            kl_standard_normal(args[0], args[1]),
            ops=12,
            scale=_kl_magnitude(args[0], args[1]),
        )
