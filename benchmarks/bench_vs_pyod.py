"""Benchmark: latent_jax's anomaly detectors against PyOD's, each library with its defaults.

A PyOD user switching to :class:`latent_jax.AnomalyDetector` changes one line and compares.
This script does what that user does, on data that need no download, and records the accuracy
and the time of both libraries side by side:

* every latent_jax method against its PyOD counterpart: ``pca``/``PCA``,
  ``autoencoder``/``AutoEncoder``, ``vae``/``VAE``, ``deep-svdd``/``DeepSVDD``; PyOD's
  ``IForest``, ``ECOD`` and ``KNN`` as references;
* each with its library's defaults, epochs set to 100 where a method has epochs (latent_jax's
  default; PyOD's ``DeepSVDD`` default; PyOD's ``AutoEncoder`` and ``VAE`` default to 10 and
  30), ``contamination=0.1`` and the seed of the run;
* on the tasks of :data:`TASKS` (:func:`task_data`): tables shipped with scikit-learn with a
  natural anomaly class (fitted unsupervised on a contaminated training split), one-class
  digits (8x8 and mnist-5k, each digit normal in turn, fitted on that digit's training rows),
  and real tables with planted anomalies of three kinds (ADBench's global, local and
  dependency anomalies);
* scored on the held-out split: AUROC and average precision (scikit-learn), the fit and the
  score time (wall clock, in one process: latent_jax's compilation counts when a shape is new
  to the process, as it does for a user).

``--pca-timing`` also times the PCA detectors in fresh processes (import not counted) at
10^3-10^5 rows, latent_jax with an empty and with a filled compilation cache.

Usage::

    python benchmarks/bench_vs_pyod.py                 # every task (about 30 minutes)
    python benchmarks/bench_vs_pyod.py --preset quick  # two seeds, three digits
    python benchmarks/bench_vs_pyod.py --tasks breast-cancer wine --methods pca

Results go to ``benchmarks/results/vs_pyod/`` (``bench_vs_pyod.json`` and a markdown table).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn import datasets
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pca import machine_info

RESULTS = Path(__file__).resolve().parent / "results" / "vs_pyod"
CONTAMINATION = 0.1
EPOCHS = 100
TEST_SIZE = 0.4

# Task name -> (kind, source). "natural": the rows of one class are the anomalies (subsampled
# to CONTAMINATION); "one-class": each class normal in turn; "planted-*": anomalies made from
# the normal rows (ADBench, Han et al. 2022, section 4.3).
TASKS: dict[str, tuple[str, str]] = {
    "breast-cancer": ("natural", "breast-cancer"),
    "wine": ("natural", "wine"),
    "digits-8x8": ("one-class", "digits"),
    "mnist-5k": ("one-class", "mnist-5k"),
    "breast-cancer-local": ("planted-local", "breast-cancer"),
    "diabetes-global": ("planted-global", "diabetes"),
    "diabetes-dependency": ("planted-dependency", "diabetes"),
    # Added after the defaults were chosen on the seven above, to check them.
    "wine-global": ("planted-global", "wine"),
    "breast-cancer-dependency": ("planted-dependency", "breast-cancer"),
}
# The tasks the defaults were chosen on (3 seeds and 4 classes of each; the rest check them).
SELECTION_TASKS = tuple(TASKS)[:7]
PAIRS = {"pca": "PCA", "autoencoder": "AutoEncoder", "vae": "VAE", "deep-svdd": "DeepSVDD"}
REFERENCES = ("IForest", "ECOD", "KNN")
PRESETS = {
    "full": {"seeds": 5, "classes": 10},
    "quick": {"seeds": 2, "classes": 3},
}


# ------------------------------------------------------------------------------------ data


def _source(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows and labels of a bundled data set, float64 (labels: the anomaly class is 1 for
    the natural tasks)."""
    if name == "breast-cancer":
        data = datasets.load_breast_cancer()
        return data.data.astype(np.float64), (data.target == 0).astype(int)  # malignant
    if name == "wine":
        data = datasets.load_wine()
        return data.data.astype(np.float64), (data.target == 0).astype(int)
    if name == "diabetes":
        return datasets.load_diabetes().data.astype(np.float64), None
    if name == "digits":
        from latent_jax.data.tabular import load_digits_features

        x, y = load_digits_features()
        return x.astype(np.float64), y
    if name == "mnist-5k":
        from latent_jax.data.mnist import load_mnist_5k

        x, y = load_mnist_5k()
        return x.reshape(len(x), -1).astype(np.float64), y
    raise ValueError(f"unknown data source {name!r}")


