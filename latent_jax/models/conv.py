"""Convolutional autoencoder (pool / unpool) and convolutional VAE, channels last.

:class:`ConvVAE` with no arguments is the tutorial's face VAE for 112x92 grayscale images:

=====================================  =========================================
encoder                                decoder
=====================================  =========================================
Conv(1->32, 3, s1, p1), LeakyReLU,     Dense(10->100), LeakyReLU,
BatchNorm(32)                          Dense(100->41216), Reshape(28, 23, 64)
Conv(32->64, 3, s2, p1), LeakyReLU     ConvT(64->64, 3, s1, p1), LeakyReLU
Conv(64->64, 3, s2, p1), LeakyReLU     ConvT(64->64, 3, s2, p1), LeakyReLU
Conv(64->64, 3, s1, p1)                ConvT(64->32, 3, s2, p0), BatchNorm(32),
                                       LeakyReLU
Flatten, Dense(41216->100)             ConvT(32->1, 3, s1, p0), Trim (Crop)
mean, logvar: Dense(100->10) each
=====================================  =========================================

LeakyReLU slopes are 0.01. The spatial sizes run 112x92 -> 56x46 -> 28x23 in the encoder and
28x23 -> 55x45 -> 111x91 -> 113x93 -> 112x92 in the decoder; the model has 8,473,045
trainable parameters, as the PyTorch original. The flattened size (41216 = 28 * 23 * 64) is
computed from ``image_shape``, and the decoder's output is cropped to the image, so the same
configuration trains on other sizes (8x8, 25x25, 28x28, 64x64, ...).

Differences from PyTorch worth knowing: inputs are (batch, height, width, channels), so the
flatten order (and hence the meaning of the big Dense kernels' rows) differs; initialization is
flax's default (LeCun normal, zero bias); BatchNorm uses PyTorch's defaults (momentum 0.1, i.e.
flax ``momentum=0.9``, epsilon 1e-5) but tracks the biased batch variance. Models with
BatchNorm take ``train`` (keyword): ``train=True`` normalizes with batch statistics and needs
``mutable=["batch_stats"]`` in ``apply``; ``train=False`` uses the running statistics. The
ConvVAE also takes ``mask`` (bool, shape (batch,)): only those rows enter the batch statistics,
so the padding rows of a ragged or device-padded batch change nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import flax.linen as nn
import jax.numpy as jnp
from jax import Array

from latent_jax import validation
from latent_jax._deprecation import deprecated_names
from latent_jax.gaussian import reparameterize
from latent_jax.models.layers import (
    BatchNorm,
    ConvTranspose,
    Crop,
    FastConv,
    Reshape,
    conv_output_size,
    conv_transpose_output_size,
    max_pool_with_argmax,
    max_unpool,
)
from latent_jax.models.registry import register_model, register_value_type

# PyTorch's BatchNorm2d defaults: running = 0.9 * running + 0.1 * batch, eps = 1e-5.
_BN_MOMENTUM = 0.9
_BN_EPSILON = 1e-5


@register_value_type
class ConvSpec(NamedTuple):
    """One (transposed) convolution with PyTorch-style symmetric padding.

    Attributes:
        features: output channels.
        kernel_size: square kernel size.
        stride: stride along both spatial axes.
        padding: PyTorch ``padding`` along both spatial axes.
        batch_norm: whether a BatchNorm follows (after the activation in the encoder, before
            it in the decoder, as in the tutorial).
    """

    features: int
    kernel_size: int = 3
    stride: int = 1
    padding: int = 0
    batch_norm: bool = False


TUTORIAL_ENCODER_CONVS: tuple[ConvSpec, ...] = (
    ConvSpec(32, 3, 1, 1, batch_norm=True),
    ConvSpec(64, 3, 2, 1),
    ConvSpec(64, 3, 2, 1),
    ConvSpec(64, 3, 1, 1),
)
TUTORIAL_DECODER_CONVS: tuple[ConvSpec, ...] = (
    ConvSpec(64, 3, 1, 1),
    ConvSpec(64, 3, 2, 1),
    ConvSpec(32, 3, 2, 0, batch_norm=True),
)
TUTORIAL_IMAGE_SHAPE: tuple[int, int, int] = (112, 92, 1)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_positive_ints(name: str, value: object, length: int | None = None) -> tuple[int, ...]:
    try:
        values = tuple(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be a tuple of ints, got {value!r}") from None
    if (length is not None and len(values) != length) or not all(
        _is_int(v) and v >= 1 for v in values
    ):
        size = f"{length} " if length is not None else ""
        raise ValueError(f"{name} must be a tuple of {size}ints >= 1, got {name}={value!r}")
    return values


def _as_specs(name: str, specs: Sequence[object], allow_empty: bool) -> tuple[ConvSpec, ...]:
    try:
        out = tuple(ConvSpec(*spec) for spec in specs)  # type: ignore[misc]
    except TypeError:
        raise TypeError(
            f"{name} must be a sequence of ConvSpec(features, kernel_size, stride, padding, "
            f"batch_norm), got {specs!r}"
        ) from None
    if not out and not allow_empty:
        raise ValueError(f"{name} must hold at least one convolution, got {specs!r}")
    for i, spec in enumerate(out):
        ok = (
            all(_is_int(v) for v in spec[:4])
            and min(spec.features, spec.kernel_size, spec.stride) >= 1
            and spec.padding >= 0
        )
        if not ok:
            raise ValueError(
                f"{name}[{i}] must have features, kernel_size, stride >= 1 and padding >= 0 "
                f"(ints), got {spec!r}"
            )
    return out


def _check_output_conv(output_conv: object) -> tuple[int, int, int]:
    try:
        values = tuple(output_conv)  # type: ignore[arg-type]
    except TypeError:
        values = ()
    if (
        len(values) != 3
        or not all(_is_int(v) for v in values)
        or min(values[:2]) < 1
        or values[2] < 0
    ):
        raise ValueError(
            f"output_conv must be (kernel_size >= 1, stride >= 1, padding >= 0), "
            f"got output_conv={output_conv!r}"
        )
    return values  # type: ignore[return-value]


def _check_images(x: Array, image_shape: Sequence[int]) -> Array:
    """``x`` as a real (batch, *image_shape) array; values unchecked (it may be traced)."""
    x = jnp.asarray(validation.check_array("x", x, finite=False, allow_empty=True, dtype="numeric"))
    expected = tuple(image_shape)
    if x.ndim != 4 or x.shape[1:] != expected:
        raise ValueError(
            f"x must have shape (batch, {', '.join(map(str, expected))}) (channels last), "
            f"got shape {x.shape}"
        )
    return x


def _check_latents(z: Array, latent_dim: int) -> Array:
    """``z`` as a real (batch, latent_dim) array; values unchecked (it may be traced)."""
    z = jnp.asarray(validation.check_array("z", z, finite=False, allow_empty=True, dtype="numeric"))
    if z.ndim != 2 or z.shape[1] != latent_dim:
        raise ValueError(f"z must have shape (batch, {latent_dim}), got shape {z.shape}")
    return z


class _VAEPlan(NamedTuple):
    feature_shape: tuple[int, int, int]  # the encoder's last feature map (h, w, channels)
    decoder_size: tuple[int, int]  # the decoder's (height, width) before cropping


def _plan_conv_vae(
    image_shape: tuple[int, ...],
    encoder_convs: tuple[ConvSpec, ...],
    decoder_convs: tuple[ConvSpec, ...],
    output_conv: tuple[int, ...],
) -> _VAEPlan:
    """Spatial sizes through the encoder and decoder, or a ValueError naming the problem."""
    height, width = image_shape[:2]
    h, w = height, width
    for i, spec in enumerate(encoder_convs):
        try:
            h = conv_output_size(h, spec.kernel_size, spec.stride, spec.padding)
            w = conv_output_size(w, spec.kernel_size, spec.stride, spec.padding)
        except ValueError as err:
            raise ValueError(
                f"image_shape={image_shape} is too small for encoder_convs[{i}]={spec}: {err}"
            ) from None
    feature_shape = (h, w, encoder_convs[-1].features)
    kernel, stride, padding = output_conv
    layers = [(s.kernel_size, s.stride, s.padding) for s in decoder_convs]
    for i, (k, s, p) in enumerate([*layers, (kernel, stride, padding)]):
        try:
            h = conv_transpose_output_size(h, k, s, p)
            w = conv_transpose_output_size(w, k, s, p)
        except ValueError as err:
            where = f"decoder_convs[{i}]" if i < len(layers) else "output_conv"
            raise ValueError(f"{where} gives an empty feature map: {err}") from None
    if h < height or w < width:
        raise ValueError(
            f"the decoder's output is {h}x{w}, smaller than image_shape={image_shape}; "
            f"it must be at least {height}x{width} so it can be cropped to the image "
            f"(change decoder_convs or output_conv)"
        )
    return _VAEPlan(feature_shape, (h, w))


class ConvEncoder(nn.Module):
    """Convolutions, flatten and a Dense layer: the tutorial's VAE encoder trunk.

    Every convolution but the last is followed by LeakyReLU, then BatchNorm where its spec
    asks; the Dense output is linear (the VAE's heads follow it).

    Attributes:
        convs: the convolutions.
        hidden_dim: width of the Dense layer after flattening.
        negative_slope: LeakyReLU slope.
    """

    convs: Sequence[ConvSpec]
    hidden_dim: int
    negative_slope: float = 0.01

    @nn.compact
    def __call__(self, x: Array, *, train: bool = False, mask: Array | None = None) -> Array:
        """Maps (batch, H, W, C) to (batch, hidden_dim); ``mask`` as for :class:`ConvVAE`."""
        for i, spec in enumerate(self.convs):
            p = spec.padding
            x = nn.Conv(
                spec.features,
                (spec.kernel_size, spec.kernel_size),
                strides=spec.stride,
                padding=((p, p), (p, p)),
                conv_general_dilated_cls=FastConv,
                name=f"conv{i}",
            )(x)
            if i < len(self.convs) - 1:
                x = nn.leaky_relu(x, self.negative_slope)
            if spec.batch_norm:
                x = BatchNorm(momentum=_BN_MOMENTUM, epsilon=_BN_EPSILON, name=f"bn{i}")(
                    x, use_running_average=not train, mask=mask
                )
        x = x.reshape(x.shape[0], -1)
        return nn.Dense(self.hidden_dim, name="dense")(x)


class ConvDecoder(nn.Module):
    """Dense layers, reshape, transposed convolutions and a crop: the tutorial's VAE decoder.

    ``Dense(hidden_dim)``, LeakyReLU, ``Dense(prod(feature_shape))``, reshape to
    ``feature_shape``; every transposed convolution of ``convs`` is followed by BatchNorm
    (where its spec asks) and LeakyReLU; a last, linear transposed convolution maps to the
    image's channels, and the result is cropped to the image's height and width.

    Attributes:
        convs: the hidden transposed convolutions.
        output_conv: (kernel_size, stride, padding) of the last transposed convolution.
        feature_shape: (h, w, channels) of the first feature map.
        image_shape: (height, width, channels) of the output.
        hidden_dim: width of the first Dense layer.
        negative_slope: LeakyReLU slope.
    """

    convs: Sequence[ConvSpec]
    output_conv: tuple[int, int, int]
    feature_shape: tuple[int, int, int]
    image_shape: tuple[int, int, int]
    hidden_dim: int
    negative_slope: float = 0.01

    @nn.compact
    def __call__(self, z: Array, *, train: bool = False, mask: Array | None = None) -> Array:
        """Maps (batch, latent_dim) to (batch, *image_shape); ``mask`` as for :class:`ConvVAE`."""
        x = nn.Dense(self.hidden_dim, name="dense0")(z)
        x = nn.leaky_relu(x, self.negative_slope)
        x = nn.Dense(math.prod(self.feature_shape), name="dense1")(x)
        x = Reshape(tuple(self.feature_shape))(x)
        for i, spec in enumerate(self.convs):
            x = ConvTranspose(
                spec.features, spec.kernel_size, spec.stride, spec.padding, name=f"convt{i}"
            )(x)
            if spec.batch_norm:
                x = BatchNorm(momentum=_BN_MOMENTUM, epsilon=_BN_EPSILON, name=f"bn{i}")(
                    x, use_running_average=not train, mask=mask
                )
            x = nn.leaky_relu(x, self.negative_slope)
        kernel, stride, padding = self.output_conv
        x = ConvTranspose(self.image_shape[-1], kernel, stride, padding, name="convt_out")(x)
        return Crop(self.image_shape[0], self.image_shape[1])(x)


@register_model(
    name="conv-vae", kind="vae", architecture="conv", help="convolutional VAE (the tutorial's)"
)
class ConvVAE(nn.Module):
    """Convolutional VAE; the defaults are the tutorial's face VAE (see the module docstring).

    Attributes:
        image_shape: (height, width, channels) of the images, channels last.
        hidden_dim: width of the Dense layers around the latent space.
        latent_dim: dimension of the latent space.
        encoder_convs: the encoder's convolutions (:class:`ConvSpec` or plain tuples).
        decoder_convs: the decoder's hidden transposed convolutions.
        output_conv: (kernel_size, stride, padding) of the decoder's last transposed
            convolution, whose channels are the image's.
        negative_slope: LeakyReLU slope.

    Raises:
        ValueError: at construction, if the image is too small for the encoder or the
            decoder's output would be smaller than the image.
    """

    image_shape: tuple[int, int, int] = TUTORIAL_IMAGE_SHAPE
    hidden_dim: int = 100
    latent_dim: int = 10
    encoder_convs: Sequence[ConvSpec] = TUTORIAL_ENCODER_CONVS
    decoder_convs: Sequence[ConvSpec] = TUTORIAL_DECODER_CONVS
    output_conv: tuple[int, int, int] = (3, 1, 0)
    negative_slope: float = 0.01

    def __post_init__(self) -> None:
        # Normalize to tuples (hashable, so the model can be a static jit argument) and fail
        # here, at construction, rather than deep inside the first trace.
        self.image_shape = _check_positive_ints("image_shape", self.image_shape, 3)
        validation.check_int("hidden_dim", self.hidden_dim, 1)
        validation.check_int("latent_dim", self.latent_dim, 1)
        self.encoder_convs = _as_specs("encoder_convs", self.encoder_convs, allow_empty=False)
        self.decoder_convs = _as_specs("decoder_convs", self.decoder_convs, allow_empty=True)
        self.output_conv = _check_output_conv(self.output_conv)
        self._plan()
        super().__post_init__()

    def _plan(self) -> _VAEPlan:
        return _plan_conv_vae(
            self.image_shape, self.encoder_convs, self.decoder_convs, self.output_conv
        )

    @property
    def feature_shape(self) -> tuple[int, int, int]:
        """(h, w, channels) of the encoder's last feature map, (28, 23, 64) for the tutorial's."""
        return self._plan().feature_shape

    @classmethod
    def for_data(
        cls,
        feature_shape: Sequence[int],
        *,
        latent_dim: int,
        conv_options: dict | None = None,
        **unused: object,
    ) -> ConvVAE:
        """The VAE for images of ``feature_shape`` (height, width, channels), with
        ``conv_options`` as further fields (the registry's builder; options of other
        architectures are ignored)."""
        return cls(image_shape=tuple(feature_shape), latent_dim=latent_dim, **(conv_options or {}))

    def setup(self) -> None:
        self.encoder = ConvEncoder(self.encoder_convs, self.hidden_dim, self.negative_slope)
        self.mean_layer = nn.Dense(self.latent_dim)
        self.logvar_layer = nn.Dense(self.latent_dim)
        self.decoder = ConvDecoder(
            self.decoder_convs,
            self.output_conv,
            self.feature_shape,
            self.image_shape,
            self.hidden_dim,
            self.negative_slope,
        )

    def encode(
        self, x: Array, *, train: bool = False, mask: Array | None = None
    ) -> tuple[Array, Array]:
        """Posterior ``(mean, logvar)``, each (batch, latent_dim), of images x.

        Args:
            x: array of shape (batch, *image_shape).
            train: BatchNorm uses batch statistics (and updates ``batch_stats``) if True.
            mask: bool array of shape (batch,), True for the rows that enter BatchNorm's
                batch statistics (the padding of a ragged batch does not); None: all rows.
        """
        h = self.encoder(_check_images(x, self.image_shape), train=train, mask=mask)
        return self.mean_layer(h), self.logvar_layer(h)

    def decode(self, z: Array, *, train: bool = False, mask: Array | None = None) -> Array:
        """Images of shape (batch, *image_shape) from latents of shape (batch, latent_dim).

        ``train`` and ``mask`` are as for :meth:`encode`.
        """
        return self.decoder(_check_latents(z, self.latent_dim), train=train, mask=mask)

    def __call__(
        self, x: Array, key: Array, *, train: bool = False, mask: Array | None = None
    ) -> tuple[Array, Array, Array]:
        """Encodes, draws ``z = mean + exp(logvar / 2) * eps`` with ``key``, decodes.

        Args:
            x: array of shape (batch, *image_shape).
            key: ``jax.random`` key of the reparameterization draw.
            train: BatchNorm mode (see :meth:`encode`).
            mask: the rows of BatchNorm's batch statistics (see :meth:`encode`).

        Returns:
            ``(reconstruction, mean, logvar)`` of shapes (batch, *image_shape),
            (batch, latent_dim), (batch, latent_dim).
        """
        mean, logvar = self.encode(x, train=train, mask=mask)
        z = reparameterize(key, mean, logvar)
        return self.decode(z, train=train, mask=mask), mean, logvar


@register_model(
    name="conv-ae",
    kind="autoencoder",
    architecture="conv",
    help="convolutional autoencoder with max-pool switches",
)
class ConvAutoencoder(nn.Module):
    """Convolution + max-pool encoder, max-unpool + transposed-convolution decoder.

    Encoder, per stage ``i``: ``Conv(channels[i], kernel_size, stride 1, "same" padding)``,
    LeakyReLU, ``max_pool_with_argmax(pool)``; then flatten and ``Dense(latent_dim)``.
    Decoder: ``Dense``, LeakyReLU, reshape, then per stage in reverse: unpool to the stage's
    pre-pool size, ``ConvTranspose`` (stride 1, same padding) back to the previous stage's
    channels (the image's for the first stage, linear), LeakyReLU between stages.

    Unpooling places each value at a recorded switch (the position of a window's maximum).
    :meth:`encode_with_indices` returns those switches and ``decode(z, indices)`` uses them
    (the tutorial's unpooling). ``decode(z)`` alone has no switches, as when generating from a
    latent, and puts every value at its window's top-left corner instead: zero insertion,
    which makes each unpool + convolution a stride-``pool`` transposed convolution with the
    same weights. ``__call__`` uses the encoder's switches if ``use_switches`` (the default)
    and otherwise the fixed ones, so that ``model(x) == decode(encode(x))``; train with
    ``use_switches=False`` when the decoder must also work from latents alone.

    Attributes:
        image_shape: (height, width, channels), channels last.
        channels: channels of each encoder stage.
        latent_dim: size of the code.
        kernel_size: odd kernel size of every (transposed) convolution.
        pool: pooling window (and stride) of every stage.
        negative_slope: LeakyReLU slope.
        use_switches: whether ``__call__`` unpools at the encoder's recorded maxima.
    """

    image_shape: tuple[int, int, int] = TUTORIAL_IMAGE_SHAPE
    channels: Sequence[int] = (16, 32)
    latent_dim: int = 10
    kernel_size: int = 3
    pool: int = 2
    negative_slope: float = 0.01
    use_switches: bool = True

    def __post_init__(self) -> None:
        self.image_shape = _check_positive_ints("image_shape", self.image_shape, 3)
        self.channels = _check_positive_ints("channels", self.channels)
        if not self.channels:
            raise ValueError(f"channels must hold at least one stage, got {self.channels!r}")
        validation.check_int("latent_dim", self.latent_dim, 1)
        validation.check_int("pool", self.pool, 1)
        validation.check_int("kernel_size", self.kernel_size, 1)
        if self.kernel_size % 2 != 1:
            raise ValueError(
                f"kernel_size must be odd so convolutions keep the size, got {self.kernel_size}"
            )
        self._stage_sizes()
        super().__post_init__()

    def _stage_sizes(self) -> tuple[tuple[int, int], ...]:
        """(height, width) entering each stage's pool, plus the final pooled size."""
        sizes = [tuple(self.image_shape[:2])]
        for i in range(len(self.channels)):
            h, w = sizes[-1]
            if h < self.pool or w < self.pool:
                raise ValueError(
                    f"image_shape={self.image_shape} is too small for {len(self.channels)} "
                    f"stages of {self.pool}x{self.pool} pooling: stage {i} gets {h}x{w}"
                )
            sizes.append((h // self.pool, w // self.pool))
        return tuple(sizes)

    @property
    def feature_shape(self) -> tuple[int, int, int]:
        """(h, w, channels) of the last pooled feature map."""
        h, w = self._stage_sizes()[-1]
        return (h, w, self.channels[-1])

    @classmethod
    def for_data(
        cls,
        feature_shape: Sequence[int],
        *,
        latent_dim: int,
        channels: Sequence[int] | None = None,
        conv_options: dict | None = None,
        **unused: object,
    ) -> ConvAutoencoder:
        """The autoencoder for images of ``feature_shape`` (height, width, channels), with
        its stage ``channels`` and ``conv_options`` as further fields (the registry's
        builder; options of other architectures are ignored)."""
        options = dict(conv_options or {})
        if channels is not None:
            options["channels"] = tuple(int(c) for c in channels)
        return cls(image_shape=tuple(feature_shape), latent_dim=latent_dim, **options)

    def setup(self) -> None:
        k, p = self.kernel_size, self.kernel_size // 2
        self.convs = [
            nn.Conv(
                c,
                (k, k),
                padding=((p, p), (p, p)),
                conv_general_dilated_cls=FastConv,
                name=f"conv{i}",
            )
            for i, c in enumerate(self.channels)
        ]
        self.to_code = nn.Dense(self.latent_dim)
        self.from_code = nn.Dense(math.prod(self.feature_shape))
        outputs = (self.image_shape[-1], *self.channels[:-1])
        self.deconvs = [ConvTranspose(c, k, 1, p, name=f"convt{i}") for i, c in enumerate(outputs)]

    def encode_with_indices(
        self, x: Array, *, train: bool = False
    ) -> tuple[Array, tuple[Array, ...]]:
        """Codes and pooling switches of images ``x``.

        Args:
            x: array of shape (batch, *image_shape).
            train: ignored (no BatchNorm); accepted for a uniform interface.

        Returns:
            ``(code, indices)``: the code of shape (batch, latent_dim) and, per stage, the
            int32 switches of :func:`~latent_jax.models.layers.max_pool_with_argmax`.
        """
        del train
        x = _check_images(x, self.image_shape)
        indices = []
        for conv in self.convs:
            x = nn.leaky_relu(conv(x), self.negative_slope)
            x, idx = max_pool_with_argmax(x, self.pool)
            indices.append(idx)
        code = self.to_code(x.reshape(x.shape[0], -1))
        return code, tuple(indices)

    def encode(self, x: Array, *, train: bool = False) -> Array:
        """Codes of shape (batch, latent_dim) of images x of shape (batch, *image_shape)."""
        return self.encode_with_indices(x, train=train)[0]

    def decode(
        self, z: Array, indices: Sequence[Array] | None = None, *, train: bool = False
    ) -> Array:
        """Images of shape (batch, *image_shape) from codes of shape (batch, latent_dim).

        Args:
            z: array of shape (batch, latent_dim).
            indices: the switches from :meth:`encode_with_indices`, or None to unpool at
                each window's top-left corner.
            train: ignored (no BatchNorm); accepted for a uniform interface.
        """
        del train
        z = _check_latents(z, self.latent_dim)
        sizes = self._stage_sizes()
        n_stages = len(self.convs)
        if indices is not None:
            indices = tuple(indices)
            if len(indices) != n_stages:
                raise ValueError(
                    f"indices must hold {n_stages} arrays (one per stage), got {len(indices)}"
                )
        x = nn.leaky_relu(self.from_code(z), self.negative_slope)
        x = x.reshape((z.shape[0], *self.feature_shape))
        for i in reversed(range(n_stages)):
            if indices is None:
                idx = self._fixed_switches(x.shape, sizes[i][1])
            else:
                idx = jnp.asarray(indices[i])
                if idx.shape != x.shape:
                    raise ValueError(
                        f"indices[{i}] must have shape {x.shape}, got shape {idx.shape}"
                    )
            x = max_unpool(x, idx, sizes[i])
            x = self.deconvs[i](x)
            if i > 0:
                x = nn.leaky_relu(x, self.negative_slope)
        return x

    def _fixed_switches(self, shape: tuple[int, ...], width: int) -> Array:
        """Switches at each window's top-left corner, for a pooled map of ``shape``."""
        rows = jnp.arange(shape[1]) * self.pool
        cols = jnp.arange(shape[2]) * self.pool
        flat = (rows[:, None] * width + cols[None, :]).astype(jnp.int32)
        return jnp.broadcast_to(flat[None, :, :, None], shape)

    def __call__(self, x: Array, *, train: bool = False) -> Array:
        """Reconstruction of ``x`` (batch, *image_shape), same shape (see the class doc)."""
        code, indices = self.encode_with_indices(x, train=train)
        return self.decode(code, indices if self.use_switches else None, train=train)


__getattr__ = deprecated_names(
    __name__,
    {
        f"SEED_{name}": (f"latent_jax.models.conv.TUTORIAL_{name}", lambda v=value: v)
        for name, value in (
            ("ENCODER_CONVS", TUTORIAL_ENCODER_CONVS),
            ("DECODER_CONVS", TUTORIAL_DECODER_CONVS),
            ("IMAGE_SHAPE", TUTORIAL_IMAGE_SHAPE),
        )
    },
)
