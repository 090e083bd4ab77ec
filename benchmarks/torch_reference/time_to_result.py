"""The seed's PyTorch code for a whole job, as a standalone program: data, training, figures.

``benchmarks/bench_time_to_result.py`` runs it in a fresh process and times it from the spawn
to the last file written; importing torch, scikit-learn and matplotlib is part of that time.
It never imports jax or latent_jax.

* ``example1 --out DIR``: the seed's first example. ``make_classification`` (10,000 x 50, the
  seed's arguments, random_state 42), an 80/20 split (random_state 42), StandardScaler; PCA with
  5 components and the full spectrum; the seed's autoencoder trained by the seed's loop
  (:func:`torch_reference.example1.train_autoencoder`, 500 epochs); the seed's figures
  explained_variance.png, loss_curves.png and latent_scatter.png; metrics.json.
* ``faces-demo --data NPZ --out DIR``: the face VAE on the arrays of
  ``latent-jax vae --preset cpu-demo``, read from ``NPZ`` (``x_train``, ``x_test``: normalized
  images (n, 25, 25, 1); ``mean``, ``std``: the normalization, for display), with the
  hyper-parameters given as flags; the seed's model at that size, loss (summed squared error
  plus β·KL, monotonic β) and loop, the test split evaluated every epoch
  (:func:`torch_reference.faces_vae.train_vae`); then dataset_preview.png, loss_curves.png,
  reconstructions.png, samples.png, interpolation.png, traversal.png and metrics.json.

metrics.json (written last) holds the final losses and the time split: ``start_time``
(``time.time()`` at the first line, before any import), ``import_seconds``, ``data_seconds``,
``train_seconds`` (the epoch loop), ``figure_seconds`` and ``torch_threads`` (PyTorch's default,
every core, unless ``--threads N`` is given).

Usage::

    python benchmarks/torch_reference/time_to_result.py example1 --out /tmp/torch-example1
    python benchmarks/torch_reference/time_to_result.py --threads 1 faces-demo --data faces.npz \
        --out DIR --epochs 40 --batch-size 16 --learning-rate 5e-4 --beta-max 1 --beta-tau 10 \
        --hidden-dim 100 --latent-dim 10 --seed 42
"""

import time

START = time.time()

import argparse  # noqa: E402 (the imports are timed)
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn import datasets  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from torch_reference.example1 import train_autoencoder  # noqa: E402
from torch_reference.faces_vae import train_vae  # noqa: E402

IMPORTED = time.time()

# The seed's first example: the seed's make_classification call, as in
# latent_jax.data.SYNTHETIC_CLASSIFICATION_PARAMS, written out so this process never imports
# latent_jax (whose import brings jax).
RANDOM_SEED = 42
HIDDEN_DIM = 5
TEST_SIZE = 0.2
CLASSIFICATION = {
    "n_samples": 10000,
    "n_features": 50,
    "n_redundant": 10,
    "n_informative": 10,
    "n_clusters_per_class": 2,
    "n_classes": 3,
    "class_sep": 2,
}
N_SHOWN = 10
TRAVERSAL_VALUES = np.linspace(-3.0, 3.0, N_SHOWN)


def _save(path: Path) -> None:
    plt.savefig(path)
    plt.close("all")


def _write_metrics(out: Path, metrics: dict) -> None:
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")


