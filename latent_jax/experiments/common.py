"""What every experiment does around its work: output folders, JSON files, run metadata."""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from typing import Any

import numpy as np

from latent_jax import data


def prepare_output_dir(path: str | os.PathLike) -> str:
    """Creates the output folder (and parents) if needed and returns it as a string."""
    path = os.fspath(path)
    os.makedirs(path, exist_ok=True)
    return path


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
    """Writes ``payload`` as indented JSON atomically (temporary file, then rename).

    NumPy arrays and scalars are converted to lists and numbers.
    """
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(_to_json(payload), handle, indent=2, sort_keys=True)
            handle.write("\n")
        # mkstemp creates the file 0600; give it the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
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


def arguments_dict(args: argparse.Namespace) -> dict[str, Any]:
    """The parsed flags as a JSON-friendly dict (callables dropped)."""
    return {k: v for k, v in vars(args).items() if not callable(v)}


def add_tabular_source_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers ``--data`` (a tabular data set or file, for :func:`latent_jax.data.load_tabular`)
    and ``--label-column``, the flags of every experiment on a table."""
    parser.add_argument(
        "--data",
        default=data.SYNTHETIC_CLASSIFICATION,
        help=f"'{data.SYNTHETIC_CLASSIFICATION}' (the tutorial's make_classification set; "
        "'seed' is its deprecated old name), 'digits', or a .npy/.npz/.csv file",
    )
    parser.add_argument(
        "--label-column",
        type=int,
        default=None,
        help="column of the file holding class labels (negative counts from the end)",
    )


def require_at_least(args: argparse.Namespace, minimum: int, *names: str) -> None:
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
