"""The search summary says what was optimised and whether energy is modelled."""

from __future__ import annotations

from pathlib import Path

from harmonic_nas.cli._common import objectives_line
from harmonic_nas.utils.io import atomic_write_json


def _candidates(tmp_path: Path, objectives: list[str], modelled: bool) -> Path:
    source = "model:constant power 15 W x latency" if modelled else "rapl"
    return atomic_write_json(
        tmp_path / "candidates.json",
        {
            "objectives": objectives,
            "energy": {"source": source, "modelled": modelled, "objective": not modelled},
            "candidates": [],
        },
        schema_version=1,
    )


def test_modelled_energy_is_said_in_the_summary(tmp_path: Path) -> None:
    line = objectives_line(_candidates(tmp_path, ["val_metric", "latency_ms"], True))
    assert line == (
        "objectives: val metric, latency; energy is modelled (model:constant power 15 W x "
        "latency), not an objective of its own"
    )


def test_measured_energy_is_an_objective(tmp_path: Path) -> None:
    line = objectives_line(_candidates(tmp_path, ["val_metric", "latency_ms", "energy_mj"], False))
    assert line == "objectives: val metric, latency, energy; energy measured (rapl)"
