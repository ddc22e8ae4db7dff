"""benchmarks/modalities.py without running it: the issue's target names per kind, the figures
of the searched front vs the late fusion of the same backbones, the configs it writes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from harmonic_nas.config import load_config

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(BENCH))  # its siblings _targets and _bench_config
    try:
        spec = importlib.util.spec_from_file_location("_modalities_bench", BENCH / "modalities.py")
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod  # its dataclasses look their module up
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(BENCH))
    return mod


def _result() -> dict[str, Any]:
    kind = {
        "ladder_val_spread_points": 5.0,
        "ladder_latency_ratio": 3.0,
        "export_parity_max_abs": 1e-6,
        "raw_predict_roundtrip": True,
    }
    member = {"id": "t0001", "val_points_over_late_fusion": -1.5}
    other = {"id": "t0000", "val_points_over_late_fusion": 4.0}
    return {
        "kinds": {k: dict(kind) for k in ("signal", "text", "tabular")},
        "search_raw_predict_roundtrip": True,
        "front_vs_late_fusion": {
            k: {"val_best": "t0001", "members": [other, member]}
            for k in ("signal", "text", "tabular")
        },
    }


def test_target_names_are_the_issue_kinds(bench: ModuleType) -> None:
    targets = bench.targets_of(_result())
    for k in ("signal", "text", "tabular"):
        for what in (
            "ladder_val_spread_points",
            "ladder_latency_ratio",
            "export_parity_max_abs",
            "raw_predict_roundtrip",
        ):
            assert targets[f"{k}_{what}"]["met"] is True
    assert not any(name.startswith("table_") for name in targets)
    assert set(bench.KINDS) == {"signal", "text", "tabular"}


def test_front_vs_late_fusion_figure_is_the_val_best_member(bench: ModuleType) -> None:
    figures = bench.figures_of(_result())
    assert figures == {
        f"{k}_front_vs_late_fusion_same_backbones_points": -1.5
        for k in ("signal", "text", "tabular")
    }
    assert not set(figures) & set(bench.targets_of(_result()))  # figures, not targets


def test_configs_leave_presets_to_the_kinds(bench: ModuleType, tmp_path: Path) -> None:
    sizes = bench.Sizes(1, 4, eval_per_class=4, population=2, generations=1)
    three = load_config(bench._config(tmp_path, "m", ["signal", "text", "table"], sizes, 0))
    assert {m: mc.preset for m, mc in three.modalities.items()} == {
        "signal": "mbv3-1d",
        "text": "text-1d",
        "table": "mlp",
    }
    pair = load_config(bench._config(tmp_path, "front-table", ["image", "table"], sizes, 0))
    assert pair.dataset.options["modalities"] == "image,table"
    assert pair.modalities["image"].preset == "avmnist"
