"""The PCA denoiser (the linear baseline of the denoising commands) against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from numerics import assert_close
from sklearn.decomposition import PCA

from latent_jax.pca_denoiser import MAX_CANDIDATES, PCADenoiser, mean_squared_error


def _low_rank(n: int = 120, rank: int = 3, features: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    codes = rng.normal(size=(n, rank)) * np.array([5.0, 3.0, 2.0])[:rank]
    return (codes @ rng.normal(size=(rank, features)) + 1.0).astype(np.float32)


@pytest.mark.numerics
@pytest.mark.parametrize("q", [1, 2, 3])  # beyond the rank the axes are not unique
def test_projection_matches_scikit_learn(q):
    clean = _low_rank()
    noisy = clean + np.random.default_rng(1).normal(scale=0.5, size=clean.shape).astype(np.float32)
    denoiser = PCADenoiser(clean)
    ours = denoiser(denoiser.codes(noisy), q, noisy.shape)
    reference = PCA(n_components=q).fit(clean.astype(np.float64))
    expected = reference.inverse_transform(reference.transform(noisy.astype(np.float64)))
    # encode and decode: two matrix products over 12 features, a centring on each side
    assert_close(ours, expected, ops=4 * 12)


def test_best_components_finds_the_rank_of_low_rank_data():
    clean = _low_rank()
    rng = np.random.default_rng(2)
    noisy = clean + rng.normal(scale=0.3, size=clean.shape).astype(np.float32)
    denoiser = PCADenoiser(clean)
    assert denoiser.best_components(noisy, clean, clip=False) == 3


def test_candidates_are_geometric_and_bounded():
    denoiser = PCADenoiser(np.random.default_rng(0).normal(size=(200, 100)).astype(np.float32))
    candidates = denoiser.candidates()
    assert candidates[0] == 1 and candidates[-1] == 99
    assert len(candidates) <= MAX_CANDIDATES and np.all(np.diff(candidates) > 0)


def test_mean_squared_error_accumulates_in_float64():
    a = np.full(10, 1e4, np.float32)
    assert mean_squared_error(a + np.float32(1), a) == 1.0
