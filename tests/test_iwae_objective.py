"""The IWAE objective (k = 1 is the VAE's, the bound grows with k, DReG), dynamic
binarization, and the commands that train with them."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cli_checks import assert_config_round_trips
from numerics import assert_bitwise, assert_close, assert_trees_close

from latent_jax import cli
from latent_jax.experiments import common, iwae_table1
from latent_jax.models.conv import ConvSpec, ConvVAE
from latent_jax.models.mlp import VAE
from latent_jax.objectives import (
    Batch,
    bernoulli_binarize,
    iwae_objective,
    split_variables,
    vae_objective,
)

ZERO = jnp.int32(0)


@pytest.fixture(scope="module")
def tiny():
    """A tiny MLP VAE, its parameters and a batch of grey levels with one padding row."""
    model = VAE(input_dim=6, hidden_dims=(8,), latent_dim=2)
    x = jax.random.uniform(jax.random.key(0), (5, 6))
    params, state = split_variables(jax.jit(vae_objective(model).init)(jax.random.key(1), x))
    return model, params, state, Batch(x, jnp.ones(5).at[4].set(0.0))


def _assert_gradients_close(got, want, ops):
    """Gradients of two programs agree to round-off relative to the largest entry of any
    leaf: they are sums of products of both signs (the bias before a BatchNorm has an exactly
    zero gradient, all round-off), so a leaf's own largest entry is no scale for it."""
    scale = max(float(np.max(np.abs(leaf))) for leaf in jax.tree.leaves(want))
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        assert_close(a, b, ops=ops, scale=scale)


def _value_and_grad(objective, params, state, batch, key):
    """Loss, metrics, new model state and gradient of one training step (not jitted)."""

    def loss(p):
        return objective.loss(p, state, batch, key, ZERO, ZERO, True)

    (value, (metrics, new_state)), grad = jax.value_and_grad(loss, has_aux=True)(params)
    return value, metrics, new_state, grad


def test_k1_is_the_vae_objective_and_gradients_are_finite(tiny):
    model, params, state, batch = tiny
    key = jax.random.key(7)

    @jax.jit
    def both(params):
        out = {}
        for binarize in (False, True):
            vae = vae_objective(model, likelihood="bernoulli", binarize=binarize)
            iwae = iwae_objective(model, 1, likelihood="bernoulli", binarize=binarize)
            out[binarize] = [_value_and_grad(o, params, state, batch, key) for o in (vae, iwae)]
        return out, _value_and_grad(iwae_objective(model, 4), params, state, batch, key)[3]

    pairs, grad_k4 = both(params)
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grad_k4))
    assert all(np.any(g != 0) for g in jax.tree.leaves(grad_k4))
    # The same sums by two code paths (iwae_objective documents "to float32 round-off"):
    # ops = the fan-ins 6 + 8 + 2 + 8, the draw's 3, the likelihood's few and its sum over 6
    # pixels, the KL's over 2 dimensions and the mean over 4 rows, about 45; the gradients
    # add the backward pass through the same layers and the batch sum, about 100.
    for (v_loss, v_metrics, _, v_grad), (i_loss, i_metrics, _, i_grad) in pairs.values():
        assert_close(i_loss, v_loss, ops=45)
        for name in ("reconstruction", "kl"):
            assert_close(i_metrics[name], v_metrics[name], ops=45)
        assert float(i_metrics["iwae_bound"]) == float(i_metrics["elbo"])  # the same sum
        assert_close(i_metrics["iwae_bound"], -v_loss, ops=45)
        assert float(i_metrics["ess"]) == 1.0
        _assert_gradients_close(i_grad, v_grad, ops=100)


