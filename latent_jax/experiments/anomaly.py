"""Anomaly detection with latent_jax's detectors against scikit-learn's common baselines.

Two tasks on bundled data (``--task``):

* ``faces``: faces against non-faces. scikit-image's LFW subset holds 100 face crops and 100
  non-face crops (25x25). The detectors train on a split of the faces and score the
  held-out faces (normal) and all 100 non-faces (anomalous); with 30 held-out faces one
  split's AUROC is noisy, so the metrics are means over ``--splits`` random splits.
* ``digits``: one-class digits. scikit-learn's 8x8 digits are split in half (stratified);
  for each class in ``--classes`` the detectors train on that class's training images and
  score the whole test half, where every other class is anomalous. Reported per class and
  as the mean over classes.

``--data PATH`` runs on your own data instead: a table (``.csv``, or ``.npy``/``.npz`` of shape
(n, features)) with ``--label-column`` (rows whose label is ``--normal-label`` are normal,
the others anomalous), or images (a folder with one subfolder per class, or a ``.npy`` of
shape (n, height, width[, channels])). With labels, the detectors train on a split of the
normal rows and are scored on the rest; without labels they train on everything and the
flagged rows are reported.

Methods: latent_jax's :class:`~latent_jax.anomaly.AnomalyDetector` with ``pca`` (reconstruction
error, which is also the classic baseline; with it comes ``pca-hotelling``, Hotelling's T^2 in
the subspace of the components Kaiser's rule keeps, the eigenvalues above their mean),
``ppca`` (negative log-likelihood), ``autoencoder`` (reconstruction error) and ``vae``
(scored twice from one trained model: negative ELBO, ``vae-elbo``, and negative log
reconstruction probability, ``vae-recprob``);
baselines ``isolation-forest`` and ``one-class-svm`` (scikit-learn defaults, scored with
``-score_samples``; every method's anomaly score is its ``decision_function``, higher = more
anomalous, as in PyOD). Metrics: AUROC and average precision (anomalies are the positive class)
from ``sklearn.metrics``.

Writes into --out the run folder (:mod:`latent_jax.runs`): config.json, metrics.json, and for
the first neural detector of ``--methods`` (autoencoder or vae) of the first task's first fit
(faces: split 0; digits alone: class ``--show-class``; your data), history.csv,
normalizer.json and checkpoints/, which ``latent_jax.load_run(OUT)`` reloads as that
detector's network; every fitted latent_jax detector of the faces task (or of your data) as
an :class:`~latent_jax.anomaly.AnomalyDetector` under ``detectors/<task>/<method>/``
(``AnomalyDetector.load``); and per task ``<task>_score_histograms.png``, ``<task>_roc.png``
and ``<task>_ranked.png`` (the most and least anomalous test images under the best latent_jax
detector; for digits, of the class ``--show-class``).
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
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

from latent_jax import data as data_lib
from latent_jax import plots, runs, validation
from latent_jax._deprecation import deprecated_names
from latent_jax.anomaly import AnomalyDetector
from latent_jax.data import images as image_data
from latent_jax.experiments import common

logger = logging.getLogger(__name__)

TASKS = ("faces", "digits", "all")
DETECTORS = ("pca", "ppca", "autoencoder", "vae")
BASELINES = ("isolation-forest", "one-class-svm")
# The methods the comparison is about: the PCA baseline is latent_jax's "pca" detector.
CANDIDATES = ("pca-hotelling", "ppca", "autoencoder", "vae-elbo", "vae-recprob")
N_RANKED = 10
NEURAL = ("autoencoder", "vae")
# The flags config.json keeps under "data" and "model" (the rest: "training", "settings").
DATA_FLAGS = (
    "task",
    "data",
    "label_column",
    "normal_label",
    "classes",
    "show_class",
    "splits",
    "test_size",
)
MODEL_FLAGS = (
    "methods",
    "contamination",
    "n_components",
    "architecture",
    "hidden_dims",
    "latent_dim",
    "obs_logvar",
)


@dataclasses.dataclass(frozen=True)
class Arguments(common.RunArguments):
    """The flags of ``latent-jax anomaly``, typed (:func:`add_arguments` defines them)."""

    task: str
    data: str | None
    label_column: int | None
    normal_label: int
    classes: Sequence[int]
    show_class: int | None
    splits: int
    test_size: float
    methods: Sequence[str]
    contamination: float
    n_components: int | float | str
    architecture: str
    hidden_dims: Sequence[int]
    latent_dim: int
    epochs: int
    batch_size: int
    learning_rate: float
    obs_logvar: float
    seed: int
    quiet: bool
    out: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers this experiment's flags."""
    data = parser.add_argument_group("data")
    data.add_argument(
        "--task", choices=TASKS, default="all", help="bundled task(s) to run (default: all)"
    )
    data.add_argument(
        "--data",
        default=None,
        help="your own data instead of --task: a .csv/.npy/.npz table or images (folder, .npy)",
    )
    data.add_argument("--label-column", type=int, default=None, help="label column of a table")
    data.add_argument(
        "--normal-label", type=int, default=0, help="the label of normal rows (default 0)"
    )
    data.add_argument(
        "--classes",
        type=common.int_tuple,
        default=tuple(range(10)),
        help="digit classes to treat as normal, one at a time (default: 0-9)",
    )
    data.add_argument(
        "--show-class", type=int, default=None, help="digit class of the figures (default: first)"
    )
    data.add_argument(
        "--splits",
        type=int,
        default=5,
        help="faces: random splits of the faces to average over (default 5)",
    )
    data.add_argument(
        "--test-size",
        type=float,
        default=0.3,
        help="held-out fraction of the normal data (faces, your data; digits use half)",
    )
    model = parser.add_argument_group("detectors")
    model.add_argument(
        "--methods",
        type=common.subset_of("--methods", DETECTORS),
        default=DETECTORS,
        help=f"latent_jax detectors, comma-separated (default: {','.join(DETECTORS)})",
    )
    model.add_argument("--contamination", type=float, default=0.1, help="for thresholds")
    model.add_argument(
        "--n-components",
        type=_n_components,
        default="auto",
        help=(
            "PCA/PPCA components: an int, a variance fraction in (0, 1), 'kaiser', or 'auto' "
            "(90%% of the variance, always leaving a residual; the default)"
        ),
    )
    model.add_argument(
        "--architecture", choices=("auto", "mlp", "conv"), default="auto", help="AE/VAE models"
    )
    model.add_argument("--hidden-dims", type=common.int_tuple, default=(128, 64), help="MLP widths")
    model.add_argument("--latent-dim", type=int, default=8, help="AE/VAE latent size")
    model.add_argument("--epochs", type=int, default=200, help="AE/VAE training epochs")
    model.add_argument("--batch-size", type=int, default=32, help="AE/VAE rows per batch")
    model.add_argument("--learning-rate", type=float, default=1e-3, help="Adam's step size")
    model.add_argument(
        "--obs-logvar", type=float, default=-1.0, help="VAE Gaussian log-variance (default -1)"
    )
    model.add_argument("--seed", type=int, default=0, help="seed of splits and training")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--out", default="runs/anomaly", help="output folder")
    common.add_run_arguments(parser)


