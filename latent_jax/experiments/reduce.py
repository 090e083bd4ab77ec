"""Dimensionality reduction with PCA and an autoencoder: the tutorial's first example.

The tutorial's setup by default: make_classification (10,000 x 50, 3 classes), an 80/20 split with
random_state 42, StandardScaler fitted on the training split; PCA with 5 components; the
autoencoder 50 -> 30 -> 10 -> 5 with LeakyReLU(0.1) and the mirrored decoder, trained with Adam
(1e-3), batch 128, 500 epochs, mean squared error, the test loss evaluated every epoch.

Writes into --out the run folder (:mod:`latent_jax.runs`; ``latent_jax.load_run(OUT)`` reloads
the autoencoder): config.json, metrics.json, history.csv (one row per epoch), normalizer.json
(the standardization of the training split) and checkpoints/; and the figures
explained_variance.png (all components, the first 5 in red), loss_curves.png and
latent_scatter.png (PCA's first two components beside the autoencoder's first two latent
dimensions, coloured by class). With --seeds K, K autoencoders train at once in one compiled,
vmapped run and the metrics report the mean and standard deviation of their test MSE; on a
CPU the runs are spread over its cores (one JAX device per core), on several GPUs over them.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
from collections.abc import Sequence

import jax
import numpy as np

from latent_jax import data, distributed, plots, runs
from latent_jax import linear as pca
from latent_jax.experiments import common
from latent_jax.models.inference import predict
from latent_jax.models.mlp import Autoencoder
from latent_jax.objectives import autoencoder_objective
from latent_jax.train import TrainConfig, TrainState, evaluate, fit, fit_many

logger = logging.getLogger(__name__)

# The flags config.json keeps under "data" and "model" (the rest: "training", "settings").
DATA_FLAGS = ("data", "label_column", "test_size")
MODEL_FLAGS = ("latent_dim", "hidden_dims", "negative_slope")


@dataclasses.dataclass(frozen=True)
class Arguments(common.RunArguments):
    """The flags of ``latent-jax reduce``, typed (:func:`add_arguments` defines them)."""

    data: str
    label_column: int | None
    latent_dim: int
    hidden_dims: Sequence[int]
    negative_slope: float
    epochs: int
    batch_size: int
    learning_rate: float
    test_size: float
    seed: int
    seeds: int
    quiet: bool
    out: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers this experiment's flags, with the tutorial's values as defaults."""
    common.add_tabular_source_arguments(parser)
    parser.add_argument("--latent-dim", type=int, default=5, help="PCA components and AE latents")
    parser.add_argument(
        "--hidden-dims",
        type=lambda s: tuple(int(v) for v in s.split(",") if v),
        default=(30, 10),
        help="encoder widths before the latent layer, comma-separated (decoder mirrors them)",
    )
    parser.add_argument("--negative-slope", type=float, default=0.1, help="LeakyReLU slope")
    parser.add_argument("--epochs", type=int, default=500, help="training epochs")
    parser.add_argument("--batch-size", type=int, default=128, help="rows per batch")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam's step size")
    parser.add_argument("--test-size", type=float, default=0.2, help="held-out fraction")
    parser.add_argument("--seed", type=int, default=42, help="seed of data, split and training")
    parser.add_argument(
        "--seeds", type=int, default=1, help="train this many autoencoders at once (vmapped)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--out", default="runs/reduce", help="output folder")
    common.add_run_arguments(parser)


def _check_args(args: Arguments) -> None:
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    if args.latent_dim < 1:
        raise ValueError(f"--latent-dim must be >= 1, got {args.latent_dim}")
    common.require_at_least(args, 1, "epochs", "batch_size")
    if not math.isfinite(args.learning_rate) or args.learning_rate <= 0:
        raise ValueError(f"--learning-rate must be > 0, got {args.learning_rate}")
    if not 0.0 < args.test_size < 1.0:
        raise ValueError(f"--test-size must be in (0, 1), got {args.test_size}")
    common.check_run_arguments(args)


def _run_keys(seed: int, count: int) -> jax.Array:
    """Seed k's root key: the single-seed run's key for k = 0, fresh ones after it."""
    root = jax.random.key(seed)
    if count == 1:
        return root
    return jax.numpy.stack([root, *jax.random.split(jax.random.fold_in(root, 1), count - 1)])


def evaluation_key(seed: int) -> jax.Array:
    """The key of the run's final evaluation (``ae_train_mse``, ``ae_test_mse``)."""
    return jax.random.key(seed + 1)


def _first_run(state: TrainState) -> TrainState:
    return jax.tree.map(lambda leaf: leaf[0], state)


