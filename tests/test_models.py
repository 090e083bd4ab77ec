"""Models: shapes and parameter counts, the seed's face VAE, BatchNorm modes, bad input."""

import itertools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numerics import assert_bitwise, assert_close

from latent_jax.gaussian import reparameterize
from latent_jax.models.conv import ConvAutoencoder, ConvSpec, ConvVAE
from latent_jax.models.mlp import VAE, Autoencoder

KEY = jax.random.key(0)


def _normal(seed, shape):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def _count(tree):
    return sum(leaf.size for leaf in jax.tree.leaves(tree))


def _dense(n_in, n_out):
    return n_in * n_out + n_out


def _conv(k, c_in, c_out):
    return k * k * c_in * c_out + c_out


def _abstract_init(model, *args, **kwargs):
    """init_with_output through jax.eval_shape: shapes only, nothing compiled or allocated."""
    return jax.eval_shape(lambda *a: model.init_with_output(KEY, *a, **kwargs), *args)


def _random_variables(model, *args, seed=0):
    """Variables of the right structure filled from NumPy.

    Compiling the initializers costs seconds on a CPU, and numeric tests need any weights, not
    flax's: kernels ~ N(0, 1 / fan_in), vectors ~ N(0, 0.1^2), BatchNorm statistics at their
    initial 0 / 1.
    """
    rng = np.random.default_rng(seed)
    _, abstract = _abstract_init(model, *args)

    def fill(path, leaf):
        name = jax.tree_util.keystr(path)
        if "batch_stats" in name:
            value = np.ones(leaf.shape) if "var" in name else np.zeros(leaf.shape)
        elif len(leaf.shape) >= 2:
            value = rng.normal(size=leaf.shape) / math.sqrt(math.prod(leaf.shape[:-1]))
        else:
            value = 0.1 * rng.normal(size=leaf.shape)
        return jnp.asarray(value, leaf.dtype)

    return jax.tree_util.tree_map_with_path(fill, abstract)


# ---------------------------------------------------------------- MLP models


def test_autoencoder_defaults_are_the_seeds():
    model = Autoencoder()
    x = _normal(0, (4, 50))
    recon, variables = _abstract_init(model, x)
    assert recon.shape == (4, 50)
    params = variables["params"]
    assert set(variables) == {"params"}
    # 50 -> 30 -> 10 -> 5 and back, as in the seed's AutoEncoder(50, 5).
    expected = sum(
        _dense(a, b) for a, b in [(50, 30), (30, 10), (10, 5), (5, 10), (10, 30), (30, 50)]
    )
    assert _count(params) == expected == 3835
    assert params["encoder"]["dense0"]["kernel"].shape == (50, 30)
    assert params["decoder"]["dense2"]["kernel"].shape == (30, 50)
    variables = _random_variables(model, x)

    @jax.jit
    def run(variables, x):
        z = model.apply(variables, x, method="encode")
        return z, model.apply(variables, z, method="decode"), model.apply(variables, x)

    z, decoded, recon = run(variables, x)
    assert z.shape == (4, 5)
    # Two paths through one program, which XLA may fuse differently: ops = the fan-ins
    # 50 + 30 + 10 + 5 + 10 + 30.
    assert_close(decoded, recon, ops=135)


def test_autoencoder_activation_is_leaky_relu_01():
    """One hidden layer, identity-like weights: the code is LeakyReLU(0.1) of the input."""
    model = Autoencoder(input_dim=2, hidden_dims=(2,), latent_dim=2)
    eye = {"kernel": jnp.eye(2), "bias": jnp.zeros(2)}
    params = {"encoder": {"dense0": eye, "dense1": eye}, "decoder": {"dense0": eye, "dense1": eye}}
    x = jnp.array([[1.0, -2.0]])
    np.testing.assert_allclose(model.apply({"params": params}, x, method="encode"), [[1.0, -0.2]])


