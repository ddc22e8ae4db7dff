"""search stage: NSGA-II over joint genomes on an Optuna study (outer tier of Harmonic-NAS).

The problem (what a candidate is worth: :class:`SearchProblem`) is separate from the algorithm
(how candidates are proposed: :mod:`.strategies`) and from the study machinery (:mod:`.runner`,
:mod:`.storage`).
"""

from __future__ import annotations

from harmonic_nas.search.context import SearchSummary
from harmonic_nas.search.driver import finalize, prepare, run_search
from harmonic_nas.search.genome import BackboneSpace, MultimodalGenome, SearchSpace
from harmonic_nas.search.pareto import dominates, hypervolume, non_dominated, normalised_hypervolume
from harmonic_nas.search.problem import CostBound, Evaluation, SearchProblem, TestScore
from harmonic_nas.search.status import study_status
from harmonic_nas.search.strategies import STRATEGIES

__all__ = [
    "STRATEGIES",
    "BackboneSpace",
    "CostBound",
    "Evaluation",
    "MultimodalGenome",
    "SearchProblem",
    "SearchSpace",
    "SearchSummary",
    "TestScore",
    "dominates",
    "finalize",
    "hypervolume",
    "non_dominated",
    "normalised_hypervolume",
    "prepare",
    "run_search",
    "study_status",
]
