"""Cheap first, noise-aware front, chosen on val (issue 11 items 1, 2, 5), on the synthetic problem:
multi-fidelity search recorded per trial and resumable after SIGKILL, Pareto members re-scored
with more seeds (a std only where >= 2 seeds exist), every "best" chosen on val with its test
score beside it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from harmonic_nas.config import ExperimentConfig
from harmonic_nas.search import run_search, study_status
from harmonic_nas.search.final import rescore_seeds_of
from harmonic_nas.search.genome import MultimodalGenome
from harmonic_nas.search.pareto import non_dominated
from harmonic_nas.search.problem import Evaluation, fidelity_epochs
from harmonic_nas.search.problem import TestScore as Score
from harmonic_nas.search.status import best_summary
from harmonic_nas.search.storage import default_storage_url, open_storage
from harmonic_nas.testing.synthetic_problem import SyntheticFactory, SyntheticProblem
from harmonic_nas.utils.io import read_json
from harmonic_nas.utils.progress import ProgressFn, no_progress

from .test_search_faults import run_cli


def _study(cfg: ExperimentConfig) -> optuna.Study:
    return optuna.load_study(study_name=cfg.name, storage=open_storage(default_storage_url(cfg)))


def _rows(cfg: ExperimentConfig) -> list[dict[str, Any]]:
    return list(read_json(cfg.run_path / "candidates.json")["candidates"])


def _front_of(rows: list[dict[str, Any]]) -> set[int]:
    """Trials of the non-dominated feasible full-fidelity rows (val maximised, costs minimised)."""
    pool = [
        r for r in rows if r["state"] == "COMPLETE" and r["feasible"] and r["fidelity"] != "low"
    ]
    pts = [(-r["val_metric"], r["latency_ms"], r["energy_mj"]) for r in pool]
    return {pool[i]["trial"] for i in non_dominated(pts)}


# -- fidelity ----------------------------------------------------------------------------------
def test_fidelity_epochs() -> None:
    assert fidelity_epochs(25, 25, 1.0) == (25, 25)
    assert fidelity_epochs(25, 25, 1 / 3) == (9, 9)
    assert fidelity_epochs(3, 3, 1 / 3) == (1, 1)
    assert fidelity_epochs(2, 1, 0.1) == (1, 1)
    assert fidelity_epochs(25, 25, 0.0) == (0, 0)  # a screen trains nothing


def test_full_fidelity_is_the_default_and_recorded(make_config) -> None:
    _, cfg = make_config()
    assert cfg.search.fidelity == "full" and cfg.search.rescore_seeds == 1
    run_search(cfg, problem=SyntheticFactory())
    done = [r for r in _rows(cfg) if r["state"] == "COMPLETE"]
    assert len(done) == 8
    for r in done:
        assert r["fidelity"] == "full" and r["fusion_epochs"] == [25, 25]
        assert "low_fidelity" not in r and "val_metric_std" not in r and "val_seeds" not in r
    assert _study(cfg).user_attrs["fidelity"] == {"mode": "full", "fusion_epochs": [25, 25]}
    (status,) = study_status(cfg.run_path)
    assert status["fidelity"]["mode"] == "full" and status["low_fidelity"] == 0
    members = read_json(cfg.run_path / "pareto.json")["members"]
    assert all("val_metric_std" not in m for m in members)


@pytest.mark.parametrize(
    ("mode", "low_epochs", "note"),
    [
        ("halving", [9, 9], "low fidelity (9+9 epochs)"),
        ("screen", [0, 0], "screened only (no fusion training)"),
    ],
)
def test_multi_fidelity_scores_cheap_first_and_the_front_is_full_fidelity(
    make_config, mode: str, low_epochs: list[int], note: str
) -> None:
    _, cfg = make_config(fidelity=mode, generations=4)
    s = run_search(cfg, problem=SyntheticFactory())
    assert s.n_complete == 16
    rows = [r for r in _rows(cfg) if r["state"] == "COMPLETE"]
    low = [r for r in rows if r["fidelity"] == "low"]
    full = [r for r in rows if r["fidelity"] == "full"]
    assert low and full and len(low) + len(full) == 16 and s.n_low_fidelity == len(low)
    for r in rows:  # every candidate was scored cheaply first
        assert r["low_fidelity"]["fusion_epochs"] == low_epochs
    for r in low:  # it completed with its cheap score, marked so, never on the front
        assert r["fusion_epochs"] == low_epochs and not r["pareto"]
        assert r["val_metric"] == pytest.approx(r["low_fidelity"]["val_metric"])
    for r in full:
        assert r["fusion_epochs"] == [25, 25]
        assert r["val_metric"] > r["low_fidelity"]["val_metric"]  # the synthetic gap
    assert {r["trial"] for r in rows if r["pareto"]} == _front_of(rows)
    study = _study(cfg)
    promoted = {t.number: t.user_attrs["promoted"] for t in study.get_trials() if t.values}
    assert all(promoted[r["trial"]] for r in full) and not any(promoted[r["trial"]] for r in low)
    assert study.user_attrs["fidelity"]["low_fusion_epochs"] == low_epochs
    (status,) = study_status(cfg.run_path)
    assert status["low_fidelity"] == len(low) and status["fidelity"]["mode"] == mode
    notes = {r["trial"]: r["note"] for r in status["candidates"]}
    assert all(note in notes[r["trial"]] for r in low)
    assert all(r["fidelity"] == "full" for r in status["front"])


def _kill_during_halving(config: Path, population: int) -> None:
    """A search that SIGKILLs itself in its second generation, during the full evaluation of a
    candidate promoted by its cheap score."""
    script = textwrap.dedent(
        f"""
        import os, signal
        from harmonic_nas.config import load_config
        from harmonic_nas.search import run_search
        from harmonic_nas.testing.synthetic_problem import SyntheticProblem

        calls = {{"cheap": 0}}

        class Killing(SyntheticProblem):
            def evaluate(self, genome, *, seed, progress=None, fidelity=1.0):
                if fidelity < 1.0:
                    calls["cheap"] += 1
                elif calls["cheap"] > {population}:  # generation 1, promoted
                    os.kill(os.getpid(), signal.SIGKILL)
                return super().evaluate(genome, seed=seed, fidelity=fidelity)

        cfg = load_config({str(config)!r})
        run_search(cfg, problem=lambda c: Killing(c))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert proc.returncode == -9, proc.stderr.decode()


