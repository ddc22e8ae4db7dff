"""The cost-model validation record: what ``lut validate`` writes is what the report reads."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from harmonic_nas.errors import LUTError
from harmonic_nas.hardware.validate import ValidationResult, save_validation
from harmonic_nas.hardware.validation_record import (
    VALIDATION_SCHEMA_VERSION,
    ValidationRecord,
    ValidationSample,
)
from harmonic_nas.results import load_run


def _result() -> ValidationResult:
    archs = [{"arch": {"C": 8, "L": 4}, "predicted_keys": ["fusion.head"]}, {"arch": {"C": 8}}]
    return ValidationResult("host", "torch", 2, [1.0, 2.5], [1.25, 2.0], archs, seed=3)


def test_the_writer_writes_the_record_and_its_fixed_keys(tmp_path: Path) -> None:
    json_path, png = save_validation(_result(), tmp_path)
    saved = json.loads(json_path.read_text(encoding="utf-8"))
    assert list(saved) == [
        "schema_version",
        "device",
        "backend",
        "threads",
        "seed",
        "summary",
        "samples",
    ]
    assert saved["schema_version"] == VALIDATION_SCHEMA_VERSION == 1
    assert saved["samples"][0] == {
        "predicted_ms": 1.0,
        "measured_ms": 1.25,
        "arch": {"C": 8, "L": 4},
        "predicted_keys": ["fusion.head"],
    }
    assert saved["samples"][1] == {"predicted_ms": 2.5, "measured_ms": 2.0, "arch": {"C": 8}}
    assert saved["summary"]["mape_pct"] == pytest.approx((20 + 25) / 2)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = ValidationRecord.load(json_path)
    assert (record.device, record.backend, record.threads, record.seed) == ("host", "torch", 2, 3)
    assert record.predicted_ms == [1.0, 2.5] and record.measured_ms == [1.25, 2.0]
    assert record.samples[0].predicted_keys == ("fusion.head",)
    assert record.samples[1].predicted_keys is None
    assert record.to_json() == saved  # the round trip is exact


def test_round_trip_through_a_file(tmp_path: Path) -> None:
    record = ValidationRecord(
        "dev-1", "onnxruntime", 4, 0, {"samples": 1}, (ValidationSample(1.5, 1.25),)
    )
    path = record.save(tmp_path / "dev-1.validation.json")
    assert ValidationRecord.load(path) == record


def _good() -> dict[str, Any]:
    return ValidationRecord("host", "torch", 1, 0, {}, (ValidationSample(1.0, 2.0),)).to_json()


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"schema_version": 2}, "schema_version 2, expected 1"),
        ({"schema_version": True}, "schema_version True, expected 1"),
        ({"device": ""}, "device is '', not a non-empty string"),
        ({"threads": True}, "threads is True, not an integer"),
        ({"threads": 1.5}, "threads is 1.5, not an integer"),
        ({"summary": []}, "summary is not an object"),
        ({"samples": {}}, "samples is not a list"),
        ({"samples": [{"predicted_ms": 1.0}]}, "samples[0].measured_ms is None"),
        ({"samples": [{"predicted_ms": "1", "measured_ms": 1}]}, "samples[0].predicted_ms is '1'"),
        ({"samples": [{"predicted_ms": math.inf, "measured_ms": 1}]}, "not a finite number"),
        ({"samples": [{"predicted_ms": 1, "measured_ms": 1, "arch": 3}]}, "samples[0].arch"),
        ({"samples": [1]}, "samples[0] is not an object"),
    ],
)
def test_a_bad_record_is_a_one_line_error(change: dict[str, Any], needle: str) -> None:
    with pytest.raises(LUTError) as err:
        ValidationRecord.from_json({**_good(), **change}, "cost-model validation x.json")
    msg = str(err.value)
    assert "\n" not in msg and needle in msg
    assert msg.startswith("cost-model validation x.json is not a valid validation record: ")
    assert msg.endswith("rerun `harmonic-nas lut validate CONFIG` to regenerate it")


def test_the_report_reads_the_record_of_the_run(fake_run: Path) -> None:
    art = load_run(fake_run)
    assert set(art.validations) == {"host"} and not art.validation_errors
    assert len(art.validations["host"].samples) == 10
    (fake_run / "luts" / "host.validation.json").write_text("{not json")
    art = load_run(fake_run)
    assert not art.validations and "is not valid JSON" in art.validation_errors["host"]
