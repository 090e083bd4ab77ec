"""The training set's size N reaches an objective's context (estimators such as the
minibatch-weighted total correlation need it), through every trainer and evaluate."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latent_jax.models.mlp import Autoencoder
from latent_jax.objectives import (
    Objective,
    autoencoder_objective,
    bind_dataset_size,
    context_loss,
    masked_mean,
    per_example_mse,
)
from latent_jax.train import TrainConfig, evaluate, fit, fit_many, fit_stream

MODEL = Autoencoder(input_dim=3, hidden_dims=(4,), latent_dim=2)
CONFIG = TrainConfig(epochs=2, batch_size=8, quiet=True, log_every=0)


def _sized_objective() -> Objective:
    """The autoencoder's loss, reporting the N its context carries (-1 for none)."""
    plain = autoencoder_objective(MODEL)

    @context_loss
    def loss(params, model_state, batch, key, context):
        output = MODEL.apply({"params": params}, batch.x)
        value = masked_mean(per_example_mse(output, batch.x), batch.mask)
        n = -1 if context.n_train is None else context.n_train
        return value, ({"loss": value, "n_train": jnp.float32(n)}, dict(model_state))

    return Objective(init=plain.init, loss=loss, model=MODEL, name="sized")


def _rows(n: int) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 3)).astype(np.float32)


def test_fit_and_fit_many_bind_the_number_of_training_rows():
    objective = _sized_objective()
    _, history = fit(objective, _rows(37), _rows(5), CONFIG, jax.random.key(0))
    assert list(history["train_n_train"]) == [37.0, 37.0]
    assert list(history["test_n_train"]) == [37.0, 37.0]  # the test rows are scored against N
    keys = jax.random.split(jax.random.key(1), 2)
    _, many = fit_many(objective, _rows(21), None, CONFIG, keys)
    assert np.all(np.asarray(many["train_n_train"]) == 21.0)


def test_fit_stream_binds_the_source_size():
    _, history = fit_stream(_sized_objective(), _rows(19), None, CONFIG, jax.random.key(0))
    assert list(history["train_n_train"]) == [19.0, 19.0]


def test_evaluate_binds_n_only_when_given():
    objective = _sized_objective()
    state, _ = fit(objective, _rows(16), None, CONFIG, jax.random.key(0))
    assert evaluate(objective, state, _rows(6), jax.random.key(2))["n_train"] == -1.0
    assert evaluate(objective, state, _rows(6), jax.random.key(2), n_train=16)["n_train"] == 16.0


def test_binding_keeps_the_objective_and_reuses_the_bound_loss():
    objective = _sized_objective()
    bound = bind_dataset_size(objective, 10)
    assert bound.loss is bind_dataset_size(objective, 10).loss  # found again: one compile
    assert bound.loss is not bind_dataset_size(objective, 11).loss
    assert (bound.init, bound.model, bound.name) == (objective.init, objective.model, "sized")
    # a loss of the engine's seven-argument signature, written by hand, is kept as it is
    plain = objective._replace(loss=lambda *args: objective.loss(*args))
    assert bind_dataset_size(plain, 10) is plain
    with pytest.raises(ValueError, match="n_train"):
        bind_dataset_size(objective, 0)


def test_a_context_loss_has_the_engines_signature():
    import inspect

    loss = _sized_objective().loss
    names = list(inspect.signature(loss).parameters)
    assert names == ["params", "model_state", "batch", "key", "step", "epoch", "train"]
    assert list(inspect.signature(loss.with_dataset_size(3)).parameters) == names
