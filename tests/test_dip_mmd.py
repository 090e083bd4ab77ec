"""DIP-VAE (Kumar et al. 2018), InfoVAE-MMD (Zhao et al. 2019) and WAE-MMD (Tolstikhin et al.
2018): their batch statistics against float64 NumPy written from the papers, the reductions
to the VAE, padding, errors, and the command line."""

from __future__ import annotations

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cli_checks import assert_config_round_trips
from numerics import assert_bitwise, assert_close

from latent_jax import cli, generate, objectives, runs
from latent_jax.models.mlp import VAE
from latent_jax.objectives import (
    Batch,
    build_objective,
    dip_vae_objective,
    mmd_objective,
    split_variables,
    vae_objective,
)
from latent_jax.objectives.dip import dip_covariance, dip_penalties
from latent_jax.objectives.mmd import mmd_kernel, mmd_u_statistic
from latent_jax.objectives.vae import ElboTerms

ZERO = jnp.int32(0)
KEY = jax.random.key(7)
# The prior's draws use fold_in(key, 0x6D6D64), as mmd_objective documents.
PRIOR_STREAM = 0x6D6D64
MODEL = VAE(input_dim=6, hidden_dims=(5,), latent_dim=2)
# A ragged batch: rows 3 and 8 are padding.
MASK = np.array([1, 1, 1, 0, 1, 1, 1, 1, 0], np.float32)


@pytest.fixture(scope="module")
def tiny():
    """The tiny VAE's parameters and a batch of grey levels whose padding rows hold garbage."""
    x = np.array(jax.random.uniform(jax.random.key(0), (len(MASK), 6)))
    x[MASK == 0] = [[50.0, -3.0, 7.0, 1e3, -1e3, 9.0], [4.0] * 6]
    params, state = split_variables(vae_objective(MODEL).init(jax.random.key(1), x))
    return params, state, Batch(jnp.asarray(x), jnp.asarray(MASK))


def _loss(objective, params, state, batch, key=KEY, train=False):
    return objective.loss(params, state, batch, key, ZERO, ZERO, train)


def _encode(params, x):
    return (np.asarray(a, np.float64) for a in MODEL.apply({"params": params}, x, method="encode"))


def _garbage(shape, seed):
    """Padding rows: NaN, infinities and huge values, which must not reach any result."""
    values = np.random.default_rng(seed).normal(size=shape) * 1e30
    values.flat[::3] = np.nan
    values.flat[1::5] = np.inf
    return values


# ------------------------------------------------------- NumPy, written from the papers


def np_dip_covariance(mean, logvar, kind):
    """Kumar et al.: Cov_p(x)[mu(x)] = E[mu mu^T] - E[mu] E[mu]^T (eq. 6, under the empirical
    distribution of the rows); DIP-VAE-II adds E_p(x)[Sigma(x)] (eqs. 5 and 7)."""
    m = len(mean)
    e_mu = mean.sum(0) / m
    e_mu_mu = sum(np.outer(mu, mu) for mu in mean) / m
    cov = e_mu_mu - np.outer(e_mu, e_mu)
    if kind == "ii":
        cov = cov + np.diag(np.exp(logvar).sum(0) / m)
    return cov


def np_dip_penalties(cov):
    d = len(cov)
    off = sum(cov[i, j] ** 2 for i in range(d) for j in range(d) if i != j)
    return off, sum((cov[i, i] - 1.0) ** 2 for i in range(d))


def np_kernel(a, b, kernel, sigma):
    c = 2.0 * len(a) * sigma**2  # Tolstikhin et al., Section 4: C = 2 d sigma^2
    distance = float(np.sum((a - b) ** 2))
    return np.exp(-distance / c) if kernel == "rbf" else c / (c + distance)


def np_mmd_terms(x, y, kernel, sigma):
    """Tolstikhin et al., Algorithm 2 (without lambda), one term at a time, by double loops."""
    m = len(x)
    xx = sum(np_kernel(x[i], x[j], kernel, sigma) for i in range(m) for j in range(m) if i != j)
    yy = sum(np_kernel(y[i], y[j], kernel, sigma) for i in range(m) for j in range(m) if i != j)
    xy = sum(np_kernel(x[i], y[j], kernel, sigma) for i in range(m) for j in range(m))
    return xx / (m * (m - 1)), yy / (m * (m - 1)), 2.0 * xy / m**2


def np_mmd(x, y, kernel, sigma):
    xx, yy, xy = np_mmd_terms(x, y, kernel, sigma)
    return xx + yy - xy