def _check_args(args: Arguments) -> None:
    common.require_at_least(args, 1, "epochs", "batch_size", "latent_dim")
    if args.splits < 1:
        raise ValueError(f"--splits must be >= 1, got {args.splits}")
    validation.check_fraction("--test-size", args.test_size)
    bad = [c for c in args.classes if not 0 <= c <= 9]
    if bad or not args.classes:
        raise ValueError(f"--classes must be digits 0-9, got {args.classes}")
    if args.show_class is not None and args.show_class not in args.classes:
        raise ValueError(f"--show-class {args.show_class} is not one of --classes {args.classes}")
    common.check_run_arguments(args)
    # Let the detector validate the rest (contamination, n_components, ...), before any work.
    for method in args.methods:
        try:
            AnomalyDetector(method, args.contamination, **_options(args, method))._validate_params()
        except (TypeError, ValueError) as error:
            raise ValueError(f"--methods {method}: {error}") from error


def _options(args: Arguments, method: str) -> dict[str, Any]:
    if method == "pca":
        # The tutorial's reconstruction error, on --n-components (Hotelling's T^2 beside it).
        return {"n_components": args.n_components, "statistic": "reconstruction"}
    if method == "ppca":
        return {"n_components": args.n_components}
    options = {
        "architecture": args.architecture,
        "hidden_dims": args.hidden_dims,
        "latent_dim": args.latent_dim,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "lr_schedule": args.lr_schedule,
        "clip_norm": args.clip_norm,
        "seed": args.seed,
        "quiet": args.quiet,
    }
    if method == "vae":
        options["obs_logvar"] = args.obs_logvar
    return options


