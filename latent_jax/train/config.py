"""How to train: the frozen :class:`TrainConfig` and the optax optimizer it names."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import optax

from latent_jax import validation

OPTIMIZERS = ("adam", "adamw", "sgd")
# Settings that change the numbers a resumed run computes; they must match the checkpoint's.
RESUME_FIELDS = (
    "learning_rate",
    "batch_size",
    "optimizer",
    "weight_decay",
    "momentum",
    "shuffle",
    "min_delta",
)


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
        validation.check_real("learning_rate", self.learning_rate, positive=True)
        validation.check_int("batch_size", self.batch_size, 1)
        validation.check_int("epochs", self.epochs, 1)
        validation.check_choice("optimizer", self.optimizer, OPTIMIZERS)
        validation.check_real("weight_decay", self.weight_decay, nonnegative=True)
        validation.check_real("momentum", self.momentum, nonnegative=True)
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

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-serializable dict."""
        return dataclasses.asdict(self)


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
