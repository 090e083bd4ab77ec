"""Rainforth et al.'s bounds (2018): MIWAE, PIWAE and CIWAE against float64 formulas written
from the paper, their reductions to the ELBO and the IWAE bound, PIWAE's two gradients,
masking, errors, and training through the command line."""

from __future__ import annotations

import functools
import json
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cli_checks import assert_config_round_trips
from numerics import assert_bitwise, assert_close
from scipy.special import logsumexp

from latent_jax import cli, generate, objectives, runs
from latent_jax.models.conv import ConvSpec, ConvVAE
from latent_jax.models.mlp import VAE
from latent_jax.objectives import (
    Batch,
    bound,
    build_objective,
    ciwae_objective,
    iwae_objective,
    miwae_objective,
    piwae_objective,
    split_variables,
)
from latent_jax.objectives.miwae import multiply_importance_weighted_bound

KEY = jax.random.key(0)
ZERO = jnp.int32(0)
TANH_VAE = VAE(input_dim=6, hidden_dims=(5,), latent_dim=2, activation="tanh")
SMALL_VAE = VAE(input_dim=6, hidden_dims=(5,), latent_dim=2)
ENCODER = ("trunk", "mean_layer", "logvar_layer")
# BatchNorm in the encoder and in the decoder, kept small so that tests compile fast.
CONV_VAE = ConvVAE(
    image_shape=(8, 8, 1),
    hidden_dim=8,
    latent_dim=3,
    encoder_convs=(ConvSpec(4, 3, 2, 1, batch_norm=True),),
    decoder_convs=(ConvSpec(4, 3, 1, 1, batch_norm=True),),
    output_conv=(4, 2, 1),
)


def _rows(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 6)).astype(np.float32)


