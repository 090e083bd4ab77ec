"""The experiment tracker of one command (``--tracker mlflow|wandb``).

:func:`command_tracker` surrounds a command's run (``latent_jax.cli`` enters it): nothing is
created until the command trains, so a command refused for a bad flag leaves no tracker run
behind. The first epoch opens one run (:mod:`latent_jax.train.trackers`) named after the
command and its output folder, with the command's flags as its parameters; every model the
command trains logs its epochs into it (a further model's metrics under its sub-folder's
name, ``dae-0.5/train_loss``); when the command ends, the output folder's ``metrics.json``,
``config.json``, ``history.csv`` and figures are logged and the run is closed, as failed if
the command raised.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
from collections.abc import Callable, Iterator
from typing import Any

from latent_jax.train import trackers

__all__ = ["TrackerSession", "command_tracker", "epoch_callback"]

# The flags a tracker records as its run's parameters: all but where things go.
_NOT_PARAMS = ("out", "config", "tracker", "tracker_uri", "tracker_project", "verbose")


@dataclasses.dataclass
class TrackerSession:
    """The tracker of the running command, opened by its first epoch.

    Attributes:
        open_logger: builds the logger (an :class:`~latent_jax.train.trackers.MLflowLogger`
            or :class:`~latent_jax.train.trackers.WandbLogger`).
        out: the command's output folder.
        logger: the logger once opened, else None.
    """

    open_logger: Callable[[], Any]
    out: str
    logger: Any = None

    def log_epoch(self, run_dir: str, history: Any) -> None:
        """Logs the last epoch of a model trained in ``run_dir`` (opening the run first)."""
        if self.logger is None:
            self.logger = self.open_logger()
        relative = os.path.relpath(os.path.abspath(run_dir), self.out)
        prefix = "" if relative == "." else relative.replace(os.sep, "/") + "/"
        epoch, metrics = trackers.epoch_metrics(history, prefix)
        self.logger.log_metrics(metrics, epoch)

    def close(self, failed: bool) -> None:
        """Logs the output folder's files and ends the run (when one was opened)."""
        if self.logger is None:
            return
        try:
            if os.path.isdir(self.out):
                self.logger.log_artifacts(self.out)
        finally:
            self.logger.close(failed=failed)


_SESSION: contextvars.ContextVar[TrackerSession | None] = contextvars.ContextVar(
    "latent_jax_tracker", default=None
)


def _params(arguments: Any, command: str) -> dict[str, Any]:
    values = {"command": command}
    for name, value in arguments.values().items():
        if name not in _NOT_PARAMS and not callable(value):
            values[name] = value if isinstance(value, dict) else str(value)
    return values


def _opener(arguments: Any, command: str) -> Callable[[], Any]:
    name = f"{command} {os.path.basename(os.path.normpath(arguments.out))}"
    params = _params(arguments, command)
    if arguments.tracker == "mlflow":
        from latent_jax.experiments.common import DEFAULT_MLFLOW_URI

        uri = arguments.tracker_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_MLFLOW_URI
        return lambda: trackers.MLflowLogger(
            uri, experiment=arguments.tracker_project, run_name=name, params=params
        )
    return lambda: trackers.WandbLogger(
        arguments.tracker_project, run_name=name, config=params, directory=arguments.tracker_uri
    )


@contextlib.contextmanager
def command_tracker(arguments: Any, command: str) -> Iterator[TrackerSession | None]:
    """The tracker session of a command run with ``--tracker`` (None without it).

    Args:
        arguments: the command's typed arguments (``tracker``, ``tracker_uri``,
            ``tracker_project``, ``out``).
        command: the subcommand's name.

    Yields:
        The session, or None when the command has no ``--tracker``.
    """
    if getattr(arguments, "tracker", None) is None:
        yield None
        return
    session = TrackerSession(_opener(arguments, command), os.path.abspath(arguments.out))
    token = _SESSION.set(session)
    failed = True
    try:
        yield session
        failed = False
    finally:
        _SESSION.reset(token)
        session.close(failed)


def epoch_callback(run_dir: str) -> Callable[[Any, Any], None] | None:
    """The training callback that logs a model of ``run_dir`` to the command's tracker.

    Returns:
        ``callback(state, history)``, or None when no tracker is running.
    """
    session = _SESSION.get()
    if session is None:
        return None

    def log(state: Any, history: Any) -> None:
        del state
        session.log_epoch(run_dir, history)

    return log
