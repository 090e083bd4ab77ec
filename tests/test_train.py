"""The training engine: tracing, masked batches, learning, determinism, resume, failures.

Every run is tiny and compiled at XLA's lowest optimization level; runs that share an
objective and a config reuse the engine's compiled chunk, so most tests compile nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from numerics import assert_bitwise, assert_close, assert_trees_bitwise, assert_trees_close

from latent_jax import corruption, schedules
from latent_jax.models.conv import ConvAutoencoder, ConvSpec, ConvVAE
from latent_jax.models.mlp import VAE, Autoencoder
from latent_jax.objectives import (
    Batch,
    Objective,
    autoencoder_objective,
    denoising_objective,
    masked_mean,
    vae_objective,
)
from latent_jax.runs.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from latent_jax.train import (
    CompileCache,
    History,
    NonFiniteLossError,
    TrainConfig,
    TrainState,
    cache_for,
    evaluate,
    fit,
    fit_many,
    init_state,
    make_epoch_fn,
    make_train_step,
)

# Compiled training: benchmarks/gpu_suite.py runs these on the device (pytest -m device).
pytestmark = pytest.mark.device

KEY = jax.random.key(0)
FAST = {"xla_backend_optimization_level": 0}
# 10 rows in batches of 4: two full batches and a ragged one of 2 rows. Two epochs per call,
# so a 5-epoch run makes calls of 2, 2 and 1 epochs.
BASE = TrainConfig(
    learning_rate=1e-2,
    batch_size=4,
    epochs=5,
    epochs_per_call=2,
    log_every=0,
    quiet=True,
    compiler_options=FAST,
)


def _low_rank(n: int, seed: int) -> np.ndarray:
    """Rows near a 2-D subspace of R^6, which a 2-D code can reconstruct."""
    rng = np.random.default_rng(seed)
    basis = np.random.default_rng(99).normal(size=(2, 6))
    return (rng.normal(size=(n, 2)) @ basis + 0.1 * rng.normal(size=(n, 6))).astype(np.float32)


X = _low_rank(10, 0)
X_TEST = _low_rank(5, 1)
IMAGES = np.random.default_rng(2).uniform(size=(12, 8, 8, 1)).astype(np.float32)
IMAGES_TEST = np.random.default_rng(3).uniform(size=(4, 8, 8, 1)).astype(np.float32)

AE = autoencoder_objective(Autoencoder(input_dim=6, hidden_dims=(4,), latent_dim=2))
# β ramps 0, 0.25, 0.5, 0.75, 1 over the 5 epochs.
VAE_RAMP = vae_objective(
    VAE(input_dim=6, hidden_dims=(4,), latent_dim=2), schedules.linear(0.0, 1.0, num_steps=4)
)


def _tally_objective(*, blow_up_epoch: int | None = None) -> tuple[Objective, list]:
    """An objective that shows which rows enter each epoch, and counts its own traces.

    The data hold one column, the row index i. The per-example loss is 2**i, so an epoch's
    sample-weighted loss is sum(2**i) / N over the rows it saw: 102.3 for N = 10 exactly when
    every row enters once. ``first`` keeps 2**i only in the epoch's first batch (3 batches an
    epoch), so ``round(10 * train_first)`` is the bit set of the rows of that batch. The
    parameter gets a zero gradient, so nothing changes between epochs but the order.

    Returns:
        The objective and the list that grows by one entry (``train``) every trace.
    """
    traces = []

    def init(key, x):
        del key, x
        return {"params": {"w": jnp.zeros((), jnp.float32)}}

    def loss(params, model_state, batch, key, step, epoch, train=True):
        del key
        traces.append(train)
        code = jnp.exp2(batch.x[:, 0])
        first = jnp.where(step == 3 * epoch, code, 0.0)
        value = masked_mean(code, batch.mask) + jnp.square(params["w"])
        if blow_up_epoch is not None:
            value = value + jnp.where(epoch >= blow_up_epoch, jnp.inf, 0.0)
        metrics = {
            "loss": value,
            "first": masked_mean(first, batch.mask),
            "rows": masked_mean(jnp.ones_like(code), batch.mask),
        }
        return value, (metrics, dict(model_state))

    return Objective(init=init, loss=loss, model=None, name="tally"), traces


ROWS = np.arange(10, dtype=np.float32)[:, None]
ALL_ROWS = (2**10 - 1) / 10


def _first_batch(value: float) -> set[int]:
    bits = round(10 * value)
    return {i for i in range(10) if bits >> i & 1}


def _assert_same_tree(a, b) -> None:
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert_bitwise(x, y)


def _assert_same_history(a: History, b: History) -> None:
    assert set(a) == set(b)
    for name in a:
        if name != "epoch_time":  # wall-clock time, the one entry that may differ
            assert_bitwise(a[name], b[name], err_msg=name)


@pytest.fixture(scope="module")
def ae_run():
    return fit(AE, X, X_TEST, BASE, KEY)


@pytest.fixture(scope="module")
def vae_run():
    return fit(VAE_RAMP, X, X_TEST, BASE, KEY)


# --------------------------------------------------------------------------------------
# Compiled pieces: one trace, jit-independent results.


@pytest.mark.numerics
class TrainStepTest(chex.TestCase):
    """``make_train_step`` jitted and not: both are Adam on the gradient of the masked loss."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_step_is_one_update_on_the_real_rows(self):
        tx = optax.adam(1e-2)
        step = self.variant(make_train_step(AE, tx))
        state = jax.jit(lambda key: init_state(AE, tx, key, X[:4]), compiler_options=FAST)(KEY)
        mask = jnp.asarray([1.0, 1.0, 1.0, 0.0])
        batch = Batch(jnp.asarray(X[:4]), mask)
        new_state, metrics = step(state, batch, KEY, jnp.int32(0))

        def loss(params):
            return AE.loss(params, {}, Batch(batch.x[:3], jnp.ones(3)), KEY, 0, 0, True)[0]

        @functools.partial(jax.jit, compiler_options=FAST)
        def reference(state):
            # Adam on the gradient of the loss of the three real rows alone.
            value, grads = jax.value_and_grad(loss)(state.params)
            updates, opt_state = tx.update(grads, state.opt_state, state.params)
            return value, optax.apply_updates(state.params, updates), opt_state

        value, expected, opt_state = reference(state)
        # One step by two programs (4 masked rows, or the 3 real ones): the loss has ops = the
        # fan-ins 6 + 4 + 2 + 4, a difference, a square and the mean over 3 x 6 values; the
        # gradient adds the backward pass's 16 and the sum over 3 rows (55), Adam's update a
        # few more; its second moment squares the gradient (twice the ops).
        assert_trees_close(new_state.params, expected, ops=63)
        assert_trees_close(new_state.opt_state, opt_state, ops=110)
        assert_close(metrics["loss"], value, ops=36)
        assert int(new_state.step) == 1
        assert float(jax.jit(loss)(new_state.params)) < float(value)
        # What sits in the padding row changes nothing.
        garbage = Batch(batch.x.at[3].set(1e6), mask)
        other, _ = step(state, garbage, KEY, jnp.int32(0))
        chex.assert_trees_all_close(other.params, new_state.params, rtol=1e-6)


