"""The tutorial's figures, drawn headless with matplotlib's Agg backend and saved to files.

Every function takes plain arrays, writes one PNG and returns its path; none shows a window.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from latent_jax import validation
from latent_jax.runs import checkpoint

DPI = 100
_GRAY = matplotlib.colormaps["gray"]  # a copy of its own, its lookup table built once


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = DPI) -> str:
    """Writes ``fig`` as a PNG atomically (a full disk leaves no partial file) and closes it.

    Args:
        fig: a matplotlib figure.
        path: the PNG file (its folder is created).
        dpi: the resolution.

    Returns:
        The path written.
    """
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    checkpoint.atomic_write(path, buffer.getvalue())
    return path


def explained_variance_bars(
    explained_variance_ratio: np.ndarray, n_highlight: int, path: str | os.PathLike
) -> str:
    """The tutorial's eigenvalue bar chart: every component's share, the first ones highlighted.

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
    return save_figure(fig, path)


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
    return save_figure(fig, path)


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
        if labels is None:
            ax.scatter(codes[:, 0], codes[:, 1], s=6)
        else:
            scatter = ax.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="viridis", s=6)
            fig.colorbar(scatter, ax=ax)
        ax.set_title(title)
        x_name, y_name = (axis_names or {}).get(title, ("Dimension 1", "Dimension 2"))
        ax.set_xlabel(x_name)
        ax.set_ylabel(y_name)
    fig.tight_layout()
    return save_figure(fig, path)


def _as_images(images: np.ndarray, name: str) -> np.ndarray:
    """Images as (n, height, width, channels) with 1, 3 or 4 channels."""
    images = np.asarray(
        validation.check_array(name, images, finite=False, allow_empty=True, dtype=np.float64)
    )
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4) or len(images) == 0:
        raise ValueError(
            f"{name} must have shape (n, height, width) or (n, height, width, 1|3|4) with "
            f"n >= 1, got {images.shape}"
        )
    return images


