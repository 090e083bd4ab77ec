"""One writer per folder: latent_jax.runs.locks, the trainers' lock, the command line's."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from latent_jax.runs import locks

# A child process that holds the lock of argv[1] until its stdin closes. It loads
# latent_jax/locks.py alone (no JAX), so that it starts in a fraction of a second.
_HOLDER = textwrap.dedent(
    f"""
    import importlib.util, sys
    spec = importlib.util.spec_from_file_location("locks", {locks.__file__!r})
    locks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(locks)
    with locks.folder_lock(sys.argv[1]):
        print("locked", flush=True)
        sys.stdin.read()
    """
)


@pytest.fixture
def held(tmp_path):
    """A folder locked by another process (its pid is ``held.pid``)."""
    folder = tmp_path / "run"
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().strip() == "locked"
    child.folder = folder
    yield child
    child.stdin.close()
    child.stdout.close()
    child.wait(timeout=30)


def test_lock_is_released_and_its_file_removed(tmp_path):
    with locks.folder_lock(tmp_path / "a") as key:
        lock_file = os.path.join(key, locks.LOCK_FILE)
        assert Path(lock_file).read_text().strip() == str(os.getpid())
    assert not os.path.exists(lock_file)
    with locks.folder_lock(tmp_path / "a"):  # free again
        pass


def test_lock_is_reentrant_in_one_process(tmp_path):
    with locks.folder_lock(tmp_path), locks.folder_lock(tmp_path):
        assert os.path.exists(tmp_path / locks.LOCK_FILE)
    assert not os.path.exists(tmp_path / locks.LOCK_FILE)


def test_leftover_lock_file_of_a_dead_process_does_not_block(tmp_path):
    (tmp_path / locks.LOCK_FILE).write_text("999999999\n")  # nobody holds a flock on it
    with locks.folder_lock(tmp_path) as key:
        assert Path(key, locks.LOCK_FILE).read_text().strip() == str(os.getpid())


def test_second_writer_is_refused_naming_folder_and_holder(held):
    with pytest.raises(locks.FolderInUseError, match=rf"in use by process {held.pid}") as info:
        with locks.folder_lock(held.folder):
            pass
    assert str(held.folder) in str(info.value)
    assert info.value.pid == held.pid


def test_fit_refuses_a_checkpoint_dir_in_use(held):
    from latent_jax.models.mlp import Autoencoder
    from latent_jax.objectives import autoencoder_objective
    from latent_jax.train import TrainConfig, fit

    objective = autoencoder_objective(Autoencoder(input_dim=3, latent_dim=1, hidden_dims=()))
    config = TrainConfig(epochs=1, batch_size=4, quiet=True, checkpoint_dir=str(held.folder))
    with pytest.raises(locks.FolderInUseError, match="in use"):
        fit(objective, np.zeros((8, 3), np.float32), None, config)


@pytest.mark.slow
def test_second_command_on_a_locked_out_exits_2(held):
    """A second ``latent-jax`` writing to the same --out, in its own process."""
    before = sorted(os.listdir(held.folder))
    result = subprocess.run(
        [sys.executable, "-m", "latent_jax", "pca", "--data", "digits", "--out", held.folder],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "in use" in result.stderr and f"process {held.pid}" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(os.listdir(held.folder)) == before
