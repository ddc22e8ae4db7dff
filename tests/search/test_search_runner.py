"""The study machinery on the synthetic problem: budget, dedupe, failures, budgets, resume,
determinism, artifacts, strategies."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from harmonic_nas.errors import ConfigError, HarmonicError
from harmonic_nas.search import run_search
from harmonic_nas.search.attrs import ATTR_WORKER
from harmonic_nas.search.genome import MultimodalGenome
from harmonic_nas.search.pareto import non_dominated
from harmonic_nas.search.storage import StorageError, default_storage_url, open_storage
from harmonic_nas.search.strategies import TrialSeededSampler, get_strategy
from harmonic_nas.testing.synthetic_problem import SyntheticFactory
from harmonic_nas.utils.io import read_json


def load_study(cfg, name: str | None = None) -> optuna.Study:
    return optuna.load_study(
        study_name=name or cfg.name, storage=open_storage(default_storage_url(cfg))
    )


def complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(states=(TrialState.COMPLETE,))


def test_budget_artifacts_and_pareto_match_brute_force(make_config) -> None:
    _, cfg = make_config(generations=3)
    summary = run_search(cfg, problem=SyntheticFactory())
    study = load_study(cfg)
    done = complete(study)
    assert len(done) == cfg.search.budget == summary.n_complete == 12
    keys = [t.user_attrs["genome_key"] for t in done]
    assert len(set(keys)) == len(keys)

    cands = read_json(summary.candidates_path, schema_version=1)
    rows = [c for c in cands["candidates"] if c["state"] == "COMPLETE"]
    assert len(rows) == 12
    assert cands["objectives"] == ["val_metric", "latency_ms", "energy_mj"]
    for c in rows:
        assert set(c["arch"]["modalities"]) == {"image", "audio"}
        assert c["arch"]["genotype"] is not None
    pts = [(-c["val_metric"], c["latency_ms"], c["energy_mj"]) for c in rows]
    brute = {rows[i]["trial"] for i in non_dominated(pts)}
    assert {c["trial"] for c in rows if c["pareto"]} == brute

    pareto = read_json(summary.pareto_path, schema_version=1)
    assert {m["trial"] for m in pareto["members"]} == brute
    for m in pareto["members"]:
        assert m["id"] == f"t{m['trial']:04d}"
        assert (cfg.run_path / "models" / m["id"] / "arch.json").is_file()
        assert (cfg.run_path / "models" / m["id"] / "weights.pt").is_file()
        assert m["test_metric"] is not None and m["latency_ms"] > 0
    hv = read_json(summary.hypervolume_path, schema_version=1)
    gens = hv["generations"]
    assert [g["n_complete"] for g in gens] == [4, 8, 12]
    assert all(0.0 < g["hypervolume"] <= 1.0 for g in gens)
    # the archive front only grows: its hypervolume never decreases
    assert all(a["hypervolume"] <= b["hypervolume"] + 1e-12 for a, b in itertools.pairwise(gens))
    assert hv["reference_point"]["val_metric"] == 0.0
    assert study.user_attrs["reference_point"] == hv["reference_point"]
    # NSGA-II generations: one population per generation, the macro genes are inherited
    gens_attr = [t.system_attrs["NSGAIISampler:generation"] for t in done]
    assert sorted(gens_attr) == [0] * 4 + [1] * 4 + [2] * 4


def test_rerun_resumes_without_reevaluating(make_config) -> None:
    _, cfg = make_config()
    calls: list[tuple[str, int, int]] = []
    run_search(cfg, problem=SyntheticFactory(), progress=lambda *a: calls.append(a))
    assert ("search: candidates", 8, 8) in calls
    assert ("search: generation", 2, 2) in calls
    assert any(t == "search: Pareto front size" and total == 8 for t, _, total in calls)
    assert any(t.startswith("candidate ") for t, _, _ in calls)  # the evaluator's own progress
    before = {t.number: t.values for t in complete(load_study(cfg))}
    n_trials = len(load_study(cfg).trials)
    summary = run_search(cfg, problem=SyntheticFactory())
    study = load_study(cfg)
    assert len(study.trials) == n_trials  # nothing asked, nothing evaluated
    assert {t.number: t.values for t in complete(study)} == before
    assert summary.n_complete == 8


def test_same_seed_same_front_and_different_seed_differs(make_config, tmp_path: Path) -> None:
    fronts = []
    for name in ("a", "b"):
        _, cfg = make_config(name=name)
        s = run_search(cfg, problem=SyntheticFactory())
        pareto = read_json(s.pareto_path, schema_version=1)
        fronts.append(
            sorted((m["trial"], m["val_metric"], m["latency_ms"]) for m in pareto["members"])
        )
    assert fronts[0] == fronts[1]
    cfg_c = make_config(name="c")[1].model_copy(update={"seed": 8})
    s = run_search(cfg_c, problem=SyntheticFactory())
    other = sorted(
        (m["trial"], m["val_metric"], m["latency_ms"]) for m in read_json(s.pareto_path)["members"]
    )
    assert other != fronts[0]


def test_trial_seeded_sampler_is_reproducible() -> None:
    from harmonic_nas.config import SearchConfig

    strat = get_strategy("nsga2", SearchConfig(population=4))

    def params(seed: int) -> list[dict]:
        study = optuna.create_study(
            directions=["maximize", "minimize"], sampler=TrialSeededSampler(strat.build, seed)
        )
        study.optimize(
            lambda t: (t.suggest_int("x", 0, 50), t.suggest_int("y", 0, 50)), n_trials=12
        )
        return [t.params for t in study.trials]

    assert params(1) == params(1)
    assert params(1) != params(2)


def test_duplicates_are_not_evaluated_again(make_config) -> None:
    # tiny space: 4 x 4 backbone pairs x 1 cell x 2 nodes = 32 genomes, budget 16 -> repeats
    _, cfg = make_config(population=4, generations=4, cells=[1, 1], nodes=[1, 2])
    summary = run_search(cfg, problem=SyntheticFactory(tiny=True))
    study = load_study(cfg)
    done = complete(study)
    keys = [t.user_attrs["genome_key"] for t in done]
    assert len(done) == 16 and len(set(keys)) == 16
    dups = [
        t for t in study.get_trials(states=(TrialState.PRUNED,)) if "duplicate_of" in t.user_attrs
    ]
    assert dups and summary.n_duplicates == len(dups)
    by_number = {t.number: t for t in done}
    for t in dups:
        twin = by_number[t.user_attrs["duplicate_of"]]
        assert twin.user_attrs["genome_key"] == t.user_attrs["genome_key"]
        assert "evaluation" not in t.user_attrs


def test_space_smaller_than_budget_is_refused(make_config) -> None:
    _, cfg = make_config(population=8, generations=5, cells=[1, 1], nodes=[1, 1])
    with pytest.raises(ConfigError, match="only 16 distinct candidates but the budget is 40"):
        run_search(cfg, problem=SyntheticFactory(tiny=True))


def test_failed_and_nan_candidates_are_recorded_and_search_goes_on(make_config) -> None:
    _, cfg = make_config(initial="random")  # random proposals meet both kinds of failure
    summary = run_search(cfg, problem=SyntheticFactory(fail_rate=0.25, nan_rate=0.2))
    study = load_study(cfg)
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert len(complete(study)) == 8 and failed
    reasons = [t.user_attrs["fail_reason"] for t in failed]
    assert any("RuntimeError: synthetic failure" in r for r in reasons)
    assert any("val_metric is not finite" in r for r in reasons)
    cands = read_json(summary.candidates_path)["candidates"]
    assert {c["trial"] for c in cands if c["state"] == "FAIL"} == {t.number for t in failed}
    assert all(c["fail_reason"] for c in cands if c["state"] == "FAIL")


def test_systematic_failure_stops_with_one_line(make_config) -> None:
    _, cfg = make_config()
    with pytest.raises(HarmonicError, match="candidates failed in a row") as info:
        run_search(cfg, problem=SyntheticFactory(fail_rate=1.0))
    assert "\n" not in str(info.value)


def test_hard_budgets_are_honoured(make_config) -> None:
    _, cfg = make_config(population=6, generations=3, latency_budget_ms=1.2, energy_budget_mj=2.4)
    summary = run_search(cfg, problem=SyntheticFactory())
    study = load_study(cfg)
    done = complete(study)
    assert len(done) == 18
    skipped = [t for t in done if "skipped" in t.user_attrs]
    assert skipped, "some candidates break the budget on the cheap pass"
    for t in skipped:
        assert t.values[0] == 0.0 and "eval_seed" not in t.user_attrs  # fusion search skipped
        assert max(t.constraints.values()) > 0
    for t in done:
        assert set(t.constraints) == {"latency_ms", "energy_mj"}
    pareto = read_json(summary.pareto_path)
    assert pareto["members"]
    for m in pareto["members"]:
        assert m["latency_ms"] <= 1.2 and m["energy_mj"] <= 2.4


def test_unmeetable_budget_fails_fast(make_config) -> None:
    _, cfg = make_config(latency_budget_ms=0.1)
    with pytest.raises(ConfigError, match="no architecture can meet the latency budget") as info:
        run_search(cfg, problem=SyntheticFactory())
    assert "\n" not in str(info.value)
    assert not (cfg.run_path / "study.db").exists() or not load_study_names(cfg)


def load_study_names(cfg) -> list[str]:
    return [
        s.study_name for s in optuna.get_all_study_summaries(open_storage(default_storage_url(cfg)))
    ]


def test_other_config_same_study_name_is_refused(make_config) -> None:
    _, cfg = make_config()
    run_search(cfg, problem=SyntheticFactory())
    changed = cfg.model_copy(
        update={"search": cfg.search.model_copy(update={"crossover_prob": 0.5})}
    )
    with pytest.raises(StorageError, match="--study-name") as info:
        run_search(changed, problem=SyntheticFactory())
    assert "rerun with the original config" in str(info.value)
    # a new name is a separate study in the same database
    s = run_search(changed, problem=SyntheticFactory(), study_name="syn-cx05")
    assert s.n_complete == 8 and set(load_study_names(cfg)) == {"syn", "syn-cx05"}
    assert s.out_dir == cfg.run_path / "studies" / "syn-cx05"
    assert (s.out_dir / "pareto.json").is_file()
    # the run keeps its config; the other study's config sits next to its results
    from harmonic_nas.config import load_run_config

    assert load_run_config(cfg.run_path).search.crossover_prob == 0.9
    assert load_run_config(s.out_dir).search.crossover_prob == 0.5


@pytest.mark.parametrize("strategy", ["random", "accuracy-only"])
def test_baseline_strategies(make_config, strategy: str) -> None:
    _, cfg = make_config()
    s = run_search(cfg, problem=SyntheticFactory(), strategy=strategy)
    assert s.out_dir == cfg.run_path / f"search-{strategy}"
    study = load_study(cfg, f"{cfg.name}-{strategy}")
    done = complete(study)
    assert len(done) == 8
    assert len(done[0].values) == (1 if strategy == "accuracy-only" else 3)
    # hardware objectives are recorded even when not optimised
    assert all(t.user_attrs["latency_ms"] > 0 for t in done)
    assert read_json(s.pareto_path)["strategy"] == strategy
    assert (
        read_json(cfg.run_path / "search.json")["studies"][study.study_name]["strategy"] == strategy
    )


def test_dead_worker_trial_is_failed_and_retried(make_config) -> None:
    from harmonic_nas.search.driver import prepare

    # a process that already exited: its pid is dead
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(proc.stdout)
    _, cfg2 = make_config(name="orphan")
    _, prob, study, _ = prepare(cfg2, problem=SyntheticFactory())
    orphan = study.ask()
    genome = prob.space.suggest(orphan)
    orphan.set_user_attr(ATTR_WORKER, {"host": __import__("socket").gethostname(), "pid": dead_pid})
    s = run_search(cfg2, problem=SyntheticFactory())
    study = load_study(cfg2, "orphan")
    dead = study.trials[orphan.number]
    assert dead.state == TrialState.FAIL
    assert dead.user_attrs["fail_reason"].startswith("interrupted")
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == orphan.number]
    assert len(retried) == 1 and retried[0].state == TrialState.COMPLETE
    assert prob.space.from_params(retried[0].params).key() == genome.key()
    assert s.n_complete == 8


def test_genome_json_round_trip_in_candidates(make_config) -> None:
    _, cfg = make_config()
    s = run_search(cfg, problem=SyntheticFactory(), finalize=False)
    assert s.pareto_path is None and not (cfg.run_path / "pareto.json").exists()
    cands = json.loads(s.candidates_path.read_text())["candidates"]
    for c in cands:
        g = MultimodalGenome.from_json(
            {
                "backbones": {m: v["genome"] for m, v in c["arch"]["modalities"].items()},
                "cells": c["arch"]["cells"],
                "nodes": c["arch"]["nodes"],
            }
        )
        assert g.key() == c["key"]
