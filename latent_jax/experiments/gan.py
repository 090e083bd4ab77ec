"""Image generation with a DCGAN, on the VAE's data, figures and run folder.

A DCGAN (Radford, Metz & Chintala 2016; :class:`latent_jax.models.gan.DCGAN`): strided
convolutions and BatchNorm, LeakyReLU(0.2) in the discriminator, ReLU in the generator, the
non-saturating generator loss, Adam with β1 = 0.5 and a learning rate of 2e-4 for both
networks. The shared training engine runs it: the discriminator and the generator are two
parameter groups with their own optimizers, updated one after the other (``--updates
alternating``, DCGAN's loop) or from the same parameters (``simultaneous``) inside the
compiled epoch, with the engine's checkpoints and ``--resume``.

The data loaders are the VAE command's (``latent-jax vae``); the generator ends in a sigmoid,
so the images stay in [0, 1] (``--normalization none``, the default here; with another
normalization the generator's output is linear).

Writes into --out the run folder (:mod:`latent_jax.runs`; ``latent_jax.load_run(OUT)``
reloads the GAN): config.json, metrics.json (the final losses, the discriminator's mean
outputs on real and generated images and, on digits, the ``generation`` score of 1,000
samples beside the score of real test images), history.csv, normalizer.json (when the data
were normalized), checkpoints/; and the figures dataset_preview.png (the first 100 training
images), loss_curves.png (both networks' losses, train and test), samples.png (a 10x10 grid
of generated images from fixed draws of z), interpolation.png (10 steps between two draws of z,
spherical by default as DCGAN's walks are) and traversal.png (each of the first 16 dimensions
of z swept over [-3, 3], the others fixed at one draw).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
from typing import Any

import jax
import numpy as np

from latent_jax import generate, plots, runs
from latent_jax.adversarial import GENERATOR_LOSSES, gan_objective
from latent_jax.data import Dataset
from latent_jax.data import images as image_data
from latent_jax.experiments import common
from latent_jax.models.gan import DCGAN
from latent_jax.train import History, TrainConfig, fit
from latent_jax.train.config import GROUP_UPDATES

logger = logging.getLogger(__name__)

DATA_FLAGS = common.IMAGE_DATA_FLAGS
MODEL_FLAGS = ("latent_dim", "features", "generator_loss")
TRAINING_FLAGS = {
    **common.TRAINING_FLAGS,
    "b1": "beta1",
    "group_updates": "updates",
    "log_every": "log_every",
    "checkpoint_every": "checkpoint_every",
}
N_SHOWN = 10
N_GRID = 100
TRAVERSAL_VALUES = np.linspace(-3.0, 3.0, 10)
MAX_TRAVERSAL_DIMS = 16


@dataclasses.dataclass(frozen=True)
class Arguments(common.RunArguments):
    """The flags of ``latent-jax gan``, typed (:func:`add_arguments` defines them)."""

    data: str
    data_dir: str
    download: bool
    size: tuple[int, int] | None
    rgb: bool
    normalization: str
    test_size: float
    latent_dim: int
    features: int
    generator_loss: str
    epochs: int
    batch_size: int
    learning_rate: float
    d_learning_rate: float | None
    beta1: float
    updates: str
    seed: int
    log_every: int
    fast_compile: bool
    quiet: bool
    out: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers this experiment's flags (DCGAN's settings as defaults)."""
    data = parser.add_argument_group("data")
    data.add_argument(
        "--data",
        default=image_data.MNIST_5K,
        help=f"{', '.join(image_data.DATASET_NAMES)}, an AT&T-layout folder, any image folder, "
        "or a .npy/.npz array of images",
    )
    data.add_argument(
        "--data-dir",
        default="data",
        help="where the AT&T or MNIST files are (DeepMind's .npz for --data dsprites)",
    )
    data.add_argument("--download", action="store_true", help="fetch missing data; needs network")
    data.add_argument(
        "--size", type=_size, default=None, help="resize images to HEIGHT,WIDTH (at least 4,4)"
    )
    data.add_argument("--rgb", action="store_true", help="keep colour (image folders)")
    data.add_argument(
        "--normalization",
        choices=image_data.NORMALIZATIONS,
        default="none",
        help="'none' keeps pixels in [0, 1], the range of the generator's sigmoid",
    )
    data.add_argument(
        "--test-size",
        type=float,
        default=0.2,
        help="held-out fraction (data sets with a fixed split keep theirs)",
    )
    model = parser.add_argument_group("model and training")
    model.add_argument("--latent-dim", type=int, default=100, help="size of z (DCGAN's 100)")
    model.add_argument(
        "--features",
        type=int,
        default=32,
        help="base width of both networks (the paper's 64; fewer run faster on a CPU)",
    )
    model.add_argument(
        "--generator-loss",
        choices=GENERATOR_LOSSES,
        default="non-saturating",
        help="the generator's loss: -log D(G(z)) (non-saturating) or log(1 - D(G(z)))",
    )
    model.add_argument("--epochs", type=int, default=20, help="training epochs")
    model.add_argument("--batch-size", type=int, default=64, help="batch size")
    model.add_argument(
        "--learning-rate", type=float, default=2e-4, help="Adam's step size, both networks"
    )
    model.add_argument(
        "--d-learning-rate",
        type=float,
        default=None,
        help="the discriminator's own step size (default: --learning-rate)",
    )
    model.add_argument("--beta1", type=float, default=0.5, help="Adam's β1 (DCGAN's 0.5)")
    model.add_argument(
        "--updates",
        choices=GROUP_UPDATES,
        default="alternating",
        help="alternating: the generator's step sees the discriminator just updated; "
        "simultaneous: both steps from the batch's starting parameters",
    )
    model.add_argument("--seed", type=int, default=0, help="seed of split, training and figures")
    run = parser.add_argument_group("run")
    run.add_argument("--log-every", type=int, default=0, help="log every N epochs (0: never)")
    run.add_argument(
        "--fast-compile",
        action="store_true",
        help="compile with XLA's backend optimizations off (only for runs of a few steps)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--out", default="runs/gan", help="output folder")
    common.add_run_arguments(parser)


