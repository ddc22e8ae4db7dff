"""What a search run is about: its summary, the picklable context a worker receives, and where a study's artifacts go."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import optuna

from harmonic_nas.config import ExperimentConfig
from harmonic_nas.search.problem import (
    ProblemFactory,
    SearchProblem,
    resolve_factory,
)

logger = logging.getLogger(__name__)


POLL_S = 0.5


@dataclass(frozen=True)
class SearchSummary:
    """What a finished (or resumed and finished) search produced."""

    run: Path
    out_dir: Path
    strategy: str
    study_name: str
    storage: str
    budget: int
    n_complete: int
    n_failed: int
    n_duplicates: int
    front_size: int
    hypervolume: float
    candidates_path: Path
    hypervolume_path: Path
    pareto_path: Path | None
    n_low_fidelity: int = 0
    """candidates left at the cheap fidelity (multi-fidelity)"""
    best_trial: int | None = None
    """the val-best member of the front (every "best" is chosen on val)"""
    best_val_metric: float | None = None
    best_test_metric: float | None = None
    """its test score, when the Pareto set was scored on test"""


@dataclass(frozen=True)
class SearchContext:
    """Everything a worker needs (picklable: crosses the spawn boundary)."""

    cfg: ExperimentConfig
    strategy: str
    storage_url: str
    study_name: str
    config_hash: str
    problem: str | ProblemFactory
    optuna_verbosity: int = optuna.logging.WARNING

    def build_problem(self) -> SearchProblem:
        factory = resolve_factory(self.problem) if isinstance(self.problem, str) else self.problem
        return factory(self.cfg)


def output_dir(cfg: ExperimentConfig, strategy: str, study_name: str | None = None) -> Path:
    """Where a study's artifacts go: the run directory for the default study of the config's
    strategy (``search.strategy``, what ``harmonic-nas run`` reports and exports),
    ``run/search-<strategy>/`` for another strategy's default study, ``run/studies/<name>/``
    for a study named with ``--study-name``."""
    default = default_study_name(cfg, strategy)
    if study_name is not None and study_name != default:
        return cfg.run_path / "studies" / study_name
    return cfg.run_path if strategy == cfg.search.strategy else cfg.run_path / f"search-{strategy}"


def default_study_name(cfg: ExperimentConfig, strategy: str) -> str:
    base = cfg.search.study_name or cfg.name
    return base if strategy == "nsga2" else f"{base}-{strategy}"
