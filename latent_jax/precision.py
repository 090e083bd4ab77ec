"""Mixed precision for training: the models compute in bfloat16, everything else in float32.

:class:`latent_jax.train.TrainConfig`'s ``compute_dtype="bfloat16"`` runs the engine's loss
inside :func:`scope`. While a scope is active, :class:`latent_jax.objectives.base.ModelCaller`
(the one place where objectives call a model) casts the floating parameters and inputs of
each call to the compute dtype and the model's floating outputs back to float32; the model
state (BatchNorm's running statistics) is passed as it is. So:

* the parameters and the optimizer state stay float32 (the cast sits inside the loss, and
  its gradient is the cast back);
* the models' matmuls and convolutions run in bfloat16, and so does what lies between them
  (activations, BatchNorm's normalization; its running statistics are kept in float32);
* the losses, the KL terms and every reduction over the batch see float32 outputs.

The scope is read while JAX traces the loss, so it decides what a compiled program computes;
the compiled programs' keys include the dtype (:func:`latent_jax.train.compile.optimizer_key`).
On a CPU, bfloat16 is a correctness check rather than a speed-up: XLA:CPU emulates most
bfloat16 arithmetic.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp

from latent_jax import validation

__all__ = ["COMPUTE_DTYPES", "cast_floating", "check_compute_dtype", "compute_dtype", "scope"]

COMPUTE_DTYPES = ("float32", "bfloat16")

_ACTIVE: contextvars.ContextVar[Any] = contextvars.ContextVar("compute_dtype", default=None)


def check_compute_dtype(name: Any) -> str:
    """``name`` checked against :data:`COMPUTE_DTYPES`.

    Raises:
        ValueError: for another name (naming the choices).
    """
    return validation.check_choice("compute_dtype", name, COMPUTE_DTYPES)


@contextlib.contextmanager
def scope(name: str) -> Iterator[None]:
    """Models called by the objectives inside the block compute in ``name``'s dtype.

    Args:
        name: ``"float32"`` (no cast: the default computation) or ``"bfloat16"``.
    """
    dtype = None if check_compute_dtype(name) == "float32" else jnp.dtype(name)
    token = _ACTIVE.set(dtype)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def compute_dtype() -> Any:
    """The active scope's compute dtype, or ``None`` outside a reduced-precision scope."""
    return _ACTIVE.get()


def cast_floating(tree: Any, dtype: Any) -> Any:
    """Every floating-point array leaf of ``tree`` cast to ``dtype``; other leaves (integer
    arrays, PRNG keys, Python objects) as they are."""

    def cast(leaf: Any) -> Any:
        if isinstance(leaf, jax.Array | jnp.ndarray) and jnp.issubdtype(leaf.dtype, jnp.floating):
            return leaf.astype(dtype)
        return leaf

    return jax.tree.map(cast, tree)