def _grey(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(size=(n, 6)).astype(np.float32)


def _batch(x, real: int | None = None) -> Batch:
    mask = np.ones(len(x), np.float32)
    if real is not None:
        mask[real:] = 0.0
    return Batch(jnp.asarray(x), jnp.asarray(mask))


@functools.cache
def _made(factory, *args, **options):
    """One objective object per arguments, so that tests share its compiled step."""
    return factory(SMALL_VAE, *args, **options)


def _value_and_grad(objective, params, state, batch, key=KEY, train=True):
    """Loss, metrics, new model state and gradient of one step, compiled (once for an
    objective and the shapes)."""
    return _step(objective, params, state, batch, key, train)


@functools.partial(jax.jit, static_argnums=(0, 5))
def _step(objective, params, state, batch, key, train):
    def loss(p):
        return objective.loss(p, state, batch, key, ZERO, ZERO, train)

    (value, (metrics, new_state)), grad = jax.value_and_grad(loss, has_aux=True)(params)
    return value, metrics, new_state, grad


def _assert_gradients_close(got, want, ops):
    """Gradients of two programs agree to round-off relative to the largest entry of any
    leaf (sums of products of both signs: a leaf's own largest entry is no scale for it)."""
    scale = max(float(np.max(np.abs(leaf))) for leaf in jax.tree.leaves(want))
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        assert_close(a, b, ops=ops, scale=scale)


# ----------------------------------------------------------- the paper's bounds in float64 NumPy


def _logmeanexp(a, axis):
    """log (1/n) sum_i exp(a_i) along ``axis``, in float64."""
    return logsumexp(a, axis=axis) - math.log(a.shape[axis])


def _reference_log_weights(params, x, eps, likelihood):
    """log w = log p(x|z) + log p(z) - log q(z|x) for the tanh MLP VAE, in float64, at
    z = mu(x) + sigma(x) eps: eps (S, n, 2), x (n, 6). Returns log w (S, n), log p(x|z) (S, n),
    the KL of q(z|x) to N(0, I) (n,), and the largest magnitude of the three log-densities."""
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    x, eps = np.asarray(x, np.float64), np.asarray(eps, np.float64)
    h = np.tanh(x @ p["trunk"]["dense0"]["kernel"] + p["trunk"]["dense0"]["bias"])
    mu = h @ p["mean_layer"]["kernel"] + p["mean_layer"]["bias"]
    logvar = h @ p["logvar_layer"]["kernel"] + p["logvar_layer"]["bias"]
    z = mu + np.exp(0.5 * logvar) * eps
    u = np.tanh(z @ p["decoder"]["dense0"]["kernel"] + p["decoder"]["dense0"]["bias"])
    out = u @ p["decoder"]["dense1"]["kernel"] + p["decoder"]["dense1"]["bias"]
    if likelihood == "sse":  # the library's "sse" log-likelihood: minus the summed squares
        log_px = -np.sum((x - out) ** 2, axis=-1)
    else:  # Bernoulli with logits: x log s(a) + (1 - x) log(1 - s(a))
        log_px = np.sum(x * out - np.logaddexp(0.0, out), axis=-1)
    log_2pi = math.log(2 * math.pi)
    log_pz = -0.5 * np.sum(z**2 + log_2pi, axis=-1)
    log_qz = -0.5 * np.sum((z - mu) ** 2 / np.exp(logvar) + logvar + log_2pi, axis=-1)
    kl = 0.5 * np.sum(mu**2 + np.exp(logvar) - 1.0 - logvar, axis=-1)
    scale = max(float(np.max(np.abs(a))) for a in (log_px, log_pz, log_qz))
    return log_px + log_pz - log_qz, log_px, kl, scale


def _reference_metrics(name, log_w, log_px, kl, m, k, beta):
    """Every metric of the objective from the paper's formulas (per example, then the mean
    over the real rows)."""
    elbo = log_w.mean(axis=0)  # (1/S) sum_s log w_s
    iwae = _logmeanexp(log_w, 0)  # log (1/S) sum_s w_s
    terms = {"elbo": elbo, "iwae_bound": iwae, "reconstruction": -log_px.mean(axis=0), "kl": kl}
    if name == "ciwae":  # beta ELBO + (1 - beta) IWAE_K
        terms["ciwae_bound"] = beta * elbo + (1 - beta) * iwae
        terms["loss"] = -terms["ciwae_bound"]
    else:  # (1/M) sum_m log (1/K) sum_k w_mk
        terms["miwae_bound"] = _logmeanexp(log_w.reshape(m, k, -1), 1).mean(axis=0)
        terms["loss"] = -terms["iwae_bound" if name == "piwae" else "miwae_bound"]
    return {key: float(np.mean(value)) for key, value in terms.items()}


def _objective(name, model, m, k, beta, likelihood="sse", binarize=False):
    if name == "ciwae":
        return ciwae_objective(model, k, beta=beta, likelihood=likelihood, binarize=binarize)
    make = miwae_objective if name == "miwae" else piwae_objective
    return make(model, m, k, likelihood=likelihood, binarize=binarize)


@pytest.mark.numerics
@pytest.mark.parametrize("likelihood", ["sse", "bernoulli"])
@pytest.mark.parametrize("name", ["miwae", "piwae", "ciwae"])
def test_the_bounds_match_the_papers_formulas_in_float64(name, likelihood):
    # Seven rows, the last two padding (the reference sees the five real ones only).
    x = _grey(7, seed=1) if likelihood == "bernoulli" else _rows(7, seed=1)
    m, k, beta = (1, 5, 0.3) if name == "ciwae" else (2, 3, None)
    objective = _objective(name, TANH_VAE, m, k, beta, likelihood)
    params, state = split_variables(objective.init(KEY, jnp.asarray(x)))
    key = jax.random.key(5)
    value, metrics, _, _ = _value_and_grad(objective, params, state, _batch(x, real=5), key)
    # The draws, as the objectives document them: normal(sample_key, (M * K, batch, d)).
    sample_key = jax.random.split(key)[0]
    eps = np.asarray(jax.random.normal(sample_key, (m * k, 7, 2)))[:, :5]
    log_w, log_px, kl, scale = _reference_log_weights(params, x[:5], eps, likelihood)
    want = _reference_metrics(name, log_w, log_px, kl, m, k, beta)
    assert set(metrics) == set(want)
    assert all(v.dtype == jnp.float32 and v.shape == () for v in metrics.values())
    # ops: the encoder (6 + 5 fan-ins, tanh), the draw (3), the decoder (2 + 5, tanh), the
    # likelihood's sum of 6, log q and log p(z) of 2, the log-sum-exp of up to 6 weights and
    # the means over 2 groups and 5 rows: about 64, relative to the log-densities' magnitude.
    for metric, reference in want.items():
        assert_close(metrics[metric], reference, ops=64, scale=scale, err_msg=metric)
    assert_bitwise(value, metrics["loss"])


@pytest.mark.numerics
def test_the_miwae_bound_of_log_weights_is_the_papers_formula():
    rng = np.random.default_rng(2)
    # Log-weights far from 0 and spread by hundreds of nats: only a stable log-sum-exp holds.
    log_w = (-1e3 + 300.0 * rng.normal(size=(3, 5, 4))).astype(np.float32)
    got = jax.jit(multiply_importance_weighted_bound)(jnp.asarray(log_w))
    want = _logmeanexp(log_w.astype(np.float64), 1).mean(axis=0)
    assert got.shape == (4,)
    # ops: the max, the subtraction, exp and the sum of 5, log, the max back, log 5, the mean
    # of 3; relative to the log-weights' magnitude (the max cancels against them).
    assert_close(got, want, ops=16, scale=float(np.max(np.abs(log_w))))
    # M = 1 is the IWAE bound; K = 1 the mean of the log-weights (log-sum-exp of one is exact).
    one_group = jax.jit(multiply_importance_weighted_bound)(jnp.asarray(log_w[:1]))
    assert_close(one_group, bound.importance_weighted_bound(jnp.asarray(log_w[0])), ops=4)
    one_each = jax.jit(multiply_importance_weighted_bound)(jnp.asarray(log_w[:, :1]))
    assert_close(one_each, np.mean(log_w[:, 0].astype(np.float64), axis=0), ops=4)


# -------------------------------------------------------------------------------- reductions


@pytest.fixture(scope="module")
def tiny():
    """The small MLP VAE, its parameters and grey levels with one padding row."""
    x = _grey(5)
    params, state = split_variables(miwae_objective(SMALL_VAE, 2, 2).init(jax.random.key(1), x))
    return params, state, _batch(x, real=4)


@pytest.mark.slow
@pytest.mark.numerics
@pytest.mark.parametrize("binarize", [False, True])
def test_miwae_with_one_group_is_iwae(tiny, binarize):
    options = {"likelihood": "bernoulli", "binarize": binarize}
    # M = 1: the IWAE bound with the same K draws (the keys split the same way, binarization
    # first): value and gradient to round-off. ops: the forward pass (6 + 8 + 2 + 8 fan-ins,
    # the draw, the likelihood's 6 pixels, the log-sum-exp of 4, the mean over 4 rows) about
    # 45; the gradient adds the backward pass, about 100.
    value, metrics, _, grad = _value_and_grad(_made(miwae_objective, 1, 4, **options), *tiny)
    i_value, i_metrics, _, i_grad = _value_and_grad(_made(iwae_objective, 4, **options), *tiny)
    assert_close(value, i_value, ops=45)
    assert_close(metrics["iwae_bound"], i_metrics["iwae_bound"], ops=45)
    assert_bitwise(metrics["miwae_bound"], metrics["iwae_bound"])  # the same sum, one group
    _assert_gradients_close(grad, i_grad, ops=100)


@pytest.mark.numerics
def test_miwae_with_one_weight_is_the_sampled_elbo(tiny):
    params, state, batch = tiny
    key = jax.random.key(7)
    objective = miwae_objective(SMALL_VAE, 3, 1, likelihood="bernoulli", binarize=True)
    value, metrics, _, _ = _value_and_grad(objective, params, state, batch, key)

    @jax.jit
    def sampled_elbo(params, x, mask, key):
        """The mean of 3 log-weights, written with bound.py on the objective's noise: the
        binarization key split off first, then sample_key, model_key = split(key)."""
        binarize_key, key = jax.random.split(key)
        x = objectives.bernoulli_binarize(binarize_key, x)
        variables = {"params": params, **state}
        mean, logvar = SMALL_VAE.apply(variables, x, method="encode")
        eps = jax.random.normal(jax.random.split(key)[0], (3, *mean.shape))
        z = bound.draw_latents(mean, logvar, eps)
        logits = SMALL_VAE.apply(variables, z.reshape((-1, 2)), method="decode")
        log_px = bound.log_likelihood(jnp.tile(x, (3, 1)), logits, "bernoulli")
        log_px = log_px.reshape((3, -1))
        log_w = bound.log_weights(log_px, z, bound.log_posterior_of_noise(logvar, eps))
        return objectives.masked_mean(jnp.mean(log_w, axis=0), mask)

    elbo = sampled_elbo(params, batch.x, batch.mask, key)
    # Two programs of the same sums: the forward pass's 45.
    assert_close(metrics["miwae_bound"], elbo, ops=45)
    assert_close(metrics["elbo"], elbo, ops=45)
    assert_close(value, -elbo, ops=45)


@pytest.mark.numerics
def test_ciwae_is_the_sampled_elbo_at_beta_one_and_iwae_at_beta_zero(tiny):
    options = {"likelihood": "bernoulli"}
    at_one = _value_and_grad(_made(ciwae_objective, 4, beta=1.0, **options), *tiny)
    at_zero = _value_and_grad(_made(ciwae_objective, 4, beta=0.0, **options), *tiny)
    # beta = 1: the mean of the same K = 4 log-weights, MIWAE(4, 1) with the same draws.
    elbo = _value_and_grad(_made(miwae_objective, 4, 1, **options), *tiny)
    assert_bitwise(at_one[0], -at_one[1]["elbo"])  # 1 * elbo + 0 * iwae, exactly
    assert_close(at_one[0], elbo[0], ops=45)  # two programs, the forward pass's 45
    _assert_gradients_close(at_one[3], elbo[3], ops=100)
    # beta = 0: the IWAE bound of the K draws (iwae_objective's, the same draws).
    iwae = _value_and_grad(_made(iwae_objective, 4, **options), *tiny)
    assert_bitwise(at_zero[0], -at_zero[1]["iwae_bound"])
    assert_close(at_zero[0], iwae[0], ops=45)
    _assert_gradients_close(at_zero[3], iwae[3], ops=100)


@pytest.mark.numerics
def test_piwae_trains_the_decoder_on_iwae_and_the_encoder_on_miwae(tiny):
    m, k = 2, 3
    options = {"likelihood": "bernoulli"}
    value, metrics, _, grad = _value_and_grad(_made(piwae_objective, m, k, **options), *tiny)
    i_value, _, _, i_grad = _value_and_grad(_made(iwae_objective, m * k, **options), *tiny)
    _, m_metrics, _, m_grad = _value_and_grad(_made(miwae_objective, m, k, **options), *tiny)
    assert_bitwise(value, -metrics["iwae_bound"])  # the generative target's value, exactly
    assert_close(value, i_value, ops=45)  # as above: the forward pass
    assert_close(metrics["miwae_bound"], m_metrics["miwae_bound"], ops=45)
    # The decoder's gradient is IWAE(M K)'s, every other parameter's MIWAE(M, K)'s.
    assert set(grad) == {"decoder", *ENCODER}
    _assert_gradients_close(grad["decoder"], i_grad["decoder"], ops=100)
    encoder = {name: grad[name] for name in ENCODER}
    _assert_gradients_close(encoder, {name: m_grad[name] for name in ENCODER}, ops=100)
    # ... and they differ from IWAE's encoder gradient (another target).
    assert not np.allclose(grad["trunk"]["dense0"]["kernel"], i_grad["trunk"]["dense0"]["kernel"])
    # M = 1: IWAE for both networks.
    _, _, _, one = _value_and_grad(_made(piwae_objective, 1, 4, **options), *tiny)
    _, _, _, i_one = _value_and_grad(_made(iwae_objective, 4, **options), *tiny)
    _assert_gradients_close(one, i_one, ops=100)


# ----------------------------------------------------------------------------------- masking


def _assert_padding_changes_nothing(objective, x, real):
    params, state = split_variables(jax.jit(objective.init)(KEY, jnp.asarray(x)))
    first = _value_and_grad(objective, params, state, _batch(x, real=real))
    other = x.copy()
    other[real:] = 1.0  # padding rows of other values (the engine pads with a real row)
    second = _value_and_grad(objective, params, state, _batch(other, real=real))
    # The same compiled program: padding rows enter every sum (the masked mean, BatchNorm's
    # masked statistics, the gradient) multiplied by an exact zero.
    assert_bitwise(second[0], first[0])
    for metric in first[1]:
        assert_bitwise(second[1][metric], first[1][metric])
    for a, b in zip(jax.tree.leaves(second[2:]), jax.tree.leaves(first[2:]), strict=True):
        assert_bitwise(a, b)
    return state, first


@pytest.mark.parametrize("name", ["miwae", "piwae", "ciwae"])
@pytest.mark.slow
def test_padding_rows_change_neither_loss_nor_gradient(name):
    x = _grey(8, seed=3)
    _assert_padding_changes_nothing(_objective(name, SMALL_VAE, 2, 2, 0.5, "bernoulli"), x, 5)


@pytest.mark.slow
def test_padding_rows_change_no_batchnorm_statistics_of_piwaes_two_passes():
    x = np.random.default_rng(3).uniform(size=(8, 8, 8, 1)).astype(np.float32)
    objective = piwae_objective(CONV_VAE, 2, 2, likelihood="bernoulli")
    state, (_, _, new_state, _) = _assert_padding_changes_nothing(objective, x, 5)
    # BatchNorm's statistics came back, moved by the real rows.
    moved = jax.tree.map(lambda a, b: bool(np.any(a != b)), new_state, state)
    assert set(new_state["batch_stats"]) == {"encoder", "decoder"} and all(jax.tree.leaves(moved))


# -------------------------------------------------------------------------- errors, registry


class NoDecoderVAE(nn.Module):
    """A VAE whose decoder's parameters are named "generator"."""

    def setup(self):
        self.encoder = nn.Dense(4)
        self.generator = nn.Dense(6)

    def encode(self, x):
        h = self.encoder(x)
        return h[:, :2], h[:, 2:]

    def decode(self, z):
        return self.generator(z)

    def __call__(self, x, key):
        mean, logvar = self.encode(x)
        z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, mean.shape)
        return self.decode(z), mean, logvar


