"""Model-FLOPs utilization (MFU) and the machine's instruction set, for every training benchmark.

MFU = FLOPs per optimizer step / step time / the device's peak FLOP/s:

* FLOPs per step: XLA's cost analysis of one compiled training step (the engine's own
  :func:`latent_jax.train.epoch.make_train_step`, forward, backward and optimizer update, at
  the run's batch shape), :func:`step_flops`;
* the peak: on a CPU, XLA's measured float32 matrix-multiply throughput
  (:func:`matmul_peak_flops`, a 2048 x 2048 product); on a GPU, the datasheet figure of its
  dtype (:data:`GPU_PEAKS`, dense tensor-core FLOP/s; float32 counts TF32, which JAX's
  default matmul precision uses on these GPUs).

:func:`machine` records what a result depends on: the device, the CPU model and the vector
extensions XLA may use (AVX2, AVX-512, AMX), and ``XLA_FLAGS`` (``--xla_cpu_max_isa`` caps
the instruction set).
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

# Dense FLOP/s from NVIDIA's datasheets (SXM parts; no sparsity).
GPU_PEAKS: dict[str, dict[str, float]] = {
    "H200": {"float32": 494.7e12, "bfloat16": 989.4e12},
    "H100": {"float32": 494.7e12, "bfloat16": 989.4e12},
    "A100": {"float32": 156e12, "bfloat16": 312e12},
}
# The /proc/cpuinfo flags that decide which kernels XLA:CPU and oneDNN can use.
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def cpu_flags() -> list[str]:
    """The :data:`ISA_FLAGS` this CPU has (empty where /proc/cpuinfo is unreadable)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    for line in text.splitlines():
        if line.startswith("flags"):
            present = set(line.split(":", 1)[1].split())
            return [flag for flag in ISA_FLAGS if flag in present]
    return []


def machine() -> dict[str, Any]:
    """The device, CPU, instruction set and XLA flags a measurement ran with."""
    device = jax.devices()[0]
    info: dict[str, Any] = {
        "device": f"{device.platform}:{getattr(device, 'device_kind', '')}",
        "device_count": jax.device_count(),
        "cpu_count": os.cpu_count(),
        "cpu_flags": cpu_flags(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "jax": jax.__version__,
        "python": platform.python_version(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return info


def matmul_peak_flops(dtype: Any = jnp.float32, size: int = 2048, repeats: int = 10) -> float:
    """XLA's matrix-multiply throughput on the default device, FLOP/s (median of repeats)."""
    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32).astype(dtype)
    product = jax.jit(lambda x: x @ x)
    product(a).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        product(a).block_until_ready()
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times)


def peak_flops(dtype: str = "float32") -> tuple[float, str]:
    """The default device's peak FLOP/s for ``dtype`` and where the figure comes from."""
    device = jax.devices()[0]
    if device.platform == "gpu":
        kind = getattr(device, "device_kind", "")
        for name, peaks in GPU_PEAKS.items():
            if name in kind:
                return peaks[dtype], f"datasheet ({name}, dense {dtype})"
    return matmul_peak_flops(jnp.dtype(dtype)), f"measured ({dtype} 2048x2048 matmul)"


def step_flops(objective: Any, config: Any, x: np.ndarray) -> float:
    """XLA's FLOP count of one compiled training step of ``objective`` under ``config`` on
    batches of ``config.batch_size`` rows shaped like ``x`` (forward, backward, update)."""
    from latent_jax import precision
    from latent_jax.objectives.base import Batch
    from latent_jax.train.epoch import make_plan, make_train_step, run_optimizer
    from latent_jax.train.state import init_state

    batch_size = min(config.batch_size, len(x))
    plan = make_plan(config, len(x), 0)
    tx = run_optimizer(config, plan, objective)
    rows = jnp.asarray(x[:batch_size], jnp.float32)
    state = init_state(objective, tx, jax.random.key(0), rows)
    batch = Batch(x=rows, mask=jnp.ones(batch_size, jnp.float32))
    step = make_train_step(objective, tx, config.group_updates)
    with precision.scope(config.compute_dtype):
        compiled = (
            jax.jit(step).lower(state, batch, jax.random.key(1), jnp.zeros((), jnp.int32)).compile()
        )
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list | tuple):
        analysis = analysis[0]
    return float(analysis.get("flops", float("nan")))


def mfu(flops_per_step: float, seconds_per_step: float, peak: float) -> float:
    """Model-FLOPs utilization: achieved FLOP/s over the peak."""
    return flops_per_step / seconds_per_step / peak
