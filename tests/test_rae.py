"""Regularized autoencoders (Ghosh et al. 2020): the code penalty, the decoder's L2 and the
gradient penalty against float64 formulas written from the paper, the plain deterministic
autoencoder they reduce to, masking, errors, and training through the command line."""

from __future__ import annotations

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numerics import assert_close, assert_trees_close

from latent_jax import cli, generate, objectives, runs
from latent_jax.models.benchmark_nets import PythaeMNISTVAE
from latent_jax.models.conv import ConvSpec, ConvVAE
from latent_jax.models.mlp import VAE, Autoencoder
from latent_jax.objectives import Batch, bernoulli_binarize, build_objective, rae, rae_objective
from latent_jax.objectives.base import split_variables
from latent_jax.train import TrainConfig, fit

KEY = jax.random.key(0)
TANH_VAE = VAE(input_dim=6, hidden_dims=(5,), latent_dim=2, activation="tanh")
SMALL_VAE = VAE(input_dim=6, hidden_dims=(5,), latent_dim=2)
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


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(size=(n, 8, 8, 1)).astype(np.float32)


def _loss(objective, variables, x, mask=None, *, train=False, key=KEY):
    """The objective's loss on rows ``x`` (all real unless ``mask``), compiled."""
    params, state = split_variables(variables)
    mask = jnp.ones(len(x), jnp.float32) if mask is None else jnp.asarray(mask, jnp.float32)
    count = jnp.int32(0)
    loss = jax.jit(objective.loss, static_argnums=6)
    return loss(params, state, Batch(jnp.asarray(x), mask), key, count, count, train)


def _grad(objective, variables, x, mask=None, *, train=False):
    params, state = split_variables(variables)

    mask = jnp.ones(len(x), jnp.float32) if mask is None else jnp.asarray(mask, jnp.float32)
    batch, count = Batch(jnp.asarray(x), mask), jnp.int32(0)

    def loss(p):
        return objective.loss(p, state, batch, KEY, count, count, train)[0]

    return jax.jit(jax.grad(loss))(params)


def _float64(tree):
    return jax.tree.map(lambda a: np.asarray(a, np.float64), tree)


# ----------------------------------------------------------- the paper's terms in float64 NumPy


def _reference(params, x, likelihood):
    """The RAE's terms for the tanh MLP VAE, from the paper: z = mu(x), rec(x, D(z)),
    1/2 ||z||^2, ||theta_dec||^2 and ||grad_z sum_j D_j(z)||^2 with the Jacobian by hand."""
    p = _float64(params)
    x = np.asarray(x, np.float64)
    h = np.tanh(x @ p["trunk"]["dense0"]["kernel"] + p["trunk"]["dense0"]["bias"])
    z = h @ p["mean_layer"]["kernel"] + p["mean_layer"]["bias"]
    w1, b1 = p["decoder"]["dense0"]["kernel"], p["decoder"]["dense0"]["bias"]
    w2, b2 = p["decoder"]["dense1"]["kernel"], p["decoder"]["dense1"]["bias"]
    u = np.tanh(z @ w1 + b1)
    out = u @ w2 + b2
    if likelihood == "sse":
        rec = np.sum((x - out) ** 2, axis=1)  # ||x - D(E(x))||^2
    else:  # -log Bernoulli(x; sigmoid(out)) = softplus(out) - x * out
        rec = np.sum(np.logaddexp(0.0, out) - x * out, axis=1)
    code_norm = 0.5 * np.sum(z**2, axis=1)
    decoder_l2 = sum(np.sum(a**2) for a in (w1, b1, w2, b2))
    # d out_j / d z_k = sum_h w1[k, h] (1 - u_h^2) w2[h, j]; summed over j: J^T 1.
    gradient = ((1.0 - u**2) * w2.sum(axis=1)) @ w1.T
    penalty = np.sum(gradient**2, axis=1)
    return rec, code_norm, decoder_l2, penalty


