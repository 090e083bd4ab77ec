"""Fit PCA on a table, print the explained-variance table, save components and the figure.

Reads the tutorial's synthetic set, scikit-learn's digits or a .npy/.npz/.csv file, splits it 80/20
and standardizes it on the training split (the tutorial's pipeline), fits PCA on the training split
and writes into --out: explained_variance.png (every component's share, the retained ones in
red), components.npz (mean, components, eigenvalues), metrics.json and config.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import logging
import os
import time

import numpy as np

from latent_jax import data, plots
from latent_jax import linear as pca
from latent_jax.experiments import common
from latent_jax.runs import checkpoint

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Arguments(common.CommandArguments):
    """The flags of ``latent-jax pca``, typed (:func:`add_arguments` defines them)."""

    data: str
    label_column: int | None
    n_components: int
    test_size: float
    seed: int
    standardize: bool
    out: str
    no_compile_cache: bool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers this experiment's flags."""
    common.add_tabular_source_arguments(parser)
    parser.add_argument("--n-components", type=int, default=5, help="components to retain")
    parser.add_argument("--test-size", type=float, default=0.2, help="held-out fraction")
    parser.add_argument("--seed", type=int, default=42, help="random_state of data and split")
    parser.add_argument(
        "--standardize",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="standardize the features on the training split (--no-standardize: raw features)",
    )
    parser.add_argument("--out", default="runs/pca", help="output folder")


def explained_variance_table(ratio: np.ndarray, eigenvalues: np.ndarray, limit: int) -> str:
    """The explained-variance table as text: component, eigenvalue, share, cumulative share."""
    lines = [f"{'component':>9}  {'eigenvalue':>11}  {'explained':>9}  {'cumulative':>10}"]
    cumulative = np.cumsum(ratio)
    for j in range(min(limit, len(ratio))):
        lines.append(
            f"{j + 1:>9}  {eigenvalues[j]:>11.4f}  {ratio[j]:>9.2%}  {cumulative[j]:>10.2%}"
        )
    return "\n".join(lines)


def run(args: Arguments) -> dict:
    """Runs the experiment and returns the metrics written to ``metrics.json``."""
    dataset = data.load_tabular(
        args.data,
        label_column=args.label_column,
        test_size=args.test_size,
        random_state=args.seed,
        standardize=args.standardize,
    )
    common.check_output_path(args.out)
    start = time.perf_counter()
    full = pca.fit_pca(dataset.x_train)  # every component, for the bar chart
    state = pca.fit_pca(dataset.x_train, args.n_components)
    seconds = time.perf_counter() - start
    out = common.prepare_output_dir(
        args.out
    )  # after the data and the fit: bad input writes nothing

    ratio = np.asarray(full.explained_variance_ratio, np.float64)
    eigenvalues = np.asarray(full.explained_variance, np.float64)
    retained = float(np.sum(np.asarray(state.explained_variance_ratio, np.float64)))
    n_features = dataset.x_train.shape[1]
    train_mse = float(np.mean(pca.reconstruction_error(state, dataset.x_train))) / n_features
    test_mse = float(np.mean(pca.reconstruction_error(state, dataset.x_test))) / n_features

    print(explained_variance_table(ratio, eigenvalues, limit=max(args.n_components, 10)))
    print(
        f"Cumulative explained variance for the first {args.n_components} components: "
        f"{retained:.2%}"
    )
    print(f"Reconstruction MSE per feature: train {train_mse:.4f}, test {test_mse:.4f}")

    figure = plots.explained_variance_bars(
        ratio, args.n_components, os.path.join(out, "explained_variance.png")
    )
    arrays = io.BytesIO()
    np.savez(
        arrays,
        mean=np.asarray(state.mean),
        components=np.asarray(state.components),
        explained_variance=np.asarray(state.explained_variance),
        eigenvalues=np.asarray(full.eigenvalues),
    )
    checkpoint.atomic_write(os.path.join(out, "components.npz"), arrays.getvalue())
    metrics = {
        "data": dataset.name,
        "n_train": len(dataset.x_train),
        "n_test": len(dataset.x_test),
        "n_features": n_features,
        "n_components": args.n_components,
        "cumulative_explained_variance": retained,
        "explained_variance_ratio": ratio,
        "pca_train_mse": train_mse,
        "pca_test_mse": test_mse,
        "fit_seconds": seconds,
        "environment": common.environment_info(),
    }
    common.write_json(os.path.join(out, "metrics.json"), metrics)
    common.write_json(os.path.join(out, "config.json"), common.arguments_dict(args))
    logger.info("wrote %s, components.npz, metrics.json and config.json in %s", figure, out)
    return metrics
