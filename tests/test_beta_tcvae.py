"""The β-TCVAE (Chen, Li, Grosse & Duvenaud 2018): the minibatch estimators of log q(z) and
log prod_k q(z_k) against float64 references written from the paper, the stratified weights
against the authors' construction, the decomposition's identities, masking, errors, and the
objective trained through `latent-jax train`."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numerics import assert_bitwise, assert_close

from latent_jax import cli, generate, runs
from latent_jax.models.mlp import VAE
from latent_jax.objectives import (
    Batch,
    beta_tcvae_objective,
    bind_dataset_size,
    build_objective,
    masked_mean,
    split_variables,
)
from latent_jax.objectives.tcvae import minibatch_log_weights, total_correlation_terms
from latent_jax.objectives.vae import ElboTerms
from latent_jax.train import TrainConfig, fit

KEY = jax.random.key(0)
SMALL_VAE = VAE(input_dim=6, hidden_dims=(5,), latent_dim=2)
ZERO = jnp.int32(0)
LOG_2PI = math.log(2 * math.pi)


def _rows(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 6)).astype(np.float32)


def _codes(n: int, d: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random posterior means and log-variances and a draw from each (float32)."""
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=(n, d))
    logvar = rng.uniform(-2.0, 1.0, size=(n, d))
    z = mean + np.exp(0.5 * logvar) * rng.normal(size=(n, d))
    return tuple(a.astype(np.float32) for a in (z, mean, logvar))


# ------------------------------------------------------------ float64 references (the paper)


def _log_normal(x, mean, logvar):
    return -0.5 * (LOG_2PI + logvar + (x - mean) ** 2 / np.exp(logvar))


def _logsumexp(a, axis):
    top = np.max(a, axis=axis, keepdims=True)
    return np.squeeze(top, axis) + np.log(np.sum(np.exp(a - top), axis=axis))


def _paper_weights(m: int, n: int, estimator: str) -> np.ndarray:
    """W with q(z_i) ~ sum_j W_ij q(z_i|n_j) on M real rows. MWS (eq. 8): 1/(NM). MSS (the
    paper's appendix): the row's own posterior 1/N, one stratum (N - M')/(N M') (here the
    next row, cyclically), the other M' - 1 rows 1/M', with M' = M - 1; each row sums to 1."""
    if estimator == "mws":
        return np.full((m, m), 1.0 / (n * m))
    if m == 1:
        return np.array([[1.0 / n]])
    others = m - 1
    w = np.full((m, m), 1.0 / others)
    for i in range(m):
        w[i, (i + 1) % m] = (n - others) / (n * others)
        w[i, i] = 1.0 / n
    return w


def _reference_logs(z, mean, logvar, n: int, estimator: str):
    """Per row: log q(z_i|x_i), log q(z_i), log prod_k q(z_ik), log p(z_i), in float64, from
    the real rows only (the arrays hold only those)."""
    z, mean, logvar = (np.asarray(a, np.float64) for a in (z, mean, logvar))
    m, d = z.shape
    pairs = np.empty((m, m, d))  # log q(z_ik | x_j)
    for i in range(m):
        for j in range(m):
            pairs[i, j] = _log_normal(z[i], mean[j], logvar[j])
    log_w = np.log(_paper_weights(m, n, estimator))
    log_qz_given_x = np.array([pairs[i, i].sum() for i in range(m)])
    log_qz = _logsumexp(log_w + pairs.sum(-1), axis=1)
    log_prod = _logsumexp(log_w[:, :, None] + pairs, axis=1).sum(-1)
    log_pz = _log_normal(z, 0.0, 0.0).sum(-1)
    return log_qz_given_x, log_qz, log_prod, log_pz


def _authors_weights(batch_size: int, n: int, stride: int) -> np.ndarray:
    """The authors' _log_importance_weight_matrix (github.com/rtqichen/beta-tcvae,
    vae_quant.py), exponentiated, in NumPy. Their code strides by batch_size (M + 1), which
    walks down column 0; the diagonal it means (their pull request 1) is batch_size + 1."""
    m = batch_size - 1
    stratum = (n - m) / (n * m)
    w = np.full((batch_size, batch_size), 1.0 / m)
    flat = w.reshape(-1)  # a view, as torch's W.view(-1)
    flat[::stride] = 1.0 / n
    flat[1::stride] = stratum
    w[m - 1, 0] = stratum
    return w


# ------------------------------------------------------------------------- the weights


