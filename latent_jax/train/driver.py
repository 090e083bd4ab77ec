"""The one training loop behind :func:`fit`, :func:`fit_many` and :func:`fit_stream`.

:func:`drive` takes validated arguments and a batch source (:mod:`latent_jax.train.sources`)
and runs the run: it checks the data's example shape against the model, builds or restores the
state (a fresh draw, a warm start or a checkpoint), lays the state out for the devices, then
calls the source's compiled runner chunk after chunk. Between calls, in Python, it appends the
epochs to the :class:`~latent_jax.train.state.History`, stops on a non-finite loss (after
checkpointing the last good state), writes checkpoints, reports progress and calls the
callbacks. Whatever the source, these steps are the same code.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.sharding import NamedSharding, PartitionSpec
from tqdm import tqdm

from latent_jax import distributed
from latent_jax.objectives import Batch, Objective, split_variables
from latent_jax.train import checkpoints, interrupts
from latent_jax.train.compile import CompileCache, initializer
from latent_jax.train.config import TrainConfig
from latent_jax.train.epoch import EpochOutput
from latent_jax.train.state import History, TrainState

logger = logging.getLogger("latent_jax.train")

# With automatic chunking, how many of a chunk's epochs run per call is adapted so that
# Python regains control about this often (progress bar, callbacks).
_TARGET_CHUNK_SECONDS = 0.5

# callback(state, history): called once per epoch, in order, after each compiled call, with
# the history up to that epoch and the state after the call; True stops training.
Callback = Callable[[TrainState, History], Any]


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss.

    Attributes:
        epoch: the 1-based epoch in which it happened.
        step: the global optimizer step (0-based) of the first non-finite batch loss, or
            ``None`` when only the evaluation was non-finite.
        run: the index of the run in :func:`fit_many`, ``None`` for :func:`fit`.
        history: the history of the epochs completed before it.
        checkpoint: the path of the last good checkpoint, or ``None``.
    """

    def __init__(
        self,
        message: str,
        *,
        epoch: int,
        step: int | None,
        run: int | None,
        history: History,
        checkpoint: str | None,
    ):
        super().__init__(message)
        self.epoch = epoch
        self.step = step
        self.run = run
        self.history = history
        self.checkpoint = checkpoint


# --------------------------------------------------------------------------------------
# Before the first epoch: shapes, the starting state, its layout.


def probe_loss(
    objective: Objective,
    params: Any,
    model_state: Any,
    features: tuple[int, ...],
    key: Array,
    name: str,
    modes: Sequence[bool] = (True, False),
) -> None:
    """Traces the loss on shapes only, so bad shapes fail here with a clear message."""
    batch = Batch(
        jax.ShapeDtypeStruct((2, *features), jnp.float32), jax.ShapeDtypeStruct((2,), jnp.float32)
    )
    count = jax.ShapeDtypeStruct((), jnp.int32)
    try:
        for train in modes:
            loss = functools.partial(objective.loss, train=train)
            jax.eval_shape(loss, params, model_state, batch, key, count, count)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"{name} has examples of shape {features}, which the model "
            f"{type(objective.model).__name__} does not take: {err}"
        ) from err


def _probe(
    objective: Objective, features: tuple[int, ...], test_features: tuple | None, key: Array
) -> Any:
    """Checks the data's example shape against the model before anything is compiled.

    Returns the shapes of the model's variables (from ``jax.eval_shape``).
    """
    if test_features is not None and tuple(test_features) != features:
        raise ValueError(
            f"test_x has examples of shape {tuple(test_features)}, but train_x has "
            f"examples of shape {features}"
        )
    example = jax.ShapeDtypeStruct((2, *features), jnp.float32)
    try:
        variables = jax.eval_shape(objective.init, key, example)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"train_x has examples of shape {features}, which the model "
            f"{type(objective.model).__name__} does not take: {err}"
        ) from err
    params, model_state = split_variables(variables)
    probe_loss(objective, params, model_state, features, key, "train_x")
    return variables


