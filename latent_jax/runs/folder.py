"""A run folder, and reloading any run in one call: :func:`load_run`.

Every command that trains writes its output folder in one layout (and :func:`fit` called
with ``TrainConfig(checkpoint_dir=...)`` writes the part that matters):

* ``config.json``: ``{"command", "version", "data", "model", "training", "seed", ...}``
  (:func:`write_config`); ``latent-jax COMMAND --config config.json`` repeats the run;
* ``metrics.json``: the run's final numbers;
* ``history.csv``: one row per epoch, every metric a column, written as training goes;
* ``normalizer.json``: the data normalization fitted on the training split, if any;
* ``checkpoints/``: the engine's checkpoints (:mod:`latent_jax.train.checkpoints`), which
  record the model as data (class and fields) besides its variables.

A command that trains several models keeps each in a sub-folder of the same layout (for
example ``autoencoder/``); :func:`load_run` on the parent names them.

``load_run`` rebuilds the model only from latent_jax's own classes
(:data:`latent_jax.models.spec.MODEL_CLASSES`) and plain values: nothing in a run folder is
imported by name or unpickled.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from latent_jax.data import Standardizer
from latent_jax.models.inference import predict
from latent_jax.models.spec import SpecError, build_module
from latent_jax.runs import checkpoint as ckpt
from latent_jax.train import TrainConfig
from latent_jax.train.callbacks import epoch_row
from latent_jax.train.checkpoints import KIND
from latent_jax.train.state import History

__all__ = [
    "CHECKPOINTS",
    "CONFIG",
    "HISTORY",
    "METRICS",
    "NORMALIZER",
    "Run",
    "load_run",
    "write_config",
]

CONFIG = "config.json"
METRICS = "metrics.json"
HISTORY = "history.csv"
NORMALIZER = "normalizer.json"
CHECKPOINTS = "checkpoints"
# The kind of a saved AnomalyDetector's checkpoint (latent_jax.AnomalyDetector.save).
DETECTOR_KIND = "latent_jax.anomaly"


def _read_json(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    except OSError as err:
        raise OSError(f"cannot read {path}: {err.strerror or err}") from err
    if not isinstance(value, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(value).__name__}")
    return value


def write_config(
    run_dir: str | os.PathLike,
    *,
    command: str,
    data: Mapping[str, Any],
    model: Mapping[str, Any],
    training: TrainConfig | Mapping[str, Any] | None,
    seed: int,
    **extra: Any,
) -> str:
    """Writes ``run_dir/config.json`` in the one layout every command uses.

    Args:
        run_dir: the run folder.
        command: the ``latent-jax`` subcommand (``"vae"``, ``"train"``, ...).
        data: where the data came from and how it was split and normalized.
        model: the model's settings (as the command's flags name them).
        training: the :class:`~latent_jax.train.TrainConfig` (or its dict), or ``None``.
        seed: the run's random seed.
        **extra: the command's other settings, kept under their own keys.

    Returns:
        The path written.
    """
    from latent_jax import __version__

    if isinstance(training, TrainConfig):
        training = training.to_dict()
    payload = {
        "command": command,
        "version": __version__,
        "data": dict(data),
        "model": dict(model),
        "training": None if training is None else dict(training),
        "seed": int(seed),
        **extra,
    }
    path = os.path.join(os.fspath(run_dir), CONFIG)
    text = json.dumps(payload, indent=2, sort_keys=True, default=_json_default) + "\n"
    ckpt.atomic_write(path, text.encode("utf-8"))
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"config value {value!r} of type {type(value).__name__} is not JSON")


@dataclasses.dataclass(frozen=True)
class Run:
    """A reloaded run: the model, its variables and everything the run folder says.

    Attributes:
        path: the run folder.
        model: the Flax module, rebuilt from the checkpoint's record of its class and fields.
        variables: ``{"params": ..., **collections}``; for a checkpoint of K runs
            (:func:`~latent_jax.train.fit_many`) every leaf has a leading axis K (see
            :meth:`select`).
        config: the run's ``config.json`` (a dict; empty when the folder has none), with the
            checkpoint's training config under ``"training"`` when the file lacks it.
        history: metric name -> 1-D array, one value per epoch (a metric of K runs as K
            entries ``name[k]``, like the columns of ``history.csv``).
        normalizer: the data normalization of the run, or ``None``.
        metrics: the run's ``metrics.json`` (empty when there is none).
        checkpoint: the checkpoint's manifest path.
        epoch: the epochs trained.
        n_runs: K for a checkpoint of :func:`~latent_jax.train.fit_many`, else ``None``.
    """

    path: str
    model: Any
    variables: dict[str, Any]
    config: dict[str, Any]
    history: dict[str, np.ndarray]
    normalizer: Standardizer | None
    metrics: dict[str, Any]
    checkpoint: str
    epoch: int
    n_runs: int | None = None

    @property
    def train_config(self) -> TrainConfig | None:
        """The training config as a :class:`~latent_jax.train.TrainConfig`, when it rebuilds."""
        training = self.config.get("training")
        if not isinstance(training, Mapping):
            return None
        try:
            return TrainConfig.from_dict(training)
        except (TypeError, ValueError):
            return None

    def select(self, k: int) -> Run:
        """Run ``k`` of a checkpoint of several runs, as a run of its own."""
        if self.n_runs is None:
            raise ValueError(f"{self.path} holds one run; select() is for runs of fit_many")
        if not 0 <= int(k) < self.n_runs:
            raise ValueError(f"k must be in [0, {self.n_runs}), got k={k}")
        suffix = f"[{int(k)}]"
        history = {
            name[: -len(suffix)]: values
            for name, values in self.history.items()
            if name.endswith(suffix)
        }
        history.update({n: v for n, v in self.history.items() if n in ("epoch", "epoch_time")})
        variables = jax.tree.map(lambda leaf: leaf[int(k)], self.variables)
        return dataclasses.replace(self, variables=variables, history=history, n_runs=None)

    def apply(self, x: Any, *args: Any, method: str = "__call__", batch_size: int = 512) -> Any:
        """The model's ``method`` on ``x`` in inference mode (normalize ``x`` first).

        Args:
            x: array of shape (n, ...features), in the model's (normalized) units.
            *args: the method's further arguments (a key for a VAE's ``__call__``).
            method: ``"__call__"``, ``"encode"``, ``"decode"``, ...
            batch_size: rows per compiled call.
        """
        if self.n_runs is not None:
            raise ValueError(f"{self.path} holds {self.n_runs} runs: call select(k) first")
        x = jnp.asarray(x, jnp.float32)
        return predict(self.model, self.variables, x, *args, method=method, batch_size=batch_size)

    def encode(self, x: Any, batch_size: int = 512) -> Any:
        """``model.encode(x)`` in inference mode (a VAE returns ``(mean, logvar)``)."""
        return self.apply(x, method="encode", batch_size=batch_size)

    def decode(self, z: Any, batch_size: int = 512) -> Any:
        """``model.decode(z)`` in inference mode."""
        return self.apply(z, method="decode", batch_size=batch_size)


def _find_checkpoints(run_dir: str) -> str:
    """The folder of ``run_dir``'s checkpoints: ``run_dir/checkpoints`` or ``run_dir``."""
    for folder in (os.path.join(run_dir, CHECKPOINTS), run_dir):
        if os.path.isdir(folder) and ckpt.latest_checkpoint(folder) is not None:
            return folder
    subruns = sorted(
        name
        for name in os.listdir(run_dir)
        if os.path.isdir(os.path.join(run_dir, name, CHECKPOINTS))
    )
    if subruns:
        raise ValueError(
            f"{run_dir} holds the runs {subruns}, each a folder: "
            f"load_run({os.path.join(run_dir, subruns[0])!r}) loads the first"
        )
    raise FileNotFoundError(
        f"{run_dir} has no checkpoints (looked in {os.path.join(run_dir, CHECKPOINTS)} and "
        f"{run_dir}): is it the folder of a training run?"
    )


