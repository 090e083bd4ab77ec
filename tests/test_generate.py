"""Sampling, reconstruction, interpolation and traversal with tiny linen models."""

import functools
import math

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from numerics import NORMAL_OPS, assert_bitwise, assert_close

from latent_jax import generate
from latent_jax.models.conv import ConvVAE
from latent_jax.models.mlp import VAE

IMAGE_SHAPE = (4, 5, 1)
LATENT_DIM = 3

# Rounded operations (tests/numerics.py, rule 2) of the tiny models below; a transcendental
# function counts 4 (XLA's approximations are within a few ulp).
ENCODER_OPS = 21  # Dense(20 -> 6): 20 products and the bias
DECODER_OPS = 4  # Dense(3 -> 20): 3 products and the bias
# slerp: a norm (4), the norms' product, the cosine's division, arccos, the angle's product,
# sin, the weighted sum (2) and the division by sin(omega).
SLERP_OPS = 20


class TinyVAE(nn.Module):
    """Dense encoder to (mean, logvar), affine decoder: decoded paths are affine in the code."""

    latent_dim: int = LATENT_DIM
    image_shape: tuple[int, ...] = IMAGE_SHAPE

    def setup(self):
        self.encoder = nn.Dense(2 * self.latent_dim)
        self.decoder = nn.Dense(math.prod(self.image_shape))

    def encode(self, x):
        h = self.encoder(x.reshape(x.shape[0], -1))
        return h[:, : self.latent_dim], h[:, self.latent_dim :]

    def decode(self, z):
        return self.decoder(z).reshape(z.shape[0], *self.image_shape)

    def __call__(self, x):
        return self.decode(self.encode(x)[0])


class TinyAutoencoder(nn.Module):
    """A plain autoencoder: encode returns the code itself."""

    def setup(self):
        self.encoder = nn.Dense(LATENT_DIM)
        self.decoder = nn.Dense(math.prod(IMAGE_SHAPE))

    def encode(self, x):
        return jnp.tanh(self.encoder(x.reshape(x.shape[0], -1)))

    def decode(self, z):
        return self.decoder(z).reshape(z.shape[0], *IMAGE_SHAPE)

    def __call__(self, x):
        return self.decode(self.encode(x))


class BatchNormVAE(nn.Module):
    """Needs train=False at inference: its batch statistics are not mutable there."""

    def setup(self):
        self.encoder = nn.Dense(2 * LATENT_DIM)
        self.norm = nn.BatchNorm(momentum=0.9)
        self.decoder = nn.Dense(math.prod(IMAGE_SHAPE))
        self.decoder_norm = nn.BatchNorm(momentum=0.9)

    def encode(self, x, train: bool = True):
        h = self.norm(self.encoder(x.reshape(x.shape[0], -1)), use_running_average=not train)
        return h[:, :LATENT_DIM], h[:, LATENT_DIM:]

    def decode(self, z, train: bool = True):
        h = self.decoder_norm(self.decoder(z), use_running_average=not train)
        return h.reshape(z.shape[0], *IMAGE_SHAPE)

    def __call__(self, x, train: bool = True):
        return self.decode(self.encode(x, train)[0], train)


@pytest.fixture(scope="module")
def images():
    return jax.random.normal(jax.random.key(1), (6, *IMAGE_SHAPE))


@pytest.fixture(scope="module")
def vae(images):
    model = TinyVAE()
    return model, jax.jit(model.init)(jax.random.key(0), images)


def _decode(model, variables, z, **kwargs):
    return model.apply(variables, z, method=model.decode, **kwargs)


def _means(model, variables, x, **kwargs):
    return model.apply(variables, x, method=model.encode, **kwargs)[0]