def _size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        message = f"expected HEIGHT,WIDTH such as 28,28, got {text!r}"
        raise argparse.ArgumentTypeError(message) from None
    return height, width


def _check_args(args: Arguments) -> None:
    common.require_at_least(args, 1, "latent_dim", "features", "epochs", "batch_size")
    common.require_at_least(args, 0, "log_every")
    for flag in ("learning_rate", "d_learning_rate"):
        value = getattr(args, flag)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ValueError(f"--{flag.replace('_', '-')} must be > 0, got {value}")
    if not 0.0 <= args.beta1 < 1.0:
        raise ValueError(f"--beta1 must be in [0, 1), got {args.beta1}")
    if not 0.0 < args.test_size < 1.0:
        raise ValueError(f"--test-size must be in (0, 1), got {args.test_size}")
    if args.size is not None and min(args.size) < 4:
        raise ValueError(f"--size must be at least 4,4 for the DCGAN, got {args.size}")
    common.check_run_arguments(args)


def run(args: Arguments) -> dict:
    """Runs the experiment and returns the metrics written to ``metrics.json``."""
    flags = common.RunFlags.from_flags(args)
    _check_args(args)
    dataset = common.load_image_data(args.values(), args.seed)
    x_train, x_test = dataset.x_train, dataset.x_test
    image_shape = tuple(int(d) for d in x_train.shape[1:])
    if min(image_shape[:2]) < 4:
        raise ValueError(f"--data has images of {image_shape}; the DCGAN needs at least 4x4")
    model = DCGAN(
        image_shape=image_shape,
        latent_dim=args.latent_dim,
        features=args.features,
        linear_output=dataset.normalizer is not None,
    )
    objective = gan_objective(model, generator_kind=args.generator_loss)
    d_rate = args.d_learning_rate
    config = TrainConfig(
        learning_rate=args.learning_rate,
        b1=args.beta1,
        batch_size=args.batch_size,
        epochs=args.epochs,
        optimizer="adam",
        seed=args.seed,
        quiet=args.quiet,
        log_every=args.log_every,
        group_updates=args.updates,
        group_optimizers=None if d_rate is None else {"discriminator": {"learning_rate": d_rate}},
        compiler_options={"xla_backend_optimization_level": 0} if args.fast_compile else None,
        **common.checkpoint_options(flags, args.out, args.epochs),
        **common.train_options(flags),
    )
    out = common.prepare_output_dir(args.out)  # after the checks: bad input writes nothing
    common.write_run_config(
        out,
        args,
        command="gan",
        data_flags=DATA_FLAGS,
        model_flags=MODEL_FLAGS,
        training=config,
        training_flags=TRAINING_FLAGS,
    )
    common.write_normalizer(out, dataset.normalizer)
    fitted = common.fit_in_folder(
        out, flags, fit, objective, x_train, x_test, config, jax.random.key(args.seed)
    )
    state, history = fitted.state, fitted.history

    _figures(args, model, state.variables, dataset, history, out)
    last = history.last()
    metrics: dict[str, Any] = {
        "data": dataset.name,
        "image_shape": list(image_shape),
        "n_train": len(x_train),
        "n_test": len(x_test),
        "n_parameters": {
            group: int(sum(leaf.size for leaf in jax.tree.leaves(params)))
            for group, params in state.params.items()
        },
        "latent_dim": args.latent_dim,
        "features": args.features,
        "updates": args.updates,
        "generator_loss": args.generator_loss,
        "epochs": history.num_epochs,
        **{
            f"final_{split}_{name}": last[f"{split}_{name}"]
            for split in ("train", "test")
            for name in ("discriminator_loss", "generator_loss", "d_real", "d_fake")
        },
        "train_seconds": fitted.train_seconds,
        "compile_seconds": fitted.compile_seconds,
        "environment": common.environment_info(),
    }
    if dataset.name in image_data.GENERATION_DATASETS:
        metrics["generation"] = generate.generation_metrics(
            model, state.variables, dataset, seed=args.seed
        )
    common.write_json(os.path.join(out, runs.METRICS), metrics)
    _print_summary(metrics, out)
    return metrics


