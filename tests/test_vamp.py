"""The VampPrior (Tomczak & Welling 2018): its log-density and the objective's loss against
float64 NumPy written from the paper, the standard normal as the special case whose components
are all N(0, I), draws from the mixture, the model as a nested spec, masking, errors, and a run
trained, recorded, reloaded and sampled."""

from __future__ import annotations

import dataclasses
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numerics import NORMAL_OPS, assert_bitwise, assert_close, assert_trees_bitwise

from latent_jax import cli, generate, runs
from latent_jax.models.conv import ConvSpec, ConvVAE
from latent_jax.models.mlp import VAE
from latent_jax.models.spec import build_module, module_spec
from latent_jax.models.vampprior import VampPrior
from latent_jax.objectives import Batch, build_objective, split_variables, vamp_objective
from latent_jax.objectives.vamp import warmup_beta

KEY = jax.random.key(0)
SMALL_VAE = VAE(input_dim=6, hidden_dims=(5,), latent_dim=2)
LOG_2PI = math.log(2.0 * math.pi)
# One-off programs compile fastest unoptimized.
FAST = {"xla_backend_optimization_level": 0}


def _batch(n: int = 8, padding: int = 0, seed: int = 0) -> Batch:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n + padding, 6)).astype(np.float32)
    x[n:] = 1e3  # padding rows: real values, far from the data, which must not count
    mask = np.r_[np.ones(n), np.zeros(padding)].astype(np.float32)
    return Batch(jnp.asarray(x), jnp.asarray(mask))


def _spread_pseudo_inputs(variables, scale: float = 2.0, seed: int = 1):
    """The variables with pseudo-inputs drawn N(0, scale^2): components far apart."""
    params, state = split_variables(variables)
    shape = params["pseudo_inputs"].shape
    u = np.random.default_rng(seed).normal(scale=scale, size=shape).astype(np.float32)
    return {"params": {**params, "pseudo_inputs": jnp.asarray(u)}, **state}


def _np_log_normal(z, mean, logvar):
    """log N(z; mean, diag exp(logvar)) in float64, summed over the last axis."""
    z, mean, logvar = (np.asarray(a, np.float64) for a in (z, mean, logvar))
    return -0.5 * np.sum(LOG_2PI + logvar + (z - mean) ** 2 / np.exp(logvar), axis=-1)


def _np_vamp_log_prior(z, means, logvars):
    """The paper's prior, log (1/K) sum_k q(z | u_k), for the components' (K, d) means and
    log-variances: a log-sum-exp over k in float64."""
    z = np.asarray(z, np.float64)[..., None, :]
    log_components = _np_log_normal(z, means, logvars)  # (..., K)
    top = np.max(log_components, axis=-1, keepdims=True)
    summed = top[..., 0] + np.log(np.sum(np.exp(log_components - top), axis=-1))
    return summed - np.log(means.shape[0])


def _components(model, variables):
    """The encoder at the pseudo-inputs, through the public encode: q(z | u_k)'s parameters."""
    u = variables["params"]["pseudo_inputs"]
    if model.pseudo_input_range is not None:
        u = jnp.clip(u, *model.pseudo_input_range)
    mean, logvar = model.apply(variables, u, method="encode")
    return np.asarray(mean, np.float64), np.asarray(logvar, np.float64)


def _loss(objective, variables, batch, key=KEY, epoch=0, train=True):
    params, state = split_variables(variables)
    count = jnp.int32(epoch)
    return objective.loss(params, state, batch, key, count, count, train)


# ------------------------------------------------------------------------------ the prior


@pytest.mark.numerics
def test_the_log_prior_is_the_mixture_of_the_pseudo_inputs_posteriors():
    model = VampPrior(vae=SMALL_VAE, n_pseudo_inputs=7)
    variables = _spread_pseudo_inputs(model.init(KEY, _batch().x, KEY))
    means, logvars = _components(model, variables)
    assert means.shape == (7, 2) and np.ptp(means, axis=0).min() > 0.1  # distinct components
    z = np.random.default_rng(3).normal(scale=2.0, size=(4, 5, 2)).astype(np.float32)
    got = model.apply(variables, jnp.asarray(z), method="log_prior")
    assert got.shape == (4, 5)  # leading axes kept
    # Per component: the Gaussian's 2 dimensions, about 5 operations each (exp included);
    # the log-sum-exp over 7 components: a max, 7 exps and a sum of 7, a log and log K.
    assert_close(got, _np_vamp_log_prior(z, means, logvars), ops=40)
    # The components are the encoder's posteriors at the pseudo-inputs.
    mean, logvar = model.apply(variables, method="components")
    assert_close(mean, means, ops=30)  # the same encoder in another program: fan-ins 6 + 5
    assert_close(logvar, logvars, ops=30)


