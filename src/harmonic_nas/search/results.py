"""Reading a study back: candidates, the Pareto set, hypervolume history, and the final stage.

Artifacts (schemas in CONTRACT.md): ``candidates.json``, ``hypervolume.json``, ``pareto.json``,
``models/<id>/{arch.json, weights.pt}`` and ``search.json`` (which studies the run holds, where).
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.samplers import NSGAIISampler
from optuna.trial import FrozenTrial, TrialState

from harmonic_nas.errors import HarmonicError
from harmonic_nas.search.genome import MultimodalGenome, SearchSpace
from harmonic_nas.search.pareto import non_dominated, normalised_hypervolume
from harmonic_nas.search.problem import Evaluation, SearchProblem
from harmonic_nas.search.storage import (
    ATTR_BUDGET,
    ATTR_DUPLICATE,
    ATTR_FAIL,
    ATTR_KEY,
    search_config_hash,
)
from harmonic_nas.utils.io import atomic_write_json, read_json
from harmonic_nas.utils.progress import ProgressFn, no_progress
from harmonic_nas.utils.seeding import derive_seed

if TYPE_CHECKING:
    from harmonic_nas.config import ExperimentConfig
    from harmonic_nas.search.strategies import Strategy

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
#: Evaluation fields stored as top-level trial user attributes (the rest under "evaluation").
EVALUATION_SCALARS = (
    "val_metric",
    "latency_ms",
    "energy_mj",
    "params",
    "latency_paper_ms",
    "energy_paper_mj",
)
#: Study user attribute: the objectives of the front (written when the study is created).
ATTR_OBJECTIVES = "front_objectives"
FRONT_OBJECTIVES = ("val_metric", "latency_ms", "energy_mj")
_GENERATION_KEY = NSGAIISampler._get_generation_key()
_EPOCH = _dt.datetime.min


@dataclass(frozen=True)
class CandidateRecord:
    """One trial that received a genome (budget-slot waiters and queued retries are left out)."""

    trial: int
    state: str
    generation: int | None
    key: str
    params: dict[str, Any]
    evaluation: Evaluation | None
    feasible: bool
    skipped: str
    fail_reason: str
    duplicate_of: int | None
    eval_seed: int | None
    completed_at: _dt.datetime | None
    partial: bool = False

    @property
    def scored(self) -> bool:
        """COMPLETE, evaluated (not skipped by the cheap pass) and within the hard budgets."""
        return self.state == "COMPLETE" and self.evaluation is not None and self.feasible

    def minimised(self, n_objectives: int = 3) -> tuple[float, ...]:
        """Objectives as a minimisation vector ``(-val_metric, latency_ms, energy_mj)``, the
        first ``n_objectives`` of it (2: energy is modelled from latency, no objective)."""
        assert self.evaluation is not None
        ev = self.evaluation
        return (-float(ev.val_metric), float(ev.latency_ms), float(ev.energy_mj))[:n_objectives]


def _evaluation(t: FrozenTrial) -> Evaluation | None:
    """The evaluation of a trial: scalars at the top level, the rest under ``evaluation``
    (studies written before the attributes were compacted hold everything under it)."""
    ev = t.user_attrs.get("evaluation")
    if not isinstance(ev, dict):
        return None
    data = {k: t.user_attrs[k] for k in EVALUATION_SCALARS if k in t.user_attrs}
    data.update(ev)
    return Evaluation.from_json(data)


def is_partial(t: FrozenTrial, genes: frozenset[str] | None = None) -> bool:
    """A trial that never received its whole genome (killed, or the disk filled, while its
    genes were suggested): a failure, never decoded as a genome. Without the space's ``genes``,
    an unfinished trial without a genome key is partial (the key is set once every gene is)."""
    if genes is not None and not genes <= set(t.params):
        return True
    return t.state != TrialState.COMPLETE and ATTR_KEY not in t.user_attrs


def _record(t: FrozenTrial, genes: frozenset[str] | None = None) -> CandidateRecord | None:
    if t.state == TrialState.WAITING or not t.params or t.user_attrs.get(ATTR_BUDGET):
        return None
    partial = t.state != TrialState.COMPLETE and is_partial(t, genes)
    evaluation = _evaluation(t)
    skipped = str(t.user_attrs.get("skipped", ""))
    feasible = not skipped and all(v <= 0 for v in t.constraints.values())
    fail = str(t.user_attrs.get(ATTR_FAIL, ""))
    if t.state == TrialState.FAIL and not fail:
        fail = "interrupted: heartbeat stale (worker lost)"
    if partial and t.state == TrialState.FAIL:
        fail = f"{fail or 'interrupted'} (while its genes were suggested: {len(t.params)} set)"
    dup = t.user_attrs.get(ATTR_DUPLICATE)
    gen = t.system_attrs.get(_GENERATION_KEY)
    return CandidateRecord(
        trial=t.number,
        state=t.state.name,
        generation=int(gen) if gen is not None else None,
        key=str(t.user_attrs.get(ATTR_KEY, "")),
        params=dict(t.params),
        evaluation=evaluation if t.state == TrialState.COMPLETE else None,
        feasible=feasible,
        skipped=skipped,
        fail_reason=fail,
        duplicate_of=int(dup) if dup is not None else None,
        eval_seed=t.user_attrs.get("eval_seed"),
        completed_at=t.datetime_complete,
        partial=partial,
    )


@dataclass(frozen=True)
class SearchRecords:
    """All candidates of a study, plus the order in which they completed."""

    records: list[CandidateRecord]
    population: int
    objectives: tuple[str, ...] = FRONT_OBJECTIVES
    """the objectives the front and hypervolume are computed on (no energy when it is modelled)"""

    @classmethod
    def from_study(
        cls, study: optuna.Study, *, population: int, space: SearchSpace | None = None
    ) -> SearchRecords:
        genes = frozenset(space.distributions()) if space is not None else None
        recs = [r for t in study.get_trials(deepcopy=False) if (r := _record(t, genes)) is not None]
        objectives = study.user_attrs.get(ATTR_OBJECTIVES) or FRONT_OBJECTIVES
        return cls(sorted(recs, key=lambda r: r.trial), population, tuple(objectives))

    def _vec(self, rec: CandidateRecord) -> tuple[float, ...]:
        return rec.minimised(len(self.objectives))

    @property
    def complete(self) -> list[CandidateRecord]:
        """COMPLETE candidates in completion order."""
        done = [r for r in self.records if r.state == "COMPLETE"]
        return sorted(done, key=lambda r: (r.completed_at or _EPOCH, r.trial))

    @property
    def n_complete(self) -> int:
        return sum(r.state == "COMPLETE" for r in self.records)

    @property
    def n_failed(self) -> int:
        return sum(r.state == "FAIL" for r in self.records)

    @property
    def n_duplicates(self) -> int:
        return sum(r.duplicate_of is not None for r in self.records)

    def generation_of(self, rec: CandidateRecord) -> int | None:
        """NSGA-II's own generation when recorded, else completion order // population."""
        if rec.generation is not None:
            return rec.generation
        order = {r.trial: i for i, r in enumerate(self.complete)}
        return order[rec.trial] // self.population if rec.trial in order else None

    def front(self, upto: int | None = None) -> list[CandidateRecord]:
        """Non-dominated feasible candidates among the first ``upto`` completed (all if None)."""
        pool = [r for r in self.complete[:upto] if r.scored]
        idx = non_dominated([self._vec(r) for r in pool])
        return sorted((pool[i] for i in idx), key=lambda r: (r.minimised()[1], r.trial))

    def hypervolume_history(
        self, ideal: dict[str, float], reference: dict[str, float]
    ) -> list[dict[str, Any]]:
        """Normalised hypervolume of the front after each generation (every ``population``
        completed candidates, in completion order, for every strategy alike)."""
        k = len(self.objectives)
        lo = (-ideal["val_metric"], ideal["latency_ms"], ideal["energy_mj"])[:k]
        hi = (-reference["val_metric"], reference["latency_ms"], reference["energy_mj"])[:k]
        n = len(self.complete)
        out = []
        for g in range(math.ceil(n / self.population)):
            upto = min((g + 1) * self.population, n)
            front = self.front(upto)
            hv = normalised_hypervolume([self._vec(r) for r in front], lo, hi)
            out.append(
                {"generation": g, "hypervolume": hv, "n_complete": upto, "front_size": len(front)}
            )
        return out


