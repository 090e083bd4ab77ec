"""DCGAN against the convolutional VAE on mnist-5k: the generation score in the same budget.

Both models train on the same 4,000 training digits of ``mnist-5k`` (pixels in [0, 1]) for the
same number of epochs with the same batch size, so they see the same data the same number of
times; each run folder's ``metrics.json`` holds its training seconds and its ``generation``
score (1,000 generated images scored by a classifier trained on the real training digits,
against the 1,000 test digits; see :class:`latent_jax.generate.GenerationScorer`). Run as

    python benchmarks/bench_gan_vs_vae.py [--epochs 25] [--out benchmarks/results/gan]

The commands are ``latent-jax gan`` (DCGAN's settings, a base width of 16 for the CPU) and
``latent-jax vae`` (the tutorial's ConvVAE, the summed squared error and β = 1, Adam at 1e-3).
Writes OUT/mnist5k_gan_vs_vae.json and keeps both run folders (figures) under OUT/.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from latent_jax.cli import main


def _run(command: list[str], folder: str) -> dict:
    start = time.perf_counter()
    code = main(command)
    if code:
        raise SystemExit(f"{command[0]} failed with exit status {code}")
    with open(os.path.join(folder, "metrics.json"), encoding="utf-8") as handle:
        metrics = json.load(handle)
    metrics["wall_seconds"] = time.perf_counter() - start
    return metrics


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join("benchmarks", "results", "gan"))
    args = parser.parse_args()
    shared = ["--data", "mnist-5k", "--normalization", "none", "--quiet", "--no-compile-cache"]
    shared += ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size)]
    shared += ["--seed", str(args.seed)]
    gan_dir, vae_dir = os.path.join(args.out, "gan_run"), os.path.join(args.out, "vae_run")
    gan = _run(["gan", *shared, "--features", str(args.features), "--out", gan_dir], gan_dir)
    vae_flags = ["--likelihood", "sse", "--beta-schedule", "constant", "--beta-max", "1"]
    vae_flags += ["--learning-rate", "1e-3", "--log-every", "0", "--checkpoint-every", "0"]
    vae = _run(["vae", *shared, *vae_flags, "--out", vae_dir], vae_dir)
    keys = ("generation", "epochs", "train_seconds", "compile_seconds", "wall_seconds")
    result = {
        "data": "mnist-5k",
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "gan": {k: gan.get(k) for k in (*keys, "n_parameters", "features", "latent_dim")},
        "vae": {k: vae.get(k) for k in (*keys, "n_parameters", "latent_dim")},
        "environment": gan.get("environment"),
    }
    path = os.path.join(args.out, "mnist5k_gan_vs_vae.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    for name in ("gan", "vae"):
        score = result[name]["generation"]
        print(
            f"{name}: confident {score['confident_fraction']:.3f}, entropy "
            f"{score['label_entropy']:.3f}, Frechet {score['frechet_distance']:.4g}, train "
            f"{result[name]['train_seconds']:.0f} s"
        )
    print(f"wrote {path}")


if __name__ == "__main__":
    main_bench()
