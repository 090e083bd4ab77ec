"""Denoising autoencoders against the baselines: the noisy input, PCA projection, a plain AE.

For every noise level a denoising autoencoder (DAE) is trained on clean training images
corrupted on the fly, with fresh noise at every step (``objectives.denoising_objective``);
then one fixed noisy copy of the test set is denoised by every method:

* ``noisy``: the noisy input itself (what doing nothing scores);
* ``pca``: projection onto the first q principal axes of the clean training data, q chosen
  per noise level as the one with the lowest error on a noisy validation split;
* ``autoencoder``: the same architecture trained once on clean data (no noise);
* ``dae``: the denoising autoencoder trained at that noise level.

Images are scaled to [0, 1] (8-bit files divided by 255); corrupted images are clipped to
[0, 1] (``--no-clip`` turns that off) and so are all methods' outputs. Tabular data
(``.csv``/``.npy`` of shape (n, features)) is standardized per feature instead, nothing is
clipped, and the PSNR's peak is the range of the clean training data. Metrics: the mean
squared error per pixel (feature) over the test set and the PSNR computed from it,
``10 log10(peak^2 / MSE)`` (peak 1 for images).

Noise: ``--noise`` names the kind whose level ``--levels`` varies (``gaussian``: σ;
``masking``: fraction set to 0; ``salt-pepper``: fraction set to 0 or 1); ``--gaussian-std``,
``--mask-fraction`` and ``--salt-pepper-fraction`` add fixed amounts of the other kinds.

Writes into --out the run folder (:mod:`latent_jax.runs`): config.json, metrics.json,
normalizer.json (tabular data only) and, for the denoising autoencoder of ``--show-level``
(what ``latent_jax.load_run(OUT)`` reloads), history.csv and checkpoints/; the other trained
models in sub-folders of the same layout, ``autoencoder/`` (the clean one) and
``dae-<level>/`` for the other levels (``load_run(OUT/autoencoder)``); and the figures
psnr_vs_noise.png, denoising_examples.png (rows clean / noisy / each method at
``--show-level``) and dae_loss_curves.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import time
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from latent_jax import data as data_lib
from latent_jax import plots, runs, validation
from latent_jax.corruption import Corruption
from latent_jax.data import images as image_data
from latent_jax.experiments import common
from latent_jax.metrics import psnr
from latent_jax.models.factory import CONV_MIN_SIZE, ModelForData, model_for_data
from latent_jax.models.inference import predict
from latent_jax.objectives import autoencoder_objective, denoising_objective
from latent_jax.pca_denoiser import PCADenoiser, mean_squared_error
from latent_jax.train import TrainConfig, fit

logger = logging.getLogger(__name__)

NOISE_KINDS = ("gaussian", "masking", "salt-pepper")
MODELS = ("auto", "mlp", "conv")
METHODS = ("noisy", "pca", "autoencoder", "dae")
METHOD_NAMES = {
    "noisy": "Noisy input",
    "pca": "PCA projection",
    "autoencoder": "Autoencoder (clean)",
    "dae": "Denoising AE",
}
# Short row labels for the example figure.
SHORT_NAMES = {"pca": "PCA", "autoencoder": "AE", "dae": "DAE"}
NOISE_LABELS = {
    "gaussian": "Gaussian noise σ",
    "masking": "masked fraction",
    "salt-pepper": "salt-and-pepper fraction",
}
TABULAR_SUFFIXES = (".csv",)
# Rows denoised per compiled call (bounds memory; the result does not depend on it).
PREDICT_BATCH = 1024
# The flags config.json keeps under "data" and "model" (the rest: "training", "settings").
DATA_FLAGS = ("data", "label_column", "test_size", "val_size")
MODEL_FLAGS = ("model", "hidden_dims", "channels", "latent_dim")


@dataclasses.dataclass(frozen=True)
class Arguments(common.RunArguments):
    """The flags of ``latent-jax denoise``, typed (:func:`add_arguments` defines them)."""

    data: str
    label_column: int | None
    test_size: float
    val_size: float
    noise: str
    levels: Sequence[float]
    show_level: float | None
    gaussian_std: float
    mask_fraction: float
    salt_pepper_fraction: float
    no_clip: bool
    model: str
    hidden_dims: Sequence[int]
    channels: Sequence[int]
    latent_dim: int
    epochs: int
    batch_size: int
    learning_rate: float
    seed: int
    quiet: bool
    out: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers this experiment's flags."""
    data = parser.add_argument_group("data")
    data.add_argument(
        "--data",
        default="digits",
        help=f"a data set ({', '.join(image_data.DATASET_NAMES)}; digits is scikit-learn's "
        "8x8 in [0, 1]), an image folder, a .npy/.npz array of images, or a tabular "
        ".csv/.npy of shape (n, features) (default: digits)",
    )
    data.add_argument(
        "--label-column", type=int, default=None, help="column of a .csv holding labels (dropped)"
    )
    data.add_argument("--test-size", type=float, default=0.2, help="held-out test fraction")
    data.add_argument(
        "--val-size",
        type=float,
        default=0.2,
        help="fraction of the training split kept for validation (PCA's components)",
    )
    noise = parser.add_argument_group("noise")
    noise.add_argument(
        "--noise", choices=NOISE_KINDS, default="gaussian", help="the kind --levels varies"
    )
    noise.add_argument(
        "--levels",
        type=common.float_tuple,
        default=(0.1, 0.25, 0.5, 0.75),
        help="noise levels, comma-separated (default: 0.1,0.25,0.5,0.75)",
    )
    noise.add_argument(
        "--show-level",
        type=float,
        default=None,
        help="the level of the example figure (default: 0.5 if listed, else the last)",
    )
    noise.add_argument("--gaussian-std", type=float, default=0.0, help="fixed extra Gaussian σ")
    noise.add_argument("--mask-fraction", type=float, default=0.0, help="fixed extra masking")
    noise.add_argument(
        "--salt-pepper-fraction", type=float, default=0.0, help="fixed extra salt-and-pepper"
    )
    noise.add_argument("--no-clip", action="store_true", help="do not clip noisy images to [0, 1]")
    model = parser.add_argument_group("model and training")
    model.add_argument(
        "--model",
        choices=MODELS,
        default="auto",
        help="MLP or convolutional autoencoder; auto: conv for images of at least "
        f"{CONV_MIN_SIZE}x{CONV_MIN_SIZE}",
    )
    model.add_argument(
        "--hidden-dims",
        type=common.int_tuple,
        default=(256, 128),
        help="MLP encoder widths (default 256,128)",
    )
    model.add_argument(
        "--channels", type=common.int_tuple, default=(32, 64), help="conv stages' channels"
    )
    model.add_argument("--latent-dim", type=int, default=32, help="code size (default 32)")
    model.add_argument("--epochs", type=int, default=200, help="training epochs")
    model.add_argument("--batch-size", type=int, default=64, help="rows per batch")
    model.add_argument("--learning-rate", type=float, default=1e-3, help="Adam's step size")
    model.add_argument("--seed", type=int, default=0, help="seed of the split, noise and training")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--out", default="runs/denoise", help="output folder")
    common.add_run_arguments(parser)