def _flat_history(history: History) -> dict[str, np.ndarray]:
    """The history as 1-D columns (K runs as ``name[k]``), like ``history.csv``."""
    if history.num_epochs == 0:
        return {}
    rows = [epoch_row(history, i) for i in range(history.num_epochs)]
    return {name: np.asarray([row[name] for row in rows]) for name in rows[0]}


def load_run(run_dir: str | os.PathLike, *, epoch: int | None = None) -> Run:
    """Reloads a run folder: the model, its variables, its config, normalizer and history.

    Args:
        run_dir: the output folder of a ``latent-jax`` command, or a ``checkpoint_dir`` that
            :func:`~latent_jax.train.fit` wrote.
        epoch: the checkpoint to load (one of those kept); ``None`` is the latest.

    Returns:
        A :class:`Run`.

    Raises:
        FileNotFoundError: for a missing folder or one without checkpoints.
        ValueError: for a folder whose files latent_jax did not write, or a model class it
            does not build (each naming the file).
        latent_jax.runs.checkpoint.CheckpointError: for a damaged checkpoint.
    """
    run_dir = os.fspath(run_dir)
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"run folder {run_dir} does not exist")
    folder = _find_checkpoints(run_dir)
    if epoch is None:
        loaded = ckpt.load_checkpoint(folder)
    else:
        loaded = ckpt.load_checkpoint(os.path.join(folder, f"checkpoint_{int(epoch):08d}.json"))
    meta = loaded.metadata
    if meta.get("kind") == DETECTOR_KIND:
        raise ValueError(
            f"{loaded.path} holds an AnomalyDetector: reload it with "
            f"latent_jax.AnomalyDetector.load({os.fspath(run_dir)!r})"
        )
    if meta.get("kind") != KIND:
        raise ValueError(f"{loaded.path} is not a latent_jax training checkpoint")
    if "model_spec" not in meta:
        raise ValueError(
            f"{loaded.path} was written by an older latent_jax that did not record the model "
            "as data; rebuild the model in Python and load the variables with "
            "latent_jax.runs.checkpoint.load_checkpoint"
        )
    if meta["model_spec"] is None:
        raise ValueError(
            f"{loaded.path} holds a {meta.get('model')!r} model, which is not one of "
            "latent_jax's registered classes: rebuild it in Python and load the variables "
            "with latent_jax.runs.checkpoint.load_checkpoint"
        )
    try:
        model = build_module(meta["model_spec"], where=loaded.path)
    except SpecError as err:
        raise ValueError(str(err)) from err
    try:
        state = loaded.tree["state"]
        variables = {"params": state["params"], **dict(state.get("model_state") or {})}
    except (KeyError, TypeError) as err:
        raise ValueError(f"{loaded.path} holds no model variables: {err}") from err
    variables = jax.tree.map(jnp.asarray, variables)
    config_path = os.path.join(run_dir, CONFIG)
    config = _read_json(config_path) if os.path.isfile(config_path) else {}
    config.setdefault("training", meta.get("config"))
    metrics_path = os.path.join(run_dir, METRICS)
    normalizer_path = os.path.join(run_dir, NORMALIZER)
    normalizer = None
    if os.path.isfile(normalizer_path):
        try:
            normalizer = Standardizer.from_dict(_read_json(normalizer_path))
        except KeyError as err:
            raise ValueError(f"{normalizer_path} lacks {err}") from err
    return Run(
        path=run_dir,
        model=model,
        variables=variables,
        config=config,
        history=_flat_history(History(loaded.tree.get("history", {}))),
        normalizer=normalizer,
        metrics=_read_json(metrics_path) if os.path.isfile(metrics_path) else {},
        checkpoint=loaded.path,
        epoch=int(loaded.epoch),
        n_runs=meta.get("n_runs"),
    )
