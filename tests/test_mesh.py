"""Data-parallel training on a 4-device mesh (forced host devices, in a subprocess): the same
parameters as one device, batches really sharded, checkpoints from 4 devices restored on 1.
Independent runs spread over the devices: the same runs as on one device, no communication.

The main test process has already started JAX with one CPU device, so the 4-device runs happen
in a fresh interpreter whose XLA_FLAGS are set before JAX is imported.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from numerics import assert_bitwise

from latent_jax import distributed
from latent_jax.models.mlp import Autoencoder
from latent_jax.objectives import autoencoder_objective
from latent_jax.train import TrainConfig, fit

WORKER = textwrap.dedent(
    """
    import dataclasses, json, os, re, sys
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import jax, numpy as np
    from latent_jax import distributed, train
    from latent_jax.models.conv import ConvSpec, ConvVAE
    from latent_jax.models.mlp import Autoencoder
    from latent_jax.objectives import autoencoder_objective, vae_objective
    from latent_jax.train import TrainConfig, fit, fit_many

    out = sys.argv[1]
    fast = {"xla_backend_optimization_level": 0}
    mesh = distributed.make_mesh(4)
    rng = np.random.default_rng(0)
    report = {"cpu_cores_set": distributed.use_cpu_cores()}  # the user's XLA_FLAGS win
    report["devices"] = jax.device_count()

    def gap(a, b):
        diffs = jax.tree.map(lambda p, q: np.max(np.abs(np.asarray(p) - np.asarray(q))), a, b)
        return float(max(jax.tree.leaves(diffs)))

    # MLP autoencoder: 50 rows in batches of 10 (not a multiple of 4: padded to 12, masked).
    x = rng.normal(size=(50, 6)).astype(np.float32)
    mlp = autoencoder_objective(Autoencoder(input_dim=6, hidden_dims=(8,), latent_dim=2))
    seen = []

    def spy(params, model_state, batch, key, step, epoch, train):
        jax.debug.inspect_array_sharding(batch.x, callback=lambda s: seen.append(s))
        return mlp.loss(params, model_state, batch, key, step, epoch, train)

    spied = mlp._replace(loss=spy)
    config = TrainConfig(
        learning_rate=1e-2, batch_size=10, epochs=4, quiet=True, log_every=0,
        compiler_options=fast, checkpoint_dir=os.path.join(out, "ckpt"),
    )
    no_ckpt = dataclasses.replace(config, checkpoint_dir=None)
    one, h1 = fit(mlp, x, x[:7], no_ckpt,
                  jax.random.key(1))
    four, h4 = fit(spied, x, x[:7], config, jax.random.key(1), mesh=mesh)
    report["mlp_gap"] = gap(one.params, four.params)
    report["mlp_loss_gap"] = float(np.max(np.abs(h1["test_loss"] - h4["test_loss"])))
    report["batch_specs"] = sorted({str(s.spec) for s in seen})
    report["batch_devices"] = sorted({len(s.device_set) for s in seen})
    report["param_specs"] = sorted({str(a.sharding.spec) for a in jax.tree.leaves(four.params)})
    rows, n = distributed.shard_rows(x, mesh, "x")
    report["rows"] = [n, list(rows.shape), [list(s.data.shape) for s in rows.addressable_shards]]
    np.savez(os.path.join(out, "mlp.npz"), *[np.asarray(a) for a in jax.tree.leaves(four.params)])

    # ConvVAE with BatchNorm: 30 images in batches of 6, each padded to 8 on 4 devices, the
    # padding masked out of BatchNorm's statistics. SGD, because
    # Adam turns round-off in the exactly-zero gradient of the bias before BatchNorm into
    # steps of size learning_rate.
    model = ConvVAE(image_shape=(8, 8, 1), hidden_dim=8, latent_dim=2,
                    encoder_convs=(ConvSpec(4, 3, 2, 1, batch_norm=True),), decoder_convs=(),
                    output_conv=(4, 2, 1))
    images = rng.uniform(size=(30, 8, 8, 1)).astype(np.float32)
    vae = vae_objective(model)
    conv_config = TrainConfig(learning_rate=1e-3, optimizer="sgd", batch_size=6, epochs=3,
                              quiet=True, log_every=0, compiler_options=fast)
    a, _ = fit(vae, images, None, conv_config, jax.random.key(2))
    b, _ = fit(vae, images, None, conv_config, jax.random.key(2), mesh=mesh)
    report["conv_gap"] = gap(a.params, b.params)
    report["bn_gap"] = gap(a.model_state, b.model_state)
    initial = {"batch_stats": vae.init(jax.random.key(0), images[:2])["batch_stats"]}
    report["bn_moved"] = gap(a.model_state, initial)
    # 6 independent runs spread over 3 of the 4 devices (the most that divide 6), 2 on each.
    keys = jax.random.split(jax.random.key(4), 6)
    runs_config = dataclasses.replace(config, epochs=3, checkpoint_dir=os.path.join(out, "runs"))
    spread, hs = fit_many(mlp, x, x[:7], runs_config, keys)
    runs_plain = dataclasses.replace(runs_config, checkpoint_dir=None)
    together, ht = fit_many(mlp, x, x[:7], runs_plain, keys, spread_runs=False)
    report["spread_gap"] = gap(spread.params, together.params)
    report["spread_loss_gap"] = float(np.max(np.abs(hs["test_loss"] - ht["test_loss"])))
    report["spread_specs"] = sorted({str(a.sharding.spec) for a in jax.tree.leaves(spread)})
    report["spread_devices"] = sorted({len(a.sharding.device_set) for a in jax.tree.leaves(spread)})
    compiled = train.cache_for(mlp).items()
    spread_chunks = [c for k, c in compiled if k[0] == "chunk" and k[-1] is not None]
    report["spread_chunks"] = len(spread_chunks)
    report["spread_collectives"] = sorted({
        op for c in spread_chunks
        for op in re.findall(r"all-reduce|all-gather|all-to-all|collective-permute", c.as_text())
    })
    # Its checkpoint resumes on one device and continues as an uninterrupted spread run.
    resumed, hr = fit_many(mlp, x, x[:7], dataclasses.replace(runs_plain, epochs=4), None,
                           resume=os.path.join(out, "runs"), spread_runs=False)
    straight, hu = fit_many(mlp, x, x[:7], dataclasses.replace(runs_plain, epochs=4), keys)
    report["spread_resume_gap"] = gap(resumed.params, straight.params)
    report["spread_resume_epochs"] = [hr.num_epochs, int(np.max(resumed.epoch))]
    if len(sys.argv) > 2:  # the slow extras: FSDP-style sharding, several runs
        fsdp, _ = fit(mlp, x, x[:7], no_ckpt,
                      jax.random.key(1), mesh=mesh, shard_params=True)
        report["fsdp_gap"] = gap(one.params, fsdp.params)
        report["fsdp_specs"] = sorted({str(a.sharding.spec) for a in jax.tree.leaves(fsdp.params)})

        keys = jax.random.split(jax.random.key(3), 2)
        small = TrainConfig(learning_rate=1e-2, batch_size=10, epochs=2, quiet=True, log_every=0,
                            compiler_options=fast)
        many1, _ = fit_many(mlp, x, None, small, keys)
        many4, _ = fit_many(mlp, x, None, small, keys, mesh=mesh)
        report["many_gap"] = gap(many1.params, many4.params)
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f)
    """
)


def _run_worker(out, *extra: str) -> dict:
    script = out / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, str(script), str(out), *extra]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("mesh")
    return _run_worker(out), str(out)


# Training compared across programs (one device, or 4 whose batch sums are split and
# all-reduced): each step's gradient differs by round-off, which the optimizer feeds back for
# 20 (Adam) or 15 (SGD) steps. 1e-5 on parameters and losses of order 1 is about 100 float32
# ulps; a wrong sharding (a batch seen twice or not at all, unmasked padding) moves them by
# a learning rate's step, 1e-3 or more.


@pytest.mark.slow
def test_four_devices_train_the_same_parameters_as_one(report):
    values, _ = report
    assert values["devices"] == 4
    assert values["mlp_gap"] < 1e-5
    assert values["mlp_loss_gap"] < 1e-5


@pytest.mark.slow
def test_fsdp_sharding_and_several_runs_on_four_devices(tmp_path):
    values = _run_worker(tmp_path, "extras")
    assert values["fsdp_gap"] < 1e-5
    assert "P(None, 'data')" in values["fsdp_specs"]  # parameters split over the devices
    assert values["many_gap"] < 1e-5


@pytest.mark.slow
def test_conv_vae_with_batch_norm_matches_one_device(report):
    values, _ = report
    assert values["conv_gap"] < 1e-5
    assert values["bn_gap"] < 1e-5
    assert values["bn_moved"] > 1e-3  # the running statistics did change


@pytest.mark.slow
def test_batches_and_rows_are_sharded_parameters_replicated(report):
    values, _ = report
    # Every batch the loss saw was split over the 4 devices along its rows.
    assert values["batch_specs"] == ["P('data',)"]
    assert values["batch_devices"] == [4]
    # 50 rows padded to 52, 13 per device.
    assert values["rows"] == [50, [52, 6], [[13, 6]] * 4]
    assert values["param_specs"] == ["P()"]


@pytest.mark.slow
def test_checkpoint_written_on_four_devices_restores_on_one(report):
    _, out = report
    saved = np.load(os.path.join(out, "mlp.npz"))
    objective = autoencoder_objective(Autoencoder(input_dim=6, hidden_dims=(8,), latent_dim=2))
    x = np.random.default_rng(0).normal(size=(50, 6)).astype(np.float32)
    config = TrainConfig(learning_rate=1e-2, batch_size=10, epochs=4, quiet=True, log_every=0)
    state, history = fit(objective, x, x[:7], config, resume=os.path.join(out, "ckpt"))
    assert history.num_epochs == 4
    for restored, written in zip(jax.tree.leaves(state.params), saved.values(), strict=True):
        assert len(restored.devices()) == 1
        assert_bitwise(restored, written)  # a copy through the checkpoint
    # ... and continues on one device.
    more, history = fit(
        objective,
        x,
        x[:7],
        dataclasses.replace(config, epochs=5),
        resume=os.path.join(out, "ckpt"),
    )
    assert history.num_epochs == 5 and int(more.epoch) == 5


@pytest.mark.slow
def test_runs_spread_over_devices_match_one_device_without_communication(report):
    values, _ = report
    assert values["cpu_cores_set"] == 0  # XLA_FLAGS already forced 4 devices
    assert values["spread_gap"] < 1e-5 and values["spread_loss_gap"] < 1e-5
    # Every state leaf is split along its run axis over 3 devices.
    assert values["spread_specs"] == ["P('runs',)"] and values["spread_devices"] == [3]
    assert values["spread_chunks"] >= 1 and values["spread_collectives"] == []
    # Resumed on one device (spread_runs=False) against a spread run: other programs, the
    # training tolerance above.
    assert values["spread_resume_gap"] < 1e-5
    assert values["spread_resume_epochs"] == [4, 4]


CORES_WORKER = textwrap.dedent(
    """
    import json, sys
    from latent_jax import distributed
    first = distributed.use_cpu_cores(3)
    import jax
    report = {"first": first, "devices": jax.device_count(), "again": distributed.use_cpu_cores(2)}
    report["mesh_sizes"] = {
        k: (None if m is None else m.size) for k in (6, 4, 5, 1)
        for m in [distributed.runs_mesh(k)]
    }
    print(json.dumps(report))
    """
)


def test_use_cpu_cores_exposes_devices_before_the_backend_starts_and_never_after():
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("JAX_NUM_CPU_DEVICES", "XLA_FLAGS", "JAX_PLATFORMS")
    }
    env["JAX_PLATFORMS"] = "cpu"
    result = subprocess.run(
        [sys.executable, "-c", CORES_WORKER], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["first"] == 3 and report["devices"] == 3
    assert report["again"] == 0  # the backend has started: the count is fixed
    # The largest device count (at most 3) that divides the number of runs; one device: None.
    assert report["mesh_sizes"] == {"6": 3, "4": 2, "5": None, "1": None}
    # This test process started JAX long ago: nothing changes.
    assert distributed.use_cpu_cores() == 0


def test_bad_mesh_arguments_are_named():
    with pytest.raises(ValueError, match="devices must be between 1 and"):
        distributed.make_mesh(jax.device_count() + 1)
    with pytest.raises(ValueError, match="mesh must be 'data=N'"):
        distributed.parse_mesh("model=2")
    assert distributed.parse_mesh("data=4") == 4 and distributed.parse_mesh("auto") is None
    with pytest.raises(TypeError, match="mesh must be a jax.sharding.Mesh"):
        fit(
            autoencoder_objective(Autoencoder(input_dim=6)),
            np.zeros((4, 6)),
            None,
            TrainConfig(quiet=True),
            mesh="data=4",
        )
