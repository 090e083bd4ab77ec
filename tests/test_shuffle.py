"""The engine's keyed shuffle: a permutation, determined by the key, uniform in distribution."""

import itertools

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from latent_jax.shuffle import permutation

# Compiled training: benchmarks/gpu_suite.py runs these on the device (pytest -m device).
pytestmark = pytest.mark.device


@settings(max_examples=8, deadline=None)
@given(n=st.integers(1, 5000), seed=st.integers(0, 2**31 - 1))
def test_is_a_permutation_of_range_n(n, seed):
    order = np.asarray(permutation(jax.random.key(seed), n))
    assert order.dtype == np.int32
    np.testing.assert_array_equal(np.sort(order), np.arange(n))


def test_same_key_same_order_and_different_keys_differ():
    a = np.asarray(permutation(jax.random.key(7), 1000))
    np.testing.assert_array_equal(a, np.asarray(permutation(jax.random.key(7), 1000)))
    b = np.asarray(permutation(jax.random.key(8), 1000))
    assert not np.array_equal(a, b)
    # Not a near-identity either: few elements keep their place.
    assert np.mean(a == np.arange(1000)) < 0.02


def test_jit_and_vmap_agree_with_eager():
    keys = jax.random.split(jax.random.key(0), 3)
    batched = np.asarray(jax.jit(jax.vmap(lambda k: permutation(k, 97)))(keys))
    for i in range(3):
        np.testing.assert_array_equal(batched[i], np.asarray(permutation(keys[i], 97)))


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6])
def test_all_orders_of_a_few_elements_are_equally_likely(n):
    # 3 and 5 have no factorization into two halves of at least 2, so the domain is larger
    # and cycle walking does part of the work; 2, 4 and 6 use an exact domain.
    orders_of_n = list(itertools.permutations(range(n)))
    keys = jax.random.split(jax.random.key(1), 200 * len(orders_of_n))
    orders = np.asarray(jax.jit(jax.vmap(lambda k: permutation(k, n)))(keys))
    index = {p: i for i, p in enumerate(orders_of_n)}
    counts = np.bincount([index[tuple(o)] for o in orders], minlength=len(orders_of_n))
    assert counts.min() > 0
    assert stats.chisquare(counts).pvalue > 1e-3


@pytest.mark.parametrize("n", [50, 53, 400, 419])
def test_positions_are_uniform_for_a_larger_n(n):
    # Where element 0 and element n - 1 land, over many keys: uniform over the n slots.
    # 50 = 5 x 10 exactly, and 53 (prime) walks out of a 6 x 9 domain, both with the
    # small-domain rounds; 400 = 20 x 20 and 419 (prime, 21 x 20) with the large-domain ones.
    draws = 20_000
    keys = jax.random.split(jax.random.key(2), draws)
    orders = np.asarray(jax.jit(jax.vmap(lambda k: permutation(k, n)))(keys))
    for element in (0, n - 1):
        slots = np.argmax(orders == element, axis=1)
        assert stats.chisquare(np.bincount(slots, minlength=n)).pvalue > 1e-3
    # Neighbours stay neighbours no more often than chance (2 / n).
    adjacent = np.abs(np.argmax(orders == 0, axis=1) - np.argmax(orders == 1, axis=1)) == 1
    assert abs(adjacent.mean() - 2 / n) < 4 * np.sqrt(2 / n / draws)


@pytest.mark.parametrize(
    ("n", "error", "match"),
    [
        (0, ValueError, "n must be >= 1, got n=0"),
        (-3, ValueError, "n must be >= 1, got n=-3"),
        (2**31, ValueError, r"n must be < 2\*\*31, got n=2147483648"),
        (2.5, TypeError, r"n must be an int, got float \(2\.5\)"),
        (True, TypeError, r"n must be an int, got bool \(True\)"),
    ],
)
def test_rejects_a_bad_n(n, error, match):
    with pytest.raises(error, match=match):
        permutation(jax.random.key(0), n)