def test_the_stratified_weights_are_the_authors_with_one_stratum_per_row():
    n, batch = 50, 6
    ours = np.exp(np.asarray(minibatch_log_weights(jnp.ones(batch), n, "mss"), np.float64))
    intended = _authors_weights(batch, n, stride=batch + 1)
    others = batch - 1
    # Every row but the last two is the authors' (own 1/N, the next row's stratum, 1/M')...
    # a float32 1/N, 1/M' or (N - M')/(N M') from logs: log, two sums, exp.
    assert_close(ours[: others - 1], intended[: others - 1], ops=4)
    # ...whose code gives row M' - 1 a second stratum weight (at column 0) and row M' none;
    # here that weight is row M''s, so every row sums to 1 (the estimator is an average).
    assert intended[others - 1, 0] == intended[others - 1, others]
    assert np.isclose(intended.sum(1)[others], 1 + 1 / n)
    intended[others - 1, 0], intended[others, 0] = 1 / others, (n - others) / (n * others)
    assert_close(ours, intended, ops=4)
    assert_close(ours.sum(1), np.ones(batch), ops=8)
    assert_close(ours, _paper_weights(batch, n, "mss"), ops=4)
    # The code as written (stride batch_size) puts 1/N in column 0, not on the diagonal.
    written = _authors_weights(batch, n, stride=batch)
    assert np.all(written[np.arange(batch) != others - 1, 0] == 1 / n)


@pytest.mark.parametrize("estimator", ["mws", "mss"])
@pytest.mark.parametrize("real", [1, 2, 5])
def test_a_ragged_batch_weighs_its_real_rows_only(estimator, real):
    n = 40
    mask = jnp.asarray([1.0] * real + [0.0] * 3)
    weights = np.exp(np.asarray(minibatch_log_weights(mask, n, estimator), np.float64))
    assert_close(weights[:real, :real], _paper_weights(real, n, estimator), ops=4)
    assert np.all(weights[:, real:] == 0.0)  # padding columns weigh nothing (log 0 = -inf)
    # Rows need not come first: the ranks of the real rows order them.
    shuffled = jnp.asarray([0.0, 1.0, 0.0] + [1.0] * (real - 1) + [0.0] * (4 - real))
    spread = np.exp(np.asarray(minibatch_log_weights(shuffled, n, estimator), np.float64))
    at = np.flatnonzero(np.asarray(shuffled))
    assert_close(spread[np.ix_(at, at)], _paper_weights(real, n, estimator), ops=4)


# --------------------------------------------------------------- the estimators of log q(z)


@pytest.mark.numerics
@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_the_estimates_match_the_papers_formulas(estimator):
    z, mean, logvar = _codes(7, 3)
    got = total_correlation_terms(z, mean, logvar, jnp.ones(7), 1000, estimator)
    want = _reference_logs(z, mean, logvar, 1000, estimator)
    scale = max(float(np.max(np.abs(w))) for w in want)
    # Per pair and dimension 7 rounded operations (difference, square, exp, product, two
    # sums, the half), 3 dimensions summed, the log-weight added, a logsumexp over 7 rows
    # (max subtracted, exp, 7 sums, log, the max added back: 11), 3 marginals summed: 25.
    for name, a, b in zip(got._fields, got, want, strict=True):
        assert_close(a, b, ops=25, scale=scale, err_msg=name)


@pytest.mark.numerics
@pytest.mark.parametrize("estimator", ["mws", "mss"])
@pytest.mark.slow
def test_padding_rows_change_nothing(estimator):
    z, mean, logvar = _codes(5, 3)
    pad = np.full((3, 3), np.nan, np.float32)
    padded = [np.concatenate([a, pad]) for a in (z, mean, logvar)]
    mask = jnp.asarray([1.0] * 5 + [0.0] * 3)
    got = total_correlation_terms(*padded, mask, 300, estimator)
    want = _reference_logs(z, mean, logvar, 300, estimator)
    scale = max(float(np.max(np.abs(w))) for w in want)
    for name, a, b in zip(got._fields, got, want, strict=True):
        assert np.all(np.isfinite(a)), name
        assert_close(a[:5], b, ops=25, scale=scale, err_msg=name)  # as the test above

    def penalty(z, mean, logvar, mask):
        logs = total_correlation_terms(z, mean, logvar, mask, 300, estimator)
        terms = (logs.log_qz_given_x - logs.log_qz, logs.log_qz - logs.log_prod_qzk)
        total = sum(masked_mean(t, mask) for t in terms)
        return total + masked_mean(logs.log_prod_qzk - logs.log_pz, mask)

    grad = jax.jit(jax.grad(penalty, argnums=(0, 1, 2)))
    padded_grads = grad(*map(jnp.asarray, padded), mask)
    plain_grads = grad(*map(jnp.asarray, (z, mean, logvar)), jnp.ones(5))
    for padded_grad, plain_grad in zip(padded_grads, plain_grads, strict=True):
        assert np.all(np.asarray(padded_grad)[5:] == 0.0)
        # Two programs of the same sums: the chain above, back and forth, and the mean.
        assert_close(padded_grad[:5], plain_grad, ops=64)


