"""Benchmark: latent_jax against pythae, the same models trained the same way, side by side.

pythae (Chadebec et al. 2022, PyTorch) is the library a VAE researcher compares with. Five of
its models, each with the same architecture, data, batch size, optimizer and epochs on both
sides:

* ``vae``: the MLP VAE 784-500-20 with tanh, a Bernoulli likelihood (binary cross-entropy on
  the grey levels, as pythae's ``reconstruction_loss="bce"``);
* ``iwae``: the same networks, the IWAE bound with K = 10 draws (pythae's default
  ``number_samples``);
* ``vamp``: the same networks under a VampPrior of 500 pseudo-inputs clipped to [0, 1]
  (Tomczak & Welling's MNIST setting; pythae's ``VAMP`` makes them as a hard tanh of a linear
  layer with a bias applied to the identity, 784 parameters more), no KL warm-up on either
  side;
* ``beta-tcvae``: the same networks, β-TC-VAE with α = 1, β = 6, γ = 1 and the minibatch
  stratified sampling estimator (pythae's ``use_mss=True``, latent_jax's ``estimator="mss"``);
* ``vq-vae``: the convolutional VQ-VAE of :class:`latent_jax.models.vqvae.VQVAE` (two stride-2
  4x4 convolutions of 64 channels, two residual blocks, codes of D = 16 on a 7x7 grid, K = 64
  entries, two transposed convolutions back to 28x28), written again in PyTorch for pythae
  (the same layers and parameter count, checked before timing), the summed squared error, the
  commitment weight 0.25. The codebook and commitment terms are each library's own: pythae
  averages them over the grid and D, latent_jax sums them as the paper writes them.

Data: mnist-5k's fixed 4,000 / 1,000 split (``latent_jax.experiments.iwae_table1.load_split``,
exported to an .npz before any timing, which both workers read with NumPy), grey levels in
[0, 1], the test digits evaluated after every epoch on both sides (pythae's
``eval_dataset``; latent_jax's ``test_x``) with evaluation batches of 256. Adam at 1e-3,
batch 128, shuffled every epoch. Both save the trained model at the end (pythae's trainer
always does; latent_jax is given a ``checkpoint_dir``).

Every run is a fresh process (``subprocess``), as a user runs a script: interpreter start,
imports, data, model, compilation and training all count. For each model and run length
(10 and 60 epochs) a round runs pythae, latent_jax *cold* (no compilation cache: every program
compiles) and latent_jax *warm* (the persistent compilation cache of
:mod:`latent_jax.persistent_cache`, filled by an untimed run before the rounds), interleaved,
``--repeats`` times; the table reports medians. Measured in each run, from the spawn:

* ``train_s``: the training call (pythae: building the trainer and ``trainer.train()``;
  latent_jax: building the objective and ``fit``), which includes latent_jax's compilation;
* ``process_s``: spawn to the end of training (plus the interpreter, imports and data);
* ``first_epoch_s``: from the training call's start to the end of epoch 1;
* ``steady_s_per_epoch``: the median epoch time after epoch 5 (latent_jax runs several epochs
  per compiled call, each call's time shared equally among its epochs).

After timing, the 60-epoch runs are scored with one estimator for both libraries: pythae's
trained weights are copied into the same latent_jax model (weights transposed, equal parameter
counts), and the test NLL of the MLP models is the importance-sampled bound with K = 1000 draws
per digit (:func:`latent_jax.metrics.iwae_bound`, the same key for both), in nats; the VQ-VAE's
score is the test set's summed squared error per digit.

Usage::

    python benchmarks/bench_vs_pythae.py                          # 3 repeats, ~40 min on 2 cores
    python benchmarks/bench_vs_pythae.py --repeats 1 --only vae --lengths 10

Needs the ``bench`` extra (``pip install -e ".[bench]"``: torch and pythae). Writes
``benchmarks/results/vs_pythae/bench_vs_pythae.json`` and prints the markdown table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

MODELS = ("vae", "iwae", "vamp", "beta-tcvae", "vq-vae")
LENGTHS = (10, 60)
VARIANTS = ("pythae", "latent_jax cold", "latent_jax warm")
BATCH_SIZE = 128
EVAL_BATCH_SIZE = 256
LEARNING_RATE = 1e-3
HIDDEN, LATENT = 500, 20
IWAE_K = 10
PSEUDO_INPUTS = 500
TCVAE = {"alpha": 1.0, "beta": 6.0, "gamma": 1.0}
VQ = {"latent_dim": 16, "codebook_size": 64, "hidden_dim": 64, "commitment": 0.25}
NLL_K = 1000
STEADY_FROM = 5
RESULTS = Path(__file__).resolve().parent / "results" / "vs_pythae"


# ----------------------------------------------------------------------------- shared


def _export_data(path: Path) -> None:
    """Writes mnist-5k's split to ``path`` (.npz) with latent_jax's loader, before any timing,
    so that neither worker pays for the other library's imports to read it."""
    from latent_jax.experiments.iwae_table1 import load_split

    train, test = load_split()
    np.savez(path, train=train.astype(np.float32), test=test.astype(np.float32))