@pytest.mark.numerics
@pytest.mark.parametrize("likelihood", ["sse", "bernoulli"])
def test_the_terms_match_the_papers_formulas_in_float64(likelihood):
    x = _rows(7, seed=1)
    if likelihood == "bernoulli":
        x = 1.0 / (1.0 + np.exp(-x))  # data in [0, 1]
    beta, lam = 0.3, 0.05
    l2 = rae_objective(TANH_VAE, regularizer="l2", beta=beta, lambda_reg=lam, likelihood=likelihood)
    variables = l2.init(KEY, jnp.asarray(x))
    rec, code_norm, decoder_l2, penalty = _reference(variables["params"], x, likelihood)
    # ops: the encoder (6 + 5), the decoder (2 + 5), tanh twice (a few each), the sum of 6.
    loss, (metrics, _) = _loss(l2, variables, x)
    assert_close(metrics["reconstruction"], rec.mean(), ops=64)
    assert_close(metrics["code_norm"], code_norm.mean(), ops=64)
    assert_close(metrics["decoder_l2"], decoder_l2, ops=64)  # sums of 10, 5, 30 and 6 squares
    assert_close(loss, rec.mean() + beta * code_norm.mean() + lam * decoder_l2, ops=64)
    gp = rae_objective(TANH_VAE, regularizer="gp", beta=beta, lambda_reg=lam, likelihood=likelihood)
    loss, (metrics, _) = _loss(gp, variables, x)
    # ops: the forward pass (64) and its transpose (5 + 6 + 2), the square and the sum of 2.
    assert_close(metrics["gradient_penalty"], penalty.mean(), ops=128)
    assert_close(metrics["code_norm"], code_norm.mean(), ops=64)
    assert_close(loss, rec.mean() + beta * code_norm.mean() + lam * penalty.mean(), ops=128)
    assert set(metrics) == {"loss", "reconstruction", "code_norm", "gradient_penalty"}
    assert all(v.dtype == jnp.float32 and v.shape == () for v in metrics.values())
    # The loss is the weighted sum of the reported terms: 2 products and 2 sums.
    reported = metrics["reconstruction"] + beta * metrics["code_norm"]
    assert_close(loss, reported + lam * metrics["gradient_penalty"], ops=4)


@pytest.mark.numerics
@pytest.mark.slow
def test_the_gradient_penalty_of_a_conv_decoder_matches_a_float64_finite_difference():
    # In inference mode each row is decoded on its own: the penalty is ||J(z_i)^T 1||^2.
    x = _images(3)
    objective = rae_objective(CONV_VAE, regularizer="gp", beta=0.0, lambda_reg=1.0)
    variables = objective.init(KEY, jnp.asarray(x))
    _, (metrics, _) = _loss(objective, variables, x)
    z = CONV_VAE.apply(variables, jnp.asarray(x), method="encode")[0]
    with jax.enable_x64(True):
        variables64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), _float64(variables))
        z64 = jnp.asarray(np.asarray(z, np.float64))

        # Central differences along each latent axis, all rows in one decode (inference
        # mode decodes each row on its own).
        step, n, d = 1e-5, *z64.shape
        shifts = step * jnp.eye(d)[:, None, :]  # (d, 1, d)
        codes = jnp.concatenate([z64 + shifts, z64 - shifts]).reshape(2 * d * n, d)
        out = CONV_VAE.apply(variables64, codes, method="decode")
        summed = np.asarray(jnp.sum(out.reshape(2, d, n, -1), axis=-1))
        gradient = ((summed[0] - summed[1]) / (2 * step)).T  # (n, d)
    penalty = np.sum(gradient**2, axis=1)
    # ops: the decoder's fan-ins (3 + 8 + 36 + 64) forward and transposed, the square and the
    # sum of 3; the central difference (step 1e-5, float64) is exact to ~1e-10.
    assert_close(metrics["gradient_penalty"], penalty.mean(), ops=256)


