"""The linear VAE (latent_jax.models.linear) against probabilistic PCA, the learned noise
variance of vae_objective, and the ``latent-jax linear-vae`` experiment."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cli_checks import assert_config_round_trips

from latent_jax import cli, load_run, metrics
from latent_jax import linear as pca
from latent_jax.experiments import linear_vae
from latent_jax.models.linear import LinearVAE, decoder_weight, exact_elbo, linear_vae_variables
from latent_jax.models.mlp import VAE
from latent_jax.objectives import Batch, vae_objective

D, Q = 8, 2


@pytest.fixture(scope="module")
def data():
    x, weight = linear_vae.synthetic_ppca_data(jax.random.key(0), 500, D, [4.0, 2.0], 1.0)
    return x, weight


def test_exact_elbo_is_tight_at_the_ppca_solution(data):
    x, _ = data
    state = pca.fit_ppca(x, Q)
    params = pca.ppca_params(state)
    variables = linear_vae_variables(params.weight, state.mean, params.noise_variance)
    exact = pca.ppca_log_likelihood(state, x)
    np.testing.assert_allclose(exact_elbo(LinearVAE(D, Q), variables, x), exact, atol=2e-4)
    # Any other encoder is strictly worse: the ELBO is below log p(x).
    worse = linear_vae_variables(
        params.weight, state.mean, params.noise_variance, encoder_logvar=jnp.zeros(Q)
    )
    assert float(jnp.mean(exact - exact_elbo(LinearVAE(D, Q), worse, x))) > 0.1


def test_exact_elbo_equals_the_sampled_elbo_and_the_objective(data):
    x, _ = data
    model = LinearVAE(D, Q, init_obs_logvar=0.5)
    objective = vae_objective(model, likelihood="gaussian", obs_logvar="learned")
    variables = objective.init(jax.random.key(1), x[:2])
    closed = exact_elbo(model, variables, x)
    sampled = metrics.elbo(
        model,
        variables,
        x,
        jax.random.key(2),
        num_samples=400,
        likelihood="gaussian",
        obs_logvar="learned",
    )
    # Each example's sampled ELBO errs independently: their mean error is within its noise.
    error = np.asarray(sampled, np.float64) - np.asarray(closed, np.float64)
    assert abs(error.mean()) < 4 * error.std() / math.sqrt(error.size) + 1e-4
    batch = Batch(x=jnp.asarray(x), mask=jnp.ones(len(x)))
    losses = [
        objective.loss(variables["params"], {}, batch, jax.random.key(s), 0, 0, False)[0]
        for s in range(50)
    ]
    assert abs(float(np.mean(losses)) + float(jnp.mean(closed))) < 0.02 * abs(float(closed.mean()))


def test_learned_noise_variance_gets_a_gradient_and_clear_errors():
    model = LinearVAE(4, 2)
    objective = vae_objective(model, likelihood="gaussian", obs_logvar="learned")
    x = jnp.ones((3, 4))
    params = objective.init(jax.random.key(0), x)["params"]
    batch = Batch(x=x, mask=jnp.ones(3))
    grads = jax.grad(lambda p: objective.loss(p, {}, batch, jax.random.key(0), 0, 0)[0])(params)
    assert float(jnp.abs(grads["obs_logvar"])) > 0
    with pytest.raises(ValueError, match='needs likelihood="gaussian"'):
        vae_objective(model, likelihood="bernoulli", obs_logvar="learned")
    with pytest.raises(TypeError, match="observation_logvar"):
        vae_objective(VAE(), likelihood="gaussian", obs_logvar="learned")
    with pytest.raises(TypeError, match='or "learned"'):
        vae_objective(model, likelihood="gaussian", obs_logvar="fixed")
    with pytest.raises(ValueError, match="latent_dim must be <= input_dim"):
        LinearVAE(2, 3)


def test_training_reaches_the_ppca_optimum(data):
    x, _ = data
    model, variables, losses = linear_vae.train_linear_vae(
        x, Q, jax.random.key(3), learning_rate=1e-2, epochs=800, decay_stages=1, decay_epochs=200
    )
    assert len(losses) == 1000 and losses[-1] < losses[0]
    state = pca.fit_ppca(x, Q)
    ppca_ll = float(jnp.mean(pca.ppca_log_likelihood(state, x)))
    elbo = float(jnp.mean(exact_elbo(model, variables, x)))
    assert elbo <= ppca_ll + 1e-3  # the exact maximum log-likelihood bounds every ELBO
    assert (ppca_ll - elbo) / abs(ppca_ll) < 1e-3
    angle = linear_vae.max_principal_angle_degrees(
        decoder_weight(variables), pca.ppca_params(state).weight
    )
    assert angle < 2.0
    noise = float(jnp.exp(variables["params"]["obs_logvar"]))
    assert math.isclose(noise, float(state.noise_variance), rel_tol=0.02)


@pytest.mark.slow
def test_command_writes_the_contracted_metrics(tmp_path, capsys):
    out = tmp_path / "run"
    flags = ["--n-samples", "300", "--input-dim", "6", "--signal-variances", "4,2"]
    flags += ["--digits-latent-dim", "3", "--epochs", "150", "--decay-stages", "1"]
    flags += ["--decay-epochs", "50", "--iwae-k", "1,10", "--elbo-samples", "5", "--quiet"]
    assert cli.main(["linear-vae", *flags, "--out", str(out)]) == 0
    result = json.loads((out / "metrics.json").read_text())
    assert result["train_steps"] == 200 and result["digits"]["train_steps"] == 200
    for section in (result, result["digits"]):
        for key in ("ppca_log_likelihood", "elbo", "iwae", "max_principal_angle_degrees"):
            assert key in section, key
        assert set(section["iwae"]) == {"1", "10"}
        assert section["elbo"] <= section["ppca_log_likelihood"] + 1e-3
        assert section["iwae"]["10"] <= section["ppca_log_likelihood"] + 0.05
    assert result["digits"]["input_dim"] == 64 and result["digits"]["latent_dim"] == 3
    assert (out / "training_curves.png").is_file()
    assert "digits" in capsys.readouterr().out
    # The folder reloads the synthetic data's VAE, its sub-folder the digits' one; each gives
    # the saved exact ELBO again.
    assert_config_round_trips(out, "linear-vae")
    args = cli.parse_args(["linear-vae", "--config", str(out / "config.json")])
    assert args.epochs == 150 and args.signal_variances == [4.0, 2.0]
    for index, (name, folder, saved) in enumerate(
        [("synthetic", out, result), ("digits", out / "digits", result["digits"])]
    ):
        run = load_run(folder)
        x, latent_dim, _, normalizer = linear_vae.dataset(args, index, name)
        assert run.model.latent_dim == latent_dim and run.epoch == 200
        elbo = float(np.mean(np.asarray(exact_elbo(run.model, run.variables, x), np.float64)))
        assert elbo == saved["elbo"]  # the same program on the saved variables and the data
        assert (normalizer is None) == (run.normalizer is None)
        assert len((folder / "history.csv").read_text().splitlines()) == 1 + 200


def test_the_halving_schedule_is_the_old_chain_of_fits_rates_in_one_run():
    schedule = linear_vae.halving_schedule(0.01, 5, 2, 3)
    rates = [float(schedule(t)) for t in range(11)]
    np.testing.assert_allclose(rates, [0.01] * 5 + [0.005] * 3 + [0.0025] * 3, rtol=1e-6)
    assert float(linear_vae.halving_schedule(0.01, 5, 2, 0)(9)) == pytest.approx(0.01)
    config = linear_vae.linear_vae_config(
        40, learning_rate=0.01, epochs=5, decay_stages=2, decay_epochs=3
    )
    assert config.epochs == 11 and config.batch_size == 40 and callable(config.lr_schedule)


def test_bad_flags_get_clear_errors(tmp_path, capsys):
    out = str(tmp_path / "o")
    assert (
        cli.main(["linear-vae", "--signal-variances", "1,1,1", "--input-dim", "3", "--out", out])
        == 2
    )
    assert "--signal-variances" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["linear-vae", "--datasets", "mnist"])
    with pytest.raises(ValueError, match="--epochs"):
        linear_vae.run(cli.parse_command(["linear-vae", "--epochs", "0"]))
