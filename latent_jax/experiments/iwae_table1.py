"""The IWAE paper's Table 1 protocol on mnist-5k: a VAE against IWAEs with k = 5 and 50 samples.

Burda, Grosse & Salakhutdinov (2016), "Importance Weighted Autoencoders", Table 1 (MNIST, one
stochastic layer): a 784-200-200-50 encoder and a 50-200-200-784 decoder with tanh hidden
layers, a 50-dimensional Gaussian latent layer, a Bernoulli decoder, inputs binarized
dynamically (a fresh Bernoulli draw of every pixel at every step), Adam (β1 = 0.9,
β2 = 0.999, ε = 1e-4), batch 20, and the learning-rate staircase 0.001 · 10^(-i/7) for
3^i passes, i = 0..7 (3,280 passes in all). The paper reports the test NLL estimated by the
IWAE bound with k = 5,000 samples and the active units (Var_x E_q[z_u] > 0.01).

Here the data are the 4,000 / 1,000 digits of ``mnist-5k`` (:mod:`latent_jax.data.mnist`), not
MNIST's 60,000 / 10,000. Every objective of ``--k`` trains ``--seeds`` runs at once
(:func:`latent_jax.train.fit_many`; run ``s`` of every objective starts from the same
initialization): k = 1 is the VAE (its ELBO, with the closed-form KL term; the IWAE bound at
k = 1 is the same objective), k > 1 the IWAE bound (:func:`latent_jax.objectives.
iwae_objective`). ``--epochs-scale s`` shortens the run and keeps the staircase: stage i lasts
``max(1, round(s 3^i))`` passes instead of 3^i (:func:`staircase_passes`), so every one of the
8 learning rates gets at least one pass (s = 1: the paper's 3,280 passes; s < 1/4374: 8).

``--rows`` compares other objectives of the registry on the same protocol instead, each
``NAME`` or ``NAME:option=value,...``: pythae's reproducibility table on MNIST is ``--rows
elbo iwae:k=50 miwae:m=8,k=8 piwae:m=8,k=8 ciwae:k=64,beta=0.05 vamp:pseudo_inputs=500``
(Rainforth et al. 2018's bounds and Tomczak & Welling 2018's VampPrior, scored under its own
prior); metrics.json carries pythae's number and its reference beside each row
(:data:`PYTHAE_NLL`).

Evaluation, the same for every objective and seed: the test images are binarized once with a
fixed key (:func:`test_binarization_key`), the NLL is ``-iwae_bound`` with ``--nll-k``
samples on the first ``--nll-images`` of them (in batches, with the same keys for every
model), and the active units and the KL per dimension are computed on all of them
(:mod:`latent_jax.metrics`). Differences between objectives are tested over seeds with a
paired t-test (run s of each objective shares its initialization).

Writes into --out: config.json, metrics.json (per objective: mean, standard deviation and
per-seed values; the paired tests; the paper's numbers), iwae_table1.png (NLL and active units
per objective, every seed shown, and the KL per dimension), and one run folder per objective
(``OUT/vae``, ``OUT/iwae-k5``, ...: config.json, history.csv, checkpoints/;
``latent_jax.load_run(OUT/iwae-k5)`` reloads its ``--seeds`` runs; the same command plus
``--resume`` continues an interrupted run).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import math
import os
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from latent_jax import distributed, metrics, plots, runs
from latent_jax.data import images as image_data
from latent_jax.data.mnist import MNIST_5K
from latent_jax.experiments import common
from latent_jax.models.mlp import VAE
from latent_jax.objectives import GRADIENT_ESTIMATORS, bernoulli_binarize
from latent_jax.train import TrainConfig, fit_many

logger = logging.getLogger(__name__)

# Table 1 of Burda et al. (2016), MNIST, one stochastic layer: test NLL in nats.
PAPER_NLL = {"vae": 86.76, "iwae-k5": 85.54, "iwae-k50": 84.78}
# pythae's reproducibility table on MNIST (examples/scripts/reproducibility/README.md): the
# row's test NLL as pythae obtains it and the reference it reproduces (the paper's or the
# official code's), nats. Its VAE and VAMP rows use other architectures and statically
# binarized MNIST; its IWAE, MIWAE, PIWAE and CIWAE rows this one (784-200-200-50 tanh, batch 20).
PYTHAE_NLL = {
    "vae": {"pythae": 89.78, "reference": 89.9},
    "iwae-k50": {"pythae": 86.82, "reference": 87.1},
    "miwae-m8-k8": {"pythae": 85.09, "reference": 84.97},
    "piwae-m8-k8": {"pythae": 84.58, "reference": 84.46},
    "ciwae-k64-beta0.05": {"pythae": 84.74, "reference": 84.57},
    "vamp-pseudo_inputs500": {"pythae": 85.79, "reference": 85.57},
}
# Every row of pythae's table, as --rows takes them.
PYTHAE_ROWS = (
    "elbo",
    "iwae:k=50",
    "miwae:m=8,k=8",
    "piwae:m=8,k=8",
    "ciwae:k=64,beta=0.05",
    "vamp:pseudo_inputs=500",
)
PAPER_PASSES = 3280  # sum of 3^i, i = 0..7
PAPER_STAGES = 8
HIDDEN_DIMS = (200, 200)
MNIST_PIXELS = 784
LATENT_DIM = 50
ADAM_EPS = 1e-4
# The flags config.json keeps under "data" and "model" (the rest: "training", "settings").
DATA_FLAGS = ("nll_images",)
MODEL_FLAGS = ("k", "rows")
TRAINING_FLAGS = {"learning_rate": "learning_rate", "batch_size": "batch_size"}
NLL_BATCH = 100  # test images per compiled IWAE call
NLL_CHUNK = 250  # IWAE samples decoded at once


def _k_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected sample counts like 1,5,50, got {text!r}"
        ) from None
    if not values or min(values) < 1 or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"expected distinct counts >= 1, got {text!r}")
    return values


@dataclasses.dataclass(frozen=True)
class Row:
    """One objective of the table: a registered objective and its options.

    Attributes:
        objective: the registered name (``elbo``, ``iwae``, ``miwae``, ``vamp``, ...).
        options: its options, as ``build_objective`` takes them.
    """

    objective: str
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def name(self) -> str:
        """The row's folder and key: ``vae`` for the ELBO, else the objective and its options
        (``iwae-k50``, ``miwae-m8-k8``, ``ciwae-k64-beta0.05``)."""
        if self.objective == "elbo" and not self.options:
            return "vae"
        return "-".join(
            [
                self.objective,
                *(f"{k}{v:g}" if isinstance(v, float) else f"{k}{v}" for k, v in self.options),
            ]
        )


def parse_row(text: str) -> Row:
    """``NAME`` or ``NAME:option=value,...`` (``miwae:m=8,k=8``), values as numbers.

    Raises:
        ValueError: for an option without a value, or a value that is not a number.
    """
    name, _, rest = text.strip().partition(":")
    options = []
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, equals, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = None
        if not equals or number is None:
            raise ValueError(f"expected NAME:option=number,..., got {text!r}")
        whole = number.is_integer() and not any(c in value for c in ".eE")
        options.append((key.strip(), int(number) if whole else number))
    return Row(name, tuple(options))


def _row_flag(text: str) -> str:
    """A ``--rows`` entry, checked (:func:`parse_row`) and kept as written for config.json."""
    try:
        parse_row(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text.strip()


def rows_of(args: Arguments) -> list[Row]:
    """The table's rows: ``--rows``, or the IWAE paper's (``--k``: the VAE for k = 1)."""
    if args.rows:
        return [parse_row(text) for text in args.rows]
    return [Row("elbo") if k == 1 else Row("iwae", (("k", k),)) for k in args.k]


@dataclasses.dataclass(frozen=True)
class Arguments(common.RunArguments):
    """The flags of ``latent-jax iwae-table1``, typed (:func:`add_arguments` defines them)."""

    k: Sequence[int]
    rows: Sequence[str] | None
    seeds: int
    epochs_scale: float
    batch_size: int
    learning_rate: float
    gradient_estimator: str
    nll_k: int
    nll_images: int
    seed: int
    quiet: bool
    out: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers this experiment's flags."""
    parser.add_argument(
        "--k",
        type=_k_list,
        default=[1, 5, 50],
        help="importance samples of each objective, comma-separated (1: the VAE)",
    )
    parser.add_argument(
        "--rows",
        type=_row_flag,
        nargs="+",
        default=None,
        help="objectives to compare instead of --k's, each NAME or NAME:option=value,... "
        f"(pythae's reproducibility table: {' '.join(PYTHAE_ROWS)})",
    )
    parser.add_argument("--seeds", type=int, default=3, help="runs per objective")
    parser.add_argument(
        "--epochs-scale",
        type=float,
        default=1.0,
        help="stage i of the staircase lasts max(1, round(s * 3^i)) passes (1: the paper's 3,280)",
    )
    parser.add_argument("--batch-size", type=int, default=20, help="batch size (the paper's)")
    parser.add_argument(
        "--learning-rate", type=float, default=1e-3, help="the staircase's first step size"
    )
    parser.add_argument(
        "--gradient-estimator",
        choices=GRADIENT_ESTIMATORS,
        default="standard",
        help="IWAE gradient: standard, or dreg (doubly reparameterized, Tucker et al. 2019)",
    )
    parser.add_argument("--nll-k", type=int, default=5000, help="IWAE samples of the test NLL")
    parser.add_argument(
        "--nll-images",
        type=int,
        default=1000,
        help="test images the NLL is estimated on (the first ones; mnist-5k has 1000)",
    )
    parser.add_argument("--seed", type=int, default=0, help="root seed")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--out", default="runs/iwae-table1", help="output folder")
    common.add_run_arguments(
        parser,
        lr_schedules=("staircase",),
        lr_schedule_help="the paper's staircase: 0.001 * 10^(-i/7) in stage i (--epochs-scale)",
    )


