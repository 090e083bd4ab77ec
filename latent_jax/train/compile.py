"""Compilation: each objective's compiled programs, kept in an explicit, bounded cache.

A :class:`CompileCache` maps a key (the program's kind, the optimizer's settings, the run's
:class:`~latent_jax.train.epoch.Plan`, the argument shapes) to a compiled function. Every
objective owns one: :func:`cache_for` keeps it on the objective's loss function, so the cache
lives and dies with the objective (no module-level table, no ids that a new object could
reuse), and calling :func:`~latent_jax.train.fit` twice with the same objective compiles
nothing the second time. ``fit(..., cache=CompileCache())`` gives a run a cache of its own.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import Array
from jax.sharding import PartitionSpec

from latent_jax import distributed
from latent_jax.models import implementations
from latent_jax.objectives import Objective
from latent_jax.train.config import OPTIMIZER_FIELDS, TrainConfig
from latent_jax.train.epoch import (
    Plan,
    end_epoch,
    epoch_keys,
    epoch_order,
    make_chunk_fn,
    make_group_fn,
    run_optimizer,
)
from latent_jax.train.state import TrainState, init_state, state_from_variables
from latent_jax.xla_options import default_options


def training_options(config: TrainConfig, plan: Plan) -> dict[str, Any]:
    """The XLA options of the run's training programs: the engine's default, then ``config``'s."""
    return {**default_options(plan.mesh), **(config.compiler_options or {})}


class CompileCache:
    """Compiled functions by key, the least recently used dropped beyond ``max_entries``.

    Args:
        max_entries: how many compiled functions to keep, >= 1.
    """

    def __init__(self, max_entries: int = 32):
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple, Any] = OrderedDict()

    def get(self, key: tuple, build: Callable[[], Any]) -> tuple[Any, bool]:
        """``build()`` cached under ``key``, and whether it was built by this call."""
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key], False
        value = build()
        self._entries[key] = value
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return value, True

    def items(self) -> list[tuple[tuple, Any]]:
        """The ``(key, compiled)`` pairs, least recently used first."""
        return list(self._entries.items())

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Drops every compiled function."""
        self._entries.clear()


_ATTRIBUTE = "_latent_jax_compile_cache"


def cache_for(objective: Objective) -> CompileCache:
    """The cache ``objective`` owns: made on first use, freed with the objective.

    It is kept as an attribute of ``objective.loss`` (a function, ``functools.partial`` or
    callable object). A loss that takes no attributes (a bound method, a builtin) gets a new
    cache each call, so nothing is reused: pass ``cache=`` to the trainers to reuse one.
    """
    cache = getattr(objective.loss, _ATTRIBUTE, None)
    if isinstance(cache, CompileCache):
        return cache
    cache = CompileCache()
    try:
        setattr(objective.loss, _ATTRIBUTE, cache)
    except (AttributeError, TypeError):
        pass  # documented above: this objective cannot keep a cache
    return cache


def optimizer_key(config: TrainConfig, plan: Plan) -> tuple:
    """What defines the run's optimizer, the dtype its models compute in and the convolution
    gradients they trace (:mod:`latent_jax.models.implementations`): part of every compiled
    program's key."""
    groups = tuple(
        (group, tuple(sorted(settings.items(), key=lambda item: item[0])))
        for group, settings in sorted((config.group_optimizers or {}).items())
    )
    values = (getattr(config, name) for name in OPTIMIZER_FIELDS)
    kernels = tuple(sorted(implementations.stock_components()))
    return (*values, groups, config.epochs * plan.n_batches, config.compute_dtype, kernels)


def initializer(
    cache: CompileCache,
    objective: Objective,
    config: TrainConfig,
    plan: Plan,
    features: tuple[int, ...],
    batched: bool,
    warm: bool = False,
) -> Callable[..., TrainState]:
    """A jitted ``init_fn(root_key) -> TrainState`` (vmapped over keys when ``batched``).

    With ``warm``, ``init_fn(root_key, variables)`` starts from the given variables instead of
    drawing new ones (for several runs, variables with a leading axis of K).
    """

    def build() -> Callable[..., TrainState]:
        tx = run_optimizer(config, plan, objective)

        if warm:

            def init_fn(key: Array, variables: Any) -> TrainState:
                del key
                return state_from_variables(variables, tx)
        else:

            def init_fn(key: Array) -> TrainState:
                init_key = jax.random.split(key, 3)[0]
                return init_state(objective, tx, init_key, jnp.zeros((2, *features), jnp.float32))

        return jax.jit(
            jax.vmap(init_fn) if batched else init_fn,
            compiler_options=default_options(plan.mesh, once=True),
        )

    return cache.get(("init", optimizer_key(config, plan), features, batched, warm), build)[0]


def _avals(args: tuple) -> tuple:
    shapes = jax.tree.map(lambda a: (jnp.shape(a), str(jnp.result_type(a))), args)
    return (jax.tree.structure(args), tuple(jax.tree.leaves(shapes)))