def _n_components(text: str) -> int | float | str:
    """``--n-components``: ``auto``, ``kaiser``, an int or a variance fraction."""
    if text in ("auto", "kaiser"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an int, a fraction in (0, 1), 'auto' or 'kaiser', got {text!r}"
        ) from None
    return int(value) if value >= 1 and value.is_integer() else value


def fit_detectors(
    args: Arguments,
    train: np.ndarray,
    main_dir: str | None = None,
    training_dir: str | None = None,
) -> dict[str, AnomalyDetector | Any]:
    """Every latent_jax detector the flags name and the two baselines, fitted on ``train``.

    Every trained detector checkpoints (the main one every ``--checkpoint-every`` epochs, the
    others at their end unless the flag is given) and, with ``--resume``, continues from its
    checkpoints.

    Args:
        args: the flags.
        train: the normal training examples.
        main_dir: the run folder that keeps the first neural detector's training run
            (history.csv, normalizer.json, checkpoints/), or ``None``.
        training_dir: the folder of the other neural detectors' checkpoints
            (``training_dir/<method>/checkpoints``), or ``None`` for none.

    Returns:
        Method name -> fitted detector; a scikit-learn baseline is wrapped so that its
        ``decision_function`` is, as for :class:`AnomalyDetector`, an anomaly score (higher =
        more anomalous: scikit-learn's ``-score_samples``).
    """
    flags = common.RunFlags.from_flags(args)
    fitted: dict[str, Any] = {}
    main = next((m for m in args.methods if m in NEURAL), None) if main_dir else None
    for method in args.methods:
        detector = AnomalyDetector(method, args.contamination, **_options(args, method))
        if method == main:
            with common.history_writers(main_dir, flags) as callbacks:
                detector.fit(
                    train,
                    callbacks=callbacks,
                    **common.detector_fit_options(flags, main_dir, args.epochs),
                )
            common.write_normalizer(main_dir, detector.normalizer_)
            common.record_resumptions(main_dir, os.path.join(main_dir, runs.CHECKPOINTS))
        elif method in NEURAL and training_dir is not None:
            # Many small networks: each checkpoints at its end unless told otherwise, so a
            # resumed run skips the finished ones.
            folder = os.path.join(training_dir, method)
            detector.fit(
                train,
                **common.detector_fit_options(
                    flags,
                    folder,
                    args.epochs,
                    args.checkpoint_every or 0,
                ),
            )
        else:
            detector.fit(train)
        if method == "vae":
            fitted["vae-elbo"] = detector
            fitted["vae-recprob"] = detector.rescored("reconstruction_probability")
        else:
            fitted[method] = detector
        if method == "pca":
            # T^2 on the leading components: Kaiser's rule picks them from the normal data
            # alone, independently of --n-components (tuned for the reconstruction error).
            hotelling = AnomalyDetector(
                "pca", args.contamination, n_components="kaiser", statistic="hotelling"
            )
            fitted["pca-hotelling"] = hotelling.fit(train)
    flat = train.reshape(len(train), -1)
    scaler = StandardScaler().fit(flat) if train.ndim == 2 else None
    features = scaler.transform(flat) if scaler is not None else flat
    forest = IsolationForest(random_state=args.seed).fit(features)
    svm = OneClassSVM(gamma="scale").fit(features)
    fitted["isolation-forest"] = _Baseline(forest, scaler)
    fitted["one-class-svm"] = _Baseline(svm, scaler)
    return fitted


