"""A keyed random permutation that costs O(n) element-wise work: the training engine's shuffle.

``jax.random.permutation`` sorts random keys (two rounds of a comparison sort for a few
thousand rows). XLA's CPU sort calls a comparator per comparison, so shuffling 8,000 rows
takes about 3 ms, a third of an epoch of the tutorial's small autoencoder, and it grows with the
number of runs trained at once by :func:`latent_jax.train.fit_many`. This module draws the
permutation instead as a keyed bijection of a slightly larger domain, restricted to
``range(n)`` by cycle walking (Black and Rogaway, "Ciphers with arbitrary finite domains",
2002): every step is element-wise, with no sort and no scatter (both run as slow scalar loops
on XLA's CPU backend).

The domain is ``a * b >= n`` with ``a`` close to ``sqrt(n)``, chosen so that fewer than ``a``
values fall outside ``range(n)``. A value ``x = left * b + right`` goes through a Feistel
network with modular addition: each round adds a keyed hash of one half (murmur3's 32-bit
finalizer of the half xor a round key) to the other half, modulo that half's size; there are
:data:`ROUNDS` rounds, or :data:`SMALL_DOMAIN_ROUNDS` when a half has fewer than 16 values.
Each round is invertible, so the network is a bijection of the domain for any key. Cycle
walking applies the network again to the values that landed outside ``range(n)`` until all are
inside; following a cycle of a bijection always returns to ``range(n)``, so the result is a
permutation, and with so few values outside, a few extra passes suffice. Its distribution
is uniform for shuffling purposes (tested: all orders of small ``n`` equally likely, positions
uniform, chi-square over many keys). It is not the permutation
``jax.random.permutation`` draws for the same key.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import Array, lax

from latent_jax import validation

__all__ = ["ROUNDS", "SMALL_DOMAIN_ROUNDS", "permutation"]

# Rounds of the network when both halves have at least _LARGE_HALF values; with smaller
# halves each keyed round function is one of few and mixing is slower (measured: with 8
# rounds the orders of 5 to 7 elements are far from equally likely, with 24 they are not).
ROUNDS = 8
SMALL_DOMAIN_ROUNDS = 24
_LARGE_HALF = 16


def _mix(x: Array) -> Array:
    """murmur3's fmix32: a bijective avalanche of a uint32 array."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x85EBCA6B)
    x = x ^ (x >> 13)
    x = x * jnp.uint32(0xC2B2AE35)
    return x ^ (x >> 16)


def _domain_shape(n: int) -> tuple[int, int]:
    """``(a, b)`` with ``a * b >= n``, ``a`` near ``sqrt(n)``, and ``a * b - n`` smallest."""
    if n <= 2:
        return n, 1  # adding a keyed bit modulo 2 already draws both orders of two
    root = math.isqrt(n - 1) + 1  # ceil(sqrt(n))
    # Both halves need at least two values (with one, a round is a mere rotation), and
    # halves of similar size mix well in few rounds; among those, waste the fewest values.
    a = min(range(max(2, root // 2), root + 1), key=lambda a: (a * -(-n // a) - n, -a))
    return a, -(-n // a)


def permutation(key: Array, n: int) -> Array:
    """A random permutation of ``range(n)`` determined by ``key``.

    Args:
        key: a typed PRNG key (``jax.random.key``) or a raw uint32 key.
        n: the number of elements, a Python int >= 1 (static under ``jit``).

    Returns:
        int32 array of shape (n,) holding each of ``0 .. n-1`` exactly once.

    Raises:
        TypeError: if ``n`` is not an int.
        ValueError: if ``n`` is not in [1, 2**31).
    """
    n = validation.check_int("n", n, 1)
    if n >= 2**31:
        raise ValueError(f"n must be < 2**31, got n={n}")
    a, b = _domain_shape(n)
    size_a, size_b = jnp.uint32(a), jnp.uint32(b)
    rounds = ROUNDS if min(a, b) >= _LARGE_HALF else SMALL_DOMAIN_ROUNDS
    round_keys = jax.random.bits(key, (rounds,), jnp.uint32)

    def network(x: Array) -> Array:
        left, right = x // size_b, x % size_b
        for r in range(rounds):
            # Both operands of each sum are below the modulus (< 2**16), so nothing overflows.
            if r % 2 == 0:
                left = (left + _mix(right ^ round_keys[r]) % size_a) % size_a
            else:
                right = (right + _mix(left ^ round_keys[r]) % size_b) % size_b
        return left * size_b + right

    def walk(x: Array) -> Array:
        return jnp.where(x >= n, network(x), x)

    image = network(jnp.arange(n, dtype=jnp.uint32))
    image = lax.while_loop(lambda x: jnp.any(x >= n), walk, image)
    return image.astype(jnp.int32)
