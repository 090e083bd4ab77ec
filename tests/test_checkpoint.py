"""Checkpoints: round trips, atomic writes, pruning, and damaged files detected, not loaded."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numerics import assert_trees_bitwise

from latent_jax.runs import checkpoint as ckpt
from latent_jax.runs.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)


def _tree(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "params": {
            "dense": {"kernel": rng.normal(size=(3, 2)).astype(np.float32), "bias": np.zeros(2)},
        },
        "step": np.int32(7 + seed),
        "key_data": np.asarray([1, 2], np.uint32),
    }


def _payload_of(manifest: str) -> Path:
    return Path(manifest).parent / json.loads(Path(manifest).read_text())["payload"]


def _temporary_files(directory) -> list[str]:
    return [name for name in os.listdir(directory) if name.endswith(".tmp")]


def test_round_trip_keeps_values_dtypes_metadata_and_epoch(tmp_path):
    tree = _tree()
    tree["params"]["dense"]["kernel"] = jnp.asarray(tree["params"]["dense"]["kernel"])
    meta = {"config": {"learning_rate": 0.001}, "shape": [3, 2]}
    path = save_checkpoint(tmp_path, tree, epoch=3, metadata=meta)
    assert os.path.basename(path) == "checkpoint_00000003.json"
    loaded = load_checkpoint(tmp_path)
    assert loaded.epoch == 3
    assert loaded.path == path
    assert loaded.metadata == meta
    expected = _tree()
    assert_trees_bitwise(loaded.tree, expected)
    assert loaded.tree["params"]["dense"]["kernel"].dtype == np.float32
    assert loaded.tree["key_data"].dtype == np.uint32
    # A manifest path loads the same checkpoint as its directory.
    assert load_checkpoint(path).epoch == 3


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_checkpoint_files_get_the_users_usual_permissions(tmp_path, umask):
    previous = os.umask(umask)
    try:
        save_checkpoint(tmp_path, _tree(), epoch=1)
    finally:
        os.umask(previous)
    files = sorted(tmp_path.iterdir())
    assert len(files) == 3  # payload, manifest, pointer
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path.name


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path):
    for epoch in range(3):
        save_checkpoint(tmp_path, _tree(epoch), epoch=epoch, keep=5)
    assert _temporary_files(tmp_path) == []
    names = sorted(os.listdir(tmp_path))
    assert names.count("latest") == 1
    assert sum(name.endswith(".json") for name in names) == 3
    assert sum(name.endswith(".msgpack") for name in names) == 3
    assert (tmp_path / "latest").read_text().strip() == "checkpoint_00000002.json"


def test_a_crash_leaves_the_previous_checkpoint_and_the_next_save_cleans_up(tmp_path, monkeypatch):
    first = save_checkpoint(tmp_path, _tree(0), epoch=1)
    real_replace = os.replace

    def crash_on_manifest(src, dst):
        if str(dst).endswith(".json"):
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(ckpt.os, "replace", crash_on_manifest)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, _tree(1), epoch=2)
    monkeypatch.undo()
    # The failed save's payload landed, but nothing pointed at it, so it went: epoch 1 is
    # still the latest.
    assert latest_checkpoint(tmp_path) == first
    assert load_checkpoint(tmp_path).epoch == 1
    assert _temporary_files(tmp_path) == []
    assert sum(name.endswith(".msgpack") for name in os.listdir(tmp_path)) == 1
    # Temporary files orphaned by a crash (killed between write and rename) go at the next save.
    for name in (".checkpoint_00000002.json.x1.tmp", ".latest.x2.tmp"):
        (tmp_path / name).write_bytes(b"partial")
    third = save_checkpoint(tmp_path, _tree(2), epoch=3)
    assert _temporary_files(tmp_path) == []
    payloads = sorted(name for name in os.listdir(tmp_path) if name.endswith(".msgpack"))
    assert payloads == sorted(_payload_of(p).name for _, p in list_checkpoints(tmp_path))
    assert latest_checkpoint(tmp_path) == third


def test_keep_prunes_old_checkpoints_and_their_payloads(tmp_path):
    for epoch in range(1, 6):
        save_checkpoint(tmp_path, _tree(epoch), epoch=epoch, keep=2)
    assert [epoch for epoch, _ in list_checkpoints(tmp_path)] == [4, 5]
    assert sum(name.endswith(".msgpack") for name in os.listdir(tmp_path)) == 2
    assert load_checkpoint(tmp_path).tree["step"] == 7 + 5


def test_saving_the_same_epoch_again_replaces_it(tmp_path):
    save_checkpoint(tmp_path, _tree(0), epoch=4)
    save_checkpoint(tmp_path, _tree(1), epoch=4)
    assert len(list_checkpoints(tmp_path)) == 1
    assert sum(name.endswith(".msgpack") for name in os.listdir(tmp_path)) == 1
    assert load_checkpoint(tmp_path).tree["step"] == 8


def test_latest_without_pointer_is_the_highest_epoch(tmp_path):
    save_checkpoint(tmp_path, _tree(0), epoch=2, keep=3)
    last = save_checkpoint(tmp_path, _tree(1), epoch=10, keep=3)
    os.unlink(tmp_path / "latest")
    assert latest_checkpoint(tmp_path) == last
    assert latest_checkpoint(tmp_path / "missing") is None
    assert list_checkpoints(tmp_path / "missing") == []


def test_truncated_payload_is_detected_and_not_loaded(tmp_path):
    manifest = save_checkpoint(tmp_path, _tree(), epoch=1)
    payload = _payload_of(manifest)
    data = payload.read_bytes()
    payload.write_bytes(data[: len(data) // 2])
    name = payload.name
    with pytest.raises(CheckpointError, match=rf"{name} is truncated or corrupt.*not loaded"):
        load_checkpoint(tmp_path)
    # CheckpointError is a ValueError, so callers that catch ValueError see it too.
    with pytest.raises(ValueError, match=name):
        load_checkpoint(manifest)


def test_corrupted_payload_of_the_right_length_fails_the_digest(tmp_path):
    manifest = save_checkpoint(tmp_path, _tree(), epoch=1)
    payload = _payload_of(manifest)
    data = bytearray(payload.read_bytes())
    data[-1] ^= 0xFF
    payload.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=rf"{payload.name} is corrupt: its SHA"):
        load_checkpoint(manifest)


def test_damaged_manifest_pointer_and_missing_payload_name_the_file(tmp_path):
    manifest = save_checkpoint(tmp_path, _tree(), epoch=1)
    text = Path(manifest).read_text()
    Path(manifest).write_text(text[: len(text) // 2])
    with pytest.raises(CheckpointError, match=r"checkpoint_00000001\.json is unreadable"):
        load_checkpoint(tmp_path)

    other = tmp_path / "other"
    manifest = save_checkpoint(other, _tree(), epoch=1)
    os.unlink(_payload_of(manifest))
    with pytest.raises(CheckpointError, match=r"msgpack \(of .*checkpoint_00000001\.json\)"):
        load_checkpoint(other)

    (other / "latest").write_text("../../etc/passwd")
    with pytest.raises(CheckpointError, match=r"pointer .*latest is corrupt"):
        load_checkpoint(other)

    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"hello": "world"}))
    with pytest.raises(CheckpointError, match=r"foreign\.json is incomplete"):
        load_checkpoint(foreign)


def test_missing_checkpoints_raise_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint in directory"):
        load_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere.json")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"tree": [1, 2]}, TypeError, "tree must be a dict"),
        ({"tree": {"key": jax.random.key(0)}}, TypeError, "typed PRNG keys"),
        ({"tree": {"f": len}}, TypeError, r"tree\['f'\] must be nested dicts of arrays"),
        ({"tree": {1: np.zeros(2)}}, TypeError, "keys must be strings"),
        ({"metadata": {"x": np.zeros(2)}}, TypeError, "metadata must be JSON-serializable"),
        ({"metadata": {"x": float("nan")}}, TypeError, "metadata must be JSON-serializable"),
        ({"epoch": -1}, ValueError, "epoch must be >= 0, got epoch=-1"),
        ({"epoch": 1.0}, TypeError, r"epoch must be an int, got float \(1\.0\)"),
        ({"keep": 0}, ValueError, "keep must be >= 1, got keep=0"),
    ],
)
def test_bad_arguments_are_rejected_before_writing(tmp_path, kwargs, error, match):
    arguments = {"tree": _tree(), "epoch": 1, **kwargs}
    with pytest.raises(error, match=match):
        save_checkpoint(tmp_path / "ckpt", **arguments)
    assert not os.path.exists(tmp_path / "ckpt")
