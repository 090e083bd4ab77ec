"""Mixed precision: ``TrainConfig(compute_dtype="bfloat16")`` runs the models in bfloat16 and
keeps parameters, optimizer state, losses and KL terms in float32; float32 is unchanged."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latent_jax import precision
from latent_jax.gaussian import reparameterize
from latent_jax.models.conv import ConvVAE
from latent_jax.models.mlp import VAE, Autoencoder
from latent_jax.objectives import autoencoder_objective, vae_objective
from latent_jax.objectives.base import Batch
from latent_jax.schedules import constant
from latent_jax.train import TrainConfig, fit

# Compiled training: benchmarks/gpu_suite.py runs these on the device (pytest -m device).
pytestmark = pytest.mark.device

RNG = np.random.default_rng(0)
# Rank-4 data in 12 features: something an autoencoder learns within a few epochs.
X = RNG.normal(size=(256, 4)) @ RNG.normal(size=(4, 12)) + 0.1 * RNG.normal(size=(256, 12))
X = X.astype(np.float32)
IMAGES = RNG.uniform(size=(32, 16, 16, 1)).astype(np.float32)


def _train(objective, x, dtype, epochs=8):
    config = TrainConfig(epochs=epochs, batch_size=32, quiet=True, compute_dtype=dtype)
    return fit(objective, x, x[:64], config, jax.random.key(0))


def _dtypes(tree):
    return {str(leaf.dtype) for leaf in jax.tree.leaves(tree)}


def test_compute_dtype_is_checked_and_round_trips():
    with pytest.raises(
        ValueError,
        match=r"compute_dtype must be one of \('float32', 'bfloat16'\), got "
        r"compute_dtype='float16'",
    ):
        TrainConfig(compute_dtype="float16")
    config = TrainConfig(compute_dtype="bfloat16")
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert TrainConfig().compute_dtype == "float32"


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("mlp-autoencoder", marks=pytest.mark.slow),
        "mlp-vae",
        pytest.param("conv-vae", marks=pytest.mark.slow),
    ],
)
def test_bfloat16_losses_follow_float32_and_state_stays_float32(kind):
    if kind == "mlp-autoencoder":
        objective = autoencoder_objective(
            Autoencoder(input_dim=12, hidden_dims=(32,), latent_dim=4)
        )
        x = X
    elif kind == "mlp-vae":
        model = VAE(input_dim=12, hidden_dims=(32,), latent_dim=4)
        objective = vae_objective(model, constant(1.0))
        x = X
    else:
        model = ConvVAE(image_shape=(16, 16, 1), latent_dim=4)
        objective = vae_objective(model, constant(1.0), likelihood="bernoulli")
        x = IMAGES
    _, history32 = _train(objective, x, "float32")
    state16, history16 = _train(objective, x, "bfloat16")
    # Parameters and Adam's moments are float32 in both runs.
    assert _dtypes(state16.params) == {"float32"}
    assert _dtypes(state16.opt_state) <= {"float32", "int32"}
    loss32 = np.asarray(history32["train_loss"])
    loss16 = np.asarray(history16["train_loss"])
    assert np.all(np.isfinite(loss16))
    # bfloat16 keeps 8 bits of mantissa (relative rounding 2**-9 per operation): after 8
    # epochs the curves agree to a few percent, and both fall.
    np.testing.assert_allclose(loss16, loss32, rtol=0.05)
    np.testing.assert_allclose(history16["test_loss"], history32["test_loss"], rtol=0.05)
    assert loss16[-1] < loss16[0]


def _loss_jaxpr(objective, x, dtype):
    variables = objective.init(jax.random.key(0), x[:8])
    params = variables.pop("params")
    batch = Batch(x=jnp.asarray(x[:8]), mask=jnp.ones(8))

    def loss(p):
        return objective.loss(p, variables, batch, jax.random.key(1), 0, 0, True)[0]

    with precision.scope(dtype):
        return jax.make_jaxpr(loss)(params), jax.eval_shape(loss, params)


def test_the_models_matmuls_run_in_bfloat16_and_the_loss_in_float32():
    model = VAE(input_dim=12, hidden_dims=(32,), latent_dim=4)
    objective = vae_objective(model, constant(1.0))
    jaxpr16, loss16 = _loss_jaxpr(objective, X, "bfloat16")
    jaxpr32, loss32 = _loss_jaxpr(objective, X, "float32")
    text16, text32 = str(jaxpr16), str(jaxpr32)
    # Every matmul of the bfloat16 program takes bfloat16 operands; none in float32's.
    matmuls16 = [line for line in text16.splitlines() if "dot_general" in line]
    assert matmuls16 and all("bf16" in line for line in matmuls16)
    assert "bf16" not in text32
    assert loss16.dtype == loss32.dtype == jnp.float32


def test_reparameterize_draws_in_the_dtype_of_its_inputs():
    key = jax.random.key(0)
    mean = jnp.zeros((3, 2), jnp.bfloat16)
    assert reparameterize(key, mean, mean).dtype == jnp.bfloat16
    assert reparameterize(key, np.zeros((3, 2), np.float32), 0.0).dtype == jnp.float32
    assert reparameterize(key, np.zeros((3, 2), np.int32), 0).dtype == jnp.float32


def test_cast_floating_leaves_keys_and_integers_alone():
    tree = {"w": jnp.ones(2), "n": jnp.arange(2), "key": jax.random.key(0), "name": "x"}
    cast = precision.cast_floating(tree, jnp.bfloat16)
    assert cast["w"].dtype == jnp.bfloat16
    assert cast["n"].dtype == tree["n"].dtype
    assert cast["key"] is tree["key"] and cast["name"] == "x"
    assert precision.compute_dtype() is None
    with precision.scope("bfloat16"):
        assert precision.compute_dtype() == jnp.bfloat16
    assert precision.compute_dtype() is None