def test_sample_prior_decodes_standard_normal_draws(vae):
    model, variables = vae
    key = jax.random.key(7)
    samples = generate.sample_prior(key, model, variables, 10, LATENT_DIM)
    assert samples.shape == (10, *IMAGE_SHAPE)
    chex.assert_tree_all_finite(samples)
    z = jax.random.normal(key, (10, LATENT_DIM))
    # The draw and the decoder compiled as one-off programs against op-by-op dispatch.
    assert_close(samples, _decode(model, variables, z), ops=NORMAL_OPS + DECODER_OPS)
    assert_bitwise(samples, generate.sample_prior(key, model, variables, 10, LATENT_DIM))
    other = generate.sample_prior(jax.random.key(8), model, variables, 10, LATENT_DIM)
    assert not np.allclose(samples, other)


@pytest.mark.numerics
def test_sample_prior_under_jit_matches(vae):
    model, variables = vae
    jitted = jax.jit(generate.sample_prior, static_argnums=(1, 3, 4))
    key = jax.random.key(3)
    assert_close(
        jitted(key, model, variables, 4, LATENT_DIM),
        generate.sample_prior(key, model, variables, 4, LATENT_DIM),
        ops=NORMAL_OPS + DECODER_OPS,
    )


def test_reconstruct_decodes_the_posterior_mean(vae, images):
    model, variables = vae
    out = generate.reconstruct(model, variables, images)
    assert out.shape == images.shape
    expected = _decode(model, variables, _means(model, variables, images))
    assert_close(out, expected, ops=ENCODER_OPS + DECODER_OPS)


@pytest.mark.parametrize("method", ["linear", "slerp"])
def test_interpolation_endpoints_decode_the_two_means(vae, images, method):
    model, variables = vae
    path = generate.interpolate(model, variables, images[0], images[1], steps=10, method=method)
    assert path.shape == (10, *IMAGE_SHAPE)
    chex.assert_tree_all_finite(path)
    ends = _decode(model, variables, _means(model, variables, images[:2]))
    # The ends are the means exactly: only the encoder and the decoder's programs differ.
    assert_close(path[0], ends[0], ops=ENCODER_OPS + DECODER_OPS)
    assert_close(path[-1], ends[1], ops=ENCODER_OPS + DECODER_OPS)


def test_linear_interpolation_of_an_affine_decoder_is_affine(vae, images):
    model, variables = vae
    path = generate.interpolate(model, variables, images[2], images[3], steps=7)
    t = np.linspace(0.0, 1.0, 7)[:, None, None, None]
    np.testing.assert_allclose(path, (1 - t) * path[0] + t * path[-1], rtol=1e-4, atol=1e-5)
    curved = generate.interpolate(model, variables, images[2], images[3], steps=7, method="slerp")
    assert not np.allclose(curved[3], path[3], atol=1e-4)


def test_interpolation_under_jit_matches(vae, images):
    model, variables = vae
    jitted = jax.jit(generate.interpolate, static_argnums=(0, 4, 5))
    assert_close(
        jitted(model, variables, images[0], images[1], 5, "slerp"),
        generate.interpolate(model, variables, images[0], images[1], 5, "slerp"),
        ops=ENCODER_OPS + SLERP_OPS + DECODER_OPS,
    )


unit_vectors = st.lists(st.floats(-10, 10), min_size=4, max_size=4).filter(
    lambda v: np.linalg.norm(v) > 1e-2
)


@settings(deadline=None, max_examples=30)
@given(unit_vectors, unit_vectors)
@example(a=[0.0, 0.0, 1.0, 0.0], b=[0.0, 0.0, -1.0, 0.0])  # antipodal: the lerp fallback
def test_slerp_moves_along_the_great_circle(a, b):
    z0 = np.asarray(a) / np.linalg.norm(a)
    z1 = np.asarray(b) / np.linalg.norm(b)
    t = np.linspace(0.0, 1.0, 9)
    path = np.asarray(generate.slerp(jnp.asarray(z0), jnp.asarray(z1), jnp.asarray(t)))
    assert path.shape == (9, 4)
    np.testing.assert_allclose(path[0], z0, atol=1e-6)
    np.testing.assert_allclose(path[-1], z1, atol=1e-6)
    cosine = float(np.clip(z0 @ z1, -1, 1))
    if abs(cosine) >= generate._PARALLEL_COSINE:
        # (Anti-)parallel codes: the documented fallback to the straight line.
        np.testing.assert_allclose(path, np.asarray(generate.lerp(z0, z1, t)), atol=1e-5)
        return
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), 1.0, atol=1e-4)
    omega = np.arccos(cosine)
    if 1e-2 < omega < np.pi - 1e-2:  # constant angular speed, away from the fallback
        angles = np.arccos(np.clip(path @ z0, -1, 1))
        np.testing.assert_allclose(angles, t * omega, atol=2e-3)


