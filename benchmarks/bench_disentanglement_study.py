"""The disentanglement study, Locatello et al. (ICML 2019) style, shortened for a CPU.

Every model of disentanglement_lib's unsupervised study (their Table 2 of hyper-parameters),
the β-VAE at three of its six values and the others at their smallest and largest, several
seeds per value trained at once through ``latent-jax disentangle --seeds K`` (one compiled
program per model and value, the seeds vmapped), every metric of
:mod:`latent_jax.disentanglement` and the Gaussian total correlation of the sampled and mean
codes on every seed:

========================  ===============================  ===============================
model                     disentanglement_lib's values     here
========================  ===============================  ===============================
β-VAE (``elbo``)          β ∈ {1, 2, 4, 6, 8, 16}          β ∈ {1, 4, 16}
AnnealedVAE               C_max ∈ {5, 10, 25, 50, 75, 100}  C_max ∈ {5, 100}, γ = 1000
β-TC-VAE                  β ∈ {1, 2, 4, 6, 8, 10}          β ∈ {1, 10} (MSS estimator)
FactorVAE                 γ ∈ {10, 20, 30, 40, 50, 100}    γ ∈ {10, 100}
DIP-VAE-I                 λ_od ∈ {1, 2, 5, 10, 20, 50},    λ_od ∈ {1, 50}, λ_d = 10 λ_od
                          λ_d = 10 λ_od
DIP-VAE-II                λ_od as DIP-VAE-I, λ_d = λ_od    λ_od ∈ {1, 50}, λ_d = λ_od
========================  ===============================  ===============================

How it is shortened (``--preset cpu``, the default): 32×32 images (2×2 blocks averaged,
disentanglement_lib's network with one convolution fewer on each side), 10,000 training images
drawn from the factor grid, 10 epochs at batch 64 and Adam 1e-3 (disentanglement_lib: 64×64,
300,000 steps at batch 64 and 1e-4: about 190 times the images seen here), 4 seeds (theirs:
50), the metrics at a tenth of disentanglement_lib's sample sizes and DCI from the lasso.
``--preset quick`` is a smoke run of minutes. Each model and value is one run folder under
``--out`` (``latent-jax disentangle``'s layout); this script gathers their metrics.json into
``benchmarks/results/disentanglement_study/study.json`` and draws:

* ``metrics_by_model.png``: each metric's values over seeds, per model and value (their
  Figure 7 kind), and the total correlation of the sampled representation (their Figure 1);
* ``rank_correlation.png``: Spearman's rank correlation between the metrics over every trained
  model (their Figure 2 kind);
* ``traversal_best_worst.png``: the traversals of the best and the worst seed by MIG of the
  model and value whose seeds differ most in MIG, side by side.

``--seed-scaling 1 8`` also times what the seeds cost: the β-VAE (β = 4) trained for 3 epochs
with 1 and with 8 seeds in one program each (``train_seconds``, compilation included), into
``study.json``'s ``seed_scaling``.

A run folder that holds its ``metrics.json`` is kept (``--rerun`` trains it again), so an
interrupted study continues where it stopped; a run that fails is recorded in
``study.json``'s ``failed`` and the others go on.

Usage::

    python benchmarks/bench_disentanglement_study.py                  # the CPU study
    python benchmarks/bench_disentanglement_study.py --preset quick   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import jax
import numpy as np
from scipy import stats

from latent_jax import DSprites, load_run, plots
from latent_jax.cli import main as latent_jax
from latent_jax.experiments import disentangle
from latent_jax.experiments.disentangle import CORRELATION_KEYS, METRIC_KEYS

# What is gathered from each seed: the metrics and the total correlations.
KEYS = METRIC_KEYS + CORRELATION_KEYS
RESULTS = Path(__file__).resolve().parent / "results" / "disentanglement_study"

# (model, label of the value, the objective's flags) for each run of the grid.
GRID = [
    *[("beta-vae", f"beta={b}", ["--beta-max", str(b)]) for b in (1, 4, 16)],
    *[
        ("annealed-vae", f"C={c}", ["--objective", "annealed-vae", "--capacity-max", str(c)])
        for c in (5, 100)
    ],
    *[
        (
            "beta-tcvae",
            f"beta={b}",
            ["--objective", "beta-tcvae", "--beta", str(b), "--estimator", "mss"],
        )
        for b in (1, 10)
    ],
    *[
        ("factorvae", f"gamma={g}", ["--objective", "factorvae", "--gamma", str(g)])
        for g in (10, 100)
    ],
    *[
        (
            "dip-vae-i",
            f"lod={lod}",
            ["--objective", "dip-vae-i", "--lambda-od", str(lod), "--lambda-d", str(10 * lod)],
        )
        for lod in (1, 50)
    ],
    *[
        (
            "dip-vae-ii",
            f"lod={lod}",
            ["--objective", "dip-vae-ii", "--lambda-od", str(lod), "--lambda-d", str(lod)],
        )
        for lod in (1, 50)
    ],
]

PRESETS = {
    "cpu": [
        "--image-size",
        "32",
        "--train-images",
        "10000",
        "--epochs",
        "10",
        "--seeds",
        "4",
        "--learning-rate",
        "1e-3",
        "--metric-scale",
        "0.1",
        "--dci-importance",
        "lasso",
    ],
    "quick": [
        "--image-size",
        "32",
        "--train-images",
        "512",
        "--test-images",
        "64",
        "--epochs",
        "1",
        "--seeds",
        "2",
        "--metric-scale",
        "0.01",
        "--dci-importance",
        "lasso",
    ],
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--only", nargs="+", help="models of the grid to run (default: all)")
    parser.add_argument("--out", default="runs/disentanglement-study", help="run folders")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument(
        "--rerun",
        action="store_true",
        help="train every run again (default: a run folder with its metrics.json is kept)",
    )
    parser.add_argument(
        "--seed-scaling",
        type=int,
        nargs="*",
        default=[],
        metavar="K",
        help="also train the β-VAE (β = 4) with each of these seed counts and time it",
    )
    args = parser.parse_args(argv)
    rows, failed = [], []
    for model, label, flags in GRID:
        if args.only and model not in args.only:
            continue
        folder = os.path.join(args.out, model, label.replace("=", "-"))
        clock = time.perf_counter()
        done = os.path.join(folder, "metrics.json")
        try:
            if os.path.exists(done) and not args.rerun:
                metrics = _kept(folder)
            else:
                metrics = _disentangle([*flags, *PRESETS[args.preset]], folder)
        except SystemExit as error:  # one failed run does not lose the others
            print(error, flush=True)
            failed.append({"model": model, "value": label, "error": str(error)})
            continue
        rows.append(
            {
                "model": model,
                "value": label,
                "folder": folder,
                "seconds": metrics.get("seconds", time.perf_counter() - clock),
                "train_seconds": metrics["train_seconds"],
                "metric_seconds": metrics["metric_seconds"],
                "runs": [{key: run[key] for key in KEYS} for run in metrics["runs"]],
            }
        )
        print(
            f"{model:>13} {label:<10} {rows[-1]['seconds']:7.1f} s  MIG "
            f"{np.median([r['mig'] for r in rows[-1]['runs']]):.3f}",
            flush=True,
        )
    # Each setting's own wall time (kept in its metrics.json), so a study continued over
    # several invocations still adds up.
    study_minutes = sum(row["seconds"] for row in rows) / 60
    scaling = [_seed_cost(count, args) for count in args.seed_scaling]
    args.results.mkdir(parents=True, exist_ok=True)
    payload = {
        "preset": args.preset,
        "flags": PRESETS[args.preset],
        "rows": rows,
        "total_minutes": study_minutes,
        "seed_scaling": scaling,
        "failed": failed,
    }
    seeds = [run for row in rows for run in row["runs"]]
    table = np.array([[run[key] for key in KEYS] for run in seeds])
    correlation = stats.spearmanr(table).correlation if len(seeds) > 2 else None
    payload["spearman"] = None if correlation is None else np.asarray(correlation).tolist()
    payload["variance_share"] = _seed_share(rows)
    (args.results / "study.json").write_text(json.dumps(payload, indent=1))
    if correlation is not None:
        _correlation_map(np.asarray(correlation), args.results / "rank_correlation.png")
    _metric_boxes(rows, args.results / "metrics_by_model.png")
    _best_and_worst(rows, args.results / "traversal_best_worst.png")
    _print_table(rows)
    print(f"wrote {args.results} ({study_minutes:.1f} min for the grid)")


def _disentangle(flags: list[str], folder: str) -> dict:
    """Runs ``latent-jax disentangle`` into ``folder`` and returns its metrics.json (with the
    command's wall time as ``seconds``, kept in the file for a later gathering)."""
    argv = ["disentangle", *flags, "--quiet", "--overwrite", "--out", folder]
    clock = time.perf_counter()
    if latent_jax(argv):
        raise SystemExit(f"latent-jax {' '.join(argv)} failed")
    path = os.path.join(folder, "metrics.json")
    with open(path, encoding="utf-8") as handle:
        metrics = json.load(handle)
    metrics["seconds"] = time.perf_counter() - clock
    Path(path).write_text(json.dumps(metrics, indent=1))
    return metrics


def _kept(folder: str) -> dict:
    """A finished run folder's metrics.json; the total correlations scored again from its
    checkpoint when the file predates their current definition (collapsed codes pruned)."""
    path = Path(folder) / "metrics.json"
    metrics = json.loads(path.read_text())
    if all("num_collapsed_codes_mean" in run for run in metrics["runs"]):
        return metrics
    run = load_run(folder)
    config = run.config
    data = DSprites(config["data"]["variant"], npz=config["data"]["data_dir"])
    metric_key = disentangle.run_keys(config["seed"])[2]
    for index, scores in enumerate(metrics["runs"]):
        for stale in [key for key in scores if key.endswith(("_sampled", "_mean"))]:
            del scores[stale]
        scores.update(
            disentangle.correlation_scores(
                run.model,
                run.select(index).variables,
                data,
                jax.random.fold_in(metric_key, index),
                image_size=config["data"]["image_size"],
                scale=config["settings"]["metric_scale"],
            )
        )
    for key in CORRELATION_KEYS:
        metrics["summary"][key] = disentangle.summary([run[key] for run in metrics["runs"]])
    path.write_text(json.dumps(metrics, indent=1))
    print(f"{folder}: kept, its total correlations scored again", flush=True)
    return metrics


def _seed_cost(count: int, args: argparse.Namespace) -> dict:
    """The β-VAE (β = 4) trained with ``count`` seeds at once, metrics at a hundredth."""
    flags = [*PRESETS[args.preset], "--beta-max", "4", "--metric-scale", "0.01"]
    flags[flags.index("--seeds") + 1] = str(count)
    flags[flags.index("--epochs") + 1] = "3"  # the ratio is what is measured
    folder = os.path.join(args.out, "seed-scaling", f"seeds-{count}")
    seconds = _disentangle(flags, folder)["train_seconds"]
    print(f"{count} seed(s) trained in {seconds:.1f} s", flush=True)
    return {"seeds": count, "train_seconds": seconds}


def _seed_share(rows: list[dict]) -> dict[str, float]:
    """Per metric, the share of its variance over every seed that lies within a model and value.

    Near 1: the seed moves the metric as much as the model does; near 0: the model decides it.
    """
    share = {}
    for key in KEYS:
        groups = [np.array([run[key] for run in row["runs"]]) for row in rows]
        total = np.var(np.concatenate(groups))
        within = np.mean(np.concatenate([group - group.mean() for group in groups]) ** 2)
        share[key] = float(within / total) if total > 0 else float("nan")
    return share


def _print_table(rows: list[dict]) -> None:
    """The study's table in markdown: per model and value, each metric's median [IQR]."""
    shown = ("beta_vae_score", "factor_vae_score", "mig", "dci_disentanglement", "sap")
    shown += ("modularity", "gaussian_total_correlation_sampled")
    print("| model | value | " + " | ".join(shown) + " |")
    print("|---|---|" + "---:|" * len(shown))
    for row in rows:
        cells = []
        for key in shown:
            q1, median, q3 = np.percentile([run[key] for run in row["runs"]], [25, 50, 75])
            cells.append(f"{median:.3f} [{q1:.3f}, {q3:.3f}]")
        print(f"| {row['model']} | {row['value']} | " + " | ".join(cells) + " |")


def _best_and_worst(rows: list[dict], path: Path) -> None:
    """The traversals of the best and worst seed by MIG, for the row whose seeds differ most."""
    import matplotlib.pyplot as plt
    from PIL import Image

    spread = [np.ptp([run["mig"] for run in row["runs"]]) for row in rows]
    row = rows[int(np.argmax(spread))]
    mig = [run["mig"] for run in row["runs"]]
    fig, axes = plt.subplots(1, 2, figsize=(16, 9))
    picks = ((int(np.argmax(mig)), "best"), (int(np.argmin(mig)), "worst"))
    for ax, (index, which) in zip(axes, picks, strict=True):
        name = disentangle.traversal_file(index)
        ax.imshow(np.asarray(Image.open(os.path.join(row["folder"], name))))
        ax.set_title(f"{which} seed (run {index}), MIG {mig[index]:.3f}")
        ax.axis("off")
    fig.suptitle(
        f"{row['model']} {row['value']}: the seeds differ by {max(mig) - min(mig):.3f} MIG"
    )
    fig.tight_layout()
    plots.save_figure(fig, path)


def _correlation_map(correlation: np.ndarray, path: Path) -> None:
    """Spearman's rank correlation between the metrics, values written in the cells."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 8))
    image = ax.imshow(correlation, cmap="RdBu_r", vmin=-1.0, vmax=1.0)
    for (row, col), value in np.ndenumerate(correlation):
        ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(KEYS)), KEYS, rotation=45, ha="right")
    ax.set_yticks(range(len(KEYS)), KEYS)
    ax.set_title("Spearman rank correlation between metrics, every seed of every model")
    fig.colorbar(image, ax=ax, fraction=0.05)
    fig.tight_layout()
    plots.save_figure(fig, path)


def _metric_boxes(rows: list[dict], path: Path) -> None:
    """One panel per metric: each model and value's seeds as a box."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 4, figsize=(22, 12), sharex=True)
    labels = [f"{row['model']}\n{row['value']}" for row in rows]
    axes[-1, -1].axis("off")
    for ax, key in zip(axes.ravel(), KEYS, strict=False):
        ax.boxplot([[run[key] for run in row["runs"]] for row in rows])
        ax.set_title(key)
        ax.set_xticks(range(1, len(rows) + 1), labels, rotation=90, fontsize=7)
    fig.tight_layout()
    plots.save_figure(fig, path)


if __name__ == "__main__":
    main()
