"""Reading a study back: candidates, the Pareto set, hypervolume history, and the final stage.

Artifacts (schemas in CONTRACT.md): ``candidates.json``, ``hypervolume.json``, ``pareto.json``,
``models/<id>/{arch.json, weights.pt}`` and ``search.json`` (which studies the run holds, where).
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.samplers import NSGAIISampler
from optuna.trial import FrozenTrial, TrialState

from harmonic_nas.errors import (
    CheckpointError,
    ConfigError,
    HarmonicError,
    LUTError,
    StageMissingError,
)
from harmonic_nas.search.genome import MultimodalGenome, SearchSpace
from harmonic_nas.search.pareto import non_dominated, normalised_hypervolume
from harmonic_nas.search.problem import Evaluation, SearchProblem
from harmonic_nas.search.storage import (
    ATTR_BUDGET,
    ATTR_DUPLICATE,
    ATTR_FAIL,
    ATTR_FIDELITY,
    ATTR_FUSION_EPOCHS,
    ATTR_KEY,
    ATTR_LOW_FIDELITY,
    ATTR_RESCORE_SEEDS,
    RESCORE_PREFIX,
    StorageError,
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
            and self.fidelity != "low"
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
        key=key,
        params=dict(t.params),
        evaluation=evaluation if t.state == TrialState.COMPLETE else None,
        feasible=feasible,
        skipped=skipped,
        fail_reason=fail,
        duplicate_of=int(dup) if dup is not None else None,
        eval_seed=t.user_attrs.get("eval_seed"),
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
        return sum(r.state == "COMPLETE" and r.fidelity == "low" for r in self.records)

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
                **r.fidelity_fields(),
                **r.seed_fields(),
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
            "reference_definition": "val metric 0; latency and energy a margin above an upper "
            "bound of every candidate of the search space with any fusion genotype (every costed "
            "layer), from the search space and the device table only: fixed when the study is "
            "created, the same for every strategy and seed of one setup",
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


def rescore_seeds_of(eval_seed: int, n: int) -> list[int]:
    """The seeds of a re-scored member: the evaluation seed (the search's own score), then
    seeds derived for re-scoring."""
    return [eval_seed, *(derive_seed(eval_seed, "rescore", i) for i in range(1, n))]


_FATAL = (StageMissingError, CheckpointError, ConfigError, StorageError, LUTError)


def rescore_front(
    cfg: ExperimentConfig,
    study: optuna.Study,
    problem: SearchProblem,
    *,
    progress: ProgressFn = no_progress,
) -> SearchRecords:
    """The noise-aware front (``search.rescore_seeds`` > 1): re-evaluate each Pareto member on
    val with derived seeds (``problem.evaluate``, full fidelity) until it has ``rescore_seeds``
    scores; its val metric becomes their mean (std recorded) and the front is recomputed on the
    means, repeated until every member of the new front is re-scored. Costs, genotype and the
    model stay the search's own (first seed). Each score is stored in the study as soon as it
    exists (study attribute ``rescore:<trial>``), so an interrupted stage resumes.

    Returns the records with the means applied (the plain records when re-scoring is off)."""
    n = int(cfg.search.rescore_seeds)
    if int(study.user_attrs.get(ATTR_RESCORE_SEEDS, 1)) != n:
        study.set_user_attr(ATTR_RESCORE_SEEDS, n)
    population = cfg.search.population
    records = load_records(study, problem.space, population)
    if n < 2:
        return records
    given_up: set[int] = set()
    while True:
        todo = [r for r in records.front() if r.val_seeds < n and r.trial not in given_up]
        if not todo:
            return records
        for i, r in enumerate(todo):
            progress("final: re-scoring the Pareto set on val", i, len(todo))
            if not _rescore_member(cfg, study, problem, r, n, progress):
                given_up.add(r.trial)
        progress("final: re-scoring the Pareto set on val", len(todo), len(todo))
        records = load_records(study, problem.space, population)


def _rescore_member(
    cfg: ExperimentConfig,
    study: optuna.Study,
    problem: SearchProblem,
    rec: CandidateRecord,
    n: int,
    progress: ProgressFn,
) -> bool:
    """Bring one member to ``n`` val scores; False (logged) when an evaluation fails."""
    assert rec.evaluation is not None
    genome = _genome(problem.space, rec)
    eval_seed = (
        rec.eval_seed if rec.eval_seed is not None else derive_seed(cfg.seed, "candidate", rec.key)
    )
    seeds = rescore_seeds_of(int(eval_seed), n)
    attr = f"{RESCORE_PREFIX}{rec.trial}"
    stored = study.user_attrs.get(attr)
    values: list[float] = (
        [float(v) for v in stored["val_metrics"]]
        if isinstance(stored, dict) and stored.get("key") == rec.key and stored.get("val_metrics")
        else [float(rec.evaluation.val_metric)]
    )
    while len(values) < n:
        seed = seeds[len(values)]
        try:
            ev = problem.evaluate(genome, seed=seed, progress=progress)
            bad = ev.non_finite()
            if bad is not None:
                raise FloatingPointError(f"{bad} is not finite (the candidate diverged)")
        except _FATAL:
            raise
        except Exception as exc:
            logger.warning(
                "re-scoring trial %d with seed %d failed (%s: %s); its val metric stays the "
                "mean of %d seed(s)",
                rec.trial,
                seed,
                exc.__class__.__name__,
                exc,
                len(values),
            )
            return False
        values.append(float(ev.val_metric))
        study.set_user_attr(
            attr, {"key": rec.key, "seeds": seeds[: len(values)], "val_metrics": values}
        )
    return True


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
                **r.fidelity_fields(),
                **r.seed_fields(),
                **_flags(ev, problem),
            }
        )
    progress("final: scoring the Pareto set on test", len(front), len(front))
    best = records.best()
    chosen = next((m for m in members if best is not None and m["trial"] == best.trial), None)
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
            "rescore_seeds": cfg.search.rescore_seeds,
            "objectives": list(records.objectives),
            "energy": energy_info(problem),
            "reference_point": ref,
            "ideal_point": ideal,
            "best": (
                {
                    "id": chosen["id"],
                    "trial": chosen["trial"],
                    "chosen_by": "val_metric",
                    "val_metric": chosen["val_metric"],
                    "test_metric": chosen["test_metric"],
                }
                if chosen is not None
                else None
            ),
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
