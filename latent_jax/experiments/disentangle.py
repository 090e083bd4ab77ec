"""Disentanglement on dSprites: train a VAE of the family on procedural dSprites, score it with
every metric of :mod:`latent_jax.disentanglement`.

The data are :class:`latent_jax.DSprites` (rendered on demand; ``--data-dir`` names DeepMind's
``.npz`` to use its images): ``--train-images`` images of the factor grid drawn with the seed's
key for training and ``--test-images`` more for the held-out loss. The model is
disentanglement_lib's convolutional VAE (Locatello et al. 2019, Table 1 of their appendix:
four 4x4 convolutions of stride 2 with 32, 32, 64 and 64 channels and ReLU, a dense layer of
256, the latent heads; the decoder mirrors it with transposed convolutions; a Bernoulli
likelihood on the pixels), built by :class:`latent_jax.models.conv.ConvVAE`; ``--image-size
32`` averages 2x2 pixel blocks and drops one convolution on each side, for CPUs. Any
objective that trains a VAE is taken (``--objective``: ``elbo`` is the β-VAE with
``--beta-max``, ``annealed-vae``, ``beta-tcvae``, ``factorvae``, ``dip-vae-i``, ...), with its
options as flags. ``--seeds K`` trains K runs at once as one vmapped program
(:func:`latent_jax.train.fit_many`).

Each run's representation is its encoder's posterior mean, scored by
:func:`latent_jax.disentanglement.evaluate_all` on freshly sampled factors and images (the
metrics' sample sizes are disentanglement_lib's times ``--metric-scale``), and the total
correlation of a Gaussian fitted to its codes, sampled and mean
(:func:`latent_jax.disentanglement.unsupervised_scores`, keys ``*_sampled`` and ``*_mean``).

Writes into --out the run folder (:mod:`latent_jax.runs`: config.json, history.csv,
checkpoints/) and metrics.json: every metric of the interface (``beta_vae_score``,
``factor_vae_score``, ``mig``, ``sap``, ``dci_disentanglement``, ``dci_completeness``,
``dci_informativeness``, ``modularity``, ``explicitness``) as the median over the runs, with
each run's values (``runs``) and the interquartile range; figures: ``traversal.png`` (each
latent of run 0 swept around an image's code; ``traversal_run{k}.png`` for each further
run), ``mutual_information.png`` (the
factor-latent mutual information of run 0, normalized by each factor's entropy, the matrix of
MIG) and ``data.png`` (training images, each row one shape at growing scale).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from latent_jax import (
    disentanglement,
    distributed,
    generate,
    plots,
    runs,
    schedules,
    validation,
)
from latent_jax.data.dsprites import FACTOR_NAMES, VARIANTS, DSprites
from latent_jax.disentanglement.information import discretized_information
from latent_jax.experiments import common
from latent_jax.models.conv import ConvSpec, ConvVAE
from latent_jax.models.inference import predict
from latent_jax.objectives import LIKELIHOODS
from latent_jax.train import TrainConfig, fit_many

logger = logging.getLogger(__name__)

IMAGE_SIZES = (64, 32)
# disentanglement_lib's encoder widths, the last ones kept when the image is smaller.
ENCODER_WIDTHS = (32, 32, 64, 64)
DENSE_WIDTH = 256
# The β-VAE's β: constant (``--beta-max``, 1 by default: the plain VAE), as ``latent-jax train``.
BETA_DEFAULTS = {
    flag: getattr(schedules.BetaSchedule(), field) for flag, field in common.BETA_FLAGS.items()
}
# The flags config.json keeps under "data" and "model" (the rest: "training", "settings").
DATA_FLAGS = ("data_dir", "variant", "train_images", "test_images", "image_size")
MODEL_FLAGS = ("latent_dim",)
# The metrics.json keys of the interface, in this order.
METRIC_KEYS = (
    "beta_vae_score",
    "factor_vae_score",
    "mig",
    "sap",
    "dci_disentanglement",
    "dci_completeness",
    "dci_informativeness",
    "modularity",
    "explicitness",
)
# The total correlation of a Gaussian fitted to the codes, of the sampled representation (what
# β-TC-VAE and FactorVAE penalize) and of the mean one (Locatello et al. 2019, Section 5.1).
CORRELATION_KEYS = ("gaussian_total_correlation_sampled", "gaussian_total_correlation_mean")


@dataclasses.dataclass(frozen=True)
class Arguments(common.RunArguments):
    """The flags of ``latent-jax disentangle``, typed (:func:`add_arguments` defines them)."""

    objective: str
    likelihood: str
    binarize: bool
    beta_schedule: str
    beta_unit: str
    beta_max: float
    beta_tau: float
    beta_start: float
    beta_warmup: int
    beta_cycles: int
    beta_ratio: float
    beta_total: int | None
    beta_ramp: str
    seeds: int
    epochs: int
    batch_size: int
    learning_rate: float
    latent_dim: int
    image_size: int
    variant: str
    data_dir: str | None
    train_images: int
    test_images: int
    metric_scale: float
    dci_importance: str
    seed: int
    quiet: bool
    out: str
    objective_options: dict = dataclasses.field(default_factory=dict)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers this command's flags."""
    model = parser.add_argument_group("model and objective")
    model.add_argument(
        "--likelihood",
        choices=LIKELIHOODS,
        default="bernoulli",
        help="reconstruction term (default: bernoulli, disentanglement_lib's, on the pixels)",
    )
    common.add_objective_arguments(model, "vae", default="elbo", own=("likelihood",))
    common.add_beta_schedule_arguments(model, BETA_DEFAULTS)
    model.add_argument("--latent-dim", type=int, default=10, help="latent size (default 10)")
    data = parser.add_argument_group("data")
    data.add_argument(
        "--image-size",
        type=int,
        choices=IMAGE_SIZES,
        default=64,
        help="64 (dSprites' own) or 32 (2x2 blocks averaged, for CPUs)",
    )
    data.add_argument("--variant", choices=VARIANTS, default="plain", help="dSprites variant")
    data.add_argument(
        "--data-dir",
        default=None,
        help="DeepMind's dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz (default: rendered)",
    )
    data.add_argument(
        "--train-images", type=int, default=20_000, help="training images (default 20000)"
    )
    data.add_argument(
        "--test-images", type=int, default=1_000, help="held-out images (default 1000)"
    )
    training = parser.add_argument_group("training")
    training.add_argument("--seeds", type=int, default=1, help="runs at once (default 1)")
    training.add_argument("--epochs", type=int, default=30, help="epochs (default 30)")
    training.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    training.add_argument(
        "--learning-rate", type=float, default=5e-4, help="Adam's step (default 0.0005)"
    )
    scoring = parser.add_argument_group("metrics")
    scoring.add_argument(
        "--metric-scale",
        type=float,
        default=1.0,
        help="the metrics' sample sizes as a fraction of disentanglement_lib's (default 1)",
    )
    scoring.add_argument(
        "--dci-importance",
        choices=disentanglement.IMPORTANCES,
        default="gbt",
        help="DCI's importance matrix: gradient-boosted trees (disentanglement_lib's) or lasso",
    )
    parser.add_argument("--seed", type=int, default=0, help="data and root seed (default 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--out", default="runs/disentangle", help="output folder")
    common.add_run_arguments(parser)


