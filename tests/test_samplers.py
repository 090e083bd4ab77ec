"""Ex-post latent samplers (latent_jax.samplers): the Gaussian mixture against NumPy's moments,
Monte Carlo moments and cluster proportions of its draws, the two-stage VAE's training and
draws, persistence, sample_prior and the generation score with a sampler, errors, and
``latent-jax vae --sampler``."""

import dataclasses
import json

import jax
import numpy as np
import pytest
from numerics import NORMAL_OPS, assert_bitwise, assert_close

import latent_jax
from latent_jax import cli, generate, load_run
from latent_jax.data import Dataset
from latent_jax.experiments import vae_faces
from latent_jax.models.mlp import VAE
from latent_jax.samplers import (
    SAMPLER_FILE,
    GaussianMixtureSampler,
    TwoStageSampler,
    load_sampler,
    sampler_from_dict,
    save_sampler,
)

N_DRAWS = 20_000
# A Monte Carlo estimate is checked to within Z standard errors: for a fixed key the test is
# deterministic, and a correct sampler lands outside 5 standard errors with probability
# ~6e-7 per checked number (two-sided normal tail), so a failure means a wrong distribution.
Z = 5.0


@pytest.fixture(scope="module")
def correlated_codes():
    """1,000 codes of a correlated 3-D Gaussian, off the origin."""
    rng = np.random.default_rng(0)
    mixing = np.array([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [-0.3, 0.5, 0.4]])
    return rng.normal(size=(1000, 3)) @ mixing.T * 2.0 + np.array([1.0, -2.0, 0.5])


@pytest.fixture(scope="module")
def two_clusters():
    """256 2-D codes in two clusters at x = -1.5 and 1.5 (std 0.5): codes of about a VAE's
    scale that a single Gaussian does not describe."""
    rng = np.random.default_rng(1)
    side = rng.integers(0, 2, 256)
    centers = np.stack([np.where(side, 1.5, -1.5), np.zeros(256)], axis=1)
    return (centers + 0.5 * rng.normal(size=(256, 2))).astype(np.float32)


@pytest.fixture(scope="module")
def two_stage(two_clusters):
    return TwoStageSampler.fit(
        two_clusters, hidden_dims=(32, 32), epochs=40, batch_size=32, learning_rate=1e-3
    )


def test_one_component_mixture_is_the_gaussian_fit_of_the_codes(correlated_codes):
    sampler = GaussianMixtureSampler.fit(correlated_codes, n_components=1, seed=0)
    assert sampler.latent_dim == 3 and sampler.n_components == 1
    assert sampler.weights.tolist() == [1.0]
    # One component takes every code with responsibility 1: the M-step is the sample mean and
    # the maximum-likelihood (ddof 0) covariance, plus scikit-learn's reg_covar on the diagonal.
    # float64 sums of 1,000 terms: ops 1,000 (and scikit-learn's 10 eps in the counts).
    mean = correlated_codes.mean(axis=0)
    covariance = np.cov(correlated_codes, rowvar=False, bias=True) + 1e-6 * np.eye(3)
    assert_close(sampler.means[0], mean, ops=1000, dtype=np.float64)
    assert_close(sampler.covariances[0], covariance, ops=1000, dtype=np.float64)
    assert_close(sampler.cholesky[0] @ sampler.cholesky[0].T, covariance, ops=100, dtype=np.float64)

    draws = np.asarray(sampler.sample(jax.random.key(0), N_DRAWS), np.float64)
    assert draws.shape == (N_DRAWS, 3)
    # The sample mean's standard error is sqrt(Sigma_jj / n); a sample covariance's
    # (Sigma_jj Sigma_kk + Sigma_jk^2) / n for Gaussian draws. float32 round-off (~1e-7
    # relative) is far below either.
    mean_error = np.sqrt(np.diag(covariance) / N_DRAWS)
    assert np.all(np.abs(draws.mean(axis=0) - mean) <= Z * mean_error)
    variances = np.diag(covariance)
    covariance_error = np.sqrt((np.outer(variances, variances) + covariance**2) / N_DRAWS)
    drawn_covariance = np.cov(draws, rowvar=False)
    assert np.all(np.abs(drawn_covariance - covariance) <= Z * covariance_error)


