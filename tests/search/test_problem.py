"""The problem a study is made with: recorded with the study, checked on resume; the library never
reads the problem from the environment (the command line does)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from typing import ClassVar

import optuna
import pytest

from harmonic_nas.config import ExperimentConfig
from harmonic_nas.search import run_search
from harmonic_nas.search.evaluator import HarmonicProblem
from harmonic_nas.search.problem import (
    PROBLEM_ATTR,
    REAL_PROBLEM,
    check_study_problem,
    problem_name,
)
from harmonic_nas.search.storage import StorageError, default_storage_url, open_storage
from harmonic_nas.testing.synthetic_problem import SyntheticFactory, SyntheticProblem


class _Other(SyntheticProblem):
    name: ClassVar[str] = "other"


@dataclass(frozen=True)
class _OtherFactory:
    def __call__(self, cfg: ExperimentConfig) -> SyntheticProblem:
        return _Other(cfg, tiny=True)


class _Tweaked(SyntheticProblem):
    """A test double derived from the synthetic problem: still the same problem."""


def test_problem_names() -> None:
    assert problem_name(HarmonicProblem.__new__(HarmonicProblem)) == REAL_PROBLEM
    cfg = None  # the synthetic problem only stores it
    assert problem_name(SyntheticProblem(cfg)) == "synthetic"  # type: ignore[arg-type]
    assert problem_name(_Tweaked(cfg)) == "synthetic"  # type: ignore[arg-type]
    assert problem_name(object()) == "builtins:object"  # type: ignore[arg-type]


def test_check_study_problem() -> None:
    check_study_problem({}, REAL_PROBLEM, "s")  # made before the attribute existed: real
    check_study_problem({PROBLEM_ATTR: "synthetic"}, "synthetic", "s")
    with pytest.raises(StorageError, match="made with search problem synthetic, not harmonic-nas"):
        check_study_problem({PROBLEM_ATTR: "synthetic"}, REAL_PROBLEM, "s")
    with pytest.raises(StorageError, match="made with search problem harmonic-nas, not synthetic"):
        check_study_problem({}, "synthetic", "s")


def test_a_study_is_resumed_only_with_its_problem(make_config) -> None:
    _, cfg = make_config(generations=1)
    run_search(cfg, problem=SyntheticFactory(tiny=True), finalize=False)
    study = optuna.load_study(study_name=cfg.name, storage=open_storage(default_storage_url(cfg)))
    assert study.user_attrs[PROBLEM_ATTR] == "synthetic"
    with pytest.raises(StorageError) as info:
        run_search(cfg, problem=_OtherFactory(), finalize=False)
    msg = str(info.value)
    assert "made with search problem synthetic, not other" in msg and "\n" not in msg


def test_the_library_imports_no_test_double() -> None:
    code = (
        "import sys, harmonic_nas.search, harmonic_nas.search.evaluator, harmonic_nas.cli; "
        "print(any(m.startswith('harmonic_nas.testing') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
