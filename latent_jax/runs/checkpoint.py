"""Checkpoints: pytrees of arrays written atomically, verified on load, never pickled.

A checkpoint is two files in a directory plus a pointer:

* ``checkpoint_<epoch>.<digest>.msgpack``, the payload: a nested dict of arrays serialized
  with ``flax.serialization.msgpack_serialize`` (data only: loading it runs no code);
* ``checkpoint_<epoch>.json``, the manifest: the payload's file name, byte length and
  SHA-256, the epoch and JSON metadata (for :func:`latent_jax.train.fit`, the config, the
  data shapes and the PRNG key's implementation), and the SHA-256 of all of these
  (``manifest_sha256``), so that the metadata is as verified as the payload;
* ``latest``, the name of the newest complete checkpoint's manifest.

Every file is written to a temporary file in the same directory, flushed and ``fsync``-ed,
then moved into place with ``os.replace`` (atomic on POSIX), and the directory is ``fsync``-ed.
The payload goes first, under a name that includes its digest so that it never overwrites the
payload an existing manifest points to, then the manifest, then ``latest``. A crash at any
point leaves ``latest`` on a complete, loadable checkpoint (or leaves no checkpoint at all),
plus at worst an orphaned temporary file that the next save removes.

Loading checks the manifest's own digest (a hand-edited epoch or metadata is refused), the
epoch in its file name, and the payload's length and SHA-256, and raises
:class:`CheckpointError`, naming the file, for a truncated, corrupted or edited checkpoint
instead of loading it. Manifests of the first format (``latent_jax.checkpoint/1``) carry no
digest of their own and load with only the payload verified. Older checkpoints beyond
``keep`` are removed after each save. A save that cannot be written (a full disk, a folder
that is not writable) raises :class:`CheckpointWriteError`, naming the folder and the bytes
the checkpoint needed, and leaves the previous checkpoint as it was.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import numpy as np
from flax import serialization

from latent_jax import validation

__all__ = [
    "FORMAT",
    "Checkpoint",
    "CheckpointError",
    "CheckpointWriteError",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "read_metadata",
    "save_checkpoint",
]

FORMAT = "latent_jax.checkpoint/2"
# The first format: manifests without a digest of their own (their payload is verified).
_FORMAT_1 = "latent_jax.checkpoint/1"
LATEST = "latest"
_MANIFEST = re.compile(r"^checkpoint_(\d+)\.json$")
_PAYLOAD = re.compile(r"^checkpoint_(\d+)\.[0-9a-f]+\.msgpack$")


class CheckpointError(ValueError):
    """A checkpoint that is missing, truncated, corrupted or not a checkpoint at all."""


class CheckpointWriteError(OSError):
    """A checkpoint that could not be written (full disk, permissions); the previous one is kept.

    Attributes:
        errno: the operating system's error number (``errno.ENOSPC`` for a full disk).
        strerror: the message, naming the folder, the bytes needed and the checkpoint kept.
        directory: the checkpoint directory.
        nbytes: the bytes the checkpoint needed (payload and manifest).
    """

    def __init__(self, code: int, message: str, directory: str, nbytes: int):
        super().__init__(code, message)
        self.directory = directory
        self.nbytes = nbytes

    def __str__(self) -> str:
        return self.strerror


class Checkpoint(NamedTuple):
    """A loaded checkpoint.

    Attributes:
        tree: the nested dict of NumPy arrays that was saved.
        metadata: the JSON metadata that was saved with it.
        epoch: the epoch it was saved at.
        path: the manifest's path.
    """

    tree: dict
    metadata: dict
    epoch: int
    path: str


def _fsync_dir(directory: str) -> None:
    # Makes the rename itself durable; some file systems do not allow opening a directory.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _default_mode() -> int:
    """The permissions ``open()`` gives a new file: 0o666 less the process's umask."""
    umask = os.umask(0)  # reading the umask means setting it; put it straight back
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically and durably, with the user's usual permissions.

    The bytes go to a temporary file beside ``path``, are flushed to disk, and the file is
    renamed over ``path``: a reader sees the old file or the new one, never a part. The file
    gets the permissions a plain ``open()`` would give it (``mkstemp`` makes it 0600).
    """
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _to_numpy(tree: Any) -> Any:
    def convert(leaf: Any) -> Any:
        if isinstance(leaf, jax.Array):
            if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
                raise TypeError(
                    "checkpoint trees cannot hold typed PRNG keys; store "
                    "jax.random.key_data(key) instead"
                )
            return np.asarray(jax.device_get(leaf))
        return leaf

    return jax.tree.map(convert, tree)


def _check_tree(tree: Any, where: str = "tree") -> None:
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            if not isinstance(key, str):
                raise TypeError(f"checkpoint {where} keys must be strings, got {key!r}")
            _check_tree(value, f"{where}[{key!r}]")
    elif not isinstance(tree, np.ndarray | np.generic | int | float | bool | str | bytes):
        raise TypeError(
            f"checkpoint {where} must be nested dicts of arrays, got {type(tree).__name__}; "
            "convert structures with flax.serialization.to_state_dict first"
        )


def list_checkpoints(directory: str | os.PathLike) -> list[tuple[int, str]]:
    """The manifests in ``directory``, as ``(epoch, path)`` sorted by epoch.

    Args:
        directory: a checkpoint directory (need not exist).

    Returns:
        A list, empty when there is none. Listed manifests are not verified.
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        match = _MANIFEST.match(name)
        if match:
            found.append((int(match.group(1)), os.path.join(directory, name)))
    return sorted(found)