def test_draws_land_on_well_separated_clusters_in_their_proportions():
    rng = np.random.default_rng(2)
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    counts = np.array([500, 300, 200])
    codes = np.concatenate(
        [c + 0.1 * rng.normal(size=(k, 2)) for c, k in zip(centers, counts, strict=True)]
    )
    sampler = GaussianMixtureSampler.fit(codes, n_components=3, seed=0)
    assert sampler.info["converged"]
    # The fit recovers the clusters (their codes' fractions exactly, up to EM's tolerance).
    order = [int(np.argmin(np.linalg.norm(sampler.means - c, axis=1))) for c in centers]
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(sampler.weights[order], counts / counts.sum(), atol=1e-6)
    np.testing.assert_allclose(sampler.means[order], centers, atol=0.05)

    draws = np.asarray(sampler.sample(jax.random.key(1), N_DRAWS))
    distances = np.linalg.norm(draws[:, None, :] - centers[None], axis=2)
    # A 2-D Gaussian of std 0.1 puts mass exp(-50) beyond 1.0 from its center.
    assert np.all(distances.min(axis=1) < 1.0)
    fractions = np.bincount(distances.argmin(axis=1), minlength=3) / N_DRAWS
    proportions = counts / counts.sum()
    # Binomial standard error of each fraction: sqrt(p (1 - p) / n).
    assert np.all(
        np.abs(fractions - proportions) <= Z * np.sqrt(proportions * (1 - proportions) / N_DRAWS)
    )


@pytest.mark.parametrize("covariance_type", ["tied", "diag", "spherical"])
def test_every_covariance_type_is_kept_as_full_matrices(correlated_codes, covariance_type):
    sampler = GaussianMixtureSampler.fit(
        correlated_codes, n_components=2, covariance_type=covariance_type, seed=0
    )
    assert sampler.covariances.shape == (2, 3, 3)
    off_diagonal = sampler.covariances * (1 - np.eye(3))
    if covariance_type == "tied":
        assert_bitwise(sampler.covariances[0], sampler.covariances[1])
    else:
        assert np.all(off_diagonal == 0)
    if covariance_type == "spherical":
        diagonals = np.diagonal(sampler.covariances, axis1=1, axis2=2)
        assert np.all(diagonals == diagonals[:, :1])
    assert np.all(np.isfinite(sampler.sample(jax.random.key(0), 5)))


def test_mixture_round_trips_through_json_to_the_same_draws(correlated_codes, tmp_path):
    sampler = GaussianMixtureSampler.fit(correlated_codes, n_components=4, seed=3)
    data = json.loads(json.dumps(sampler.to_dict()))
    assert data["sampler"] == "gmm" and data["latent_dim"] == 3
    assert data["options"] == {
        "n_components": 4,
        "covariance_type": "full",
        "reg_covar": 1e-6,
        "seed": 3,
    }
    again = GaussianMixtureSampler.from_dict(data)
    for name in ("weights", "means", "covariances", "cholesky"):
        assert_bitwise(getattr(again, name), getattr(sampler, name))
    key = jax.random.key(5)
    assert_bitwise(again.sample(key, 50), sampler.sample(key, 50))
    path = save_sampler(tmp_path / SAMPLER_FILE, sampler)
    loaded = load_sampler(path)
    assert isinstance(loaded, GaussianMixtureSampler)
    assert_bitwise(loaded.sample(key, 50), sampler.sample(key, 50))
    assert not np.array_equal(sampler.sample(jax.random.key(6), 50), sampler.sample(key, 50))
    with pytest.raises(ValueError, match="read-only"):
        sampler.means[0, 0] = 1.0  # the fitted sampler is frozen, its arrays too
    with pytest.raises(dataclasses.FrozenInstanceError):
        sampler.weights = None


@pytest.mark.numerics
def test_mixture_draws_are_pure_jax_under_jit(correlated_codes):
    sampler = GaussianMixtureSampler.fit(correlated_codes, n_components=2, seed=0)
    key = jax.random.key(9)
    jitted = jax.jit(sampler.sample, static_argnums=1)
    # The same draw compiled inside another program: the normal draw (NORMAL_OPS) and a
    # 3-term product with the Cholesky factor.
    assert_close(jitted(key, 8), sampler.sample(key, 8), ops=NORMAL_OPS + 6)


@pytest.mark.slow
def test_two_stage_sampler_trains_and_draws_codes_of_their_scale(two_stage, two_clusters):
    losses = np.asarray(two_stage.info["train_loss"])
    assert losses.shape == (40,) and np.all(np.isfinite(losses))
    # The second stage's negative ELBO per code falls well below where it starts.
    assert losses[-5:].mean() < losses[:5].mean() - 0.3
    assert two_stage.latent_dim == 2 and two_stage.model.latent_dim == 2
    assert two_stage.options["hidden_dims"] == [32, 32]
    draws = np.asarray(two_stage.sample(jax.random.key(0), 4000))
    assert draws.shape == (4000, 2) and draws.dtype == np.float32
    # "Roughly their scale": a short training on 256 codes, so loose bounds (a mean within a
    # quarter of the codes' spread, each coordinate's spread within a factor of 2).
    spread = two_clusters.std(axis=0)
    assert np.all(np.abs(draws.mean(axis=0) - two_clusters.mean(axis=0)) < 0.25 * spread.max())
    ratio = draws.std(axis=0) / spread
    assert np.all((ratio > 0.5) & (ratio < 2.0)), ratio


