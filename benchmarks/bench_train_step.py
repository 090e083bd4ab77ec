"""Benchmark: steady-state training throughput of the engine, compile time apart.

Two workloads, each trained by :func:`latent_jax.train.fit` (whole epochs compiled as
``lax.scan``), without evaluation so that the numbers are training alone:

* ``mlp``: the seed's autoencoder (50 -> 30 -> 10 -> 5, LeakyReLU 0.1) on 8,000 rows of the
  seed's data, batch 128, Adam, MSE;
* ``conv_vae``: the seed's face VAE (``ConvVAE()``, 112 x 92 x 1, 8.47 M parameters) on 320
  random images (the size of the AT&T training split), batch 64, Adam 1e-4, summed-MSE
  reconstruction plus the seed's monotonic β·KL.

For each it reports the first call's compile time and the median over repeats of images (or
rows) per second and milliseconds per optimizer step, from the wall time of warm ``fit`` calls.
Results go to ``benchmarks/results/bench_train_step.json``.

Usage::

    python benchmarks/bench_train_step.py                    # both, about 3 minutes on 2 cores
    python benchmarks/bench_train_step.py --only mlp --repeats 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import jax
import numpy as np
import utilization

from latent_jax import schedules
from latent_jax.data import load_tabular
from latent_jax.experiments.common import environment_info
from latent_jax.models.conv import ConvVAE
from latent_jax.models.mlp import Autoencoder
from latent_jax.objectives import autoencoder_objective, vae_objective
from latent_jax.train import TrainConfig, fit

RESULTS = Path(__file__).resolve().parent / "results" / "bench_train_step.json"


def workloads(epochs: dict[str, int]) -> dict[str, tuple]:
    """name -> (objective, train data, config) for each benchmarked model."""
    rows = load_tabular("synthetic-classification").x_train
    images = np.random.default_rng(0).standard_normal((320, 112, 92, 1)).astype(np.float32)
    beta = schedules.make_schedule("monotonic", beta_max=1 / 30, tau=1000.0)
    return {
        "mlp": (
            autoencoder_objective(Autoencoder(input_dim=rows.shape[1])),
            rows,
            TrainConfig(learning_rate=1e-3, batch_size=128, epochs=epochs["mlp"], quiet=True),
        ),
        "conv_vae": (
            vae_objective(ConvVAE(), beta),
            images,
            TrainConfig(learning_rate=1e-4, batch_size=64, epochs=epochs["conv_vae"], quiet=True),
        ),
    }


def measure(objective, x, config: TrainConfig, repeats: int) -> dict:
    """Compile seconds and steady-state throughput of ``fit`` on ``x``."""
    steps = config.epochs * -(-len(x) // config.batch_size)
    start = time.perf_counter()
    state, _ = fit(objective, x, None, config, jax.random.key(0))
    jax.block_until_ready(state.params)
    first = time.perf_counter() - start
    times = []
    for repeat in range(repeats):
        start = time.perf_counter()
        state, _ = fit(objective, x, None, config, jax.random.key(repeat + 1))
        jax.block_until_ready(state.params)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    flops = utilization.step_flops(objective, config, x)
    peak, source = utilization.peak_flops(config.compute_dtype)
    return {
        "samples": len(x),
        "batch_size": config.batch_size,
        "epochs": config.epochs,
        "steps": steps,
        "compile_seconds": first - median,
        "median_seconds": median,
        "times": times,
        "samples_per_second": config.epochs * len(x) / median,
        "ms_per_step": 1e3 * median / steps,
        "xla_flops_per_step": flops,
        "mfu": utilization.mfu(flops, median / steps, peak),
        "peak_flops": peak,
        "peak_source": source,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("mlp", "conv_vae"), default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mlp-epochs", type=int, default=50)
    parser.add_argument("--conv-epochs", type=int, default=2)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    jobs = workloads({"mlp": args.mlp_epochs, "conv_vae": args.conv_epochs})
    results = {}
    for name, (objective, x, config) in jobs.items():
        if args.only not in (None, name):
            continue
        print(f"{name}: compiling and timing...", flush=True)
        results[name] = measure(objective, x, config, args.repeats)
        r = results[name]
        print(
            f"  {r['samples_per_second']:.0f} samples/s, {r['ms_per_step']:.3f} ms/step "
            f"(batch {r['batch_size']}), MFU {100 * r['mfu']:.1f}%, compile "
            f"{r['compile_seconds']:.1f} s",
            flush=True,
        )
    record = {
        "benchmark": "train_step",
        "environment": environment_info(),
        "machine": utilization.machine(),
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
