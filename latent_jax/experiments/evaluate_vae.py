"""Scores a trained VAE run: IWAE bound, negative log-likelihood, active units, KL per dimension.

``latent-jax evaluate-vae RUN_DIR`` (formerly ``latent-jax evaluate``, still accepted) reads a
run folder written by ``latent-jax vae`` (its config.json, the latest checkpoint under
checkpoints/), reloads the same data split and normalization, and scores the chosen split
with β = 1 (:func:`latent_jax.metrics.evaluate_vae`):

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
import json
import os
from typing import Any

import jax

from latent_jax import metrics, runs
from latent_jax.experiments import common, vae_faces
from latent_jax.models.conv import ConvVAE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers this command's flags."""
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by latent-jax vae")
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
        raise FileNotFoundError(f"{path} does not exist: is this a run folder of latent-jax vae?")
    with open(path, encoding="utf-8") as handle:
        try:
            return json.load(handle)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from error


def run_arguments(run_dir: str, config: dict[str, Any]) -> argparse.Namespace:
    """The resolved flags of a ``latent-jax vae`` run from its ``config.json`` contents.

    Raises:
        ValueError: for a config of another command or layout (naming the file).
    """
    path = os.path.join(run_dir, runs.CONFIG)
    if config.get("command") != "vae" or not isinstance(config.get("model"), dict):
        raise ValueError(
            f"{path} is not the config of a 'latent-jax vae' run (its command is "
            f"{config.get('command')!r}): not a run of latent-jax vae"
        )
    parser = argparse.ArgumentParser(add_help=False)
    vae_faces.add_arguments(parser)
    try:
        defaults = common.config_defaults(config, parser, "vae", vae_faces.TRAINING_FLAGS)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
    parser.set_defaults(**defaults)
    return vae_faces.resolve_arguments(parser.parse_args([]))


def load_run(run_dir: str) -> tuple[ConvVAE, dict, argparse.Namespace]:
    """The model, its trained variables and the resolved flags of a ``latent-jax vae`` run.

    The model and variables come from :func:`latent_jax.runs.load_run` (the latest
    checkpoint); the flags from the run's config.json (:func:`run_arguments`).

    Raises:
        FileNotFoundError: for a missing folder, config.json or checkpoint.
        ValueError: for a folder that is not a run of ``latent-jax vae``.
        latent_jax.checkpoint.CheckpointError: for a damaged checkpoint.
    """
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"run folder {run_dir} does not exist")
    args = run_arguments(run_dir, _read_json(os.path.join(run_dir, runs.CONFIG)))
    trained = runs.load_run(run_dir)
    if not isinstance(trained.model, ConvVAE):
        raise ValueError(
            f"{trained.checkpoint} holds a {type(trained.model).__name__}, not the ConvVAE of "
            "latent-jax vae"
        )
    return trained.model, trained.variables, args


def run(args: argparse.Namespace) -> dict:
    """Scores the run and returns the evaluation merged into its ``metrics.json``."""
    common.require_at_least(args, 1, "k", "elbo_samples", "batch_size", "chunk_size")
    run_dir = os.fspath(args.run_dir)
    model, variables, run_args = load_run(run_dir)
    common.prepare_output_dir(run_dir)  # its metrics.json is rewritten: one writer at a time
    dataset = vae_faces.load_data(run_args)
    x = dataset.x_test if args.split == "test" else dataset.x_train
    result = metrics.evaluate_vae(
        model,
        variables,
        x,
        jax.random.key(args.seed),
        num_samples=args.k,
        likelihood=run_args.likelihood,
        elbo_samples=args.elbo_samples,
        batch_size=args.batch_size,
        chunk_size=args.chunk_size,
    )
    result.update({"split": args.split, "likelihood": run_args.likelihood, "seed": args.seed})
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
