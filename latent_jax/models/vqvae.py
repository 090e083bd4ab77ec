r"""The VQ-VAE (van den Oord, Vinyals & Kavukcuoglu 2017, "Neural Discrete Representation
Learning"): a convolutional encoder to a grid of vectors, each replaced by its nearest entry of
a learned codebook, and a transposed-convolution decoder.

Shapes (channels last), for images of shape (H, W, C) and ``downsamples`` = d:

=====================================  =========================================
encoder                                decoder
=====================================  =========================================
d x [Conv(hidden, 4, stride 2, same),  Conv(hidden, 3, same)
ReLU]                                  residual blocks, ReLU
Conv(hidden, 3, same)                  (d - 1) x [ConvT(hidden, 4, s2, p1), ReLU]
residual blocks, ReLU                  ConvT(C, 4, s2, p1), Crop(H, W)
Dense(latent_dim) (a 1x1 conv): z_e
=====================================  =========================================

A residual block is ``x + Conv1x1(ReLU(Conv3x3(ReLU(x))))``, the paper's Section 4.1 ("two
strided convolutional layers with stride 2 and window size 4 x 4, followed by two residual
3 x 3 blocks (implemented as ReLU, 3x3 conv, ReLU, 1x1 conv), all having 256 hidden units";
the decoder mirrors it with transposed convolutions). The encoder's output ``z_e`` has shape
(batch, h, w, latent_dim) with ``h = ceil(H / 2**d)`` (the :attr:`VQVAE.grid_shape`: 7x7 for
28x28 images, 4x4 for 14x14, 2x2 for 8x8, with d = 2); the decoder's output, ``2**d`` times
the grid, is cropped to the image.

Quantization (the paper's eqs. 1-2): each of the h * w vectors of ``z_e`` is replaced by the
nearest of the K = ``codebook_size`` codebook entries :math:`e_k \in \mathbb{R}^D`
(D = ``latent_dim``), :math:`k = \arg\min_j \|z_e - e_j\|_2`; the decoder sees
:func:`straight_through` ``z_e + sg[z_q - z_e]``, whose value is ``z_q`` and whose gradient
with respect to ``z_e`` is the decoder's gradient with respect to ``z_q`` (the paper's
straight-through estimator, Section 3.2).

The codebook learns either by gradient (the loss's codebook term, a parameter ``"codebook"``)
or, with ``ema=True``, by exponential moving averages (the paper's Appendix A.1; Razavi et
al. 2019): the collection :data:`EMA_COLLECTION` (``"vq_ema"``) holds ``count`` :math:`N_k`,
``sum`` :math:`m_k` and ``codebook`` :math:`e_k`, updated in training mode (``train=True``,
the collection mutable, as BatchNorm's ``batch_stats``) from the batch's real rows
(:func:`ema_codebook_update`); the training engine threads it as the model state.

Defaults: K = 64 entries of D = 16 and 64 hidden units, where the paper uses K = 512, D = 64
and 256 units for ImageNet and CIFAR-10: on the small images and CPU budgets this library
trains on (MNIST-sized sets, a 7x7 grid), a 512-entry codebook leaves most entries unused (a
batch of 128 images has 6,272 grid positions) and makes the prior's softmax over the codes
eight times wider for nothing; ``codebook_size`` and the widths are fields (and
``--codebook-size`` of ``latent-jax train --objective vq-vae``).

Generation: during training the prior over the codes is uniform (the paper, Section 3.1), and
:meth:`VQVAE.sample_latents` draws from it: every position's code independently uniform,
which decodes to noise-like patches, not images (the positions' codes are far from
independent). Images come from an autoregressive prior fitted afterwards to the training
set's code grids, :class:`latent_jax.samplers.PixelCNNPrior`, whose draws
:meth:`VQVAE.decode_indices` decodes (``generate.sample_prior(..., sampler=prior)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import Array

from latent_jax import validation
from latent_jax.models.layers import ConvTranspose, Crop, FastConv
from latent_jax.models.registry import register_model

__all__ = [
    "EMA_COLLECTION",
    "VQVAE",
    "VQOutput",
    "ema_codebook_update",
    "nearest_codes",
    "straight_through",
]

# The collection of the moving-average codebook (ema=True): count, sum and codebook.
EMA_COLLECTION = "vq_ema"


class VQOutput(NamedTuple):
    """A batch through a :class:`VQVAE` (its ``__call__``).

    Attributes:
        reconstruction: the decoder's output for the straight-through codes, shape (batch,
            *image_shape).
        z_e: the encoder's output, shape (batch, h, w, latent_dim).
        z_q: the nearest codebook entries, shape (batch, h, w, latent_dim): their gradient
            reaches the codebook and not the encoder (the decoder saw
            ``straight_through(z_e, z_q)``, the same values).
        indices: the entries' indices, int32 array of shape (batch, h, w).
    """

    reconstruction: Array
    z_e: Array
    z_q: Array
    indices: Array


def straight_through(z_e: Array, z_q: Array) -> Array:
    """``z_e + sg[z_q - z_e]``: the value of ``z_q``, the gradient passed to ``z_e`` unchanged
    (the paper's straight-through estimator; nothing reaches ``z_q``).

    Args:
        z_e: the encoder's outputs, any shape.
        z_q: their quantized values, the same shape.
    """
    return z_e + jax.lax.stop_gradient(z_q - z_e)


def nearest_codes(z_e: Array, codebook: Array) -> Array:
    r"""The index of the nearest codebook entry of each vector (the paper's eq. 1).

    :math:`\arg\min_k \|z - e_k\|^2 = \arg\min_k (\|e_k\|^2 - 2 z \cdot e_k)` (the term
    :math:`\|z\|^2` is the same for every k), with the products at full float32 precision
    (``Precision.HIGHEST``: no TF32 or bfloat16 passes on accelerators); ties go to the lower
    index.

    Args:
        z_e: array of shape (..., D).
        codebook: array of shape (K, D).

    Returns:
        int32 array of shape ``z_e.shape[:-1]``.
    """
    flat = jnp.reshape(z_e, (-1, z_e.shape[-1]))
    products = jnp.dot(flat, codebook.T, precision=jax.lax.Precision.HIGHEST)
    distances = jnp.sum(jnp.square(codebook), axis=-1) - 2.0 * products
    return jnp.argmin(distances, axis=-1).astype(jnp.int32).reshape(z_e.shape[:-1])


def ema_codebook_update(
    count: Array,
    total: Array,
    z_e: Array,
    indices: Array,
    weights: Array,
    *,
    decay: float,
    epsilon: float,
) -> tuple[Array, Array, Array]:
    r"""One moving-average update of the codebook (the paper's Appendix A.1, eqs. 6-8, with
    Laplace smoothing of the counts as in Sonnet's ``VectorQuantizerEMA``).

    .. math::
        N_k \leftarrow \gamma N_k + (1 - \gamma) n_k, \quad
        m_k \leftarrow \gamma m_k + (1 - \gamma) \textstyle\sum_{j: k_j = k} w_j z_j, \quad
        e_k = m_k / \tilde N_k, \quad
        \tilde N_k = \frac{N_k + \epsilon}{\sum_l N_l + K \epsilon} \sum_l N_l,

    where :math:`n_k = \sum_{j: k_j = k} w_j` counts the (weighted) vectors assigned to entry
    k. Padding rows have weight 0 and change nothing.

    Args:
        count: :math:`N`, shape (K,).
        total: :math:`m`, shape (K, D).
        z_e: the encoder's outputs, shape (..., D) (not differentiated).
        indices: their entries, int array of shape ``z_e.shape[:-1]``.
        weights: the weight of each vector, shape ``z_e.shape[:-1]`` (1 real, 0 padding).
        decay: γ, in (0, 1).
        epsilon: ε of the smoothing, >= 0.

    Returns:
        ``(count, total, codebook)`` after the update, shapes (K,), (K, D), (K, D).
    """
    size = count.shape[0]
    flat = jax.lax.stop_gradient(jnp.reshape(z_e, (-1, z_e.shape[-1])))
    assigned = jax.nn.one_hot(jnp.reshape(indices, (-1,)), size, dtype=flat.dtype)
    assigned = assigned * jnp.reshape(weights, (-1, 1)).astype(flat.dtype)
    counts = jnp.sum(assigned, axis=0)
    sums = jnp.dot(assigned.T, flat, precision=jax.lax.Precision.HIGHEST)
    count = decay * count + (1.0 - decay) * counts
    total = decay * total + (1.0 - decay) * sums
    n = jnp.sum(count)
    smoothed = (count + epsilon) / (n + size * epsilon) * n
    return count, total, total / smoothed[:, None]


def _check_sizes(name: str, value: Any, length: int) -> tuple[int, ...]:
    try:
        values = tuple(value)
    except TypeError:
        values = ()
    ok = len(values) == length and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values
    )
    if not ok:
        raise ValueError(f"{name} must be a tuple of {length} ints >= 1, got {name}={value!r}")
    return values


def _check_input(name: str, value: Any, shape: Sequence[int], axes: str) -> Array:
    """``value`` as a (batch, *shape) array; values unchecked (it may be traced)."""
    value = jnp.asarray(
        validation.check_array(name, value, finite=False, allow_empty=True, dtype="numeric")
    )
    if value.ndim != len(shape) + 1 or value.shape[1:] != tuple(shape):
        expected = ", ".join(map(str, shape))
        raise ValueError(
            f"{name} must have shape (batch, {expected}) ({axes}), got shape {value.shape}"
        )
    return value


class _ResidualStack(nn.Module):
    """``blocks`` residual blocks ``x + Conv1x1(ReLU(Conv3x3(ReLU(x))))``, then ReLU."""

    features: int
    blocks: int

    @nn.compact
    def __call__(self, x: Array) -> Array:
        for i in range(self.blocks):
            h = nn.Conv(
                self.features,
                (3, 3),
                padding="SAME",
                conv_general_dilated_cls=FastConv,
                name=f"block{i}_conv3",
            )(nn.relu(x))
            x = x + nn.Dense(self.features, name=f"block{i}_conv1")(nn.relu(h))
        return nn.relu(x)


def _codebook_init(key: Array, shape: tuple[int, int]) -> Array:
    # Uniform of variance 1 / D, as Sonnet's VectorQuantizer (variance scaling, fan-in D).
    init = nn.initializers.variance_scaling(1.0, "fan_in", "uniform", in_axis=-1, out_axis=-2)
    return init(key, shape, jnp.float32)


@register_model(
    name="vq-vae",
    kind="vq-vae",
    architecture="conv",
    help="VQ-VAE: conv encoder to a grid of codebook entries, conv-transpose decoder "
    "(van den Oord et al. 2017; --objective vq-vae, a PixelCNN prior fitted after training)",
)
class VQVAE(nn.Module):
    """The VQ-VAE's encoder, codebook and decoder (see the module docstring).

    Attributes:
        image_shape: (height, width, channels), channels last.
        latent_dim: D, the size of a codebook entry (and of each encoder output vector).
        codebook_size: K, the number of codebook entries (the paper: 512).
        hidden_dim: the convolutions' channels (the paper: 256).
        downsamples: d, the stride-2 convolutions of the encoder (and transposed ones of the
            decoder); the grid is ``ceil(size / 2**d)`` per side (the paper: 2).
        residual_blocks: residual blocks on each side (the paper: 2).
        ema: learn the codebook by moving averages (collection ``"vq_ema"``) instead of by
            gradient (parameter ``"codebook"``).
        ema_decay: γ of the moving averages (the paper's Appendix A.1: 0.99).
        ema_epsilon: the Laplace smoothing of the counts (Sonnet's 1e-5).
    """

    image_shape: tuple[int, int, int] = (28, 28, 1)
    latent_dim: int = 16
    codebook_size: int = 64
    hidden_dim: int = 64
    downsamples: int = 2
    residual_blocks: int = 2
    ema: bool = False
    ema_decay: float = 0.99
    ema_epsilon: float = 1e-5

    def __post_init__(self) -> None:
        self.image_shape = _check_sizes("image_shape", self.image_shape, 3)
        validation.check_int("latent_dim", self.latent_dim, 1)
        validation.check_int("codebook_size", self.codebook_size, 1)
        validation.check_int("hidden_dim", self.hidden_dim, 1)
        validation.check_int("downsamples", self.downsamples, 1)
        validation.check_int("residual_blocks", self.residual_blocks, 0)
        validation.check_bool("ema", self.ema)
        decay = validation.check_real("ema_decay", self.ema_decay)
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got ema_decay={self.ema_decay!r}")
        validation.check_real("ema_epsilon", self.ema_epsilon, nonnegative=True)
        super().__post_init__()

    @property
    def grid_shape(self) -> tuple[int, int]:
        """(h, w) of the code grid: each side halved ``downsamples`` times, rounded up."""
        h, w = self.image_shape[:2]
        for _ in range(self.downsamples):
            h, w = -(-h // 2), -(-w // 2)
        return (h, w)

    @classmethod
    def for_data(
        cls,
        feature_shape: Sequence[int],
        *,
        latent_dim: int,
        conv_options: dict | None = None,
        **unused: object,
    ) -> VQVAE:
        """The VQ-VAE for images of ``feature_shape`` (height, width, channels), with
        ``conv_options`` as further fields (the registry's builder; options of other
        architectures are ignored)."""
        shape = tuple(int(s) for s in feature_shape)
        if len(shape) != 3:
            raise ValueError(
                f"the VQ-VAE takes images (height, width, channels), got examples of shape {shape}"
            )
        return cls(image_shape=shape, latent_dim=latent_dim, **(conv_options or {}))

    def setup(self) -> None:
        hidden, channels = self.hidden_dim, self.image_shape[-1]
        self.down = [
            nn.Conv(
                hidden,
                (4, 4),
                strides=(2, 2),
                padding="SAME",
                conv_general_dilated_cls=FastConv,
                name=f"down{i}",
            )
            for i in range(self.downsamples)
        ]
        self.encoder_conv = nn.Conv(
            hidden, (3, 3), padding="SAME", conv_general_dilated_cls=FastConv
        )
        self.encoder_blocks = _ResidualStack(hidden, self.residual_blocks)
        self.to_code = nn.Dense(self.latent_dim)
        self.decoder_conv = nn.Conv(
            hidden, (3, 3), padding="SAME", conv_general_dilated_cls=FastConv
        )
        self.decoder_blocks = _ResidualStack(hidden, self.residual_blocks)
        outputs = [hidden] * (self.downsamples - 1) + [channels]
        self.up = [ConvTranspose(c, 4, 2, 1, name=f"up{i}") for i, c in enumerate(outputs)]
        self.crop = Crop(*self.image_shape[:2])
        shape = (self.codebook_size, self.latent_dim)
        if self.ema:
            self.ema_codebook = self.variable(
                EMA_COLLECTION, "codebook", lambda: _codebook_init(self.make_rng("params"), shape)
            )
            self.ema_count = self.variable(
                EMA_COLLECTION, "count", lambda: jnp.ones((self.codebook_size,), jnp.float32)
            )
            # N = 1 and m = e: the codebook starts at its draw, and an entry that no vector
            # picks keeps its place (N and m decay alike).
            self.ema_sum = self.variable(EMA_COLLECTION, "sum", lambda: self.ema_codebook.value)
        else:
            self.codebook_param = self.param("codebook", _codebook_init, shape)

    def codebook(self) -> Array:
        """The codebook, array of shape (codebook_size, latent_dim)."""
        return self.ema_codebook.value if self.ema else self.codebook_param

    def encode(self, x: Array) -> Array:
        """``z_e``: the encoder's output, shape (batch, h, w, latent_dim), of images ``x`` of
        shape (batch, *image_shape)."""
        h = _check_input("x", x, self.image_shape, "channels last")
        for conv in self.down:
            h = nn.relu(conv(h))
        h = self.encoder_blocks(self.encoder_conv(h))
        return self.to_code(h)

    def quantize(self, z_e: Array) -> tuple[Array, Array]:
        """The nearest codebook entries of ``z_e`` (the paper's eqs. 1-2).

        Args:
            z_e: array of shape (batch, h, w, latent_dim).

        Returns:
            ``(z_q, indices)``: the entries, shape (batch, h, w, latent_dim) (differentiable
            with respect to the codebook only; see :func:`straight_through`), and their
            int32 indices, shape (batch, h, w).
        """
        z_e = _check_input("z_e", z_e, (*self.grid_shape, self.latent_dim), "the code grid")
        codebook = self.codebook()
        indices = nearest_codes(z_e, codebook)
        return jnp.take(codebook, indices, axis=0), indices

    def decode(self, z_q: Array) -> Array:
        """Images of shape (batch, *image_shape) from a grid of codes of shape (batch, h, w,
        latent_dim)."""
        h = _check_input("z_q", z_q, (*self.grid_shape, self.latent_dim), "the code grid")
        h = self.decoder_blocks(self.decoder_conv(h))
        for i, up in enumerate(self.up):
            h = up(h)
            if i < len(self.up) - 1:
                h = nn.relu(h)
        return self.crop(h)

    def lookup(self, indices: Array) -> Array:
        """The codebook entries of an index grid: shape (batch, h, w) -> (batch, h, w,
        latent_dim). Indices are not checked against the codebook's size (they may be
        traced); out-of-range ones are clamped, as ``jnp.take`` does."""
        indices = _check_input("indices", indices, self.grid_shape, "the code grid")
        if not jnp.issubdtype(indices.dtype, jnp.integer):
            raise TypeError(f"indices must be integers, got dtype {indices.dtype}")
        return jnp.take(self.codebook(), indices, axis=0, mode="clip")

    def decode_indices(self, indices: Array) -> Array:
        """Images of shape (batch, *image_shape) from a grid of code indices of shape
        (batch, h, w) (what :class:`latent_jax.samplers.PixelCNNPrior` draws)."""
        return self.decode(self.lookup(indices))

    def encode_indices(self, x: Array) -> Array:
        """The code indices, int32 array of shape (batch, h, w), of images ``x``."""
        return self.quantize(self.encode(x))[1]

    def sample_latents(self, key: Array, n: int) -> Array:
        """``n`` code grids from the training-time prior: each position's index uniform over
        the codebook, independently (the paper, Section 3.1). Decoded, these are not images
        (see the module docstring); fit a :class:`latent_jax.samplers.PixelCNNPrior`.

        Returns:
            Array of shape (n, h, w, latent_dim), codebook entries.
        """
        indices = jax.random.randint(key, (n, *self.grid_shape), 0, self.codebook_size)
        return jnp.take(self.codebook(), indices, axis=0)

    def __call__(self, x: Array, *, train: bool = False, mask: Array | None = None) -> VQOutput:
        """Encodes, quantizes and decodes the straight-through codes.

        With ``ema`` and ``train`` (and the collection ``"vq_ema"`` mutable, as the training
        engine makes it) the codebook moves towards the batch's encoder outputs after the
        batch is quantized with the codebook as it was (:func:`ema_codebook_update`).

        Args:
            x: array of shape (batch, *image_shape).
            train: training mode (the moving-average update); nothing else depends on it.
            mask: bool array of shape (batch,), True for the rows that enter the update
                (padding rows do not); None: every row.

        Returns:
            The :class:`VQOutput`.
        """
        z_e = self.encode(x)
        z_q, indices = self.quantize(z_e)
        reconstruction = self.decode(straight_through(z_e, z_q))
        updating = self.ema and train and not self.is_initializing()
        if updating and self.is_mutable_collection(EMA_COLLECTION):
            rows = jnp.ones(z_e.shape[0], z_e.dtype) if mask is None else jnp.asarray(mask)
            weights = jnp.broadcast_to(rows.astype(z_e.dtype)[:, None, None], indices.shape)
            count, total, codebook = ema_codebook_update(
                self.ema_count.value,
                self.ema_sum.value,
                z_e,
                indices,
                weights,
                decay=self.ema_decay,
                epsilon=self.ema_epsilon,
            )
            self.ema_count.value, self.ema_sum.value = count, total
            self.ema_codebook.value = codebook
        return VQOutput(reconstruction, z_e, z_q, indices)