def latest_checkpoint(directory: str | os.PathLike) -> str | None:
    """The manifest path of the newest complete checkpoint in ``directory``.

    Reads the ``latest`` pointer (written after the manifest it names); without one, the
    manifest of the highest epoch.

    Args:
        directory: a checkpoint directory.

    Returns:
        The manifest's path, or ``None`` when the directory holds no checkpoint.
    """
    directory = os.fspath(directory)
    pointer = os.path.join(directory, LATEST)
    if os.path.isfile(pointer):
        with open(pointer, encoding="utf-8") as handle:
            name = handle.read().strip()
        if not _MANIFEST.match(name):
            raise CheckpointError(f"checkpoint pointer {pointer} is corrupt: got {name[:80]!r}")
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            raise CheckpointError(f"checkpoint pointer {pointer} names {name}, which is missing")
        return path
    found = list_checkpoints(directory)
    return found[-1][1] if found else None


def _prune(directory: str, keep: int, current: str) -> None:
    manifests = list_checkpoints(directory)
    for _, path in manifests[:-keep]:
        if os.path.abspath(path) == os.path.abspath(current):
            continue
        with contextlib.suppress(OSError):
            os.unlink(path)
    # Payloads (and stray temporary files) that no remaining manifest references.
    referenced = set()
    for _, path in list_checkpoints(directory):
        try:
            with open(path, encoding="utf-8") as handle:
                referenced.add(json.load(handle).get("payload"))
        except (OSError, ValueError, AttributeError):
            continue
    for name in os.listdir(directory):
        # atomic_write's temporary names: "." + the target's name + a random part + ".tmp".
        stray = name.startswith((".checkpoint_", f".{LATEST}.")) and name.endswith(".tmp")
        if (_PAYLOAD.match(name) and name not in referenced) or stray:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))


