"""The checkpoint format of a training run: what a checkpoint holds and how it is resumed.

A run's checkpoint is a :mod:`latent_jax.checkpoint` file (verified, pickle-free) holding the
:class:`~latent_jax.train.state.TrainState`, the :class:`~latent_jax.train.state.History` so
far and the root key's data, with metadata (kind ``"latent_jax.train"``): the epoch, the
training config, the objective's and the model's names, the model as data (its class and
fields, :func:`latent_jax.models.spec.module_spec`), the data's row counts and example shape,
the number of runs (``None`` for one) and the key's implementation. :func:`fit`,
:func:`fit_many` and :func:`fit_stream` write and resume the same format.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization
from jax import Array

from latent_jax import checkpoint as ckpt
from latent_jax.models.spec import module_spec
from latent_jax.objectives import Objective
from latent_jax.train.config import RESUME_FIELDS, TrainConfig
from latent_jax.train.state import History, TrainState

KIND = "latent_jax.train"


def run_metadata(
    config: TrainConfig,
    objective: Objective,
    epoch: int,
    n_train: int,
    n_test: int,
    features: tuple[int, ...],
    n_runs: int | None,
    key_impl: str,
) -> dict[str, Any]:
    """The metadata of a run's checkpoint at ``epoch`` (JSON-serializable)."""
    return {
        "kind": KIND,
        "epoch": epoch,
        "config": config.to_dict(),
        "objective": objective.name,
        "model": type(objective.model).__name__,
        # The module as data (class and fields), so load_run can rebuild it; None for a
        # model latent_jax does not register.
        "model_spec": module_spec(objective.model),
        "n_train": n_train,
        "n_test": n_test,
        "feature_shape": list(features),
        "n_runs": n_runs,
        "key_impl": key_impl,
    }


def save_run(
    directory: str,
    state: TrainState,
    history: History,
    key: Array,
    epoch: int,
    meta: dict[str, Any],
    keep: int,
) -> str:
    """Writes a checkpoint of the run into ``directory``, keeping the last ``keep``; its path."""
    tree = {
        "state": serialization.to_state_dict(jax.device_get(state)),
        "history": dict(history),
        "key_data": np.asarray(jax.random.key_data(key)),
    }
    return ckpt.save_checkpoint(directory, tree, epoch=epoch, metadata=meta, keep=keep)


def restore_run(
    loaded: ckpt.Checkpoint,
    template: TrainState,
    key: Array | None,
    config: TrainConfig,
    expected: Mapping[str, Any],
) -> tuple[TrainState, History, Array, int]:
    """The state, history, root key and epoch of a loaded checkpoint, checked against this run.

    Args:
        loaded: the checkpoint (see :func:`load_for_resume`).
        template: the state's shapes and dtypes for this model (``jax.eval_shape``).
        key: the root key of this call, or ``None`` to take the checkpoint's.
        config: this call's config; the fields in ``RESUME_FIELDS`` must match.
        expected: metadata that must match (row counts, example shape).

    Raises:
        ValueError: for a different config, data, key or run count.
        latent_jax.checkpoint.CheckpointError: for a checkpoint that does not fit the model.
    """
    meta = loaded.metadata
    where = loaded.path
    saved = meta.get("config", {})
    # Fields newer than the checkpoint read as their defaults; callables by describe().
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    now = config.to_dict()
    changed = [
        f"{name}: checkpoint {saved.get(name, defaults[name])!r}, config {now[name]!r}"
        for name in RESUME_FIELDS
        if saved.get(name, defaults[name]) != now[name]
    ]
    if now["lr_schedule"] != "constant" and saved.get("epochs") != config.epochs:
        # A schedule spans the run's epochs: a longer run would follow another curve.
        changed.append(
            f"epochs: checkpoint {saved.get('epochs')!r}, config {config.epochs!r} "
            f"(lr_schedule={now['lr_schedule']!r} spans the run's epochs)"
        )
    if changed:
        raise ValueError(
            f"cannot resume from {where} with a different training config ("
            + "; ".join(changed)
            + "); only epochs and bookkeeping settings may change"
        )
    for name, value in expected.items():
        if meta.get(name) != value:
            raise ValueError(
                f"cannot resume from {where}: it was trained with {name}={meta.get(name)!r}, "
                f"this call has {name}={value!r}"
            )
    try:
        key_data = np.asarray(loaded.tree["key_data"])
        saved_key = jax.random.wrap_key_data(jnp.asarray(key_data), impl=meta["key_impl"])
    except (KeyError, TypeError, ValueError) as err:
        raise ckpt.CheckpointError(f"checkpoint {where} holds no valid key: {err}") from err
    if key is not None and not (
        key.shape == saved_key.shape
        and np.array_equal(np.asarray(jax.random.key_data(key)), key_data)
    ):
        raise ValueError(
            f"cannot resume from {where} with a different key: resuming continues the "
            "checkpoint's key sequence (pass key=None to use it)"
        )
    try:
        state = serialization.from_state_dict(template, loaded.tree["state"])
        pairs = zip(jax.tree.leaves(template), jax.tree.leaves(state), strict=True)
        for want, got in pairs:
            if tuple(want.shape) != tuple(np.shape(got)):
                raise ValueError(
                    f"an array of shape {tuple(np.shape(got))} where the model has "
                    f"{tuple(want.shape)}"
                )
    except (ValueError, KeyError, TypeError) as err:
        raise ckpt.CheckpointError(
            f"checkpoint {where} does not match the model being trained: {err}"
        ) from err
    state = jax.tree.map(lambda want, got: jnp.asarray(got, want.dtype), template, state)
    history = History(loaded.tree.get("history", {}))
    return state, history, saved_key, int(loaded.epoch)


def load_for_resume(resume: str, n_runs_expected: bool) -> ckpt.Checkpoint:
    """The checkpoint to resume from: ``resume``'s latest (a directory) or ``resume`` itself.

    Args:
        resume: a checkpoint directory or manifest path.
        n_runs_expected: whether the resuming call trains several runs (:func:`fit_many`).

    Raises:
        FileNotFoundError: when the path or its checkpoints do not exist.
        latent_jax.checkpoint.CheckpointError: for a checkpoint not written by the engine.
        ValueError: for a single-run checkpoint resumed by ``fit_many`` or vice versa.
    """
    manifest = ckpt.latest_checkpoint(resume) if os.path.isdir(resume) else resume
    if manifest is None:
        raise FileNotFoundError(f"no checkpoint to resume from in {resume}")
    loaded = ckpt.load_checkpoint(manifest)
    if loaded.metadata.get("kind") != KIND:
        raise ckpt.CheckpointError(f"checkpoint {loaded.path} was not written by fit()")
    saved_runs = loaded.metadata.get("n_runs")
    if n_runs_expected != (saved_runs is not None):
        raise ValueError(
            f"cannot resume from {loaded.path}: it was written by "
            f"{'fit_many' if saved_runs is not None else 'fit'}()"
        )
    return loaded