def test_epoch_fn_traces_once_across_epochs():
    objective, traces = _tally_objective()
    config = dataclasses.replace(BASE, epochs=4)
    epoch_fn = jax.jit(chex.assert_max_traces(make_epoch_fn(objective, config, 10), n=1))
    tx = optax.adam(config.learning_rate)
    state = init_state(objective, tx, KEY, ROWS)
    train_key, eval_key = jax.random.split(KEY)
    for epoch in range(4):
        state, out = epoch_fn(state, train_key, eval_key, ROWS, None, np.int32(epoch))
        np.testing.assert_allclose(float(out.train["loss"]), ALL_ROWS, rtol=1e-6)
        assert int(out.bad_step) == -1
        assert out.test == {}
    assert traces == [True]  # the loss, traced once inside the one trace of the epoch
    assert int(state.epoch) == 4
    assert int(state.step) == 12


def test_fit_compiles_once_whatever_the_number_of_epochs_or_calls():
    counts = []
    for epochs in (2, 7):
        objective, traces = _tally_objective()
        config = dataclasses.replace(BASE, epochs=epochs, epochs_per_call=1)
        _, history = fit(objective, ROWS, None, config, KEY)
        assert history.num_epochs == epochs
        counts.append(len(traces))
    # 7 compiled calls trace no more than 2 do: the chunk is compiled once per run.
    assert counts[0] == counts[1] > 0


