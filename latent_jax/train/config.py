"""How to train: the frozen :class:`TrainConfig` and the optax optimizer it names."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Any

import optax

from latent_jax import precision, validation

OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("constant", "cosine", "warmup-cosine", "exponential")
GROUP_UPDATES = ("alternating", "simultaneous")
# The fields that define an optimizer: what group_optimizers may set for one parameter group.
OPTIMIZER_FIELDS = (
    "learning_rate",
    "optimizer",
    "b1",
    "b2",
    "weight_decay",
    "momentum",
    "lr_schedule",
    "warmup_steps",
    "lr_final_fraction",
    "clip_norm",
)
# Settings that change the numbers a resumed run computes; they must match the checkpoint's
# (callables compare by their description, see describe()).
RESUME_FIELDS = (
    "learning_rate",
    "batch_size",
    "optimizer",
    "b1",
    "b2",
    "weight_decay",
    "momentum",
    "lr_schedule",
    "warmup_steps",
    "lr_final_fraction",
    "clip_norm",
    "shuffle",
    "min_delta",
    "group_optimizers",
    "group_updates",
    "compute_dtype",
)
# warmup-cosine without warmup_steps warms up over this fraction of the run's steps.
_DEFAULT_WARMUP_FRACTION = 0.05
# exponential without lr_final_fraction ends at this fraction of the learning rate.
_DEFAULT_EXPONENTIAL_FINAL = 0.01


def describe(value: Any) -> Any:
    """A JSON value that stands for a config field: itself, or a callable's dotted name.

    An optax factory is described as ``"optax.lion"``; another function or a transformation
    as ``"module.qualname"`` (a transformation by its ``init`` function's), so a resumed run
    can tell whether it is given the same optimizer or schedule.
    """
    if isinstance(value, Mapping):
        return {key: describe(item) for key, item in value.items()}
    if isinstance(value, optax.GradientTransformation):
        value = value.init
    if callable(value):
        module = getattr(value, "__module__", None) or type(value).__module__
        name = getattr(value, "__qualname__", None) or type(value).__qualname__
        if (
            module.startswith("optax")
            and getattr(optax, getattr(value, "__name__", ""), None) is value
        ):
            module = "optax"
        return f"{module}.{name}"
    return value


def _optional_int(name: str, value: Any, minimum: int) -> None:
    if value is not None:
        validation.check_int(name, value, minimum)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """How to train: a frozen, keyword-only config whose defaults run in seconds on a CPU.

    Attributes:
        learning_rate: the optimizer's step size, > 0.
        batch_size: rows per batch, >= 1 (reduced to N when larger than the data).
        epochs: total number of epochs of the run (resuming continues up to it), >= 1.
        optimizer: ``"adam"`` (the tutorial's), ``"adamw"`` or ``"sgd"``, built with optax; or
            any optax factory called with the learning rate (or its schedule), such as
            ``optax.lion`` or ``functools.partial(optax.adamw, b2=0.99)``; or a ready
            ``optax.GradientTransformation``, used as it is (``learning_rate`` and
            ``lr_schedule`` then do not apply: put the schedule inside it).
        b1: Adam's and AdamW's decay rate of the first moment (optax's default 0.9; DCGAN
            trains with 0.5), in [0, 1).
        b2: Adam's and AdamW's decay rate of the second moment, in [0, 1).
        weight_decay: AdamW's decoupled weight decay (``"adamw"`` only), >= 0.
        momentum: SGD's momentum (``"sgd"`` only; 0 for plain SGD), >= 0.
        lr_schedule: how the learning rate moves over the run's optimizer steps (T = epochs
            × batches per epoch): ``"constant"``; ``"cosine"`` (``optax.cosine_decay_schedule``
            from ``learning_rate`` down to ``learning_rate * lr_final_fraction`` at step T);
            ``"warmup-cosine"`` (``optax.warmup_cosine_decay_schedule``: linear from 0 up to
            ``learning_rate`` over ``warmup_steps``, then the cosine); ``"exponential"``
            (``optax.exponential_decay``, a smooth decay to ``learning_rate *
            lr_final_fraction`` at step T); or any optax schedule, a function of the step
            count returning the learning rate (``learning_rate`` is then ignored).
        warmup_steps: steps of linear warm-up for ``"warmup-cosine"``; ``None`` is 5% of the
            run's steps.
        lr_final_fraction: the learning rate at the last step, as a fraction of
            ``learning_rate``, for ``"cosine"``/``"warmup-cosine"`` (``None``: 0) and
            ``"exponential"`` (``None``: 0.01; must be > 0).
        clip_norm: clip the gradients to this global norm before the optimizer
            (``optax.clip_by_global_norm``); ``None`` does not clip.
        seed: the seed of the root key when :func:`fit` gets no key.
        shuffle: whether to reshuffle the rows every epoch (the tutorial does).
        eval_batch_size: rows per evaluation batch; ``None`` means ``max(batch_size, 256)``.
        epochs_per_call: epochs compiled into one call; ``None`` chooses a length of about
            2048 steps and adapts how many of them run per call so that Python (progress bar,
            callbacks) runs about twice a second. Results do not depend on it.
        unroll: batches per iteration of the compiled loop over an epoch's batches (XLA's
            ``lax.scan(..., unroll=...)``); ``None`` is 1. Unrolling multiplies the step's
            compile time for little speed, measured on a 2-core CPU: ``unroll=4`` made the
            tutorial's autoencoder 0.5-1% faster and the 25x25 faces demo's VAE 3% faster,
            for 2-3x the compile time (the demo's training program: 10 s instead of 3.6 s),
            so it pays only in long runs of small models. The numbers do not depend on it
            beyond float32 round-off.
        log_every: log a line (``logging.INFO``) every this many epochs; 0 never.
        checkpoint_dir: where to write checkpoints; ``None`` writes none (unless resuming,
            see :func:`fit`).
        checkpoint_every: also checkpoint every this many epochs (0: only at the end).
        keep_checkpoints: how many checkpoints to keep, >= 1.
        patience: stop after this many epochs without improvement of the test loss (the
            train loss without test data); ``None`` never stops early.
        min_delta: the decrease that counts as an improvement, >= 0.
        quiet: no progress bar.
        compiler_options: XLA options for compiling the training programs, on top of the
            engine's default on CPUs, ``{"xla_backend_optimization_level": 2}`` (LLVM's -O2
            instead of -O3: 25-55% less compile time, the same speed); for example
            ``{"xla_backend_optimization_level": 0}`` compiles convolutional models faster
            still and runs them slower (for tests and quick experiments).
        group_optimizers: for an objective with several parameter groups (a
            :class:`~latent_jax.objectives.GroupedObjective`, such as a GAN's generator and
            discriminator), each group's own optimizer settings: group name -> a dict of
            the fields in ``OPTIMIZER_FIELDS`` (``{"discriminator": {"learning_rate":
            4e-4}}``); a group not named, or a field not given, takes this config's value.
            Each group has its own optax transformation and state. ``None``: every group
            gets this config's optimizer. Must be ``None`` for one-group objectives.
        group_updates: how the groups of such an objective update within a batch:
            ``"alternating"`` (in the objective's order, each group's gradient taken at the
            parameters the previous groups just updated, as in Goodfellow et al.'s and
            DCGAN's training loops) or ``"simultaneous"`` (every gradient taken at the
            batch's starting parameters).
        compute_dtype: ``"float32"`` or ``"bfloat16"``: the dtype the models compute in
            during training and the run's evaluation (mixed precision,
            :mod:`latent_jax.precision`: parameters, optimizer state, losses and KL terms
            stay float32).
    """

    learning_rate: float = 1e-3
    batch_size: int = 128
    epochs: int = 10
    optimizer: str | optax.GradientTransformation | Callable[..., Any] = "adam"
    b1: float = 0.9
    b2: float = 0.999
    weight_decay: float = 1e-4
    momentum: float = 0.0
    lr_schedule: str | Callable[[Any], Any] = "constant"
    warmup_steps: int | None = None
    lr_final_fraction: float | None = None
    clip_norm: float | None = None
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
    group_optimizers: Mapping[str, Mapping[str, Any]] | None = None
    group_updates: str = "alternating"
    compute_dtype: str = "float32"

    def __post_init__(self) -> None:
        validation.check_real("learning_rate", self.learning_rate, positive=True)
        validation.check_int("batch_size", self.batch_size, 1)
        validation.check_int("epochs", self.epochs, 1)
        optimizer = self.optimizer
        if not (isinstance(optimizer, optax.GradientTransformation) or callable(optimizer)):
            validation.check_choice("optimizer", optimizer, OPTIMIZERS)
        for name in ("b1", "b2"):
            value = validation.check_real(name, getattr(self, name), nonnegative=True)
            if value >= 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {name}={value!r}")
        validation.check_real("weight_decay", self.weight_decay, nonnegative=True)
        validation.check_real("momentum", self.momentum, nonnegative=True)
        if isinstance(self.lr_schedule, str) or not callable(self.lr_schedule):
            validation.check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _optional_int("warmup_steps", self.warmup_steps, 0)
        if self.lr_final_fraction is not None:
            closed = "right" if self.lr_schedule == "exponential" else "both"
            validation.check_fraction("lr_final_fraction", self.lr_final_fraction, closed=closed)
        if self.clip_norm is not None:
            validation.check_real("clip_norm", self.clip_norm, positive=True)
        validation.check_int("seed", self.seed, 0)
        validation.check_bool("shuffle", self.shuffle)
        _optional_int("eval_batch_size", self.eval_batch_size, 1)
        _optional_int("epochs_per_call", self.epochs_per_call, 1)
        _optional_int("unroll", self.unroll, 1)
        validation.check_int("log_every", self.log_every, 0)
        if self.checkpoint_dir is not None and not isinstance(
            self.checkpoint_dir, str | os.PathLike
        ):
            raise TypeError(f"checkpoint_dir must be a path or None, got {self.checkpoint_dir!r}")
        if self.checkpoint_dir is not None:
            object.__setattr__(self, "checkpoint_dir", os.fspath(self.checkpoint_dir))
        validation.check_int("checkpoint_every", self.checkpoint_every, 0)
        validation.check_int("keep_checkpoints", self.keep_checkpoints, 1)
        _optional_int("patience", self.patience, 1)
        validation.check_real("min_delta", self.min_delta, nonnegative=True)
        validation.check_bool("quiet", self.quiet)
        if self.compiler_options is not None:
            options = self.compiler_options
            if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
                raise TypeError(f"compiler_options must be a dict of str keys, got {options!r}")
            object.__setattr__(self, "compiler_options", dict(options))
        validation.check_choice("group_updates", self.group_updates, GROUP_UPDATES)
        precision.check_compute_dtype(self.compute_dtype)
        if self.group_optimizers is not None:
            object.__setattr__(self, "group_optimizers", self._checked_groups())

    def _checked_groups(self) -> dict[str, dict[str, Any]]:
        """``group_optimizers`` as plain dicts, each group's settings validated."""
        groups = self.group_optimizers
        if not isinstance(groups, Mapping) or not all(isinstance(g, str) for g in groups):
            raise TypeError(
                f"group_optimizers must be a dict of group name -> settings, got {groups!r}"
            )
        checked = {}
        for group, settings in groups.items():
            where = f"group_optimizers[{group!r}]"
            if not isinstance(settings, Mapping):
                raise TypeError(f"{where} must be a dict of optimizer settings, got {settings!r}")
            unknown = sorted(set(settings) - set(OPTIMIZER_FIELDS))
            if unknown:
                raise ValueError(
                    f"{where} sets {unknown}, which are not optimizer settings (those are "
                    f"{list(OPTIMIZER_FIELDS)})"
                )
            try:
                dataclasses.replace(self, group_optimizers=None, **settings)
            except (TypeError, ValueError) as err:
                raise type(err)(f"{where}: {err}") from err
            checked[group] = dict(settings)
        return checked

    def for_group(self, group: str) -> TrainConfig:
        """The config of one parameter group: this one with its ``group_optimizers`` entry."""
        settings = (self.group_optimizers or {}).get(group, {})
        return dataclasses.replace(self, group_optimizers=None, **settings)

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-serializable dict (callables by their :func:`describe` name)."""
        return {
            field.name: describe(getattr(self, field.name)) for field in dataclasses.fields(self)
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """The config that :meth:`to_dict` wrote: ``TrainConfig.from_dict(c.to_dict()) == c``.

        An optimizer or schedule described as ``"optax.NAME"`` is looked up in optax (only
        there: nothing else is imported from a name); other callables cannot be rebuilt from
        their description and raise ``ValueError``.

        Raises:
            TypeError: for a non-mapping.
            ValueError: for unknown keys or a callable that cannot be rebuilt.
        """
        if not isinstance(data, Mapping):
            raise TypeError(
                f"data must be a mapping of TrainConfig fields, got {type(data).__name__}"
            )
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {unknown}; known: {sorted(names)}")
        values = _rebuilt_callables(data)
        if isinstance(values.get("group_optimizers"), Mapping):
            values["group_optimizers"] = {
                group: _rebuilt_callables(settings) if isinstance(settings, Mapping) else settings
                for group, settings in values["group_optimizers"].items()
            }
        return cls(**values)


def _rebuilt_callables(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with an optimizer or schedule described as ``"optax.NAME"`` looked up."""
    values = dict(data)
    for name, choices in (("optimizer", OPTIMIZERS), ("lr_schedule", LR_SCHEDULES)):
        value = values.get(name)
        if isinstance(value, str) and value not in choices:
            values[name] = _optax_callable(name, value)
    return values