def _load_data(path: str, images: bool) -> tuple[np.ndarray, np.ndarray]:
    """The exported split: rows of 784 in [0, 1], or images (n, 28, 28, 1) for the VQ-VAE."""
    with np.load(path) as arrays:
        train, test = arrays["train"], arrays["test"]
    if images:
        return train.reshape(-1, 28, 28, 1), test.reshape(-1, 28, 28, 1)
    return train, test


def _steady(epoch_seconds: list[float]) -> float:
    tail = epoch_seconds[STEADY_FROM:] or epoch_seconds[1:] or epoch_seconds
    return float(statistics.median(tail))


def _latent_jax_model(name: str) -> Any:
    from latent_jax.models.mlp import VAE
    from latent_jax.models.vampprior import VampPrior
    from latent_jax.models.vqvae import VQVAE

    if name == "vq-vae":
        return VQVAE(
            image_shape=(28, 28, 1),
            latent_dim=VQ["latent_dim"],
            codebook_size=VQ["codebook_size"],
            hidden_dim=VQ["hidden_dim"],
        )
    vae = VAE(input_dim=784, hidden_dims=(HIDDEN,), latent_dim=LATENT, activation="tanh")
    if name == "vamp":
        return VampPrior(vae=vae, n_pseudo_inputs=PSEUDO_INPUTS, pseudo_input_range=(0.0, 1.0))
    return vae


def _latent_jax_objective(name: str, model: Any) -> Any:
    from latent_jax import objectives

    if name == "vae":
        return objectives.vae_objective(model, likelihood="bernoulli")
    if name == "iwae":
        return objectives.iwae_objective(model, IWAE_K, likelihood="bernoulli")
    if name == "vamp":
        return objectives.vamp_objective(
            model, n_pseudo_inputs=PSEUDO_INPUTS, likelihood="bernoulli"
        )
    if name == "beta-tcvae":
        return objectives.beta_tcvae_objective(
            model, estimator="mss", likelihood="bernoulli", **TCVAE
        )
    return objectives.vq_vae_objective(model, commitment=VQ["commitment"], likelihood="sse")


def _score(name: str, model: Any, variables: Any, test: np.ndarray, seed: int) -> dict:
    """The test NLL (MLP models) or summed squared error per digit (VQ-VAE), in one way for
    both libraries."""
    import jax

    from latent_jax import metrics

    if name == "vq-vae":
        out = model.apply(variables, test)
        sse = np.sum((np.asarray(out.reconstruction) - test) ** 2, axis=(1, 2, 3))
        return {"test_sse_per_digit": float(np.mean(sse))}
    key = jax.random.fold_in(jax.random.key(seed), 12345)
    bound = metrics.iwae_bound(
        model, variables, test, key, num_samples=NLL_K, likelihood="bernoulli"
    )
    return {"test_nll": float(-np.mean(np.asarray(bound)))}


def _count(tree: Any) -> int:
    import jax

    return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(tree)))


# ----------------------------------------------------------------------------- latent_jax


