"""``harmonic-nas fusion CONFIG --arch BACKBONES.json``: happy path and bad inputs (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import harmonic_nas.data
import harmonic_nas.hardware.lut_source
import harmonic_nas.pretrain
from harmonic_nas.backbones import build_supernet
from harmonic_nas.cli import main
from harmonic_nas.config import load_config
from harmonic_nas.fusion import ArchSpec
from harmonic_nas.hardware.inventory import space_layer_specs
from harmonic_nas.hardware.keys import lut_key
from harmonic_nas.hardware.lut import LUT, DeviceInfo, LUTEntry
from tests.fusion.conftest import OP_COSTS, make_dataset

CONFIG = """
name: fus
run_dir: {run}
seed: 0
modalities:
  image: {{preset: avmnist, shape: [1, 12, 12]}}
  vec: {{preset: maxout, shape: [8]}}
pretrain: {{batch_size: 32, bn_recalib_batches: 1}}
fusion: {{C: 8, L: 4, epochs: 1, retrain_epochs: 1, batch_size: 32, cells: 1, nodes: 1{extra}}}
"""


def write_config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(CONFIG.format(run=tmp_path / "runs", extra=extra))
    return path


def make_lut(cfg_path: Path, with_fusion_ops: bool = True) -> LUT:
    cfg = load_config(cfg_path)
    entries = {}
    for spec in space_layer_specs(cfg, n_classes=4):
        if spec.kind == "fusion_op":
            if not with_fusion_ops:
                continue
            lat, en = OP_COSTS.get(spec.op, (0.1, 0.1))
            entries[lut_key(spec)] = LUTEntry.point(lat, en)
        else:
            entries[lut_key(spec)] = LUTEntry.point(0.01, 0.02)
    return LUT(DeviceInfo("host", backend="torch"), "model:test", entries)


@pytest.fixture
def patched(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    state: dict[str, Any] = {"lut": None}
    ds = make_dataset(n_train=64, n_val=32)
    monkeypatch.setattr(harmonic_nas.data, "load_dataset", lambda cfg, progress=None: ds)

    def fake_supernet(cfg: Any, modality: str, n_classes: int) -> Any:
        m = cfg.modalities[modality]
        return build_supernet((None, m.shape), m.preset, n_classes, modality)

    monkeypatch.setattr(harmonic_nas.pretrain, "load_supernet", fake_supernet)
    monkeypatch.setattr(
        harmonic_nas.hardware.lut_source, "get_lut", lambda cfg, progress=None: state["lut"]
    )
    return state


def backbones_file(tmp_path: Path, **overrides: Any) -> Path:
    img = build_supernet((None, (1, 12, 12)), "avmnist", 4, "image")
    data: dict[str, Any] = {
        "modalities": {
            "image": {
                "preset": "avmnist",
                "shape": [1, 12, 12],
                "genome": img.min_genome().to_json(),
            },
            "vec": {"preset": "maxout", "shape": [8], "genome": {"ks": [], "e": [], "d": []}},
        },
        "cells": 2,
        "nodes": 1,
    }
    data.update(overrides)
    path = tmp_path / "backbones.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("out_flag", ["--out", "-o"])
def test_fusion_command_happy_path(
    tmp_path: Path, patched: dict[str, Any], capsys: pytest.CaptureFixture[str], out_flag: str
) -> None:
    cfg = write_config(tmp_path)
    patched["lut"] = make_lut(cfg)
    out = tmp_path / "out"
    code = main(["fusion", str(cfg), "--arch", str(backbones_file(tmp_path)), out_flag, str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "val accuracy" in text and "latency" in text and "energy" in text
    arch = ArchSpec.load(out / "arch.json")
    assert arch.genotype is not None and arch.cells == 2 and arch.nodes == 1
    assert (arch.C, arch.L, arch.n_classes) == (8, 4, 4)
    for name in ("weights.pt", "fusion.json", "genotype.png"):
        assert (out / name).is_file(), name
        assert str(out / name) in text
    hist = json.loads((out / "fusion.json").read_text())
    assert hist["schema_version"] == 1 and hist["genotype"] == arch.genotype.to_json()


def _bad(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], match: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and match in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"cells": 9}, "cells must be in 1..8"),
        ({"nodes": 0}, "nodes must be in 1..8"),
        ({"cells": "many"}, "'cells' must be an integer"),
    ],
)
def test_cells_nodes_out_of_range(
    tmp_path: Path,
    patched: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    override: dict[str, Any],
    match: str,
) -> None:
    cfg = write_config(tmp_path)
    patched["lut"] = make_lut(cfg)
    _bad(
        tmp_path,
        capsys,
        ["fusion", str(cfg), "--arch", str(backbones_file(tmp_path, **override))],
        match,
    )


def test_unknown_operator(
    tmp_path: Path, patched: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path, extra=", ops: [Sum, Conv9]")
    _bad(tmp_path, capsys, ["fusion", str(cfg)], "unknown fusion operator 'Conv9'")


def test_modalities_do_not_match_dataset(
    tmp_path: Path, patched: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path)
    patched["lut"] = make_lut(cfg)
    mods = {
        "image": {
            "preset": "avmnist",
            "shape": [1, 12, 12],
            "genome": {"ks": [3] * 4, "e": [3] * 4, "d": [2]},
        },
        "audio": {
            "preset": "avmnist",
            "shape": [1, 12, 12],
            "genome": {"ks": [3] * 4, "e": [3] * 4, "d": [2]},
        },
    }
    path = backbones_file(tmp_path, modalities=mods)
    _bad(tmp_path, capsys, ["fusion", str(cfg), "--arch", str(path)], "do not match dataset")


def test_bad_genome(
    tmp_path: Path, patched: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path)
    patched["lut"] = make_lut(cfg)
    mods = json.loads(backbones_file(tmp_path).read_text())["modalities"]
    mods["image"]["genome"] = {"ks": [9, 9, 9, 9], "e": [3] * 4, "d": [2]}
    path = backbones_file(tmp_path, modalities=mods)
    _bad(tmp_path, capsys, ["fusion", str(cfg), "--arch", str(path)], "modality 'image'")


def test_lut_without_fusion_ops(
    tmp_path: Path, patched: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path)
    patched["lut"] = make_lut(cfg, with_fusion_ops=False)
    _bad(
        tmp_path,
        capsys,
        ["fusion", str(cfg), "--arch", str(backbones_file(tmp_path))],
        "has no cost for fusion operator(s) ['Sum', 'ScaleDotAttn', 'LinearGLU', 'ConcatFC', 'SE1', 'CatConvMish'] at C=8, L=4",
    )


def test_missing_backbones_file(
    tmp_path: Path, patched: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path)
    _bad(
        tmp_path,
        capsys,
        ["fusion", str(cfg), "--arch", str(tmp_path / "nope.json")],
        "backbones file not found",
    )
