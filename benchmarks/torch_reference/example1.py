"""The seed's first example in PyTorch, as the seed runs it: DataLoader, nn.MSELoss, Adam,
test evaluation every epoch. Only the benchmarks import this; torch is a benchmark extra.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


class AutoEncoder(nn.Module):
    """The seed's 50 -> 30 -> 10 -> 5 autoencoder with LeakyReLU(0.1), mirrored decoder."""

    def __init__(self, input_dim: int, hidden_dim: int):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(input_dim, 30),
            nn.LeakyReLU(0.1),
            nn.Linear(30, 10),
            nn.LeakyReLU(0.1),
            nn.Linear(10, hidden_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(hidden_dim, 10),
            nn.LeakyReLU(0.1),
            nn.Linear(10, 30),
            nn.LeakyReLU(0.1),
            nn.Linear(30, input_dim),
        )

    def forward(self, x):
        return self.decoder(self.encoder(x))

    def encode(self, x):
        return self.encoder(x)


def train_autoencoder(
    x_train: np.ndarray,
    x_test: np.ndarray,
    *,
    num_epochs: int = 500,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    hidden_dim: int = 5,
    seed: int = 42,
) -> dict:
    """Trains the seed's autoencoder exactly as the seed's loop does.

    Returns:
        A dict with per-epoch ``train_losses`` and ``test_losses`` (the seed's batch-mean
        averages), the full-split ``train_mse`` and ``test_mse``, ``train_seconds`` and the
        trained ``model`` (in eval mode).
    """
    torch.manual_seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (the seed seeds the legacy global generator)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # as the seed
    model = AutoEncoder(x_train.shape[1], hidden_dim).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    criterion = nn.MSELoss()
    train_dataset = TensorDataset(torch.FloatTensor(x_train), torch.zeros(len(x_train)))
    test_dataset = TensorDataset(torch.FloatTensor(x_test), torch.zeros(len(x_test)))
    train_loader = DataLoader(train_dataset, batch_size=batch_size, shuffle=True)
    test_loader = DataLoader(test_dataset, batch_size=batch_size, shuffle=False)

    train_losses, test_losses = [], []
    start = time.perf_counter()
    for _ in range(num_epochs):
        model.train()
        train_loss = 0.0
        for batch_features, _ in train_loader:
            batch_features = batch_features.to(device)
            optimizer.zero_grad()
            outputs = model(batch_features)
            loss = criterion(outputs, batch_features)
            loss.backward()
            optimizer.step()
            train_loss += loss.item()
        train_losses.append(train_loss / len(train_loader))
        model.eval()
        test_loss = 0.0
        with torch.no_grad():
            for batch_features, _ in test_loader:
                batch_features = batch_features.to(device)
                outputs = model(batch_features)
                test_loss += criterion(outputs, batch_features).item()
        test_losses.append(test_loss / len(test_loader))
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        train_all = torch.FloatTensor(x_train).to(device)
        test_all = torch.FloatTensor(x_test).to(device)
        full_train = criterion(model(train_all), train_all)
        full_test = criterion(model(test_all), test_all)
    return {
        "train_losses": train_losses,
        "test_losses": test_losses,
        "train_mse": float(full_train),
        "test_mse": float(full_test),
        "train_seconds": seconds,
        "model": model,
    }
