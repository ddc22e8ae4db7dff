"""What to deploy: the recommendation rule of a Pareto set (issue 25, new user item 5)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from harmonic_nas.search.pareto_record import ParetoMember, ParetoRecord
from harmonic_nas.search.recommend import (
    baselines_beating_all,
    deploy_lines,
    recommend,
    val_standard_error,
)


def member(ident: str, val: float, lat: float, energy: float | None = None) -> ParetoMember:
    return ParetoMember(
        id=ident,
        trial=int(ident[1:]),
        arch={},
        val_metric=val,
        test_metric=None,
        test_metric_std=None,
        latency_ms=lat,
        energy_mj=lat * 10 if energy is None else energy,
        latency_paper_ms=None,
        energy_paper_mj=None,
        params=1000,
    )


# the case: 0.9476 @ 0.108 ms vs 0.9473 @ 0.099 ms, on a 2000-sample val split
FRONT = [
    member("t0001", 0.9476, 0.108),
    member("t0002", 0.9473, 0.099),
    member("t0003", 0.90, 0.05),
]


def test_standard_error_is_binomial() -> None:
    assert val_standard_error(0.9, 100) == pytest.approx(math.sqrt(0.9 * 0.1 / 100))
    assert val_standard_error(0.9, None) == 0.0 and val_standard_error(0.9, 0) == 0.0


def test_fastest_within_noise_of_the_best() -> None:
    rec = recommend(FRONT, n_val=2000)
    assert rec is not None
    assert rec.id == "t0002" and rec.best_id == "t0001" and rec.rule == "within-se"
    assert rec.val_se == pytest.approx(math.sqrt(0.9476 * 0.0524 / 2000))
    assert "fastest member within the standard error" in rec.reason and "t0001" in rec.reason


def test_the_best_when_nothing_faster_is_close() -> None:
    # a huge val split: the standard error is below the 0.0003 gap
    rec = recommend(FRONT, n_val=10_000_000)
    assert rec is not None and rec.id == "t0001" and "no faster member" in rec.reason
    # unknown split size: no noise band, the best (ties broken by latency)
    rec = recommend(FRONT, n_val=None)
    assert rec is not None and rec.id == "t0001"


def test_seed_std_widens_the_band() -> None:
    best = ParetoMember(**{**member("t0001", 0.95, 0.2).__dict__, "val_metric_std": 0.05})
    rec = recommend([best, member("t0002", 0.91, 0.1)], n_val=10_000_000)
    assert rec is not None and rec.id == "t0002" and rec.val_se == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("latency", "energy", "expected", "rule"),
    [
        (0.104, None, "t0002", "budget"),  # t0001 is over the latency budget
        (0.06, None, "t0003", "budget"),  # only the weakest fits
        (None, 0.6, "t0003", "budget"),  # energy budget (10 mJ per ms)
        (0.01, None, "t0002", "within-se"),  # no member fits: every member considered
    ],
)
def test_budget(latency: float | None, energy: float | None, expected: str, rule: str) -> None:
    rec = recommend(FRONT, n_val=2000, latency_budget_ms=latency, energy_budget_mj=energy)
    assert rec is not None and rec.id == expected and rec.rule == rule
    if rule == "budget":
        assert rec.reason.startswith("within the budget")
    else:
        assert "no member meets the budget" in rec.reason


def test_empty_front() -> None:
    assert recommend([], n_val=100) is None


def test_baseline_beating_every_member_is_said_first() -> None:
    baselines = [
        {"name": "late fusion", "val_metric": 0.95, "latency_ms": 0.04},
        {"name": "slow", "val_metric": 0.99, "latency_ms": 5.0},
        {"name": "broken", "val_metric": None, "latency_ms": 0.01},
    ]
    assert baselines_beating_all(FRONT, baselines) == ["late fusion"]
    lines = deploy_lines(FRONT, recommend(FRONT, n_val=2000), baselines)
    assert lines[0].startswith("baseline late fusion beats every Pareto member")
    assert lines[1].startswith("recommended: t0002,")
    assert deploy_lines(FRONT, recommend(FRONT, n_val=2000), baselines[1:])[0].startswith(
        "recommended: t0002"
    )
    assert baselines_beating_all([], baselines) == []


def test_recorded_in_pareto_json_and_read_back(tmp_path: Path) -> None:
    rec = recommend(FRONT, n_val=2000)
    record = ParetoRecord(
        run="r",
        device="host",
        task="classification",
        metric="accuracy",
        strategy="nsga2",
        study="s",
        test_seeds=1,
        rescore_seeds=1,
        objectives=["val_metric", "latency_ms"],
        energy={},
        reference_point={},
        ideal_point={},
        best=None,
        members=FRONT,
        val_size=2000,
        recommended=rec,
    )
    back = ParetoRecord.read(record.write(tmp_path / "pareto.json"))
    assert back.recommended == rec and back.val_size == 2000
    assert back.recommended_id() == "t0002" and back.best_id() == "t0001"
    # a file written before the rule: the rule applied on read
    older = ParetoRecord(**{**record.__dict__, "recommended": None})
    assert ParetoRecord.read(older.write(tmp_path / "old.json")).recommended_id() == "t0002"
