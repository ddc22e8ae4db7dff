"""benchmarks/fusion_search.py: its comparisons and targets on hand-made numbers, resuming per
(part, seed) with ``--fresh`` measuring again, and (slow) a smoke run end to end."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def fs() -> ModuleType:
    sys.path.insert(0, str(BENCH))  # its siblings _targets, _resume, op_cost_reproducibility
    try:
        spec = importlib.util.spec_from_file_location(
            "_fusion_search_bench", BENCH / "fusion_search.py"
        )
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(BENCH))
    return mod


def _row(name: str, val: float, test: float, latency: float = 2.0) -> dict[str, Any]:
    return {
        "name": name,
        "description": name,
        "val_metric": val,
        "test_metric": test,
        "latency_ms": latency,
    }


BASELINES = [
    _row("late-fusion-avg", 0.80, 0.79),
    _row("late-fusion-bayes", 0.84, 0.83, 2.0),
    _row("late-fusion-linear", 0.82, 0.86, 2.1),  # better on test, worse on val: not chosen
    _row("single:image", 0.75, 0.70, 1.2),
    _row("single:audio", 0.70, 0.72, 0.9),  # better on test, worse on val: not chosen
]


def test_vs_late_fusion_picks_controls_on_val(fs: ModuleType) -> None:
    out = fs.vs_late_fusion({"test": 0.85, "latency_ms": 1.8}, BASELINES)
    assert out["fair_late_fusion"] == "late-fusion-bayes"
    assert out["best_single_modality"] == "single:image"
    assert out["fused_vs_late_fusion_same_backbones_points"] == pytest.approx(2.0)
    assert out["fused_latency_over_late_fusion_same_backbones"] == pytest.approx(0.9)
    assert out["fused_vs_late_fusion_linear_points"] == pytest.approx(-1.0)
    assert out["fused_vs_best_single_points"] == pytest.approx(15.0)


def test_front_vs_bm_nas_max_takes_the_val_best_member(fs: ModuleType) -> None:
    members = [
        {"id": "a", "val_metric": 0.90, "test_metric": 0.88, "latency_ms": 3.0},
        {"id": "b", "val_metric": 0.80, "test_metric": 0.95, "latency_ms": 1.0},  # best on test
    ]
    bm = {"val_metric": 0.91, "test_metric": 0.89, "latency_ms": 6.0, "energy_mj": 1.0}
    out = fs.front_vs_bm_nas_max(members, bm)
    assert out["val_best"]["id"] == "a"
    assert out["val_best_vs_bm_nas_max_points"] == pytest.approx(-1.0)
    assert out["latency_over_bm_nas_max"] == pytest.approx(0.5)
    summary = fs.summarise_interaction(
        [out, {"val_best_vs_bm_nas_max_points": 0.0, "latency_over_bm_nas_max": 0.7}]
    )
    assert summary["val_best_vs_bm_nas_max_points"] == pytest.approx(-0.5)
    assert summary["val_best_vs_bm_nas_max_points_per_seed"] == pytest.approx([-1.0, 0.0])
    assert summary["latency_over_bm_nas_max"] == pytest.approx(0.6)
    assert summary["controls"] == {}  # a control some seed lacks is not summarised


def test_interaction_control_meets_only_with_its_latency(fs: ModuleType) -> None:
    """The late-fusion frontier's val-best member is judged as the front's is: points and the
    latency condition together make ``control_also_meets``."""

    def rec(ctrl_pts: float, ctrl_lat: float) -> dict[str, Any]:
        c = {"val_best_vs_bm_nas_max_points": ctrl_pts, "latency_over_bm_nas_max": ctrl_lat}
        return {
            "val_best_vs_bm_nas_max_points": 1.0,
            "latency_over_bm_nas_max": 0.5,
            "controls": {fs.LATE_FRONTIER: c},
        }

    for ctrl, meets in (((-2.0, 0.5), False), ((0.5, 0.9), False), ((0.0, 0.6), True)):
        summary = fs.summarise_interaction([rec(*ctrl), rec(*ctrl)])
        c = summary["controls"][fs.LATE_FRONTIER]
        assert c["val_best_vs_bm_nas_max_points"] == pytest.approx(ctrl[0])
        t = fs.targets_of({"interaction": summary})
        points = t["interaction_val_best_vs_bm_nas_max_points"]
        assert points["met"] is True
        assert points["control_also_meets"] is meets
        assert points["_controls"] == {fs.LATE_FRONTIER: pytest.approx(ctrl[0])}
        lat = t["interaction_latency_over_bm_nas_max"]
        assert lat["control_also_meets"] is (ctrl[1] <= 0.67)


@pytest.mark.parametrize(
    ("points", "ratio", "points_met", "ratio_met"),
    [(-0.4, 0.6, True, True), (-0.4, 0.7, False, False), (-0.6, 0.5, False, True)],
)
def test_interaction_targets(
    fs: ModuleType, points: float, ratio: float, points_met: bool, ratio_met: bool
) -> None:
    t = fs.targets_of(
        {"interaction": {"val_best_vs_bm_nas_max_points": points, "latency_over_bm_nas_max": ratio}}
    )
    assert t["interaction_val_best_vs_bm_nas_max_points"]["met"] is points_met
    assert t["interaction_latency_over_bm_nas_max"] == {
        "value": ratio,
        "target": 0.67,
        "op": "<=",
        "met": ratio_met,
        "control_also_meets": False,  # no control measured
        "_controls": {},
    }


def test_tau_target(fs: ModuleType) -> None:
    t = fs.targets_of({"op_cost_reproducibility": {"kendall_tau": 0.867}})
    assert t["op_cost_rank_reproducibility_tau"]["met"] is True
    t = fs.targets_of({"op_cost_reproducibility": {"kendall_tau": 0.6}})
    assert t["op_cost_rank_reproducibility_tau"]["met"] is False


def _lambda_run(lam: float, ops: list[str], ops_ms: float) -> dict[str, Any]:
    return {"lambda_lat": lam, "ops": ops, "ops_latency_ms": ops_ms, "latency_ms": 1 + ops_ms}


def test_summarise_lambda_modal_mix_and_drop(fs: ModuleType) -> None:
    heavy, mid, light = ["ConcatFC", "SE1"], ["Sum", "SE1"], ["Sum", "Sum"]
    per_seed = [
        [(heavy, 1.0), (mid, 0.6), (light, 0.2)],
        [(heavy, 1.0), (mid, 0.6), (mid, 0.6)],
        [(mid, 0.6), (light, 0.2), (light, 0.2)],
    ]
    settings = {"lambdas": [0.0, 1.0, 10.0]}
    recs = [
        {
            "runs": [
                _lambda_run(lam, ops, ms) | {"val": 0.8, "test": 0.7}
                for lam, (ops, ms) in zip(settings["lambdas"], seed, strict=True)
            ]
        }
        for seed in per_seed
    ]
    s = fs.summarise_lambda(recs, settings)
    assert s["most_frequent_mix_per_lambda"] == [sorted(heavy), sorted(mid), sorted(light)]
    assert s["distinct_most_frequent_mixes"] == 3
    assert s["rows"][0]["ops_latency_ms"] == pytest.approx((1.0 + 1.0 + 0.6) / 3)
    assert s["latency_drop"] == pytest.approx(((0.2 + 0.6 + 0.2) / 3) / ((1.0 + 1.0 + 0.6) / 3))
    assert s["latency_non_increasing"] is True
    t = fs.targets_of({"lambda_sweep": s})
    assert t["lambda_sweep_distinct_op_mixes"]["met"] is True
    assert t["lambda_sweep_latency_drop"]["met"] is True
    # a mean that grows between two lambdas is not a gradual trade, whatever the end points
    recs[0]["runs"][1]["ops_latency_ms"] = 3.0
    s = fs.summarise_lambda(recs, settings)
    assert s["latency_non_increasing"] is False
    assert fs.targets_of({"lambda_sweep": s})["lambda_sweep_latency_drop"]["met"] is False


def _accuracy_record(fs: ModuleType, seed: int) -> dict[str, Any]:
    run = {"val": 0.85, "test": 0.84 + seed / 100, "latency_ms": 1.8, "arch_split": 0.3}
    return {
        "seed": seed,
        "honest": run,
        "reference": run | {"arch_split": 0.0},
        "baselines": BASELINES,
        **fs.vs_late_fusion(run, BASELINES),
    }


class Calls:
    def __init__(self) -> None:
        self.n: dict[str, list[int]] = {"accuracy": [], "lambda": [], "tau": [], "interaction": []}


@pytest.fixture
def fake(fs: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Calls:
    """The benchmark with every measurement replaced by a counted hand-made record."""
    calls = Calls()

    class FakeBench:
        def __init__(self, cfg: Any, mode: str | None = None) -> None:
            self.cfg = cfg
            dataset = SimpleNamespace(name="av-digits", split=lambda s: [0] * 3)
            lut = SimpleNamespace(energy_source="constant-power")
            self.problem = SimpleNamespace(dataset=dataset, cost_model=SimpleNamespace(lut=lut))

    def accuracy_seed(b: Any, seed: int) -> dict[str, Any]:
        calls.n["accuracy"].append(seed)
        return _accuracy_record(fs, seed)

    def lambda_seed(b: Any, seed: int, lambdas: list[float]) -> dict[str, Any]:
        calls.n["lambda"].append(seed)
        ops = [["ConcatFC"], ["SE1"], ["Sum"]]
        return {
            "seed": seed,
            "op_costs_ms_mj": {"Sum": [0.1, 0.0]},
            "base_cost": {"latency_ms": 1.0, "energy_mj": 0.0},
            "runs": [
                _lambda_run(lam, ops[min(i, 2)], 1.0 / (1 + i)) | {"val": 0.8, "test": 0.7}
                for i, lam in enumerate(lambdas)
            ],
        }

    def op_cost_tau(ops: Any, C: int, L: int, *, warmup: int, repeats: int) -> dict[str, Any]:
        calls.n["tau"].append(C)
        return {"C": C, "L": L, "kendall_tau": 0.9, "source": "test", "runs": []}

    def interaction_seed(args: Any, seed: int) -> dict[str, Any]:
        calls.n["interaction"].append(seed)
        members = [{"id": "m", "val_metric": 0.9, "test_metric": 0.9, "latency_ms": 1.0}]
        bm = {"val_metric": 0.9, "test_metric": 0.9, "latency_ms": 2.0}
        return {"seed": seed, "study": "s", **fs.front_vs_bm_nas_max(members, bm)}

    for name, fn in (
        ("Bench", FakeBench),
        ("accuracy_seed", accuracy_seed),
        ("lambda_seed", lambda_seed),
        ("op_cost_tau", op_cost_tau),
        ("interaction_seed", interaction_seed),
        ("bench_identity", dict),
    ):
        monkeypatch.setattr(fs, name, fn)
    return calls


def test_resume_reuses_saved_seeds_and_fresh_measures_again(
    fs: ModuleType, fake: Calls, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fs.json"
    base = ["--seeds", "0", "1", "--lambdas", "0", "1", "10", "--lambda-size", "192,16"]
    base += ["--lambda-mode", "network", "--out", str(out)]
    assert fs.main([*base]) == 0
    assert fake.n == {"accuracy": [0, 1], "lambda": [0, 1], "tau": [192], "interaction": []}
    first = json.loads(out.read_text())
    assert set(first["records"]) == {"accuracy|s0", "accuracy|s1", "lambda|s0", "lambda|s1"} | {
        "op_cost_reproducibility"
    }
    sweep = first["lambda_sweep"]["settings"]
    assert (sweep["mode"], sweep["C"], sweep["L"], sweep["lambdas"]) == (
        "network",
        192,
        16,
        [0, 1, 10],
    )
    assert first["accuracy"]["settings"]["mode"] == "network+late"  # quick.yaml's late_skip
    assert first["accuracy"]["fused_vs_late_fusion_same_backbones_points_per_seed"] == (
        pytest.approx([1.0, 2.0])
    )
    assert first["op_cost_reproducibility"]["C"] == 192
    assert first["targets"]["op_cost_rank_reproducibility_tau"]["met"] is True
    assert first["targets"]["lambda_sweep_distinct_op_mixes"]["value"] == 3

    # a rerun with one more seed measures only that seed
    assert fs.main([*base[:3], "2", *base[3:]]) == 0
    assert fake.n["accuracy"] == [0, 1, 2] and fake.n["lambda"] == [0, 1, 2]
    assert fake.n["tau"] == [192]
    assert "accuracy|s0: saved record reused" in capsys.readouterr().out
    again = json.loads(out.read_text())
    assert again["records"]["accuracy|s0"] == first["records"]["accuracy|s0"]

    # another setting of the lambda part measures that part again, not the accuracy part
    assert fs.main([*base, "--lambda-epochs", "7"]) == 0
    assert fake.n["accuracy"] == [0, 1, 2] and fake.n["lambda"] == [0, 1, 2, 0, 1]
    assert json.loads(out.read_text())["lambda_sweep"]["settings"]["epochs"] == 7

    # --fresh measures everything again
    assert fs.main([*base, "--fresh"]) == 0
    assert fake.n["accuracy"] == [0, 1, 2, 0, 1]
    assert fake.n["tau"] == [192, 192]
    assert set(json.loads(out.read_text())["records"]) == set(first["records"])


def test_interaction_part_on_its_profile(fs: ModuleType, fake: Calls, tmp_path: Path) -> None:
    out = tmp_path / "fsi.json"
    args = ["--profile", "interaction", "--seeds", "0", "1", "--parts", "interaction"]
    assert fs.main([*args, "--out", str(out)]) == 0
    assert fake.n["interaction"] == [0, 1]
    saved = json.loads(out.read_text())
    assert saved["interaction"]["settings"] == {
        "population": 16,
        "generations": 4,
        "test_seeds": 1,
        "controls": [fs.LATE_FRONTIER],
    }
    t = saved["targets"]
    assert t["interaction_val_best_vs_bm_nas_max_points"]["met"] is True
    assert t["interaction_latency_over_bm_nas_max"]["value"] == pytest.approx(0.5)
    assert fs.main([*args, "--out", str(out)]) == 0
    assert fake.n["interaction"] == [0, 1]  # reused


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--parts", "interaction"], "--parts interaction needs --profile interaction"),
        (["--lambda-size", "192,15"], "perfect square"),
        (["--lambda-epochs", "0"], "--lambda-epochs and --lambda-retrain-epochs must be >= 1"),
        (["--lambda-mode", "late"], "invalid choice"),
    ],
)
def test_bad_options_are_one_line_exit_2(
    fs: ModuleType, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        fs.parse_args(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_saved_results_of_other_settings_are_not_reused(tmp_path: Path) -> None:
    sys.path.insert(0, str(BENCH))
    try:
        from _resume import load_saved, saved_record
    finally:
        sys.path.remove(str(BENCH))
    from harmonic_nas.utils.io import atomic_write_json

    path = tmp_path / "r.json"
    saved = {
        "settings": {"profile": "hard", "sets": []},
        "records": {"a": {"settings": {"x": [1]}}},
    }
    atomic_write_json(path, saved, schema_version=1)
    kept = load_saved(path, {"profile": "hard", "sets": []}, fresh=False, schema_version=1)
    assert saved_record(kept, "a", {"x": (1,)}) == {"settings": {"x": [1]}}  # tuples read as lists
    assert saved_record(kept, "a", {"x": (2,)}) is None
    assert saved_record(kept, "b") is None
    assert load_saved(
        path, {"profile": "interaction", "sets": []}, fresh=False, schema_version=1
    ) == {"records": {}}
    assert load_saved(path, {"profile": "hard", "sets": []}, fresh=True, schema_version=1) == {
        "records": {}
    }


SMOKE = [
    "pretrain.epochs=1",
    "fusion.epochs=1",
    "fusion.retrain_epochs=1",
    "fusion.C=8",
    "fusion.L=4",
    "device.repeats=2",
    "device.warmup=1",
    "dataset.options.train_per_class=12",
    "dataset.options.val_per_class=6",
    "dataset.options.test_per_class=6",
    "dataset.options.train_speakers=6",
    "dataset.options.val_speakers=3",
    "dataset.options.test_speakers=3",
]


@pytest.mark.slow
def test_smoke_end_to_end(fs: ModuleType, tmp_path: Path) -> None:
    """The smoke run of the docstring (its own run directory under tmp): every record saved, the
    lambda sweep at its own size and mode, a rerun reusing them."""
    out = tmp_path / "smoke.json"
    argv = ["--seeds", "0", "--lambdas", "0", "1", "--lambda-size", "16,4"]
    argv += ["--lambda-mode", "network", "--out", str(out)]
    argv += [x for s in [*SMOKE, f"run_dir={tmp_path / 'runs'}"] for x in ("--set", s)]
    assert fs.main(argv) == 0
    r = json.loads(out.read_text())
    assert set(r["records"]) == {"accuracy|s0", "lambda|s0", "op_cost_reproducibility"}
    assert r["lambda_sweep"]["settings"]["C"] == 16 and r["accuracy"]["settings"]["C"] == 8
    assert r["lambda_sweep"]["settings"]["mode"] == "network"
    assert [row["lambda_lat"] for row in r["lambda_sweep"]["rows"]] == [0.0, 1.0]
    assert -1.0 <= r["op_cost_reproducibility"]["kendall_tau"] <= 1.0
    assert set(r["targets"]) >= {
        "fused_vs_late_fusion_same_backbones_points",
        "lambda_sweep_latency_drop",
        "op_cost_rank_reproducibility_tau",
    }
    for rec in ("accuracy|s0", "lambda|s0"):
        assert r["records"][rec]["wall_s"] > 0.0
    before = r["records"]
    assert fs.main(argv) == 0
    assert json.loads(out.read_text())["records"] == before


@pytest.mark.slow
def test_interaction_smoke_end_to_end(fs: ModuleType, tmp_path: Path) -> None:
    """The interaction part on a tiny pipeline: the outer-tier study is run (then reused), its
    front's val-best member compared with the run's bm-nas-max on test."""
    out = tmp_path / "smoke_i.json"
    argv = ["--profile", "interaction", "--seeds", "0", "--parts", "interaction"]
    argv += ["--population", "2", "--generations", "2", "--out", str(out)]
    argv += [x for s in [*SMOKE, f"run_dir={tmp_path / 'runs'}"] for x in ("--set", s)]
    assert fs.main(argv) == 0
    r = json.loads(out.read_text())
    rec = r["records"]["interaction|s0"]
    assert rec["n_complete"] >= 4
    best = max(rec["members"], key=lambda m: m["val_metric"])
    assert rec["val_best"] == best
    assert rec["val_best_vs_bm_nas_max_points"] == pytest.approx(
        100 * (best["test_metric"] - rec["bm_nas_max"]["test_metric"])
    )
    t = r["targets"]["interaction_latency_over_bm_nas_max"]
    assert t["value"] == pytest.approx(best["latency_ms"] / rec["bm_nas_max"]["latency_ms"])
    assert fs.main(argv) == 0
    assert json.loads(out.read_text())["records"] == r["records"]
