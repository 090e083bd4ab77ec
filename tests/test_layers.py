"""Layers: transposed convolution against PyTorch's definition, pool/unpool, reshape and crop."""

import functools
import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numerics import assert_bitwise, assert_close

from latent_jax.models.layers import (
    BatchNorm,
    ConvTranspose,
    Crop,
    Reshape,
    conv_output_size,
    conv_transpose,
    conv_transpose_output_size,
    max_pool_with_argmax,
    max_unpool,
)

# Compiled training: benchmarks/gpu_suite.py runs these on the device (pytest -m device).
pytestmark = pytest.mark.device


def _conv_transpose_reference(x, w, stride, padding, output_padding=(0, 0)):
    """PyTorch's ConvTranspose2d by its definition, in float64 NumPy (channels last).

    out[i*s + a - p, j*s + b - p, o] += x[i, j, c] * w[a, b, c, o], then
    output_padding extra rows/columns at the bottom/right.
    """
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    n, h, wd, _ = x.shape
    kh, kw, _, cout = w.shape
    (sh, sw), (ph, pw), (oh, ow) = stride, padding, output_padding
    full = np.zeros((n, (h - 1) * sh + kh + oh, (wd - 1) * sw + kw + ow, cout))
    for i, j, a, b in itertools.product(range(h), range(wd), range(kh), range(kw)):
        full[:, i * sh + a, j * sw + b, :] += x[:, i, j, :] @ w[a, b]
    out_h = (h - 1) * sh - 2 * ph + kh + oh
    out_w = (wd - 1) * sw - 2 * pw + kw + ow
    return full[:, ph : ph + out_h, pw : pw + out_w, :]


@pytest.mark.parametrize(("stride", "padding"), list(itertools.product((1, 2), (0, 1))))
def test_conv_transpose_matches_pytorch_definition(stride, padding):
    rng = np.random.default_rng(stride * 10 + padding)
    x = rng.normal(size=(2, 5, 4, 3)).astype(np.float32)  # non-square input
    w = rng.normal(size=(3, 2, 3, 4)).astype(np.float32)  # non-square kernel
    got = conv_transpose(x, w, stride, padding)
    want = _conv_transpose_reference(x, w, (stride, stride), (padding, padding))
    assert got.shape == want.shape
    assert_close(got, want, ops=18)  # float64 reference; each output a dot of 3 x 2 x 3 terms


def test_conv_transpose_per_axis_arguments_and_output_padding():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(1, 4, 6, 2)).astype(np.float32)
    w = rng.normal(size=(3, 3, 2, 3)).astype(np.float32)
    got = conv_transpose(x, w, stride=(2, 3), padding=(1, 0), output_padding=(1, 2))
    want = _conv_transpose_reference(x, w, (2, 3), (1, 0), (1, 2))
    assert got.shape == (1, 8, 20, 3)  # (4-1)*2-2+3+1, (6-1)*3-0+3+2
    assert_close(got, want, ops=18)  # float64 reference; a dot of 3 x 3 x 2 terms


@pytest.mark.parametrize(("stride", "padding"), list(itertools.product((1, 2), (0, 1))))
def test_conv_transpose_module_shape_and_params(stride, padding):
    x = jax.ShapeDtypeStruct((2, 7, 5, 4), jnp.float32)
    layer = ConvTranspose(features=6, kernel_size=3, stride=stride, padding=padding)
    y, variables = jax.eval_shape(lambda a: layer.init_with_output(jax.random.key(1), a), x)
    expected = tuple((n - 1) * stride - 2 * padding + 3 for n in (7, 5))
    assert y.shape == (2, *expected, 6)
    assert expected == tuple(conv_transpose_output_size(n, 3, stride, padding) for n in (7, 5))
    params = variables["params"]
    assert params["kernel"].shape == (3, 3, 4, 6)
    assert sum(p.size for p in jax.tree.leaves(params)) == 3 * 3 * 4 * 6 + 6  # PyTorch's count