def test_pseudo_inputs_start_at_the_authors_initialization_and_take_the_datas_shape():
    model = VampPrior(vae=SMALL_VAE)
    variables = model.init(KEY, _batch().x, KEY)
    u = np.asarray(variables["params"]["pseudo_inputs"])
    assert u.shape == (500, 6) and set(variables["params"]) == {"vae", "pseudo_inputs"}
    # N(0.05, 0.01^2), 3,000 values: the sample mean's standard error is 1.8e-4, the sample
    # standard deviation's 1.3e-4; five of each.
    assert abs(u.mean() - 0.05) < 1e-3 and abs(u.std() - 0.01) < 7e-4
    # Clipped to the authors' [0, 1] where asked.
    clipped = VampPrior(vae=SMALL_VAE, n_pseudo_inputs=9, pseudo_input_std=1.0)
    clipped = clipped.clone(pseudo_input_range=(0.0, 1.0))
    variables = clipped.init(KEY, _batch().x, KEY)
    raw = np.asarray(variables["params"]["pseudo_inputs"])
    assert raw.min() < 0.0 < 1.0 < raw.max()
    assert_bitwise(clipped.apply(variables, method="pseudo_inputs"), np.clip(raw, 0.0, 1.0))


@pytest.mark.slow
def test_sample_latents_draws_from_the_mixture_and_sample_prior_decodes_them():
    model = VampPrior(vae=SMALL_VAE, n_pseudo_inputs=3)
    variables = _spread_pseudo_inputs(model.init(KEY, _batch().x, KEY), scale=3.0)
    means, logvars = _components(model, variables)
    n = 20_000
    z = np.asarray(model.apply(variables, KEY, n, method="sample_latents"), np.float64)
    assert z.shape == (n, 2)
    # The mixture's moments: the mean of the means, and E[z z^T] - m m^T with
    # E[z z^T] = mean_k (diag sigma_k^2 + mu_k mu_k^T).
    mean = means.mean(axis=0)
    second = np.mean(
        [np.diag(np.exp(lv)) + np.outer(mu, mu) for mu, lv in zip(means, logvars, strict=True)],
        axis=0,
    )
    cov = second - np.outer(mean, mean)
    # Monte Carlo tolerance: five standard errors of each estimate, from the draws themselves.
    centred = z - z.mean(axis=0)
    products = centred[:, :, None] * centred[:, None, :]
    assert np.all(np.abs(z.mean(axis=0) - mean) < 5 * z.std(axis=0) / math.sqrt(n))
    se_cov = products.std(axis=0) / math.sqrt(n)
    assert np.all(np.abs(np.cov(z.T) - cov) < 5 * se_cov)
    # generate.sample_prior decodes the model's own draws, not N(0, I)'s.
    samples = generate.sample_prior(KEY, model, variables, 5)
    latents = model.apply(variables, KEY, 5, method="sample_latents")
    assert_bitwise(samples, generate.decode(model, variables, latents))


# -------------------------------------------------------------------------- the objective