def _check_args(args: Arguments) -> None:
    common.require_at_least(args, 1, "seeds", "batch_size", "nll_k", "nll_images")
    if not (math.isfinite(args.epochs_scale) and args.epochs_scale > 0):
        raise ValueError(f"--epochs-scale must be > 0, got {args.epochs_scale}")
    if not (math.isfinite(args.learning_rate) and args.learning_rate > 0):
        raise ValueError(f"--learning-rate must be > 0, got {args.learning_rate}")
    names = [row.name for row in rows_of(args)]
    if len(set(names)) != len(names):
        raise ValueError(f"--rows names an objective twice: {names}")
    model = _model(MNIST_PIXELS)
    for row in rows_of(args):  # an unknown objective or option, before any folder exists
        _objective(row, model, args)
    common.check_run_arguments(args)


def _model(input_dim: int) -> VAE:
    """The paper's VAE: 784-200-200-50 tanh encoder, the mirror decoder."""
    return VAE(
        input_dim=input_dim, hidden_dims=HIDDEN_DIMS, latent_dim=LATENT_DIM, activation="tanh"
    )


def staircase_passes(epochs_scale: float) -> list[int]:
    """The passes of each of the staircase's 8 stages: ``max(1, round(epochs_scale * 3^i))``.

    ``epochs_scale=1`` is the paper's 1, 3, 9, ..., 2187 (3,280 passes); a smaller scale
    shortens every stage but keeps at least one pass at each of the 8 learning rates (a
    scale below 1 / 4374 gives 8 passes, one per stage).

    Args:
        epochs_scale: > 0.

    Returns:
        Eight pass counts, each >= 1.
    """
    return [max(1, round(epochs_scale * 3**i)) for i in range(PAPER_STAGES)]


