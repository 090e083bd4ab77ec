"""The experiment trackers, run for real: MLflow against a local database, read back with
MLflow's own client; Weights & Biases in offline mode, its local run folder read back."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import jax
import numpy as np
import pytest

from latent_jax import Autoencoder, TrainConfig, autoencoder_objective, cli, fit, fit_many
from latent_jax.train.trackers import MLflowLogger, WandbLogger, flatten_params, metric_name

mlflow = pytest.importorskip("mlflow")
wandb = pytest.importorskip("wandb")

# MLflow's database layer warns about its own use of SQLAlchemy; wandb about its protobuf.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
    pytest.mark.filterwarnings("ignore:.*:sqlalchemy.exc.SADeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning:mlflow"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

X = np.random.default_rng(0).normal(size=(64, 6)).astype(np.float32)


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    """MLflow keeps a local store's artifacts in ./mlruns and W&B its files in ./wandb."""
    monkeypatch.chdir(tmp_path)


def _objective():
    return autoencoder_objective(Autoencoder(input_dim=6, hidden_dims=(4,), latent_dim=2))


def _uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def _runs(uri: str, experiment: str):
    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(experiment_names=[experiment])


def test_names_and_flattening():
    assert metric_name("train_loss[3]") == "train_loss/run3"
    assert metric_name("test_kl") == "test_kl"
    flat = flatten_params({"a": 1, "b": {"c": [1, 2], "d": {"e": None}}, "f": {}})
    assert flat == {"a": "1", "b.c": "[1, 2]", "b.d.e": "None", "f": "{}"}


@pytest.mark.slow
def test_mlflow_logger_records_params_each_epoch_and_files(tmp_path):
    uri = _uri(tmp_path)
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps({"mse": 0.5}))
    (folder / "model.msgpack").write_bytes(b"not an artifact")
    config = TrainConfig(epochs=3, batch_size=16, quiet=True)
    with MLflowLogger(uri, experiment="unit", run_name="ae", params={"model": {"latent": 2}}) as (
        logger
    ):
        _, history = fit(_objective(), X, X[:16], config, jax.random.key(0), callbacks=[logger])
        logged = logger.log_artifacts(folder)
    assert [Path(p).name for p in logged] == ["metrics.json"]
    runs = _runs(uri, "unit")
    assert len(runs) == 1
    row = runs.iloc[0]
    assert row["status"] == "FINISHED"
    assert row["params.model.latent"] == "2"
    assert row["metrics.train_loss"] == pytest.approx(history["train_loss"][-1], rel=1e-6)
    client = mlflow.tracking.MlflowClient(uri)
    steps = client.get_metric_history(logger.run_id, "test_loss")
    assert [m.step for m in steps] == [1, 2, 3]
    np.testing.assert_allclose([m.value for m in steps], history["test_loss"], rtol=1e-6)
    assert [a.path for a in client.list_artifacts(logger.run_id)] == ["metrics.json"]


@pytest.mark.slow
def test_a_run_that_raises_is_marked_failed_and_seeds_are_separate_metrics(tmp_path):
    uri = _uri(tmp_path)
    keys = jax.random.split(jax.random.key(0), 2)
    config = TrainConfig(epochs=2, batch_size=16, quiet=True)
    with pytest.raises(RuntimeError, match="stop"):
        with MLflowLogger(uri, experiment="many") as logger:
            fit_many(_objective(), X, X[:16], config, keys, callbacks=[logger])
            raise RuntimeError("stop")
    row = _runs(uri, "many").iloc[0]
    assert row["status"] == "FAILED"
    assert {"metrics.train_loss/run0", "metrics.train_loss/run1"} <= set(row.index)


