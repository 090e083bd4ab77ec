"""Benchmark: the seed's face VAE, latent_jax against the seed's PyTorch loop, side by side.

Both train the seed's convolutional VAE (112 x 92 x 1 images, 8,473,045 parameters, see
:mod:`latent_jax.models.conv`) with Adam 1e-4, batch 64, summed-MSE reconstruction plus the
seed's monotonic β·KL (β_max = 1/30, τ = 1000 epochs), BatchNorm in training mode. The two
implementations alternate within one invocation (PyTorch, latent_jax, PyTorch, ...) so that
both see the same machine load; the table reports medians and their ratio.

* PyTorch: ``benchmarks/torch_reference/faces_vae.py``, the seed's model and loop
  (DataLoader, ``loss.backward()``, ``optimizer.step()``, ``loss.item()`` every batch). Its
  time is the epoch loop. One untimed batch first builds oneDNN's kernels.
* latent_jax: ``ConvVAE()`` and ``vae_objective`` trained by :func:`latent_jax.train.fit`,
  called again on a warm cache. Its time is the sum of the history's ``epoch_time`` (the
  compiled epochs); the whole call's wall time (initialization and transfers included) is
  recorded too. Compile time is the first call's wall time minus the warm calls' median.

Throughput is training images per second; neither side evaluates a test split. The seed's
10,000-epoch run on the AT&T faces (320 training images, 5 batches an epoch) is extrapolated
from it for each side; the seed also evaluates its 80 test images every epoch, which
adds a forward pass of 80 images per epoch (about 8% more work) that the estimate leaves out.

Data: the real AT&T faces when ``--att-root`` holds them (``s*/*.pgm``; the seed's split and
normalization, training images only), otherwise standard normal images (the scale of
normalized faces); the arithmetic does not depend on the values.

``--check-conv-transpose`` also compares :func:`latent_jax.models.layers.conv_transpose` with
``torch.nn.functional.conv_transpose2d`` on random inputs, for each of the decoder's
transposed convolutions (strides 1 and 2, paddings 0 and 1), and prints the largest
absolute difference.

Usage::

    python benchmarks/bench_conv_vae.py                  # 3 repeats of 128 images, ~3 min
    python benchmarks/bench_conv_vae.py --repeats 5 --images 320 --epochs 2
    python benchmarks/bench_conv_vae.py --repeats 1 --images 64 --check-conv-transpose
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

import jax
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import utilization
from torch_reference.faces_vae import (
    BATCH_SIZE,
    BETA_MAX,
    LEARNING_RATE,
    SEED_PARAMETER_COUNT,
    train_vae,
)
from torch_reference.record import write_record

from latent_jax import schedules
from latent_jax.data.images import is_att_folder, load_image_dataset
from latent_jax.models.conv import ConvVAE
from latent_jax.models.layers import conv_transpose, conv_transpose_output_size
from latent_jax.objectives import vae_objective
from latent_jax.train import TrainConfig, fit

RESULTS = Path(__file__).resolve().parent / "results" / "bench_conv_vae.json"
SEED_EPOCHS = 10_000
SEED_TRAIN_IMAGES = 320  # 80% of the 400 AT&T faces


def load_images(n: int, att_root: str) -> tuple[np.ndarray, str]:
    """``n`` training images of shape (n, 112, 92, 1) and a description of where they came from.

    The AT&T training split (normalized as the seed does) when ``att_root`` holds the faces,
    repeated if ``n`` exceeds it; standard normal images otherwise.
    """
    if is_att_folder(att_root):
        faces = load_image_dataset("att", data_dir=att_root).x_train
        return np.take(faces, np.arange(n) % len(faces), axis=0), f"AT&T faces ({att_root})"
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 112, 92, 1)).astype(np.float32), "random N(0, 1) images"


def count_parameters(params) -> int:
    """Number of scalars in a parameter tree."""
    return sum(int(np.size(leaf)) for leaf in jax.tree.leaves(params))


def time_jax(objective, images: np.ndarray, config: TrainConfig, key) -> dict:
    """One ``fit`` call: its wall time, its compiled epochs' time and its last train loss."""
    start = time.perf_counter()
    state, history = fit(objective, images, None, config, key)
    jax.block_until_ready(state.params)
    wall = time.perf_counter() - start
    return {
        "wall_seconds": wall,
        "seconds": float(np.sum(history["epoch_time"])),
        "train_loss": float(history["train_loss"][-1]),
        "parameters": count_parameters(state.params),
    }