def example1(out: Path, epochs: int) -> None:
    """The seed's first example, its three figures and metrics.json in ``out``."""
    start = time.time()
    x, y = datasets.make_classification(**CLASSIFICATION, random_state=RANDOM_SEED)
    x_train, x_test, y_train, _ = train_test_split(
        x, y, test_size=TEST_SIZE, random_state=RANDOM_SEED
    )
    sc = StandardScaler()
    x_train_std = sc.fit_transform(x_train)
    x_test_std = sc.transform(x_test)
    pca = PCA(n_components=HIDDEN_DIM)
    pca_scores = pca.fit_transform(x_train_std)
    pca_full = PCA(n_components=None, svd_solver="auto")
    pca_full.fit(x_train_std)
    data_seconds = time.time() - start

    result = train_autoencoder(x_train_std, x_test_std, num_epochs=epochs, hidden_dim=HIDDEN_DIM)
    model = result["model"]

    start = time.time()
    eigenvalues = pca_full.explained_variance_
    explained_variance_ratio = eigenvalues / np.sum(eigenvalues)
    n = len(eigenvalues)
    plt.figure(figsize=(10, 6))
    plt.bar(range(1, n + 1), explained_variance_ratio, alpha=0.5, label="Eigenvalues")
    plt.bar(
        range(1, HIDDEN_DIM + 1),
        explained_variance_ratio[:HIDDEN_DIM],
        color="red",
        label=f"First {HIDDEN_DIM} Eigenvalues",
    )
    plt.xlabel("Principal Component")
    plt.ylabel("Percentage of Explained Variance")
    plt.title(f"Percentage of Variance Explained by Each Eigenvalue (All {n})")
    plt.xticks(range(1, n + 1, 5))
    plt.legend()
    _save(out / "explained_variance.png")

    plt.figure(figsize=(10, 5))
    plt.plot(result["train_losses"], label="Train Loss")
    plt.plot(result["test_losses"], label="Test Loss")
    plt.xlabel("Epoch")
    plt.ylabel("Loss")
    plt.title("Training and Test Loss")
    plt.legend()
    _save(out / "loss_curves.png")

    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        encoded = model.encode(torch.FloatTensor(x_train_std).to(device)).cpu().numpy()
    plt.figure(figsize=(20, 8))
    for position, (title, codes, axes) in enumerate(
        [
            ("PCA", pca_scores, ("First Principal Component", "Second Principal Component")),
            ("Autoencoder", encoded, ("First Encoded Dimension", "Second Encoded Dimension")),
        ]
    ):
        plt.subplot(1, 2, position + 1)
        scatter = plt.scatter(codes[:, 0], codes[:, 1], c=y_train, cmap="viridis")
        plt.colorbar(scatter)
        plt.title(title)
        plt.xlabel(axes[0])
        plt.ylabel(axes[1])
    plt.tight_layout()
    _save(out / "latent_scatter.png")
    figure_seconds = time.time() - start

    _write_metrics(
        out,
        {
            "job": "example1",
            "n_train": len(x_train),
            "n_test": len(x_test),
            "epochs": epochs,
            "pca_cumulative_explained_variance": float(np.sum(pca.explained_variance_ratio_)),
            "ae_train_mse": result["train_mse"],
            "ae_test_mse": result["test_mse"],
            "ae_final_epoch_train_loss": result["train_losses"][-1],
            "ae_final_epoch_test_loss": result["test_losses"][-1],
            **_timings(data_seconds, result["train_seconds"], figure_seconds),
        },
    )


