"""The XLA compile options latent_jax passes to its own programs, by backend.

XLA's CPU backend spends most of a short run's compile time generating machine code with
LLVM. Two settings trade that time against run time, measured on a 2-core CPU
(``benchmarks/bench_compile.py``):

* programs that run many times (training chunks, evaluation, inference on many rows):
  LLVM's -O2 instead of XLA's default -O3, which costs 25-55% more compile time and buys no
  speed for the tutorial's autoencoder and face VAE alike;
* programs that run once or on a few rows (initialization, the figures' encodes and decodes,
  draws from the prior): -O0 with XLA's older loop emitters, compiled in a fraction of the
  time; they run slower, which a program run once does not notice. The numbers are the same
  as at -O0 with the newer emitters.

Other backends keep XLA's defaults for repeated programs, and -O0 for one-off ones.
"""

from __future__ import annotations

from typing import Any

import jax

__all__ = ["at_top_level", "default_options"]

_CPU_REPEATED = {"xla_backend_optimization_level": 2}
_ONCE = {"xla_backend_optimization_level": 0}
_CPU_ONCE = {**_ONCE, "xla_cpu_use_fusion_emitters": False}


def default_options(mesh: Any = None, once: bool = False) -> dict[str, Any]:
    """latent_jax's XLA options for a program on ``mesh``'s devices (``None``: the default).

    Args:
        mesh: a ``jax.sharding.Mesh`` the program runs on, or ``None`` for the default device.
        once: options for a program that runs once or on a few rows, compiled as fast as
            possible rather than to run fast.

    Returns:
        A dict for ``jax.jit(..., compiler_options=...)`` or ``Lowered.compile``; empty when
        XLA's defaults apply.
    """
    platform = jax.default_backend() if mesh is None else mesh.devices.flat[0].platform
    if once:
        return dict(_CPU_ONCE if platform == "cpu" else _ONCE)
    return dict(_CPU_REPEATED) if platform == "cpu" else {}


def at_top_level() -> bool:
    """Whether no JAX transformation (``jit``, ``vmap``, ``grad``, ``eval_shape``) is tracing.

    Compile options are only accepted by a top-level ``jax.jit``; nested in a trace, a
    function must be jitted without them. JAX has no public test for this: its internal one
    is used, and if it is missing (another JAX version) the answer is ``False``, which only
    costs the options.
    """
    try:
        from jax._src import core
    except ImportError:
        return False
    clean = getattr(core, "trace_state_clean", None)
    return bool(clean()) if callable(clean) else False
