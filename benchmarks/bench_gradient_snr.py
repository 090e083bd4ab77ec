"""Rainforth et al.'s (2018) central result, measured: the signal-to-noise ratio of the
gradient estimates of IWAE, MIWAE and PIWAE for the encoder's and the decoder's parameters.

A small MLP VAE (``latent_jax.models.mlp.VAE``, tanh, Bernoulli likelihood) is trained briefly
on mnist-5k (4,000 training digits average-pooled to 14x14, dynamically binarized; the plain
ELBO), then held fixed. On one fixed minibatch (test digits binarized once, with a fixed key)
each estimator's gradient of its loss is drawn ``--draws`` times with independent keys, and
for every scalar parameter

    SNR = |mean of the draws| / (standard deviation of the draws)

(the paper's definition, |E[Delta]| / sigma[Delta], its Figures 1-3 on MNIST). The numbers
reported per network are the median over its parameters (and the quartiles), with the median
|mean| and standard deviation; the encoder is every parameter outside ``params["decoder"]``
(its first layer's weights of pixels that are 0 in every image of the minibatch have an exact
zero gradient and no SNR: they are left out). With N draws a parameter whose true mean
gradient is 0 shows a median SNR of 0.67 / sqrt(N), the noise floor. The estimators:

* ``iwae``: the IWAE bound with K = 1, 3, 10, 30, 100 draws per example (measured as
  ``miwae_objective(model, 1, K)``: the estimator of ``iwae_objective(model, K)`` for K >= 2,
  and its fully sampled form at K = 1, where ``iwae_objective`` uses the closed-form KL).
  Expected (the paper's Theorem 1): the encoder's SNR falls as 1/sqrt(K), the decoder's rises.
* ``miwae``: M x K = 100 draws split into M groups of K, M = 1, 4, 10, 25, 100. Expected: the
  encoder's SNR rises with M (as sqrt(M / K)), the decoder's stays (sqrt(M K) fixed).
* ``piwae``: the same splits, the decoder on the IWAE bound of all 100 draws, the encoder on
  MIWAE(M, K). Expected: the decoder's SNR is IWAE(100)'s whatever M, the encoder's MIWAE's.

Run as

    python benchmarks/bench_gradient_snr.py [--draws 400] [--epochs 10] [--batch 16]

Writes benchmarks/results/gradient_snr.json and the figure runs/gradient-snr/gradient_snr.png
(log-log: IWAE's SNR against K; the encoder's |mean| and standard deviation against K; the SNR
against M at a fixed budget). ``--iwae-k 1,3,10,30,100,300,1000`` extends the IWAE rows. Not
a timing benchmark; the default run takes about 3 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from latent_jax.data.mnist import load_mnist_5k
from latent_jax.models.mlp import VAE
from latent_jax.objectives import (
    Batch,
    bernoulli_binarize,
    iwae_objective,
    miwae_objective,
    piwae_objective,
    vae_objective,
)
from latent_jax.train import TrainConfig, fit

IWAE_K = (1, 3, 10, 30, 100)
BUDGET = 100
BUDGET_M = (1, 4, 10, 25, 100)
DECODER = "decoder"
# The median of |N(0, 1)|: sqrt(draws) times the median SNR measured where the mean is 0.
NOISE_FLOOR = 0.6745


def _digits(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """mnist-5k average-pooled to 14x14 and flattened: 4,000 training and 1,000 test rows of
    196 grey levels in [0, 1], split by a seeded permutation."""
    images, _ = load_mnist_5k()
    pooled = images[..., 0].reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4)).reshape(-1, 196)
    order = np.random.default_rng(seed).permutation(len(pooled))
    return pooled[order[:4000]].astype(np.float32), pooled[order[4000:]].astype(np.float32)


def _snr(grads: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-parameter |mean|, standard deviation and SNR of draws (draws, P), in float64."""
    grads = grads.astype(np.float64)
    mean, std = np.abs(grads.mean(axis=0)), grads.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return mean, std, mean / std