@pytest.mark.slow
def test_k1_matches_the_vae_objective_with_batchnorm():
    model = ConvVAE(
        image_shape=(8, 8, 1),
        hidden_dim=8,
        latent_dim=2,
        encoder_convs=(ConvSpec(4, 3, 2, 1, batch_norm=True),),
        decoder_convs=(),
        output_conv=(4, 2, 1),
    )
    x = jax.random.uniform(jax.random.key(2), (4, 8, 8, 1))
    batch = Batch(x, jnp.array([1.0, 1.0, 1.0, 0.0]))
    vae = vae_objective(model, likelihood="bernoulli")
    params, state = split_variables(vae.init(jax.random.key(3), x))
    key = jax.random.key(4)

    def step(objective, *args):
        return jax.jit(lambda *a: _value_and_grad(objective, *a))(*args)

    v_loss, _, v_state, v_grad = step(vae, params, state, batch, key)
    i_loss, _, i_state, i_grad = step(
        iwae_objective(model, 1, likelihood="bernoulli"), params, state, batch, key
    )
    # Two programs (iwae_objective documents "to float32 round-off"): ops = the fan-ins 9 +
    # 64 + 8 + 2 + 8 + 64, bn0's mean and variance over 3 x 4 x 4 values (96), the draw's 3
    # and the likelihood's sum over 64 pixels, about 330 for the loss; the backward pass
    # doubles it. The running statistics: the convolution's 9 and bn0's 96.
    assert_close(i_loss, v_loss, ops=330)
    assert_trees_close(i_state, v_state, ops=105)
    _assert_gradients_close(i_grad, v_grad, ops=700)
    # k > 1 decodes k x batch rows through BatchNorm; the new statistics come back.
    loss, metrics, new_state, grad = step(
        iwae_objective(model, 3, likelihood="bernoulli"), params, state, batch, key
    )
    assert np.isfinite(float(loss)) and 1.0 <= float(metrics["ess"]) <= 3.0
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grad))
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    moved = jax.tree.map(lambda a, b: bool(np.any(a != b)), new_state, state)
    assert any(jax.tree.leaves(moved)), "BatchNorm's statistics did not move"


def test_the_bound_grows_with_k_on_average(tiny):
    model, params, state, batch = tiny
    sizes = (1, 8)

    @jax.jit
    def metrics(keys):
        def one(key):
            return [
                iwae_objective(model, k).loss(params, state, batch, key, ZERO, ZERO, False)[1][0]
                for k in sizes
            ]

        return jax.vmap(one)(keys)

    means, sems = [], []
    for k, found in zip(sizes, metrics(jax.random.split(jax.random.key(6), 128)), strict=True):
        values = np.asarray(found["iwae_bound"], np.float64)
        assert_bitwise(found["loss"], -found["iwae_bound"])  # one value and its negation
        np.testing.assert_allclose(found["elbo"], -(found["reconstruction"] + found["kl"]))
        assert np.all((found["ess"] >= 1.0 - 1e-5) & (found["ess"] <= k + 1e-4))
        means.append(values.mean())
        sems.append(values.std() / np.sqrt(len(values)))
    for i in range(len(means) - 1):
        assert means[i + 1] > means[i] - 2 * np.hypot(sems[i], sems[i + 1]), (means, sems)
    assert means[-1] > means[0]


@pytest.mark.slow
def test_dreg_has_the_standard_value_and_gradient_in_expectation(tiny):
    model, params, state, batch = tiny
    k, n = 4, 400
    standard = iwae_objective(model, k)
    dreg = iwae_objective(model, k, gradient="dreg")

    @jax.jit
    def grads(keys):
        def one(key):
            return [_value_and_grad(o, params, state, batch, key) for o in (standard, dreg)]

        return jax.vmap(one)(keys)

    (s_value, _, _, s_grad), (d_value, _, _, d_grad) = grads(jax.random.split(jax.random.key(8), n))
    np.testing.assert_allclose(d_value, s_value, rtol=1e-5, atol=1e-5)  # values near -4
    for grad in (s_grad, d_grad):
        assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grad))
    # The decoder's estimator is the same; the encoder's has the same mean, less variance.
    # Other programs for the same estimator (the weights computed twice): ops = the forward
    # pass's 45 and the log-sum-exp over 4 samples, and the backward pass's as many.
    _assert_gradients_close(d_grad["decoder"], s_grad["decoder"], ops=100)

    def encoder(grad):
        leaves = jax.tree.leaves({m: grad[m] for m in ("trunk", "mean_layer", "logvar_layer")})
        return np.concatenate([np.reshape(leaf, (n, -1)) for leaf in leaves], axis=1)

    s_enc, d_enc = encoder(s_grad), encoder(d_grad)
    se = np.sqrt((s_enc.var(0) + d_enc.var(0)) / n)
    z = np.abs(s_enc.mean(0) - d_enc.mean(0)) / np.maximum(se, 1e-12)
    assert np.mean(z) < 1.5 and np.max(z) < 5.0, (np.mean(z), np.max(z))
    assert d_enc.var(0).sum() < s_enc.var(0).sum()