def staircase_schedule(
    passes: list[int], steps_per_epoch: int, learning_rate: float = 1e-3
) -> optax.Schedule:
    r"""The paper's learning rate, :math:`\eta_0 \cdot 10^{-i/7}` during stage i.

    Args:
        passes: the passes of each stage (:func:`staircase_passes`).
        steps_per_epoch: optimizer steps per pass.
        learning_rate: :math:`\eta_0`, the first stage's rate (the paper: 0.001).

    Returns:
        An optax schedule ``count -> learning rate`` (jit-safe); after the last stage it stays
        at the last rate.
    """
    ends = np.cumsum(passes)[:-1] * steps_per_epoch
    boundaries = jnp.asarray(ends, jnp.int32)

    def schedule(count: Any) -> Any:
        stage = jnp.sum(jnp.asarray(count, jnp.int32) >= boundaries)
        return learning_rate * jnp.power(10.0, -stage.astype(jnp.float32) / 7.0)

    return schedule


def objective_name(k: int) -> str:
    """``"vae"`` for k = 1 (the ELBO), ``"iwae-k{k}"`` otherwise."""
    return Row("elbo").name if k == 1 else Row("iwae", (("k", k),)).name


def _objective(row: Row, model: VAE, args: Arguments) -> Any:
    """The row's objective on the table's VAE: Bernoulli likelihood, dynamic binarization."""
    from latent_jax.objectives import build_objective

    options = dict(row.options)
    if row.objective == "iwae":
        options.setdefault("gradient_estimator", args.gradient_estimator)
    try:
        return build_objective(
            row.objective, model, likelihood="bernoulli", binarize=True, **options
        )
    except (TypeError, ValueError) as err:
        raise ValueError(f"--rows {row.name}: {err}") from err


