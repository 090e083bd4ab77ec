"""Stopping a training run on SIGINT or SIGTERM without losing what it trained.

Inside :func:`stop_on_signals` (the command line runs every command in it), a first SIGINT
(Ctrl-C) or SIGTERM during training does not raise at once: the run finishes the compiled
call it is in (at most about half a second of epochs with the automatic chunking, one epoch
when streaming), writes a checkpoint where it has a checkpoint folder, and raises
:class:`Interrupted`, which names the checkpoint. A second signal raises
:class:`KeyboardInterrupt` at once. Outside training (loading data, drawing figures) a signal
raises :class:`Interrupted` at once, as Python raises ``KeyboardInterrupt``.

Without :func:`stop_on_signals` nothing changes: Ctrl-C in a notebook raises
``KeyboardInterrupt`` as usual.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator, Sequence
from typing import Any

logger = logging.getLogger("latent_jax.train")

__all__ = ["Interrupted", "stop_on_signals"]


class Interrupted(BaseException):
    """A run stopped by a signal (a ``BaseException``, like ``KeyboardInterrupt``).

    Attributes:
        signal: the signal's number (``signal.SIGINT``, ``signal.SIGTERM``).
        epoch: the epochs the run had completed when it stopped, or ``None`` outside
            training.
        checkpoint: the checkpoint written for it (or the run's last one), or ``None``.
    """

    def __init__(self, signum: int, epoch: int | None = None, checkpoint: str | None = None):
        self.signal = signum
        self.epoch = epoch
        self.checkpoint = checkpoint
        name = signal.Signals(signum).name
        where = f" after epoch {epoch}" if epoch is not None else ""
        saved = f": checkpoint {checkpoint}" if checkpoint else ""
        super().__init__(f"interrupted by {name}{where}{saved}")

    @property
    def exit_code(self) -> int:
        """The shell's code for a process ended by the signal: 128 + its number."""
        return 128 + int(self.signal)


class _State:
    """What the handlers share with the training loop (one per process)."""

    def __init__(self) -> None:
        self.installed = False
        self.training = 0  # nested training loops running now
        self.requested: int | None = None


_STATE = _State()


def _handle(signum: int, frame: Any) -> None:
    del frame
    if _STATE.training and _STATE.requested is None:
        _STATE.requested = signum
        logger.info(
            "%s: stopping after the current step and writing a checkpoint (again to stop now)",
            signal.Signals(signum).name,
        )
        return
    if _STATE.requested is not None:
        raise KeyboardInterrupt
    raise Interrupted(signum)


@contextlib.contextmanager
def stop_on_signals(
    signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM),
) -> Iterator[None]:
    """Within the block, a signal stops training at the next call boundary, checkpointed.

    Only in the main thread (Python delivers signals there); elsewhere a no-op.

    Args:
        signals: the signals to handle.
    """
    if threading.current_thread() is not threading.main_thread() or _STATE.installed:
        yield
        return
    previous = {signum: signal.signal(signum, _handle) for signum in signals}
    _STATE.installed, _STATE.requested = True, None
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _STATE.installed, _STATE.requested = False, None


@contextlib.contextmanager
def training() -> Iterator[None]:
    """Marks a training loop as running, so that a signal waits for its next call boundary."""
    _STATE.training += 1
    try:
        yield
    finally:
        _STATE.training -= 1


def requested() -> int | None:
    """The signal that asked the run to stop, or ``None``."""
    return _STATE.requested
