"""Corruption: keyed, deterministic, shape- and range-preserving, with the asked noise level."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numerics import NORMAL_OPS, assert_bitwise, assert_close

from latent_jax import corruption as C

KEY = jax.random.key(0)
OTHER = jax.random.key(1)

# Every corruption kind, configured at a noticeable level.
KINDS = {
    "gaussian": C.gaussian(0.3),
    "gaussian_clipped": C.gaussian(0.3, clip=(0.0, 1.0)),
    "masking": C.masking(0.25),
    "salt_and_pepper": C.salt_and_pepper(0.2),
    "composed": C.compose(C.gaussian(0.1), C.masking(0.2)),
    "config": C.Corruption(gaussian_std=0.1, mask_fraction=0.1, salt_pepper_fraction=0.1),
}


def _images(shape=(16, 8, 8, 1), seed=0):
    return jnp.asarray(np.random.default_rng(seed).uniform(size=shape).astype(np.float32))


@pytest.mark.parametrize("name", sorted(KINDS))
def test_same_key_same_noise_different_key_different_noise(name):
    corrupt = jax.jit(KINDS[name])
    x = _images()
    a = corrupt(KEY, x)
    b = corrupt(KEY, x)
    c = corrupt(OTHER, x)
    assert_bitwise(a, b)
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    assert not np.array_equal(np.asarray(a), np.asarray(x))


# Two of the kinds that draw normal noise run again under other instruction sets.
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.numerics) if name in ("gaussian", "config") else name
        for name in sorted(KINDS)
    ],
)
def test_jit_matches_eager(name):
    corrupt = KINDS[name]
    x = _images((4, 30))
    # The same random bits; the normal draw and x + std * eps (one rounding when fused) are
    # compiled into one program under jit, into one program each op by op. Masks and
    # replacement values are exact.
    assert_close(jax.jit(corrupt)(KEY, x), corrupt(KEY, x), ops=NORMAL_OPS + 2)


@settings(deadline=None, max_examples=25)
@given(
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple),
    name=st.sampled_from(sorted(KINDS)),
    dtype=st.sampled_from([np.float32, np.float16]),
)
def test_shape_and_dtype_are_kept(shape, name, dtype):
    # Shapes only: eval_shape traces without compiling, so many shapes stay cheap.
    x = jax.ShapeDtypeStruct(shape, dtype)
    out = jax.eval_shape(KINDS[name], KEY, x)
    assert out.shape == x.shape
    assert out.dtype == x.dtype


@pytest.mark.parametrize(
    "name", ["gaussian_clipped", "masking", "salt_and_pepper", "composed_clipped"]
)
def test_valid_range_is_kept(name):
    corrupt = {
        "gaussian_clipped": C.gaussian(2.0, clip=(0.0, 1.0)),
        "masking": C.masking(0.5),
        "salt_and_pepper": C.salt_and_pepper(0.5, low=0.0, high=1.0),
        "composed_clipped": C.Corruption(
            gaussian_std=1.0, mask_fraction=0.3, salt_pepper_fraction=0.3, clip=(0.0, 1.0)
        ),
    }[name]
    out = np.asarray(corrupt(KEY, _images()))
    assert out.min() >= 0.0 and out.max() <= 1.0


def _fraction_bound(p, n):
    # Five standard errors of a binomial proportion: a false failure is ~1e-6 likely.
    return 5.0 * np.sqrt(p * (1 - p) / n) + 1e-12


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.75])
def test_masking_fraction_within_sampling_error(fraction):
    x = jnp.ones((200, 100)) + 1.0  # never equal to the mask value 0
    out = np.asarray(C.masking_noise(KEY, x, fraction))
    masked = out == 0.0
    assert abs(masked.mean() - fraction) < _fraction_bound(fraction, out.size)
    assert_bitwise(out[~masked], 2.0)


def test_masking_value_and_edge_fractions():
    x = _images((50, 20)) + 2.0
    assert_bitwise(C.masking_noise(KEY, x, 0.0), x)
    assert_bitwise(C.masking_noise(KEY, x, 1.0, value=-1.0), -1.0)


@pytest.mark.parametrize("fraction", [0.1, 0.6])
def test_salt_and_pepper_fraction_and_values(fraction):
    x = jnp.full((200, 100), 0.5)
    out = np.asarray(C.salt_and_pepper_noise(KEY, x, fraction, low=-1.0, high=3.0))
    pepper, salt = out == -1.0, out == 3.0
    n = out.size
    assert abs((pepper | salt).mean() - fraction) < _fraction_bound(fraction, n)
    assert abs(pepper.mean() - fraction / 2) < _fraction_bound(fraction / 2, n)
    assert abs(salt.mean() - fraction / 2) < _fraction_bound(fraction / 2, n)
    assert_bitwise(out[~(pepper | salt)], 0.5)


def test_gaussian_noise_has_the_asked_std_and_zero_mean():
    x = jnp.zeros((400, 100))
    noise = np.asarray(C.gaussian_noise(KEY, x, 0.7))
    n = noise.size
    assert abs(noise.mean()) < 5 * 0.7 / np.sqrt(n)
    # The sample variance's standard error is sigma^2 sqrt(2 / n).
    assert abs(noise.var() - 0.49) < 5 * 0.49 * np.sqrt(2 / n)
    assert_bitwise(C.gaussian_noise(KEY, x, 0.0), 0.0)


def test_compose_uses_a_distinct_key_per_stage():
    x = jnp.zeros((100, 100)) + 2.0
    twice = C.compose(C.masking(0.5), C.masking(0.5))
    out = np.asarray(twice(KEY, x))
    # Independent stages mask 1 - 0.5 * 0.5 = 75%; reusing one key would give 50%.
    assert abs((out == 0).mean() - 0.75) < _fraction_bound(0.75, out.size)


def test_config_equals_the_composition_of_its_stages():
    config = C.Corruption(gaussian_std=0.2, mask_fraction=0.3, clip=(0.0, 1.0))
    manual = C.compose(C.gaussian(0.2, clip=(0.0, 1.0)), C.masking(0.3))
    x = _images()
    # Corruption calls compose on the same stages: the same operations, run op by op.
    assert_bitwise(config(KEY, x), manual(KEY, x))
    assert config.salt_range == (0.0, 1.0)
    assert_bitwise(C.Corruption()(KEY, x), x)
    assert_bitwise(C.compose()(KEY, x), x)


def test_integer_input_is_cast_to_float():
    x = jnp.arange(12, dtype=jnp.int32).reshape(3, 4)
    out = C.gaussian_noise(KEY, x, 0.1)
    assert out.dtype == jnp.float32 and out.shape == (3, 4)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: C.gaussian(-0.1), "std must be >= 0"),
        (lambda: C.gaussian(float("nan")), "std must be finite"),
        (lambda: C.gaussian(0.1, clip=(1.0, 0.0)), "clip must satisfy low < high"),
        (lambda: C.gaussian(0.1, clip=0.5), "clip must be None or a pair"),
        (lambda: C.masking(1.5), r"fraction must be in \[0, 1\]"),
        (lambda: C.masking("0.1"), "fraction must be a real number"),
        (lambda: C.salt_and_pepper(-0.2), r"fraction must be in \[0, 1\]"),
        (lambda: C.salt_and_pepper(0.1, low=1.0, high=1.0), "low < high"),
        (lambda: C.Corruption(mask_fraction=2.0), r"mask_fraction must be in \[0, 1\]"),
        (lambda: C.Corruption(salt_pepper_fraction=0.1, low=2.0), "low < high"),
        (lambda: C.compose(C.masking(0.1), "noise"), "argument 1 must be callable"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