def test_binarization_key(seed: int) -> jax.Array:
    """The key of the one binarization of the test images that every model is scored on."""
    return jax.random.fold_in(jax.random.key(seed), 0)


def evaluation_key(seed: int, run_index: int) -> jax.Array:
    """The key of run ``run_index``'s NLL (the same for every objective: paired estimates)."""
    return jax.random.fold_in(jax.random.key(seed), 2 + run_index)


def load_split() -> tuple[np.ndarray, np.ndarray]:
    """mnist-5k's fixed 4,000 / 1,000 split as rows of 784 grey levels in [0, 1]."""
    dataset = image_data.load_image_dataset(MNIST_5K, normalization="none")
    x_train, x_test = dataset.x_train, dataset.x_test
    return x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)


def _summary(values: Any) -> dict[str, Any]:
    array = np.asarray(values, np.float64)
    return {"mean": float(np.mean(array)), "std": float(np.std(array)), "runs": array.tolist()}


def _paired_test(first: list[float], second: list[float]) -> dict[str, Any]:
    """Paired t-test over seeds of ``second - first`` (NLL: negative means second is better)."""
    from scipy import stats

    diff = np.asarray(second, np.float64) - np.asarray(first, np.float64)
    result: dict[str, Any] = {"mean_difference": float(np.mean(diff)), "differences": diff.tolist()}
    if len(diff) > 1 and np.std(diff) > 0:
        test = stats.ttest_rel(second, first)
        result.update(t=float(test.statistic), p_value=float(test.pvalue))
    return result


def _score(
    model: VAE, params: Any, x_nll: np.ndarray, x_test: np.ndarray, key: jax.Array, nll_k: int
) -> dict[str, Any]:
    """Test NLL (IWAE with ``nll_k`` samples, in batches), ELBO, active units, KL per dim."""
    variables = {"params": params}
    bounds, elbos = [], []
    for b, start in enumerate(range(0, len(x_nll), NLL_BATCH)):
        rows = x_nll[start : start + NLL_BATCH]
        batch_key = jax.random.fold_in(key, b)
        bound = metrics.iwae_bound(
            model,
            variables,
            rows,
            batch_key,
            num_samples=nll_k,
            likelihood="bernoulli",
            chunk_size=min(NLL_CHUNK, nll_k),
        )
        estimate = metrics.elbo(
            model, variables, rows, jax.random.fold_in(batch_key, 1), likelihood="bernoulli"
        )
        bounds.append(np.asarray(bound, np.float64))
        elbos.append(np.asarray(estimate, np.float64))
    count, _ = metrics.active_units(model, variables, x_test)
    kl = metrics.kl_per_dimension(model, variables, x_test)
    return {
        "nll_nats": -float(np.mean(np.concatenate(bounds))),
        "elbo": float(np.mean(np.concatenate(elbos))),
        "active_units": count,
        "kl_per_dim": kl,
    }


