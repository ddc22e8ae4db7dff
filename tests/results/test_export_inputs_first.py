"""``export`` decides first and writes after: a bad input leaves an existing export untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harmonic_nas.cli import main


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def _existing_export(run: Path) -> tuple[str, Path]:
    """A model directory that already holds an export (placeholder bytes: a real export would be
    replaced by different bytes, which is what the old code did before failing)."""
    mid = json.loads((run / "pareto.json").read_text())["members"][0]["id"]
    d = run / "models" / mid
    (d / "model.onnx").write_bytes(b"an earlier onnx export")
    (d / "model.pt").write_bytes(b"an earlier torchscript export")
    (d / "preprocess.json").write_text('{"schema_version": 1, "earlier": true}\n')
    (d / "export.json").write_text('{"schema_version": 1}\n')
    return mid, d


@pytest.mark.parametrize(
    ("pareto", "needle"),
    [
        ('{"schema_version": 1, "members": [', "is not valid JSON"),
        ('{"schema_version": 99, "members": []}', "has schema_version 99, expected 1"),
        ('{"members": []}', "has schema_version None, expected 1"),
        ('{"schema_version": 1, "members": {"t0001": {}}}', "has no list of members"),
    ],
    ids=["corrupt", "future-version", "no-version", "members-not-a-list"],
)
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_bad_pareto_json_leaves_the_export_byte_identical(
    model_run: Path, capsys: pytest.CaptureFixture[str], pareto: str, needle: str, fmt: str
) -> None:
    mid, d = _existing_export(model_run)
    (model_run / "pareto.json").write_text(pareto)
    before = _snapshot(d)
    assert main(["export", str(model_run), "--model", mid, "--format", fmt]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: Pareto set ") and needle in err and "Traceback" not in err
    assert _snapshot(d) == before
    assert sorted(p.name for p in d.iterdir()) == sorted(before)  # no temporary file left


def test_bad_weights_leave_the_export_byte_identical(
    model_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mid, d = _existing_export(model_run)
    (d / "weights.pt").write_bytes(b"not a torch file")
    before = _snapshot(d)
    assert main(["export", str(model_run), "--model", mid, "--format", "onnx"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "corrupt or unsafe to load" in err
    assert _snapshot(d) == before
