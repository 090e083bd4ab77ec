"""Benchmark: ``latent_jax.fit_pca`` against scikit-learn's ``PCA``, side by side in one run.

For N in {1e4, 1e5, 1e6} x D in {50, 784} it times, on the same float64 NumPy data (the dtype
scikit-learn and the seed work in):

* ``fit_pca`` in JAX's default float32 (the data are converted block by block as they go to
  the device);
* scikit-learn's ``PCA`` with ``svd_solver`` ``auto``, ``full`` and ``covariance_eigh``;
* for reference, scikit-learn's ``covariance_eigh`` given a float32 copy of the data (its
  fastest configuration, at float32 accuracy);
* ``fit_pca`` with ``jax_enable_x64`` (float64), in a child process, against scikit-learn's
  fastest solver timed again in that process.

It reports median wall times, the ratio to scikit-learn's fastest solver (below 1 is faster)
and the largest relative difference of the retained components' explained variance from
scikit-learn's float64 result. Compile time is measured apart (the first call minus the
median). Then the streaming fit (``fit_pca_chunks``) runs on N in {1e6, 3e6, 1e7} x 50
generated chunk by chunk, each N in a fresh process, reporting time and peak resident memory.

Usage::

    python benchmarks/bench_pca.py                      # everything, about 10 minutes
    python benchmarks/bench_pca.py --quick              # small sizes only, a smoke run
    python benchmarks/bench_pca.py --sizes 100000x784 --no-x64 --no-streaming

The machine is shared and timings are noisy: compare the ratios, which are measured side by
side, rather than absolute times across runs.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "bench_pca.json"
N_COMPONENTS = 10
N_FACTORS = 16
GEN_CHUNK = 100_000
STREAM_CHUNK = 100_000
STREAM_FEATURES = 50
SOLVERS = ("auto", "full", "covariance_eigh")
# scikit-learn's full SVD needs the data, a centred copy and U (each N x D float64) at once.
FULL_SVD_MAX_ELEMENTS = 2 * 10**8


def repeats_for(n: int, d: int) -> int:
    """Fewer repeats for larger problems: about 10 minutes in all on two cores.

    Fits of a few milliseconds get many repeats: their medians move by 20% from run to run
    with 5.
    """
    elements = n * d
    if elements <= 10**6:
        return 31
    if elements <= 5 * 10**6:
        return 15
    if elements <= 10**7:
        return 5
    if elements <= 10**8:
        return 3
    return 2


def make_data(n: int, d: int, seed: int = 0, dtype=np.float64) -> np.ndarray:
    """Low-rank signal plus feature-wise noise and offsets, generated chunk by chunk.

    ``N_FACTORS`` latent factors with distinct scales give well separated leading eigenvalues;
    per-feature noise scales and offsets make the rest of the spectrum non-trivial and the data
    far from centred.
    """
    rng = np.random.default_rng([seed, n, d])
    mixing = rng.standard_normal((N_FACTORS, d)) / np.sqrt(d)
    mixing *= np.linspace(8.0, 2.0, N_FACTORS)[:, None] * np.sqrt(d / 50)
    noise_scale = np.linspace(0.5, 1.5, d)
    offset = 3.0 + rng.standard_normal(d)
    out = np.empty((n, d), dtype)
    for start in range(0, n, GEN_CHUNK):
        rows = min(GEN_CHUNK, n - start)
        chunk = rng.standard_normal((rows, N_FACTORS)) @ mixing
        chunk += rng.standard_normal((rows, d)) * noise_scale + offset
        out[start : start + rows] = chunk
    return out


def timed(fn, repeats: int) -> tuple[float, list[float], object]:
    """Median of ``repeats`` timed calls (after none: the caller warms up) and the last result."""
    times = []
    result = None
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, result


def max_rel_diff(got, ref) -> float:
    got = np.asarray(got, np.float64)
    ref = np.asarray(ref, np.float64)
    return float(np.max(np.abs(got - ref) / np.abs(ref)))


def machine_info() -> dict:
    import jax
    import sklearn
    from utilization import cpu_flags

    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_flags": cpu_flags(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "jax": jax.__version__,
        "jax_backend": jax.default_backend(),
        "sklearn": sklearn.__version__,
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        info["memory_gb"] = round(
            os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1
        )
    except (OSError, ValueError):
        pass
    try:
        info["load_average_at_start"] = os.getloadavg()
    except OSError:
        pass
    return info


def available_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 2**30


# ------------------------------------------------------------------------------------------
# One-shot fits
# ------------------------------------------------------------------------------------------


def bench_one_shot(n: int, d: int, *, x64: bool, sklearn_solvers: tuple[str, ...]) -> dict:
    """Times fit_pca and scikit-learn on one (n, d); x64 picks the JAX precision."""
    import jax
    from sklearn.decomposition import PCA

    from latent_jax.linear import fit_pca

    repeats = repeats_for(n, d)
    x = make_data(n, d)
    row: dict = {"n": n, "d": d, "n_components": N_COMPONENTS, "repeats": repeats}

    # scikit-learn on the float64 data.
    sk = {}
    sk_results = {}
    for solver in sklearn_solvers:
        if solver == "full" and n * d > FULL_SVD_MAX_ELEMENTS:
            sk[solver] = {
                "skipped": f"needs three {n}x{d} float64 arrays at once "
                f"({3 * n * d * 8 / 2**30:.0f} GiB) and is the slowest solver at every "
                "smaller size"
            }
            continue
        reps = 1 if solver == "full" and n * d > 10**6 else repeats
        median, times, est = timed(lambda s=solver: PCA(N_COMPONENTS, svd_solver=s).fit(x), reps)
        sk[solver] = {"median_s": median, "times_s": times}
        sk_results[solver] = est.explained_variance_
    row["sklearn"] = sk
    timed_solvers = [s for s in sk if "median_s" in sk[s]]
    fastest = min(timed_solvers, key=lambda s: sk[s]["median_s"])
    row["sklearn_fastest"] = fastest
    reference = sk_results["full"] if "full" in sk_results else sk_results["covariance_eigh"]

    # fit_pca: the first call compiles.
    start = time.perf_counter()
    jax.block_until_ready(fit_pca(x, N_COMPONENTS))
    first = time.perf_counter() - start
    median, times, state = timed(lambda: jax.block_until_ready(fit_pca(x, N_COMPONENTS)), repeats)
    ours = {
        "dtype": str(state.explained_variance.dtype),
        "median_s": median,
        "times_s": times,
        "compile_s": max(0.0, first - median),
        "ratio_to_sklearn_fastest": median / sk[fastest]["median_s"],
        "max_rel_diff_explained_variance": max_rel_diff(state.explained_variance, reference),
    }
    row["latent_jax"] = ours
    row["sklearn_max_rel_diff_between_solvers"] = max(
        (max_rel_diff(v, reference) for v in sk_results.values()), default=0.0
    )

    row["parts"] = time_parts(x, state.mean.dtype, repeats)

    if not x64:
        # scikit-learn's fastest configuration: a float32 copy, covariance_eigh.
        x32 = x.astype(np.float32)
        median32, times32, est32 = timed(
            lambda: PCA(N_COMPONENTS, svd_solver="covariance_eigh").fit(x32), repeats
        )
        row["sklearn_float32_input"] = {
            "solver": "covariance_eigh",
            "median_s": median32,
            "times_s": times32,
            "latent_jax_ratio": median / median32,
            "max_rel_diff_explained_variance": max_rel_diff(est32.explained_variance_, reference),
        }
        x32 = None
    x = None
    gc.collect()
    return row


def time_parts(x: np.ndarray, dtype, repeats: int) -> dict:
    """The fit's two parts in JAX against NumPy's BLAS and LAPACK, in the fit's dtype.

    The scatter product ``xc.T @ xc`` of the centred data (XLA against NumPy's ``@``) and the
    eigendecomposition of the D x D result (``jnp.linalg.eigh`` against ``np.linalg.eigh``),
    each on data already in memory (no transfer), medians of ``repeats`` calls.
    """
    import jax
    import jax.numpy as jnp

    xc = (x - x.mean(axis=0)).astype(dtype)
    scatter = xc.T @ xc
    device_xc, device_scatter = jax.device_put(xc), jax.device_put(scatter)
    product = jax.jit(lambda a: jnp.matmul(a.T, a, precision=jax.lax.Precision.HIGHEST))
    eigh = jax.jit(jnp.linalg.eigh)
    jax.block_until_ready((product(device_xc), eigh(device_scatter)))
    parts = {
        "dtype": str(np.dtype(dtype)),
        "jax_scatter_s": timed(lambda: product(device_xc).block_until_ready(), repeats)[0],
        "numpy_scatter_s": timed(lambda: xc.T @ xc, repeats)[0],
        "jax_eigh_s": timed(lambda: jax.block_until_ready(eigh(device_scatter)), repeats)[0],
        "numpy_eigh_s": timed(lambda: np.linalg.eigh(scatter), repeats)[0],
    }
    return parts


def run_one_shot(sizes, *, x64: bool, solvers) -> list[dict]:
    rows = []
    for n, d in sizes:
        need = n * d * 8 * (1.5 if not x64 else 1.0) + 2**30
        if need > available_bytes():
            rows.append({"n": n, "d": d, "skipped": f"needs about {need / 2**30:.1f} GiB"})
            print(f"skip {n}x{d}: not enough memory", file=sys.stderr)
            continue
        print(f"one-shot {n}x{d} ({'float64' if x64 else 'float32'})", file=sys.stderr)
        rows.append(bench_one_shot(n, d, x64=x64, sklearn_solvers=solvers))
    return rows


# ------------------------------------------------------------------------------------------
# Streaming
# ------------------------------------------------------------------------------------------


def stream_chunks(n: int, d: int, seed: int = 1):
    """Yields float32 chunks of a low-rank-plus-noise stream of n rows, never all at once."""
    rng = np.random.default_rng([seed, d])
    mixing = (rng.standard_normal((N_FACTORS, d)) * np.linspace(8.0, 2.0, N_FACTORS)[:, None]) / 7
    offset = (3.0 + rng.standard_normal(d)).astype(np.float32)
    noise_scale = np.linspace(0.5, 1.5, d, dtype=np.float32)
    for start in range(0, n, STREAM_CHUNK):
        rows = min(STREAM_CHUNK, n - start)
        crng = np.random.default_rng([seed, d, start])
        z = crng.standard_normal((rows, N_FACTORS), dtype=np.float32)
        chunk = crng.standard_normal((rows, d), dtype=np.float32) * noise_scale + offset
        chunk += z @ mixing.astype(np.float32)
        yield chunk


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident memory (``VmRSS``) or its peak (``VmHWM``), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def streaming_child(n: int) -> dict:
    """One streaming fit in this (fresh) process: time, memory and accuracy."""
    import jax

    from latent_jax.linear import fit_pca_chunks

    d = STREAM_FEATURES
    # Warm up (compile) on a short stream with the same chunk shape.
    jax.block_until_ready(fit_pca_chunks(stream_chunks(2 * STREAM_CHUNK, d), N_COMPONENTS))
    gc.collect()
    baseline = rss_mb()

    start = time.perf_counter()
    for _ in stream_chunks(n, d):
        pass
    generate_s = time.perf_counter() - start

    start = time.perf_counter()
    state = jax.block_until_ready(fit_pca_chunks(lambda: stream_chunks(n, d), N_COMPONENTS))
    fit_s = time.perf_counter() - start
    # Not getrusage's ru_maxrss: Linux carries it over from the parent through fork and exec,
    # so a child would report the parent's peak.
    peak = rss_mb("VmHWM")

    # Float64 reference: the same chunks, two passes in NumPy.
    total = np.zeros(d)
    for chunk in stream_chunks(n, d):
        total += chunk.sum(axis=0, dtype=np.float64)
    mean = total / n
    scatter = np.zeros((d, d))
    for chunk in stream_chunks(n, d):
        centred = chunk.astype(np.float64) - mean
        scatter += centred.T @ centred
    exact = np.linalg.eigvalsh(scatter / (n - 1))[::-1][:N_COMPONENTS]
    return {
        "n": n,
        "d": d,
        "chunk_rows": STREAM_CHUNK,
        "data_gib": n * d * 4 / 2**30,
        "fit_s_including_generation": fit_s,
        "generation_only_s": generate_s,
        "rss_before_mb": baseline,
        "peak_rss_mb": peak,
        "max_rel_diff_explained_variance_vs_float64": max_rel_diff(state.explained_variance, exact),
    }


def run_child(args: list[str], env_extra: dict | None = None) -> dict:
    env = dict(os.environ, **(env_extra or {}))
    out = subprocess.run(
        [sys.executable, __file__, *args], env=env, check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------


def fmt(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 0.01:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e3:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def table(results: dict) -> str:
    lines = [
        "| N × D | latent_jax f32 | sklearn auto | sklearn full | sklearn cov_eigh | "
        "ratio f32 | max rel. diff f32 | compile | latent_jax f64 | ratio f64 | "
        "max rel. diff f64 | sklearn cov_eigh on f32 copy | ratio | its max rel. diff |",
        "|" + "---|" * 14,
    ]
    x64_rows = {(r["n"], r["d"]): r for r in results.get("one_shot_x64", [])}
    for row in results["one_shot"]:
        if "skipped" in row:
            lines.append(f"| {row['n']}×{row['d']} | skipped: {row['skipped']} |" + " |" * 12)
            continue
        sk = row["sklearn"]

        def cell(solver, sk=sk):
            entry = sk.get(solver, {})
            return fmt(entry["median_s"]) if "median_s" in entry else "skipped"

        ours = row["latent_jax"]
        r64 = x64_rows.get((row["n"], row["d"]), {}).get("latent_jax")
        f32 = row.get("sklearn_float32_input", {})
        lines.append(
            f"| {row['n']:.0e}×{row['d']} | {fmt(ours['median_s'])} | {cell('auto')} | "
            f"{cell('full')} | {cell('covariance_eigh')} | "
            f"{ours['ratio_to_sklearn_fastest']:.2f} | "
            f"{ours['max_rel_diff_explained_variance']:.1e} | {fmt(ours['compile_s'])} | "
            + (
                f"{fmt(r64['median_s'])} | {r64['ratio_to_sklearn_fastest']:.2f} | "
                f"{r64['max_rel_diff_explained_variance']:.1e} | "
                if r64
                else "— | — | — | "
            )
            + (
                f"{fmt(f32['median_s'])} | {f32['latent_jax_ratio']:.2f} | "
                f"{f32['max_rel_diff_explained_variance']:.1e} |"
                if f32
                else "— | — | — |"
            )
        )
    lines += [
        "",
        "| N × D | dtype | scatter XLA | scatter NumPy | eigh XLA | eigh NumPy (LAPACK) |",
        "|" + "---|" * 6,
    ]
    for row in [*results["one_shot"], *results.get("one_shot_x64", [])]:
        parts = row.get("parts")
        if parts:
            lines.append(
                f"| {row['n']:.0e}×{row['d']} | {parts['dtype']} | "
                f"{fmt(parts['jax_scatter_s'])} | {fmt(parts['numpy_scatter_s'])} | "
                f"{fmt(parts['jax_eigh_s'])} | {fmt(parts['numpy_eigh_s'])} |"
            )
    if results.get("streaming"):
        lines += [
            "",
            "| streaming N × D | data | fit (incl. generation) | generation only | "
            "RSS before | peak RSS | max rel. diff vs float64 |",
            "|" + "---|" * 7,
        ]
        for row in results["streaming"]:
            lines.append(
                f"| {row['n']:.0e}×{row['d']} | {row['data_gib']:.2f} GiB | "
                f"{fmt(row['fit_s_including_generation'])} | {fmt(row['generation_only_s'])} | "
                f"{row['rss_before_mb']:.0f} MB | {row['peak_rss_mb']:.0f} MB | "
                f"{row['max_rel_diff_explained_variance_vs_float64']:.1e} |"
            )
    return "\n".join(lines)


def parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for item in text.split(","):
        n, d = item.lower().split("x")
        sizes.append((int(float(n)), int(d)))
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1e4x50,1e4x784,1e5x50,1e5x784,1e6x50,1e6x784")
    parser.add_argument("--quick", action="store_true", help="sizes 1e4x50,1e4x784 only")
    parser.add_argument("--no-x64", action="store_true", help="skip the float64 run")
    parser.add_argument("--no-streaming", action="store_true", help="skip the streaming run")
    parser.add_argument("--streaming-sizes", default="1e6,3e6,1e7")
    parser.add_argument("--output", type=Path, default=RESULTS)
    # Internal: child processes.
    parser.add_argument("--child-x64", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-streaming", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--solvers", default=",".join(SOLVERS), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child_streaming is not None:
        print(json.dumps(streaming_child(int(args.child_streaming))))
        return
    sizes = parse_sizes("1e4x50,1e4x784" if args.quick else args.sizes)
    if args.child_x64:
        import jax

        jax.config.update("jax_enable_x64", True)
        solvers = tuple(args.solvers.split(","))
        print(json.dumps(run_one_shot(sizes, x64=True, solvers=solvers)))
        return

    results: dict = {"machine": machine_info(), "n_components": N_COMPONENTS}
    wall = time.perf_counter()
    results["one_shot"] = run_one_shot(sizes, x64=False, solvers=SOLVERS)
    if not args.no_x64:
        print("one-shot float64 (child process)", file=sys.stderr)
        # Only scikit-learn's fastest solver at each size is timed again beside float64 JAX;
        # "auto" picks covariance_eigh at all of these sizes.
        results["one_shot_x64"] = run_child(
            [
                "--child-x64",
                "--sizes",
                ",".join(f"{n}x{d}" for n, d in sizes),
                "--solvers",
                "auto,covariance_eigh",
            ],
            {"JAX_ENABLE_X64": "1"},
        )
    if not args.no_streaming:
        results["streaming"] = []
        for n in parse_sizes_1d(args.streaming_sizes):
            print(f"streaming {n}x{STREAM_FEATURES} (child process)", file=sys.stderr)
            results["streaming"].append(run_child(["--child-streaming", str(n)]))
    results["wall_s"] = time.perf_counter() - wall
    results["machine"]["load_average_at_end"] = os.getloadavg()
    results["table_markdown"] = table(results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(results["table_markdown"])
    print(f"\nwritten to {args.output} in {results['wall_s']:.0f} s", file=sys.stderr)


def parse_sizes_1d(text: str) -> list[int]:
    return [int(float(item)) for item in text.split(",")]


if __name__ == "__main__":
    main()