# ------------------------------------------------------------------------------ registry


def test_the_four_objectives_are_registered_with_their_options():
    vae_objectives = objectives.available("vae")
    assert {"dip-vae-i", "dip-vae-ii", "infovae-mmd", "wae-mmd"} <= set(vae_objectives)
    flags = {
        name: [o.flag for o in objectives.objective_entry(name).options][2:]
        for name in ("dip-vae-i", "dip-vae-ii", "infovae-mmd", "wae-mmd")
    }
    assert flags["dip-vae-i"] == flags["dip-vae-ii"] == ["--lambda-od", "--lambda-d"]
    assert flags["infovae-mmd"] == ["--alpha", "--lambda-mmd", "--kernel", "--kernel-bandwidth"]
    assert flags["wae-mmd"] == ["--lambda-mmd", "--kernel", "--kernel-bandwidth"]
    # lambda_d defaults to the paper's ratio to lambda_od; lambda_mmd to each paper's value.
    assert build_objective("dip-vae-i", MODEL, lambda_od=3.0).describe()["lambda_d"] == 30.0
    assert build_objective("dip-vae-ii", MODEL, lambda_od=3.0).describe()["lambda_d"] == 3.0
    infovae = build_objective("infovae-mmd", MODEL).describe()
    assert infovae == {
        "name": "infovae-mmd",
        "kind": "infovae",
        "alpha": 0.0,
        "lambda_mmd": 1000.0,
        "kernel": "imq",
        "kernel_bandwidth": 1.0,
        "likelihood": "sse",
        "binarize": False,
        "obs_logvar": 0.0,
    }
    wae = build_objective("wae-mmd", MODEL, kernel="rbf").describe()
    assert wae["lambda_mmd"] == 10.0 and wae["kernel"] == "rbf" and "alpha" not in wae


# ------------------------------------------------------------------------------- DIP-VAE


@pytest.mark.numerics
@pytest.mark.parametrize("kind", ["i", "ii"])
def test_the_dip_covariance_and_penalties_are_the_papers(kind):
    rng = np.random.default_rng(3)
    mean = rng.normal(0.5, 1.5, size=(len(MASK), 3))
    logvar = rng.normal(0.0, 0.7, size=mean.shape)
    real = MASK > 0
    want = np_dip_covariance(mean[real], logvar[real], kind)
    mean[~real], logvar[~real] = _garbage((2, 3), 4), _garbage((2, 3), 5)
    got = dip_covariance(mean.astype(np.float32), logvar.astype(np.float32), MASK, kind)
    assert got.shape == (3, 3) and got.dtype == jnp.float32
    # ops: the mean over 7 rows (7), the centring (1), the product (1), the sum over 7 rows
    # (7), and for "ii" exp (2) and its mean (7): 25.
    assert_close(got, want, ops=25)
    off, diagonal = dip_penalties(got)
    want_off, want_diagonal = np_dip_penalties(want)
    # The squares double the covariance's relative error (50), then a sum of 6 or 3 terms;
    # relative to the squares of |C| + 1, which C_ii - 1 carries.
    scale = 6 * (float(np.max(np.abs(want))) + 1.0) ** 2
    assert_close(off, want_off, ops=56, scale=scale)
    assert_close(diagonal, want_diagonal, ops=56, scale=scale)


def test_the_dip_covariance_of_one_row_and_of_none():
    mean = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    logvar = np.log(np.array([[2.0, 3.0], [5.0, 7.0]], np.float32))
    one = np.array([0.0, 1.0], np.float32)
    assert_bitwise(dip_covariance(mean, logvar, one, "i"), np.zeros((2, 2), np.float32))
    assert_close(dip_covariance(mean, logvar, one, "ii"), np.diag([5.0, 7.0]), ops=2)
    assert_bitwise(dip_covariance(mean, logvar, np.zeros(2), "ii"), np.zeros((2, 2)))


