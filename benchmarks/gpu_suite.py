"""The GPU suite: one command that measures latent_jax on the machine it runs on, in minutes.

Run it on a machine with a GPU (``make bench-gpu``, or ``python benchmarks/gpu_suite.py``
with that machine's own JAX, flax, optax and PyTorch; the repository on ``PYTHONPATH`` or
installed). It runs every part below, in this order of priority, in a process of its own
with a time limit; it records a part that fails or runs out of time and goes on, skips the
parts that would run past the whole suite's budget (``--budget``, 540 s: a lent device
machine runs a command for at most 10 minutes), and writes one JSON file and one markdown
table (``--out FILE``, the table beside it as ``FILE`` with ``.md``), every row naming the
device:

* ``example1``: the tutorial's example 1 (500 epochs) against its PyTorch loop on the same
  device (``bench_example1.py``), with the model-FLOPs utilization of latent_jax's run;
* ``face_vae``: the tutorial's face VAE at its full configuration (112x92, batch 64, 320
  images: the AT&T faces when ``data/`` has them, else random images in their layout, which
  the JSON says) against its PyTorch code (``bench_conv_vae.py``), and both libraries' wall
  time of the tutorial's 10,000-epoch run, extrapolated from their steady epochs;
* ``bf16``: ``compute_dtype="bfloat16"`` against float32 on the MLP and the face VAE, steps
  per second and MFU of each;
* ``fit_many``: example 1 with 1, 8 and 64 seeds at once (``fit_many``), time against one;
* ``kernels``: the A/B of latent_jax's convolution gradients against JAX's stock ones
  (:mod:`latent_jax.models.implementations`, per component) and of its masked BatchNorm and
  keyed shuffle against ``flax.linen.BatchNorm`` and ``jax.random.permutation``, on the face
  VAE's shapes; the components where stock wins are the ones to enter in
  ``implementations.STOCK`` for this backend;
* ``device_tests``: the tests marked ``device`` (the default suite's compiled-training
  tests) run on this device, their pass/fail counts recorded (those that ran, when the time
  limit cuts the run short);
* ``pca``: ``fit_pca`` on the device against scikit-learn's default solver on the host at
  10^5 and 10^6 rows (``bench_pca.py``);
* ``vs_pythae``: ``bench_vs_pythae.py``'s side by side for the VAE and the VQ-VAE (pythae
  trains on the GPU when it sees one).

``--dry-run`` runs every part at toy sizes through the same code, on any machine; it is a
slow test (``tests/test_gpu_suite.py``), so the suite is known to run before a GPU is lent.

Usage::

    python benchmarks/gpu_suite.py                       # at most 9 minutes (--budget)
    python benchmarks/gpu_suite.py --dry-run --out /tmp/suite.json
    python benchmarks/gpu_suite.py --parts example1 bf16
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "gpu_suite.json"
# The tutorial's face run: 10,000 epochs (extrapolated from the measured ones).
FACE_EPOCHS = 10_000

# Sizes of a real run and of --dry-run, per part.
FULL = {
    "example1": {"epochs": 500, "repeats": 1, "seeds": 8},
    "face_vae": {"images": 320, "epochs": 3, "repeats": 1},
    "fit_many": {"epochs": 100, "seeds": (1, 8, 64)},
    "kernels": {"images": 320, "epochs": 2, "shuffle_n": 1_000_000},
    "bf16": {"mlp_epochs": 50, "face_images": 320, "face_epochs": 2},
    "vs_pythae": {"models": ("vae", "vq-vae"), "lengths": (10,)},
    "pca": {"sizes": "1e5x784,1e6x784"},
    "device_tests": {"select": None},
}
DRY = {
    "example1": {"epochs": 2, "repeats": 1, "seeds": 2},
    "face_vae": {"images": 8, "epochs": 1, "repeats": 1},
    "fit_many": {"epochs": 2, "seeds": (1, 2)},
    "kernels": {"images": 16, "epochs": 1, "shuffle_n": 1000, "small": True},
    "bf16": {"mlp_epochs": 2, "face_images": 16, "face_epochs": 1, "small": True},
    "vs_pythae": {"models": ("vae",), "lengths": (1,)},
    "pca": {"sizes": "1e3x20"},
    "device_tests": {"select": "compute_dtype_is_checked"},
}
# Seconds each part may take before it is stopped and recorded as failed.
LIMITS = {
    "example1": 200,
    "face_vae": 90,
    "fit_many": 90,
    "kernels": 120,
    "bf16": 90,
    "vs_pythae": 150,
    "pca": 90,
    "device_tests": 180,
}
# A part whose packages are missing is skipped, not failed (the bench extra brings them).
NEEDS = {"example1": ("torch",), "face_vae": ("torch",), "vs_pythae": ("torch", "pythae")}


class MissingPackage(RuntimeError):
    """A package the part needs is not installed."""


def _script(name: str, args: Sequence[str], timeout: float) -> None:
    """Runs ``benchmarks/NAME.py`` with ``args``, raising with its output's tail on failure."""
    done = subprocess.run(
        [sys.executable, str(HERE / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{name}.py exited {done.returncode}: {done.stderr[-2000:]}")


def _utilization():
    sys.path.insert(0, str(HERE))
    import utilization

    return utilization


def _example1_objective():
    from latent_jax.data import load_tabular
    from latent_jax.models.mlp import Autoencoder
    from latent_jax.objectives import autoencoder_objective

    data = load_tabular("synthetic-classification")
    return autoencoder_objective(Autoencoder(input_dim=data.x_train.shape[1])), data


def _face_objective(small: bool):
    from latent_jax import schedules
    from latent_jax.models.conv import ConvVAE
    from latent_jax.objectives import vae_objective

    # bench_train_step.py's face VAE: the seed's model and its monotonic beta schedule.
    model = ConvVAE(image_shape=(28, 28, 1), latent_dim=8) if small else ConvVAE()
    beta = schedules.make_schedule("monotonic", beta_max=1 / 30, tau=1000.0)
    return vae_objective(model, beta), tuple(model.image_shape)


# ----------------------------------------------------------------------------------- parts


def part_example1(sizes: dict, work: Path, limit: float) -> dict:
    """Example 1 against the tutorial's PyTorch loop, and latent_jax's MFU."""
    out = work / "example1.json"
    args = ["--epochs", sizes["epochs"], "--repeats", sizes["repeats"], "--seeds", sizes["seeds"]]
    _script("bench_example1", [*map(str, args), "--output", str(out)], limit)
    summary = json.loads(out.read_text())["summary"]
    return {
        "summary": summary,
        "rows": [
            (
                f"example 1, {sizes['epochs']}-epoch run s (PyTorch: the tutorial's loop)",
                summary["jax_median_seconds"],
                summary["torch_median_seconds"],
            ),
            ("example 1, latent_jax MFU (the run, evaluation included)", summary["jax_mfu"], None),
        ],
    }


def part_face_vae(sizes: dict, work: Path, limit: float) -> dict:
    """The face VAE against its PyTorch code; the 10,000-epoch run extrapolated."""
    out = work / "face_vae.json"
    args = ["--images", sizes["images"], "--epochs", sizes["epochs"], "--repeats", sizes["repeats"]]
    _script("bench_conv_vae", [*map(str, args), "--output", str(out)], limit)
    summary = json.loads(out.read_text())["summary"]
    hours = {lib: summary[f"seed_run_{lib}_hours"] for lib in ("jax", "torch")}
    return {
        "summary": summary,
        "data": summary["data"],
        "random_images": not str(summary["data"]).startswith("AT&T"),
        "extrapolated_10000_epochs_s": {lib: h * 3600 for lib, h in hours.items()},
        "rows": [
            (
                "face VAE images/s (batch 64; PyTorch: the tutorial's code)",
                summary["jax_images_per_second"],
                summary["torch_images_per_second"],
            ),
            (
                "face VAE, the tutorial's 10,000 epochs x 320 images, extrapolated s",
                hours["jax"] * 3600,
                hours["torch"] * 3600,
            ),
            ("face VAE, latent_jax MFU", summary["jax_mfu"], None),
        ],
    }


def part_fit_many(sizes: dict, work: Path, limit: float) -> dict:
    """``fit_many`` with several seeds of example 1, time against one seed."""
    del work, limit
    import jax

    from latent_jax.train import TrainConfig, fit_many

    objective, data = _example1_objective()
    config = TrainConfig(batch_size=128, epochs=sizes["epochs"], quiet=True)
    times = {}
    for seeds in sizes["seeds"]:
        keys = jax.random.split(jax.random.key(0), seeds)
        fit_many(objective, data.x_train, data.x_test, config, keys)  # compile
        start = time.perf_counter()
        state, _ = fit_many(objective, data.x_train, data.x_test, config, keys)
        jax.block_until_ready(state.params)
        times[seeds] = time.perf_counter() - start
    one = times[sizes["seeds"][0]]
    return {
        "seconds": {str(k): v for k, v in times.items()},
        "over_one_seed": {str(k): v / one for k, v in times.items()},
        "rows": [
            (f"fit_many {k} seeds, time over one seed", v / one, None) for k, v in times.items()
        ],
    }


def _time_training(objective: Any, images: Any, config: Any) -> float:
    """Seconds of a warm ``fit`` (the first call compiles and is not timed)."""
    import jax

    from latent_jax.train import fit

    fit(objective, images, None, config, jax.random.key(0))
    start = time.perf_counter()
    state, _ = fit(objective, images, None, config, jax.random.key(0))
    jax.block_until_ready(state.params)
    return time.perf_counter() - start


def part_kernels(sizes: dict, work: Path, limit: float) -> dict:
    """latent_jax's convolution gradients, BatchNorm and shuffle against JAX/flax's stock."""
    del work, limit
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import numpy as np

    from latent_jax import shuffle
    from latent_jax.models import implementations, layers
    from latent_jax.train import TrainConfig

    small = sizes.get("small", False)
    objective, shape = _face_objective(small)
    images = np.random.default_rng(0).uniform(size=(sizes["images"], *shape)).astype("f4")
    config = TrainConfig(batch_size=64, epochs=sizes["epochs"], learning_rate=1e-4, quiet=True)
    variants = {"latent_jax": "none", **{c: c for c in implementations.COMPONENTS}}
    seconds = {}
    for name, setting in variants.items():
        os.environ[implementations.ENV_VARIABLE] = setting
        seconds[name] = _time_training(objective, images, config)
    os.environ.pop(implementations.ENV_VARIABLE)
    stock_wins = [c for c in implementations.COMPONENTS if seconds[c] < seconds["latent_jax"]]

    # BatchNorm: forward and backward of the masked layer against flax's, on a conv stage's
    # activations; shuffle: one epoch's permutation of n rows.
    x = jax.random.normal(jax.random.key(0), (64, *[max(s // 4, 1) for s in shape[:2]], 64))
    mask = jnp.ones(64, bool)

    def bn_seconds(module: Any) -> float:
        variables = module.init(jax.random.key(0), x, train=False)

        def loss(v: Any, x: Any) -> Any:
            y, _ = module.apply(
                v, x, train=True, mask=mask[:, None, None, None], mutable=["batch_stats"]
            )
            return jnp.sum(y * y)

        step = jax.jit(jax.grad(loss, argnums=1))
        step(variables, x).block_until_ready()
        start = time.perf_counter()
        for _ in range(20):
            out = step(variables, x)
        out.block_until_ready()
        return (time.perf_counter() - start) / 20

    class StockBatchNorm(nn.Module):
        @nn.compact
        def __call__(self, x: Any, train: bool, mask: Any = None) -> Any:
            return nn.BatchNorm(momentum=0.9, epsilon=1e-5)(
                x, use_running_average=not train, mask=mask
            )

    class OwnBatchNorm(nn.Module):
        @nn.compact
        def __call__(self, x: Any, train: bool, mask: Any = None) -> Any:
            rows = None if mask is None else mask[:, 0, 0, 0]
            return layers.BatchNorm()(x, use_running_average=not train, mask=rows)

    bn = {"latent_jax": bn_seconds(OwnBatchNorm()), "flax": bn_seconds(StockBatchNorm())}

    def permutation_seconds(fn: Callable) -> float:
        run = jax.jit(fn, static_argnums=1)
        run(jax.random.key(0), sizes["shuffle_n"]).block_until_ready()
        start = time.perf_counter()
        for i in range(10):
            out = run(jax.random.key(i), sizes["shuffle_n"])
        out.block_until_ready()
        return (time.perf_counter() - start) / 10

    perm = {
        "latent_jax": permutation_seconds(shuffle.permutation),
        "jax.random": permutation_seconds(jax.random.permutation),
    }
    backend = jax.default_backend()
    rows = [
        (
            f"face VAE training s, stock {c} (latent_jax's own: {seconds['latent_jax']:.3g})",
            seconds[c],
            None,
        )
        for c in implementations.COMPONENTS
    ]
    rows += [
        ("BatchNorm fwd+bwd s (latent_jax / flax)", bn["latent_jax"], bn["flax"]),
        ("shuffle s (latent_jax / jax.random.permutation)", perm["latent_jax"], perm["jax.random"]),
    ]
    return {
        "backend": backend,
        "training_seconds": seconds,
        "stock_wins": stock_wins,
        "selected_now": sorted(implementations.stock_components(backend)),
        "batch_norm_seconds": bn,
        "permutation_seconds": perm,
        "rows": rows,
    }


def part_bf16(sizes: dict, work: Path, limit: float) -> dict:
    """float32 against bfloat16: steps per second and MFU of the MLP and the face VAE."""
    del work, limit
    import numpy as np

    from latent_jax.train import TrainConfig

    u = _utilization()
    small = sizes.get("small", False)
    mlp, data = _example1_objective()
    face, shape = _face_objective(small)
    images = np.random.default_rng(0).uniform(size=(sizes["face_images"], *shape)).astype("f4")
    workloads = {
        "example 1 MLP": (mlp, data.x_train, 128, sizes["mlp_epochs"]),
        "face VAE": (face, images, 64, sizes["face_epochs"]),
    }
    out: dict[str, Any] = {"rows": []}
    for name, (objective, x, batch, epochs) in workloads.items():
        entry = {}
        for dtype in ("float32", "bfloat16"):
            config = TrainConfig(
                batch_size=batch, epochs=epochs, quiet=True, compute_dtype=dtype, learning_rate=1e-4
            )
            seconds = _time_training(objective, x, config)
            steps = epochs * -(-len(x) // batch)
            flops = u.step_flops(objective, config, x)
            peak, source = u.peak_flops(dtype)
            entry[dtype] = {
                "seconds": seconds,
                "steps_per_second": steps / seconds,
                "flops_per_step": flops,
                "mfu": u.mfu(flops, seconds / steps, peak),
                "peak_source": source,
            }
        entry["speedup"] = entry["float32"]["seconds"] / entry["bfloat16"]["seconds"]
        out[name] = entry
        out["rows"] += [
            (
                f"{name} steps/s, bfloat16 / float32",
                entry["bfloat16"]["steps_per_second"],
                entry["float32"]["steps_per_second"],
            ),
            (f"{name} MFU, bfloat16 / float32", entry["bfloat16"]["mfu"], entry["float32"]["mfu"]),
        ]
    return out


def part_vs_pythae(sizes: dict, work: Path, limit: float) -> dict:
    """``bench_vs_pythae.py`` on this device."""
    out = work / "vs_pythae.json"
    args = [
        "--only",
        *sizes["models"],
        "--lengths",
        *map(str, sizes["lengths"]),
        "--repeats",
        "1",
        "--out",
        str(out),
    ]
    _script("bench_vs_pythae", args, limit)
    summary = json.loads(out.read_text())["summary"]
    rows = []
    for model in sizes["models"]:
        for length in sizes["lengths"]:
            times = {
                r["variant"]: r["train_s"]
                for r in summary
                if r["model"] == model and r["epochs"] == length
            }
            rows.append(
                (
                    f"vs pythae: {model}, {length} epochs, train s (latent_jax warm / pythae)",
                    times.get("latent_jax warm"),
                    times.get("pythae"),
                )
            )
    return {"summary": summary, "rows": rows}


def part_pca(sizes: dict, work: Path, limit: float) -> dict:
    """``fit_pca`` on the device against scikit-learn on the host."""
    out = work / "pca.json"
    # scikit-learn's default solver only: its full SVD of 10^6 x 784 rows alone takes minutes.
    args = ["--sizes", sizes["sizes"], "--no-x64", "--no-streaming", "--solvers", "auto"]
    _script("bench_pca", [*args, "--output", str(out)], limit)
    record = json.loads(out.read_text())
    rows = []
    for entry in record["one_shot"]:
        mine = entry.get("latent_jax", {}).get("median_s")
        theirs = entry["sklearn"]["auto"]["median_s"]
        rows.append(
            (f"fit_pca {entry['n']:.0e} x {entry['d']} s (device / sklearn host)", mine, theirs)
        )
    return {"one_shot": record["one_shot"], "rows": rows}


def _progress_counts(stdout: str) -> dict[str, int]:
    """Pass/fail counts from pytest's ``-q`` progress characters (a run cut short writes no
    report)."""
    marks = "".join(
        line.split(" [")[0].strip()
        for line in stdout.splitlines()
        if re.fullmatch(r"[.FEsxX]+(\s+\[\s*\d+%\])?", line.strip())
    )
    return {
        "passed": marks.count(".") + marks.count("X"),
        "failures": marks.count("F"),
        "errors": marks.count("E"),
        "skipped": marks.count("s") + marks.count("x"),
        "tests": len(marks),
    }


def part_device_tests(sizes: dict, work: Path, limit: float) -> dict:
    """The tests marked ``device`` on this device: pass/fail counts (those that ran, when the
    time limit cuts the run short)."""
    del work
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-m",
        "device",
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=-ra",
        str(ROOT / "tests"),
    ]
    if sizes["select"]:
        command += ["-k", sizes["select"]]
    env = {**os.environ, "LATENT_JAX_NO_COMPILE_CACHE": "1"}
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=limit, cwd=ROOT, env=env
        )
        stdout, finished = done.stdout, True
    except subprocess.TimeoutExpired as err:
        output = err.stdout or b""
        stdout = output.decode() if isinstance(output, bytes) else output
        finished = False
    counts = _progress_counts(stdout)
    if not counts["tests"]:
        raise RuntimeError(f"pytest ran no test: {stdout[-2000:]}")
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", stdout, re.MULTILINE)
    return {
        "counts": counts,
        "finished": finished,
        "failed": failed,
        "rows": [
            (
                f"device tests passed / run{'' if finished else ' (cut at the limit)'}",
                counts["passed"],
                counts["tests"],
            )
        ],
    }


# In order of priority: a run short of time skips the last.
PARTS: dict[str, Callable[[dict, Path, float], dict]] = {
    "example1": part_example1,
    "face_vae": part_face_vae,
    "bf16": part_bf16,
    "fit_many": part_fit_many,
    "kernels": part_kernels,
    "device_tests": part_device_tests,
    "pca": part_pca,
    "vs_pythae": part_vs_pythae,
}
# The whole suite's seconds: a device machine is lent for a command of at most 10 minutes.
BUDGET = 540


# --------------------------------------------------------------------------------- driver


def run_part(name: str, dry_run: bool, result_path: Path, limit: float) -> None:
    """The child process: one part, its result (or its error) written as JSON."""
    sizes = (DRY if dry_run else FULL)[name]
    start = time.perf_counter()
    try:
        for package in NEEDS.get(name, ()):
            try:
                __import__(package)
            except ImportError as err:
                raise MissingPackage(f"{package} is not installed (the bench extra)") from err
        with tempfile.TemporaryDirectory() as work:
            result = PARTS[name](sizes, Path(work), limit)
        record = {"status": "ok", **result}
    except MissingPackage as err:
        record = {"status": "skipped", "reason": str(err)}
    except Exception as err:  # a failed part is recorded; the suite goes on
        record = {
            "status": "failed",
            "error": f"{type(err).__name__}: {err}",
            "traceback": traceback.format_exc()[-4000:],
        }
    record["seconds"] = time.perf_counter() - start
    record["sizes"] = sizes
    result_path.write_text(json.dumps(record, indent=2, default=str) + "\n")


def device_name() -> str:
    """The default JAX device, as the rows name it."""
    import jax

    device = jax.devices()[0]
    return f"{device.platform}:{getattr(device, 'device_kind', '')}"


def markdown(record: dict) -> str:
    """One row per measurement: part, device, what, latent_jax, reference, ratio."""
    device = record["machine"]["device"]
    lines = [
        "| part | device | measurement | latent_jax | reference | ratio |",
        "|---|---|---|---:|---:|---:|",
    ]

    def fmt(value: Any) -> str:
        return "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)

    for name, part in record["parts"].items():
        if part["status"] != "ok":
            why = part.get("reason") or part.get("error", "")
            lines.append(f"| {name} | {device} | {part['status']}: {why[:120]} | | | |")
            continue
        for what, mine, theirs in part.get("rows", []):
            ratio = mine / theirs if isinstance(mine, float | int) and theirs else None
            lines.append(
                f"| {name} | {device} | {what} | {fmt(mine)} | {fmt(theirs)} | {fmt(ratio)} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="every part at toy sizes")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the JSON file (and .md)")
    parser.add_argument("--parts", nargs="+", choices=tuple(PARTS), default=list(PARTS))
    parser.add_argument(
        "--budget",
        type=float,
        default=BUDGET,
        help=f"seconds for the whole suite; a part that would run past it is skipped (default "
        f"{BUDGET})",
    )
    parser.add_argument("--part", choices=tuple(PARTS), help=argparse.SUPPRESS)
    parser.add_argument("--part-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--part-limit", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.part:
        run_part(args.part, args.dry_run, args.part_out, args.part_limit)
        return 0

    u = _utilization()
    record: dict[str, Any] = {"machine": u.machine(), "dry_run": args.dry_run, "parts": {}}
    record["machine"]["device"] = device_name()
    start = time.perf_counter()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    for name in args.parts:
        elapsed = time.perf_counter() - start
        # The part's process gets 30 s for its start and its results besides its limit.
        limit = min(LIMITS[name], args.budget - elapsed - 30)
        if limit < min(30, LIMITS[name]):
            reason = f"the suite's {args.budget:.0f} s budget is spent"
            record["parts"][name] = {"status": "skipped", "reason": reason}
            print(f"         {name}: skipped ({reason})", flush=True)
            continue
        print(f"[{elapsed:6.0f} s] {name}...", flush=True)
        with tempfile.TemporaryDirectory() as work:
            result_path = Path(work) / "part.json"
            command = [sys.executable, str(Path(__file__).resolve()), "--part", name]
            command += ["--part-out", str(result_path), "--part-limit", str(limit)]
            command += ["--dry-run"] if args.dry_run else []
            try:
                done = subprocess.run(
                    command, capture_output=True, text=True, env=env, timeout=limit + 30
                )
                if result_path.exists():
                    part = json.loads(result_path.read_text())
                else:
                    part = {
                        "status": "failed",
                        "error": f"exited {done.returncode}: {done.stderr[-2000:]}",
                    }
            except subprocess.TimeoutExpired:
                part = {"status": "failed", "error": f"ran past its {limit + 30:.0f} s"}
        record["parts"][name] = part
        print(
            f"         {name}: {part['status']} "
            f"{part.get('reason') or part.get('error', '')[:200]}",
            flush=True,
        )
    record["seconds"] = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2, default=str) + "\n")
    table = markdown(record)
    args.out.with_suffix(".md").write_text(table)
    print(table)
    print(f"written to {args.out} and {args.out.with_suffix('.md')} in {record['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
