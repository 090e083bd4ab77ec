"""The VAE family on mnist-5k: every regularized autoencoder beside the plain VAE.

Each objective of ``latent-jax vae --objective NAME`` trains the same convolutional VAE (the
``mnist-demo`` preset: mnist-5k's 4,000 training digits resized to 14x14, latent size 8, Adam
at 1e-3, batch 32) for the same epochs and seed, at the objective's own defaults (the paper's
where it gives them). Every run folder's ``metrics.json`` gives the test reconstruction, the
objective's own terms at the last epoch (``final``), and the generation score of 1,000 images
decoded from the sampler's codes (``generation``: confident fraction, label entropy, Fréchet
distance in the scorer's feature space; :class:`latent_jax.generate.GenerationScorer`). The
ex-post samplers (``--sampler gmm``, ``two-stage``) are fitted on the training codes of the
same trained model (the same seed trains the same weights). Run as

    python benchmarks/bench_vae_family.py [--epochs 30] [--out runs/vae-family] [--only NAME ...]

Writes benchmarks/results/vae_family.json (the table's numbers) and keeps the run folders
(figures: samples.png, reconstructions.png, ...) under OUT/, with samples_grid.png: twelve
samples of every row's model and sampler, one labelled row each.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from latent_jax.cli import main

# (row name, objective, its flags, sampler)
RUNS = [
    ("vae", "elbo", ["--beta-schedule", "constant", "--beta-max", "1"], "gaussian"),
    ("vae + gmm", "elbo", ["--beta-schedule", "constant", "--beta-max", "1"], "gmm"),
    ("vae + two-stage", "elbo", ["--beta-schedule", "constant", "--beta-max", "1"], "two-stage"),
    ("beta-tcvae (mws)", "beta-tcvae", [], "gaussian"),
    ("beta-tcvae (mss)", "beta-tcvae", ["--estimator", "mss"], "gaussian"),
    ("factorvae", "factorvae", [], "gaussian"),
    ("dip-vae-i", "dip-vae-i", [], "gaussian"),
    ("dip-vae-ii", "dip-vae-ii", [], "gaussian"),
    ("infovae-mmd", "infovae-mmd", [], "gaussian"),
    ("wae-mmd", "wae-mmd", [], "gaussian"),
    ("rae-l2", "rae-l2", [], "gaussian"),
    ("rae-l2 + gmm", "rae-l2", [], "gmm"),
    ("rae-gp", "rae-gp", [], "gaussian"),
    ("rae-gp + gmm", "rae-gp", [], "gmm"),
    # Part 2's bounds with 4 draws per image, not their 64: each draw is a decoder pass of the
    # conv VAE, and 64 of them cost about 64 VAE epochs per epoch on the 2-core CPU.
    ("miwae", "miwae", ["--m", "2", "--k", "2"], "gaussian"),
    ("piwae", "piwae", ["--m", "2", "--k", "2"], "gaussian"),
    ("ciwae", "ciwae", ["--k", "4", "--beta", "0.05"], "gaussian"),
    # 50 pseudo-inputs, not 500 (each is encoded at every step), and the KL warmed up over
    # the first 10 epochs, as Tomczak & Welling warm it up.
    ("vamp", "vamp", ["--pseudo-inputs", "50", "--warmup", "10"], "gaussian"),
    ("vq-vae + pixelcnn", "vq-vae", [], "pixelcnn"),
]
# The VQ-VAE trains through latent-jax train (its own model and a PixelCNN prior over its code
# grids), on the same digits, size, batch and epochs.
VQ_FLAGS = ["--data", "mnist-5k", "--image-size", "14x14", "--batch-size", "32"]
VQ_FLAGS += ["--learning-rate", "1e-3", "--prior-epochs", "20"]
# The terms every objective reports besides its regularizers.
COMMON_TERMS = ("loss", "reconstruction", "beta", "vae_loss")


def _folder(name: str) -> str:
    return name.replace(" + ", "-").replace(" (", "-").replace(")", "").replace(" ", "-")


def _run(argv: list[str], folder: str) -> dict:
    start = time.perf_counter()
    code = main(argv)
    if code:
        raise SystemExit(f"latent-jax {' '.join(argv)} failed with exit status {code}")
    with open(os.path.join(folder, "metrics.json"), encoding="utf-8") as handle:
        metrics = json.load(handle)
    metrics["wall_seconds"] = time.perf_counter() - start
    return metrics


def _vq_run(folder: str, epochs: int, seed: int) -> dict:
    """The VQ-VAE through ``latent-jax train``, then the generation score of 1,000 images its
    PixelCNN prior draws, as ``latent-jax vae`` scores its samples; its metrics in the
    ``vae`` command's layout for the table."""

    from latent_jax import generate, runs, samplers
    from latent_jax.data import images

    argv = ["train", "--model", "vq-vae", *VQ_FLAGS, "--epochs", str(epochs)]
    argv += ["--seed", str(seed), "--quiet", "--overwrite", "--out", folder]
    metrics = _run(argv, folder)
    run = runs.load_run(folder)
    prior = samplers.load_sampler(os.path.join(folder, samplers.SAMPLER_FILE))
    dataset = images.load_image_dataset("mnist-5k", size=(14, 14), normalization="none")
    generation = generate.generation_metrics(
        run.model, run.variables, dataset, seed=seed, sampler=prior
    )
    x_test = np.asarray(dataset.x_test, np.float32)
    reconstructions = np.asarray(run.apply(x_test).reconstruction)
    return {
        "final": metrics["final"],  # the last epoch's train_* and test_* terms
        "final_test_reconstruction_loss": metrics["test"]["reconstruction"],
        "test_mse_per_pixel": float(np.mean((reconstructions - x_test) ** 2)),
        "generation": generation,
        "train_seconds": metrics["train_seconds"],
        "sampler": metrics.get("prior"),
    }