def test_sigkill_during_a_multi_fidelity_generation_resumes_to_the_budget(
    make_config, synthetic_env, capsys
) -> None:
    path, cfg = make_config(fidelity="halving", generations=3)
    _kill_during_halving(path, cfg.search.population)
    before = _study(cfg).get_trials()
    kept = {t.number: (t.user_attrs, t.values) for t in before if t.state == TrialState.COMPLETE}
    (killed,) = [t for t in before if t.state == TrialState.RUNNING]
    assert len(kept) >= cfg.search.population  # generation 0 is complete
    assert "low_fidelity" in killed.user_attrs  # killed after its cheap evaluation

    code, out, err = run_cli(capsys, "search", str(path))
    assert code == 0, err
    assert "12/12 candidates complete" in out
    trials = _study(cfg).get_trials()
    for number, (attrs, values) in kept.items():  # no completed candidate lost or re-evaluated
        assert trials[number].state == TrialState.COMPLETE
        assert trials[number].values == values and trials[number].user_attrs == attrs
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 12  # exactly the budget
    dead = trials[killed.number]
    assert dead.state == TrialState.FAIL and "worker process died" in dead.user_attrs["fail_reason"]
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == killed.number]
    assert retry.state == TrialState.COMPLETE and retry.params == killed.params
    assert retry.user_attrs["low_fidelity"] == killed.user_attrs["low_fidelity"]  # same seed
    rows = _rows(cfg)
    assert sum(r["state"] == "COMPLETE" for r in rows) == 12
    assert all(r["fidelity"] in ("full", "low") for r in rows if r["state"] == "COMPLETE")
    (status,) = study_status(cfg.run_path)
    assert status["finished"] and status["complete"] == 12 and status["failed"] == 1


# -- noise-aware front -------------------------------------------------------------------------
@dataclass(frozen=True)
class _Counting:
    """A synthetic factory that counts full evaluations (in this process)."""

    calls: list[int]
    seed_noise: float = 0.05

    def __call__(self, cfg: ExperimentConfig) -> SyntheticProblem:
        calls = self.calls

        class Counted(SyntheticProblem):
            def evaluate(self, genome: MultimodalGenome, **kw: Any) -> Evaluation:
                calls.append(1)
                return super().evaluate(genome, **kw)

        return Counted(cfg, seed_noise=self.seed_noise)