def _compile(fn: Callable, args: tuple, options: dict, **jit_options: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    compiled = jax.jit(fn, **jit_options).lower(*args).compile(options or None)
    return compiled, time.perf_counter() - start


def compiled_chunk(
    cache: CompileCache,
    objective: Objective,
    config: TrainConfig,
    plan: Plan,
    batched: bool,
    args: tuple,
    state_sharding: Any = None,
    runs_mesh: Any = None,
) -> tuple[Any, float]:
    """The compiled in-memory chunk for these arguments, and the seconds spent compiling.

    With a mesh, ``state_sharding`` (a pytree of shardings matching the state) fixes the
    output state's layout, so that each call's output is the next call's input as compiled.
    With ``runs_mesh`` (batched only) each of its devices trains its share of the runs: a
    ``shard_map`` over the run axis, so no data moves between devices.
    """
    options = training_options(config, plan)
    key = ("chunk", optimizer_key(config, plan), tuple(sorted(options.items())), plan, batched)
    key = (*key, _avals(args), tuple(jax.tree.leaves(state_sharding)), runs_mesh)
    jit_options = {}
    if state_sharding is not None:
        jit_options["out_shardings"] = (state_sharding, distributed.replicated(plan.mesh))
    seconds = 0.0

    def build() -> Any:
        nonlocal seconds
        chunk_fn = make_chunk_fn(objective, run_optimizer(config, plan, objective), plan, batched)
        if batched:
            chunk_fn = jax.vmap(chunk_fn, in_axes=(0, 0, 0, None, None, None, None))
        if runs_mesh is not None:
            runs, shared = PartitionSpec(distributed.RUNS_AXIS), PartitionSpec()
            chunk_fn = jax.shard_map(
                chunk_fn,
                mesh=runs_mesh,
                in_specs=(runs, runs, runs, shared, shared, shared, shared),
                out_specs=runs,
                # The body has no collectives; skipping the varying-axis check lets the
                # chunk's per-run and shared branches (skipped epochs) keep their types.
                check_vma=False,
            )
        compiled, seconds = _compile(chunk_fn, args, options, **jit_options)
        return compiled

    return cache.get(key, build)[0], seconds


class StreamPrograms(NamedTuple):
    """The jitted pieces of a streamed epoch (see :func:`streamed_programs`)."""

    order: Callable[[Array, Array], Array]
    group: Callable[..., Any]
    end: Callable[..., Any]


def streamed_programs(
    cache: CompileCache,
    objective: Objective,
    config: TrainConfig,
    plan: Plan,
    state_sharding: Any = None,
) -> StreamPrograms:
    """The jitted functions a streamed epoch calls (compiled on their first call).

    ``order(train_key, epoch)``: the epoch's row order (the in-memory epoch's permutation) and
    its batch key; ``group(state, xs, masks, batch_key, first_batch, epoch)``: a group of
    batches (:func:`~latent_jax.train.epoch.make_group_fn`), donating the state;
    ``end(state, metrics, counts, eval_key, x_test, epoch)``: the groups' per-batch metrics
    and counts (tuples, one entry per group) joined and handed to
    :func:`~latent_jax.train.epoch.end_epoch`.
    """
    options = training_options(config, plan)
    key = ("stream", optimizer_key(config, plan), tuple(sorted(options.items())), plan)
    key = (*key, tuple(jax.tree.leaves(state_sharding)))

    def build() -> StreamPrograms:
        tx = run_optimizer(config, plan, objective)

        def order(train_key: Array, epoch: Array) -> tuple[Array, Array]:
            shuffle_key, batch_key = epoch_keys(train_key, epoch)
            return epoch_order(plan, shuffle_key), batch_key

        def end(
            state: TrainState,
            metrics: tuple[dict[str, Array], ...],
            counts: tuple[Array, ...],
            eval_key: Array,
            x_test: Array | None,
            epoch: Array,
        ) -> Any:
            # The groups' per-batch metrics, joined: the epoch's (n_batches,) arrays.
            joined = {name: jnp.concatenate([g[name] for g in metrics]) for name in metrics[0]}
            first_step = state.step - plan.n_batches  # one update per batch
            return end_epoch(
                objective,
                plan,
                state,
                joined,
                jnp.concatenate(counts),
                first_step,
                eval_key,
                x_test,
                epoch,
            )

        jit_options: dict[str, Any] = {"compiler_options": options or None}
        if state_sharding is not None:
            jit_options["out_shardings"] = (state_sharding, distributed.replicated(plan.mesh))
        return StreamPrograms(
            order=jax.jit(order),
            group=jax.jit(make_group_fn(objective, tx, plan), donate_argnums=0, **jit_options),
            end=jax.jit(end, donate_argnums=0, **jit_options),
        )

    return cache.get(key, build)[0]
