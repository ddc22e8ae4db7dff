"""Export to TorchScript and ONNX: round trip, parity on real test inputs, metadata, bad ids."""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from harmonic_nas.cli import main
from harmonic_nas.config import load_run_config
from harmonic_nas.data import load_dataset
from harmonic_nas.errors import DataError, StageMissingError
from harmonic_nas.fusion import ArchSpec
from harmonic_nas.results import (
    ExportError,
    UnknownModelError,
    build_model,
    export,
    load_exported,
    load_model,
    predict,
)

from .conftest import build_random_model


def _first_id(run: Path) -> str:
    return json.loads((run / "pareto.json").read_text())["members"][0]["id"]


def _test_split(run: Path) -> dict[str, torch.Tensor]:
    """The test split as the search saw it (standardised with train statistics)."""
    return load_dataset(load_run_config(run)).split("test").inputs


def _raw_test_split(run: Path) -> dict[str, torch.Tensor]:
    """The same samples at raw scale, what an exported model takes: av-digits images as pixel
    values 0-255 (the pipeline divides them by 255), audio as unnormalised MFCC."""
    ds = load_dataset(load_run_config(run))
    stats = ds.meta["normalization"]
    x = ds.split("test").inputs
    scale = {"image": 255.0, "audio": 1.0}
    return {m: ((x[m].double() * stats[m]["std"] + stats[m]["mean"]) * scale[m]).float() for m in x}


def test_load_model_restores_the_saved_weights(model_run: Path) -> None:
    pareto = json.loads((model_run / "pareto.json").read_text())
    mid = pareto["members"][1]["id"]
    model, arch = load_model(model_run, mid)
    reference = build_random_model(ArchSpec.from_json(pareto["members"][1]["arch"]), seed=1)
    x = _test_split(model_run)
    inputs = [x[m][:8] for m in arch.modalities]
    with torch.inference_mode():
        assert torch.equal(model(*inputs), reference(*inputs))
    assert not model.training


