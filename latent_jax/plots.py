"""The seed's figures, drawn headless with matplotlib's Agg backend and saved to files.

Every function takes plain arrays, writes one PNG and returns its path; none shows a window.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

DPI = 100


def _save(fig, path: str | os.PathLike) -> str:
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def explained_variance_bars(
    explained_variance_ratio: np.ndarray, n_highlight: int, path: str | os.PathLike
) -> str:
    """The seed's eigenvalue bar chart: every component's share, the first ones highlighted.

    Args:
        explained_variance_ratio: array of shape (n_components,), shares of the total variance.
        n_highlight: how many leading components to colour (the retained ones).
        path: the PNG file to write.

    Returns:
        The path written.
    """
    ratio = np.asarray(explained_variance_ratio, np.float64)
    count = len(ratio)
    positions = np.arange(1, count + 1)
    fig, ax = plt.subplots(figsize=(10, 6))
    ax.bar(positions, ratio, alpha=0.5, label="Eigenvalues")
    ax.bar(
        positions[:n_highlight],
        ratio[:n_highlight],
        color="red",
        label=f"First {n_highlight} Eigenvalues",
    )
    cumulative = float(np.sum(ratio[:n_highlight]))
    ax.set_xlabel("Principal Component")
    ax.set_ylabel("Percentage of Explained Variance")
    ax.set_title(
        f"Percentage of Variance Explained by Each Eigenvalue (All {count}); "
        f"first {n_highlight}: {cumulative:.2%}"
    )
    ax.set_xticks(range(1, count + 1, max(1, count // 10)))
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def loss_curves(
    curves: Mapping[str, Sequence[float]],
    path: str | os.PathLike,
    *,
    title: str = "Training and Test Loss",
    log_scale: bool | None = None,
) -> str:
    """Loss curves per epoch, one line per named series.

    Args:
        curves: mapping from a label (e.g. ``"Train Loss"``) to per-epoch values.
        path: the PNG file to write.
        title: the figure title.
        log_scale: log y-axis; None chooses it when the positive series differ by more than
            two orders of magnitude (the VAE's KL and reconstruction terms do).

    Returns:
        The path written.
    """
    fig, ax = plt.subplots(figsize=(10, 6))
    positive_levels = []
    for label, values in curves.items():
        values = np.asarray(values, np.float64)
        ax.plot(np.arange(1, len(values) + 1), values, label=label)
        if values.size and np.all(values > 0):
            positive_levels.append(np.median(values))
    if log_scale is None:
        log_scale = len(positive_levels) > 1 and max(positive_levels) / min(positive_levels) > 100
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def latent_scatter_pair(
    panels: Mapping[str, np.ndarray],
    labels: np.ndarray | None,
    path: str | os.PathLike,
    *,
    axis_names: Mapping[str, tuple[str, str]] | None = None,
) -> str:
    """Side-by-side 2-D scatters of the first two latent coordinates, coloured by class.

    Args:
        panels: mapping from a panel title (e.g. ``"PCA"``) to codes of shape (n, >= 2).
        labels: int array of shape (n,) used as colours, or None.
        path: the PNG file to write.
        axis_names: optional per-panel (x label, y label).

    Returns:
        The path written.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(10 * len(panels), 8), squeeze=False)
    for ax, (title, codes) in zip(axes[0], panels.items(), strict=True):
        codes = np.asarray(codes)
        scatter = ax.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="viridis", s=6)
        if labels is not None:
            fig.colorbar(scatter, ax=ax)
        ax.set_title(title)
        x_name, y_name = (axis_names or {}).get(title, ("Dimension 1", "Dimension 2"))
        ax.set_xlabel(x_name)
        ax.set_ylabel(y_name)
    fig.tight_layout()
    return _save(fig, path)