def _run_latent_jax(args: argparse.Namespace, stamp: dict) -> dict:
    import jax

    from latent_jax import persistent_cache
    from latent_jax.train import TrainConfig, fit

    if args.cache_dir:
        persistent_cache.enable(args.cache_dir)
    stamp["imports"] = time.time()
    train, test = _load_data(args.data, args.model == "vq-vae")
    stamp["data"] = time.time()
    epoch_ends: list[float] = []

    def on_epoch(state: Any, history: Any) -> None:
        epoch_ends.append(time.time())

    with tempfile.TemporaryDirectory() as checkpoints:
        stamp["train_start"] = time.time()
        model = _latent_jax_model(args.model)
        objective = _latent_jax_objective(args.model, model)
        config = TrainConfig(
            learning_rate=LEARNING_RATE,
            batch_size=BATCH_SIZE,
            eval_batch_size=EVAL_BATCH_SIZE,
            epochs=args.epochs,
            quiet=True,
            checkpoint_dir=checkpoints,
        )
        state, history = fit(
            objective,
            train,
            test,
            config,
            jax.random.key(args.seed),
            callbacks=[on_epoch],
        )
        jax.block_until_ready(state.params)
        stamp["train_end"] = time.time()
    variables = {"params": state.params, **state.model_state}
    epoch_seconds = [float(s) for s in np.asarray(history["epoch_time"])]
    record = {
        "first_epoch_s": epoch_ends[0] - stamp["train_start"],
        "epoch_seconds": epoch_seconds,
        "parameters": _count(state.params),
        "final_train_loss": float(np.asarray(history["train_loss"])[-1]),
        "final_test_loss": float(np.asarray(history["test_loss"])[-1]),
    }
    if args.evaluate:
        record.update(_score(args.model, objective.model, variables, test, args.seed))
    return record


# ----------------------------------------------------------------------------- pythae


def _torch_networks(name: str) -> tuple[Any, Any]:
    """pythae's encoder and decoder with latent_jax's layers (see the module docstring)."""
    import torch
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from torch import nn

    if name != "vq-vae":

        class Encoder(BaseEncoder):
            def __init__(self) -> None:
                super().__init__()
                self.trunk = nn.Linear(784, HIDDEN)
                self.mean = nn.Linear(HIDDEN, LATENT)
                self.logvar = nn.Linear(HIDDEN, LATENT)

            def forward(self, x: Any) -> Any:
                h = torch.tanh(self.trunk(x.reshape(len(x), -1)))
                return ModelOutput(embedding=self.mean(h), log_covariance=self.logvar(h))

        class Decoder(BaseDecoder):
            def __init__(self) -> None:
                super().__init__()
                self.hidden = nn.Linear(LATENT, HIDDEN)
                self.out = nn.Linear(HIDDEN, 784)

            def forward(self, z: Any) -> Any:
                logits = self.out(torch.tanh(self.hidden(z)))
                return ModelOutput(reconstruction=torch.sigmoid(logits))

        return Encoder(), Decoder()

    hidden, dim = VQ["hidden_dim"], VQ["latent_dim"]

    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv3 = nn.ModuleList(nn.Conv2d(hidden, hidden, 3, padding=1) for _ in "ab")
            self.conv1 = nn.ModuleList(nn.Conv2d(hidden, hidden, 1) for _ in "ab")

        def forward(self, x: Any) -> Any:
            for conv3, conv1 in zip(self.conv3, self.conv1, strict=True):
                x = x + conv1(torch.relu(conv3(torch.relu(x))))
            return torch.relu(x)

    class VQEncoder(BaseEncoder):
        def __init__(self) -> None:
            super().__init__()
            self.down0 = nn.Conv2d(1, hidden, 4, stride=2, padding=1)
            self.down1 = nn.Conv2d(hidden, hidden, 4, stride=2, padding=1)
            self.conv = nn.Conv2d(hidden, hidden, 3, padding=1)
            self.blocks = Residual()
            self.to_code = nn.Conv2d(hidden, dim, 1)

        def forward(self, x: Any) -> Any:
            h = torch.relu(self.down1(torch.relu(self.down0(x))))
            return ModelOutput(embedding=self.to_code(self.blocks(self.conv(h))))

    class VQDecoder(BaseDecoder):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(dim, hidden, 3, padding=1)
            self.blocks = Residual()
            self.up0 = nn.ConvTranspose2d(hidden, hidden, 4, stride=2, padding=1)
            self.up1 = nn.ConvTranspose2d(hidden, 1, 4, stride=2, padding=1)

        def forward(self, z: Any) -> Any:
            h = self.blocks(self.conv(z))
            return ModelOutput(reconstruction=self.up1(torch.relu(self.up0(h))))

    return VQEncoder(), VQDecoder()