@pytest.mark.numerics
@pytest.mark.parametrize("kind", ["i", "ii"])
def test_the_dip_loss_is_the_elbo_plus_the_weighted_penalty_of_the_real_rows(tiny, kind):
    params, state, batch = tiny
    objective = dip_vae_objective(MODEL, kind=kind, lambda_od=3.0, lambda_d=7.0)
    value, (metrics, _) = _loss(objective, params, state, batch)
    mean, logvar = _encode(params, batch.x[MASK > 0])
    off, diagonal = np_dip_penalties(np_dip_covariance(mean, logvar, kind))
    # ops: the encoder's fan-ins 6 + 5, then the covariance's 25 (above), doubled by the
    # squares, and the sums of 2 or 4 terms: about 75; relative to (|C| + 1)^2.
    assert_close(metrics["dip_off_diagonal"], off, ops=75, scale=4.0)
    assert_close(metrics["dip_diagonal"], diagonal, ops=75, scale=4.0)
    assert_close(metrics["dip"], 3.0 * off + 7.0 * diagonal, ops=77, scale=40.0)
    # The reported terms add up to the loss: two products and three sums.
    reported = [float(metrics[n]) for n in ("reconstruction", "kl", "dip")]
    assert_close(value, sum(reported), ops=3)
    assert_bitwise(metrics["loss"], value)
    elbo = vae_objective(MODEL)
    _, (elbo_metrics, _) = _loss(elbo, params, state, batch)
    for name in ("reconstruction", "kl"):  # the same terms' program on the same draws
        assert_bitwise(metrics[name], elbo_metrics[name])
    assert set(metrics) == {
        "loss",
        "reconstruction",
        "kl",
        "dip",
        "dip_off_diagonal",
        "dip_diagonal",
    }
    assert all(m.dtype == jnp.float32 and m.shape == () for m in metrics.values())


@pytest.mark.numerics
@pytest.mark.parametrize("kind", ["i", "ii"])
@pytest.mark.parametrize(("likelihood", "binarize"), [("sse", False), ("bernoulli", True)])
def test_dip_vae_without_its_penalty_is_the_vae(tiny, kind, likelihood, binarize):
    params, state, batch = tiny
    dip = dip_vae_objective(
        MODEL, kind=kind, lambda_od=0.0, lambda_d=0.0, likelihood=likelihood, binarize=binarize
    )
    plain = vae_objective(MODEL, likelihood=likelihood, binarize=binarize)
    got, (got_metrics, _) = _loss(dip, params, state, batch, train=True)
    want, (want_metrics, _) = _loss(plain, params, state, batch, train=True)
    # The same terms' program on the same draws; rec + 1 * kl + 0 * penalty is rec + kl
    # exactly (a product by 1 and a sum with 0 round nothing).
    for name in ("reconstruction", "kl"):
        assert_bitwise(got_metrics[name], want_metrics[name])
    assert_bitwise(got, want)
    assert float(got_metrics["dip"]) == 0.0 and float(got_metrics["dip_diagonal"]) > 0.0


# ---------------------------------------------------------------------------------- MMD


@pytest.mark.numerics
@pytest.mark.parametrize("kernel", ["rbf", "imq"])
@pytest.mark.parametrize("bandwidth", [0.5, 2.0])
def test_the_mmd_u_statistic_is_algorithm_2s(kernel, bandwidth):
    rng = np.random.default_rng(5)
    x = rng.normal(0.3, 1.2, size=(len(MASK), 3))
    y = rng.normal(size=x.shape)
    real = MASK > 0
    terms = np_mmd_terms(x[real], y[real], kernel, bandwidth)
    x[~real], y[~real] = _garbage((2, 3), 6), _garbage((2, 3), 7)
    got = mmd_u_statistic(x.astype(np.float32), y.astype(np.float32), MASK, kernel, bandwidth)
    # ops: a squared distance over 3 dimensions (5), the kernel (exp: 2; the quotient: 2),
    # the sum over 49 pairs (49) and the normalization (2): about 60, relative to the terms
    # (each at most 1), not to their difference.
    assert_close(got, terms[0] + terms[1] - terms[2], ops=60, scale=sum(map(abs, terms)))
    k = mmd_kernel(x[:3].astype(np.float32), y[:2].astype(np.float32), kernel, bandwidth)
    want = [[np_kernel(a, b, kernel, bandwidth) for b in y[:2]] for a in x[:3]]
    assert_close(k, want, ops=9)


def test_the_mmd_u_statistic_needs_two_real_rows():
    x = np.arange(6.0, dtype=np.float32).reshape(3, 2)
    assert float(mmd_u_statistic(x, -x, np.array([0.0, 1.0, 0.0]), "imq", 1.0)) == 0.0
    assert float(mmd_u_statistic(x, -x, np.zeros(3), "rbf", 1.0)) == 0.0


