"""Benchmark: scaling with the number of rows, data on disk (memory-mapped), memory flat.

(a) For N in 10^4 ... 10^7 rows of 50 float32 features, written once to a memory-mapped .npy
under /tmp (never held in RAM), each measurement in a fresh process:

* the streaming PCA (:func:`latent_jax.data.streaming.fit_pca_source`: memory-mapped chunks read
  by a background thread, Chan-merged moments): wall time and peak resident memory (VmHWM
  from /proc/self/status of the child);
* the autoencoder's epoch time with :func:`latent_jax.train.fit_stream` (the seed's
  50-30-10-5 autoencoder, batch 512, 64 steps per compiled call): the second epoch's time
  (the first includes compilation), throughput and peak resident memory.

(b) Where a GPU is present: samples/s of the seed's ConvVAE training step with latent_jax on
one GPU (the PyTorch side is benchmarks/bench_conv_vae.py); without one, it says so.

Usage::

    python benchmarks/bench_scaling.py                       # 1e4 ... 1e7 rows, ~5 minutes
    python benchmarks/bench_scaling.py --ae-sizes 1e4,1e5,1e6 # the autoencoder to 1e6 only
    python benchmarks/bench_scaling.py --quick               # 1e4 and 1e5 only

Writes benchmarks/results/bench_scaling.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

FEATURES = 50
CHUNK_ROWS = 65536
AE_BATCH = 512
AE_STEPS_PER_CALL = 64
RESULTS = Path(__file__).resolve().parent / "results" / "bench_scaling.json"


def rss_mb(field: str = "VmHWM") -> float:
    """This process's resident memory peak (``VmHWM``) or current (``VmRSS``), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def data_file(n: int, directory: str) -> str:
    """A memory-mapped (n, 50) float32 .npy of 3 Gaussian clusters, written chunk by chunk."""
    path = os.path.join(directory, f"scaling_{n}x{FEATURES}.npy")
    if os.path.exists(path):
        return path
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=3.0, size=(3, FEATURES)).astype(np.float32)
    array = np.lib.format.open_memmap(path + ".tmp", "w+", np.float32, (n, FEATURES))
    for start in range(0, n, 1 << 20):
        rows = min(1 << 20, n - start)
        labels = rng.integers(0, 3, rows)
        array[start : start + rows] = centres[labels] + rng.standard_normal(
            (rows, FEATURES), np.float32
        )
    array.flush()
    del array
    os.replace(path + ".tmp", path)
    return path


def pca_child(path: str) -> dict:
    from latent_jax.data import streaming

    start = time.perf_counter()
    state = streaming.fit_pca_source(path, 5, chunk_rows=CHUNK_ROWS)
    np.asarray(state.explained_variance)
    seconds = time.perf_counter() - start
    # VmHWM counts the memory map's file pages (page cache, reclaimable) that were touched;
    # RssAnon is the memory the process allocated itself.
    return {"seconds": seconds, "peak_rss_mb": rss_mb("VmHWM"), "rss_anon_mb": rss_mb("RssAnon")}


def ae_child(path: str) -> dict:
    import jax

    from latent_jax.models.mlp import Autoencoder
    from latent_jax.objectives import autoencoder_objective
    from latent_jax.train import TrainConfig, fit_stream

    objective = autoencoder_objective(Autoencoder())
    config = TrainConfig(batch_size=AE_BATCH, epochs=2, quiet=True, log_every=0)
    _, history = fit_stream(
        objective, path, None, config, jax.random.key(0), steps_per_call=AE_STEPS_PER_CALL
    )
    n = len(np.load(path, mmap_mode="r"))
    epoch = float(history["epoch_time"][-1])
    return {
        "epoch_s": epoch,
        "first_epoch_s": float(history["epoch_time"][0]),
        "rows_per_s": n / epoch,
        "train_loss": float(history["train_loss"][-1]),
        "peak_rss_mb": rss_mb("VmHWM"),
        "rss_anon_mb": rss_mb("RssAnon"),
    }


def run_child(kind: str, path: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, path],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def gpu_part() -> dict | None:
    import jax

    try:
        gpus = jax.devices("gpu")
    except RuntimeError:
        gpus = []
    if not gpus:
        print("(b) no GPU present: the ConvVAE GPU throughput comparison was not run")
        return None
    from latent_jax.models.conv import ConvVAE
    from latent_jax.objectives import vae_objective
    from latent_jax.train import TrainConfig, fit

    images = np.random.default_rng(0).uniform(size=(2048, 112, 92, 1)).astype(np.float32)
    config = TrainConfig(batch_size=32, epochs=3, quiet=True, log_every=0)
    _, history = fit(vae_objective(ConvVAE()), images, None, config, jax.random.key(0))
    rate = len(images) / float(np.median(history["epoch_time"][1:]))
    print(f"(b) {gpus[0].device_kind}: latent_jax ConvVAE {rate:.0f} samples/s (batch 32)")
    return {"device": gpus[0].device_kind, "latent_jax_samples_per_s": rate}


def parse_sizes(text: str) -> list[int]:
    return [int(float(v)) for v in text.split(",") if v]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--pca-sizes", type=parse_sizes, default=parse_sizes("1e4,1e5,1e6,1e7"))
    parser.add_argument("--ae-sizes", type=parse_sizes, default=parse_sizes("1e4,1e5,1e6,1e7"))
    parser.add_argument("--quick", action="store_true", help="1e4 and 1e5 rows only")
    parser.add_argument("--data-dir", default="/tmp", help="where the .npy files are written")
    parser.add_argument("--keep-data", action="store_true", help="keep the generated files")
    args = parser.parse_args()
    if args.child:
        kind, path = args.child
        print(json.dumps(pca_child(path) if kind == "pca" else ae_child(path)))
        return
    if args.quick:
        args.pca_sizes = args.ae_sizes = [10_000, 100_000]
    import jax

    rows = []
    sizes = sorted(set(args.pca_sizes) | set(args.ae_sizes))
    for n in sizes:
        start = time.perf_counter()
        path = data_file(n, args.data_dir)
        row = {"n": n, "gib": n * FEATURES * 4 / 2**30, "write_s": time.perf_counter() - start}
        if n in args.pca_sizes:
            row["pca"] = run_child("pca", path)
        if n in args.ae_sizes:
            row["ae"] = run_child("ae", path)
        rows.append(row)
        nan = float("nan")
        pca, ae = row.get("pca", {}), row.get("ae", {})
        print(
            f"N={n:>10,d} ({row['gib']:.2f} GiB)  PCA {pca.get('seconds', nan):7.2f} s "
            f"peak {pca.get('peak_rss_mb', nan):6.0f} MB   AE epoch "
            f"{ae.get('epoch_s', nan):7.2f} s peak {ae.get('peak_rss_mb', nan):6.0f} MB",
            flush=True,
        )
        if not args.keep_data:
            os.remove(path)
    gpu = gpu_part()
    record = {
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "jax": jax.__version__,
            "backend": jax.default_backend(),
            "load_average": os.getloadavg(),
        },
        "features": FEATURES,
        "chunk_rows": CHUNK_ROWS,
        "ae": {"batch_size": AE_BATCH, "steps_per_call": AE_STEPS_PER_CALL, "model": "50-30-10-5"},
        "rows": rows,
        "gpu": gpu,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