def test_the_three_terms_sum_to_the_sampled_kl_whatever_the_estimator():
    z, mean, logvar = _codes(6, 2)
    for estimator in ("mws", "mss"):
        logs = total_correlation_terms(z, mean, logvar, jnp.ones(6), 20, estimator)
        three = (
            (logs.log_qz_given_x - logs.log_qz)
            + (logs.log_qz - logs.log_prod_qzk)
            + (logs.log_prod_qzk - logs.log_pz)
        )
        want = _log_normal(z, mean, logvar).sum(-1) - _log_normal(z, 0.0, 0.0).sum(-1)
        scale = max(float(np.max(np.abs(a))) for a in logs)
        # The chain of test_the_estimates_match_the_papers_formulas (25) and 5 differences.
        assert_close(three, want, ops=30, scale=scale)


# ---------------------------------------------------------------------------- the objective


def _loss(objective, variables, x, mask=None, key=KEY, n_train=100, train=False):
    params, state = split_variables(variables)
    mask = jnp.ones(len(x), jnp.float32) if mask is None else mask
    if n_train is not None:
        objective = bind_dataset_size(objective, n_train)
    batch = Batch(jnp.asarray(x), mask)
    return objective.loss(params, state, batch, key, ZERO, ZERO, train)


@pytest.mark.numerics
@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_the_loss_is_the_weighted_sum_of_its_terms_against_numpy(estimator):
    objective = beta_tcvae_objective(SMALL_VAE, alpha=0.5, beta=6.0, gamma=2.0, estimator=estimator)
    x = _rows(8)
    variables = objective.init(KEY, x)
    value, (metrics, _) = _loss(objective, variables, x, n_train=64)
    assert set(metrics) == {"loss", "reconstruction", "kl", "mutual_info", "tc", "dimwise_kl"}
    assert all(m.dtype == jnp.float32 and m.shape == () for m in metrics.values())
    assert float(value) == float(metrics["loss"])
    # The terms at the draw ElboTerms decodes (the same key), against the float64 formulas.
    params, state = split_variables(variables)
    terms = ElboTerms(SMALL_VAE, likelihood="sse", binarize=False, obs_logvar=0.0)
    encoded = terms.encoded(params, state, Batch(jnp.asarray(x), jnp.ones(8)), KEY, False)
    q_x, q, prod, p = _reference_logs(encoded.z, encoded.mean, encoded.logvar, 64, estimator)
    scale = max(float(np.max(np.abs(a))) for a in (q_x, q, prod, p))
    want = {"mutual_info": q_x - q, "tc": q - prod, "dimwise_kl": prod - p}
    for name, per_row in want.items():
        # The estimates' chain (25), a difference, the mean over 8 rows.
        assert_close(metrics[name], per_row.mean(), ops=34, scale=scale, err_msg=name)
    mean, logvar = (np.asarray(a, np.float64) for a in (encoded.mean, encoded.logvar))
    kl = 0.5 * np.sum(mean**2 + np.exp(logvar) - 1 - logvar, axis=1).mean()
    assert_close(metrics["kl"], kl, ops=16)  # the KL's 5 operations a dimension, 2, mean of 8
    # The reconstruction term is ElboTerms' (another program: the mean of 8 rows).
    assert_close(metrics["reconstruction"], np.mean(encoded.reconstruction), ops=8)
    # loss = rec + 0.5 MI + 6 TC + 2 dimKL from the reported values: 3 products, 3 sums.
    reported = {k: float(v) for k, v in metrics.items()}
    parts = [
        reported["reconstruction"],
        0.5 * reported["mutual_info"],
        6.0 * reported["tc"],
        2.0 * reported["dimwise_kl"],
    ]
    assert_close(value, sum(parts), ops=6, scale=max(abs(t) for t in parts))


