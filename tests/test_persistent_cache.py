"""The persistent compilation cache: a per-user folder (0700), refused when others can write to
it, and a second process that reuses the first one's compiled programs."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from latent_jax import persistent_cache


def test_the_default_folder_is_per_user_and_the_variable_overrides_it(monkeypatch, tmp_path):
    monkeypatch.delenv(persistent_cache.DIR_VARIABLE, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert persistent_cache.default_directory() == str(
            tmp_path / "xdg" / "latent_jax" / "jax-compilation"
        )
    monkeypatch.setenv(persistent_cache.DIR_VARIABLE, str(tmp_path / "mine"))
    assert persistent_cache.default_directory() == str(tmp_path / "mine")
    for value, off in (("", False), ("0", False), ("1", True), ("yes", True)):
        monkeypatch.setenv(persistent_cache.DISABLE_VARIABLE, value)
        assert persistent_cache.disabled_by_environment() is off


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_a_folder_others_can_write_to_is_refused(tmp_path, caplog):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with caplog.at_level(logging.WARNING, logger="latent_jax.persistent_cache"):
        assert persistent_cache.enable(shared) is None
    assert "others can write to it" in caplog.text


CHILD = textwrap.dedent(
    """
    import sys
    import jax, numpy as np
    from latent_jax import persistent_cache
    from latent_jax.models.mlp import Autoencoder
    from latent_jax.objectives import autoencoder_objective
    from latent_jax.train import TrainConfig, fit
    assert persistent_cache.enable(sys.argv[1]) == sys.argv[1]
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # cache even tiny ones
    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    objective = autoencoder_objective(Autoencoder(input_dim=4, hidden_dims=(3,), latent_dim=2))
    config = TrainConfig(epochs=2, batch_size=8, quiet=True)
    _, history = fit(objective, x, None, config, jax.random.key(0))
    print(repr(float(history["train_loss"][-1])))
    """
)


@pytest.mark.slow  # a fresh process compiles everything again
@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_a_second_process_reuses_the_first_ones_programs(tmp_path):
    cache = str(tmp_path / "cache")

    def run() -> str:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, cache], capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    first = run()
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o700
    entries = set(os.listdir(cache))
    assert entries  # compiled programs were written
    assert run() == first  # the same numbers from the cached programs
    assert set(os.listdir(cache)) == entries  # nothing new to compile


def test_detectors_turn_the_cache_on_unless_told_not_to_or_jax_has_one(monkeypatch, tmp_path):
    import jax
    import numpy as np

    from latent_jax import AnomalyDetector

    x = np.random.default_rng(0).normal(size=(50, 4))
    previous = jax.config.jax_compilation_cache_dir
    monkeypatch.setenv(persistent_cache.DIR_VARIABLE, str(tmp_path / "cache"))
    try:
        jax.config.update("jax_compilation_cache_dir", None)
        AnomalyDetector("pca").fit(x)  # the test suite's environment: disabled
        assert jax.config.jax_compilation_cache_dir is None
        monkeypatch.delenv(persistent_cache.DISABLE_VARIABLE)
        AnomalyDetector("pca").fit(x)
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "cache")
        # A folder JAX already has (the user's) is kept.
        jax.config.update("jax_compilation_cache_dir", str(tmp_path / "theirs"))
        AnomalyDetector("pca").fit(x)
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "theirs")
    finally:
        jax.config.update("jax_compilation_cache_dir", previous)
