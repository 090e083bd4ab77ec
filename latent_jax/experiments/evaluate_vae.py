"""Scores a trained VAE run: IWAE bound, negative log-likelihood, active units, KL per dimension.

``latent-jax evaluate-vae RUN_DIR`` (formerly ``latent-jax evaluate``, still accepted) reads a
run folder of a VAE written by ``latent-jax vae`` or ``latent-jax train`` (its config.json, the
latest checkpoint under checkpoints/), reloads the same data split (and normalization), and
scores the chosen split with β = 1 (:func:`latent_jax.metrics.evaluate_vae`):

* ``elbo``: the ELBO per example (closed-form KL, the reconstruction term sampled);
* ``iwae``: the importance-weighted bound with ``--k`` samples, and ``nll_nats`` = -iwae,
  ``nll_bits_per_dim`` = nll_nats / (D ln 2), with D the number of pixel values;
* ``active_units``: latent dimensions whose posterior mean varies over the data (> 0.01);
* ``kl_per_dim``: the KL term of each latent dimension, averaged over the data.

The numbers are densities of the data as the model sees them (after the run's normalization).
A run trained with the tutorial's summed squared error (``--likelihood sse``) is scored as the
Gaussian of variance 1/2 whose negative log-density that error is, up to a constant. The results
are printed and merged into RUN_DIR/metrics.json under ``evaluation``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from typing import Any

import jax
import numpy as np

from latent_jax import metrics, runs
from latent_jax.data import streaming
from latent_jax.experiments import common
from latent_jax.models.registry import model_entries, model_entry

# The commands whose run folders this one scores.
SCORED_COMMANDS = ("vae", "train")


@dataclasses.dataclass(frozen=True)
class RunData:
    """A run's data as it trained on them: its splits, in the units the model sees, and the
    likelihood its objective scored them with.

    Attributes:
        x_train: the training split, array of shape (n_train, *example_shape).
        x_test: the held-out split, array of shape (n_test, *example_shape).
        likelihood: the objective's likelihood (:data:`latent_jax.objectives.LIKELIHOODS`).
    """

    x_train: np.ndarray
    x_test: np.ndarray
    likelihood: str


@dataclasses.dataclass(frozen=True)
class Arguments(common.CommandArguments):
    """The flags of ``latent-jax evaluate-vae``, typed (:func:`add_arguments` defines them)."""

    run_dir: str | None
    k: int
    split: str
    elbo_samples: int
    batch_size: int
    chunk_size: int
    seed: int
    no_compile_cache: bool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers this command's flags."""
    parser.add_argument(
        "run_dir",
        metavar="RUN_DIR",
        help="the run folder of a VAE, written by latent-jax vae or latent-jax train",
    )
    parser.add_argument("--k", type=int, default=1000, help="IWAE samples (default 1000)")
    parser.add_argument(
        "--split", choices=("test", "train"), default="test", help="which split (default test)"
    )
    parser.add_argument(
        "--elbo-samples", type=int, default=10, help="draws per example of the ELBO (default 10)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=32, help="examples per compiled call (default 32)"
    )
    parser.add_argument(
        "--chunk-size", type=int, default=100, help="IWAE samples decoded at once (default 100)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the samples (default 0)")
    common.add_compile_cache_argument(parser)


def _read_json(path: str) -> dict[str, Any]:
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path} does not exist: is this a run folder of latent-jax vae or train?"
        )
    with open(path, encoding="utf-8") as handle:
        try:
            return json.load(handle)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from error


