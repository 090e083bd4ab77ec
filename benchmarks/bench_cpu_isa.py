"""Where XLA:CPU's time goes against PyTorch's oneDNN, by instruction set and XLA flag.

On a 2-core Xeon with AVX-512 (and AMX) example 1's lead over the tutorial's PyTorch loop
fell to 10x (16-18x on the CPU the first benchmarks ran on), and the MLP VAE of
``bench_vs_pythae.py`` ran at 1.8x pythae. This script measures, each configuration in a
fresh process (XLA reads ``XLA_FLAGS`` once):

* the float32 matrix-multiply peak (2048 x 2048) and the two layer products that dominate
  the MLP VAE (a batch of 128 through 784 -> 500 and 500 -> 784);
* the steady training step (compile apart) of example 1's autoencoder (50-30-10-5, batch 128)
  and of the MLP VAE (784-500-20, tanh, Bernoulli, batch 128), trained by ``fit``;

under XLA's default, ``--xla_cpu_max_isa=AVX2`` and ``=SSE4_2`` (the instruction sets of
older CPUs, on this one), Eigen single-threaded (``--xla_cpu_multi_thread_eigen=false``),
XLA's oneDNN and XNNPACK paths (``--xla_cpu_use_onednn``, ``--xla_cpu_use_xnnpack``), and
the same products and steps in PyTorch (oneDNN/MKL) with 2 threads and with 1. Every result
records the CPU's flags (:func:`utilization.machine`).

Usage::

    python benchmarks/bench_cpu_isa.py      # about 4 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "cpu_isa.json"
XLA_CONFIGS = {
    "XLA default": "",
    "XLA max ISA AVX2": "--xla_cpu_max_isa=AVX2",
    "XLA max ISA SSE4_2": "--xla_cpu_max_isa=SSE4_2",
    "XLA Eigen single-threaded": "--xla_cpu_multi_thread_eigen=false",
    "XLA with oneDNN": "--xla_cpu_use_onednn=true",
    "XLA with XNNPACK": "--xla_cpu_use_xnnpack=true",
}
TORCH_CONFIGS = {"PyTorch 2 threads": 2, "PyTorch 1 thread": 1}
# The MLP VAE's two large products at batch 128.
LAYER_PRODUCTS = {"128x784 @ 784x500": (128, 784, 500), "128x500 @ 500x784": (128, 500, 784)}


def _median_seconds(run, repeats: int = 20) -> float:
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def xla_child() -> dict:
    """Measurements of this process's XLA configuration."""
    import jax
    import jax.numpy as jnp

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import utilization

    from latent_jax.data import load_tabular
    from latent_jax.experiments.iwae_table1 import load_split
    from latent_jax.models.mlp import VAE, Autoencoder
    from latent_jax.objectives import autoencoder_objective, vae_objective
    from latent_jax.train import TrainConfig, fit

    out = {"machine": utilization.machine()}
    out["matmul_peak_gflops"] = utilization.matmul_peak_flops() / 1e9
    product = jax.jit(jnp.matmul)
    for name, (m, k, n) in LAYER_PRODUCTS.items():
        a = jax.random.normal(jax.random.key(0), (m, k))
        b = jax.random.normal(jax.random.key(1), (k, n))
        seconds = _median_seconds(lambda a=a, b=b: product(a, b).block_until_ready(), 200)
        out[f"matmul {name} us"] = seconds * 1e6
    data = load_tabular("synthetic-classification")
    mnist, _ = load_split()
    workloads = {
        "example 1 step ms": (autoencoder_objective(Autoencoder(input_dim=50)), data.x_train, 20),
        "MLP VAE step ms": (
            vae_objective(
                VAE(input_dim=784, hidden_dims=(500,), latent_dim=20, activation="tanh"),
                likelihood="bernoulli",
            ),
            mnist,
            2,
        ),
    }
    for name, (objective, x, epochs) in workloads.items():
        config = TrainConfig(batch_size=128, epochs=epochs, quiet=True)
        fit(objective, x, None, config, jax.random.key(0))  # compile
        steps = epochs * -(-len(x) // 128)
        seconds = _median_seconds(
            lambda o=objective, x=x, c=config: jax.block_until_ready(
                fit(o, x, None, c, jax.random.key(1))[0].params
            ),
            3,
        )
        out[name] = 1e3 * seconds / steps
    return out


def torch_child(threads: int) -> dict:
    """The same products and steps in PyTorch with ``threads`` threads."""
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    out = {"torch": torch.__version__, "mkldnn": torch.backends.mkldnn.is_available()}
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    out["matmul_peak_gflops"] = 2 * 2048**3 / _median_seconds(lambda: a @ b, 10) / 1e9
    for name, (m, k, n) in LAYER_PRODUCTS.items():
        x, w = torch.randn(m, k), torch.randn(k, n)
        out[f"matmul {name} us"] = _median_seconds(lambda x=x, w=w: x @ w, 200) * 1e6

    torch.manual_seed(0)
    ae = nn.Sequential(
        nn.Linear(50, 30),
        nn.LeakyReLU(0.1),
        nn.Linear(30, 10),
        nn.LeakyReLU(0.1),
        nn.Linear(10, 5),
        nn.Linear(5, 10),
        nn.LeakyReLU(0.1),
        nn.Linear(10, 30),
        nn.LeakyReLU(0.1),
        nn.Linear(30, 50),
    )
    enc = nn.Sequential(nn.Linear(784, 500), nn.Tanh(), nn.Linear(500, 40))
    dec = nn.Sequential(nn.Linear(20, 500), nn.Tanh(), nn.Linear(500, 784))

    ae_opt, ae_x = torch.optim.Adam(ae.parameters(), 1e-3), torch.randn(128, 50)
    vae_opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], 1e-3)
    vae_x = torch.rand(128, 784)

    def ae_step() -> None:
        ae_opt.zero_grad()
        loss = ((ae(ae_x) - ae_x) ** 2).mean()
        loss.backward()
        ae_opt.step()

    def vae_step() -> None:
        x = vae_x
        vae_opt.zero_grad()
        mean, logvar = enc(x).chunk(2, dim=1)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        logits = dec(z)
        rec = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="sum")
        kl = -0.5 * torch.sum(1 + logvar - mean**2 - logvar.exp())
        ((rec + kl) / 128).backward()
        vae_opt.step()

    out["example 1 step ms"] = _median_seconds(ae_step, 200) * 1e3
    out["MLP VAE step ms"] = _median_seconds(vae_step, 100) * 1e3
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", choices=("xla", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.child == "xla":
        print(json.dumps(xla_child()))
        return
    if args.child == "torch":
        print(json.dumps(torch_child(args.threads)))
        return

    results = {}
    runs = [(name, "xla", flags, 2) for name, flags in XLA_CONFIGS.items()]
    runs += [(name, "torch", "", threads) for name, threads in TORCH_CONFIGS.items()]
    for name, child, flags, threads in runs:
        env = {**os.environ, "XLA_FLAGS": flags}
        command = [sys.executable, __file__, "--child", child, "--threads", str(threads)]
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            name,
            {k: round(v, 3) for k, v in results[name].items() if isinstance(v, float)},
            flush=True,
        )
    keys = [
        "matmul_peak_gflops",
        "matmul 128x784 @ 784x500 us",
        "matmul 128x500 @ 500x784 us",
        "example 1 step ms",
        "MLP VAE step ms",
    ]
    lines = ["| configuration | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, values in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{values[k]:.3g}" for k in keys) + " |")
    table = "\n".join(lines) + "\n"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"results": results, "table": table}, indent=2) + "\n")
    print(table)


if __name__ == "__main__":
    main()