def _timings(data_seconds: float, train_seconds: float, figure_seconds: float) -> dict:
    return {
        "start_time": START,
        "import_seconds": IMPORTED - START,
        "data_seconds": data_seconds,
        "train_seconds": train_seconds,
        "figure_seconds": figure_seconds,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def _image_row(images: np.ndarray, path: Path, title: str, scale: dict, captions=None) -> None:
    """The seed's 2 x 5 grid of generated images."""
    fig, axes = plt.subplots(2, 5, figsize=(12, 6))
    for i, ax in enumerate(axes.flatten()):
        ax.imshow(images[i].squeeze(), cmap="gray", **scale)
        ax.axis("off")
        if captions is not None:
            ax.set_title(captions[i])
    fig.suptitle(title)
    plt.tight_layout()
    _save(path)


def faces_demo(out: Path, data: Path, args: argparse.Namespace) -> None:
    """The face VAE on the arrays in ``data``, its six figures and metrics.json in ``out``."""
    start = time.time()
    with np.load(data) as arrays:
        x_train, x_test = arrays["x_train"], arrays["x_test"]
        mean, std = float(arrays["mean"]), float(arrays["std"])
    image_size = tuple(int(n) for n in x_train.shape[1:3])
    data_seconds = time.time() - start

    result = train_vae(
        x_train,
        x_test,
        num_epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        beta_max=args.beta_max,
        beta_tau=args.beta_tau,
        hidden_dim=args.hidden_dim,
        latent_dim=args.latent_dim,
        image_size=image_size,
        seed=args.seed,
    )
    model = result["model"]

    start = time.time()
    model.eval()
    device = next(model.parameters()).device

    def display(images) -> np.ndarray:  # NCHW tensor or NHWC array -> NHWC in data units
        if isinstance(images, torch.Tensor):
            images = images.cpu().numpy().transpose(0, 2, 3, 1)
        return images * std + mean

    def as_tensor(images: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).to(device)

    shown_train = display(x_train)
    scale = {"vmin": float(shown_train.min()), "vmax": float(shown_train.max())}
    fig, axes = plt.subplots(
        10,
        10,
        figsize=(10, 12),
        subplot_kw={"xticks": [], "yticks": []},
        gridspec_kw={"hspace": 0.01, "wspace": 0.01},
    )
    for i, ax in enumerate(axes.flat):
        if i < len(shown_train):
            ax.imshow(shown_train[i].squeeze(), cmap="gray", **scale)
        else:
            ax.axis("off")
    fig.suptitle("LFW Faces (scikit-image, 25x25): training images")
    plt.subplots_adjust(top=0.95)
    _save(out / "dataset_preview.png")

    plt.figure(figsize=(10, 7))
    plt.plot(result["train_losses"], label="Train Loss")
    plt.plot(result["test_losses"], label="Test Loss")
    plt.plot(result["reconstruction_losses"], label="Reconstruction Loss")
    plt.plot(result["kl_losses"], label="KL Divergence")
    plt.xlabel("Epochs")
    plt.ylabel("Loss")
    plt.legend()
    plt.title("VAE Training Progress")
    _save(out / "loss_curves.png")

    with torch.no_grad():
        test = as_tensor(x_test[:N_SHOWN])
        test_mean, _ = model.encode(test)
        reconstructed = display(model.decode(test_mean))
        z = torch.randn(N_SHOWN, args.latent_dim).to(device)
        samples = display(model.decode(z))
        rng = np.random.default_rng(args.seed)
        first, second = (int(i) for i in rng.choice(len(x_train), 2, replace=False))
        ends, _ = model.encode(as_tensor(x_train[[first, second]]))
        steps = torch.linspace(0.0, 1.0, N_SHOWN, device=device)[:, None]
        path = display(model.decode(ends[0] + (ends[1] - ends[0]) * steps))
        base, _ = model.encode(as_tensor(x_train[:1]))
        codes = base.repeat(args.latent_dim * N_SHOWN, 1)
        for dim in range(args.latent_dim):
            rows = slice(dim * N_SHOWN, (dim + 1) * N_SHOWN)
            codes[rows, dim] = torch.from_numpy(TRAVERSAL_VALUES).float().to(device)
        traversal = display(model.decode(codes))

    originals = display(x_test[:N_SHOWN])
    fig, axes = plt.subplots(2, N_SHOWN, figsize=(15, 3.5))
    for i in range(N_SHOWN):
        for row, images in enumerate((originals, reconstructed)):
            axes[row, i].imshow(images[i].squeeze(), cmap="gray", **scale)
            axes[row, i].axis("off")
    fig.suptitle("Test images (top) and their reconstructions (bottom)")
    plt.tight_layout()
    _save(out / "reconstructions.png")
    _image_row(samples, out / "samples.png", "Images Generated from the Prior", scale)
    _image_row(
        path,
        out / "interpolation.png",
        f"Interpolation between training images {first} and {second}",
        scale,
        captions=[f"t = {t:.2f}" for t in np.linspace(0.0, 1.0, N_SHOWN)],
    )
    fig, axes = plt.subplots(
        args.latent_dim, N_SHOWN, figsize=(N_SHOWN * 1.2, args.latent_dim * 1.2), squeeze=False
    )
    for dim in range(args.latent_dim):
        for i in range(N_SHOWN):
            axes[dim, i].imshow(traversal[dim * N_SHOWN + i].squeeze(), cmap="gray", **scale)
            axes[dim, i].set_xticks([])
            axes[dim, i].set_yticks([])
            if dim == args.latent_dim - 1:
                axes[dim, i].set_xlabel(f"{TRAVERSAL_VALUES[i]:.1f}")
        axes[dim, 0].set_ylabel(f"z{dim}")
    fig.suptitle("Latent Traversal: one dimension swept, the others at training image 0's")
    plt.tight_layout()
    _save(out / "traversal.png")
    figure_seconds = time.time() - start

    _write_metrics(
        out,
        {
            "job": "faces-demo",
            "image_shape": [*image_size, 1],
            "n_train": len(x_train),
            "n_test": len(x_test),
            "n_parameters": result["parameters"],
            "epochs": args.epochs,
            "steps": result["steps"],
            "final_train_loss": result["train_losses"][-1],
            "final_test_loss": result["test_losses"][-1],
            "final_reconstruction_loss": result["reconstruction_losses"][-1],
            "final_kl": result["kl_losses"][-1],
            "test_mse_per_pixel": float(np.mean(np.square(reconstructed - originals))),
            **_timings(data_seconds, result["train_seconds"], figure_seconds),
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    jobs = parser.add_subparsers(dest="job", required=True)
    first = jobs.add_parser("example1", help="the seed's first example")
    first.add_argument("--epochs", type=int, default=500)
    first.add_argument("--out", type=Path, required=True)
    faces = jobs.add_parser("faces-demo", help="the face VAE on exported arrays")
    faces.add_argument("--data", type=Path, required=True, help=".npz of the normalized images")
    faces.add_argument("--out", type=Path, required=True)
    faces.add_argument("--epochs", type=int, required=True)
    faces.add_argument("--batch-size", type=int, required=True)
    faces.add_argument("--learning-rate", type=float, required=True)
    faces.add_argument("--beta-max", type=float, required=True)
    faces.add_argument("--beta-tau", type=float, required=True)
    faces.add_argument("--hidden-dim", type=int, required=True)
    faces.add_argument("--latent-dim", type=int, required=True)
    faces.add_argument("--seed", type=int, required=True)
    args = parser.parse_args()
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    if args.job == "example1":
        example1(args.out, args.epochs)
    else:
        faces_demo(args.out, args.data, args)


if __name__ == "__main__":
    main()