def run_data(run_dir: str, config: dict[str, Any]) -> RunData:
    """The data of a VAE run from its ``config.json`` contents: the split of ``latent-jax vae``
    (:func:`latent_jax.experiments.common.load_image_data`) or the held-out last rows of
    ``latent-jax train`` (:func:`latent_jax.data.streaming.split_tail`).

    Raises:
        ValueError: for a config of another command or layout (naming the file).
    """
    path = os.path.join(run_dir, runs.CONFIG)
    command = config.get("command")
    data, settings = config.get("data"), config.get("settings")
    complete = isinstance(data, dict) and isinstance(settings, dict)
    if command not in SCORED_COMMANDS or not complete:
        raise ValueError(
            f"{path} is not the config of a VAE run (its command is {command!r}): not a run of "
            "latent-jax vae or latent-jax train"
        )
    likelihood = settings.get("likelihood", "sse")
    try:
        if command == "vae":
            dataset = common.load_image_data(data, config["seed"])
            return RunData(dataset.x_train, dataset.x_test, likelihood)
        size = data.get("image_size")
        train, test = streaming.load_training_split(
            data["data"],
            test_size=data["test_size"],
            max_test_rows=data["max_test_rows"],
            image_size=None if size is None else tuple(size),
            seed=config["seed"],
        )
    except KeyError as error:
        raise ValueError(f"{path} has no {error.args[0]!r}: not a complete run config") from error
    x_train = np.asarray(train.array)
    x_test = np.empty((0, *x_train.shape[1:]), x_train.dtype) if test is None else test
    if model_entry(config["model"]["model"]).architecture != "conv":  # MLPs see flat rows
        x_train, x_test = x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)
    return RunData(x_train, x_test, likelihood)


def load_run(run_dir: str) -> tuple[Any, dict, RunData]:
    """The model, its trained variables and the data of a VAE run.

    The model and variables come from :func:`latent_jax.runs.load_run` (the latest
    checkpoint); the data from the run's config.json (:func:`run_data`).

    Raises:
        FileNotFoundError: for a missing folder, config.json or checkpoint.
        ValueError: for a folder that is not a VAE run of ``latent-jax vae`` or ``train``.
        latent_jax.runs.checkpoint.CheckpointError: for a damaged checkpoint.
    """
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"run folder {run_dir} does not exist")
    config = _read_json(os.path.join(run_dir, runs.CONFIG))
    data = run_data(run_dir, config)
    trained = runs.load_run(run_dir)
    vaes = tuple(entry.cls for entry in model_entries(kind="vae").values())
    if not isinstance(trained.model, vaes):
        raise ValueError(f"{trained.checkpoint} holds a {type(trained.model).__name__}, not a VAE")
    return trained.model, trained.variables, data


def run(args: Arguments) -> dict:
    """Scores the run and returns the evaluation merged into its ``metrics.json``."""
    common.require_at_least(args, 1, "k", "elbo_samples", "batch_size", "chunk_size")
    run_dir = os.fspath(args.run_dir)
    model, variables, data = load_run(run_dir)
    x = data.x_test if args.split == "test" else data.x_train
    if not len(x):
        raise ValueError(f"{run_dir} held out no rows: score --split train")
    common.prepare_output_dir(run_dir)  # its metrics.json is rewritten: one writer at a time
    result = metrics.evaluate_vae(
        model,
        variables,
        x,
        jax.random.key(args.seed),
        num_samples=args.k,
        likelihood=data.likelihood,
        elbo_samples=args.elbo_samples,
        batch_size=args.batch_size,
        chunk_size=args.chunk_size,
    )
    result.update({"split": args.split, "likelihood": data.likelihood, "seed": args.seed})
    metrics_path = os.path.join(run_dir, "metrics.json")
    payload = _read_json(metrics_path) if os.path.exists(metrics_path) else {}
    payload["evaluation"] = result
    common.write_json(metrics_path, payload)
    _print_summary(result, run_dir)
    return result


def _print_summary(result: dict, run_dir: str) -> None:
    scored = "Gaussian, variance 1/2" if result["likelihood"] == "sse" else result["likelihood"]
    print(
        f"{run_dir}: {result['n_examples']} {result['split']} examples of {result['n_features']} "
        f"values, likelihood {scored}, beta = 1"
    )
    print(f"ELBO per example        {result['elbo']:.4f} ± {result['elbo_sem']:.4f} nats")
    print(
        f"IWAE (k={result['num_samples']})".ljust(24)
        + f"{result['iwae']:.4f} ± {result['iwae_sem']:.4f} nats"
    )
    print(
        f"NLL estimate            {result['nll_nats']:.4f} nats, "
        f"{result['nll_bits_per_dim']:.4f} bits/dim"
    )
    print(f"active units            {result['active_units']} of {result['latent_dim']}")
    kl = " ".join(f"{v:.3f}" for v in result["kl_per_dim"])
    print(f"KL per dimension        {kl} (total {result['kl']:.4f})")
    print(f"Merged into {os.path.join(run_dir, 'metrics.json')} under 'evaluation'.")