def load_records(study: optuna.Study, space: SearchSpace, population: int) -> SearchRecords:
    """Candidates of ``study`` (the space is checked against the stored genes of a complete
    candidate; partial trials are failures and never decoded)."""
    records = SearchRecords.from_study(study, population=population, space=space)
    for r in [r for r in records.records if not r.partial][:1]:
        space.from_params(r.params)  # GenomeError if the study belongs to another space
    return records


def _genome(space: SearchSpace, rec: CandidateRecord) -> MultimodalGenome:
    return space.from_params(rec.params)


def write_candidates(
    path: Path, records: SearchRecords, problem: SearchProblem, strategy: Strategy
) -> Path:
    """``candidates.json``: every trial that received a genome, with its state and objectives."""
    front = {r.trial for r in records.front()}
    rows = []
    for r in records.records:
        ev = r.evaluation
        genome = None if r.partial else _genome(problem.space, r)
        reason = r.fail_reason or r.skipped
        if r.duplicate_of is not None:
            reason = f"duplicate of trial {r.duplicate_of}"
        rows.append(
            {
                "trial": r.trial,
                "state": r.state,
                "generation": records.generation_of(r),
                "key": r.key or (genome.key() if genome is not None else None),
                "arch": (
                    problem.arch_json(genome, ev.genotype if ev else None)
                    if genome is not None
                    else None
                ),
                "val_metric": ev.val_metric if ev else None,
                "latency_ms": ev.latency_ms if ev else None,
                "energy_mj": ev.energy_mj if ev else None,
                "latency_paper_ms": (
                    ev.latency_paper_ms if ev and math.isfinite(ev.latency_paper_ms) else None
                ),
                "energy_paper_mj": (
                    ev.energy_paper_mj if ev and math.isfinite(ev.energy_paper_mj) else None
                ),
                "params": ev.params if ev else None,
                "feasible": r.feasible if ev else None,
                "pareto": r.trial in front,
                "fail_reason": reason or None,
                **(_flags(ev, problem) if ev else {}),
            }
        )
    return atomic_write_json(
        path,
        {
            "strategy": strategy.name,
            "selection_objectives": list(strategy.objectives),
            "objectives": list(records.objectives),
            "energy": energy_info(problem),
            "candidates": rows,
        },
        schema_version=SCHEMA_VERSION,
    )


