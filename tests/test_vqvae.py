"""The VQ-VAE (van den Oord, Vinyals & Kavukcuoglu 2017): nearest-neighbour quantization, the
codebook and commitment terms of eq. 3 and their stop-gradients against float64 NumPy, the
straight-through estimator, the plain autoencoder it reduces to, the moving-average codebook,
masking, the PixelCNN prior (causal masks, learning a grid distribution, persistence), errors,
and training, reloading and sampling through the command line."""

from __future__ import annotations

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numerics import assert_bitwise, assert_close, assert_trees_close

from latent_jax import cli, generate, objectives, runs, samplers
from latent_jax.models import registry
from latent_jax.models.inference import predict
from latent_jax.models.mlp import VAE
from latent_jax.models.pixelcnn import PixelCNN, causal_mask
from latent_jax.models.vqvae import (
    VQVAE,
    ema_codebook_update,
    nearest_codes,
    straight_through,
)
from latent_jax.objectives import Batch, build_objective, vq_vae_objective
from latent_jax.objectives.base import split_variables
from latent_jax.objectives.vqvae import code_usage
from latent_jax.samplers import PixelCNNPrior

KEY = jax.random.key(0)
# 8x8 images, a 2x2 grid of 3-dimensional codes, 8 entries: small enough to compile fast.
MODEL = VQVAE(image_shape=(8, 8, 1), latent_dim=3, codebook_size=8, hidden_dim=8, residual_blocks=1)
EMA_MODEL = MODEL.clone(ema=True, ema_decay=0.9)


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(size=(n, 8, 8, 1)).astype(np.float32)


def _loss(objective, variables, x, mask=None, *, train=False):
    params, state = split_variables(variables)
    mask = jnp.ones(len(x), jnp.float32) if mask is None else jnp.asarray(mask, jnp.float32)
    count = jnp.int32(0)
    loss = jax.jit(objective.loss, static_argnums=6)
    return loss(params, state, Batch(jnp.asarray(x), mask), KEY, count, count, train)


def _grad(objective, variables, x, mask=None, *, train=False):
    return _loss_and_grad(objective, variables, x, mask, train=train)[1]


def _loss_and_grad(objective, variables, x, mask=None, *, train=False):
    """``((loss, (metrics, model_state)), gradient)`` in one compiled program."""
    params, state = split_variables(variables)
    mask = jnp.ones(len(x), jnp.float32) if mask is None else jnp.asarray(mask, jnp.float32)
    batch = Batch(jnp.asarray(x), mask)
    return _value_and_grad(objective.loss, train)(params, state, batch, KEY, jnp.int32(0))


@functools.cache
def _value_and_grad(loss, train):
    def value(params, state, batch, key, count):
        return loss(params, state, batch, key, count, count, train)

    return jax.jit(jax.value_and_grad(value, has_aux=True))


def _apply(model, variables, *args, method):
    """The model's method in inference mode, compiled once per model, method and shapes."""
    return predict(model, variables, *args, method=method)


# --------------------------------------------------------- the paper's terms in float64 NumPy


def _nearest(z, codebook):
    """The paper's eq. 1: k = argmin_j ||z - e_j||_2, per vector, in float64."""
    z = np.asarray(z, np.float64).reshape(-1, codebook.shape[1])
    distances = ((z[:, None, :] - np.asarray(codebook, np.float64)[None]) ** 2).sum(-1)
    return distances.argmin(-1)


def _paper_terms(z_e, codebook):
    """Per example, ||sg[z_e] - e||^2 (= ||z_e - sg[e]||^2 in value) summed over the grid, and
    the entries chosen (eq. 3, one term per grid position)."""
    z_e = np.asarray(z_e, np.float64)
    codebook = np.asarray(codebook, np.float64)
    k = _nearest(z_e, codebook).reshape(z_e.shape[:-1])
    squared = ((z_e - codebook[k]) ** 2).reshape(len(z_e), -1).sum(-1)
    return squared, k