@pytest.mark.numerics
def test_without_weights_it_is_the_plain_deterministic_autoencoder():
    x = jnp.asarray(_rows(9, seed=2))
    plain = rae_objective(SMALL_VAE, beta=0.0, lambda_reg=0.0)
    variables = plain.init(KEY, x)
    params, _ = split_variables(variables)

    def reconstruction(p):
        mean, _ = SMALL_VAE.apply({"params": p}, x, method="encode")
        out = SMALL_VAE.apply({"params": p}, mean, method="decode")
        return jnp.mean(jnp.sum(jnp.square(out - x), axis=1))

    for regularizer in ("l2", "gp"):
        objective = rae_objective(SMALL_VAE, regularizer=regularizer, beta=0.0, lambda_reg=0.0)
        loss, (metrics, _) = _loss(objective, variables, x, train=True)
        assert_close(loss, reconstruction(params), ops=64)
        assert_close(metrics["reconstruction"], reconstruction(params), ops=64)
        grads = _grad(objective, variables, x, train=True)
        assert_trees_close(grads, jax.grad(reconstruction)(params), ops=256)
        # The code is the mean: the log-variance head gets no gradient at all.
        assert not any(bool(jnp.any(g != 0)) for g in jax.tree.leaves(grads["logvar_layer"]))


@pytest.mark.numerics
@pytest.mark.parametrize(
    ("model", "regularizer"),
    [(SMALL_VAE, "l2"), (SMALL_VAE, "gp"), (CONV_VAE, "l2"), (CONV_VAE, "gp")],
    ids=["mlp-l2", "mlp-gp", "conv-l2", "conv-gp"],
)
@pytest.mark.slow
def test_padding_rows_change_neither_loss_nor_gradient_nor_batch_statistics(model, regularizer):
    x = _images(5) if model is CONV_VAE else _rows(5)
    padded = np.concatenate([x, np.full((3, *x.shape[1:]), 40.0, np.float32)])
    mask = np.array([1.0] * 5 + [0.0] * 3, np.float32)
    objective = rae_objective(model, regularizer=regularizer, beta=0.5, lambda_reg=0.1)
    variables = objective.init(KEY, jnp.asarray(x))
    # Training mode: the conv VAE's BatchNorm runs on the real rows' statistics.
    loss, (metrics, state) = _loss(objective, variables, x, train=True)
    loss_p, (metrics_p, state_p) = _loss(objective, variables, padded, mask, train=True)
    # ops: the conv VAE's longest chain, its fan-ins 9 + 64 + 3 + 8 + 36 + 64 forward and as
    # many transposed (the gradient penalty, and the gradient below), with BatchNorm's means.
    assert_close(loss_p, loss, ops=512)
    assert_trees_close(metrics_p, metrics, ops=512)
    assert_trees_close(state_p, state, ops=512)
    # Both the encoder's and the decoder's BatchNorm statistics move in training mode.
    if model is CONV_VAE:
        assert set(state["batch_stats"]) == {"encoder", "decoder"}
        before, after = jax.tree.leaves(variables["batch_stats"]), jax.tree.leaves(state)
        assert all(bool(jnp.any(a != b)) for a, b in zip(after, before, strict=True))
    grads = _grad(objective, variables, x, train=True)
    grads_p = _grad(objective, variables, padded, mask, train=True)
    # Relative to the gradient's largest magnitude: the bias before a BatchNorm has an exact
    # gradient of zero, computed as round-off of the terms that cancel in it.
    scale = max(float(np.max(np.abs(g))) for g in jax.tree.leaves(grads))
    paths = jax.tree_util.tree_flatten_with_path(grads)[0]
    for (path, want), got in zip(paths, jax.tree.leaves(grads_p), strict=True):
        assert_close(got, want, ops=512, scale=scale, err_msg=jax.tree_util.keystr(path))