@pytest.mark.numerics
def test_a_two_stage_draw_is_the_second_decoder_at_a_prior_draw(two_stage):
    key = jax.random.key(4)
    prior_key, noise_key = jax.random.split(key)
    model, variables = two_stage.model, two_stage.variables
    u = jax.random.normal(prior_key, (6, 2))
    mean = model.apply(variables, u, method="decode")
    std = np.exp(0.5 * float(model.apply(variables, method="observation_logvar")))
    # ops: the normal draw in another program, the decoder's fan-ins (2 + 32 + 32) and their
    # activations, then exp, a product and a sum.
    ops = NORMAL_OPS + 66 + 10
    expected = mean + std * jax.random.normal(noise_key, (6, 2))
    assert_close(two_stage.sample(key, 6), expected, ops=ops)
    means_only = dataclasses.replace(two_stage, decoder_noise=False)
    assert_close(means_only.sample(key, 6), mean, ops=ops)


def test_two_stage_round_trips_through_json_to_the_same_draws(two_stage, tmp_path):
    path = save_sampler(tmp_path / SAMPLER_FILE, two_stage)
    loaded = load_sampler(path)
    assert isinstance(loaded, TwoStageSampler)
    assert loaded.model == two_stage.model and loaded.decoder_noise
    assert loaded.info == two_stage.info
    key = jax.random.key(2)
    assert_bitwise(loaded.sample(key, 30), two_stage.sample(key, 30))
    data = json.loads(json.dumps(two_stage.to_dict()))
    assert data["sampler"] == "two-stage" and data["model"]["class"] == "LearnedNoiseVAE"
    assert_bitwise(sampler_from_dict(data).sample(key, 30), two_stage.sample(key, 30))
    data["variables"]["params"]["obs_logvar"]["shape"] = [1]
    with pytest.raises(ValueError, match=r"variables/params/obs_logvar must have shape \(\)"):
        TwoStageSampler.from_dict(data)
    del data["variables"]["params"]["obs_logvar"]
    with pytest.raises(ValueError, match="two-stage sampler data variables/params: expected"):
        TwoStageSampler.from_dict(data)


@pytest.fixture(scope="module")
def tiny_vae():
    """The library's tiny MLP VAE (6 features, latent 2) and its codes of 60 random rows."""
    model = VAE(input_dim=6, hidden_dims=(5,), latent_dim=2)
    x = np.random.default_rng(3).uniform(size=(60, 6)).astype(np.float32)
    variables = model.init(jax.random.key(0), x[:2], jax.random.key(1))
    return model, variables, x, generate.encode_mean(model, variables, x)


def test_sample_prior_decodes_the_samplers_draws(tiny_vae):
    model, variables, _, codes = tiny_vae
    sampler = GaussianMixtureSampler.fit(codes, n_components=3, seed=0)
    key = jax.random.key(11)
    images = generate.sample_prior(key, model, variables, 7, sampler=sampler)
    assert images.shape == (7, 6)
    # The same two programs (the sampler's draw, then the decoder) on the same inputs.
    assert_bitwise(images, generate.decode(model, variables, sampler.sample(key, 7)))
    prior = generate.sample_prior(key, model, variables, 7)
    assert not np.allclose(images, prior)
    assert_bitwise(generate.sample_prior(key, model, variables, 7, 2, sampler=sampler), images)


def test_generation_metrics_scores_the_samplers_draws(tiny_vae, monkeypatch):
    model, variables, x, codes = tiny_vae
    sampler = GaussianMixtureSampler.fit(codes, n_components=2, seed=0)
    labels = (x[:, 0] > 0.5).astype(int)
    dataset = Dataset(x[:40], x[40:], labels[:40], labels[40:], None, "toy")
    seen = []
    original = generate.sample_prior

    def spy(*args, **kwargs):
        seen.append(kwargs.get("sampler"))
        return original(*args, **kwargs)

    monkeypatch.setattr(generate, "sample_prior", spy)
    score = generate.generation_metrics(
        model, variables, dataset, seed=0, likelihood="bernoulli", n_generated=20, sampler=sampler
    )
    assert seen == [sampler] and score["n_generated"] == 20