def test_unrolling_the_batch_loop_does_not_change_the_run():
    # 10 rows in batches of 3: 4 batches, so unroll=3 also leaves a remainder iteration.
    config = dataclasses.replace(BASE, epochs=3, batch_size=3)
    runs = [fit(AE, X, X_TEST, dataclasses.replace(config, unroll=u), KEY) for u in (1, 3)]
    (state_1, history_1), (state_3, history_3) = runs
    # Training compared across two programs (rolled and unrolled loops): the round-off of the
    # 12 Adam steps' gradients is fed back. 1e-5 is about 100 float32 ulps, far below what a
    # batch skipped, repeated or reordered gives (a learning rate's step, 1e-2).
    chex.assert_trees_all_close(state_1.params, state_3.params, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(history_1["test_loss"], history_3["test_loss"], rtol=1e-5)


@pytest.mark.parametrize("shuffle", [True, False])
def test_every_row_enters_every_epoch_exactly_once(shuffle):
    objective, _ = _tally_objective()
    config = dataclasses.replace(BASE, epochs=4, shuffle=shuffle)
    state, history = fit(objective, ROWS, None, config, KEY)
    # 10 rows in batches of 4, 4 and 2: the ragged batch is an update of its own.
    assert int(state.step) == 4 * 3
    # Without test data there are no test metrics.
    assert set(history) == {"epoch", "epoch_time", "train_loss", "train_first", "train_rows"}
    assert_bitwise(history["train_rows"], np.ones(4))  # means of ones: exact
    np.testing.assert_allclose(history["train_loss"], np.full(4, ALL_ROWS), rtol=1e-6)
    firsts = [_first_batch(value) for value in history["train_first"]]
    assert all(len(rows) == 4 for rows in firsts)
    if shuffle:
        assert len({frozenset(rows) for rows in firsts}) > 1  # a new order every epoch
    else:
        assert firsts == [{0, 1, 2, 3}] * 4


# --------------------------------------------------------------------------------------
# Learning.


def _conv_vae() -> ConvVAE:
    return ConvVAE(
        image_shape=(8, 8, 1),
        hidden_dim=8,
        latent_dim=2,
        encoder_convs=(ConvSpec(4, 3, 2, 1, batch_norm=True),),
        decoder_convs=(),
        output_conv=(4, 2, 1),
    )


def _conv_autoencoder() -> Objective:
    return autoencoder_objective(
        ConvAutoencoder(image_shape=(8, 8, 1), channels=(4,), latent_dim=3)
    )


# 12 images in batches of 8 and 4.
CONV = dataclasses.replace(BASE, batch_size=8, learning_rate=3e-3)
LEARNERS = {
    "denoising": lambda: (
        denoising_objective(
            Autoencoder(input_dim=6, hidden_dims=(4,), latent_dim=2), corruption.gaussian(0.1)
        ),
        X,
        X_TEST,
        BASE,
    ),
    "conv_autoencoder": lambda: (_conv_autoencoder(), IMAGES, IMAGES_TEST, CONV),
    "conv_vae": lambda: (vae_objective(_conv_vae()), IMAGES, IMAGES_TEST, CONV),
}


def _assert_learns(history: History) -> None:
    for name in ("train_loss", "test_loss"):
        values = history[name]
        assert np.all(np.isfinite(values)), name
        assert values[-1] < values[0], f"{name} did not decrease: {values}"


def test_autoencoder_learns(ae_run):
    _, history = ae_run
    _assert_learns(history)


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_every_model_and_objective_learns(name):
    objective, train, test, config = LEARNERS[name]()
    state, history = fit(objective, train, test, config, KEY)
    _assert_learns(history)
    if name == "conv_vae":  # BatchNorm's running statistics moved from 0 and are finite
        chex.assert_tree_all_finite(state.model_state)
        assert float(jnp.abs(state.model_state["batch_stats"]["encoder"]["bn0"]["mean"]).sum()) > 0


def test_vae_learns_at_a_fixed_beta(vae_run):
    # β rises over the run, so compare the first and last epochs at the same β, from the
    # separately reported terms.
    _, history = vae_run
    for split in ("train", "test"):
        rec, kl = history[f"{split}_reconstruction"], history[f"{split}_kl"]
        for beta in (0.0, 1.0):
            assert rec[-1] + beta * kl[-1] < rec[0] + beta * kl[0], (split, beta)


def test_vae_reports_its_terms_and_the_scheduled_beta(vae_run):
    _, history = vae_run
    for split in ("train", "test"):
        loss, rec, kl, beta = (
            history[f"{split}_{m}"] for m in ("loss", "reconstruction", "kl", "beta")
        )
        np.testing.assert_allclose(beta, [0.0, 0.25, 0.5, 0.75, 1.0], rtol=0, atol=1e-7)
        np.testing.assert_allclose(loss, rec + beta * kl, rtol=1e-6)
        assert np.all(kl > 0) and np.all(rec > 0)
    # With β = 0 the first epoch's loss is the reconstruction alone.
    assert history["train_loss"][0] == history["train_reconstruction"][0]


def test_evaluate_scores_like_the_last_test_epoch(vae_run):
    state, history = vae_run
    eval_key = jax.random.split(KEY, 3)[2]  # fit's evaluation key, from the documented split
    scores = evaluate(VAE_RAMP, state, X_TEST, eval_key)
    for name in ("loss", "reconstruction", "kl", "beta"):
        np.testing.assert_allclose(scores[name], history[f"test_{name}"][-1], rtol=1e-5)


# --------------------------------------------------------------------------------------
# Determinism and resuming.


def test_same_key_data_and_config_give_identical_runs(ae_run):
    state, history = ae_run
    again, history_again = fit(AE, X, X_TEST, BASE, KEY)
    _assert_same_tree(again, state)
    _assert_same_history(history_again, history)
    # A legacy uint32 key is the same key.
    legacy, _ = fit(AE, X, X_TEST, BASE, jax.random.PRNGKey(0))
    _assert_same_tree(legacy.params, state.params)
    other, _ = fit(AE, X, X_TEST, BASE, jax.random.key(1))
    assert not np.array_equal(
        other.params["encoder"]["dense0"]["kernel"], state.params["encoder"]["dense0"]["kernel"]
    )


def test_resumed_run_ends_where_an_uninterrupted_one_does(vae_run, tmp_path):
    # Interrupted after 3 epochs: calls of 2 and 1 epochs, then one of 2 (uninterrupted: 2, 2,
    # 1); the VAE's sampling and β schedule must continue where they stopped.
    state, history = vae_run
    interrupt_after = 3
    first = dataclasses.replace(BASE, epochs=interrupt_after, checkpoint_dir=str(tmp_path))
    _, partial = fit(VAE_RAMP, X, X_TEST, first, KEY)
    assert partial.num_epochs == interrupt_after
    assert load_checkpoint(tmp_path).epoch == interrupt_after
    # The key comes from the checkpoint; new checkpoints go to the resumed directory.
    resumed, resumed_history = fit(VAE_RAMP, X, X_TEST, BASE, resume=tmp_path)
    _assert_same_tree(resumed, state)
    _assert_same_history(resumed_history, history)
    assert load_checkpoint(tmp_path).epoch == 5


def test_resume_refuses_a_different_key_config_or_data(tmp_path):
    config = dataclasses.replace(BASE, epochs=2, checkpoint_dir=str(tmp_path))
    fit(AE, X, X_TEST, config, KEY)
    with pytest.raises(ValueError, match="with a different key"):
        fit(AE, X, X_TEST, BASE, jax.random.key(1), resume=tmp_path)
    with pytest.raises(ValueError, match="learning_rate: checkpoint has 0.01, this run 0.5"):
        fit(AE, X, X_TEST, dataclasses.replace(BASE, learning_rate=0.5), resume=tmp_path)
    with pytest.raises(ValueError, match="n_train=10, this call has n_train=8"):
        fit(AE, X[:8], X_TEST, BASE, resume=tmp_path)
    with pytest.raises(ValueError, match="written by fit\\(\\)"):
        fit_many(AE, X, X_TEST, BASE, None, resume=tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume from"):
        fit(AE, X, X_TEST, BASE, resume=tmp_path / "empty")


def test_truncated_checkpoint_is_detected_not_resumed(tmp_path):
    config = dataclasses.replace(BASE, epochs=2, checkpoint_dir=str(tmp_path))
    fit(AE, X, X_TEST, config, KEY)
    assert [name for name in os.listdir(tmp_path) if name.endswith(".tmp")] == []
    payload = next(tmp_path.glob("*.msgpack"))
    data = payload.read_bytes()
    payload.write_bytes(data[: len(data) - 7])
    with pytest.raises(CheckpointError, match=rf"{payload.name} is truncated or corrupt"):
        fit(AE, X, X_TEST, BASE, resume=tmp_path)


# --------------------------------------------------------------------------------------
# Failures.


def test_diverging_run_names_the_epoch_and_keeps_the_last_good_checkpoint(tmp_path):
    # Epochs 1-3 are fine, epoch 4 (0-based 3) is not. Checkpoints every 2 epochs: calls of
    # epochs (1, 2) and (3, 4), so the failure sits inside a call, after a good epoch, which
    # is kept: run again alone and checkpointed.
    objective, _ = _tally_objective(blow_up_epoch=3)
    config = dataclasses.replace(
        BASE, epochs=6, epochs_per_call=4, checkpoint_every=2, checkpoint_dir=str(tmp_path)
    )
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at epoch 4, step 9") as info:
        fit(objective, ROWS, None, config, KEY)
    error = info.value
    assert (error.epoch, error.step, error.run) == (4, 9, None)
    assert error.history.num_epochs == 3
    assert Path(error.checkpoint).name == "checkpoint_00000003.json"
    assert latest_checkpoint(tmp_path) == error.checkpoint
    assert str(error.checkpoint) in str(error)
    saved = load_checkpoint(error.checkpoint)
    assert saved.epoch == 3
    assert int(saved.tree["state"]["step"]) == 9
    np.testing.assert_allclose(saved.tree["history"]["train_loss"], [ALL_ROWS] * 3, rtol=1e-6)


def test_data_whose_squares_overflow_is_refused_before_training(tmp_path):
    config = dataclasses.replace(BASE, checkpoint_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"train_x holds values up to .* overflow float32"):
        fit(AE, X * 1e30, X_TEST, config, KEY)
    assert not os.listdir(tmp_path)


def test_a_divergence_in_the_first_epoch_writes_no_checkpoint(tmp_path):
    # Squares that fit float32 (1e20), squared gradients that do not: Adam's state overflows
    # at the first step. Nothing was trained, so there is no "last good checkpoint" to write.
    config = dataclasses.replace(BASE, checkpoint_dir=str(tmp_path))
    with pytest.raises(
        NonFiniteLossError, match=r"state after epoch 1 .*lower the learning rate"
    ) as info:
        fit(AE, X * 1e10, X_TEST, config, KEY)
    assert info.value.checkpoint is None and info.value.epoch == 1
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".json")]


