"""The whole pipeline on a tiny config, driven through the CLI as a user would, ending with the
report, both exports and a prediction from the exported files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from harmonic_nas.cli import main
from harmonic_nas.config import load_run_config
from harmonic_nas.data import load_dataset

from .conftest import TINY_AV_DIGITS

pytestmark = pytest.mark.slow


def _config(tmp_path: Path) -> Path:
    data = {
        "name": "tiny",
        "run_dir": str(tmp_path / "runs"),
        "seed": 0,
        "dataset": {"name": "av-digits", "options": {**TINY_AV_DIGITS, "train_per_class": 4}},
        "modalities": {
            "image": {"preset": "avmnist", "shape": [1, 28, 28]},
            "audio": {"preset": "avmnist", "shape": [1, 20, 20]},
        },
        "device": {
            "name": "host",
            "backend": "onnxruntime",
            "threads": 1,
            "warmup": 1,
            "repeats": 3,
        },
        "pretrain": {"epochs": 1, "batch_size": 32, "bn_recalib_batches": 1},
        "fusion": {
            "C": 8,
            "L": 4,
            "epochs": 1,
            "retrain_epochs": 1,
            "batch_size": 32,
            "fusion_points": 2,
        },
        "search": {"population": 2, "generations": 1, "cells": [1, 2], "nodes": [1, 2]},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_pipeline_to_report_export_and_predict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = str(_config(tmp_path))
    run = tmp_path / "runs" / "tiny"

    # before the search: the report names the missing stage and the command that makes it
    assert main(["pretrain", cfg]) == 0
    capsys.readouterr()
    assert main(["report", str(run)]) == 2
    assert "stage 'search' is missing" in capsys.readouterr().err

    for argv in (["profile", cfg], ["search", cfg], ["lut", "validate", cfg, "--samples", "3"]):
        assert main(argv) == 0, argv
    capsys.readouterr()

    assert main(["report", str(run)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == f"report: {run / 'report.html'}"
    pareto = json.loads((run / "pareto.json").read_text())
    ids = [m["id"] for m in pareto["members"]]
    assert ids and all(f"| {i} |" in out for i in ids)
    page = (run / "report.html").read_text(encoding="utf-8")
    assert "diagram unavailable" not in page  # every Pareto model's fused network is drawn
    assert "Cost-model validation: not run" not in page and "Kendall" in page
    assert "Supernet training curves: not run" not in page
    for name in ("pareto_acc_latency", "hypervolume", "supernets", "cost_validation_host"):
        assert (run / "figures" / f"{name}.png").is_file()

    mid = ids[0]
    assert main(["export", str(run), "--model", mid, "--format", "onnx"]) == 0
    assert main(["export", str(run), "--model", mid, "--format", "torchscript"]) == 0
    record = json.loads((run / "models" / mid / "export.json").read_text())
    assert record["onnx"]["max_abs_diff"] <= 1e-4
    assert record["torchscript"]["max_abs_diff"] <= 1e-4
    assert record["onnx"]["lut_latency_ms"] == pytest.approx(pareto["members"][0]["latency_ms"])
    capsys.readouterr()

    test = load_dataset(load_run_config(run)).split("test")
    npz = tmp_path / "samples.npz"
    np.savez(npz, image=test.inputs["image"][:3].numpy(), audio=test.inputs["audio"][:3].numpy())
    for fname in ("model.onnx", "model.pt"):
        assert main(["predict", str(run / "models" / mid / fname), "--input", str(npz)]) == 0
        out = capsys.readouterr().out
        assert "samples.npz[2]" in out and "softmax" in out
    assert main(["export", str(run), "--model", "t9999"]) == 2
    assert f"valid ids: {', '.join(sorted(ids))}" in capsys.readouterr().err


def test_run_command_end_to_end_and_rerun_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`harmonic-nas run` (what `make demo` calls) chains every stage, prints the Pareto table and
    the report path; rerunning it retrains nothing and touches the test split no more."""
    cfg = str(_config(tmp_path))
    run = tmp_path / "runs" / "tiny"
    assert main(["run", cfg]) == 0
    out = capsys.readouterr().out
    pareto = json.loads((run / "pareto.json").read_text())
    best = max(pareto["members"], key=lambda m: (m["val_metric"], -m["latency_ms"]))
    assert f"| {best['id']} |" in out
    assert out.rstrip().splitlines()[-1] == f"report: {run / 'report.html'}"
    # the summary says what to deploy, and that member is the one exported
    chosen = pareto["recommended"]["id"]
    assert f"recommended: {chosen}, " in out
    model = run / "models" / chosen / "model.onnx"
    assert model.is_file()
    assert (run / "baselines.json").is_file()
    score = run / "models" / best["id"] / "score.json"
    stamps = {p: p.stat().st_mtime_ns for p in (score, run / "supernets" / "image.pt")}

    assert main(["run", cfg]) == 0
    again = capsys.readouterr().out
    assert "image: skipped" in again and "audio: skipped" in again
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # no retraining, no re-scoring
    assert json.loads((run / "pareto.json").read_text()) == pareto
