"""The instrument's front metrics against hand-computed fronts: HV in the box (2-D and 3-D), IGD+,
ratios and differences, the zero-HV control, the bootstrap and its intervals, the target rules and
the JSON round trips."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import optuna
import pytest

from harmonic_nas.search import run_search
from harmonic_nas.search.final import study_points
from harmonic_nas.search.front_metrics import (
    BootstrapComparison,
    Box,
    Candidate,
    HvBootstrap,
    HvComparison,
    Interval,
    bootstrap_hv,
    bootstrap_hv_ratio,
    candidates_from_json,
    candidates_to_json,
    control_also_meets,
    decode_array,
    encode_array,
    front_hv,
    front_points,
    hv_comparison,
    igd_plus,
    interval_met,
    judge_ratio,
    legacy_normalised_hv,
    mean_over_seeds_interval,
    percentile_interval,
    score_predictions,
    union_front,
)
from harmonic_nas.search.records import SearchRecords
from harmonic_nas.search.storage import open_storage
from harmonic_nas.testing.synthetic_problem import SyntheticFactory

BOX = Box(acc_floor=0.8, lat_ceiling=10.0)


def cand(val: float, lat: float, strategy: str = "s", **kw: Any) -> Candidate:
    return Candidate(
        id=f"{strategy}-{val}-{lat}", strategy=strategy, val_metric=val, latency_ms=lat, **kw
    )


# --- HV in the box --------------------------------------------------------------------------------


def test_hv_2d_in_the_box_by_hand() -> None:
    cands = [
        cand(0.9, 2.0),  # normalised (0.5, 0.2)
        cand(0.95, 6.0),  # (0.25, 0.6)
        cand(0.85, 8.0),  # dominated by the first
        cand(0.75, 1.0),  # below the floor: nothing
        cand(0.99, 12.0),  # beyond the latency ceiling: nothing
        cand(1.0, 0.0, fidelity="low"),  # the ideal corner, but never promoted: not on a front
        cand(1.0, 0.0, feasible=False),  # over a hard budget: not on a front
    ]
    # [0.5, 1] x [0.2, 1] = 0.4, plus [0.25, 0.5) x [0.6, 1] = 0.1
    assert front_hv(cands, BOX) == pytest.approx(0.5)
    front = front_points(cands)
    assert [(c.val_metric, c.latency_ms) for c in front] == [
        (0.75, 1.0),
        (0.9, 2.0),
        (0.95, 6.0),
        (0.99, 12.0),
    ]
    assert front_hv([cand(0.8, 1.0), cand(0.99, 10.0)], BOX) == 0.0  # on the floor / ceiling
    assert front_hv([], BOX) == 0.0
    assert front_hv([cand(1.0, 0.0)], BOX) == pytest.approx(1.0)  # the ideal corner


def test_hv_3d_in_the_box_by_hand() -> None:
    box = Box(acc_floor=0.5, lat_ceiling=4.0, energy_ceiling=2.0)
    p = cand(0.75, 2.0, energy_mj=1.0)  # (0.5, 0.5, 0.5): 0.125
    q = cand(1.0, 3.0, energy_mj=0.5)  # (0, 0.75, 0.25): 0.1875; overlap with p 0.0625
    assert front_hv([p], box) == pytest.approx(0.125)
    assert front_hv([p, q], box) == pytest.approx(0.25)
    # energy an objective: neither dominates the other (q is slower but cheaper)
    assert len(front_points([p, q], energy=True)) == 2
    with pytest.raises(ValueError, match="has no energy_mj but the box has an energy axis"):
        front_hv([cand(0.9, 1.0)], box)


def test_a_known_better_front_gives_its_known_ratio() -> None:
    b = [cand(0.9, 5.0, "b")]  # (0.5, 0.5): HV 0.25
    a = [cand(0.9, 2.5, "a")]  # (0.5, 0.25): HV 0.375
    cmp = hv_comparison(a, b, BOX)
    assert cmp.hv_a == pytest.approx(0.375) and cmp.hv_b == pytest.approx(0.25)
    assert cmp.ratio == pytest.approx(1.5) and cmp.difference == pytest.approx(0.125)
    assert not cmp.control_hv_zero
    # adding a dominated point changes nothing
    assert hv_comparison([*a, cand(0.85, 6.0, "a")], b, BOX).ratio == pytest.approx(1.5)


def test_a_zero_hv_control_gives_no_ratio_and_is_judged_by_the_difference() -> None:
    cmp = hv_comparison([cand(0.9, 5.0)], [cand(0.7, 1.0), cand(0.95, 11.0)], BOX)
    assert cmp.hv_b == 0.0 and cmp.control_hv_zero
    assert cmp.ratio is None and cmp.difference == pytest.approx(0.25)
    assert cmp.to_json() == {
        "hv_a": cmp.hv_a,
        "hv_b": 0.0,
        "ratio": None,
        "difference": cmp.difference,
        "control_hv_zero": True,
    }


def test_box_for_seed_follows_the_protocol_and_refuses_an_empty_box() -> None:
    box = Box.for_seed(
        {"image": 0.747, "audio": 0.713},
        {"late-fusion-avg": 3.1, "bm-nas-max": 4.2},
    )
    assert (box.acc_floor, box.lat_ceiling, box.lat_ideal) == (0.747, 4.2, 0.0)
    assert (box.floor_source, box.ceiling_source) == ("image", "bm-nas-max")
    assert not box.has_energy and box.ideal == (-1.0, 0.0) and box.reference == (-0.747, 4.2)
    with pytest.raises(ValueError, match=r"acc_floor 1.0 must be below acc_ideal"):
        Box(acc_floor=1.0, lat_ceiling=1.0)
    with pytest.raises(ValueError, match=r"lat_ceiling 0.0 must be above lat_ideal"):
        Box(acc_floor=0.5, lat_ceiling=0.0)
    with pytest.raises(ValueError, match="must be finite"):
        Box(acc_floor=math.nan, lat_ceiling=1.0)


# --- IGD+ -----------------------------------------------------------------------------------------


def test_igd_plus_by_hand() -> None:
    # normalised: acc a -> val 1 - 0.2 a, latency l -> 10 l
    r1, r2 = cand(1.0, 5.0, "r"), cand(0.9, 0.0, "r")  # (0, 0.5), (0.5, 0)
    reference = [r1, r2, cand(0.85, 6.0, "r")]  # the last is dominated: not a reference point
    middle = [cand(0.95, 2.5)]  # (0.25, 0.25): d+ = 0.25 to each reference point
    assert igd_plus(middle, reference, BOX) == pytest.approx(0.25)
    # one end of the reference: d+ 0 to itself, sqrt(0 + 0.5^2) = 0.5 to the other
    # (plain IGD would count the Euclidean distance sqrt(0.5), 0.707)
    assert igd_plus([r1], reference, BOX) == pytest.approx(0.25)
    assert igd_plus([r1, r2], reference, BOX) == 0.0
    assert igd_plus([cand(1.0, 0.0)], reference, BOX) == 0.0  # dominates it all
    # outside the box: clipped to its edge (a point below the floor counts as on the floor)
    assert igd_plus([cand(0.5, 0.0)], reference, BOX) == pytest.approx((1.0 + 0.5) / 2)
    assert igd_plus([], reference, BOX) is None
    # reference points outside the box add no HV, so they are no target for IGD+ either
    outside = [*reference, cand(0.79, 0.0, "r"), cand(1.0, 10.0, "r")]
    assert igd_plus(middle, outside, BOX) == pytest.approx(0.25)
    assert igd_plus(middle, [cand(0.7, 1.0, "r")], BOX) is None


def test_union_front_is_the_reference_of_every_strategy() -> None:
    strategies = {
        "a": [cand(0.9, 2.0, "a"), cand(0.85, 1.0, "a")],
        "b": [cand(0.95, 3.0, "b"), cand(0.88, 2.5, "b")],
    }
    union = union_front(strategies)
    assert {c.id for c in union} == {"a-0.9-2.0", "a-0.85-1.0", "b-0.95-3.0"}
    assert igd_plus(union, union, BOX) == 0.0
    assert igd_plus(strategies["a"], union, BOX) > 0.0


def test_igd_plus_and_union_front_in_3d_by_hand() -> None:
    box = Box(acc_floor=0.5, lat_ceiling=4.0, energy_ceiling=2.0)
    r = cand(0.875, 2.0, "r", energy_mj=1.0)  # normalised (0.25, 0.5, 0.5)
    a = cand(0.75, 1.0, "a", energy_mj=1.5)  # (0.5, 0.25, 0.75): worse in val and energy
    # d+ counts only the objectives where a is worse: sqrt(0.25^2 + 0 + 0.25^2)
    assert igd_plus([a], [r], box) == pytest.approx(math.sqrt(0.125))
    # on (val, latency) alone the energy gap is not seen: 0.25 (the 2-D box of the same ceilings)
    assert igd_plus([a], [r], Box(acc_floor=0.5, lat_ceiling=4.0)) == pytest.approx(0.25)
    # a point better only in energy is on the 3-D union front, not on the 2-D one
    cheap = cand(0.875, 2.5, "b", energy_mj=0.5)
    union3 = union_front({"r": [r], "b": [cheap]}, energy=True)
    assert {c.id for c in union3} == {r.id, cheap.id}
    assert [c.id for c in union_front({"r": [r], "b": [cheap]})] == [r.id]


def test_bootstrap_in_3d_resamples_accuracy_only(labels: np.ndarray) -> None:
    """Two single-point strategies with the same val predictions: every replicate moves both
    accuracies together, so the ratio is (1 - lat_a)(1 - en_a) / ((1 - lat_b)(1 - en_b)) in the
    normalised box in every replicate (latency and energy come from the table, not resampled)."""
    box = Box(acc_floor=0.70, lat_ceiling=10.0, energy_ceiling=20.0)
    pred = preds_with(labels, 0.90, 7)
    a = Candidate("a0", "a", 0.90, 2.0, energy_mj=5.0, val_pred=pred)  # (.., 0.2, 0.25)
    b = Candidate("b0", "b", 0.90, 5.0, energy_mj=4.0, val_pred=pred)  # (.., 0.5, 0.2)
    boot = bootstrap_hv({"a": [a], "b": [b]}, labels, "classification", box, n_boot=200, seed=3)
    expected = (0.8 * 0.75) / (0.5 * 0.8)
    assert boot.point["a"] == pytest.approx((1 - 1 / 3) * 0.8 * 0.75)  # val 0.9 -> 1/3
    cmp = boot.compare("a", "b")
    assert cmp.point.ratio == pytest.approx(expected)
    assert np.allclose(cmp.ratios, expected)
    assert np.ptp(boot.replicates["a"]) > 0  # the accuracy did move between replicates
    # without energy the same two points rank the other way round on latency alone
    flat = bootstrap_hv({"a": [a], "b": [b]}, labels, "classification", BOOT_BOX, n_boot=20)
    assert flat.compare("a", "b").point.ratio == pytest.approx(0.8 / 0.5)


# --- legacy normalisation -------------------------------------------------------------------------


def test_legacy_normalised_hv_is_the_studys_own_figure(make_config: Any) -> None:
    _, cfg = make_config(generations=2)
    s = run_search(cfg, problem=SyntheticFactory(tiny=True), finalize=False)
    study = optuna.load_study(
        study_name=s.study_name, storage=open_storage(f"sqlite:///{cfg.run_path / 'study.db'}")
    )
    records = SearchRecords.from_study(study, population=cfg.search.population)
    ideal, ref = study_points(study)
    history = records.hypervolume_history(ideal, ref)
    cands = [
        Candidate(
            id=str(r.trial),
            strategy="nsga2",
            val_metric=r.evaluation.val_metric,
            latency_ms=r.evaluation.latency_ms,
            energy_mj=r.evaluation.energy_mj,
            fidelity=r.fidelity or "full",
            feasible=r.feasible,
        )
        for r in records.complete
        if r.evaluation is not None
    ]
    energy = len(records.objectives) == 3
    got = legacy_normalised_hv(cands, ideal, ref, energy=energy)
    assert got == pytest.approx(history[-1]["hypervolume"], abs=1e-12)
    assert got == pytest.approx(s.hypervolume, abs=1e-12)
    assert 0.0 < got < 1.0


# --- bootstrap ------------------------------------------------------------------------------------

N_VAL = 1000


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 10, N_VAL)


def preds_with(labels: np.ndarray, acc: float, seed: int) -> np.ndarray:
    """Predictions right on exactly ``acc`` of the samples (wrong ones chosen at random)."""
    rng = np.random.default_rng(seed)
    wrong = rng.choice(len(labels), size=round(len(labels) * (1 - acc)), replace=False)
    pred = labels.copy()
    pred[wrong] = (labels[wrong] + 1) % 10
    return pred


def scored(labels: np.ndarray, strategy: str, acc: float, lat: float, seed: int) -> Candidate:
    return Candidate(
        id=f"{strategy}{seed}",
        strategy=strategy,
        val_metric=acc,
        latency_ms=lat,
        val_pred=preds_with(labels, acc, seed),
    )


@pytest.fixture(scope="module")
def strategies(labels: np.ndarray) -> dict[str, list[Candidate]]:
    return {
        # normalised in a box from 0.7: (1/3, 0.2), (1/6, 0.6): HV 0.6
        "a": [scored(labels, "a", 0.90, 2.0, 1), scored(labels, "a", 0.95, 6.0, 2)],
        # (1/2, 0.2), (1/3, 0.6): HV 7/15
        "b": [scored(labels, "b", 0.85, 2.0, 3), scored(labels, "b", 0.90, 6.0, 4)],
        "below": [scored(labels, "below", 0.60, 1.0, 5)],  # below the floor: HV 0
        "edge": [scored(labels, "edge", 0.71, 1.0, 6)],  # just above it: HV 0 in some replicates
    }


BOOT_BOX = Box(acc_floor=0.70, lat_ceiling=10.0)


def test_bootstrap_is_reproducible_and_its_interval_holds_the_point(
    strategies: dict[str, list[Candidate]], labels: np.ndarray
) -> None:
    boot = bootstrap_hv(strategies, labels, "classification", BOOT_BOX, n_boot=300, seed=11)
    again = bootstrap_hv(strategies, labels, "classification", BOOT_BOX, n_boot=300, seed=11)
    other = bootstrap_hv(strategies, labels, "classification", BOOT_BOX, n_boot=300, seed=12)
    for name in strategies:
        assert np.array_equal(boot.replicates[name], again.replicates[name])
    assert not np.array_equal(boot.replicates["a"], other.replicates["a"])
    assert boot.point["a"] == pytest.approx(0.6) and boot.point["b"] == pytest.approx(7 / 15)
    assert not boot.floor_resampled

    cmp = boot.compare("a", "b")
    assert cmp.point.ratio == pytest.approx(0.6 / (7 / 15))
    ri, di = cmp.ratio_interval, cmp.difference_interval
    assert ri is not None and di is not None
    assert ri.low < cmp.point.ratio < ri.high and ri.confidence == 0.90
    assert di.low < cmp.point.difference < di.high
    assert ri.low > 1.0  # 5 points better on 1000 samples: a stable win
    assert cmp.control_zero_replicates == 0
    verdict = judge_ratio(cmp, 1.05)
    assert verdict["met"] and verdict["judged_by"] == "ratio"
    assert verdict["_ci_low"] == ri.low and verdict["difference"] == cmp.point.difference
    assert not judge_ratio(cmp, 2.0)["met"]  # the interval alone does not meet the target
    # the one-pair entry point gives the same replicates
    same = bootstrap_hv_ratio(
        strategies, "a", "b", labels, "classification", BOOT_BOX, n_boot=300, seed=11
    )
    assert np.array_equal(same.ratios, cmp.ratios)


def test_bootstrap_zero_hv_controls(
    strategies: dict[str, list[Candidate]], labels: np.ndarray
) -> None:
    boot = bootstrap_hv(strategies, labels, "classification", BOOT_BOX, n_boot=200, seed=3)
    below = boot.compare("a", "below")
    assert below.point.control_hv_zero and below.control_zero_replicates == 200
    assert below.ratio_interval is None
    verdict = judge_ratio(below, 1.05)
    assert verdict["value"] is None and verdict["control_hv_zero"] is True
    assert verdict["judged_by"] == "difference" and verdict["met"]
    assert verdict["_difference_ci_low"] > 0.0

    edge = boot.compare("a", "edge")  # 0.71 vs a floor of 0.70, SE 1.4 points
    assert not edge.point.control_hv_zero
    assert 0 < edge.control_zero_replicates < 200 and edge.ratio_interval is None
    verdict = judge_ratio(edge, 1.05)
    assert verdict["judged_by"] == "ratio+difference" and verdict["met"]
    assert not judge_ratio(boot.compare("edge", "a"), 1.05)["met"]


def test_bootstrap_can_resample_the_floor(
    strategies: dict[str, list[Candidate]], labels: np.ndarray
) -> None:
    floor_preds = {"image": preds_with(labels, 0.70, 7), "audio": preds_with(labels, 0.65, 8)}
    boot = bootstrap_hv(
        strategies, labels, "classification", BOOT_BOX, n_boot=200, seed=5, floor_preds=floor_preds
    )
    assert boot.floor_resampled and boot.floors is not None and len(boot.floors) == 200
    assert abs(float(np.mean(boot.floors)) - 0.70) < 0.01 and np.std(boot.floors) > 0.005
    fixed = bootstrap_hv(strategies, labels, "classification", BOOT_BOX, n_boot=200, seed=5)
    assert not np.array_equal(boot.replicates["a"], fixed.replicates["a"])
    with pytest.raises(
        ValueError, match=r"give a floor of 0.700000 but the box's acc_floor is 0.750000"
    ):
        bootstrap_hv(
            strategies,
            labels,
            "classification",
            Box(acc_floor=0.75, lat_ceiling=10.0),
            n_boot=5,
            floor_preds=floor_preds,
        )


def test_bootstrap_refuses_predictions_that_are_not_the_scored_model(labels: np.ndarray) -> None:
    wrong = Candidate("x", "a", 0.9, 1.0, val_pred=preds_with(labels, 0.8, 1))
    with pytest.raises(ValueError, match=r"score 0.800000 but its val_metric is 0.900000"):
        bootstrap_hv({"a": [wrong]}, labels, "classification", BOOT_BOX, n_boot=5)
    missing = Candidate("y", "a", 0.9, 1.0)
    with pytest.raises(ValueError, match="candidate y of a has no val predictions"):
        bootstrap_hv({"a": [missing]}, labels, "classification", BOOT_BOX, n_boot=5)
    # a low-fidelity candidate needs none: it is never on a front
    low = Candidate("z", "a", 0.9, 1.0, fidelity="low")
    boot = bootstrap_hv({"a": [low]}, labels, "classification", BOOT_BOX, n_boot=5)
    assert boot.point["a"] == 0.0 and not boot.replicates["a"].any()


def test_bootstrap_seed_axis_and_multilabel() -> None:
    rng = np.random.default_rng(4)
    y = (rng.random((400, 5)) < 0.4).astype(np.uint8)

    def noisy(p: float) -> np.ndarray:
        return np.where(rng.random(y.shape) < p, y, 1 - y).astype(np.uint8)

    stacked = np.stack([noisy(0.95), noisy(0.9)])  # a re-scored member: two seeds' models
    mean = float(np.mean([score_predictions(s, y, "multilabel") for s in stacked]))
    assert score_predictions(stacked, y, "multilabel") == pytest.approx(mean)
    one = noisy(0.85)
    strategies = {
        "a": [Candidate("m", "a", mean, 2.0, val_pred=stacked)],
        "b": [Candidate("n", "b", score_predictions(one, y, "multilabel"), 2.0, val_pred=one)],
    }
    box = Box(acc_floor=0.5, lat_ceiling=4.0)
    boot = bootstrap_hv(strategies, y, "multilabel", box, n_boot=100, seed=0)
    assert boot.point["a"] == pytest.approx(front_hv(strategies["a"], box))
    ri = boot.compare("a", "b").ratio_interval
    assert ri is not None and ri.low > 1.0


# --- intervals and targets ------------------------------------------------------------------------


def test_percentile_and_mean_over_seeds_intervals() -> None:
    def approx(i: Interval | None) -> tuple[float, float, float]:
        assert i is not None
        return (pytest.approx(i.low), pytest.approx(i.high), i.confidence)

    assert approx(percentile_interval(np.arange(101.0))) == (5.0, 95.0, 0.90)
    assert percentile_interval([1.0, math.nan]) is None
    seed0 = np.arange(101.0)
    seed1 = np.arange(101.0)[::-1].copy()  # replicate r of the mean: 50 for every r
    assert approx(mean_over_seeds_interval([seed0, seed1])) == (50.0, 50.0, 0.90)
    assert approx(mean_over_seeds_interval([seed0, seed0 + 10])) == (10.0, 100.0, 0.90)
    assert mean_over_seeds_interval([seed0, np.full(101, math.nan)]) is None
    with pytest.raises(ValueError, match="same number of replicates"):
        mean_over_seeds_interval([seed0, seed0[:50]])


def test_target_rules() -> None:
    assert interval_met(1.2, 1.01, 1.4, 1.05, ">=")
    assert not interval_met(1.2, 0.95, 1.4, 1.05, ">=")  # interval reaches no effect
    assert not interval_met(1.04, 1.01, 1.1, 1.05, ">=")  # value short of the target
    assert not interval_met(None, 1.1, 1.2, 1.05, ">=") and not interval_met(
        1.2, None, None, 1.05, ">="
    )
    assert interval_met(-0.2, -0.3, -0.1, -0.1, "<=", no_effect=0.0)
    assert not interval_met(-0.2, -0.3, 0.1, -0.1, "<=", no_effect=0.0)
    with pytest.raises(ValueError, match="needs op '>=' or '<='"):
        interval_met(1.0, 1.0, 1.0, 1.0, "==")
    assert control_also_meets({"random": 1.0, "one_genome": 1.12}, 1.10, ">=")
    assert not control_also_meets({"random": 1.0, "one_genome": None}, 1.10, ">=")


def benchmark_targets() -> ModuleType:
    """``benchmarks/_targets.py`` (the benchmarks' entries are built from these rules)."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "_targets.py"
    spec = importlib.util.spec_from_file_location("_bench_targets", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_target_entries(
    strategies: dict[str, list[Candidate]], labels: np.ndarray
) -> None:
    t = benchmark_targets()
    entry = t.target_with_interval(1.2, 1.01, 1.4, 1.05, ">=", controls={"random": 1.0})
    assert entry == {
        "value": 1.2,
        "target": 1.05,
        "op": ">=",
        "met": True,
        "control_also_meets": False,
        "_controls": {"random": 1.0},
        "_ci_low": 1.01,
        "_ci_high": 1.4,
    }
    assert not t.target_with_interval(1.2, 0.99, 1.4, 1.05, ">=")["met"]
    assert t.target(3.0, 2.0, ">=", controls={"one_genome": 2.5})["control_also_meets"] is True
    assert "control_also_meets" not in t.target(3.0, 2.0, ">=")
    boot = bootstrap_hv(strategies, labels, "classification", BOOT_BOX, n_boot=100, seed=2)
    zero = t.hv_ratio_target(boot.compare("a", "below"), 1.05, controls={"one_genome": None})
    assert zero["value"] is None and zero["met"] and zero["control_hv_zero"]
    assert zero["judged_by"] == "difference" and zero["control_also_meets"] is False
    assert json.loads(json.dumps(zero, allow_nan=False)) == zero
    win = t.hv_ratio_target(boot.compare("a", "b"), 1.05)
    assert win["met"] and win["_ci_low"] > 1.0 and win["value"] == pytest.approx(0.6 / (7 / 15))


# --- JSON round trips -----------------------------------------------------------------------------


def roundtrip(data: Any) -> Any:
    return json.loads(json.dumps(data, allow_nan=False))


@pytest.mark.parametrize(
    "pred",
    [
        np.array([0, 3, 9, 2]),  # class indices: uint8
        np.array([0, 300, 7]),  # uint16
        np.array([[1, 0, 1], [0, 0, 1]]),  # multilabel: bits
        np.array([[[1, 0], [0, 1]], [[1, 1], [0, 0]]]),  # with a seed axis
        np.zeros((0,), dtype=np.int64),
    ],
)
def test_prediction_arrays_round_trip(pred: np.ndarray) -> None:
    back = decode_array(roundtrip(encode_array(pred)))
    assert back.shape == pred.shape and np.array_equal(back, pred)


def test_bad_prediction_arrays_are_refused() -> None:
    good = encode_array(np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="exceeds"):
        decode_array({**good, "shape": [10**9]})
    with pytest.raises(ValueError, match="has 3 bytes"):
        decode_array({**good, "shape": [4]})
    with pytest.raises(ValueError, match="unknown prediction encoding"):
        decode_array({**good, "encoding": "float64"})
    with pytest.raises(ValueError, match="needs encoding, shape and data"):
        decode_array({"shape": [3]})
    with pytest.raises(ValueError, match="non-negative"):
        encode_array(np.array([-1, 2]))
    with pytest.raises(ValueError, match="must be integers"):
        encode_array(np.array([0.5]))


def test_records_round_trip(strategies: dict[str, list[Candidate]], labels: np.ndarray) -> None:
    for box in (BOOT_BOX, Box(0.6, 5.0, lat_ideal=0.5, energy_ceiling=3.0, floor_source="image")):
        assert Box.from_json(roundtrip(box.to_json())) == box
    c = Candidate(
        "t0000", "nsga2", 0.9, 1.5, energy_mj=2.0, fidelity="low", feasible=False,
        genome={"cells": 1}, val_pred=np.array([[1, 0], [0, 1]]),
    )  # fmt: skip
    back = Candidate.from_json(roundtrip(c.to_json()))
    assert back.to_json() == c.to_json() and np.array_equal(back.val_pred, c.val_pred)  # type: ignore[arg-type]
    plain = Candidate("t1", "random", 0.8, 2.0)
    assert Candidate.from_json(roundtrip(plain.to_json())).to_json() == plain.to_json()
    saved = roundtrip(candidates_to_json(strategies))
    loaded = candidates_from_json(saved)
    assert candidates_to_json(loaded) == saved
    with pytest.raises(ValueError, match="needs id, strategy, val_metric and latency_ms"):
        Candidate.from_json({"id": "x"})

    cmp = HvComparison(0.4, 0.0)
    assert HvComparison.from_json(roundtrip(cmp.to_json())) == cmp
    boot = bootstrap_hv(strategies, labels, "classification", BOOT_BOX, n_boot=50, seed=1)
    boot_back = HvBootstrap.from_json(roundtrip(boot.to_json()))
    assert boot_back.to_json() == boot.to_json()
    for pair in (("a", "b"), ("a", "below")):
        bc = boot.compare(*pair)
        bc_back = BootstrapComparison.from_json(roundtrip(bc.to_json()))
        assert bc_back.to_json() == bc.to_json()
        assert np.array_equal(bc_back.ratios, bc.ratios, equal_nan=True)
    summary = boot.compare("a", "below").to_json(replicates=False)
    assert summary["ratio"] is None and summary["ratio_ci"] is None
    assert summary["control_zero_replicates"] == 50 and "ratio_replicates" not in summary