@pytest.mark.numerics
def test_with_unit_weights_the_terms_are_the_sampled_kl_of_the_negative_elbo():
    objective = beta_tcvae_objective(SMALL_VAE, alpha=1.0, beta=1.0, gamma=1.0, estimator="mss")
    x = _rows(8)
    variables = objective.init(KEY, x)
    params, state = split_variables(variables)
    bound = bind_dataset_size(objective, 50)

    def metrics(key):
        batch = Batch(jnp.asarray(x), jnp.ones(8))
        return bound.loss(params, state, batch, key, ZERO, ZERO, False)[1][0]

    # Exactly, draw by draw: MI + TC + dimKL = mean_i [log q(z_i|x_i) - log p(z_i)].
    one = metrics(KEY)
    terms = ElboTerms(SMALL_VAE, likelihood="sse", binarize=False, obs_logvar=0.0)
    encoded = terms.encoded(params, state, Batch(jnp.asarray(x), jnp.ones(8)), KEY, False)
    z, mean, logvar = (np.asarray(a, np.float64) for a in (encoded.z, encoded.mean, encoded.logvar))
    sampled = (_log_normal(z, mean, logvar).sum(-1) - _log_normal(z, 0.0, 0.0).sum(-1)).mean()
    three = float(one["mutual_info"]) + float(one["tc"]) + float(one["dimwise_kl"])
    scale = max(abs(float(one[k])) for k in ("mutual_info", "tc", "dimwise_kl"))
    # The estimates' chain (25), a difference, the mean of 8, the two sums here: 36.
    assert_close(three, sampled, ops=36, scale=max(scale, abs(sampled)))
    assert_close(one["loss"], float(one["reconstruction"]) + three, ops=40, scale=scale + 20)

    # In expectation over the draw, the sampled KL is the analytic one: E_q[log q - log p].
    draws = 4000
    many = jax.jit(jax.vmap(metrics))(jax.random.split(jax.random.key(7), draws))
    estimate = np.mean(
        np.asarray(many["mutual_info"], np.float64)
        + np.asarray(many["tc"], np.float64)
        + np.asarray(many["dimwise_kl"], np.float64)
    )
    # Per row and dimension, with z = mu + sigma eps, log q - log p = (sigma^2 - 1) eps^2 / 2
    # + mu sigma eps + const: variance (sigma^2 - 1)^2 / 2 + mu^2 sigma^2. The rows draw
    # independently, so the mean over 8 rows and 4000 draws has the standard deviation below;
    # 5 of them: a failure for a correct estimator once in ~1.7 million key choices.
    var = np.exp(logvar)
    per_row = np.sum(0.5 * (var - 1) ** 2 + mean**2 * var, axis=1)
    std = math.sqrt(per_row.sum()) / (8 * math.sqrt(draws))
    kl = float(many["kl"][0])
    assert np.all(np.asarray(many["kl"]) == kl)  # the encoder does not draw
    assert abs(estimate - kl) < 5 * std, (estimate, kl, std)


def test_padding_rows_do_not_change_the_loss_or_its_gradient():
    objective = bind_dataset_size(beta_tcvae_objective(SMALL_VAE, estimator="mss"), 30)
    x = _rows(8)
    params, state = split_variables(objective.init(KEY, x))
    mask = jnp.asarray([1.0] * 5 + [0.0] * 3)

    def loss(params, x):
        return objective.loss(params, state, Batch(x, mask), KEY, ZERO, ZERO, True)

    grad = jax.jit(jax.value_and_grad(loss, has_aux=True))
    (value, (metrics, _)), grads = grad(params, jnp.asarray(x))
    garbage = jnp.asarray(x).at[5:].set(1e3)
    (other, (other_metrics, _)), other_grads = grad(params, garbage)
    # The same compiled program; what padding holds is selected away before any arithmetic.
    assert_bitwise(other, value)
    for name in metrics:
        assert_bitwise(other_metrics[name], metrics[name])
    for a, b in zip(jax.tree.leaves(other_grads), jax.tree.leaves(grads), strict=True):
        assert_bitwise(a, b)