def test_bad_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match="m must be >= 1, got m=0"):
        miwae_objective(SMALL_VAE, 0, 2)
    with pytest.raises(ValueError, match="k must be >= 1, got k=0"):
        piwae_objective(SMALL_VAE, 2, 0)
    with pytest.raises(TypeError, match="m must be an int"):
        piwae_objective(SMALL_VAE, 2.0, 2)
    with pytest.raises(ValueError, match="k must be >= 1"):
        ciwae_objective(SMALL_VAE, 0)
    for beta in (-0.1, 1.5):
        with pytest.raises(ValueError, match=rf"beta must be in \[0, 1\], got beta={beta}"):
            ciwae_objective(SMALL_VAE, 4, beta=beta)
    with pytest.raises(TypeError, match="beta must be a real number"):
        ciwae_objective(SMALL_VAE, 4, beta="half")
    with pytest.raises(ValueError, match="beta must be finite"):
        ciwae_objective(SMALL_VAE, 4, beta=float("nan"))
    with pytest.raises(TypeError, match="binarize must be a bool"):
        miwae_objective(SMALL_VAE, 2, 2, binarize=1)
    with pytest.raises(ValueError, match="likelihood must be one of"):
        ciwae_objective(SMALL_VAE, 2, likelihood="poisson")
    for make in (miwae_objective, piwae_objective):
        with pytest.raises(TypeError, match="encode and decode"):
            make(nn.Dense(3), 2, 2)
    with pytest.raises(TypeError, match="encode and decode"):
        ciwae_objective(nn.Dense(3), 2)


