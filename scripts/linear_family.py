"""The linear family side by side: two figures and their numbers.

``codes.png``: the codes of the tutorial's synthetic classification set (``make_classification``,
10,000 x 50, 3 classes; the 80/20 split with ``random_state=42`` and standardization on the
training split, :func:`latent_jax.data.load_tabular`) under four linear models with two
components, each fitted on the training split and applied to the 2,000 test rows, coloured by
class: ``PCA`` (the principal coordinates), probabilistic PCA (the posterior means of
:func:`latent_jax.linear.ppca_posterior`), ``FactorAnalysis`` (the posterior means of the
factors) and ``KernelPCA`` with the RBF kernel (fitted on 3,000 training rows: its Gram
matrix grows with the square of the rows).

``fa_vs_ppca.png``: scikit-learn's example "Model selection with Probabilistic PCA and Factor
Analysis (FA)" reproduced with latent_jax's estimators and scikit-learn's side by side: 500
rows of rank-5 data in 25 features plus homoscedastic noise (left) or heteroscedastic noise
(right), the mean held-out log-likelihood of 5-fold cross-validation (``cross_val_score``,
which calls each estimator's ``score``) against the number of components. Probabilistic PCA
is ``PCA``'s ``score``, factor analysis ``FactorAnalysis``'s. The example's grid starts at 0
components, which PCA does not take here; this grid is 1, 3, ..., 23.

Writes ``codes.png``, ``fa_vs_ppca.png`` and ``linear_family.json`` (the scores, the best
number of components of each model and library, and the largest difference between the two
libraries' scores) into ``--out``. Factor analysis uses both libraries' defaults
(``svd_method="randomized"``, ``tol=1e-2``): their randomized eigensolvers differ, so the EM
stops at slightly different points and the held-out scores differ in the second decimal;
with ``svd_method="lapack"`` they agree to round-off.

Usage::

    python scripts/linear_family.py                  # into benchmarks/results/linear_family/
    python scripts/linear_family.py --out runs/mine  # about 25 s on two cores
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import linalg
from sklearn import decomposition as sk
from sklearn.model_selection import cross_val_score

import latent_jax
from latent_jax import data, plots
from latent_jax.linear import fit_ppca, ppca_posterior

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "linear_family"
KERNEL_ROWS = 3_000
COMPONENT_GRID = tuple(range(1, 25, 2))


def code_panels(seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The test rows' codes under each model, and their classes."""
    dataset = data.load_tabular("synthetic-classification", random_state=seed)
    train, test = np.asarray(dataset.x_train, np.float64), np.asarray(dataset.x_test, np.float64)
    panels = {"PCA": latent_jax.PCA(2).fit(train).transform(test)}
    with jax.enable_x64(True):
        state = fit_ppca(train, 2)
        panels["probabilistic PCA (posterior means)"] = np.asarray(ppca_posterior(state, test)[0])
    panels["factor analysis (posterior means)"] = (
        latent_jax.FactorAnalysis(2).fit(train).transform(test)
    )
    rows = np.random.default_rng(seed).choice(len(train), KERNEL_ROWS, replace=False)
    kernel = latent_jax.KernelPCA(2, kernel="rbf", random_state=seed).fit(train[rows])
    panels["kernel PCA (RBF)"] = kernel.transform(test)
    return panels, np.asarray(dataset.y_test)


def draw_codes(panels: dict[str, np.ndarray], labels: np.ndarray, path: Path) -> str:
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2))
    for ax, (title, codes) in zip(axes, panels.items(), strict=True):
        ax.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="viridis", s=4, alpha=0.7)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("code 1")
        ax.set_ylabel("code 2")
    fig.suptitle("Test rows of the tutorial's synthetic set (colour: class), two components")
    fig.tight_layout()
    return plots.save_figure(fig, path)


def example_data(seed: int = 42) -> dict[str, np.ndarray]:
    """scikit-learn's example: rank 5 in 25 features, homo- and heteroscedastic noise."""
    n_samples, n_features, rank, sigma = 500, 25, 5, 1.0
    rng = np.random.RandomState(seed)
    basis, _, _ = linalg.svd(rng.randn(n_features, n_features))
    x = rng.randn(n_samples, rank) @ basis[:, :rank].T
    homoscedastic = x + sigma * rng.randn(n_samples, n_features)
    sigmas = sigma * rng.rand(n_features) + sigma / 2.0
    heteroscedastic = x + rng.randn(n_samples, n_features) * sigmas
    return {"homoscedastic noise": homoscedastic, "heteroscedastic noise": heteroscedastic}


def held_out_scores(x: np.ndarray) -> dict[str, list[float]]:
    """Mean 5-fold held-out log-likelihood per number of components, per model and library."""
    models = {
        "PPCA, latent_jax": lambda n: latent_jax.PCA(n),
        "FA, latent_jax": lambda n: latent_jax.FactorAnalysis(n),
        "PPCA, scikit-learn": lambda n: sk.PCA(n, svd_solver="full"),
        "FA, scikit-learn": lambda n: sk.FactorAnalysis(n),
    }
    return {
        name: [float(np.mean(cross_val_score(make(n), x))) for n in COMPONENT_GRID]
        for name, make in models.items()
    }


def draw_scores(scores: dict[str, dict[str, list[float]]], path: Path) -> str:
    styles = {
        "PPCA, latent_jax": {"color": "tab:blue", "marker": "o", "linestyle": "-"},
        "FA, latent_jax": {"color": "tab:red", "marker": "o", "linestyle": "-"},
        "PPCA, scikit-learn": {"color": "tab:blue", "marker": "x", "linestyle": "--", "ms": 9},
        "FA, scikit-learn": {"color": "tab:red", "marker": "x", "linestyle": "--", "ms": 9},
    }
    fig, axes = plt.subplots(1, len(scores), figsize=(6.5 * len(scores), 4.5))
    for ax, (title, curves) in zip(axes, scores.items(), strict=True):
        for name, values in curves.items():
            ax.plot(COMPONENT_GRID, values, label=name, **styles[name])
        ax.axvline(5, color="gray", linestyle=":", label="true rank 5")
        ax.set_title(title)
        ax.set_xlabel("number of components")
        ax.set_ylabel("mean held-out log-likelihood (5-fold CV)")
        ax.legend(loc="best", fontsize=9)
    fig.tight_layout()
    return plots.save_figure(fig, path)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--seed", type=int, default=42, help="the tutorial's random_state")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    panels, labels = code_panels(args.seed)
    draw_codes(panels, labels, args.out / "codes.png")
    scores = {name: held_out_scores(x) for name, x in example_data(args.seed).items()}
    draw_scores(scores, args.out / "fa_vs_ppca.png")
    summary = {}
    for name, curves in scores.items():
        best = {model: COMPONENT_GRID[int(np.argmax(v))] for model, v in curves.items()}
        difference = {
            model: float(
                np.max(
                    np.abs(
                        np.subtract(
                            curves[f"{model}, latent_jax"], curves[f"{model}, scikit-learn"]
                        )
                    )
                )
            )
            for model in ("PPCA", "FA")
        }
        summary[name] = {"best_n_components": best, "max_abs_difference": difference}
    result = {
        "component_grid": list(COMPONENT_GRID),
        "scores": scores,
        "summary": summary,
        "seconds": time.perf_counter() - start,
    }
    (args.out / "linear_family.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return result


if __name__ == "__main__":
    main()
