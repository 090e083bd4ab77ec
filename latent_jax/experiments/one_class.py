"""One-class MNIST, the protocol of Ruff et al. (ICML 2018): each digit in turn is normal.

For every class in ``--classes``, the detectors train on that class's training images (the
400 per class of ``mnist-5k``, or about 6,000 of the full ``mnist`` with ``--dataset
mnist``) and score all the test images (``mnist-5k``: 1,000, 100 per class), the nine other
classes being the anomalies; the AUROC (anomalies positive, ``sklearn.metrics``) is reported
per class and averaged over the classes.

Preprocessing, as the paper's: global contrast normalization of every image with the L1
norm (:func:`global_contrast_normalization`: minus the image's mean pixel, divided by its
mean absolute deviation), then min-max scaling with the minimum and maximum over the normal
class's GCN'd training images (:func:`min_max_scaling`), so the training images lie in
[0, 1] and test images may fall slightly outside.

Methods (``--methods``): latent_jax's :class:`~latent_jax.anomaly.AnomalyDetector` with
``pca`` and ``ppca`` (defaults), ``autoencoder`` (convolutional, ``--channels``,
``--latent-dim``), ``vae`` (MLP, Bernoulli likelihood on the [0, 1] pixels, negative ELBO) and
``deep-svdd`` (the paper's LeNet-type network, ``--channels`` 8,4 and ``--latent-dim`` 32,
Adam at ``--svdd-learning-rate`` with ``--weight-decay``, fed the preprocessed pixels
unstandardized, as the paper's); and scikit-learn's baselines, with rules fixed in advance
(no test labels are used to choose anything):

* ``ocsvm``: ``OneClassSVM`` with a Gaussian kernel, ``gamma="scale"`` (1 / (features x the
  training pixels' variance)) and ``nu=0.1``;
* ``isolation-forest``: ``IsolationForest`` with scikit-learn's defaults (100 trees of 256
  samples), seeded;
* ``kde``: ``KernelDensity`` with a Gaussian kernel, its bandwidth chosen by 5-fold
  ``GridSearchCV`` of the held-out log-likelihood on the training images over
  2^0.5, 2^1, ..., 2^5 (the paper's grid), scored by the negative log density.

The stochastic methods (autoencoder, vae, deep-svdd, isolation-forest) run ``--seeds`` times
(seeds ``--seed``, ``--seed + 1``, ...); the others once. ``metrics.json`` holds, per method,
the AUROC per class and seed, its mean and standard deviation over the seeds, the mean over
the classes (with the standard deviation over the seeds of the per-seed class means) and the
CPU seconds; ``auroc_per_class.png`` draws the per-class table; ``config.json`` the flags
(its ``training`` section is the autoencoder's TrainConfig; ``--vae-epochs``,
``--svdd-epochs`` and ``--svdd-learning-rate`` are under ``settings``).

Every trained detector (autoencoder, vae, deep-svdd) writes its history.csv into its own
folder, ``detectors/<class>/<method>/seed<k>/``, and checkpoints into its ``checkpoints/`` at
the end of its training (and every ``--checkpoint-every`` epochs when the flag is given);
with ``--resume`` each continues from its own last checkpoint, so a run that was killed
skips the detectors it finished and ends with the AUROCs of an uninterrupted one. The
untrained methods (pca, ppca and scikit-learn's baselines) are fitted again.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KernelDensity
from sklearn.svm import OneClassSVM

from latent_jax import runs, validation
from latent_jax.anomaly import AnomalyDetector
from latent_jax.data import images as image_data
from latent_jax.experiments import common

logger = logging.getLogger(__name__)

DATASETS = ("mnist-5k", "mnist")
DETECTORS = ("pca", "ppca", "autoencoder", "vae", "deep-svdd")
BASELINES = ("ocsvm", "isolation-forest", "kde")
METHODS = DETECTORS + BASELINES
STOCHASTIC = ("autoencoder", "vae", "deep-svdd", "isolation-forest")
TRAINED = ("autoencoder", "vae", "deep-svdd")
# KernelDensity's bandwidth grid (Ruff et al.): 2^0.5, 2^1, ..., 2^5.
KDE_BANDWIDTHS = tuple(float(2.0**k) for k in np.arange(0.5, 5.01, 0.5))
OCSVM_NU = 0.1
# Ruff et al. (2018), Table 1, MNIST: mean AUROC (%) over 10 seeds per normal class, trained
# on the ~6,000 training images of the class (OC-SVM's and KDE's hyper-parameters chosen on
# a small labelled hold-out of the test set; Deep SVDD pre-trained as an autoencoder).
PAPER_AUROC = {
    "ocsvm": (98.6, 99.5, 82.5, 88.1, 94.9, 77.1, 96.5, 93.7, 88.9, 93.1),
    "kde": (97.1, 98.9, 79.0, 86.2, 87.9, 73.8, 87.6, 91.4, 79.2, 88.2),
    "isolation-forest": (98.0, 97.3, 88.6, 89.9, 92.7, 85.5, 95.6, 92.0, 89.9, 93.5),
    "autoencoder": (97.6, 98.3, 85.4, 86.7, 86.5, 78.2, 94.6, 92.3, 86.5, 90.4),
    "deep-svdd": (98.0, 99.7, 91.7, 91.9, 94.9, 88.5, 98.3, 94.6, 93.9, 96.5),
}
FIGURE = "auroc_per_class.png"
DATA_FLAGS = ("dataset", "data_dir", "classes")
MODEL_FLAGS = ("methods", "channels", "latent_dim", "hidden_dims", "weight_decay")


@dataclasses.dataclass(frozen=True)
class Arguments(common.RunArguments):
    """The flags of ``latent-jax one-class``, typed (:func:`add_arguments` defines them)."""

    dataset: str
    data_dir: str
    classes: Sequence[int]
    methods: Sequence[str]
    channels: Sequence[int]
    latent_dim: int
    hidden_dims: Sequence[int]
    vae_latent_dim: int
    weight_decay: float
    epochs: int
    vae_epochs: int
    learning_rate: float
    svdd_epochs: int
    svdd_learning_rate: float
    batch_size: int
    seeds: int
    seed: int
    quiet: bool
    out: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers this experiment's flags."""
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", choices=DATASETS, default="mnist-5k", help="the digits")
    data.add_argument("--data-dir", default="data", help="the folder holding mnist/ (--dataset)")
    data.add_argument(
        "--classes",
        type=common.int_tuple,
        default=tuple(range(10)),
        help="the normal classes, in turn",
    )
    model = parser.add_argument_group("detectors")
    model.add_argument(
        "--methods",
        type=common.subset_of("--methods", METHODS),
        default=METHODS,
        help="detectors and baselines, comma-separated",
    )
    model.add_argument(
        "--channels",
        type=common.int_tuple,
        default=(8, 4),
        help="autoencoder/deep-svdd conv channels",
    )
    model.add_argument(
        "--latent-dim", type=int, default=32, help="autoencoder code / deep-svdd output size"
    )
    model.add_argument(
        "--hidden-dims", type=common.int_tuple, default=(128, 64), help="the VAE's widths"
    )
    model.add_argument("--vae-latent-dim", type=int, default=8, help="the VAE's latent size")
    model.add_argument("--weight-decay", type=float, default=1e-6, help="deep-svdd's lambda")
    train = parser.add_argument_group("training")
    train.add_argument("--epochs", type=int, default=10, help="autoencoder epochs")
    train.add_argument("--vae-epochs", type=int, default=30, help="vae epochs")
    train.add_argument("--learning-rate", type=float, default=1e-3, help="autoencoder/vae Adam")
    train.add_argument("--svdd-epochs", type=int, default=30, help="deep-svdd epochs")
    train.add_argument(
        "--svdd-learning-rate", type=float, default=1e-4, help="deep-svdd Adam step size"
    )
    train.add_argument("--batch-size", type=int, default=128, help="rows per step")
    train.add_argument("--seeds", type=int, default=2, help="runs of each stochastic method")
    train.add_argument("--seed", type=int, default=0, help="the first seed")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--out", default="runs/one-class", help="output folder")
    common.add_run_arguments(parser)