class _Baseline:
    """A scikit-learn detector on flattened (and, for tables, standardized) rows."""

    def __init__(self, model: Any, scaler: StandardScaler | None):
        self.model, self.scaler = model, scaler

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Anomaly scores, higher = more anomalous (PyOD's convention): ``-score_samples``."""
        flat = x.reshape(len(x), -1)
        if self.scaler is not None:
            flat = self.scaler.transform(flat)
        return -self.model.score_samples(flat)


def score_detectors(
    fitted: dict[str, Any], test: np.ndarray, is_anomaly: np.ndarray
) -> dict[str, dict[str, Any]]:
    """AUROC, average precision and scores of every method on a labelled test set.

    Args:
        fitted: from :func:`fit_detectors`.
        test: array of shape (n, ...) in the training data's example shape.
        is_anomaly: int array of shape (n,), 1 for anomalies.

    Returns:
        Method name -> ``{"auroc", "average_precision", "scores"}`` (and, for latent_jax
        detectors, the fraction of normal and anomalous test rows ``predict`` flags).
    """
    out = {}
    for name, detector in fitted.items():
        scores = np.asarray(detector.decision_function(test), np.float64)
        result = {
            "auroc": float(roc_auc_score(is_anomaly, scores)),
            "average_precision": float(average_precision_score(is_anomaly, scores)),
            "scores": scores,
        }
        if isinstance(detector, AnomalyDetector):
            flagged = scores > detector.threshold_
            result["flagged_normal"] = float(flagged[is_anomaly == 0].mean())
            result["flagged_anomalous"] = float(flagged[is_anomaly == 1].mean())
        out[name] = result
    return out


__getattr__ = deprecated_names(
    __name__,
    {"evaluate": ("latent_jax.experiments.anomaly.score_detectors", lambda: score_detectors)},
)


def _best(results: dict[str, dict[str, Any]], key: str = "auroc") -> str | None:
    candidates = [n for n in CANDIDATES if n in results]
    return max(candidates, key=lambda n: results[n][key]) if candidates else None


def _figures(
    prefix: str,
    title: str,
    results: dict[str, dict[str, Any]],
    test: np.ndarray,
    is_anomaly: np.ndarray,
    out: str,
) -> None:
    plots.score_histograms(
        {
            n: (r["scores"][is_anomaly == 0], r["scores"][is_anomaly == 1])
            for n, r in results.items()
        },
        os.path.join(out, f"{prefix}_score_histograms.png"),
        title=f"{title}: anomaly scores",
    )
    curves = {}
    for name, r in results.items():
        fpr, tpr, _ = roc_curve(is_anomaly, r["scores"])
        curves[name] = (fpr, tpr, r["auroc"])
    plots.roc_curves(curves, os.path.join(out, f"{prefix}_roc.png"), title=f"{title}: ROC")
    best = _best(results) or next(iter(results))
    if test.ndim >= 3:
        order = np.argsort(-results[best]["scores"], kind="stable")
        images = test if test.ndim == 4 else test[..., None]
        plots.ranked_images(
            images[order[:N_RANKED]],
            images[order[::-1][:N_RANKED]],
            os.path.join(out, f"{prefix}_ranked.png"),
            title=f"{title}: most and least anomalous test images by {best}",
            vmin=float(images.min()),
            vmax=float(images.max()),
        )


def _strip_scores(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n: {k: v for k, v in r.items() if k != "scores"} for n, r in results.items()}


def run_faces(args: Arguments, out: str, main_dir: str | None = None) -> dict[str, Any]:
    """Faces against non-faces on scikit-image's LFW subset, over ``--splits`` random splits.

    ``main_dir`` (see :func:`fit_detectors`) keeps the first split's neural detector.
    """
    images, labels = image_data.load_lfw_subset()
    faces, non_faces = images[labels == 1], images[labels == 0]
    per_split: dict[str, dict[str, list[float]]] = {}
    for split in range(args.splits):
        parts = data_lib.split_dataset(
            faces, test_size=args.test_size, random_state=args.seed + split, name="lfw-faces"
        )
        train, held_out = parts.x_train, parts.x_test
        test = np.concatenate([held_out, non_faces])
        is_anomaly = np.r_[np.zeros(len(held_out)), np.ones(len(non_faces))].astype(int)
        folder = os.path.join(out, "detectors", "faces", *([f"split{split}"] if split else []))
        fitted = fit_detectors(args, train, main_dir if split == 0 else None, folder)
        results = score_detectors(fitted, test, is_anomaly)
        for name, r in results.items():
            entry = per_split.setdefault(name, {"auroc": [], "average_precision": []})
            entry["auroc"].append(r["auroc"])
            entry["average_precision"].append(r["average_precision"])
        if split == 0:
            _figures("faces", "Faces vs non-faces", results, test, is_anomaly, out)
            _save_detectors(fitted, os.path.join(out, "detectors", "faces"))
            first = _strip_scores(results)
    methods = _mean_over(per_split)
    for name, result in methods.items():
        result.update({k: v for k, v in first[name].items() if k.startswith("flagged")})
    return {
        "n_train": len(train),
        "n_test_normal": len(held_out),
        "n_test_anomalous": len(non_faces),
        "image_shape": list(images.shape[1:]),
        "splits": args.splits,
        "per_split": per_split,
        "methods": methods,
        "best_latent_jax": _best(methods),
    }


def _mean_over(runs: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, float]]:
    """Mean (and standard deviation) of each method's AUROC and average precision."""
    return {
        name: {
            "auroc": float(np.mean(v["auroc"])),
            "auroc_std": float(np.std(v["auroc"])),
            "average_precision": float(np.mean(v["average_precision"])),
        }
        for name, v in runs.items()
    }


