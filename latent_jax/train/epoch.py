"""The compiled epoch: the optimizer step, masked batches, evaluation and early stopping.

Everything here is a pure function of arrays, traced once per run and compiled by
:mod:`latent_jax.train.compile`. An epoch is two halves that both trainers share:

* the batches: ``lax.scan`` of :func:`make_train_step` over the epoch's batches, each batch's
  metrics and real-row count stacked, of shape (n_batches,);
* :func:`end_epoch`: those stacked metrics reduced to the epoch's sample-weighted means, the
  first non-finite step found, the test split evaluated in inference mode, and the
  early-stopping fields of the state updated.

In memory (:func:`make_epoch_fn`) both halves run in one scan body, and several epochs run in
one compiled chunk (:func:`make_chunk_fn`). A streamed epoch runs its batches in groups as
they are read from disk (:func:`make_group_fn`) and then the same :func:`end_epoch`, so the
two trainers compute the same numbers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import Array, lax

from latent_jax import distributed, shuffle
from latent_jax.objectives import Batch, Objective
from latent_jax.train.config import TrainConfig, make_optimizer, make_optimizers
from latent_jax.train.state import Optimizer, TrainState, parameter_groups

# Automatic chunking: a chunk is compiled for about this many optimizer steps.
AUTO_CHUNK_STEPS = 2048


class Plan(NamedTuple):
    """The static shape of a run: everything the compiled code specializes on."""

    n_train: int
    batch_size: int
    n_batches: int
    n_test: int
    eval_batch_size: int
    n_eval_batches: int
    shuffle: bool
    patience: int | None
    min_delta: float
    chunk: int
    unroll: int
    # Data parallelism: batches are padded (masked) to a multiple of the mesh's data axis and
    # sharded over it; None is the single-device path.
    mesh: Any = None
    # How the parameter groups of a grouped objective update (TrainConfig.group_updates).
    group_updates: str = "alternating"


def batches_per_epoch(n_train: int, batch_size: int) -> int:
    """Optimizer updates per epoch on ``n_train`` rows: the last batch may be partial (its
    padding is masked), and a batch larger than the data is the whole data.

    Args:
        n_train: training rows, >= 1.
        batch_size: rows per batch, >= 1.

    Returns:
        ``ceil(n_train / min(batch_size, n_train))``.
    """
    return -(-n_train // min(batch_size, n_train))


def make_plan(
    config: TrainConfig,
    n_train: int,
    n_test: int,
    mesh: Any = None,
) -> Plan:
    """The :class:`Plan` of a run of ``config`` on ``n_train`` and ``n_test`` rows.

    Args:
        config: the training config.
        n_train: training rows, >= 1.
        n_test: test rows (0: no evaluation).
        mesh: the data-parallel mesh, or ``None``.

    Returns:
        The plan: batch counts, chunk length and unroll.
    """
    batch_size = min(config.batch_size, n_train)
    n_batches = batches_per_epoch(n_train, config.batch_size)
    eval_batch_size = config.eval_batch_size or max(config.batch_size, 256)
    eval_batch_size = min(eval_batch_size, n_test) if n_test else 1
    n_eval_batches = -(-n_test // eval_batch_size) if n_test else 0
    if config.epochs_per_call is not None:
        chunk = config.epochs_per_call
    else:
        chunk = max(1, -(-AUTO_CHUNK_STEPS // n_batches))
    chunk = min(chunk, config.epochs)
    unroll = 1 if config.unroll is None else config.unroll
    return Plan(
        n_train=n_train,
        batch_size=batch_size,
        n_batches=n_batches,
        n_test=n_test,
        eval_batch_size=eval_batch_size,
        n_eval_batches=n_eval_batches,
        shuffle=config.shuffle,
        patience=config.patience,
        min_delta=float(config.min_delta),
        chunk=chunk,
        unroll=min(unroll, n_batches),
        mesh=mesh,
        group_updates=config.group_updates,
    )


def run_optimizer(config: TrainConfig, plan: Plan, objective: Any = None) -> Optimizer:
    """The run's optimizer: its schedules span the run's ``epochs * n_batches`` updates.

    For an objective with parameter groups, ``{group: optimizer}`` (one per group, see
    :func:`~latent_jax.train.config.make_optimizers`).
    """
    total = config.epochs * plan.n_batches
    groups = parameter_groups(objective)
    return make_optimizers(config, groups, total) if groups else make_optimizer(config, total)


def epoch_keys(train_key: Array, epoch: Array) -> tuple[Array, Array]:
    """``(shuffle_key, batch_key)`` of a 0-based absolute epoch: the run's key sequence."""
    return tuple(jax.random.split(jax.random.fold_in(train_key, epoch)))


