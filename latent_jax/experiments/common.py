"""What every experiment does around its work: output folders, JSON files, run metadata, the
flags every training command shares and the mapping between a run's ``config.json`` and flags."""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import fractions
import importlib.util
import json
import logging
import math
import os
import platform
import shutil
import time
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple, Self

import numpy as np

from latent_jax import data, persistent_cache, runs, schedules
from latent_jax.runs import checkpoint, locks
from latent_jax.train.config import LR_SCHEDULES

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class _RunFolder:
    """An output folder this command locked (:func:`prepare_output_dir`), and what it held.

    Attributes:
        key: the lock's key (the folder's real path).
        created: whether this command created the folder.
        files_before: the files (relative paths) the folder held when it was locked.
        checkpoints_before: the checkpoint manifests under it at that time.
        pending_config: the ``config.json`` of a resumed run, written once the resume is
            accepted (:func:`write_run_config`): the arguments of :func:`runs.write_config`.
        resumed: the resumptions to record in it (:func:`record_resumptions`).
    """

    key: str
    created: bool
    files_before: set[str]
    checkpoints_before: set[str]
    pending_config: dict[str, Any] | None = None
    resumed: list[Any] | None = None


# The output folders this process has locked, released by release_output_dirs when the
# command ends (else when the process exits).
_LOCKED_DIRS: list[_RunFolder] = []
# Run folders whose earlier checkpoints --overwrite deletes once the folder is locked.
_REPLACED_CHECKPOINTS: dict[str, list[str]] = {}


def _files_under(folder: str) -> set[str]:
    """The files under ``folder`` (recursively), as paths relative to it."""
    found = set()
    for directory, _, files in os.walk(folder):
        for name in files:
            found.add(os.path.relpath(os.path.join(directory, name), folder))
    return found


def _manifests_under(folder: str) -> set[str]:
    """The checkpoint manifests under ``folder``'s checkpoint folders."""
    return {
        path
        for directory in earlier_checkpoint_dirs(folder)
        for _, path in checkpoint.list_checkpoints(directory)
    }


@dataclasses.dataclass(frozen=True)
class CommandArguments:
    """A command's flags, typed: each command subclasses it with one field per flag (named
    after the flag's ``dest``). The command line builds it once from the parsed flags
    (:meth:`from_mapping`); below that, commands and this scaffold read only these objects.
    """

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Self:
        """The arguments of the fields in ``values`` (other keys, such as the subcommand's
        name, are ignored). A field ``objective_options`` is gathered from the objectives'
        option flags when ``values`` lacks it (:func:`given_objective_options`).

        Raises:
            TypeError: naming the fields ``values`` lacks.
        """
        names = [f.name for f in dataclasses.fields(cls)]
        if OBJECTIVE_OPTIONS_FIELD in names and OBJECTIVE_OPTIONS_FIELD not in values:
            # The objectives' own flags, as one field (add_objective_arguments).
            values = {**values, OBJECTIVE_OPTIONS_FIELD: given_objective_options(values)}
        missing = [n for n in names if n not in values]
        if missing:
            raise TypeError(f"{cls.__name__} needs values for {missing}")
        return cls(**{n: values[n] for n in names})

    def values(self) -> dict[str, Any]:
        """Every field by name (a shallow copy)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def replace(self, **changes: Any) -> Self:
        """These arguments with ``changes``."""
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class RunArguments(CommandArguments):
    """The flags of a training command that :func:`add_run_arguments` registers, typed."""

    config: str | None
    tensorboard: bool
    tracker: str | None
    tracker_uri: str | None
    tracker_project: str
    no_compile_cache: bool
    lr_schedule: str
    clip_norm: float | None
    checkpoint_every: int | None
    resume: bool
    overwrite: bool
    override: Sequence[str]


def check_output_path(path: str | os.PathLike, flag: str = "--out") -> str:
    """Checks that the output folder ``path`` can be created and written, creating nothing.

    Args:
        path: the folder (it may not exist yet).
        flag: how the message names it.

    Returns:
        ``path`` as a string.

    Raises:
        ValueError: if ``path`` or one of its parents is a file, or the nearest existing
            folder above it is not writable, naming the flag and the file.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{flag} {path!r} is a file, not a folder")
    above = os.path.abspath(path)
    while not os.path.exists(above):
        above = os.path.dirname(above)
    if not os.path.isdir(above):
        raise ValueError(f"{flag} {path!r} is under {above!r}, which is a file, not a folder")
    if not os.access(above, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {path!r}: the folder {above!r} is not writable")
    return path


def prepare_output_dir(path: str | os.PathLike) -> str:
    """Creates the output folder (and parents) if needed, locks it, and returns it.

    Call it after every flag and the data were checked, so that bad input writes nothing.
    The folder stays locked (:mod:`latent_jax.runs.locks`) until :func:`release_output_dirs`
    (the command line calls it when the command ends) or the process exits: a second run
    writing to it fails at once.

    Args:
        path: the folder.

    Returns:
        ``path`` as a string.

    Raises:
        ValueError: if the folder cannot be created or written (:func:`check_output_path`).
        latent_jax.runs.locks.FolderInUseError: if another process writes to it.
        OSError: if creating it or its lock file fails (permissions, a full disk).
    """
    path = check_output_path(path)
    created = not os.path.isdir(path)
    os.makedirs(path, exist_ok=True)
    key = locks.acquire(path)
    # --overwrite: the earlier run's checkpoints go only now that the folder is this run's.
    for directory in _REPLACED_CHECKPOINTS.pop(os.path.abspath(path), ()):
        shutil.rmtree(directory, ignore_errors=True)
    _LOCKED_DIRS.append(_RunFolder(key, created, _files_under(key), _manifests_under(key)))
    return path


def _run_folder(path: str) -> _RunFolder | None:
    """The locked folder ``path`` is (not a folder inside it), or ``None``."""
    key = os.path.realpath(path)
    return next((folder for folder in _LOCKED_DIRS if folder.key == key), None)


def release_output_dirs(failed: bool = False) -> None:
    """Ends the command's hold on its output folders: writes or drops what waited, unlocks.

    A successful command writes the ``config.json`` of its resumed runs. A failed one keeps
    what can be resumed and removes what cannot: a folder under which it wrote a new
    checkpoint (a divergence, an interrupt) keeps its files, and a resumed run's
    ``config.json`` is written there (the checkpoint was trained with its settings); a
    folder with no new checkpoint is put back as it was found: the files the command added
    are deleted, a resumed run's ``config.json`` is left as it was, and a folder the command
    created is removed. A failure leaves no half-made run folder behind.

    Args:
        failed: whether the command failed.
    """
    while _LOCKED_DIRS:
        folder = _LOCKED_DIRS.pop()
        try:
            trained = not failed or bool(_manifests_under(folder.key) - folder.checkpoints_before)
            if trained and folder.pending_config is not None:
                _write_config_now(folder.key, folder)
            if not trained:
                _undo(folder)
        finally:
            locks.release(folder.key)
        if not trained and folder.created:
            with contextlib.suppress(OSError):  # not empty, or already gone: leave it
                os.rmdir(folder.key)


def _undo(folder: _RunFolder) -> None:
    """Deletes the files a failed command added to ``folder`` (its lock file stays until
    released) and the folders that became empty."""
    for relative in sorted(_files_under(folder.key) - folder.files_before):
        if os.path.basename(relative) != locks.LOCK_FILE:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder.key, relative))
    for directory, _, _ in sorted(os.walk(folder.key), reverse=True):
        if directory != folder.key:
            with contextlib.suppress(OSError):  # not empty: something else is in it
                os.rmdir(directory)