def test_conv_transpose_module_applies_kernel_and_bias():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 4, 3, 2)).astype(np.float32)
    layer = ConvTranspose(features=3, kernel_size=(3, 2), stride=2, padding=1)
    kernel = rng.normal(size=(3, 2, 2, 3)).astype(np.float32)
    y = layer.apply({"params": {"kernel": kernel, "bias": jnp.arange(3.0)}}, x)
    want = _conv_transpose_reference(x, kernel, (2, 2), (1, 1)) + np.arange(3.0)
    assert_close(y, want, ops=13)  # float64 reference; a dot of 3 x 2 x 2 terms, the bias


def test_conv_transpose_without_bias():
    x = jnp.ones((1, 3, 3, 2))
    layer = ConvTranspose(4, (2, 3), use_bias=False)
    variables = jax.eval_shape(layer.init, jax.random.key(0), x)
    assert set(variables["params"]) == {"kernel"}
    assert variables["params"]["kernel"].shape == (2, 3, 2, 4)


def test_seed_decoder_sizes():
    """The seed's face decoder: 28x23 -> 28x23 -> 55x45 -> 111x91 -> 113x93."""
    sizes = [(28, 23)]
    for stride, padding in ((1, 1), (2, 1), (2, 0), (1, 0)):
        sizes.append(tuple(conv_transpose_output_size(n, 3, stride, padding) for n in sizes[-1]))
    assert sizes == [(28, 23), (28, 23), (55, 45), (111, 91), (113, 93)]
    encoder = [(112, 92)]
    for stride in (1, 2, 2, 1):
        encoder.append(tuple(conv_output_size(n, 3, stride, 1) for n in encoder[-1]))
    assert encoder == [(112, 92), (112, 92), (56, 46), (28, 23), (28, 23)]


@pytest.mark.numerics
def test_conv_transpose_is_the_gradient_of_a_strided_convolution():
    """<conv(u), v> == <u, conv_transpose(v)>: the transposed convolution is the adjoint."""
    rng = np.random.default_rng(3)
    w = rng.normal(size=(3, 3, 2, 3)).astype(np.float32)
    u = rng.normal(size=(1, 9, 8, 2)).astype(np.float32)

    def conv(a):
        return jax.lax.conv_general_dilated(
            a, w, (2, 2), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC")
        )

    v = rng.normal(size=conv(u).shape).astype(np.float32)
    # conv maps 9 -> 5 rows and 8 -> 4 columns; the transpose maps 5 -> 9 and 4 -> 7 (+1).
    back = conv_transpose(v, w.transpose(0, 1, 3, 2), 2, 1, output_padding=(0, 1))
    assert back.shape == u.shape
    # Two sums of products in other orders: conv's 3 x 3 x 2 terms then 60 outputs, or the
    # transpose's 2 x 2 x 3 terms then 144 inputs. The terms cancel (their magnitudes add up to
    # about 9 times the value), so round-off is relative to that sum of magnitudes.
    magnitude = float(jnp.vdot(jnp.abs(conv(u)), jnp.abs(v)))
    assert_close(jnp.vdot(conv(u), v), jnp.vdot(u, back), ops=156, scale=magnitude)


