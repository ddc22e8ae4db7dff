"""Faults of the study (issue 14 item 1, issue 11 items 3-4): partial trials are failures, a failed
write-out is not a finished search, budgets extend a study, and the study reads as Optuna users
expect (metric names, compact attributes, a run that can be moved)."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from harmonic_nas.cli import main
from harmonic_nas.search import run_search, study_status
from harmonic_nas.search.driver import prepare
from harmonic_nas.search.storage import StorageError, default_storage_url, open_storage
from harmonic_nas.testing.synthetic_problem import SyntheticFactory
from harmonic_nas.utils.io import read_json

#: Progress lines (printed when the output is not a terminal) are not error lines.
PROGRESS = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")


def load_study(cfg) -> optuna.Study:
    return optuna.load_study(study_name=cfg.name, storage=open_storage(default_storage_url(cfg)))


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip() and not PROGRESS.match(ln)]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    for f in fragments:
        assert f in lines[0], lines[0]


def _kill_during_suggestion(config: Path, n_genes: int) -> None:
    """A process that suggests ``n_genes`` genes of a trial, then is SIGKILLed (by itself)."""
    script = textwrap.dedent(
        f"""
        import os, signal, socket
        from harmonic_nas.config import load_config
        from harmonic_nas.search.driver import prepare
        from harmonic_nas.testing.synthetic_problem import SyntheticFactory

        cfg = load_config({str(config)!r})
        _, prob, study, _ = prepare(cfg, problem=SyntheticFactory())
        trial = study.ask()
        trial.set_user_attr("worker", {{"host": socket.gethostname(), "pid": os.getpid()}})
        for name, dist in list(prob.space.distributions().items())[:{n_genes}]:
            trial.suggest_categorical(name, dist.choices)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()


def test_sigkill_during_suggestion_leaves_a_failure_not_a_genome(
    make_config, synthetic_env, capsys
) -> None:
    path, cfg = make_config()
    _kill_during_suggestion(path, 5)
    study = load_study(cfg)
    (killed,) = study.get_trials()
    assert killed.state == TrialState.RUNNING and len(killed.params) == 5

    code, out, err = run_cli(capsys, "search", str(path))
    assert code == 0, err
    assert "8/8 candidates complete" in out
    for name in ("candidates.json", "hypervolume.json", "pareto.json"):
        assert (cfg.run_path / name).is_file(), name
    rows = read_json(cfg.run_path / "candidates.json")["candidates"]
    (row,) = [r for r in rows if r["trial"] == killed.number]
    assert row["state"] == "FAIL" and row["arch"] is None and row["key"] is None
    assert "genes were suggested" in row["fail_reason"]
    (status,) = study_status(cfg.run_path)
    assert status["finished"] and status["complete"] == 8 and status["failed"] == 1
    code, out, err = run_cli(capsys, "status", str(cfg.run_path))
    assert code == 0 and "finished" in out, err


def test_failed_partial_trial_is_skipped_everywhere(make_config) -> None:
    """A trial told FAIL with 9 of its genes (e.g. the disk filled while they were stored)."""
    _, cfg = make_config()
    _, prob, study, _ = prepare(cfg, problem=SyntheticFactory())
    trial = study.ask()
    for name, dist in list(prob.space.distributions().items())[:9]:
        trial.suggest_categorical(name, dist.choices)
    study.tell(trial, state=TrialState.FAIL)
    s = run_search(cfg, problem=SyntheticFactory())
    assert s.n_complete == 8 and s.n_failed == 1 and s.pareto_path is not None
    (status,) = study_status(cfg.run_path)
    assert status["finished"]
    (row,) = [r for r in status["candidates"] if r["trial"] == trial.number]
    assert row["state"] == "FAIL" and "genes were suggested" in row["note"]


def test_failed_write_out_is_not_reported_finished(
    make_config, synthetic_env, capsys, monkeypatch
) -> None:
    path, cfg = make_config()
    real_replace = os.replace

    def disk_full(src, dst, *args, **kwargs):  # type: ignore[no-untyped-def]
        if Path(dst).name == "hypervolume.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", disk_full)
    code, _, err = run_cli(capsys, "search", str(path))
    assert_one_line_error(code, err, "cannot write", "hypervolume.json", "free disk space")
    assert not list(cfg.run_path.glob(".hypervolume.json.*")), "a temporary file was left behind"
    assert not (cfg.run_path / "hypervolume.json").exists()
    (status,) = study_status(cfg.run_path)
    assert status["complete"] == 8 and not status["finished"]
    assert "failed" in status["stage_note"]
    code, out, _ = run_cli(capsys, "status", str(cfg.run_path))
    assert code == 0 and "not finished" in out and "rerun" in out

    monkeypatch.setattr(os, "replace", real_replace)  # disk space freed: the rerun writes it all
    code, _, err = run_cli(capsys, "search", str(path))
    assert code == 0, err
    (status,) = study_status(cfg.run_path)
    assert status["finished"] and (cfg.run_path / "hypervolume.json").is_file()