def _nan_at(x: np.ndarray, value: float) -> np.ndarray:
    x = x.copy()
    x[3, 0] = value
    return x


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: fit(AE, X[:, :5], None, BASE, KEY),
            ValueError,
            r"train_x has examples of shape \(5,\), which the model Autoencoder does not take",
        ),
        (
            lambda: fit(AE, X, X_TEST[:, :4], BASE, KEY),
            ValueError,
            r"test_x has examples of shape \(4,\), but train_x has examples of shape \(6,\)",
        ),
        (
            lambda: fit(_conv_autoencoder(), IMAGES[:, :6, :6], None, BASE, KEY),
            ValueError,
            r"train_x has examples of shape \(6, 6, 1\), which the model ConvAutoencoder",
        ),
        (
            lambda: fit(_conv_autoencoder(), IMAGES.reshape(12, 64), None, BASE, KEY),
            ValueError,
            r"train_x has examples of shape \(64,\), which the model ConvAutoencoder",
        ),
    ],
)
def test_data_the_model_does_not_take_is_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"train_x": _nan_at(ROWS, np.nan)}, ValueError, "train_x contains 1 NaN or infinite"),
        ({"test_x": _nan_at(ROWS, np.inf)}, ValueError, "test_x contains 1 NaN or infinite"),
        ({"train_x": np.arange(10.0)}, ValueError, "train_x must have shape .* at least 2"),
        ({"train_x": np.zeros((0, 1))}, ValueError, "train_x must not be empty"),
        ({"train_x": np.full((10, 1), "a")}, TypeError, "train_x must be a numeric array"),
        ({"key": 0}, TypeError, "key must be a jax.random.key .*got int"),
        ({"key": np.zeros(3, np.uint32)}, TypeError, r"key must be a jax.random.key .*\(3,\)"),
        ({"key": jax.random.split(KEY, 2)}, ValueError, r"key must have shape \(\) \(a single"),
        ({"config": {"epochs": 3}}, TypeError, "config must be a TrainConfig, got dict"),
        ({"callbacks": [None]}, TypeError, r"callbacks\[0\] must be callable"),
    ],
)
def test_bad_input_fails_before_anything_is_traced(kwargs, error, match):
    objective, traces = _tally_objective()
    arguments = {"train_x": ROWS, "test_x": None, "config": BASE, "key": KEY, **kwargs}
    callbacks = arguments.pop("callbacks", ())
    with pytest.raises(error, match=match):
        fit(objective, **arguments, callbacks=callbacks)
    assert traces == []