def test_the_estimators_need_the_training_set_size():
    objective = beta_tcvae_objective(SMALL_VAE)
    x = _rows(4)
    variables = objective.init(KEY, x)
    with pytest.raises(ValueError, match=r"training set's size N .*bind_dataset_size"):
        _loss(objective, variables, x, n_train=None)
    with pytest.raises(ValueError, match="n_train must be >= 1"):
        total_correlation_terms(*_codes(3, 2), jnp.ones(3), 0)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        beta_tcvae_objective(SMALL_VAE, alpha=-1.0)
    with pytest.raises(ValueError, match="beta must be finite"):
        beta_tcvae_objective(SMALL_VAE, beta=float("nan"))
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        beta_tcvae_objective(SMALL_VAE, gamma=-0.5)
    with pytest.raises(TypeError, match="beta must be a real number"):
        beta_tcvae_objective(SMALL_VAE, beta="6")
    with pytest.raises(ValueError, match=r"estimator must be one of \('mws', 'mss'\)"):
        beta_tcvae_objective(SMALL_VAE, estimator="mcmc")
    with pytest.raises(ValueError, match="likelihood must be one of"):
        beta_tcvae_objective(SMALL_VAE, likelihood="laplace")
    with pytest.raises(ValueError, match=r"objective 'beta-tcvae' takes no \['k'\]"):
        build_objective("beta-tcvae", SMALL_VAE, k=3)
    with pytest.raises(ValueError, match=r"mask must have shape \(3,\)"):
        total_correlation_terms(*_codes(3, 2), jnp.ones(4), 10)
    with pytest.raises(ValueError, match="one shape"):
        z, mean, logvar = _codes(3, 2)
        total_correlation_terms(z, mean[:, :1], logvar, jnp.ones(3), 10)


def test_building_by_name_takes_the_papers_defaults():
    spec = build_objective("beta-tcvae", SMALL_VAE).describe()
    assert spec == {
        "name": "beta-tcvae",
        "alpha": 1.0,
        "beta": 6.0,
        "gamma": 1.0,
        "estimator": "mws",
        "likelihood": "sse",
        "binarize": False,
        "obs_logvar": 0.0,
    }


@pytest.mark.slow
def test_training_on_correlated_data_lowers_the_loss():
    rng = np.random.default_rng(3)
    factors = rng.normal(size=(96, 2))
    mixing = rng.normal(size=(2, 6))
    x = (factors @ mixing + 0.1 * rng.normal(size=(96, 6))).astype(np.float32)
    objective = beta_tcvae_objective(SMALL_VAE, beta=4.0, estimator="mss")
    config = TrainConfig(epochs=8, batch_size=16, learning_rate=1e-2, quiet=True)
    _, history = fit(objective, x, x[:16], config, KEY)
    losses = history["train_loss"]
    assert losses[-1] < 0.7 * losses[0], losses
    assert {"train_tc", "train_mutual_info", "test_dimwise_kl"} <= set(history.to_dict())


@pytest.mark.slow
def test_train_takes_the_beta_tcvae_objective_its_flags_and_records_them(tmp_path, capsys):
    data = tmp_path / "x.npy"
    np.save(data, _rows(60))
    out = tmp_path / "run"
    argv = ["train", "--data", str(data), "--model", "vae", "--hidden-dims", "5"]
    argv += ["--latent-dim", "2", "--epochs", "2", "--batch-size", "16", "--quiet"]
    flags = ["--objective", "beta-tcvae", "--estimator", "mss", "--beta", "4"]
    assert cli.main([*argv, *flags, "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    history = metrics["history"]
    for name in ("loss", "tc", "mutual_info", "dimwise_kl", "kl", "reconstruction"):
        assert len(history[f"train_{name}"]) == 2 and len(history[f"test_{name}"]) == 2
        assert math.isfinite(metrics["test"][name])  # the final scoring of the test rows
    settings = json.loads((out / "config.json").read_text())["settings"]
    assert settings["objective"] == "beta-tcvae"
    assert (settings["alpha"], settings["beta"], settings["gamma"]) == (1.0, 4.0, 1.0)
    assert settings["estimator"] == "mss"
    run = runs.load_run(out)
    assert run.model == VAE(input_dim=6, hidden_dims=(5,), latent_dim=2)
    assert generate.sample_prior(KEY, run.model, run.variables, 3).shape == (3, 6)
    # An option of beta-tcvae is refused to another objective, before anything is written.
    bad = [*argv, "--estimator", "mss", "--out", str(tmp_path / "x")]
    assert cli.main(bad) == cli.EXIT_ERROR
    assert "--estimator mss is an option of --objective beta-tcvae" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
