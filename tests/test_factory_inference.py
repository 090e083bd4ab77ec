"""The one model factory (model for data of a shape) and the one inference-mode apply."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numerics import assert_close

from latent_jax.models import ConvAutoencoder, ConvVAE
from latent_jax.models.factory import CONV_MIN_SIZE, model_for_data, resolve_architecture
from latent_jax.models.inference import apply_inference, inference_kwargs, predict
from latent_jax.models.mlp import VAE, Autoencoder


def test_the_size_rule_picks_conv_only_for_large_images():
    assert resolve_architecture((64,)) == "mlp"
    assert resolve_architecture((25, 25, 1)) == "mlp"
    assert resolve_architecture((CONV_MIN_SIZE, CONV_MIN_SIZE, 1)) == "conv"
    assert resolve_architecture((CONV_MIN_SIZE, CONV_MIN_SIZE - 1, 3)) == "mlp"
    assert resolve_architecture((8, 8, 1), "conv") == "conv"
    with pytest.raises(ValueError, match="architecture='conv' needs images"):
        resolve_architecture((64,), "conv")
    with pytest.raises(ValueError, match="architecture must be one of"):
        resolve_architecture((64,), "resnet")


def test_factory_builds_each_family_with_the_given_settings():
    mlp = model_for_data((8, 8, 1), kind="vae", latent_dim=3, hidden_dims=(16,))
    assert mlp.architecture == "mlp" and mlp.model == VAE(
        input_dim=64, hidden_dims=(16,), latent_dim=3
    )
    x = np.zeros((5, 8, 8, 1), np.float32)
    assert mlp.inputs(x).shape == (5, 64) and mlp.outputs(mlp.inputs(x)).shape == x.shape
    ae = model_for_data((40, 36, 1), latent_dim=4, channels=(4, 8), conv_options={"pool": 2})
    assert ae.model == ConvAutoencoder(image_shape=(40, 36, 1), channels=(4, 8), latent_dim=4)
    assert ae.inputs(x) is x
    vae = model_for_data((40, 36, 1), kind="vae", latent_dim=2, conv_options={"hidden_dim": 7})
    assert vae.model == ConvVAE(image_shape=(40, 36, 1), hidden_dim=7, latent_dim=2)
    plain = model_for_data((12,), latent_dim=2)
    assert plain.model == Autoencoder(input_dim=12, latent_dim=2)
    with pytest.raises(ValueError, match="kind must be one of"):
        model_for_data((12,), kind="gan", latent_dim=2)
    with pytest.raises(ValueError, match="latent_dim must be >= 1"):
        model_for_data((12,), latent_dim=0)


class _Noisy(nn.Module):
    """Batch statistics and dropout, switched by ``deterministic``."""

    @nn.compact
    def __call__(self, x, *, deterministic: bool = False):
        x = nn.BatchNorm(use_running_average=deterministic)(x)
        return nn.Dropout(0.5, deterministic=deterministic)(x)


@pytest.mark.numerics
def test_inference_mode_uses_running_statistics_and_no_dropout():
    model = _Noisy()
    x = jnp.arange(12.0).reshape(4, 3)
    variables = model.init({"params": jax.random.key(0)}, x, deterministic=True)
    assert inference_kwargs(model) == {"deterministic": True}
    out = apply_inference(model, variables, x)
    # Fresh running statistics: mean 0, variance 1, so BatchNorm is ~identity; no dropout.
    np.testing.assert_allclose(out, x / np.sqrt(1 + 1e-5), rtol=1e-5)
    # predict's compiled blocks against the op-by-op apply: BatchNorm's var + eps, rsqrt,
    # subtraction, two multiplications and addition.
    assert_close(predict(model, variables, x, batch_size=3), out, ops=6)


@pytest.mark.numerics
def test_predict_matches_apply_for_every_method_and_block_size():
    model = Autoencoder(input_dim=6, hidden_dims=(5,), latent_dim=2)
    x = jax.random.normal(jax.random.key(1), (7, 6))
    variables = model.init(jax.random.key(2), x)
    full = model.apply(variables, x)
    # Compiled programs (whole, in blocks) against the op-by-op apply: ops = the layers'
    # fan-ins, 6 + 5 + 2 + 5 for the autoencoder, 6 + 5 for the encoder.
    assert_close(predict(model, variables, x), full, ops=18)
    assert_close(predict(model, variables, x, batch_size=3), full, ops=18)
    codes = predict(model, variables, x, method="encode", batch_size=4)
    assert_close(codes, model.apply(variables, x, method="encode"), ops=11)
    with pytest.raises(TypeError, match="has no sample"):
        apply_inference(model, variables, x, method="sample")