def energy_info(problem: SearchProblem) -> dict[str, Any]:
    """How the energy figures were obtained (``modelled``: constant power x latency, then no
    objective of its own)."""
    return {
        "source": problem.energy_source,
        "modelled": problem.energy_modelled,
        "objective": not problem.energy_modelled,
    }


def _flags(ev: Evaluation, problem: SearchProblem) -> dict[str, Any]:
    """What a reader must know about a candidate's figures: the modalities its output ignores,
    and the layers whose cost is predicted or missing on the device."""
    return {
        "modalities_used": ev.modalities_used,
        "missing_modalities": ev.missing_modalities(list(problem.space.backbones)),
        "predicted_keys": list(ev.predicted_keys),
        "uncosted_keys": list(ev.uncosted_keys),
    }


def study_points(study: optuna.Study) -> tuple[dict[str, float], dict[str, float]]:
    """The fixed ``(ideal, reference)`` points recorded in the study when it was created."""
    attrs = study.user_attrs
    return dict(attrs["ideal_point"]), dict(attrs["reference_point"])


def write_hypervolume(
    path: Path, records: SearchRecords, study: optuna.Study
) -> tuple[Path, list[dict[str, Any]]]:
    """``hypervolume.json``: the normalised hypervolume of each generation's front."""
    ideal, ref = study_points(study)
    history = records.hypervolume_history(ideal, ref)
    out = atomic_write_json(
        path,
        {
            "reference_point": ref,
            "ideal_point": ideal,
            "normalisation": "each objective mapped linearly ideal->0, reference->1; "
            "hypervolume of the unit box (1.0 = the ideal point dominates everything)",
            "population": records.population,
            "generation_definition": "generation g = the first (g+1) x population candidates to "
            "complete (every strategy alike); its front is their non-dominated feasible set",
            "generations": history,
        },
        schema_version=SCHEMA_VERSION,
    )
    return out, history


