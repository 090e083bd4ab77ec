"""Where an epoch's batches come from: arrays on the device, or a source streamed from disk.

The driver (:mod:`latent_jax.train.driver`) trains from either through one interface: a
source knows its row counts and example shape, lays its data out for the run (one device, a
data-parallel mesh, or a copy per device of a runs mesh) and, once compiled, runs up to
``max_epochs_per_call`` epochs from a state:
``runner(state, train_key, eval_key, first_epoch, n_active) -> (state, (outputs, ran))``,
with every leaf of ``outputs`` and ``ran`` stacked over the call's epochs.

Both draw an epoch's order from the same key with the same permutation
(:func:`latent_jax.train.epoch.epoch_order`), pad the ragged last batch with masked rows and
finish the epoch with the same :func:`latent_jax.train.epoch.end_epoch`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from latent_jax import distributed, validation
from latent_jax.fingerprint import row_fingerprint
from latent_jax.objectives import Objective
from latent_jax.train.compile import CompileCache, compiled_chunk, streamed_programs
from latent_jax.train.config import TrainConfig
from latent_jax.train.epoch import Plan, make_plan

Runner = Callable[..., tuple[Any, tuple[Any, Any]]]


class ArrayBatches:
    """Training rows held on the device; a call runs a compiled chunk of epochs.

    Args:
        train_x: array of shape (n_train, ...features).
        test_x: array of shape (n_test, ...features), or ``None``.
        mesh: a data-parallel mesh: the rows are split over its devices (each process reads
            only its own rows of a memory-mapped array), or ``None``.
    """

    def __init__(self, train_x: Any, test_x: Any, mesh: Any = None):
        self.mesh = mesh
        self._fingerprint: dict[str, str | None] | None = None
        # The caller's host arrays, if that is what arrived on one process: their checksum is
        # computed on the host, with nothing to compile (a reference, not a copy). Rows split
        # over a mesh are checksummed where they live, every process taking part.
        self._host = tuple(
            a if isinstance(a, np.ndarray) and mesh is None else None for a in (train_x, test_x)
        )
        if mesh is None:
            self.x_train = validation.check_rows("train_x", train_x)
            self.x_test = None if test_x is None else validation.check_rows("test_x", test_x)
            self.n_train = int(self.x_train.shape[0])
            self.n_test = 0 if self.x_test is None else int(self.x_test.shape[0])
        else:
            # Rows split over the mesh (zero-padded; the padding is never indexed).
            self.x_train, self.n_train = distributed.shard_rows(train_x, mesh, "train_x")
            self.x_test, self.n_test = (
                (None, 0) if test_x is None else distributed.shard_rows(test_x, mesh, "test_x")
            )
        self.features = tuple(int(d) for d in self.x_train.shape[1:])
        self.test_features = None if self.x_test is None else tuple(self.x_test.shape[1:])

    def fingerprint(self) -> dict[str, str | None]:
        """The train and test rows' checksums (:func:`latent_jax.fingerprint.row_fingerprint`),
        computed once (they read every row)."""
        if self._fingerprint is None:
            train = self.x_train if self._host[0] is None else self._host[0]
            test = self.x_test if self._host[1] is None else self._host[1]
            self._fingerprint = {
                "train": row_fingerprint(train, self.n_train),
                "test": None if test is None else row_fingerprint(test, self.n_test),
            }
        return self._fingerprint

    def plan(self, config: TrainConfig, batched: bool) -> Plan:
        """The run's plan (chunks of up to ``config.epochs_per_call`` or ~2048 steps)."""
        del batched  # every in-memory run has the same plan, vmapped or not
        plan = make_plan(config, self.n_train, self.n_test, self.mesh)
        self.max_epochs_per_call = plan.chunk
        return plan

    def replicate_on(self, runs_mesh: Any) -> None:
        """A copy of the data on every device of ``runs_mesh`` (runs spread over devices)."""
        self.x_train, self.x_test = jax.device_put(
            (self.x_train, self.x_test), distributed.replicated(runs_mesh)
        )

    def compile(
        self,
        cache: CompileCache,
        objective: Objective,
        config: TrainConfig,
        plan: Plan,
        batched: bool,
        state: Any,
        train_key: Array,
        eval_key: Array,
        state_sharding: Any = None,
        runs_mesh: Any = None,
    ) -> tuple[Runner, float]:
        """The runner for this run, and the seconds spent compiling it (0 when cached)."""
        args = (state, train_key, eval_key, self.x_train, self.x_test, np.int32(0), np.int32(1))
        chunk, seconds = compiled_chunk(
            cache, objective, config, plan, batched, args, state_sharding, runs_mesh
        )

        def run(state: Any, train_key: Array, eval_key: Array, epoch: int, n_active: int) -> Any:
            return chunk(
                state,
                train_key,
                eval_key,
                self.x_train,
                self.x_test,
                np.int32(epoch),
                np.int32(n_active),
            )

        return run, seconds