def run_digits(args: Arguments, out: str, main_dir: str | None = None) -> dict[str, Any]:
    """One-class digits: each class of ``--classes`` in turn is normal.

    ``main_dir`` (see :func:`fit_detectors`) keeps the neural detector of ``--show-class``.
    """
    images, labels = image_data.load_digits()
    parts = data_lib.split_dataset(
        images, labels, test_size=0.5, stratify=True, random_state=args.seed, name="digits"
    )
    x_train, x_test, y_train, y_test = parts.x_train, parts.x_test, parts.y_train, parts.y_test
    show = args.show_class if args.show_class is not None else args.classes[0]
    per_class: dict[str, dict[str, list[float]]] = {}
    for digit in args.classes:
        start = time.perf_counter()
        fitted = fit_detectors(
            args,
            x_train[y_train == digit],
            main_dir if digit == show else None,
            os.path.join(out, "detectors", "digits", str(digit)),
        )
        is_anomaly = (y_test != digit).astype(int)
        results = score_detectors(fitted, x_test, is_anomaly)
        for name, r in results.items():
            entry = per_class.setdefault(name, {"auroc": [], "average_precision": []})
            entry["auroc"].append(r["auroc"])
            entry["average_precision"].append(r["average_precision"])
        if digit == show:
            _figures("digits", f"Digit {digit} as normal", results, x_test, is_anomaly, out)
        logger.info(
            "digit %d: %s (%.1f s)",
            digit,
            " ".join(f"{n}={r['auroc']:.4f}" for n, r in results.items()),
            time.perf_counter() - start,
        )
    mean = _mean_over(per_class)
    return {
        "classes": list(args.classes),
        "n_test": len(x_test),
        "show_class": show,
        "per_class": per_class,
        "methods": mean,
        "best_latent_jax": _best(mean),
    }


def load_custom(args: Arguments) -> tuple[np.ndarray, np.ndarray | None, str]:
    """``--data`` read and checked (before the output folder exists): ``(x, labels, name)``.

    Raises:
        ValueError: for a file that cannot be read, or a ``--normal-label`` that marks fewer
            than 2 rows or every row.
    """
    source = os.fspath(args.data)
    table = source.lower().endswith(".csv") or args.label_column is not None
    if not table and source.lower().endswith((".npy", ".npz")):
        table = data_lib.load_array_file(source)[0].ndim == 2
    if table:
        x, labels = data_lib.load_array_file(source, args.label_column)
    else:
        x, labels, source = image_data.load_images(source)
    if labels is not None:
        normal = labels == args.normal_label
        if normal.sum() < 2 or normal.all():
            raise ValueError(
                f"--normal-label {args.normal_label} must mark at least 2 rows and not all of "
                f"them; {int(normal.sum())} of {len(x)} rows have it"
            )
    return x, labels, source