def test_rescored_front_is_the_mean_over_seeds_with_its_std(make_config) -> None:
    _, cfg = make_config(rescore_seeds=3)
    calls: list[int] = []
    s = run_search(cfg, problem=_Counting(calls))
    study = _study(cfg)
    raw = {t.number: t.user_attrs["val_metric"] for t in study.get_trials() if t.values}
    pareto = read_json(cfg.run_path / "pareto.json")
    assert pareto["rescore_seeds"] == 3
    rows = _rows(cfg)
    by_trial = {r["trial"]: r for r in rows}
    assert {m["trial"] for m in pareto["members"]} == _front_of(rows)  # front on the means
    for m in pareto["members"]:
        vals = m["val_metric_seeds"]
        assert m["val_seeds"] == 3 and len(vals) == 3 and vals[0] == raw[m["trial"]]
        assert m["val_metric"] == pytest.approx(sum(vals) / 3)
        assert m["val_metric_std"] > 0
        assert by_trial[m["trial"]]["val_metric_std"] == pytest.approx(m["val_metric_std"])
        entry = study.user_attrs[f"rescore:{m['trial']}"]
        eval_seed = next(t for t in study.get_trials() if t.number == m["trial"]).user_attrs[
            "eval_seed"
        ]
        assert entry["seeds"] == rescore_seeds_of(eval_seed, 3)
    for r in rows:  # a std only where >= 2 seeds exist
        assert ("val_metric_std" in r) == ("val_seeds" in r)
        if "val_seeds" in r:
            assert r["val_seeds"] >= 2
        elif r["state"] == "COMPLETE":
            assert r["val_metric"] == raw[r["trial"]]
    rescored = [r for r in rows if "val_seeds" in r]
    assert len(calls) == 8 + 2 * len(rescored)
    (status,) = study_status(cfg.run_path)
    assert all(r["val_seeds"] == 3 and r["val_metric_std"] > 0 for r in status["front"])
    assert all("val mean of 3 seeds" in r["note"] for r in status["front"])
    assert s.front_size == len(pareto["members"])

    calls.clear()  # resumed: nothing is evaluated again
    run_search(cfg, problem=_Counting(calls))
    assert calls == []
    assert read_json(cfg.run_path / "pareto.json")["members"] == pareto["members"]


def test_rescoring_can_be_raised_after_the_search(make_config) -> None:
    _, cfg = make_config()
    calls: list[int] = []
    run_search(cfg, problem=_Counting(calls))
    assert len(calls) == 8
    more = cfg.model_copy(update={"search": cfg.search.model_copy(update={"rescore_seeds": 2})})
    run_search(more, problem=_Counting(calls))  # same study: rescore_seeds is not its identity
    members = read_json(cfg.run_path / "pareto.json")["members"]
    assert members and all(m["val_seeds"] == 2 for m in members)


# -- chosen on val, shown with test ------------------------------------------------------------
class _TestDisagrees(SyntheticProblem):
    """Test scores in the reverse order of val: the test-best is never the val-best."""

    def score_test(
        self,
        genome: MultimodalGenome,
        evaluation: Evaluation,
        *,
        seeds: list[int],
        model_dir: Path,
        progress: ProgressFn = no_progress,
    ) -> Score:
        score = super().score_test(
            genome, evaluation, seeds=seeds, model_dir=model_dir, progress=progress
        )
        return Score(1.0 - evaluation.val_metric, 0.0, score.arch, model_dir)


def _disagreeing(cfg: ExperimentConfig) -> SyntheticProblem:
    return _TestDisagrees(cfg)


def test_best_is_chosen_on_val_and_shown_with_test(make_config) -> None:
    _, cfg = make_config()
    s = run_search(cfg, problem=_disagreeing)
    pareto = read_json(cfg.run_path / "pareto.json")
    members = pareto["members"]
    assert len(members) >= 2
    val_best = max(members, key=lambda m: (m["val_metric"], -m["latency_ms"]))
    assert (
        pareto["best"]["trial"] == val_best["trial"] and pareto["best"]["chosen_by"] == "val_metric"
    )
    assert pareto["best"]["test_metric"] == pytest.approx(1 - val_best["val_metric"])
    assert s.best_trial == val_best["trial"] and s.best_val_metric == val_best["val_metric"]
    assert s.best_test_metric == pytest.approx(1 - val_best["val_metric"])
    (status,) = study_status(cfg.run_path)
    assert status["best"]["trial"] == val_best["trial"]
    assert status["best_val_metric"] == val_best["val_metric"]
    assert status["best_test_metric"] == pytest.approx(val_best["test_metric"])
    assert status["best_summary"] == (
        f"best val {val_best['val_metric']:.4g} (test {val_best['test_metric']:.4g})"
    )
    assert all("test_metric" in r for r in status["front"])


def test_best_summary_without_test_or_with_seeds() -> None:
    assert best_summary(None) == "best val -"
    assert best_summary({"val_metric": 0.91234}) == "best val 0.9123"
    assert (
        best_summary({"val_metric": 0.9, "val_metric_std": 0.012, "test_metric": 0.88})
        == "best val 0.9 ± 0.012 (test 0.88)"
    )


def test_status_shows_no_test_before_the_pareto_set_is_scored(make_config) -> None:
    _, cfg = make_config()
    run_search(cfg, problem=SyntheticFactory(), finalize=False)
    (status,) = study_status(cfg.run_path)
    assert status["best_val_metric"] is not None and status["best_test_metric"] is None
    assert "(test" not in status["best_summary"]
    assert json.dumps(status)  # JSON-serialisable (status --json)