def _to_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_json(path: str | os.PathLike, payload: dict[str, Any]) -> str:
    """Writes ``payload`` as indented JSON atomically
    (:func:`latent_jax.runs.checkpoint.atomic_write`: a temporary file, then a rename), with
    the user's usual file permissions (0666 less the umask). NumPy arrays and scalars are
    converted to lists and numbers.
    """
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    text = json.dumps(_to_json(payload), indent=2, sort_keys=True) + "\n"
    checkpoint.atomic_write(path, text.encode("utf-8"))
    return path


def environment_info() -> dict[str, Any]:
    """Versions and the device the run used, for ``metrics.json``."""
    import flax
    import jax
    import optax
    import sklearn

    import latent_jax

    device = jax.devices()[0]
    return {
        "latent_jax": latent_jax.__version__,
        "jax": jax.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "numpy": np.__version__,
        "scikit_learn": sklearn.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": f"{device.platform}:{getattr(device, 'device_kind', '')}",
        "device_count": jax.device_count(),
        "cpu_count": os.cpu_count(),
    }


def arguments_dict(args: CommandArguments) -> dict[str, Any]:
    """The parsed flags as a JSON-friendly dict (callables dropped)."""
    return {k: v for k, v in args.values().items() if not callable(v)}


def add_tabular_source_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers ``--data`` (a tabular data set or file, for :func:`latent_jax.data.load_tabular`)
    and ``--label-column``, the flags of every experiment on a table."""
    parser.add_argument(
        "--data",
        default=data.SYNTHETIC_CLASSIFICATION,
        help=f"{', '.join(data.TABULAR_NAMES)} ({data.SYNTHETIC_CLASSIFICATION}: the tutorial's "
        "make_classification set, 'seed' its deprecated old name), or a .npy/.npz/.csv file",
    )
    parser.add_argument(
        "--label-column",
        type=int,
        default=None,
        help="column of the file holding class labels (negative counts from the end)",
    )


def int_tuple(text: str) -> tuple[int, ...]:
    """A flag's comma-separated integers (an argparse ``type``): ``"256,128"`` -> ``(256, 128)``.

    Raises:
        argparse.ArgumentTypeError: for a value that is not an integer.
    """
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers such as 0,1,2, got {text!r}") from None


def float_tuple(text: str) -> tuple[float, ...]:
    """A flag's comma-separated numbers (an argparse ``type``), at least one.

    Raises:
        argparse.ArgumentTypeError: for a value that is not a number, or none at all.
    """
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers such as 0.1,0.5, got {text!r}"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected at least one number, got {text!r}")
    return values


def name_tuple(text: str) -> tuple[str, ...]:
    """A flag's comma-separated names (an argparse ``type``), blanks dropped."""
    return tuple(v.strip() for v in text.split(",") if v.strip())


def subset_of(flag: str, choices: tuple[str, ...]) -> Any:
    """An argparse ``type`` for comma-separated names, at least one, each among ``choices``.

    Args:
        flag: the flag, for the message (``"--methods"``).
        choices: the names it accepts.

    Returns:
        The parser: text -> tuple of names.
    """

    def parse(text: str) -> tuple[str, ...]:
        names = name_tuple(text)
        if not names or any(n not in choices for n in names):
            raise argparse.ArgumentTypeError(f"{flag} must be a subset of {choices}, got {text!r}")
        return names

    return parse


def require_at_least(args: CommandArguments, minimum: int, *names: str) -> None:
    """Raises a ValueError naming the flag if any of ``args.<name>`` is below ``minimum``.

    Args:
        args: the parsed flags.
        minimum: the smallest allowed value.
        *names: attribute names, e.g. ``"batch_size"`` (reported as ``--batch-size``).
    """
    for name in names:
        value = getattr(args, name)
        if value < minimum:
            raise ValueError(f"--{name.replace('_', '-')} must be >= {minimum}, got {value}")


# ---------------------------------------------------------------------- runs: flags and files

# TrainConfig fields that a training command's flags set, by the flag's name (dest); the
# training section of config.json maps back to these flags. Commands whose flags mean other
# things (linear-vae's total steps) declare their own mapping as ``TRAINING_FLAGS``.
TRAINING_FLAGS: dict[str, str] = {
    "learning_rate": "learning_rate",
    "batch_size": "batch_size",
    "epochs": "epochs",
    "lr_schedule": "lr_schedule",
    "clip_norm": "clip_norm",
}
# TrainConfig fields no command has a flag for: every command trains with their defaults, so a
# config file may only repeat those (anything else would be silently ignored).
_FIXED_TRAINING_FIELDS = (
    "optimizer",
    "weight_decay",
    "momentum",
    "warmup_steps",
    "lr_final_fraction",
    "shuffle",
    "patience",
    "min_delta",
)
# Keys of config.json that are not flags: the layout's own (runs.write_config), read apart.
_LAYOUT_KEYS = (
    "command",
    "version",
    "data",
    "model",
    "training",
    "seed",
    "settings",
    "run",
    "resumed",
)
# Flags that say how to run, not what: never recorded, never read back from a config file.
# Flags that say where outputs go, not what the run computes: config.json leaves them out.
_NOT_RECORDED = ("command", "run", "verbose", "config", "out", "resume", "override")
_NOT_RECORDED += ("tracker", "tracker_uri", "tracker_project")
# A run checkpoints about this many times by default (--checkpoint-every): a kill loses at
# most 5% of the run, and the writes (three fsync-ed files each) stay a small part of it.
_DEFAULT_CHECKPOINTS_PER_RUN = 20
TENSORBOARD_DIR = "tensorboard"
# --tracker: the experiment trackers (latent_jax.train.trackers) and their defaults.
TRACKERS = ("mlflow", "wandb")
DEFAULT_TRACKER_PROJECT = "latent_jax"
DEFAULT_MLFLOW_URI = "sqlite:///mlflow.db"


