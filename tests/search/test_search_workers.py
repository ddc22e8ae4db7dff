"""Parallel and interrupted searches: several workers (SQLite, PostgreSQL), SIGKILL and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from harmonic_nas.search import run_search
from harmonic_nas.search.storage import default_storage_url, open_storage
from harmonic_nas.testing.synthetic_problem import SyntheticFactory

pytestmark = pytest.mark.slow


def assert_no_duplicate_no_lost(study: optuna.Study, budget: int) -> None:
    trials = study.get_trials()
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(done) == budget
    keys = [t.user_attrs["genome_key"] for t in done]
    assert len(set(keys)) == budget, "a genome was completed twice"
    assert not [t for t in trials if t.state == TrialState.RUNNING], "a candidate was left running"
    by_number = {t.number: t for t in done}
    evaluated = [t for t in trials if "eval_seed" in t.user_attrs and t.state != TrialState.FAIL]
    for t in trials:
        if t.state == TrialState.PRUNED:
            if "duplicate_of" in t.user_attrs:
                twin = by_number.get(t.user_attrs["duplicate_of"])
                assert (
                    twin is not None and twin.user_attrs["genome_key"] == t.user_attrs["genome_key"]
                )
            else:
                assert t.user_attrs.get("budget_reached") and not t.params
        if t.state == TrialState.FAIL:
            assert t.user_attrs.get("fail_reason")
    # every evaluation that finished is a COMPLETE candidate (none evaluated and then dropped),
    # except a concurrent twin pruned after its evaluation
    assert {t.number for t in evaluated} - set(by_number) == {
        t.number for t in evaluated if t.state == TrialState.PRUNED
    }


def test_two_workers_sqlite(make_config) -> None:
    _, cfg = make_config(population=4, generations=3)
    s = run_search(cfg, workers=2, problem=SyntheticFactory(sleep_s=0.3))
    study = optuna.load_study(study_name=cfg.name, storage=open_storage(default_storage_url(cfg)))
    assert_no_duplicate_no_lost(study, 12)
    assert s.n_complete == 12 and s.pareto_path is not None


@pytest.mark.postgres
def test_two_workers_postgresql(make_config, postgres_url: str) -> None:
    _, cfg = make_config(name="pg", population=4, generations=3)
    s = run_search(cfg, storage=postgres_url, workers=2, problem=SyntheticFactory(sleep_s=0.3))
    study = optuna.load_study(study_name="pg", storage=open_storage(postgres_url))
    assert_no_duplicate_no_lost(study, 12)
    assert s.storage == postgres_url and s.n_complete == 12
    # a second "machine" joining a finished study evaluates nothing more
    n = len(study.trials)
    run_search(cfg, storage=postgres_url, workers=1, problem=SyntheticFactory())
    assert len(optuna.load_study(study_name="pg", storage=open_storage(postgres_url)).trials) == n


@pytest.mark.postgres
def test_postgres_wrong_database_is_one_line(make_config, postgres_url: str) -> None:
    from harmonic_nas.search.storage import StorageError

    _, cfg = make_config(name="pgbad")
    with pytest.raises(StorageError, match="cannot open study storage") as info:
        run_search(
            cfg, storage=postgres_url.rsplit("/", 1)[0] + "/no_such_db", problem=SyntheticFactory()
        )
    assert "\n" not in str(info.value)


def _search_cmd(config: str) -> list[str]:
    code = "import sys; from harmonic_nas.cli import main; sys.exit(main(sys.argv[1:]))"
    return [sys.executable, "-c", code, "search", config]


def test_sigkill_then_rerun_completes_exactly_the_budget(make_config, tmp_path) -> None:
    path, cfg = make_config(population=4, generations=3)
    env = {
        **os.environ,
        "HARMONIC_NAS_SEARCH_PROBLEM": "harmonic_nas.testing.synthetic_problem:from_env",
        "HARMONIC_NAS_SYNTHETIC": '{"sleep_s": 0.6}',
    }
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen(
            _search_cmd(str(path)), env=env, stdout=log, stderr=subprocess.STDOUT
        )
    url = default_storage_url(cfg)
    killed_running: list[int] = []
    before: dict[int, tuple[float, ...]] = {}
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "first.log").read_text()
            time.sleep(0.2)
            if not (cfg.run_path / "study.db").exists():
                continue
            try:
                study = optuna.load_study(study_name=cfg.name, storage=open_storage(url))
            except KeyError:
                continue
            trials = study.get_trials()
            done = [t for t in trials if t.state == TrialState.COMPLETE]
            evaluating = [
                t for t in trials if t.state == TrialState.RUNNING and "genome_key" in t.user_attrs
            ]
            if len(done) >= 3 and evaluating:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                break
        else:
            pytest.fail("the search never reached 3 candidates")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    study = optuna.load_study(study_name=cfg.name, storage=open_storage(url))
    trials = study.get_trials()
    before = {t.number: tuple(t.values) for t in trials if t.state == TrialState.COMPLETE}
    killed_running = [t.number for t in trials if t.state == TrialState.RUNNING and t.params]
    assert killed_running and len(before) < 12
    pre_keys = {t.user_attrs["genome_key"] for t in trials if t.state == TrialState.COMPLETE}
    from harmonic_nas.search import study_status

    (status,) = study_status(cfg.run_path)  # an interrupted study reads fine
    assert not status["finished"] and status["complete"] == len(before)
    assert status["running"] == len(killed_running)
    last_before = max(t.number for t in trials)

    second = subprocess.run(
        _search_cmd(str(path)), env=env, capture_output=True, text=True, timeout=600
    )
    assert second.returncode == 0, second.stderr

    study = optuna.load_study(study_name=cfg.name, storage=open_storage(url))
    assert_no_duplicate_no_lost(study, 12)
    trials = study.get_trials()
    # completed candidates are never lost nor re-run
    for number, values in before.items():
        assert (
            trials[number].state == TrialState.COMPLETE and tuple(trials[number].values) == values
        )
    rerun = [t for t in trials if t.number > last_before and "eval_seed" in t.user_attrs]
    assert not {t.user_attrs["genome_key"] for t in rerun} & pre_keys
    # the interrupted candidate was failed with a reason and its genome retried
    for number in killed_running:
        assert trials[number].state == TrialState.FAIL
        assert trials[number].user_attrs["fail_reason"].startswith("interrupted")
        retries = [t for t in trials if t.system_attrs.get("failed_trial") == number]
        assert len(retries) == 1 and retries[0].params == trials[number].params
        assert retries[0].state == TrialState.COMPLETE