@pytest.mark.numerics
@pytest.mark.parametrize(("padding", "epoch", "warmup"), [(0, 0, 0), (3, 1, 4), (2, 6, 4)])
def test_the_loss_is_reconstruction_plus_beta_times_the_monte_carlo_kl(padding, epoch, warmup):
    """rec + beta [log q(z|x) - log p(z)] at the decoded draw, against float64 NumPy."""
    objective = vamp_objective(SMALL_VAE, n_pseudo_inputs=5, warmup=warmup)
    batch = _batch(8, padding)
    variables = _spread_pseudo_inputs(objective.init(KEY, batch.x))
    key = jax.random.key(5)
    value, (metrics, _) = _loss(objective, variables, batch, key, epoch)
    # The draw the VAE decodes: z = mean + exp(logvar / 2) eps, eps from the sample key.
    sample_key, _ = jax.random.split(key)
    model = objective.model
    mean, logvar = model.apply(variables, batch.x, method="encode")
    eps = np.asarray(jax.random.normal(sample_key, mean.shape), np.float64)
    # The real rows only: the padding's codes are far out, its densities overflow.
    real = np.asarray(batch.mask) > 0
    eps, mean, logvar = eps[real], np.asarray(mean, np.float64)[real], np.asarray(logvar)[real]
    z = mean + np.exp(0.5 * logvar) * eps
    output = np.asarray(model.apply(variables, jnp.asarray(z, jnp.float32), method="decode"))
    rec = np.sum((output - np.asarray(batch.x)[real]) ** 2, axis=1).mean()
    log_q = _np_log_normal(z, mean, logvar)
    log_p = _np_vamp_log_prior(z, *_components(model, variables))
    kl = (log_q - log_p).mean()
    beta = min((epoch + 1) / warmup, 1.0) if warmup else 1.0
    # rec: a decoder of fan-ins 2 + 5 and a sum of 6 squares after the draw (NORMAL_OPS);
    # kl: the encoder at the data and at the pseudo-inputs (fan-ins 6 + 5), the densities and
    # the log-sum-exp over 5 components, relative to the log-densities it is the difference of.
    assert_close(metrics["reconstruction"], rec, ops=60 + NORMAL_OPS)
    scale = np.abs(log_q).max() + np.abs(log_p).max()
    assert_close(metrics["kl"], kl, ops=100 + NORMAL_OPS, scale=scale)
    assert ("beta" in metrics) == bool(warmup)
    if warmup:
        assert float(metrics["beta"]) == pytest.approx(beta, rel=1e-7)
    assert_close(value, rec + beta * kl, ops=100 + NORMAL_OPS, scale=rec + scale)
    assert float(metrics["loss"]) == float(value)
    assert all(m.dtype == jnp.float32 and m.shape == () for m in metrics.values())


def test_the_warm_up_rises_linearly_in_training_and_evaluation_is_at_beta_one():
    betas = [float(warmup_beta(jnp.int32(e), 4, True)) for e in range(6)]
    assert betas == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]  # the authors' e / 4 at 1-based epochs
    assert float(warmup_beta(jnp.int32(0), 4, False)) == 1.0
    assert float(warmup_beta(jnp.int32(0), 0, True)) == 1.0
    objective = vamp_objective(SMALL_VAE, n_pseudo_inputs=3, warmup=4)
    batch = _batch()
    variables = objective.init(KEY, batch.x)
    value, (metrics, _) = _loss(objective, variables, batch, epoch=1, train=True)
    assert float(metrics["beta"]) == 0.5
    # rec + 0.5 kl: a product and a sum.
    assert_close(value, float(metrics["reconstruction"]) + 0.5 * float(metrics["kl"]), ops=2)
    test_value, (test_metrics, _) = _loss(objective, variables, batch, epoch=1, train=False)
    assert float(test_metrics["beta"]) == 1.0
    assert_close(test_value, float(metrics["reconstruction"]) + float(metrics["kl"]), ops=2)


def _standard_components(variables):
    """Variables whose pseudo-inputs all encode to N(0, I): zero pseudo-inputs, zero trunk
    bias (h(0) = leaky_relu(0) = 0) and zero mean/log-variance biases; the heads' kernels
    stay random, so the data's posteriors are not N(0, I)."""
    params, state = split_variables(variables)
    vae = dict(params["vae"])
    vae["trunk"] = {"dense0": {**params["vae"]["trunk"]["dense0"], "bias": jnp.zeros(5)}}
    for head in ("mean_layer", "logvar_layer"):
        vae[head] = {**params["vae"][head], "bias": jnp.zeros(2)}
    u = jnp.zeros_like(params["pseudo_inputs"])
    return {"params": {**params, "vae": vae, "pseudo_inputs": u}, **state}


