"""The linear VAE against probabilistic PCA: a VAE checked against an exact answer.

A VAE with a linear decoder ``x = W z + mu + eps`` (``eps ~ N(0, s2 I)``, ``s2`` learned) and a
linear Gaussian encoder has the maximum-likelihood PPCA solution as its global optimum, where
the ELBO equals the exact log-likelihood (Lucas et al., NeurIPS 2019). For two datasets this
command fits PPCA in closed form (:func:`latent_jax.linear.fit_ppca`), trains
:class:`~latent_jax.models.linear.LinearVAE` with the library's VAE objective (sampled ELBO,
full-batch Adam in one run whose learning rate is halved in stages by an optax schedule), and
compares, per sample:

* the exact PPCA maximum log-likelihood and the VAE's ELBO (closed form, no sampling noise);
* the IWAE bound for k = 1, 10, 100, 1000 (:func:`latent_jax.metrics.iwae_bound`), and its
  gain over the exact ELBO, example by example, with the standard error of that gain;
* the principal angles between the decoder's column space and the PPCA subspace.

Datasets: ``synthetic``, drawn from a known PPCA model (a random orthonormal basis scaled to
the variances ``--signal-variances`` plus isotropic noise ``--noise-variance``), and ``digits``,
scikit-learn's 8x8 digits standardized per pixel (constant pixels stay 0).

Writes into --out the run folder (:mod:`latent_jax.runs`): config.json, metrics.json (the
synthetic results at the top level, the digits results under ``digits``), and for the first
dataset's linear VAE (what ``latent_jax.load_run(OUT)`` reloads) history.csv and
checkpoints/; the other dataset's in a sub-folder of the same layout (``digits/``, with its
normalizer.json); and training_curves.png (minus the training ELBO per step against the
PPCA optimum).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.linalg

from latent_jax import linear as pca
from latent_jax import metrics, plots, runs
from latent_jax.data import Standardizer, load_digits_features
from latent_jax.experiments import common
from latent_jax.models.linear import LinearVAE, decoder_weight, exact_elbo
from latent_jax.objectives import vae_objective
from latent_jax.train import TrainConfig, fit
from latent_jax.train.config import LR_SCHEDULES

logger = logging.getLogger(__name__)

DATASETS = ("synthetic", "digits")
# --lr-schedule: "halving" (the default) halves the rate in stages; the others are
# TrainConfig's schedules over the run's steps.
SCHEDULES = ("halving", *LR_SCHEDULES)
# The flags config.json keeps under "data" and "model"; "training" holds the TrainConfig,
# of which only these fields stand for flags (its epochs are the total steps of every stage,
# its batch the whole data set); "settings" every other flag.
DATA_FLAGS = (
    "datasets",
    "n_samples",
    "input_dim",
    "signal_variances",
    "noise_variance",
    "digits_latent_dim",
)
MODEL_FLAGS: tuple[str, ...] = ()
TRAINING_FLAGS = {"learning_rate": "learning_rate", "clip_norm": "clip_norm"}


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 1,10,100, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _float_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 8,5,3, got {text!r}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    return values


def _names(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"expected names among {DATASETS}, got {text!r}")
    return names


@dataclasses.dataclass(frozen=True)
class Arguments(common.RunArguments):
    """The flags of ``latent-jax linear-vae``, typed (:func:`add_arguments` defines them)."""

    datasets: Sequence[str]
    n_samples: int
    input_dim: int
    signal_variances: Sequence[float]
    noise_variance: float
    digits_latent_dim: int
    learning_rate: float
    epochs: int
    decay_stages: int
    decay_epochs: int
    iwae_k: Sequence[int]
    elbo_samples: int
    seed: int
    quiet: bool
    out: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers this experiment's flags."""
    data = parser.add_argument_group("data")
    data.add_argument(
        "--datasets", type=_names, default=list(DATASETS), help="comma-separated subset"
    )
    data.add_argument("--n-samples", type=int, default=2000, help="synthetic rows (default 2000)")
    data.add_argument("--input-dim", type=int, default=20, help="synthetic D (default 20)")
    data.add_argument(
        "--signal-variances",
        type=_float_list,
        default=[8.0, 5.0, 3.0, 1.5],
        help="synthetic variances of the latent directions; their count is Q (default 8,5,3,1.5)",
    )
    data.add_argument(
        "--noise-variance", type=float, default=1.0, help="synthetic sigma^2 (default 1)"
    )
    data.add_argument(
        "--digits-latent-dim", type=int, default=10, help="Q for the digits (default 10)"
    )
    train = parser.add_argument_group("training (full batch Adam)")
    train.add_argument(
        "--learning-rate", type=float, default=1e-2, help="first stage's step (default 0.01)"
    )
    train.add_argument(
        "--epochs", type=int, default=2000, help="full-batch steps of the first stage (2000)"
    )
    train.add_argument(
        "--decay-stages", type=int, default=6, help="further stages, each at half the step (6)"
    )
    train.add_argument(
        "--decay-epochs", type=int, default=300, help="steps of each decay stage (default 300)"
    )
    common.add_run_arguments(
        parser,
        lr_schedules=SCHEDULES,
        lr_schedule_help="halving: --learning-rate for --epochs steps, then halved every "
        "--decay-epochs steps, --decay-stages times (one optax piecewise-constant schedule); "
        "constant, cosine, warmup-cosine, exponential: TrainConfig's schedules over all "
        "epochs + decay-stages x decay-epochs steps",
    )
    evaluation = parser.add_argument_group("evaluation")
    evaluation.add_argument(
        "--iwae-k", type=_int_list, default=[1, 10, 100, 1000], help="k values (1,10,100,1000)"
    )
    evaluation.add_argument(
        "--elbo-samples",
        type=int,
        default=100,
        help="draws per example of the sampled ELBO check (default 100)",
    )
    parser.add_argument("--seed", type=int, default=0, help="data and training seed (default 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--out", default="runs/linear-vae", help="output folder")