def _warm_variables(variables: Any, template: Any, n_runs: int | None) -> Any:
    """``init_variables`` checked against the model's variables (and stacked for K runs)."""
    if not isinstance(variables, Mapping) or "params" not in variables:
        raise TypeError(
            "init_variables must be a dict of variable collections with 'params' (what "
            f"model.init returns), got {type(variables).__name__}"
        )
    variables = {name: variables[name] for name in template}  # ignores extra collections
    want = jax.tree_util.tree_flatten_with_path(template)[0]
    got_leaves, got_tree = jax.tree.flatten(variables)
    if got_tree != jax.tree.structure(template):
        raise ValueError(
            "init_variables do not have the model's structure: expected "
            f"{jax.tree.structure(template)}, got {got_tree}"
        )
    stacked = None
    for (path, expected), value in zip(want, got_leaves, strict=True):
        shape = tuple(np.shape(value))
        where = jax.tree_util.keystr(path)
        if shape == tuple(expected.shape):
            stacked = False if stacked is None else stacked
        elif n_runs is not None and shape == (n_runs, *expected.shape):
            stacked = True if stacked is None else stacked
        else:
            expect = f"{tuple(expected.shape)}" + (
                f" or {(n_runs, *expected.shape)}" if n_runs else ""
            )
            raise ValueError(f"init_variables{where} has shape {shape}, expected {expect}")
    variables = jax.tree.map(lambda v, t: jnp.asarray(v, t.dtype), variables, template)
    if n_runs is not None and not stacked:
        variables = jax.tree.map(lambda v: jnp.broadcast_to(v, (n_runs, *v.shape)), variables)
    return variables


# --------------------------------------------------------------------------------------
# Between calls: history rows, failures, checkpoints, progress.


def _rows(out: EpochOutput, ran: np.ndarray, batched: bool) -> tuple[dict, np.ndarray]:
    """History rows of the epochs that ran (for several runs: that any run ran)."""
    any_ran = ran.any(axis=0) if batched else ran
    keep = np.flatnonzero(any_ran)
    rows = {}
    for prefix, metrics in (("train", out.train), ("test", out.test)):
        for name, values in metrics.items():
            values = np.asarray(values, np.float64)
            rows[f"{prefix}_{name}"] = values[..., keep]
    return rows, keep


class _Failure(NamedTuple):
    """Where an epoch turned non-finite: its index in the call, the step, the run, and what."""

    index: int
    step: int | None
    run: int | None
    what: str  # "loss", "evaluation" or "state"


def _find_nonfinite(
    out: EpochOutput, ran: np.ndarray, keep: np.ndarray, batched: bool
) -> _Failure | None:
    """The first epoch of the call whose loss, metrics or state turned non-finite, or None."""
    for i in keep:
        runs = range(ran.shape[0]) if batched else [None]
        for run in runs:
            where = (run, i) if batched else (i,)
            if not ran[where]:
                continue
            bad_step = int(np.asarray(out.bad_step)[where])
            values = [np.asarray(v)[where] for v in (*out.train.values(), *out.test.values())]
            if bad_step >= 0:
                return _Failure(int(i), bad_step, run, "loss")
            if not all(np.isfinite(v) for v in values):
                return _Failure(int(i), None, run, "evaluation")
            if not bool(np.asarray(out.finite_state)[where]):
                return _Failure(int(i), None, run, "state")
    return None


class _Checkpointer:
    """Writes the run's checkpoints (process 0 only) and remembers the last one."""

    def __init__(
        self,
        directory: str | None,
        config: TrainConfig,
        metadata: Callable[[int], dict],
        key: Array,
        mesh: Any,
        last: str | None,
        saved_epoch: int,
    ):
        self.directory = directory
        self.config = config
        self.metadata = metadata
        self.key = key
        self.mesh = mesh
        self.last = last
        self.saved_epoch = saved_epoch

    def save(self, state: TrainState, history: History, epoch: int) -> None:
        """A checkpoint at ``epoch`` unless there is one already (or no directory)."""
        if self.directory is None or self.saved_epoch == epoch:
            return
        self.saved_epoch = epoch
        if self.mesh is not None:
            state = distributed.to_host(state)  # every process takes part in the gather
            if jax.process_index() != 0:
                return  # one writer: process 0
        self.last = checkpoints.save_run(
            self.directory,
            state,
            history,
            self.key,
            epoch,
            self.metadata(epoch),
            self.config.keep_checkpoints,
        )

    def due(self, epoch: int) -> bool:
        """Whether ``config.checkpoint_every`` asks for a checkpoint at ``epoch``."""
        every = self.config.checkpoint_every
        return self.directory is not None and bool(every) and epoch % every == 0


