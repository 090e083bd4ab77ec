r"""The training engine: whole epochs compiled on the device, for any model and objective.

:func:`fit` trains the model inside an :class:`~latent_jax.objectives.Objective` on arrays that
live on the device, and returns the final :class:`TrainState` and a :class:`History` of
per-epoch metrics. :func:`fit_many` trains K independent runs (seeds) at once, as a
``jax.vmap`` of the same compiled code over the keys.

How an epoch runs:

* The data stay on the device. Epoch ``e`` (0-based, absolute) uses the key
  ``fold_in(train_key, e)``, split into a shuffle key (a permutation of the N rows from
  :func:`latent_jax.shuffle.permutation`, O(N) where a sort-based shuffle is not) and a batch
  key; batch ``b`` of the epoch gets ``fold_in(batch_key, b)``, which the
  objective splits for its own draws (reparameterization, corruption, dropout).
* The permutation is padded to ``ceil(N / batch_size)`` full batches and a mask marks the
  padding: every sample enters the epoch's loss exactly once, none is dropped, and each batch's
  loss is the mean over its real rows (the last, ragged batch makes an update of its own, like
  PyTorch's ``DataLoader(drop_last=False)``). A batch size above N is reduced to N.
* The batches run as one ``jax.lax.scan``; several epochs (a chunk) run as a ``lax.scan`` over
  epochs around it, in **one** compiled call. Python runs once per chunk: progress bar,
  logging, the non-finite check, checkpoints and callbacks. The chunk is compiled once per
  run (its length is static; how many of its epochs are active is an argument), so the number
  of traces does not grow with the number of epochs.
* After each epoch the test split is evaluated inside the same call, in inference mode
  (BatchNorm on running statistics), in masked batches, with a fixed evaluation key so that
  the numbers are comparable across epochs.

Keys: the root key is split once into ``init_key, train_key, eval_key``. Because every epoch's
keys derive from its absolute index, results do not depend on how epochs are grouped into
calls, and a run resumed from a checkpoint continues the very same key sequence: on CPU an
interrupted and resumed run ends bit for bit where an uninterrupted one does.

Reported metrics (the keys of :class:`History`): ``epoch`` (1-based), ``epoch_time`` (seconds,
the chunk's time shared evenly among its epochs, compilation excluded), and for every metric
``m`` of the objective ``train_m`` and ``test_m``. A train metric is the mean over the epoch's
samples of the per-example values, i.e. the batch means weighted by each batch's number of
real rows. (The seed's autoencoder loop instead averages its batch means with equal weights,
which over-weights the ragged last batch; the seed's VAE loop divides batch sums by N, which is
what is reported here.) ``train_beta`` is the sample-weighted mean β over the epoch.

Failures: a non-finite loss stops training with :class:`NonFiniteLossError`, which names the
epoch, the step and (for :func:`fit_many`) the run; the state before the failing chunk is
checkpointed if it was not already, so the last good checkpoint stays loadable.

Early stopping (``TrainConfig.patience``) watches the test loss (the train loss without test
data) and is decided inside the compiled call after every epoch, so it is exact whatever the
chunking. Each run of :func:`fit_many` stops on its own; its later entries in the history are
NaN.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization
from jax import Array, lax
from jax.sharding import NamedSharding, PartitionSpec
from tqdm import tqdm

from latent_jax import checkpoint as ckpt
from latent_jax import distributed, shuffle, validation
from latent_jax.objectives import Batch, Objective, split_variables

__all__ = [
    "OPTIMIZERS",
    "History",
    "NonFiniteLossError",
    "TrainConfig",
    "TrainState",
    "evaluate",
    "fit",
    "fit_many",
    "fit_stream",
    "init_state",
    "make_epoch_fn",
    "make_optimizer",
    "make_train_step",
]

logger = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "adamw", "sgd")
# Settings that change the numbers a resumed run computes; they must match the checkpoint's.
_RESUME_FIELDS = (
    "learning_rate",
    "batch_size",
    "optimizer",
    "weight_decay",
    "momentum",
    "shuffle",
    "min_delta",
)
# Automatic chunking: a chunk is compiled for about this many optimizer steps, and its active
# length is adapted so that Python regains control roughly every _TARGET_CHUNK_SECONDS.
_AUTO_CHUNK_STEPS = 2048
# unroll=None: batches per scan iteration for one run on inputs of at most _SMALL_EXAMPLE values,
# where a step is a few microseconds of work and the loop's own overhead is a fifth of it; 1
# above, and 1 for several runs vmapped (measured: 4% faster than 4 for the seed's 8 seeds).
_SMALL_UNROLL = 4
_SMALL_EXAMPLE = 1024
_TARGET_CHUNK_SECONDS = 0.5


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


def _check_int(name: str, value: Any, minimum: int, *, allow_none: bool = False) -> None:
    if not (value is None and allow_none):
        validation.check_int(name, value, minimum)


def _check_float(name: str, value: Any, *, positive: bool = False) -> None:
    validation.check_real(name, value, positive=positive, nonnegative=not positive)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """How to train: a frozen, keyword-only config whose defaults run in seconds on a CPU.

    Attributes:
        learning_rate: the optimizer's step size, > 0.
        batch_size: rows per batch, >= 1 (reduced to N when larger than the data).
        epochs: total number of epochs of the run (resuming continues up to it), >= 1.
        optimizer: ``"adam"`` (the seed's), ``"adamw"`` or ``"sgd"``, built with optax.
        weight_decay: AdamW's decoupled weight decay (``"adamw"`` only), >= 0.
        momentum: SGD's momentum (``"sgd"`` only; 0 for plain SGD), >= 0.
        seed: the seed of the root key when :func:`fit` gets no key.
        shuffle: whether to reshuffle the rows every epoch (the seed does).
        eval_batch_size: rows per evaluation batch; ``None`` means ``max(batch_size, 256)``.
        epochs_per_call: epochs compiled into one call; ``None`` chooses a length of about
            2048 steps and adapts how many of them run per call so that Python (progress bar,
            callbacks) runs about twice a second. Results do not depend on it.
        unroll: batches per iteration of the compiled loop over an epoch's batches (XLA's
            ``lax.scan(..., unroll=...)``); ``None`` takes 4 for one run on inputs of at most
            1,024 values per example (small models, whose steps are short enough for the
            loop's own overhead to matter: 5-15% faster for the seed's autoencoder) and 1
            otherwise (compiling a convolutional step 4 times over costs more than it saves,
            and :func:`fit_many`'s vmapped steps ran 4% faster without). The numbers do not
            depend on it beyond float32 round-off.
        log_every: log a line (``logging.INFO``) every this many epochs; 0 never.
        checkpoint_dir: where to write checkpoints; ``None`` writes none (unless resuming,
            see :func:`fit`).
        checkpoint_every: also checkpoint every this many epochs (0: only at the end).
        keep_checkpoints: how many checkpoints to keep, >= 1.
        patience: stop after this many epochs without improvement of the test loss (the
            train loss without test data); ``None`` never stops early.
        min_delta: the decrease that counts as an improvement, >= 0.
        quiet: no progress bar.
        compiler_options: XLA options for compiling the training chunk, e.g.
            ``{"xla_backend_optimization_level": 0}``, which compiles convolutional models
            several times faster and runs them slower (for tests and quick experiments).
    """

    learning_rate: float = 1e-3
    batch_size: int = 128
    epochs: int = 10
    optimizer: str = "adam"
    weight_decay: float = 1e-4
    momentum: float = 0.0
    seed: int = 0
    shuffle: bool = True
    eval_batch_size: int | None = None
    epochs_per_call: int | None = None
    unroll: int | None = None
    log_every: int = 1
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    patience: int | None = None
    min_delta: float = 0.0
    quiet: bool = False
    compiler_options: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        _check_float("learning_rate", self.learning_rate, positive=True)
        _check_int("batch_size", self.batch_size, 1)
        _check_int("epochs", self.epochs, 1)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        _check_float("weight_decay", self.weight_decay)
        _check_float("momentum", self.momentum)
        _check_int("seed", self.seed, 0)
        if not isinstance(self.shuffle, bool):
            raise TypeError(f"shuffle must be a bool, got {self.shuffle!r}")
        _check_int("eval_batch_size", self.eval_batch_size, 1, allow_none=True)
        _check_int("epochs_per_call", self.epochs_per_call, 1, allow_none=True)
        _check_int("unroll", self.unroll, 1, allow_none=True)
        _check_int("log_every", self.log_every, 0)
        if self.checkpoint_dir is not None and not isinstance(
            self.checkpoint_dir, str | os.PathLike
        ):
            raise TypeError(f"checkpoint_dir must be a path or None, got {self.checkpoint_dir!r}")
        if self.checkpoint_dir is not None:
            object.__setattr__(self, "checkpoint_dir", os.fspath(self.checkpoint_dir))
        _check_int("checkpoint_every", self.checkpoint_every, 0)
        _check_int("keep_checkpoints", self.keep_checkpoints, 1)
        _check_int("patience", self.patience, 1, allow_none=True)
        _check_float("min_delta", self.min_delta)
        if not isinstance(self.quiet, bool):
            raise TypeError(f"quiet must be a bool, got {self.quiet!r}")
        if self.compiler_options is not None:
            options = self.compiler_options
            if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
                raise TypeError(f"compiler_options must be a dict of str keys, got {options!r}")
            object.__setattr__(self, "compiler_options", dict(options))

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-serializable dict."""
        return dataclasses.asdict(self)


@flax.struct.dataclass
class TrainState:
    """Everything training carries from one step to the next.

    For :func:`fit_many` every leaf has a leading axis of size K (one entry per run).

    Attributes:
        params: the model's parameters.
        model_state: the model's other variable collections (BatchNorm's ``batch_stats``), a
            dict, empty for models without any.
        opt_state: the optax optimizer state.
        step: int32 scalar, optimizer updates done.
        epoch: int32 scalar, epochs completed.
        best_loss: float32 scalar, the best monitored loss so far (for early stopping).
        bad_epochs: int32 scalar, epochs since the best monitored loss.
        stopped: bool scalar, whether early stopping ended the run.
    """

    params: Any
    model_state: Any
    opt_state: Any
    step: Array
    epoch: Array
    best_loss: Array
    bad_epochs: Array
    stopped: Array

    @property
    def variables(self) -> dict[str, Any]:
        """``{"params": ..., **model_state}``, what ``model.apply`` takes."""
        return {"params": self.params, **self.model_state}


class History(Mapping):
    """Per-epoch metrics: a read-only mapping from names to NumPy arrays.

    Keys: ``epoch`` (1-based) and ``epoch_time`` of shape (epochs,); ``train_<m>`` and
    ``test_<m>`` for every metric ``m`` of the objective, of shape (epochs,) for :func:`fit`
    and (K, epochs) for :func:`fit_many`.
    """

    def __init__(self, data: Mapping[str, Any] | None = None):
        self._data = {k: np.asarray(v) for k, v in (data or {}).items()}

    def __getitem__(self, key: str) -> np.ndarray:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"History(epochs={self.num_epochs}, keys={sorted(self._data)})"

    @property
    def num_epochs(self) -> int:
        """The number of epochs recorded."""
        return int(self._data["epoch"].shape[-1]) if "epoch" in self._data else 0

    def last(self) -> dict[str, Any]:
        """The last epoch's values (floats, or arrays of shape (K,) for several runs)."""
        out = {}
        for name, values in self._data.items():
            value = values[..., -1]
            out[name] = value.item() if value.ndim == 0 else value
        return out

    def to_dict(self) -> dict[str, list]:
        """Plain lists (NaN and infinities as ``None``), ready for ``json.dump``."""

        def clean(values: np.ndarray) -> list:
            items = values.tolist()
            if np.issubdtype(values.dtype, np.floating) and not np.all(np.isfinite(values)):
                return jax.tree.map(lambda v: v if math.isfinite(v) else None, items)
            return items

        return {name: clean(values) for name, values in self._data.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        """The inverse of :meth:`to_dict` (``None`` becomes NaN)."""
        out = {}
        for name, values in data.items():
            array = np.asarray(values, dtype=object)
            if name == "epoch":
                out[name] = array.astype(np.int64)
            else:
                out[name] = np.where(array == None, np.nan, array).astype(np.float64)  # noqa: E711
        return cls(out)

    def _extend(self, rows: Mapping[str, np.ndarray]) -> History:
        if not self._data:
            return History(rows)
        if set(rows) != set(self._data):
            raise ValueError(f"history keys changed: {sorted(rows)} vs {sorted(self._data)}")
        return History({k: np.concatenate([self._data[k], rows[k]], axis=-1) for k in self._data})


# --------------------------------------------------------------------------------------
# The compiled pieces.


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """The optax optimizer that ``config`` names.

    Args:
        config: a :class:`TrainConfig`.

    Returns:
        ``optax.adam``, ``optax.adamw`` or ``optax.sgd`` with the config's settings.
    """
    if config.optimizer == "adam":
        return optax.adam(config.learning_rate)
    if config.optimizer == "adamw":
        return optax.adamw(config.learning_rate, weight_decay=config.weight_decay)
    return optax.sgd(config.learning_rate, momentum=config.momentum or None)


def init_state(
    objective: Objective, tx: optax.GradientTransformation, key: Array, x: Array
) -> TrainState:
    """A fresh :class:`TrainState`: the model's variables for inputs like ``x``.

    Args:
        objective: the objective (its ``init`` builds the variables).
        tx: the optimizer.
        key: the initialization key.
        x: array of shape (batch, ...features), example inputs (only shapes matter).

    Returns:
        The state at step 0, epoch 0.
    """
    params, model_state = split_variables(objective.init(key, x))
    return TrainState(
        params=params,
        model_state=model_state,
        opt_state=tx.init(params),
        step=jnp.zeros((), jnp.int32),
        epoch=jnp.zeros((), jnp.int32),
        best_loss=jnp.full((), jnp.inf, jnp.float32),
        bad_epochs=jnp.zeros((), jnp.int32),
        stopped=jnp.zeros((), jnp.bool_),
    )


def make_train_step(
    objective: Objective, tx: optax.GradientTransformation
) -> Callable[[TrainState, Batch, Array, Array], tuple[TrainState, dict[str, Array]]]:
    """One optimizer update, ``train_step(state, batch, key, epoch) -> (state, metrics)``.

    Args:
        objective: the objective to minimize.
        tx: the optimizer.

    Returns:
        A pure function, jit-safe: the loss's gradient with respect to ``state.params`` at
        ``state.step``, applied by ``tx``; the model state (BatchNorm statistics) updated.
    """

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


class _Plan(NamedTuple):
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


def _make_plan(
    config: TrainConfig,
    n_train: int,
    n_test: int,
    mesh: Any = None,
    example_size: int = 0,
    batched: bool = False,
) -> _Plan:
    batch_size = min(config.batch_size, n_train)
    n_batches = -(-n_train // batch_size)
    eval_batch_size = config.eval_batch_size or max(config.batch_size, 256)
    eval_batch_size = min(eval_batch_size, n_test) if n_test else 1
    n_eval_batches = -(-n_test // eval_batch_size) if n_test else 0
    if config.epochs_per_call is not None:
        chunk = config.epochs_per_call
    else:
        chunk = max(1, -(-_AUTO_CHUNK_STEPS // n_batches))
    chunk = min(chunk, config.epochs)
    unroll = config.unroll
    if unroll is None:
        small = 0 < example_size <= _SMALL_EXAMPLE
        unroll = _SMALL_UNROLL if small and not batched else 1
    return _Plan(
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
    )


def _padded_batches(
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


def _gather(x: Array, idx: Array, m: Array, mesh: Any) -> Batch:
    """The batch of rows ``idx``; with a mesh, split over its data axis (an SPMD hint)."""
    batch = Batch(jnp.take(x, idx, axis=0), m)
    return batch if mesh is None else distributed.constrain_batch(batch, mesh)


def _weighted(metrics: dict[str, Array], counts: Array, n: int) -> dict[str, Array]:
    return {k: jnp.sum(v * counts) / n for k, v in metrics.items()}


def _evaluate_batches(
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
    indices, mask = _padded_batches(jnp.arange(n), n, batch_size, n_batches, mesh)

    def body(carry: None, inputs: tuple[Array, Array, Array]) -> tuple[None, Any]:
        b, idx, m = inputs
        batch = _gather(x, idx, m, mesh)
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
    """

    train: dict[str, Array]
    test: dict[str, Array]
    bad_step: Array


def make_epoch_fn(
    objective: Objective, config: TrainConfig, n_train: int, n_test: int = 0
) -> Callable[..., tuple[TrainState, EpochOutput]]:
    """One epoch as a pure function (not jitted), for tests and custom loops.

    ``epoch_fn(state, train_key, eval_key, x_train, x_test, epoch) -> (state, EpochOutput)``
    shuffles with ``fold_in(train_key, epoch)``, runs all batches as a ``lax.scan``, evaluates
    ``x_test`` (pass ``None`` when ``n_test == 0``) and updates the early-stopping fields.
    ``epoch`` is traced, so one compilation serves every epoch.

    Args:
        objective: the objective.
        config: the training config (optimizer, batch sizes, patience).
        n_train: the number of training rows.
        n_test: the number of test rows (0: no evaluation).

    Returns:
        ``epoch_fn``.
    """
    plan = _make_plan(config, n_train, n_test)
    return _make_epoch_fn(objective, make_optimizer(config), plan)


def _make_epoch_fn(
    objective: Objective, tx: optax.GradientTransformation, plan: _Plan
) -> Callable[..., tuple[TrainState, EpochOutput]]:
    train_step = make_train_step(objective, tx)

    def epoch_fn(
        state: TrainState,
        train_key: Array,
        eval_key: Array,
        x_train: Array,
        x_test: Array | None,
        epoch: Array,
    ) -> tuple[TrainState, EpochOutput]:
        epoch = jnp.asarray(epoch, jnp.int32)
        shuffle_key, batch_key = jax.random.split(jax.random.fold_in(train_key, epoch))
        if plan.shuffle:
            order = shuffle.permutation(shuffle_key, plan.n_train)
        else:
            order = jnp.arange(plan.n_train)
        indices, mask = _padded_batches(
            order, plan.n_train, plan.batch_size, plan.n_batches, plan.mesh
        )
        first_step = state.step

        def body(state: TrainState, inputs: tuple[Array, Array, Array]) -> tuple[TrainState, Any]:
            b, idx, m = inputs
            batch = _gather(x_train, idx, m, plan.mesh)
            state, metrics = train_step(state, batch, jax.random.fold_in(batch_key, b), epoch)
            return state, (metrics, jnp.sum(m))

        state, (metrics, counts) = lax.scan(
            body, state, (jnp.arange(plan.n_batches), indices, mask), unroll=plan.unroll
        )
        finite = jnp.isfinite(metrics["loss"])
        bad_step = jnp.where(
            jnp.all(finite), -1, first_step + jnp.argmin(finite).astype(jnp.int32)
        ).astype(jnp.int32)
        train = _weighted(metrics, counts, plan.n_train)
        test: dict[str, Array] = {}
        if plan.n_test:
            test = _evaluate_batches(
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
        return state, EpochOutput(train=train, test=test, bad_step=bad_step)

    return epoch_fn


def _make_chunk_fn(
    objective: Objective, tx: optax.GradientTransformation, plan: _Plan, batched: bool = False
) -> Callable[..., tuple[TrainState, tuple[EpochOutput, Array]]]:
    """``plan.chunk`` epochs as a scan; epochs past ``n_active`` or after a stop are skipped.

    With ``batched`` (the function is to be vmapped over runs) a stopped run's epoch is
    computed and discarded by a select instead of skipped by a ``lax.cond``: under vmap a
    cond on a per-run predicate becomes a select anyway, and one that batches every operand,
    copying the data once per run each epoch.
    """
    epoch_fn = _make_epoch_fn(objective, tx, plan)

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

        # The metric names, from tracing the loss alone (cheaper than tracing an epoch).
        example = jax.ShapeDtypeStruct((1, *x_train.shape[1:]), x_train.dtype)
        batch = Batch(example, jax.ShapeDtypeStruct((1,), jnp.float32))
        loss = functools.partial(objective.loss, train=True)
        _, (names, _) = jax.eval_shape(
            loss, state.params, state.model_state, batch, train_key, state.step, first_epoch
        )

        def skip(state: TrainState, epoch: Array) -> tuple[TrainState, tuple[EpochOutput, Array]]:
            del epoch
            blank = {name: jnp.full((), jnp.nan, jnp.float32) for name in names}
            out = EpochOutput(
                train=blank,
                test=dict(blank) if plan.n_test else {},
                bad_step=jnp.full((), -1, jnp.int32),
            )
            return state, (out, jnp.zeros((), jnp.bool_))

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


# Compiled functions, reused across calls with the same objective, optimizer and shapes (the
# objective is kept alongside so that the ids in the keys stay valid).
_CACHE: dict[tuple, tuple[Objective, Any]] = {}
_CACHE_MAX = 32


def _memo(objective: Objective, key: tuple, build: Callable[[], Any]) -> tuple[Any, bool]:
    """``build()`` cached under ``key`` for ``objective``; also whether it was built now."""
    full_key = (id(objective.init), id(objective.loss), *key)
    hit = _CACHE.get(full_key)
    if hit is not None and hit[0] is objective:
        return hit[1], False
    value = build()
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[full_key] = (objective, value)
    return value, True


def _optimizer_key(config: TrainConfig) -> tuple:
    return (config.optimizer, config.learning_rate, config.weight_decay, config.momentum)


def _initializer(
    objective: Objective, config: TrainConfig, features: tuple[int, ...], batched: bool
) -> Callable[[Array], TrainState]:
    """A jitted ``root_key -> TrainState`` (vmapped over keys when ``batched``)."""

    def build() -> Callable[[Array], TrainState]:
        tx = make_optimizer(config)

        def init_fn(key: Array) -> TrainState:
            init_key = jax.random.split(key, 3)[0]
            return init_state(objective, tx, init_key, jnp.zeros((2, *features), jnp.float32))

        # Initialization runs once per run: optimizing its machine code (random initializers,
        # a forward pass) costs seconds of compile time for conv models and saves nothing.
        return jax.jit(
            jax.vmap(init_fn) if batched else init_fn,
            compiler_options={"xla_backend_optimization_level": 0},
        )

    key = ("init", _optimizer_key(config), features, batched)
    return _memo(objective, key, build)[0]


def _compiled_chunk(
    objective: Objective,
    config: TrainConfig,
    plan: _Plan,
    batched: bool,
    args: tuple,
    state_sharding: Any = None,
    runs_mesh: Any = None,
) -> tuple[Any, float]:
    """The compiled chunk function for these arguments, and the seconds spent compiling.

    With a mesh, ``state_sharding`` (a pytree of shardings matching the state) fixes the
    output state's layout, so that each call's output is the next call's input as compiled.
    With ``runs_mesh`` (batched only) each of its devices trains its share of the runs: a
    ``shard_map`` over the run axis, so no data moves between devices.
    """
    avals = jax.tree.map(lambda a: (jnp.shape(a), str(jnp.result_type(a))), args)
    options = tuple(sorted((config.compiler_options or {}).items()))
    key = ("chunk", _optimizer_key(config), options, plan, batched, jax.tree.structure(args))
    key = (*key, tuple(jax.tree.leaves(avals)), tuple(jax.tree.leaves(state_sharding)))
    key = (*key, runs_mesh)
    jit_options = {}
    if state_sharding is not None:
        jit_options["out_shardings"] = (state_sharding, distributed.replicated(plan.mesh))
    seconds = 0.0

    def build() -> Any:
        nonlocal seconds
        chunk_fn = _make_chunk_fn(objective, make_optimizer(config), plan, batched)
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
        start = time.perf_counter()
        compiled = jax.jit(chunk_fn, **jit_options).lower(*args).compile(dict(options) or None)
        seconds = time.perf_counter() - start
        return compiled

    return _memo(objective, key, build)[0], seconds


# --------------------------------------------------------------------------------------
# Validation at the boundary.


def _check_objective(objective: Any) -> Objective:
    if not isinstance(objective, Objective):
        raise TypeError(
            "objective must be a latent_jax.objectives.Objective (e.g. "
            f"autoencoder_objective(model)), got {type(objective).__name__}"
        )
    return objective


def _check_config(config: Any) -> TrainConfig:
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    return config


def _check_data(x: Any, name: str) -> Array:
    is_device = isinstance(x, jax.Array)
    array = x if is_device else np.asarray(x)
    if not (jnp.issubdtype(array.dtype, jnp.number) or array.dtype == np.bool_):
        raise TypeError(f"{name} must be a numeric array, got dtype {array.dtype}")
    if jnp.issubdtype(array.dtype, jnp.complexfloating):
        raise TypeError(f"{name} must be real, got dtype {array.dtype}")
    if array.ndim < 2:
        raise ValueError(
            f"{name} must have shape (n_samples, ...features) with at least 2 dimensions, "
            f"got shape {tuple(array.shape)}"
        )
    if array.shape[0] == 0 or array.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(array.shape)}")
    if is_device:
        bad = int(array.size - jnp.count_nonzero(jnp.isfinite(array)))
    else:
        array = array.astype(np.float32, copy=False)
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise ValueError(f"{name} contains {bad} NaN or infinite values; clean or impute them")
    return jnp.asarray(array, jnp.float32)


def _check_key(key: Any, name: str, batched: bool) -> Array:
    if isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        typed = key
    else:
        raw = np.asarray(key) if key is not None else None
        if raw is None or raw.dtype != np.uint32 or raw.ndim < 1 or raw.shape[-1] != 2:
            raise TypeError(
                f"{name} must be a jax.random.key (or legacy PRNGKey), got "
                f"{type(key).__name__}{'' if raw is None else f' of shape {raw.shape}'}"
            )
        typed = jax.random.wrap_key_data(jnp.asarray(raw))
    expected = 1 if batched else 0
    if typed.ndim != expected:
        shape = "(K,) (one key per run)" if batched else "() (a single key)"
        raise ValueError(f"{name} must have shape {shape}, got shape {typed.shape}")
    if batched and typed.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one key, got shape {typed.shape}")
    return typed


def _probe_init(objective: Objective, features: tuple[int, ...], key: Array) -> Any:
    """The shapes of the model's variables for examples of shape ``features`` (no compute)."""
    example = jax.ShapeDtypeStruct((2, *features), jnp.float32)
    try:
        return jax.eval_shape(objective.init, key, example)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"train_x has examples of shape {features}, which the model "
            f"{type(objective.model).__name__} does not take: {err}"
        ) from err


def _probe_loss(
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


def _probe(objective: Objective, x_train: Array, x_test: Array | None, key: Array) -> None:
    """Checks the data's example shape against the model before anything is compiled."""
    features = tuple(int(d) for d in x_train.shape[1:])
    if x_test is not None and tuple(x_test.shape[1:]) != features:
        raise ValueError(
            f"test_x has examples of shape {tuple(x_test.shape[1:])}, but train_x has "
            f"examples of shape {features}"
        )
    params, model_state = split_variables(_probe_init(objective, features, key))
    _probe_loss(objective, params, model_state, features, key, "train_x")


# --------------------------------------------------------------------------------------
# Checkpoints of a run.


def _meta(
    config: TrainConfig,
    objective: Objective,
    epoch: int,
    n_train: int,
    n_test: int,
    features: tuple[int, ...],
    n_runs: int | None,
    key_impl: str,
) -> dict[str, Any]:
    return {
        "kind": "latent_jax.train",
        "epoch": epoch,
        "config": config.to_dict(),
        "objective": objective.name,
        "model": type(objective.model).__name__,
        "n_train": n_train,
        "n_test": n_test,
        "feature_shape": list(features),
        "n_runs": n_runs,
        "key_impl": key_impl,
    }


def _save_run(
    directory: str,
    state: TrainState,
    history: History,
    key: Array,
    epoch: int,
    meta: dict[str, Any],
    keep: int,
) -> str:
    tree = {
        "state": serialization.to_state_dict(jax.device_get(state)),
        "history": dict(history),
        "key_data": np.asarray(jax.random.key_data(key)),
    }
    return ckpt.save_checkpoint(directory, tree, epoch=epoch, metadata=meta, keep=keep)


def _restore_run(
    loaded: ckpt.Checkpoint,
    template: TrainState,
    key: Array | None,
    config: TrainConfig,
    expected: Mapping[str, Any],
) -> tuple[TrainState, History, Array, int]:
    meta = loaded.metadata
    where = loaded.path
    saved = meta.get("config", {})
    changed = [
        f"{name}: checkpoint {saved.get(name)!r}, config {getattr(config, name)!r}"
        for name in _RESUME_FIELDS
        if saved.get(name) != getattr(config, name)
    ]
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


# --------------------------------------------------------------------------------------
# The driver.


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


def _find_nonfinite(
    out: EpochOutput, ran: np.ndarray, keep: np.ndarray, batched: bool
) -> tuple[int, int | None, int | None] | None:
    """(index in chunk, step, run) of the first non-finite epoch, or None."""
    for i in keep:
        runs = range(ran.shape[0]) if batched else [None]
        for run in runs:
            where = (run, i) if batched else (i,)
            if not ran[where]:
                continue
            bad_step = int(np.asarray(out.bad_step)[where])
            values = [np.asarray(v)[where] for v in (*out.train.values(), *out.test.values())]
            if bad_step >= 0 or not all(np.isfinite(v) for v in values):
                return int(i), (bad_step if bad_step >= 0 else None), run
    return None


def _fit(
    objective: Any,
    train_x: Any,
    test_x: Any,
    config: Any,
    key: Any,
    *,
    batched: bool,
    resume: str | os.PathLike | None,
    callbacks: Sequence[Callable[[TrainState, History], Any]],
    mesh: Any = None,
    shard_params: bool = False,
    spread_runs: bool = False,
) -> tuple[TrainState, History]:
    objective = _check_objective(objective)
    config = _check_config(config)
    for i, callback in enumerate(callbacks):
        if not callable(callback):
            raise TypeError(f"callbacks[{i}] must be callable (state, history), got {callback!r}")
    if not isinstance(shard_params, bool):
        raise TypeError(f"shard_params must be a bool, got {shard_params!r}")
    if not isinstance(spread_runs, bool):
        raise TypeError(f"spread_runs must be a bool, got {spread_runs!r}")
    if mesh is None:
        x_train = _check_data(train_x, "train_x")
        x_test = None if test_x is None else _check_data(test_x, "test_x")
        n_train = int(x_train.shape[0])
        n_test = 0 if x_test is None else int(x_test.shape[0])
    else:
        # Rows split over the mesh (zero-padded; the padding is never indexed).
        x_train, n_train = distributed.shard_rows(train_x, mesh, "train_x")
        x_test, n_test = (
            (None, 0) if test_x is None else distributed.shard_rows(test_x, mesh, "test_x")
        )
    features = tuple(int(d) for d in x_train.shape[1:])
    if resume is not None:
        resume = os.fspath(resume)
        if not os.path.exists(resume):
            raise FileNotFoundError(f"resume path {resume} does not exist")
    if key is None and resume is None:
        if batched:
            raise TypeError("keys is required: pass jax.random.split(jax.random.key(seed), K)")
        key = jax.random.key(config.seed)
    if key is not None:
        key = _check_key(key, "keys" if batched else "key", batched)
    probe_key = jax.random.key(0)
    _probe(objective, x_train, x_test, probe_key)

    plan = _make_plan(config, n_train, n_test, mesh, math.prod(features), batched)
    init_fn = _initializer(objective, config, features, batched)
    history = History()
    start_epoch = 0
    manifest = None
    if resume is not None:
        manifest = ckpt.latest_checkpoint(resume) if os.path.isdir(resume) else resume
        if manifest is None:
            raise FileNotFoundError(f"no checkpoint to resume from in {resume}")
        loaded = ckpt.load_checkpoint(manifest)
        if loaded.metadata.get("kind") != "latent_jax.train":
            raise ckpt.CheckpointError(f"checkpoint {loaded.path} was not written by fit()")
        saved_runs = loaded.metadata.get("n_runs")
        if batched != (saved_runs is not None):
            raise ValueError(
                f"cannot resume from {loaded.path}: it was written by "
                f"{'fit_many' if saved_runs is not None else 'fit'}()"
            )
        probe = jax.random.split(probe_key, saved_runs) if batched else probe_key
        template = jax.eval_shape(init_fn, probe)
        expected = {
            "n_train": n_train,
            "n_test": n_test,
            "feature_shape": list(features),
        }
        state, history, key, start_epoch = _restore_run(loaded, template, key, config, expected)
    else:
        state = init_fn(key)
    n_runs = int(key.shape[0]) if batched else None
    keys3 = jax.vmap(lambda k: jax.random.split(k, 3))(key) if batched else jax.random.split(key, 3)
    train_key, eval_key = (keys3[:, 1], keys3[:, 2]) if batched else (keys3[1], keys3[2])
    key_impl = str(jax.random.key_impl(key))
    state_sharding = None
    if mesh is not None:
        # A fresh or restored state (host arrays) is laid out on this mesh, whatever mesh
        # wrote the checkpoint.
        state_sharding = distributed.state_shardings(
            state, mesh, fsdp=shard_params, skip=int(batched)
        )
        state = distributed.place(state, state_sharding)
        train_key, eval_key = distributed.place((train_key, eval_key), distributed.replicated(mesh))
    runs_mesh = None
    if batched and mesh is None and spread_runs:
        runs_mesh = distributed.runs_mesh(n_runs)
    if runs_mesh is not None:
        # Each device holds its runs' state and keys and a copy of the data.
        by_run = NamedSharding(runs_mesh, PartitionSpec(distributed.RUNS_AXIS))
        state, train_key, eval_key = jax.device_put((state, train_key, eval_key), by_run)
        x_train, x_test = jax.device_put((x_train, x_test), distributed.replicated(runs_mesh))
        logger.info("%d runs spread over %d devices", n_runs, runs_mesh.size)
    checkpoint_dir = config.checkpoint_dir
    if checkpoint_dir is None and resume is not None:
        checkpoint_dir = resume if os.path.isdir(resume) else os.path.dirname(resume)

    def save(state: TrainState, history: History, epoch: int) -> str | None:
        meta = _meta(config, objective, epoch, n_train, n_test, features, n_runs, key_impl)
        if mesh is not None:
            state = distributed.to_host(state)  # every process takes part in the gather
            if jax.process_index() != 0:
                return None  # one writer: process 0
        return _save_run(checkpoint_dir, state, history, key, epoch, meta, config.keep_checkpoints)

    saved_epoch = start_epoch if resume is not None else -1
    last_checkpoint = manifest
    epoch = start_epoch
    done = epoch >= config.epochs or bool(np.all(np.asarray(state.stopped)))
    args = (
        state,
        train_key,
        eval_key,
        x_train,
        x_test,
        np.int32(epoch),
        np.int32(1),
    )
    compiled = None
    if not done:
        compiled, seconds = _compiled_chunk(
            objective, config, plan, batched, args, state_sharding, runs_mesh
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
    epoch_seconds: float | None = None
    try:
        while not done:
            n_active = plan.chunk if config.epochs_per_call is not None else 1
            if config.epochs_per_call is None and epoch_seconds:
                n_active = int(_TARGET_CHUNK_SECONDS / max(epoch_seconds, 1e-9))
            n_active = max(1, min(n_active, plan.chunk, config.epochs - epoch))
            if config.checkpoint_every and checkpoint_dir is not None:
                to_next = config.checkpoint_every - epoch % config.checkpoint_every
                n_active = min(n_active, to_next)
            start = time.perf_counter()
            new_state, (out, ran) = compiled(
                state, train_key, eval_key, x_train, x_test, np.int32(epoch), np.int32(n_active)
            )
            out, ran = jax.device_get((out, ran))
            elapsed = time.perf_counter() - start
            ran = np.asarray(ran, bool)
            rows, keep = _rows(out, ran, batched)
            bad = _find_nonfinite(out, ran, keep, batched)
            if bad is not None:
                index, step, run = bad
                failed = epoch + index + 1
                if checkpoint_dir is not None and saved_epoch != epoch:
                    last_checkpoint = save(state, history, epoch)
                    saved_epoch = epoch
                where = f" in run {run}" if run is not None else ""
                at_step = f", step {step}" if step is not None else " (in evaluation)"
                kept = f"; the last good checkpoint is {last_checkpoint}" if last_checkpoint else ""
                raise NonFiniteLossError(
                    f"non-finite loss at epoch {failed}{at_step}{where}: training stopped "
                    f"(lower the learning rate or check the data){kept}",
                    epoch=failed,
                    step=step,
                    run=run,
                    history=history,
                    checkpoint=last_checkpoint,
                )
            n_done = len(keep)
            epochs_here = np.arange(epoch + 1, epoch + n_done + 1)
            rows["epoch"] = epochs_here
            rows["epoch_time"] = np.full(n_done, elapsed / max(n_done, 1))
            history = history._extend(rows)
            state = new_state
            epoch += n_done
            epoch_seconds = elapsed / max(n_done, 1)
            stopped = bool(np.all(np.asarray(state.stopped)))
            done = epoch >= config.epochs or stopped or n_done == 0
            due = bool(config.checkpoint_every) and epoch % config.checkpoint_every == 0
            if checkpoint_dir is not None and (due or done) and saved_epoch != epoch:
                last_checkpoint = save(state, history, epoch)
                saved_epoch = epoch
            _report(bar, history, n_done, config, stopped)
            for callback in callbacks:
                if callback(state, history):
                    done = True
            if stopped:
                # Logged whatever ``quiet`` says: quiet hides the progress bar, not events.
                logger.info("early stopping after epoch %d", epoch)
        if checkpoint_dir is not None and saved_epoch != epoch and epoch > start_epoch:
            save(state, history, epoch)
    finally:
        bar.close()
    return state, history


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


def fit(
    objective: Objective,
    train_x: Any,
    test_x: Any,
    config: TrainConfig,
    key: Array | None = None,
    *,
    resume: str | os.PathLike | None = None,
    callbacks: Sequence[Callable[[TrainState, History], Any]] = (),
    mesh: Any = None,
    shard_params: bool = False,
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
            ``config.epochs`` with the same key sequence. The training settings must match
            the checkpoint's. New checkpoints go to ``config.checkpoint_dir``, or to the
            resumed directory when that is ``None``.
        callbacks: functions ``callback(state, history)`` called after every compiled call
            (after checkpointing); one that returns ``True`` stops training.
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
        latent_jax.checkpoint.CheckpointError: for a truncated or corrupt checkpoint.

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
    return _fit(
        objective,
        train_x,
        test_x,
        config,
        key,
        batched=False,
        resume=resume,
        callbacks=callbacks,
        mesh=mesh,
        shard_params=shard_params,
    )


def fit_many(
    objective: Objective,
    train_x: Any,
    test_x: Any,
    config: TrainConfig,
    keys: Array,
    *,
    resume: str | os.PathLike | None = None,
    callbacks: Sequence[Callable[[TrainState, History], Any]] = (),
    mesh: Any = None,
    shard_params: bool = False,
    spread_runs: bool = True,
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
        spread_runs: spread the runs over this process's devices (see above; each device
            holds a copy of the data). Ignored with a ``mesh``, which splits rows instead.

    Returns:
        ``(state, history)``: every state leaf has a leading axis K; history metrics have
        shape (K, epochs) (``epoch`` and ``epoch_time`` stay (epochs,)).
    """
    return _fit(
        objective,
        train_x,
        test_x,
        config,
        keys,
        batched=True,
        resume=resume,
        callbacks=callbacks,
        mesh=mesh,
        shard_params=shard_params,
        spread_runs=spread_runs,
    )


# --------------------------------------------------------------------------------------
# Evaluation outside fit().


def evaluate(
    objective: Objective,
    state: TrainState,
    x: Any,
    key: Array,
    *,
    batch_size: int = 256,
    epoch: int | None = None,
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

    Returns:
        A dict of floats (arrays of shape (K,) for a stacked state).
    """
    objective = _check_objective(objective)
    if not isinstance(state, TrainState):
        raise TypeError(f"state must be a TrainState, got {type(state).__name__}")
    _check_int("batch_size", batch_size, 1)
    _check_int("epoch", epoch, 0, allow_none=True)
    data = _check_data(x, "x")
    key = _check_key(key, "key", False)
    n = int(data.shape[0])
    batched = np.ndim(state.step) == 1
    template = jax.eval_shape(lambda s: s, state)
    if batched:
        template = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), template)
    features = tuple(int(d) for d in data.shape[1:])
    _probe_loss(
        objective, template.params, template.model_state, features, key, "x", modes=(False,)
    )
    size = min(batch_size, n)
    n_batches = -(-n // size)
    if epoch is None:
        epochs = jnp.maximum(jnp.asarray(state.epoch, jnp.int32) - 1, 0)
    else:
        epochs = jnp.full(jnp.shape(state.epoch), epoch, jnp.int32)

    def build() -> Callable[..., dict[str, Array]]:
        def run(state: TrainState, x: Array, key: Array, epoch: Array) -> dict[str, Array]:
            return _evaluate_batches(objective, state, x, key, epoch, n, size, n_batches)

        return jax.jit(jax.vmap(run, in_axes=(0, None, None, 0)) if batched else run)

    run, _ = _memo(objective, ("evaluate", n, size, batched, features), build)
    metrics = jax.device_get(run(state, data, key, epochs))
    return {k: (np.asarray(v) if batched else float(v)) for k, v in metrics.items()}


# --------------------------------------------------------------------------------------
# Training on data streamed from disk.


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
    callbacks: Sequence[Callable[[TrainState, History], Any]] = (),
) -> tuple[TrainState, History]:
    """Trains on data read from disk batch by batch (larger than memory), like :func:`fit`.

    Every epoch visits each example once, in the order
    :func:`latent_jax.streaming.epoch_order` draws from the epoch's shuffle key (the same key
    sequence as :func:`fit`: ``fold_in(train_key, epoch)`` split into a shuffle key and a
    batch key, ``fold_in(batch_key, b)`` for batch ``b``); the ragged last batch is padded and
    masked. A background thread reads the next batches while ``steps_per_call`` of them run
    as one compiled ``lax.scan``. Only the parameters and a few batches are ever in memory.
    With a mesh, batches are split over its data axis and each process reads only its share
    of every batch. The history and checkpoints have :func:`fit`'s format (a checkpoint can
    be resumed in memory by :func:`fit` on the same data); early stopping follows
    ``config.patience``.

    Args:
        objective: as for :func:`fit`.
        source: a :mod:`latent_jax.streaming` source, a ``.npy`` path (memory-mapped), an image
            folder or an array.
        test_x: array of shape (n_test, ...features) evaluated after every epoch (in memory),
            or ``None``.
        config: as for :func:`fit` (``epochs_per_call`` does not apply).
        key: the root key; ``None`` is ``jax.random.key(config.seed)``.
        mesh: as for :func:`fit`.
        steps_per_call: batches per compiled call, >= 1.
        prefetch: groups of batches read ahead, >= 1.
        callbacks: as for :func:`fit`, called after every epoch.

    Returns:
        ``(state, history)`` as for :func:`fit`.

    Raises:
        As :func:`fit`, and ValueError for NaN/Inf met while reading (naming the source).
    """
    from latent_jax import streaming  # streaming depends on data modules only

    objective = _check_objective(objective)
    config = _check_config(config)
    _check_int("steps_per_call", steps_per_call, 1)
    _check_int("prefetch", prefetch, 1)
    source = streaming.open_source(source)
    n_train = len(source)
    features = source.example_shape
    x_test = None if test_x is None else _check_data(test_x, "test_x")
    n_test = 0 if x_test is None else int(x_test.shape[0])
    key = jax.random.key(config.seed) if key is None else _check_key(key, "key", False)
    _probe(objective, jax.ShapeDtypeStruct((1, *features), jnp.float32), x_test, key)
    batch_size = min(config.batch_size, n_train)
    width = batch_size if mesh is None else distributed.padded_size(batch_size, mesh)
    part = None
    tx = make_optimizer(config)
    state = _initializer(objective, config, features, False)(key)
    _, train_key, eval_key = jax.random.split(key, 3)
    state_sharding = None
    if mesh is not None:
        state_sharding = distributed.state_shardings(state, mesh)
        state = distributed.place(state, state_sharding)
        columns = distributed.batch_sharding(mesh).addressable_devices_indices_map((width,))
        starts = sorted(index[0].start or 0 for index in columns.values())
        stops = sorted(
            width if index[0].stop is None else index[0].stop for index in columns.values()
        )
        part = (starts[0], stops[-1])
    train_step = make_train_step(objective, tx)

    def run_group(
        state: TrainState, xs: Array, masks: Array, batch_key: Array, first: Array, epoch: Array
    ) -> tuple[TrainState, tuple[dict[str, Array], Array]]:
        def body(state: TrainState, inputs: tuple[Array, Array, Array]) -> tuple[TrainState, Any]:
            b, x, m = inputs
            batch = Batch(x, m)
            if mesh is not None:
                batch = distributed.constrain_batch(batch, mesh)
            state, metrics = train_step(state, batch, jax.random.fold_in(batch_key, b), epoch)
            return state, (metrics, jnp.sum(m))

        steps = first + jnp.arange(xs.shape[0])
        state, (metrics, counts) = lax.scan(body, state, (steps, xs, masks))
        return state, ({k: jnp.sum(v * counts) for k, v in metrics.items()}, jnp.sum(counts))

    jit_options = {}
    if mesh is not None:
        jit_options["out_shardings"] = (state_sharding, distributed.replicated(mesh))
    run_group = jax.jit(run_group, donate_argnums=0, **jit_options)
    history = History()
    best, bad_epochs = math.inf, 0
    bar = tqdm(total=config.epochs, disable=config.quiet, desc=objective.name, unit="epoch")
    try:
        for epoch in range(config.epochs):
            start = time.perf_counter()
            shuffle_key, batch_key = jax.random.split(jax.random.fold_in(train_key, epoch))
            order = streaming.epoch_order(shuffle_key, n_train, config.shuffle)
            batches = streaming.iter_batches(
                source,
                batch_size,
                order,
                width=width,
                part=part,
                group=steps_per_call,
                prefetch=prefetch,
            )
            totals: dict[str, Array] | None = None
            first = 0
            for xs, masks in batches:
                if mesh is not None:
                    sharding = distributed.batch_sharding(mesh, leading=1)
                    shape = (xs.shape[0], width, *xs.shape[2:])
                    xs = jax.make_array_from_process_local_data(sharding, xs, shape)
                    masks = jax.make_array_from_process_local_data(sharding, masks, shape[:2])
                state, (sums, _) = run_group(
                    state, xs, masks, batch_key, np.int32(first), np.int32(epoch)
                )
                first += int(xs.shape[0])
                totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
            train = {k: float(v) / n_train for k, v in jax.device_get(totals).items()}
            test: dict[str, float] = {}
            if n_test:
                host_state = distributed.to_host(state) if mesh is not None else state
                test = evaluate(
                    objective,
                    host_state,
                    x_test,
                    eval_key,
                    epoch=epoch,
                    batch_size=config.eval_batch_size or max(config.batch_size, 256),
                )
            values = [*train.values(), *test.values()]
            if not all(math.isfinite(v) for v in values):
                raise NonFiniteLossError(
                    f"non-finite loss at epoch {epoch + 1}: training stopped (lower the "
                    "learning rate or check the data)",
                    epoch=epoch + 1,
                    step=None,
                    run=None,
                    history=history,
                    checkpoint=None,
                )
            rows = {f"train_{k}": np.array([v]) for k, v in train.items()}
            rows.update({f"test_{k}": np.array([v]) for k, v in test.items()})
            rows["epoch"] = np.array([epoch + 1])
            rows["epoch_time"] = np.array([time.perf_counter() - start])
            history = history._extend(rows)
            monitored = test["loss"] if n_test else train["loss"]
            improved = monitored < best - config.min_delta
            best, bad_epochs = (monitored, 0) if improved else (best, bad_epochs + 1)
            stopped = config.patience is not None and bad_epochs >= config.patience
            fields = {
                "epoch": jnp.int32(epoch + 1),
                "best_loss": jnp.float32(best),
                "bad_epochs": jnp.int32(bad_epochs),
                "stopped": jnp.bool_(stopped),
            }
            if mesh is not None:
                fields = distributed.place(fields, distributed.replicated(mesh))
            state = state.replace(**fields)
            done = stopped or epoch + 1 == config.epochs
            due = bool(config.checkpoint_every) and (epoch + 1) % config.checkpoint_every == 0
            if config.checkpoint_dir is not None and (due or done):
                host_state = distributed.to_host(state) if mesh is not None else state
                if jax.process_index() == 0:
                    meta = _meta(
                        config,
                        objective,
                        epoch + 1,
                        n_train,
                        n_test,
                        features,
                        None,
                        str(jax.random.key_impl(key)),
                    )
                    _save_run(
                        config.checkpoint_dir,
                        host_state,
                        history,
                        key,
                        epoch + 1,
                        meta,
                        config.keep_checkpoints,
                    )
            _report(bar, history, 1, config, stopped)
            if any(callback(state, history) for callback in callbacks) or stopped:
                break
    finally:
        bar.close()
    return state, history
