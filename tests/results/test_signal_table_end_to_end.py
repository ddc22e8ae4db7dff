"""Raw text, a signal, a table and an image from user ``.npz`` files through every stage: the 1-D,
text and MLP backbones searched, costed and exported, per-channel statistics inside the exported
graph, raw arrays / a caption file in, and the README's numpy tokenizer + onnxruntime alone."""

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
from harmonic_nas.data.tokenizer import ByteTokenizer
from harmonic_nas.results import load_model, predict

pytestmark = pytest.mark.slow


def _data(root: Path) -> Path:
    """a caption (the class word, wrong in 20 %), accel (3, 32) with the z-axis gravity offset, a
    6-feature table with mixed scales and a constant feature, pixels (1, 8, 8); 3 classes."""
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
        words = ["one", "two", "three"]
        caption = [
            f"a {rng.choice(['quick', 'slow', 'Réd'])} {words[(c + (rng.random() < 0.2)) % 3]} thing"
            for c in y
        ]
        np.savez(
            root / f"{split}.npz",
            caption=np.array(caption),
            accel=accel.astype(np.float32),
            table=table.astype(np.float32),
            pixels=pixels.astype(np.float32),
            labels=y,
        )
    return root


def _config(tmp_path: Path) -> Path:
    root = _data(tmp_path / "data")
    with np.load(root / "train.npz") as f:
        length = ByteTokenizer.fit(f["caption"].tolist()).max_len
    data = {
        "name": "sig",
        "run_dir": str(tmp_path / "runs"),
        "seed": 0,
        "dataset": {"name": "npz", "path": str(root)},
        "modalities": {
            "caption": {"preset": "text-1d", "shape": [length]},
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


def _readme_tokenizer() -> object:
    """The reference tokenizer of README.md (the python block after its marker), executed."""
    text = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- reference-tokenizer -->", 1)[1].split("```python\n", 1)[1]
    scope: dict[str, object] = {}
    exec(block.split("```", 1)[0], scope)
    return scope["tokenize"]


def test_text_signal_table_image_search_export_and_raw_predict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(tmp_path)
    run = tmp_path / "runs" / "sig"
    assert main(["run", str(cfg)]) == 0
    capsys.readouterr()
    pareto = json.loads((run / "pareto.json").read_text())
    page = (run / "report.html").read_text(encoding="utf-8")
    assert "diagram unavailable" not in page  # every fused network drawn, 1-D / text / MLP too
    lut = json.loads(next((run / "luts").glob("*.json")).read_text())
    keys = json.dumps(lut)
    assert "Conv1dLayer-input:1_3_32-" in keys and "MBConv1dLayer-input:1_" in keys
    assert "EmbeddingLayer-input:1_" in keys and "DenseLayer-input:1_6-" in keys
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
    assert kinds["accel"] == ("signal", [3, 32]) and kinds["caption"][0] == "text"
    recipe = next(i["raw"] for i in meta["inputs"] if i["name"] == "caption")
    assert recipe["type"] == "text" and recipe["tokenizer"]["fitted_on"] == "train"
    assert norm["caption"]["mode"] == "none"

    # the raw test.npz (unnormalised, as the user stores it) predicts what the PyTorch model
    # predicts on the pipeline's standardised tensors
    got = predict(run / "models" / mid / "model.onnx", tmp_path / "data" / "test.npz")
    test = load_dataset(load_run_config(run)).split("test")
    net, arch = load_model(run, mid)
    with torch.inference_mode():
        logits = net.eval()(*(test.inputs[m] for m in arch.modalities))
    want = torch.softmax(logits.double(), dim=1).numpy()
    assert np.abs(got.probabilities - want).max() <= 1e-4
    assert got.metric is not None

    # a runtime with only numpy + onnxruntime: README's tokenizer feeds the raw captions
    import onnxruntime as ort

    tokenize = _readme_tokenizer()
    with np.load(tmp_path / "data" / "test.npz") as f:
        raw = {k: f[k] for k in f.files}
    feeds = {
        i["name"]: (
            tokenize(raw[i["name"]].tolist(), i["raw"]["tokenizer"])  # type: ignore[operator]
            if i["kind"] == "text"
            else raw[i["name"]].astype(np.float32)
        )
        for i in meta["inputs"]
    }
    sess = ort.InferenceSession(
        str(run / "models" / mid / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    ort_logits = sess.run(None, feeds)[0]
    assert np.abs(ort_logits - logits.numpy()).max() <= 1e-4

    # predict --file caption=caption.txt (the other inputs as one-sample .npy files)
    (tmp_path / "caption.txt").write_text(str(raw["caption"][0]), encoding="utf-8")
    argv = ["predict", str(run / "models" / mid / "model.onnx")]
    argv += ["--file", f"caption={tmp_path / 'caption.txt'}"]
    for m in ("accel", "table", "pixels"):
        np.save(tmp_path / f"{m}.npy", raw[m][0].astype(np.float32))
        argv += ["--file", f"{m}={tmp_path / (m + '.npy')}"]
    capsys.readouterr()
    assert main(argv) == 0
    out = capsys.readouterr().out
    top = meta["class_names"][int(np.argmax(want[0]))]
    assert top in out
    one = predict(
        run / "models" / mid / "model.onnx",
        files={"caption": tmp_path / "caption.txt"}
        | {m: tmp_path / f"{m}.npy" for m in ("accel", "table", "pixels")},
    )
    assert np.abs(one.probabilities[0] - want[0]).max() <= 1e-4

    # an empty caption file is one line, exit 2
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    argv[3] = f"caption={tmp_path / 'empty.txt'}"
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "empty caption" in err and len(err.strip().splitlines()) == 1
