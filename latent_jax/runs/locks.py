"""One writer per folder: an advisory lock on a run folder or a checkpoint directory.

A writer holds ``fcntl.flock`` on the file :data:`LOCK_FILE` inside the folder, and writes its
process id there so that a second writer's error can name the holder. The kernel releases a
flock when its process ends, however it ends, so a lock can never be stale: a lock file left
behind by a killed process is simply locked again by the next writer. The file is removed
when the lock is released.

Locks are re-entrant within a process (the command line locks its output folder, and the
trainer it calls locks the checkpoint directory inside it, or the same folder): they exclude
other processes, not other callers in the same process. On systems without ``fcntl``
(Windows) no lock is taken.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"

# realpath of a locked folder -> [open lock file descriptor, how many holders in this process]
_HELD: dict[str, list[int]] = {}
_GUARD = threading.Lock()


class FolderInUseError(RuntimeError):
    """Another process holds the lock of the folder a writer asked for."""

    def __init__(self, folder: str, pid: int | None):
        self.folder = folder
        self.pid = pid
        holder = f"process {pid}" if pid is not None else "another process"
        super().__init__(
            f"{folder} is in use by {holder} (lock file {os.path.join(folder, LOCK_FILE)}): "
            "one run writes to a folder at a time; wait for it to end or choose another folder"
        )


def _holder(path: str) -> int | None:
    """The process id written in the lock file ``path``, or None if unreadable."""
    try:
        with open(path, encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def _acquire(folder: str) -> int:
    """Opens and flocks ``folder``'s lock file; returns its descriptor.

    A lock file that another releaser unlinked between our ``open`` and ``flock`` is not the
    folder's lock any more: the inode check catches it and we try again.
    """
    path = os.path.join(folder, LOCK_FILE)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise FolderInUseError(folder, _holder(path)) from None
            raise
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
            return fd
        os.close(fd)


def acquire(folder: str | os.PathLike) -> str:
    """Locks ``folder`` (which must exist) for this process; re-entrant.

    Args:
        folder: an existing folder.

    Returns:
        The folder's real path, the key of :func:`release`.

    Raises:
        FolderInUseError: if another process holds it, naming the folder and the holder's
            process id.
        OSError: if the lock file cannot be created (a read-only or non-writable folder).
    """
    key = os.path.realpath(os.fspath(folder))
    with _GUARD:
        if key in _HELD:
            _HELD[key][1] += 1
        elif fcntl is not None:
            _HELD[key] = [_acquire(os.fspath(folder)), 1]
    return key


def release(key: str) -> None:
    """Releases one hold of the lock :func:`acquire` returned; the last one unlocks."""
    with _GUARD:
        entry = _HELD.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] > 0:
            return
        del _HELD[key]
        fd = entry[0]
        # Unlink while still holding the lock: a writer waiting on the old file sees a
        # different inode after it gets the flock, and locks the new file instead.
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(key, LOCK_FILE))
        os.close(fd)


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[str]:
    """Holds the lock of ``folder`` (created if missing) while the block runs.

    Args:
        folder: the folder a run writes to.

    Yields:
        The folder's real path.

    Raises:
        FolderInUseError: if another process holds it.
        OSError: if the folder or its lock file cannot be created.
    """
    os.makedirs(os.fspath(folder), exist_ok=True)
    key = acquire(folder)
    try:
        yield key
    finally:
        release(key)
