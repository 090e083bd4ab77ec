"""Several devices and several hosts: the mesh, the shardings and the placement of data.

Data parallelism in latent_jax is JAX's own SPMD partitioning: a one-dimensional
:class:`jax.sharding.Mesh` whose axis is named ``"data"`` (:data:`DATA_AXIS`), batches sharded
over it with :class:`~jax.sharding.NamedSharding`, and ``jax.jit`` inserting the collectives
(the gradient all-reduce, BatchNorm's global batch moments). Parameters and optimizer state
are replicated, or, with ``fsdp=True``, each array is split over the same axis along one of its
dimensions (XLA then gathers it where it is used and reduce-scatters its gradient).

Several hosts: every process calls :func:`initialize` (a wrapper of
``jax.distributed.initialize``) before anything else touches JAX; the mesh then spans the
devices of all processes, each process runs the same program, and each reads only the rows
of the data that its own devices hold (:func:`shard_rows` with a memory-mapped array, or
:func:`process_rows` for a loader).

Independent runs (:func:`latent_jax.train.fit_many`) need no communication at all: they are
spread over a one-dimensional mesh whose axis is named ``"runs"`` (:data:`RUNS_AXIS`, see
:func:`runs_mesh`), each device training its share of the runs. On the CPU backend JAX exposes
one device unless told otherwise; :func:`use_cpu_cores` exposes one per core so that runs
train on every core at once.

Everything here is placement; models, objectives and the training engine do not change.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax import Array
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = [
    "DATA_AXIS",
    "RUNS_AXIS",
    "batch_sharding",
    "constrain_batch",
    "initialize",
    "make_mesh",
    "mesh_size",
    "padded_size",
    "parse_mesh",
    "place",
    "process_rows",
    "replicated",
    "runs_mesh",
    "shard_rows",
    "state_shardings",
    "to_host",
    "use_cpu_cores",
]

DATA_AXIS = "data"
RUNS_AXIS = "runs"


def parse_mesh(spec: str) -> int | None:
    """The number of devices a ``--mesh`` string asks for.

    Args:
        spec: ``"data=4"`` (or ``"data:4"``, ``"4"``): a data axis of 4 devices; ``"auto"``
            or ``"data"``: every device.

    Returns:
        The number of devices, or ``None`` for every device.

    Raises:
        ValueError: for another axis name or a size that is not a positive integer.
    """
    if not isinstance(spec, str):
        raise TypeError(f"mesh must be a string like 'data=4', got {type(spec).__name__}")
    text = spec.strip().lower()
    if text in ("auto", DATA_AXIS):
        return None
    match = re.fullmatch(r"(?:(\w+)\s*[=:]\s*)?(\d+)", text)
    if match is None or (match.group(1) not in (None, DATA_AXIS)):
        raise ValueError(
            f"mesh must be 'data=N' (one data-parallel axis of N devices) or 'auto', got {spec!r}"
        )
    size = int(match.group(2))
    if size < 1:
        raise ValueError(f"mesh needs at least one device, got {spec!r}")
    return size


def make_mesh(devices: int | Sequence[Any] | None = None) -> Mesh:
    """A one-dimensional mesh with axis ``"data"``.

    Args:
        devices: how many devices (the first of ``jax.devices()``, ordered by process so
            that each process holds a contiguous block), an explicit list of devices, or
            ``None`` for all of them (across every process after :func:`initialize`).

    Returns:
        A :class:`jax.sharding.Mesh` of shape (n_devices,).

    Raises:
        ValueError: when more devices are asked for than exist, or fewer than one.
    """
    available = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    if devices is None:
        chosen = available
    elif isinstance(devices, int) and not isinstance(devices, bool):
        if not 1 <= devices <= len(available):
            raise ValueError(
                f"devices must be between 1 and the {len(available)} available "
                f"{available[0].platform.upper()} device(s), got devices={devices} (on CPU, "
                "call latent_jax.distributed.use_cpu_cores(N) before JAX's backend starts)"
            )
        chosen = available[:devices]
    else:
        chosen = list(devices)
        if not chosen:
            raise ValueError("devices must not be empty")
    if jax.process_count() > 1:
        missing = {d.process_index for d in available} - {d.process_index for d in chosen}
        if missing:
            raise ValueError(
                f"a multi-process mesh must include devices of every process; processes "
                f"{sorted(missing)} have none of the {len(chosen)} chosen"
            )
    return Mesh(np.array(chosen), (DATA_AXIS,))


def _check_mesh(mesh: Any) -> Mesh:
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh, got {type(mesh).__name__}")
    if DATA_AXIS not in mesh.axis_names:
        raise ValueError(f"mesh must have an axis named {DATA_AXIS!r}, got {mesh.axis_names}")
    return mesh


def runs_mesh(n_runs: int, devices: Sequence[Any] | None = None) -> Mesh | None:
    """The mesh that ``n_runs`` independent runs are spread over, or ``None`` for one device.

    It takes the largest number of devices that divides ``n_runs`` (each device trains the
    same number of runs, so that one compiled program serves them all).

    Args:
        n_runs: the number of runs, >= 1.
        devices: the devices to use; default: this process's devices (``jax.local_devices()``),
            and none in a multi-process job, whose devices belong to a data mesh.

    Returns:
        A one-dimensional :class:`Mesh` with axis :data:`RUNS_AXIS`, or ``None`` when only one
        device would be used.
    """
    if devices is None:
        if jax.process_count() > 1:
            return None
        devices = jax.local_devices()
    n_devices = max(d for d in range(1, min(n_runs, len(devices)) + 1) if n_runs % d == 0)
    if n_devices == 1:
        return None
    return Mesh(np.array(list(devices)[:n_devices]), (RUNS_AXIS,))


def use_cpu_cores(cores: int | None = None) -> int:
    """Exposes one JAX device per CPU core on the CPU backend, so that independent runs train
    on every core at once (see :func:`runs_mesh`).

    JAX's CPU backend is one device, whose small matrix products keep about one core busy.
    This sets ``jax_num_cpu_devices`` unless the user already chose a count (the
    ``JAX_NUM_CPU_DEVICES`` variable, ``--xla_force_host_platform_device_count`` in
    ``XLA_FLAGS``, or the config), and only before JAX's backends start; otherwise it changes
    nothing. Computations that run on one device are not slowed by the extra devices.

    Args:
        cores: the device count; default: the cores this process may run on.

    Returns:
        The device count set, or 0 when nothing was changed.
    """
    if (
        "JAX_NUM_CPU_DEVICES" in os.environ
        or "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "")
        or jax.config.jax_num_cpu_devices > 0
    ):
        return 0
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if not cores or cores < 2:
        return 0
    try:
        jax.config.update("jax_num_cpu_devices", int(cores))
    except RuntimeError:  # the backends have started: the device count is fixed
        return 0
    return int(cores)


def mesh_size(mesh: Mesh) -> int:
    """The number of devices along the mesh's ``"data"`` axis."""
    return int(_check_mesh(mesh).shape[DATA_AXIS])