def _planted(kind: str, normal: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` anomalies of ``kind`` made from the ``normal`` rows (ADBench's recipes).

    * global: uniform in the normal rows' bounding box widened by 10% on each side;
    * local: from a Gaussian mixture fitted to the normal rows, its covariances scaled by 5;
    * dependency: each feature drawn independently from its normal marginal (the features'
      dependence broken; ADBench fits a vine copula and samples it independently).
    """
    low, high = normal.min(0), normal.max(0)
    if kind == "global":
        span = high - low
        return rng.uniform(low - 0.1 * span, high + 0.1 * span, size=(n, normal.shape[1]))
    if kind == "local":
        from sklearn.mixture import GaussianMixture

        gmm = GaussianMixture(n_components=5, random_state=int(rng.integers(2**31)))
        gmm.fit(normal)
        gmm.covariances_ = 5.0 * gmm.covariances_
        return gmm.sample(n)[0][rng.permutation(n)]
    if kind == "dependency":
        return np.stack([rng.choice(normal[:, j], n) for j in range(normal.shape[1])], axis=1)
    raise ValueError(f"unknown planted anomaly kind {kind!r}")


def task_data(task: str, seed: int, normal_class: int | None = None) -> dict[str, np.ndarray]:
    """The training rows and the labelled test rows of one run of ``task``.

    Returns:
        ``{"train": (n_train, d), "test": (n_test, d), "y_test": (n_test,) 1 = anomaly}``.
    """
    kind, source = TASKS[task]
    rng = np.random.default_rng(seed)
    x, y = _source(source)
    if kind == "one-class":
        train, test, y_train, y_test = train_test_split(
            x, y, test_size=TEST_SIZE, stratify=y, random_state=seed
        )
        return {
            "train": train[y_train == normal_class],
            "test": test,
            "y_test": (y_test != normal_class).astype(int),
        }
    if kind == "natural":
        normal, anomalies = x[y == 0], x[y == 1]
    else:
        normal = x if y is None else x[y == 0]  # the natural anomalies left out
        anomalies = _planted(kind.split("-", 1)[1], normal, len(normal), rng)
    n_anomalies = round(CONTAMINATION / (1 - CONTAMINATION) * len(normal))
    anomalies = anomalies[rng.permutation(len(anomalies))[:n_anomalies]]
    rows = np.concatenate([normal, anomalies])
    labels = np.concatenate([np.zeros(len(normal), int), np.ones(len(anomalies), int)])
    train, test, _, y_test = train_test_split(
        rows, labels, test_size=TEST_SIZE, stratify=labels, random_state=seed
    )
    return {"train": train, "test": test, "y_test": y_test}


def task_runs(task: str, seeds: int, classes: int) -> list[tuple[int, int | None]]:
    """The (seed, normal class) pairs of a task: one-class tasks run ``classes`` classes
    (one seed each, the seed the class), the others ``seeds`` seeds."""
    if TASKS[task][0] == "one-class":
        return [(c, c) for c in range(classes)]
    return [(s, None) for s in range(seeds)]


# ------------------------------------------------------------------------------- detectors


def latent_jax_detector(method: str, seed: int, n_features: int) -> Any:
    """latent_jax's detector with its defaults."""
    del n_features
    from latent_jax import AnomalyDetector

    return AnomalyDetector(method, contamination=CONTAMINATION, seed=seed)


def pyod_detector(name: str, seed: int, n_features: int) -> Any:
    """PyOD's detector with its defaults (epochs: see the module docstring)."""
    from pyod.models import auto_encoder, deep_svdd, ecod, iforest, knn, pca, vae

    c = CONTAMINATION
    if name == "PCA":
        return pca.PCA(contamination=c, random_state=seed)
    if name == "AutoEncoder":
        return auto_encoder.AutoEncoder(
            contamination=c, epoch_num=EPOCHS, random_state=seed, verbose=0
        )
    if name == "VAE":
        return vae.VAE(contamination=c, epoch_num=EPOCHS, random_state=seed, verbose=0)
    if name == "DeepSVDD":
        return deep_svdd.DeepSVDD(
            n_features=n_features, contamination=c, epochs=EPOCHS, random_state=seed, verbose=0
        )
    if name == "IForest":
        return iforest.IForest(contamination=c, random_state=seed)
    if name == "ECOD":
        return ecod.ECOD(contamination=c)
    if name == "KNN":
        return knn.KNN(contamination=c)
    raise ValueError(f"unknown PyOD detector {name!r}")


def evaluate(make: Callable[[], Any], data: dict[str, np.ndarray]) -> dict[str, float]:
    """Fits one detector on ``data["train"]`` and scores ``data["test"]``."""
    detector = make()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        detector.fit(data["train"].astype(np.float32))
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    scores = np.asarray(detector.decision_function(data["test"].astype(np.float32)))
    score_s = time.perf_counter() - start
    y = data["y_test"]
    if not np.all(np.isfinite(scores)):
        return {"auroc": float("nan"), "ap": float("nan"), "fit_s": fit_s, "score_s": score_s}
    return {
        "auroc": float(roc_auc_score(y, scores)),
        "ap": float(average_precision_score(y, scores)),
        "fit_s": fit_s,
        "score_s": score_s,
    }


def run_tasks(
    tasks: Sequence[str], methods: Sequence[str], seeds: int, classes: int, references: bool
) -> list[dict[str, Any]]:
    """Every (task, run, method, library): one row each, printed as it finishes."""
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    rows = []
    for task in tasks:
        for seed, normal_class in task_runs(task, seeds, classes):
            data = task_data(task, seed, normal_class)
            d = data["train"].shape[1]
            entries = []
            for method in methods:
                entries.append(("latent_jax", method, method, latent_jax_detector))
                entries.append(("pyod", method, PAIRS[method], pyod_detector))
            if references:
                entries += [("pyod", name, name, pyod_detector) for name in REFERENCES]
            for library, method, name, factory in entries:
                result = evaluate(lambda f=factory, n=name, s=seed, k=d: f(n, s, k), data)
                row = {
                    "task": task,
                    "seed": seed,
                    "normal_class": normal_class,
                    "n_train": len(data["train"]),
                    "n_features": d,
                    "library": library,
                    "method": method,
                    **result,
                }
                rows.append(row)
                print(
                    f"{task:20s} run {seed} {library:10s} {method:12s} auroc {row['auroc']:.3f} "
                    f"ap {row['ap']:.3f} fit {row['fit_s']:.2f}s score {row['score_s']:.3f}s",
                    flush=True,
                )
    return rows


# ------------------------------------------------------------------------------ summaries


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per task and (library, method): median AUROC, AP and times; then per method the mean
    of the task medians (AUROC) and the median of all fit times."""
    keys = sorted({(r["library"], r["method"]) for r in rows})
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    per_task: dict[str, dict[str, dict[str, float]]] = {}
    for task in tasks:
        per_task[task] = {}
        for library, method in keys:
            sel = [
                r
                for r in rows
                if r["task"] == task and (r["library"], r["method"]) == (library, method)
            ]
            if sel:
                per_task[task][f"{library}/{method}"] = {
                    name: float(np.median([r[name] for r in sel]))
                    for name in ("auroc", "ap", "fit_s", "score_s")
                }
    overall, checked = {}, {}
    check_tasks = [t for t in tasks if t not in SELECTION_TASKS]
    for library, method in keys:
        label = f"{library}/{method}"
        medians = [per_task[t][label] for t in tasks if label in per_task[t]]
        sel = [r for r in rows if (r["library"], r["method"]) == (library, method)]
        overall[label] = {
            "mean_auroc": float(np.mean([m["auroc"] for m in medians])),
            "mean_ap": float(np.mean([m["ap"] for m in medians])),
            "median_fit_s": float(np.median([r["fit_s"] for r in sel])),
            "median_score_s": float(np.median([r["score_s"] for r in sel])),
        }
        held_out = [per_task[t][label]["auroc"] for t in check_tasks if label in per_task[t]]
        if held_out:
            checked[label] = float(np.mean(held_out))
    return {"per_task": per_task, "overall": overall, "mean_auroc_check_tasks": checked}


def markdown(summary: dict[str, Any], methods: Sequence[str]) -> str:
    """The side-by-side tables: AUROC and fit time per task and method, then the means."""
    lines = [
        "| task | method | AUROC latent_jax | AUROC PyOD | AP latent_jax | AP PyOD "
        "| fit s latent_jax | fit s PyOD |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for task, entries in summary["per_task"].items():
        for method in methods:
            mine, theirs = entries.get(f"latent_jax/{method}"), entries.get(f"pyod/{method}")
            if mine and theirs:
                marked = task if task in SELECTION_TASKS else f"{task} (check)"
                lines.append(
                    f"| {marked} | {method} | {mine['auroc']:.3f} | {theirs['auroc']:.3f} "
                    f"| {mine['ap']:.3f} | {theirs['ap']:.3f} "
                    f"| {mine['fit_s']:.2f} | {theirs['fit_s']:.2f} |"
                )
    lines += [
        "",
        "| method | mean AUROC latent_jax | mean AUROC PyOD | mean AP latent_jax | mean AP PyOD "
        "| median fit s latent_jax | median fit s PyOD | fit time ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    overall = summary["overall"]
    for method in methods:
        mine, theirs = overall.get(f"latent_jax/{method}"), overall.get(f"pyod/{method}")
        if mine and theirs:
            lines.append(
                f"| {method} | {mine['mean_auroc']:.3f} | {theirs['mean_auroc']:.3f} "
                f"| {mine['mean_ap']:.3f} | {theirs['mean_ap']:.3f} "
                f"| {mine['median_fit_s']:.2f} | {theirs['median_fit_s']:.2f} "
                f"| {mine['median_fit_s'] / theirs['median_fit_s']:.2f}x |"
            )
    for name in REFERENCES:
        ref = overall.get(f"pyod/{name}")
        if ref:
            lines.append(
                f"| PyOD {name} (reference) | | {ref['mean_auroc']:.3f} | | {ref['mean_ap']:.3f} "
                f"| | {ref['median_fit_s']:.2f} | |"
            )
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------- fresh processes

_PCA_WORKER = """
import sys, time
import numpy as np
library, n, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
x = np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)
if library == "latent_jax":
    from latent_jax import AnomalyDetector as make
    args = ("pca",)
else:
    from pyod.models.pca import PCA as make
    args = ()
start = time.perf_counter()
detector = make(*args).fit(x)
fit_s = time.perf_counter() - start
detector.decision_function(x[:1000])
print(fit_s, time.perf_counter() - start)
"""


def pca_timing(sizes: Sequence[tuple[int, int]], repeats: int) -> list[dict[str, Any]]:
    """The PCA detectors' fit (and fit + score of 1,000 rows) in fresh processes, medians of
    ``repeats``: PyOD, latent_jax with an empty compilation cache (``cold``) and with the cache
    the cold run filled (``warm``)."""
    rows = []
    for n, d in sizes:
        times: dict[str, list[tuple[float, float]]] = {"pyod": [], "cold": [], "warm": []}
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as cache:
                for label in ("pyod", "cold", "warm"):
                    env = {**os.environ, "LATENT_JAX_CACHE_DIR": cache}
                    library = "pyod" if label == "pyod" else "latent_jax"
                    out = subprocess.run(
                        [sys.executable, "-c", _PCA_WORKER, library, str(n), str(d)],
                        capture_output=True,
                        text=True,
                        env=env,
                        check=True,
                    ).stdout.split()
                    times[label].append((float(out[0]), float(out[1])))
        row = {"n": n, "d": d}
        for label, values in times.items():
            row[f"{label}_fit_s"] = float(np.median([v[0] for v in values]))
            row[f"{label}_fit_score_s"] = float(np.median([v[1] for v in values]))
        rows.append(row)
        print(
            f"pca n={n} d={d}: pyod {row['pyod_fit_s']:.3f}s, latent_jax cold "
            f"{row['cold_fit_s']:.3f}s warm {row['warm_fit_s']:.3f}s",
            flush=True,
        )
    return rows


def pca_markdown(rows: list[dict[str, Any]]) -> str:
    """The fresh-process PCA table."""
    lines = [
        "| rows × features | PyOD fit s | latent_jax cold fit s | latent_jax warm fit s "
        "| PyOD fit+score s | cold fit+score s | warm fit+score s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']:,} × {r['d']} | {r['pyod_fit_s']:.3f} | {r['cold_fit_s']:.3f} "
            f"| {r['warm_fit_s']:.3f} | {r['pyod_fit_score_s']:.3f} "
            f"| {r['cold_fit_score_s']:.3f} | {r['warm_fit_score_s']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=tuple(PRESETS), default="full")
    parser.add_argument("--tasks", nargs="+", choices=tuple(TASKS), default=list(TASKS))
    parser.add_argument("--methods", nargs="+", choices=tuple(PAIRS), default=list(PAIRS))
    parser.add_argument("--seeds", type=int, default=None, help="runs per table task")
    parser.add_argument(
        "--classes", type=int, default=None, help="normal classes per one-class task"
    )
    parser.add_argument("--no-references", action="store_true", help="skip IForest, ECOD, KNN")
    parser.add_argument("--no-tasks", action="store_true", help="only --pca-timing")
    parser.add_argument("--pca-timing", action="store_true", help="fresh-process PCA timing")
    parser.add_argument("--repeats", type=int, default=3, help="--pca-timing repeats")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--cache-dir",
        default=None,
        help="latent_jax's compilation cache (default: a fresh empty folder, so each shape's "
        "first fit compiles as in a user's first session and later seeds load it)",
    )
    args = parser.parse_args(argv)
    fresh_cache = tempfile.TemporaryDirectory() if args.cache_dir is None else None
    os.environ["LATENT_JAX_CACHE_DIR"] = args.cache_dir or fresh_cache.name
    preset = PRESETS[args.preset]
    seeds = args.seeds or preset["seeds"]
    classes = args.classes or preset["classes"]

    args.out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "machine": machine_info(),
        "settings": {
            "preset": args.preset,
            "seeds": seeds,
            "classes": classes,
            "epochs": EPOCHS,
            "contamination": CONTAMINATION,
            "test_size": TEST_SIZE,
        },
    }
    import pyod
    import torch

    result["machine"].update({"pyod": pyod.__version__, "torch": torch.__version__})
    text = ""
    if not args.no_tasks:
        rows = run_tasks(args.tasks, args.methods, seeds, classes, not args.no_references)
        result["rows"] = rows
        result["summary"] = summarize(rows)
        text += markdown(result["summary"], args.methods)
    if args.pca_timing:
        sizes = [(400, 784), (1_000, 30), (10_000, 30), (100_000, 30), (10_000, 784)]
        result["pca_timing"] = pca_timing(sizes, args.repeats)
        text += "\n" + pca_markdown(result["pca_timing"])
    (args.out / "bench_vs_pyod.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "bench_vs_pyod.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