def test_torchscript_export_round_trip(model_run: Path) -> None:
    mid = _first_id(model_run)
    res = export(model_run, mid, "torchscript")
    d = model_run / "models" / mid
    assert res.model_path == d / "model.pt" and res.model_path.is_file()
    assert res.max_abs_diff <= 1e-6
    assert res.n_checked == 30  # the whole (tiny) test split
    assert res.repeats >= 50 and res.latency_ms > 0 and res.latency_p90_ms >= res.latency_ms
    # the profiler's protocol: bursts of runs until the two halves' medians agree (or a cap)
    assert res.latency_p10_ms is not None and res.latency_p10_ms <= res.latency_ms
    assert res.split_half_pct is not None and res.repeats % 50 == 0 and res.measured_on
    pareto = json.loads((model_run / "pareto.json").read_text())["members"][0]
    assert res.lut_latency_ms == pytest.approx(pareto["latency_ms"])
    assert res.lut_latency_paper_ms == pytest.approx(pareto["latency_paper_ms"])
    assert not list(d.glob(".*tmp*"))  # no temporary left behind

    # export -> load -> same outputs as the in-memory model, on real test inputs, any batch size;
    # the file takes raw-scale inputs, by keyword (named after the modalities) or in order
    model, arch = load_model(model_run, mid)
    x, raw = _test_split(model_run), _raw_test_split(model_run)
    inputs = [x[m] for m in arch.modalities]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = torch.jit.load(str(res.model_path))
    assert [a.name for a in loaded.forward.schema.arguments[1:]] == ["image", "audio"]
    with torch.inference_mode():
        expected = model(*inputs)
        got = loaded(image=raw["image"], audio=raw["audio"])
        assert torch.allclose(got, expected, atol=1e-5, rtol=0)
        one = loaded(raw["image"][:1], raw["audio"][:1])
        assert torch.allclose(one, expected[:1], atol=1e-5, rtol=0)

    # the file is standalone: preprocess.json travels inside it too
    extra = {"preprocess.json": "", "arch.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.load(str(res.model_path), _extra_files=extra)
    assert json.loads(extra["arch.json"]) == arch.to_json()
    assert json.loads(extra["preprocess.json"])["input_order"] == ["image", "audio"]

    record = json.loads((d / "export.json").read_text())
    assert record["torchscript"]["max_abs_diff"] == res.max_abs_diff


def test_preprocess_metadata(model_run: Path) -> None:
    mid = _first_id(model_run)
    export(model_run, mid, "torchscript")
    meta = json.loads((model_run / "models" / mid / "preprocess.json").read_text())
    assert meta["input_order"] == ["image", "audio"]
    image, audio = meta["inputs"]
    assert {k: image[k] for k in ("name", "argument", "kind", "shape", "dtype")} == {
        "name": "image",
        "argument": "image",
        "kind": "image",
        "shape": [1, 28, 28],
        "dtype": "float32",
    }
    assert image["raw"]["type"] == "image" and image["raw"]["mode"] == "L"
    assert image["raw"]["size"] == [28, 28]
    assert image["raw"]["value_scale"] == pytest.approx(1 / 255)
    assert (audio["name"], audio["kind"], audio["shape"]) == ("audio", "audio", [1, 20, 20])
    # the audio recipe: the av-digits build's sample rate and feature settings
    ds = load_dataset(load_run_config(model_run))
    rec = audio["raw"]
    assert rec["type"] == "audio" and rec["sample_rate"] == ds.meta["sample_rate"]
    assert rec["clip_seconds"] == 1.0
    assert rec["clip_samples"] == round(ds.meta["sample_rate"])
    assert rec["features"]["kind"] == "mfcc"
    assert (rec["features"]["n_coeffs"], rec["features"]["n_frames"]) == (20, 20)
    assert rec["features"]["n_mels"] == 40 and rec["n_fft"] == 1024
    assert rec["hop_samples"] == rec["clip_samples"] // 20
    assert rec["value_scale"] == 1.0
    assert meta["normalization_in_graph"] is True and meta["schema_version"] == 2
    assert meta["task"] == "classification" and meta["num_classes"] == 10
    assert meta["class_names"][:3] == ["zero", "one", "two"]
    assert meta["output"] == {"name": "logits", "shape": [10], "activation": "softmax"}
    assert meta["threshold"] is None
    assert set(meta["normalization"]) == {"image", "audio"}
    assert meta["normalization"]["audio"]["std"] > 0
    assert meta["model_files"] == {"torchscript": "model.pt", "onnx": "model.onnx"}


def test_onnx_parity_with_onnxruntime(model_run: Path) -> None:
    import onnxruntime as ort

    mid = _first_id(model_run)
    res = export(model_run, mid, "onnx")
    assert res.model_path == model_run / "models" / mid / "model.onnx"
    assert res.max_abs_diff <= 1e-4
    onnx.checker.check_model(str(res.model_path))
    proto = onnx.load(str(res.model_path))
    assert [i.name for i in proto.graph.input] == ["image", "audio"]
    assert any(p.key == "preprocess.json" for p in proto.metadata_props)

    # independent check: onnxruntime on raw-scale inputs vs the PyTorch model on every sample
    model, arch = load_model(model_run, mid)
    x, raw = _test_split(model_run), _raw_test_split(model_run)
    sess = ort.InferenceSession(str(res.model_path), providers=["CPUExecutionProvider"])
    feeds = {m: raw[m].numpy() for m in arch.modalities}
    got = sess.run(None, feeds)[0]
    with torch.inference_mode():
        expected = model(*[x[m] for m in arch.modalities]).numpy()
    assert got.shape == expected.shape == (30, 10)
    assert float(np.max(np.abs(got - expected))) <= 1e-4


def test_export_fails_loudly_above_tolerance(model_run: Path) -> None:
    mid = _first_id(model_run)
    with pytest.raises(ExportError, match=r"differs from the PyTorch model by .* > tolerance 0"):
        export(model_run, mid, "onnx", tolerance=0.0)
    assert not (model_run / "models" / mid / "model.onnx").exists()
    assert not list((model_run / "models" / mid).glob(".*tmp*"))


def test_predict_on_exported_files(model_run: Path, tmp_path: Path) -> None:
    mid = _first_id(model_run)
    pt = export(model_run, mid, "torchscript").model_path
    ox = export(model_run, mid, "onnx").model_path
    x, raw = _test_split(model_run), _raw_test_split(model_run)
    npz = tmp_path / "batch.npz"
    np.savez(npz, image=raw["image"][:5].numpy(), audio=raw["audio"][:5].numpy())
    a, b = predict(pt, npz), predict(ox, [npz])
    assert a.probabilities.shape == (5, 10)
    np.testing.assert_allclose(a.probabilities.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-4)
    model, _ = load_model(model_run, mid)
    with torch.inference_mode():
        ref = torch.softmax(model(x["image"][:5], x["audio"][:5]), dim=1).numpy()
    np.testing.assert_allclose(a.probabilities, ref, atol=1e-5)
    assert a.class_names[0] == "zero"
    assert a.predicted == [[a.class_names[int(i)]] for i in ref.argmax(axis=1)]
    # a directory works too (model.pt first)
    assert load_exported(pt.parent).format == "torchscript"


def test_cli_export_and_predict(
    model_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mid = _first_id(model_run)
    assert main(["export", str(model_run), "--model", mid, "--format", "onnx"]) == 0
    out = capsys.readouterr().out
    assert "max abs diff" in out and "measured latency" in out and "LUT prediction" in out
    raw = _raw_test_split(model_run)
    one = tmp_path / "one.npz"
    np.savez(one, image=raw["image"][0].numpy(), audio=raw["audio"][0].numpy())  # no batch dim
    model = model_run / "models" / mid / "model.onnx"
    assert main(["predict", str(model), "--input", str(one), "--input", str(one)]) == 0
    out = capsys.readouterr().out
    assert len(re.findall(r"one\.npz\[0\]", out)) == 2
    pred = predict(model, one)
    top = [pred.class_names[j] for j in np.argsort(pred.probabilities[0])[::-1][:3]]
    assert all(name in out for name in top)


# --------------------------------------------------------------------------- bad input


def test_unknown_model_id_lists_valid_ids(
    model_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [m["id"] for m in json.loads((model_run / "pareto.json").read_text())["members"]]
    with pytest.raises(UnknownModelError, match="unknown model id 'nope'"):
        export(model_run, "nope")
    assert main(["export", str(model_run), "--model", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("error: unknown model id 'nope'")
    assert all(i in err for i in ids)


def test_export_without_finished_search(fake_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (fake_run / "pareto.json").unlink()
    assert main(["export", str(fake_run), "--model", "t0001"]) == 2
    err = capsys.readouterr().err
    assert "no pareto.json" in err and "harmonic-nas search" in err
    assert len(err.strip().splitlines()) == 1


def test_export_member_without_weights(model_run: Path) -> None:
    mid = _first_id(model_run)
    (model_run / "models" / mid / "weights.pt").unlink()
    with pytest.raises(StageMissingError, match="has no weights"):
        export(model_run, mid)


def test_unknown_format(model_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(model_run), "--model", _first_id(model_run), "-f", "tflite"]) == 2
    assert "unknown export format 'tflite'" in capsys.readouterr().err


def test_build_model_needs_a_genotype(model_run: Path) -> None:
    pareto = json.loads((model_run / "pareto.json").read_text())
    arch = ArchSpec.from_json(pareto["members"][0]["arch"]).with_genotype(None)
    with pytest.raises(Exception, match="no fusion genotype"):
        build_model(arch)


def test_modality_read_by_no_fusion_cell(model_run: Path, tmp_path: Path) -> None:
    """A genotype may read only one backbone: both formats still take every modality (the
    unused input is kept in the ONNX graph and ignored), and the export says so."""
    from harmonic_nas.fusion import CellGenotype, FusionGenotype, NodeGenotype
    from harmonic_nas.utils.io import atomic_torch_save

    mid = _first_id(model_run)
    d = model_run / "models" / mid
    arch = ArchSpec.load(d / "arch.json")
    only_image = FusionGenotype(
        cells=(CellGenotype(inputs=(0, 1), nodes=(NodeGenotype("Sum", (0, 1)),)),),
        multiplier=1,
    )
    arch = ArchSpec(
        modalities=arch.modalities,
        cells=1,
        nodes=1,
        genotype=only_image,
        C=arch.C,
        L=arch.L,
        fusion_points=arch.fusion_points,
        n_classes=arch.n_classes,
    )
    model = build_random_model(arch, seed=5)
    arch.save(d / "arch.json")
    atomic_torch_save(d / "weights.pt", dict(model.state_dict()))

    res = export(model_run, mid, "onnx")
    assert res.unused_modalities == ("audio",) and res.max_abs_diff <= 1e-4
    proto = onnx.load(str(res.model_path))
    onnx.checker.check_model(proto)
    assert [i.name for i in proto.graph.input] == ["image", "audio"]
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[1].type.tensor_type.shape.dim]
    assert dims == ["batch", 1, 20, 20]
    meta = json.loads((d / "preprocess.json").read_text())
    assert meta["unused_inputs"] == ["audio"] and meta["input_order"] == ["image", "audio"]
    x, raw = _test_split(model_run), _raw_test_split(model_run)
    pred = predict(
        res.model_path, {"image": raw["image"][:4].numpy(), "audio": raw["audio"][:4].numpy()}
    )
    with torch.inference_mode():
        ref = torch.softmax(model(x["image"][:4], x["audio"][:4]), 1).numpy()
    np.testing.assert_allclose(pred.probabilities, ref, atol=1e-5)
    # the same inputs in both formats: TorchScript takes (and ignores) audio too
    pt = export(model_run, mid, "torchscript").model_path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = torch.jit.load(str(pt))
    assert [a.name for a in loaded.forward.schema.arguments[1:]] == ["image", "audio"]
    with pytest.raises(DataError, match="modality 'audio' is missing"):
        predict(res.model_path, {"image": raw["image"][:4].numpy()})
    # with the late skip the audio backbone's logits reach the output: no input is unused
    skip = dataclasses.replace(arch, late_skip=True)
    model = build_random_model(skip, seed=5)
    skip.save(d / "arch.json")
    atomic_torch_save(d / "weights.pt", dict(model.state_dict()))
    res = export(model_run, mid, "onnx")
    assert res.unused_modalities == () and res.max_abs_diff <= 1e-4
    assert json.loads((d / "preprocess.json").read_text())["unused_inputs"] == []
    image = raw["image"][:4].numpy()
    a = predict(res.model_path, {"image": image, "audio": raw["audio"][:4].numpy()})
    b = predict(res.model_path, {"image": image, "audio": raw["audio"][4:8].numpy()})
    assert not np.allclose(a.probabilities, b.probabilities)  # audio is read
