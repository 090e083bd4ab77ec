"""The checkpoint format of a training run: what a checkpoint holds and how it is resumed.

A run's checkpoint is a :mod:`latent_jax.runs.checkpoint` file (verified, pickle-free) holding the
:class:`~latent_jax.train.state.TrainState`, the :class:`~latent_jax.train.state.History` so
far and the root key's data, with metadata (kind ``"latent_jax.train"``): the epoch, the
training config, the objective's and the model's names, the model as data (its class and
fields, :func:`latent_jax.models.spec.module_spec`), the objective's identity
(:meth:`~latent_jax.objectives.Objective.describe`: its likelihood, β schedule, corruption),
the data's row counts and example shape, the number of runs (``None`` for one), the key's
implementation and the run's resumptions (``resumed``: the epoch and the settings changed
each time). :func:`fit`, :func:`fit_many` and :func:`fit_stream` write and resume the same
format.

Resuming continues the same run: a different model (class or fields), objective (name,
likelihood, β schedule, corruption), data shape or training setting is refused before
anything is compiled, with a message naming the field and both values. Only the optimizer
settings in :data:`CHANGEABLE_FIELDS` may change, and only when the caller says so
(``allow_changes=``), which the checkpoints then record.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization
from jax import Array

from latent_jax.models.spec import module_spec
from latent_jax.objectives import Objective
from latent_jax.runs import checkpoint as ckpt
from latent_jax.train.config import RESUME_FIELDS, TrainConfig
from latent_jax.train.epoch import all_finite
from latent_jax.train.state import History, TrainState

KIND = "latent_jax.train"
# allow_changes's name for training on other rows than the checkpoint's (its fingerprint).
DATA = "data"
# The training settings a resumed run may change when the caller asks (``allow_changes``),
# and the data (``"data"``): how the remaining steps update the parameters, and on which
# rows, not what is trained. ``epochs`` needs asking only when a learning-rate schedule spans
# the run's epochs.
CHANGEABLE_FIELDS = (
    "learning_rate",
    "lr_schedule",
    "warmup_steps",
    "lr_final_fraction",
    "clip_norm",
    "weight_decay",
    "momentum",
    "b1",
    "b2",
    "group_optimizers",
    "compute_dtype",
    "epochs",
    DATA,
)

logger = logging.getLogger("latent_jax.train")


def run_metadata(
    config: TrainConfig,
    objective: Objective,
    epoch: int,
    n_train: int,
    n_test: int,
    features: tuple[int, ...],
    n_runs: int | None,
    key_impl: str,
    resumed: Sequence[Mapping[str, Any]] = (),
    data_fingerprint: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """The metadata of a run's checkpoint at ``epoch`` (JSON-serializable).

    ``resumed`` lists the run's resumptions so far (see :func:`restore_run`);
    ``data_fingerprint`` the fingerprints of its train and test rows
    (:mod:`latent_jax.fingerprint`), which a resumed run must match.
    """
    return {
        "kind": KIND,
        "epoch": epoch,
        "config": config.to_dict(),
        "objective": objective.name,
        "objective_spec": objective.describe(),
        "model": type(objective.model).__name__,
        # The module as data (class and fields), so load_run can rebuild it; None for a
        # model latent_jax does not register.
        "model_spec": module_spec(objective.model),
        "n_train": n_train,
        "n_test": n_test,
        "feature_shape": list(features),
        "n_runs": n_runs,
        "key_impl": key_impl,
        "resumed": [dict(record) for record in resumed],
        "data_fingerprint": None if data_fingerprint is None else dict(data_fingerprint),
    }


def check_allow_changes(allow_changes: Any, resume: Any) -> tuple[str, ...]:
    """``allow_changes`` as a tuple of :data:`CHANGEABLE_FIELDS`, given only when resuming.

    Raises:
        TypeError: for something other than a sequence of strings.
        ValueError: for a field that may not change, or changes without ``resume``.
    """
    if isinstance(allow_changes, str) or not isinstance(allow_changes, Sequence):
        raise TypeError(
            f"allow_changes must be a tuple of TrainConfig field names, got {allow_changes!r}"
        )
    for name in allow_changes:
        if name not in CHANGEABLE_FIELDS:
            raise ValueError(
                f"allow_changes may name only the optimizer settings and the data "
                f"{list(CHANGEABLE_FIELDS)}, got {name!r}: the model and the objective never "
                "change on resume"
            )
    if allow_changes and resume is None:
        raise ValueError(f"allow_changes={tuple(allow_changes)!r} applies only with resume=")
    return tuple(allow_changes)


def _differences(label: str, saved: Any, now: Any) -> list[str]:
    """``"label: checkpoint has X, this run Y"`` for every differing field of two specs."""
    if isinstance(saved, Mapping) and isinstance(now, Mapping):
        found = []
        for name in sorted(set(saved) | set(now), key=str):
            found += _differences(f"{label} {name}", saved.get(name), now.get(name))
        return found
    return [] if saved == now else [f"{label}: checkpoint has {saved!r}, this run {now!r}"]


def _identity_changes(meta: Mapping[str, Any], objective: Objective) -> list[str]:
    """How this run's model and objective differ from the checkpoint's."""
    saved_model, model = meta.get("model_spec"), module_spec(objective.model)
    if saved_model is None or model is None:
        changed = _differences("model class", meta.get("model"), type(objective.model).__name__)
    elif saved_model.get("class") != model.get("class"):
        changed = _differences("model class", saved_model.get("class"), model.get("class"))
    else:
        changed = _differences("model", saved_model.get("fields"), model.get("fields"))
    # Checkpoints older than the objective's spec record only its name.
    saved_objective = meta.get("objective_spec") or {"name": meta.get("objective")}
    now = objective.describe() if "objective_spec" in meta else {"name": objective.name}
    return changed + _differences("objective", saved_objective, now)


class Restored(NamedTuple):
    """A run restored from its checkpoint (see :func:`restore_run`).

    Attributes:
        state: the :class:`TrainState`.
        history: the :class:`History` up to the checkpoint.
        key: the run's root key.
        epoch: the checkpoint's epoch.
        resumed: the run's resumptions, this one last: ``{"epoch", "changed": {field:
            [checkpoint's value, this run's]}}``.
    """

    state: TrainState
    history: History
    key: Array
    epoch: int
    resumed: list[dict[str, Any]]


def save_run(
    directory: str,
    state: TrainState,
    history: History,
    key: Array,
    epoch: int,
    meta: dict[str, Any],
    keep: int,
) -> str:
    """Writes a checkpoint of the run into ``directory``, keeping the last ``keep``; its path.

    The metadata also records the history's column order (``history_columns``; the payload's
    dicts come back sorted), so a resumed run writes its files in the order of an
    uninterrupted one.
    """
    meta = {**meta, "history_columns": list(history)}
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
    objective: Objective | None = None,
    allow_changes: Sequence[str] = (),
    data_fingerprint: Callable[[], Mapping[str, str | None]] | None = None,
) -> Restored:
    """The state, history, root key and epoch of a loaded checkpoint, checked against this run.

    Args:
        loaded: the checkpoint (see :func:`load_for_resume`).
        template: the state's shapes and dtypes for this model (``jax.eval_shape``).
        key: the root key of this call, or ``None`` to take the checkpoint's.
        config: this call's config; the fields in ``RESUME_FIELDS`` must match, but for
            those named in ``allow_changes``.
        expected: metadata that must match (row counts, example shape).
        objective: this call's objective, whose model and :meth:`Objective.describe` must
            match the checkpoint's; ``None`` skips that check.
        allow_changes: fields of :data:`CHANGEABLE_FIELDS` that may differ from the
            checkpoint's (see :func:`check_allow_changes`); ``"data"`` lets the rows differ.
        data_fingerprint: computes this run's data fingerprints (``{"train": ..., "test":
            ...}``), which must match the checkpoint's where it has them; ``None`` skips it.

    Returns:
        The :class:`Restored` run, its ``resumed`` list ending with this resumption.

    Raises:
        ValueError: for a different model, objective, config, data, key or run count,
            naming the field and both values.
        latent_jax.runs.checkpoint.CheckpointError: for a checkpoint that does not fit the model.
    """
    meta = loaded.metadata
    where = loaded.path
    identity = [] if objective is None else _identity_changes(meta, objective)
    if identity:
        raise ValueError(
            f"cannot resume from {where} with another model or objective ("
            + "; ".join(identity)
            + "): a resumed run trains what its checkpoint trained"
        )
    saved = meta.get("config", {})
    # Fields newer than the checkpoint read as their defaults; callables by describe().
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    now = config.to_dict()
    differ = {
        name: [saved.get(name, defaults[name]), now[name]]
        for name in RESUME_FIELDS
        if saved.get(name, defaults[name]) != now[name]
    }
    if now["lr_schedule"] != "constant" and saved.get("epochs") != config.epochs:
        # A schedule spans the run's epochs: a longer run would follow another curve.
        differ["epochs"] = [saved.get("epochs"), config.epochs]
    refused = [
        f"{name}: checkpoint has {old!r}, this run {new!r}"
        + (
            f" (lr_schedule={now['lr_schedule']!r} spans the run's epochs)"
            if name == "epochs"
            else ""
        )
        for name, (old, new) in differ.items()
        if name not in allow_changes
    ]
    if refused:
        changeable = sorted(set(differ) & set(CHANGEABLE_FIELDS) - set(allow_changes))
        advice = (
            f"; to continue with the new {', '.join(changeable)} on purpose, allow the "
            f"change (allow_changes={tuple(changeable)!r}, --override on the command line)"
            if changeable
            else ""
        )
        raise ValueError(
            f"cannot resume from {where} with a different training config ("
            + "; ".join(refused)
            + f"); only epochs and bookkeeping settings may change{advice}"
        )
    changed = {name: values for name, values in differ.items() if name in allow_changes}
    for name, value in expected.items():
        if meta.get(name) != value:
            raise ValueError(
                f"cannot resume from {where}: it was trained with {name}={meta.get(name)!r}, "
                f"this call has {name}={value!r}"
            )
    if data_fingerprint is not None:
        changed.update(_data_changes(meta, data_fingerprint(), where, allow_changes))
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
        if changed:
            raise ValueError(
                f"cannot resume from {where} with the changed {', '.join(changed)}: the "
                "checkpoint's optimizer state does not fit the new optimizer (adding or "
                "removing a schedule or clipping changes what the optimizer keeps; changing "
                f"their values does not): {err}"
            ) from err
        raise ckpt.CheckpointError(
            f"checkpoint {where} does not match the model being trained: {err}"
        ) from err
    state = jax.tree.map(lambda want, got: jnp.asarray(got, want.dtype), template, state)
    if not bool(all_finite((state.params, state.opt_state, state.model_state))):
        raise ckpt.CheckpointError(
            f"checkpoint {where} holds non-finite parameters or optimizer state (it was written "
            "as the run diverged): resume from an earlier checkpoint of its folder"
        )
    saved_history = loaded.tree.get("history", {})
    columns = [c for c in meta.get("history_columns", []) if c in saved_history]
    columns += sorted(set(saved_history) - set(columns))
    history = History({name: saved_history[name] for name in columns})
    epoch = int(loaded.epoch)
    if epoch > config.epochs:
        raise ValueError(
            f"cannot resume from {where} with epochs={config.epochs}: it has trained {epoch} "
            f"epochs already (a run cannot be shortened; pass epochs >= {epoch})"
        )
    record = {"epoch": epoch, "changed": changed}
    if changed:
        logger.info("resuming from %s at epoch %d with changed %s", where, epoch, changed)
    resumed = [*meta.get("resumed", []), record]
    return Restored(state, history, saved_key, epoch, resumed)


def _data_changes(
    meta: Mapping[str, Any],
    now: Mapping[str, str | None],
    where: str,
    allow_changes: Sequence[str],
) -> dict[str, list]:
    """The data change of a resumption (``{"data": [saved, now]}``), or ``{}`` when the rows
    are the checkpoint's; a change not allowed is refused.

    Checkpoints written before fingerprints were recorded have none to compare with, and a
    file's identity (``files:``) cannot be compared with a checksum of rows (``rows:``).
    """
    saved = meta.get("data_fingerprint")
    if not saved:
        return {}
    differ = []
    for part in ("train", "test"):
        old, new = saved.get(part), now.get(part)
        if old is not None and new is not None and old.split(":")[0] != new.split(":")[0]:
            # A streamed file's identity against rows in memory (a streamed run resumed in
            # memory, or the reverse): nothing to compare without reading the file again.
            logger.info("resuming from %s: its %s rows cannot be compared (%s, %s)", where,
                        part, old, new)  # fmt: skip
        elif old != new:
            differ.append(part)
    if not differ:
        return {}
    if DATA in allow_changes:
        logger.info("resuming from %s on other %s rows, as allowed", where, "/".join(differ))
        return {DATA: [dict(saved), dict(now)]}
    described = "; ".join(
        f"{part} rows: checkpoint has {saved.get(part)}, this run {now.get(part)}"
        for part in differ
    )
    raise ValueError(
        f"cannot resume from {where} on other data ({described}): the rows have the "
        "checkpoint's shape but other values or order; to continue on these rows on purpose, "
        f"allow it (allow_changes=('{DATA}',), --override {DATA} on the command line)"
    )


def load_for_resume(resume: str, n_runs_expected: bool) -> ckpt.Checkpoint:
    """The checkpoint to resume from: ``resume``'s latest (a directory) or ``resume`` itself.

    Args:
        resume: a checkpoint directory or manifest path.
        n_runs_expected: whether the resuming call trains several runs (:func:`fit_many`).

    Raises:
        FileNotFoundError: when the path or its checkpoints do not exist.
        latent_jax.runs.checkpoint.CheckpointError: for a checkpoint not written by the engine.
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