def _snr_summary(mean: np.ndarray, std: np.ndarray, snr: np.ndarray) -> dict:
    """The SNR over the parameters whose estimate varies (the first layer's weights of pixels
    that are 0 in every image of the minibatch have an exact zero gradient, and no SNR)."""
    keep = std > 0
    q1, median, q3 = np.quantile(snr[keep], [0.25, 0.5, 0.75])
    return {
        "median": float(median),
        "quartiles": [float(q1), float(q3)],
        "mean": float(snr[keep].mean()),
        "median_abs_mean_gradient": float(np.median(mean[keep])),
        "median_std_gradient": float(np.median(std[keep])),
        "parameters": int(keep.sum()),
    }


def _flat(tree) -> jnp.ndarray:
    return jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree.leaves(tree)])


def _gradient_draws(objective, params, batch: Batch, key, draws: int, chunk: int):
    """``draws`` independent gradient estimates of the objective's loss on ``batch`` at fixed
    ``params``: (encoder draws (draws, P_enc), decoder draws (draws, P_dec)) as NumPy."""
    zero = jnp.int32(0)

    def one(key):
        def loss(p):
            return objective.loss(p, {}, batch, key, zero, zero, True)[0]

        grad = jax.grad(loss)(params)
        encoder = {name: tree for name, tree in grad.items() if name != DECODER}
        return _flat(encoder), _flat(grad[DECODER])

    many = jax.jit(lambda keys: jax.lax.map(one, keys, batch_size=chunk))
    encoder, decoder = many(jax.random.split(key, draws))
    return np.asarray(encoder), np.asarray(decoder)


def _effective_sample_size(model, params, batch: Batch, key, k: int, draws: int = 20) -> float:
    """IWAE's effective sample size of the K normalized weights (1 / sum w~^2, in [1, K]),
    averaged over the minibatch and ``draws`` keys: far below K, the weights are dominated by
    a few draws, and K is short of the regime where Theorem 1's rates hold."""
    if k == 1:
        return 1.0
    objective = iwae_objective(model, k, likelihood="bernoulli")
    zero = jnp.int32(0)

    def one(key):
        return objective.loss(params, {}, batch, key, zero, zero, False)[1][0]["ess"]

    return float(jnp.mean(jax.jit(jax.vmap(one))(jax.random.split(key, draws))))


