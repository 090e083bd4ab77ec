"""IWAE bound, ELBO estimator, active units and KL per dimension (latent_jax.metrics), and the
``latent-jax evaluate-vae`` command."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numerics import assert_close

from latent_jax import cli, metrics
from latent_jax import linear as pca
from latent_jax.data import images as image_data
from latent_jax.gaussian import kl_standard_normal
from latent_jax.models.linear import LinearVAE, linear_vae_variables
from latent_jax.models.mlp import VAE
from latent_jax.objectives import Batch, vae_objective

D, Q = 8, 3


@pytest.fixture(scope="module")
def ppca_setup():
    """Data from a PPCA model, its closed-form fit, and a LinearVAE with the PPCA decoder and a
    deliberately imperfect encoder (means shrunk, variances too wide)."""
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.normal(size=(D, Q)))
    weight = basis * np.sqrt([4.0, 2.0, 1.0])
    x = rng.normal(size=(400, Q)) @ weight.T + rng.normal(size=D) + 0.7 * rng.normal(size=(400, D))
    x = x.astype(np.float32)
    state = pca.fit_ppca(x, Q)
    params = pca.ppca_params(state)
    exact = linear_vae_variables(params.weight, state.mean, params.noise_variance)
    enc = exact["params"]["encoder"]
    loose = linear_vae_variables(
        params.weight,
        state.mean,
        params.noise_variance,
        encoder_weight=0.9 * enc["kernel"],
        encoder_bias=0.9 * enc["bias"],
        encoder_logvar=exact["params"]["encoder_logvar"] + 1.0,
    )
    return x, state, LinearVAE(D, Q), loose


@pytest.fixture(scope="module")
def digits_vae():
    """An untrained MLP VAE on 200 digit images (Bernoulli likelihood): a loose posterior."""
    x = image_data.load_digits()[0][:200].reshape(200, -1)
    model = VAE(input_dim=64, hidden_dims=(32,), latent_dim=4)
    variables = vae_objective(model, likelihood="bernoulli").init(jax.random.key(0), x[:2])
    return model, variables, x


def test_iwae_is_non_decreasing_in_k_on_average(digits_vae):
    model, variables, x = digits_vae
    ks = (1, 5, 50)
    repeats = [jax.random.key(r) for r in range(2)]
    means, sems = [], []
    for k in ks:
        values = np.stack(
            [
                metrics.iwae_bound(model, variables, x, key, num_samples=k, likelihood="bernoulli")
                for key in repeats
            ]
        ).ravel()
        means.append(values.mean())
        sems.append(values.std() / math.sqrt(values.size))
    for i in range(1, len(ks)):
        # Each step up in k must not lose more than the estimate's noise (it gains here).
        assert means[i] >= means[i - 1] - 3 * (sems[i] + sems[i - 1]), (ks[i], means)
    assert means[-1] - means[0] > 10 * sems[0]  # the posterior is loose: the bound tightens


def test_l1_is_the_elbo_estimator_with_the_same_draw(digits_vae):
    model, variables, x = digits_vae
    key = jax.random.key(3)
    bound = metrics.iwae_bound(model, variables, x, key, num_samples=1, likelihood="bernoulli")
    # By hand: sample 0 uses fold_in(key, 0); log p(x|z) + log p(z) - log q(z|x).
    mean, logvar = model.apply(variables, x, method="encode")
    eps = jax.random.normal(jax.random.fold_in(key, 0), mean.shape)
    z = mean + jnp.exp(0.5 * logvar) * eps
    logits = model.apply(variables, z, method="decode")
    log_px = jnp.sum(x * jax.nn.log_sigmoid(logits) + (1 - x) * jax.nn.log_sigmoid(-logits), -1)
    log_pz = jax.scipy.stats.norm.logpdf(z).sum(-1)
    log_qz = jax.scipy.stats.norm.logpdf(z, mean, jnp.exp(0.5 * logvar)).sum(-1)
    # The compiled bound against these eager ops: ops = the fan-ins 64 + 32 + 4 + 32, the
    # likelihood's few and its sum over 64 pixels, the densities' over 4 dimensions: 210.
    assert_close(bound, log_px + log_pz - log_qz, ops=210)


def test_l1_averages_to_the_objectives_elbo(digits_vae):
    model, variables, x = digits_vae
    objective = vae_objective(model, likelihood="bernoulli")
    batch = Batch(x=jnp.asarray(x), mask=jnp.ones(len(x)))
    losses = [
        float(objective.loss(variables["params"], {}, batch, jax.random.key(s), 0, 0, False)[0])
        for s in range(20)
    ]
    l1 = np.concatenate(
        [
            metrics.iwae_bound(
                model, variables, x, jax.random.key(100 + s), num_samples=1, likelihood="bernoulli"
            )
            for s in range(20)
        ]
    )
    closed_kl = metrics.elbo(
        model, variables, x, jax.random.key(7), num_samples=20, likelihood="bernoulli"
    )
    sem = l1.std() / math.sqrt(l1.size)
    assert abs(l1.mean() - (-np.mean(losses))) < 4 * sem
    assert abs(float(jnp.mean(closed_kl)) - (-np.mean(losses))) < 4 * sem


def test_large_k_iwae_recovers_the_exact_ppca_log_likelihood(ppca_setup):
    x, state, model, loose = ppca_setup
    exact = np.asarray(pca.ppca_log_likelihood(state, x), np.float64)
    options = {"likelihood": "gaussian", "obs_logvar": "learned"}
    bound = metrics.iwae_bound(model, loose, x, jax.random.key(0), num_samples=2000, **options)
    elbo = metrics.elbo(model, loose, x, jax.random.key(1), num_samples=50, **options)
    gap = exact - np.asarray(bound, np.float64)
    sem = gap.std() / math.sqrt(gap.size)
    assert abs(gap.mean()) < 4 * sem + 1e-3, (gap.mean(), sem)
    # The loose encoder makes the ELBO clearly worse: the agreement is not a given.
    assert float(np.mean(exact - np.asarray(elbo))) > 0.3
    assert float(np.mean(exact - np.asarray(elbo))) > 50 * sem


def test_chunked_iwae_equals_unchunked(ppca_setup):
    x, _, model, loose = ppca_setup
    options = {"likelihood": "gaussian", "obs_logvar": "learned", "num_samples": 50}
    key = jax.random.key(5)
    whole = metrics.iwae_bound(model, loose, x, key, chunk_size=50, **options)
    for chunk in (7,):
        chunked = metrics.iwae_bound(model, loose, x, key, chunk_size=chunk, **options)
        # Other programs for other chunks: ops = the fan-ins 8 + 3, the densities' sums over
        # 8 features and 3 dimensions, and the log-sum-exp over 50 samples: about 90.
        assert_close(chunked, whole, ops=90)


def test_active_units_count_planted_dead_dimensions(ppca_setup):
    x, state, model, _ = ppca_setup
    params = pca.ppca_params(state)
    exact = linear_vae_variables(params.weight, state.mean, params.noise_variance)
    kernel = exact["params"]["encoder"]["kernel"]
    dead = np.array([False, True, False])
    # A dead unit: its posterior mean ignores x (zero weights, zero bias) and its posterior is
    # the prior (logvar 0).
    kernel = jnp.where(dead[None, :], 0.0, kernel)
    bias = jnp.where(dead, 0.0, exact["params"]["encoder"]["bias"])
    logvar = jnp.where(dead, 0.0, exact["params"]["encoder_logvar"])
    planted = linear_vae_variables(
        params.weight, state.mean, params.noise_variance, kernel, bias, logvar
    )
    count, activity = metrics.active_units(model, planted, x)
    assert count == Q - 1
    assert activity[1] == 0.0 and np.all(activity[~dead] > 0.01)
    kl = metrics.kl_per_dimension(model, planted, x, batch_size=64)
    assert kl.shape == (Q,) and abs(kl[1]) < 1e-7 and np.all(kl[~dead] > 0.1)
    mean, lv = model.apply(planted, x, method="encode")
    # Means over 400 rows in blocks of 64 and at once: ops = the fan-in 8, the KL's few, the
    # mean over 400 and the sum over 3 dimensions.
    assert_close(kl.sum(), float(jnp.mean(kl_standard_normal(mean, lv))), ops=415)
    assert metrics.active_units(model, exact, x)[0] == Q


def test_evaluate_vae_reports_consistent_numbers(ppca_setup):
    x, _, model, loose = ppca_setup
    result = metrics.evaluate_vae(
        model,
        loose,
        x[:100],
        jax.random.key(0),
        num_samples=64,
        likelihood="gaussian",
        obs_logvar="learned",
        batch_size=33,
        chunk_size=10,
    )
    assert result["nll_nats"] == -result["iwae"]
    assert math.isclose(result["nll_bits_per_dim"], result["nll_nats"] / (D * math.log(2)))
    assert result["iwae"] > result["elbo"]
    assert result["n_examples"] == 100 and len(result["kl_per_dim"]) == Q


def test_bad_arguments_get_clear_errors(ppca_setup):
    x, _, model, loose = ppca_setup
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="likelihood must be one of"):
        metrics.iwae_bound(model, loose, x, key, num_samples=2, likelihood="poisson")
    with pytest.raises(ValueError, match="num_samples must be >= 1"):
        metrics.iwae_bound(model, loose, x, key, num_samples=0)
    with pytest.raises(TypeError, match="key must be"):
        metrics.iwae_bound(model, loose, x, 0, num_samples=2)
    with pytest.raises(ValueError, match='needs likelihood="gaussian"'):
        metrics.elbo(model, loose, x, key, likelihood="bernoulli", obs_logvar="learned")
    with pytest.raises(ValueError, match="NaN"):
        metrics.iwae_bound(model, loose, np.full((2, D), np.nan), key, num_samples=2)


@pytest.mark.slow  # trains and compiles a convolutional VAE: about a minute on 2 busy cores
def test_evaluate_command_scores_a_vae_run_and_merges_metrics(tmp_path, capsys):
    images = image_data.load_digits()[0][:60]
    data = tmp_path / "digits.npy"
    np.save(data, images)
    run_dir = tmp_path / "run"
    flags = ["--data", str(data), "--epochs", "1", "--batch-size", "16", "--hidden-dim", "8"]
    flags += ["--latent-dim", "3", "--likelihood", "gaussian", "--fast-compile", "--quiet"]
    assert cli.main(["vae", *flags, "--out", str(run_dir)]) == 0
    before = json.loads((run_dir / "metrics.json").read_text())
    capsys.readouterr()
    code = cli.main(
        ["evaluate-vae", str(run_dir), "--k", "8", "--chunk-size", "3", "--elbo-samples", "2"]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "IWAE (k=8)" in printed and "active units" in printed
    after = json.loads((run_dir / "metrics.json").read_text())
    evaluation = after.pop("evaluation")
    assert after == before  # merged: the run's own numbers are kept
    assert evaluation["n_examples"] == 12 and evaluation["latent_dim"] == 3
    assert evaluation["iwae"] >= evaluation["elbo"] - 3 * evaluation["elbo_sem"]


def test_evaluate_command_names_what_is_missing(tmp_path, capsys):
    assert cli.main(["evaluate-vae", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "run").mkdir()
    assert cli.main(["evaluate-vae", str(tmp_path / "run")]) == 2
    assert "config.json does not exist" in capsys.readouterr().err
    (tmp_path / "run" / "config.json").write_text(json.dumps({"image_shape": [8, 8, 1]}))
    assert cli.main(["evaluate-vae", str(tmp_path / "run")]) == 2
    assert "not a run of latent-jax vae or latent-jax train" in capsys.readouterr().err


def test_psnr_matches_scikit_image():
    from skimage.metrics import peak_signal_noise_ratio

    rng = np.random.default_rng(0)
    clean = rng.uniform(size=(16, 16))
    noisy = np.clip(clean + 0.1 * rng.normal(size=clean.shape), 0.0, 1.0)
    mse = float(np.mean((clean - noisy) ** 2))
    expected = peak_signal_noise_ratio(clean, noisy, data_range=1.0)
    assert metrics.psnr(mse) == pytest.approx(expected, rel=1e-12)
    assert metrics.psnr(0.04, peak=2.0) == pytest.approx(20.0)
    assert metrics.psnr(0.0) == float("inf")
    with pytest.raises(ValueError, match="mse must be a finite number >= 0"):
        metrics.psnr(-1.0)
    with pytest.raises(ValueError, match="peak must be a finite number > 0"):
        metrics.psnr(0.1, peak=0.0)