def _optax_callable(name: str, description: str) -> Callable[..., Any]:
    prefix = "optax."
    found = (
        getattr(optax, description[len(prefix) :], None) if description.startswith(prefix) else None
    )
    if not callable(found):
        raise ValueError(
            f"{name}={description!r} cannot be rebuilt from a config file: only the names "
            "and optax's own factories ('optax.NAME') can; pass the callable in Python"
        )
    return found


def learning_rate_schedule(config: TrainConfig, total_steps: int) -> float | optax.Schedule:
    """The learning rate, or its optax schedule over a run of ``total_steps`` updates.

    Args:
        config: the training config (``learning_rate``, ``lr_schedule`` and its settings).
        total_steps: optimizer updates in the whole run (epochs × batches per epoch), >= 1.

    Returns:
        ``config.learning_rate`` for ``"constant"``, else a function of the step count.
    """
    schedule, rate = config.lr_schedule, config.learning_rate
    if callable(schedule):
        return schedule
    if schedule == "constant":
        return rate
    total = max(1, int(total_steps))
    if schedule == "exponential":
        final = config.lr_final_fraction or _DEFAULT_EXPONENTIAL_FINAL
        return optax.exponential_decay(rate, transition_steps=total, decay_rate=final)
    final = config.lr_final_fraction or 0.0
    if schedule == "cosine":
        return optax.cosine_decay_schedule(rate, decay_steps=total, alpha=final)
    warmup = config.warmup_steps
    if warmup is None:
        warmup = round(_DEFAULT_WARMUP_FRACTION * total)
    return optax.warmup_cosine_decay_schedule(
        0.0, rate, warmup_steps=min(warmup, total), decay_steps=total, end_value=rate * final
    )


