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
import math
import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from latent_jax.xla_options import default_options

__all__ = ["file_fingerprint", "row_fingerprint"]

# Host arrays are checksummed this many values at a time (bounded temporary memory).
_BLOCK_VALUES = 1 << 20
_SEEDS = (0x9E3779B9, 0x7F4A7C15)


def _mix(h: Any) -> Any:
    """MurmurHash3's 32-bit finalizer (an avalanche: every input bit flips half the output),
    on uint32 arrays of NumPy or JAX alike (their multiplications wrap modulo 2**32)."""
    h = h ^ (h >> 16)
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def _sums(bits: Any, first: int, xp: Any, valid: Any = None) -> Any:
    """The two seeds' sums (uint32, shape (2,)) of the mixed ``bits`` (flat uint32) at the
    positions ``first, first + 1, ...`` modulo 2**32, over the ``valid`` ones (default all);
    ``xp`` is NumPy or ``jax.numpy``."""
    position = xp.arange(bits.shape[0], dtype=xp.uint32) + xp.uint32(first % 2**32)
    sums = []
    for seed in _SEEDS:
        mixed = _mix(bits ^ _mix(position * xp.uint32(seed) + xp.uint32(1)))
        if valid is not None:
            mixed = xp.where(valid, mixed, xp.uint32(0))
        sums.append(xp.sum(mixed, dtype=xp.uint32))
    return xp.stack(sums)


@functools.cache
def _device_sums() -> Any:
    # Built on first use: the options ask for the backend, which must not start at import
    # (jax.distributed.initialize and forced CPU device counts need it unstarted).
    def sums(x: jax.Array, count: jax.Array) -> jax.Array:
        flat = jnp.reshape(x.astype(jnp.float32), (-1,))
        bits = jax.lax.bitcast_convert_type(flat, jnp.uint32)
        return _sums(bits, 0, jnp, valid=jnp.arange(flat.shape[0]) < count)

    return jax.jit(sums, compiler_options=default_options(once=True))


def _format(sums: Any) -> str:
    high, low = (int(v) for v in np.asarray(sums, np.uint64))
    return f"rows:{high:08x}{low:08x}"


def row_fingerprint(x: Any, n_rows: int | None = None) -> str:
    """The checksum fingerprint (``rows:...``) of an array's values, as float32.

    Args:
        x: array of shape (n, ...features): NumPy (checksummed on the host, block by block,
            nothing compiled) or JAX (checksummed where it lives, sharded or not).
        n_rows: count only the first ``n_rows`` rows (the rest is padding); default all.

    Returns:
        ``"rows:"`` and 16 hex digits.
    """
    n = int(x.shape[0]) if n_rows is None else int(n_rows)
    if isinstance(x, jax.Array):
        return _format(_device_sums()(x, jnp.int32(n * math.prod(x.shape[1:]))))
    flat = np.reshape(np.asarray(x)[:n], (-1,))
    total = np.zeros(2, np.uint32)
    for start in range(0, flat.size, _BLOCK_VALUES):
        bits = np.ascontiguousarray(flat[start : start + _BLOCK_VALUES], np.float32).view(np.uint32)
        total = total + _sums(bits, start, np)
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
