"""The seed's face VAE in PyTorch, as the seed writes and trains it.

The model (``Reshape``, ``Trim``, ``VAE``), the monotonic β, the loss (summed MSE plus β·KL,
back-propagated as the batch sum) and the training loop (DataLoader with shuffling, Adam
1e-4, batch 64, ``model.train()``, ``loss.backward()``, ``optimizer.step()``, ``loss.item()``
every batch, optional test evaluation every epoch) are the seed's. The one change: the seed's
``FaceDataset`` normalizes each image on the fly with torchvision; here the images arrive
already normalized, float32, and are wrapped in a ``TensorDataset``, so that both sides of the
benchmark train on the same arrays and the timing is the model's. Only the benchmarks import
this; torch is a benchmark extra.

The seed's sizes are the defaults; ``image_size``, ``hidden_dim``, ``latent_dim`` and the β
schedule's time constant ``tau`` are arguments, so the same layers train on other images (the
25x25 faces of ``latent-jax vae --preset cpu-demo``): the Linear layers around the latent space
follow the encoder's last feature map, and the decoder's output (4 f + 1 rows for an encoder
map of f rows) is cropped to the image, as ``latent_jax.models.conv.ConvVAE`` builds them.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

# The seed's hyperparameters.
LEARNING_RATE = 1e-4
BATCH_SIZE = 64
HIDDEN_DIM = 100
LATENT_DIM = 10
BETA_MAX = 1 / 30
BETA_TAU = 1000.0
IMAGE_SIZE = (112, 92)
CHANNELS = 64  # of the encoder's last feature map
# Trainable parameters of VAE(HIDDEN_DIM, LATENT_DIM).
SEED_PARAMETER_COUNT = 8_473_045


class Reshape(nn.Module):
    """The seed's ``Reshape``: a flat vector to (batch, *shape)."""

    def __init__(self, *args):
        super().__init__()
        self.shape = args

    def forward(self, x):
        return x.view((-1, *self.shape))


class Trim(nn.Module):
    """The seed's ``Trim``: drops the last row and column (113x93 -> 112x92).

    ``Trim(height, width)`` keeps the top-left ``height x width`` window instead (the same
    crop for the seed's size, and the one for other sizes).
    """

    def __init__(self, *size):
        super().__init__()
        self.size = size

    def forward(self, x):
        if not self.size:
            return x[:, :, :-1, :-1]
        height, width = self.size
        return x[:, :, :height, :width]


def feature_size(size: int) -> int:
    """The encoder's last feature-map side for an image side ``size`` (two stride-2 convs)."""
    for _ in range(2):
        size = (size - 1) // 2 + 1
    return size


class VAE(nn.Module):
    """The seed's convolutional VAE for 1x112x92 images (NCHW), or for 1 x ``image_size``.

    Args:
        hidden_dim: width of the Linear layers around the latent space.
        latent_dim: dimension of the latent space.
        image_size: (height, width) of the images; the seed's (112, 92) by default.

    Raises:
        ValueError: if ``image_size`` is not two ints >= 1.
    """

    def __init__(self, hidden_dim: int, latent_dim: int, image_size: tuple[int, int] = IMAGE_SIZE):
        super().__init__()
        image_size = tuple(image_size)
        if len(image_size) != 2 or not all(isinstance(n, int) and n >= 1 for n in image_size):
            raise ValueError(f"image_size must be (height, width), ints >= 1, got {image_size!r}")
        height, width = image_size
        feature_shape = (CHANNELS, feature_size(height), feature_size(width))
        flat = feature_shape[0] * feature_shape[1] * feature_shape[2]  # 41216 for the seed's
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, kernel_size=3, stride=1, padding=1),
            nn.LeakyReLU(0.01),
            nn.BatchNorm2d(32),
            nn.Conv2d(32, 64, kernel_size=3, stride=2, padding=1),
            nn.LeakyReLU(0.01),
            nn.Conv2d(64, 64, kernel_size=3, stride=2, padding=1),
            nn.LeakyReLU(0.01),
            nn.Conv2d(64, CHANNELS, kernel_size=3, stride=1, padding=1),
            nn.Flatten(),
            nn.Linear(flat, hidden_dim),
        )
        self.mean_layer = nn.Linear(hidden_dim, latent_dim)
        self.logvar_layer = nn.Linear(hidden_dim, latent_dim)
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim),
            nn.LeakyReLU(0.01),
            nn.Linear(hidden_dim, flat),
            Reshape(*feature_shape),
            nn.ConvTranspose2d(CHANNELS, 64, kernel_size=3, stride=1, padding=1),
            nn.LeakyReLU(0.01),
            nn.ConvTranspose2d(64, 64, kernel_size=3, stride=2, padding=1),
            nn.LeakyReLU(0.01),
            nn.ConvTranspose2d(64, 32, kernel_size=3, stride=2, padding=0),
            nn.BatchNorm2d(32),
            nn.LeakyReLU(0.01),
            nn.ConvTranspose2d(32, 1, kernel_size=3, stride=1, padding=0),
            Trim() if image_size == IMAGE_SIZE else Trim(height, width),
        )

    def encode(self, x):
        x = self.encoder(x)
        return self.mean_layer(x), self.logvar_layer(x)

    def reparameterize(self, mean, log_var):
        std = torch.exp(0.5 * log_var)
        eps = torch.randn_like(std)
        return mean + eps * std

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        mean, log_var = self.encode(x)
        z = self.reparameterize(mean, log_var)
        return self.decode(z), mean, log_var