def _check_args(args: Arguments) -> Arguments:
    common.require_at_least(
        args, 1, "seeds", "epochs", "batch_size", "latent_dim", "train_images", "test_images"
    )
    if not args.learning_rate > 0:
        raise ValueError(f"--learning-rate must be > 0, got {args.learning_rate}")
    if not args.metric_scale > 0:
        raise ValueError(f"--metric-scale must be > 0, got {args.metric_scale}")
    if args.data_dir is not None and not os.path.isfile(args.data_dir):
        raise ValueError(f"--data-dir must be DeepMind's dSprites .npz file, got {args.data_dir!r}")
    common.check_run_arguments(args)
    return common.check_objective_arguments(args)


def dsprites_vae(image_size: int, latent_dim: int, channels: int = 1) -> ConvVAE:
    """disentanglement_lib's convolutional VAE for square images of ``image_size`` (64 or 32).

    Args:
        image_size: 64 (four stride-2 convolutions down to 4x4) or 32 (three).
        latent_dim: the latent size (disentanglement_lib: 10).
        channels: the images' channels.

    Returns:
        The :class:`~latent_jax.models.conv.ConvVAE`.
    """
    validation.check_choice("image_size", image_size, IMAGE_SIZES)
    depth = int(np.log2(image_size // 4))
    widths = ENCODER_WIDTHS[-depth:]
    encoder = tuple(ConvSpec(w, 4, 2, 1) for w in widths)
    decoder = tuple(ConvSpec(w, 4, 2, 1) for w in reversed(widths[:-1]))
    return ConvVAE(
        image_shape=(image_size, image_size, channels),
        hidden_dim=DENSE_WIDTH,
        latent_dim=latent_dim,
        encoder_convs=encoder,
        decoder_convs=decoder,
        output_conv=(4, 2, 1),
        negative_slope=0.0,
    )


def downsample(images: Any, image_size: int) -> np.ndarray:
    """Images of shape (n, 64, 64, c) at ``image_size``: 2x2 blocks averaged for 32.

    Returns:
        float32 array of shape (n, image_size, image_size, c).
    """
    images = np.asarray(images, np.float32)
    if image_size == images.shape[1]:
        return images
    n, h, _, c = images.shape
    factor = h // image_size
    return images.reshape(n, image_size, factor, image_size, factor, c).mean(axis=(2, 4))


def representation(
    model: ConvVAE, variables: Any, image_size: int, key: Any = None
) -> Callable[[np.ndarray], np.ndarray]:
    """The representation a metric scores: dSprites observations -> the posterior mean.

    Args:
        model: the VAE.
        variables: one run's variables.
        image_size: the model's image size (observations are downsampled to it).
        key: None for the posterior mean; a ``jax.random`` key for the *sampled*
            representation, a draw of q(z|x) (call ``i`` draws with ``fold_in(key, i)``).

    Returns:
        ``fn(observations of shape (n, 64, 64, c)) -> codes of shape (n, latent_dim)``.
    """
    calls = itertools.count()

    def fn(observations: np.ndarray) -> np.ndarray:
        x = jnp.asarray(downsample(observations, image_size))
        # The metrics call this thousands of times on small batches: compiled to run fast.
        if key is None:
            return np.asarray(generate.encode_mean(model, variables, x, repeated=True))
        mean, logvar = predict(model, variables, x, method="encode", repeated=True)
        noise = jax.random.normal(jax.random.fold_in(key, next(calls)), mean.shape)
        return np.asarray(mean + jnp.exp(0.5 * logvar) * noise)

    return fn


def _run_variables(state: Any, index: int) -> dict:
    select = lambda leaf: leaf[index]  # noqa: E731
    return {"params": jax.tree.map(select, state.params), **jax.tree.map(select, state.model_state)}


def correlation_scores(
    model: ConvVAE, variables: Any, data: DSprites, key: Any, *, image_size: int, scale: float
) -> dict[str, float]:
    """:func:`~latent_jax.disentanglement.unsupervised_scores` of a run's sampled and mean codes.

    Args:
        model: the VAE.
        variables: one run's variables.
        data: the dSprites source.
        key: the run's metric key (``fold_in(metric_key(seed), run)``).
        image_size: the model's image size.
        scale: the metrics' sample sizes' scale (``--metric-scale``).

    Returns:
        Every key of ``unsupervised_scores`` with ``_sampled`` and ``_mean`` appended.
    """
    sizes = {"num_train": max(2, round(10_000 * scale))}
    sample_key, data_key = jax.random.split(jax.random.fold_in(key, 7))
    scores = {}
    for kind, draw in (("sampled", sample_key), ("mean", None)):
        fn = representation(model, variables, image_size, key=draw)
        found = disentanglement.unsupervised_scores(fn, data, data_key, **sizes)
        scores.update({f"{name}_{kind}": value for name, value in found.items()})
    return scores


def traversal_file(index: int) -> str:
    """The traversal figure of run ``index``: ``traversal.png`` for run 0 (the interface's
    name), ``traversal_run{k}.png`` for the others."""
    return "traversal.png" if index == 0 else f"traversal_run{index}.png"


def run_keys(seed: int) -> tuple[Any, Any, Any]:
    """The keys of a run of the command with ``--seed``: data, training and metrics (run ``k``
    is scored with ``fold_in(metrics, k)``)."""
    data_key, train_key, metric_key = jax.random.split(jax.random.key(seed), 3)
    return data_key, train_key, metric_key


def summary(values: Sequence[float]) -> dict[str, Any]:
    """The median, interquartile range and values of a metric over the runs."""
    array = np.asarray(values, np.float64)
    q1, median, q3 = np.percentile(array, [25, 50, 75])
    return {"median": float(median), "iqr": [float(q1), float(q3)], "runs": array.tolist()}


def _data_page(data: DSprites, path: str) -> None:
    """Rendered sprites: a row per shape and scale, the orientation growing along each row."""
    shape, scale, orientation = np.meshgrid(
        np.arange(3), np.array([0, 2, 5]), np.linspace(0, 39, 10).round(), indexing="ij"
    )
    factors = np.stack(
        [
            shape.ravel(),
            scale.ravel(),
            orientation.ravel(),
            np.full(shape.size, 16),
            np.full(shape.size, 16),
        ],
        axis=1,
    ).astype(np.int64)
    images = data.sample_observations_from_factors(factors, jax.random.key(0))
    plots.image_grid(
        images,
        path,
        nrows=9,
        ncols=10,
        title="dSprites: square, ellipse, heart at scales 0.5, 0.7, 1; orientation across",
        cell_inches=0.8,
        vmin=0.0,
        vmax=1.0,
    )


def run(args: Arguments) -> dict:
    """Trains, scores and writes the run; returns the metrics written to ``metrics.json``."""
    args = _check_args(args)
    flags = common.RunFlags.from_flags(args)
    if args.seeds > 1:
        distributed.use_cpu_cores()  # spread the runs over the cores (before JAX starts)
    data = DSprites(args.variant, npz=args.data_dir)
    data_key, train_key, metric_key = run_keys(args.seed)
    n_total = args.train_images + args.test_images
    started = time.perf_counter()
    _, images = data.sample(data_key, n_total)
    images = downsample(images, args.image_size)
    x_train, x_test = images[: args.train_images], images[args.train_images :]
    logger.info("rendered %d dSprites in %.1f s", n_total, time.perf_counter() - started)
    model = dsprites_vae(args.image_size, args.latent_dim, data.observation_shape[-1])
    batch = min(args.batch_size, len(x_train))
    steps_per_epoch = -(-len(x_train) // batch)
    beta = common.build_beta_schedule(
        common.beta_schedule_from_flags(args), epochs=args.epochs, steps_per_epoch=steps_per_epoch
    )
    objective = common.objective_from_flags(
        args,
        model,
        beta_schedule=beta,
        beta_unit=args.beta_unit,
        epochs=args.epochs,
    )
    config = TrainConfig(
        learning_rate=args.learning_rate,
        batch_size=batch,
        epochs=args.epochs,
        quiet=args.quiet,
        log_every=0,
        **common.checkpoint_options(flags, args.out, args.epochs),
        **common.train_options(flags),
    )
    out = common.prepare_output_dir(args.out)
    common.write_run_config(
        out,
        args,
        command="disentangle",
        data_flags=DATA_FLAGS,
        model_flags=MODEL_FLAGS,
        training=config,
    )
    keys = jax.random.split(train_key, args.seeds)
    fitted = common.fit_in_folder(out, flags, fit_many, objective, x_train, x_test, config, keys)
    trained = objective.model
    scores, scoring_seconds = [], []
    for index in range(args.seeds):
        variables = _run_variables(fitted.state, index)
        started = time.perf_counter()
        run_key = jax.random.fold_in(metric_key, index)
        score = disentanglement.evaluate_all(
            representation(trained, variables, args.image_size),
            data,
            run_key,
            scale=args.metric_scale,
            options={"dci": {"importance": args.dci_importance}},
        )
        score.update(
            correlation_scores(
                trained,
                variables,
                data,
                run_key,
                image_size=args.image_size,
                scale=args.metric_scale,
            )
        )
        scores.append(score)
        scoring_seconds.append(time.perf_counter() - started)
    first = _run_variables(fitted.state, 0)
    factors, observations = data.sample(jax.random.fold_in(metric_key, 10**6), 10_000)
    codes = representation(trained, first, args.image_size)(observations)
    information, entropy = discretized_information(codes, factors)
    plots.information_matrix(
        information / entropy[None, :],
        FACTOR_NAMES,
        os.path.join(out, "mutual_information.png"),
        title="I(z_j; v_k) / H(v_k), run 0",
    )
    values = np.linspace(-2.0, 2.0, 9)
    for index in range(args.seeds):
        variables = _run_variables(fitted.state, index)
        grid = generate.latent_traversal(
            trained, variables, x=jnp.asarray(x_test[0]), values=values
        )
        plots.traversal_grid(
            np.asarray(generate.decoder_mean(grid, args.likelihood)),
            values,
            os.path.join(out, traversal_file(index)),
            title=f"Latent traversal, run {index} (MIG {scores[index]['mig']:.3f})",
            vmin=0.0,
            vmax=1.0,
        )
    _data_page(data, os.path.join(out, "data.png"))
    history = fitted.history
    payload: dict[str, Any] = {
        name: float(np.median([s[name] for s in scores])) for name in METRIC_KEYS
    }
    payload.update(
        {
            "summary": {
                name: summary([s[name] for s in scores]) for name in METRIC_KEYS + CORRELATION_KEYS
            },
            "runs": scores,
            "objective": args.objective,
            "objective_options": dict(args.objective_options),
            "data": f"dSprites ({data.source}, {args.variant}), {args.train_images} train / "
            f"{args.test_images} test images at {args.image_size}x{args.image_size}",
            "seeds": args.seeds,
            "epochs": args.epochs,
            "final_train_loss": np.asarray(history["train_loss"])[:, -1].tolist(),
            "final_test_loss": np.asarray(history["test_loss"])[:, -1].tolist(),
            "train_seconds": fitted.wall_seconds,
            "metric_seconds": scoring_seconds,
            "metric_scale": args.metric_scale,
            "mutual_information": information.tolist(),
            "environment": common.environment_info(),
        }
    )
    common.write_json(os.path.join(out, runs.METRICS), payload)
    _print_summary(payload, out)
    return payload


def _print_summary(payload: dict, out: str) -> None:
    print(f"{payload['objective']} on {payload['data']}, {payload['seeds']} run(s)")
    for name in METRIC_KEYS + CORRELATION_KEYS:
        entry = payload["summary"][name]
        q1, q3 = entry["iqr"]
        print(f"{name:<34} {entry['median']:.3f}  (IQR {q1:.3f}-{q3:.3f})")
    print(f"Outputs in {out}/")
