"""The report, the `report` command and `report --json` say what to deploy, first (issue 25,
new user item 5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harmonic_nas.cli import main
from harmonic_nas.results import deploy_summary, report
from harmonic_nas.search.pareto_record import ParetoRecord
from harmonic_nas.utils.io import read_json


def test_report_opens_with_the_recommendation(fake_run: Path) -> None:
    record = ParetoRecord.read(fake_run / "pareto.json")
    rec = record.recommendation()
    assert rec is not None
    page = report(fake_run).read_text(encoding="utf-8")
    main_part = page.split("<main>", 1)[1]
    assert main_part.index('id="deploy"') < main_part.index('class="cards"')
    assert f"recommended: {rec.id}," in main_part.split('class="cards"')[0]


def test_a_baseline_beating_every_member_is_the_first_thing_said(
    fake_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    members = ParetoRecord.read(fake_run / "pareto.json").members
    path = fake_run / "baselines.json"
    data = read_json(path, schema_version=1)
    data["baselines"].append(
        {
            "name": "tiny late fusion",
            "val_metric": max(m.val_metric for m in members),
            "latency_ms": min(m.latency_ms for m in members),
        }
    )
    path.write_text(json.dumps(data))
    lines = deploy_summary(fake_run)
    assert lines[0].startswith("baseline tiny late fusion beats every Pareto member")
    page = report(fake_run).read_text(encoding="utf-8")
    deploy = page.split('id="deploy"', 1)[1].split("</div>", 1)[0]
    assert deploy.index("beats every Pareto member") < deploy.index("recommended:")
    assert 'class="deploy dominated"' in page
    assert main(["report", str(fake_run)]) == 0
    out = capsys.readouterr().out
    assert "beats every Pareto member" in out and "recommended:" in out
    assert main(["report", str(fake_run), "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["deploy"][0].startswith("baseline tiny late fusion")
    assert obj["recommended"]["id"] in {m.id for m in members}


def test_report_shows_per_label_test_scores(fake_run: Path) -> None:
    """Per-label scores of every member (issue 25, new user item 4): a weak label is visible."""
    path = fake_run / "pareto.json"
    data = read_json(path, schema_version=1)
    for i, m in enumerate(data["members"]):
        m["test_per_label"] = [
            {"label": "digit-0", "score": 0.9 - 0.01 * i, "support": 12},
            {"label": "needs-both", "score": 0.667, "support": 3},
        ]
    path.write_text(json.dumps(data))
    page = report(fake_run).read_text(encoding="utf-8")
    pareto = page.split('id="pareto"')[1].split("</section>")[0]
    assert "Per-label test scores" in pareto and "test recall" in pareto
    table = pareto.split("Per-label test scores")[1].split("</table>")[0]
    assert "needs-both" in table and "0.6670" in table
    assert all(m["id"] in table for m in data["members"])
