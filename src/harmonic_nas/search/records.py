"""Reading a study back into typed records: one :class:`CandidateRecord` per trial, the whole
study as :class:`SearchRecords` (the Pareto-set file is :mod:`.pareto_record`)."""

from __future__ import annotations

import datetime as _dt
import logging
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import optuna
from optuna.samplers import NSGAIISampler
from optuna.trial import FrozenTrial, TrialState

from harmonic_nas.search.attrs import (
    ATTR_BUDGET,
    ATTR_DUPLICATE,
    ATTR_FAIL,
    ATTR_FIDELITY,
    ATTR_FUSION_EPOCHS,
    ATTR_KEY,
    ATTR_LOW_FIDELITY,
    ATTR_RESCORE_SEEDS,
    RESCORE_PREFIX,
)
from harmonic_nas.search.genome import MultimodalGenome, SearchSpace
from harmonic_nas.search.pareto import non_dominated, normalised_hypervolume
from harmonic_nas.search.problem import Evaluation

if TYPE_CHECKING:
    pass
from harmonic_nas.search.attrs import (
    ATTR_EVAL_SEED,
    ATTR_EVALUATION,
    ATTR_OBJECTIVES,
    ATTR_SKIPPED,
    EVALUATION_SCALARS,
    FIDELITY_LOW,
    FRONT_OBJECTIVES,
)

logger = logging.getLogger(__name__)


SCHEMA_VERSION = 1


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
    fidelity: str | None = None
    """``full`` or ``low`` (multi-fidelity: not promoted); None when not evaluated"""
    fusion_epochs: tuple[int, int] | None = None
    """(fusion search, retraining) epochs of the evaluation the figures come from"""
    low_fidelity: dict[str, Any] | None = None
    """multi-fidelity: the cheap evaluation (val_metric, latency_ms, energy_mj, fusion_epochs)"""
    val_metrics: tuple[float, ...] = ()
    """noise-aware front: the val metric of each seed (the search's own first), when >= 2;
    ``evaluation.val_metric`` is then their mean"""

    @property
    def scored(self) -> bool:
        """COMPLETE, evaluated at full fidelity (not skipped by the cheap pass, not left at the
        cheap fidelity) and within the hard budgets: what the front is made of."""
        return (
            self.state == "COMPLETE"
            and self.evaluation is not None
            and self.feasible
            and self.fidelity != FIDELITY_LOW
        )

    @property
    def val_seeds(self) -> int:
        """How many seeds the val metric is the mean of."""
        return max(1, len(self.val_metrics))

    @property
    def val_metric_std(self) -> float | None:
        """Standard deviation (population) of the val metric over its seeds; None for one seed."""
        return _std(self.val_metrics) if len(self.val_metrics) >= 2 else None

    def seed_fields(self) -> dict[str, Any]:
        """``val_seeds`` and ``val_metric_std`` where >= 2 seeds exist, else nothing."""
        if len(self.val_metrics) < 2:
            return {}
        return {
            "val_seeds": len(self.val_metrics),
            "val_metric_std": self.val_metric_std,
            "val_metric_seeds": list(self.val_metrics),
        }

    def fidelity_fields(self) -> dict[str, Any]:
        """``fidelity`` and ``fusion_epochs`` (plus the cheap score under multi-fidelity)."""
        out: dict[str, Any] = {
            "fidelity": self.fidelity,
            "fusion_epochs": list(self.fusion_epochs) if self.fusion_epochs else None,
        }
        if self.low_fidelity is not None:
            out["low_fidelity"] = self.low_fidelity
        return out

    def minimised(self, n_objectives: int = 3) -> tuple[float, ...]:
        """Objectives as a minimisation vector ``(-val_metric, latency_ms, energy_mj)``, the
        first ``n_objectives`` of it (2: energy is modelled from latency, no objective)."""
        assert self.evaluation is not None
        ev = self.evaluation
        return (-float(ev.val_metric), float(ev.latency_ms), float(ev.energy_mj))[:n_objectives]