def epoch_order(plan: Plan, shuffle_key: Array) -> Array:
    """The epoch's row order: int array of shape (n_train,), a keyed permutation or arange."""
    if plan.shuffle:
        return shuffle.permutation(shuffle_key, plan.n_train)
    return jnp.arange(plan.n_train)


def padded_batches(
    order: Array, n: int, batch_size: int, n_batches: int, mesh: Any = None
) -> tuple[Array, Array]:
    """Row indices of shape (n_batches, width) and the matching 0/1 mask.

    ``width`` is ``batch_size``, or with a mesh ``batch_size`` rounded up to a multiple of its
    data axis (the extra columns are padding, masked out).
    """
    total = n_batches * batch_size
    position = jnp.arange(total)
    # Padding slots point at a real row (any will do) so every gathered value is finite.
    indices = jnp.where(position < n, jnp.pad(order, (0, total - n)), order[0])
    mask = (position < n).astype(jnp.float32)
    indices, mask = indices.reshape(n_batches, batch_size), mask.reshape(n_batches, batch_size)
    if mesh is not None:
        extra = distributed.padded_size(batch_size, mesh) - batch_size
        indices = jnp.pad(indices, ((0, 0), (0, extra)), constant_values=order[0])
        mask = jnp.pad(mask, ((0, 0), (0, extra)))
    return indices, mask


def _constrain(batch: Batch, mesh: Any) -> Batch:
    """With a mesh, the batch split over its data axis (an SPMD hint)."""
    return batch if mesh is None else distributed.constrain_batch(batch, mesh)


def _weighted(metrics: dict[str, Array], counts: Array, n: int) -> dict[str, Array]:
    return {k: jnp.sum(v * counts) / n for k, v in metrics.items()}


def evaluate_batches(
    objective: Objective,
    state: TrainState,
    x: Array,
    key: Array,
    epoch: Array,
    n: int,
    batch_size: int,
    n_batches: int,
    mesh: Any = None,
) -> dict[str, Array]:
    """Mean metrics over the N rows of ``x`` in inference mode, in masked batches."""
    indices, mask = padded_batches(jnp.arange(n), n, batch_size, n_batches, mesh)

    def body(carry: None, inputs: tuple[Array, Array, Array]) -> tuple[None, Any]:
        b, idx, m = inputs
        batch = _constrain(Batch(jnp.take(x, idx, axis=0), m), mesh)
        _, (metrics, _) = objective.loss(
            state.params,
            state.model_state,
            batch,
            jax.random.fold_in(key, b),
            state.step,
            epoch,
            False,
        )
        return carry, (metrics, jnp.sum(m))

    _, (metrics, counts) = lax.scan(body, None, (jnp.arange(n_batches), indices, mask))
    return _weighted(metrics, counts, n)


class EpochOutput(NamedTuple):
    """What one compiled epoch reports.

    Attributes:
        train: mean train metrics over the epoch's samples.
        test: mean test metrics (empty without test data).
        bad_step: the global step of the epoch's first non-finite batch loss, or -1.
        finite_state: whether every parameter, optimizer state and model state value is
            finite after the epoch (Adam's second moments can overflow while the loss and
            the parameters stay finite; such a state is a divergence too).
    """

    train: dict[str, Array]
    test: dict[str, Array]
    bad_step: Array
    finite_state: Array