@pytest.mark.parametrize(("hidden", "latent"), [((), 3), ((8,), 2), ((16, 8, 4), 2)])
def test_autoencoder_widths(hidden, latent):
    model = Autoencoder(input_dim=12, hidden_dims=hidden, latent_dim=latent)
    recon, variables = _abstract_init(model, jnp.zeros((3, 12)))
    assert recon.shape == (3, 12)
    widths = [12, *hidden, latent]
    expected = 2 * sum(_dense(a, b) for a, b in itertools.pairwise(widths))
    expected += 12 - latent  # the two sides' biases differ: decoder biases end at input_dim
    assert _count(variables["params"]) == expected


def test_vae_shapes_params_and_reparameterization():
    model = VAE()
    x = _normal(0, (4, 50))
    key = jax.random.key(1)
    (recon, mean, logvar), variables = _abstract_init(model, x, key)
    assert recon.shape == (4, 50)
    assert mean.shape == logvar.shape == (4, 5)
    trunk = _dense(50, 30) + _dense(30, 10)
    heads = 2 * _dense(10, 5)
    decoder = _dense(5, 10) + _dense(10, 30) + _dense(30, 50)
    assert _count(variables["params"]) == trunk + heads + decoder == 3890

    @jax.jit
    def run(variables, x, key):
        mean, logvar = model.apply(variables, x, method="encode")
        z = reparameterize(key, mean, logvar)
        decoded = model.apply(variables, z, method="decode")
        return model.apply(variables, x, key), (decoded, mean, logvar)

    variables = _random_variables(model, x, key)
    # __call__ = decode(reparameterize(key, *encode(x))), and the key alone sets the draw.
    got, want = run(variables, x, key)
    # Two paths through one program: ops = the fan-ins of the encoder (50 + 30 + 10), then
    # the draw's 3 and the decoder's 5 + 10 + 30 for the reconstruction.
    for a, b, ops in zip(got, want, (138, 90, 90), strict=True):
        assert_close(a, b, ops=ops)
    assert_bitwise(run(variables, x, key)[0][0], got[0])  # the same program, called again
    other = run(variables, x, jax.random.key(2))[0]
    assert not np.allclose(other[0], got[0], atol=1e-3)
    assert_bitwise(other[1], got[1])  # the same program: the key does not enter the mean


# ---------------------------------------------------------------- ConvVAE


def _conv_vae_params(flat):
    """Trainable parameters of the seed's ConvVAE as a function of the flattened size."""
    encoder = _conv(3, 1, 32) + 2 * 32 + _conv(3, 32, 64) + 2 * _conv(3, 64, 64)
    encoder += _dense(flat, 100)
    heads = 2 * _dense(100, 10)
    decoder = _dense(10, 100) + _dense(100, flat)
    decoder += 2 * _conv(3, 64, 64) + _conv(3, 64, 32) + 2 * 32 + _conv(3, 32, 1)
    return encoder + heads + decoder


def test_seed_conv_vae():
    model = ConvVAE()
    x = jax.ShapeDtypeStruct((3, 112, 92, 1), jnp.float32)
    (recon, mean, logvar), variables = _abstract_init(model, x, KEY)
    assert recon.shape == (3, 112, 92, 1)
    assert mean.shape == logvar.shape == (3, 10)
    assert model.feature_shape == (28, 23, 64)
    params = variables["params"]
    assert _count(params) == _conv_vae_params(41216) == 8_473_045  # the PyTorch model's count
    assert params["encoder"]["dense"]["kernel"].shape == (41216, 100)
    assert params["decoder"]["dense1"]["kernel"].shape == (100, 41216)
    # Running statistics are state, not trainable: two BatchNorm(32), mean and variance each.
    assert _count(variables["batch_stats"]) == 2 * 2 * 32


