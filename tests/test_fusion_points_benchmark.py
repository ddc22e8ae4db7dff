"""benchmarks/fusion_points.py: point selection, the fixed genotypes, the val-chosen cheap row and
its targets on hand-made numbers, and (slow) a smoke run end to end with a resumed rerun."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def fp() -> ModuleType:
    sys.path.insert(0, str(BENCH))  # its siblings _targets, _resume, fusion_ablation
    try:
        spec = importlib.util.spec_from_file_location(
            "_fusion_points_bench", BENCH / "fusion_points.py"
        )
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(BENCH))
    return mod


REFS = [("image", 2), ("image", 3), ("image", 4), ("audio", 1), ("audio", 2)]


def test_point_index_counts_from_each_backbones_end(fp: ModuleType) -> None:
    assert fp.point_index(REFS, "image", 0) == 2  # the final representation
    assert fp.point_index(REFS, "image", 2) == 0
    assert fp.point_index(REFS, "audio", 1) == 3
    assert fp.point_index(REFS, "audio", 2) is None  # deeper than the backbone's points


def test_genotype_reads_the_two_points(fp: ModuleType) -> None:
    g = fp.genotype_of(1, 4, "ConcatFC")
    assert g.to_json() == {
        "cells": [{"inputs": [1, 4], "nodes": [{"op": "ConcatFC", "inputs": [0, 1]}]}],
        "multiplier": 1,
    }
    g.validate(n_points=5)


def test_parse_depths(fp: ModuleType) -> None:
    assert fp.parse_depths(["0,0", "2,1"]) == [(0, 0), (2, 1)]
    with pytest.raises(SystemExit, match="pairs like 1,1"):
        fp.parse_depths(["2"])


def _m(val: float, pts: float, lat: float) -> dict[str, Any]:
    return {
        "depths": [0, 0],
        "op": "Sum",
        "val": val,
        "test": 0.9,
        "latency_ms": 0.1,
        "vs_late_fusion_same_backbones_points": pts,
        "latency_over_late_fusion_same_backbones": lat,
    }


def test_val_best_cheap_is_chosen_on_val_among_cheap_rows(fp: ModuleType) -> None:
    rows = [_m(0.95, 1.0, 1.02), _m(0.80, -4.0, 0.85), _m(0.85, -6.0, 0.70)]
    assert fp.val_best_cheap(rows) is rows[2]  # the dear row has the best val: not eligible
    assert fp.val_best_cheap([_m(0.9, 0.0, 0.95)]) is None


def test_targets_need_both_accuracy_and_latency(fp: ModuleType) -> None:
    def summary(pts: float, lat: float) -> dict[str, Any]:
        rec = {"seed": 0, "rungs": [{"models": [], "val_best_cheap": _m(0.9, pts, lat)}]}
        return fp.summarise({"s0": rec})

    t = fp.targets_of(summary(-0.2, 0.8))
    assert t["points_val_best_cheap_vs_late_fusion_same_backbones_points"]["met"] is True
    assert t["points_val_best_cheap_latency_over_late_fusion_same_backbones"]["met"] is True
    t = fp.targets_of(summary(-3.0, 0.8))
    assert t["points_val_best_cheap_vs_late_fusion_same_backbones_points"]["met"] is False
    assert t["points_val_best_cheap_vs_late_fusion_same_backbones_points"]["value"] == -3.0
    assert fp.targets_of(fp.summarise({})) == {}


SMOKE = [
    "pretrain.epochs=1",
    "fusion.C=8",
    "fusion.L=4",
    "device.repeats=2",
    "device.warmup=1",
    "dataset.options.train_per_class=12",
    "dataset.options.val_per_class=6",
    "dataset.options.test_per_class=6",
    "dataset.options.train_speakers=6",
    "dataset.options.val_speakers=3",
    "dataset.options.test_speakers=3",
]


@pytest.mark.slow
def test_smoke_end_to_end(fp: ModuleType, tmp_path: Path) -> None:
    """Every (depths, op) row measured beside the control, the deeper reads skip layers (the
    pruned cost grows as the point moves up), a rerun reuses the saved seed."""
    out = tmp_path / "smoke.json"
    argv = ["--seeds", "0", "--depths", "0,0", "2,2", "--ops", "Sum", "--epochs", "1"]
    argv += ["--reshape-repeats", "20", "--out", str(out)]
    argv += [x for s in [*SMOKE, f"run_dir={tmp_path / 'runs'}"] for x in ("--set", s)]
    assert fp.main(argv) == 0
    r = json.loads(out.read_text())
    models = r["records"]["s0"]["rungs"][0]["models"]
    assert [m["depths"] for m in models] == [[0, 0], [2, 2]]
    assert models[1]["pruned_latency_ms"] > models[0]["pruned_latency_ms"] >= 0.0
    assert models[1]["latency_ms"] < models[0]["latency_ms"]
    assert set(r["summary"]["rows"]) == {"0,0|Sum", "2,2|Sum"}
    shapes = r["records"]["reshape_costs"]["shapes"]
    assert [s["shape"] for s in shapes] == [[16, 10, 10], [16, 14, 14], [24, 5, 5], [24, 7, 7]]
    assert all(math.isfinite(s["fixed_pool_ms"] + s["slices_ms"]) for s in shapes)
    assert r["machine"] and r["command"].startswith("python benchmarks/fusion_points.py")
    before = r["records"]
    assert fp.main(argv) == 0
    assert json.loads(out.read_text())["records"] == before