@pytest.mark.slow
@pytest.mark.numerics
def test_quantization_picks_the_nearest_codebook_entry():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(5, 3, 4, 6)).astype(np.float32)
    codebook = rng.normal(size=(16, 6)).astype(np.float32)
    want = _nearest(z, codebook).reshape(5, 3, 4)
    assert_bitwise(jax.jit(nearest_codes)(z, codebook), want)  # integer indices
    # Through the model: z_q is the entry itself, its index NumPy's argmin.
    model = VQVAE(image_shape=(8, 8, 1), latent_dim=3, codebook_size=8, hidden_dim=4)
    variables = model.init(KEY, _images(1))
    z_e = 2.0 * rng.normal(size=(4, 2, 2, 3)).astype(np.float32)
    z_q, indices = _apply(model, variables, z_e, method="quantize")
    book = np.asarray(variables["params"]["codebook"])
    assert_bitwise(indices, _nearest(z_e, book).reshape(4, 2, 2))
    assert_bitwise(z_q, book[np.asarray(indices)])
    assert indices.dtype == jnp.int32


@pytest.mark.numerics
@pytest.mark.parametrize("likelihood", ["sse", "bernoulli"])
def test_the_codebook_and_commitment_terms_are_the_papers(likelihood):
    x = _images(6)
    objective = vq_vae_objective(MODEL, commitment=0.25, likelihood=likelihood)
    variables = objective.init(KEY, x)
    value, (metrics, _) = _loss(objective, variables, x)
    book = np.asarray(variables["params"]["codebook"], np.float64)
    z_e = np.asarray(_apply(MODEL, variables, x, method="encode"), np.float64)
    squared, k = _paper_terms(z_e, book)
    # The encoder's output comes from another program: its rounding (the fan-ins of its
    # layers, 16 + 128 + 72 + 72 + 8 + 8 = 304, doubled for the squares) bounds the error.
    assert_close(metrics["codebook"], squared.mean(), ops=700)
    assert_close(metrics["commitment"], squared.mean(), ops=700)
    decoded = np.asarray(_apply(MODEL, variables, book[k].astype(np.float32), method="decode"))
    x64, out = np.asarray(x, np.float64).reshape(6, -1), decoded.astype(np.float64).reshape(6, -1)
    if likelihood == "sse":
        rec = ((out - x64) ** 2).sum(-1)
    else:  # -log Bernoulli(x; sigmoid(out)), the decoder's output as logits
        rec = (np.logaddexp(0.0, out) - x64 * out).sum(-1)
    # The decoder's fan-ins (27 + 72 + 8 + 128 + 128) on inputs equal up to rounding, 64 pixels.
    assert_close(metrics["reconstruction"], rec.mean(), ops=1000)
    assert_close(value, rec.mean() + 1.25 * squared.mean(), ops=1000)
    assert float(metrics["loss"]) == float(value)
    counts = np.bincount(k.ravel(), minlength=8) / k.size
    used = counts[counts > 0]
    assert_close(metrics["perplexity"], np.exp(-(used * np.log(used)).sum()), ops=20)
    assert float(metrics["codes_used"]) == len(used) / 8
    assert {m: np.asarray(v).dtype for m, v in metrics.items()} == dict.fromkeys(
        ("loss", "reconstruction", "codebook", "commitment", "perplexity", "codes_used"),
        np.float32,
    )


@pytest.mark.numerics
def test_the_stop_gradients_send_each_term_where_the_paper_says():
    x = _images(6)
    plain = vq_vae_objective(MODEL, commitment=0.0)
    committed = vq_vae_objective(MODEL, commitment=1.0)
    variables = plain.init(KEY, x)
    book = np.asarray(variables["params"]["codebook"], np.float64)
    z_e = np.asarray(_apply(MODEL, variables, x, method="encode"), np.float64)
    _, k = _paper_terms(z_e, book)
    # The codebook learns from the codebook term alone: d/de_k of the mean over the 6 rows of
    # sum_j ||sg[z_j] - e_k||^2 over the positions j that chose k is 2 sum_j (e_k - z_j) / 6
    # (the reconstruction sees sg[z_q - z_e], the commitment sg[e]).
    want = np.zeros_like(book)
    np.add.at(want, k.ravel(), 2.0 * (book[k] - z_e).reshape(-1, 3) / 6)
    grads = _grad(committed, variables, x)
    assert_close(grads["codebook"], want, ops=700)
    # The encoder learns from the commitment term: its last layer's bias gets
    # 2 beta sum_j (z_j - e_j) / 6 more with beta = 1 than with beta = 0.
    extra = 2.0 * (z_e - book[k]).reshape(-1, 3).sum(0) / 6
    bias = np.asarray(grads["to_code"]["bias"]) - np.asarray(
        _grad(plain, variables, x)["to_code"]["bias"]
    )
    scale = float(np.abs(grads["to_code"]["bias"]).max())
    assert_close(bias, extra, ops=2000, scale=scale)