@pytest.mark.numerics
def test_with_every_component_standard_normal_the_prior_is_the_standard_normal():
    objective = vamp_objective(SMALL_VAE, n_pseudo_inputs=6)
    model = objective.model
    batch = _batch(8, 2)
    variables = _standard_components(objective.init(KEY, batch.x))
    means, logvars = _components(model, variables)
    assert np.all(means == 0.0) and np.all(logvars == 0.0)
    z = np.random.default_rng(4).normal(scale=2.0, size=(9, 2)).astype(np.float32)
    got = model.apply(variables, jnp.asarray(z), method="log_prior")
    # log(K exp(a)) - log K = a: a log-sum-exp of equal terms, exact but for its rounding.
    assert_close(got, _np_log_normal(z, 0.0, 0.0), ops=8)
    # The KL estimate is log q(z|x) - log N(z; 0, I) at the decoded draw.
    key = jax.random.key(7)
    _, (metrics, _) = _loss(objective, variables, batch, key)
    sample_key, _ = jax.random.split(key)
    mean, logvar = (
        np.asarray(a, np.float64) for a in model.apply(variables, batch.x, method="encode")
    )
    assert np.abs(mean).max() > 0.1  # the data's posteriors are not the prior
    eps = np.asarray(jax.random.normal(sample_key, mean.shape), np.float64)
    real = np.asarray(batch.mask) > 0
    eps, mean, logvar = eps[real], mean[real], logvar[real]
    z = mean + np.exp(0.5 * logvar) * eps
    estimate = _np_log_normal(z, mean, logvar) - _np_log_normal(z, 0.0, 0.0)
    scale = np.abs(_np_log_normal(z, 0.0, 0.0)).max()
    assert_close(metrics["kl"], estimate.mean(), ops=60 + NORMAL_OPS, scale=scale)
    # Its mean over draws is the closed-form KL(q(z|x) || N(0, I)).
    keys = jax.random.split(jax.random.key(8), 4000)
    draws = jax.jit(jax.vmap(lambda k: _loss(objective, variables, batch, k)[1][0]["kl"]))
    estimates = np.asarray(draws(keys), np.float64)
    analytic = (0.5 * np.sum(mean**2 + np.exp(logvar) - 1.0 - logvar, axis=1)).mean()
    # Monte Carlo tolerance: five standard errors of the mean of 4,000 estimates.
    assert abs(estimates.mean() - analytic) < 5 * estimates.std() / math.sqrt(len(keys))


@pytest.mark.numerics
def test_padding_rows_change_neither_loss_nor_gradient():
    objective = vamp_objective(SMALL_VAE, n_pseudo_inputs=4, warmup=2)
    padded = _batch(8, 3)
    unpadded = _batch(8, 0)
    params, state = split_variables(_spread_pseudo_inputs(objective.init(KEY, padded.x)))

    def step(batch):
        def loss(p):
            return objective.loss(p, state, batch, KEY, 0, 0, True)

        return jax.jit(jax.value_and_grad(loss, has_aux=True))(params)

    # The real rows come first, so their draws are the same for both shapes.
    (want, (want_metrics, _)), want_grad = step(unpadded)
    (got, (got_metrics, _)), got_grad = step(padded)
    # Two programs for the same sums over the real rows: the networks' fan-ins (6 + 5 + 2 + 5)
    # and the draws, the log-sum-exp over 4 components, doubled by the backward pass.
    assert_close(got, want, ops=100)
    for name, value in want_metrics.items():
        assert_close(got_metrics[name], value, ops=100, scale=abs(float(want)))
    scale = max(float(np.max(np.abs(leaf))) for leaf in jax.tree.leaves(want_grad))
    for a, b in zip(jax.tree.leaves(got_grad), jax.tree.leaves(want_grad), strict=True):
        assert np.all(np.isfinite(a))
        assert_close(a, b, ops=200, scale=scale)
    # The prior's gradient reaches the pseudo-inputs.
    assert float(jnp.abs(want_grad["pseudo_inputs"]).max()) > 0.0