def beta(epoch: int, beta_max: float = BETA_MAX, tau: float = BETA_TAU) -> float:
    """The seed's monotonic schedule ``beta_max * (1 - exp(-epoch / tau))``, tau = 1000."""
    return beta_max * (1 - math.exp(-epoch / tau))


def loss_function(
    x, x_hat, mean, log_var, epoch: int, beta_max: float = BETA_MAX, tau: float = BETA_TAU
):
    """The seed's loss: batch sums of the squared error and of the KL, ``rec + beta * kl``."""
    reconstruction_loss = F.mse_loss(x_hat, x, reduction="sum")
    kl_divergence = -0.5 * torch.sum(1 + log_var - mean.pow(2) - log_var.exp())
    return (
        reconstruction_loss + beta(epoch, beta_max, tau) * kl_divergence,
        reconstruction_loss,
        kl_divergence,
    )


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def to_nchw(images: np.ndarray, image_size: tuple[int, int] = IMAGE_SIZE) -> torch.Tensor:
    """Channels-last images of shape (n, 112, 92, 1) as a float32 tensor (n, 1, 112, 92).

    Raises:
        ValueError: if ``images`` is not of shape (n, *image_size, 1).
    """
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[1:] != (*image_size, 1):
        raise ValueError(
            f"images must have shape (n, {image_size[0]}, {image_size[1]}, 1) (channels last), "
            f"got shape {images.shape}"
        )
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


def train_vae(
    train_images: np.ndarray,
    test_images: np.ndarray | None = None,
    *,
    num_epochs: int = 1,
    batch_size: int = BATCH_SIZE,
    learning_rate: float = LEARNING_RATE,
    beta_max: float = BETA_MAX,
    beta_tau: float = BETA_TAU,
    hidden_dim: int = HIDDEN_DIM,
    latent_dim: int = LATENT_DIM,
    image_size: tuple[int, int] = IMAGE_SIZE,
    seed: int = 42,
) -> dict:
    """Trains a fresh seed VAE with the seed's loop and times it.

    Args:
        train_images: normalized images of shape (n_train, *image_size, 1), channels last.
        test_images: images of shape (n_test, *image_size, 1) to evaluate after every epoch,
            as the seed does, or ``None`` to train only.
        num_epochs: epochs to train, >= 1.
        batch_size: the DataLoader's batch size.
        learning_rate: Adam's step size.
        beta_max: the monotonic β's limit.
        beta_tau: the monotonic β's time constant, in epochs.
        hidden_dim: width of the Linear layers around the latent space.
        latent_dim: dimension of the latent space.
        image_size: (height, width) of the images.
        seed: ``torch.manual_seed`` before building the model.

    Returns:
        A dict with per-epoch ``train_losses``, ``reconstruction_losses``, ``kl_losses`` and
        ``test_losses`` (batch sums divided by the dataset size, the seed's numbers),
        ``epoch_seconds`` (training and evaluation of each epoch), ``train_seconds`` (their
        sum: the epoch loop only, model construction excluded), ``steps``, ``images`` (training
        images seen), ``parameters`` and the trained ``model``.

    Raises:
        ValueError: if ``num_epochs`` < 1 or the images are not of ``image_size``.
    """
    if num_epochs < 1:
        raise ValueError(f"num_epochs must be >= 1, got {num_epochs}")
    torch.manual_seed(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # as the seed
    x_train = to_nchw(train_images, image_size)
    model = VAE(hidden_dim, latent_dim, image_size).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    train_loader = DataLoader(
        TensorDataset(x_train, torch.zeros(len(x_train))), batch_size=batch_size, shuffle=True
    )
    test_loader = None
    if test_images is not None:
        x_test = to_nchw(test_images, image_size)
        test_loader = DataLoader(
            TensorDataset(x_test, torch.zeros(len(x_test))), batch_size=batch_size, shuffle=False
        )

    log = {"train_losses": [], "reconstruction_losses": [], "kl_losses": [], "test_losses": []}
    epoch_seconds = []
    steps = 0
    for epoch in range(num_epochs):
        start = time.perf_counter()
        model.train()
        train_loss = reconstruction_loss = kl_loss = 0.0
        for data, _ in train_loader:
            data = data.to(device).to(torch.float32)
            optimizer.zero_grad()
            recon_batch, mean, log_var = model(data)
            loss, recon, kl = loss_function(
                data, recon_batch, mean, log_var, epoch, beta_max, beta_tau
            )
            loss.backward()
            train_loss += loss.item()
            reconstruction_loss += recon.item()
            kl_loss += kl.item()
            optimizer.step()
            steps += 1
        n = len(train_loader.dataset)
        log["train_losses"].append(train_loss / n)
        log["reconstruction_losses"].append(reconstruction_loss / n)
        log["kl_losses"].append(kl_loss / n)
        if test_loader is not None:
            model.eval()
            test_loss = 0.0
            with torch.no_grad():
                for data, _ in test_loader:
                    data = data.to(device).to(torch.float32)
                    recon_batch, mean, log_var = model(data)
                    loss, _, _ = loss_function(
                        data, recon_batch, mean, log_var, epoch, beta_max, beta_tau
                    )
                    test_loss += loss.item()
            log["test_losses"].append(test_loss / len(test_loader.dataset))
        epoch_seconds.append(time.perf_counter() - start)
    return {
        **log,
        "epoch_seconds": epoch_seconds,
        "train_seconds": sum(epoch_seconds),
        "steps": steps,
        "images": num_epochs * len(x_train),
        "parameters": count_parameters(model),
        "model": model,
    }