@pytest.mark.numerics
def test_the_straight_through_gradient_is_the_decoders_gradient_at_the_codes():
    variables = MODEL.init(KEY, _images(1))
    book = variables["params"]["codebook"]
    rng = np.random.default_rng(2)
    # Codebook entries and encoder outputs on a dyadic grid, so z_e + (z_q - z_e) == z_q
    # exactly: the decoder sees the same input through either path.
    book = jnp.asarray(np.round(np.asarray(book) * 8) / 8)
    variables = {"params": {**variables["params"], "codebook": book}}
    indices = rng.integers(0, 8, size=(3, 2, 2))
    z_e = np.asarray(book)[indices] + rng.integers(-2, 3, size=(3, 2, 2, 3)) / 16
    x = _images(3, seed=3)

    def rec(z_q):
        out = MODEL.apply(variables, z_q, method="decode")
        return jnp.sum(jnp.square(out - x))

    def through(z):
        z_q, _ = MODEL.apply(variables, z, method="quantize")
        return rec(straight_through(z, z_q))

    z_q, _ = _apply(MODEL, variables, jnp.asarray(z_e, jnp.float32), method="quantize")
    assert float(jnp.max(jnp.abs(straight_through(jnp.asarray(z_e, jnp.float32), z_q) - z_q))) == 0
    got = jax.jit(jax.grad(through))(jnp.asarray(z_e, jnp.float32))
    want = jax.jit(jax.grad(rec))(z_q)
    # The same decoder's backward pass in two programs (its fan-ins, 363).
    assert_close(got, want, ops=400)
    assert float(jnp.max(jnp.abs(want))) > 0


@pytest.mark.numerics
def test_a_codebook_holding_the_encoder_outputs_is_the_plain_autoencoder():
    x = _images(2, seed=4)  # 2 images x 4 positions = the 8 entries
    objective = vq_vae_objective(MODEL)
    variables = objective.init(KEY, x)
    z_e = _apply(MODEL, variables, x, method="encode")
    params = {**variables["params"], "codebook": z_e.reshape(8, 3)}
    variables = {"params": params}
    out = _apply(MODEL, variables, x, method="__call__")
    assert_bitwise(out.z_q, z_e)  # every vector is its own nearest entry
    assert_bitwise(out.indices, np.arange(8).reshape(2, 2, 2))
    _, (metrics, _) = _loss(objective, variables, x)
    # The loss's program computes z_e again, equal up to the encoder's rounding (its fan-ins,
    # 304): the terms are 0 up to the square of that, relative to ||z_e||^2.
    scale = float(np.mean(np.sum(np.square(z_e).reshape(2, -1), -1)))
    for term in ("codebook", "commitment"):
        assert_close(metrics[term], 0.0, ops=304, scale=scale)
    decoded = _apply(MODEL, variables, z_e, method="decode")
    autoencoder = np.mean(np.sum((np.asarray(decoded) - x).reshape(2, -1) ** 2, -1))
    # decode(encode(x)), the autoencoder's reconstruction, in another program: the decoder's
    # fan-ins (27 + 72 + 8 + 128 + 128 = 363) and the sum over 64 pixels.
    assert_close(metrics["loss"], autoencoder, ops=500)
    assert float(metrics["perplexity"]) == pytest.approx(8.0, rel=1e-6)
    assert float(metrics["codes_used"]) == 1.0