def test_fit_many_wants_one_key_per_run():
    with pytest.raises(ValueError, match=r"keys must have shape \(K,\) \(one key per run\)"):
        fit_many(AE, X, None, BASE, KEY)
    with pytest.raises(TypeError, match="keys is required"):
        fit_many(AE, X, None, BASE, None)
    with pytest.raises(TypeError, match="objective must be a latent_jax.objectives.Objective"):
        fit(AE.model, X, None, BASE, KEY)


@pytest.mark.parametrize(
    ("field", "value", "error", "match"),
    [
        ("batch_size", 0, ValueError, "batch_size must be >= 1, got batch_size=0"),
        ("batch_size", 2.5, TypeError, r"batch_size must be an int, got float \(2.5\)"),
        ("epochs", 0, ValueError, "epochs must be >= 1, got epochs=0"),
        ("learning_rate", float("nan"), ValueError, "learning_rate must be finite"),
        ("learning_rate", 0.0, ValueError, "learning_rate must be > 0"),
        ("optimizer", "rmsprop", ValueError, "optimizer must be one of"),
        ("patience", 0, ValueError, "patience must be >= 1"),
        ("unroll", 0, ValueError, "unroll must be >= 1"),
        ("compiler_options", {1: 2}, TypeError, "compiler_options must be a dict of str keys"),
    ],
)
def test_bad_config_is_rejected_at_construction(field, value, error, match):
    with pytest.raises(error, match=match):
        dataclasses.replace(BASE, **{field: value})


# --------------------------------------------------------------------------------------
# Several runs at once.


def test_fit_many_runs_are_the_single_runs_of_their_keys(ae_run):
    keys = jax.random.split(KEY, 3)
    state, history = fit_many(AE, X, X_TEST, BASE, keys)
    assert history["train_loss"].shape == history["test_reconstruction"].shape == (3, 5)
    assert history["epoch"].shape == history["epoch_time"].shape == (5,)
    assert state.step.shape == (3,)
    kernels = np.asarray(state.params["encoder"]["dense0"]["kernel"])
    assert not np.allclose(kernels[0], kernels[1]) and not np.allclose(kernels[1], kernels[2])
    for k in (0, 2):
        single, single_history = fit(AE, X, X_TEST, BASE, keys[k])
        run = jax.tree.map(lambda leaf, k=k: leaf[k], state.params)
        # Equal up to reassociation in the batched matrix products: training compared across
        # programs (vmapped or not), the round-off of 15 Adam steps' gradients fed back. 1e-4
        # is still far below a learning rate's step (1e-2) that a wrong key or batch gives.
        chex.assert_trees_all_close(run, single.params, rtol=1e-4, atol=1e-6)
        for name in ("train_loss", "test_loss"):
            np.testing.assert_allclose(history[name][k], single_history[name], rtol=1e-4)


