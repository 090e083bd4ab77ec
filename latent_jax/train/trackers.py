"""Experiment trackers as training callbacks: MLflow and Weights & Biases.

Each logger is a callback of :func:`~latent_jax.train.fit` (``callbacks=[...]``), called once
per epoch with the history, like :class:`~latent_jax.train.callbacks.HistoryCSV`: it logs the
epoch's metrics at step = the 1-based epoch (a metric of :func:`~latent_jax.train.fit_many`'s
K runs as K metrics ``name/run0`` ... ``name/run{K-1}``, TensorBoard's naming). Besides, a
logger records settings (:meth:`log_params`, nested mappings flattened to ``a.b`` keys) and
files (:meth:`log_artifacts`: a run folder's ``metrics.json``, ``config.json``,
``history.csv`` and figures), and is closed at the end (:meth:`close`, or a ``with`` block,
which marks a run that raised as failed).

Both libraries are optional extras (``pip install -e '.[mlflow]'``, ``'.[wandb]'``); every
command that trains takes ``--tracker mlflow|wandb`` (:mod:`latent_jax.experiments.tracking`).

* :class:`MLflowLogger` writes through MLflow's client to any tracking URI: a server, or a
  local database (``sqlite:///mlflow.db``, MLflow's recommended local store); MLflow 3 refuses
  its older file store (``./mlruns``) unless ``MLFLOW_ALLOW_FILE_STORE=true``.
* :class:`WandbLogger` starts a W&B run; ``WANDB_MODE=offline`` (or ``mode="offline"``) keeps
  it in a local run folder for ``wandb sync`` later, with no account or network.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from typing import Any

from latent_jax.train.callbacks import epoch_row
from latent_jax.train.state import History

__all__ = [
    "ARTIFACT_SUFFIXES",
    "MLflowLogger",
    "WandbLogger",
    "epoch_metrics",
    "flatten_params",
    "metric_name",
]

# The files of a run folder a tracker keeps (checkpoints are left in the folder).
ARTIFACT_SUFFIXES = (".json", ".csv", ".png")

# MLflow caps a parameter's value at 6,000 characters.
_MAX_PARAM_LENGTH = 6000


def metric_name(column: str) -> str:
    """A history column as a tracker's metric name: ``train_loss[3]`` -> ``train_loss/run3``."""
    return column.replace("[", "/run").replace("]", "")


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested settings as flat ``{"a.b": text}``: what a tracker records as parameters.

    Args:
        params: a mapping, possibly nested (a run's ``config.json``).
        prefix: the keys' prefix (used by the recursion).

    Returns:
        One string per leaf (lists and other values as ``str``), in the mapping's order.
    """
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_params(value, f"{name}."))
        else:
            flat[name] = str(value)[:_MAX_PARAM_LENGTH]
    return flat


def epoch_metrics(history: History, prefix: str = "") -> tuple[int, dict[str, float]]:
    """The last epoch of ``history`` as a tracker logs it.

    Args:
        history: a :class:`~latent_jax.train.state.History`.
        prefix: put before every name (``"dae-0.5/"``: a command's further model).

    Returns:
        ``(epoch, metrics)``: the 1-based epoch and its finite metrics by
        :func:`metric_name` (a run of ``fit_many`` that stopped early has none).
    """
    row = epoch_row(history)
    epoch = int(row.pop("epoch"))
    return epoch, {
        prefix + metric_name(name): value
        for name, value in row.items()
        if isinstance(value, float) and math.isfinite(value)
    }


def _artifact_files(folder: str | os.PathLike) -> list[str]:
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"no run folder to log artifacts from: {folder!r}")
    return sorted(
        os.path.join(folder, name)
        for name in os.listdir(folder)
        if name.endswith(ARTIFACT_SUFFIXES) and os.path.isfile(os.path.join(folder, name))
    )


class _Tracker:
    """What both loggers share: the epoch callback, the context manager, the failure status."""

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        raise NotImplementedError

    def close(self, failed: bool = False) -> None:
        raise NotImplementedError

    def __call__(self, state: Any, history: History) -> None:
        del state
        epoch, metrics = epoch_metrics(history)
        self.log_metrics(metrics, epoch)

    def __enter__(self):
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self.close(failed=exc_type is not None)


class MLflowLogger(_Tracker):
    """Logs a training run to MLflow: per-epoch metrics, parameters and files.

    Args:
        tracking_uri: where MLflow stores runs (``sqlite:///mlflow.db``, ``http://host:5000``);
            None: ``MLFLOW_TRACKING_URI``, else MLflow's default.
        experiment: the experiment's name, created when missing.
        run_name: the run's name in MLflow's interface.
        params: settings to record at once (:meth:`log_params`).

    Attributes:
        client: the ``mlflow.tracking.MlflowClient``.
        run_id: the MLflow run's id.

    Raises:
        ImportError: when MLflow is not installed, saying how to install it.
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        *,
        experiment: str = "latent_jax",
        run_name: str | None = None,
        params: Mapping[str, Any] | None = None,
    ):
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as err:
            raise ImportError(
                "MLflow tracking needs the mlflow package: pip install -e '.[mlflow]'"
            ) from err
        self.client = MlflowClient(tracking_uri=tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = (
            found.experiment_id if found is not None else self.client.create_experiment(experiment)
        )
        self.run_id = self.client.create_run(experiment_id, run_name=run_name).info.run_id
        if params:
            self.log_params(params)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Records settings as the run's parameters (nested mappings flattened)."""
        from mlflow.entities import Param

        flat = flatten_params(params)
        self.client.log_batch(self.run_id, params=[Param(k, v) for k, v in flat.items()])

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Records metrics at ``step`` (the epoch)."""
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        self.client.log_batch(
            self.run_id, metrics=[Metric(k, float(v), stamp, step) for k, v in metrics.items()]
        )

    def log_artifacts(self, folder: str | os.PathLike) -> list[str]:
        """Uploads a run folder's JSON, CSV and PNG files (not its checkpoints).

        Returns:
            The files logged.
        """
        files = _artifact_files(folder)
        for path in files:
            self.client.log_artifact(self.run_id, path)
        return files

    def close(self, failed: bool = False) -> None:
        """Ends the run, ``FINISHED`` or ``FAILED``."""
        self.client.set_terminated(self.run_id, status="FAILED" if failed else "FINISHED")


class WandbLogger(_Tracker):
    """Logs a training run to Weights & Biases: per-epoch metrics, config and files.

    Args:
        project: the W&B project.
        run_name: the run's display name.
        config: settings to record at once (:meth:`log_params`).
        directory: where W&B keeps its local run folder (``wandb/`` under it); None: the
            working directory.
        mode: ``"online"``, ``"offline"`` or ``"disabled"``; None: ``WANDB_MODE``, else
            W&B's default (online, which needs ``wandb login``).

    Attributes:
        run: the ``wandb`` run.

    Raises:
        ImportError: when wandb is not installed, saying how to install it.
    """

    def __init__(
        self,
        project: str = "latent_jax",
        *,
        run_name: str | None = None,
        config: Mapping[str, Any] | None = None,
        directory: str | os.PathLike | None = None,
        mode: str | None = None,
    ):
        try:
            import wandb
        except ImportError as err:
            raise ImportError(
                "Weights & Biases tracking needs the wandb package: pip install -e '.[wandb]'"
            ) from err
        if directory is not None:
            os.makedirs(directory, exist_ok=True)
        self.run = wandb.init(
            project=project,
            name=run_name,
            dir=None if directory is None else os.fspath(directory),
            mode=mode or os.environ.get("WANDB_MODE") or None,
            reinit="create_new",
        )
        self._step = 0
        if config:
            self.log_params(config)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Records settings in the run's config (nested mappings flattened)."""
        self.run.config.update(flatten_params(params), allow_val_change=True)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Records metrics at ``step`` (the epoch), with ``epoch`` among them.

        W&B's steps only increase: the epochs of a second model trained after a first (a
        command's further models) go on from the last step, their ``epoch`` restarting.
        """
        self._step = max(step, self._step + 1)
        self.run.log({**metrics, "epoch": step}, step=self._step)

    def log_artifacts(self, folder: str | os.PathLike) -> list[str]:
        """Saves a run folder's JSON, CSV and PNG files with the run (not its checkpoints).

        Returns:
            The files logged.
        """
        files = _artifact_files(folder)
        for path in files:
            self.run.save(path, base_path=os.path.dirname(path), policy="now")
        return files

    def close(self, failed: bool = False) -> None:
        """Finishes the run (exit code 1 when it failed)."""
        self.run.finish(exit_code=1 if failed else 0)