def _slope(xs, ys) -> float:
    """The least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def _figure(results: dict, draws: int, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from latent_jax.plots import save_figure

    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4.4))
    rows = results["iwae"]
    ks = np.array([r["k"] for r in rows])
    for network, color in (("encoder", "tab:blue"), ("decoder", "tab:red")):
        medians = np.array([r[network]["median"] for r in rows])
        low = medians - np.array([r[network]["quartiles"][0] for r in rows])
        high = np.array([r[network]["quartiles"][1] for r in rows]) - medians
        left.errorbar(
            ks,
            medians,
            yerr=[low, high],
            marker="o",
            color=color,
            capsize=3,
            label=f"{network} (median, quartiles)",
        )
        sign, style = (-0.5, ":") if network == "encoder" else (0.5, "--")
        guide = medians[0] * (ks / ks[0]) ** sign
        left.plot(ks, guide, style, color=color, alpha=0.6, label=f"K^{sign:+.1f} from K = {ks[0]}")
    left.axhline(
        NOISE_FLOOR / math.sqrt(draws),
        color="grey",
        lw=0.8,
        ls="-.",
        label=f"noise floor ({draws} draws)",
    )
    left.set(
        xscale="log",
        yscale="log",
        xlabel="K (importance samples)",
        ylabel="SNR = |E g| / std g",
        title="IWAE: SNR against K",
    )
    left.legend(fontsize=7)
    for key, style, label in (
        ("median_abs_mean_gradient", "-o", "|E g|"),
        ("median_std_gradient", "--s", "std g"),
    ):
        middle.plot(
            ks,
            [r["encoder"][key] for r in rows],
            style,
            color="tab:blue",
            label=f"encoder {label} (median)",
        )
    middle.plot(
        ks, rows[0]["encoder"]["median_abs_mean_gradient"] / ks, ":", color="grey", label="1/K"
    )
    middle.plot(
        ks,
        rows[0]["encoder"]["median_std_gradient"] / np.sqrt(ks),
        "-.",
        color="grey",
        label="1/sqrt(K)",
    )
    middle.set(
        xscale="log",
        yscale="log",
        xlabel="K",
        ylabel="gradient magnitude",
        title="IWAE encoder: signal and noise",
    )
    middle.legend(fontsize=7)
    for family, marker in (("miwae", "o"), ("piwae", "s")):
        rows = results[family]
        ms = [r["m"] for r in rows]
        for network, color in (("encoder", "tab:blue"), ("decoder", "tab:red")):
            right.plot(
                ms,
                [r[network]["median"] for r in rows],
                marker=marker,
                color=color,
                linestyle="-" if family == "miwae" else "--",
                label=f"{family.upper()} {network}",
            )
    right.set(
        xscale="log",
        yscale="log",
        xlabel=f"M (K = {BUDGET} / M)",
        ylabel="median SNR",
        title=f"M x K = {BUDGET}: SNR against M",
    )
    right.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=400, help="gradient draws per estimator")
    parser.add_argument("--batch", type=int, default=16, help="rows of the fixed minibatch")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs before")
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--latent", type=int, default=10)
    parser.add_argument("--chunk", type=int, default=50, help="draws computed at once")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--iwae-k",
        default=",".join(map(str, IWAE_K)),
        help="the K of the IWAE rows, comma-separated (default 1,3,10,30,100)",
    )
    parser.add_argument(
        "--results", default=os.path.join("benchmarks", "results", "gradient_snr.json")
    )
    parser.add_argument(
        "--figure", default=os.path.join("runs", "gradient-snr", "gradient_snr.png")
    )
    args = parser.parse_args()
    start = time.perf_counter()
    key = jax.random.key(args.seed)
    train_key, batch_key, snr_key = jax.random.split(key, 3)

    x_train, x_test = _digits(args.seed)
    model = VAE(
        input_dim=196, hidden_dims=(args.hidden,), latent_dim=args.latent, activation="tanh"
    )
    config = TrainConfig(epochs=args.epochs, batch_size=100, learning_rate=1e-3, quiet=True)
    trained = time.perf_counter()
    state, history = fit(
        vae_objective(model, likelihood="bernoulli", binarize=True),
        x_train,
        x_test,
        config,
        train_key,
    )
    trained = time.perf_counter() - trained
    params = state.params
    batch = Batch(
        bernoulli_binarize(batch_key, jnp.asarray(x_test[: args.batch])),
        jnp.ones(args.batch, jnp.float32),
    )
    iwae_k = tuple(int(k) for k in args.iwae_k.split(","))
    results: dict = {"iwae": [], "miwae": [], "piwae": []}
    first_iwae = None  # the per-parameter SNR of the smallest K, for the fractions below
    runs = [("iwae", miwae_objective, 1, k) for k in iwae_k]
    runs += [
        (family, make, m, BUDGET // m)
        for family, make in (("miwae", miwae_objective), ("piwae", piwae_objective))
        for m in BUDGET_M
    ]
    for i, (family, make, m, k) in enumerate(runs):
        objective = make(model, m, k, likelihood="bernoulli")
        began = time.perf_counter()
        encoder, decoder = _gradient_draws(
            objective, params, batch, jax.random.fold_in(snr_key, i), args.draws, args.chunk
        )
        encoder, decoder = _snr(encoder), _snr(decoder)
        row = {
            "m": m,
            "k": k,
            "encoder": _snr_summary(*encoder),
            "decoder": _snr_summary(*decoder),
            "seconds": time.perf_counter() - began,
        }
        if family == "iwae":
            row["effective_sample_size"] = _effective_sample_size(
                model, params, batch, jax.random.fold_in(snr_key, 1000 + i), k
            )
            if first_iwae is None:
                first_iwae = (encoder, decoder)
            # The paper's per-parameter view: how many parameters lost (encoder) or gained
            # (decoder) SNR against the smallest K.
            varies = encoder[1] > 0
            row["encoder"]["fraction_below_smallest_k"] = float(
                np.mean(encoder[2][varies] < first_iwae[0][2][varies])
            )
            row["decoder"]["fraction_above_smallest_k"] = float(
                np.mean(decoder[2] > first_iwae[1][2])
            )
        results[family].append(row)
        print(
            f"{family:<6} M={m:<4d} K={k:<4d} encoder SNR median {row['encoder']['median']:.4f}"
            f"  decoder SNR median {row['decoder']['median']:.4f}  ({row['seconds']:.1f} s)",
            flush=True,
        )

    def medians(family, network):
        return [r[network]["median"] for r in results[family]]

    slopes = {
        "iwae_encoder_vs_k": _slope(iwae_k, medians("iwae", "encoder")),
        "iwae_decoder_vs_k": _slope(iwae_k, medians("iwae", "decoder")),
        "miwae_encoder_vs_m": _slope(BUDGET_M, medians("miwae", "encoder")),
        "miwae_decoder_vs_m": _slope(BUDGET_M, medians("miwae", "decoder")),
        "piwae_encoder_vs_m": _slope(BUDGET_M, medians("piwae", "encoder")),
        "piwae_decoder_vs_m": _slope(BUDGET_M, medians("piwae", "decoder")),
    }
    out = {
        "what": "per-parameter gradient SNR |mean| / std over independent draws at fixed "
        "parameters, median (quartiles) over each network's parameters (Rainforth et al. 2018)",
        "data": "mnist-5k, 14x14 average-pooled, 4000 train / 1000 test, dynamically binarized",
        "model": {
            "class": "VAE",
            "input_dim": 196,
            "hidden_dims": [args.hidden],
            "latent_dim": args.latent,
            "activation": "tanh",
            "likelihood": "bernoulli",
        },
        "training": {
            "objective": "elbo",
            "epochs": args.epochs,
            "batch_size": 100,
            "learning_rate": 1e-3,
            "seconds": trained,
            "final_train_loss": float(history["train_loss"][-1]),
            "final_test_loss": float(history["test_loss"][-1]),
        },
        "snr": {
            "minibatch": args.batch,
            "draws": args.draws,
            "seed": args.seed,
            "budget_m_times_k": BUDGET,
            # The median estimated SNR of a parameter whose true mean gradient is 0.
            "noise_floor_median": NOISE_FLOOR / math.sqrt(args.draws),
        },
        "expected": "IWAE: encoder SNR falls ~ K^-1/2, decoder rises; MIWAE/PIWAE at fixed "
        "M K: encoder SNR rises with M; PIWAE's decoder SNR is IWAE(M K)'s",
        "log_log_slopes_of_the_median": slopes,
        "results": results,
        "seconds": time.perf_counter() - start,
        "environment": {
            "python": platform.python_version(),
            "jax": jax.__version__,
            "devices": [str(d) for d in jax.devices()],
            "cpus": os.cpu_count(),
        },
    }
    os.makedirs(os.path.dirname(args.results) or ".", exist_ok=True)
    with open(args.results, "w", encoding="utf-8") as handle:
        json.dump(out, handle, indent=2)
        handle.write("\n")
    _figure(results, args.draws, args.figure)
    print("log-log slopes of the median SNR:", json.dumps(slopes, indent=1))
    print(f"wrote {args.results} and {args.figure} in {out['seconds']:.0f} s")


if __name__ == "__main__":
    main()
