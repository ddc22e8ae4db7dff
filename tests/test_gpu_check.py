"""The prepared device check (benchmarks/gpu_check.sh / .py) on a machine without a GPU: the
wrapper writes nothing and says so; the CPU smoke run goes through every step and its JSON says
it was not run on a GPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "src"), "PYTHON": sys.executable}


def test_wrapper_without_a_gpu_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--out", str(out)],
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("not run on a GPU:") and "nothing written" in proc.stdout
    assert not out.exists()


@pytest.mark.slow
def test_cpu_smoke_run_goes_through_every_step(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "gpu_check.py"),
            "--cpu-smoke",
            "--out",
            str(out),
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    assert data["status"] == "not run on a GPU (CPU smoke run)" and data["device"] == "cpu"
    for step in ("demo", "bf16_pretrain", "ddp", "profile"):
        assert "error" not in data[step], data[step]
    assert data["demo"]["completed"] is True
    assert (
        data["bf16_pretrain"]["precision"] == "bf16" and data["bf16_pretrain"]["images_per_s"] > 0
    )
    assert data["ddp"]["completed"] is True and data["ddp"]["ranks_2"]["exit_code"] == 0
    prof = data["profile"]
    assert prof["timed_on"] == "cpu" and prof["layers"] > 0
    assert -1.0 <= prof["kendall_tau"] <= 1.0 and -1.0 <= prof["retiming_kendall_tau"] <= 1.0
    assert set(data["targets"]) == {
        "demo_pipeline_cuda",
        "bf16_pretrain_images_per_s",
        "ddp_two_process_completed",
        "gpu_profile_kendall_tau",
    }
