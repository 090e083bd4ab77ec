"""Generative adversarial networks: a DCGAN for images and an MLP GAN for feature vectors.

Both models hold a ``generator`` and a ``discriminator`` as submodules, so their parameters
(and BatchNorm statistics) are two groups, ``{"generator": ..., "discriminator": ...}``, which
:func:`latent_jax.adversarial.gan_objective` trains with one optimizer each. Both expose

* ``generate(z, train=False, mask=None)``: latent codes of shape (batch, latent_dim) to
  samples of the data's shape;
* ``discriminate(x, train=False, mask=None)``: samples to logits of shape (batch,), high for
  samples the discriminator takes for real;
* ``decode`` (the same as ``generate``), so :mod:`latent_jax.generate`'s prior samples and
  latent traversals of a code ``z`` work on a generator as on a VAE's decoder;
* ``__call__(z, x, train=False)`` -> ``(generate(z), discriminate(x))``, which initializes
  both halves.

``mask`` (bool, (batch,)) keeps the padding rows of a ragged batch out of BatchNorm's batch
statistics (:class:`latent_jax.models.layers.BatchNorm`).

:class:`DCGAN` follows Radford, Metz & Chintala (2016), "Unsupervised Representation Learning
with Deep Convolutional Generative Adversarial Networks": no pooling (strided convolutions in
the discriminator, strided transposed convolutions in the generator), BatchNorm in both
(except the generator's output and the discriminator's input layer), ReLU in the generator,
LeakyReLU(0.2) in the discriminator, and weights drawn from N(0, 0.02). The paper's generator
ends in tanh for images in [-1, 1]; this one ends in a sigmoid, for images in [0, 1] (the
loaders' ``normalization="none"``), the same function up to the affine map between the ranges
(``linear_output=True`` leaves the output unbounded, for standardized images). The paper's
64x64 networks have four stride-2 layers; these have two, sized for the small images here
(8x8 digits, 28x28 MNIST): the generator starts from a ``ceil(H/4) x ceil(W/4)`` map and crops
to the image's size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp
from jax import Array

from latent_jax import validation
from latent_jax.models.layers import BatchNorm, ConvTranspose, Crop, FastConv, Reshape
from latent_jax.models.registry import register_model

__all__ = ["DCGAN", "MLPGAN", "DCGANDiscriminator", "DCGANGenerator"]

# DCGAN's initialization: every weight from N(0, 0.02).
_INIT = nn.initializers.normal(0.02)
_LEAKY_SLOPE = 0.2
_BN_MOMENTUM = 0.9
_BN_EPSILON = 1e-5


def _check_shape(image_shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(image_shape)
    if len(shape) != 3 or not all(isinstance(d, int) and d >= 1 for d in shape):
        raise ValueError(f"image_shape must be (height, width, channels) ints >= 1, got {shape}")
    if min(shape[:2]) < 4:
        raise ValueError(f"image_shape must be at least 4x4 for two stride-2 layers, got {shape}")
    return shape


def _batch_norm(name: str) -> BatchNorm:
    return BatchNorm(momentum=_BN_MOMENTUM, epsilon=_BN_EPSILON, name=name)


class DCGANGenerator(nn.Module):
    """``z`` -> Dense -> (h0, w0, 4f) -> BN, ReLU -> ConvT(2f, 4, 2, 1) -> BN, ReLU ->
    ConvT(channels, 4, 2, 1) -> crop -> sigmoid.

    Attributes:
        image_shape: (height, width, channels) of the samples.
        features: the base width f (the paper's ``ngf`` is 64).
        linear_output: leave the output unbounded instead of a sigmoid in (0, 1).
    """

    image_shape: tuple[int, int, int]
    features: int = 32
    linear_output: bool = False

    @nn.compact
    def __call__(self, z: Array, *, train: bool = False, mask: Array | None = None) -> Array:
        """Maps (batch, latent_dim) to (batch, *image_shape)."""
        height, width, channels = _check_shape(self.image_shape)
        start = (-(-height // 4), -(-width // 4), 4 * self.features)
        x = nn.Dense(math.prod(start), use_bias=False, kernel_init=_INIT, name="dense")(z)
        x = Reshape(start)(x)
        x = nn.relu(_batch_norm("bn0")(x, use_running_average=not train, mask=mask))
        x = ConvTranspose(2 * self.features, 4, 2, 1, use_bias=False, kernel_init=_INIT)(x)
        x = nn.relu(_batch_norm("bn1")(x, use_running_average=not train, mask=mask))
        x = ConvTranspose(channels, 4, 2, 1, kernel_init=_INIT, name="convt_out")(x)
        x = Crop(height, width)(x)
        return x if self.linear_output else nn.sigmoid(x)


class DCGANDiscriminator(nn.Module):
    """``x`` -> Conv(f, 4, 2, 1), LeakyReLU(0.2) -> Conv(2f, 4, 2, 1), BN, LeakyReLU(0.2) ->
    flatten -> Dense(1): one logit per image.

    Attributes:
        features: the base width f (the paper's ``ndf`` is 64).
    """

    features: int = 32

    @nn.compact
    def __call__(self, x: Array, *, train: bool = False, mask: Array | None = None) -> Array:
        """Maps (batch, H, W, C) to logits of shape (batch,)."""
        conv = {"kernel_size": (4, 4), "strides": 2, "padding": ((1, 1), (1, 1))}
        conv |= {"kernel_init": _INIT, "conv_general_dilated_cls": FastConv}
        x = nn.Conv(self.features, name="conv0", **conv)(x)
        x = nn.leaky_relu(x, _LEAKY_SLOPE)
        x = nn.Conv(2 * self.features, use_bias=False, name="conv1", **conv)(x)
        x = _batch_norm("bn1")(x, use_running_average=not train, mask=mask)
        x = nn.leaky_relu(x, _LEAKY_SLOPE)
        x = x.reshape(x.shape[0], -1)
        return nn.Dense(1, kernel_init=_INIT, name="logit")(x)[:, 0]


class _GAN(nn.Module):
    """The shared surface of the GANs: ``generate``, ``discriminate``, ``decode``."""

    def generate(self, z: Array, *, train: bool = False, mask: Array | None = None) -> Array:
        """Samples for latent codes ``z`` of shape (batch, latent_dim)."""
        z = jnp.asarray(z)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (batch, {self.latent_dim}), got {z.shape}")
        return self.generator(z, train=train, mask=mask)

    def decode(self, z: Array, *, train: bool = False, mask: Array | None = None) -> Array:
        """The same as :meth:`generate` (the name :mod:`latent_jax.generate` calls)."""
        return self.generate(z, train=train, mask=mask)

    def discriminate(self, x: Array, *, train: bool = False, mask: Array | None = None) -> Array:
        """The discriminator's logits, shape (batch,), for samples ``x``."""
        x = jnp.asarray(x)
        if tuple(x.shape[1:]) != self.sample_shape:
            raise ValueError(
                f"x must have shape (batch, {', '.join(map(str, self.sample_shape))}), got "
                f"{x.shape}"
            )
        return self.discriminator(x, train=train, mask=mask)

    def __call__(self, z: Array, x: Array, *, train: bool = False) -> tuple[Array, Array]:
        """``(generate(z), discriminate(x))``: runs (and so initializes) both halves."""
        return self.generate(z, train=train), self.discriminate(x, train=train)


@register_model
class DCGAN(_GAN):
    """A DCGAN for images of ``image_shape`` (see the module docstring).

    Attributes:
        image_shape: (height, width, channels), at least 4x4 (default MNIST's 28x28x1).
        latent_dim: the size of the generator's input z, drawn from N(0, I).
        features: the base width of both networks (the paper's 64; 32 by default, for CPUs).
        linear_output: an unbounded generator output instead of a sigmoid.
    """

    image_shape: tuple[int, int, int] = (28, 28, 1)
    latent_dim: int = 32
    features: int = 32
    linear_output: bool = False

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """The shape of one sample."""
        return tuple(self.image_shape)

    def setup(self) -> None:
        _check_shape(self.image_shape)
        validation.check_int("latent_dim", self.latent_dim, 1)
        validation.check_int("features", self.features, 1)
        self.generator = DCGANGenerator(tuple(self.image_shape), self.features, self.linear_output)
        self.discriminator = DCGANDiscriminator(self.features)


class _MLPGenerator(nn.Module):
    hidden_dims: Sequence[int]
    data_dim: int

    @nn.compact
    def __call__(self, z: Array, *, train: bool = False, mask: Array | None = None) -> Array:
        del train, mask
        for i, width in enumerate(self.hidden_dims):
            z = nn.relu(nn.Dense(width, name=f"dense{i}")(z))
        return nn.Dense(self.data_dim, name="out")(z)


class _MLPDiscriminator(nn.Module):
    hidden_dims: Sequence[int]

    @nn.compact
    def __call__(self, x: Array, *, train: bool = False, mask: Array | None = None) -> Array:
        del train, mask
        for i, width in enumerate(self.hidden_dims):
            x = nn.leaky_relu(nn.Dense(width, name=f"dense{i}")(x), _LEAKY_SLOPE)
        return nn.Dense(1, name="logit")(x)[:, 0]


@register_model
class MLPGAN(_GAN):
    """A GAN of two MLPs for feature vectors (e.g. a 2-D mixture of Gaussians).

    Generator: Dense layers of ``hidden_dims`` with ReLU, then a linear layer to
    ``data_dim``; discriminator: Dense layers of ``hidden_dims`` with LeakyReLU(0.2), then one
    linear logit. No BatchNorm, so the model has no state besides its parameters.

    Attributes:
        data_dim: features per example (default 2, the plane of the usual toy mixtures).
        latent_dim: the size of z, drawn from N(0, I).
        hidden_dims: the widths of the hidden layers of both networks.
    """

    data_dim: int = 2
    latent_dim: int = 2
    hidden_dims: Sequence[int] = (128, 128)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """The shape of one sample."""
        return (self.data_dim,)

    def setup(self) -> None:
        validation.check_int("data_dim", self.data_dim, 1)
        validation.check_int("latent_dim", self.latent_dim, 1)
        dims = tuple(self.hidden_dims)
        if not all(isinstance(d, int) and d >= 1 for d in dims):
            raise ValueError(f"hidden_dims must be ints >= 1, got {self.hidden_dims!r}")
        self.generator = _MLPGenerator(dims, self.data_dim)
        self.discriminator = _MLPDiscriminator(dims)
