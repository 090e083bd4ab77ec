"""How this suite compares floating-point results: one rule, written once.

Two compiled programs that compute the same mathematics in float32 need not agree to the
last bit: XLA picks other instructions (SSE, AVX2, AVX-512 and their fused multiply-adds),
another summation order for another block size, another fusion at another optimization level.
A comparison that holds on one CPU and fails on another is a broken test, so every float
comparison in the suite follows this rule:

1. **Bit for bit** (:func:`assert_bitwise`) only where the *same* compiled program runs on
   the *same* inputs: a call repeated (determinism), a run against itself resumed from a
   checkpoint (the resumed run replays the same programs on the same state), and the
   equalities the library documents as bit-for-bit (``fit_stream`` against ``fit``, a warm
   start from a fresh draw against the fresh draw), which the tests under other instruction
   sets hold it to. Exact operations count as the same program: copies, gathers, reshapes,
   integer and boolean arithmetic, and values that are exact in float32 (small integers).
2. **Otherwise a tolerance from float32's epsilon and the size of the computation**
   (:func:`assert_close`): ``ops`` is the number of rounded operations on the longest chain
   from the inputs to a result (a dot product of length k counts k, a network the sum of its
   layers' fan-ins, a mean over n values n). Each can contribute a rounding of at most one
   ``eps`` relative to the magnitudes it combines, so the bound is ``ops * eps`` relative to
   the result's scale (its largest magnitude, since cancellation makes small elements carry
   the absolute error of the large ones they came from): the classical worst case ``γ_n`` of
   a sum, doubled. State ``ops`` beside the call, with what it counts.
3. Results of *training* compared across different programs (round-off fed back through the
   optimizer for many steps) and statistical estimates get their own tolerance, stated with
   its reason beside the assertion; closed forms against float64 references follow rule 2.

Tests whose comparisons depend on how XLA compiles carry the ``numerics`` marker; CI runs
them again with ``XLA_FLAGS=--xla_cpu_max_isa=SSE4_2`` and ``=AVX2`` (``make test-isa``), so
a comparison that holds on one CPU only fails there, not on a user's machine.
"""

from __future__ import annotations

from typing import Any

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)  # 1.19e-7, the spacing of float32 at 1.0
# Rounded operations of one jax.random.normal draw (its values differ between programs,
# mostly in erf_inv): the uniform's affine map (2), erf_inv (x * x, log1p counted 4, a sqrt
# and a subtraction, a degree-8 Horner polynomial: 16, a product) and the factor sqrt(2).
NORMAL_OPS = 27


def tolerance(ops: int, dtype: Any = np.float32) -> float:
    """The relative tolerance of rule 2: ``ops`` rounded operations in ``dtype``.

    Args:
        ops: rounded operations on the longest chain from the inputs to a result, >= 1.
        dtype: the precision the programs compute in.

    Returns:
        ``ops * eps(dtype)``.
    """
    if ops < 1:
        raise ValueError(f"ops must be >= 1, got {ops}")
    return ops * float(np.finfo(dtype).eps)


def assert_close(
    actual: Any,
    desired: Any,
    *,
    ops: int,
    dtype: Any = np.float32,
    scale: float | None = None,
    err_msg: str = "",
) -> None:
    """Asserts two results of different programs agree to float round-off (rule 2).

    ``|actual - desired| <= tol * (|desired| + scale)`` elementwise, with
    ``tol = ops * eps(dtype)``.

    Args:
        actual: array (or scalar) computed by the program under test.
        desired: array of the same shape from the other program or the reference.
        ops: rounded operations on the longest chain to a result (see the module's rule 2).
        dtype: the precision the programs compute in (float32 unless both are float64).
        scale: the magnitude round-off is relative to; default the largest ``|desired|``.
        err_msg: what the comparison is, for the failure message.
    """
    desired_array = np.asarray(desired, np.float64)
    tol = tolerance(ops, dtype)
    if scale is None:
        scale = float(np.max(np.abs(desired_array))) if desired_array.size else 0.0
    np.testing.assert_allclose(
        np.asarray(actual, np.float64),
        desired_array,
        rtol=tol,
        atol=tol * scale,
        err_msg=err_msg or f"beyond float round-off: ops={ops}, tolerance {tol:.2g}",
    )


def assert_bitwise(actual: Any, desired: Any, err_msg: str = "") -> None:
    """Asserts bit-for-bit equality (rule 1: the same compiled program on the same inputs)."""
    np.testing.assert_array_equal(np.asarray(actual), np.asarray(desired), err_msg=err_msg)


def assert_trees_bitwise(actual: Any, desired: Any) -> None:
    """:func:`assert_bitwise` on every leaf of two pytrees of the same structure."""
    import jax

    paths = jax.tree_util.tree_flatten_with_path(desired)[0]
    leaves, tree = jax.tree.flatten(actual)
    assert tree == jax.tree.structure(desired), f"{tree} != {jax.tree.structure(desired)}"
    for (path, want), got in zip(paths, leaves, strict=True):
        assert_bitwise(got, want, err_msg=jax.tree_util.keystr(path))


def assert_trees_close(actual: Any, desired: Any, *, ops: int, dtype: Any = np.float32) -> None:
    """:func:`assert_close` on every leaf of two pytrees of the same structure."""
    import jax

    paths = jax.tree_util.tree_flatten_with_path(desired)[0]
    leaves, tree = jax.tree.flatten(actual)
    assert tree == jax.tree.structure(desired), f"{tree} != {jax.tree.structure(desired)}"
    for (path, want), got in zip(paths, leaves, strict=True):
        assert_close(got, want, ops=ops, dtype=dtype, err_msg=jax.tree_util.keystr(path))
