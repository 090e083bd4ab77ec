"""Streaming data: key-determined epoch orders, every example once, prefetching, streaming PCA
and training on a memory-mapped file (equal to in-memory training on the same batches)."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from PIL import Image

from latent_jax import pca, streaming
from latent_jax.models.mlp import Autoencoder
from latent_jax.objectives import autoencoder_objective
from latent_jax.train import TrainConfig, fit, fit_stream


@pytest.fixture(scope="module")
def npy_file(tmp_path_factory) -> tuple[str, np.ndarray]:
    # Column 0 holds the row's index, so a batch says which examples it holds.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(53, 6)).astype(np.float32)
    x[:, 0] = np.arange(53)
    path = str(tmp_path_factory.mktemp("stream") / "x.npy")
    np.save(path, x)
    return path, x


def _rows_seen(batches) -> list[np.ndarray]:
    return [x[m > 0, 0].astype(int) for xs, ms in batches for x, m in zip(xs, ms, strict=True)]


def test_epoch_order_is_a_permutation_determined_by_the_key():
    a = streaming.epoch_order(jax.random.key(3), 1000)
    assert sorted(a.tolist()) == list(range(1000))
    np.testing.assert_array_equal(a, streaming.epoch_order(jax.random.key(3), 1000))
    assert not np.array_equal(a, streaming.epoch_order(jax.random.key(4), 1000))
    np.testing.assert_array_equal(streaming.epoch_order(jax.random.key(3), 5, False), range(5))


@pytest.mark.parametrize("group", [1, 4])
def test_every_sample_exactly_once_per_epoch_in_the_keys_order(npy_file, group):
    path, _x = npy_file
    source = streaming.open_source(path)
    assert isinstance(source.array, np.memmap)  # memory-mapped, not loaded
    for epoch_key in (jax.random.key(0), jax.random.key(1)):
        order = streaming.epoch_order(epoch_key, len(source))
        batches = list(streaming.iter_batches(source, 10, order, width=12, group=group))
        assert all(xs.shape[1:] == (12, 6) and xs.shape[0] <= group for xs, _ in batches)
        seen = _rows_seen(batches)
        # Batch b holds order[10 b : 10 b + 10], in that order; the last holds 3 (padded).
        assert [len(s) for s in seen] == [10] * 5 + [3]
        np.testing.assert_array_equal(np.concatenate(seen), order)
        masks = np.concatenate([m for _, ms in batches for m in ms])
        assert masks.sum() == 53
        padding = np.concatenate([xs[ms == 0] for xs, ms in batches])
        assert np.all(padding == 0)


def test_parts_of_each_batch_cover_it_once(npy_file):
    path, _ = npy_file
    order = streaming.epoch_order(jax.random.key(5), 53)
    whole = _rows_seen(streaming.iter_batches(path, 10, order, width=12))
    left = _rows_seen(streaming.iter_batches(path, 10, order, width=12, part=(0, 6)))
    right = _rows_seen(streaming.iter_batches(path, 10, order, width=12, part=(6, 12)))
    for w, a, b in zip(whole, left, right, strict=True):
        np.testing.assert_array_equal(w, np.concatenate([a, b]))


def test_errors_from_the_reading_thread_reach_the_consumer(tmp_path):
    x = np.ones((20, 3), np.float32)
    x[17, 1] = np.nan
    path = str(tmp_path / "bad.npy")
    np.save(path, x)
    with pytest.raises(ValueError, match="bad.npy contains 1 NaN"):
        list(streaming.iter_batches(path, 4, np.arange(20)))
    with pytest.raises(ValueError, match="width must be >= batch_size"):
        streaming.iter_batches(path, 4, np.arange(20), width=3)
    with pytest.raises(ValueError, match=r"\.npy files"):
        streaming.open_source(__file__)


def test_image_folder_source_reads_files_on_demand(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(5, 6, 7), dtype=np.uint8)
    for i, image in enumerate(images):
        Image.fromarray(image).save(tmp_path / f"img{i}.png")
    source = streaming.open_source(str(tmp_path), scale=1 / 255)
    assert len(source) == 5 and source.example_shape == (6, 7, 1)
    xs, _ms = next(streaming.iter_batches(source, 5, np.array([3, 1, 4, 0, 2])))
    np.testing.assert_allclose(xs[0, :, :, :, 0], images[[3, 1, 4, 0, 2]] / 255, atol=1e-6)


def test_streaming_pca_matches_the_in_memory_fit(npy_file):
    path, x = npy_file
    streamed = streaming.fit_pca_stream(path, 3, chunk_rows=8)
    whole = pca.fit_pca(x, 3)
    np.testing.assert_allclose(streamed.explained_variance, whole.explained_variance, rtol=1e-4)
    np.testing.assert_allclose(
        np.abs(streamed.components), np.abs(whole.components), rtol=1e-3, atol=1e-4
    )


def test_fit_stream_equals_fit_on_the_same_batches(npy_file):
    path, x = npy_file
    objective = autoencoder_objective(Autoencoder(input_dim=6, hidden_dims=(8,), latent_dim=2))
    # Without shuffling both walk the rows in order with the same batch keys.
    config = TrainConfig(
        learning_rate=1e-2, batch_size=10, epochs=3, shuffle=False, quiet=True, log_every=0
    )
    memory, h_memory = fit(objective, x, x[:7], config, jax.random.key(1))
    stream, h_stream = fit_stream(
        objective, path, x[:7], config, jax.random.key(1), steps_per_call=4
    )
    np.testing.assert_allclose(h_stream["train_loss"], h_memory["train_loss"], rtol=1e-5)
    np.testing.assert_allclose(h_stream["test_loss"], h_memory["test_loss"], rtol=1e-5)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
        memory.params,
        stream.params,
    )
    # Shuffled: deterministic for a key, and it learns.
    shuffled = TrainConfig(learning_rate=1e-2, batch_size=10, epochs=4, quiet=True, log_every=0)
    a, h_a = fit_stream(objective, path, None, shuffled, jax.random.key(2))
    b, _ = fit_stream(objective, path, None, shuffled, jax.random.key(2))
    jax.tree.map(np.testing.assert_array_equal, a.params, b.params)
    assert h_a["train_loss"][-1] < h_a["train_loss"][0]
    assert int(a.epoch) == 4
