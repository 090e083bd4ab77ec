"""The convolutional MNIST VAE of pythae's benchmark (Chadebec et al. 2022), in flax linen.

pythae compares its 26 models on the same networks; for 28×28 images they are
(``pythae.models.nn.benchmarks.mnist.convnets``, ``Encoder_Conv_VAE_MNIST`` and
``Decoder_Conv_AE_MNIST``):

* encoder: four convolutions with 4×4 kernels, stride 2 and padding 1 (128, 256, 512 and 1024
  channels: 28 → 14 → 7 → 3 → 1 pixels), each followed by BatchNorm and ReLU; the 1024 values
  go through two linear heads to the posterior mean and log-variance;
* decoder: a linear layer to 1024 × 4 × 4, then transposed convolutions with 3×3 kernels,
  stride 2 and padding 1 (4 → 7 → 14 → 28 pixels; the last two with PyTorch's
  ``output_padding=1``) to 512, 256 and the image's channels, the first two followed by
  BatchNorm and ReLU.

One difference: pythae ends the decoder with a sigmoid; here its output is linear, and the
objective's likelihood reads it (``likelihood="bernoulli"`` as logits, whose sigmoid is
pythae's output; ``"sse"`` or ``"gaussian"`` as the mean), as for the library's other VAEs.
The widths are fields, pythae's by default (17,232,033 parameters at latent size 16, as
pythae's), so tests and CPUs can run narrower copies of the same layout.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp
from jax import Array

from latent_jax import validation
from latent_jax.gaussian import reparameterize
from latent_jax.models.layers import BatchNorm, ConvTranspose, FastConv
from latent_jax.models.registry import register_model

__all__ = ["PythaeMNISTVAE"]

IMAGE_SIZE = 28
_BN_MOMENTUM = 0.9  # PyTorch's BatchNorm2d(momentum=0.1), as the running statistics decay
_BN_EPSILON = 1e-5


@register_model(
    name="pythae-mnist-vae",
    kind="vae",
    architecture="conv",
    help="the convolutional VAE of pythae's MNIST benchmark (28x28 images)",
)
class PythaeMNISTVAE(nn.Module):
    """pythae's benchmark VAE for 28×28 images (see the module docstring).

    Attributes:
        channels: the image's channels (1 for MNIST).
        latent_dim: dimension of the latent space (pythae's benchmark: 16).
        encoder_features: channels of the four encoder convolutions.
        decoder_features: channels of the decoder's two hidden transposed convolutions.
    """

    channels: int = 1
    latent_dim: int = 16
    encoder_features: Sequence[int] = (128, 256, 512, 1024)
    decoder_features: Sequence[int] = (512, 256)

    def __post_init__(self) -> None:
        self.channels = validation.check_int("channels", self.channels, 1)
        self.latent_dim = validation.check_int("latent_dim", self.latent_dim, 1)
        self.encoder_features = _widths("encoder_features", self.encoder_features, 4)
        self.decoder_features = _widths("decoder_features", self.decoder_features, 2)
        super().__post_init__()

    @classmethod
    def for_data(
        cls, feature_shape: Sequence[int], *, latent_dim: int, **unused: object
    ) -> PythaeMNISTVAE:
        """The VAE for images of ``feature_shape``, which must be (28, 28, channels) (the
        registry's builder; options of other architectures are ignored)."""
        shape = tuple(int(d) for d in feature_shape)
        if len(shape) != 3 or shape[:2] != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(
                f"pythae's MNIST networks take {IMAGE_SIZE}x{IMAGE_SIZE} images (height, width, "
                f"channels), got examples of shape {shape}"
            )
        return cls(channels=shape[2], latent_dim=latent_dim)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(28, 28, channels)."""
        return (IMAGE_SIZE, IMAGE_SIZE, self.channels)

    def setup(self) -> None:
        def norm() -> BatchNorm:
            return BatchNorm(momentum=_BN_MOMENTUM, epsilon=_BN_EPSILON)

        padding = ((1, 1), (1, 1))
        self.convs = [
            nn.Conv(f, (4, 4), strides=2, padding=padding, conv_general_dilated_cls=FastConv)
            for f in self.encoder_features
        ]
        self.encoder_norms = [norm() for _ in self.encoder_features]
        self.mean_layer = nn.Dense(self.latent_dim)
        self.logvar_layer = nn.Dense(self.latent_dim)
        self.dense = nn.Dense(self.encoder_features[-1] * 4 * 4)
        # 4 -> 7 -> 14 pixels: PyTorch's output_padding 0, then 1.
        self.convts = [
            ConvTranspose(f, 3, 2, 1, output_padding=extra)
            for f, extra in zip(self.decoder_features, (0, 1), strict=True)
        ]
        self.decoder_norms = [norm() for _ in self.decoder_features]
        self.output_conv = ConvTranspose(self.channels, 3, 2, 1, output_padding=1)

    def encode(
        self, x: Array, *, train: bool = False, mask: Array | None = None
    ) -> tuple[Array, Array]:
        """Posterior ``(mean, logvar)``, each (batch, latent_dim).

        Args:
            x: array of shape (batch, 28, 28, channels).
            train: BatchNorm uses batch statistics (and updates ``batch_stats``) if True.
            mask: bool array of shape (batch,), True for the rows that enter BatchNorm's
                batch statistics; None: all rows.
        """
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(
                f"x must have shape (batch, {', '.join(map(str, self.image_shape))}), got "
                f"{tuple(x.shape)}"
            )
        for conv, norm in zip(self.convs, self.encoder_norms, strict=True):
            x = nn.relu(norm(conv(x), use_running_average=not train, mask=mask))
        h = jnp.reshape(x, (x.shape[0], -1))
        return self.mean_layer(h), self.logvar_layer(h)

    def decode(self, z: Array, *, train: bool = False, mask: Array | None = None) -> Array:
        """Decoder output (linear) of shape (batch, 28, 28, channels) for latents
        (batch, latent_dim); ``train`` and ``mask`` as for :meth:`encode`."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (batch, {self.latent_dim}), got {tuple(z.shape)}")
        x = jnp.reshape(self.dense(z), (z.shape[0], 4, 4, self.encoder_features[-1]))
        for convt, norm in zip(self.convts, self.decoder_norms, strict=True):
            x = nn.relu(norm(convt(x), use_running_average=not train, mask=mask))
        return self.output_conv(x)

    def __call__(
        self, x: Array, key: Array, *, train: bool = False, mask: Array | None = None
    ) -> tuple[Array, Array, Array]:
        """Encodes, draws ``z = mean + exp(logvar / 2) * eps`` with ``key``, decodes.

        Returns:
            ``(reconstruction, mean, logvar)`` of shapes (batch, 28, 28, channels),
            (batch, latent_dim), (batch, latent_dim).
        """
        mean, logvar = self.encode(x, train=train, mask=mask)
        z = reparameterize(key, mean, logvar)
        return self.decode(z, train=train, mask=mask), mean, logvar


def _widths(name: str, value: Sequence[int], count: int) -> tuple[int, ...]:
    widths = tuple(validation.check_int(name, v, 1) for v in value)
    if len(widths) != count:
        raise ValueError(f"{name} must hold {count} widths, got {widths}")
    return widths