@pytest.mark.numerics
@pytest.mark.slow
def test_a_batch_norm_vae_keeps_its_prior_on_running_statistics():
    """A convolutional VAE with BatchNorm: image pseudo-inputs, the components encoded in
    inference mode, so only the data's pass updates the statistics."""
    conv = ConvVAE(
        image_shape=(8, 8, 1),
        hidden_dim=8,
        latent_dim=2,
        encoder_convs=(ConvSpec(4, 3, 2, 1, batch_norm=True),),
        decoder_convs=(),
        output_conv=(4, 2, 1),
    )
    objective = vamp_objective(conv, n_pseudo_inputs=4)
    x = np.random.default_rng(0).uniform(size=(6, 8, 8, 1)).astype(np.float32)
    batch = Batch(jnp.asarray(x), jnp.asarray([1.0] * 5 + [0.0]))
    params, state = split_variables(jax.jit(objective.init, compiler_options=FAST)(KEY, batch.x))
    assert params["pseudo_inputs"].shape == (4, 8, 8, 1) and "batch_stats" in state

    def loss(p):
        return objective.loss(p, state, batch, KEY, 0, 0, True)

    step = jax.jit(jax.value_and_grad(loss, has_aux=True), compiler_options=FAST)
    (_, (metrics, new_state)), grads = step(params)
    assert np.isfinite(float(metrics["kl"]))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    assert not np.array_equal(  # the data's pass updated the statistics
        new_state["batch_stats"]["vae"]["encoder"]["bn0"]["mean"],
        state["batch_stats"]["vae"]["encoder"]["bn0"]["mean"],
    )
    # The prior reads the running statistics and writes none.
    variables = {"params": params, **state}
    z = np.random.default_rng(1).normal(size=(3, 2)).astype(np.float32)
    got_prior, written = objective.model.apply(
        variables, jnp.asarray(z), method="log_prior", mutable=["batch_stats"]
    )
    assert_trees_bitwise(written, {"batch_stats": state["batch_stats"]})
    # The components through a network of fan-ins 9 + 64 + 8 on running statistics, then the
    # densities and the log-sum-exp over 4 components.
    want_prior = _np_vamp_log_prior(z, *_components(objective.model, variables))
    assert_close(got_prior, want_prior, ops=200)
    assert generate.sample_prior(KEY, objective.model, variables, 2).shape == (2, 8, 8, 1)


# ------------------------------------------------------------------- the model and errors


def test_the_model_is_recorded_with_its_vae_and_rebuilt():
    model = VampPrior(vae=SMALL_VAE, n_pseudo_inputs=7, pseudo_input_range=[0, 1])
    assert model.pseudo_input_range == (0.0, 1.0) and model.latent_dim == 2
    spec = module_spec(model)
    assert spec["fields"]["vae"] == {"Module": module_spec(SMALL_VAE)}
    assert spec["fields"]["n_pseudo_inputs"] == 7
    assert build_module(json.loads(json.dumps(spec))) == model
    # The objective keeps a VampPrior's other fields and sets its K.
    objective = vamp_objective(model, n_pseudo_inputs=3)
    assert objective.model == dataclasses.replace(model, n_pseudo_inputs=3)
    assert objective.describe() == {
        "name": "vamp",
        "n_pseudo_inputs": 3,
        "warmup": 0,
        "likelihood": "sse",
        "binarize": False,
        "obs_logvar": 0.0,
    }


def test_bad_settings_are_refused_by_name():
    with pytest.raises(ValueError, match="n_pseudo_inputs must be >= 1"):
        vamp_objective(SMALL_VAE, n_pseudo_inputs=0)
    with pytest.raises(ValueError, match="warmup must be >= 0"):
        vamp_objective(SMALL_VAE, warmup=-1)
    with pytest.raises(TypeError, match="warmup must be an int"):
        vamp_objective(SMALL_VAE, warmup=1.5)
    with pytest.raises(TypeError, match="flax.linen Module"):
        vamp_objective("vae")
    with pytest.raises(ValueError, match="likelihood must be one of"):
        vamp_objective(SMALL_VAE, likelihood="l1")
    with pytest.raises(TypeError, match="vae must be a flax.linen VAE with encode and decode"):
        VampPrior(vae=jax.numpy.zeros(3))
    with pytest.raises(ValueError, match="pseudo_input_std must be >= 0"):
        VampPrior(vae=SMALL_VAE, pseudo_input_std=-1.0)
    with pytest.raises(ValueError, match=r"pseudo_input_range must be None or \(low, high\)"):
        VampPrior(vae=SMALL_VAE, pseudo_input_range=(1.0, 0.0))
    with pytest.raises(ValueError, match=r"objective 'vamp' takes no \['k'\]"):
        build_objective("vamp", SMALL_VAE, k=3)
    # Variables without pseudo-inputs (the plain VAE's) cannot give the prior.
    model = VampPrior(vae=SMALL_VAE, n_pseudo_inputs=2)
    plain = {"params": {"vae": SMALL_VAE.init(KEY, _batch().x, KEY)["params"]}}
    with pytest.raises(ValueError, match="hold no pseudo-inputs: make them with model.init"):
        model.apply(plain, jnp.zeros((1, 2)), method="log_prior")