@pytest.mark.parametrize(
    ("image_shape", "feature_hw"),
    [((25, 25, 1), (7, 7)), ((64, 64, 1), (16, 16)), ((8, 8, 1), (2, 2)), ((28, 28, 1), (7, 7))],
)
def test_conv_vae_other_image_sizes(image_shape, feature_hw):
    model = ConvVAE(image_shape=image_shape)
    x = jax.ShapeDtypeStruct((2, *image_shape), jnp.float32)
    (recon, mean, _), variables = _abstract_init(model, x, KEY)
    assert recon.shape == (2, *image_shape)
    assert mean.shape == (2, 10)
    assert model.feature_shape == (*feature_hw, 64)
    assert _count(variables["params"]) == _conv_vae_params(math.prod(feature_hw) * 64)


def test_conv_vae_configurable():
    model = ConvVAE(
        image_shape=(12, 10, 3),
        hidden_dim=16,
        latent_dim=4,
        encoder_convs=(ConvSpec(8, 3, 2, 1, batch_norm=True), (8, 3, 2, 1)),
        decoder_convs=((8, 4, 2, 1),),
        output_conv=(4, 2, 1),
    )
    x = jax.ShapeDtypeStruct((2, 12, 10, 3), jnp.float32)
    (recon, mean, _), variables = _abstract_init(model, x, KEY)
    assert recon.shape == (2, 12, 10, 3)  # 3x3 -> 6x6 -> 12x12, cropped to 12x10
    assert mean.shape == (2, 4)
    assert model.feature_shape == (3, 3, 8)
    assert set(variables["batch_stats"]["encoder"]) == {"bn0"}


@pytest.fixture(scope="module")
def small_vae():
    model = ConvVAE(image_shape=(8, 8, 1), hidden_dim=16, latent_dim=3)
    x = _normal(3, (5, 8, 8, 1)) * 2.0 + 1.0
    return model, _random_variables(model, x, KEY, seed=1), x