def padded_size(n: int, mesh: Mesh) -> int:
    """``n`` rounded up to a multiple of the data axis (the padded batch or row count)."""
    d = mesh_size(mesh)
    return -(-n // d) * d


def replicated(mesh: Mesh) -> NamedSharding:
    """The sharding of an array copied to every device of the mesh."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh, leading: int = 0) -> NamedSharding:
    """Rows split over the data axis, after ``leading`` unsharded axes (e.g. a batch stack)."""
    return NamedSharding(mesh, PartitionSpec(*([None] * leading), DATA_AXIS))


def constrain_batch(tree: Any, mesh: Mesh) -> Any:
    """Inside ``jit``: asks the partitioner to split every leaf's first axis over the data axis.

    Args:
        tree: arrays of shape (batch, ...) whose batch is a multiple of the data axis.
        mesh: the mesh.

    Returns:
        The same values, with a sharding constraint.
    """
    return jax.lax.with_sharding_constraint(tree, batch_sharding(mesh))


def _fsdp_spec(shape: tuple[int, ...], n_devices: int, skip: int) -> PartitionSpec:
    """Split the largest dimension that the devices divide evenly; replicate otherwise."""
    candidates = [
        (size, axis)
        for axis, size in enumerate(shape)
        if axis >= skip and size >= n_devices and size % n_devices == 0
    ]
    if n_devices == 1 or not candidates:
        return PartitionSpec()
    _, axis = max(candidates)
    spec = [None] * len(shape)
    spec[axis] = DATA_AXIS
    return PartitionSpec(*spec)


def state_shardings(tree: Any, mesh: Mesh, *, fsdp: bool = False, skip: int = 0) -> Any:
    """Shardings for a training state: replicated, or FSDP-style over the data axis.

    Args:
        tree: a pytree of arrays (or shape structs).
        mesh: the mesh.
        fsdp: split each array along its largest dimension divisible by the number of
            devices (arrays with none stay replicated).
        skip: leading axes never split (1 for the stacked runs of ``fit_many``).

    Returns:
        A pytree of :class:`NamedSharding` with the structure of ``tree``.
    """
    n = mesh_size(mesh)

    def one(leaf: Any) -> NamedSharding:
        if not fsdp:
            return replicated(mesh)
        return NamedSharding(mesh, _fsdp_spec(tuple(np.shape(leaf)), n, skip))

    return jax.tree.map(one, tree)


def place(tree: Any, shardings: Any) -> Any:
    """Puts host (or single-device) values, equal on every process, onto the mesh.

    Args:
        tree: a pytree of arrays, the same on every process.
        shardings: a :class:`NamedSharding` or a pytree of them matching ``tree``.

    Returns:
        The pytree of global ``jax.Array`` with those shardings.
    """
    if isinstance(shardings, NamedSharding):
        shardings = jax.tree.map(lambda _: shardings, tree)
    if jax.process_count() == 1:
        return jax.device_put(tree, shardings)

    def one(leaf: Any, sharding: NamedSharding) -> Array:
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            data = one(jax.random.key_data(leaf), sharding)
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(leaf))
        host = np.asarray(leaf)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(one, tree, shardings)


def to_host(tree: Any) -> Any:
    """NumPy copies of a pytree of (possibly sharded, possibly multi-process) arrays.

    Arrays split over devices of other processes are gathered (every process must call
    this together); replicated ones are read from a local copy.
    """

    def one(leaf: Any) -> Any:
        if isinstance(leaf, jax.Array) and not (
            leaf.is_fully_addressable or leaf.is_fully_replicated
        ):
            return np.asarray(multihost_utils.process_allgather(leaf, tiled=True))
        return jax.device_get(leaf)

    return jax.tree.map(one, tree)


def process_rows(
    n: int, process_index: int | None = None, process_count: int | None = None
) -> slice:
    """The contiguous block of ``n`` rows that one process reads (the last may be shorter).

    Args:
        n: the total number of rows.
        process_index: the process; ``None`` is ``jax.process_index()``.
        process_count: the number of processes; ``None`` is ``jax.process_count()``.

    Returns:
        ``slice(start, stop)``; the blocks of all processes cover ``range(n)`` once.
    """
    index = jax.process_index() if process_index is None else process_index
    count = jax.process_count() if process_count is None else process_count
    if not 0 <= index < count:
        raise ValueError(f"process_index must be in [0, {count}), got {index}")
    per = -(-n // count)
    return slice(min(index * per, n), min((index + 1) * per, n))


def shard_rows(x: Any, mesh: Mesh, name: str = "x") -> tuple[Array, int]:
    """Places an array's rows split over the data axis, reading only this process's rows.

    The rows are padded with zeros to a multiple of the data axis; the padding is never
    indexed by the training engine (its row indices stay below ``n``). With a memory-mapped
    ``x`` (``np.load(path, mmap_mode="r")``), each process reads only the rows its devices
    hold. Values are cast to float32 and checked for NaN/Inf shard by shard.

    Args:
        x: array of shape (n, ...features): NumPy, memory-mapped or a JAX array.
        mesh: the mesh.
        name: the argument's name, for error messages.

    Returns:
        ``(array, n)``: a global float32 array of shape (padded n, ...features) and the
        number of real rows.

    Raises:
        TypeError: for a non-numeric or complex array.
        ValueError: for fewer than 2 dimensions, no rows, or NaN/Inf values.
    """
    mesh = _check_mesh(mesh)
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        raise TypeError(
            f"{name} is a multi-process jax.Array; pass the host array (e.g. a memory-mapped "
            "np.load(..., mmap_mode='r')) and each process reads its own rows"
        )
    source = x if isinstance(x, np.ndarray | jax.Array) else np.asarray(x)
    dtype = np.dtype(source.dtype)
    if dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {dtype}")
    if source.ndim < 2:
        raise ValueError(
            f"{name} must have shape (n_samples, ...features) with at least 2 dimensions, "
            f"got shape {tuple(source.shape)}"
        )
    n = int(source.shape[0])
    if n == 0 or math.prod(source.shape) == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(source.shape)}")
    shape = (padded_size(n, mesh), *source.shape[1:])

    def read(index: tuple[slice, ...]) -> np.ndarray:
        rows = index[0]
        start, stop = rows.start or 0, shape[0] if rows.stop is None else rows.stop
        block = np.zeros((stop - start, *shape[1:]), np.float32)
        if start < n:
            block[: min(stop, n) - start] = np.asarray(source[start : min(stop, n)])
        bad = block.size - np.count_nonzero(np.isfinite(block))
        if bad:
            raise ValueError(
                f"{name} contains {bad} NaN or infinite values in rows {start}..{min(stop, n)}; "
                "clean or impute them"
            )
        return block

    array = jax.make_array_from_callback(shape, batch_sharding(mesh), read)
    return array, n


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    local_devices: int | None = None,
) -> None:
    """Starts multi-process JAX: ``jax.distributed.initialize`` with checked arguments.

    Call it in every process before anything else uses JAX. On the CPU backend it selects
    the gloo collectives (JAX's CPU backend has no cross-process collectives otherwise).

    Args:
        coordinator: ``"host:port"`` of process 0's coordination service.
        num_processes: the number of processes, >= 1.
        process_id: this process's index, in ``[0, num_processes)``.
        local_devices: on CPU, how many host devices this process exposes (sets
            ``XLA_FLAGS=--xla_force_host_platform_device_count``; only effective before the
            backend starts).

    Raises:
        ValueError: for a malformed address or inconsistent process numbers.
    """
    if coordinator is not None and not re.fullmatch(r"[^:\s]+:\d+", coordinator):
        raise ValueError(f"coordinator must be 'HOST:PORT', got {coordinator!r}")
    if num_processes is not None and num_processes < 1:
        raise ValueError(f"num_processes must be >= 1, got {num_processes}")
    if process_id is not None and num_processes is not None:
        if not 0 <= process_id < num_processes:
            raise ValueError(
                f"process_id must be in [0, num_processes={num_processes}), got {process_id}"
            )
    if local_devices is not None:
        flags = os.environ.get("XLA_FLAGS", "")
        flags = re.sub(r"--xla_force_host_platform_device_count=\d+", "", flags)
        os.environ["XLA_FLAGS"] = (
            f"{flags} --xla_force_host_platform_device_count={local_devices}".strip()
        )
    platforms = os.environ.get("JAX_PLATFORMS", "") or jax.config.jax_platforms or ""
    if "cpu" in platforms.split(",") or not platforms:
        # Without it, cross-process collectives on CPU fail at run time.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator, num_processes=num_processes, process_id=process_id
    )