def _decay_objective() -> Objective:
    """A scalar ``w`` drawn from the key, loss ``w**2``: plain SGD at rate 0.1 multiplies ``w``
    by 0.8 per step, so a run's losses are ``w0**2 * 0.64**(step)`` whatever the data."""

    def init(key, x):
        return {"params": {"w": jax.random.uniform(key, (), minval=0.1, maxval=4.0)}}

    def loss(params, model_state, batch, key, step, epoch, train):
        value = masked_mean(jnp.full(batch.x.shape[:1], params["w"] ** 2), batch.mask)
        return value, ({"loss": value}, model_state)

    return Objective(init=init, loss=loss, model=None, name="decay")


def test_fit_many_runs_stop_early_on_their_own():
    # One step per epoch; a run stops once an epoch improves its loss by less than 0.05.
    # These keys draw w0 = 3.1 and 0.5: the second run stops after epoch 4, mid-call.
    objective = _decay_objective()
    config = dataclasses.replace(
        BASE,
        learning_rate=0.1,
        optimizer="sgd",
        epochs=12,
        epochs_per_call=5,
        patience=1,
        min_delta=0.05,
    )
    x = np.zeros((4, 3), np.float32)
    keys = jax.random.split(jax.random.key(3), 2)
    state, history = fit_many(objective, x, None, config, keys)
    losses = history["train_loss"]
    np.testing.assert_array_equal(np.asarray(state.epoch), [12, 4])
    assert bool(state.stopped[1])
    assert np.all(np.isnan(losses[1, 4:])) and np.all(np.isfinite(losses[1, :4]))
    for k in range(2):
        done = int(state.epoch[k])
        expected = losses[k, 0] * 0.64 ** np.arange(done)
        np.testing.assert_allclose(losses[k, :done], expected, rtol=1e-5)
        # A stopped run's state is frozen where it stopped: the run fit() makes, by another
        # program (vmapped or not). Training compared across programs: each of the <= 12 SGD
        # steps rounds w twice (24 ops), the loss squares it and takes a mean (50 ops).
        single, single_history = fit(objective, x, None, config, keys[k])
        assert single_history.num_epochs == done
        assert_close(losses[k, :done], single_history["train_loss"], ops=50)
        assert_close(state.params["w"][k], single.params["w"], ops=24)


# --------------------------------------------------------------------------------------
# History, early stopping, callbacks.


def test_history_has_every_metric_for_every_epoch(ae_run):
    state, history = ae_run
    assert set(history) == {
        "epoch",
        "epoch_time",
        "train_loss",
        "train_reconstruction",
        "test_loss",
        "test_reconstruction",
    }
    assert all(values.shape == (5,) for values in history.values())
    assert history.num_epochs == 5 == int(state.epoch)
    np.testing.assert_array_equal(history["epoch"], np.arange(1, 6))
    assert np.all(np.isfinite(history["epoch_time"])) and np.all(history["epoch_time"] >= 0)
    # An autoencoder's loss is its reconstruction error.
    assert_bitwise(history["train_loss"], history["train_reconstruction"])
    assert history.last()["test_loss"] == history["test_loss"][-1]
    _assert_same_history(History.from_dict(history.to_dict()), history)


def test_early_stopping_stops_after_patience_epochs_and_says_so(caplog):
    # No decrease below best - 1000 ever counts: epoch 1 improves on inf, 2 and 3 do not.
    config = dataclasses.replace(BASE, epochs=20, patience=2, min_delta=1e3)
    with caplog.at_level(logging.INFO, logger="latent_jax.train"):
        state, history = fit(AE, X, X_TEST, config, KEY)
    assert history.num_epochs == 3
    assert int(state.epoch) == 3 and int(state.bad_epochs) == 2
    assert bool(state.stopped)
    assert "early stopping after epoch 3" in caplog.text


def test_a_callback_can_stop_training_and_sees_the_history():
    seen = []

    def callback(state, history):
        seen.append((int(state.epoch), history.num_epochs))
        return history.num_epochs >= 3

    _, history = fit(AE, X, X_TEST, dataclasses.replace(BASE, epochs=9), KEY, callbacks=[callback])
    # Calls of 2 epochs: the callback sees each epoch in order after its call (the state is
    # the call's), and its True at epoch 3 stops the run after that call, at 4.
    assert seen == [(2, 1), (2, 2), (4, 3), (4, 4)]
    assert history.num_epochs == 4


# --------------------------------------------------------------------------------------
# Warm starts and the compile cache.


def _drawn_variables(objective: Objective, key: jax.Array, features: tuple[int, ...]) -> dict:
    """The variables fit draws for ``key``: ``objective.init`` with the first of its 3 keys.

    Compiled as the engine compiles its initializer (eager initializers can differ in the
    last bit from compiled ones).
    """

    def draw(key: jax.Array) -> dict:
        return objective.init(jax.random.split(key, 3)[0], jnp.zeros((2, *features), jnp.float32))

    return jax.jit(draw, compiler_options=FAST)(key)