def _check_args(args: Arguments) -> None:
    common.require_at_least(args, 1, "epochs", "batch_size", "latent_dim")
    validation.check_fraction("--test-size", args.test_size)
    validation.check_fraction("--val-size", args.val_size)
    if not math.isfinite(args.learning_rate) or args.learning_rate <= 0:
        raise ValueError(f"--learning-rate must be > 0, got {args.learning_rate}")
    for level in args.levels:
        if not math.isfinite(level) or level < 0 or (args.noise != "gaussian" and level > 1):
            bound = "in [0, 1]" if args.noise != "gaussian" else ">= 0"
            raise ValueError(f"--levels must be {bound} for --noise {args.noise}, got {level}")
    if not args.hidden_dims or not args.channels:
        raise ValueError("--hidden-dims and --channels need at least one width each")
    if args.show_level is not None and args.show_level not in args.levels:
        raise ValueError(f"--show-level {args.show_level} is not one of --levels {args.levels}")
    # The fixed extras are validated by Corruption itself; build one to fail early.
    _corruption(args, args.levels[0], images=True)
    common.check_run_arguments(args)


def _corruption(args: Arguments, level: float, *, images: bool) -> Corruption:
    amounts = {
        "gaussian_std": args.gaussian_std,
        "mask_fraction": args.mask_fraction,
        "salt_pepper_fraction": args.salt_pepper_fraction,
    }
    field = {
        "gaussian": "gaussian_std",
        "masking": "mask_fraction",
        "salt-pepper": "salt_pepper_fraction",
    }
    amounts[field[args.noise]] = level
    try:
        return Corruption(**amounts, clip=(0.0, 1.0) if images and not args.no_clip else None)
    except (TypeError, ValueError) as error:
        raise ValueError(f"noise settings: {error}") from error