def member_seeds(eval_seed: int, n: int) -> list[int]:
    """The evaluation seed first (it rebuilds the searched model), then derived ones."""
    return [eval_seed, *(derive_seed(eval_seed, "test", i) for i in range(1, n))]


def finalize_study(
    cfg: ExperimentConfig,
    study: optuna.Study,
    records: SearchRecords,
    problem: SearchProblem,
    out_dir: Path,
    *,
    progress: ProgressFn = no_progress,
) -> Path:
    """Score each Pareto member once on test and write ``pareto.json`` + ``models/<id>/``.

    A member whose ``models/<id>/score.json`` matches (same config, same genome) is not retrained,
    so an interrupted final stage resumes where it stopped.
    """
    strategy = str(study.user_attrs.get("strategy", cfg.search.strategy))
    chash = search_config_hash(cfg, strategy)
    front = records.front()
    members = []
    for i, r in enumerate(front):
        progress("final: scoring the Pareto set on test", i, len(front))
        assert r.evaluation is not None
        genome = _genome(problem.space, r)
        mid = f"t{r.trial:04d}"
        model_dir = out_dir / "models" / mid
        score_path = model_dir / "score.json"
        cached = None
        if score_path.is_file() and (model_dir / "weights.pt").is_file():
            try:
                cached = read_json(score_path, schema_version=SCHEMA_VERSION, what="member score")
            except HarmonicError:
                cached = None
        if cached and cached.get("config_hash") == chash and cached.get("key") == r.key:
            test, std, arch = cached["test_metric"], cached["test_metric_std"], cached["arch"]
        else:
            seed = (
                r.eval_seed
                if r.eval_seed is not None
                else derive_seed(cfg.seed, "candidate", r.key)
            )
            score = problem.score_test(
                genome,
                r.evaluation,
                seeds=member_seeds(int(seed), cfg.search.test_seeds),
                model_dir=model_dir,
                progress=progress,
            )
            test, std, arch = score.test_metric, score.test_metric_std, score.arch
            atomic_write_json(
                score_path,
                {
                    "config_hash": chash,
                    "key": r.key,
                    "test_metric": test,
                    "test_metric_std": std,
                    "arch": arch,
                },
                schema_version=SCHEMA_VERSION,
            )
        ev = r.evaluation
        members.append(
            {
                "id": mid,
                "trial": r.trial,
                "arch": arch,
                "val_metric": ev.val_metric,
                "test_metric": test,
                "test_metric_std": std,
                "latency_ms": ev.latency_ms,
                "energy_mj": ev.energy_mj,
                "latency_paper_ms": ev.latency_paper_ms
                if math.isfinite(ev.latency_paper_ms)
                else None,
                "energy_paper_mj": ev.energy_paper_mj
                if math.isfinite(ev.energy_paper_mj)
                else None,
                "params": ev.params,
                **_flags(ev, problem),
            }
        )
    progress("final: scoring the Pareto set on test", len(front), len(front))
    ideal, ref = study_points(study)
    return atomic_write_json(
        out_dir / "pareto.json",
        {
            "run": cfg.name,
            "device": cfg.device.name,
            "task": problem.task,
            "metric": problem.metric,
            "strategy": strategy,
            "study": study.study_name,
            "test_seeds": cfg.search.test_seeds,
            "objectives": list(records.objectives),
            "energy": energy_info(problem),
            "reference_point": ref,
            "ideal_point": ideal,
            "members": members,
        },
        schema_version=SCHEMA_VERSION,
    )


# -- the run's index of studies (for `status` and `finalize`) ----------------------------------
def read_search_index(run: Path) -> dict[str, dict[str, str]]:
    """``study name -> {"strategy", "storage" (password redacted), "out_dir"}``."""
    path = Path(run) / "search.json"
    if not path.is_file():
        return {}
    data = read_json(path, schema_version=SCHEMA_VERSION, what="search index")
    return dict(data.get("studies", {}))


def write_search_index(run: Path, study_name: str, strategy: str, storage: str, out: Path) -> Path:
    studies = read_search_index(run)
    try:
        rel = str(out.relative_to(run))
    except ValueError:
        rel = str(out)
    studies[study_name] = {"strategy": strategy, "storage": storage, "out_dir": rel}
    return atomic_write_json(
        Path(run) / "search.json", {"studies": studies}, schema_version=SCHEMA_VERSION
    )