def _conv_transpose_by_dilation(x, w, stride, padding, output_padding):
    """The textbook form, differentiated by JAX: zero-dilate, pad, correlate the flipped kernel."""
    config = [(0, 0, 0)]
    config += [(k - 1 - padding, k - 1 - padding + output_padding, stride - 1) for k in w.shape[:2]]
    config.append((0, 0, 0))
    return jax.lax.conv_general_dilated(
        jax.lax.pad(x, 0.0, config),
        jnp.flip(w, (0, 1)),
        (1, 1),
        "VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )


@pytest.mark.parametrize(
    ("stride", "padding", "output_padding", "kernel"),
    [
        (1, 0, 0, 3),
        (1, 1, 0, 3),
        (2, 1, 0, 3),
        (2, 0, 0, 3),
        # Two cases run again under other instruction sets (make test-isa).
        pytest.param(2, 1, 1, 3, marks=pytest.mark.numerics),
        pytest.param(3, 2, 2, 2, marks=pytest.mark.numerics),
    ],
)
def test_conv_transpose_gradients_match_autodiff_of_the_dilated_form(
    stride, padding, output_padding, kernel
):
    """The hand-written VJP (undilated products) equals autodiff of the zero-dilated form."""
    rng = np.random.default_rng(stride * 10 + padding)
    x = jnp.asarray(rng.normal(size=(2, 5, 4, 3)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(kernel, kernel, 3, 2)), jnp.float32)
    args = (stride, padding, output_padding)
    y, vjp = jax.vjp(lambda x, w: conv_transpose(x, w, *args), x, w)
    y_ref, vjp_ref = jax.vjp(lambda x, w: _conv_transpose_by_dilation(x, w, *args), x, w)
    # Two programs for the same sums: an output is a dot of at most 3 x 3 x 3 terms; the
    # gradients sum at most 2 x 5 x 4 (the kernel's, over the input positions) terms.
    assert_close(y, y_ref, ops=27)
    dy = jnp.asarray(rng.normal(size=y.shape), jnp.float32)
    for got, want in zip(vjp(dy), vjp_ref(dy), strict=True):
        assert_close(got, want, ops=40)
    # And through jit and a scan, as the training engine runs it.
    scanned = jax.jit(
        lambda w: jax.lax.scan(
            lambda c, _: (c, jax.grad(lambda w: jnp.vdot(conv_transpose(x, w, *args), dy))(w)),
            0,
            None,
            length=2,
        )[1][1]
    )
    assert_close(scanned(w), vjp_ref(dy)[1], ops=40)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"stride": 2, "output_padding": 2}, "output_padding must be >= 0 and smaller"),
        ({"stride": 1, "output_padding": 1}, "output_padding must be >= 0 and smaller"),
        ({"padding": -1}, "padding must be >= 0"),
        ({"stride": 0}, "stride must be >= 1"),
        ({"padding": 3}, "gives an empty output"),
    ],
)
def test_conv_transpose_rejects_bad_arguments(kwargs, match):
    x, w = jnp.ones((1, 2, 2, 1)), jnp.ones((3, 3, 1, 1))
    with pytest.raises(ValueError, match=match):
        conv_transpose(x, w, **kwargs)


def test_conv_transpose_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"x must have shape \(batch, height, width, channels\)"):
        conv_transpose(jnp.ones((2, 2, 1)), jnp.ones((3, 3, 1, 1)))
    with pytest.raises(ValueError, match=r"kernel must have shape \(kh, kw, 2, out_channels\)"):
        conv_transpose(jnp.ones((1, 2, 2, 2)), jnp.ones((3, 3, 1, 1)))
    with pytest.raises(TypeError, match="stride must be an int or a pair of ints"):
        conv_transpose(jnp.ones((1, 2, 2, 1)), jnp.ones((3, 3, 1, 1)), stride=(1, 2, 3))
    with pytest.raises(ValueError, match="needs an input of size >= 5"):
        conv_output_size(4, kernel_size=5)


_pool = jax.jit(max_pool_with_argmax, static_argnums=1)


@functools.partial(jax.jit, static_argnums=1)
def _roundtrip(x, window):
    """max_unpool(max_pool_with_argmax(x)), one compile per shape instead of one per op."""
    return max_unpool(*max_pool_with_argmax(x, window), x.shape[1:3])