@pytest.mark.numerics
@pytest.mark.slow
def test_dynamic_binarization_scores_a_fresh_draw_like_the_elbo_does():
    x = _images(4)
    key = jax.random.key(3)
    binarized = rae_objective(CONV_VAE, regularizer="gp", likelihood="bernoulli", binarize=True)
    plain = rae_objective(CONV_VAE, regularizer="gp", likelihood="bernoulli")
    variables = binarized.init(KEY, jnp.asarray(x))
    binarize_key, rest = jax.random.split(key)
    draw = bernoulli_binarize(binarize_key, jnp.asarray(x))
    assert set(np.unique(np.asarray(draw))) <= {0.0, 1.0}
    loss, (metrics, _) = _loss(binarized, variables, x, key=key)
    want, (want_metrics, _) = _loss(plain, variables, draw, key=rest)
    assert_close(loss, want, ops=8)  # the same computation, compiled apart
    assert_trees_close(metrics, want_metrics, ops=8)
    other, _ = _loss(binarized, variables, x, key=jax.random.key(4))
    assert float(other) != float(loss)  # another key, another draw


def test_the_objectives_are_registered_with_their_options_and_spec():
    assert {"rae-l2", "rae-gp"} <= set(objectives.available("vae"))
    entry = objectives.objective_entry("rae-gp")
    assert [o.flag for o in entry.options] == [
        "--likelihood",
        "--binarize",
        "--beta",
        "--lambda-reg",
    ]
    assert {o.name: o.default for o in entry.options}["beta"] == 1e-2
    built = build_objective("rae-gp", SMALL_VAE, lambda_reg=0.5)
    assert built.name == "rae-gp"
    assert built.describe() == {
        "name": "rae-gp",
        "regularizer": "gp",
        "beta": 1e-2,
        "lambda_reg": 0.5,
        "likelihood": "sse",
        "binarize": False,
        "obs_logvar": 0.0,
    }
    assert build_objective("rae-l2", SMALL_VAE).describe()["lambda_reg"] == 1e-4
    assert rae_objective(SMALL_VAE).name == "rae-l2"


def test_bad_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match=r"regularizer must be one of \('l2', 'gp'\)"):
        rae_objective(SMALL_VAE, regularizer="sn")
    with pytest.raises(ValueError, match="beta"):
        rae_objective(SMALL_VAE, beta=-1.0)
    with pytest.raises(ValueError, match="lambda_reg"):
        rae_objective(SMALL_VAE, lambda_reg=float("nan"))
    with pytest.raises(TypeError, match="binarize must be a bool"):
        rae_objective(SMALL_VAE, binarize=1)
    with pytest.raises(ValueError, match="likelihood must be one of"):
        rae_objective(SMALL_VAE, likelihood="laplace")
    with pytest.raises(TypeError, match="encode and decode"):
        rae_objective(nn.Dense(3))
    # An autoencoder's encode returns one array: refused when the loss is traced.
    autoencoder = Autoencoder(input_dim=6, hidden_dims=(5,), latent_dim=2)
    objective = rae_objective(autoencoder)
    variables = {"params": autoencoder.init(KEY, jnp.zeros((2, 6)))["params"]}
    with pytest.raises(TypeError, match=r"encode must return \(mean, logvar\)"):
        _loss(objective, variables, _rows(2))
    with pytest.raises(TypeError, match="flax.linen Module"):
        rae_objective(object())


