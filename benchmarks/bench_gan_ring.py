"""Mode coverage of an MLP GAN on eight Gaussians on a ring (the GAN's mode-collapse check).

2,000 training points from eight Gaussians (standard deviation 0.05) on a circle of radius 2;
the generator and the discriminator are MLPs of two hidden layers of 128 units, z is 2-D,
Adam (1e-3, β1 = 0.5), batch 100, alternating updates. After training, 2,000 samples are
counted per mode within 3 standard deviations of its centre
(:func:`latent_jax.adversarial.mode_coverage`); a mode counts as covered with at least 50 of
them (a fifth of its share of 250). Run as

    python benchmarks/bench_gan_ring.py [--epochs 150] [--seeds 0 1 2]

Writes benchmarks/results/gan/ring.json and ring_samples.png (the data beside the samples of
the first seed).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import numpy as np

from latent_jax import plots
from latent_jax.adversarial import gan_objective, mode_coverage, ring_of_gaussians
from latent_jax.models.gan import MLPGAN
from latent_jax.train import TrainConfig, fit, fit_many

STD = 0.05
COVERED = 50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default=os.path.join("benchmarks", "results", "gan"))
    args = parser.parse_args()
    x, centers = ring_of_gaussians(2000, std=STD)
    objective = gan_objective(MLPGAN(data_dim=2, latent_dim=2, hidden_dims=(128, 128)))
    config = TrainConfig(
        epochs=args.epochs, batch_size=100, learning_rate=1e-3, b1=0.5, quiet=True, log_every=0
    )
    keys = jax.numpy.stack([jax.random.key(seed) for seed in args.seeds])
    start = time.perf_counter()
    # The seeds as one vmapped run (fit_many); the first seed again alone (fit), for its figure.
    many, history = fit_many(objective, x, None, config, keys)
    seconds = time.perf_counter() - start
    z = jax.random.normal(jax.random.key(1), (2000, 2))
    runs = []
    for k, seed in enumerate(args.seeds):
        params = jax.tree.map(lambda leaf, k=k: leaf[k], many.params)
        samples = np.asarray(objective.model.apply({"params": params}, z, method="generate"))
        counts, near = mode_coverage(samples, centers, 3 * STD)
        runs.append(
            {
                "seed": seed,
                "counts_within_3_std": counts.tolist(),
                "modes_covered": int(np.sum(counts >= COVERED)),
                "fraction_within_3_std": near,
                "final_discriminator_loss": float(history["train_discriminator_loss"][k, -1]),
                "final_generator_loss": float(history["train_generator_loss"][k, -1]),
            }
        )
        if k == 0:
            first = samples
    state, _ = fit(objective, x, None, config, keys[0])
    alone = objective.model.apply({"params": state.params}, z, method="generate")
    os.makedirs(args.out, exist_ok=True)
    plots.latent_scatter_pair(
        {"Data: 8 Gaussians, std 0.05": x, f"GAN samples, seed {args.seeds[0]}": first},
        None,
        os.path.join(args.out, "ring_samples.png"),
        axis_names={},
    )
    result = {
        "data": {"n": 2000, "modes": 8, "radius": 2.0, "std": STD},
        "epochs": args.epochs,
        "steps": args.epochs * 20,
        "covered_threshold": COVERED,
        "fit_many_seconds": seconds,
        "fit_equals_fit_many_run_0": bool(
            np.allclose(np.asarray(alone), first, rtol=1e-3, atol=1e-4)
        ),
        "runs": runs,
    }
    path = os.path.join(args.out, "ring.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    for run in runs:
        print(
            f"seed {run['seed']}: {run['modes_covered']}/8 modes, counts "
            f"{run['counts_within_3_std']}, {run['fraction_within_3_std']:.3f} within 3 std"
        )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