def run(args: Arguments) -> dict:
    """Runs the experiment and returns the metrics written to ``metrics.json``."""
    flags = common.RunFlags.from_flags(args)
    _check_args(args)
    if args.seeds > 1:
        distributed.use_cpu_cores()  # only effective before JAX's backend starts
    dataset = data.load_tabular(
        args.data, label_column=args.label_column, test_size=args.test_size, random_state=args.seed
    )
    x_train, x_test = dataset.x_train, dataset.x_test
    n_features = x_train.shape[1]

    # PCA: the full spectrum for the figure, Q components for the comparison.
    full = pca.fit_pca(x_train)
    state_pca = pca.fit_pca(x_train, args.latent_dim)
    pca_codes = np.asarray(pca.encode(state_pca, x_train))
    pca_train_mse = float(np.mean(pca.reconstruction_error(state_pca, x_train))) / n_features
    pca_test_mse = float(np.mean(pca.reconstruction_error(state_pca, x_test))) / n_features
    cumulative = float(np.sum(np.asarray(state_pca.explained_variance_ratio, np.float64)))

    model = Autoencoder(
        input_dim=n_features,
        hidden_dims=tuple(args.hidden_dims),
        latent_dim=args.latent_dim,
        negative_slope=args.negative_slope,
    )
    objective = autoencoder_objective(model)
    config = TrainConfig(
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        epochs=args.epochs,
        optimizer="adam",
        seed=args.seed,
        quiet=args.quiet,
        log_every=0,
        **common.checkpoint_options(flags, args.out, args.epochs),
        **common.train_options(flags),
    )
    out = common.prepare_output_dir(args.out)  # after the checks: bad input writes nothing
    common.write_run_config(
        out,
        args,
        command="reduce",
        data_flags=DATA_FLAGS,
        model_flags=MODEL_FLAGS,
        training=config,
    )
    common.write_normalizer(out, dataset.normalizer)
    keys = _run_keys(args.seed, args.seeds)
    trainer = fit if args.seeds == 1 else fit_many
    fitted = common.fit_in_folder(out, flags, trainer, objective, x_train, x_test, config, keys)
    state, history = fitted.state, fitted.history
    train_seconds, compile_seconds = fitted.train_seconds, fitted.compile_seconds

    eval_key = evaluation_key(args.seed)
    scores = evaluate(objective, state, x_test, eval_key)
    train_scores = evaluate(objective, state, x_train, eval_key)
    test_mse = np.atleast_1d(np.asarray(scores["loss"], np.float64))
    train_mse = np.atleast_1d(np.asarray(train_scores["loss"], np.float64))
    first = state if args.seeds == 1 else _first_run(state)
    ae_codes = np.asarray(predict(model, first.variables, x_train, method="encode"))

    train_curve = np.atleast_2d(history["train_loss"])[0]
    test_curve = np.atleast_2d(history["test_loss"])[0]
    plots.explained_variance_bars(
        full.explained_variance_ratio, args.latent_dim, os.path.join(out, "explained_variance.png")
    )
    plots.loss_curves(
        {"Train Loss": train_curve, "Test Loss": test_curve},
        os.path.join(out, "loss_curves.png"),
        log_scale=False,
    )
    plots.latent_scatter_pair(
        {"PCA": pca_codes, "Autoencoder": ae_codes},
        dataset.y_train,
        os.path.join(out, "latent_scatter.png"),
        axis_names={
            "PCA": ("First Principal Component", "Second Principal Component"),
            "Autoencoder": ("First Encoded Dimension", "Second Encoded Dimension"),
        },
    )

    metrics = {
        "data": dataset.name,
        "n_train": len(x_train),
        "n_test": len(x_test),
        "n_features": n_features,
        "latent_dim": args.latent_dim,
        "pca_cumulative_explained_variance": cumulative,
        "pca_train_mse": pca_train_mse,
        "pca_test_mse": pca_test_mse,
        "ae_train_mse": float(train_mse[0]),
        "ae_test_mse": float(test_mse[0]),
        "ae_final_epoch_train_loss": float(train_curve[-1]),
        "ae_final_epoch_test_loss": float(test_curve[-1]),
        "epochs": int(history.num_epochs),
        "seeds": args.seeds,
        "run_devices": _run_devices(args.seeds),
        "train_seconds": train_seconds,
        "compile_seconds": compile_seconds,
        "environment": common.environment_info(),
    }
    if args.seeds > 1:
        metrics["ae_test_mse_per_seed"] = test_mse.tolist()
        metrics["ae_test_mse_mean"] = float(test_mse.mean())
        metrics["ae_test_mse_std"] = float(test_mse.std(ddof=1))
    common.write_json(os.path.join(out, runs.METRICS), metrics)
    _print_summary(metrics, out)
    return metrics


def _run_devices(seeds: int) -> int:
    """How many devices ``fit_many`` spread the runs over (1 for a single run)."""
    mesh = distributed.runs_mesh(seeds) if seeds > 1 else None
    return 1 if mesh is None else mesh.size


def _print_summary(metrics: dict, out: str) -> None:
    rows = [
        ("PCA", metrics["pca_train_mse"], metrics["pca_test_mse"]),
        ("Autoencoder", metrics["ae_train_mse"], metrics["ae_test_mse"]),
    ]
    print(
        f"Cumulative explained variance of the first {metrics['latent_dim']} components: "
        f"{metrics['pca_cumulative_explained_variance']:.2%}"
    )
    print(f"{'model':<12} {'train MSE':>10} {'test MSE':>10}")
    for name, train, test in rows:
        print(f"{name:<12} {train:>10.4f} {test:>10.4f}")
    if metrics["seeds"] > 1:
        print(
            f"Autoencoder test MSE over {metrics['seeds']} seeds: "
            f"{metrics['ae_test_mse_mean']:.4f} ± {metrics['ae_test_mse_std']:.4f} "
            f"(trained on {metrics['run_devices']} device(s) at once)"
        )
    print(
        f"Training: {metrics['train_seconds']:.2f} s for {metrics['epochs']} epochs "
        f"(+ {metrics['compile_seconds']:.2f} s compile). Outputs in {out}/"
    )