def test_the_decoder_l2_needs_a_decoder_subtree_and_names_the_model():
    model = PythaeMNISTVAE(latent_dim=2, encoder_features=(2, 2, 2, 2), decoder_features=(2, 2))
    x = jnp.zeros((2, 28, 28, 1))
    objective = rae_objective(model, regularizer="l2")
    with pytest.raises(ValueError, match=r"PythaeMNISTVAE has none .* use the gradient penalty"):
        jax.eval_shape(objective.init, KEY, x)
    # The loss refuses such parameters too; the gradient penalty needs no parameter names.
    variables = jax.eval_shape(rae_objective(model, regularizer="gp").init, KEY, x)
    params, state = split_variables(variables)
    batch, count = Batch(x, jnp.ones(2)), jnp.int32(0)
    with pytest.raises(ValueError, match=r"params\['decoder'\].*\(rae-gp"):
        jax.eval_shape(objective.loss, params, state, batch, KEY, count, count)
    gp = rae_objective(model, regularizer="gp")
    metrics = jax.eval_shape(gp.loss, params, state, batch, KEY, count, count)[1][0]
    assert set(metrics) == {"loss", "reconstruction", "code_norm", "gradient_penalty"}
    params = {"dense": {"kernel": jnp.ones((2, 2))}}
    with pytest.raises(ValueError, match=r"VAE has none \(its parameters: \['dense'\]\)"):
        rae.decoder_l2(params, SMALL_VAE)
    assert float(rae.decoder_l2({"decoder": {"a": jnp.full(3, 2.0), "b": -jnp.ones(1)}})) == 13.0


# ---------------------------------------------------------------------------- training runs


@pytest.mark.parametrize("objective", ["rae-gp", "rae-l2"])
@pytest.mark.slow
def test_train_takes_the_rae_objectives_their_flags_and_records_them(tmp_path, objective):
    data = tmp_path / "x.npy"
    np.save(data, _rows(60))
    out = tmp_path / "run"
    argv = ["train", "--data", str(data), "--model", "vae", "--hidden-dims", "5"]
    argv += ["--latent-dim", "2", "--epochs", "3", "--batch-size", "16", "--quiet"]
    argv += ["--objective", objective, "--beta", "0.5", "--lambda-reg", "0.25"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    penalty = "gradient_penalty" if objective == "rae-gp" else "decoder_l2"
    names = {"loss", "reconstruction", "code_norm", penalty}
    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("train", "test"):
        assert {f"{split}_{m}" for m in names} <= set(metrics["history"])
        assert {f"{split}_{m}" for m in names} <= set(metrics["final"])
    assert set(metrics["test"]) == names
    assert len(metrics["history"]["train_loss"]) == 3
    final = metrics["final"]
    terms = final["train_reconstruction"] + 0.5 * final["train_code_norm"]
    assert final["train_loss"] == pytest.approx(terms + 0.25 * final[f"train_{penalty}"], 1e-5)
    settings = json.loads((out / "config.json").read_text())["settings"]
    assert settings["objective"] == objective
    assert settings["beta"] == 0.5 and settings["lambda_reg"] == 0.25
    run = runs.load_run(out)
    assert run.model == SMALL_VAE
    # No prior: N(0, I) still decodes (the naive sampler).
    samples = generate.sample_prior(KEY, run.model, run.variables, 3)
    assert samples.shape == (3, 6) and bool(jnp.all(jnp.isfinite(samples)))


@pytest.mark.slow
def test_a_conv_rae_with_batchnorm_fits_reloads_and_samples(tmp_path):
    x = _images(24)
    objective = rae_objective(CONV_VAE, regularizer="gp", beta=1e-2, lambda_reg=1e-3)
    config = TrainConfig(
        epochs=4, batch_size=8, learning_rate=3e-3, quiet=True, checkpoint_dir=str(tmp_path)
    )
    _, history = fit(objective, x, x[:8], config, KEY)
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["train_reconstruction"][-1] < history["train_reconstruction"][0]
    run = runs.load_run(tmp_path)
    assert run.model == CONV_VAE and "batch_stats" in run.variables
    samples = generate.sample_prior(KEY, run.model, run.variables, 5)
    assert samples.shape == (5, 8, 8, 1) and bool(jnp.all(jnp.isfinite(samples)))
