"""The per-backend choice between latent_jax's convolution gradients and JAX's stock ones: the
same values and gradients either way, and the CPU's numbers unchanged by the selection."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numerics import assert_bitwise

from latent_jax.models import implementations, layers
from latent_jax.models.conv import ConvVAE
from latent_jax.objectives import vae_objective
from latent_jax.schedules import constant
from latent_jax.train import TrainConfig, fit

# Compiled training: benchmarks/gpu_suite.py runs these on the device (pytest -m device).
pytestmark = pytest.mark.device

IMAGES = np.random.default_rng(0).uniform(size=(32, 16, 16, 1)).astype(np.float32)


# One objective for every variant: its compiled programs are cached by a key that includes
# the selection, so a changed selection must compile anew (and an unchanged one need not).
OBJECTIVE = vae_objective(ConvVAE(image_shape=(16, 16, 1), latent_dim=4), constant(1.0))


def _train_vae():
    objective = OBJECTIVE
    config = TrainConfig(epochs=1, batch_size=16, quiet=True)
    state, history = fit(objective, IMAGES, None, config, jax.random.key(0))
    return state.params, np.asarray(history["train_loss"])


def test_the_cpu_runs_latent_jaxs_own_gradients():
    assert implementations.stock_components("cpu") == frozenset()
    assert set(implementations.STOCK) >= {"cpu", "gpu"}
    assert all(s <= set(implementations.COMPONENTS) for s in implementations.STOCK.values())


def test_the_selection_leaves_the_cpus_numbers_unchanged(monkeypatch):
    monkeypatch.delenv(implementations.ENV_VARIABLE, raising=False)
    default_params, default_losses = _train_vae()
    monkeypatch.setenv(implementations.ENV_VARIABLE, "none")
    params, losses = _train_vae()
    assert_bitwise(losses, default_losses)
    jax.tree.map(assert_bitwise, params, default_params)
    # JAX's stock gradients train the same model to round-off, by a program of their own.
    monkeypatch.setenv(implementations.ENV_VARIABLE, "all")
    stock_params, stock_losses = _train_vae()
    np.testing.assert_allclose(stock_losses, default_losses, rtol=1e-4)
    leaves = zip(jax.tree.leaves(stock_params), jax.tree.leaves(default_params), strict=True)
    assert any(not np.array_equal(a, b) for a, b in leaves)  # not the cached program


@pytest.mark.parametrize(
    ("stride", "padding", "output_padding"),
    [
        (2, 1, 1),
        pytest.param(2, 0, 0, marks=pytest.mark.slow),
        pytest.param(3, 2, 1, marks=pytest.mark.slow),
    ],
)
def test_stock_transposed_convolution_equals_latent_jaxs(
    monkeypatch, stride, padding, output_padding
):
    x = jax.random.normal(jax.random.key(0), (3, 7, 5, 4))
    kernel = jax.random.normal(jax.random.key(1), (3, 3, 4, 6))

    def run():
        def loss(x, kernel):
            return jnp.sum(
                jnp.sin(layers.conv_transpose(x, kernel, stride, padding, output_padding))
            )

        out = layers.conv_transpose(x, kernel, stride, padding, output_padding)
        return out, jax.grad(loss, (0, 1))(x, kernel)

    monkeypatch.setenv(implementations.ENV_VARIABLE, "none")
    own, own_grads = run()
    monkeypatch.setenv(implementations.ENV_VARIABLE, "conv_transpose")
    stock, stock_grads = run()
    np.testing.assert_allclose(stock, own, atol=1e-5)
    for got, want in zip(stock_grads, own_grads, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_an_unknown_component_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(implementations.ENV_VARIABLE, "conv_gradient,batchnorm")
    with pytest.raises(ValueError, match=r"LATENT_JAX_STOCK_KERNELS .*unknown: \['batchnorm'\]"):
        implementations.stock_components()
