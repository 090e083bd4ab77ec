"""Denoising by projection onto the principal axes of clean data: the linear baseline of the
denoising autoencoder (``latent-jax denoise`` and ``latent-jax denoise-photo`` report it beside
the DAE).

Example:
    >>> denoiser = PCADenoiser(clean_train)  # doctest: +SKIP
    >>> q = denoiser.best_components(noisy_val, clean_val, clip=True)  # doctest: +SKIP
    >>> restored = denoiser(denoiser.codes(noisy_test), q, noisy_test.shape)  # doctest: +SKIP
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from latent_jax import linear as pca_lib

MAX_CANDIDATES = 40


def mean_squared_error(a: np.ndarray, b: np.ndarray) -> float:
    """The mean square of ``a - b``, accumulated in float64.

    Args:
        a: array of any shape.
        b: array of the same shape.

    Returns:
        The mean squared difference.
    """
    return float(np.mean(np.square(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


class PCADenoiser:
    """Projection onto the first q principal axes of the clean training data.

    Args:
        train: clean examples, array of shape (n, ...features); PCA keeps
            ``min(n, features) - 1`` axes (at least 1).
    """

    def __init__(self, train: np.ndarray):
        flat = train.reshape(len(train), -1)
        q_max = min(flat.shape) - 1
        self.state = pca_lib.fit_pca(flat, max(q_max, 1))

    def candidates(self) -> np.ndarray:
        """The numbers of components tried: up to :data:`MAX_CANDIDATES`, spaced geometrically
        from 1 to q_max."""
        q_max = int(self.state.components.shape[0])
        count = min(q_max, MAX_CANDIDATES)
        return np.unique(np.round(np.geomspace(1, q_max, count)).astype(int))

    def best_components(self, noisy: np.ndarray, clean: np.ndarray, *, clip: bool) -> int:
        """The candidate q whose projection of ``noisy`` is closest to ``clean`` (mean square).

        Args:
            noisy: noisy examples, array of shape (n, ...features).
            clean: their clean versions, the same shape.
            clip: clip the projections to [0, 1] before comparing (images).

        Returns:
            The number of components.
        """
        codes = self.codes(noisy)
        errors = {}
        for q in self.candidates():
            projection = self(codes, int(q), clean.shape)
            if clip:
                projection = np.clip(projection, 0.0, 1.0)
            errors[int(q)] = mean_squared_error(projection, clean)
        return min(errors, key=errors.get)

    def codes(self, x: np.ndarray) -> jax.Array:
        """The principal coordinates of ``x`` (n, ...features): array of shape (n, q_max)."""
        return pca_lib.encode(self.state, x.reshape(len(x), -1))

    def __call__(self, codes: jax.Array, q: int, shape: tuple[int, ...]) -> np.ndarray:
        """The data of the first ``q`` coordinates of ``codes``, as float32 of ``shape``."""
        kept = jnp.where(jnp.arange(codes.shape[-1]) < q, codes, 0.0)
        return np.asarray(pca_lib.decode(self.state, kept), np.float32).reshape(shape)