def _check_args(args: Arguments) -> None:
    common.require_at_least(
        args, 1, "n_samples", "input_dim", "digits_latent_dim", "epochs", "elbo_samples"
    )
    common.require_at_least(args, 0, "decay_stages", "decay_epochs")
    if not args.learning_rate > 0:
        raise ValueError(f"--learning-rate must be > 0, got {args.learning_rate}")
    if not args.noise_variance > 0:
        raise ValueError(f"--noise-variance must be > 0, got {args.noise_variance}")
    if len(args.signal_variances) >= args.input_dim:
        raise ValueError(
            f"--signal-variances needs fewer than --input-dim={args.input_dim} values, got "
            f"{len(args.signal_variances)}"
        )
    if args.n_samples <= args.input_dim:
        raise ValueError(f"--n-samples must exceed --input-dim, got {args.n_samples}")
    common.check_run_arguments(args)


def synthetic_ppca_data(
    key: jax.Array,
    n_samples: int,
    input_dim: int,
    signal_variances: list[float],
    noise_variance: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Rows drawn from a known PPCA model ``x = W z + mu + eps``.

    ``W = U diag(sqrt(signal_variances))`` with ``U`` a random orthonormal basis, ``mu`` standard
    normal, ``eps ~ N(0, noise_variance I)``.

    Returns:
        ``(x, weight)``: float32 array of shape (n_samples, input_dim) and the true ``W`` of
        shape (input_dim, Q).
    """
    basis_key, mean_key, z_key, eps_key = jax.random.split(key, 4)
    q = len(signal_variances)
    basis, _ = jnp.linalg.qr(jax.random.normal(basis_key, (input_dim, q)))
    weight = basis * jnp.sqrt(jnp.asarray(signal_variances))
    mean = jax.random.normal(mean_key, (input_dim,))
    z = jax.random.normal(z_key, (n_samples, q))
    eps = jax.random.normal(eps_key, (n_samples, input_dim))
    x = z @ weight.T + mean + jnp.sqrt(noise_variance) * eps
    return np.asarray(x, np.float32), np.asarray(weight)


def standardized_digits() -> np.ndarray:
    """scikit-learn's digits as (1797, 64) rows, standardized per pixel (constant pixels 0)."""
    return digits_and_normalizer()[0]


def digits_and_normalizer() -> tuple[np.ndarray, Standardizer]:
    """:func:`standardized_digits` and the per-pixel :class:`Standardizer` that made them."""
    x, _ = load_digits_features()
    normalizer = Standardizer.fit(x)
    return normalizer.transform(x), normalizer


def dataset(
    args: Arguments, index: int, name: str
) -> tuple[np.ndarray, int, np.ndarray | None, Standardizer | None]:
    """Dataset ``name`` (the ``index``-th of ``--datasets``) as the run uses it.

    Returns:
        ``(x, latent_dim, true_weight, normalizer)``: the rows, Q, the true PPCA weight of
        the synthetic data (else ``None``) and the digits' standardization (else ``None``).
    """
    data_key = jax.random.fold_in(jax.random.key(args.seed), 100 + index)
    if name == "synthetic":
        x, weight = synthetic_ppca_data(
            data_key, args.n_samples, args.input_dim, args.signal_variances, args.noise_variance
        )
        return x, len(args.signal_variances), weight, None
    x, normalizer = digits_and_normalizer()
    return x, args.digits_latent_dim, None, normalizer


def halving_schedule(
    learning_rate: float, epochs: int, decay_stages: int, decay_epochs: int
) -> optax.Schedule:
    """``learning_rate`` for ``epochs`` steps, then halved every ``decay_epochs`` steps,
    ``decay_stages`` times: ``optax.piecewise_constant_schedule``.

    Step ``t`` (0-based) of stage ``s >= 1``, ``epochs + (s - 1) decay_epochs <= t <
    epochs + s decay_epochs``, has the rate ``learning_rate / 2**s``.
    """
    boundaries = {}
    if decay_epochs > 0:
        boundaries = {epochs + s * decay_epochs: 0.5 for s in range(decay_stages)}
    return optax.piecewise_constant_schedule(learning_rate, boundaries)


def max_principal_angle_degrees(a: Any, b: Any) -> float:
    """The largest principal angle between the column spaces of ``a`` and ``b``, in degrees."""
    angles = scipy.linalg.subspace_angles(np.asarray(a, np.float64), np.asarray(b, np.float64))
    return float(np.degrees(np.max(angles)))


def train_linear_vae(
    x: np.ndarray,
    latent_dim: int,
    key: jax.Array,
    *,
    learning_rate: float,
    epochs: int,
    decay_stages: int,
    decay_epochs: int,
    lr_schedule: str = "halving",
    clip_norm: float | None = None,
    quiet: bool = True,
    checkpoint_dir: str | None = None,
    callbacks: Any = (),
    checkpoint_every: int = 0,
    resume: str | None = None,
    allow_changes: tuple[str, ...] = (),
) -> tuple[LinearVAE, dict, np.ndarray]:
    """Trains a :class:`LinearVAE` on its sampled ELBO with full-batch Adam, in one run.

    The run has ``epochs + decay_stages * decay_epochs`` full-batch steps. With
    ``lr_schedule="halving"`` the learning rate is ``learning_rate`` for the first ``epochs``
    steps and is then halved every ``decay_epochs`` steps (:func:`halving_schedule`; one Adam
    state throughout); any other name is a :class:`~latent_jax.train.TrainConfig` schedule
    over all the steps. ``checkpoint_every``, ``resume`` and ``allow_changes`` are
    :class:`~latent_jax.train.TrainConfig`'s and :func:`~latent_jax.train.fit`'s.

    Returns:
        ``(model, variables, train_loss)``: the trained variables and the training loss (minus
        the sampled ELBO) of every step.
    """
    model = LinearVAE(input_dim=int(x.shape[1]), latent_dim=latent_dim)
    objective = vae_objective(model, likelihood="gaussian", obs_logvar="learned")
    config = linear_vae_config(
        len(x),
        learning_rate=learning_rate,
        epochs=epochs,
        decay_stages=decay_stages,
        decay_epochs=decay_epochs,
        lr_schedule=lr_schedule,
        clip_norm=clip_norm,
        quiet=quiet,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=checkpoint_every,
    )
    state, history = fit(
        objective,
        x,
        None,
        config,
        jax.random.fold_in(key, 0),
        callbacks=callbacks,
        resume=resume,
        allow_changes=allow_changes,
    )
    return model, state.variables, np.asarray(history["train_loss"])


def linear_vae_config(
    n_rows: int,
    *,
    learning_rate: float,
    epochs: int,
    decay_stages: int,
    decay_epochs: int,
    lr_schedule: str = "halving",
    clip_norm: float | None = None,
    quiet: bool = True,
    checkpoint_dir: str | None = None,
    checkpoint_every: int = 0,
) -> TrainConfig:
    """The :class:`~latent_jax.train.TrainConfig` of :func:`train_linear_vae` on ``n_rows``."""
    schedule: Any = lr_schedule
    if lr_schedule == "halving":
        schedule = halving_schedule(learning_rate, epochs, decay_stages, decay_epochs)
    return TrainConfig(
        learning_rate=learning_rate,
        batch_size=n_rows,
        epochs=epochs + decay_stages * decay_epochs,
        optimizer="adam",
        lr_schedule=schedule,
        clip_norm=clip_norm,
        quiet=quiet,
        log_every=0,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=checkpoint_every,
    )


def _checkpoints(args: Arguments, run_dir: str) -> dict[str, Any]:
    """``checkpoint_dir`` and ``checkpoint_every`` of a run folder's VAE (all its steps)."""
    steps = args.epochs + args.decay_stages * args.decay_epochs
    return common.checkpoint_options(common.RunFlags.from_flags(args), run_dir, steps)


def compare(
    x: np.ndarray,
    latent_dim: int,
    key: jax.Array,
    args: Arguments,
    run_dir: str | None = None,
) -> tuple[dict[str, Any], np.ndarray]:
    """PPCA in closed form against the trained linear VAE on ``x``; per-sample numbers.

    ``run_dir``, when given, keeps the VAE's training run (history.csv, checkpoints/).
    """
    flags = common.RunFlags.from_flags(args)
    state = pca.fit_ppca(x, latent_dim)
    ppca_ll = float(jnp.mean(pca.ppca_log_likelihood(state, x)))
    checkpoints = {} if run_dir is None else _checkpoints(args, run_dir)
    resume = {} if run_dir is None else common.resume_options(flags, checkpoints["checkpoint_dir"])
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        callbacks = (
            [] if run_dir is None else stack.enter_context(common.history_writers(run_dir, flags))
        )
        model, variables, losses = train_linear_vae(
            x,
            latent_dim,
            jax.random.fold_in(key, 0),
            learning_rate=args.learning_rate,
            epochs=args.epochs,
            decay_stages=args.decay_stages,
            decay_epochs=args.decay_epochs,
            lr_schedule=args.lr_schedule,
            clip_norm=args.clip_norm,
            quiet=args.quiet,
            callbacks=callbacks,
            **checkpoints,
            **resume,
        )
    if run_dir is not None:
        common.record_resumptions(run_dir, checkpoints["checkpoint_dir"])
    train_seconds = time.perf_counter() - start
    elbo_each = np.asarray(exact_elbo(model, variables, x), np.float64)
    elbo = float(np.mean(elbo_each))
    options = {"likelihood": "gaussian", "obs_logvar": "learned"}
    sampled = metrics.elbo(
        model,
        variables,
        x,
        jax.random.fold_in(key, 1),
        num_samples=args.elbo_samples,
        **options,
    )
    iwae, iwae_gain, iwae_gain_sem = {}, {}, {}
    for k in args.iwae_k:
        bound = np.asarray(
            metrics.iwae_bound(
                model, variables, x, jax.random.fold_in(key, 2 + k), num_samples=k, **options
            ),
            np.float64,
        )
        iwae[str(k)] = float(np.mean(bound))
        # Paired with the exact ELBO of the same examples: the gain's sampling error alone.
        gain = bound - elbo_each
        iwae_gain[str(k)] = float(np.mean(gain))
        iwae_gain_sem[str(k)] = float(np.std(gain) / np.sqrt(len(gain) - 1))
    ppca_weight = pca.ppca_params(state).weight
    vae_weight = decoder_weight(variables)
    noise_variance = float(jnp.exp(variables["params"]["obs_logvar"]))
    result = {
        "n_samples": int(x.shape[0]),
        "input_dim": int(x.shape[1]),
        "latent_dim": latent_dim,
        "ppca_log_likelihood": ppca_ll,
        "elbo": elbo,
        "elbo_relative_gap": (ppca_ll - elbo) / abs(ppca_ll),
        "elbo_sampled": float(jnp.mean(sampled)),
        "iwae": iwae,
        "iwae_minus_elbo": iwae_gain,
        "iwae_minus_elbo_sem": iwae_gain_sem,
        "max_principal_angle_degrees": max_principal_angle_degrees(vae_weight, ppca_weight),
        "ppca_noise_variance": float(state.noise_variance),
        "vae_noise_variance": noise_variance,
        "train_steps": len(losses),
        "train_seconds": train_seconds,
    }
    return result, losses


def run(args: Arguments) -> dict:
    """Runs the comparison and returns the metrics written to ``metrics.json``."""
    _check_args(args)
    key = jax.random.key(args.seed)
    out = common.prepare_output_dir(args.out)
    payload: dict[str, Any] = {}
    curves: dict[str, np.ndarray] = {}
    optimum: dict[str, float] = {}
    for index, name in enumerate(args.datasets):
        data_key = jax.random.fold_in(key, 100 + index)
        x, latent_dim, true_weight, normalizer = dataset(args, index, name)
        # The first dataset's run is the folder's own; the other one gets a sub-folder.
        run_dir = out if index == 0 else common.prepare_output_dir(os.path.join(out, name))
        config = linear_vae_config(
            len(x),
            learning_rate=args.learning_rate,
            epochs=args.epochs,
            decay_stages=args.decay_stages,
            decay_epochs=args.decay_epochs,
            lr_schedule=args.lr_schedule,
            clip_norm=args.clip_norm,
            quiet=args.quiet,
            **_checkpoints(args, run_dir),
        )
        common.write_run_config(
            run_dir,
            args,
            command="linear-vae",
            data_flags=DATA_FLAGS,
            model_flags=MODEL_FLAGS,
            training=config,
            training_flags=TRAINING_FLAGS,
            **({} if index == 0 else {"run": name}),
        )
        common.write_normalizer(run_dir, normalizer)
        result, losses = compare(x, latent_dim, data_key, args, run_dir)
        if name == "synthetic":
            ppca_weight = pca.ppca_params(pca.fit_ppca(x, latent_dim)).weight
            result["true_noise_variance"] = args.noise_variance
            result["ppca_vs_true_max_angle_degrees"] = max_principal_angle_degrees(
                ppca_weight, true_weight
            )
            payload.update(result)
        else:
            payload["digits"] = result
        if index > 0:
            common.write_json(os.path.join(run_dir, runs.METRICS), result)
        curves[name] = losses
        optimum[name] = result["ppca_log_likelihood"]
    payload["environment"] = common.environment_info()
    common.write_json(os.path.join(out, runs.METRICS), payload)
    plots.loss_curves(
        {
            **{f"{n}: -ELBO (training, sampled)": c for n, c in curves.items()},
            **{
                f"{n}: -log p(x), PPCA optimum": np.full(len(curves[n]), -v)
                for n, v in optimum.items()
            },
        },
        os.path.join(out, "training_curves.png"),
        title="Linear VAE: negative ELBO per sample against the exact PPCA optimum",
        log_scale=False,
    )
    _print_summary(payload, args.datasets, out)
    return payload


def _print_summary(payload: dict, names: list[str], out: str) -> None:
    print(
        f"{'data':<10} {'PPCA log p':>12} {'ELBO':>12} {'gap %':>9} "
        + " ".join(f"{'IWAE k=' + k:>12}" for k in _first(payload, names)["iwae"])
        + f" {'max angle':>10}"
    )
    for name in names:
        r = payload if name == "synthetic" else payload[name]
        print(
            f"{name:<10} {r['ppca_log_likelihood']:>12.4f} {r['elbo']:>12.4f} "
            f"{100 * r['elbo_relative_gap']:>9.4f} "
            + " ".join(f"{v:>12.4f}" for v in r["iwae"].values())
            + f" {r['max_principal_angle_degrees']:>9.3f}°"
        )
    print(f"Per sample, nats. Outputs in {out}/")


def _first(payload: dict, names: list[str]) -> dict:
    return payload if names[0] == "synthetic" else payload[names[0]]