@pytest.mark.numerics
def test_perplexity_and_codes_used_count_the_real_rows_only():
    rng = np.random.default_rng(5)
    indices = rng.integers(0, 6, size=(7, 3, 3))
    mask = np.array([1, 1, 0, 1, 1, 0, 1], np.float32)
    perplexity, used = jax.jit(code_usage, static_argnums=2)(indices, mask, 10)
    real = indices[mask > 0].ravel()
    p = np.bincount(real, minlength=10) / real.size
    p = p[p > 0]
    assert_close(perplexity, np.exp(-(p * np.log(p)).sum()), ops=20)
    assert float(used) == np.float32(len(np.unique(real)) / 10)


# ------------------------------------------------------------------ the moving-average codebook


def _numpy_ema(count, total, z, k, w, decay, epsilon):
    """Appendix A.1's eqs. 6-8 with Laplace-smoothed counts, in float64."""
    size = len(count)
    z = np.asarray(z, np.float64).reshape(-1, total.shape[1])
    k, w = np.asarray(k).ravel(), np.asarray(w, np.float64).ravel()
    n = np.array([w[k == i].sum() for i in range(size)])
    s = np.stack([(w[k == i, None] * z[k == i]).sum(0) for i in range(size)])
    count = decay * np.asarray(count, np.float64) + (1 - decay) * n
    total = decay * np.asarray(total, np.float64) + (1 - decay) * s
    smoothed = (count + epsilon) / (count.sum() + size * epsilon) * count.sum()
    return count, total, total / smoothed[:, None]


@pytest.mark.numerics
def test_the_moving_average_update_is_the_papers():
    rng = np.random.default_rng(6)
    count, total = rng.uniform(0.5, 2, 5), rng.normal(size=(5, 3))
    z = rng.normal(size=(4, 2, 2, 3))
    k = rng.integers(0, 5, size=(4, 2, 2))
    w = np.broadcast_to(np.array([1.0, 0.0, 1.0, 1.0])[:, None, None], k.shape)
    f32 = [np.asarray(a, np.float32) for a in (count, total, z)]
    update = jax.jit(functools.partial(ema_codebook_update, decay=0.9, epsilon=1e-3))
    got = update(*f32, k, np.asarray(w, np.float32))
    want = _numpy_ema(*f32, k, w, 0.9, 1e-3)
    for g, v in zip(got, want, strict=True):
        assert_close(g, v, ops=20)  # sums of at most 16 vectors, a product, a division


@pytest.mark.numerics
@pytest.mark.slow
def test_the_ema_codebook_moves_in_training_mode_from_the_real_rows_only():
    x = _images(5, seed=7)
    mask = np.array([1, 1, 0, 1, 0], np.float32)
    objective = vq_vae_objective(EMA_MODEL)
    variables = objective.init(KEY, x)
    assert "codebook" not in variables["params"]
    state = variables["vq_ema"]
    assert_bitwise(state["count"], np.ones(8)) and assert_bitwise(state["sum"], state["codebook"])
    _, (metrics, unchanged) = _loss(objective, variables, x, mask)
    assert_bitwise(unchanged["vq_ema"]["codebook"], state["codebook"])  # inference: no update
    assert float(metrics["codebook"]) == 0.0  # left out: the averages move the codebook
    _, (metrics, new) = _loss(objective, variables, x, mask, train=True)
    assert float(metrics["loss"]) == pytest.approx(
        float(metrics["reconstruction"]) + 0.25 * float(metrics["commitment"]), rel=1e-6
    )
    z_e = np.asarray(_apply(EMA_MODEL, variables, x, method="encode"))
    _, k = _paper_terms(z_e, np.asarray(state["codebook"]))
    w = np.broadcast_to(mask[:, None, None], k.shape)
    count, total, codebook = _numpy_ema(
        state["count"], np.asarray(state["sum"]), z_e, k, w, 0.9, EMA_MODEL.ema_epsilon
    )
    # The encoder's rounding in another program (its fan-ins, 304) and the update's own.
    assert_close(new["vq_ema"]["count"], count, ops=20)
    assert_close(new["vq_ema"]["sum"], total, ops=400)
    assert_close(new["vq_ema"]["codebook"], codebook, ops=400)
    unused = np.setdiff1d(np.arange(8), k[mask > 0])
    # An entry no real row chose keeps its place (N and m decay alike, up to the smoothing).
    assert_close(new["vq_ema"]["codebook"][unused], np.asarray(state["codebook"])[unused], ops=200)