def add_run_arguments(
    parser: argparse.ArgumentParser,
    *,
    lr_schedules: tuple[str, ...] = LR_SCHEDULES,
    lr_schedule_help: str | None = None,
) -> None:
    """Registers the flags every training command shares: config file, outputs, optimizer.

    ``--config FILE``, ``--tensorboard``, ``--no-compile-cache``, ``--lr-schedule`` and
    ``--clip-norm`` (the last two map to :class:`~latent_jax.train.TrainConfig`'s
    ``lr_schedule`` and ``clip_norm``).

    Args:
        parser: the subcommand's parser.
        lr_schedules: the choices of ``--lr-schedule``; the first is its default.
        lr_schedule_help: its help text, when the command's schedules differ from the usual.
    """
    group = parser.add_argument_group("run files, compilation and optimizer")
    group.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="read the flags from a JSON or TOML file (a run's config.json repeats that run); "
        "flags given on the command line override the file's values",
    )
    group.add_argument(
        "--tensorboard",
        action="store_true",
        help=f"also write TensorBoard event files under OUT/{TENSORBOARD_DIR} (needs tensorboardX)",
    )
    group.add_argument(
        "--tracker",
        choices=TRACKERS,
        default=None,
        help="also log the run to an experiment tracker: its settings, every epoch's metrics, "
        "and at the end OUT's metrics.json, config.json, history.csv and figures (mlflow: "
        "pip install -e '.[mlflow]'; wandb: pip install -e '.[wandb]', WANDB_MODE=offline "
        "works without an account)",
    )
    group.add_argument(
        "--tracker-uri",
        metavar="URI",
        default=None,
        help="mlflow: the tracking URI (default: $MLFLOW_TRACKING_URI, else "
        f"{DEFAULT_MLFLOW_URI}); wandb: the folder of its local run files (default: OUT)",
    )
    group.add_argument(
        "--tracker-project",
        metavar="NAME",
        default=DEFAULT_TRACKER_PROJECT,
        help="the MLflow experiment or W&B project (default: %(default)s)",
    )
    add_compile_cache_argument(group)
    group.add_argument(
        "--lr-schedule",
        choices=lr_schedules,
        default=lr_schedules[0],
        help=lr_schedule_help
        or "learning rate over the run's optimizer steps: constant; cosine decay to 0; "
        "warmup-cosine (linear warm-up over the first 5%%, then cosine); exponential "
        "(decay to 1%% of --learning-rate)",
    )
    group.add_argument(
        "--clip-norm",
        type=float,
        default=None,
        help="clip the gradients to this global norm before the optimizer (default: no clipping)",
    )
    _add_resume_arguments(parser)


def _add_resume_arguments(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint-every``, ``--resume`` and ``--override`` (see :func:`resume_options`)."""
    from latent_jax.train.checkpoints import CHANGEABLE_FIELDS

    group = parser.add_argument_group("checkpoints and resuming")
    if "--checkpoint-every" not in parser._option_string_actions:  # vae has its own default
        group.add_argument(
            "--checkpoint-every",
            type=int,
            metavar="EPOCHS",
            default=None,
            help="checkpoint every this many epochs, and at the end; 0: only at the end "
            f"(default: 5%% of --epochs, at least 1: about {_DEFAULT_CHECKPOINTS_PER_RUN} "
            "checkpoints a run)",
        )
    group.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint (the same command and flags, "
        "plus --resume; it ends as an uninterrupted run would, bit for bit on CPU); a run "
        "with no checkpoint yet starts from the beginning",
    )
    group.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh in an --out that holds an earlier run's checkpoints, deleting them "
        "(without it, or --resume, such an --out is refused, so that nothing trained is lost)",
    )
    group.add_argument(
        "--override",
        type=lambda text: tuple(v.strip().replace("-", "_") for v in text.split(",") if v),
        metavar="FIELDS",
        default=(),
        help="with --resume, optimizer settings that may differ from the checkpoint's on "
        f"purpose, comma-separated: {', '.join(CHANGEABLE_FIELDS)} (e.g. continue a diverged "
        "run with a lower --learning-rate: --override learning_rate; 'data' continues on "
        "other rows than the checkpoint's); recorded in config.json (default: none)",
    )


def check_resume_arguments(args: CommandArguments) -> None:
    """Validates ``--checkpoint-every``, ``--override``, ``--resume`` and ``--overwrite``.

    Called before any output folder exists. An ``--out`` that holds an earlier run's
    checkpoints needs ``--resume`` (continue it) or ``--overwrite`` (delete them, once the
    folder is locked by :func:`prepare_output_dir`): a fresh run never mixes its checkpoints
    with another run's, and never deletes trained work unasked.

    Raises:
        ValueError: naming the flag.
    """
    from latent_jax.train.checkpoints import CHANGEABLE_FIELDS

    every = getattr(args, "checkpoint_every", None)
    if every is not None and every < 0:
        raise ValueError(f"--checkpoint-every must be >= 0 epochs, got {every}")
    override = getattr(args, "override", ())
    unknown = [name for name in override if name not in CHANGEABLE_FIELDS]
    if unknown:
        raise ValueError(
            f"--override may name only {', '.join(CHANGEABLE_FIELDS)}, got {', '.join(unknown)}"
        )
    if override and not getattr(args, "resume", False):
        raise ValueError("--override applies only with --resume")
    out = getattr(args, "out", None)
    if getattr(args, "resume", False) and getattr(args, "overwrite", False):
        raise ValueError("--resume continues the run in --out and --overwrite deletes it: pick one")
    if out is None or getattr(args, "resume", False):
        return
    earlier = earlier_checkpoint_dirs(out)
    if not earlier:
        return
    if getattr(args, "overwrite", False):
        _REPLACED_CHECKPOINTS[os.path.abspath(out)] = earlier
        return
    epochs = [epoch for d in earlier for epoch, _ in checkpoint.list_checkpoints(d)]
    raise ValueError(
        f"--out {out!r} holds an earlier run's checkpoints (up to epoch {max(epochs)}, in "
        f"{os.path.relpath(earlier[0], out)}/): add --resume to continue that run, --overwrite "
        "to delete them and start afresh, or choose another --out"
    )


def earlier_checkpoint_dirs(out: str | os.PathLike) -> list[str]:
    """The checkpoint folders under a run folder that hold checkpoints, sorted.

    Args:
        out: the run folder (``--out``); it may not exist.

    Returns:
        Every ``checkpoints`` folder under ``out`` (its models' and sub-models') holding at
        least one checkpoint.
    """
    found = []
    for directory, subdirs, _ in os.walk(out):
        subdirs.sort()
        if os.path.basename(directory) == runs.CHECKPOINTS and checkpoint.list_checkpoints(
            directory
        ):
            found.append(directory)
    return found


@dataclasses.dataclass(frozen=True)
class RunFlags:
    """The run scaffold's flags, typed: what every training command shares
    (:func:`add_run_arguments`), read once from the parsed flags by :meth:`from_flags`.

    Attributes:
        checkpoint_every: checkpoint every this many epochs besides the end; ``None``: 5% of
            the run's epochs.
        resume: continue each model from the last checkpoint in its folder.
        override: the settings a resume may change (``--override``).
        tensorboard: also write TensorBoard event files.
        lr_schedule: the learning rate over the run (:data:`~latent_jax.train.config.
            LR_SCHEDULES`).
        clip_norm: the gradient clipping norm, or ``None``.
    """

    checkpoint_every: int | None = None
    resume: bool = False
    override: tuple[str, ...] = ()
    tensorboard: bool = False
    lr_schedule: str = "constant"
    clip_norm: float | None = None

    @classmethod
    def from_flags(cls, args: RunArguments) -> RunFlags:
        """The run-scaffold flags of a training command's arguments."""
        values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)}
        values["override"] = tuple(values["override"] or ())
        return cls(**values)


