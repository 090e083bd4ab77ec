"""Benchmark: the linear family (``FactorAnalysis``, ``IncrementalPCA``, ``KernelPCA``,
``FastICA``) against scikit-learn's estimators of the same names, side by side in one run.

Each estimator fits the same float64 data as scikit-learn's, with the same parameters
(scikit-learn's defaults unless stated), at three sizes:

* ``FactorAnalysis(10)``: a 10-factor model with per-feature noise, 50 features;
  ``svd_method="randomized"`` (the default of both);
* ``IncrementalPCA(10)``: 50 features, ``fit`` in batches of ``5 * n_features`` (the default);
* ``FastICA(10)``: 10 independent non-Gaussian sources mixed into 20 features (parallel,
  logcosh, SVD whitening; ``random_state=0`` for both, so both start from the same matrix);
* ``KernelPCA(5, kernel="rbf")``: 20 standardized features of the factor model,
  ``eigen_solver="auto"`` (scikit-learn: ARPACK from 200 rows; latent_jax: its randomized
  subspace iteration run to convergence). Its sizes are smaller (default 1e3, 3e3, 1e4 rows):
  the Gram matrix of 1e5 rows would take 80 GB.

Default sizes: 1e3, 1e4 and 1e5 rows. Timings are medians of alternating repeats (latent_jax,
then scikit-learn, then again); latent_jax's first call, which compiles, is measured apart
(``first_call_s``). Each row also records how far the two fits are apart (log-likelihood and
noise variances, components up to sign, codes up to sign, the Amari distance between the two
unmixing matrices). Results go to ``benchmarks/results/bench_linear.json``.

Usage::

    python benchmarks/bench_linear.py                         # the three sizes, ~10 minutes
    python benchmarks/bench_linear.py --sizes 1000 --kernel-sizes 300 --repeats 3  # a smoke run

The machine is shared and timings are noisy: compare the ratios measured in one run.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
from bench_pca import machine_info

RESULTS = Path(__file__).resolve().parent / "results" / "bench_linear.json"
SIZES = (1_000, 10_000, 100_000)
KERNEL_SIZES = (1_000, 3_000, 10_000)
N_FEATURES = 50
N_FACTORS = 10
ICA_SOURCES = 10
ICA_FEATURES = 20
KERNEL_FEATURES = 20
KERNEL_COMPONENTS = 5


def repeats_for(n: int) -> int:
    """More repeats for the fast small fits, whose medians move most."""
    return 9 if n <= 2_000 else 5 if n <= 20_000 else 3


def factor_data(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng([seed, n])
    loadings = rng.normal(size=(N_FACTORS, N_FEATURES)) * np.linspace(3.0, 1.0, N_FACTORS)[:, None]
    noise = rng.uniform(0.2, 2.0, N_FEATURES)
    x = rng.normal(size=(n, N_FACTORS)) @ loadings
    return x + rng.normal(size=(n, N_FEATURES)) * np.sqrt(noise) + 3.0


def standardized(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per feature: the RBF kernel's default gamma (1 / n_features)
    then sees distances of order one."""
    return (x - x.mean(axis=0)) / x.std(axis=0)


def ica_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, n])
    kinds = (
        lambda m: rng.laplace(size=m),
        lambda m: rng.uniform(-1.0, 1.0, m),
        lambda m: rng.choice([-1.0, 1.0], m),
        lambda m: rng.exponential(size=m) - 1.0,
        lambda m: np.sin(np.linspace(0, 40 * np.pi, m) + rng.uniform(0, 3)),
    )
    sources = np.column_stack([kinds[j % len(kinds)](n) for j in range(ICA_SOURCES)])
    mixing = rng.normal(size=(ICA_SOURCES, ICA_FEATURES))
    return sources @ mixing + 0.01 * rng.normal(size=(n, ICA_FEATURES)), mixing


def amari_distance(product: np.ndarray) -> float:
    p = np.abs(product)
    k = p.shape[0]
    rows = np.sum(np.sum(p, axis=1) / np.max(p, axis=1) - 1)
    columns = np.sum(np.sum(p, axis=0) / np.max(p, axis=0) - 1)
    return float((rows + columns) / (2 * k * (k - 1)))


def up_to_sign(a: np.ndarray, b: np.ndarray, axis: int) -> float:
    """Largest difference of ``a`` from ``b`` relative to ``b``'s largest entry, each row
    (axis 1) or column (axis 0) of ``a`` signed like ``b``'s."""
    a = a * np.sign(np.sum(a * b, axis=axis, keepdims=True))
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def alternate(ours, theirs, repeats: int) -> dict:
    """latent_jax's first call, then alternating timed calls; medians and the last fits."""
    start = time.perf_counter()
    ours()
    first = time.perf_counter() - start
    times = {"latent_jax": [], "sklearn": []}
    fitted = {}
    for _ in range(repeats):
        for name, fit in (("latent_jax", ours), ("sklearn", theirs)):
            gc.collect()
            start = time.perf_counter()
            fitted[name] = fit()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    return {
        "latent_jax_s": medians["latent_jax"],
        "sklearn_s": medians["sklearn"],
        "ratio": medians["latent_jax"] / medians["sklearn"],
        "first_call_s": first,
        "times_s": times,
        "fitted": fitted,
    }