def test_slerp_closed_form_and_parallel_fallback():
    e0, e1 = jnp.eye(2)
    # ops: arccos, sin, the sum and the division by sin(omega) (10); the reference's 2.
    assert_close(generate.slerp(e0, e1, 0.5), jnp.array([1, 1]) / jnp.sqrt(2), ops=12)
    z = jnp.array([0.3, -1.2, 2.0])
    for other in (z, 2.0 * z, z + 1e-7, -z, jnp.zeros(3)):
        t = jnp.linspace(0, 1, 5)
        out = generate.slerp(z, other, t)
        chex.assert_tree_all_finite(out)
        np.testing.assert_allclose(out, generate.lerp(z, other, t), rtol=1e-5, atol=1e-6)
    gradient = jax.grad(lambda v: generate.slerp(v, z, 0.3).sum())(z)
    chex.assert_tree_all_finite(gradient)


def test_traversal_sets_one_coordinate_per_row(vae):
    model, variables = vae
    base = jnp.array([0.5, -0.25, 1.0])
    values = jnp.linspace(-3, 3, 4)
    grid = generate.latent_traversal(model, variables, base, values=values, dims=[2, 0])
    assert grid.shape == (2, 4, *IMAGE_SHAPE)
    for i, dim in enumerate([2, 0]):
        codes = jnp.tile(base, (4, 1)).at[:, dim].set(values)
        assert_close(grid[i], _decode(model, variables, codes), ops=DECODER_OPS)


@pytest.mark.numerics
def test_traversal_defaults_and_image_base(vae, images):
    model, variables = vae
    grid = generate.latent_traversal(model, variables, jnp.zeros(LATENT_DIM))
    assert grid.shape == (LATENT_DIM, 10, *IMAGE_SHAPE)
    codes = jnp.zeros((10, LATENT_DIM)).at[:, 1].set(jnp.linspace(-3, 3, 10))
    assert_close(grid[1], _decode(model, variables, codes), ops=DECODER_OPS)
    from_image = generate.latent_traversal(model, variables, x=images[0])
    from_mean = generate.latent_traversal(model, variables, _means(model, variables, images[:1])[0])
    assert_close(from_image, from_mean, ops=ENCODER_OPS + DECODER_OPS)


@pytest.mark.numerics
def test_plain_autoencoder_code_is_used_directly(images):
    model = TinyAutoencoder()
    variables = jax.jit(model.init)(jax.random.key(2), images)
    out = generate.reconstruct(model, variables, images)
    ops = ENCODER_OPS + 4 + DECODER_OPS  # the code's tanh counts 4
    assert_close(out, model.apply(variables, images), ops=ops)
    path = generate.interpolate(model, variables, images[0], images[1], steps=3)
    assert_close(path[-1], out[1], ops=ops)  # programs for 2 and 3 rows against one for 6


