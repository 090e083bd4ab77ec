"""Train an autoencoder, VAE or convolutional VAE on your own data, on one or many devices.

Data: a .npy file (memory-mapped), a .csv table, a folder of images, or a data set the
library names (``digits``, ``mnist-5k``, ``mnist``, ...). Of a file or folder, the last
``--test-size`` fraction of the rows (at most ``--max-test-rows``) is held out for evaluation
(shuffle the file beforehand if its rows are ordered); a named data set is split as every
command splits it (shuffled with ``--seed``, or its fixed split). Images are scaled to [0, 1];
the MLP models see them flattened.

Scaling out: ``--devices N`` (or ``--mesh data=N``) trains data-parallel on N devices of a
``jax.sharding`` mesh (on CPU, N host devices are forced); ``--shard-params`` splits the
parameters over them too. Several hosts: run the same command on every host with
``--coordinator HOST:PORT --num-processes P --process-id I``; each process reads only its
own rows, process 0 writes the outputs. ``--stream`` reads batches from disk with a prefetch
thread instead of holding the data in memory (for data larger than RAM).

Writes into --out the run folder (:mod:`latent_jax.runs`; ``latent_jax.load_run(OUT)`` reloads
the model): config.json, metrics.json (final losses, the test split scored after training,
per-epoch history, timing, devices), history.csv (one row per epoch) and checkpoints/
(every ``--checkpoint-every`` epochs; the same command plus ``--resume`` continues an
interrupted run).

Objectives of the VAEs: ``--objective elbo`` (the default; ``loss = reconstruction + KL``) or
``--objective iwae --k K``, the importance-weighted bound of Burda et al. (2016) with K samples
(:func:`latent_jax.objectives.iwae_objective`; ``--gradient-estimator dreg`` for the doubly
reparameterized gradient). ``--likelihood`` chooses the reconstruction term and
``--binarize`` trains on a fresh Bernoulli draw of the [0, 1] inputs at every step (dynamic
binarization, with ``--likelihood bernoulli``; the test rows are binarized with the fixed
evaluation key). The ``--beta-*`` flags schedule β of ``--objective elbo`` (a β-VAE; constant 1
by default), as in ``latent-jax vae`` (:class:`latent_jax.schedules.BetaSchedule`).

Each model trains with the objectives of its kind (the registry's ``kind`` and ``trains``), and
``--objective`` defaults to its kind's: ``elbo`` for the VAEs, ``vq-vae`` for ``--model
vq-vae`` (van den Oord et al. 2017: reconstruction, codebook and commitment terms;
``--codebook-size``, ``--commitment``, ``--ema``). After a VQ-VAE trains, a PixelCNN prior is
fitted to the training images' code grids for ``--prior-epochs`` epochs and kept in the run
folder's sampler.json (:class:`latent_jax.samplers.PixelCNNPrior`; ``--prior-epochs 0`` fits
none): ``generate.sample_prior(key, run.model, run.variables, n,
sampler=samplers.load_sampler(...))`` generates from it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import math
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from latent_jax import distributed, runs, schedules
from latent_jax.data import images as image_data
from latent_jax.experiments import common
from latent_jax.models.registry import model_entries, model_entry

logger = logging.getLogger(__name__)

# The flags config.json keeps under "data" and "model" (the rest: "training", "settings").
DATA_FLAGS = ("data", "image_size", "test_size", "max_test_rows")
MODEL_FLAGS = ("model", "latent_dim", "hidden_dims")
# The kinds of model whose objectives --objective offers, and each kind's objective without
# the flag (an autoencoder trains on the mean squared error whatever it names).
OBJECTIVE_KINDS = ("vae", "vq-vae")
DEFAULT_OBJECTIVES = {"autoencoder": "elbo", "vae": "elbo", "vq-vae": "vq-vae"}
# Epochs of the PixelCNN prior fitted to a VQ-VAE's training codes (--prior-epochs).
PRIOR_EPOCHS = 20


# The plain ELBO: beta = 1 throughout.
BETA_DEFAULTS = {
    flag: getattr(schedules.BetaSchedule(), field) for flag, field in common.BETA_FLAGS.items()
}


def _image_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)[x,](\d+)", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH, got {text!r}")
    return int(match.group(1)), int(match.group(2))


@dataclasses.dataclass(frozen=True)
class Arguments(common.RunArguments):
    """The flags of ``latent-jax train``, typed (:func:`add_arguments` defines them)."""

    data: str | None
    model: str
    latent_dim: int
    hidden_dims: Sequence[int]
    image_size: tuple[int, int] | None
    objective: str | None
    likelihood: str
    binarize: bool
    objective_options: Mapping[str, Any]
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
    epochs: int
    batch_size: int
    learning_rate: float
    test_size: float
    max_test_rows: int
    seed: int
    out: str
    quiet: bool
    devices: int | None
    mesh: str | None
    shard_params: bool
    coordinator: str | None
    num_processes: int | None
    process_id: int | None
    stream: bool
    steps_per_call: int
    prior_epochs: int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers the flags."""
    parser.add_argument(
        "--data",
        default=None,
        help=".npy or .csv file, an image folder, or a data set: "
        + ", ".join(image_data.DATASET_NAMES)
        + " (required)",
    )
    models = model_entries()
    parser.add_argument(
        "--model",
        choices=list(models),
        default="ae",
        help="what to train: " + "; ".join(f"{name}: {e.help}" for name, e in models.items()),
    )
    parser.add_argument("--latent-dim", type=int, default=5, help="latent size")
    parser.add_argument(
        "--hidden-dims",
        type=lambda s: tuple(int(v) for v in s.split(",") if v),
        default=(30, 10),
        help="MLP encoder widths, comma-separated (the decoder mirrors them)",
    )
    parser.add_argument("--image-size", type=_image_size, default=None, help="resize to HxW")
    vae = parser.add_argument_group(
        "objective (of a VAE or the VQ-VAE; default: the model's kind's, elbo or vq-vae)"
    )
    common.add_objective_arguments(vae, trains=OBJECTIVE_KINDS, default=None)
    prior = parser.add_argument_group("VQ-VAE prior (--model vq-vae)")
    prior.add_argument(
        "--prior-epochs",
        type=int,
        default=PRIOR_EPOCHS,
        help="epochs of the PixelCNN prior fitted to the training codes after training, kept "
        "in sampler.json (0: none)",
    )
    beta = parser.add_argument_group(
        "beta schedule of --objective elbo (loss = reconstruction + beta * KL)"
    )
    common.add_beta_schedule_arguments(beta, BETA_DEFAULTS)
    parser.add_argument("--epochs", type=int, default=10, help="training epochs")
    parser.add_argument("--batch-size", type=int, default=128, help="rows per batch")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam's step size")
    parser.add_argument("--test-size", type=float, default=0.2, help="held-out fraction")
    parser.add_argument(
        "--max-test-rows", type=int, default=10000, help="at most this many held-out rows"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of initialization and noise")
    parser.add_argument("--out", default="runs/train", help="output folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    scale = parser.add_argument_group("scaling out")
    scale.add_argument("--devices", type=int, default=None, help="data-parallel over N devices")
    scale.add_argument("--mesh", default=None, help="'data=N' or 'auto' (every device)")
    scale.add_argument(
        "--shard-params", action="store_true", help="split parameters over the devices (FSDP)"
    )
    scale.add_argument("--coordinator", default=None, help="HOST:PORT of process 0")
    scale.add_argument(
        "--num-processes", type=int, default=None, help="processes of a multi-host run"
    )
    scale.add_argument("--process-id", type=int, default=None, help="this process's index")
    scale.add_argument(
        "--stream", action="store_true", help="read batches from disk (data larger than RAM)"
    )
    scale.add_argument("--steps-per-call", type=int, default=16, help="with --stream")
    common.add_run_arguments(parser)


def _check_args(args: Arguments) -> Arguments:
    """The flags checked before JAX starts and before the output folder exists; returns them
    with the objective's options complete."""
    if args.data is None:
        raise ValueError(
            "--data is required: a .npy or .csv file, an image folder, or a data set name"
        )
    named = args.data in image_data.DATASET_NAMES
    if args.image_size is not None and not (named or os.path.isdir(args.data)):
        raise ValueError(
            f"--image-size resizes the images of a folder; --data {args.data!r} is not one "
            "(resize the array before saving it)"
        )
    common.require_at_least(args, 1, "latent_dim", "epochs", "batch_size", "max_test_rows")
    common.require_at_least(args, 1, "steps_per_call")
    common.require_at_least(args, 0, "prior_epochs")
    if args.objective is None:
        args = args.replace(objective=DEFAULT_OBJECTIVES[model_entry(args.model).kind])
    args = common.check_objective_arguments(args, trains=OBJECTIVE_KINDS)
    if model_entry(args.model).kind == "autoencoder" and (
        args.objective != "elbo" or args.binarize
    ):
        vaes = " or ".join(model_entries(kind="vae"))
        raise ValueError(f"--objective {args.objective} and --binarize need --model {vaes}")
    _check_model_kind(args)
    if not math.isfinite(args.learning_rate) or args.learning_rate <= 0:
        raise ValueError(f"--learning-rate must be > 0, got {args.learning_rate}")
    _check_beta_arguments(args)
    common.check_run_arguments(args)
    return args


def _check_model_kind(args: Arguments) -> None:
    """Refuses an objective of another kind of model than ``--model``'s, and the VQ-VAE's
    prior flag on another model."""
    from latent_jax.objectives import available, objective_entry

    kind = model_entry(args.model).kind
    trains = objective_entry(args.objective).trains
    if kind != "autoencoder" and trains != kind:
        models = " or ".join(model_entries(kind=trains))
        raise ValueError(
            f"--objective {args.objective} trains --model {models}, not --model {args.model} "
            f"(its objectives: {', '.join(available(kind))})"
        )
    if kind != "vq-vae" and args.prior_epochs != PRIOR_EPOCHS:
        raise ValueError(
            f"--prior-epochs sets the PixelCNN prior of --model vq-vae; it does nothing for "
            f"--model {args.model}"
        )
    if kind == "vq-vae" and args.prior_epochs and args.num_processes not in (None, 1):
        raise ValueError(
            "--prior-epochs fits the PixelCNN prior in one process: with --num-processes "
            "pass --prior-epochs 0 and fit latent_jax.samplers.PixelCNNPrior afterwards"
        )


def _check_beta_arguments(args: Arguments) -> None:
    """Refuses a β flag away from its default where nothing reads it."""
    from latent_jax.objectives import objective_entry

    common.beta_schedule_from_flags(args)
    changed = [f for f, value in BETA_DEFAULTS.items() if getattr(args, f) != value]
    takes_beta = model_entry(args.model).kind == "vae" and objective_entry(args.objective).accepts(
        "beta_schedule"
    )
    if changed and not takes_beta:
        flag = "--" + changed[0].replace("_", "-")
        raise ValueError(
            f"{flag} sets the beta schedule of --objective elbo on a VAE; it does nothing for "
            f"--model {args.model} --objective {args.objective}"
        )


def _start(args: Arguments) -> tuple[object | None, int | None]:
    """Starts multi-process JAX and forces CPU devices before the backend starts."""
    requested = args.devices
    if args.mesh is not None:
        from_mesh = distributed.parse_mesh(args.mesh)
        if requested is not None and from_mesh is not None and from_mesh != requested:
            raise ValueError(f"--devices {requested} and --mesh {args.mesh} disagree")
        requested = requested if from_mesh is None else from_mesh
        if from_mesh is None and requested is None:
            requested = -1  # every device
    multi = args.coordinator is not None or args.num_processes not in (None, 1)
    if multi:
        if None in (args.coordinator, args.num_processes, args.process_id):
            raise ValueError(
                "--coordinator, --num-processes and --process-id go together (got "
                f"{args.coordinator!r}, {args.num_processes!r}, {args.process_id!r})"
            )
        local = None
        if requested and requested > 0 and requested % args.num_processes == 0:
            local = requested // args.num_processes
        if os.environ.get("JAX_PLATFORMS", "cpu") != "cpu":
            local = None  # only the CPU backend's device count can be forced
        distributed.initialize(
            args.coordinator, args.num_processes, args.process_id, local_devices=local
        )
    elif requested and requested > 1:
        # Only effective on CPU, and only before JAX's backend starts (harmless otherwise);
        # a device count the user forced already wins.
        distributed.use_cpu_cores(requested)
    if requested is None and not multi:
        return None, None
    mesh = distributed.make_mesh(None if requested in (None, -1) else requested)
    return mesh, mesh.size


def _load(args: Arguments) -> tuple[object, np.ndarray | None, tuple[int, ...]]:
    """(train data or stream source, in-memory test rows, example shape)."""
    from latent_jax.data import streaming

    path = args.data
    source, test = streaming.load_training_split(
        path,
        test_size=args.test_size,
        max_test_rows=args.max_test_rows,
        image_size=args.image_size,
        stream=args.stream,
        seed=args.seed,
    )
    shape = source.example_shape
    convolutional = model_entry(args.model).architecture == "conv"
    if not convolutional and len(shape) > 1:
        if args.stream:
            conv = ", ".join(model_entries(architecture="conv"))
            raise ValueError(f"--stream with images needs a convolutional --model ({conv})")
        source = streaming.ArraySource(source.array.reshape(len(source), -1), path)
        test = None if test is None else test.reshape(len(test), -1)
    if convolutional and len(shape) != 3:
        raise ValueError(f"--model {args.model} needs images (n, H, W, C); {path!r} has {shape}")
    return source, test, source.example_shape


def _objective(args: Arguments, shape: tuple[int, ...], n_train: int):
    from latent_jax.objectives import autoencoder_objective
    from latent_jax.train import batches_per_epoch

    entry = model_entry(args.model)
    model = entry.cls.for_data(shape, latent_dim=args.latent_dim, hidden_dims=args.hidden_dims)
    if entry.kind == "autoencoder":
        return autoencoder_objective(model)
    spec = common.beta_schedule_from_flags(args)
    steps = batches_per_epoch(n_train, args.batch_size)
    beta = common.build_beta_schedule(spec, epochs=args.epochs, steps_per_epoch=steps)
    return common.objective_from_flags(
        args, model, beta_schedule=beta, beta_unit=spec.unit, epochs=args.epochs
    )


def fit_prior(args: Arguments, model: Any, variables: Any, source: Any, out: str) -> dict:
    """Fits the PixelCNN prior to the training images' code grids and keeps it in the run
    folder (:data:`latent_jax.samplers.SAMPLER_FILE`).

    Args:
        args: the resolved flags (``--prior-epochs``; the run's batch size, learning rate and
            seed train the prior too).
        model: the trained VQ-VAE.
        variables: its variables.
        source: the training rows (in memory or streamed).
        out: the run folder.

    Returns:
        What ``metrics.json`` records of the prior under ``prior``: its ``name``, ``file``,
        ``fit_seconds``, ``options`` and the fit's ``info`` (``n_grids``, ``uniform_nll``,
        ``final_train_nll``: nats per code grid).
    """
    from latent_jax import samplers
    from latent_jax.data import streaming
    from latent_jax.models.inference import predict

    start = time.perf_counter()
    grids = [
        np.asarray(predict(model, variables, rows, method="encode_indices", batch_size=1024))
        for rows in streaming.iter_chunks(source)
    ]
    prior = samplers.PixelCNNPrior.fit(
        np.concatenate(grids),
        codebook_size=model.codebook_size,
        epochs=args.prior_epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        quiet=args.quiet,
    )
    samplers.save_sampler(os.path.join(out, samplers.SAMPLER_FILE), prior)
    info = {k: v for k, v in prior.info.items() if k != "train_nll"}
    return {
        "name": prior.name,
        "file": samplers.SAMPLER_FILE,
        "fit_seconds": time.perf_counter() - start,
        "options": dict(prior.options),
        "info": {**info, "final_train_nll": prior.info["train_nll"][-1]},
    }


@contextlib.contextmanager
def _no_writers() -> Iterator[list]:
    """No per-epoch files: the processes other than 0 write nothing."""
    yield []


def evaluation_key(seed: int) -> Any:
    """The key of the final scoring of the test rows (``metrics.json``'s ``test``)."""
    import jax

    return jax.random.fold_in(jax.random.key(seed), 1)


def run(args: Arguments) -> dict:
    """Trains and writes the outputs; returns the metrics."""
    flags = common.RunFlags.from_flags(args)
    args = _check_args(args)
    mesh, n_devices = _start(args)
    import jax

    from latent_jax.train import TrainConfig, evaluate, fit, fit_stream

    source, test, shape = _load(args)
    objective = _objective(args, shape, len(source))
    writer = jax.process_index() == 0
    config = TrainConfig(
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        epochs=args.epochs,
        seed=args.seed,
        quiet=args.quiet or not writer,
        **common.checkpoint_options(flags, args.out, args.epochs),
        **common.train_options(flags),
    )
    out = common.prepare_output_dir(args.out) if writer else args.out
    if writer:
        common.write_run_config(
            out,
            args,
            command="train",
            data_flags=DATA_FLAGS,
            model_flags=MODEL_FLAGS,
            training=config,
        )
    key = jax.random.key(args.seed)
    resume = common.resume_options(flags, config.checkpoint_dir)
    start = time.perf_counter()
    with common.history_writers(out, flags) if writer else _no_writers() as callbacks:
        if args.stream:
            state, history = fit_stream(
                objective,
                source,
                test,
                config,
                key,
                mesh=mesh,
                steps_per_call=args.steps_per_call,
                callbacks=callbacks,
                **resume,
            )
        else:
            state, history = fit(
                objective,
                source.array,
                test,
                config,
                key,
                mesh=mesh,
                shard_params=args.shard_params,
                callbacks=callbacks,
                **resume,
            )
    seconds = time.perf_counter() - start
    last = history.last()
    scores = None
    if test is not None and jax.process_count() == 1:
        # Scored against the training set's size, as the training run's test history.
        scores = evaluate(objective, state, test, evaluation_key(args.seed), n_train=len(source))
    metrics = {
        "model": args.model,
        "n_train": len(source),
        "n_test": 0 if test is None else len(test),
        "example_shape": list(shape),
        "devices": n_devices or 1,
        "processes": jax.process_count(),
        "stream": args.stream,
        "train_seconds": seconds,
        "final": {k: v for k, v in last.items() if k not in ("epoch", "epoch_time")},
        # The test rows scored after training (evaluation_key): what the reloaded model gives.
        "test": None if scores is None else {k: float(v) for k, v in scores.items()},
        "history": history.to_dict(),
        "environment": common.environment_info(),
    }
    if writer and model_entry(args.model).kind == "vq-vae" and args.prior_epochs:
        metrics["prior"] = fit_prior(args, objective.model, state.variables, source, out)
    if writer:
        common.record_resumptions(out, config.checkpoint_dir)
        common.write_json(os.path.join(out, runs.METRICS), metrics)
        print(f"\n{'metric':<24}{'value':>14}")
        for name, value in metrics["final"].items():
            print(f"{name:<24}{value:>14.5g}")
        print(f"{'devices':<24}{metrics['devices']:>14d}")
        print(f"{'seconds':<24}{seconds:>14.2f}")
        print(f"outputs in {out}")
    del state
    return metrics