@pytest.mark.parametrize("kernel", ["rbf", "imq"])
def test_the_u_statistic_is_unbiased_and_large_for_shifted_samples(kernel):
    m, d, repeats = 8, 3, 4000

    @jax.jit
    def estimates(keys, shift):
        def one(key):
            kx, ky = jax.random.split(key)
            x = jax.random.normal(kx, (m, d))
            y = jax.random.normal(ky, (m, d)) + shift
            ones = jnp.ones(m)
            biased = jnp.mean(mmd_kernel(x, x, kernel, 1.0)) + jnp.mean(
                mmd_kernel(y, y, kernel, 1.0)
            )
            biased = biased - 2.0 * jnp.mean(mmd_kernel(x, y, kernel, 1.0))
            return mmd_u_statistic(x, y, ones, kernel, 1.0), biased

        return jax.vmap(one)(keys)

    keys = jax.random.split(jax.random.key(11), repeats)
    same, biased = (np.asarray(a, np.float64) for a in estimates(keys, 0.0))
    # Two samples of one distribution: MMD^2 = 0, and the U-statistic's mean over 4000
    # independent estimates is within 4 standard errors of it (a false alarm has probability
    # 6e-5 for a normal mean; the keys are fixed, so the test is deterministic).
    standard_error = same.std() / np.sqrt(repeats)
    assert abs(same.mean()) < 4 * standard_error, (same.mean(), standard_error)
    # The test can see a bias of this size: the V-statistic (diagonal included) is off by
    # 2 (k(0) - E k(x, x')) / m > 0, far more than 4 standard errors.
    assert biased.mean() > 4 * biased.std() / np.sqrt(repeats), biased.mean()
    # Shifted by 2 in every dimension: every estimate is positive, the mean many errors away.
    shifted, _ = (np.asarray(a, np.float64) for a in estimates(keys, 2.0))
    assert shifted.min() > 0.0 and shifted.mean() > 100 * standard_error


@pytest.mark.numerics
@pytest.mark.parametrize("kernel", ["rbf", "imq"])
def test_infovae_weighs_kl_and_the_mmd_of_the_drawn_codes(tiny, kernel):
    params, state, batch = tiny
    objective = mmd_objective(MODEL, alpha=0.25, lambda_mmd=10.0, kernel=kernel)
    value, (metrics, _) = _loss(objective, params, state, batch)
    assert set(metrics) == {"loss", "reconstruction", "kl", "mmd"}
    # The codes are the draws the model decodes, the prior's draws those of the documented key.
    terms = ElboTerms(MODEL, likelihood="sse", binarize=False, obs_logvar=0.0)
    z = terms.encoded(params, state, batch, KEY, False).z
    prior = jax.random.normal(jax.random.fold_in(KEY, PRIOR_STREAM), z.shape)
    real = MASK > 0
    codes, draws = (np.asarray(a, np.float64)[real] for a in (z, prior))
    mmd_terms = np_mmd_terms(codes, draws, kernel, 1.0)
    # The U-statistic's 60 ops (above) after the codes' (the encoder's 11 and the draw's 3).
    want = mmd_terms[0] + mmd_terms[1] - mmd_terms[2]
    assert_close(metrics["mmd"], want, ops=75, scale=sum(map(abs, mmd_terms)))
    reported = [float(metrics[n]) for n in ("reconstruction", "kl", "mmd")]
    # rec + 0.75 kl + 9.25 mmd: two products and two sums.
    assert_close(value, reported[0] + 0.75 * reported[1] + 9.25 * reported[2], ops=4)


@pytest.mark.numerics
@pytest.mark.parametrize(("likelihood", "binarize"), [("sse", False), ("bernoulli", True)])
def test_infovae_with_alpha_0_and_lambda_1_is_the_vae(tiny, likelihood, binarize):
    params, state, batch = tiny
    infovae = mmd_objective(
        MODEL, alpha=0.0, lambda_mmd=1.0, likelihood=likelihood, binarize=binarize
    )
    plain = vae_objective(MODEL, likelihood=likelihood, binarize=binarize)
    got, (got_metrics, _) = _loss(infovae, params, state, batch, train=True)
    want, (want_metrics, _) = _loss(plain, params, state, batch, train=True)
    # The MMD weight alpha + lambda - 1 is 0 and the KL's 1: the terms' program on the same
    # draws (the prior's key is a stream of its own), and nothing rounded after it.
    for name in ("reconstruction", "kl"):
        assert_bitwise(got_metrics[name], want_metrics[name])
    assert_bitwise(got, want)
    assert float(got_metrics["mmd"]) != 0.0