def checkpoint_options(flags: RunFlags, run_dir: str, epochs: int) -> dict[str, Any]:
    """The :class:`~latent_jax.train.TrainConfig` fields of a run folder's checkpoints.

    Args:
        flags: the run's flags (``--checkpoint-every``).
        run_dir: the run folder of the model; its checkpoints go to ``run_dir/checkpoints``.
        epochs: the run's epochs (the default interval is 5% of them).

    Returns:
        ``{"checkpoint_dir": ..., "checkpoint_every": ...}``.
    """
    every = flags.checkpoint_every
    if every is None:
        every = max(1, epochs // _DEFAULT_CHECKPOINTS_PER_RUN)
    return {"checkpoint_dir": os.path.join(run_dir, runs.CHECKPOINTS), "checkpoint_every": every}


def resume_options(flags: RunFlags, checkpoint_dir: str) -> dict[str, Any]:
    """The arguments of :func:`~latent_jax.train.fit` that ``--resume`` and ``--override`` set.

    How a training command adopts checkpoints and resuming: :func:`add_run_arguments`
    registers the flags, :func:`check_run_arguments` checks them; the command builds its
    ``TrainConfig(..., **checkpoint_options(flags, run_dir, epochs))``, calls
    ``fit(..., **resume_options(flags, config.checkpoint_dir))`` (one checkpoint folder per
    trained model) and, after training, :func:`record_resumptions`.

    Args:
        flags: the run's flags (``--resume``, ``--override``).
        checkpoint_dir: the model's checkpoint folder.

    Returns:
        ``{"resume": checkpoint_dir or None, "allow_changes": (...)}``: ``resume`` is set with
        ``--resume`` when the folder holds a checkpoint (else the run starts afresh).
    """
    if not flags.resume or checkpoint.latest_checkpoint(checkpoint_dir) is None:
        if flags.resume:
            logger.info("--resume: no checkpoint in %s yet, starting from epoch 0", checkpoint_dir)
        return {"resume": None, "allow_changes": ()}
    return {"resume": checkpoint_dir, "allow_changes": flags.override}


def detector_fit_options(
    flags: RunFlags, run_dir: str, epochs: int, every: int | None = None
) -> dict[str, Any]:
    """:meth:`latent_jax.AnomalyDetector.fit`'s checkpoint and resume arguments for a
    detector trained in ``run_dir``.

    Args:
        flags: the run's flags (``--checkpoint-every``, ``--resume``, ``--override``).
        run_dir: the detector's run folder.
        epochs: the detector's training epochs.
        every: replaces the interval of ``--checkpoint-every`` (and its default).

    Returns:
        ``checkpoint_dir``, ``checkpoint_every``, ``resume`` (a bool) and
        ``allow_changes``.
    """
    options = checkpoint_options(flags, run_dir, epochs)
    if every is not None:
        options["checkpoint_every"] = every
    resume = resume_options(flags, options["checkpoint_dir"])
    return {
        **options,
        "resume": resume["resume"] is not None,
        "allow_changes": resume["allow_changes"],
    }


@contextlib.contextmanager
def training_in(
    run_dir: str, flags: RunFlags, checkpoint_dir: str
) -> Iterator[tuple[list[Any], dict[str, Any]]]:
    """One model trained in its run folder: its callbacks and resume options, then its record.

    Use as ``with training_in(out, flags, config.checkpoint_dir) as (callbacks, resume):
    state, history = fit(..., callbacks=callbacks, **resume)``. On a clean exit the run's
    resumptions go into ``run_dir/config.json`` (:func:`record_resumptions`).

    Args:
        run_dir: the model's run folder (``history.csv``, ``config.json``).
        flags: the run's flags (``--tensorboard``, ``--resume``, ``--override``).
        checkpoint_dir: the model's checkpoint folder.

    Yields:
        ``(callbacks, resume)``: :func:`history_writers`' callbacks and
        :func:`resume_options`' keyword arguments of ``fit``.
    """
    resume = resume_options(flags, checkpoint_dir)
    with history_writers(run_dir, flags) as callbacks:
        yield callbacks, resume
    record_resumptions(run_dir, checkpoint_dir)


class Fitted(NamedTuple):
    """A model trained in its run folder (:func:`fit_in_folder`).

    Attributes:
        state: the trained :class:`~latent_jax.train.TrainState` (stacked for ``fit_many``).
        history: the run's :class:`~latent_jax.train.History`.
        wall_seconds: the training call's wall time, compilation included.
        train_seconds: the compiled epochs' time (the sum of ``history["epoch_time"]``).
    """

    state: Any
    history: Any
    wall_seconds: float
    train_seconds: float

    @property
    def compile_seconds(self) -> float:
        """The wall time not spent in epochs: compilation and set-up."""
        return max(self.wall_seconds - self.train_seconds, 0.0)


def fit_in_folder(
    run_dir: str,
    flags: RunFlags,
    trainer: Any,
    objective: Any,
    x_train: Any,
    x_test: Any,
    config: Any,
    keys: Any,
) -> Fitted:
    """Trains one model (or several runs, with ``fit_many``) in its run folder.

    The folder's history writers and the resume options of ``--resume``/``--override``
    (:func:`training_in`), the training call, and on success the resumptions recorded in
    ``config.json``.

    Args:
        run_dir: the model's run folder (``history.csv``, ``config.json``).
        flags: the run's flags.
        trainer: :func:`latent_jax.train.fit` or :func:`latent_jax.train.fit_many`.
        objective: the objective.
        x_train: the training rows.
        x_test: the test rows, or ``None``.
        config: the :class:`~latent_jax.train.TrainConfig` (its ``checkpoint_dir`` is the
            model's checkpoint folder).
        keys: the trainer's key (``fit``) or keys (``fit_many``).

    Returns:
        The :class:`Fitted` state, history and timings.
    """
    start = time.perf_counter()
    with training_in(run_dir, flags, config.checkpoint_dir) as (callbacks, resume):
        state, history = trainer(
            objective, x_train, x_test, config, keys, callbacks=callbacks, **resume
        )
    wall = time.perf_counter() - start
    return Fitted(state, history, wall, float(np.sum(history["epoch_time"])))


def record_resumptions(run_dir: str, checkpoint_dir: str) -> None:
    """Adds the run's resumptions (epoch, changed settings) to ``run_dir/config.json``.

    Reads them from the last checkpoint's metadata (``resumed``); a run that was never
    resumed leaves ``config.json`` as it is.
    """
    if checkpoint.latest_checkpoint(checkpoint_dir) is None:
        return
    resumed = checkpoint.read_metadata(checkpoint_dir).get("resumed") or []
    if not resumed:
        return
    folder = _run_folder(run_dir)
    if folder is not None and folder.pending_config is not None:
        folder.resumed = resumed  # written with the pending config.json
        return
    path = os.path.join(run_dir, runs.CONFIG)
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
    config["resumed"] = resumed
    write_json(path, config)


# The options every VAE objective shares: typed fields of a command's arguments. Every other
# option of an objective reaches the command in one field, ``objective_options``.
SHARED_OBJECTIVE_OPTIONS = ("likelihood", "binarize")
OBJECTIVE_OPTIONS_FIELD = "objective_options"


def add_objective_arguments(
    group: Any,
    trains: str | tuple[str, ...] = "vae",
    default: str | None = "elbo",
    own: tuple[str, ...] = (),
) -> None:
    """Registers ``--objective`` (the registered objectives that train ``trains`` models,
    :func:`latent_jax.objectives.available`) and every option of theirs as a flag.

    An option several objectives share by name (``--gamma``) is one flag. The shared VAE
    options (:data:`SHARED_OBJECTIVE_OPTIONS`) default to the registry's value; every other
    option parses to ``None`` when not given, so that each objective takes its own default
    (:func:`check_objective_arguments` fills them), and the command's arguments receive those
    flags in one field, ``objective_options`` (:meth:`CommandArguments.from_mapping`): an
    objective added to the registry brings its flags to every command with no change there.

    Args:
        group: the parser or argument group.
        trains: ``"vae"`` or ``"autoencoder"`` (or a tuple of kinds: their objectives).
        default: the objective without the flag (``None``: the command decides).
        own: options the command registers itself, with defaults of its own (the ``vae``
            command's ``likelihood``, which its presets set).
    """
    from latent_jax.objectives import available, objective_entry

    names = available(trains)
    described = "; ".join(f"{name}: {objective_entry(name).help}" for name in names)
    group.add_argument("--objective", choices=names, default=default, help=described)
    for option, users in objective_options(trains).items():
        if option.name in own:
            continue
        shared = option.name in SHARED_OBJECTIVE_OPTIONS
        help_text = f"{option.help} (--objective {', '.join(users)})"
        if not shared:
            # Each objective's own meaning and default of an option it shares by name.
            help_text = "; ".join(
                f"{objective}: {declared.help} (default {_shown(declared.default)})"
                for objective, declared in _declarations(option.name, trains)
            )
        if option.type is bool:
            group.add_argument(
                option.flag, action="store_true", default=False if shared else None, help=help_text
            )
        else:
            group.add_argument(
                option.flag,
                type=option.type,
                default=option.default if shared else None,
                choices=option.choices,
                help=help_text,
            )


def _shown(value: Any) -> str:
    return "the objective's" if value is None else str(value)


def objective_options(trains: str | tuple[str, ...] | None = None) -> dict[Any, list[str]]:
    """Every option of the objectives that train ``trains`` models (every objective's for
    ``None``), with the objectives that take it (an option is shared by name)."""
    from latent_jax.objectives import available, objective_entry

    found: dict[str, Any] = {}
    users: dict[str, list[str]] = {}
    for name in available(trains):
        for option in objective_entry(name).options:
            found.setdefault(option.name, option)
            users.setdefault(option.name, []).append(name)
    return {found[key]: users[key] for key in found}


def _declarations(name: str, trains: str | tuple[str, ...] | None = None) -> list[tuple[str, Any]]:
    """Every objective that takes the option ``name``, with its declaration of it (help and
    default may differ)."""
    from latent_jax.objectives import available, objective_entry

    return [
        (objective, option)
        for objective in available(trains)
        for option in objective_entry(objective).options
        if option.name == name
    ]


def given_objective_options(values: Mapping[str, Any]) -> dict[str, Any]:
    """The objective options among parsed flags: every registered option but the shared ones
    whose value is not ``None`` (given on the command line or by ``--config``)."""
    names = {o.name for o in objective_options()} - set(SHARED_OBJECTIVE_OPTIONS)
    return {k: v for k, v in values.items() if k in names and v is not None}


def check_objective_arguments(
    args: CommandArguments, trains: str | tuple[str, ...] = "vae"
) -> CommandArguments:
    """The arguments with the chosen objective's options complete; refuses an option of
    another objective.

    ``args.objective_options`` holds the options given; the result holds every option of
    ``--objective``, its own default where none was given, so that ``config.json`` records
    them all. An option of another objective is refused unless it carries that objective's
    default (as a run's ``config.json`` written before options were per objective does).

    Returns:
        ``args`` with ``objective_options`` complete.

    Raises:
        ValueError: naming the flag and the objectives that take it.
    """
    from latent_jax.objectives import objective_entry

    entry = objective_entry(args.objective)
    taken = {option.name: option for option in entry.options}
    users = {o.name: u for o, u in objective_options(trains).items()}
    shared = {name: getattr(args, name) for name in SHARED_OBJECTIVE_OPTIONS if hasattr(args, name)}
    given = dict(getattr(args, OBJECTIVE_OPTIONS_FIELD, {}))
    for name, value in [*given.items(), *shared.items()]:
        if name in taken or name not in users:
            continue
        defaults = [o.default for _, o in _declarations(name, trains)]
        shared_default = name in SHARED_OBJECTIVE_OPTIONS and value == defaults[0]
        if shared_default or (name not in SHARED_OBJECTIVE_OPTIONS and value in defaults):
            continue
        flag = "--" + name.replace("_", "-")
        shown = flag if isinstance(value, bool) else f"{flag} {value}"
        raise ValueError(
            f"{shown} is an option of --objective {' or '.join(users[name])}, not of "
            f"--objective {args.objective}"
        )
    complete = {
        name: given.get(name, option.default)
        for name, option in taken.items()
        if name not in SHARED_OBJECTIVE_OPTIONS
    }
    return args.replace(**{OBJECTIVE_OPTIONS_FIELD: complete})


def objective_from_flags(args: CommandArguments, model: Any, **supplied: Any) -> Any:
    """The objective ``--objective`` names, built with its options' flags.

    Args:
        args: the flags, checked by :func:`check_objective_arguments`.
        model: the model it trains.
        **supplied: what the command supplies itself (the ``vae`` command's ``beta_schedule``
            and ``beta_unit``, the run's ``epochs``); each is passed only to an objective
            that takes it.

    Returns:
        The :class:`~latent_jax.objectives.Objective`.
    """
    from latent_jax.objectives import build_objective, objective_entry

    entry = objective_entry(args.objective)
    options = dict(getattr(args, OBJECTIVE_OPTIONS_FIELD, {}))
    options.update({n: getattr(args, n) for n in SHARED_OBJECTIVE_OPTIONS if entry.accepts(n)})
    options.update({k: v for k, v in supplied.items() if entry.accepts(k)})
    return build_objective(args.objective, model, **options)


# Each β-schedule flag and the field of :class:`latent_jax.schedules.BetaSchedule` it sets.
BETA_FLAGS: dict[str, str] = {
    "beta_schedule": "name",
    "beta_unit": "unit",
    "beta_max": "beta_max",
    "beta_start": "start",
    "beta_warmup": "warmup",
    "beta_tau": "tau",
    "beta_cycles": "cycles",
    "beta_ratio": "ratio",
    "beta_ramp": "ramp",
    "beta_total": "total",
}


def number(text: str) -> float:
    """A float flag that may be written as a fraction, like the tutorial's ``1/30``."""
    try:
        return float(fractions.Fraction(text.strip()))
    except (ValueError, ZeroDivisionError):
        message = f"expected a number such as 0.5 or 1/30, got {text!r}"
        raise argparse.ArgumentTypeError(message) from None


def default_note(value: Any) -> str:
    """The help text's note on a flag's default."""
    return f" (default: {value:.6g})" if isinstance(value, float) else f" (default: {value})"


def add_beta_schedule_arguments(
    group: Any, defaults: Mapping[str, Any], *, resolved_later: bool = False
) -> None:
    """Registers the β-schedule flags (:data:`BETA_FLAGS`).

    Args:
        group: the parser or argument group.
        defaults: each flag's default, by its ``dest`` (shown in the help).
        resolved_later: the flags parse to ``None`` when not given, for a command whose
            presets fill them (the ``vae`` command); else to ``defaults``.
    """

    def add(flag: str, help_text: str, **kwargs: Any) -> None:
        value = defaults[flag[2:].replace("-", "_")]
        note = " (default: the whole run)" if value is None else default_note(value)
        default = None if resolved_later else value
        group.add_argument(flag, default=default, help=help_text + note, **kwargs)

    add(
        "--beta-schedule",
        "constant: beta-max; linear: beta-start to beta-max over beta-warmup; monotonic: "
        "beta-max (1 - exp(-t / beta-tau)); cyclical: beta-cycles ramps from beta-start to "
        "beta-max over beta-total",
        choices=schedules.SCHEDULES,
    )
    add("--beta-unit", "what t counts", choices=schedules.UNITS)
    add("--beta-max", "the final beta", type=number)
    add("--beta-tau", "monotonic time constant", type=number)
    add("--beta-start", "linear/cyclical start", type=number)
    add("--beta-warmup", "linear ramp length", type=int)
    add("--beta-cycles", "cyclical cycles", type=int)
    add("--beta-ratio", "cyclical ramp fraction", type=number)
    add("--beta-total", "cyclical span in units of t", type=int)
    add("--beta-ramp", "cyclical ramp shape", choices=schedules.RAMPS)


def beta_schedule_from_flags(args: CommandArguments) -> schedules.BetaSchedule:
    """The :class:`~latent_jax.schedules.BetaSchedule` the β flags describe.

    Raises:
        ValueError: for an unknown schedule name, naming the flag.
    """
    if args.beta_schedule not in schedules.SCHEDULES:
        raise ValueError(
            f"--beta-schedule must be one of {schedules.SCHEDULES}, got {args.beta_schedule!r}"
        )
    require_at_least(args, 1, "beta_warmup", "beta_cycles")
    fields = {field: getattr(args, flag) for flag, field in BETA_FLAGS.items()}
    return schedules.BetaSchedule(**fields)


def build_beta_schedule(
    spec: schedules.BetaSchedule, *, epochs: int, steps_per_epoch: int
) -> schedules.Schedule:
    """``spec.build(...)`` with its errors naming the ``--beta-schedule`` flag.

    Raises:
        ValueError: ``--beta-schedule NAME: ...`` for invalid parameters.
    """
    try:
        return spec.build(epochs=epochs, steps_per_epoch=steps_per_epoch)
    except (TypeError, ValueError) as error:
        raise ValueError(f"--beta-schedule {spec.name}: {error}") from error


# The image commands' data flags: the fields of :class:`latent_jax.data.images.ImageDataConfig`,
# kept under config.json's "data".
IMAGE_DATA_FLAGS = ("data", "data_dir", "download", "size", "rgb", "normalization", "test_size")


def load_image_data(values: Mapping[str, Any], seed: int) -> data.Dataset:
    """Loads the images that an image command's data flags (or a run's ``data`` record) name.

    Args:
        values: the flags as a mapping (``vars(args)``) or config.json's ``data``.
        seed: the seed of the split.

    Raises:
        FileNotFoundError: for a missing folder or file; for the AT&T faces, saying how to get
            them and how to run on the bundled faces instead.
        ValueError: for an unknown source or unreadable file.
    """
    from latent_jax.data import images as image_data

    config = image_data.ImageDataConfig.from_mapping(values)
    try:
        return config.load(seed)
    except FileNotFoundError as error:
        if config.data != "att":
            raise
        raise FileNotFoundError(
            f"{error} To run now on the bundled faces: --data lfw-faces (or, on latent-jax "
            "vae, --preset cpu-demo)."
        ) from error


def add_compile_cache_argument(parser: Any) -> None:
    """Registers ``--no-compile-cache`` (every subcommand has it)."""
    parser.add_argument(
        "--no-compile-cache",
        action="store_true",
        help="do not keep compiled programs on disk for later runs "
        f"(also: {persistent_cache.DISABLE_VARIABLE}=1; the folder: "
        f"{persistent_cache.DIR_VARIABLE})",
    )


def enable_compile_cache(args: CommandArguments) -> str | None:
    """Turns on JAX's persistent compilation cache unless the flags or environment say no.

    Called by the command line before a subcommand runs (before anything compiles); the
    library itself never turns the cache on.

    Returns:
        The cache folder in use, or ``None``.
    """
    if getattr(args, "no_compile_cache", False) or persistent_cache.disabled_by_environment():
        return None
    return persistent_cache.enable()


def check_run_arguments(args: CommandArguments) -> None:
    """Validates the shared training flags (before any output folder exists).

    Raises:
        ValueError: naming the flag.
    """
    if getattr(args, "out", None) is not None:
        check_output_path(args.out)
    check_resume_arguments(args)
    clip = getattr(args, "clip_norm", None)
    if clip is not None and not (math.isfinite(clip) and clip > 0):
        raise ValueError(f"--clip-norm must be > 0, got {clip}")
    if getattr(args, "tensorboard", False):
        try:
            import tensorboardX  # noqa: F401
        except ImportError:
            raise ValueError(
                "--tensorboard needs the tensorboardX package: pip install -e '.[tensorboard]'"
            ) from None
    tracker = getattr(args, "tracker", None)
    if tracker is not None:
        module = {"mlflow": "mlflow", "wandb": "wandb"}[tracker]
        if importlib.util.find_spec(module) is None:
            raise ValueError(
                f"--tracker {tracker} needs the {module} package: pip install -e '.[{tracker}]'"
            )


def train_options(flags: RunFlags) -> dict[str, Any]:
    """The :class:`~latent_jax.train.TrainConfig` fields the shared flags set."""
    return {"lr_schedule": flags.lr_schedule, "clip_norm": flags.clip_norm}


@contextlib.contextmanager
def history_writers(run_dir: str, flags: RunFlags) -> Iterator[list[Any]]:
    """The per-epoch callbacks of a run folder's model: ``history.csv``, TensorBoard events
    and the command's experiment tracker (:mod:`latent_jax.experiments.tracking`).

    Args:
        run_dir: the run folder (``history.csv`` and ``tensorboard/`` go in it).
        flags: the run's flags (``--tensorboard``).

    Yields:
        The callbacks for :func:`~latent_jax.train.fit`; the TensorBoard writer is closed on
        exit.
    """
    from latent_jax.experiments import tracking
    from latent_jax.train.callbacks import HistoryCSV, TensorBoardWriter

    callbacks: list[Any] = [HistoryCSV(os.path.join(run_dir, runs.HISTORY))]
    tracker = tracking.epoch_callback(run_dir)
    if tracker is not None:
        callbacks.append(tracker)
    writer = None
    if flags.tensorboard:
        writer = TensorBoardWriter(os.path.join(run_dir, TENSORBOARD_DIR))
        callbacks.append(writer)
    try:
        yield callbacks
    finally:
        if writer is not None:
            writer.close()


def write_run_config(
    run_dir: str,
    args: CommandArguments,
    *,
    command: str,
    data_flags: tuple[str, ...],
    model_flags: tuple[str, ...],
    training: Any,
    training_flags: Mapping[str, str] = TRAINING_FLAGS,
    **extra: Any,
) -> str:
    """Writes ``run_dir/config.json`` (:func:`latent_jax.runs.write_config`) from the flags.

    Every flag lands in exactly one place, so that ``--config`` reads the file back
    (:func:`config_defaults`): ``data`` and ``model`` hold the flags named in ``data_flags``
    and ``model_flags``, ``training`` the :class:`~latent_jax.train.TrainConfig` (whose fields
    in ``training_flags`` stand for those flags), ``seed`` the seed, and ``settings`` every
    other flag of the command. The output folder and ``--config`` itself are not recorded.

    Args:
        run_dir: the run folder.
        args: the (resolved) flags.
        command: the subcommand.
        data_flags: flag names (dests) about the data.
        model_flags: flag names about the model.
        training: the TrainConfig of the folder's model.
        training_flags: TrainConfig field -> flag name, for the flags the training section
            holds.
        **extra: more layout keys (``run``: the name of a sub-folder's model).

    Returns:
        The path written.
    """
    flags = args.values()
    flags.update(flags.pop(OBJECTIVE_OPTIONS_FIELD, None) or {})  # each option a flag again
    values = {k: _to_json(v) for k, v in flags.items() if not callable(v)}
    values = {k: v for k, v in values.items() if k not in _NOT_RECORDED}
    taken = {*data_flags, *model_flags, *training_flags.values(), "seed"}
    settings = {k: v for k, v in values.items() if k not in taken}
    config = {
        "command": command,
        "data": {k: values[k] for k in data_flags},
        "model": {k: values[k] for k in model_flags},
        "training": training,
        "seed": values["seed"],
        "settings": settings,
        **extra,
    }
    folder = _run_folder(run_dir)
    if folder is not None and getattr(args, "resume", False) and folder.checkpoints_before:
        # A resumed run's config.json keeps describing its checkpoints until the resume is
        # accepted: it is written when the command ends with new checkpoints.
        folder.pending_config = config
        return os.path.join(run_dir, runs.CONFIG)
    return runs.write_config(run_dir, **config)


def _write_config_now(run_dir: str, folder: _RunFolder) -> None:
    """Writes a resumed run's pending ``config.json``, with its resumptions."""
    records = folder.resumed
    checkpoints = os.path.join(run_dir, runs.CHECKPOINTS)
    if records is None and checkpoint.latest_checkpoint(checkpoints) is not None:
        records = checkpoint.read_metadata(checkpoints).get("resumed")  # a failed resume
    resumed = {"resumed": records} if records else {}
    runs.write_config(run_dir, **folder.pending_config, **resumed)
    folder.pending_config = None


def write_normalizer(run_dir: str, normalizer: Any) -> None:
    """Writes ``run_dir/normalizer.json`` when the data were normalized (``normalizer``)."""
    if normalizer is not None:
        write_json(os.path.join(run_dir, runs.NORMALIZER), normalizer.to_dict())


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """A config file as a dict: TOML for ``.toml`` files, JSON otherwise.

    Raises:
        FileNotFoundError: for a missing file.
        ValueError: for a file that does not parse or does not hold a table/object (each
            naming the file).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--config {path}: no such file")
    try:
        if path.lower().endswith(".toml"):
            with open(path, "rb") as handle:
                value = tomllib.load(handle)
        else:
            with open(path, encoding="utf-8") as handle:
                value = json.load(handle)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as err:
        kind = "TOML" if path.lower().endswith(".toml") else "JSON"
        raise ValueError(f"--config {path} is not valid {kind}: {err}") from err
    except OSError as err:
        raise ValueError(f"--config {path} cannot be read: {err.strerror or err}") from err
    if not isinstance(value, dict):
        raise ValueError(f"--config {path} must hold an object of settings, got {type(value)}")
    return value


def config_defaults(
    source: str | os.PathLike | Mapping[str, Any],
    parser: argparse.ArgumentParser,
    command: str,
    training_flags: Mapping[str, str] = TRAINING_FLAGS,
) -> dict[str, Any]:
    """The flag values a config file sets, parsed as the command line would parse them.

    The file is a run's ``config.json`` (:func:`write_run_config`'s layout: ``data``,
    ``model`` and ``settings`` hold flags by name, ``training`` a TrainConfig whose fields
    ``training_flags`` name flags, ``seed`` the seed) or a hand-written JSON/TOML file with
    the same sections or flags at the top level (``latent_dim = 3`` or ``latent-dim = 3``; a
    top-level ``data`` or ``model`` that is not a table is the flag of that name). Lists
    stand for comma-separated values (``hidden_dims = [30, 10]``).

    Args:
        source: the file, or its contents.
        parser: the subcommand's parser (its flags, types and choices).
        command: the subcommand; a file of another command is refused.
        training_flags: TrainConfig field -> flag name.

    Returns:
        Flag name (dest) -> value, for ``parser.set_defaults``.

    Raises:
        FileNotFoundError: for a missing file.
        ValueError: for an unknown setting, a value the flag does not take, or a config of
            another command, naming the file and the setting.
    """
    if isinstance(source, Mapping):
        where, raw = "the config", dict(source)
    else:
        where, raw = f"--config {os.fspath(source)}", read_config_file(source)
    if raw.get("command") not in (None, command):
        raise ValueError(
            f"{where} is the config of 'latent-jax {raw['command']}', not of 'latent-jax {command}'"
        )
    actions = {
        action.dest: action
        for action in parser._actions
        if action.option_strings and action.dest not in (*_NOT_RECORDED, "help")
    }
    found: dict[str, tuple[str, Any]] = {}

    def take(name: str, value: Any, label: str) -> None:
        dest = name.replace("-", "_")
        if dest not in actions:
            raise ValueError(f"{where}: {label} is not a flag of 'latent-jax {command}'")
        found[dest] = (label, value)

    for section in ("data", "model", "settings"):
        values = raw.get(section)
        if values is None:
            continue
        if isinstance(values, Mapping):
            for name, value in values.items():
                take(name, value, f"{section}.{name}")
        elif section in actions:  # the flag of that name (--data, train's --model)
            take(section, values, section)
        else:
            raise ValueError(f"{where}: {section} must be a table of flags, got {values!r}")
    training = raw.get("training") or {}
    if not isinstance(training, Mapping):
        raise ValueError(f"{where}: training must be a table of TrainConfig fields")
    _training_flags(training, training_flags, where, take)
    if "seed" in raw:
        take("seed", raw["seed"], "seed")
    for name, value in raw.items():
        if name not in _LAYOUT_KEYS:
            take(name, value, name)
    return {
        dest: _flag_value(actions[dest], value, where, label)
        for dest, (label, value) in found.items()
    }


def _training_flags(
    training: Mapping[str, Any], training_flags: Mapping[str, str], where: str, take: Any
) -> None:
    """Takes the training section's fields that stand for flags; checks the others."""
    from latent_jax.train import TrainConfig

    defaults = TrainConfig()
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    for name, value in training.items():
        if name not in known:
            raise ValueError(f"{where}: training.{name} is not a TrainConfig field")
        if name in training_flags:
            take(training_flags[name], value, f"training.{name}")
        elif name in _FIXED_TRAINING_FIELDS and value != getattr(defaults, name):
            raise ValueError(
                f"{where}: training.{name}={value!r} has no flag in this command, which trains "
                f"with {name}={getattr(defaults, name)!r}"
            )