def _report(bar: Any, history: History, n_done: int, config: TrainConfig, stopped: bool) -> None:
    last = history.last()
    postfix = {}
    for name in ("train_loss", "test_loss"):
        if name in last:
            value = np.nanmean(last[name]) if np.ndim(last[name]) else last[name]
            postfix[name.replace("train_", "")] = f"{value:.4g}"
    bar.update(n_done)
    bar.set_postfix(postfix, refresh=False)
    if config.log_every and logger.isEnabledFor(logging.INFO):
        epochs = history["epoch"][-n_done:]
        for offset, epoch in enumerate(epochs):
            if epoch % config.log_every == 0 or epoch == config.epochs:
                index = history.num_epochs - n_done + offset
                fields = " ".join(
                    f"{name}={np.nanmean(history[name][..., index]):.5g}"
                    for name in history
                    if name not in ("epoch", "epoch_time")
                )
                logger.info("epoch %d/%d %s", epoch, config.epochs, fields)
    if stopped:
        # Logged whatever ``quiet`` says: quiet hides the progress bar, not events.
        logger.info("early stopping after epoch %d", int(history["epoch"][-1]))


def _nonfinite_error(
    bad: _Failure, epoch: int, history: History, last: str | None
) -> NonFiniteLossError:
    failed = epoch + bad.index + 1
    where = f" in run {bad.run}" if bad.run is not None else ""
    what = {
        "loss": f"non-finite loss at epoch {failed}, step {bad.step}",
        "evaluation": f"non-finite loss at epoch {failed} (in evaluation)",
        "state": (
            f"non-finite parameters or optimizer state after epoch {failed} (the gradients "
            "overflowed float32)"
        ),
    }[bad.what]
    kept = (
        f"; the last good checkpoint is {last} (resume from it at a lower learning rate with "
        "allow_changes=('learning_rate',), --override learning_rate on the command line)"
        if last
        else ""
    )
    return NonFiniteLossError(
        f"{what}{where}: training stopped (lower the learning rate or check the data){kept}",
        epoch=failed,
        step=bad.step,
        run=bad.run,
        history=history,
        checkpoint=last,
    )


# --------------------------------------------------------------------------------------
# The run.


class _Start(NamedTuple):
    """Where a run starts: its state, history, root key, epoch and last checkpoint."""

    state: TrainState
    history: History
    key: Array
    epoch: int
    checkpoint: str | None
    resumed: tuple = ()  # the run's resumptions (checkpoints.Restored.resumed)


def _start(
    objective: Objective,
    batches: Any,
    config: TrainConfig,
    plan: Any,
    key: Array | None,
    batched: bool,
    resume: str | None,
    init_variables: Any,
    cache: CompileCache,
    allow_changes: Sequence[str] = (),
) -> _Start:
    """The first state: restored from ``resume``, warm from ``init_variables``, or drawn."""
    features = batches.features
    probe_key = jax.random.key(0)
    template_variables = _probe(objective, features, batches.test_features, probe_key)
    if resume is not None:
        loaded = checkpoints.load_for_resume(resume, batched)
        saved_runs = loaded.metadata.get("n_runs")
        probe = jax.random.split(probe_key, saved_runs) if batched else probe_key
        cold = initializer(cache, objective, config, plan, features, batched)
        expected = {
            "n_train": batches.n_train,
            "n_test": batches.n_test,
            "feature_shape": list(features),
        }
        restored = checkpoints.restore_run(
            loaded,
            jax.eval_shape(cold, probe),
            key,
            config,
            expected,
            objective,
            allow_changes,
            data_fingerprint=batches.fingerprint,
        )
        state, history, key, epoch = restored[:4]
        return _Start(state, history, key, epoch, loaded.path, tuple(restored.resumed))
    warm = init_variables is not None
    init_fn = initializer(cache, objective, config, plan, features, batched, warm)
    if warm:
        n_runs = int(key.shape[0]) if batched else None
        state = init_fn(key, _warm_variables(init_variables, template_variables, n_runs))
    else:
        state = init_fn(key)
    return _Start(state, History(), key, 0, None)