def run_custom(
    args: Arguments,
    out: str,
    main_dir: str | None = None,
    loaded: tuple[np.ndarray, np.ndarray | None, str] | None = None,
) -> dict[str, Any]:
    """Your data: a labelled or unlabelled table or image set.

    ``main_dir`` (see :func:`fit_detectors`) keeps the neural detector; ``loaded`` is what
    :func:`load_custom` returned (read here when ``None``).
    """
    x, labels, source = load_custom(args) if loaded is None else loaded
    training_dir = os.path.join(out, "detectors", "data")
    if labels is None:
        fitted = fit_detectors(args, x, main_dir, training_dir)
        flagged = {
            n: int(d.predict(x).sum()) for n, d in fitted.items() if isinstance(d, AnomalyDetector)
        }
        _save_detectors(fitted, os.path.join(out, "detectors", "data"))
        return {"data": source, "n": len(x), "labels": False, "flagged": flagged}
    normal = labels == args.normal_label
    parts = data_lib.split_dataset(
        x[normal], test_size=args.test_size, random_state=args.seed, name=source
    )
    train, held_out = parts.x_train, parts.x_test
    test = np.concatenate([held_out, x[~normal]])
    is_anomaly = np.concatenate([np.zeros(len(held_out)), np.ones(int((~normal).sum()))]).astype(
        int
    )
    fitted = fit_detectors(args, train, main_dir, training_dir)
    results = score_detectors(fitted, test, is_anomaly)
    _figures("data", os.path.basename(os.path.normpath(source)), results, test, is_anomaly, out)
    _save_detectors(fitted, os.path.join(out, "detectors", "data"))
    return {
        "data": source,
        "n_train": len(train),
        "n_test_normal": len(held_out),
        "n_test_anomalous": int((~normal).sum()),
        "methods": _strip_scores(results),
        "best_latent_jax": _best(results),
    }


def _save_detectors(fitted: dict[str, Any], directory: str) -> None:
    for name, detector in fitted.items():
        if isinstance(detector, AnomalyDetector):
            detector.save(os.path.join(directory, name))


def run(args: Arguments) -> dict:
    """Runs the experiment and returns the metrics written to ``metrics.json``."""
    _check_args(args)
    if args.data is not None and not os.path.exists(args.data):
        raise FileNotFoundError(f"--data {args.data!r}: no such file or folder")
    loaded = None if args.data is None else load_custom(args)  # bad data writes nothing
    neural = [m for m in args.methods if m in NEURAL]
    training = None
    if neural:
        detector = AnomalyDetector(neural[0], args.contamination, **_options(args, neural[0]))
        training = detector.train_config(
            **common.checkpoint_options(common.RunFlags.from_flags(args), args.out, args.epochs)
        )
    out = common.prepare_output_dir(args.out)
    common.write_run_config(
        out,
        args,
        command="anomaly",
        data_flags=DATA_FLAGS,
        model_flags=MODEL_FLAGS,
        training=training,
    )
    start = time.perf_counter()
    tasks: dict[str, Any] = {}
    if args.data is not None:
        tasks["data"] = run_custom(args, out, out, loaded)
    else:
        if args.task in ("faces", "all"):
            tasks["faces"] = run_faces(args, out, out)
        if args.task in ("digits", "all"):
            tasks["digits"] = run_digits(args, out, None if "faces" in tasks else out)
    metrics = {
        "tasks": tasks,
        "seconds": time.perf_counter() - start,
        "environment": common.environment_info(),
    }
    common.write_json(os.path.join(out, runs.METRICS), metrics)
    _print_summary(metrics, out)
    return metrics


def _print_summary(metrics: dict, out: str) -> None:
    for task, result in metrics["tasks"].items():
        if "methods" not in result:
            print(f"{task}: {result['n']} rows, flagged per detector: {result['flagged']}")
            continue
        what = {
            "digits": "mean over classes of ",
            "faces": f"mean over {result.get('splits')} splits of ",
        }.get(task, "")
        print(
            f"{task}: {what}AUROC and average precision (best latent_jax: "
            f"{result['best_latent_jax']})"
        )
        print(f"  {'method':<18} {'AUROC':>7} {'± std':>7} {'AP':>7}")
        for name, r in result["methods"].items():
            std = f"{r['auroc_std']:>7.4f}" if "auroc_std" in r else f"{'':>7}"
            print(f"  {name:<18} {r['auroc']:>7.4f} {std} {r['average_precision']:>7.4f}")
    print(f"{metrics['seconds']:.1f} s. Outputs in {out}/")