def test_raised_budget_extends_the_study(make_config) -> None:
    _, cfg = make_config(generations=2)
    run_search(cfg, problem=SyntheticFactory())
    first = {
        t.number: (t.user_attrs["genome_key"], tuple(t.values))
        for t in load_study(cfg).get_trials(states=(TrialState.COMPLETE,))
    }
    assert len(first) == 8
    more = cfg.model_copy(update={"search": cfg.search.model_copy(update={"generations": 3})})
    s = run_search(more, problem=SyntheticFactory())
    assert s.n_complete == 12 and s.budget == 12
    study = load_study(cfg)
    assert study.user_attrs["budget"] == 12
    trials = study.get_trials()
    for number, (key, values) in first.items():  # the first 8 are kept, not evaluated again
        assert trials[number].state == TrialState.COMPLETE
        assert (trials[number].user_attrs["genome_key"], tuple(trials[number].values)) == (
            key,
            values,
        )
    evaluated = [t for t in trials if "eval_seed" in t.user_attrs]
    assert len(evaluated) == 12
    keys = [t.user_attrs["genome_key"] for t in evaluated]
    assert len(set(keys)) == 12
    (status,) = study_status(cfg.run_path)
    assert status["budget"] == 12 and status["finished"]


def test_refused_config_change_names_the_keys(make_config) -> None:
    _, cfg = make_config()
    run_search(cfg, problem=SyntheticFactory())
    changed = cfg.model_copy(
        update={
            "fusion": cfg.fusion.model_copy(update={"C": 64}),
            "search": cfg.search.model_copy(update={"crossover_prob": 0.5, "population": 6}),
        }
    )
    with pytest.raises(StorageError) as info:
        run_search(changed, problem=SyntheticFactory())
    msg = str(info.value)
    assert "fusion.C" in msg and "search.crossover_prob" in msg
    assert "search.population" not in msg.split("(it differs in")[1].split(")")[0]
    assert "--study-name" in msg and "\n" not in msg


def test_study_reads_as_optuna_users_expect_and_the_run_can_move(
    make_config, tmp_path: Path
) -> None:
    from harmonic_nas.search.attrs import EVALUATION_SCALARS

    _, cfg = make_config()
    run_search(cfg, problem=SyntheticFactory())
    study = load_study(cfg)
    assert study.metric_names == ["val_metric", "latency_ms", "energy_mj"]
    done = study.get_trials(states=(TrialState.COMPLETE,))
    for t in done:
        assert set(EVALUATION_SCALARS) <= set(t.user_attrs)
        assert not set(EVALUATION_SCALARS) & set(t.user_attrs["evaluation"]), "nested copy"
    index = json.loads((cfg.run_path / "search.json").read_text())
    stored = index["studies"][cfg.name]["storage"]
    assert str(tmp_path) not in stored and stored.endswith("study.db")

    moved = tmp_path / "elsewhere" / "copy"
    moved.parent.mkdir()
    shutil.move(str(cfg.run_path), moved)
    (status,) = study_status(moved)
    assert status["complete"] == 8 and status["finished"]
    assert str(moved.resolve()) in status["storage"]


def test_disk_full_during_the_search_is_one_line_and_resumes(
    make_config, synthetic_env, capsys, monkeypatch
) -> None:
    """SQLite reports a full disk while a trial's genes are stored: one line, exit 2; the rerun
    (space freed) skips the partial trial and finishes the study."""
    import sqlalchemy
    from optuna.storages import RDBStorage

    path, cfg = make_config()
    real = RDBStorage._set_trial_param
    calls = {"n": 0}

    def full(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3 * 20 + 7:  # the 4th candidate, its 7th gene
            raise sqlalchemy.exc.OperationalError(
                "INSERT", {}, Exception("database or disk is full")
            )
        return real(self, *args, **kwargs)

    monkeypatch.setattr(RDBStorage, "_set_trial_param", full)
    code, _, err = run_cli(capsys, "search", str(path))
    assert_one_line_error(code, err, "study storage", "disk is full", "rerun the same command")
    monkeypatch.setattr(RDBStorage, "_set_trial_param", real)
    partial = [t for t in load_study(cfg).get_trials() if t.state == TrialState.FAIL]
    assert len(partial) == 1 and 0 < len(partial[0].params) < 20
    code, _, err = run_cli(capsys, "search", str(path))
    assert code == 0, err
    (status,) = study_status(cfg.run_path)
    assert status["finished"] and status["complete"] == 8 and status["failed"] == 1
