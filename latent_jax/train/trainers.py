"""The public trainers: :func:`fit`, :func:`fit_many`, :func:`fit_stream` and :func:`evaluate`.

Each checks its arguments at the boundary, wraps its data in a batch source
(:mod:`latent_jax.train.sources`) and hands both to the one driver
(:func:`latent_jax.train.driver.drive`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from latent_jax import precision, validation
from latent_jax.objectives import GroupedObjective, Objective, bind_dataset_size
from latent_jax.runs import locks
from latent_jax.train.checkpoints import check_allow_changes
from latent_jax.train.compile import CompileCache, cache_for
from latent_jax.train.config import TrainConfig
from latent_jax.train.driver import Callback, checkpoint_folder, drive, probe_loss
from latent_jax.train.epoch import evaluate_batches
from latent_jax.train.sources import ArrayBatches, StreamedBatches
from latent_jax.train.state import History, TrainState
from latent_jax.xla_options import default_options


def _check_objective(objective: Any) -> Objective | GroupedObjective:
    if not isinstance(objective, Objective | GroupedObjective):
        raise TypeError(
            "objective must be a latent_jax.objectives.Objective (e.g. "
            "autoencoder_objective(model)) or a latent_jax.objectives.GroupedObjective (e.g. "
            f"gan_objective(model)), got {type(objective).__name__}"
        )
    return objective


def _check_common(
    objective: Any,
    config: Any,
    callbacks: Sequence[Any],
    resume: Any,
    cache: Any,
) -> tuple[Objective, TrainConfig, str | None, CompileCache]:
    """The arguments every trainer takes, checked before any data is touched."""
    objective = _check_objective(objective)
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if config.group_optimizers and not isinstance(objective, GroupedObjective):
        raise ValueError(
            f"config.group_optimizers names the groups {sorted(config.group_optimizers)}, but "
            f"the objective {objective.name!r} has one parameter group (set it to None)"
        )
    for i, callback in enumerate(callbacks):
        if not callable(callback):
            raise TypeError(f"callbacks[{i}] must be callable (state, history), got {callback!r}")
    if resume is not None:
        resume = os.fspath(resume)
        if not os.path.exists(resume):
            raise FileNotFoundError(f"resume path {resume} does not exist")
    if cache is None:
        cache = cache_for(objective)
    elif not isinstance(cache, CompileCache):
        raise TypeError(f"cache must be a CompileCache or None, got {type(cache).__name__}")
    return objective, config, resume, cache


def _root_key(key: Any, config: TrainConfig, resume: str | None, batched: bool) -> Array | None:
    if key is None and resume is None:
        if batched:
            raise TypeError("keys is required: pass jax.random.split(jax.random.key(seed), K)")
        return jax.random.key(config.seed)
    if key is None:
        return None  # the checkpoint's
    return validation.check_key("keys" if batched else "key", key, batched=batched)


def _train(
    objective: Any,
    make_batches: Callable[[], Any],
    config: Any,
    key: Any,
    *,
    batched: bool,
    resume: Any,
    callbacks: Sequence[Any],
    cache: Any,
    **options: Any,
) -> tuple[TrainState, History]:
    """What every trainer does: check the common arguments, wrap the data, run the driver."""
    objective, config, resume, cache = _check_common(objective, config, callbacks, resume, cache)
    batches, key = make_batches(), _root_key(key, config, resume, batched)
    # The losses see the training set's size N (Context.n_train); the compile cache stays
    # the objective's own, whose programs are keyed by the plan (N included).
    objective = bind_dataset_size(objective, batches.n_train)
    folder = checkpoint_folder(config, resume)
    # One writer per checkpoint directory (process 0 writes them): a second fails at once.
    writer = folder is not None and jax.process_index() == 0
    lock = locks.folder_lock(folder) if writer else contextlib.nullcontext()
    with lock, precision.scope(config.compute_dtype):
        return drive(
            objective,
            batches,
            config,
            key,
            batched=batched,
            resume=resume,
            callbacks=callbacks,
            cache=cache,
            **options,
        )


def fit(
    objective: Objective,
    train_x: Any,
    test_x: Any,
    config: TrainConfig,
    key: Array | None = None,
    *,
    resume: str | os.PathLike | None = None,
    callbacks: Sequence[Callback] = (),
    mesh: Any = None,
    shard_params: bool = False,
    init_variables: Any = None,
    cache: CompileCache | None = None,
    allow_changes: Sequence[str] = (),
) -> tuple[TrainState, History]:
    """Trains ``objective.model`` on ``train_x``, evaluating ``test_x`` after every epoch.

    Args:
        objective: what to minimize, with its model (see :mod:`latent_jax.objectives`).
        train_x: array of shape (n_train, ...features), finite; cast to float32 and placed
            on the device.
        test_x: array of shape (n_test, ...features), or ``None`` for no evaluation.
        config: the :class:`TrainConfig`.
        key: the root ``jax.random.key``; ``None`` means ``jax.random.key(config.seed)``
            (or, when resuming, the checkpoint's key).
        resume: a checkpoint directory (its latest checkpoint) or manifest to continue from:
            the state, history and epoch are restored and training continues up to
            ``config.epochs`` with the same key sequence. The model, the objective
            (:meth:`~latent_jax.objectives.Objective.describe`), the data's shapes and the
            training settings must match the checkpoint's (a difference is refused before
            anything compiles, naming the field and both values). New checkpoints go to
            ``config.checkpoint_dir``, or to the resumed directory when that is ``None``.
        allow_changes: with ``resume``, optimizer settings that may differ from the
            checkpoint's on purpose, names from
            :data:`latent_jax.train.checkpoints.CHANGEABLE_FIELDS` (``("learning_rate",)``
            to continue a diverged run more gently); the change and its epoch are recorded
            in the checkpoints' ``resumed`` metadata.
        callbacks: functions ``callback(state, history)`` called once per epoch, in order,
            after each compiled call (after checkpointing): ``history`` holds the epochs up
            to that one (its row is ``history.last()``), ``state`` is the state after the
            call. One that returns ``True`` stops training after the call. Writers of the
            history are in :mod:`latent_jax.train.callbacks` (CSV, TensorBoard).
        init_variables: a warm start: the model's variables (``{"params": ..., ...}``, as
            ``model.init`` returns or a previous run's ``state.variables``) to start from
            instead of a fresh draw; the optimizer state starts fresh and the key sequence
            (shuffling, noise) is the one ``key`` gives. Checked against the model's shapes.
        cache: the :class:`~latent_jax.train.compile.CompileCache` to keep compiled programs
            in; ``None`` uses the objective's own (see :mod:`latent_jax.train.compile`).
        mesh: a :class:`jax.sharding.Mesh` with a ``"data"`` axis (see
            :func:`latent_jax.distributed.make_mesh`) for data-parallel training: the rows are
            split over its devices (each process reads only its own rows, so a memory-mapped
            ``train_x`` is never read whole), every batch is padded with masked rows to a
            multiple of the devices and split over them, and the gradients and BatchNorm's
            batch moments are global (the same numbers as one device, up to float32
            reassociation). ``None`` (the default) is the single-device path.
        shard_params: with a mesh, split parameters and optimizer state over the data axis
            (FSDP-style) instead of replicating them.

    Returns:
        ``(state, history)``: the final :class:`TrainState` and the :class:`History`.

    Raises:
        TypeError: for an objective, config, key or data of the wrong type.
        ValueError: for empty data, NaN or infinite values, data whose example shape the
            model does not take (naming ``train_x`` or ``test_x``), or a resume whose config,
            data shapes or key differ from the checkpoint's. All before anything is compiled.
        NonFiniteLossError: when the loss becomes NaN or infinite.
        latent_jax.runs.checkpoint.CheckpointError: for a truncated or corrupt checkpoint.

    Example:
        >>> from latent_jax.models.mlp import Autoencoder
        >>> from latent_jax.objectives import autoencoder_objective
        >>> x = np.random.default_rng(0).normal(size=(64, 50)).astype(np.float32)
        >>> state, history = fit(autoencoder_objective(Autoencoder()), x, None,
        ...                      TrainConfig(epochs=2, batch_size=16, quiet=True),
        ...                      jax.random.key(0))
        >>> history["train_loss"].shape
        (2,)
    """

    validation.check_bool("shard_params", shard_params)
    return _train(
        objective,
        lambda: ArrayBatches(train_x, test_x, mesh),
        config,
        key,
        batched=False,
        resume=resume,
        callbacks=callbacks,
        cache=cache,
        mesh=mesh,
        shard_params=shard_params,
        init_variables=init_variables,
        allow_changes=check_allow_changes(allow_changes, resume),
    )


def fit_many(
    objective: Objective,
    train_x: Any,
    test_x: Any,
    config: TrainConfig,
    keys: Array,
    *,
    resume: str | os.PathLike | None = None,
    callbacks: Sequence[Callback] = (),
    mesh: Any = None,
    shard_params: bool = False,
    spread_runs: bool = True,
    init_variables: Any = None,
    cache: CompileCache | None = None,
    allow_changes: Sequence[str] = (),
) -> tuple[TrainState, History]:
    """Trains K independent runs at once: :func:`fit` vmapped over K root keys.

    Each run has its own initialization, shuffling and noise (from its key) and its own early
    stopping; they share the data and the config, and run as one compiled program, which
    costs far less than K separate runs for small models. Run ``k`` computes what
    ``fit(..., key=keys[k])`` computes, up to floating-point reassociation in batched
    matrix products.

    With several local devices (GPUs, or CPU cores exposed as devices by
    :func:`latent_jax.distributed.use_cpu_cores`) the runs are spread over them, K / D runs
    per device for the largest D that divides K, with no communication between devices.

    Args:
        objective: as for :func:`fit`.
        train_x: as for :func:`fit`.
        test_x: as for :func:`fit`.
        config: as for :func:`fit`.
        keys: typed keys of shape (K,), e.g. ``jax.random.split(jax.random.key(0), 8)``;
            ``None`` when resuming uses the checkpoint's.
        resume: as for :func:`fit`.
        callbacks: as for :func:`fit`; they see the stacked state.
        mesh: as for :func:`fit`.
        shard_params: as for :func:`fit` (with a mesh the run axis is never split).
        init_variables: as for :func:`fit`: one set of variables for every run, or variables
            whose every leaf has a leading axis of K (one set per run).
        cache: as for :func:`fit`.
        spread_runs: spread the runs over this process's devices (see above; each device
            holds a copy of the data). Ignored with a ``mesh``, which splits rows instead.
        allow_changes: as for :func:`fit`.

    Returns:
        ``(state, history)``: every state leaf has a leading axis K; history metrics have
        shape (K, epochs) (``epoch`` and ``epoch_time`` stay (epochs,)).
    """

    validation.check_bool("shard_params", shard_params)
    validation.check_bool("spread_runs", spread_runs)
    return _train(
        objective,
        lambda: ArrayBatches(train_x, test_x, mesh),
        config,
        keys,
        batched=True,
        resume=resume,
        callbacks=callbacks,
        cache=cache,
        mesh=mesh,
        shard_params=shard_params,
        spread_runs=spread_runs,
        init_variables=init_variables,
        allow_changes=check_allow_changes(allow_changes, resume),
    )


def fit_stream(
    objective: Objective,
    source: Any,
    test_x: Any,
    config: TrainConfig,
    key: Array | None = None,
    *,
    mesh: Any = None,
    steps_per_call: int = 16,
    prefetch: int = 4,
    callbacks: Sequence[Callback] = (),
    resume: str | os.PathLike | None = None,
    init_variables: Any = None,
    cache: CompileCache | None = None,
    allow_changes: Sequence[str] = (),
) -> tuple[TrainState, History]:
    """Trains on data read from disk batch by batch (larger than memory), like :func:`fit`.

    The same engine as :func:`fit`, fed from disk: every epoch visits each example once in
    the order :func:`fit` draws (:func:`latent_jax.shuffle.permutation` of the rows with the
    epoch's shuffle key, from the same key sequence), the ragged last batch is padded and
    masked, and the epoch ends with :func:`fit`'s evaluation, non-finite check and compiled
    early stopping. On the same array (memory-mapped or not) with ``config.unroll=1`` it
    computes what :func:`fit` computes (on CPU, bit for bit in the tests). A background thread
    reads the next batches while ``steps_per_call`` of them run as one compiled ``lax.scan``;
    only the parameters and a few batches are ever in memory. With a mesh, batches are split
    over its data axis and each process reads only its share of every batch. Checkpoints
    have :func:`fit`'s format: a streamed run resumes with ``resume=`` (or in memory with
    :func:`fit` on the same data), and ends where an uninterrupted one does.

    Args:
        objective: as for :func:`fit`.
        source: a :mod:`latent_jax.data.streaming` source, a ``.npy`` path (memory-mapped), an image
            folder or an array.
        test_x: array of shape (n_test, ...features) evaluated after every epoch (in memory),
            or ``None``.
        config: as for :func:`fit` (``epochs_per_call`` and ``unroll`` do not apply: one epoch
            per call, batches not unrolled).
        key: as for :func:`fit`.
        mesh: as for :func:`fit`.
        steps_per_call: batches per compiled call, >= 1.
        prefetch: groups of batches read ahead, >= 1.
        callbacks: as for :func:`fit`, called after every epoch.
        resume: as for :func:`fit`.
        init_variables: as for :func:`fit`.
        cache: as for :func:`fit`.
        allow_changes: as for :func:`fit`.

    Returns:
        ``(state, history)`` as for :func:`fit`.

    Raises:
        As :func:`fit`, and ValueError for NaN/Inf met while reading (naming the source).
    """

    return _train(
        objective,
        lambda: StreamedBatches(source, test_x, mesh, steps_per_call, prefetch),
        config,
        key,
        batched=False,
        resume=resume,
        callbacks=callbacks,
        cache=cache,
        mesh=mesh,
        init_variables=init_variables,
        allow_changes=check_allow_changes(allow_changes, resume),
    )


def evaluate(
    objective: Objective,
    state: TrainState,
    x: Any,
    key: Array,
    *,
    batch_size: int = 256,
    epoch: int | None = None,
    cache: CompileCache | None = None,
    n_train: int | None = None,
) -> dict[str, Any]:
    """Mean metrics of a trained state over a dataset, in inference mode.

    The rows are scored in masked batches (padding excluded) with ``train=False``; each
    metric is the mean over the rows of its per-example values, as in :func:`fit`'s
    ``test_*`` history.

    Args:
        objective: the objective the state was trained with.
        state: a :class:`TrainState` (or a stacked one from :func:`fit_many`).
        x: array of shape (n, ...features).
        key: the evaluation key (VAE sampling, corruption); batch ``b`` uses
            ``fold_in(key, b)``.
        batch_size: rows per batch, >= 1.
        epoch: the 0-based epoch the β schedule reads; ``None`` means the last trained epoch
            (``state.epoch - 1``), so a VAE scores as in its last ``test_loss``.
        cache: as for :func:`fit`.
        n_train: the training set's size N, for objectives whose estimators weigh a batch
            against it (:attr:`latent_jax.objectives.Context.n_train`); ``None`` leaves it
            unset.

    Returns:
        A dict of floats (arrays of shape (K,) for a stacked state).
    """

    objective = _check_objective(objective)
    if not isinstance(state, TrainState):
        raise TypeError(f"state must be a TrainState, got {type(state).__name__}")
    batch_size = validation.check_int("batch_size", batch_size, 1)
    if epoch is not None:
        validation.check_int("epoch", epoch, 0)
    cache = cache_for(objective) if cache is None else cache
    if n_train is not None:
        objective = bind_dataset_size(objective, n_train)
    data = validation.check_rows("x", x)
    key = validation.check_key("key", key)
    n = int(data.shape[0])
    batched = np.ndim(state.step) == 1
    template = jax.eval_shape(lambda s: s, state)
    if batched:
        template = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), template)
    features = tuple(int(d) for d in data.shape[1:])
    probe_loss(objective, template.params, template.model_state, features, key, "x", (False,))
    size = min(batch_size, n)
    n_batches = -(-n // size)
    if epoch is None:
        epochs = jnp.maximum(jnp.asarray(state.epoch, jnp.int32) - 1, 0)
    else:
        epochs = jnp.full(jnp.shape(state.epoch), epoch, jnp.int32)

    def build() -> Callable[..., dict[str, Array]]:
        def run(state: TrainState, x: Array, key: Array, epoch: Array) -> dict[str, Array]:
            return evaluate_batches(objective, state, x, key, epoch, n, size, n_batches)

        run = jax.vmap(run, in_axes=(0, None, None, 0)) if batched else run
        return jax.jit(run, compiler_options=default_options() or None)

    run, _ = cache.get(("evaluate", n, size, batched, features, n_train), build)
    metrics = jax.device_get(run(state, data, key, epochs))
    return {k: (np.asarray(v) if batched else float(v)) for k, v in metrics.items()}