def _figures(
    args: Arguments,
    model: DCGAN,
    variables: dict,
    dataset: Dataset,
    history: History,
    out: str,
) -> None:
    """Writes the five figures."""
    normalizer = dataset.normalizer

    def display(images: Any) -> np.ndarray:
        images = np.asarray(images, np.float32)
        return normalizer.inverse_transform(images) if normalizer is not None else images

    shown_train = display(dataset.x_train)
    scale = {"vmin": float(shown_train.min()), "vmax": float(shown_train.max())}
    title = image_data.dataset_title(dataset.name)
    plots.image_grid(
        shown_train[:N_GRID],
        os.path.join(out, "dataset_preview.png"),
        10,
        10,
        title=f"{title}: training images",
    )
    curves = {
        "Discriminator (train)": history["train_discriminator_loss"],
        "Generator (train)": history["train_generator_loss"],
        "Discriminator (test)": history["test_discriminator_loss"],
        "Generator (test)": history["test_generator_loss"],
    }
    plots.loss_curves(curves, os.path.join(out, "loss_curves.png"), title="GAN Training Progress")

    key = jax.random.fold_in(jax.random.key(args.seed), 1)
    samples = generate.sample_prior(key, model, variables, N_GRID, args.latent_dim)
    plots.image_grid(
        display(samples),
        os.path.join(out, "samples.png"),
        10,
        10,
        title="Images generated from z ~ N(0, I)",
        **scale,
    )

    ends = jax.random.normal(jax.random.fold_in(key, 1), (2, args.latent_dim))
    t = np.linspace(0.0, 1.0, N_SHOWN)
    path = generate.slerp(ends[0], ends[1], t)
    plots.image_strip(
        display(generate.decode(model, variables, path)),
        os.path.join(out, "interpolation.png"),
        "Spherical interpolation between two draws of z",
        captions=[f"t = {v:.2f}" for v in t],
        **scale,
    )

    dims = tuple(range(min(args.latent_dim, MAX_TRAVERSAL_DIMS)))
    grid = generate.latent_traversal(model, variables, ends[0], values=TRAVERSAL_VALUES, dims=dims)
    shown = "" if len(dims) == args.latent_dim else f" (first {len(dims)} of {args.latent_dim})"
    plots.traversal_grid(
        display(grid),
        TRAVERSAL_VALUES,
        os.path.join(out, "traversal.png"),
        dims=dims,
        title=f"Traversal of z{shown}: one dimension swept, the others at one draw",
        **scale,
    )


def _print_summary(metrics: dict, out: str) -> None:
    print(
        f"DCGAN on {metrics['data']} ({metrics['n_train']} train / {metrics['n_test']} test "
        f"images of {'x'.join(map(str, metrics['image_shape']))}), z of "
        f"{metrics['latent_dim']}, {metrics['updates']} updates, after epoch {metrics['epochs']}"
    )
    print(f"{'':<20} {'train':>10} {'test':>10}")
    for name in ("discriminator_loss", "generator_loss", "d_real", "d_fake"):
        train, test = metrics[f"final_train_{name}"], metrics[f"final_test_{name}"]
        print(f"{name:<20} {train:>10.4f} {test:>10.4f}")
    if "generation" in metrics:
        score, real = metrics["generation"], metrics["generation"]["real_test_halves"]
        print(
            f"generation ({score['n_generated']} samples; real test images in brackets): "
            f"confident fraction {score['confident_fraction']:.3f} "
            f"[{real['confident_fraction']:.3f}], label entropy {score['label_entropy']:.3f} "
            f"[{real['label_entropy']:.3f}] of log 10 = 2.303, Frechet distance "
            f"{score['frechet_distance']:.4g} [{real['frechet_distance']:.4g}]"
        )
    print(
        f"Training: {metrics['train_seconds']:.2f} s for {metrics['epochs']} epochs "
        f"(+ {metrics['compile_seconds']:.2f} s compile and setup). Outputs in {out}/"
    )
