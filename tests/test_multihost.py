"""Two processes on this machine over loopback (CPU backend, gloo collectives), each with 2
forced host devices: jax.distributed starts, training on the 4-device global mesh completes,
and both processes end with the same parameters (those of one device)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from numerics import assert_bitwise

from latent_jax.models.mlp import Autoencoder
from latent_jax.objectives import autoencoder_objective
from latent_jax.train import TrainConfig, fit

WORKER = textwrap.dedent(
    """
    import os, sys
    out, port, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
    from latent_jax import distributed
    distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=pid, local_devices=2)
    import jax, numpy as np
    from latent_jax.models.mlp import Autoencoder
    from latent_jax.objectives import autoencoder_objective
    from latent_jax.train import TrainConfig, fit, fit_stream

    assert (jax.process_count(), jax.device_count(), jax.local_device_count()) == (2, 4, 2)
    mesh = distributed.make_mesh()
    # Each process memory-maps the file and reads only the rows its devices hold.
    x = np.load(os.path.join(out, "x.npy"), mmap_mode="r")
    objective = autoencoder_objective(Autoencoder(input_dim=6, hidden_dims=(8,), latent_dim=2))
    config = TrainConfig(learning_rate=1e-2, batch_size=10, epochs=3, quiet=True, log_every=0,
                         compiler_options={"xla_backend_optimization_level": 0},
                         checkpoint_dir=os.path.join(out, "ckpt"))
    state, history = fit(objective, x, None, config, jax.random.key(1), mesh=mesh)
    params = distributed.to_host(state.params)
    streamed, _ = fit_stream(objective, os.path.join(out, "x.npy"), None, config,
                             jax.random.key(1), mesh=mesh, steps_per_call=2)
    stream_params = distributed.to_host(streamed.params)
    np.savez(os.path.join(out, f"params_{pid}.npz"), *jax.tree.leaves(params),
             *jax.tree.leaves(stream_params), loss=history["train_loss"])
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[list, str]:
    out = tmp_path_factory.mktemp("multihost")
    np.save(out / "x.npy", np.random.default_rng(0).normal(size=(50, 6)).astype(np.float32))
    script = out / "worker.py"
    script.write_text(WORKER)
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    port = str(_free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(out), port, str(pid)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for pid in (0, 1)
    ]
    logs = []
    try:
        for proc in procs:
            logs.append(proc.communicate(timeout=240)[0])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, log in zip(procs, logs, strict=True):
        assert proc.returncode == 0, log[-3000:]
    return [dict(np.load(out / f"params_{pid}.npz")) for pid in (0, 1)], str(out)


@pytest.mark.slow  # two processes compile and train: 21 s of the default run's budget
def test_both_processes_agree_on_the_final_parameters(runs):
    (first, second), _ = runs
    assert first.keys() == second.keys()
    for name in first:  # the same compiled programs on the same global arrays
        assert_bitwise(first[name], second[name], err_msg=name)


@pytest.mark.slow
def test_two_processes_train_what_one_device_trains(runs):
    (first, _), out = runs
    x = np.load(os.path.join(out, "x.npy"))
    objective = autoencoder_objective(Autoencoder(input_dim=6, hidden_dims=(8,), latent_dim=2))
    config = TrainConfig(learning_rate=1e-2, batch_size=10, epochs=3, quiet=True, log_every=0)
    state, history = fit(objective, x, None, config, jax.random.key(1))
    # Training compared across programs (4 devices over 2 processes at -O0, or one device):
    # round-off in each of the 15 Adam steps' gradients is fed back; 1e-5 is about 100 float32
    # ulps, far below a learning rate's step (1e-2) that a batch seen twice or lost would give.
    np.testing.assert_allclose(first["loss"], history["train_loss"], rtol=1e-5)
    leaves = jax.tree.leaves(state.params)
    for i, leaf in enumerate(leaves):
        np.testing.assert_allclose(first[f"arr_{i}"], np.asarray(leaf), rtol=1e-5, atol=1e-6)
    # Only process 0 wrote the checkpoint.
    assert os.path.exists(os.path.join(out, "ckpt", "latest"))