def test_a_command_with_tracker_mlflow(tmp_path):
    uri = _uri(tmp_path)
    out = tmp_path / "reduce"
    argv = ["reduce", "--epochs", "3", "--quiet", "--no-compile-cache", "--out", str(out)]
    argv += ["--tracker", "mlflow", "--tracker-uri", uri, "--tracker-project", "cmd"]
    assert cli.main(argv) == 0
    row = _runs(uri, "cmd").iloc[0]
    assert row["tags.mlflow.runName"] == "reduce reduce"
    assert row["params.command"] == "reduce" and row["params.epochs"] == "3"
    assert "params.out" not in row.index  # where outputs go is not a setting
    client = mlflow.tracking.MlflowClient(uri)
    history = client.get_metric_history(row["run_id"], "test_loss")
    assert [m.step for m in history] == [1, 2, 3]
    artifacts = {a.path for a in client.list_artifacts(row["run_id"])}
    assert {"metrics.json", "config.json", "history.csv", "loss_curves.png"} <= artifacts
    # config.json does not record the tracker: a rerun from it does not log again.
    assert "tracker" not in json.loads((out / "config.json").read_text())["settings"]


def test_a_refused_command_opens_no_tracker_run(tmp_path):
    uri = _uri(tmp_path)
    argv = ["reduce", "--epochs", "0", "--out", str(tmp_path / "x"), "--tracker", "mlflow"]
    assert cli.main([*argv, "--tracker-uri", uri]) != 0
    assert not (tmp_path / "mlflow.db").exists()


def _wandb_records(path: Path):
    """The records of a W&B run file: LevelDB's log format (a 7-byte header, 32 KiB blocks of
    checksummed chunks), each record a wandb_internal_pb2.Record."""
    import wandb
    from wandb.proto import wandb_internal_pb2

    # W&B's service process writes the file; run.finish() can return before it has flushed
    # the last records (seen under load), wandb.teardown() waits for the service to exit.
    wandb.teardown()
    data = path.read_bytes()
    ident, magic, version = struct.unpack("<4sHB", data[:7])
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0)
    records, pending, offset, block = [], b"", 7, 32768
    while offset + 7 <= len(data):
        if block - offset % block < 7:  # a block's tail too short for a header is padding
            offset += block - offset % block
            continue
        _, length, kind = struct.unpack("<IHB", data[offset : offset + 7])
        pending += data[offset + 7 : offset + 7 + length]
        offset += 7 + length
        if kind in (1, 4):  # FULL or LAST: a whole record
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def test_wandb_offline_command_run_read_back(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out, folder = tmp_path / "reduce", tmp_path / "wandb-files"
    argv = ["reduce", "--epochs", "3", "--quiet", "--no-compile-cache", "--out", str(out)]
    argv += ["--tracker", "wandb", "--tracker-uri", str(folder), "--tracker-project", "cmd"]
    assert cli.main(argv) == 0
    (run_dir,) = (folder / "wandb").glob("offline-run-*")
    saved = {p.name for p in (run_dir / "files").iterdir()}
    assert {"metrics.json", "config.json", "history.csv", "loss_curves.png"} <= saved
    records = _wandb_records(next(run_dir.glob("run-*.wandb")))
    history = [
        {
            item.key or "/".join(item.nested_key): json.loads(item.value_json)
            for item in r.history.item
        }
        for r in records
        if r.WhichOneof("record_type") == "history"
    ]
    assert [row["epoch"] for row in history] == [1, 2, 3]
    written = np.loadtxt(out / "history.csv", delimiter=",", skiprows=1, ndmin=2)
    header = (out / "history.csv").read_text().splitlines()[0].split(",")
    np.testing.assert_allclose(
        [row["test_loss"] for row in history], written[:, header.index("test_loss")], rtol=1e-6
    )
    config = {
        item.key: json.loads(item.value_json)
        for r in records
        if r.WhichOneof("record_type") == "config"
        for item in r.config.update
    }
    assert config["command"] == "reduce" and config["epochs"] == "3"


@pytest.mark.slow
def test_wandb_logger_as_a_callback(tmp_path):
    logger = WandbLogger("unit", directory=tmp_path, mode="offline", config={"a": {"b": 1}})
    config = TrainConfig(epochs=2, batch_size=16, quiet=True)
    with logger:
        fit(_objective(), X, X[:16], config, jax.random.key(0), callbacks=[logger])
        # A second model's epochs go on from the last step (W&B's steps only increase).
        fit(_objective(), X, X[:16], config, jax.random.key(1), callbacks=[logger])
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    records = _wandb_records(next(run_dir.glob("run-*.wandb")))
    steps = [r.history.step.num for r in records if r.WhichOneof("record_type") == "history"]
    assert steps == [1, 2, 3, 4]