def _pythae_model(name: str) -> Any:
    from pythae import models

    encoder, decoder = _torch_networks(name)
    if name == "vq-vae":
        config = models.VQVAEConfig(
            input_dim=(1, 28, 28),
            latent_dim=VQ["latent_dim"],
            num_embeddings=VQ["codebook_size"],
            commitment_loss_factor=VQ["commitment"],
            quantization_loss_factor=1.0,
        )
        return models.VQVAE(config, encoder=encoder, decoder=decoder)
    common = {"input_dim": (1, 28, 28), "latent_dim": LATENT, "reconstruction_loss": "bce"}
    if name == "vae":
        return models.VAE(models.VAEConfig(**common), encoder=encoder, decoder=decoder)
    if name == "iwae":
        config = models.IWAEConfig(number_samples=IWAE_K, **common)
        return models.IWAE(config, encoder=encoder, decoder=decoder)
    if name == "vamp":
        config = models.VAMPConfig(number_components=PSEUDO_INPUTS, **common)
        return models.VAMP(config, encoder=encoder, decoder=decoder)
    config = models.BetaTCVAEConfig(use_mss=True, **TCVAE, **common)
    return models.BetaTCVAE(config, encoder=encoder, decoder=decoder)


def _linear(layer: Any) -> dict:
    return {
        "kernel": layer.weight.detach().numpy().T.copy(),
        "bias": layer.bias.detach().numpy().copy(),
    }


def _ported_variables(name: str, model: Any) -> dict:
    """pythae's trained weights in the latent_jax model's layout (the MLP models)."""
    encoder, decoder = model.encoder, model.decoder
    params = {
        "trunk": {"dense0": _linear(encoder.trunk)},
        "mean_layer": _linear(encoder.mean),
        "logvar_layer": _linear(encoder.logvar),
        "decoder": {"dense0": _linear(decoder.hidden), "dense1": _linear(decoder.out)},
    }
    if name == "vamp":
        # pythae: the pseudo-inputs are hardtanh(I W^T + b) of a Linear(K, 784) applied to the
        # identity, so W^T + b are the unclipped pseudo-inputs; latent_jax clips its own to
        # the same range (pseudo_input_range).
        layer = model.pseudo_inputs[0]
        inputs = layer.weight.detach().numpy().T + layer.bias.detach().numpy()
        params = {"vae": params, "pseudo_inputs": inputs}
    return {"params": params}


def _vq_score(model: Any, test: np.ndarray) -> dict:
    import torch

    with torch.no_grad():
        x = torch.from_numpy(test.transpose(0, 3, 1, 2).copy())
        out = model({"data": x})
        recon = out.recon_x.numpy().transpose(0, 2, 3, 1)
    sse = np.sum((recon - test) ** 2, axis=(1, 2, 3))
    return {"test_sse_per_digit": float(np.mean(sse))}


def _run_pythae(args: argparse.Namespace, stamp: dict) -> dict:
    import torch
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig
    from pythae.trainers.training_callbacks import TrainingCallback

    stamp["imports"] = time.time()
    train, test = _load_data(args.data, args.model == "vq-vae")
    # pythae's data are (n, channels, height, width); its MLP models flatten them.
    train_c, test_c = (np.ascontiguousarray(a.reshape(-1, 1, 28, 28)) for a in (train, test))
    stamp["data"] = time.time()
    epoch_ends: list[float] = []

    class EpochClock(TrainingCallback):
        def on_epoch_end(self, training_config: Any, **kwargs: Any) -> None:
            epoch_ends.append(time.time())

    with tempfile.TemporaryDirectory() as output_dir:
        stamp["train_start"] = time.time()
        torch.manual_seed(args.seed)
        model = _pythae_model(args.model)
        config = BaseTrainerConfig(
            output_dir=output_dir,
            learning_rate=LEARNING_RATE,
            per_device_train_batch_size=BATCH_SIZE,
            per_device_eval_batch_size=EVAL_BATCH_SIZE,
            num_epochs=args.epochs,
            no_cuda=True,
            seed=args.seed,
        )
        pipeline = TrainingPipeline(model=model, training_config=config)
        pipeline(train_data=train_c, eval_data=test_c, callbacks=[EpochClock()])
        stamp["train_end"] = time.time()
    model = model.eval()  # trained in place: the last epoch's weights, as latent_jax's
    ends = [stamp["train_start"], *epoch_ends]
    record = {
        "first_epoch_s": epoch_ends[0] - stamp["train_start"],
        "epoch_seconds": [b - a for a, b in itertools.pairwise(ends)],
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "torch_threads": torch.get_num_threads(),
    }
    if args.evaluate:
        if args.model == "vq-vae":
            record.update(_vq_score(model, test))
        else:
            import jax

            variables = _ported_variables(args.model, model)
            ours = _latent_jax_model(args.model)
            shapes = jax.eval_shape(
                lambda: ours.init(jax.random.key(0), test[:2], jax.random.key(1))
            )
            record["ported_parameters"] = _count(variables)
            if record["ported_parameters"] != _count(shapes):
                raise RuntimeError("pythae's networks do not match latent_jax's layer for layer")
            record.update(_score(args.model, ours, variables, test, args.seed))
    return record