def make_optimizer(
    config: TrainConfig, total_steps: int | None = None
) -> optax.GradientTransformation:
    """The optax optimizer that ``config`` describes.

    Args:
        config: a :class:`TrainConfig`.
        total_steps: optimizer updates in the whole run, which the named learning-rate
            schedules other than ``"constant"`` need; ``None`` is ``config.epochs`` (one
            batch per epoch).

    Returns:
        ``optax.adam``, ``optax.adamw``, ``optax.sgd`` or the config's own factory at the
        learning rate (or its schedule), or the config's transformation; preceded by
        ``optax.clip_by_global_norm`` when ``config.clip_norm`` is set.
    """
    rate = learning_rate_schedule(config, config.epochs if total_steps is None else total_steps)
    optimizer = config.optimizer
    if isinstance(optimizer, optax.GradientTransformation):
        tx = optimizer
    elif callable(optimizer):
        tx = optimizer(rate)
        if not isinstance(tx, optax.GradientTransformation):
            raise TypeError(
                f"optimizer={describe(optimizer)!r} must return an optax.GradientTransformation "
                f"when called with the learning rate, got {type(tx).__name__}"
            )
    elif optimizer == "adam":
        tx = optax.adam(rate, b1=config.b1, b2=config.b2)
    elif optimizer == "adamw":
        tx = optax.adamw(rate, b1=config.b1, b2=config.b2, weight_decay=config.weight_decay)
    else:
        tx = optax.sgd(rate, momentum=config.momentum or None)
    if config.clip_norm is not None:
        tx = optax.chain(optax.clip_by_global_norm(config.clip_norm), tx)
    return tx


def make_optimizers(
    config: TrainConfig, groups: tuple[str, ...], total_steps: int | None = None
) -> dict[str, optax.GradientTransformation]:
    """One optax optimizer per parameter group, from ``config.for_group(group)``.

    Args:
        config: a :class:`TrainConfig`; its ``group_optimizers`` may name only ``groups``.
        groups: the objective's parameter groups, in order.
        total_steps: as for :func:`make_optimizer` (every group updates once per batch).

    Returns:
        ``{group: transformation}`` in the order of ``groups``.

    Raises:
        ValueError: when ``config.group_optimizers`` names a group the objective lacks.
    """
    unknown = sorted(set(config.group_optimizers or {}) - set(groups))
    if unknown:
        raise ValueError(
            f"group_optimizers names the groups {unknown}, but the objective's parameter "
            f"groups are {list(groups)}"
        )
    return {group: make_optimizer(config.for_group(group), total_steps) for group in groups}