def test_conv_vae_batchnorm_train_and_eval(small_vae):
    model, variables, x = small_vae
    conv0 = nn.Conv(32, (3, 3), padding=((1, 1), (1, 1)))

    @jax.jit
    def run(variables, x, key, z):
        train_out, updates = model.apply(variables, x, key, train=True, mutable=["batch_stats"])
        return {
            "train": train_out,
            "stats": updates["batch_stats"],
            "eval": model.apply(variables, x, key),  # the default: running statistics
            "eval_explicit": model.apply(variables, x, key, train=False),
            "encode": model.apply(variables, x, method="encode"),
            "decode": model.apply(variables, z, method="decode"),
            "bn0_input": nn.leaky_relu(
                conv0.apply({"params": variables["params"]["encoder"]["conv0"]}, x), 0.01
            ),
        }

    out = run(variables, x, KEY, jnp.ones((7, 3)))
    recon, mean, logvar = out["train"]
    assert recon.shape == x.shape and mean.shape == logvar.shape == (5, 3)
    assert np.isfinite(recon).all()
    # PyTorch's update: running = 0.9 * running + 0.1 * batch (flax momentum 0.9), from 0 / 1.
    h, bn0 = out["bn0_input"], out["stats"]["encoder"]["bn0"]
    np.testing.assert_allclose(bn0["mean"], 0.1 * h.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(bn0["var"], 0.9 + 0.1 * h.var(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)
    assert set(out["stats"]["decoder"]) == {"bn2"}
    # Evaluation uses the running statistics, so it differs from the batch-statistics pass.
    for a, b in zip(out["eval"], out["eval_explicit"], strict=True):
        assert_bitwise(a, b)  # the same computation (train=False is the default), one program
    assert not np.allclose(out["eval"][0], recon, atol=1e-3)
    # Two paths through one program: ops = the encoder's fan-ins 9 + 288 + 576 + 576 + 256 +
    # 16 and BatchNorm's few (on the running statistics).
    assert_close(out["encode"][0], out["eval"][1], ops=1730)
    assert out["decode"].shape == (7, 8, 8, 1)


# 14 s: the masked BatchNorm layer itself is checked in tests/test_layers.py; this is the
# whole convolutional VAE.
@pytest.mark.slow
def test_conv_vae_masked_rows_do_not_enter_batchnorm(small_vae):
    # The padding rows of a ragged batch: wild values, masked out. Real rows' outputs and the
    # running statistics must equal those of the unpadded batch.
    model, variables, x = small_vae
    padded = jnp.concatenate([x, 50.0 * _normal(9, (3, *x.shape[1:]))])
    mask = jnp.arange(len(padded)) < len(x)

    def train_pass(x, mask):
        return model.apply(variables, x, KEY, train=True, mask=mask, mutable=["batch_stats"])

    (recon, mean, _), stats = train_pass(x, None)
    (recon_p, mean_p, _), stats_p = train_pass(padded, mask)
    # Masked and unmasked sums, other batch shapes: ops = the encoder's fan-ins 9 + 288 +
    # 576 + 576 + 256 + 16 and bn0's mean and variance over 5 x 8 x 8 values (640), for the
    # posterior mean 2370; the draw's 3, the decoder's fan-ins 3 + 16 + 3 x 576 + 288 and
    # bn2's mean and variance over 5 x 7 x 7 values (490) for the reconstruction, 4900.
    assert_close(recon_p[: len(x)], recon, ops=4900)
    assert_close(mean_p[: len(x)], mean, ops=2370)
    for bn, ops in (("bn0", 650), ("bn2", 4600)):  # the chains up to each BatchNorm's moments
        side = "encoder" if bn == "bn0" else "decoder"
        got, want = stats_p["batch_stats"][side][bn], stats["batch_stats"][side][bn]
        # A mean of values of both signs: its round-off is relative to their root mean square.
        batch_mean, batch_var = want["mean"] / 0.1, (want["var"] - 0.9) / 0.1
        rms = float(np.max(np.sqrt(batch_mean**2 + batch_var)))
        assert_close(got["mean"], want["mean"], ops=ops, scale=0.1 * rms)
        # 0.9 + 0.1 x a variance: one rounding relative to 0.9, the chain's relative to
        # 0.1 x rms**2 (below 0.03 here): both far inside 1e-4.
        np.testing.assert_allclose(got["var"], want["var"], rtol=1e-4, atol=1e-6)
    # Without the mask the padding shifts the statistics: the check above is not vacuous.
    _, unmasked = train_pass(padded, None)
    assert not np.allclose(
        unmasked["batch_stats"]["encoder"]["bn0"]["var"],
        stats["batch_stats"]["encoder"]["bn0"]["var"],
        rtol=1e-2,
    )


# ---------------------------------------------------------------- ConvAutoencoder


def _corner_indices():
    """Switches at every 2x2 window's top-left corner for the 8x8 -> 4x4 -> 2x2 model."""
    out = []
    for size, channels in ((8, 4), (4, 8)):
        corners = np.arange(0, size, 2)
        flat = corners[:, None] * size + corners[None, :]
        out.append(jnp.asarray(np.broadcast_to(flat[None, :, :, None], (2, *flat.shape, channels))))
    return tuple(out)


@pytest.fixture(scope="module")
def small_conv_ae():
    """A small ConvAutoencoder, its variables, an input and every path's output, one compile."""
    model = ConvAutoencoder(image_shape=(8, 8, 1), channels=(4, 8), latent_dim=3)
    no_switches = ConvAutoencoder(
        image_shape=(8, 8, 1), channels=(4, 8), latent_dim=3, use_switches=False
    )
    x = _normal(4, (2, 8, 8, 1))
    variables = _random_variables(model, x, seed=2)

    @jax.jit
    def run(variables, x):
        code, indices = model.apply(variables, x, method="encode_with_indices")
        return {
            "call": model.apply(variables, x),
            "code": code,
            "indices": indices,
            "encode": model.apply(variables, x, method="encode"),
            "decode_switches": model.apply(variables, code, indices, method="decode"),
            "decode": model.apply(variables, code, method="decode"),
            "call_no_switches": no_switches.apply(variables, x),
            "decode_corners": model.apply(variables, code, _corner_indices(), method="decode"),
        }

    return model, variables, x, run(variables, x)


def test_conv_autoencoder_shapes_and_params(small_conv_ae):
    model, variables, x, out = small_conv_ae
    assert out["call"].shape == x.shape
    assert model.feature_shape == (2, 2, 8)  # 8x8 -> 4x4 -> 2x2
    expected = (
        _conv(3, 1, 4)
        + _conv(3, 4, 8)  # encoder convolutions
        + _dense(2 * 2 * 8, 3)
        + _dense(3, 2 * 2 * 8)  # to and from the code
        + _conv(3, 8, 4)
        + _conv(3, 4, 1)  # decoder transposed convolutions
    )
    assert _count(variables["params"]) == expected == 892
    assert out["code"].shape == (2, 3)
    assert [i.shape for i in out["indices"]] == [(2, 4, 4, 4), (2, 2, 2, 8)]
    # encode is encode_with_indices without the indices: the same ops, in one program.
    assert_bitwise(out["encode"], out["code"])


def test_conv_autoencoder_switch_and_standalone_decoders(small_conv_ae):
    _, _, x, out = small_conv_ae
    # Paths through one program, which XLA may fuse differently: ops = the fan-ins 9 + 36 +
    # 32 of the encoder, 3 + 72 + 36 of the decoder.
    # __call__ unpools at the encoder's switches ...
    assert_close(out["decode_switches"], out["call"], ops=188)
    # ... decode(z) alone (generation) unpools at fixed positions: a different output, and
    # the one __call__ gives with use_switches=False.
    assert out["decode"].shape == x.shape
    assert not np.allclose(out["decode"], out["call"], atol=1e-3)
    assert_close(out["call_no_switches"], out["decode"], ops=188)
    # The fixed positions are the windows' top-left corners (zero insertion).
    assert_close(out["decode_corners"], out["decode"], ops=111)


def test_conv_autoencoder_odd_sizes_and_seed_images():
    model = ConvAutoencoder(image_shape=(9, 7, 2), channels=(3,), latent_dim=2)
    recon, variables = _abstract_init(model, jax.ShapeDtypeStruct((2, 9, 7, 2), jnp.float32))
    assert recon.shape == (2, 9, 7, 2)  # 9x7 -> 4x3 pooled, unpooled back to 9x7
    assert model.feature_shape == (4, 3, 3)
    model = ConvAutoencoder()
    recon, variables = _abstract_init(model, jax.ShapeDtypeStruct((2, 112, 92, 1), jnp.float32))
    assert recon.shape == (2, 112, 92, 1)
    flat = 28 * 23 * 32
    expected = _conv(3, 1, 16) + _conv(3, 16, 32) + _dense(flat, 10) + _dense(10, flat)
    expected += _conv(3, 32, 16) + _conv(3, 16, 1)
    assert _count(variables["params"]) == expected


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("model", "args", "match"),
    [
        (
            Autoencoder(),
            (jnp.zeros((4, 49)),),
            r"x must have shape \(batch, 50\), got shape \(4, 49\)",
        ),
        (Autoencoder(), (jnp.zeros(50),), r"x must have shape \(batch, 50\), got shape \(50,\)"),
        (VAE(), (jnp.zeros((4, 51)), KEY), r"x must have shape \(batch, 50\), got shape \(4, 51\)"),
        (
            ConvVAE(),
            (jnp.zeros((2, 64, 64, 1)), KEY),
            r"x must have shape \(batch, 112, 92, 1\) \(channels last\), "
            r"got shape \(2, 64, 64, 1\)",
        ),
        (
            ConvVAE(),
            (jnp.zeros((2, 112, 92)), KEY),
            r"x must have shape \(batch, 112, 92, 1\) .* got shape \(2, 112, 92\)",
        ),
        (
            ConvAutoencoder(image_shape=(8, 8, 1)),
            (jnp.zeros((2, 1, 8, 8)),),
            r"x must have shape \(batch, 8, 8, 1\) .* got shape \(2, 1, 8, 8\)",
        ),
    ],
)
def test_mismatched_inputs_raise(model, args, match):
    with pytest.raises(ValueError, match=match):
        jax.eval_shape(lambda: model.init(KEY, *args))


def test_mismatched_latents_raise(small_vae, small_conv_ae):
    def decode(model, variables, *args):
        return jax.eval_shape(lambda: model.apply(variables, *args, method="decode"))

    model, variables, _ = small_vae
    with pytest.raises(ValueError, match=r"z must have shape \(batch, 3\), got shape \(2, 4\)"):
        decode(model, variables, jnp.zeros((2, 4)))
    model, variables, _, out = small_conv_ae
    with pytest.raises(ValueError, match=r"z must have shape \(batch, 3\), got shape \(3,\)"):
        decode(model, variables, jnp.zeros(3))
    code, indices = out["code"], out["indices"]
    with pytest.raises(ValueError, match="indices must hold 2 arrays"):
        decode(model, variables, code, indices[:1])
    with pytest.raises(ValueError, match=r"indices\[1\] must have shape \(2, 2, 2, 8\)"):
        decode(model, variables, code, indices[::-1])


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: Autoencoder(input_dim=0), ValueError, "input_dim must be >= 1, got input_dim=0"),
        (lambda: Autoencoder(latent_dim=2.5), TypeError, "latent_dim must be an int"),
        (lambda: VAE(hidden_dims=()), ValueError, "hidden_dims must have at least one width"),
        (lambda: VAE(hidden_dims=(8, 0)), ValueError, "hidden_dims must be a sequence of ints"),
        (lambda: ConvVAE(image_shape=(112, 92)), ValueError, "image_shape must be a tuple of 3"),
        (
            lambda: ConvVAE(image_shape=(4, 4, 1), encoder_convs=((8, 5, 1, 0),)),
            ValueError,
            r"image_shape=\(4, 4, 1\) is too small for encoder_convs\[0\]",
        ),
        (
            lambda: ConvVAE(decoder_convs=(), output_conv=(3, 1, 1)),
            ValueError,
            r"the decoder's output is 28x23, smaller than image_shape=\(112, 92, 1\)",
        ),
        (lambda: ConvVAE(encoder_convs=()), ValueError, "encoder_convs must hold at least one"),
        (
            lambda: ConvVAE(encoder_convs=((8, 3, 0, 1),)),
            ValueError,
            r"encoder_convs\[0\] must have features, kernel_size, stride >= 1",
        ),
        (lambda: ConvVAE(output_conv=(3, 1)), ValueError, "output_conv must be"),
        (
            lambda: ConvAutoencoder(image_shape=(4, 4, 1), channels=(2, 2, 2)),
            ValueError,
            r"too small for 3 stages of 2x2 pooling: stage 2 gets 1x1",
        ),
        (lambda: ConvAutoencoder(kernel_size=4), ValueError, "kernel_size must be odd"),
        (lambda: ConvAutoencoder(channels=()), ValueError, "channels must hold at least one"),
    ],
)
def test_bad_configurations_raise_at_construction(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_sequence_fields_become_tuples():
    """Lists are accepted and normalized, so models stay hashable (static jit arguments)."""
    seed = [[32, 3, 1, 1, True], [64, 3, 2, 1], [64, 3, 2, 1], [64, 3, 1, 1]]
    pairs = [
        (ConvVAE(image_shape=[112, 92, 1], encoder_convs=seed), ConvVAE()),
        (ConvAutoencoder(channels=[16, 32]), ConvAutoencoder()),
        (Autoencoder(hidden_dims=[30, 10]), Autoencoder()),
        (VAE(hidden_dims=[30, 10]), VAE()),
    ]
    for from_lists, default in pairs:
        assert from_lists == default
        assert hash(from_lists) == hash(default)
    assert ConvVAE(encoder_convs=seed).encoder_convs[0] == ConvSpec(32, 3, 1, 1, batch_norm=True)