class StreamedBatches:
    """Training rows read from disk batch by batch; a call runs one epoch.

    A background thread reads the next ``steps_per_call`` batches while the current ones run
    as one compiled ``lax.scan``; only the parameters and a few batches are in memory. With a
    mesh, batches are split over its data axis and each process reads only its share of
    every batch.

    Args:
        source: a :mod:`latent_jax.data.streaming` source, a ``.npy`` path (memory-mapped), an
            image folder or an array.
        test_x: array of shape (n_test, ...features) evaluated after every epoch (in
            memory), or ``None``.
        mesh: a data-parallel mesh, or ``None``.
        steps_per_call: batches per compiled call, >= 1.
        prefetch: groups of batches read ahead, >= 1.
    """

    max_epochs_per_call = 1

    def __init__(
        self,
        source: Any,
        test_x: Any,
        mesh: Any = None,
        steps_per_call: int = 16,
        prefetch: int = 4,
    ):
        from latent_jax.data import streaming  # it depends on the data modules only

        self._streaming = streaming
        self.steps_per_call = validation.check_int("steps_per_call", steps_per_call, 1)
        self.prefetch = validation.check_int("prefetch", prefetch, 1)
        self.source = streaming.open_source(source)
        self.mesh = mesh
        self._fingerprint: dict[str, str | None] | None = None
        self.n_train = len(self.source)
        self.features = tuple(int(d) for d in self.source.example_shape)
        if test_x is None:
            self.x_test, self.n_test = None, 0
        elif mesh is None:
            self.x_test = validation.check_rows("test_x", test_x)
            self.n_test = int(self.x_test.shape[0])
        else:
            self.x_test, self.n_test = distributed.shard_rows(test_x, mesh, "test_x")
        self.test_features = None if self.x_test is None else tuple(self.x_test.shape[1:])

    def fingerprint(self) -> dict[str, str | None]:
        """The source's fingerprint (files: their identity; an array: a checksum of its rows)
        and the in-memory test rows' checksum (:mod:`latent_jax.fingerprint`), computed once."""
        if self._fingerprint is None:
            self._fingerprint = {
                "train": self.source.fingerprint(),
                "test": None if self.x_test is None else row_fingerprint(self.x_test, self.n_test),
            }
        return self._fingerprint

    def plan(self, config: TrainConfig, batched: bool) -> Plan:
        """The run's plan: one epoch per call, batches scanned without unrolling."""
        if batched:
            raise ValueError("streamed training runs one model; fit_many takes arrays")
        plan = make_plan(config, self.n_train, self.n_test, self.mesh)
        return plan._replace(chunk=1, unroll=1)

    def compile(
        self,
        cache: CompileCache,
        objective: Objective,
        config: TrainConfig,
        plan: Plan,
        batched: bool,
        state: Any,
        train_key: Array,
        eval_key: Array,
        state_sharding: Any = None,
        runs_mesh: Any = None,
    ) -> tuple[Runner, float]:
        """The runner for this run; its programs compile on their first call (seconds: 0)."""
        del batched, state, train_key, eval_key, runs_mesh
        programs = streamed_programs(cache, objective, config, plan, state_sharding)
        mesh, batch_size = self.mesh, plan.batch_size
        width = batch_size if mesh is None else distributed.padded_size(batch_size, mesh)
        part = None if mesh is None else _process_columns(mesh, width)

        def run(state: Any, train_key: Array, eval_key: Array, epoch: int, n_active: int) -> Any:
            del n_active  # always 1
            order, batch_key = programs.order(train_key, np.int32(epoch))
            batches = self._streaming.iter_batches(
                self.source,
                batch_size,
                np.asarray(distributed.to_host(order) if mesh is not None else order),
                width=width,
                part=part,
                group=self.steps_per_call,
                prefetch=self.prefetch,
            )
            # The groups donate their state; the caller's stays valid (it is checkpointed
            # when this epoch turns out non-finite).
            state = jax.tree.map(jnp.copy, state)
            metrics, counts, first = [], [], 0
            for xs, masks in batches:
                if mesh is not None:
                    sharding = distributed.batch_sharding(mesh, leading=1)
                    shape = (xs.shape[0], width, *xs.shape[2:])
                    xs = jax.make_array_from_process_local_data(sharding, xs, shape)
                    masks = jax.make_array_from_process_local_data(sharding, masks, shape[:2])
                state, (group_metrics, group_counts) = programs.group(
                    state, xs, masks, batch_key, np.int32(first), np.int32(epoch)
                )
                metrics.append(group_metrics)
                counts.append(group_counts)
                first += int(xs.shape[0])
            state, out = programs.end(
                state, tuple(metrics), tuple(counts), eval_key, self.x_test, np.int32(epoch)
            )
            return state, (jax.tree.map(lambda a: a[None], out), np.ones(1, bool))

        return run, 0.0


def _process_columns(mesh: Any, width: int) -> tuple[int, int]:
    """The columns ``(start, stop)`` of a batch of ``width`` that this process's devices hold."""
    columns = distributed.batch_sharding(mesh).addressable_devices_indices_map((width,))
    starts = sorted(index[0].start or 0 for index in columns.values())
    stops = sorted(width if index[0].stop is None else index[0].stop for index in columns.values())
    return starts[0], stops[-1]