def _display_rgba(image: np.ndarray, vmin: float | None, vmax: float | None) -> np.ndarray:
    """One (height, width, channels) image as the (height, width, 4) uint8 RGBA ``imshow`` draws.

    Grey images go through the "gray" colormap, autoscaled to their own minimum and maximum
    unless ``vmin``/``vmax`` are given (a constant image is drawn black, non-finite pixels
    transparent); colour images are read as [0, 1], or 0-255 when larger, and clipped.
    """
    if image.shape[-1] == 1:
        norm = matplotlib.colors.Normalize(vmin, vmax)
        return _GRAY(norm(np.ma.masked_invalid(image[..., 0])), bytes=True)
    if vmin is not None and vmax is not None:
        image = (image - vmin) / max(vmax - vmin, 1e-12)
    elif image.max() > 1.0:
        image = image / 255.0  # 8-bit pixel values
    rgba = (np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
    if rgba.shape[-1] == 3:
        rgba = np.concatenate([rgba, np.full_like(rgba[..., :1], 255)], axis=-1)
    return rgba


def _draw_cells(
    fig,
    cells: Sequence[np.ndarray | None],
    nrows: int,
    ncols: int,
    *,
    vmin: float | None,
    vmax: float | None,
    **grid: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Draws ``cells`` row by row as one figure-sized image, each where ``fig.subplots`` and
    ``imshow`` would put it (centred in its grid box, its aspect kept); ``None`` cells and the
    gaps stay background.

    Args:
        fig: the figure, at its final size.
        cells: images of one shape (height, width, channels), or None; missing ones are blank.
        nrows: rows of the grid.
        ncols: columns of the grid.
        vmin: grey level drawn black, or None to autoscale each image.
        vmax: grey level drawn white, or None.
        **grid: ``left``, ``right``, ``bottom``, ``top``, ``wspace``, ``hspace`` as in
            ``Figure.subplots_adjust``.

    Returns:
        ``(bottoms, tops, lefts, rights)``: the images' edges in figure fractions, arrays of
        shape (nrows,) and (ncols,), where an image Axes' labels and title would attach.
    """
    bottoms, tops, lefts, rights = matplotlib.gridspec.GridSpec(
        nrows, ncols, **grid
    ).get_grid_positions(fig)
    image_height, image_width = next(c for c in cells if c is not None).shape[:2]
    width, height = fig.get_size_inches() * DPI
    # pixels per image pixel: the largest that fits the boxes (those of one grid are equal)
    scale = min(
        (rights[0] - lefts[0]) * width / image_width, (tops[0] - bottoms[0]) * height / image_height
    )
    x_margin = ((rights - lefts) * width - image_width * scale) / 2
    y_margin = ((tops - bottoms) * height - image_height * scale) / 2
    lefts, rights = lefts + x_margin / width, rights - x_margin / width
    bottoms, tops = bottoms + y_margin / height, tops - y_margin / height
    canvas = np.zeros((int(height), int(width), 4), np.uint8)
    for index, cell in enumerate(cells[: nrows * ncols]):
        if cell is None:
            continue
        # the image's edges in canvas pixels (rows from the top), and the pixels whose centres
        # fall inside them, as imshow picks them
        row, col = divmod(index, ncols)
        x0, x1 = lefts[col] * width, rights[col] * width
        y0, y1 = (1.0 - tops[row]) * height, (1.0 - bottoms[row]) * height
        cols = np.arange(np.ceil(x0 - 0.5), min(np.ceil(x1 - 0.5), canvas.shape[1]), dtype=int)
        rows = np.arange(np.ceil(y0 - 0.5), min(np.ceil(y1 - 0.5), canvas.shape[0]), dtype=int)
        if not (len(cols) and len(rows)):
            continue
        rgba = _display_rgba(cell, vmin, vmax)
        if scale > 3 or scale in (1.0, 2.0):  # imshow's default: nearest neighbours there
            source_cols = np.minimum(((cols + 0.5 - x0) / scale).astype(int), image_width - 1)
            source_rows = np.minimum(((rows + 0.5 - y0) / scale).astype(int), image_height - 1)
            pixels = rgba[source_rows[:, None], source_cols]
        else:  # below it a smoothing window, which also averages when downsampling
            box = (
                max(0.0, (cols[0] - x0) / scale),
                max(0.0, (rows[0] - y0) / scale),
                min(image_width, (cols[-1] + 1 - x0) / scale),
                min(image_height, (rows[-1] + 1 - y0) / scale),
            )
            pixels = np.asarray(
                Image.fromarray(rgba).resize(
                    (len(cols), len(rows)), Image.Resampling.HAMMING, box=box
                )
            )
        canvas[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] = pixels
    fig.figimage(canvas, origin="upper")
    return bottoms, tops, lefts, rights


def _image_grid_figure(
    cells: Sequence[np.ndarray | None],
    nrows: int,
    ncols: int,
    *,
    title: str | None,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    cell_inches: float = 1.0,
    vmin: float | None = None,
    vmax: float | None = None,
):
    """A figure of ``nrows`` × ``ncols`` images without ticks, filled row by row.

    The figure is ``ncols * cell_inches`` wide (plus 0.6 inch for row labels) and
    ``nrows * cell_inches * height / width`` tall (plus 0.5 inch for a title and 0.3 inch for
    column labels); ``None`` cells stay blank. Row labels stand left of the rows and column
    labels above the columns, where an Axes' y label and title would.
    """
    shapes = [c.shape for c in cells if c is not None]
    aspect = shapes[0][0] / shapes[0][1]
    left = 0.6 if row_labels else 0.0
    top = (0.5 if title else 0.0) + (0.3 if col_labels else 0.0)
    width = ncols * cell_inches + left
    height = nrows * cell_inches * aspect + top
    fig = plt.figure(figsize=(width, height))
    bottoms, tops, lefts, rights = _draw_cells(
        fig,
        cells,
        nrows,
        ncols,
        vmin=vmin,
        vmax=vmax,
        left=left / width,
        right=1.0,
        bottom=0.0,
        top=1.0 - top / height,
        wspace=0.02,
        hspace=0.02,
    )
    label_x = lefts[0] - matplotlib.rcParams["axes.labelpad"] / 72 / width
    for bottom, top_, label in zip(bottoms, tops, row_labels or (), strict=False):
        fig.text(
            label_x,
            (bottom + top_) / 2,
            label,
            fontsize=9,
            rotation=90,
            rotation_mode="anchor",
            ha="center",
            va="bottom",
        )
    _column_titles(fig, tops[0], lefts, rights, col_labels or (), fontsize=9)
    if title:
        fig.suptitle(title, y=1.0 - 0.1 / height, va="top")
    return fig


def _column_titles(fig, top: float, lefts, rights, titles: Sequence[str], fontsize: float):
    """Writes ``titles`` above the boxes from ``lefts`` to ``rights`` whose top is ``top`` (figure
    fractions), where ``Axes.set_title`` would."""
    y = top + matplotlib.rcParams["axes.titlepad"] / 72 / fig.get_size_inches()[1]
    for x0, x1, text in zip(lefts, rights, titles, strict=False):
        fig.text((x0 + x1) / 2, y, text, fontsize=fontsize, ha="center", va="baseline")


def image_grid(
    images: np.ndarray,
    path: str | os.PathLike,
    nrows: int = 10,
    ncols: int = 10,
    *,
    title: str | None = None,
    cell_inches: float = 1.0,
    vmin: float | None = None,
    vmax: float | None = None,
) -> str:
    """The tutorial's preview of a data set: the first ``nrows * ncols`` images, no ticks.

    Args:
        images: array of shape (n, height, width) or (n, height, width, channels) with 1
            (grey) or 3/4 (RGB(A)) channels, in display units (de-normalized); grey images are
            autoscaled one by one (the tutorial's ``imshow``) unless ``vmin``/``vmax`` are given,
            colour images are read as [0, 1] or, when larger, 0–255.
        path: the PNG file to write.
        nrows: rows of the grid.
        ncols: columns of the grid; fewer images leave blank cells.
        title: the figure title (the tutorial's "AT&T Database of Faces").
        cell_inches: width of one image; the figure is ``ncols * cell_inches`` by
            ``nrows * cell_inches * height / width`` inches (plus 0.5 for a title) at
            :data:`DPI`.
        vmin: grey level drawn black, or None.
        vmax: grey level drawn white, or None.

    Returns:
        The path written.
    """
    images = _as_images(images, "images")
    nrows = validation.check_int("nrows", nrows, 1)
    ncols = validation.check_int("ncols", ncols, 1)
    cells = list(images[: nrows * ncols])
    fig = _image_grid_figure(
        cells, nrows, ncols, title=title, cell_inches=cell_inches, vmin=vmin, vmax=vmax
    )
    return save_figure(fig, path)


def reconstruction_pairs(
    originals: np.ndarray,
    reconstructions: np.ndarray,
    path: str | os.PathLike,
    n: int = 10,
    *,
    title: str | None = "Test Images and Their Reconstructions",
    cell_inches: float = 1.2,
    vmin: float | None = None,
    vmax: float | None = None,
) -> str:
    """Originals (top row) above their reconstructions (bottom row).

    Args:
        originals: array of shape (m, height, width[, channels]), display units.
        reconstructions: array of the same shape.
        path: the PNG file to write.
        n: how many pairs, the first ``min(n, m)``.
        title: the figure title, or None.
        cell_inches: width of one image (see :func:`image_grid` for the figure size; row
            labels add 0.6 inch).
        vmin: grey level drawn black, or None to autoscale each image.
        vmax: grey level drawn white, or None.

    Returns:
        The path written.
    """
    originals = _as_images(originals, "originals")
    reconstructions = _as_images(reconstructions, "reconstructions")
    if originals.shape != reconstructions.shape:
        raise ValueError(
            f"originals and reconstructions must have one shape, got {originals.shape} and "
            f"{reconstructions.shape}"
        )
    count = min(n, len(originals))
    cells = [*originals[:count], *reconstructions[:count]]
    fig = _image_grid_figure(
        cells,
        2,
        count,
        title=title,
        row_labels=("Original", "Reconstruction"),
        cell_inches=cell_inches,
        vmin=vmin,
        vmax=vmax,
    )
    return save_figure(fig, path)


def image_strip(
    images: np.ndarray,
    path: str | os.PathLike,
    title: str | None = None,
    *,
    nrows: int = 2,
    captions: Sequence[str] | None = None,
    figsize: tuple[float, float] | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
) -> str:
    """A few images in ``nrows`` rows: the tutorial's 2×5 figures of generated and interpolated
    faces.

    Args:
        images: array of shape (n, height, width[, channels]), display units.
        path: the PNG file to write.
        title: the figure title, or None.
        nrows: rows; the columns are ``ceil(n / nrows)``.
        captions: one short caption per image (e.g. the interpolation fraction), or None.
        figsize: inches; default ``(2.4 * ncols, 3 * nrows)``, the tutorial's (12, 6) for 2×5.
        vmin: grey level drawn black, or None to autoscale each image.
        vmax: grey level drawn white, or None.

    Returns:
        The path written.
    """
    images = _as_images(images, "images")
    nrows = validation.check_int("nrows", nrows, 1)
    if captions is not None and len(captions) != len(images):
        raise ValueError(
            f"captions must have one entry per image ({len(images)}), got {len(captions)}"
        )
    ncols = -(-len(images) // nrows)
    fig = plt.figure(figsize=figsize or (2.4 * ncols, 3.0 * nrows))
    _, tops, lefts, rights = _draw_cells(
        fig,
        list(images),
        nrows,
        ncols,
        vmin=vmin,
        vmax=vmax,
        left=0.01,
        right=0.99,
        bottom=0.01,
        top=0.9 if title else 0.97,
        wspace=0.05,
        hspace=0.15,
    )
    if captions is not None:
        for row in range(nrows):
            _column_titles(
                fig, tops[row], lefts, rights, captions[row * ncols : (row + 1) * ncols], 10
            )
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def traversal_grid(
    grid: np.ndarray,
    values: Sequence[float],
    path: str | os.PathLike,
    *,
    dims: Sequence[int] | None = None,
    title: str | None = "Latent Traversal",
    cell_inches: float = 1.0,
    vmin: float | None = None,
    vmax: float | None = None,
) -> str:
    """A latent traversal: one row per latent dimension, one column per value.

    Args:
        grid: array of shape (n_dims, n_values, height, width[, channels]) from
            ``generate.latent_traversal``, display units.
        values: the swept values, shape (n_values,), written above the columns.
        path: the PNG file to write.
        dims: the dimension of each row (default 0, 1, ...), written as ``z<d>`` beside it.
        title: the figure title, or None.
        cell_inches: width of one image (see :func:`image_grid`; row labels add 0.6 inch and
            column labels 0.3 inch).
        vmin: grey level drawn black, or None to autoscale each image.
        vmax: grey level drawn white, or None.

    Returns:
        The path written.
    """
    grid = np.asarray(grid, np.float64)
    values = np.asarray(values, np.float64)
    if grid.ndim not in (4, 5) or grid.shape[0] == 0:
        raise ValueError(
            f"grid must have shape (n_dims, n_values, height, width[, channels]), got {grid.shape}"
        )
    if values.shape != (grid.shape[1],):
        raise ValueError(
            f"values must have shape ({grid.shape[1]},) to match the grid's columns, got "
            f"{values.shape}"
        )
    n_dims, n_values = grid.shape[:2]
    dims = list(range(n_dims)) if dims is None else list(dims)
    if len(dims) != n_dims:
        raise ValueError(f"dims must have one entry per row ({n_dims}), got {len(dims)}")
    cells = list(_as_images(grid.reshape(n_dims * n_values, *grid.shape[2:]), "grid"))
    fig = _image_grid_figure(
        cells,
        n_dims,
        n_values,
        title=title,
        row_labels=[f"z{d}" for d in dims],
        col_labels=[f"{v:+.1f}" for v in values],
        cell_inches=cell_inches,
        vmin=vmin,
        vmax=vmax,
    )
    return save_figure(fig, path)


# --------------------------------------------------------------------------------------
# Denoising and anomaly detection.


def psnr_vs_noise(
    levels: Sequence[float],
    psnr: Mapping[str, Sequence[float]],
    path: str | os.PathLike,
    *,
    xlabel: str = "Noise level",
    title: str | None = "Denoising: PSNR against the noise level",
) -> str:
    """One line per method: PSNR (dB) against the noise level.

    Args:
        levels: the noise levels, shape (n_levels,).
        psnr: method name -> PSNR at each level, shape (n_levels,).
        path: the PNG file to write.
        xlabel: the x axis' label (e.g. "Gaussian noise σ").
        title: the figure title, or None.

    Returns:
        The path written.
    """
    levels = np.asarray(levels, np.float64)
    if levels.ndim != 1 or len(levels) == 0:
        raise ValueError(
            f"levels must have shape (n_levels,) with n_levels >= 1, got {levels.shape}"
        )
    for name, values in psnr.items():
        if np.shape(values) != levels.shape:
            raise ValueError(
                f"psnr[{name!r}] must have shape {levels.shape} (one value per level), got "
                f"{np.shape(values)}"
            )
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, values in psnr.items():
        ax.plot(levels, np.asarray(values, np.float64), marker="o", label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("PSNR (dB)")
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)


def denoising_rows(
    clean: np.ndarray,
    noisy: np.ndarray,
    outputs: Mapping[str, np.ndarray],
    path: str | os.PathLike,
    n: int = 10,
    *,
    title: str | None = None,
    cell_inches: float = 1.0,
    vmin: float | None = 0.0,
    vmax: float | None = 1.0,
) -> str:
    """Rows of images: clean, noisy, then each method's denoised output, one example a column.

    Args:
        clean: array of shape (m, height, width[, channels]), display units.
        noisy: array of the same shape.
        outputs: method name -> array of the same shape.
        path: the PNG file to write.
        n: how many examples, the first ``min(n, m)``.
        title: the figure title, or None.
        cell_inches: width of one image.
        vmin: grey level drawn black (default 0), or None to autoscale each image.
        vmax: grey level drawn white (default 1), or None.

    Returns:
        The path written.
    """
    rows = {"Clean": clean, "Noisy": noisy, **outputs}
    arrays = {name: _as_images(images, name) for name, images in rows.items()}
    shape = arrays["Clean"].shape
    for name, images in arrays.items():
        if images.shape != shape:
            raise ValueError(f"{name} images have shape {images.shape}, expected {shape}")
    count = min(n, shape[0])
    cells = [image for images in arrays.values() for image in images[:count]]
    fig = _image_grid_figure(
        cells,
        len(arrays),
        count,
        title=title,
        row_labels=list(arrays),
        cell_inches=cell_inches,
        vmin=vmin,
        vmax=vmax,
    )
    return save_figure(fig, path)


def score_histograms(
    scores: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | os.PathLike,
    *,
    bins: int = 30,
    title: str | None = "Anomaly scores: normal against anomalous",
) -> str:
    """One panel per method: histograms of the scores of normal and anomalous examples.

    Args:
        scores: method name -> ``(normal_scores, anomalous_scores)``, 1-D arrays.
        path: the PNG file to write.
        bins: histogram bins per panel.
        title: the figure title, or None.

    Returns:
        The path written.
    """
    if not scores:
        raise ValueError("scores must name at least one method")
    n = len(scores)
    ncols = min(n, 3)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    for ax, (name, (normal, anomalous)) in zip(axes.flat, scores.items(), strict=False):
        normal = np.ravel(np.asarray(normal, np.float64))
        anomalous = np.ravel(np.asarray(anomalous, np.float64))
        both = np.concatenate([normal, anomalous])
        edges = np.histogram_bin_edges(both, bins=bins)
        ax.hist(normal, bins=edges, alpha=0.6, density=True, label=f"normal ({len(normal)})")
        ax.hist(
            anomalous, bins=edges, alpha=0.6, density=True, label=f"anomalous ({len(anomalous)})"
        )
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("score (higher = more anomalous)", fontsize=8)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def roc_curves(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray, float]],
    path: str | os.PathLike,
    *,
    title: str | None = "ROC curves",
) -> str:
    """ROC curves of several methods on one axes, with their AUROC in the legend.

    Args:
        curves: method name -> ``(false_positive_rate, true_positive_rate, auroc)`` as from
            ``sklearn.metrics.roc_curve`` and ``roc_auc_score``.
        path: the PNG file to write.
        title: the figure title, or None.

    Returns:
        The path written.
    """
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    for name, (fpr, tpr, auc) in curves.items():
        ax.plot(np.asarray(fpr), np.asarray(tpr), label=f"{name} (AUROC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("False positive rate")
    ax.set_ylabel("True positive rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path)


def ranked_images(
    most: np.ndarray,
    least: np.ndarray,
    path: str | os.PathLike,
    *,
    title: str | None = None,
    cell_inches: float = 1.0,
    vmin: float | None = None,
    vmax: float | None = None,
) -> str:
    """Two rows: the most anomalous examples (top, "Most") and the least anomalous ("Least").

    Args:
        most: array of shape (n, height, width[, channels]), most anomalous first.
        least: array of shape (m, height, width[, channels]), least anomalous first.
        path: the PNG file to write.
        title: the figure title, or None.
        cell_inches: width of one image.
        vmin: grey level drawn black, or None to autoscale each image.
        vmax: grey level drawn white, or None.

    Returns:
        The path written.
    """
    most = _as_images(most, "most")
    least = _as_images(least, "least")
    if most.shape[1:] != least.shape[1:]:
        raise ValueError(
            f"most and least must hold images of one shape, got {most.shape[1:]} and "
            f"{least.shape[1:]}"
        )
    ncols = max(len(most), len(least))
    cells = [*most, *[None] * (ncols - len(most)), *least, *[None] * (ncols - len(least))]
    fig = _image_grid_figure(
        cells,
        2,
        ncols,
        title=title,
        row_labels=("Most", "Least"),
        cell_inches=cell_inches,
        vmin=vmin,
        vmax=vmax,
    )
    return save_figure(fig, path)


def beta_over_training(
    betas: Mapping[str, Sequence[float]],
    path: str | os.PathLike,
    *,
    xlabel: str = "Optimizer step",
    title: str = "β over training",
) -> str:
    """β against training time, one line per schedule.

    Args:
        betas: mapping from a schedule's name to its β at every step (or epoch).
        path: the PNG file to write.
        xlabel: what the horizontal axis counts.
        title: the figure title.

    Returns:
        The path written.
    """
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for label, values in betas.items():
        values = np.asarray(values, np.float64)
        ax.plot(np.arange(len(values)), values, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("β")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)


def terms_per_schedule(
    kl: Mapping[str, np.ndarray],
    reconstruction: Mapping[str, np.ndarray],
    path: str | os.PathLike,
    *,
    title: str = "KL and reconstruction terms per β schedule",
) -> str:
    """Two panels, the KL term and the reconstruction term per epoch, one line per schedule.

    Each series is an array of shape (runs, epochs) (or (epochs,)); the line is the mean over
    runs and the band spans their minimum to maximum.

    Args:
        kl: mapping from a schedule's name to its per-epoch KL term.
        reconstruction: mapping from the same names to the per-epoch reconstruction term.
        path: the PNG file to write.
        title: the figure title.

    Returns:
        The path written.
    """
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for ax, series, name in ((axes[0], kl, "KL term"), (axes[1], reconstruction, "Reconstruction")):
        for label, values in series.items():
            values = np.atleast_2d(np.asarray(values, np.float64))
            epochs = np.arange(1, values.shape[1] + 1)
            (line,) = ax.plot(epochs, np.nanmean(values, axis=0), label=label)
            if values.shape[0] > 1:
                low, high = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
                ax.fill_between(epochs, low, high, color=line.get_color(), alpha=0.2)
        ax.set_xlabel("Epoch")
        ax.set_ylabel(f"{name} (nats per example)")
        ax.set_title(name)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


# --------------------------------------------------------------------------------------
# Disentanglement.


def information_matrix(
    matrix: np.ndarray,
    factor_names: Sequence[str],
    path: str | os.PathLike,
    *,
    title: str | None = None,
) -> str:
    """The factor-latent information matrix as a heat map with its values written in.

    Args:
        matrix: array of shape (num_codes, num_factors), e.g. the mutual information of each
            code dimension with each factor divided by the factor's entropy (in [0, 1]).
        factor_names: the factors' names, shape (num_factors,), below the columns.
        path: the PNG file to write.
        title: the figure title, or None.

    Returns:
        The path written.
    """
    matrix = np.asarray(matrix, np.float64)
    if matrix.ndim != 2 or 0 in matrix.shape:
        raise ValueError(f"matrix must have shape (num_codes, num_factors), got {matrix.shape}")
    names = list(factor_names)
    if len(names) != matrix.shape[1]:
        raise ValueError(
            f"factor_names must name the matrix's {matrix.shape[1]} columns, got {len(names)}"
        )
    codes, factors = matrix.shape
    fig, ax = plt.subplots(figsize=(2.0 + 1.0 * factors, 1.2 + 0.45 * codes))
    image = ax.imshow(
        matrix, cmap="viridis", vmin=0.0, vmax=max(1.0, float(matrix.max())), aspect="auto"
    )
    for (row, col), value in np.ndenumerate(matrix):
        colour = "black" if value > 0.6 else "white"
        ax.text(col, row, f"{value:.2f}", ha="center", va="center", color=colour, fontsize=8)
    ax.set_xticks(range(factors), names, rotation=30, ha="right")
    ax.set_yticks(range(codes), [f"z{j}" for j in range(codes)])
    if title:
        ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.05)
    fig.tight_layout()
    return save_figure(fig, path)