@pytest.mark.numerics
def test_a_warm_start_from_the_drawn_variables_is_the_cold_run(ae_run):
    cold, cold_history = ae_run
    warm, warm_history = fit(
        AE, X, X_TEST, BASE, KEY, init_variables=_drawn_variables(AE, KEY, (6,))
    )
    # Bit for bit, as documented: the drawn variables are the fresh draw's, then the same
    # compiled chunk runs on them.
    assert_trees_bitwise(warm.params, cold.params)
    assert_bitwise(warm_history["test_loss"], cold_history["test_loss"])
    # Continuing from trained variables (a fresh optimizer) starts where the first run ended.
    more, more_history = fit(AE, X, X_TEST, BASE, jax.random.key(7), init_variables=cold.variables)
    assert more_history["test_loss"][0] < cold_history["test_loss"][0]
    assert int(more.step) == int(cold.step)  # the step counts this run's updates


def test_a_warm_start_keeps_batch_norm_statistics():
    objective = vae_objective(_conv_vae())
    first, _ = fit(objective, IMAGES, IMAGES_TEST, CONV, KEY)
    assert first.model_state  # BatchNorm's running statistics
    config = dataclasses.replace(CONV, learning_rate=1e-12, optimizer="sgd")
    again, _ = fit(objective, IMAGES, None, config, KEY, init_variables=first.variables)
    # A negligible step: the parameters barely move, the statistics carry on from the first run.
    chex.assert_trees_all_close(again.params, first.params, atol=1e-6)
    moved = jax.tree.map(
        lambda a, b: float(np.max(np.abs(a - b))), again.model_state, first.model_state
    )
    assert max(jax.tree.leaves(moved)) > 0


@pytest.mark.numerics
def test_fit_many_warm_starts_every_run_from_shared_or_stacked_variables():
    keys = jax.random.split(KEY, 3)
    shared = _drawn_variables(AE, keys[1], (6,))
    state, _ = fit_many(AE, X, X_TEST, BASE, keys, init_variables=shared, spread_runs=False)
    single, _ = fit(AE, X, X_TEST, BASE, keys[0], init_variables=shared)
    run0 = jax.tree.map(lambda leaf: leaf[0], state.params)
    # Training across programs (vmapped or not): the tolerance of the test of fit_many above.
    chex.assert_trees_all_close(run0, single.params, rtol=1e-4, atol=1e-6)
    stacked = jax.tree.map(lambda *v: jnp.stack(v), *[_drawn_variables(AE, k, (6,)) for k in keys])
    warm, _ = fit_many(AE, X, X_TEST, BASE, keys, init_variables=stacked, spread_runs=False)
    cold, _ = fit_many(AE, X, X_TEST, BASE, keys, spread_runs=False)
    assert_trees_bitwise(warm.params, cold.params)  # a warm start from the fresh draws


def test_warm_start_variables_that_do_not_fit_the_model_are_named():
    variables = jax.device_get(_drawn_variables(AE, KEY, (6,)))
    wrong = jax.tree.map(lambda v: v, variables)
    wrong["params"]["encoder"]["dense0"]["kernel"] = np.zeros((5, 4), np.float32)
    with pytest.raises(ValueError, match=r"init_variables\['params'\]\['encoder'\]\['dense0'\]"):
        fit(AE, X, None, BASE, KEY, init_variables=wrong)
    with pytest.raises(ValueError, match="do not have the model's structure"):
        fit(AE, X, None, BASE, KEY, init_variables={"params": {"w": np.zeros(3)}})
    with pytest.raises(TypeError, match="init_variables must be a dict"):
        fit(AE, X, None, BASE, KEY, init_variables=[1, 2])


def test_the_compile_cache_is_explicit_and_owned_by_its_objective():
    objective = autoencoder_objective(Autoencoder(input_dim=6, hidden_dims=(3,), latent_dim=2))
    cache = CompileCache()
    fit(objective, X, X_TEST, BASE, KEY, cache=cache)
    kinds = sorted(key[0] for key, _ in cache.items())
    assert kinds == ["chunk", "init"] and len(cache_for(objective)) == 0
    compiled = dict(cache.items())
    fit(objective, X, X_TEST, BASE, jax.random.key(5), cache=cache)  # nothing new to compile
    assert {k: v for k, v in cache.items()} == compiled
    assert all(cache.items()[i][1] is compiled[k] for i, k in enumerate(compiled))
    # Without cache=, the objective's own: kept on it, not shared with another objective.
    fit(objective, X, X_TEST, BASE, KEY)
    assert len(cache_for(objective)) == 2 and cache_for(objective) is cache_for(objective)
    twin = autoencoder_objective(Autoencoder(input_dim=6, hidden_dims=(3,), latent_dim=2))
    assert len(cache_for(twin)) == 0
    with pytest.raises(TypeError, match="cache must be a CompileCache"):
        fit(AE, X, None, BASE, KEY, cache={})