def save_checkpoint(
    directory: str | os.PathLike,
    tree: Mapping[str, Any],
    *,
    epoch: int,
    metadata: Mapping[str, Any] | None = None,
    keep: int = 2,
) -> str:
    """Writes ``tree`` and ``metadata`` as the checkpoint of ``epoch``, atomically.

    Args:
        directory: the checkpoint directory, created if needed.
        tree: nested dicts (string keys) of arrays and Python scalars; use
            ``flax.serialization.to_state_dict`` for structures such as a ``TrainState``.
        epoch: the epoch this checkpoint belongs to, >= 0; a checkpoint of the same epoch is
            replaced.
        metadata: JSON-serializable data stored in the manifest.
        keep: how many checkpoints to keep (the newest), >= 1.

    Returns:
        The manifest's path.

    Raises:
        TypeError: for a tree that is not nested dicts of arrays, metadata that is not JSON,
            or an ``epoch`` or ``keep`` that is not an int.
        ValueError: for a negative epoch or ``keep < 1``.
        CheckpointWriteError: when a file cannot be written (``errno.ENOSPC`` for a full
            disk), naming the folder and the bytes needed; the previous checkpoint is intact.
    """
    epoch = validation.check_int("epoch", epoch, 0)
    keep = validation.check_int("keep", keep, 1)
    if not isinstance(tree, Mapping):
        raise TypeError(f"tree must be a dict, got {type(tree).__name__}")
    tree = _to_numpy(dict(tree))
    _check_tree(tree)
    try:
        meta_json = json.loads(json.dumps(dict(metadata or {}), allow_nan=False))
    except (TypeError, ValueError) as err:
        raise TypeError(f"metadata must be JSON-serializable: {err}") from err

    directory = os.fspath(directory)
    payload = serialization.msgpack_serialize(tree)
    digest = hashlib.sha256(payload).hexdigest()
    stem = f"checkpoint_{epoch:08d}"
    payload_name = f"{stem}.{digest[:16]}.msgpack"
    manifest = {
        "format": FORMAT,
        "epoch": epoch,
        "payload": payload_name,
        "nbytes": len(payload),
        "sha256": digest,
        "metadata": meta_json,
    }
    manifest["manifest_sha256"] = _manifest_digest(manifest)
    manifest_path = os.path.join(directory, f"{stem}.json")
    manifest_bytes = json.dumps(manifest, indent=1).encode("utf-8")
    payload_path = os.path.join(directory, payload_name)
    new_payload = not os.path.exists(payload_path)
    try:
        os.makedirs(directory, exist_ok=True)
        atomic_write(payload_path, payload)
        atomic_write(manifest_path, manifest_bytes)
        atomic_write(os.path.join(directory, LATEST), f"{stem}.json\n".encode())
    except OSError as err:
        if new_payload and not os.path.exists(manifest_path):
            with contextlib.suppress(OSError):
                os.unlink(payload_path)  # no manifest points to it
        raise _write_error(err, directory, len(payload) + len(manifest_bytes)) from err
    _prune(directory, keep, manifest_path)
    return manifest_path


def _write_error(err: OSError, directory: str, nbytes: int) -> CheckpointWriteError:
    """The error of a save that failed, naming the folder and what the checkpoint needed."""
    code = err.errno or errno.EIO
    if code == errno.ENOSPC:
        reason = "the disk is full"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = "the folder is not writable"
    else:
        reason = err.strerror or str(err)
    latest = latest_checkpoint(directory) if os.path.isdir(directory) else None
    kept = f"; the last good checkpoint {latest} is intact" if latest else ""
    message = (
        f"cannot write a checkpoint into {directory}: {reason} (the checkpoint needs "
        f"{nbytes} bytes, {nbytes / 2**20:.1f} MiB){kept}"
    )
    return CheckpointWriteError(code, message, directory, nbytes)