def _row(name: str, objective: str, sampler: str, metrics: dict) -> dict:
    final = metrics.get("final", {})
    terms = {
        key[len("test_") :]: value
        for key, value in final.items()
        if key.startswith("test_") and key[len("test_") :] not in COMMON_TERMS
    }
    generation = metrics.get("generation") or {}
    return {
        "name": name,
        "objective": objective,
        "sampler": sampler,
        "test_reconstruction": metrics["final_test_reconstruction_loss"],
        "test_mse_per_pixel": metrics["test_mse_per_pixel"],
        "test_terms": terms,
        "generation": {
            k: generation.get(k)
            for k in ("confident_fraction", "label_entropy", "frechet_distance")
        },
        "real_test_halves": generation.get("real_test_halves"),
        "train_seconds": metrics["train_seconds"],
        "sampler_info": metrics.get("sampler"),
    }


def _samples_grid(folders: list[tuple[str, str]], seed: int, path: str, n: int = 12) -> None:
    """``n`` samples of every run, one labelled row each, in pixel units: the run's model
    and sampler reloaded from its folder, decoded as ``latent-jax vae`` decodes samples.png."""
    import jax
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from latent_jax import generate, runs, samplers

    fig, axes = plt.subplots(len(folders), n, figsize=(n * 0.6, len(folders) * 0.66))
    axes = np.atleast_2d(axes)
    key = jax.random.fold_in(jax.random.key(seed), 1)
    for row, (name, folder) in enumerate(folders):
        run = runs.load_run(folder)
        sampler_file = os.path.join(folder, samplers.SAMPLER_FILE)
        sampler = samplers.load_sampler(sampler_file) if os.path.exists(sampler_file) else None
        images = generate.sample_prior(key, run.model, run.variables, n, sampler=sampler)
        images = np.asarray(generate.decoder_mean(images, run.config["settings"]["likelihood"]))
        images = run.normalizer.inverse_transform(images) if run.normalizer else images
        for col in range(n):
            axes[row, col].imshow(np.clip(images[col, ..., 0], 0, 1), cmap="gray", vmin=0, vmax=1)
            axes[row, col].set_xticks([])
            axes[row, col].set_yticks([])
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    fig.subplots_adjust(left=0.2, right=0.99, top=0.99, bottom=0.01, wspace=0.05, hspace=0.05)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _table(rows: list[dict]) -> str:
    lines = [
        "| model | sampler | test rec. (SSE/image) | MSE/pixel | its terms (test) | confident | "
        "label entropy | Fréchet |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        terms = ", ".join(f"{k} {v:.3g}" for k, v in sorted(row["test_terms"].items()))
        g = row["generation"]
        lines.append(
            f"| {row['name']} | {row['sampler']} | {row['test_reconstruction']:.2f} | "
            f"{row['test_mse_per_pixel']:.4f} | {terms} | {g['confident_fraction']:.3f} | "
            f"{g['label_entropy']:.3f} | {g['frechet_distance']:.2f} |"
        )
    return "\n".join(lines)


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join("runs", "vae-family"))
    parser.add_argument("--only", nargs="*", default=None, help="row names to run")
    parser.add_argument(
        "--results", default=os.path.join("benchmarks", "results", "vae_family.json")
    )
    args = parser.parse_args()
    shared = ["--preset", "mnist-demo", "--epochs", str(args.epochs), "--seed", str(args.seed)]
    shared += ["--quiet", "--overwrite"]
    rows, folders = [], []
    for name, objective, flags, sampler in RUNS:
        if args.only and name not in args.only:
            continue
        folder = os.path.join(args.out, _folder(name))
        if objective == "vq-vae":
            print(f"== {name}: latent-jax train --model vq-vae", flush=True)
            metrics = _vq_run(folder, args.epochs, args.seed)
        else:
            argv = ["vae", *shared, "--objective", objective, *flags, "--sampler", sampler]
            print(f"== {name}: latent-jax {' '.join(argv)}", flush=True)
            metrics = _run([*argv, "--out", folder], folder)
        rows.append(_row(name, objective, sampler, metrics))
        folders.append((name, folder))
    if args.only and os.path.exists(args.results):
        # A partial run replaces its rows in the recorded results and keeps the others.
        with open(args.results, encoding="utf-8") as handle:
            recorded = {row["name"]: row for row in json.load(handle)["rows"]}
        recorded.update({row["name"]: row for row in rows})
        rows = [recorded[name] for name, *_ in RUNS if name in recorded]
        folders = [
            (name, os.path.join(args.out, _folder(name))) for name in (r["name"] for r in rows)
        ]
    result = {
        "data": "mnist-5k (14x14)",
        "preset": "mnist-demo",
        "epochs": args.epochs,
        "seed": args.seed,
        "rows": rows,
    }
    os.makedirs(os.path.dirname(args.results) or ".", exist_ok=True)
    with open(args.results, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    _samples_grid(folders, args.seed, os.path.join(args.out, "samples_grid.png"))
    print(_table(rows))
    print(f"results in {args.results}; figures under {args.out}/")


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main_bench()