# -------------------------------------------------------------------------- the command line


@pytest.mark.slow
def test_train_takes_vamp_records_it_reloads_it_and_samples_its_prior(tmp_path):
    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(0).normal(size=(60, 6)).astype(np.float32))
    out = tmp_path / "run"
    argv = ["train", "--data", str(data), "--model", "vae", "--hidden-dims", "5"]
    argv += ["--latent-dim", "2", "--epochs", "3", "--batch-size", "16", "--quiet"]
    argv += ["--objective", "vamp", "--pseudo-inputs", "5", "--warmup", "2"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    history = metrics["history"]
    for name in ("loss", "reconstruction", "kl", "beta"):
        assert f"train_{name}" in history and name in metrics["test"]
    assert history["train_beta"] == [0.5, 1.0, 1.0] and history["test_beta"] == [1.0] * 3
    settings = json.loads((out / "config.json").read_text())["settings"]
    assert settings["objective"] == "vamp"
    assert settings["pseudo_inputs"] == 5 and settings["warmup"] == 2
    run = runs.load_run(out)
    vae = VAE(input_dim=6, hidden_dims=(5,), latent_dim=2)
    assert run.model == VampPrior(vae=vae, n_pseudo_inputs=5)
    assert run.variables["params"]["pseudo_inputs"].shape == (5, 6)
    samples = generate.sample_prior(KEY, run.model, run.variables, 3)
    latents = run.model.apply(run.variables, KEY, 3, method="sample_latents")
    assert_bitwise(samples, generate.decode(run.model, run.variables, latents))
    mean, _ = run.encode(np.zeros((4, 6), np.float32))
    assert mean.shape == (4, 2)


# ------------------------------------------------------------------ evaluation under the prior


@pytest.mark.numerics
def test_the_bounds_score_a_vampprior_under_its_own_prior():
    """metrics.iwae_bound and metrics.elbo use the VampPrior's log p(z), not N(0, I): each
    log-weight is log p(x|z) + log p_vamp(z) - log q(z|x), checked in float64 at the same
    draws, and the k = 1 bound is the sampled ELBO."""
    from latent_jax import metrics

    model = VampPrior(vae=SMALL_VAE, n_pseudo_inputs=7)
    variables = _spread_pseudo_inputs(model.init(KEY, _batch().x, KEY))
    x = _batch(5).x
    key = jax.random.key(4)
    got = metrics.iwae_bound(model, variables, x, key, num_samples=3, likelihood="gaussian")
    mean, logvar = (np.asarray(a, np.float64) for a in model.apply(variables, x, method="encode"))
    means, logvars = _components(model, variables)
    log_w = []
    for i in range(3):  # sample i uses fold_in(key, i)
        eps = np.asarray(jax.random.normal(jax.random.fold_in(key, i), mean.shape), np.float64)
        z = mean + np.exp(0.5 * logvar) * eps
        out = np.asarray(model.apply(variables, jnp.asarray(z, jnp.float32), method="decode"))
        log_px = -0.5 * np.sum(LOG_2PI + (np.asarray(x) - out) ** 2, axis=1)
        log_qz = -0.5 * np.sum(LOG_2PI + logvar + eps**2, axis=1)
        log_w.append(log_px + _np_vamp_log_prior(z, means, logvars) - log_qz)
    log_w = np.asarray(log_w)
    top = log_w.max(axis=0)
    expected = top + np.log(np.mean(np.exp(log_w - top), axis=0))
    # The decoder (fan-ins 2 + 5), 6 squared errors, the prior's log-sum-exp (about 40): 80.
    assert_close(got, expected, ops=80)
    # The inner VAE alone, the same draws under N(0, I): another bound.
    inner = {"params": variables["params"]["vae"]}
    standard = metrics.iwae_bound(SMALL_VAE, inner, x, key, num_samples=3, likelihood="gaussian")
    assert np.min(np.abs(np.asarray(standard) - np.asarray(got))) > 0.1
    one = metrics.iwae_bound(model, variables, x, key, num_samples=1, likelihood="gaussian")
    sampled = metrics.elbo(model, variables, x, key, num_samples=1, likelihood="gaussian")
    assert_close(sampled, one, ops=80)  # the same draw and terms in two programs