def _manifest_digest(manifest: Mapping[str, Any]) -> str:
    """The SHA-256 of a manifest's fields (all but the digest itself), in canonical JSON."""
    fields = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _read_manifest(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except FileNotFoundError as err:
        raise CheckpointError(f"checkpoint manifest {path} does not exist") from err
    except (OSError, ValueError) as err:
        raise CheckpointError(
            f"checkpoint manifest {path} is unreadable or corrupt: {err}"
        ) from err
    required = ("format", "epoch", "payload", "nbytes", "sha256")
    if not isinstance(manifest, dict) or any(k not in manifest for k in required):
        raise CheckpointError(
            f"checkpoint manifest {path} is incomplete: expected the fields {required}"
        )
    if manifest["format"] not in (FORMAT, _FORMAT_1):
        raise CheckpointError(
            f"checkpoint manifest {path} has format {manifest['format']!r}, expected {FORMAT!r}"
        )
    if manifest["format"] == FORMAT:
        try:
            digest = _manifest_digest(manifest)
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"checkpoint manifest {path} is corrupt: {err}") from err
        if manifest.get("manifest_sha256") != digest:
            raise CheckpointError(
                f"checkpoint manifest {path} was modified after it was written: its fields "
                "(epoch, payload, metadata) do not match its manifest_sha256; it was not loaded"
            )
    stem = _MANIFEST.match(os.path.basename(path))
    if stem is not None and int(stem.group(1)) != manifest["epoch"]:
        raise CheckpointError(
            f"checkpoint manifest {path} says epoch {manifest['epoch']!r}, but its file name "
            f"says epoch {int(stem.group(1))}; it was not loaded"
        )
    name = manifest["payload"]
    if not isinstance(name, str) or os.path.basename(name) != name or not _PAYLOAD.match(name):
        raise CheckpointError(f"checkpoint manifest {path} names an invalid payload {name!r}")
    return manifest


def read_metadata(path: str | os.PathLike) -> dict:
    """The verified metadata of a checkpoint, without reading its payload.

    Args:
        path: a checkpoint directory (its latest checkpoint) or a manifest's path.

    Returns:
        The JSON metadata saved with the checkpoint.

    Raises:
        FileNotFoundError: if the directory holds no checkpoint or the path does not exist.
        CheckpointError: for a manifest that is corrupt or was edited, naming the file.
    """
    return _read_manifest(_manifest_path(os.fspath(path))).get("metadata", {})


def _manifest_path(path: str) -> str:
    if os.path.isdir(path):
        manifest_path = latest_checkpoint(path)
        if manifest_path is None:
            raise FileNotFoundError(f"no checkpoint in directory {path}")
        return manifest_path
    if os.path.isfile(path):
        return path
    raise FileNotFoundError(f"checkpoint path {path} does not exist")


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Loads and verifies a checkpoint.

    Args:
        path: a checkpoint directory (its latest checkpoint is loaded) or a manifest's path.

    Returns:
        The :class:`Checkpoint`, with the tree as nested dicts of NumPy arrays.

    Raises:
        FileNotFoundError: if the directory holds no checkpoint or the path does not exist.
        CheckpointError: if the manifest or payload is missing, truncated, corrupted or
            edited; the message names the file.
    """
    manifest_path = _manifest_path(os.fspath(path))
    manifest = _read_manifest(manifest_path)
    payload_path = os.path.join(os.path.dirname(manifest_path), manifest["payload"])
    try:
        with open(payload_path, "rb") as handle:
            payload = handle.read()
    except OSError as err:
        raise CheckpointError(
            f"checkpoint payload {payload_path} (of {manifest_path}) cannot be read: {err}"
        ) from err
    if len(payload) != manifest["nbytes"]:
        raise CheckpointError(
            f"checkpoint payload {payload_path} is truncated or corrupt: expected "
            f"{manifest['nbytes']} bytes, found {len(payload)}; it was not loaded"
        )
    digest = hashlib.sha256(payload).hexdigest()
    if digest != manifest["sha256"]:
        raise CheckpointError(
            f"checkpoint payload {payload_path} is corrupt: its SHA-256 {digest[:16]}... does "
            f"not match the manifest's {str(manifest['sha256'])[:16]}...; it was not loaded"
        )
    try:
        tree = serialization.msgpack_restore(payload)
    except Exception as err:
        raise CheckpointError(
            f"checkpoint payload {payload_path} cannot be decoded: {err}"
        ) from err
    return Checkpoint(
        tree=tree,
        metadata=manifest.get("metadata", {}),
        epoch=int(manifest["epoch"]),
        path=manifest_path,
    )
