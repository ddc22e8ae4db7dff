"""Local workers die with their parent (issue 14 item 2), and a rerun next to another process
still working on the study stays correct."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from harmonic_nas.search.storage import default_storage_url, open_storage

from .test_search_workers import assert_no_duplicate_no_lost

pytestmark = pytest.mark.slow


def _search_cmd(config: Path, *extra: str) -> list[str]:
    code = "import sys; from harmonic_nas.cli import main; sys.exit(main(sys.argv[1:]))"
    return [sys.executable, "-c", code, "search", str(config), *extra]


def _env(sleep_s: float) -> dict[str, str]:
    return {
        **os.environ,
        "HARMONIC_NAS_SEARCH_PROBLEM": "harmonic_nas.testing.synthetic_problem:from_env",
        "HARMONIC_NAS_SYNTHETIC": f'{{"sleep_s": {sleep_s}}}',
    }


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def _worker_pids(cfg, parent: int) -> set[int]:
    if not (cfg.run_path / "study.db").exists():
        return set()
    try:
        study = optuna.load_study(
            study_name=cfg.name, storage=open_storage(default_storage_url(cfg))
        )
    except KeyError:
        return set()
    return {
        int(t.user_attrs["worker"]["pid"])
        for t in study.get_trials(deepcopy=False)
        if "worker" in t.user_attrs and t.user_attrs["worker"]["pid"] != parent
    }


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_a_killed_parent(make_config, tmp_path: Path) -> None:
    path, cfg = make_config(population=4, generations=3)
    with open(tmp_path / "parent.log", "w") as log:
        proc = subprocess.Popen(
            _search_cmd(path, "--workers", "2"), env=_env(1.0), stdout=log, stderr=log
        )
    pids: set[int] = set()
    try:
        deadline = time.monotonic() + 300
        while len(pids) < 2:
            assert time.monotonic() < deadline, "two workers never started"
            assert proc.poll() is None, (tmp_path / "parent.log").read_text()
            time.sleep(0.3)
            pids = _worker_pids(cfg, proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 20
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        survivors = [p for p in pids if _alive(p)]
        assert not survivors, f"workers {survivors} outlived their parent"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for p in pids:  # our own grandchildren, if the test failed
            if _alive(p):
                os.kill(p, signal.SIGKILL)
    # the rerun finishes the study exactly on budget
    rerun = subprocess.run(
        _search_cmd(path), env=_env(0.0), capture_output=True, text=True, timeout=600
    )
    assert rerun.returncode == 0, rerun.stderr
    study = optuna.load_study(study_name=cfg.name, storage=open_storage(default_storage_url(cfg)))
    assert_no_duplicate_no_lost(study, 12)


def test_rerun_next_to_a_leftover_worker_stays_correct(make_config, tmp_path: Path) -> None:
    """A leftover process still working on the study (an orphan on a platform without a
    parent-death signal, or another machine) and a rerun with two workers share the budget."""
    path, cfg = make_config(population=4, generations=3)
    with open(tmp_path / "leftover.log", "w") as log:
        leftover = subprocess.Popen(_search_cmd(path), env=_env(1.5), stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 300
        while not _worker_pids(cfg, -1):
            assert time.monotonic() < deadline and leftover.poll() is None
            time.sleep(0.2)
        rerun = subprocess.run(
            _search_cmd(path, "--workers", "2"),
            env=_env(1.5),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert rerun.returncode == 0, rerun.stderr
        assert leftover.wait(timeout=300) == 0, (tmp_path / "leftover.log").read_text()
    finally:
        if leftover.poll() is None:
            leftover.kill()
            leftover.wait()
    study = optuna.load_study(study_name=cfg.name, storage=open_storage(default_storage_url(cfg)))
    assert_no_duplicate_no_lost(study, 12)
    workers = {
        t.user_attrs["worker"]["pid"] for t in study.get_trials(states=(TrialState.COMPLETE,))
    }
    assert len(workers) >= 2
