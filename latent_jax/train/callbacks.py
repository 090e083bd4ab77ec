"""Writers of the per-epoch history: a CSV file kept as training goes, and TensorBoard events.

Both are callbacks for :func:`~latent_jax.train.fit` (``callbacks=[...]``), called once per
epoch, in order, with the history up to that epoch; they write that epoch's row and flush, so
a run that crashes keeps every epoch it finished. For :func:`~latent_jax.train.fit_many` a
metric of K runs becomes K columns (``train_loss[0]`` ... ``train_loss[K-1]``) or K
TensorBoard tags (``train_loss/run0`` ...).
"""

from __future__ import annotations

import csv
import io
import math
import os
from typing import Any

import numpy as np

from latent_jax.train.state import History

__all__ = ["HistoryCSV", "TensorBoardWriter", "epoch_row"]


def epoch_row(history: History, index: int = -1) -> dict[str, float]:
    """One epoch of ``history`` as flat ``{column: number}`` (runs as ``name[k]`` columns).

    Args:
        history: a :class:`~latent_jax.train.state.History`.
        index: which epoch (position in the history); the last by default.

    Returns:
        ``epoch`` (an int) and ``epoch_time`` first, then every metric of that epoch.
    """
    row: dict[str, float] = {}
    first = [name for name in ("epoch", "epoch_time") if name in history]
    for name in (*first, *(n for n in history if n not in first)):
        values = history[name]
        value = np.asarray(values)[..., index]
        if value.ndim == 0:
            row[name] = int(value) if name == "epoch" else float(value)
        else:
            row.update({f"{name}[{k}]": float(v) for k, v in enumerate(value)})
    return row


class HistoryCSV:
    """Writes ``history.csv``: a header, then one row per epoch, flushed as training goes.

    The first call rewrites the file with every epoch the history holds, so a run resumed
    from a checkpoint at epoch k starts the file again with the checkpoint's epochs 1..k
    (whatever rows a crash left after them are trained, and written, again): the file
    always holds one row per epoch of the run. Missing values (a run of :func:`fit_many`
    that stopped early) are empty cells.

    Args:
        path: the CSV file to write (its folder is created).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._columns: list[str] | None = None

    def __call__(self, state: Any, history: History) -> None:
        del state
        if self._columns is None:
            # The first call of a run writes every epoch it already has: a resumed run's
            # file starts with the checkpoint's epochs, whatever a crash left behind.
            self._columns = list(epoch_row(history))
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            rows = [epoch_row(history, i) for i in range(history.num_epochs)]
            self._write(rows, mode="w")
        else:
            self._write([epoch_row(history)], mode="a")

    def _write(self, rows: list[dict[str, float]], mode: str) -> None:
        text = io.StringIO()
        writer = csv.writer(text)
        if mode == "w":
            writer.writerow(self._columns)
        for row in rows:
            if list(row) != self._columns:
                raise ValueError(
                    f"{self.path}: the epoch's columns {list(row)} differ from the file's "
                    f"{self._columns}"
                )
            writer.writerow(["" if _missing(v) else v for v in row.values()])
        with open(self.path, mode, newline="", encoding="utf-8") as handle:
            handle.write(text.getvalue())
            handle.flush()
            os.fsync(handle.fileno())


def _missing(value: float) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


class TensorBoardWriter:
    """Writes every epoch's metrics as TensorBoard scalars (step = the 1-based epoch).

    Needs the optional ``tensorboardX`` package (``pip install latent-jax[tensorboard]``);
    the event files it writes are TensorBoard's own format. Call :meth:`close` at the end
    (the trainers' callers in :mod:`latent_jax.experiments` do), or use it as a context
    manager; each epoch is flushed as it is written.

    Args:
        logdir: the folder for the event files.

    Raises:
        ImportError: when ``tensorboardX`` is not installed, saying how to install it.
    """

    def __init__(self, logdir: str | os.PathLike):
        try:
            from tensorboardX import SummaryWriter
        except ImportError as err:
            raise ImportError(
                "TensorBoard output needs the tensorboardX package: "
                "pip install 'latent-jax[tensorboard]'"
            ) from err
        self.logdir = os.fspath(logdir)
        self._writer = SummaryWriter(logdir=self.logdir)

    def __call__(self, state: Any, history: History) -> None:
        del state
        row = epoch_row(history)
        epoch = int(row.pop("epoch"))
        for name, value in row.items():
            if not _missing(value):
                tag = name.replace("[", "/run").replace("]", "")
                self._writer.add_scalar(tag, value, global_step=epoch)
        self._writer.flush()

    def close(self) -> None:
        """Flushes and closes the event file."""
        self._writer.close()

    def __enter__(self) -> TensorBoardWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