def run(args: Arguments) -> dict:
    """Runs the protocol and returns the metrics written to ``metrics.json``."""
    _check_args(args)
    distributed.use_cpu_cores()  # spread the seeds over the cores (before JAX's backend starts)
    x_train, x_test = load_split()
    n_nll = min(args.nll_images, len(x_test))
    x_test_binary = np.asarray(bernoulli_binarize(test_binarization_key(args.seed), x_test))
    model = _model(x_train.shape[1])
    batch = min(args.batch_size, len(x_train))
    passes = staircase_passes(args.epochs_scale)
    epochs, steps_per_epoch = sum(passes), -(-len(x_train) // batch)
    schedule = staircase_schedule(passes, steps_per_epoch, args.learning_rate)

    def config(run_dir: str) -> TrainConfig:
        return TrainConfig(
            learning_rate=args.learning_rate,
            batch_size=batch,
            epochs=epochs,
            optimizer=functools.partial(optax.adam, b1=0.9, b2=0.999, eps=ADAM_EPS),
            lr_schedule=schedule,
            clip_norm=args.clip_norm,
            quiet=args.quiet,
            log_every=0,
            **common.checkpoint_options(common.RunFlags.from_flags(args), run_dir, epochs),
        )

    config(args.out)  # the training flags checked before any folder exists
    out = common.prepare_output_dir(args.out)
    write = functools.partial(
        common.write_run_config,
        args=args,
        command="iwae-table1",
        data_flags=DATA_FLAGS,
        model_flags=MODEL_FLAGS,
        training_flags=TRAINING_FLAGS,
    )
    write(out, training=config(out))
    root = jax.random.key(args.seed)
    keys = jax.random.split(jax.random.fold_in(root, 1), args.seeds)
    results: dict[str, Any] = {}
    for row in rows_of(args):
        name = row.name
        run_dir = common.prepare_output_dir(os.path.join(out, name))
        run_config = config(run_dir)
        write(run_dir, training=run_config, run=name)
        objective = _objective(row, model, args)
        flags = common.RunFlags.from_flags(args)
        fitted = common.fit_in_folder(
            run_dir, flags, fit_many, objective, x_train, x_test, run_config, keys
        )
        state, history = fitted.state, fitted.history
        train_seconds = fitted.wall_seconds
        start = time.perf_counter()
        scores = [
            _score(
                objective.model,
                jax.tree.map(lambda leaf, i=i: leaf[i], state.params),
                x_test_binary[:n_nll],
                x_test_binary,
                evaluation_key(args.seed, i),
                args.nll_k,
            )
            for i in range(args.seeds)
        ]
        results[name] = {
            "objective": row.objective,
            "options": dict(row.options),
            "test_nll_nats": _summary([s["nll_nats"] for s in scores]),
            "test_elbo": _summary([s["elbo"] for s in scores]),
            "active_units": _summary([s["active_units"] for s in scores]),
            "kl": _summary([float(np.sum(s["kl_per_dim"])) for s in scores]),
            "kl_per_dim": np.mean([s["kl_per_dim"] for s in scores], axis=0).tolist(),
            "final_train_loss": _summary(history["train_loss"][:, -1]),
            "final_test_loss": _summary(history["test_loss"][:, -1]),
            **{
                f"final_{split}_{term}": _summary(history[f"{split}_{term}"][:, -1])
                for split in ("train", "test")
                for term in ("iwae_bound", "ess")
                if f"{split}_{term}" in history
            },
            "paper_nll_nats": PAPER_NLL.get(name),
            "pythae_nll_nats": PYTHAE_NLL.get(name),
            "train_seconds": train_seconds,
            "evaluation_seconds": time.perf_counter() - start,
        }
        common.write_json(os.path.join(run_dir, runs.METRICS), {name: results[name]})
    names = list(results)
    tests = {
        f"{a} vs {b}": _paired_test(
            results[a]["test_nll_nats"]["runs"], results[b]["test_nll_nats"]["runs"]
        )
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    }
    payload = {
        "data": "mnist-5k (4,000 train / 1,000 test digits of MNIST's training set), "
        "binarized dynamically in training, once with a fixed key for evaluation",
        "n_train": len(x_train),
        "n_test": len(x_test),
        "nll_images": n_nll,
        "nll_k": args.nll_k,
        "architecture": "784-200-200-50 tanh encoder, 50-200-200-784 tanh decoder, Bernoulli",
        "seeds": args.seeds,
        "epochs": epochs,
        "paper_epochs": PAPER_PASSES,
        "batch_size": batch,
        "total_steps": epochs * steps_per_epoch,
        "staircase_passes": passes,
        "gradient_estimator": args.gradient_estimator,
        "objectives": results,
        "paired_tests_nll": tests,
        "paper_nll_nats": PAPER_NLL,
        "environment": common.environment_info(),
    }
    common.write_json(os.path.join(out, runs.METRICS), payload)
    table_figure(results, os.path.join(out, "iwae_table1.png"), n_nll, args.nll_k)
    _print_summary(payload, out)
    return payload


def table_figure(results: dict[str, Any], path: str, n_nll: int, nll_k: int) -> str:
    """NLL and active units per objective (every seed a dot, the mean a bar) and KL per dim.

    Args:
        results: ``metrics.json``'s ``objectives``.
        path: the PNG to write.
        n_nll: test images of the NLL, for the axis label.
        nll_k: samples of the NLL's IWAE bound, for the axis label.

    Returns:
        The path written.
    """
    import matplotlib.pyplot as plt  # plots set the Agg backend

    names = list(results)
    positions = np.arange(len(names))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    panels = (
        ("test_nll_nats", f"test NLL, nats (IWAE k={nll_k}, {n_nll} images)"),
        ("active_units", "active units (Var_x E_q[z_u] > 0.01)"),
    )
    for ax, (key, label) in zip(axes[:2], panels, strict=True):
        means = [results[n][key]["mean"] for n in names]
        stds = [results[n][key]["std"] for n in names]
        ax.errorbar(
            positions, means, yerr=stds, fmt="s", color="tab:blue", capsize=8, label="mean ± std"
        )
        for p, n in zip(positions, names, strict=True):
            seeds = results[n][key]["runs"]
            offsets = np.linspace(-0.12, 0.12, len(seeds)) if len(seeds) > 1 else [0.0]
            ax.scatter(p + np.asarray(offsets), seeds, color="black", s=16, label=None)
        ax.scatter([], [], color="black", s=16, label="one seed each")
        ax.set_xlim(-0.5, len(names) - 0.5)
        ax.set_xticks(positions, names, rotation=25, ha="right")
        ax.set_ylabel(label)
        ax.legend(loc="best")
    axes[0].set_title("Test NLL per objective (dots: seeds)")
    axes[1].set_title("Active latent units per objective")
    for n in names:
        kl = np.sort(np.asarray(results[n]["kl_per_dim"]))[::-1]
        axes[2].semilogy(np.arange(1, len(kl) + 1), np.maximum(kl, 1e-6), marker=".", label=n)
    axes[2].set_xlabel("latent dimension (sorted by KL)")
    axes[2].set_ylabel("KL(q(z_u|x) || N(0,1)), nats, mean over seeds")
    axes[2].set_title("KL per latent dimension")
    axes[2].legend()
    fig.tight_layout()
    plots.save_figure(fig, path, dpi=plots.DPI)
    return path


def _print_summary(payload: dict, out: str) -> None:
    print(
        f"IWAE Table 1 protocol on mnist-5k ({payload['n_train']} train / {payload['n_test']} "
        f"test), {payload['epochs']} of the paper's {payload['paper_epochs']} passes, "
        f"{payload['seeds']} seeds; NLL by IWAE k={payload['nll_k']} on "
        f"{payload['nll_images']} test images, mean ± std over seeds"
    )
    print(f"{'objective':<22} {'NLL (nats)':>16} {'paper':>8} {'active units':>14} {'KL':>14}")
    for name, r in payload["objectives"].items():
        nll, au, kl = r["test_nll_nats"], r["active_units"], r["kl"]
        paper = "" if r["paper_nll_nats"] is None else f"{r['paper_nll_nats']:.2f}"
        print(
            f"{name:<22} {nll['mean']:>8.2f} ± {nll['std']:<5.2f} {paper:>8} "
            f"{au['mean']:>7.1f} ± {au['std']:<4.1f} {kl['mean']:>7.2f} ± {kl['std']:<4.2f}"
        )
    for pair, test in payload["paired_tests_nll"].items():
        p = test.get("p_value")
        shown = "" if p is None else f", paired t-test p = {p:.3g}"
        print(f"{pair}: NLL difference {test['mean_difference']:+.2f} nats{shown}")
    print(f"Outputs in {out}/")
