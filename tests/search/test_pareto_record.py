"""``pareto.json`` is a typed record written and read by the same code (ParetoRecord)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harmonic_nas.errors import HarmonicError
from harmonic_nas.pipeline import best_model_id
from harmonic_nas.search import run_search
from harmonic_nas.search.pareto_record import PARETO_SCHEMA_VERSION, ParetoRecord
from harmonic_nas.testing.synthetic_problem import SyntheticFactory


@pytest.fixture
def pareto(make_config: Any) -> Path:
    _, cfg = make_config()
    summary = run_search(cfg, problem=SyntheticFactory(seed_noise=0.01))
    assert summary.pareto_path is not None
    return summary.pareto_path


def test_the_written_file_reads_back_to_the_same_json(pareto: Path) -> None:
    raw = json.loads(pareto.read_text(encoding="utf-8"))
    record = ParetoRecord.read(pareto)
    assert {"schema_version": PARETO_SCHEMA_VERSION, **record.to_json()} == raw
    assert ParetoRecord.from_json(record.to_json()) == record
    assert [m.id for m in record.members] == [m["id"] for m in raw["members"]]
    assert record.best is not None and record.best.id == raw["best"]["id"]
    assert record.test_scores() == {m["trial"]: m["test_metric"] for m in raw["members"]}


def test_best_member_falls_back_to_val_then_latency(pareto: Path, tmp_path: Path) -> None:
    record = ParetoRecord.read(pareto)
    expected = max(record.members, key=lambda m: (m.val_metric, -m.latency_ms)).id
    assert best_model_id(pareto) == record.best.id == expected  # type: ignore[union-attr]
    data = json.loads(pareto.read_text(encoding="utf-8"))
    data["best"] = None
    no_best = tmp_path / "pareto.json"
    no_best.write_text(json.dumps(data), encoding="utf-8")
    assert best_model_id(no_best) == expected


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"schema_version": 99}, "schema"),
        ({"members": None}, "has no 'members' list"),
        ({"members": [{"id": "t0001"}]}, "has a member without 'trial'"),
        ({"members": [7]}, "has a member that is not an object"),
    ],
)
def test_a_bad_file_is_refused_in_one_line(
    pareto: Path, tmp_path: Path, patch: dict[str, Any], message: str
) -> None:
    data = {**json.loads(pareto.read_text(encoding="utf-8")), **patch}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(HarmonicError, match=message) as info:
        ParetoRecord.read(bad)
    assert "\n" not in str(info.value)