@pytest.mark.numerics
@pytest.mark.parametrize("model", [MODEL, EMA_MODEL], ids=["gradient", "ema"])
@pytest.mark.slow
def test_padding_rows_change_neither_loss_gradient_nor_codebook(model):
    x = _images(4, seed=8)
    padded = np.concatenate([x, 100.0 * _images(3, seed=9)])
    mask = np.array([1, 1, 1, 1, 0, 0, 0], np.float32)
    objective = vq_vae_objective(model)
    variables = objective.init(KEY, x)
    (want, (want_metrics, want_state)), want_grads = _loss_and_grad(
        objective, variables, x, train=True
    )
    (got, (got_metrics, got_state)), grads = _loss_and_grad(
        objective, variables, padded, mask, train=True
    )
    # Other batch shapes compile other programs: the encoder's and decoder's fan-ins (~700).
    assert_close(got, want, ops=1000)
    for name in ("perplexity", "codes_used"):
        assert float(got_metrics[name]) == float(want_metrics[name])
    assert_trees_close(got_state, want_state, ops=1000)
    assert_trees_close(grads, want_grads, ops=2000)


# ------------------------------------------------------------------------------ the PixelCNN


def test_the_masks_hide_the_centre_and_what_follows_it():
    assert causal_mask(3, "A").tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    assert causal_mask(3, "B").tolist() == [[1, 1, 1], [1, 1, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        causal_mask(4, "A")


def test_each_output_depends_only_on_the_positions_before_it():
    model = PixelCNN(codebook_size=3, features=4, kernel_size=3, residual_blocks=2)
    one_hot = jax.random.uniform(KEY, (1, 3, 4, 3))
    variables = model.init(KEY, jnp.zeros((1, 3, 4), jnp.int32))
    jacobian = jax.jit(jax.jacobian(lambda h: model.apply(variables, h, method="logits")))(one_hot)
    # d logits[position i] / d input[position j], summed in magnitude over the channels.
    reach = np.abs(np.asarray(jacobian)).sum(axis=(0, 3, 4, 7)).reshape(12, 12)
    assert np.all(reach[np.triu_indices(12)] == 0)  # j >= i: no dependence, exactly
    for i, j in [(1, 0), (4, 0), (4, 1), (5, 4), (11, 10), (11, 7), (11, 6)]:
        assert reach[i, j] > 0  # the left neighbour, the row above, further back


def _toy_grids(n: int, seed: int) -> np.ndarray:
    """2x2 grids of 4 codes: the first uniform, the second a copy, the row below its
    successor twice: log 4 nats a grid, against 4 log 4 for the uniform prior."""
    first = np.random.default_rng(seed).integers(0, 4, size=n)
    below = (first + 1) % 4
    return np.stack([np.stack([first, first], -1), np.stack([below, below], -1)], 1)


@pytest.mark.slow
def test_the_pixelcnn_prior_learns_a_grid_distribution_and_round_trips(tmp_path):
    grids = _toy_grids(256, seed=10)
    prior = PixelCNNPrior.fit(
        grids,
        codebook_size=4,
        features=16,
        kernel_size=3,
        residual_blocks=1,
        epochs=40,
        batch_size=64,
        learning_rate=1e-2,
    )
    uniform = 4 * np.log(4)
    assert prior.info["uniform_nll"] == pytest.approx(uniform)
    nll = -float(np.mean(prior.log_likelihood(_toy_grids(64, seed=11))))
    assert nll < 0.5 * uniform  # the truth: log 4 = uniform / 4
    assert prior.info["train_nll"][-1] < prior.info["train_nll"][0]
    draws = np.asarray(prior.sample(KEY, 200))
    assert draws.shape == (200, 2, 2) and draws.dtype == np.int32
    follows = (draws[:, 0, 1] == draws[:, 0, 0]) & (draws[:, 1, 0] == (draws[:, 0, 0] + 1) % 4)
    assert follows.mean() > 0.7  # chance: 1/16
    path = samplers.save_sampler(tmp_path / samplers.SAMPLER_FILE, prior)
    again = samplers.load_sampler(path)
    assert isinstance(again, PixelCNNPrior) and again.grid_shape == (2, 2)
    assert_bitwise(again.sample(KEY, 200), draws)  # the same program on the same parameters


def test_the_prior_and_its_data_are_checked():
    with pytest.raises(ValueError, match=r"indices must be in \[0, 4\)"):
        PixelCNNPrior.fit(np.full((3, 2, 2), 4), codebook_size=4)
    with pytest.raises(TypeError, match="indices must be integers"):
        PixelCNNPrior.fit(np.zeros((3, 2, 2)), codebook_size=4)
    with pytest.raises(ValueError, match=r"shape \(n_grids, height, width\)"):
        PixelCNNPrior.fit(np.zeros((3, 4), int), codebook_size=4)
    with pytest.raises(ValueError, match="sampler must be one of"):
        samplers.sampler_from_dict({"sampler": "pixelcnn++"})


# -------------------------------------------------------------------- generation and errors


@pytest.mark.slow
def test_sample_prior_decodes_the_priors_index_grids_and_checks_the_model():
    variables = MODEL.init(KEY, _images(1))
    prior = PixelCNNPrior.fit(
        np.random.default_rng(12).integers(0, 8, size=(16, 2, 2)),
        codebook_size=8,
        features=4,
        kernel_size=3,
        residual_blocks=0,
        epochs=1,
    )
    images = generate.sample_prior(KEY, MODEL, variables, 3, sampler=prior)
    grids = prior.sample(KEY, 3)
    assert_close(images, _apply(MODEL, variables, grids, method="decode_indices"), ops=400)
    # Without a prior: each position's code uniform, the training-time prior.
    uniform = generate.sample_prior(KEY, MODEL, variables, 3)
    assert uniform.shape == (3, 8, 8, 1) and bool(jnp.all(jnp.isfinite(uniform)))
    other = MODEL.clone(codebook_size=16)
    with pytest.raises(ValueError, match="grids of 8 codes but VQVAE has codebook_size=16"):
        generate.sample_prior(KEY, other, other.init(KEY, _images(1)), 3, sampler=prior)
    vae = VAE(input_dim=6, hidden_dims=(5,), latent_dim=2)
    with pytest.raises(TypeError, match="decoded by 'decode_indices', which VAE does not have"):
        generate.sample_prior(KEY, vae, vae.init(KEY, jnp.zeros((1, 6)), KEY), 3, sampler=prior)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="codebook_size must be >= 1"):
        VQVAE(codebook_size=0)
    with pytest.raises(ValueError, match=r"ema_decay must be in \(0, 1\)"):
        VQVAE(ema_decay=1.0)
    with pytest.raises(ValueError, match="image_shape must be a tuple of 3 ints"):
        VQVAE(image_shape=(8, 8))
    with pytest.raises(ValueError, match="commitment must be >= 0"):
        vq_vae_objective(MODEL, commitment=-1.0)
    with pytest.raises(ValueError, match="likelihood must be one of"):
        vq_vae_objective(MODEL, likelihood="poisson")
    with pytest.raises(TypeError, match="trains a VQVAE"):
        vq_vae_objective(VAE(input_dim=6, hidden_dims=(5,), latent_dim=2))
    with pytest.raises(ValueError, match=r"z_q must have shape \(batch, 2, 2, 3\)"):
        MODEL.init(KEY, jnp.zeros((1, 3, 3, 3)), method="decode")
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 8, 8, 1\)"):
        MODEL.init(KEY, jnp.zeros((1, 6, 6, 1)))
    with pytest.raises(ValueError, match="takes images"):
        VQVAE.for_data((64,), latent_dim=2)