def test_batchnorm_models_run_in_inference_mode(images):
    model = BatchNormVAE()
    variables = jax.jit(model.init)(jax.random.key(4), images)
    train_step = jax.jit(functools.partial(model.apply, mutable=["batch_stats"]))
    _, updates = train_step(variables, images * 3.0 + 1.0)
    variables = {**variables, **updates}  # running statistics away from their initial values
    out = generate.reconstruct(model, variables, images)
    expected = jax.jit(functools.partial(model.apply, train=False))(variables, images)
    # ops: each BatchNorm normalizes in ~6 (the shift, rsqrt(var + eps), two products).
    assert_close(out, expected, ops=ENCODER_OPS + 6 + DECODER_OPS + 6)
    samples = generate.sample_prior(jax.random.key(0), model, variables, 3, LATENT_DIM)
    assert samples.shape == (3, *IMAGE_SHAPE)
    with pytest.raises(Exception, match="batch_stats"):  # training mode needs mutable stats
        generate.reconstruct(model, variables, images, apply_kwargs={"train": True})


def test_argument_errors(vae, images):
    model, variables = vae
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="n must be >= 1, got n=0"):
        generate.sample_prior(key, model, variables, 0, LATENT_DIM)
    with pytest.raises(TypeError, match=r"latent_dim must be an int, got float \(1.5\)"):
        generate.sample_prior(key, model, variables, 2, 1.5)
    with pytest.raises(ValueError, match="steps must be at least 2"):
        generate.interpolate(model, variables, images[0], images[1], steps=1)
    with pytest.raises(ValueError, match="method must be one of"):
        generate.interpolate(model, variables, images[0], images[1], method="cubic")
    with pytest.raises(ValueError, match="x_start and x_end must have one shape"):
        generate.interpolate(model, variables, images[0], images[1, :2])
    with pytest.raises(ValueError, match="exactly one of z"):
        generate.latent_traversal(model, variables)
    with pytest.raises(ValueError, match="dims must be"):
        generate.latent_traversal(model, variables, jnp.zeros(LATENT_DIM), dims=[3])
    with pytest.raises(ValueError, match=r"z must have shape \(latent_dim,\)"):
        generate.latent_traversal(model, variables, jnp.zeros((2, LATENT_DIM)))
    with pytest.raises(TypeError, match="has no decode"):
        generate.sample_prior(key, nn.Dense(3), {}, 2, 3)


def test_library_vae_runs_through_every_function():
    model = VAE(input_dim=6, hidden_dims=(4,), latent_dim=2)
    x = jnp.linspace(-1.0, 1.0, 12).reshape(2, 6)
    variables = jax.jit(model.init)(jax.random.key(6), x, jax.random.key(7))
    mean, _ = model.apply(variables, x, method=model.encode)
    decoded = model.apply(variables, mean, method=model.decode)
    # ops: Dense(6 -> 4) 7, LeakyReLU 1, Dense(4 -> 2) 5; Dense(2 -> 4) 3, 1, Dense(4 -> 6) 5.
    assert_close(generate.reconstruct(model, variables, x), decoded, ops=22)
    path = generate.interpolate(model, variables, x[0], x[1], 2)
    assert_close(path, decoded, ops=22)
    grid = generate.latent_traversal(model, variables, mean[0], values=[0.0, 1.0])
    assert grid.shape == (2, 2, 6)


def test_library_conv_vae_traces_in_inference_mode():
    # eval_shape traces without compiling; tracing fails if BatchNorm is left in training mode
    model = ConvVAE(image_shape=(8, 8, 1), hidden_dim=8, latent_dim=2)
    key = jax.random.key(0)
    x = jax.ShapeDtypeStruct((4, 8, 8, 1), jnp.float32)
    variables = jax.eval_shape(model.init, key, x, key)
    assert "batch_stats" in variables
    shapes = jax.eval_shape(
        lambda v, x: (
            generate.sample_prior(key, model, v, 10, 2),
            generate.reconstruct(model, v, x),
            generate.interpolate(model, v, x[0], x[1], 10, "slerp"),
            generate.latent_traversal(model, v, x=x[0], values=jnp.linspace(-3, 3, 5)),
        ),
        variables,
        x,
    )
    assert [s.shape for s in shapes] == [
        (10, 8, 8, 1),
        (4, 8, 8, 1),
        (10, 8, 8, 1),
        (2, 5, 8, 8, 1),
    ]
