"""Benchmark: where the first ``fit`` call's compile time goes, and what the steady state costs.

Each measurement runs in a fresh child process (no in-memory or persistent compilation cache),
which builds one workload, registers a listener for JAX's own compile-time events
(``jax.monitoring``: tracing to a jaxpr, lowering to StableHLO, XLA's backend compile, summed
over every program the call compiles) and calls :func:`latent_jax.train.fit` three times:
the first call compiles, the other two are warm. Reported per workload and tree:

* ``first_call_overhead_s``: the first call's wall time minus the warm median: everything the
  first call pays once (tracing, lowering, compiling the initializer, the training chunk and
  the small programs around them);
* ``chunk_lower_s`` and ``chunk_compile_s``: the training chunk alone, timed by the engine as
  ``jax.jit(...).lower(...)`` and ``Lowered.compile()`` (``jax.stages``);
* ``trace_s``, ``lower_s``, ``backend_compile_s``: JAX's event totals over all programs;
* ``warm_s``: the warm calls' median wall time (the steady state, evaluation included).

``--baseline PATH`` measures a second source tree too (e.g. ``git worktree add /tmp/before
<commit>``), its children alternating with the current tree's, so that before and after see
the same machine. Workloads: ``example1`` (the seed's autoencoder, 500 epochs, batch 128, the
test split evaluated every epoch: ``latent-jax reduce``'s training), ``faces-demo`` (the
``vae --preset cpu-demo`` training: ConvVAE on 80 images of 25 x 25, batch 16, 40 epochs,
20 test images) and ``face-vae`` (the seed's ConvVAE on 320 images of 112 x 92, batch 64,
one epoch, 80 test images). Random images of the workloads' shapes stand in for the faces:
compile time depends on shapes only.

Usage::

    python benchmarks/bench_compile.py                              # this tree, ~2 minutes
    python benchmarks/bench_compile.py --baseline /tmp/before --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "bench_compile.json"
WORKLOADS = ("example1", "faces-demo", "face-vae")

# The child: one workload, three fit calls, JAX's compile events summed by phase.
CHILD = r"""
import collections, json, statistics, sys, time
import jax
import numpy as np
from jax import monitoring

events = collections.defaultdict(float)
def listen(name, secs, **_):
    events[name] += secs
monitoring.register_event_duration_secs_listener(listen)

import latent_jax
import latent_jax.train.compile as compile_module
from latent_jax import schedules
from latent_jax.data import load_tabular
from latent_jax.models.conv import ConvVAE
from latent_jax.models.mlp import Autoencoder
from latent_jax.objectives import autoencoder_objective, vae_objective
from latent_jax.train import TrainConfig, fit

# The chunk's lowering and compilation, timed apart (jax.stages) around the engine's call.
chunk = {}
original = compile_module._compile
def timed(fn, args, options, **jit_options):
    start = time.perf_counter()
    lowered = jax.jit(fn, **jit_options).lower(*args)
    chunk["lower"] = time.perf_counter() - start
    start = time.perf_counter()
    compiled = lowered.compile(options or None)
    chunk["compile"] = time.perf_counter() - start
    return compiled, chunk["lower"] + chunk["compile"]
compile_module._compile = timed

name = sys.argv[1]
rng = np.random.default_rng(0)
if name == "example1":
    data = load_tabular("synthetic-classification")
    objective = autoencoder_objective(Autoencoder(input_dim=50))
    x_train, x_test = data.x_train, data.x_test
    config = TrainConfig(learning_rate=1e-3, batch_size=128, epochs=500, quiet=True)
elif name == "faces-demo":
    images = rng.standard_normal((100, 25, 25, 1)).astype(np.float32)
    beta = schedules.make_schedule("monotonic", beta_max=1.0, tau=50.0)  # 10 epochs of 5 steps
    objective = vae_objective(ConvVAE(image_shape=(25, 25, 1)), beta)
    x_train, x_test = images[:80], images[80:]
    config = TrainConfig(learning_rate=5e-4, batch_size=16, epochs=40, quiet=True)
