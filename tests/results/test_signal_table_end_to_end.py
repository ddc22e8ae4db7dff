"""A signal, a table and an image from user ``.npz`` files through every stage: the 1-D backbone
searched, costed and exported, per-channel statistics inside the exported graph, raw arrays in."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from harmonic_nas.cli import main
from harmonic_nas.config import load_run_config
from harmonic_nas.data import load_dataset
from harmonic_nas.results import load_model, predict

pytestmark = pytest.mark.slow


def _data(root: Path) -> Path:
    """accel (3, 32) with the z-axis gravity offset, a 6-feature table with mixed scales and a
    constant feature, pixels (1, 8, 8); 3 classes."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    t = np.linspace(0, 1, 32)
    for split, n in (("train", 60), ("val", 24), ("test", 24)):
        y = np.arange(n) % 3
        accel = rng.standard_normal((n, 3, 32)) * 0.5 + np.array([0, 0, 9.81])[:, None]
        accel[:, 0] += np.sin(2 * np.pi * (y[:, None] + 1) * t)
        table = rng.standard_normal((n, 6)) * np.array([1, 10, 100, 1, 1, 1])
        table[:, 0] += y * 0.5
        table[:, 5] = 3.0
        pixels = rng.standard_normal((n, 1, 8, 8)) + y[:, None, None, None] * 0.3
        np.savez(
            root / f"{split}.npz",
            accel=accel.astype(np.float32),
            table=table.astype(np.float32),
            pixels=pixels.astype(np.float32),
            labels=y,
        )
    return root


def _config(tmp_path: Path) -> Path:
    data = {
        "name": "sig",
        "run_dir": str(tmp_path / "runs"),
        "seed": 0,
        "dataset": {"name": "npz", "path": str(_data(tmp_path / "data"))},
        "modalities": {
            "accel": {"preset": "mbv3-1d", "shape": [3, 32]},
            "table": {"preset": "mlp", "shape": [6]},
            "pixels": {"preset": "avmnist", "shape": [1, 8, 8], "normalization": "channel"},
        },
        "device": {"name": "host", "threads": 1, "warmup": 1, "repeats": 3},
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
    path = tmp_path / "sig.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_signal_table_image_search_export_and_raw_predict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(tmp_path)
    run = tmp_path / "runs" / "sig"
    assert main(["run", str(cfg)]) == 0
    capsys.readouterr()
    pareto = json.loads((run / "pareto.json").read_text())
    lut = json.loads(next((run / "luts").glob("*.json")).read_text())
    keys = json.dumps(lut)
    assert "Conv1dLayer-input:1_3_32-" in keys and "MBConv1dLayer-input:1_" in keys
    mid = pareto["members"][0]["id"]
    assert main(["export", str(run), "--model", mid, "--format", "onnx"]) == 0
    record = json.loads((run / "models" / mid / "export.json").read_text())
    assert record["onnx"]["max_abs_diff"] <= 1e-4
    meta = json.loads((run / "models" / mid / "preprocess.json").read_text())
    norm = meta["normalization"]
    assert norm["accel"]["mode"] == "channel" and norm["accel"]["mean"][2] == pytest.approx(
        9.81, abs=0.2
    )
    assert norm["table"]["mode"] == "channel" and norm["table"]["std"][5] == 1.0
    assert norm["pixels"]["mode"] == "channel" and len(norm["pixels"]["mean"]) == 1
    kinds = {i["name"]: (i["kind"], i["shape"]) for i in meta["inputs"]}
    assert kinds["accel"] == ("signal", [3, 32])

    # the raw test.npz (unnormalised, as the user stores it) predicts what the PyTorch model
    # predicts on the pipeline's standardised tensors
    got = predict(run / "models" / mid / "model.onnx", tmp_path / "data" / "test.npz")
    test = load_dataset(load_run_config(run)).split("test")
    net, arch = load_model(run, mid)
    with torch.inference_mode():
        logits = net.eval()(*(test.inputs[m] for m in arch.modalities))
    want = torch.softmax(logits.double(), dim=1).numpy()
    assert np.abs(got.probabilities - want).max() <= 1e-4
    assert got.accuracy is not None