def make_train_step(
    objective: Objective, tx: Optimizer, group_updates: str = "alternating"
) -> Callable[[TrainState, Batch, Array, Array], tuple[TrainState, dict[str, Array]]]:
    """One optimizer update, ``train_step(state, batch, key, epoch) -> (state, metrics)``.

    Args:
        objective: the objective to minimize; with parameter groups (a
            :class:`~latent_jax.objectives.GroupedObjective`), one update per group.
        tx: the optimizer, or for parameter groups ``{group: optimizer}``.
        group_updates: ``"alternating"`` or ``"simultaneous"`` (parameter groups only; see
            :class:`~latent_jax.train.TrainConfig`).

    Returns:
        A pure function, jit-safe: the loss's gradient with respect to ``state.params`` at
        ``state.step``, applied by ``tx``; the model state (BatchNorm statistics) updated.
        With parameter groups, each group's loss is differentiated with respect to its own
        parameters, in the objective's order, and applied by that group's optimizer.
    """
    if parameter_groups(objective):
        return _grouped_train_step(objective, tx, group_updates)

    def train_step(
        state: TrainState, batch: Batch, key: Array, epoch: Array
    ) -> tuple[TrainState, dict[str, Array]]:
        def loss_fn(params: Any) -> tuple[Array, tuple[dict, dict]]:
            return objective.loss(params, state.model_state, batch, key, state.step, epoch, True)

        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (_, (metrics, model_state)), grads = grad_fn(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new_state = state.replace(
            params=params, model_state=model_state, opt_state=opt_state, step=state.step + 1
        )
        return new_state, metrics

    return train_step


def _grouped_train_step(
    objective: Any, tx: Mapping[str, optax.GradientTransformation], group_updates: str
) -> Callable[[TrainState, Batch, Array, Array], tuple[TrainState, dict[str, Array]]]:
    """:func:`make_train_step` for an objective with parameter groups.

    ``state.params`` and ``state.opt_state`` are dicts keyed by group. For each group in the
    objective's order, ``objective.group_losses[group]`` (the loss's signature) is
    differentiated with respect to ``params[group]`` alone and that group's optimizer applies
    the gradient. Alternating: each group sees the parameters the groups before it just
    updated; simultaneous: every group sees the batch's starting parameters. The model state
    (BatchNorm statistics) is threaded through the groups' losses in order either way. Every
    group's loss gets the batch's key (an objective that wants independent draws splits it
    by group). The metrics are the groups' merged, and ``loss`` is the sum of the groups'
    losses, which :func:`~latent_jax.objectives.combined_loss` reports at evaluation.
    """
    groups = parameter_groups(objective)
    missing = [group for group in groups if group not in tx]
    if missing:
        raise ValueError(f"tx must hold an optimizer for every group, missing {missing}")

    def update(
        group: str, seen: Any, model_state: Any, opt_state: Any, batch: Batch, key: Array, *counts
    ) -> tuple[Any, Any, Array, dict[str, Array], Any]:
        """One group's update at the parameters ``seen``: new params, opt state, loss, aux."""

        def loss_fn(own: Any) -> tuple[Array, tuple[dict, dict]]:
            loss = objective.group_losses[group]
            return loss({**seen, group: own}, model_state, batch, key, *counts, True)

        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (value, (metrics, model_state)), grads = grad_fn(seen[group])
        updates, opt_state = tx[group].update(grads, opt_state, seen[group])
        return optax.apply_updates(seen[group], updates), opt_state, value, metrics, model_state

    def train_step(
        state: TrainState, batch: Batch, key: Array, epoch: Array
    ) -> tuple[TrainState, dict[str, Array]]:
        params, opt_state = dict(state.params), dict(state.opt_state)
        model_state = state.model_state
        metrics: dict[str, Array] = {}
        total = jnp.zeros((), jnp.float32)
        for group in groups:
            seen = params if group_updates == "alternating" else state.params
            params[group], opt_state[group], value, group_metrics, model_state = update(
                group, seen, model_state, opt_state[group], batch, key, state.step, epoch
            )
            metrics.update(group_metrics)
            total = total + value
        metrics["loss"] = total
        new_state = state.replace(
            params=params, model_state=model_state, opt_state=opt_state, step=state.step + 1
        )
        return new_state, metrics

    return train_step


def _scan_steps(
    train_step: Callable,
    state: TrainState,
    xs: Any,
    read: Callable[[Any], Batch],
    batch_key: Array,
    epoch: Array,
    unroll: int = 1,
) -> tuple[TrainState, tuple[dict[str, Array], Array]]:
    """``lax.scan`` of ``train_step`` over ``xs = (batch_numbers, ...)``; ``read`` makes a batch.

    Returns the state and each batch's metrics and real-row count, stacked.
    """

    def body(state: TrainState, inputs: tuple) -> tuple[TrainState, Any]:
        b, *rest = inputs
        batch = read(rest)
        state, metrics = train_step(state, batch, jax.random.fold_in(batch_key, b), epoch)
        return state, (metrics, jnp.sum(batch.mask))

    return lax.scan(body, state, xs, unroll=unroll)


def end_epoch(
    objective: Objective,
    plan: Plan,
    state: TrainState,
    metrics: dict[str, Array],
    counts: Array,
    first_step: Array,
    eval_key: Array,
    x_test: Array | None,
    epoch: Array,
) -> tuple[TrainState, EpochOutput]:
    """The second half of every epoch, after its batches ran.

    Args:
        objective: the objective.
        plan: the run's plan.
        state: the state after the epoch's last batch.
        metrics: each batch's metrics, arrays of shape (n_batches,).
        counts: array of shape (n_batches,), real rows per batch.
        first_step: the global step of the epoch's first batch.
        eval_key: the run's evaluation key.
        x_test: the test rows, or ``None`` when ``plan.n_test == 0``.
        epoch: the 0-based absolute epoch.

    Returns:
        The state with ``epoch`` advanced and the early-stopping fields updated, and the
        epoch's :class:`EpochOutput`.
    """
    finite = jnp.isfinite(metrics["loss"])
    finite_state = all_finite((state.params, state.opt_state, state.model_state))
    bad_step = jnp.where(
        jnp.all(finite), -1, first_step + jnp.argmin(finite).astype(jnp.int32)
    ).astype(jnp.int32)
    train = _weighted(metrics, counts, plan.n_train)
    test: dict[str, Array] = {}
    if plan.n_test:
        test = evaluate_batches(
            objective,
            state,
            x_test,
            eval_key,
            epoch,
            plan.n_test,
            plan.eval_batch_size,
            plan.n_eval_batches,
            plan.mesh,
        )
    monitored = test["loss"] if plan.n_test else train["loss"]
    improved = monitored < state.best_loss - plan.min_delta
    bad_epochs = jnp.where(improved, 0, state.bad_epochs + 1).astype(jnp.int32)
    stopped = state.stopped
    if plan.patience is not None:
        stopped = stopped | (bad_epochs >= plan.patience)
    state = state.replace(
        epoch=state.epoch + 1,
        best_loss=jnp.where(improved, monitored, state.best_loss).astype(jnp.float32),
        bad_epochs=bad_epochs,
        stopped=stopped,
    )
    return state, EpochOutput(train=train, test=test, bad_step=bad_step, finite_state=finite_state)


def all_finite(tree: Any) -> Array:
    """Whether every floating-point value of ``tree`` is finite: a bool scalar array."""
    # One reduction over all values (concatenated) compiles to one loop; one per leaf costs
    # the training chunk about 0.35 s more compile time for the tutorial's conv VAE.
    values = [
        jnp.ravel(leaf).astype(jnp.float32)
        for leaf in jax.tree.leaves(tree)
        if jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.inexact)
    ]
    return jnp.all(jnp.isfinite(jnp.concatenate(values))) if values else jnp.ones((), jnp.bool_)


