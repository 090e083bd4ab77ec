r"""A small PixelCNN over grids of categorical codes (van den Oord, Kalchbrenner & Kavukcuoglu
2016, "Pixel Recurrent Neural Networks", Section 3.5), the autoregressive prior of the VQ-VAE's
code grids (van den Oord et al. 2017, Section 3.1).

The model gives, for a grid of code indices :math:`k` of shape (h, w), the logits of

.. math::
    p(k) = \prod_{i} p(k_i \mid k_{<i}),

over the positions i in raster order (row by row, left to right): the output at position i
depends only on the inputs at positions before i. This holds by masking the convolutions'
kernels (the paper's Figure 2): the first layer is a **type A** masked convolution, which sees
the rows above and the positions to the left in the same row but not the centre; every later
spatial convolution is **type B**, which also sees the centre (by then the centre carries
only what came before it); 1x1 layers mix the channels of one position. Layers:

* the one-hot codes (K channels), a type-A ``kernel_size`` x ``kernel_size`` convolution to
  ``features`` channels;
* ``residual_blocks`` blocks ``x + Dense(ReLU(MaskedConvB_3x3(ReLU(Dense(ReLU(x))))))`` (the
  paper's Figure 5, with ``features`` channels throughout);
* ReLU, a 1x1 layer, ReLU, a 1x1 layer to K logits per position.

This is the plain PixelCNN, not the gated one of van den Oord et al. (2016b, "Conditional
Image Generation with PixelCNN Decoders") that the VQ-VAE paper used: its stacked masked
convolutions have a blind spot (positions above and to the right, beyond the first layer's
reach, are not seen), which is small on the VQ-VAE's grids of 2x2 to 7x7 codes (a 5x5 type-A
kernel sees two columns either side in the two rows above).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from latent_jax import validation
from latent_jax.models.layers import conv_general_dilated
from latent_jax.models.registry import register_model

__all__ = ["MASK_TYPES", "MaskedConv", "PixelCNN", "causal_mask"]

MASK_TYPES = ("A", "B")
_NHWC = ("NHWC", "HWIO", "NHWC")


def causal_mask(kernel_size: int, mask_type: str) -> np.ndarray:
    """The (kernel_size, kernel_size) mask of a masked convolution: 1 above the centre row and
    left of the centre in its row, and at the centre itself for type ``"B"``.

    Args:
        kernel_size: an odd kernel size.
        mask_type: ``"A"`` (the first layer: the centre excluded) or ``"B"``.

    Returns:
        float32 array of 0s and 1s.
    """
    kernel_size = validation.check_int("kernel_size", kernel_size, 1)
    if kernel_size % 2 != 1:
        raise ValueError(f"kernel_size must be odd, got {kernel_size}")
    validation.check_choice("mask_type", mask_type, MASK_TYPES)
    centre = kernel_size // 2
    mask = np.zeros((kernel_size, kernel_size), np.float32)
    mask[:centre, :] = 1.0
    mask[centre, : centre + (mask_type == "B")] = 1.0
    return mask


class MaskedConv(nn.Module):
    """A stride-1 "same" convolution whose kernel is multiplied by :func:`causal_mask`.

    Attributes:
        features: output channels.
        kernel_size: odd kernel size.
        mask_type: ``"A"`` or ``"B"``.
    """

    features: int
    kernel_size: int
    mask_type: str

    @nn.compact
    def __call__(self, x: Array) -> Array:
        """Maps (batch, h, w, in_channels) to (batch, h, w, features)."""
        k = self.kernel_size
        mask = causal_mask(k, self.mask_type)
        kernel = self.param(
            "kernel", nn.initializers.lecun_normal(), (k, k, x.shape[-1], self.features)
        )
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        masked = kernel * jnp.asarray(mask)[:, :, None, None]
        y = conv_general_dilated(x, masked, (1, 1), "SAME", dimension_numbers=_NHWC)
        return y + bias


@register_model
class PixelCNN(nn.Module):
    """An autoregressive model of grids of code indices (see the module docstring).

    Attributes:
        codebook_size: K, the number of codes (the inputs' range and the logits per
            position).
        features: the channels of every hidden layer.
        kernel_size: the odd size of the first (type-A) layer's kernel.
        residual_blocks: the residual blocks of type-B 3x3 convolutions.
    """

    codebook_size: int = 64
    features: int = 64
    kernel_size: int = 5
    residual_blocks: int = 4

    def __post_init__(self) -> None:
        validation.check_int("codebook_size", self.codebook_size, 1)
        validation.check_int("features", self.features, 1)
        validation.check_int("residual_blocks", self.residual_blocks, 0)
        causal_mask(self.kernel_size, "A")  # an odd size >= 1
        super().__post_init__()

    @nn.compact
    def logits(self, one_hot: Array) -> Array:
        """The logits of each position given the (one-hot) codes before it.

        Args:
            one_hot: array of shape (batch, h, w, codebook_size): the codes, one-hot (or any
                real values: the gradient with respect to them shows what each output
                depends on).

        Returns:
            Array of shape (batch, h, w, codebook_size).
        """
        one_hot = jnp.asarray(one_hot)
        if one_hot.ndim != 4 or one_hot.shape[-1] != self.codebook_size:
            raise ValueError(
                f"one_hot must have shape (batch, h, w, {self.codebook_size}), got shape "
                f"{one_hot.shape}"
            )
        h = MaskedConv(self.features, self.kernel_size, "A", name="input_conv")(one_hot)
        for i in range(self.residual_blocks):
            r = nn.Dense(self.features, name=f"block{i}_in")(nn.relu(h))
            r = MaskedConv(self.features, 3, "B", name=f"block{i}_conv")(nn.relu(r))
            h = h + nn.Dense(self.features, name=f"block{i}_out")(nn.relu(r))
        h = nn.Dense(self.features, name="head")(nn.relu(h))
        return nn.Dense(self.codebook_size, name="output")(nn.relu(h))

    def __call__(self, indices: Array) -> Array:
        """The logits of each position of code grids.

        Args:
            indices: array of shape (batch, h, w) of code indices in [0, codebook_size),
                integers or floats holding integers (the training engine's float32 rows);
                an index out of range counts as no code (a zero one-hot vector).

        Returns:
            Array of shape (batch, h, w, codebook_size).
        """
        indices = _check_indices(indices)
        return self.logits(jax.nn.one_hot(indices, self.codebook_size, dtype=jnp.float32))


def _check_indices(indices: Any) -> Array:
    """Code grids as int32 (batch, h, w); values unchecked (they may be traced)."""
    indices = jnp.asarray(
        validation.check_array("indices", indices, finite=False, allow_empty=True, dtype="numeric")
    )
    if indices.ndim != 3:
        raise ValueError(f"indices must have shape (batch, h, w), got shape {indices.shape}")
    if not jnp.issubdtype(indices.dtype, jnp.integer):
        indices = jnp.round(indices)
    return indices.astype(jnp.int32)