class _Layout(NamedTuple):
    """The state and keys placed on the run's devices, and how (for compiling)."""

    state: TrainState
    train_key: Array
    eval_key: Array
    state_sharding: Any
    runs_mesh: Any


def _lay_out(
    state: TrainState,
    key: Array,
    batches: Any,
    batched: bool,
    mesh: Any,
    shard_params: bool,
    spread_runs: bool,
) -> _Layout:
    """Splits the run keys and places state and keys on the mesh or the runs' devices."""
    if batched:
        keys3 = jax.vmap(lambda k: jax.random.split(k, 3))(key)
        train_key, eval_key = keys3[:, 1], keys3[:, 2]
    else:
        _, train_key, eval_key = jax.random.split(key, 3)
    if mesh is not None:
        # A fresh or restored state (host arrays) is laid out on this mesh, whatever mesh
        # wrote the checkpoint.
        sharding = distributed.state_shardings(state, mesh, fsdp=shard_params, skip=int(batched))
        state = distributed.place(state, sharding)
        train_key, eval_key = distributed.place((train_key, eval_key), distributed.replicated(mesh))
        return _Layout(state, train_key, eval_key, sharding, None)
    runs_mesh = distributed.runs_mesh(int(key.shape[0])) if batched and spread_runs else None
    if runs_mesh is not None:
        # Each device holds its runs' state and keys and a copy of the data.
        by_run = NamedSharding(runs_mesh, PartitionSpec(distributed.RUNS_AXIS))
        state, train_key, eval_key = jax.device_put((state, train_key, eval_key), by_run)
        batches.replicate_on(runs_mesh)
        logger.info("%d runs spread over %d devices", int(key.shape[0]), runs_mesh.size)
    return _Layout(state, train_key, eval_key, None, runs_mesh)


def checkpoint_folder(config: TrainConfig, resume: str | None) -> str | None:
    """Where a run writes its checkpoints: ``config.checkpoint_dir``, else the resumed one's."""
    if config.checkpoint_dir is None and resume is not None:
        return resume if os.path.isdir(resume) else os.path.dirname(resume)
    return config.checkpoint_dir


def drive(
    objective: Objective,
    batches: Any,
    config: TrainConfig,
    key: Array | None,
    *,
    batched: bool,
    resume: str | None,
    callbacks: Sequence[Callback],
    mesh: Any = None,
    shard_params: bool = False,
    spread_runs: bool = False,
    init_variables: Any = None,
    cache: CompileCache,
    allow_changes: Sequence[str] = (),
) -> tuple[TrainState, History]:
    """Trains ``objective`` on ``batches`` (a source of :mod:`latent_jax.train.sources`).

    The arguments are those of :func:`~latent_jax.train.fit` after their types were checked;
    ``key`` is ``None`` only when resuming.
    """
    plan = batches.plan(config, batched)
    start = _start(
        objective, batches, config, plan, key, batched, resume, init_variables, cache, allow_changes
    )
    state, history, key, epoch = start.state, start.history, start.key, start.epoch
    layout = _lay_out(state, key, batches, batched, mesh, shard_params, spread_runs)
    if epoch >= config.epochs or bool(np.all(np.asarray(state.stopped))):
        return layout.state, history
    checkpoint_dir = checkpoint_folder(config, resume)
    n_runs = int(key.shape[0]) if batched else None
    key_impl = str(jax.random.key_impl(key))

    def metadata(epoch: int) -> dict:
        return checkpoints.run_metadata(
            config,
            objective,
            epoch,
            batches.n_train,
            batches.n_test,
            batches.features,
            n_runs,
            key_impl,
            start.resumed,
            batches.fingerprint(),
        )

    if checkpoint_dir is not None:
        # Every process takes part (a checksum of rows sharded over several hosts is a
        # collective); only process 0 writes it into the checkpoints.
        batches.fingerprint()
    saved_epoch = epoch if resume is not None else -1
    saver = _Checkpointer(
        checkpoint_dir, config, metadata, key, mesh, start.checkpoint, saved_epoch
    )
    runner, seconds = batches.compile(
        cache,
        objective,
        config,
        plan,
        batched,
        layout.state,
        layout.train_key,
        layout.eval_key,
        layout.state_sharding,
        layout.runs_mesh,
    )
    if seconds:
        logger.info("compiled %d-epoch chunk in %.2f s", plan.chunk, seconds)
    bar = tqdm(
        total=config.epochs,
        initial=epoch,
        disable=config.quiet,
        desc=objective.name,
        unit="epoch",
        dynamic_ncols=True,
    )
    try:
        with interrupts.training():
            return _loop(
                runner,
                config,
                plan.chunk,
                batched,
                saver,
                callbacks,
                layout.train_key,
                layout.eval_key,
                layout.state,
                history,
                epoch,
                bar,
            )
    finally:
        bar.close()