def make_epoch_fn(
    objective: Objective,
    config: TrainConfig | Optimizer,
    n_train: int | Plan,
    n_test: int = 0,
) -> Callable[..., tuple[TrainState, EpochOutput]]:
    """One in-memory epoch as a pure function (not jitted), for tests and custom loops.

    ``epoch_fn(state, train_key, eval_key, x_train, x_test, epoch) -> (state, EpochOutput)``
    shuffles with ``fold_in(train_key, epoch)``, runs all batches as a ``lax.scan``, evaluates
    ``x_test`` (pass ``None`` when ``n_test == 0``) and updates the early-stopping fields.
    ``epoch`` is traced, so one compilation serves every epoch.

    Args:
        objective: the objective.
        config: the training config (optimizer, batch sizes, patience); the engine passes
            the optimizer itself, with a :class:`Plan` as ``n_train``.
        n_train: the number of training rows (or the engine's :class:`Plan`).
        n_test: the number of test rows (0: no evaluation).

    Returns:
        ``epoch_fn``.
    """
    if isinstance(n_train, Plan):
        plan, tx = n_train, config
    else:
        plan = make_plan(config, n_train, n_test)
        tx = run_optimizer(config, plan, objective)
    train_step = make_train_step(objective, tx, plan.group_updates)

    def epoch_fn(
        state: TrainState,
        train_key: Array,
        eval_key: Array,
        x_train: Array,
        x_test: Array | None,
        epoch: Array,
    ) -> tuple[TrainState, EpochOutput]:
        epoch = jnp.asarray(epoch, jnp.int32)
        shuffle_key, batch_key = epoch_keys(train_key, epoch)
        order = epoch_order(plan, shuffle_key)
        indices, mask = padded_batches(
            order, plan.n_train, plan.batch_size, plan.n_batches, plan.mesh
        )

        def read(inputs: list[Array]) -> Batch:
            idx, m = inputs
            return _constrain(Batch(jnp.take(x_train, idx, axis=0), m), plan.mesh)

        first_step = state.step
        xs = (jnp.arange(plan.n_batches), indices, mask)
        state, (metrics, counts) = _scan_steps(
            train_step, state, xs, read, batch_key, epoch, plan.unroll
        )
        return end_epoch(
            objective, plan, state, metrics, counts, first_step, eval_key, x_test, epoch
        )

    return epoch_fn