def check_conv_transpose(seed: int = 0) -> list[dict]:
    """Max abs difference of ``conv_transpose`` and PyTorch's, per decoder layer of the seed."""
    model = ConvVAE()
    h, w, channels = model.feature_shape
    layers = [(s.features, s.kernel_size, s.stride, s.padding) for s in model.decoder_convs]
    layers.append((model.image_shape[-1], *model.output_conv))
    rng = np.random.default_rng(seed)
    rows = []
    for features, kernel_size, stride, padding in layers:
        x = rng.standard_normal((2, h, w, channels)).astype(np.float32)
        weight = rng.standard_normal((channels, features, kernel_size, kernel_size))
        weight = (weight / math.sqrt(channels * kernel_size**2)).astype(np.float32)
        ours = np.asarray(conv_transpose(x, weight.transpose(2, 3, 0, 1), stride, padding))
        theirs = torch.nn.functional.conv_transpose2d(
            torch.from_numpy(x.transpose(0, 3, 1, 2).copy()),
            torch.from_numpy(weight),
            stride=stride,
            padding=padding,
        )
        theirs = theirs.numpy().transpose(0, 2, 3, 1)
        if ours.shape != theirs.shape:
            raise AssertionError(f"shapes differ: latent_jax {ours.shape}, torch {theirs.shape}")
        rows.append(
            {
                "in_shape": [h, w, channels],
                "features": features,
                "kernel_size": kernel_size,
                "stride": stride,
                "padding": padding,
                "out_shape": list(ours.shape[1:]),
                "max_abs_diff": float(np.max(np.abs(ours - theirs))),
                "max_abs_value": float(np.max(np.abs(theirs))),
            }
        )
        h = conv_transpose_output_size(h, kernel_size, stride, padding)
        w = conv_transpose_output_size(w, kernel_size, stride, padding)
        channels = features
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=128, help="training images per epoch")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per timed run")
    parser.add_argument("--att-root", default="data", help="folder of the AT&T faces, if any")
    parser.add_argument("--check-conv-transpose", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    for name in ("repeats", "images", "epochs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")

    images, source = load_images(args.images, args.att_root)
    print(f"data: {len(images)} {source}, {args.epochs} epoch(s) per run", flush=True)
    steps = args.epochs * -(-len(images) // BATCH_SIZE)
    trained = args.epochs * len(images)

    conv_rows = []
    if args.check_conv_transpose:
        conv_rows = check_conv_transpose()
        for r in conv_rows:
            print(
                f"conv_transpose {r['in_shape']} -> {r['out_shape']} (stride {r['stride']}, "
                f"padding {r['padding']}): max |latent_jax - torch| = {r['max_abs_diff']:.2e} "
                f"(outputs up to {r['max_abs_value']:.1f})",
                flush=True,
            )

    beta = schedules.monotonic(beta_max=BETA_MAX, tau=1000.0)
    objective = vae_objective(ConvVAE(), beta, likelihood="sse", beta_unit="epoch")
    config = TrainConfig(
        learning_rate=LEARNING_RATE, batch_size=BATCH_SIZE, epochs=args.epochs, quiet=True
    )

    print("compiling latent_jax (first call)...", flush=True)
    cold = time_jax(objective, images, config, jax.random.key(100))
    if cold["parameters"] != SEED_PARAMETER_COUNT:
        raise AssertionError(f"ConvVAE has {cold['parameters']} parameters, not the seed's")
    print("warming up PyTorch (one batch)...", flush=True)
    warm = train_vae(images[:BATCH_SIZE], num_epochs=1)
    if warm["parameters"] != SEED_PARAMETER_COUNT:
        raise AssertionError(f"the PyTorch VAE has {warm['parameters']} parameters")

    torch_runs, jax_runs = [], []
    for repeat in range(args.repeats):
        print(f"repeat {repeat + 1}/{args.repeats}: PyTorch...", flush=True)
        result = train_vae(images, num_epochs=args.epochs, seed=42 + repeat)
        torch_runs.append(
            {
                "seconds": result["train_seconds"],
                "epoch_seconds": result["epoch_seconds"],
                "train_loss": result["train_losses"][-1],
            }
        )
        print(
            f"  PyTorch {result['train_seconds']:.2f} s "
            f"({trained / result['train_seconds']:.1f} images/s)",
            flush=True,
        )
        run = time_jax(objective, images, config, jax.random.key(repeat))
        jax_runs.append(run)
        print(
            f"  latent_jax {run['seconds']:.2f} s ({trained / run['seconds']:.1f} images/s), "
            f"fit wall {run['wall_seconds']:.2f} s",
            flush=True,
        )

    torch_s = statistics.median(r["seconds"] for r in torch_runs)
    jax_s = statistics.median(r["seconds"] for r in jax_runs)
    jax_wall = statistics.median(r["wall_seconds"] for r in jax_runs)
    torch_rate, jax_rate = trained / torch_s, trained / jax_s
    seed_images = SEED_EPOCHS * SEED_TRAIN_IMAGES
    # MFU: XLA's cost analysis of one compiled step, over the step time and the peak.
    step_flops = utilization.step_flops(objective, config, images)
    peak, peak_source = utilization.peak_flops("float32")
    summary = {
        "images": len(images),
        "data": source,
        "epochs": args.epochs,
        "steps_per_run": steps,
        "batch_size": BATCH_SIZE,
        "repeats": args.repeats,
        "parameters": SEED_PARAMETER_COUNT,
        "torch_median_seconds": torch_s,
        "jax_median_seconds": jax_s,
        "jax_median_wall_seconds": jax_wall,
        "torch_images_per_second": torch_rate,
        "jax_images_per_second": jax_rate,
        "jax_over_torch_throughput": jax_rate / torch_rate,
        "torch_ms_per_step": 1e3 * torch_s / steps,
        "jax_ms_per_step": 1e3 * jax_s / steps,
        "jax_compile_seconds": cold["wall_seconds"] - jax_wall,
        "seed_run_torch_hours": seed_images / torch_rate / 3600,
        "seed_run_jax_hours": seed_images / jax_rate / 3600,
        "xla_flops_per_step": step_flops,
        "jax_mfu": utilization.mfu(step_flops, jax_s / steps, peak),
        "peak_source": peak_source,
        "machine": utilization.machine(),
    }
    write_record(
        args.output,
        "conv_vae",
        summary,
        torch_runs=torch_runs,
        jax_runs=jax_runs,
        conv_transpose_check=conv_rows,
    )

    print()
    print(f"torch threads: {torch.get_num_threads()}, cpu_count: {os.cpu_count()}")
    print("| | PyTorch (seed's loop) | latent_jax |")
    print("|---|---|---|")
    print(f"| {args.epochs} x {len(images)} images, median s | {torch_s:.2f} | {jax_s:.2f} |")
    print(f"| images/s (batch {BATCH_SIZE}) | {torch_rate:.1f} | {jax_rate:.1f} |")
    print(
        f"| ms per step | {summary['torch_ms_per_step']:.0f} | {summary['jax_ms_per_step']:.0f} |"
    )
    print(f"| throughput over PyTorch | 1 | {jax_rate / torch_rate:.2f}x |")
    print(f"| compile s | - | {summary['jax_compile_seconds']:.1f} |")
    print(
        f"| seed's run ({SEED_EPOCHS:,} epochs x {SEED_TRAIN_IMAGES} images), hours | "
        f"{summary['seed_run_torch_hours']:.1f} | {summary['seed_run_jax_hours']:.1f} |"
    )
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