def test_binarization_is_keyed_binary_and_has_the_pixel_means():
    n, p = 4000, jnp.linspace(0.0, 1.0, 11)
    rows = jnp.broadcast_to(p, (n, 11))
    key = jax.random.key(9)
    draws = bernoulli_binarize(key, rows)
    assert draws.dtype == rows.dtype and set(np.unique(draws)) == {0.0, 1.0}
    assert_bitwise(bernoulli_binarize(key, rows), draws)  # the same program, key and rows
    assert not np.array_equal(bernoulli_binarize(jax.random.key(10), rows), draws)
    assert np.all(draws[:, 0] == 0.0) and np.all(draws[:, -1] == 1.0)  # certain pixels
    tolerance = 4 * np.sqrt(np.asarray(p * (1 - p)) / n) + 1e-9
    assert np.all(np.abs(np.asarray(draws.mean(0)) - np.asarray(p)) <= tolerance)
    with pytest.raises(TypeError, match="float array"):
        bernoulli_binarize(key, jnp.arange(3))


@pytest.mark.slow
def test_binarize_splits_its_key_off_first(tiny):
    # On binary data the draw is the data itself: the loss is the unbinarized loss with the
    # key that is left after the binarization key is split off.
    model, params, state, batch = tiny
    binary = batch._replace(x=(batch.x > 0.5).astype(jnp.float32))
    key = jax.random.key(10)
    rest = jax.random.split(key)[1]

    @jax.jit
    def losses():
        out = []
        for make in (
            lambda b: vae_objective(model, likelihood="bernoulli", binarize=b),
            lambda b: iwae_objective(model, 4, binarize=b),
        ):
            with_binarize = make(True).loss(params, state, binary, key, ZERO, ZERO)[0]
            out.append(
                (with_binarize, make(False).loss(params, state, binary, rest, ZERO, ZERO)[0])
            )
        return out

    for with_binarize, without in losses():
        # Equal sums computed twice in one program, from other nodes (fused independently):
        # ops = the forward pass's 45 and the 4 samples' log-sum-exp; another key would move
        # the loss by sampling noise, far more.
        assert_close(with_binarize, without, ops=60)


def test_bad_arguments_are_named(tiny):
    model = tiny[0]
    with pytest.raises(ValueError, match="k must be >= 1"):
        iwae_objective(model, 0)
    with pytest.raises(ValueError, match="gradient must be one of"):
        iwae_objective(model, 2, gradient="reinforce")
    with pytest.raises(TypeError, match="binarize must be a bool"):
        iwae_objective(model, 2, binarize=1)
    with pytest.raises(TypeError, match="binarize must be a bool"):
        vae_objective(model, binarize="yes")
    with pytest.raises(ValueError, match="likelihood must be one of"):
        iwae_objective(model, 2, likelihood="poisson")
    with pytest.raises(TypeError, match="encode and decode"):
        iwae_objective(nn.Dense(3), 2)


@pytest.mark.slow
def test_train_command_trains_an_iwae_and_its_config_round_trips(tmp_path, capsys):
    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(0).uniform(size=(60, 10)).astype(np.float32))
    out = tmp_path / "run"
    argv = ["train", "--data", str(data), "--model", "vae", "--hidden-dims", "8"]
    argv += ["--latent-dim", "2", "--epochs", "2", "--batch-size", "16", "--objective", "iwae"]
    argv += ["--k", "3", "--binarize", "--likelihood", "bernoulli"]
    argv += ["--gradient-estimator", "dreg", "--quiet", "--out", str(out)]
    assert cli.main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["final"]["train_loss"] == pytest.approx(-metrics["final"]["train_iwae_bound"])
    assert 1.0 <= metrics["final"]["train_ess"] <= 3.0
    assert_config_round_trips(out, "train")
    config = json.loads((out / "config.json").read_text())
    assert config["settings"]["objective"] == "iwae" and config["settings"]["k"] == 3
    with pytest.raises(SystemExit):
        cli.parse_args(["train", "--objective", "vae"])
    assert cli.main(["train", "--data", str(data), "--k", "3", "--out", str(tmp_path / "x")]) != 0
    users = "ciwae or iwae or miwae or piwae"
    assert f"--k 3 is an option of --objective {users}, not of --objective elbo" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "x").exists()


def test_the_staircase_keeps_a_pass_at_every_rate():
    assert iwae_table1.staircase_passes(1.0) == [1, 3, 9, 27, 81, 243, 729, 2187]
    assert iwae_table1.staircase_passes(0.01) == [1, 1, 1, 1, 1, 2, 7, 22]
    schedule = iwae_table1.staircase_schedule([1, 1, 2, 1, 1, 1, 1, 1], steps_per_epoch=10)
    rates = np.asarray(jax.jit(jax.vmap(schedule))(jnp.array([0, 9, 10, 29, 30, 89, 200])))
    stages = np.array([0, 0, 1, 2, 2, 7, 7])  # stage 2 lasts 2 passes; the last rate stays
    np.testing.assert_allclose(rates, 1e-3 * 10.0 ** (-stages / 7), rtol=1e-6)


