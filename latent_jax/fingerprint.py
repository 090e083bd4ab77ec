"""Fingerprints of training data, so that a resumed run can tell it trains on the same rows.

Two kinds, each a short string that names how it was made:

* ``rows:<16 hex digits>`` — a checksum of the values themselves, for rows held in memory (a
  NumPy or JAX array, on any device or mesh). Every float32 value's bits are mixed with its
  position (row-major, so permuted rows, rescaled values or a single changed value give
  another fingerprint) by MurmurHash3's 32-bit finalizer, and the mixes are summed modulo
  2**32, twice with different seeds. Integer sums do not depend on their order, so the
  checksum is the same on every CPU, GPU, block size and mesh, and it decomposes over
  blocks: host arrays larger than a block are read once, block by block. It detects
  accidental changes; it is not a cryptographic hash.
* ``files:<16 hex digits>`` — for data streamed from disk (a memory-mapped ``.npy``, an image
  folder), whose values :func:`latent_jax.train.fit_stream` never holds at once and which would
  cost a second pass over the disk to hash: a BLAKE2b digest of each file's absolute path,
  size and modification time (and, for an array, its offset and shape). Another file, or the
  same file rewritten, reads as other data; so does the same file moved or copied.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from latent_jax.xla_options import default_options

__all__ = ["file_fingerprint", "row_fingerprint"]

# Host arrays are checksummed this many values at a time (one compiled program per shape).
_BLOCK_VALUES = 1 << 22
_SEEDS = (0x9E3779B9, 0x7F4A7C15)


def _mix(h: jax.Array) -> jax.Array:
    """MurmurHash3's 32-bit finalizer (an avalanche: every input bit flips half the output)."""
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def _block_sums(values: jax.Array, first: jax.Array, count: jax.Array) -> jax.Array:
    """The two seeds' sums over the first ``count`` of ``values`` (flat float32), at positions
    ``first, first + 1, ...``; array of shape (2,), uint32."""
    bits = jax.lax.bitcast_convert_type(values, jnp.uint32)
    offsets = jnp.arange(values.shape[0], dtype=jnp.uint32)
    position = first.astype(jnp.uint32) + offsets
    valid = offsets < count.astype(jnp.uint32)
    sums = [
        jnp.sum(jnp.where(valid, _mix(bits ^ _mix(position * jnp.uint32(seed) + 1)), 0))
        for seed in _SEEDS
    ]
    return jnp.stack(sums).astype(jnp.uint32)


@functools.cache
def _compiled_block_sums() -> Any:
    # Built on first use: the options ask for the backend, which must not start at import
    # (jax.distributed.initialize and forced CPU device counts need it unstarted).
    return jax.jit(_block_sums, compiler_options=default_options(once=True))


def _format(sums: Any) -> str:
    high, low = (int(v) for v in np.asarray(sums, np.uint64))
    return f"rows:{high:08x}{low:08x}"


def row_fingerprint(x: Any, n_rows: int | None = None) -> str:
    """The checksum fingerprint (``rows:...``) of an array's values, as float32.

    Args:
        x: array of shape (n, ...features): NumPy (read block by block) or JAX (checksummed
            where it lives, sharded or not).
        n_rows: count only the first ``n_rows`` rows (the rest is padding); default all.

    Returns:
        ``"rows:"`` and 16 hex digits.
    """
    n = int(x.shape[0]) if n_rows is None else int(n_rows)
    width = int(np.prod(x.shape[1:], dtype=np.int64))
    if isinstance(x, jax.Array):
        flat = jnp.reshape(x.astype(jnp.float32), (-1,))
        total = _compiled_block_sums()(flat, jnp.uint32(0), jnp.uint32(n * width))
        return _format(total)
    total = np.zeros(2, np.uint64)
    count = n * width
    flat = np.reshape(np.asarray(x)[:n], (-1,))
    block = min(_BLOCK_VALUES, max(count, 1))
    for start in range(0, count, block):
        part = np.zeros(block, np.float32)
        piece = flat[start : start + block]
        part[: len(piece)] = piece
        sums = _compiled_block_sums()(part, jnp.uint32(start % 2**32), jnp.uint32(len(piece)))
        total = (total + np.asarray(sums, np.uint64)) % 2**32
    return _format(total)


def file_fingerprint(paths: Sequence[str | os.PathLike], extra: Any = None) -> str:
    """The identity fingerprint (``files:...``) of files: absolute paths, sizes, mtimes.

    Args:
        paths: the files, in the order they hold the rows.
        extra: more that identifies the rows (an array's offset and shape), hashed as text.

    Returns:
        ``"files:"`` and 16 hex digits.
    """
    digest = hashlib.blake2b(digest_size=8)
    for path in paths:
        stat = os.stat(path)
        record = f"{os.path.abspath(os.fspath(path))}\0{stat.st_size}\0{stat.st_mtime_ns}\n"
        digest.update(record.encode("utf-8", "surrogateescape"))
    if extra is not None:
        digest.update(repr(extra).encode("utf-8"))
    return f"files:{digest.hexdigest()}"
