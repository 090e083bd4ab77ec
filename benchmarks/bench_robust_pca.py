"""Benchmark: robust PCA (principal component pursuit, inexact ALM) in JAX against NumPy.

Two parts, each writing a JSON file to ``benchmarks/results/robust_pca/``:

``--part time`` (``timing.json``): one 10,000 x 784 matrix :math:`M = L_0 + S_0`, with
:math:`L_0` of rank 39 (0.05 d; factors of i.i.d. N(0, 1/d) entries) and 5% of the entries
replaced by gross errors of +-1 (a random Bernoulli support), decomposed in the same
invocation by

* :func:`latent_jax.robust_pca` with each SVD solver (``gram``: eigendecomposition of the
  784 x 784 Gram matrix; ``full``: the thin SVD) in float64 and float32;
* the same iteration in NumPy float64 (the reference of ``tests/test_robust_pca.py``), with
  ``numpy.linalg.svd`` and with the Gram matrix's ``numpy.linalg.eigh``.

The full-SVD variants are slow on this matrix: they run ``--full-iters`` iterations and report
the time per iteration (and its product with the iterations the Gram variant needed, marked
as an extrapolation). Compilation is measured apart (a warm-up call with ``max_iter=1``; the
iteration count is a traced argument, so it compiles the same program). Each variant reports
its iterations, wall and CPU seconds, the relative residual, the rank and the relative error
:math:`\\lVert L - L_0\\rVert_F / \\lVert L_0\\rVert_F`.

``--part anomaly`` (``anomaly_mnist5k.json``): anomaly detection on the 5,000 MNIST digits
(``mnist-5k``, raw pixels 0-255, its fixed split: 4,000 training and 1,000 test digits). One
class is normal: the detector trains on that class's training digits, of which 10% are
replaced by outliers (digits of the other classes, or uniform noise images), and is scored
by AUROC on the untouched test set (its digits of the normal class against all others).
A third contamination follows principal component pursuit's own model instead of whole
outlying rows: 10% of the training pixels (entries, not rows) set to 255.
``AnomalyDetector("pca")`` and ``AnomalyDetector("robust-pca")`` (squared reconstruction
error, the same ``--n-components`` for both, default 10, global standardization) are trained
on the clean and on the contaminated training rows of each class.

Usage::

    python benchmarks/bench_robust_pca.py                 # both parts, a few minutes
    python benchmarks/bench_robust_pca.py --part time --rows 2000   # a quicker timing
    python benchmarks/bench_robust_pca.py --part anomaly --classes 0 1 2

The machine is shared and timings are noisy: compare the ratios measured in one run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path

import jax
import numpy as np
from sklearn.metrics import roc_auc_score

from latent_jax import AnomalyDetector, robust_pca
from latent_jax.data import images as image_data

RESULTS = Path(__file__).resolve().parent / "results" / "robust_pca"


def problem(rows: int, cols: int, rank: int, fraction: float, seed: int = 0):
    """L0 of rank ``rank`` and a +-1 sparse S0 on a Bernoulli(``fraction``) support."""
    rng = np.random.default_rng(seed)
    scale = 1 / math.sqrt(cols)
    low = rng.normal(0, scale, (rows, rank)) @ rng.normal(0, scale, (rank, cols))
    support = rng.random((rows, cols)) < fraction
    return low, np.where(support, rng.choice([-1.0, 1.0], (rows, cols)), 0.0)


def _svt_numpy_full(x, tau):
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    return (u * np.maximum(s - tau, 0)) @ vt, int(np.sum(s > tau))


def _svt_numpy_gram(x, tau):
    w, v = np.linalg.eigh(x.T @ x)
    s = np.sqrt(np.maximum(w, 0))
    keep = s > tau
    factors = np.where(keep, 1 - tau / np.where(keep, s, 1), 0)
    return x @ ((v * factors) @ v.T), int(keep.sum())


def numpy_inexact_alm(m, svt, tol=1e-7, max_iter=1000, rho=1.5):
    """The iteration of :func:`latent_jax.robust_pca` in NumPy (float64), SVT given."""
    lam = 1 / math.sqrt(max(m.shape))
    norm_two = math.sqrt(np.linalg.eigvalsh(m.T @ m)[-1])
    y = m / max(norm_two, np.abs(m).max() / lam)
    mu = 1.25 / norm_two
    mu_max = mu * 1e7
    sparse = np.zeros_like(m)
    norm_fro = np.linalg.norm(m)
    iterations, residual, rank = 0, np.inf, 0
    while iterations < max_iter and residual >= tol:
        low, rank = svt(m - sparse + y / mu, 1 / mu)
        t = m - low + y / mu
        sparse = np.sign(t) * np.maximum(np.abs(t) - lam / mu, 0)
        z = m - low - sparse
        y = y + mu * z
        mu = min(mu * rho, mu_max)
        residual = np.linalg.norm(z) / norm_fro
        iterations += 1
    return low, sparse, iterations, residual, rank


def _clock():
    return time.perf_counter(), time.process_time()


def _since(start):
    wall, cpu = start
    return time.perf_counter() - wall, time.process_time() - cpu


def run_jax(m, low0, solver, dtype, max_iter):
    """One latent_jax variant: compile (a max_iter=1 call), then the timed decomposition."""
    with jax.enable_x64(dtype == np.float64):
        x = jax.device_put(m.astype(dtype))
        start = _clock()
        jax.block_until_ready(robust_pca(x, svd_solver=solver, max_iter=1))
        compile_wall, _ = _since(start)
        start = _clock()
        low, _, info = robust_pca(x, svd_solver=solver, max_iter=max_iter)
        low = np.asarray(jax.block_until_ready(low), np.float64)
        wall, cpu = _since(start)
        iterations = int(info.iterations)
        return low, {
            "library": "latent_jax",
            "solver": solver,
            "dtype": np.dtype(dtype).name,
            "iterations": iterations,
            "converged": bool(info.converged),
            "residual": float(info.residual),
            "rank": int(info.rank),
            "seconds": wall,
            "cpu_seconds": cpu,
            "seconds_per_iteration": wall / iterations,
            "first_call_seconds": compile_wall,
            "relative_error": float(np.linalg.norm(low - low0) / np.linalg.norm(low0)),
        }


def run_numpy(m, low0, solver, max_iter):
    svt = _svt_numpy_full if solver == "full" else _svt_numpy_gram
    start = _clock()
    low, _, iterations, residual, rank = numpy_inexact_alm(m, svt, max_iter=max_iter)
    wall, cpu = _since(start)
    return low, {
        "library": "numpy",
        "solver": solver,
        "dtype": "float64",
        "iterations": iterations,
        "converged": bool(residual < 1e-7),
        "residual": float(residual),
        "rank": rank,
        "seconds": wall,
        "cpu_seconds": cpu,
        "seconds_per_iteration": wall / iterations,
        "relative_error": float(np.linalg.norm(low - low0) / np.linalg.norm(low0)),
    }


def part_time(args) -> dict:
    cols = 784
    rank = round(0.05 * cols)
    low0, sparse0 = problem(args.rows, cols, rank, 0.05)
    m = low0 + sparse0
    runs, lows = [], {}
    plan = [
        ("latent_jax", "gram", np.float64, 1000),
        ("numpy", "gram", np.float64, 1000),
        ("latent_jax", "gram", np.float32, 1000),
        ("latent_jax", "full", np.float32, args.full_iters),
        ("latent_jax", "full", np.float64, args.full_iters),
        ("numpy", "full", np.float64, args.full_iters),
    ]
    for library, solver, dtype, max_iter in plan:
        if library == "numpy":
            low, record = run_numpy(m, low0, solver, max_iter)
        else:
            low, record = run_jax(m, low0, solver, dtype, max_iter)
        lows[(library, solver, record["dtype"])] = low
        runs.append(record)
        print(json.dumps(record), flush=True)
    reference = runs[0]["iterations"]
    numpy_gram = next(r for r in runs if r["library"] == "numpy" and r["solver"] == "gram")
    for record in runs:
        if not record["converged"] and record["iterations"] == args.full_iters:
            record["extrapolated_seconds"] = record["seconds_per_iteration"] * reference
        record["seconds_over_numpy_gram"] = (
            record["seconds_per_iteration"] / numpy_gram["seconds_per_iteration"]
        )
    jax_low = lows[("latent_jax", "gram", "float64")]
    numpy_low = lows[("numpy", "gram", "float64")]
    return {
        "shape": [args.rows, cols],
        "rank": rank,
        "corrupted_fraction": 0.05,
        "tol": 1e-7,
        "float32_tol": 1e-5,
        "full_iters": args.full_iters,
        "jax_vs_numpy_gram_float64_max_abs_difference": float(np.abs(jax_low - numpy_low).max()),
        "runs": runs,
    }


def _contaminate(normal, outliers, fraction, rng):
    """``normal`` with ``fraction`` of its rows replaced by rows of ``outliers``."""
    x = normal.copy()
    rows = rng.choice(len(x), round(fraction * len(x)), replace=False)
    x[rows] = outliers[rng.choice(len(outliers), len(rows), replace=False)]
    return x


def part_anomaly(args) -> dict:
    data = image_data.load_image_dataset("mnist-5k", normalization="none")
    x_train = np.asarray(data.x_train, np.float32).reshape(len(data.x_train), -1)
    x_test = np.asarray(data.x_test, np.float32).reshape(len(data.x_test), -1)
    y_train, y_test = np.asarray(data.y_train), np.asarray(data.y_test)
    rng = np.random.default_rng(args.seed)
    results = []
    for digit in args.classes:
        normal = x_train[y_train == digit]
        sources = {
            "other digits": x_train[y_train != digit],
            "uniform noise": rng.uniform(0, 255, (len(normal), x_train.shape[1])).astype(
                np.float32
            ),
        }
        labels = (y_test != digit).astype(int)
        trainings = {"clean": normal}
        for name, outliers in sources.items():
            trainings[name] = _contaminate(normal, outliers, args.contamination, rng)
        # Principal component pursuit's own model: gross errors in scattered entries.
        salted = normal.copy()
        salted[rng.random(normal.shape) < args.contamination] = 255.0
        trainings["salt pixels"] = salted
        for training, x in trainings.items():
            for method in ("pca", "robust-pca"):
                start = _clock()
                detector = AnomalyDetector(
                    method, n_components=args.n_components, scaling="global"
                ).fit(x)
                wall, _ = _since(start)
                auroc = float(roc_auc_score(labels, detector.decision_function(x_test)))
                record = {
                    "digit": int(digit),
                    "training": training,
                    "method": method,
                    "n_train": len(x),
                    "n_components": int(detector.n_components_),
                    "auroc": auroc,
                    "fit_seconds": wall,
                }
                results.append(record)
                print(json.dumps(record), flush=True)
    summary = {}
    for training in ("clean", "other digits", "uniform noise", "salt pixels"):
        for method in ("pca", "robust-pca"):
            values = [
                r["auroc"] for r in results if r["training"] == training and r["method"] == method
            ]
            summary[f"{method}, {training}"] = float(np.mean(values))
    print(json.dumps(summary, indent=1))
    return {
        "dataset": "mnist-5k (raw pixels)",
        "contamination": args.contamination,
        "n_components": args.n_components,
        "classes": [int(c) for c in args.classes],
        "mean_auroc": summary,
        "runs": results,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("time", "anomaly", "all"), default="all")
    parser.add_argument("--rows", type=int, default=10_000, help="rows of the timed matrix")
    parser.add_argument("--full-iters", type=int, default=3, help="iterations of full SVDs")
    parser.add_argument("--classes", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--contamination", type=float, default=0.1)
    parser.add_argument(
        "--n-components", type=int, default=10, help="principal axes of both detectors"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    machine = {
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "numpy": np.__version__,
    }
    if args.part in ("time", "all"):
        result = {**machine, **part_time(args)}
        (RESULTS / "timing.json").write_text(json.dumps(result, indent=1) + "\n")
    if args.part in ("anomaly", "all"):
        result = {**machine, **part_anomaly(args)}
        (RESULTS / "anomaly_mnist5k.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
