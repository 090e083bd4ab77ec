"""Streaming data: key-determined epoch orders, every example once, prefetching, streaming PCA
and training on a memory-mapped file (bit for bit what in-memory training computes, resumable)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numerics import assert_bitwise, assert_close, assert_trees_bitwise, assert_trees_close
from PIL import Image

from latent_jax import linear as pca
from latent_jax.data import streaming
from latent_jax.models.mlp import Autoencoder
from latent_jax.objectives import autoencoder_objective
from latent_jax.runs.checkpoint import load_checkpoint
from latent_jax.train import NonFiniteLossError, TrainConfig, fit, fit_stream


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
    streamed = streaming.fit_pca_source(path, 3, chunk_rows=8)
    whole = pca.fit_pca(x, 3)
    np.testing.assert_allclose(streamed.explained_variance, whole.explained_variance, rtol=1e-4)
    np.testing.assert_allclose(
        np.abs(streamed.components), np.abs(whole.components), rtol=1e-3, atol=1e-4
    )


def _assert_same_params(a, b) -> None:
    assert_trees_bitwise(a.params, b.params)


STREAM_OBJECTIVE = autoencoder_objective(Autoencoder(input_dim=6, hidden_dims=(8,), latent_dim=2))
STREAM_CONFIG = TrainConfig(learning_rate=1e-2, batch_size=10, epochs=4, quiet=True, log_every=0)


@pytest.mark.parametrize("shuffle", [pytest.param(True, marks=pytest.mark.numerics), False])
def test_fit_stream_computes_what_fit_computes_bit_for_bit(npy_file, shuffle):
    # One driver, one permutation, one end of epoch: a memory-mapped file streamed in
    # groups of 4 batches ends with the very parameters and history of fit on the array
    # (fit_stream's documented bit-for-bit claim, with unroll=1).
    path, x = npy_file
    config = dataclasses.replace(STREAM_CONFIG, shuffle=shuffle, unroll=1)
    memory, h_memory = fit(STREAM_OBJECTIVE, x, x[:7], config, jax.random.key(1))
    stream, h_stream = fit_stream(
        STREAM_OBJECTIVE, path, x[:7], config, jax.random.key(1), steps_per_call=4
    )
    _assert_same_params(memory, stream)
    for name in ("train_loss", "test_loss"):
        assert_bitwise(h_stream[name], h_memory[name], err_msg=name)
    assert int(stream.epoch) == 4 and int(stream.step) == int(memory.step) == 4 * 6
    assert h_stream["train_loss"][-1] < h_stream["train_loss"][0]
    # With the batch loop unrolled 4x: another program, which XLA may fuse across steps and
    # whose epoch means it may sum in another order. A tolerance for training (rule 3): 24
    # Adam steps of 1e-2, whose normalized updates keep a step's last-bit differences at the
    # last bits of the parameters and losses; 100 eps of each leaf's scale (the parameters
    # were bit for bit under SSE4_2, AVX2 and AVX-512, the losses ~1 eps apart).
    config = dataclasses.replace(STREAM_CONFIG, shuffle=shuffle, unroll=4)
    unrolled, h_unrolled = fit(STREAM_OBJECTIVE, x, x[:7], config, jax.random.key(1))
    assert_trees_close(unrolled.params, stream.params, ops=100)
    assert_close(h_unrolled["train_loss"], h_stream["train_loss"], ops=100)


def test_fit_stream_early_stopping_is_fits(npy_file):
    path, x = npy_file
    # A learning rate this large stops improving within a few epochs.
    config = dataclasses.replace(STREAM_CONFIG, epochs=30, patience=2, learning_rate=0.5)
    memory, h_memory = fit(STREAM_OBJECTIVE, x, x[:7], config, jax.random.key(3))
    stream, h_stream = fit_stream(STREAM_OBJECTIVE, path, x[:7], config, jax.random.key(3))
    assert bool(memory.stopped) and bool(stream.stopped)
    assert h_stream.num_epochs == h_memory.num_epochs < 30
    _assert_same_params(memory, stream)


class _Killed(Exception):
    pass


def _kill_after(epochs: int):
    def callback(state, history):
        if history.num_epochs >= epochs:
            raise _Killed

    return callback


def test_a_killed_streamed_run_resumes_where_an_uninterrupted_one_ends(npy_file, tmp_path):
    path, x = npy_file
    whole, h_whole = fit_stream(STREAM_OBJECTIVE, path, x[:7], STREAM_CONFIG, jax.random.key(4))
    config = dataclasses.replace(
        STREAM_CONFIG, checkpoint_dir=str(tmp_path / "ckpt"), checkpoint_every=1
    )
    with pytest.raises(_Killed):
        fit_stream(
            STREAM_OBJECTIVE, path, x[:7], config, jax.random.key(4), callbacks=[_kill_after(3)]
        )
    resumed, h_resumed = fit_stream(
        STREAM_OBJECTIVE, path, x[:7], config, resume=str(tmp_path / "ckpt")
    )
    _assert_same_params(whole, resumed)
    assert_bitwise(h_resumed["test_loss"], h_whole["test_loss"])
    np.testing.assert_array_equal(h_resumed["epoch"], [1, 2, 3, 4])
    # The format is fit's: the streamed checkpoint resumes in memory too (bit for bit, as
    # fit_stream computes what fit computes).
    with pytest.raises(_Killed):
        fit_stream(
            STREAM_OBJECTIVE,
            path,
            x[:7],
            dataclasses.replace(config, checkpoint_dir=str(tmp_path / "again")),
            jax.random.key(4),
            callbacks=[_kill_after(2)],
        )
    in_memory, _ = fit(STREAM_OBJECTIVE, x, x[:7], config, resume=str(tmp_path / "again"))
    _assert_same_params(whole, in_memory)


def test_a_streamed_divergence_names_the_checkpoint_it_kept(npy_file, tmp_path):
    path, _ = npy_file

    def loss(params, model_state, batch, key, step, epoch, train=True):
        value, (metrics, new_state) = STREAM_OBJECTIVE.loss(
            params, model_state, batch, key, step, epoch, train
        )
        value = value + jnp.where(epoch >= 2, jnp.inf, 0.0)  # epoch 3 diverges
        return value, ({**metrics, "loss": value}, new_state)

    diverging = STREAM_OBJECTIVE._replace(loss=loss)
    config = dataclasses.replace(STREAM_CONFIG, checkpoint_dir=str(tmp_path / "ckpt"))
    with pytest.raises(NonFiniteLossError, match="at epoch 3, step 12") as caught:
        fit_stream(diverging, path, None, config, jax.random.key(0))
    error = caught.value
    assert error.checkpoint is not None and error.checkpoint in str(error)
    assert load_checkpoint(error.checkpoint).epoch == 2 and error.history.num_epochs == 2


def test_fit_stream_refuses_bad_arguments_by_name(npy_file):
    path, x = npy_file
    with pytest.raises(ValueError, match="steps_per_call must be >= 1"):
        fit_stream(STREAM_OBJECTIVE, path, None, STREAM_CONFIG, steps_per_call=0)
    with pytest.raises(ValueError, match="test_x has examples of shape"):
        fit_stream(STREAM_OBJECTIVE, path, x[:, :4], STREAM_CONFIG)
    with pytest.raises(TypeError, match="config must be a TrainConfig"):
        fit_stream(STREAM_OBJECTIVE, path, None, {"epochs": 2})


def test_the_old_streaming_pca_names_warn_and_still_work():
    import latent_jax

    with pytest.warns(DeprecationWarning, match="use latent_jax.data.streaming.fit_pca_source"):
        old = streaming.fit_pca_stream
    assert old is streaming.fit_pca_source
    from latent_jax import pca as old_module

    with pytest.warns(DeprecationWarning, match="use latent_jax.linear.fit_pca_chunks"):
        assert old_module.fit_pca_streaming is pca.fit_pca_chunks
    with pytest.warns(DeprecationWarning, match="use latent_jax.fit_pca_chunks"):
        assert latent_jax.fit_pca_streaming is pca.fit_pca_chunks