class _Data:
    """The clean splits, whether they are images, the PSNR peak and the normalization."""

    def __init__(
        self,
        name: str,
        train: np.ndarray,
        val: np.ndarray,
        test: np.ndarray,
        images: bool,
        peak: float,
        normalizer: data_lib.Standardizer | None = None,
    ):
        self.name, self.train, self.val, self.test = name, train, val, test
        self.images, self.peak, self.normalizer = images, peak, normalizer


def load_data(args: Arguments) -> _Data:
    """Loads the data, scales it, and splits it into train / validation / test.

    Raises:
        FileNotFoundError: for a missing file or folder.
        ValueError: for unreadable or unsuitable data.
    """
    source = os.fspath(args.data)
    tabular = source.lower().endswith(TABULAR_SUFFIXES) or args.label_column is not None
    if not tabular and source.lower().endswith((".npy", ".npz")):
        array, _ = data_lib.load_array_file(source)
        tabular = array.ndim == 2
    if tabular:
        x, _ = data_lib.load_array_file(source, args.label_column)
        if x.ndim != 2:
            raise ValueError(f"tabular data must have shape (n, features), got {x.shape}")
    else:
        x, _, source = image_data.load_images(source)
        if x.max() > 1.0:  # 8-bit grey levels
            x = x / 255.0
        if x.min() < 0.0 or x.max() > 1.0:
            raise ValueError(
                f"images from {source!r} must be in [0, 1] or 0-255, got values in "
                f"[{x.min():.3g}, {x.max():.3g}]"
            )
    if len(x) < 10:
        raise ValueError(f"data set {source!r} needs at least 10 examples, got {len(x)}")
    split = data_lib.split_dataset(
        x,
        test_size=args.test_size,
        val_size=args.val_size,
        random_state=args.seed,
        normalization="per-feature" if tabular else "none",
        name=source,
    )
    peak = float(split.x_train.max() - split.x_train.min()) if tabular else 1.0
    return _Data(
        source, split.x_train, split.x_val, split.x_test, not tabular, peak, split.normalizer
    )


def _run_model(built: ModelForData, variables: Any, x: np.ndarray) -> np.ndarray:
    """The model's reconstructions of ``x`` (n, *feature_shape), in inference mode."""
    out = predict(built.model, variables, built.inputs(x), batch_size=PREDICT_BATCH)
    return built.outputs(np.asarray(out))