def _std(values: tuple[float, ...] | list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def _evaluation(t: FrozenTrial) -> Evaluation | None:
    """The evaluation of a trial: scalars at the top level, the rest under ``evaluation``
    (studies written before the attributes were compacted hold everything under it)."""
    ev = t.user_attrs.get(ATTR_EVALUATION)
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


def _seed_values(entry: Any, key: str, n_seeds: int) -> tuple[float, ...]:
    """The first ``n_seeds`` re-scored val metrics of a member (empty unless >= 2)."""
    if n_seeds < 2 or not isinstance(entry, dict) or entry.get("key") != key:
        return ()
    values = tuple(float(v) for v in entry.get("val_metrics", [])[:n_seeds])
    return values if len(values) >= 2 else ()


def _record(
    t: FrozenTrial,
    genes: frozenset[str] | None = None,
    study_attrs: dict[str, Any] | None = None,
) -> CandidateRecord | None:
    if t.state == TrialState.WAITING or not t.params or t.user_attrs.get(ATTR_BUDGET):
        return None
    partial = t.state != TrialState.COMPLETE and is_partial(t, genes)
    evaluation = _evaluation(t)
    attrs = study_attrs or {}
    key = str(t.user_attrs.get(ATTR_KEY, ""))
    values = _seed_values(
        attrs.get(f"{RESCORE_PREFIX}{t.number}"), key, int(attrs.get(ATTR_RESCORE_SEEDS, 1))
    )
    if evaluation is not None and values:
        evaluation = replace(evaluation, val_metric=sum(values) / len(values))
    epochs = t.user_attrs.get(ATTR_FUSION_EPOCHS)
    fidelity = t.user_attrs.get(ATTR_FIDELITY)
    skipped = str(t.user_attrs.get(ATTR_SKIPPED, ""))
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
        key=key,
        params=dict(t.params),
        evaluation=evaluation if t.state == TrialState.COMPLETE else None,
        feasible=feasible,
        skipped=skipped,
        fail_reason=fail,
        duplicate_of=int(dup) if dup is not None else None,
        eval_seed=t.user_attrs.get(ATTR_EVAL_SEED),
        completed_at=t.datetime_complete,
        partial=partial,
        fidelity=str(fidelity) if fidelity is not None else None,
        fusion_epochs=(int(epochs[0]), int(epochs[1])) if isinstance(epochs, list) else None,
        low_fidelity=t.user_attrs.get(ATTR_LOW_FIDELITY),
        val_metrics=values,
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
        attrs = study.user_attrs
        recs = [
            r
            for t in study.get_trials(deepcopy=False)
            if (r := _record(t, genes, attrs)) is not None
        ]
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

    @property
    def n_low_fidelity(self) -> int:
        """COMPLETE candidates left at the cheap fidelity (multi-fidelity, not promoted)."""
        return sum(r.state == "COMPLETE" and r.fidelity == FIDELITY_LOW for r in self.records)

    def best(self) -> CandidateRecord | None:
        """The val-best member of the front (ties: lower latency, then earlier trial)."""
        return best_by_val(self.front())

    def front(self, upto: int | None = None) -> list[CandidateRecord]:
        """Non-dominated feasible full-fidelity candidates among the first ``upto`` completed
        (all if None), on the seed means where the front was re-scored."""
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


def best_by_val(members: list[CandidateRecord]) -> CandidateRecord | None:
    """The member with the highest val metric (ties: lower latency, then earlier trial): every
    "best" is chosen on val, never on test."""
    pool = [r for r in members if r.evaluation is not None]
    if not pool:
        return None

    def rank(r: CandidateRecord) -> tuple[float, float, int]:
        assert r.evaluation is not None
        return (float(r.evaluation.val_metric), -float(r.evaluation.latency_ms), -r.trial)

    return max(pool, key=rank)


def load_records(study: optuna.Study, space: SearchSpace, population: int) -> SearchRecords:
    """Candidates of ``study`` (the space is checked against the stored genes of a complete
    candidate; partial trials are failures and never decoded)."""
    records = SearchRecords.from_study(study, population=population, space=space)
    for r in [r for r in records.records if not r.partial][:1]:
        space.from_params(r.params)  # GenomeError if the study belongs to another space
    return records


def _genome(space: SearchSpace, rec: CandidateRecord) -> MultimodalGenome:
    return space.from_params(rec.params)
