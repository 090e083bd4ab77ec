"""Benchmark: time to result, from a fresh process to the last file written, against PyTorch.

Two jobs, each as a user runs it, every run a fresh process
(``subprocess.run([sys.executable, ...])``): interpreter start, imports, data, compilation,
training, figures and metrics all count.

* ``example1``, the seed's first example (500 epochs): ``python -m latent_jax reduce --quiet
  --overwrite --out DIR`` against ``torch_reference/time_to_result.py example1`` (the seed's
  data, scikit-learn's PCA, the seed's autoencoder and loop, the seed's three figures with
  matplotlib, a metrics.json).
* ``faces-demo``: ``python -m latent_jax vae --preset cpu-demo --quiet --overwrite --out DIR``
  (100 LFW faces of 25x25, 80 train / 20 test, 40 epochs, batch 16, Adam 5e-4, monotonic β with
  β_max 1 and τ 10 epochs, hidden 100, latent 10) against ``torch_reference/time_to_result.py
  faces-demo``: the seed's VAE at 25x25 (the same layers as ``ConvVAE(image_shape=(25, 25,
  1))``, 818,965 parameters on both sides, checked before timing), the seed's loss (summed
  squared error plus β·KL) and loop with the test split evaluated every epoch, then the six
  figures the demo writes and a metrics.json. The PyTorch process does not import jax: before
  any timing, this script loads the demo's data with latent_jax's own code
  (``vae_faces.resolve_arguments`` and ``vae_faces.load_data`` of ``--preset cpu-demo``) and
  exports the normalized train and test arrays (and the normalization, for display) to an
  .npz that the PyTorch process reads, so both train on identical arrays.

Timing: a run's time is from just before the spawn (``time.time()`` in this process) to the
largest modification time over the files the run wrote in its output folder (for both sides
that is the metrics.json, written last); the process's exit comes a little later and is
recorded as ``exit_seconds``. The breakdown comes from each run's metrics.json: latent_jax's
``train_seconds`` (the compiled epochs) and ``compile_seconds`` (the rest of ``fit``: tracing,
compiling or loading from the cache, initialization); PyTorch's ``import_seconds``,
``data_seconds``, ``train_seconds`` (the seed's epoch loop) and ``figure_seconds``, and
``startup_seconds`` (spawn to the program's first line: the interpreter's start); and for
every run the time from the spawn to each file's write (``file_seconds``, a timeline: for
latent_jax, config.json is written just before training starts and the checkpoint at its end).

Protocol: for each job, one untimed latent_jax run fills that job's warm compilation cache
(``LATENT_JAX_CACHE_DIR``), and one untimed ``python -c "import torch, sklearn, matplotlib"``
reads PyTorch's files into the OS page cache (the untimed latent_jax run does the same for
jax's; the page cache is not dropped between runs). Then ``--repeats`` rounds of: PyTorch,
latent_jax cold (``LATENT_JAX_CACHE_DIR`` a folder that does not exist yet, which the command
creates, so nothing is cached), PyTorch, latent_jax warm (the filled folder). PyTorch has no
compilation cache, so both of its runs are the same job; each latent_jax cell is compared with
the PyTorch runs interleaved with it. The table reports medians and the ratio PyTorch time /
latent_jax time per cell (above 1: latent_jax is ahead). Each latent_jax run also records how
many files its cache folder holds afterwards (a warm run that adds files recompiled something).
PyTorch keeps its default threads (every core) unless ``--torch-threads N`` is given; the runs
record ``torch.get_num_threads()``. (On a machine busy with other jobs, PyTorch's default
threads can be many times slower than one thread: its workers wait on each other.)

Usage::

    python benchmarks/bench_time_to_result.py                     # 3 repeats, ~15 min on 2 cores
    python benchmarks/bench_time_to_result.py --repeats 1 --only faces-demo --keep
    python benchmarks/bench_time_to_result.py --repeats 1 --torch-threads 1   # a busy machine
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from torch_reference.faces_vae import VAE, count_parameters
from torch_reference.record import write_record

from latent_jax import persistent_cache
from latent_jax.experiments import vae_faces
from latent_jax.models.conv import ConvVAE

ROOT = Path(__file__).resolve().parent.parent
RESULTS = (
    Path(__file__).resolve().parent / "results" / "time_to_result" / "bench_time_to_result.json"
)
TORCH_PROGRAM = Path(__file__).resolve().parent / "torch_reference" / "time_to_result.py"
JOBS = ("example1", "faces-demo")
CACHES = ("cold", "warm")
JAX_COMMANDS = {"example1": ["reduce"], "faces-demo": ["vae", "--preset", "cpu-demo"]}
# The metrics.json entries each side reports as its final losses.
FINAL_LOSSES = {
    "example1": ("ae_train_mse", "ae_test_mse", "ae_final_epoch_test_loss"),
    "faces-demo": ("final_train_loss", "final_test_loss", "final_kl", "test_mse_per_pixel"),
}


def write_times(folder: Path) -> dict[str, float]:
    """The modification time (``time.time()`` clock) of each file under ``folder``, by path.

    Raises:
        RuntimeError: if ``folder`` holds no file.
    """
    times = {
        str(path.relative_to(folder)): path.stat().st_mtime
        for path in folder.rglob("*")
        if path.is_file()
    }
    if not times:
        raise RuntimeError(f"the run wrote no file in {folder}")
    return times


def spawn(command: list[str], out: Path, env: dict[str, str]) -> dict:
    """Runs ``command`` in a fresh process; its time to the last file written in ``out``.

    Returns:
        ``{"seconds", "exit_seconds", "spawn_time", "file_seconds", "metrics"}``: spawn to the
        last write, spawn to exit, the spawn's ``time.time()``, spawn to each file's write (in
        the order written: the run's timeline), and the run's metrics.json.

    Raises:
        RuntimeError: if the process fails, with the end of its output.
    """
    start = time.time()
    process = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    end = time.time()
    if process.returncode != 0:
        tail = (process.stdout + process.stderr)[-3000:]
        raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}:\n{tail}")
    written = sorted((mtime - start, name) for name, mtime in write_times(out).items())
    return {
        "seconds": written[-1][0],
        "exit_seconds": end - start,
        "spawn_time": start,
        "file_seconds": {name: round(seconds, 3) for seconds, name in written},
        "metrics": json.loads((out / "metrics.json").read_text()),
    }


def run_jax(job: str, out: Path, cache: Path) -> dict:
    """One ``python -m latent_jax`` run of ``job`` with its compilation cache in ``cache``."""
    env = {**os.environ, persistent_cache.DIR_VARIABLE: str(cache)}
    env.pop(persistent_cache.DISABLE_VARIABLE, None)
    command = [sys.executable, "-m", "latent_jax", *JAX_COMMANDS[job]]
    result = spawn([*command, "--quiet", "--overwrite", "--out", str(out)], out, env)
    metrics = result.pop("metrics")
    return {
        **result,
        "train_seconds": metrics["train_seconds"],
        "compile_seconds": metrics["compile_seconds"],
        "cache_files": sum(1 for path in cache.rglob("*") if path.is_file()),
        "final": {name: metrics[name] for name in FINAL_LOSSES[job]},
        "n_parameters": metrics.get("n_parameters"),
    }


def run_torch(
    job: str, out: Path, faces: tuple[Path, argparse.Namespace] | None, threads: int | None
) -> dict:
    """One run of the PyTorch program for ``job``.

    Args:
        job: one of :data:`JOBS`.
        out: the run's output folder.
        faces: the demo's .npz and resolved flags (for ``faces-demo``).
        threads: ``torch.set_num_threads`` in the run, or ``None`` for PyTorch's default.
    """
    command = [sys.executable, str(TORCH_PROGRAM)]
    if threads is not None:
        command += ["--threads", str(threads)]
    command += [job, "--out", str(out)]
    if job == "faces-demo":
        data, demo = faces
        command += ["--data", str(data)]
        for name in (
            "epochs",
            "batch_size",
            "learning_rate",
            "beta_max",
            "beta_tau",
            "hidden_dim",
            "latent_dim",
            "seed",
        ):
            command += [f"--{name.replace('_', '-')}", repr(getattr(demo, name))]
    result = spawn(command, out, dict(os.environ))
    metrics = result.pop("metrics")
    return {
        **result,
        "startup_seconds": metrics["start_time"] - result["spawn_time"],
        **{
            name: metrics[name]
            for name in ("import_seconds", "data_seconds", "train_seconds", "figure_seconds")
        },
        "torch_threads": metrics["torch_threads"],
        "final": {name: metrics[name] for name in FINAL_LOSSES[job]},
        "n_parameters": metrics.get("n_parameters"),
    }


def export_faces(path: Path) -> tuple[argparse.Namespace, int]:
    """Writes the cpu-demo's normalized arrays to ``path``.

    Returns:
        The demo's resolved flags and the parameter count of its VAE.

    Raises:
        AssertionError: if the seed's PyTorch VAE at the demo's size and latent_jax's ConvVAE
            differ in parameter count.
    """
    parser = argparse.ArgumentParser()
    vae_faces.add_arguments(parser)
    demo = vae_faces.resolve_arguments(parser.parse_args(["--preset", "cpu-demo"]))
    dataset = vae_faces.load_data(demo)
    mean = np.asarray(dataset.normalizer.mean, np.float64)
    std = np.asarray(dataset.normalizer.std, np.float64)
    if mean.size != 1 or std.size != 1:
        raise AssertionError(f"the cpu-demo's normalization is not global: mean {mean.shape}")
    np.savez(path, x_train=dataset.x_train, x_test=dataset.x_test, mean=mean, std=std)

    image_shape = tuple(int(n) for n in dataset.x_train.shape[1:])
    model = ConvVAE(image_shape=image_shape, hidden_dim=demo.hidden_dim, latent_dim=demo.latent_dim)
    variables = jax.eval_shape(
        lambda: model.init(jax.random.key(0), jnp.zeros((1, *image_shape)), jax.random.key(1))
    )
    jax_count = sum(x.size for x in jax.tree.leaves(variables["params"]))
    torch_count = count_parameters(VAE(demo.hidden_dim, demo.latent_dim, image_shape[:2]))
    if jax_count != torch_count:
        raise AssertionError(f"ConvVAE has {jax_count} parameters, the PyTorch VAE {torch_count}")
    print(
        f"faces-demo data: {len(dataset.x_train)} train / {len(dataset.x_test)} test images of "
        f"{'x'.join(map(str, image_shape))}; {jax_count:,} parameters on both sides",
        flush=True,
    )
    return demo, jax_count


def median(runs: list[dict], name: str) -> float:
    """The median of ``name`` over ``runs``."""
    return statistics.median(run[name] for run in runs)


def summarize(job: str, torch_runs: list[dict], jax_runs: list[dict]) -> dict:
    """Medians, ratios and final losses of one job, per cache cell."""
    cells = {}
    for cache in CACHES:
        ours = [r for r in jax_runs if r["cache"] == cache]
        theirs = [r for r in torch_runs if r["cell"] == cache]
        torch_s, jax_s = median(theirs, "seconds"), median(ours, "seconds")
        cells[cache] = {
            "torch_median_seconds": torch_s,
            "jax_median_seconds": jax_s,
            "torch_over_jax": torch_s / jax_s,
            "jax_median_train_seconds": median(ours, "train_seconds"),
            "jax_median_compile_seconds": median(ours, "compile_seconds"),
            "jax_median_exit_seconds": median(ours, "exit_seconds"),
            "torch_median_exit_seconds": median(theirs, "exit_seconds"),
            **{
                f"torch_median_{name}": median(theirs, name)
                for name in (
                    "startup_seconds",
                    "import_seconds",
                    "data_seconds",
                    "train_seconds",
                    "figure_seconds",
                )
            },
        }
    finals = {}
    for side, runs in (("torch", torch_runs), ("jax", jax_runs)):
        for name in FINAL_LOSSES[job]:
            finals[f"{side}_median_{name}"] = statistics.median(r["final"][name] for r in runs)
    return {**cells, "final_losses": finals}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per cell")
    parser.add_argument("--only", choices=JOBS, help="run one job only")
    parser.add_argument("--output", type=Path, default=RESULTS, help="the JSON record")
    parser.add_argument("--keep", action="store_true", help="keep the temporary run folders")
    parser.add_argument(
        "--torch-threads", type=int, help="PyTorch's threads (default: PyTorch's, every core)"
    )
    args = parser.parse_args()
    for name in ("repeats", "torch_threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    jobs = (args.only,) if args.only else JOBS

    root = Path(tempfile.mkdtemp(prefix="time_to_result-"))
    print(f"run folders in {root}", flush=True)
    try:
        faces, n_parameters = None, None
        if "faces-demo" in jobs:
            demo, n_parameters = export_faces(root / "faces-demo.npz")
            faces = (root / "faces-demo.npz", demo)
        subprocess.run(
            [sys.executable, "-c", "import torch, sklearn.decomposition, matplotlib.pyplot"],
            check=True,
        )
        torch_runs, jax_runs, fill_runs = [], [], []

        def progress(side: str, job: str, cell: str, run: dict) -> None:
            print(
                f"  {side:<10} {job:<10} {cell:<5} {run['seconds']:7.2f} s to the last file "
                f"(train {run['train_seconds']:.2f} s)",
                flush=True,
            )

        for job in jobs:
            warm_cache = root / "cache" / f"{job}-warm"
            fill = run_jax(job, root / job / "jax-fill", warm_cache)
            fill_runs.append({"job": job, **fill})
            progress("latent_jax", job, "fill", fill)
            for repeat in range(args.repeats):
                print(f"{job}, repeat {repeat + 1}/{args.repeats}", flush=True)
                for cache in CACHES:
                    run = run_torch(
                        job, root / job / f"torch-{cache}-{repeat}", faces, args.torch_threads
                    )
                    torch_runs.append({"job": job, "cell": cache, "repeat": repeat, **run})
                    progress("PyTorch", job, cache, run)
                    cache_dir = (
                        warm_cache if cache == "warm" else root / "cache" / f"{job}-cold-{repeat}"
                    )
                    run = run_jax(job, root / job / f"jax-{cache}-{repeat}", cache_dir)
                    jax_runs.append({"job": job, "cache": cache, "repeat": repeat, **run})
                    progress("latent_jax", job, cache, run)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    summary = {"repeats": args.repeats, "torch_threads_flag": args.torch_threads}
    for job in jobs:
        summary[job] = summarize(
            job,
            [r for r in torch_runs if r["job"] == job],
            [r for r in jax_runs if r["job"] == job],
        )
    if n_parameters is not None:
        counts = {r["n_parameters"] for r in torch_runs + jax_runs if r["job"] == "faces-demo"}
        if counts != {n_parameters}:
            raise AssertionError(
                f"the faces-demo runs trained {counts} parameters, not {n_parameters}"
            )
        summary["faces-demo"]["n_parameters"] = n_parameters
    summary["torch_threads"] = sorted({r["torch_threads"] for r in torch_runs})
    write_record(
        args.output,
        "time_to_result",
        summary,
        torch_runs=torch_runs,
        jax_runs=jax_runs,
        jax_fill_runs=fill_runs,
    )

    print()
    print(
        "| job | latent_jax cache | PyTorch s | latent_jax s | PyTorch / latent_jax "
        "| latent_jax train + compile s | PyTorch import + train + figures s |"
    )
    print("|---|---|---|---|---|---|---|")
    for job in jobs:
        for cache in CACHES:
            cell = summary[job][cache]
            print(
                f"| {job} | {cache} | {cell['torch_median_seconds']:.1f} | "
                f"{cell['jax_median_seconds']:.1f} | {cell['torch_over_jax']:.2f}x | "
                f"{cell['jax_median_train_seconds']:.1f} + "
                f"{cell['jax_median_compile_seconds']:.1f} | "
                f"{cell['torch_median_import_seconds']:.1f} + "
                f"{cell['torch_median_train_seconds']:.1f} + "
                f"{cell['torch_median_figure_seconds']:.1f} |"
            )
    for job in jobs:
        finals = summary[job]["final_losses"]
        print(
            f"{job} final losses (median): "
            + ", ".join(
                f"{name} PyTorch {finals[f'torch_median_{name}']:.4g} / latent_jax "
                f"{finals[f'jax_median_{name}']:.4g}"
                for name in FINAL_LOSSES[job]
            )
        )
    print(f"\nwritten to {args.output}" + (f"; run folders kept in {root}" if args.keep else ""))


if __name__ == "__main__":
    main()
