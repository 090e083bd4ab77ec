r"""Building blocks that PyTorch has and linen lacks, with PyTorch's shape semantics.

Images are channels last, ``(batch, height, width, channels)``, throughout.

* :class:`Reshape` and :class:`Crop` are the tutorial's ``Reshape`` and ``Trim`` helper layers;
  ``Crop`` keeps the top-left ``height x width`` window, so the tutorial's ``Trim``
  (``x[:, :, :-1, :-1]`` on a 113x93 map) is ``Crop(112, 92)``.
* :func:`max_pool_with_argmax` and :func:`max_unpool` are max pooling that records where each
  maximum came from and the unpooling that puts values back there (zeros elsewhere), as in
  the tutorial's unpooling figure (Noh et al., 2015). Indices follow PyTorch's
  ``MaxPool2d(return_indices=True)``: the flat position ``row * width + col`` in the input
  plane of each example and channel.
* :class:`ConvTranspose` is a transposed convolution with PyTorch's ``ConvTranspose2d``
  arithmetic,

  .. math::

      \text{out}[i s + a - p,\ j s + b - p,\ o] \mathrel{+}= \sum_c x[i, j, c]\, w[a, b, c, o],

  so its output size is :math:`(n - 1) s - 2p + k + \text{output\_padding}` and
  architectures written for PyTorch keep their shapes.

:func:`conv_output_size` and :func:`conv_transpose_output_size` give the spatial sizes in
Python, so models can compute flattened sizes from the image shape instead of hard-coding them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from latent_jax import validation
from latent_jax.models import implementations

IntOrPair = int | tuple[int, int]


def _pair(name: str, value: IntOrPair) -> tuple[int, int]:
    """``value`` as an (height, width) pair of ints, or a TypeError naming ``name``."""
    pair = (value, value) if isinstance(value, int | np.integer) else tuple(value)
    if len(pair) != 2 or not all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) for v in pair
    ):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    return int(pair[0]), int(pair[1])


def _check_images(name: str, x: Array) -> None:
    """Raises unless ``x`` is a real (batch, height, width, channels) array; values unchecked."""
    validation.check_array(
        name,
        x,
        ndim=4,
        axes="(batch, height, width, channels)",
        finite=False,
        allow_empty=True,
        dtype="numeric",
    )


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """Spatial size after a convolution with symmetric zero padding (PyTorch's ``Conv2d``).

    Args:
        size: input size along one spatial axis.
        kernel_size: kernel size along that axis.
        stride: stride along that axis.
        padding: zeros added on each side.

    Returns:
        ``floor((size + 2 * padding - kernel_size) / stride) + 1``.

    Raises:
        ValueError: if the result would be smaller than 1.
    """
    out = (size + 2 * padding - kernel_size) // stride + 1
    if out < 1:
        raise ValueError(
            f"a convolution with kernel_size={kernel_size}, stride={stride}, padding={padding} "
            f"needs an input of size >= {kernel_size - 2 * padding}, got size={size}"
        )
    return out


def conv_transpose_output_size(
    size: int, kernel_size: int, stride: int = 1, padding: int = 0, output_padding: int = 0
) -> int:
    """Spatial size after a transposed convolution (PyTorch's ``ConvTranspose2d``).

    Args:
        size: input size along one spatial axis.
        kernel_size: kernel size along that axis.
        stride: stride along that axis.
        padding: rows/columns removed from each side of the full output.
        output_padding: extra rows/columns added at the end (bottom/right).

    Returns:
        ``(size - 1) * stride - 2 * padding + kernel_size + output_padding``.

    Raises:
        ValueError: if the result would be smaller than 1.
    """
    out = (size - 1) * stride - 2 * padding + kernel_size + output_padding
    if out < 1:
        raise ValueError(
            f"a transposed convolution with kernel_size={kernel_size}, stride={stride}, "
            f"padding={padding}, output_padding={output_padding} gives an empty output "
            f"for size={size} (output size {out})"
        )
    return out


class Reshape(nn.Module):
    """Reshapes each example, keeping the batch axis (the tutorial's ``Reshape``).

    Attributes:
        shape: the per-example target shape, e.g. ``(28, 23, 64)`` (channels last).
    """

    shape: tuple[int, ...]

    @nn.compact
    def __call__(self, x: Array) -> Array:
        """Reshapes ``x`` of shape (batch, ...) to (batch, *shape)."""
        shape = tuple(int(s) for s in self.shape)
        if x.ndim < 1 or math.prod(x.shape[1:]) != math.prod(shape):
            raise ValueError(
                f"x must have {math.prod(shape)} values per example to reshape to {shape}, "
                f"got shape {x.shape}"
            )
        return x.reshape((x.shape[0], *shape))


class Crop(nn.Module):
    """Keeps the top-left ``height x width`` window of each image (the tutorial's ``Trim``).

    Transposed-convolution decoders often overshoot the image size by a row or two; cropping
    from the top-left drops the extra rows at the bottom and columns at the right, as the
    tutorial's ``x[:, :, :-1, :-1]`` does.

    Attributes:
        height: target height.
        width: target width.
    """

    height: int
    width: int

    @nn.compact
    def __call__(self, x: Array) -> Array:
        """Crops ``x`` of shape (batch, H, W, C) to (batch, height, width, C).

        Raises:
            ValueError: if ``x`` is not 4-D or is smaller than the target.
        """
        _check_images("x", x)
        if x.shape[1] < self.height or x.shape[2] < self.width:
            raise ValueError(
                f"x must be at least {self.height}x{self.width} to crop to that size, "
                f"got shape {x.shape}"
            )
        return x[:, : self.height, : self.width, :]


class BatchNorm(nn.Module):
    """Batch normalization over all axes but the last, with a row mask (PyTorch's semantics).

    ``flax.linen.BatchNorm`` takes a mask too, but counts the selected elements by summing
    the mask broadcast to the input's full shape, a pass over the whole activation per
    statistic (for the tutorial's 64 x 112 x 92 x 32 maps, a tenth of a training step on CPU).
    Here the mask selects rows, so the count is ``sum(mask) * height * width``, and the two
    moments are one fused pass. Variables have ``flax.linen.BatchNorm``'s names and shapes
    (``params``: ``scale``, ``bias``; ``batch_stats``: ``mean``, ``var``), and the update is
    PyTorch's with its ``momentum`` written flax's way:
    ``running = momentum * running + (1 - momentum) * batch`` with the biased batch variance.

    Attributes:
        momentum: decay of the running statistics (0.9 is PyTorch's ``momentum=0.1``).
        epsilon: added to the variance before the square root.
    """

    momentum: float = 0.9
    epsilon: float = 1e-5

    @nn.compact
    def __call__(self, x: Array, *, use_running_average: bool, mask: Array | None = None) -> Array:
        """Normalizes ``x`` of shape (batch, ..., features).

        Args:
            x: the input.
            use_running_average: normalize with the running statistics (inference) instead of
                the batch's, which also updates them (needs ``mutable=["batch_stats"]``).
            mask: bool array of shape (batch,), True for the rows that enter the batch
                statistics; None: all rows. Every row is normalized either way.

        Returns:
            Array of the shape of ``x``.
        """
        features = x.shape[-1]
        running_mean = self.variable(
            "batch_stats", "mean", lambda: jnp.zeros((features,), jnp.float32)
        )
        running_var = self.variable(
            "batch_stats", "var", lambda: jnp.ones((features,), jnp.float32)
        )
        scale = self.param("scale", nn.initializers.ones, (features,))
        bias = self.param("bias", nn.initializers.zeros, (features,))
        if use_running_average:
            mean, var = running_mean.value, running_var.value
        else:
            axes = tuple(range(x.ndim - 1))
            per_row = math.prod(x.shape[1:-1])
            if mask is None:
                weights, count = None, x.shape[0] * per_row
            else:
                weights = jnp.asarray(mask, x.dtype).reshape((-1,) + (1,) * (x.ndim - 1))
                count = jnp.maximum(jnp.sum(weights), 1.0) * per_row
            mean = jnp.sum(x if weights is None else x * weights, axes) / count
            squares = jnp.square(x)
            mean_square = jnp.sum(squares if weights is None else squares * weights, axes) / count
            # E[x^2] - E[x]^2 (one pass, as flax's default), clipped at 0 against round-off.
            var = jnp.maximum(mean_square - jnp.square(mean), 0.0)
            if not self.is_initializing():
                running_mean.value = self.momentum * running_mean.value + (1 - self.momentum) * mean
                running_var.value = self.momentum * running_var.value + (1 - self.momentum) * var
        return (x - mean) * (jax.lax.rsqrt(var + self.epsilon) * scale) + bias


def max_pool_with_argmax(x: ArrayLike, window: IntOrPair = 2) -> tuple[Array, Array]:
    """Non-overlapping max pooling that also returns where each maximum was.

    Windows have stride equal to their size; rows and columns that do not fill a whole window
    are dropped (PyTorch's ``MaxPool2d`` default, ``ceil_mode=False``). Within a window the
    first maximum in row-major order wins ties.

    Args:
        x: array of shape (batch, height, width, channels).
        window: window size, an int or a (height, width) pair.

    Returns:
        ``(pooled, indices)``, both of shape (batch, height // wh, width // ww, channels):
        the window maxima and their flat positions ``row * width + col`` in the input plane
        (int32), ready for :func:`max_unpool`. Gradients flow to the maxima.

    Raises:
        ValueError: if ``x`` is not 4-D or is smaller than one window.
    """
    x = jnp.asarray(x)
    wh, ww = _pair("window", window)
    if wh < 1 or ww < 1:
        raise ValueError(f"window must be >= 1, got window={window!r}")
    _check_images("x", x)
    batch, height, width, channels = x.shape
    out_h, out_w = height // wh, width // ww
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"x must be at least one {wh}x{ww} window in height and width, got shape {x.shape}"
        )
    windows = x[:, : out_h * wh, : out_w * ww, :].reshape(batch, out_h, wh, out_w, ww, channels)
    # (batch, out_h, out_w, channels, wh * ww): each window's values in row-major order.
    windows = windows.transpose(0, 1, 3, 5, 2, 4).reshape(batch, out_h, out_w, channels, wh * ww)
    local = jnp.argmax(windows, axis=-1)  # argmax returns the first of tied maxima
    pooled = jnp.take_along_axis(windows, local[..., None], axis=-1)[..., 0]
    rows = jnp.arange(out_h)[:, None, None] * wh + local // ww
    cols = jnp.arange(out_w)[None, :, None] * ww + local % ww
    indices = (rows * width + cols).astype(jnp.int32)
    return pooled, indices


def max_unpool(pooled: ArrayLike, indices: ArrayLike, output_size: Sequence[int]) -> Array:
    """Puts pooled values back at their recorded positions, zeros elsewhere.

    The inverse of :func:`max_pool_with_argmax` in PyTorch's ``MaxUnpool2d`` sense:
    ``max_unpool(*max_pool_with_argmax(x), x.shape[1:3])`` keeps each window's maximum where
    it was and zeros everything else. Gradients flow to ``pooled``; indices outside the
    output plane are dropped.

    Args:
        pooled: array of shape (batch, h, w, channels).
        indices: integer array of the same shape, flat positions ``row * width + col`` in
            the output plane.
        output_size: the output's (height, width).

    Returns:
        Array of shape (batch, height, width, channels).

    Raises:
        ValueError: if the shapes of ``pooled`` and ``indices`` differ or are not 4-D.
    """
    pooled = jnp.asarray(pooled)
    indices = jnp.asarray(indices)
    _check_images("pooled", pooled)
    if indices.shape != pooled.shape:
        raise ValueError(
            f"indices must have the shape of pooled {pooled.shape}, got shape {indices.shape}"
        )
    if not jnp.issubdtype(indices.dtype, jnp.integer):
        raise TypeError(f"indices must be integers, got dtype {indices.dtype}")
    height, width = _pair("output_size", tuple(output_size))
    batch, _, _, channels = pooled.shape
    out = jnp.zeros((batch, height * width, channels), pooled.dtype)
    batch_idx = jnp.arange(batch)[:, None, None, None]
    channel_idx = jnp.arange(channels)[None, None, None, :]
    out = out.at[batch_idx, indices, channel_idx].set(pooled, mode="drop")
    return out.reshape(batch, height, width, channels)


_NHWC = ("NHWC", "HWIO", "NHWC")


def _strided_scatter(
    x: Array,
    kernel: Array,
    strides: tuple[int, int],
    crop: tuple[int, int],
    out_size: tuple[int, int],
) -> Array:
    """``out[i s + a - crop, j s + b - crop, o] += x[i, j, c] w[a, b, c, o]``, sub-pixel form.

    The transposed convolution, and the input gradient of a strided convolution, computed
    without zero-dilating ``x``: output rows ``m = q s + r`` only receive kernel taps
    ``a = r + t s``, so each of the ``s * s`` output phases is a stride-1 full convolution of
    ``x`` with the sub-kernel ``w[r::s, r'::s]``; the phases are interleaved and cropped.
    This does ``s * s`` times less work than correlating the dilated input, and XLA's CPU
    backend keeps every piece on its fast convolution path (it runs an input-dilated
    convolution several times slower).

    Args:
        x: array of shape (batch, height, width, in_channels).
        kernel: array of shape (kh, kw, in_channels, out_channels).
        strides: (height, width) strides.
        crop: rows/columns dropped at the top/left of the full output (the padding).
        out_size: (height, width) of the result; rows past the full output are zeros.

    Returns:
        Array of shape (batch, out_size[0], out_size[1], out_channels).
    """
    batch, height, width, _ = x.shape
    kh, kw, _, out_channels = kernel.shape
    (sh, sw), (ch, cw) = strides, crop
    # Phase lengths: enough for the full output and for the requested window.
    qh = max(height - 1 + -(-kh // sh), -(-(ch + out_size[0]) // sh))
    qw = max(width - 1 + -(-kw // sw), -(-(cw + out_size[1]) // sw))
    rows = []
    for r in range(sh):
        columns = []
        for t in range(sw):
            sub = kernel[r::sh, t::sw]
            if sub.shape[0] == 0 or sub.shape[1] == 0:
                phase = jnp.zeros((batch, qh, qw, out_channels), x.dtype)
            else:
                sub_h, sub_w = sub.shape[:2]
                phase = jax.lax.conv_general_dilated(
                    x,
                    jnp.flip(sub, axis=(0, 1)),
                    window_strides=(1, 1),
                    padding=(
                        (sub_h - 1, qh - height),
                        (sub_w - 1, qw - width),
                    ),
                    dimension_numbers=_NHWC,
                )
            columns.append(phase)
        rows.append(jnp.stack(columns, axis=3))  # (batch, qh, qw, sw, o)
    full = jnp.stack(rows, axis=2)  # (batch, qh, sh, qw, sw, o)
    full = full.reshape(batch, qh * sh, qw * sw, out_channels)
    return full[:, ch : ch + out_size[0], cw : cw + out_size[1], :]


def _kernel_gradient(
    x: Array,
    dy: Array,
    kernel_shape: tuple[int, ...],
    strides: tuple[int, int],
    padding: tuple[tuple[int, int], ...],
) -> Array:
    """The gradient of a channels-last convolution with respect to its kernel.

    ``dk[a, b, c, o] = sum over n, i, j of xp[n, i s + a, j s + b, c] dy[n, i, j, o]`` with
    ``xp`` the padded input: the ``kh * kw`` strided slices of ``xp`` side by side (patches of
    shape (n i j, kh kw c)) in one matrix product with ``dy`` of shape (n i j, o).
    Written as a convolution instead (the input's channels as its batch, ``dy`` as a kernel
    the size of the output), XLA's CPU backend runs it several times slower: the tutorial's
    stride-2 decoder layers spent over a second per batch of 64 there.

    Args:
        x: the convolution's input, array of shape (batch, height, width, in_channels).
        dy: the output's cotangent, array of shape (batch, out_height, out_width,
            out_channels).
        kernel_shape: (kh, kw, in_channels, out_channels).
        strides: the convolution's (height, width) strides.
        padding: its ((low, high), (low, high)) padding.

    Returns:
        Array of shape ``kernel_shape``.
    """
    config = [(0, 0, 0)]
    for axis in range(2):
        size, kernel, stride = x.shape[1 + axis], kernel_shape[axis], strides[axis]
        low = padding[axis][0]
        # The rows the kernel can reach; a negative high edge crops rows no window uses.
        high = kernel + stride * (dy.shape[1 + axis] - 1) - size - low
        config.append((low, high, 0))
    config.append((0, 0, 0))
    padded = jax.lax.pad(x, jnp.zeros((), x.dtype), config)
    # One product (n i j, kh kw c)^T @ (n i j, o): wide enough for an efficient GEMM.
    patches = _strided_patches(padded, kernel_shape[:2], strides, dy.shape[1:3])
    dk = jnp.matmul(patches.T, dy.reshape(-1, kernel_shape[3]))
    return dk.reshape(kernel_shape)


def _strided_patches(
    padded: Array, window: tuple[int, int], strides: tuple[int, int], out_size: tuple[int, int]
) -> Array:
    """Every ``window``-sized patch of ``padded`` at the given strides, as rows of a matrix.

    Args:
        padded: array of shape (batch, height, width, channels).
        window: (kh, kw).
        strides: (sh, sw).
        out_size: (out_h, out_w), the number of patch positions along each axis.

    Returns:
        Array of shape (batch * out_h * out_w, kh * kw * channels): row ``(n, i, j)`` holds
        ``padded[n, i sh + a, j sw + b, c]`` at column ``(a, b, c)``.
    """
    batch, channels = padded.shape[0], padded.shape[3]
    (kh, kw), (sh, sw), (out_h, out_w) = window, strides, out_size
    slices = [
        jax.lax.slice(
            padded,
            (0, a, b, 0),
            (batch, a + sh * (out_h - 1) + 1, b + sw * (out_w - 1) + 1, channels),
            (1, sh, sw, 1),
        )
        for a in range(kh)
        for b in range(kw)
    ]
    return jnp.concatenate(slices, axis=3).reshape(-1, kh * kw * channels)


def _input_gradient(
    dy: Array,
    kernel: Array,
    x_shape: tuple[int, ...],
    strides: tuple[int, int],
    padding: tuple[tuple[int, int], ...],
) -> Array:
    """The gradient of a channels-last convolution with respect to its input.

    The cotangent gets ``s - 1`` zeros between neighbours and ``k - 1 - low`` at the border
    (one ``lax.pad``; negative edges crop) and is correlated with the flipped kernel whose
    input and output channels are swapped: a plain stride-1 convolution.

    Args:
        dy: the output's cotangent, array of shape (batch, out_height, out_width,
            out_channels).
        kernel: array of shape (kh, kw, in_channels, out_channels).
        x_shape: the input's shape (batch, height, width, in_channels).
        strides: the convolution's (height, width) strides.
        padding: its ((low, high), (low, high)) padding.

    Returns:
        Array of shape ``x_shape``.
    """
    lows = tuple(low for low, _ in padding)
    if min(lows) >= 0:
        # dx[n, i s + a - low, c] += dy[n, i, o] w[a, c, o]: a transposed convolution.
        swapped = jnp.transpose(kernel, (0, 1, 3, 2))
        return _strided_scatter(dy, swapped, strides, lows, x_shape[1:3])
    config = [(0, 0, 0)]
    for axis in range(2):
        size, width, stride = x_shape[1 + axis], kernel.shape[axis], strides[axis]
        low = width - 1 - padding[axis][0]
        high = size + width - 2 - (dy.shape[1 + axis] - 1) * stride - low
        config.append((low, high, stride - 1))
    config.append((0, 0, 0))
    return jax.lax.conv_general_dilated(
        jax.lax.pad(dy, jnp.zeros((), dy.dtype), config),
        jnp.transpose(jnp.flip(kernel, axis=(0, 1)), (0, 1, 3, 2)),
        window_strides=(1, 1),
        padding="VALID",
        dimension_numbers=_NHWC,
    )


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_nhwc(
    x: Array, kernel: Array, strides: tuple[int, int], padding: tuple[tuple[int, int], ...]
) -> Array:
    return jax.lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=_NHWC)


def _conv_nhwc_fwd(x, kernel, strides, padding):
    return _conv_nhwc(x, kernel, strides, padding), (x, kernel)


def _conv_nhwc_bwd(strides, padding, residuals, dy):
    x, kernel = residuals
    dx = _input_gradient(dy, kernel, x.shape, strides, padding)
    dk = _kernel_gradient(x, dy, kernel.shape, strides, padding)
    return dx.astype(x.dtype), dk.astype(kernel.dtype)


_conv_nhwc.defvjp(_conv_nhwc_fwd, _conv_nhwc_bwd)


def conv_general_dilated(
    lhs: ArrayLike,
    rhs: ArrayLike,
    window_strides: Sequence[int],
    padding: str | Sequence[tuple[int, int]],
    lhs_dilation: Sequence[int] | None = None,
    rhs_dilation: Sequence[int] | None = None,
    dimension_numbers=None,
    feature_group_count: int = 1,
    batch_group_count: int = 1,
    precision=None,
    preferred_element_type=None,
) -> Array:
    """``jax.lax.conv_general_dilated`` with a kernel gradient that stays fast in loops.

    XLA's CPU backend rewrites the gradients of a channels-last convolution (whose
    dimension layouts JAX's transpose rules permute) into its fast convolution form only
    outside ``while`` loops; inside one (a ``lax.scan`` over batches, as in
    :mod:`latent_jax.train`) it runs generic loop nests, which made a training step of a
    convolutional VAE about 10x slower than the same step outside a loop (compare
    jax-ml/jax#12868). For 2-D channels-last convolutions without dilation or groups, this
    function computes both gradients itself as plain stride-1 channels-last convolutions
    (:func:`_input_gradient`, :func:`_kernel_gradient`); values and gradients equal those of
    ``lax.conv_general_dilated``. Any other configuration is passed through to it.
    Pass it to ``nn.Conv(conv_general_dilated_cls=...)`` through :class:`FastConv`.

    Args:
        lhs: input, array of shape (batch, height, width, in_channels) in the fast case.
        rhs: kernel, array of shape (kh, kw, in_channels, out_channels) in the fast case.
        window_strides: the strides.
        padding: ``"SAME"``, ``"VALID"`` or (low, high) pairs.
        lhs_dilation: input dilation (transposed convolutions).
        rhs_dilation: kernel dilation.
        dimension_numbers: as for ``lax.conv_general_dilated``.
        feature_group_count: grouped convolutions.
        batch_group_count: batch groups.
        precision: as for ``lax.conv_general_dilated``.
        preferred_element_type: as for ``lax.conv_general_dilated``.

    Returns:
        The convolution's output.
    """
    lhs, rhs = jnp.asarray(lhs), jnp.asarray(rhs)
    strides = tuple(int(s) for s in window_strides)
    undilated = all(d == 1 for d in (*(lhs_dilation or ()), *(rhs_dilation or ())))
    fast = (
        lhs.ndim == 4
        and rhs.ndim == 4
        and undilated
        and feature_group_count == 1
        and batch_group_count == 1
        and precision is None
        and preferred_element_type is None
        and dimension_numbers is not None
        and jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
        == jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC)
    )
    if not fast or implementations.use_stock("conv_gradient"):
        return jax.lax.conv_general_dilated(
            lhs,
            rhs,
            window_strides,
            padding,
            lhs_dilation=lhs_dilation,
            rhs_dilation=rhs_dilation,
            dimension_numbers=dimension_numbers,
            feature_group_count=feature_group_count,
            batch_group_count=batch_group_count,
            precision=precision,
            preferred_element_type=preferred_element_type,
        )
    if isinstance(padding, str):
        padding = jax.lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], strides, padding)
    pads = tuple((int(low), int(high)) for low, high in padding)
    return _conv_nhwc(lhs, rhs, strides, pads)


class FastConv:
    """The ``conv_general_dilated_cls`` of ``nn.Conv`` that uses :func:`conv_general_dilated`."""

    def __call__(self, *args, **kwargs) -> Array:
        return conv_general_dilated(*args, **kwargs)


def conv_transpose(
    x: ArrayLike,
    kernel: ArrayLike,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    output_padding: IntOrPair = 0,
) -> Array:
    r"""PyTorch's ``conv_transpose2d`` for channels-last arrays, without bias.

    Computes :math:`\text{out}[i s + a - p, j s + b - p, o] \mathrel{+}= x[i, j, c]\,
    w[a, b, c, o]` (the gradient of a strided convolution): the input gets ``s - 1`` zeros
    between neighbours and ``k - 1 - p`` zeros at each border (plus ``output_padding`` at the
    bottom/right), in one ``lax.pad``, and is correlated with the spatially flipped kernel.
    Inserting the zeros explicitly, rather than through ``lhs_dilation``, keeps the
    convolution and its gradients on XLA's ordinary stride-1 path, which made a training step
    of the tutorial's face VAE about 3x faster on a CPU.

    Args:
        x: array of shape (batch, height, width, in_channels).
        kernel: array of shape (kh, kw, in_channels, out_channels).
        stride: an int or (height, width) pair, >= 1.
        padding: an int or pair, >= 0.
        output_padding: an int or pair, each smaller than the stride along its axis.

    Returns:
        Array of shape (batch, H, W, out_channels) with
        ``H = (height - 1) * sh - 2 * ph + kh + oph`` and likewise ``W``.
    """
    x = jnp.asarray(x)
    kernel = jnp.asarray(kernel)
    _check_images("x", x)
    if kernel.ndim != 4 or kernel.shape[2] != x.shape[3]:
        raise ValueError(
            f"kernel must have shape (kh, kw, {x.shape[3]}, out_channels) for x of shape "
            f"{x.shape}, got shape {kernel.shape}"
        )
    strides = _pair("stride", stride)
    pads = _pair("padding", padding)
    out_pads = _pair("output_padding", output_padding)
    _check_transpose_args(strides, pads, out_pads)
    for axis in range(2):
        conv_transpose_output_size(
            x.shape[1 + axis], kernel.shape[axis], strides[axis], pads[axis], out_pads[axis]
        )
    dtype = jnp.result_type(x, kernel)
    if implementations.use_stock("conv_transpose"):
        return _stock_conv_transpose(x.astype(dtype), kernel.astype(dtype), strides, pads, out_pads)
    return _conv_transpose(x.astype(dtype), kernel.astype(dtype), strides, pads, out_pads)


def _stock_conv_transpose(
    x: Array,
    kernel: Array,
    strides: tuple[int, int],
    pads: tuple[int, int],
    out_pads: tuple[int, int],
) -> Array:
    """:func:`conv_transpose` as JAX writes it: the input dilated by the stride
    (``lhs_dilation``), correlated with the flipped kernel; JAX's own gradients."""
    kh, kw = kernel.shape[:2]
    padding = [
        (k - 1 - p, k - 1 - p + op) for k, p, op in zip((kh, kw), pads, out_pads, strict=True)
    ]
    return jax.lax.conv_general_dilated(
        x,
        kernel[::-1, ::-1],
        window_strides=(1, 1),
        padding=padding,
        lhs_dilation=strides,
        dimension_numbers=_NHWC,
    )


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv_transpose(
    x: Array,
    kernel: Array,
    strides: tuple[int, int],
    pads: tuple[int, int],
    out_pads: tuple[int, int],
) -> Array:
    """:func:`conv_transpose` on checked arguments, with the gradients of :func:`_ct_bwd`."""
    out_size = tuple(
        conv_transpose_output_size(x.shape[1 + axis], kernel.shape[axis], s, p, op)
        for axis, (s, p, op) in enumerate(zip(strides, pads, out_pads, strict=True))
    )
    return _strided_scatter(x, kernel, strides, pads, out_size)


def _ct_fwd(x, kernel, strides, pads, out_pads):
    return _conv_transpose(x, kernel, strides, pads, out_pads), (x, kernel)


def _ct_bwd(strides, pads, out_pads, residuals, dy):
    """Both gradients from the undilated input, so no product touches the inserted zeros.

    With ``dyp`` the cotangent padded so that ``dyp[i s + a] = dy[i s + a - p]``:
    ``dx[n, i, j, c] = sum over a, b, o of dyp[n, i s + a, j s + b, o] w[a, b, c, o]`` (a
    strided convolution) and ``dk[a, b, c, o] = sum over n, i, j of x[n, i, j, c]
    dyp[n, i s + a, j s + b, o]`` (one matrix product with the strided patches of ``dyp``).
    Differentiating the forward pass instead correlates the zero-dilated input, which costs
    ``s * s`` times the work and ran on a slow path of XLA's CPU backend.
    """
    x, kernel = residuals
    kh, kw, channels, out_channels = kernel.shape
    height, width = x.shape[1:3]
    config = [(0, 0, 0)]
    for p, op in zip(pads, out_pads, strict=True):
        config.append((p, p - op, 0))  # a negative high edge crops the output padding
    config.append((0, 0, 0))
    padded = jax.lax.pad(dy, jnp.zeros((), dy.dtype), config)
    dx = jax.lax.conv_general_dilated(
        padded,
        jnp.transpose(kernel, (0, 1, 3, 2)),
        window_strides=strides,
        padding="VALID",
        dimension_numbers=_NHWC,
    )
    patches = _strided_patches(padded, (kh, kw), strides, (height, width))
    dk = jnp.matmul(x.reshape(-1, channels).T, patches)  # (c, kh kw o)
    dk = jnp.transpose(dk.reshape(channels, kh, kw, out_channels), (1, 2, 0, 3))
    return dx.astype(x.dtype), dk.astype(kernel.dtype)


_conv_transpose.defvjp(_ct_fwd, _ct_bwd)


def _check_transpose_args(
    strides: tuple[int, int], pads: tuple[int, int], out_pads: tuple[int, int]
) -> None:
    if min(strides) < 1:
        raise ValueError(f"stride must be >= 1, got stride={strides}")
    if min(pads) < 0:
        raise ValueError(f"padding must be >= 0, got padding={pads}")
    if min(out_pads) < 0 or any(op >= s for op, s in zip(out_pads, strides, strict=True)):
        raise ValueError(
            f"output_padding must be >= 0 and smaller than the stride {strides}, "
            f"got output_padding={out_pads}"
        )


class ConvTranspose(nn.Module):
    """Transposed convolution with PyTorch's ``ConvTranspose2d`` shapes and arithmetic.

    The output size is ``(in - 1) * stride - 2 * padding + kernel_size + output_padding`` per
    spatial axis, and the layer has ``kh * kw * in_channels * features + features``
    parameters, as in PyTorch. The kernel is stored as (kh, kw, in_channels, features) and
    used without flipping in the scatter form of :func:`conv_transpose`, so a PyTorch weight
    ``w`` of shape (in, out, kh, kw) loads as ``w.transpose(2, 3, 0, 1)``.

    Initialization uses flax's defaults (LeCun normal kernel, zero bias), not PyTorch's
    uniform ones.

    Attributes:
        features: output channels.
        kernel_size: an int or (kh, kw) pair.
        stride: an int or (height, width) pair.
        padding: an int or pair, the PyTorch ``padding`` (rows/columns cut from each side).
        output_padding: an int or pair added at the bottom/right, smaller than the stride.
        use_bias: whether to add a bias.
        kernel_init: initializer of the kernel.
        bias_init: initializer of the bias.
    """

    features: int
    kernel_size: IntOrPair
    stride: IntOrPair = 1
    padding: IntOrPair = 0
    output_padding: IntOrPair = 0
    use_bias: bool = True
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
    bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x: Array) -> Array:
        """Applies the layer to ``x`` of shape (batch, height, width, in_channels)."""
        x = jnp.asarray(x)
        _check_images("x", x)
        kh, kw = _pair("kernel_size", self.kernel_size)
        kernel = self.param("kernel", self.kernel_init, (kh, kw, x.shape[-1], self.features))
        kernel, x = nn.dtypes.promote_dtype(kernel, x)
        y = conv_transpose(x, kernel, self.stride, self.padding, self.output_padding)
        if self.use_bias:
            bias = self.param("bias", self.bias_init, (self.features,))
            y = y + bias.astype(y.dtype)
        return y
