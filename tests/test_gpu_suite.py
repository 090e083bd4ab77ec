"""The GPU suite's dry run: every part at toy sizes through the code a GPU run takes, so the
suite is known to run end to end before a GPU is lent (``benchmarks/gpu_suite.py``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "benchmarks" / "gpu_suite.py"
sys.path.insert(0, str(SUITE.parent))

import gpu_suite  # noqa: E402


@pytest.mark.slow  # about 5 minutes on 2 cores: every part compiles its programs
def test_the_dry_run_runs_every_part(tmp_path):
    out = tmp_path / "suite.json"
    done = subprocess.run(
        [sys.executable, str(SUITE), "--dry-run", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=1500,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(out.read_text())
    assert record["dry_run"] is True
    assert record["machine"]["device"].startswith("cpu")
    assert set(record["parts"]) == set(gpu_suite.PARTS)
    for name, part in record["parts"].items():
        # A part may be skipped only for a package of the bench extra (torch, pythae).
        assert part["status"] in ("ok", "skipped"), (name, part.get("error"), part.get("traceback"))
        if part["status"] == "skipped":
            assert "bench extra" in part["reason"]
    assert record["parts"]["device_tests"]["counts"]["failures"] == 0
    assert record["parts"]["device_tests"]["counts"]["passed"] >= 1
    assert record["parts"]["bf16"]["example 1 MLP"]["bfloat16"]["flops_per_step"] > 0
    table = out.with_suffix(".md").read_text()
    assert table.count("| cpu") >= len(gpu_suite.PARTS)


def test_a_failed_part_is_a_row_not_the_end(tmp_path):
    record = {
        "machine": {"device": "gpu:NVIDIA H100"},
        "parts": {
            "example1": {"status": "failed", "error": "RuntimeError: out of memory"},
            "fit_many": {"status": "ok", "rows": [("fit_many 8 seeds, time over one", 1.2, None)]},
            "vs_pythae": {
                "status": "skipped",
                "reason": "pythae is not installed (the bench extra)",
            },
        },
    }
    table = gpu_suite.markdown(record)
    assert "| example1 | gpu:NVIDIA H100 | failed: RuntimeError: out of memory |" in table
    assert "| fit_many | gpu:NVIDIA H100 | fit_many 8 seeds, time over one | 1.2 |" in table
    assert "skipped: pythae is not installed" in table


def test_parts_past_the_budget_are_skipped_and_the_record_is_still_written(tmp_path):
    out = tmp_path / "suite.json"
    assert gpu_suite.main(["--budget", "1", "--parts", "pca", "fit_many", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    for name in ("pca", "fit_many"):
        assert record["parts"][name]["status"] == "skipped"
        assert "budget is spent" in record["parts"][name]["reason"]


def test_device_test_counts_survive_a_run_cut_short():
    stdout = "....sF..x. [ 40%]\n...E\n"
    assert gpu_suite._progress_counts(stdout) == {
        "passed": 10,
        "failures": 1,
        "errors": 1,
        "skipped": 2,
        "tests": 14,
    }