def _one_value(action: argparse.Action) -> argparse.Action:
    """``action`` taking one value (the elements of a flag of several)."""
    single = copy.copy(action)
    single.nargs = None
    return single


def _flag_value(action: argparse.Action, value: Any, where: str, label: str) -> Any:
    """A config file's ``value`` as the flag of ``action`` would parse it."""
    flag = action.option_strings[-1]
    if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
        if not isinstance(value, bool):
            raise ValueError(f"{where}: {label} ({flag}) must be true or false, got {value!r}")
        return value
    if value is None:
        return None
    if isinstance(value, list | tuple) and action.nargs in ("+", "*"):
        # A flag of several values (--rows A B): each element as the flag parses it.
        return [_flag_value(_one_value(action), v, where, label) for v in value]
    if isinstance(value, list | tuple):
        text = ",".join(str(v) for v in value)
    elif isinstance(value, bool):
        raise ValueError(f"{where}: {label} ({flag}) does not take {value!r}")
    else:
        text = str(value)
    convert = action.type if callable(action.type) else str
    try:
        parsed = convert(text)
    except (argparse.ArgumentTypeError, TypeError, ValueError) as err:
        raise ValueError(f"{where}: {label} ({flag}) does not take {value!r}: {err}") from None
    if action.choices is not None and parsed not in action.choices:
        raise ValueError(
            f"{where}: {label} ({flag}) must be one of {list(action.choices)}, got {value!r}"
        )
    return parsed