@pytest.mark.numerics
@pytest.mark.parametrize("kernel", ["rbf", "imq"])
def test_wae_decodes_the_mean_code_and_weighs_its_mmd(tiny, kernel):
    params, state, batch = tiny
    objective = mmd_objective(MODEL, kind="wae", lambda_mmd=10.0, kernel=kernel)
    value, (metrics, _) = _loss(objective, params, state, batch)
    assert set(metrics) == {"loss", "reconstruction", "mmd"}
    real = MASK > 0
    x = np.asarray(batch.x, np.float64)[real]
    mean, _ = _encode(params, batch.x[real])
    output = MODEL.apply({"params": params}, jnp.asarray(mean, jnp.float32), method="decode")
    want_rec = np.mean(np.sum((np.asarray(output, np.float64) - x) ** 2, axis=1))
    # ops: the encoder's and decoder's fan-ins (6 + 5 + 2 + 5), a square and the sum over 6
    # features, the mean over 7 rows: about 35.
    assert_close(metrics["reconstruction"], want_rec, ops=35)
    prior = jax.random.normal(jax.random.fold_in(KEY, PRIOR_STREAM), (len(MASK), 2))
    mmd_terms = np_mmd_terms(mean, np.asarray(prior, np.float64)[real], kernel, 1.0)
    want = mmd_terms[0] + mmd_terms[1] - mmd_terms[2]
    assert_close(metrics["mmd"], want, ops=75, scale=sum(map(abs, mmd_terms)))
    assert_close(value, float(metrics["reconstruction"]) + 10.0 * float(metrics["mmd"]), ops=2)
    # A deterministic encoder: another key draws other prior samples, the same reconstruction.
    _, (other, _) = _loss(objective, params, state, batch, key=jax.random.key(99))
    assert_bitwise(other["reconstruction"], metrics["reconstruction"])
    assert float(other["mmd"]) != float(metrics["mmd"])


@pytest.mark.numerics
@pytest.mark.parametrize(
    "objective",
    [
        dip_vae_objective(MODEL, kind="i", lambda_od=2.0),
        dip_vae_objective(MODEL, kind="ii", lambda_od=2.0),
        mmd_objective(MODEL, alpha=0.5, lambda_mmd=3.0),
        mmd_objective(MODEL, kind="wae", kernel="rbf"),
    ],
    ids=lambda o: o.name,
)
@pytest.mark.slow
def test_padding_rows_change_neither_loss_nor_gradient(tiny, objective):
    params, state, batch = tiny
    real = MASK > 0
    unpadded = Batch(batch.x[real], jnp.ones(int(real.sum())))
    # The real rows first, then the padding (the engine's layout): the draws of the real rows
    # are the same for both shapes.
    order = np.argsort(~real, kind="stable")
    padded = Batch(batch.x[order], batch.mask[order])

    def step(batch):
        def loss(p):
            return _loss(objective, p, state, batch, train=True)

        return jax.jit(jax.value_and_grad(loss, has_aux=True))(params)

    (want, (want_metrics, _)), want_grad = step(unpadded)
    (got, (got_metrics, _)), got_grad = step(padded)
    # Two programs for the same sums over the real rows: ops = the network's 20, the draws'
    # 3, the batch statistics' 60, doubled by the backward pass; relative to the largest
    # gradient entry (the entries are sums of both signs).
    assert_close(got, want, ops=100)
    for name, value in want_metrics.items():
        assert_close(got_metrics[name], value, ops=100, scale=abs(float(want)))
    scale = max(float(np.max(np.abs(leaf))) for leaf in jax.tree.leaves(want_grad))
    for a, b in zip(jax.tree.leaves(got_grad), jax.tree.leaves(want_grad), strict=True):
        assert np.all(np.isfinite(a))
        assert_close(a, b, ops=200, scale=scale)


