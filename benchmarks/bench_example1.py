"""Benchmark: the seed's first example, latent_jax against the seed's PyTorch loop, side by side.

Both train the seed's autoencoder (50 -> 30 -> 10 -> 5, LeakyReLU 0.1, mirrored decoder) on the
seed's data (make_classification 10,000 x 50, 80/20 split, StandardScaler) with Adam 1e-3,
batch 128 and MSE, evaluating the test split every epoch, for 500 epochs. The two
implementations alternate within one invocation (torch, latent_jax, torch, latent_jax, ...) so
that both see the same machine load; the table reports medians and their ratio.

* PyTorch: ``benchmarks/torch_reference/example1.py``, the seed's loop (DataLoader,
  ``nn.MSELoss``, ``loss.item()`` every batch); its time is the epoch loop only.
* latent_jax: :func:`latent_jax.train.fit` called again on a warm cache; its time is the whole
  call's wall time (initialization, transfers and Python included). Compile time is the first
  call's wall time minus that median, reported apart.
* ``fit_many`` with ``--seeds`` keys (8 by default): K models in one compiled run, against the
  single-seed time. The process exposes one JAX CPU device per core
  (:func:`latent_jax.distributed.use_cpu_cores`, as ``latent-jax reduce --seeds`` does), so
  the runs are spread over the cores; the same K runs on one device are timed too.

It also counts the floating-point work of the 500 epochs (matrix products: forward 2·Σ in·out
per example, a training step three times that) and measures the machine's float32 matmul peak
(a 2048² product in XLA), to say how far from the compute limit both run.

Usage::

    python benchmarks/bench_example1.py                 # 3 repeats each, about 3 minutes
    python benchmarks/bench_example1.py --repeats 5 --epochs 500 --seeds 8
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import utilization
from torch_reference.example1 import train_autoencoder
from torch_reference.record import write_record

from latent_jax import distributed
from latent_jax.data import load_tabular
from latent_jax.models.mlp import Autoencoder
from latent_jax.objectives import autoencoder_objective
from latent_jax.train import TrainConfig, evaluate, fit, fit_many

RESULTS = Path(__file__).resolve().parent / "results" / "bench_example1.json"
LAYERS = ((50, 30), (30, 10), (10, 5), (5, 10), (10, 30), (30, 50))


def training_flops(n_train: int, n_test: int, epochs: int) -> float:
    """Matrix-product FLOPs of ``epochs`` epochs: 3x forward per trained example, 1x per tested."""
    forward = 2 * sum(i * o for i, o in LAYERS)
    return float(epochs * (3 * n_train + n_test) * forward)


def time_jax(objective, data, config, key, *, many: int = 0, spread: bool = True):
    """Wall time of one ``fit`` (or ``fit_many`` over ``many`` keys) and its test MSE."""
    start = time.perf_counter()
    if many:
        state, _ = fit_many(
            objective,
            data.x_train,
            data.x_test,
            config,
            jax.random.split(key, many),
            spread_runs=spread,
        )
    else:
        state, _ = fit(objective, data.x_train, data.x_test, config, key)
    jax.block_until_ready(state.params)
    seconds = time.perf_counter() - start
    train = evaluate(objective, state, data.x_train, key)["loss"]
    test = evaluate(objective, state, data.x_test, key)["loss"]
    return seconds, np.asarray(train, np.float64), np.asarray(test, np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    # Before JAX's backend starts: one CPU device per core, for fit_many's runs.
    distributed.use_cpu_cores()

    data = load_tabular("synthetic-classification")
    objective = autoencoder_objective(Autoencoder(input_dim=data.x_train.shape[1]))
    config = TrainConfig(learning_rate=1e-3, batch_size=128, epochs=args.epochs, quiet=True)

    print("compiling latent_jax (first call)...", flush=True)
    cold, *_ = time_jax(objective, data, config, jax.random.key(100))
    cold_many, *_ = time_jax(objective, data, config, jax.random.key(100), many=args.seeds)
    time_jax(objective, data, config, jax.random.key(100), many=args.seeds, spread=False)

    torch_runs, jax_runs, many_runs, one_device_runs = [], [], [], []
    for repeat in range(args.repeats):
        print(f"repeat {repeat + 1}/{args.repeats}: PyTorch...", flush=True)
        result = train_autoencoder(
            data.x_train, data.x_test, num_epochs=args.epochs, seed=42 + repeat
        )
        torch_runs.append(
            {
                "seconds": result["train_seconds"],
                "train_mse": result["train_mse"],
                "test_mse": result["test_mse"],
            }
        )
        print(f"  PyTorch {result['train_seconds']:.2f} s, test MSE {result['test_mse']:.4f}")
        seconds, train, test = time_jax(objective, data, config, jax.random.key(repeat))
        jax_runs.append({"seconds": seconds, "train_mse": float(train), "test_mse": float(test)})
        print(f"  latent_jax {seconds:.2f} s, test MSE {float(test):.4f}", flush=True)
        seconds, _, test = time_jax(
            objective, data, config, jax.random.key(1000 + repeat), many=args.seeds
        )
        many_runs.append({"seconds": seconds, "test_mse": test.tolist()})
        print(f"  latent_jax x{args.seeds} seeds {seconds:.2f} s", flush=True)
        seconds, *_ = time_jax(
            objective, data, config, jax.random.key(1000 + repeat), many=args.seeds, spread=False
        )
        one_device_runs.append({"seconds": seconds})
        print(f"  latent_jax x{args.seeds} seeds on one device {seconds:.2f} s", flush=True)

    torch_s = statistics.median(r["seconds"] for r in torch_runs)
    jax_s = statistics.median(r["seconds"] for r in jax_runs)
    many_s = statistics.median(r["seconds"] for r in many_runs)
    one_device_s = statistics.median(r["seconds"] for r in one_device_runs)
    flops = training_flops(len(data.x_train), len(data.x_test), args.epochs)
    peak, peak_source = utilization.peak_flops("float32")
    peak /= 1e9
    # MFU: XLA's cost analysis of one compiled step, over the step time and the peak.
    step_flops = utilization.step_flops(objective, config, data.x_train)
    steps = args.epochs * -(-len(data.x_train) // config.batch_size)
    summary = {
        "epochs": args.epochs,
        "repeats": args.repeats,
        "torch_median_seconds": torch_s,
        "jax_median_seconds": jax_s,
        "speedup": torch_s / jax_s,
        "jax_compile_seconds": cold - jax_s,
        "seeds": args.seeds,
        "jax_many_median_seconds": many_s,
        "jax_many_compile_seconds": cold_many - many_s,
        "many_over_single": many_s / jax_s,
        "devices": len(jax.devices()),
        "jax_many_one_device_median_seconds": one_device_s,
        "many_one_device_over_single": one_device_s / jax_s,
        "torch_median_test_mse": statistics.median(r["test_mse"] for r in torch_runs),
        "jax_median_test_mse": statistics.median(r["test_mse"] for r in jax_runs),
        "torch_median_train_mse": statistics.median(r["train_mse"] for r in torch_runs),
        "jax_median_train_mse": statistics.median(r["train_mse"] for r in jax_runs),
        "many_test_mse_mean": float(np.mean([m for r in many_runs for m in r["test_mse"]])),
        "many_test_mse_std": float(np.std([m for r in many_runs for m in r["test_mse"]], ddof=1)),
        "training_gflop": flops / 1e9,
        "matmul_peak_gflops": peak,
        "peak_source": peak_source,
        "jax_fraction_of_peak": flops / jax_s / 1e9 / peak,
        "torch_fraction_of_peak": flops / torch_s / 1e9 / peak,
        "xla_flops_per_step": step_flops,
        "jax_mfu": utilization.mfu(step_flops, jax_s / steps, peak * 1e9),
        "machine": utilization.machine(),
    }
    write_record(
        args.output,
        "example1",
        summary,
        torch_runs=torch_runs,
        jax_runs=jax_runs,
        jax_many_runs=many_runs,
        jax_many_one_device_runs=one_device_runs,
    )

    print()
    print(f"| | PyTorch (seed's loop) | latent_jax | latent_jax, {args.seeds} seeds |")
    print("|---|---|---|---|")
    print(f"| {args.epochs} epochs, median s | {torch_s:.2f} | {jax_s:.2f} | {many_s:.2f} |")
    print(
        f"| speed-up over PyTorch | 1 | {torch_s / jax_s:.1f}x | "
        f"{args.seeds * torch_s / many_s:.1f}x (per model) |"
    )
    print(f"| compile s | - | {cold - jax_s:.2f} | {cold_many - many_s:.2f} |")
    print(
        f"| test MSE (median) | {summary['torch_median_test_mse']:.4f} | "
        f"{summary['jax_median_test_mse']:.4f} | {summary['many_test_mse_mean']:.4f} ± "
        f"{summary['many_test_mse_std']:.4f} |"
    )
    print(
        f"| fraction of matmul peak ({peak:.0f} GFLOP/s) | "
        f"{summary['torch_fraction_of_peak']:.1%} | {summary['jax_fraction_of_peak']:.1%} | "
        f"{args.seeds * flops / many_s / 1e9 / peak:.1%} |"
    )
    print(
        f"\n{args.seeds} seeds over {len(jax.devices())} devices: {many_s / jax_s:.2f}x one seed; "
        f"on one device: {one_device_s / jax_s:.2f}x"
    )
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