def _unpool_reference(x, window):
    """Each full window's first maximum kept in place, everything else zero (NumPy)."""
    x = np.asarray(x)
    wh, ww = (window, window) if isinstance(window, int) else window
    out = np.zeros_like(x)
    for n, c in itertools.product(range(x.shape[0]), range(x.shape[3])):
        for i, j in itertools.product(range(x.shape[1] // wh), range(x.shape[2] // ww)):
            block = x[n, i * wh : (i + 1) * wh, j * ww : (j + 1) * ww, c]
            a, b = np.unravel_index(np.argmax(block), block.shape)
            out[n, i * wh + a, j * ww + b, c] = block[a, b]
    return out


def test_max_pool_values_and_indices():
    x = np.random.default_rng(0).normal(size=(2, 7, 5, 3)).astype(np.float32)  # odd sizes
    pooled, indices = _pool(x, 2)  # the last row and column do not fill a window: dropped
    assert pooled.shape == indices.shape == (2, 3, 2, 3)
    assert indices.dtype == jnp.int32
    want = np.asarray(x)[:, :6, :4, :].reshape(2, 3, 2, 2, 2, 3).max(axis=(2, 4))
    assert_bitwise(pooled, want)  # a maximum is exact
    # Indices are flat positions row * width + col of the maxima, inside their own window.
    flat = np.asarray(x).reshape(2, 7 * 5, 3)
    gathered = np.take_along_axis(flat, np.asarray(indices).reshape(2, 6, 3), axis=1)
    assert_bitwise(gathered.reshape(want.shape), want)
    rows, cols = np.divmod(np.asarray(indices), 5)
    np.testing.assert_array_equal(
        rows // 2, np.broadcast_to(np.arange(3)[:, None, None], rows.shape)
    )
    np.testing.assert_array_equal(cols // 2, np.broadcast_to(np.arange(2)[:, None], cols.shape))


def test_max_pool_ties_pick_the_first_maximum():
    x = jnp.zeros((1, 4, 6, 1)).at[0, 1, 1, 0].set(-1.0)
    _, indices = _pool(x, (2, 3))
    np.testing.assert_array_equal(indices[0, :, :, 0], [[0, 3], [12, 15]])


@pytest.mark.parametrize(("shape", "window"), [((2, 6, 4, 3), (2, 2)), ((1, 7, 9, 2), (3, 2))])
def test_unpool_of_pool_keeps_each_maximum_in_place(shape, window):
    x = np.random.default_rng(1).uniform(1.0, 2.0, size=shape).astype(np.float32)
    out = _roundtrip(x, window)
    assert out.shape == shape
    assert_bitwise(out, _unpool_reference(x, window))  # maxima moved, zeros: exact


# A few shapes (each one compiles once), many values; ties are made likely by rounding.
_POOL_CASES = [((1, 1, 1, 1), 1), ((2, 5, 7, 2), 2), ((1, 9, 4, 3), (3, 2)), ((2, 6, 6, 1), 3)]


@settings(deadline=None, max_examples=30)
@given(case=st.sampled_from(_POOL_CASES), seed=st.integers(0, 2**16), decimals=st.integers(0, 3))
def test_unpool_of_pool_property(case, seed, decimals):
    shape, window = case
    x = np.random.default_rng(seed).normal(size=shape).round(decimals).astype(np.float32)
    out = _roundtrip(x, window)
    assert_bitwise(out, _unpool_reference(x, window))


def test_pool_unpool_jit_and_gradient():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 5, 6, 2)).astype(np.float32)
    weights = rng.normal(size=x.shape).astype(np.float32)

    eager = max_unpool(*max_pool_with_argmax(x, 2), (5, 6))
    assert_bitwise(_roundtrip(x, 2), eager)  # maxima and zeros: exact in any program
    grad = jax.jit(jax.grad(lambda a: jnp.sum(_roundtrip(a, 2) * weights)))(x)
    mask = _unpool_reference(np.asarray(x) - np.asarray(x).min() + 1.0, (2, 2)) != 0
    np.testing.assert_allclose(grad, np.where(mask, weights, 0.0), rtol=1e-6)


def test_pool_rejects_images_smaller_than_a_window():
    with pytest.raises(ValueError, match=r"x must be at least one 3x2 window .* \(1, 2, 5, 1\)"):
        max_pool_with_argmax(jnp.ones((1, 2, 5, 1)), (3, 2))
    with pytest.raises(ValueError, match="window must be >= 1"):
        max_pool_with_argmax(jnp.ones((1, 2, 5, 1)), 0)


def test_unpool_rejects_mismatched_indices():
    pooled = jnp.ones((1, 2, 2, 1))
    with pytest.raises(ValueError, match=r"indices must have the shape of pooled \(1, 2, 2, 1\)"):
        max_unpool(pooled, jnp.zeros((1, 2, 2, 2), jnp.int32), (4, 4))
    with pytest.raises(TypeError, match="indices must be integers"):
        max_unpool(pooled, jnp.zeros((1, 2, 2, 1)), (4, 4))
    with pytest.raises(ValueError, match=r"pooled must have shape \(batch, height"):
        max_unpool(jnp.ones((2, 2, 1)), jnp.zeros((2, 2, 1), jnp.int32), (4, 4))


def test_reshape_and_crop():
    x = jnp.arange(24.0).reshape(2, 12)
    y = Reshape((2, 3, 2)).apply({}, x)
    assert_bitwise(y, np.arange(24.0).reshape(2, 2, 3, 2))
    with pytest.raises(
        ValueError, match=r"x must have 10 values per example .* got shape \(2, 12\)"
    ):
        Reshape((5, 2)).apply({}, x)
    img = np.random.default_rng(0).normal(size=(2, 113, 93, 1)).astype(np.float32)
    assert_bitwise(Crop(112, 92).apply({}, img), img[:, :-1, :-1, :])  # the Trim
    with pytest.raises(ValueError, match=r"x must be at least 114x92 .* got shape \(2, 113, 93"):
        Crop(114, 92).apply({}, img)


# ---------------------------------------------------------------- BatchNorm


def _batch_norm_pass(module, x, **kwargs):
    variables = module.init(jax.random.key(0), x, use_running_average=False)
    variables = {
        "params": {"scale": jnp.linspace(0.5, 2.0, x.shape[-1]), "bias": jnp.ones(x.shape[-1])},
        "batch_stats": variables["batch_stats"],
    }
    y, updates = module.apply(
        variables, x, use_running_average=False, mutable=["batch_stats"], **kwargs
    )
    return y, updates["batch_stats"], variables


@pytest.mark.numerics
def test_batch_norm_matches_flax_and_its_running_statistics():
    x = 3.0 + 2.0 * jax.random.normal(jax.random.key(1), (6, 5, 4, 3))
    ours, stats, variables = _batch_norm_pass(BatchNorm(momentum=0.9, epsilon=1e-5), x)
    theirs, flax_stats, _ = _batch_norm_pass(nn.BatchNorm(momentum=0.9, epsilon=1e-5), x)
    # Two implementations: a mean and a variance over 6 x 5 x 4 = 120 values each (240
    # ops), then the normalization's 5.
    assert_close(ours, theirs, ops=245)
    for name in ("mean", "var"):
        assert_close(stats[name], flax_stats[name], ops=245)
    assert_close(stats["mean"], 0.1 * x.mean(axis=(0, 1, 2)), ops=245)
    assert_close(stats["var"], 0.9 + 0.1 * x.var(axis=(0, 1, 2)), ops=245)
    # Inference mode normalizes with the stored statistics: var + eps, rsqrt, subtraction,
    # two multiplications and an addition, to values that cross 0.
    y = BatchNorm().apply(variables, x, use_running_average=True)
    expected = (x - 0.0) / np.sqrt(1.0 + 1e-5) * variables["params"]["scale"] + 1.0
    assert_close(y, expected, ops=6)


def test_batch_norm_mask_keeps_padding_rows_out_of_the_statistics():
    x = jax.random.normal(jax.random.key(2), (4, 3, 3, 2))
    padded = jnp.concatenate([x, 100.0 + jax.random.normal(jax.random.key(3), (2, 3, 3, 2))])
    mask = jnp.array([True] * 4 + [False] * 2)
    y, stats, _ = _batch_norm_pass(BatchNorm(), x)
    y_padded, stats_padded, _ = _batch_norm_pass(BatchNorm(), padded, mask=mask)
    # Masked and unmasked sums: a mean and a variance over 4 x 3 x 3 = 36 values, then the
    # normalization's 5 ops.
    assert_close(y_padded[:4], y, ops=77)
    # The running mean is 0.1 x a mean of values of both signs near 0: its round-off is
    # relative to the values summed, not to the mean.
    assert_close(stats_padded["mean"], stats["mean"], ops=77, scale=0.1 * float(np.max(np.abs(x))))
    assert_close(stats_padded["var"], stats["var"], ops=77)

    # Gradients agree with flax's masked BatchNorm too.
    def loss(module, x):
        variables = module.init(jax.random.key(0), x, use_running_average=False)
        y, _ = module.apply(
            variables,
            x,
            use_running_average=False,
            mask=mask[:, None, None, None] if isinstance(module, nn.BatchNorm) else mask,
            mutable=["batch_stats"],
        )
        return jnp.sum(jnp.sin(y))

    # The forward pass (77 ops, sin), then the backward's two means over 36 values and its
    # combination. The padding rows (at 100) enter the real rows' gradients through the
    # statistics: the result's scale is theirs (about 40), so the default scale covers them.
    assert_close(
        jax.grad(functools.partial(loss, BatchNorm()))(padded),
        jax.grad(functools.partial(loss, nn.BatchNorm()))(padded),
        ops=155,
    )