# --------------------------------------------------------------------------------------
# Optimizers and learning-rate schedules from optax.


def _sgd_decay_run(config: TrainConfig) -> tuple[float, float, TrainState]:
    """Plain SGD on ``w**2`` multiplies ``w`` by ``1 - 2 lr(t)`` at step t: the final ``w`` is
    ``w0 * prod_t (1 - 2 lr(t))``, a closed form to hold any schedule against."""
    objective = _decay_objective()
    w0 = float(_drawn_variables(objective, KEY, (6,))["params"]["w"])
    state, _ = fit(objective, X, None, config, KEY)
    return w0, float(state.params["w"]), state


@pytest.mark.parametrize("schedule", ["cosine", "warmup-cosine", "exponential", "callable"])
def test_a_learning_rate_schedule_sets_every_steps_rate(schedule):
    # 10 rows in batches of 4: 3 steps an epoch, 15 in the run.
    base = dataclasses.replace(BASE, optimizer="sgd", learning_rate=0.2)
    if schedule == "callable":
        custom = optax.piecewise_constant_schedule(0.2, {6: 0.1})
        config, rates = (
            dataclasses.replace(base, lr_schedule=custom),
            [custom(t) for t in range(15)],
        )
    else:
        config = dataclasses.replace(base, lr_schedule=schedule, warmup_steps=3)
        expected = {
            "cosine": optax.cosine_decay_schedule(0.2, 15),
            "warmup-cosine": optax.warmup_cosine_decay_schedule(0.0, 0.2, 3, 15),
            "exponential": optax.exponential_decay(0.2, 15, 0.01),
        }[schedule]
        rates = [expected(t) for t in range(15)]
    w0, w, _ = _sgd_decay_run(config)
    np.testing.assert_allclose(w, w0 * np.prod([1 - 2 * float(r) for r in rates]), rtol=1e-5)
    constant_w0, constant_w, _ = _sgd_decay_run(base)
    assert not np.isclose(w / w0, constant_w / constant_w0)


def test_any_optax_optimizer_factory_or_transformation_and_clipping():
    lion = dataclasses.replace(BASE, optimizer=optax.lion, learning_rate=1e-3)
    state, history = fit(AE, X, X_TEST, lion, KEY)
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert isinstance(state.opt_state[0], optax.ScaleByLionState)
    ready = dataclasses.replace(BASE, optimizer=optax.sgd(0.1))
    w0, w, _ = _sgd_decay_run(ready)
    np.testing.assert_allclose(w, w0 * 0.8**15, rtol=1e-5)
    # Clipping by global norm: |grad| = 2|w| > 0.1, so each step moves w by 0.1 * lr exactly.
    clipped = dataclasses.replace(BASE, optimizer="sgd", learning_rate=0.1, clip_norm=0.1)
    w0, w, _ = _sgd_decay_run(clipped)
    np.testing.assert_allclose(abs(w), abs(w0) - 15 * 0.01, rtol=1e-5)


def test_config_round_trips_through_its_dict_and_describes_callables():
    config = dataclasses.replace(BASE, lr_schedule="warmup-cosine", clip_norm=1.0, warmup_steps=2)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    lion = dataclasses.replace(BASE, optimizer=optax.lion)
    assert lion.to_dict()["optimizer"] == "optax.lion"
    assert TrainConfig.from_dict(lion.to_dict()) == lion
    custom = dataclasses.replace(BASE, lr_schedule=lambda count: 0.1)
    with pytest.raises(ValueError, match="cannot be rebuilt from a config file"):
        TrainConfig.from_dict(custom.to_dict())
    with pytest.raises(ValueError, match=r"unknown TrainConfig fields \['learning_rte'\]"):
        TrainConfig.from_dict({"learning_rte": 0.1})


def test_resuming_checks_the_optimizer_and_the_schedules_span(tmp_path):
    config = dataclasses.replace(BASE, checkpoint_dir=str(tmp_path), lr_schedule="cosine")
    fit(AE, X, None, config, KEY)
    for change, match in (
        ({"optimizer": optax.lion}, "optimizer: checkpoint has 'adam', this run 'optax.lion'"),
        ({"clip_norm": 1.0}, "clip_norm"),
        ({"epochs": 8}, "spans the run's epochs"),
    ):
        with pytest.raises(ValueError, match=match):
            fit(AE, X, None, dataclasses.replace(config, **change), resume=str(tmp_path))


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("lr_schedule", "linear", "lr_schedule must be one of"),
        ("lr_final_fraction", 0.0, "lr_final_fraction must be in"),
        ("clip_norm", 0.0, "clip_norm must be > 0"),
        ("warmup_steps", -1, "warmup_steps must be >= 0"),
    ],
)
def test_bad_schedule_settings_are_named(field, value, match):
    extra = {"lr_schedule": "exponential"} if field == "lr_final_fraction" else {}
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{field: value, **extra})