def _loop(
    runner: Callable,
    config: TrainConfig,
    chunk: int,
    batched: bool,
    saver: _Checkpointer,
    callbacks: Sequence[Callback],
    train_key: Array,
    eval_key: Array,
    state: TrainState,
    history: History,
    epoch: int,
    bar: Any,
) -> tuple[TrainState, History]:
    """Calls ``runner`` until the last epoch, a stop, a callback's ``True`` or a failure."""
    start_epoch = epoch
    epoch_seconds: float | None = None
    done = False
    good = 0  # after a failure: the failing call's good epochs, run again on their own
    while not done:
        n_active = chunk if config.epochs_per_call is not None else 1
        if config.epochs_per_call is None and epoch_seconds:
            n_active = int(_TARGET_CHUNK_SECONDS / max(epoch_seconds, 1e-9))
        n_active = max(1, min(n_active, chunk, config.epochs - epoch))
        if saver.directory is not None and config.checkpoint_every:
            n_active = min(n_active, config.checkpoint_every - epoch % config.checkpoint_every)
        if good:
            n_active, good = good, 0
        start = time.perf_counter()
        new_state, (out, ran) = runner(state, train_key, eval_key, epoch, n_active)
        out, ran = jax.device_get((out, ran))
        elapsed = time.perf_counter() - start
        ran = np.asarray(ran, bool)
        rows, keep = _rows(out, ran, batched)
        bad = _find_nonfinite(out, ran, keep, batched)
        if bad is not None and bad.index > 0:
            # Keep the epochs before the failure: the next call runs them alone (the same
            # keys, so the same numbers) and ends where the failure starts; the call after
            # it fails at once and checkpoints the last good epoch.
            good = bad.index
            continue
        if bad is not None:
            if epoch > 0:  # a checkpoint of the initialization keeps nothing trained
                saver.save(state, history, epoch)
            raise _nonfinite_error(bad, epoch, history, saver.last)
        n_done = len(keep)
        rows["epoch"] = np.arange(epoch + 1, epoch + n_done + 1)
        rows["epoch_time"] = np.full(n_done, elapsed / max(n_done, 1))
        history = history.extend(rows)
        state = new_state
        epoch += n_done
        epoch_seconds = elapsed / max(n_done, 1)
        stopped = bool(np.all(np.asarray(state.stopped)))
        done = epoch >= config.epochs or stopped or n_done == 0
        if saver.due(epoch) or done:
            saver.save(state, history, epoch)
        _report(bar, history, n_done, config, stopped)
        for index in range(history.num_epochs - n_done, history.num_epochs):
            upto = history.head(index + 1)
            for callback in callbacks:
                if callback(state, upto):
                    done = True
        signum = interrupts.requested()
        if signum is not None and not done:
            saver.save(state, history, epoch)
            raise interrupts.Interrupted(signum, epoch, saver.last)
    if epoch > start_epoch:
        saver.save(state, history, epoch)
    return state, history