def test_errors_name_the_argument(tiny_vae, correlated_codes, two_stage):
    model, variables, _, codes = tiny_vae
    key = jax.random.key(0)
    three_d = GaussianMixtureSampler.fit(correlated_codes, n_components=1, seed=0)
    message = r"the sampler draws codes of latent_dim 3 but VAE decodes latent_dim 2"
    with pytest.raises(ValueError, match=message):
        generate.sample_prior(key, model, variables, 4, sampler=three_d)
    with pytest.raises(ValueError, match="latent_dim 3 but VAE decodes latent_dim 5"):
        generate.sample_prior(key, model, variables, 4, 5, sampler=three_d)
    with pytest.raises(TypeError, match=r"sampler must have latent_dim and sample\(key, n\)"):
        generate.sample_prior(key, model, variables, 4, sampler=object())
    with pytest.raises(ValueError, match="n must be >= 1, got n=0"):
        three_d.sample(key, 0)
    with pytest.raises(ValueError, match="n must be >= 1, got n=0"):
        two_stage.sample(key, 0)
    with pytest.raises(TypeError, match="key must be a jax.random.key"):
        three_d.sample(3, 4)
    fits = {
        "n_components must be >= 1, got n_components=0": {"n_components": 0},
        r"covariance_type must be one of \('full', 'tied', 'diag', 'spherical'\)": {
            "covariance_type": "banana"
        },
        "reg_covar must be >= 0": {"reg_covar": -1.0},
        "codes must have at least 61 rows to fit, got 60": {"n_components": 61},
    }
    for message, options in fits.items():
        with pytest.raises(ValueError, match=message):
            GaussianMixtureSampler.fit(codes, **options)
    with pytest.raises(ValueError, match=r"codes must have shape \(n_codes, latent_dim\)"):
        GaussianMixtureSampler.fit(np.zeros(10))
    with pytest.raises(ValueError, match="codes contains 1 NaN"):
        GaussianMixtureSampler.fit(np.where(np.arange(20).reshape(10, 2) == 3, np.nan, 1.0))
    with pytest.raises(ValueError, match="epochs must be >= 1, got epochs=0"):
        TwoStageSampler.fit(codes, epochs=0)
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        TwoStageSampler.fit(codes, learning_rate=-1.0)
    with pytest.raises(ValueError, match="codes must have at least 2 rows"):
        TwoStageSampler.fit(codes[:1])
    data = three_d.to_dict()
    with pytest.raises(ValueError, match="these data describe a 'gmm' sampler, not 'two-stage'"):
        TwoStageSampler.from_dict(data)
    with pytest.raises(ValueError, match=r"'covariances' must have shape \(1, 3, 3\)"):
        GaussianMixtureSampler.from_dict({**data, "covariances": [[1.0]]})
    with pytest.raises(ValueError, match="symmetric positive definite"):
        GaussianMixtureSampler.from_dict({**data, "covariances": [(-np.eye(3)).tolist()]})
    with pytest.raises(ValueError, match=r"sampler must be one of \('gmm', 'two-stage'\)"):
        sampler_from_dict({**data, "sampler": "flow"})


def test_the_samplers_are_top_level_names():
    assert latent_jax.GaussianMixtureSampler is GaussianMixtureSampler
    assert latent_jax.TwoStageSampler is TwoStageSampler


@pytest.mark.slow
def test_vae_command_fits_saves_and_records_its_sampler(tmp_path, capsys):
    defaults = cli.parse_command(["vae"])
    assert (defaults.sampler, defaults.sampler_components) == ("gaussian", 10)
    out = tmp_path / "run"
    flags = ["--preset", "cpu-demo", "--epochs", "1", "--sampler", "gmm", "--out", str(out)]
    assert cli.main(["vae", *flags, "--sampler-components", "3", "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    record = metrics["sampler"]
    assert record["name"] == "gmm" and record["file"] == SAMPLER_FILE
    assert record["options"]["n_components"] == 3 and record["fit_seconds"] > 0
    config = json.loads((out / "config.json").read_text())
    assert config["settings"]["sampler"] == "gmm"
    assert config["settings"]["sampler_components"] == 3
    sampler = load_sampler(out / SAMPLER_FILE)
    assert isinstance(sampler, GaussianMixtureSampler) and sampler.n_components == 3
    assert sampler.info["n_codes"] == metrics["n_train"]
    # The folder's model and its sampler generate together.
    run = load_run(out)
    images = generate.sample_prior(jax.random.key(0), run.model, run.variables, 3, sampler=sampler)
    assert images.shape == (3, *metrics["image_shape"])
    capsys.readouterr()
    bad = ["--preset", "cpu-demo", "--sampler-components", "0", "--out", str(tmp_path / "bad")]
    assert cli.main(["vae", *bad]) == 2
    assert "--sampler-components must be >= 1, got 0" in capsys.readouterr().err
    too_many = ["--preset", "cpu-demo", "--sampler", "gmm", "--sampler-components", "500"]
    assert cli.main(["vae", *too_many, "--out", str(tmp_path / "bad")]) == 2
    assert "--sampler-components 500 needs as many training images" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    assert vae_faces.SAMPLER_CHOICES == ("gaussian", "gmm", "two-stage")