def test_piwae_needs_the_decoders_parameters_by_name():
    objective = piwae_objective(NoDecoderVAE(), 2, 2)
    x = jnp.asarray(_rows(3))
    message = (
        r"NoDecoderVAE has no 'decoder' parameters \(its parameters: \['encoder', 'generator'\]\)"
    )
    with pytest.raises(ValueError, match=message):
        objective.init(KEY, x)
    # The same model trains on MIWAE, which needs no names.
    variables = miwae_objective(NoDecoderVAE(), 2, 2).init(KEY, x)
    params, state = split_variables(variables)
    with pytest.raises(ValueError, match="use miwae or iwae for this model"):
        objective.loss(params, state, _batch(x), KEY, ZERO, ZERO)


def test_the_objectives_are_registered_with_the_papers_defaults():
    names = objectives.available("vae")
    assert {"miwae", "piwae", "ciwae"} <= set(names)
    flags = {
        name: [o.flag for o in objectives.objective_entry(name).options][2:]
        for name in ("miwae", "piwae", "ciwae")
    }
    assert flags == {"miwae": ["--m", "--k"], "piwae": ["--m", "--k"], "ciwae": ["--k", "--beta"]}
    common = {"likelihood": "sse", "binarize": False, "obs_logvar": 0.0}
    for name in ("miwae", "piwae"):
        built = build_objective(name, SMALL_VAE)
        assert built.name == name
        assert built.describe() == {"name": name, "m": 8, "k": 8, **common}
    ciwae = build_objective("ciwae", SMALL_VAE, beta=0.2, likelihood="bernoulli")
    assert ciwae.describe() == {"name": "ciwae", "k": 64, "beta": 0.2, **common} | {
        "likelihood": "bernoulli"
    }
    assert build_objective("ciwae", SMALL_VAE).describe()["beta"] == 0.5
    # The IWAE objective keeps its own default k.
    assert build_objective("iwae", SMALL_VAE).describe()["k"] == 1