# ------------------------------------------------------------------------------- errors


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match=r"kind must be one of \('i', 'ii'\), got kind='iii'"):
        dip_vae_objective(MODEL, kind="iii")
    with pytest.raises(ValueError, match="lambda_od"):
        dip_vae_objective(MODEL, lambda_od=-1.0)
    with pytest.raises(ValueError, match="lambda_d"):
        dip_vae_objective(MODEL, lambda_d=float("nan"))
    with pytest.raises(TypeError, match="lambda_od"):
        dip_vae_objective(MODEL, lambda_od="10")
    with pytest.raises(ValueError, match=r"kind must be one of \('infovae', 'wae'\)"):
        mmd_objective(MODEL, kind="vae")
    with pytest.raises(ValueError, match=r"kernel must be one of \('rbf', 'imq'\)"):
        mmd_objective(MODEL, kernel="gaussian")
    with pytest.raises(ValueError, match="kernel_bandwidth"):
        mmd_objective(MODEL, kernel_bandwidth=0.0)
    with pytest.raises(ValueError, match=r"alpha must be <= 1 .* got alpha=1.5"):
        mmd_objective(MODEL, alpha=1.5)
    with pytest.raises(ValueError, match=r"alpha \+ lambda_mmd must be >= 1"):
        mmd_objective(MODEL, alpha=0.0, lambda_mmd=0.5)
    with pytest.raises(ValueError, match="lambda_mmd"):
        mmd_objective(MODEL, kind="wae", lambda_mmd=-2.0)
    with pytest.raises(ValueError, match="WAE-MMD has none, got alpha=0.0"):
        mmd_objective(MODEL, kind="wae", alpha=0.0)
    with pytest.raises(ValueError, match="likelihood"):
        mmd_objective(MODEL, likelihood="poisson")
    with pytest.raises(TypeError, match="a VAE with encode and decode methods, got Dense"):
        mmd_objective(nn.Dense(3), kind="wae")
    with pytest.raises(ValueError, match=r"mask must have shape \(2,\)"):
        dip_covariance(np.zeros((2, 3)), np.zeros((2, 3)), np.ones(3), "i")
    with pytest.raises(ValueError, match="logvar must have the shape of mean"):
        dip_covariance(np.zeros((2, 3)), np.zeros((2, 2)), np.ones(2), "ii")
    with pytest.raises(ValueError, match="covariance must be a square matrix"):
        dip_penalties(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"x and y must have one shape"):
        mmd_u_statistic(np.zeros((2, 3)), np.zeros((3, 3)), np.ones(2), "imq", 1.0)
    with pytest.raises(ValueError, match=r"mask must have shape \(2,\)"):
        mmd_u_statistic(np.zeros((2, 3)), np.zeros((2, 3)), np.ones(3), "imq", 1.0)


# ------------------------------------------------------------------------- command line


def _train_argv(tmp_path):
    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(0).normal(size=(60, 6)).astype(np.float32))
    argv = ["train", "--data", str(data), "--model", "vae", "--hidden-dims", "5"]
    return [*argv, "--latent-dim", "2", "--epochs", "2", "--batch-size", "16", "--quiet"]


def _assert_trained(out, names):
    metrics = json.loads((out / "metrics.json").read_text())
    for name in names:
        assert len(metrics["history"][f"train_{name}"]) == 2
        assert len(metrics["history"][f"test_{name}"]) == 2
        assert {f"train_{name}", f"test_{name}"} <= set(metrics["final"])
        assert np.isfinite(metrics["test"][name])
    run = runs.load_run(out)
    assert run.model == VAE(input_dim=6, hidden_dims=(5,), latent_dim=2)
    assert generate.sample_prior(KEY, run.model, run.variables, 3).shape == (3, 6)
    return json.loads((out / "config.json").read_text())["settings"]


@pytest.mark.slow
def test_train_takes_dip_vae_ii_and_records_its_options(tmp_path):
    out = tmp_path / "dip"
    argv = [*_train_argv(tmp_path), "--objective", "dip-vae-ii", "--lambda-od", "2"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    settings = _assert_trained(out, ["loss", "reconstruction", "kl", "dip", "dip_diagonal"])
    assert settings["objective"] == "dip-vae-ii" and settings["lambda_od"] == 2.0
    assert settings["lambda_d"] is None  # the objective's default, lambda_od for DIP-VAE-II
    assert_config_round_trips(out, "train")


@pytest.mark.slow
def test_train_takes_wae_mmd_and_refuses_what_it_does_not_take(tmp_path, capsys):
    out = tmp_path / "wae"
    argv = [*_train_argv(tmp_path), "--objective", "wae-mmd"]
    assert cli.main([*argv, "--kernel", "rbf", "--out", str(out)]) == 0
    settings = _assert_trained(out, ["loss", "reconstruction", "mmd"])
    assert settings["objective"] == "wae-mmd" and settings["kernel"] == "rbf"
    assert settings["lambda_mmd"] == 10.0 and settings["kernel_bandwidth"] == 1.0
    assert "alpha" not in settings
    refused = tmp_path / "refused"
    assert cli.main([*argv, "--alpha", "0.5", "--out", str(refused)]) == cli.EXIT_ERROR
    assert "not of --objective wae-mmd" in capsys.readouterr().err
    assert not refused.exists()