def bench_factor_analysis(n: int, repeats: int) -> dict:
    from sklearn.decomposition import FactorAnalysis as Theirs

    from latent_jax import FactorAnalysis

    x = factor_data(n)
    row = alternate(
        lambda: FactorAnalysis(N_FACTORS).fit(x), lambda: Theirs(N_FACTORS).fit(x), repeats
    )
    ours, theirs = row.pop("fitted").values()
    row["agreement"] = {
        "n_iter": [ours.n_iter_, theirs.n_iter_],
        "loglike_rel": abs(ours.loglike_[-1] / theirs.loglike_[-1] - 1),
        "noise_variance_max_rel": float(
            np.max(np.abs(ours.noise_variance_ / theirs.noise_variance_ - 1))
        ),
    }
    return row


def bench_incremental_pca(n: int, repeats: int) -> dict:
    from sklearn.decomposition import IncrementalPCA as Theirs

    from latent_jax import IncrementalPCA

    x = factor_data(n)
    row = alternate(
        lambda: IncrementalPCA(N_FACTORS).fit(x), lambda: Theirs(N_FACTORS).fit(x), repeats
    )
    ours, theirs = row.pop("fitted").values()
    row["agreement"] = {
        "batches": -(-n // (5 * N_FEATURES)),
        "components_up_to_sign": up_to_sign(ours.components_, theirs.components_, axis=1),
        "explained_variance_max_rel": float(
            np.max(np.abs(ours.explained_variance_ / theirs.explained_variance_ - 1))
        ),
    }
    return row


def bench_kernel_pca(n: int, repeats: int) -> dict:
    from sklearn.decomposition import KernelPCA as Theirs

    from latent_jax import KernelPCA

    x = standardized(factor_data(n)[:, :KERNEL_FEATURES])
    options = {"kernel": "rbf", "random_state": 0}
    row = alternate(
        lambda: KernelPCA(KERNEL_COMPONENTS, **options).fit(x),
        lambda: Theirs(KERNEL_COMPONENTS, **options).fit(x),
        repeats,
    )
    ours, theirs = row.pop("fitted").values()
    new = standardized(factor_data(200, seed=1)[:, :KERNEL_FEATURES])
    row["agreement"] = {
        "eigenvalues_max_rel": float(np.max(np.abs(ours.eigenvalues_ / theirs.eigenvalues_ - 1))),
        "codes_up_to_sign": up_to_sign(ours.transform(new), theirs.transform(new), axis=0),
    }
    return row


def bench_fastica(n: int, repeats: int) -> dict:
    from sklearn.decomposition import FastICA as Theirs

    from latent_jax import FastICA

    x, mixing = ica_data(n)
    row = alternate(
        lambda: FastICA(ICA_SOURCES, random_state=0).fit(x),
        lambda: Theirs(ICA_SOURCES, random_state=0).fit(x),
        repeats,
    )
    ours, theirs = row.pop("fitted").values()
    row["agreement"] = {
        "n_iter": [ours.n_iter_, theirs.n_iter_],
        "amari_ours_vs_sklearn": amari_distance(
            ours.components_ @ np.linalg.pinv(theirs.components_)
        ),
        "amari_ours_vs_truth": amari_distance(ours.components_ @ mixing.T),
        "amari_sklearn_vs_truth": amari_distance(theirs.components_ @ mixing.T),
    }
    return row


BENCHES = {
    "FactorAnalysis": bench_factor_analysis,
    "IncrementalPCA": bench_incremental_pca,
    "KernelPCA": bench_kernel_pca,
    "FastICA": bench_fastica,
}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="rows")
    parser.add_argument(
        "--kernel-sizes", type=int, nargs="+", default=list(KERNEL_SIZES), help="KernelPCA rows"
    )
    parser.add_argument("--estimators", nargs="+", choices=list(BENCHES), default=list(BENCHES))
    parser.add_argument("--repeats", type=int, default=None, help="timed fits per size")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the JSON file to write")
    args = parser.parse_args(argv)
    rows = []
    print(f"{'estimator':<15} {'rows':>7} {'latent_jax s':>13} {'sklearn s':>10} {'ratio':>6}")
    for name in args.estimators:
        sizes = args.kernel_sizes if name == "KernelPCA" else args.sizes
        for n in sizes:
            repeats = args.repeats or repeats_for(n)
            with warnings.catch_warnings():
                # Both sides warn alike when an iteration stops at max_iter; the row says so.
                warnings.simplefilter("ignore", category=UserWarning)
                row = {
                    "estimator": name,
                    "rows": n,
                    "repeats": repeats,
                    **BENCHES[name](n, repeats),
                }
            rows.append(row)
            print(
                f"{name:<15} {n:>7} {row['latent_jax_s']:>13.4f} {row['sklearn_s']:>10.4f} "
                f"{row['ratio']:>6.2f}",
                flush=True,
            )
    result = {"machine": machine_info(), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
