"""β schedules compared: what warm-up and annealing do to a VAE's likelihood and latent usage.

One MLP VAE (64 -> hidden -> latent, Bernoulli likelihood on the [0, 1] pixels of scikit-learn's
8x8 digits, an 80/20 split) trained with each β schedule; for every schedule ``--seeds`` runs
train at once as one vmapped program (:func:`latent_jax.train.fit_many`). β counts optimizer
steps; T is the run's total number of steps. Schedules:

* ``constant``: β = 1 (the plain ELBO);
* ``linear``: warm-up from 0 to 1 over the first ``--warmup-fraction`` of T, then 1;
* ``monotonic``: the tutorial's form β_max (1 - exp(-t / τ)) with β_max = 1 and τ = T / 10;
* ``monotonic-tutorial``: the same with the tutorial's β_max = 1/30 (its objective is not the
  ELBO; ``monotonic-seed``, its old name, is still accepted);
* ``cyclical``: Fu et al.'s cyclical annealing, M = 4 cycles, ramp ratio R = 0.5, over T.

After training, every run is scored on the test split with β = 1 (:mod:`latent_jax.metrics`):
the ELBO, the IWAE bound with k = ``--iwae-k`` (its negative is the NLL estimate), the active
units (variance of the posterior mean over the data > 0.01) and the KL per latent dimension.

Writes into --out the run folder (:mod:`latent_jax.runs`): config.json, metrics.json (per
schedule: mean and standard deviation over seeds, and the per-seed values), and for the first
schedule of ``--schedules`` history.csv (every metric per epoch, one column per seed) and
checkpoints/ (``latent_jax.load_run(OUT)`` reloads its ``--seeds`` runs, ``n_runs`` = K;
``run.select(k)`` is seed k); every other schedule in a sub-folder of the same layout named
after it (``OUT/linear/``, ...); and the figures beta_schedules.png (β over training) and
schedule_terms.png (KL and reconstruction terms per epoch, mean over seeds with their range).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from latent_jax import distributed, metrics, plots, runs, schedules, validation
from latent_jax._deprecation import deprecated_names, warn_deprecated
from latent_jax.data import load_digits_features, split_dataset
from latent_jax.experiments import common
from latent_jax.models.mlp import VAE
from latent_jax.objectives import vae_objective
from latent_jax.train import TrainConfig, fit_many

logger = logging.getLogger(__name__)

SCHEDULES = ("constant", "linear", "monotonic", "monotonic-tutorial", "cyclical")
# Old schedule names, accepted for one release with a DeprecationWarning: old -> new.
RENAMED_SCHEDULES = {"monotonic-seed": "monotonic-tutorial"}
TUTORIAL_BETA_MAX = 1.0 / 30.0
# The flags config.json keeps under "data" and "model" (the rest: "training", "settings").
DATA_FLAGS = ("test_size",)
MODEL_FLAGS = ("hidden_dims", "latent_dim")


def _current_name(name: str) -> str:
    """A schedule's name, its old name renamed with a warning."""
    if name in RENAMED_SCHEDULES:
        warn_deprecated(f"the schedule name {name!r}", repr(RENAMED_SCHEDULES[name]))
        return RENAMED_SCHEDULES[name]
    return name


def _names(text: str) -> list[str]:
    names = [_current_name(v.strip()) for v in text.split(",") if v.strip()]
    unknown = [n for n in names if n not in SCHEDULES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"expected names among {SCHEDULES}, got {text!r}")
    return names


