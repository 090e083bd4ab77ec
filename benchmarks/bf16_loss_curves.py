"""bfloat16 against float32: the same runs' loss curves, side by side (a correctness check).

``TrainConfig(compute_dtype="bfloat16")`` runs the models in bfloat16 and keeps parameters,
optimizer state, losses and KL terms in float32 (:mod:`latent_jax.precision`). This script
trains two of the project's reference runs in both dtypes, with the same seed:

* example 1: the tutorial's autoencoder (50-30-10-5) on its synthetic data, Adam 1e-3,
  batch 128, MSE, ``--epochs1`` epochs (the tutorial's 500);
* the mnist-5k VAE: the MLP VAE of ``bench_vs_pythae.py`` (784-500-20, tanh, Bernoulli) on
  mnist-5k's 4,000 / 1,000 split, Adam 1e-3, batch 128, ``--epochs2`` epochs;

and draws their train and test losses per epoch in one figure, with the largest relative
gap between the curves. On a CPU XLA emulates most bfloat16 arithmetic, so the times in the
JSON are no speed claim; the GPU suite (``gpu_suite.py``) measures the speed-up.

Usage::

    python benchmarks/bf16_loss_curves.py            # about 5 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from utilization import machine

from latent_jax.data import load_tabular
from latent_jax.experiments.iwae_table1 import load_split
from latent_jax.models.mlp import VAE, Autoencoder
from latent_jax.objectives import autoencoder_objective, vae_objective
from latent_jax.train import TrainConfig, fit

RESULTS = Path(__file__).resolve().parent / "results" / "bf16"
DTYPES = ("float32", "bfloat16")


def runs(epochs1: int, epochs2: int) -> dict[str, dict]:
    """Both workloads in both dtypes: ``{workload: {dtype: {"train": [...], ...}}}``."""
    data = load_tabular("synthetic-classification")
    mnist_train, mnist_test = load_split()
    workloads = {
        "example 1 (MLP autoencoder)": (
            autoencoder_objective(Autoencoder(input_dim=data.x_train.shape[1])),
            data.x_train,
            data.x_test,
            epochs1,
        ),
        "mnist-5k VAE (784-500-20, Bernoulli)": (
            vae_objective(
                VAE(input_dim=784, hidden_dims=(500,), latent_dim=20, activation="tanh"),
                likelihood="bernoulli",
            ),
            mnist_train,
            mnist_test,
            epochs2,
        ),
    }
    out: dict[str, dict] = {}
    for name, (objective, train, test, epochs) in workloads.items():
        out[name] = {}
        for dtype in DTYPES:
            config = TrainConfig(epochs=epochs, batch_size=128, quiet=True, compute_dtype=dtype)
            start = time.perf_counter()
            _, history = fit(objective, train, test, config, jax.random.key(0))
            seconds = time.perf_counter() - start
            out[name][dtype] = {
                "train": [float(v) for v in history["train_loss"]],
                "test": [float(v) for v in history["test_loss"]],
                "seconds": seconds,
            }
            print(
                f"{name} {dtype}: final test loss {out[name][dtype]['test'][-1]:.4f} "
                f"({seconds:.1f} s)",
                flush=True,
            )
        f32, bf16 = (np.asarray(out[name][d]["test"]) for d in DTYPES)
        out[name]["max_relative_gap_test"] = float(np.max(np.abs(bf16 - f32) / np.abs(f32)))
        out[name]["final_relative_gap_test"] = float(abs(bf16[-1] - f32[-1]) / abs(f32[-1]))
    return out


def figure(results: dict[str, dict], path: Path) -> None:
    """One panel per workload: train (thin) and test (thick) loss, float32 and bfloat16."""
    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.2))
    for ax, (name, curves) in zip(np.atleast_1d(axes), results.items(), strict=True):
        for dtype, colour in zip(DTYPES, ("tab:blue", "tab:orange"), strict=True):
            epochs = np.arange(1, len(curves[dtype]["test"]) + 1)
            ax.plot(
                epochs,
                curves[dtype]["train"],
                color=colour,
                lw=0.8,
                alpha=0.6,
                label=f"{dtype} train",
            )
            ax.plot(
                epochs,
                curves[dtype]["test"],
                color=colour,
                lw=2,
                ls="-" if dtype == "float32" else "--",
                label=f"{dtype} test",
            )
        gap = curves["max_relative_gap_test"]
        ax.set(
            title=f"{name}\nlargest test-loss gap {100 * gap:.2f}%",
            xlabel="epoch",
            ylabel="loss",
            yscale="log",
        )
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs1", type=int, default=500)
    parser.add_argument("--epochs2", type=int, default=30)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = runs(args.epochs1, args.epochs2)
    figure(results, args.out / "loss_curves.png")
    record = {"machine": machine(), "epochs": [args.epochs1, args.epochs2], "runs": results}
    (args.out / "bf16_loss_curves.json").write_text(json.dumps(record, indent=2) + "\n")
    print(args.out / "loss_curves.png")


if __name__ == "__main__":
    main()