def _check_args(args: Arguments) -> None:
    common.require_at_least(
        args,
        1,
        "epochs",
        "vae_epochs",
        "svdd_epochs",
        "batch_size",
        "latent_dim",
        "vae_latent_dim",
        "seeds",
    )
    bad = [c for c in args.classes if not 0 <= c <= 9]
    if bad or not args.classes or len(set(args.classes)) != len(args.classes):
        raise ValueError(f"--classes must be distinct digits 0-9, got {args.classes}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    common.check_run_arguments(args)
    for method in args.methods:
        if method in DETECTORS:
            try:
                _detector(args, method, args.seed)._validate_params()
            except (TypeError, ValueError) as error:
                raise ValueError(f"--methods {method}: {error}") from error


def global_contrast_normalization(x: Any) -> np.ndarray:
    """Global contrast normalization with the L1 norm, per image (Ruff et al.'s code).

    Each image minus its mean pixel, divided by the mean absolute value of the result (1
    for a constant image, which becomes zeros).

    Args:
        x: array of shape (n, ...pixels).

    Returns:
        float32 array of the shape of ``x``.
    """
    x = np.asarray(validation.check_array("x", x, min_ndim=2, dtype=np.float32), np.float64)
    axes = tuple(range(1, x.ndim))
    centred = x - x.mean(axis=axes, keepdims=True)
    scale = np.abs(centred).mean(axis=axes, keepdims=True)
    return (centred / np.where(scale > 0, scale, 1.0)).astype(np.float32)


def min_max_scaling(train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Arrays scaled by ``(x - min) / (max - min)`` with the min and max over all of ``train``.

    Args:
        train: the normal class's training images, which end up in [0, 1].
        *others: arrays scaled with the same two constants.

    Returns:
        ``train`` and ``others`` scaled, float32.
    """
    low, high = float(train.min()), float(train.max())
    span = high - low if high > low else 1.0
    return tuple(((x - low) / span).astype(np.float32) for x in (train, *others))


def _detector(args: Arguments, method: str, seed: int) -> AnomalyDetector:
    """The latent_jax detector of ``method`` with the flags' settings."""
    if method == "pca":
        # The recorded table's statistic (the Q statistic of Ruff et al.'s PCA-style baseline).
        return AnomalyDetector(method, statistic="reconstruction")
    if method == "ppca":
        return AnomalyDetector(method)
    shared = {
        "batch_size": args.batch_size,
        "seed": seed,
        "quiet": args.quiet,
        **common.train_options(common.RunFlags.from_flags(args)),
    }
    if method == "autoencoder":
        return AnomalyDetector(
            method,
            architecture="conv",
            channels=args.channels,
            latent_dim=args.latent_dim,
            epochs=args.epochs,
            learning_rate=args.learning_rate,
            **shared,
        )
    if method == "vae":
        return AnomalyDetector(
            method,
            architecture="mlp",
            hidden_dims=args.hidden_dims,
            latent_dim=args.vae_latent_dim,
            likelihood="bernoulli",
            scaling="none",
            epochs=args.vae_epochs,
            learning_rate=args.learning_rate,
            **shared,
        )
    return AnomalyDetector(
        method,
        architecture="conv",
        channels=args.channels,
        latent_dim=args.latent_dim,
        weight_decay=args.weight_decay,
        scaling="none",
        epochs=args.svdd_epochs,
        learning_rate=args.svdd_learning_rate,
        **shared,
    )


def _kde(train: np.ndarray) -> KernelDensity:
    """KernelDensity with the bandwidth of the best 5-fold held-out log-likelihood."""
    search = GridSearchCV(
        KernelDensity(kernel="gaussian"), {"bandwidth": KDE_BANDWIDTHS}, cv=5, n_jobs=1
    )
    return search.fit(train).best_estimator_


def anomaly_scores(
    args: Arguments,
    method: str,
    seed: int,
    train: np.ndarray,
    test: np.ndarray,
    run_dir: str | None = None,
) -> np.ndarray:
    """The anomaly scores (higher = more anomalous) of ``test`` by ``method`` fitted on ``train``.

    Args:
        args: the flags.
        method: one of :data:`METHODS`.
        seed: the run's seed (stochastic methods).
        train: preprocessed normal images, shape (n, 28, 28, 1).
        test: preprocessed test images of the same example shape.
        run_dir: trained methods: the detector's folder, for its history.csv (and
            TensorBoard events with ``--tensorboard``) and checkpoints (``run_dir/checkpoints``:
            at the end of training, and every ``--checkpoint-every`` epochs when given;
            ``--resume`` continues from them), or ``None`` for none.

    Returns:
        float64 array of shape (len(test),).
    """
    flags = common.RunFlags.from_flags(args)
    if method in DETECTORS:
        detector = _detector(args, method, seed)
        if method in TRAINED and run_dir is not None:
            options = common.detector_fit_options(
                flags, run_dir, args.epochs, args.checkpoint_every or 0
            )
            with common.history_writers(run_dir, flags) as callbacks:
                detector.fit(train, callbacks=callbacks, **options)
        else:
            detector.fit(train)
        return detector.decision_function(test)
    flat_train, flat_test = train.reshape(len(train), -1), test.reshape(len(test), -1)
    if method == "ocsvm":
        model: Any = OneClassSVM(kernel="rbf", gamma="scale", nu=OCSVM_NU).fit(flat_train)
    elif method == "isolation-forest":
        model = IsolationForest(random_state=seed).fit(flat_train)
    else:
        model = _kde(flat_train)
    return -np.asarray(model.score_samples(flat_test), np.float64)


def run_class(
    args: Arguments, digit: int, dataset: Any, out: str | None = None
) -> dict[str, dict[str, list[float]]]:
    """Every method with ``digit`` as the normal class: AUROC and CPU seconds per seed.

    ``out`` is the output folder of the trained detectors' checkpoints
    (``out/detectors/<digit>/<method>/seed<k>/checkpoints``), or ``None`` for none.
    """
    normal = dataset.x_train[dataset.y_train == digit]
    train, test = min_max_scaling(
        global_contrast_normalization(normal), global_contrast_normalization(dataset.x_test)
    )
    is_anomaly = (dataset.y_test != digit).astype(int)
    results: dict[str, dict[str, list[float]]] = {}
    for method in args.methods:
        seeds = range(args.seed, args.seed + (args.seeds if method in STOCHASTIC else 1))
        entry = results.setdefault(method, {"auroc": [], "cpu_seconds": []})
        for seed in seeds:
            start = time.process_time()
            folder = None if out is None else detector_dir(out, digit, method, seed)
            scores = anomaly_scores(args, method, seed, train, test, folder)
            entry["cpu_seconds"].append(time.process_time() - start)
            entry["auroc"].append(float(roc_auc_score(is_anomaly, scores)))
        logger.info(
            "digit %d %s: AUROC %s (%.1f CPU s)",
            digit,
            method,
            ", ".join(f"{a:.4f}" for a in entry["auroc"]),
            sum(entry["cpu_seconds"]),
        )
    return results


def detector_dir(out: str, digit: int, method: str, seed: int) -> str:
    """A trained detector's folder (its checkpoints under ``checkpoints/``) in ``out``:
    ``detectors/<digit>/<method>/seed<k>``."""
    return os.path.join(out, "detectors", str(digit), method, f"seed{seed}")


def summarize(per_class: dict[int, dict[str, dict[str, list[float]]]]) -> dict[str, Any]:
    """Per method: per-class mean and std over seeds, the class mean and its std over seeds.

    Args:
        per_class: digit -> :func:`run_class`'s result.

    Returns:
        method -> ``{"per_class": {digit: {"mean", "std", "seeds"}}, "mean", "std",
        "cpu_seconds", "paper_mean"}`` (``paper_mean`` where Ruff et al. report the method
        on the same classes).
    """
    digits = sorted(per_class)
    methods = list(per_class[digits[0]])
    summary = {}
    for method in methods:
        table = np.array([per_class[d][method]["auroc"] for d in digits])  # (classes, seeds)
        entry: dict[str, Any] = {
            "per_class": {
                str(d): {
                    "mean": float(row.mean()),
                    "std": float(row.std()),
                    "seeds": [float(v) for v in row],
                }
                for d, row in zip(digits, table, strict=True)
            },
            "mean": float(table.mean()),
            "std": float(table.mean(axis=0).std()),
            "cpu_seconds": float(sum(sum(per_class[d][method]["cpu_seconds"]) for d in digits)),
        }
        if method in PAPER_AUROC:
            entry["paper_mean"] = float(np.mean([PAPER_AUROC[method][d] for d in digits]) / 100)
        summary[method] = entry
    return summary


def _figure(summary: dict[str, Any], digits: list[int], path: str) -> None:
    import matplotlib.pyplot as plt

    from latent_jax import plots  # sets matplotlib's headless backend

    methods = list(summary)
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(12, 4.5))
    positions = np.arange(len(digits))
    for i, method in enumerate(methods):
        means = [summary[method]["per_class"][str(d)]["mean"] for d in digits]
        stds = [summary[method]["per_class"][str(d)]["std"] for d in digits]
        label = f"{method} ({summary[method]['mean']:.3f})"
        ax.bar(
            positions + (i - (len(methods) - 1) / 2) * width,
            means,
            width,
            yerr=stds,
            label=label,
            capsize=1.5,
        )
    if "deep-svdd" in summary:
        paper = [PAPER_AUROC["deep-svdd"][d] / 100 for d in digits]
        ax.plot(positions, paper, "k_", markersize=18, mew=2, label="Deep SVDD, Ruff et al.")
    ax.set_xticks(positions, [str(d) for d in digits])
    ax.set_xlabel("normal class")
    ax.set_ylabel("AUROC")
    low = min(min(e["per_class"][str(d)]["mean"] for d in digits) for e in summary.values())
    ax.set_ylim(max(0.0, low - 0.05), 1.0)
    ax.set_title("One-class MNIST: AUROC per normal class (legend: mean over classes)")
    ax.legend(ncol=3, fontsize=8, loc="lower left")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    plots.save_figure(fig, path, dpi=110)


def run(args: Arguments) -> dict[str, Any]:
    """Runs the protocol and returns the metrics written to ``metrics.json``."""
    _check_args(args)
    dataset = image_data.load_image_dataset(
        args.dataset, normalization="none", data_dir=args.data_dir
    )
    # The training flags (--epochs, --learning-rate, --batch-size, ...) as the autoencoder's
    # TrainConfig, which --config reads back; the other detectors' are flags of "settings".
    training = _detector(args, "autoencoder", args.seed).train_config()
    out = common.prepare_output_dir(args.out)
    common.write_run_config(
        out,
        args,
        command="one-class",
        data_flags=DATA_FLAGS,
        model_flags=MODEL_FLAGS,
        training=training,
    )
    start, cpu = time.perf_counter(), time.process_time()
    per_class = {digit: run_class(args, digit, dataset, out) for digit in args.classes}
    summary = summarize(per_class)
    digits = list(args.classes)
    _figure(summary, digits, os.path.join(out, FIGURE))
    latent = [m for m in summary if m in DETECTORS]
    baselines = [m for m in summary if m in BASELINES]
    best = max(latent, key=lambda m: summary[m]["mean"]) if latent else None
    best_baseline = max(baselines, key=lambda m: summary[m]["mean"]) if baselines else None
    metrics = {
        "dataset": args.dataset,
        "n_train_per_class": {str(d): int((dataset.y_train == d).sum()) for d in digits},
        "n_test": len(dataset.x_test),
        "classes": digits,
        "methods": summary,
        "paper_auroc": {k: list(v) for k, v in PAPER_AUROC.items()},
        "best_latent_jax": best,
        "best_baseline": best_baseline,
        "best_latent_jax_beats_every_baseline": (
            None
            if best is None or best_baseline is None
            else summary[best]["mean"] > summary[best_baseline]["mean"]
        ),
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu,
        "environment": common.environment_info(),
    }
    common.write_json(os.path.join(out, runs.METRICS), metrics)
    _print_summary(metrics, out)
    return metrics


def _print_summary(metrics: dict[str, Any], out: str) -> None:
    digits = metrics["classes"]
    print(f"One-class {metrics['dataset']}: AUROC per normal class (mean over seeds)")
    print(f"  {'method':<17}" + "".join(f"{d:>7}" for d in digits) + f"{'mean':>8}{'± std':>8}")
    for name, entry in metrics["methods"].items():
        cells = "".join(f"{entry['per_class'][str(d)]['mean']:>7.3f}" for d in digits)
        print(f"  {name:<17}{cells}{entry['mean']:>8.4f}{entry['std']:>8.4f}")
    print(
        f"best latent_jax: {metrics['best_latent_jax']}, best baseline: "
        f"{metrics['best_baseline']}; {metrics['seconds']:.0f} s "
        f"({metrics['cpu_seconds']:.0f} CPU s). Outputs in {out}/"
    )
