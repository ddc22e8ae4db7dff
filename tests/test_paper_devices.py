"""benchmarks/paper_devices.py: its figures and targets on hand-made seeds (gains over bm-nas-max,
the late-fusion frontier as control, the hypervolume in the 3-D box, ``--resummarise`` from the
files alone), and one smoke run end to end on the published Jetson TX2 tables."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from harmonic_nas.search.front_metrics import encode_array
from harmonic_nas.utils.io import atomic_write_json, read_json

REPO = Path(__file__).resolve().parents[1]
TABLES = REPO.parent / "shared" / "reference-luts"
N_VAL = 100
LABELS = np.arange(N_VAL) % 10


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    return importlib.import_module("paper_devices")


def preds(val: float) -> dict[str, Any]:
    """Val predictions scoring ``val``: right on the first ``val * N_VAL`` samples."""
    k = round(val * N_VAL)
    p = LABELS.copy()
    p[k:] = (p[k:] + 1) % 10
    return encode_array(p)


def cand(strategy: str, i: int, val: float, lat: float, energy: float, **kw: Any) -> dict:
    return {
        "id": f"{strategy}:{i}",
        "strategy": strategy,
        "genome": f"g{i}",
        "val_metric": val,
        "latency_ms": lat,
        "energy_mj": energy,
        "fidelity": "full",
        "val_pred": preds(val),
        **kw,
    }


def baseline(name: str, val: float, test: float, lat: float, energy: float) -> dict:
    return {
        "name": name,
        "val_metric": val,
        "test_metric": test,
        "latency_ms": lat,
        "energy_mj": energy,
        "uncosted_keys": [],
    }


def seed_record(seed: int, bm_val: float = 0.90) -> dict[str, Any]:
    """bm-nas-max at (val bm_val, 10 ms, 20 mJ); the box: floor 0.80 (image), ceilings 10 ms and
    20 mJ; the front A (0.90, 5 ms, 10 mJ, test 0.92) and B (0.85, 2 ms, 4 mJ, test 0.86)."""
    return {
        "seed": seed,
        "task": "classification",
        "val_labels": LABELS.tolist(),
        "box": {
            "acc_floor": 0.80,
            "acc_floor_from": "single:image",
            "lat_ceiling": 10.0,
            "lat_ceiling_from": "max(late-fusion-avg, bm-nas-max) TX2 latency",
            "energy_ceiling": 20.0,
        },
        "legacy_box": {
            "ideal": {"val_metric": 1.0, "latency_ms": 0.0, "energy_mj": 0.0},
            "reference": {"val_metric": 0.0, "latency_ms": 12.0, "energy_mj": 24.0},
        },
        "baselines": [
            baseline("bm-nas-max", bm_val, 0.91, 10.0, 20.0),
            baseline("late-fusion-avg", 0.88, 0.89, 9.0, 18.0),
            baseline("single:image", 0.80, 0.81, 5.0, 9.0),
            baseline("single:audio", 0.75, 0.74, 5.0, 9.0),
        ],
        "pareto": [
            {"id": "t0001", "val_metric": 0.90, "test_metric": 0.92, "latency_ms": 5.0,
             "energy_mj": 10.0, "uncosted_keys": ["CellNorm-input:1_192_16-N:1-C:192-L:16"]},
            {"id": "t0002", "val_metric": 0.85, "test_metric": 0.86, "latency_ms": 2.0,
             "energy_mj": 4.0, "uncosted_keys": []},
        ],
    }  # fmt: skip


def seed_candidates() -> dict[str, list[dict[str, Any]]]:
    return {
        "nsga2": [cand("nsga2", 1, 0.90, 5.0, 10.0), cand("nsga2", 2, 0.85, 2.0, 4.0)],
        "one_genome": [cand("one_genome", 2, 0.85, 2.0, 4.0)],
        "late_fusion_frontier": [
            cand("late_fusion_frontier", 0, 0.90, 5.0, 12.0, test_metric=0.93,
                 late_fusion="late-fusion-bayes"),
        ],
    }  # fmt: skip


def test_gains_hypervolume_and_targets_by_hand(bench: ModuleType) -> None:
    results = {"seeds": {"0": seed_record(0)}}
    out = bench.finish(results, {"0": seed_candidates()}, 200)
    picks = out["seeds"]["0"]["gains"]
    # only A is within 1 val point of bm-nas-max (0.90 - 0.01): 10 / 5 ms, 20 / 10 mJ
    assert picks["search_latency"]["id"] == picks["search_energy"]["id"] == "t0001"
    assert picks["search_latency"]["gain"] == pytest.approx(2.0)
    assert picks["search_energy"]["gain"] == pytest.approx(2.0)
    assert picks["search_latency"]["test_metric"] == 0.92
    # the control's late fusion: 10 / 5 ms, 20 / 12 mJ
    assert picks["control_latency"]["gain"] == pytest.approx(2.0)
    assert picks["control_energy"]["gain"] == pytest.approx(20 / 12)

    t = out["targets"]
    lat, en, hv = (
        t["tx2_latency_gain_vs_bm_nas_max"],
        t["tx2_energy_gain_vs_bm_nas_max"],
        t["tx2_front_hv_vs_late_fusion_frontier"],
    )
    assert (lat["value"], lat["target"], lat["op"], lat["met"]) == (2.0, 1.91, ">=", True)
    assert lat["control_also_meets"] is True  # late fusion gains as much: no evidence
    assert lat["member_test_per_seed"] == [0.92] and lat["bm_nas_max_test_per_seed"] == [0.91]
    assert (en["value"], en["met"], en["control_also_meets"]) == (2.0, False, False)
    # 3-D box, normalised: A (0.5, 0.5, 0.5) -> 0.125; B (0.75, 0.2, 0.2) -> 0.16; their overlap
    # 0.0625 -> 0.2225. Late fusion (0.5, 0.5, 0.6) -> 0.1. One genome (B) -> 0.16.
    hvs = out["seeds"]["0"]["metrics"]["hv"]
    assert hvs["nsga2"] == pytest.approx(0.2225)
    assert hvs["late_fusion_frontier"] == pytest.approx(0.1)
    assert hv["value"] == pytest.approx(2.225) and hv["judged_by"] == "ratio"
    # A and the late fusion share their predictions: A beats it in every replicate
    assert hv["_ci_low"] > 1.0 and hv["met"] is True
    assert hv["control_values"] == {"one_genome": pytest.approx(1.6)}
    assert hv["control_also_meets"] is True
    # the paper's table: every front member by latency, bm-nas-max, the control's pick
    models = [r["model"] for r in out["tables"]["0"]]
    assert models[:3] == ["t0002 (searched)", "t0001 (searched)", "bm-nas-max"]
    assert models[-1] == "late-fusion frontier #0 (late-fusion-bayes)"
    assert out["tables"]["0"][1]["not_costed"] == 1
    assert "latency and energy" in out["tables"]["0"][1]["note"]


def test_mean_over_seeds_and_a_seed_with_no_member_within_a_point(bench: ModuleType) -> None:
    results = {"seeds": {"0": seed_record(0), "1": seed_record(1, bm_val=0.95)}}
    out = bench.finish(results, {"0": seed_candidates(), "1": seed_candidates()}, 50)
    g = out["summary"]["gains"]
    assert g["bm_nas_max"]["val_metric"]["per_seed"] == [0.90, 0.95]
    assert g["bm_nas_max"]["val_metric"]["mean"] == pytest.approx(0.925)
    assert g["bm_nas_max"]["val_metric"]["std"] == pytest.approx(np.std([0.90, 0.95], ddof=1))
    # seed 1: nothing within 1 point of 0.95, so no gain: the mean is not measured, not met
    assert g["search_latency"]["id_per_seed"] == ["t0001", None]
    lat = out["targets"]["tx2_latency_gain_vs_bm_nas_max"]
    assert lat["value"] is None and lat["met"] is False and lat["per_seed"] == [2.0, None]


def test_resummarise_recomputes_from_the_files_alone(bench: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "paper_devices.json"
    atomic_write_json(out, {"seeds": {"0": seed_record(0)}}, schema_version=bench.SCHEMA)
    atomic_write_json(
        bench.candidates_path(out), {"seeds": {"0": seed_candidates()}}, schema_version=bench.SCHEMA
    )
    assert bench.main(["--resummarise", "--out", str(out), "--boot", "50"]) == 0
    saved = read_json(out, schema_version=bench.SCHEMA)
    assert set(saved["targets"]) == {
        "tx2_latency_gain_vs_bm_nas_max",
        "tx2_energy_gain_vs_bm_nas_max",
        "tx2_front_hv_vs_late_fusion_frontier",
    }
    assert saved["targets"]["tx2_latency_gain_vs_bm_nas_max"]["value"] == pytest.approx(2.0)
    missing = tmp_path / "none.json"
    assert bench.main(["--resummarise", "--out", str(missing)]) == 2


def test_cheapest_within_prefers_the_more_accurate_on_a_tie(bench: ModuleType) -> None:
    rows = [
        {"id": "a", "val_metric": 0.90, "latency_ms": 3.0},
        {"id": "b", "val_metric": 0.92, "latency_ms": 3.0},
        {"id": "c", "val_metric": 0.80, "latency_ms": 1.0},
    ]
    assert bench.cheapest_within(rows, 0.89, "latency_ms")["id"] == "b"
    assert bench.cheapest_within(rows, 0.95, "latency_ms") is None


@pytest.mark.slow
@pytest.mark.skipif(
    not (TABLES / "lut_fusion_tx2.json").is_file(), reason="published TX2 tables not present"
)
def test_smoke_run_on_the_tx2_tables(tmp_path: Path) -> None:
    """The whole benchmark on the ``--set`` smoke path (a tiny hard-profile pipeline of its own,
    1-epoch supernets, 2 candidates, 1 + 1 fusion epochs): the JSON's structure, the table's
    coverage, nothing written into the run's own baselines."""
    out = tmp_path / "paper_devices.json"
    sets = [
        f"run_dir={tmp_path / 'runs'}",
        "pretrain.epochs=1",
        *(f"dataset.options.{s}_per_class=10" for s in ("train", "val", "test")),
        *(f"dataset.options.{s}_speakers=10" for s in ("train", "val", "test")),
    ]
    cmd = [sys.executable, str(REPO / "benchmarks" / "paper_devices.py"), "--seeds", "0"]
    cmd += ["--population", "2", "--generations", "1", "--fusion-epochs", "1", "1"]
    cmd += ["--boot", "20", "--out", str(out), *(a for s in sets for a in ("--set", s))]
    env_path = {"PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run(
        cmd, env={**os.environ, **env_path}, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "| model | val % | test % | TX2 latency ms | TX2 energy mJ |" in proc.stdout
    data = json.loads(out.read_text())
    assert data["settings"]["device"] == "jetson-tx2"
    assert data["settings"]["fusion"] == {"C": 192, "L": 16, "epochs": 1}
    assert data["machine"]["python"]
    rec = data["seeds"]["0"]
    assert rec["objectives"] == ["val_metric", "latency_ms", "energy_mj"]
    assert rec["nsga2"]["n_complete"] == 2 and rec["pareto"]
    names = {r["name"] for r in rec["baselines"]}
    assert {"bm-nas-max", "late-fusion-avg", "single:image", "single:audio"} <= names
    assert rec["box"]["energy_ceiling"] > 0
    cov = rec["coverage"]
    assert not any(k.startswith(("ConvLayer", "MBConvLayer")) for k in cov["not_costed"])
    assert any(k.startswith("CellNorm") for k in cov["not_costed"])
    assert any(k.startswith("FusionReshape") for k in cov["not_costed"])
    for name in (
        "tx2_latency_gain_vs_bm_nas_max",
        "tx2_energy_gain_vs_bm_nas_max",
        "tx2_front_hv_vs_late_fusion_frontier",
    ):
        t = data["targets"][name]
        assert {"value", "target", "op", "met", "control_also_meets"} <= set(t)
    assert {"_ci_low", "_ci_high"} <= set(data["targets"]["tx2_front_hv_vs_late_fusion_frontier"])
    cands = json.loads((tmp_path / "paper_devices.candidates.json").read_text())["seeds"]["0"]
    assert set(cands) == {"nsga2", "one_genome", "late_fusion_frontier"}
    assert all(c["val_pred"] and c["energy_mj"] > 0 for c in cands["nsga2"])
    run = REPO / rec["run"] if not Path(rec["run"]).is_absolute() else Path(rec["run"])
    assert not (run / "baselines.json").exists()  # the run's own baselines are not replaced
    assert (run / "studies" / rec["study"] / "baselines.json").is_file()
    assert (run / "luts" / "jetson-tx2.json").is_file()


def test_missing_tables_stop_before_anything_is_written(bench: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "paper_devices.json"
    assert bench.main(["--tables", str(tmp_path), "--seeds", "0", "--out", str(out)]) == 2
    assert not out.exists() and not bench.candidates_path(out).exists()


@pytest.mark.skipif(
    not (TABLES / "lut_fusion_tx2.json").is_file(), reason="published TX2 tables not present"
)
def test_the_tables_go_into_the_run_and_a_different_installed_table_is_refused(
    bench: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARMONIC_NAS_CACHE", str(tmp_path / "cache"))  # this test's own
    from harmonic_nas.config import load_config
    from harmonic_nas.errors import LUTError
    from harmonic_nas.hardware.lut_source import install_lut, run_lut_path
    from harmonic_nas.hardware.reference import read_published_table

    lut = bench.import_tables(TABLES)
    assert not lut.energy_modelled  # energy measured: an objective of its own
    raw = json.loads((TABLES / "lut_fusion_tx2.json").read_text())
    assert set(read_published_table(raw, "fusion")) <= set(lut.entries)
    cfg = load_config(REPO / "configs" / "quick.yaml", {"run_dir": str(tmp_path), "name": "r"})
    path = bench.place_table(cfg, lut)
    assert path == run_lut_path(cfg, "jetson-tx2") and path.is_file()
    other = bench.import_tables(TABLES)
    key = next(iter(other.entries))
    other.entries[key] = type(other.entries[key]).point(1.0, 1.0)
    install_lut(other)
    with pytest.raises(LUTError, match="another table is installed for device 'jetson-tx2'"):
        bench.place_table(cfg, lut)


def test_without_an_energy_ceiling_the_box_stays_two_dimensional(bench: ModuleType) -> None:
    """search_quality's seed metrics (shared): the box has an energy axis only when the record
    gives an energy ceiling. 2-D: A (0.5, 0.5) -> 0.25, B (0.75, 0.2) -> 0.2, overlap 0.125."""
    rec = seed_record(0)
    del rec["box"]["energy_ceiling"]
    m = bench.measure_seed(rec, seed_candidates(), 20)
    assert m["box"]["energy_ceiling"] is None
    assert m["hv"]["nsga2"] == pytest.approx(0.325)
    assert m["hv"]["late_fusion_frontier"] == pytest.approx(0.25)


def test_late_fusion_choices_are_counted_per_strategy(bench: ModuleType) -> None:
    """search_quality's seed metrics (shared): how often the fusion-mode gene chose late fusion,
    among a strategy's candidates and its front; a key that only ends in 'late' elsewhere, or the
    frontier's backbone-only keys, is not a choice."""
    cands = seed_candidates()
    cands["nsga2"][0]["genome"] = "image=a|audio=b|late"  # A, on the front
    cands["nsga2"][1]["genome"] = "image=a|audio=b|c1n1-network+late"  # B, on the front
    cands["nsga2"].append(cand("nsga2", 3, 0.80, 6.0, 12.0, genome="image=c|audio=d|late"))
    m = bench.measure_seed(seed_record(0), cands, 20)
    choices = m["late_fusion_choices"]
    assert choices["nsga2"] == {"candidates": 3, "late": 2, "front": 2, "front_late": 1}
    assert choices["late_fusion_frontier"] == {
        "candidates": 1,
        "late": 0,
        "front": 1,
        "front_late": 0,
    }
    summary = bench.summarise([m, m])
    assert summary["late_fusion_choices"]["nsga2"] == [choices["nsga2"]] * 2
    older = {k: v for k, v in m.items() if k != "late_fusion_choices"}  # saved before the count
    assert "late_fusion_choices" not in bench.summarise([m, older])
