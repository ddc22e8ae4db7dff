"""Issue 14 item 9, search side: a failed candidate is one line (no Optuna tracebacks), and two
``search`` processes on one study score the Pareto set once (the second reuses the result)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harmonic_nas.config import ExperimentConfig
from harmonic_nas.search import run_search
from harmonic_nas.search.genome import MultimodalGenome
from harmonic_nas.search.objective import QuietFailedTrials
from harmonic_nas.search.problem import Evaluation
from harmonic_nas.search.problem import TestScore as Score
from harmonic_nas.testing.synthetic_problem import SyntheticFactory, SyntheticProblem
from harmonic_nas.utils.io import read_json

ROOT = Path(__file__).resolve().parents[2]
SCORE_LOG = "HARMONIC_NAS_TEST_SCORE_LOG"


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_failed_candidate_is_one_line_without_optuna_tracebacks(
    make_config: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _, cfg = make_config(initial="random")  # random proposals meet the synthetic failures
    optuna_log = _Collect()
    root = logging.getLogger("optuna")
    root.addHandler(optuna_log)
    try:
        with caplog.at_level(logging.WARNING, logger="harmonic_nas"):
            run_search(cfg, problem=SyntheticFactory(fail_rate=0.25))
    finally:
        root.removeHandler(optuna_log)
    ours = [r.getMessage() for r in caplog.records if "failed: RuntimeError" in r.getMessage()]
    assert ours and all("\n" not in m for m in ours)
    noisy = [r for r in optuna_log.records if r.exc_info or "failed" in r.getMessage()]
    assert noisy == [], [r.getMessage() for r in noisy]


def test_the_filter_keeps_optuna_s_other_messages() -> None:
    keep = logging.LogRecord("optuna", logging.WARNING, "", 0, "Trial 3 finished", None, None)
    drop = logging.LogRecord(
        "optuna", logging.WARNING, "", 0, "Trial 3 failed with value None.", None, None
    )
    assert QuietFailedTrials().filter(keep) and not QuietFailedTrials().filter(drop)


class _SlowScoring(SyntheticProblem):
    """Scores each Pareto member slowly on test and logs who scored it (same problem name)."""

    def score_test(self, genome: MultimodalGenome, evaluation: Evaluation, **kw: Any) -> Score:
        with open(os.environ[SCORE_LOG], "a", encoding="utf-8") as f:
            f.write(f"{os.getpid()} {genome.key()}\n")
        time.sleep(1.5)
        return super().score_test(genome, evaluation, **kw)


def slow_scoring(cfg: ExperimentConfig) -> SyntheticProblem:
    return _SlowScoring(cfg)


@pytest.mark.slow
def test_two_search_processes_score_the_pareto_set_once(make_config: Any, tmp_path: Path) -> None:
    path, cfg = make_config()
    run_search(cfg, problem=SyntheticFactory(), finalize=False)  # budget met, set not scored
    log = tmp_path / "scored.log"
    script = (
        "import sys\n"
        "from harmonic_nas.config import load_config\n"
        "from harmonic_nas.search import run_search\n"
        "s = run_search(load_config(sys.argv[1]),"
        " problem='tests.search.test_search_noise_and_final:slow_scoring')\n"
        "print(s.pareto_path)\n"
    )
    env = {**os.environ, SCORE_LOG: str(log), "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(path)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    assert outs[0][0] == outs[1][0]  # both report the same Pareto set
    scored = log.read_text(encoding="utf-8").splitlines()
    members = read_json(cfg.run_path / "pareto.json")["members"]
    assert len(scored) == len(members)  # each member scored once, by one of the two
    assert len({line.split()[0] for line in scored}) == 1
