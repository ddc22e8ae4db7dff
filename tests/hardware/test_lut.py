"""The LUT file: schema round-trip, validation of bad files, lookups."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from harmonic_nas.backbones import LayerSpec
from harmonic_nas.errors import LUTError
from harmonic_nas.hardware.keys import lut_key
from harmonic_nas.hardware.lut import (
    LUT,
    LUT_SCHEMA_VERSION,
    DeviceInfo,
    EnergyStats,
    LatencyStats,
    LUTEntry,
)

CONV = "ConvLayer-input:1_1_28_28-in_ch:1-out_ch:16-kernel:3-stride:2-use_se:0-use_bn:1"
SUM = "Sum-input:1_8_4-N:1-C:8-L:4"


def make_lut() -> LUT:
    return LUT(
        device=DeviceInfo("host", "test machine", "onnxruntime", 2),
        energy_source="model:constant power 15 W x latency",
        entries={
            CONV: LUTEntry(LatencyStats(0.05, 0.01, 50, 0.048, 0.041), EnergyStats(0.75, 0.1, 50)),
            SUM: LUTEntry.point(0.002, 0.03),
        },
        overhead=LUTEntry.point(0.005, 0.075),
        meta={"repeats": 50},
    )


def test_schema_round_trip(tmp_path: Path) -> None:
    lut = make_lut()
    path = lut.save(tmp_path / "luts" / "host.json")
    raw = json.loads(path.read_text())
    assert raw["schema_version"] == LUT_SCHEMA_VERSION
    assert raw["units"] == {"latency": "ms", "energy": "mJ"}
    assert raw["device"] == {
        "name": "host",
        "description": "test machine",
        "backend": "onnxruntime",
        "threads": 2,
        "batch_size": 1,
        "identity": None,
    }
    assert raw["calibration"] is None and raw["predicted"] == []
    assert set(raw["entries"][CONV]["latency"]) == {"mean", "std", "count", "median", "p10"}
    assert set(raw["entries"][CONV]["energy"]) == {"mean", "std", "count"}
    back = LUT.load(path)
    assert back.to_json() == lut.to_json()
    assert back.entries == lut.entries
    assert back.overhead == lut.overhead


def test_latency_value_prefers_p10_then_median() -> None:
    assert LatencyStats(1.0, 0.1, 10, 0.9, 0.8).value == 0.8
    assert LatencyStats(1.0, 0.1, 10, 0.9).value == 0.9
    assert LatencyStats(1.0).value == 1.0


def _write(tmp_path: Path, obj: Any) -> Path:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return path


def _good() -> dict[str, Any]:
    return make_lut().to_json()


def _mutate(path: str, value: Any) -> dict[str, Any]:
    obj = _good()
    *parents, last = path.split("/")
    cur = obj
    for p in parents:
        cur = cur[p]
    cur[last] = value
    return obj


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('{"schema_version": 1, "entries": {', "not valid JSON"),
        (_mutate("schema_version", 99), "schema_version 99"),
        (_mutate("schema_version", True), "schema_version True"),  # true == 1 is not a version
        (_mutate("schema_version", 1.0), "schema_version 1.0"),
        ({k: v for k, v in _good().items() if k != "schema_version"}, "schema_version None"),
        (_mutate(f"entries/{CONV}/latency/mean", -0.5), "negative"),
        (_mutate(f"entries/{CONV}/energy/mean", float("nan")), "nan"),
        (_mutate(f"entries/{CONV}/latency/p10", float("inf")), "inf"),
        (_mutate(f"entries/{CONV}/latency/mean", "0.5"), "must be a number"),
        (_mutate("energy_source", "guess"), "energy_source"),
        (_mutate("units", {"latency": "s", "energy": "J"}), "units"),
        (_mutate("device/batch_size", 8), "batch_size must be 1"),
        (_mutate("device/backend", "tensorrt"), "unknown backend"),
        (_mutate("entries", {"NotAKey": {}}), "unknown LUT key kind"),
        (_mutate(f"entries/{CONV}", {"latency": {"mean": 1}}), "'latency' and 'energy'"),
        ([1, 2], "must be a JSON object"),
        (_mutate("layer_revisions", {"FusionReshape": 0}), "'layer_revisions' must map"),
        (_mutate("layer_revisions", ["FusionReshape"]), "'layer_revisions' must map"),
    ],
)
def test_bad_files_are_one_line_lut_errors(tmp_path: Path, content: Any, match: str) -> None:
    if not isinstance(content, str):
        content = json.dumps(content)  # NaN/inf as JSON literals, as a buggy writer would
    path = _write(tmp_path, content)
    with pytest.raises(LUTError) as info:
        LUT.load(path)
    assert match in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file() -> None:
    with pytest.raises(LUTError, match="not found"):
        LUT.load("/nonexistent/x.json")


def test_save_refuses_nan(tmp_path: Path) -> None:
    lut = make_lut()
    lut.entries[SUM] = LUTEntry.point(math.nan, 0.0)
    with pytest.raises(ValueError):
        lut.save(tmp_path / "x.json")


def test_entry_missing_names_the_key() -> None:
    lut = make_lut()
    with pytest.raises(LUTError) as info:
        lut.entry("LinearLayer-input:80-in_ch:80-out_ch:10")
    assert "LinearLayer-input:80-in_ch:80-out_ch:10" in str(info.value)


def test_op_costs_and_missing() -> None:
    lut = make_lut()
    assert lut.op_costs(8, 4, ["Sum"]) == {"Sum": (0.002, 0.03)}
    with pytest.raises(LUTError, match="ScaleDotAttn-input:1_8_4-N:1-C:8-L:4"):
        lut.op_costs(8, 4, ["Sum", "ScaleDotAttn"])
    spec = LayerSpec("linear", (80,), 80, 10)
    assert lut.missing([spec, spec]) == [lut_key(spec)]


def test_merge() -> None:
    a, b = make_lut(), make_lut()
    b.entries = {CONV: LUTEntry.point(9.0, 9.0)}
    a.merge(b, overwrite=False)
    assert a.entries[CONV].latency_ms == 0.041
    a.merge(b)
    assert a.entries[CONV].latency_ms == 9.0


RESHAPE = "FusionReshape-input:1_24_7_7-C:32-L:4"


@pytest.mark.parametrize("imported", [False, True])
def test_entries_of_an_older_layer_revision_are_dropped_and_profiled_again(
    tmp_path: Path, imported: bool
) -> None:
    """A measured table that timed the fusion-point reshape before its graph changed (no
    ``layer_revisions``: revision 1) loses those entries on load, so `_complete` profiles them on
    today's graph; its other entries stay. An imported table keeps everything."""
    from harmonic_nas.hardware.keys import LAYER_REVISIONS

    obj = _good()
    obj["entries"][RESHAPE] = LUTEntry.point(0.013, 0.2).to_json()
    obj["predicted"] = [RESHAPE]
    del obj["layer_revisions"]
    if imported:
        obj["energy_source"] = "imported:a paper"
    lut = LUT.load(_write(tmp_path, json.dumps(obj)))
    assert (RESHAPE in lut) == imported
    assert CONV in lut and SUM in lut
    assert lut.predicted == (frozenset({RESHAPE}) if imported else frozenset())
    if not imported:
        assert lut.layer_revisions["FusionReshape"] == LAYER_REVISIONS["FusionReshape"] == 2
        lut.entries[RESHAPE] = LUTEntry.point(0.006, 0.09)  # profiled again, then saved
        again = LUT.load(lut.save(tmp_path / "again.json"))
        assert again.entries[RESHAPE] == LUTEntry.point(0.006, 0.09)  # current: kept