def _build_model(args: Arguments, d: _Data) -> ModelForData:
    shape = d.train.shape[1:]
    if args.model == "conv" and not (d.images and len(shape) == 3):
        raise ValueError(f"--model conv needs images, got examples of shape {shape}")
    return model_for_data(
        shape,
        kind="autoencoder",
        architecture=args.model if d.images else "mlp",
        latent_dim=args.latent_dim,
        hidden_dims=args.hidden_dims,
        channels=args.channels,
    )


def show_level(args: Arguments) -> float:
    """The noise level of the example figure and of the run folder's main model."""
    if args.show_level is not None:
        return args.show_level
    return 0.5 if 0.5 in args.levels else args.levels[-1]


def noisy_splits(
    args: Arguments, d: _Data, index: int
) -> tuple[Corruption, np.ndarray, np.ndarray]:
    """The corruption of level ``args.levels[index]`` and its fixed noisy validation and test
    copies, as every method of the run scores them.

    Returns:
        ``(corruption, noisy_val, noisy_test)``.
    """
    corruption = _corruption(args, args.levels[index], images=d.images)
    level_key = jax.random.fold_in(jax.random.key(args.seed), 1000 + index)
    noisy_val = np.asarray(corruption(jax.random.fold_in(level_key, 0), d.val))
    noisy_test = np.asarray(corruption(jax.random.fold_in(level_key, 1), d.test))
    return corruption, noisy_val, noisy_test


def denoised(built: ModelForData, variables: Any, noisy: np.ndarray, d: _Data) -> np.ndarray:
    """A trained autoencoder's output for ``noisy`` rows, clipped to [0, 1] for images."""
    return _clip(_run_model(built, variables, noisy), d)


def _clip(x: np.ndarray, d: _Data) -> np.ndarray:
    return np.clip(x, 0.0, 1.0) if d.images else x