def _widths(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected widths like 256,128, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive widths, got {text!r}")
    return values


@dataclasses.dataclass(frozen=True)
class Arguments(common.RunArguments):
    """The flags of ``latent-jax beta-study``, typed (:func:`add_arguments` defines them)."""

    schedules: Sequence[str]
    seeds: int
    epochs: int
    batch_size: int
    learning_rate: float
    hidden_dims: Sequence[int]
    latent_dim: int
    warmup_fraction: float
    iwae_k: int
    elbo_samples: int
    test_size: float
    seed: int
    quiet: bool
    out: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers this experiment's flags."""
    parser.add_argument(
        "--schedules", type=_names, default=list(SCHEDULES), help="comma-separated subset"
    )
    parser.add_argument("--seeds", type=int, default=3, help="runs per schedule (default 3)")
    parser.add_argument("--epochs", type=int, default=200, help="epochs per run (default 200)")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size (default 128)")
    parser.add_argument(
        "--learning-rate", type=float, default=1e-3, help="Adam's step (default 0.001)"
    )
    parser.add_argument(
        "--hidden-dims", type=_widths, default=(256, 128), help="encoder widths (256,128)"
    )
    parser.add_argument("--latent-dim", type=int, default=16, help="latent size (default 16)")
    parser.add_argument(
        "--warmup-fraction",
        type=float,
        default=0.25,
        help="linear warm-up length as a fraction of the run (default 0.25)",
    )
    parser.add_argument("--iwae-k", type=int, default=1000, help="IWAE samples (default 1000)")
    parser.add_argument(
        "--elbo-samples", type=int, default=10, help="draws per example of the test ELBO (10)"
    )
    parser.add_argument("--test-size", type=float, default=0.2, help="held-out fraction (0.2)")
    parser.add_argument("--seed", type=int, default=0, help="split and root seed (default 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--out", default="runs/beta-study", help="output folder")
    common.add_run_arguments(parser)


def _check_args(args: Arguments) -> None:
    common.require_at_least(
        args, 1, "seeds", "epochs", "batch_size", "latent_dim", "iwae_k", "elbo_samples"
    )
    if not args.learning_rate > 0:
        raise ValueError(f"--learning-rate must be > 0, got {args.learning_rate}")
    if not 0.0 < args.warmup_fraction <= 1.0:
        raise ValueError(f"--warmup-fraction must be in (0, 1], got {args.warmup_fraction}")
    validation.check_fraction("--test-size", args.test_size)
    common.check_run_arguments(args)


def study_schedule(name: str, total_steps: int, warmup_fraction: float = 0.25) -> Any:
    """The study's β schedule ``name`` (one of :data:`SCHEDULES`) over a run of
    ``total_steps`` optimizer steps, its parameters set from the run's length.

    For a schedule with explicit parameters use :func:`latent_jax.schedules.make_schedule`.

    Args:
        name: one of :data:`SCHEDULES`.
        total_steps: the run's optimizer steps, T.
        warmup_fraction: the ``linear`` warm-up's length as a fraction of T.

    Returns:
        ``schedule(step) -> beta``.

    Raises:
        ValueError: for an unknown name.
    """
    if name == "constant":
        return schedules.constant(1.0)
    if name == "linear":
        return schedules.linear(0.0, 1.0, max(1, round(warmup_fraction * total_steps)))
    name = _current_name(name)
    if name in ("monotonic", "monotonic-tutorial"):
        beta_max = 1.0 if name == "monotonic" else TUTORIAL_BETA_MAX
        return schedules.monotonic(beta_max, max(total_steps / 10.0, 1.0))
    if name == "cyclical":
        return schedules.cyclical(total_steps, n_cycles=min(4, total_steps), ratio=0.5)
    raise ValueError(f"schedule must be one of {SCHEDULES}, got {name!r}")


def load_split(test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Digits as (n, 64) rows in [0, 1], split into train and test, stratified by digit.

    Args:
        test_size: the held-out fraction, in (0, 1).
        seed: the split's seed.

    Returns:
        ``(x_train, x_test)``: float32 arrays of shape (n_train, 64) and (n_test, 64).
    """
    x, labels = load_digits_features()
    split = split_dataset(
        x, labels, test_size=test_size, stratify=True, random_state=seed, name="digits"
    )
    return split.x_train, split.x_test


__getattr__ = deprecated_names(
    __name__,
    {
        "make_schedule": (
            "latent_jax.experiments.beta_schedules.study_schedule",
            lambda: study_schedule,
        ),
        "SEED_BETA_MAX": (
            "latent_jax.experiments.beta_schedules.TUTORIAL_BETA_MAX",
            lambda: TUTORIAL_BETA_MAX,
        ),
    },
)


def evaluation_key(seed: int, run_index: int) -> jax.Array:
    """The key of run ``run_index``'s test scores (ELBO, IWAE) in ``metrics.json``."""
    return jax.random.fold_in(jax.random.key(seed), 2 + run_index)


def _summary(values: list[float]) -> dict[str, Any]:
    array = np.asarray(values, np.float64)
    return {"mean": float(np.mean(array)), "std": float(np.std(array)), "runs": array.tolist()}


def run(args: Arguments) -> dict:
    """Runs the study and returns the metrics written to ``metrics.json``."""
    _check_args(args)
    distributed.use_cpu_cores()  # spread the runs over the cores (before JAX's backend starts)
    x_train, x_test = load_split(args.test_size, args.seed)
    model = VAE(
        input_dim=x_train.shape[1], hidden_dims=args.hidden_dims, latent_dim=args.latent_dim
    )
    batch = min(args.batch_size, len(x_train))
    steps_per_epoch = -(-len(x_train) // batch)
    total_steps = args.epochs * steps_per_epoch

    def config(run_dir: str) -> TrainConfig:
        flags = common.RunFlags.from_flags(args)
        return TrainConfig(
            learning_rate=args.learning_rate,
            batch_size=batch,
            epochs=args.epochs,
            optimizer="adam",
            quiet=args.quiet,
            log_every=0,
            **common.checkpoint_options(flags, run_dir, args.epochs),
            **common.train_options(flags),
        )

    config(args.out)  # the training flags checked before any folder exists
    out = common.prepare_output_dir(args.out)
    root = jax.random.key(args.seed)
    results: dict[str, Any] = {}
    histories: dict[str, Any] = {}
    betas: dict[str, np.ndarray] = {}
    for index, name in enumerate(args.schedules):
        # The first schedule's runs are the folder's own; every other one gets a sub-folder.
        run_dir = out if index == 0 else common.prepare_output_dir(os.path.join(out, name))
        run_config = config(run_dir)
        common.write_run_config(
            run_dir,
            args,
            command="beta-study",
            data_flags=DATA_FLAGS,
            model_flags=MODEL_FLAGS,
            training=run_config,
            **({} if index == 0 else {"run": name}),
        )
        schedule = study_schedule(name, total_steps, args.warmup_fraction)
        betas[name] = np.asarray(schedule(np.arange(total_steps)))
        objective = vae_objective(model, schedule, likelihood="bernoulli", beta_unit="step")
        # The same K keys for every schedule: the schedules start from the same initializations.
        keys = jax.random.split(jax.random.fold_in(root, 1), args.seeds)
        flags = common.RunFlags.from_flags(args)
        fitted = common.fit_in_folder(
            run_dir, flags, fit_many, objective, x_train, x_test, run_config, keys
        )
        state, history = fitted.state, fitted.history
        train_seconds = fitted.wall_seconds
        scores = []
        for run_index in range(args.seeds):
            params = jax.tree.map(lambda leaf, i=run_index: leaf[i], state.params)
            scores.append(
                metrics.evaluate_vae(
                    model,
                    {"params": params},
                    x_test,
                    evaluation_key(args.seed, run_index),
                    num_samples=args.iwae_k,
                    likelihood="bernoulli",
                    elbo_samples=args.elbo_samples,
                )
            )
        results[name] = {
            "test_elbo": _summary([s["elbo"] for s in scores]),
            "test_iwae": _summary([s["iwae"] for s in scores]),
            "test_nll_nats": _summary([s["nll_nats"] for s in scores]),
            "active_units": _summary([s["active_units"] for s in scores]),
            "kl": _summary([s["kl"] for s in scores]),
            "kl_per_dim": np.mean([s["kl_per_dim"] for s in scores], axis=0).tolist(),
            "final_train_reconstruction": _summary(history["train_reconstruction"][:, -1]),
            "final_train_kl": _summary(history["train_kl"][:, -1]),
            "final_beta": float(betas[name][-1]),
            "train_seconds": train_seconds,
        }
        if index > 0:
            common.write_json(os.path.join(run_dir, runs.METRICS), {name: results[name]})
        histories[name] = history.to_dict()
    payload = {
        "data": "digits (scikit-learn, 8x8, pixels / 16 in [0, 1])",
        "likelihood": "bernoulli",
        "n_train": len(x_train),
        "n_test": len(x_test),
        "latent_dim": args.latent_dim,
        "hidden_dims": list(args.hidden_dims),
        "seeds": args.seeds,
        "epochs": args.epochs,
        "total_steps": total_steps,
        "iwae_k": args.iwae_k,
        "schedules": results,
        "environment": common.environment_info(),
    }
    common.write_json(os.path.join(out, runs.METRICS), payload)
    plots.beta_over_training(betas, os.path.join(out, "beta_schedules.png"))
    plots.terms_per_schedule(
        {n: np.asarray(h["train_kl"]) for n, h in histories.items()},
        {n: np.asarray(h["train_reconstruction"]) for n, h in histories.items()},
        os.path.join(out, "schedule_terms.png"),
    )
    _print_summary(payload, out)
    return payload


def _print_summary(payload: dict, out: str) -> None:
    print(
        f"VAE on digits ({payload['n_train']} train / {payload['n_test']} test, Bernoulli), "
        f"latent {payload['latent_dim']}, {payload['epochs']} epochs, {payload['seeds']} seeds; "
        f"test set, beta = 1, mean ± std over seeds"
    )
    k = payload["iwae_k"]
    print(
        f"{'schedule':<15} {'ELBO':>16} {f'NLL (IWAE k={k})':>18} {'active units':>14} {'KL':>14}"
    )
    for name, r in payload["schedules"].items():

        def cell(entry: dict, width: int, digits: int = 2) -> str:
            return f"{entry['mean']:.{digits}f} ± {entry['std']:.{digits}f}".rjust(width)

        print(
            f"{name:<15} {cell(r['test_elbo'], 16)} {cell(r['test_nll_nats'], 18)} "
            f"{cell(r['active_units'], 14, 1)} {cell(r['kl'], 14)}"
        )
    print(f"Outputs in {out}/")
