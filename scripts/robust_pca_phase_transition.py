"""Phase transition of principal component pursuit: the fraction of exact recoveries over a
grid of rank and sparsity, as in Figure 1 of Candès, Li, Ma & Wright (J. ACM, 2011).

Each trial draws :math:`L_0 = X Y^\\top` with (n, r) factors of i.i.d. N(0, 1/n) entries and a
sparse :math:`S_0` whose support is a Bernoulli(rho_s) set of entries with random signs
(the paper's Figure 1(a)), then runs :func:`latent_jax.robust_pca` in float64 on
:math:`M = L_0 + S_0` with the default :math:`\\lambda = 1/\\sqrt{n}`. A trial succeeds when
:math:`\\lVert L - L_0\\rVert_F / \\lVert L_0\\rVert_F < 10^{-3}`, the paper's criterion.

The paper uses n = 400 and 10 trials per cell on a 0.025-step grid; the defaults here are
n = 200, 5 trials and an 8 x 8 grid, to run in a few CPU minutes. Writes
``phase_transition.json`` and ``phase_transition.png`` to ``--out``.

Usage::

    python scripts/robust_pca_phase_transition.py                 # n = 200, 5 trials
    python scripts/robust_pca_phase_transition.py --n 100 --trials 2  # a smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from latent_jax import robust_pca

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "robust_pca"
RANK_FRACTIONS = (0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4)
SPARSITIES = (0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4)
SUCCESS = 1e-3


def trial(n: int, rank: int, sparsity: float, rng: np.random.Generator) -> dict:
    """One decomposition; its relative error, iterations and whether it recovered L0."""
    scale = 1 / math.sqrt(n)
    low0 = rng.normal(0, scale, (n, rank)) @ rng.normal(0, scale, (rank, n))
    support = rng.random((n, n)) < sparsity
    sparse0 = np.where(support, rng.choice([-1.0, 1.0], (n, n)), 0.0)
    with jax.enable_x64(True):
        low, sparse, info = robust_pca(low0 + sparse0, max_iter=200)
        low, sparse = np.asarray(low), np.asarray(sparse)
    error = float(np.linalg.norm(low - low0) / np.linalg.norm(low0))
    return {
        "error": error,
        "recovered": error < SUCCESS,
        "support_exact": bool(np.array_equal(sparse != 0, support)),
        "iterations": int(info.iterations),
        "converged": bool(info.converged),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="matrix size n (n x n)")
    parser.add_argument("--trials", type=int, default=5, help="trials per cell")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    args = parser.parse_args(argv)
    if args.n < 10 or args.trials < 1:
        parser.error(f"--n must be >= 10 and --trials >= 1, got {args.n} and {args.trials}")
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    recovered = np.zeros((len(RANK_FRACTIONS), len(SPARSITIES)))
    support = np.zeros_like(recovered)
    cells = []
    for i, rank_fraction in enumerate(RANK_FRACTIONS):
        rank = max(1, round(rank_fraction * args.n))
        for j, sparsity in enumerate(SPARSITIES):
            runs = [trial(args.n, rank, sparsity, rng) for _ in range(args.trials)]
            recovered[i, j] = np.mean([r["recovered"] for r in runs])
            support[i, j] = np.mean([r["support_exact"] for r in runs])
            cells.append({"rank": rank, "sparsity": sparsity, "trials": runs})
            print(
                f"rank {rank:3d}  sparsity {sparsity:.3f}  recovered {recovered[i, j]:.2f}  "
                f"median error {np.median([r['error'] for r in runs]):.2e}  iterations "
                f"{[r['iterations'] for r in runs]}",
                flush=True,
            )
    elapsed = time.perf_counter() - start
    result = {
        "n": args.n,
        "trials": args.trials,
        "seed": args.seed,
        "criterion": f"||L - L0||_F / ||L0||_F < {SUCCESS:g}",
        "rank_fractions": list(RANK_FRACTIONS),
        "sparsities": list(SPARSITIES),
        "fraction_recovered": recovered.tolist(),
        "fraction_support_exact": support.tolist(),
        "seconds": elapsed,
        "cells": cells,
    }
    (args.out / "phase_transition.json").write_text(json.dumps(result, indent=1) + "\n")
    figure(recovered, args)
    print(f"{len(cells) * args.trials} trials in {elapsed:.0f} s; wrote {args.out}")
    return result


def figure(recovered: np.ndarray, args: argparse.Namespace) -> None:
    """The fraction recovered per cell, rank fraction up, sparsity across (white = all)."""
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    image = ax.imshow(recovered, origin="lower", cmap="gray", vmin=0, vmax=1)
    ax.set_xticks(range(len(SPARSITIES)), [f"{s:g}" for s in SPARSITIES], rotation=45)
    ax.set_yticks(range(len(RANK_FRACTIONS)), [f"{r:g}" for r in RANK_FRACTIONS])
    ax.set_xlabel(r"sparsity $\rho_s$ (fraction of corrupted entries)")
    ax.set_ylabel(r"rank$(L_0)$ / n")
    ax.set_title(f"PCP recovery, n = {args.n}, {args.trials} trials per cell", fontsize=10)
    fig.colorbar(image, ax=ax, label="fraction recovered")
    fig.tight_layout()
    fig.savefig(args.out / "phase_transition.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