def run(args: Arguments) -> dict:
    """Runs the experiment and returns the metrics written to ``metrics.json``."""
    _check_args(args)
    d = load_data(args)
    built = _build_model(args, d)
    model = built.model
    key = jax.random.key(args.seed)
    train_in, val_in = built.inputs(d.train), built.inputs(d.val)
    main_level = show_level(args)

    def config(run_dir: str) -> TrainConfig:
        flags = common.RunFlags.from_flags(args)
        return TrainConfig(
            learning_rate=args.learning_rate,
            batch_size=args.batch_size,
            epochs=args.epochs,
            seed=args.seed,
            quiet=args.quiet,
            log_every=0,
            **common.checkpoint_options(flags, run_dir, args.epochs),
            **common.train_options(flags),
        )

    def run_dir(name: str | None) -> str:
        return args.out if name is None else os.path.join(args.out, name)

    def train(name: str | None, objective: Any, fit_key: jax.Array, metrics: dict) -> Any:
        folder = common.prepare_output_dir(run_dir(name))
        train_config = config(folder)
        common.write_run_config(
            folder,
            args,
            command="denoise",
            data_flags=DATA_FLAGS,
            model_flags=MODEL_FLAGS,
            training=train_config,
            **({} if name is None else {"run": name}),
        )
        common.write_normalizer(folder, d.normalizer)
        flags = common.RunFlags.from_flags(args)
        fitted = common.fit_in_folder(
            folder, flags, fit, objective, train_in, val_in, train_config, fit_key
        )
        state, history = fitted.state, fitted.history
        if name is not None:
            common.write_json(os.path.join(folder, runs.METRICS), metrics)
        return state, history

    config(args.out)  # the training flags checked before any folder exists
    out = common.prepare_output_dir(args.out)  # after loading: bad input writes nothing
    start = time.perf_counter()
    ae_state, _ = train("autoencoder", autoencoder_objective(model), key, {"noise": None})
    ae_variables = ae_state.variables
    pca_denoiser = PCADenoiser(d.train)
    results, examples, dae_history = [], {}, None
    for index, level in enumerate(args.levels):
        corruption, noisy_val, noisy_test = noisy_splits(args, d, index)
        # PCA: the number of components that denoises the validation split best.
        q_best = pca_denoiser.best_components(noisy_val, d.val, clip=d.images)
        dae_state, history = train(
            None if level == main_level else f"dae-{level:g}",
            denoising_objective(model, corruption),
            jax.random.fold_in(key, 1 + index),
            {"noise": args.noise, "level": level},
        )
        outputs = {
            "noisy": noisy_test,
            "pca": _clip(pca_denoiser(pca_denoiser.codes(noisy_test), q_best, d.test.shape), d),
            "autoencoder": denoised(built, ae_variables, noisy_test, d),
            "dae": denoised(built, dae_state.variables, noisy_test, d),
        }
        methods = {}
        for name, output in outputs.items():
            mse = mean_squared_error(output, d.test)
            methods[name] = {"mse": mse, "psnr": psnr(mse, d.peak)}
        results.append(
            {
                "level": level,
                "corruption": {
                    "gaussian_std": corruption.gaussian_std,
                    "mask_fraction": corruption.mask_fraction,
                    "salt_pepper_fraction": corruption.salt_pepper_fraction,
                    "clip": list(corruption.clip) if corruption.clip else None,
                },
                "pca_n_components": q_best,
                "methods": methods,
            }
        )
        if level == main_level:
            examples, dae_history = outputs, history
    seconds = time.perf_counter() - start

    levels = list(args.levels)
    psnr_table = {m: [r["methods"][m]["psnr"] for r in results] for m in METHODS}
    mse_table = {m: [r["methods"][m]["mse"] for r in results] for m in METHODS}
    plots.psnr_vs_noise(
        levels,
        {METHOD_NAMES[m]: v for m, v in psnr_table.items()},
        os.path.join(out, "psnr_vs_noise.png"),
        xlabel=NOISE_LABELS[args.noise],
    )
    if d.images:
        plots.denoising_rows(
            d.test,
            examples["noisy"],
            {SHORT_NAMES[m]: examples[m] for m in ("pca", "autoencoder", "dae")},
            os.path.join(out, "denoising_examples.png"),
            title=f"{NOISE_LABELS[args.noise]} = {main_level:g}",
        )
    if dae_history is not None:
        plots.loss_curves(
            {
                "DAE train loss": dae_history["train_loss"],
                "DAE validation loss": dae_history["test_loss"],
            },
            os.path.join(out, "dae_loss_curves.png"),
            log_scale=False,
        )
    metrics = {
        "data": d.name,
        "images": d.images,
        "feature_shape": list(d.train.shape[1:]),
        "n_train": len(d.train),
        "n_val": len(d.val),
        "n_test": len(d.test),
        "model": type(model).__name__,
        "noise": args.noise,
        "levels": levels,
        "show_level": main_level,
        "psnr_peak": d.peak,
        "results": results,
        "psnr": psnr_table,
        "mse": mse_table,
        "seconds": seconds,
        "environment": common.environment_info(),
    }
    common.write_json(os.path.join(out, runs.METRICS), metrics)
    _print_summary(metrics, out)
    return metrics


def _print_summary(metrics: dict, out: str) -> None:
    unit = "pixel" if metrics["images"] else "feature"
    print(
        f"Denoising {metrics['data']} ({metrics['n_train']} train / {metrics['n_test']} test), "
        f"{metrics['noise']} noise; PSNR in dB (MSE per {unit})"
    )
    header = (
        f"{'level':>7} " + " ".join(f"{METHOD_NAMES[m]:>22}" for m in METHODS) + f" {'PCA q':>6}"
    )
    print(header)
    for r in metrics["results"]:
        cells = " ".join(
            f"{r['methods'][m]['psnr']:>10.2f} ({r['methods'][m]['mse']:.4f})" for m in METHODS
        )
        print(f"{r['level']:>7g} {cells} {r['pca_n_components']:>6}")
    print(f"{metrics['seconds']:.1f} s. Outputs in {out}/")