@pytest.mark.slow
def test_vae_command_trains_an_iwae_and_its_config_round_trips(tmp_path):
    data = tmp_path / "digits.npy"
    np.save(data, np.random.default_rng(1).uniform(size=(40, 8, 8, 1)).astype(np.float32))
    out = tmp_path / "vae"
    argv = ["vae", "--data", str(data), "--normalization", "none", "--epochs", "1"]
    argv += ["--batch-size", "16", "--hidden-dim", "8", "--latent-dim", "2", "--fast-compile"]
    argv += ["--objective", "iwae", "--k", "2", "--binarize", "--likelihood", "bernoulli"]
    assert cli.main([*argv, "--quiet", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["beta_schedule"] == "none (IWAE bound)" and metrics["final_beta"] == 1.0
    assert np.isfinite(metrics["final_test_loss"])
    assert_config_round_trips(out, "vae")


@pytest.mark.slow
def test_iwae_table1_runs_end_to_end(tmp_path):
    out = tmp_path / "table"
    argv = ["iwae-table1", "--k", "1,2", "--seeds", "2", "--epochs-scale", "0.0001"]
    argv += ["--batch-size", "1000", "--nll-k", "4", "--nll-images", "8", "--quiet"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 8 and metrics["nll_images"] == 8
    assert set(metrics["objectives"]) == {"vae", "iwae-k2"}
    for result in metrics["objectives"].values():
        assert len(result["test_nll_nats"]["runs"]) == 2
        assert all(np.isfinite(result["test_nll_nats"]["runs"]))
        assert len(result["kl_per_dim"]) == 50
    assert "vae vs iwae-k2" in metrics["paired_tests_nll"]
    assert (out / "iwae_table1.png").is_file() and (out / "iwae-k2" / "history.csv").is_file()


def test_iwae_table1_rows_name_registered_objectives_and_are_checked_first(tmp_path, capsys):
    """--rows: pythae's table as objectives of the registry; a bad row is refused by name
    before any folder exists."""
    row = iwae_table1.parse_row("ciwae:k=64,beta=0.05")
    assert row.objective == "ciwae" and row.options == (("k", 64), ("beta", 0.05))
    assert row.name == "ciwae-k64-beta0.05" and row.name in iwae_table1.PYTHAE_NLL
    names = [iwae_table1.parse_row(text).name for text in iwae_table1.PYTHAE_ROWS]
    assert names == list(iwae_table1.PYTHAE_NLL)
    assert iwae_table1.objective_name(1) == "vae" and iwae_table1.objective_name(5) == "iwae-k5"
    with pytest.raises(ValueError, match="NAME:option=number"):
        iwae_table1.parse_row("miwae:m=eight")
    out = tmp_path / "table"
    for rows, message in (
        (["miwae:q=3"], "--rows miwae-q3: objective 'miwae' takes no"),
        (["iwae:k=2", "iwae:k=2"], "names an objective twice"),
    ):
        argv = ["iwae-table1", "--rows", *rows, "--out", str(out)]
        assert cli.main(argv) == cli.EXIT_ERROR
        assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_iwae_table1_runs_pythaes_rows_end_to_end(tmp_path):
    out = tmp_path / "table"
    argv = ["iwae-table1", "--rows", "miwae:m=2,k=2", "vamp:pseudo_inputs=3", "--seeds", "2"]
    argv += ["--epochs-scale", "0.0001", "--batch-size", "1000", "--nll-k", "4"]
    argv += ["--nll-images", "8", "--quiet"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["objectives"]) == {"miwae-m2-k2", "vamp-pseudo_inputs3"}
    vamp = metrics["objectives"]["vamp-pseudo_inputs3"]
    assert vamp["objective"] == "vamp" and vamp["options"] == {"pseudo_inputs": 3}
    assert all(np.isfinite(vamp["test_nll_nats"]["runs"]))
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["rows"] == ["miwae:m=2,k=2", "vamp:pseudo_inputs=3"]
    # A config file's rows read back as the flag parses them, one entry each.
    parser = cli._subparsers(cli.build_parser())["iwae-table1"]
    values = common.config_defaults(
        {"model": {"rows": config["model"]["rows"]}}, parser, "iwae-table1"
    )
    assert values["rows"] == config["model"]["rows"]