# ----------------------------------------------------------------------------- driver


def _worker(args: argparse.Namespace) -> None:
    stamp: dict[str, float] = {"spawn": args.spawn_time}
    run = _run_pythae if args.library == "pythae" else _run_latent_jax
    record = run(args, stamp)
    record.update(
        {
            "library": args.library,
            "model": args.model,
            "epochs": args.epochs,
            "seed": args.seed,
            "train_s": stamp["train_end"] - stamp["train_start"],
            "process_s": stamp["train_end"] - stamp["spawn"],
            "imports_s": stamp["imports"] - stamp["spawn"],
            "data_s": stamp["data"] - stamp["imports"],
            "steady_s_per_epoch": _steady(record["epoch_seconds"]),
        }
    )
    Path(args.result).write_text(json.dumps(record, indent=1))


def _spawn(
    library: str,
    model: str,
    epochs: int,
    seed: int,
    *,
    data: Path,
    cache: str | None,
    evaluate: bool,
    log: Path,
) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        result = handle.name
    argv = [sys.executable, __file__, "--worker", library, "--model", model]
    argv += ["--epochs", str(epochs), "--seed", str(seed), "--result", result]
    argv += ["--data", str(data)]
    if cache:
        argv += ["--cache-dir", cache]
    if evaluate:
        argv += ["--evaluate"]
    env = {key: value for key, value in os.environ.items() if key != "XLA_FLAGS"}
    env["LATENT_JAX_NO_COMPILE_CACHE"] = "1"  # only --cache-dir turns the cache on
    argv += ["--spawn-time", repr(time.time())]
    with open(log, "a", encoding="utf-8") as out:
        code = subprocess.run(argv, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    if code:
        raise SystemExit(f"{' '.join(argv)} failed ({code}); see {log}")
    record = json.loads(Path(result).read_text())
    os.unlink(result)
    return record


def _median(records: list[dict], key: str) -> float | None:
    values = [r[key] for r in records if key in r]
    return float(statistics.median(values)) if values else None


def _summary(runs: list[dict]) -> list[dict]:
    rows = []
    keys = sorted(
        {(r["model"], r["epochs"], r["variant"]) for r in runs},
        key=lambda k: (MODELS.index(k[0]), k[1], VARIANTS.index(k[2])),
    )
    for model, epochs, variant in keys:
        group = [
            r for r in runs if (r["model"], r["epochs"], r["variant"]) == (model, epochs, variant)
        ]
        row = {"model": model, "epochs": epochs, "variant": variant, "runs": len(group)}
        for key in (
            "train_s",
            "process_s",
            "first_epoch_s",
            "steady_s_per_epoch",
            "test_nll",
            "test_sse_per_digit",
        ):
            row[key] = _median(group, key)
        rows.append(row)
    return rows


def _table(rows: list[dict]) -> str:
    """The markdown table of ``benchmarks/README.md``: medians, and pythae's time over
    latent_jax's (above 1: latent_jax is ahead)."""
    lines = [
        "| model | epochs | pythae s | latent_jax cold s | latent_jax warm s | pythae / cold "
        "| pythae / warm | s/epoch pythae | s/epoch latent_jax | first epoch pythae "
        "| first epoch latent_jax cold / warm | test score pythae | test score latent_jax |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    cells = {(r["model"], r["epochs"], r["variant"]): r for r in rows}

    def score(row: dict) -> str:
        value = row.get("test_nll") or row.get("test_sse_per_digit")
        return "" if value is None else f"{value:.2f}"

    for model, epochs, variant in cells:
        if variant != "pythae":
            continue
        p, c, w = (cells.get((model, epochs, v), {}) for v in VARIANTS)
        if not (c and w):
            continue
        lines.append(
            f"| {model} | {epochs} | {p['train_s']:.2f} | {c['train_s']:.2f} | "
            f"{w['train_s']:.2f} | {p['train_s'] / c['train_s']:.2f}x | "
            f"**{p['train_s'] / w['train_s']:.2f}x** | {p['steady_s_per_epoch']:.3f} | "
            f"{w['steady_s_per_epoch']:.3f} | {p['first_epoch_s']:.2f} | "
            f"{c['first_epoch_s']:.2f} / {w['first_epoch_s']:.2f} | {score(p)} | {score(w)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--lengths", nargs="+", type=int, default=list(LENGTHS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS / "bench_vs_pythae.json"))
    # The worker's flags (one run in a fresh process).
    parser.add_argument("--worker", choices=("pythae", "latent_jax"), dest="library")
    parser.add_argument("--model", choices=MODELS)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--result")
    parser.add_argument("--data")
    parser.add_argument("--cache-dir")
    parser.add_argument("--evaluate", action="store_true")
    parser.add_argument("--spawn-time", type=float)
    args = parser.parse_args(argv)
    if args.library:
        _worker(args)
        return

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    log = out.with_suffix(".log")
    log.write_text("")
    scratch = Path(tempfile.mkdtemp(prefix="bench-vs-pythae-"))
    data = scratch / "mnist-5k.npz"
    _export_data(data)
    runs: list[dict] = []
    started = time.time()
    try:
        for model in args.only:
            warm_cache = str(scratch / f"warm-{model}")
            for epochs in args.lengths:
                # Untimed: fills the warm cache with this length's programs (the compiled
                # chunk's length depends on the run's length) and reads every library's
                # files into the page cache.
                _spawn(
                    "latent_jax",
                    model,
                    epochs,
                    args.seed,
                    data=data,
                    cache=warm_cache,
                    evaluate=False,
                    log=log,
                )
                _spawn(
                    "pythae", model, 2, args.seed, data=data, cache=None, evaluate=False, log=log
                )
                for repeat in range(args.repeats):
                    evaluate = epochs == max(args.lengths) and repeat == 0
                    cold = str(scratch / f"cold-{model}-{epochs}-{repeat}")
                    for variant, library, cache in (
                        ("pythae", "pythae", None),
                        ("latent_jax cold", "latent_jax", cold),
                        ("latent_jax warm", "latent_jax", warm_cache),
                    ):
                        record = _spawn(
                            library,
                            model,
                            epochs,
                            args.seed,
                            data=data,
                            cache=cache,
                            evaluate=evaluate,
                            log=log,
                        )
                        record["variant"] = variant
                        record["repeat"] = repeat
                        runs.append(record)
                        print(
                            f"{model:>10} {epochs:>3} ep {variant:<16} train "
                            f"{record['train_s']:6.2f} s, process {record['process_s']:6.2f} s, "
                            f"{record['steady_s_per_epoch']:.3f} s/epoch",
                            flush=True,
                        )
                        shutil.rmtree(cold, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    import jax
    import torch

    rows = _summary(runs)
    payload = {
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "jax": jax.__version__,
            "torch": torch.__version__,
            "pythae": _pythae_version(),
        },
        "settings": {
            "data": "mnist-5k, 4,000 train / 1,000 test, grey levels in [0, 1]",
            "batch_size": BATCH_SIZE,
            "eval_batch_size": EVAL_BATCH_SIZE,
            "learning_rate": LEARNING_RATE,
            "mlp": f"784-{HIDDEN}-{LATENT}, tanh, Bernoulli",
            "iwae_k": IWAE_K,
            "pseudo_inputs": PSEUDO_INPUTS,
            "beta_tcvae": {**TCVAE, "estimator": "mss"},
            "vq_vae": VQ,
            "nll_k": NLL_K,
            "repeats": args.repeats,
            "seed": args.seed,
        },
        "total_minutes": (time.time() - started) / 60,
        "summary": rows,
        "runs": runs,
    }
    out.write_text(json.dumps(payload, indent=1))
    print(_table(rows))
    print(f"wrote {out}")


def _pythae_version() -> str:
    from importlib.metadata import version

    return version("pythae")


if __name__ == "__main__":
    main()