# ---------------------------------------------------------------------------- command line

RUNS = {
    "miwae": (["--m", "2", "--k", "3"], {"m": 2, "k": 3}, "miwae_bound"),
    "ciwae": (["--beta", "0.3"], {"beta": 0.3, "k": 64}, "ciwae_bound"),
    "piwae": (["--m", "2", "--k", "2"], {"m": 2, "k": 2}, "iwae_bound"),
}


@pytest.mark.parametrize("objective", list(RUNS))
@pytest.mark.slow
def test_train_takes_the_objectives_their_flags_and_records_them(tmp_path, objective):
    flags, settings, target = RUNS[objective]
    data = tmp_path / "x.npy"
    np.save(data, _rows(60))
    out = tmp_path / "run"
    argv = ["train", "--data", str(data), "--model", "vae", "--hidden-dims", "5"]
    argv += ["--latent-dim", "2", "--epochs", "3", "--batch-size", "16", "--quiet"]
    assert cli.main([*argv, "--objective", objective, *flags, "--out", str(out)]) == 0
    names = {"loss", "iwae_bound", "elbo", "reconstruction", "kl", target}
    names |= {"miwae_bound"} if objective == "piwae" else set()
    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("train", "test"):
        assert {f"{split}_{name}" for name in names} <= set(metrics["history"])
        assert {f"{split}_{name}" for name in names} <= set(metrics["final"])
    assert set(metrics["test"]) == names
    assert len(metrics["history"]["train_loss"]) == 3
    final = metrics["final"]
    assert final["train_loss"] == pytest.approx(-final[f"train_{target}"], rel=1e-6)
    if objective == "ciwae":
        terms = 0.3 * final["train_elbo"] + 0.7 * final["train_iwae_bound"]
        assert final["train_ciwae_bound"] == pytest.approx(terms, rel=1e-5)
    config = json.loads((out / "config.json").read_text())
    assert config["settings"]["objective"] == objective
    assert {name: config["settings"][name] for name in settings} == settings
    assert_config_round_trips(out, "train")
    run = runs.load_run(out)
    assert run.model == SMALL_VAE
    samples = generate.sample_prior(KEY, run.model, run.variables, 3)
    assert samples.shape == (3, 6) and bool(jnp.all(jnp.isfinite(samples)))