def _blank_output(objective: Objective, plan: Plan, state: TrainState, example: Any) -> EpochOutput:
    """An :class:`EpochOutput` of NaNs for an epoch that did not run (names from the loss)."""
    batch = Batch(example, jax.ShapeDtypeStruct((1,), jnp.float32))
    loss = functools.partial(objective.loss, train=True)
    count = jax.ShapeDtypeStruct((), jnp.int32)
    _, (names, _) = jax.eval_shape(
        loss, state.params, state.model_state, batch, jax.random.key(0), count, count
    )
    blank = {name: jnp.full((), jnp.nan, jnp.float32) for name in names}
    return EpochOutput(
        train=blank,
        test=dict(blank) if plan.n_test else {},
        bad_step=jnp.full((), -1, jnp.int32),
        finite_state=jnp.ones((), jnp.bool_),
    )


def make_chunk_fn(
    objective: Objective, tx: Optimizer, plan: Plan, batched: bool = False
) -> Callable[..., tuple[TrainState, tuple[EpochOutput, Array]]]:
    """``plan.chunk`` in-memory epochs as a scan; epochs past ``n_active`` or a stop are skipped.

    ``chunk_fn(state, train_key, eval_key, x_train, x_test, first_epoch, n_active) ->
    (state, (outputs, ran))``, where every leaf of ``outputs`` and ``ran`` (bool) has a
    leading axis of ``plan.chunk`` epochs.

    With ``batched`` (the function is to be vmapped over runs) a stopped run's epoch is
    computed and discarded by a select instead of skipped by a ``lax.cond``: under vmap a
    cond on a per-run predicate becomes a select anyway, and one that batches every operand,
    copying the data once per run each epoch.
    """
    epoch_fn = make_epoch_fn(objective, tx, plan)

    def chunk_fn(
        state: TrainState,
        train_key: Array,
        eval_key: Array,
        x_train: Array,
        x_test: Array | None,
        first_epoch: Array,
        n_active: Array,
    ) -> tuple[TrainState, tuple[EpochOutput, Array]]:
        def run(state: TrainState, epoch: Array) -> tuple[TrainState, tuple[EpochOutput, Array]]:
            state, out = epoch_fn(state, train_key, eval_key, x_train, x_test, epoch)
            return state, (out, jnp.ones((), jnp.bool_))

        example = jax.ShapeDtypeStruct((1, *x_train.shape[1:]), x_train.dtype)
        blank = _blank_output(objective, plan, state, example)

        def skip(state: TrainState, epoch: Array) -> tuple[TrainState, tuple[EpochOutput, Array]]:
            del epoch
            return state, (blank, jnp.zeros((), jnp.bool_))

        def maybe_run(state: TrainState, epoch: Array) -> tuple[TrainState, Any]:
            if not batched:
                return lax.cond(state.stopped, skip, run, state, epoch)
            ran, skipped = run(state, epoch), skip(state, epoch)
            return jax.tree.map(lambda a, b: jnp.where(state.stopped, a, b), skipped, ran)

        def body(state: TrainState, i: Array) -> tuple[TrainState, Any]:
            # This predicate is shared by all runs, so it stays a real branch under vmap.
            return lax.cond(i < n_active, maybe_run, skip, state, first_epoch + i)

        return lax.scan(body, state, jnp.arange(plan.chunk, dtype=jnp.int32))

    return chunk_fn


def make_group_fn(
    objective: Objective, tx: Optimizer, plan: Plan
) -> Callable[..., tuple[TrainState, tuple[dict[str, Array], Array]]]:
    """A group of streamed batches as a scan: the first half of a streamed epoch.

    ``group_fn(state, xs, masks, batch_key, first_batch, epoch) -> (state, (metrics,
    counts))`` with ``xs`` of shape (k, width, ...features) and ``masks`` (k, width), batches
    ``first_batch .. first_batch + k - 1`` of the epoch; metrics and counts have shape (k,).
    """
    train_step = make_train_step(objective, tx, plan.group_updates)

    def group_fn(
        state: TrainState,
        xs: Array,
        masks: Array,
        batch_key: Array,
        first_batch: Array,
        epoch: Array,
    ) -> tuple[TrainState, tuple[dict[str, Array], Array]]:
        def read(inputs: list[Array]) -> Batch:
            x, m = inputs
            return _constrain(Batch(x, m), plan.mesh)

        numbers = first_batch + jnp.arange(xs.shape[0], dtype=jnp.int32)
        return _scan_steps(train_step, state, (numbers, xs, masks), read, batch_key, epoch)

    return group_fn
