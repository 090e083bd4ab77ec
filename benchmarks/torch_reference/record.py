"""The JSON record of a side-by-side benchmark against PyTorch: machine, versions, results."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch

from latent_jax.experiments.common import environment_info


def write_record(path: Path, benchmark: str, summary: dict, **runs: object) -> None:
    """Writes ``summary`` and the per-repeat ``runs`` to ``path`` as indented JSON.

    Args:
        path: the results file; its folder is created if missing.
        benchmark: the benchmark's name.
        summary: the medians and ratios the benchmark reports.
        **runs: the raw measurements, one list (or dict) per keyword.
    """
    record = {
        "benchmark": benchmark,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "torch_device": (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"),
        },
        "environment": environment_info(),
        "summary": summary,
        **runs,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