else:
    images = rng.standard_normal((400, 112, 92, 1)).astype(np.float32)
    beta = schedules.make_schedule("monotonic", beta_max=1 / 30, tau=1000.0)
    objective = vae_objective(ConvVAE(), beta)
    x_train, x_test = images[:320], images[320:]
    config = TrainConfig(learning_rate=1e-4, batch_size=64, epochs=1, quiet=True)

times, losses = [], []
for call in range(3):
    if call == 1:
        first_events = dict(events)
    start = time.perf_counter()
    state, history = fit(objective, x_train, x_test, config, jax.random.key(call))
    jax.block_until_ready(state.params)
    times.append(time.perf_counter() - start)
    losses.append(float(history["test_loss"][-1]))
warm = statistics.median(times[1:])
print(json.dumps({
    "tree": str(latent_jax.__file__),
    "first_s": times[0],
    "warm_s": warm,
    "warm_times": times[1:],
    "first_call_overhead_s": times[0] - warm,
    "chunk_lower_s": chunk.get("lower"),
    "chunk_compile_s": chunk.get("compile"),
    "trace_s": first_events.get("/jax/core/compile/jaxpr_trace_duration", 0.0),
    "lower_s": first_events.get("/jax/core/compile/jaxpr_to_mlir_module_duration", 0.0),
    "backend_compile_s": first_events.get("/jax/core/compile/backend_compile_duration", 0.0),
    "final_test_loss": losses,
}))
"""


def run_child(tree: Path, workload: str) -> dict:
    """One fresh process measuring ``workload`` with the latent_jax of ``tree``."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    env.pop("LATENT_JAX_CACHE_DIR", None)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, workload],
        env=env,
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{workload} in {tree} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not result["tree"].startswith(str(tree)):
        raise RuntimeError(f"the child imported {result['tree']}, not the tree {tree}")
    return result


def summarize(runs: list[dict]) -> dict:
    """Medians over repeats of every timing, and the runs themselves."""
    keys = [k for k, v in runs[0].items() if isinstance(v, float) and k != "tree"]
    summary = {k: statistics.median(r[k] for r in runs if r[k] is not None) for k in keys}
    summary["final_test_loss"] = [r["final_test_loss"] for r in runs]
    summary["runs"] = runs
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", type=Path, default=None, help="a second source tree")
    parser.add_argument("--only", choices=WORKLOADS, action="append", default=None)
    parser.add_argument("--repeats", type=int, default=1, help="children per workload and tree")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    from latent_jax.experiments.common import environment_info

    trees = {"current": ROOT}
    if args.baseline is not None:
        trees = {"baseline": args.baseline.resolve(), **trees}
    results: dict[str, dict[str, list]] = {w: {t: [] for t in trees} for w in WORKLOADS}
    for workload in args.only or WORKLOADS:
        for repeat in range(args.repeats):
            for label, tree in trees.items():
                r = run_child(tree, workload)
                results[workload][label].append(r)
                print(
                    f"{workload:10s} {label:8s} #{repeat + 1}: first call"
                    f" +{r['first_call_overhead_s']:.2f} s (chunk lower {r['chunk_lower_s']:.2f}"
                    f" + compile {r['chunk_compile_s']:.2f} s), warm {r['warm_s']:.2f} s",
                    flush=True,
                )
    summary = {
        w: {t: summarize(runs) for t, runs in by_tree.items() if runs}
        for w, by_tree in results.items()
        if any(by_tree.values())
    }
    record = {
        "benchmark": "compile",
        "environment": environment_info(),
        "trees": {label: str(tree) for label, tree in trees.items()},
        "repeats": args.repeats,
        "results": summary,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    print(
        f"\n{'workload':10s} {'tree':8s} {'1st call +s':>11s} {'chunk lower':>11s} "
        f"{'chunk compile':>13s} {'XLA compile':>11s} {'warm s':>7s}"
    )
    for w, by_tree in summary.items():
        for t, s in by_tree.items():
            print(
                f"{w:10s} {t:8s} {s['first_call_overhead_s']:11.2f} {s['chunk_lower_s']:11.2f} "
                f"{s['chunk_compile_s']:13.2f} {s['backend_compile_s']:11.2f} {s['warm_s']:7.2f}"
            )
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