def test_the_objective_sets_the_models_codebook_by_option():
    built = build_objective("vq-vae", MODEL, codebook_size=16, ema=True, commitment=0.5)
    assert built.model == MODEL.clone(codebook_size=16, ema=True)
    assert built.describe() == {
        "name": "vq-vae",
        "commitment": 0.5,
        "likelihood": "sse",
        "binarize": False,
        "codebook_size": 16,
        "ema": True,
    }
    assert build_objective("vq-vae", MODEL).model is MODEL  # unset options: the model's own
    assert objectives.objective_entry("vq-vae").trains == "vq-vae"
    assert "vq-vae" not in objectives.available("vae")  # latent-jax vae trains ConvVAEs
    assert registry.model_entry("vq-vae").cls is VQVAE
    assert VQVAE.for_data((14, 14, 1), latent_dim=4).grid_shape == (4, 4)
    assert VQVAE.for_data((28, 28, 1), latent_dim=4).grid_shape == (7, 7)


@pytest.mark.slow
def test_train_trains_a_vq_vae_fits_its_prior_reloads_and_samples(tmp_path, capsys):
    data = tmp_path / "x.npy"
    np.save(data, _images(48, seed=13))
    out = tmp_path / "run"
    argv = ["train", "--data", str(data), "--model", "vq-vae", "--latent-dim", "3"]
    argv += ["--epochs", "2", "--batch-size", "16", "--quiet", "--codebook-size", "8"]
    argv += ["--commitment", "0.5", "--prior-epochs", "2"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    names = {"loss", "reconstruction", "codebook", "commitment", "perplexity", "codes_used"}
    for split in ("train", "test"):
        assert {f"{split}_{m}" for m in names} <= set(metrics["history"])
        assert {f"{split}_{m}" for m in names} <= set(metrics["final"])
    assert set(metrics["test"]) == names
    final = metrics["final"]
    terms = final["train_reconstruction"] + final["train_codebook"]
    assert final["train_loss"] == pytest.approx(terms + 0.5 * final["train_commitment"], 1e-5)
    assert metrics["prior"]["name"] == "pixelcnn" and metrics["prior"]["info"]["n_grids"] == 38
    settings = json.loads((out / "config.json").read_text())["settings"]
    assert settings["objective"] == "vq-vae"  # the model's kind's default
    assert settings["codebook_size"] == 8 and settings["commitment"] == 0.5
    assert settings["prior_epochs"] == 2
    run = runs.load_run(out)
    assert run.model == VQVAE(image_shape=(8, 8, 1), latent_dim=3, codebook_size=8)
    prior = samplers.load_sampler(out / samplers.SAMPLER_FILE)
    images = generate.sample_prior(KEY, run.model, run.variables, 3, sampler=prior)
    assert images.shape == (3, 8, 8, 1) and bool(jnp.all(jnp.isfinite(images)))
    # Flags that do not fit the model are refused before anything is written.
    capsys.readouterr()
    for flags, message in [
        (["--objective", "elbo"], "conv-vae, not --model vq-vae (its objectives: vq-vae)"),
        (["--gamma", "2"], "--gamma 2.0 is an option of --objective"),
        (["--beta-max", "2"], "--beta-max sets the beta schedule"),
    ]:
        bad = [*argv[:12], *flags, "--out", str(tmp_path / "x")]  # no option of vq-vae
        assert cli.main(bad) == cli.EXIT_ERROR
        assert message in capsys.readouterr().err
    vae = ["train", "--data", str(data), "--model", "vae", "--quiet", "--out", str(tmp_path / "x")]
    assert cli.main([*vae, "--objective", "vq-vae"]) == cli.EXIT_ERROR
    assert "--objective vq-vae trains --model vq-vae, not --model vae" in capsys.readouterr().err
    assert cli.main([*vae, "--prior-epochs", "3"]) == cli.EXIT_ERROR
    assert "--prior-epochs sets the PixelCNN prior of --model vq-vae" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
