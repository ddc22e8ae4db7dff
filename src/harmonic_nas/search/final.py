"""The final stage of a search: re-scoring the front, then writing ``candidates.json``,
``hypervolume.json``, ``pareto.json`` (:class:`~harmonic_nas.search.pareto_record.ParetoRecord`),
``models/<id>/{arch.json, weights.pt}`` and ``search.json`` (which studies the run holds, where)."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

from harmonic_nas.errors import (
    CheckpointError,
    ConfigError,
    HarmonicError,
    LUTError,
    StageMissingError,
)
from harmonic_nas.search.attrs import (
    ATTR_RESCORE_SEEDS,
    RESCORE_PREFIX,
)
from harmonic_nas.search.identity import search_config_hash
from harmonic_nas.search.problem import Evaluation, SearchProblem
from harmonic_nas.search.storage import StorageError
from harmonic_nas.utils.io import atomic_write_json, read_json
from harmonic_nas.utils.progress import ProgressFn, no_progress
from harmonic_nas.utils.seeding import derive_seed

if TYPE_CHECKING:
    from harmonic_nas.config import ExperimentConfig
    from harmonic_nas.search.strategies import Strategy
from harmonic_nas.search.attrs import ATTR_STRATEGY
from harmonic_nas.search.pareto_record import PARETO_FILE, ParetoBest, ParetoMember, ParetoRecord
from harmonic_nas.search.recommend import recommend
from harmonic_nas.search.records import (
    SCHEMA_VERSION,
    CandidateRecord,
    SearchRecords,
    _genome,
    load_records,
)

logger = logging.getLogger(__name__)


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
    strategy = str(study.user_attrs.get(ATTR_STRATEGY, cfg.search.strategy))
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
            per_label = cached.get("test_per_label")
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
            per_label = score.test_per_label
            atomic_write_json(
                score_path,
                {
                    "config_hash": chash,
                    "key": r.key,
                    "test_metric": test,
                    "test_metric_std": std,
                    "arch": arch,
                    "test_per_label": per_label,
                },
                schema_version=SCHEMA_VERSION,
            )
        ev = r.evaluation
        members.append(
            ParetoMember.from_json(
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
                    "test_per_label": per_label,
                    **r.fidelity_fields(),
                    **r.seed_fields(),
                    **_flags(ev, problem),
                }
            )
        )
    progress("final: scoring the Pareto set on test", len(front), len(front))
    best = records.best()
    chosen = next((m for m in members if best is not None and m.trial == best.trial), None)
    ideal, ref = study_points(study)
    size = getattr(problem, "val_size", None)
    val_size = size if isinstance(size, int) and size > 0 else None
    record = ParetoRecord(
        run=cfg.name,
        device=cfg.device.name,
        task=problem.task,
        metric=problem.metric,
        strategy=strategy,
        study=study.study_name,
        test_seeds=cfg.search.test_seeds,
        rescore_seeds=cfg.search.rescore_seeds,
        objectives=list(records.objectives),
        energy=energy_info(problem),
        reference_point=ref,
        ideal_point=ideal,
        best=None if chosen is None else ParetoBest.of(chosen),
        members=members,
        val_size=val_size,
        recommended=recommend(
            members,
            n_val=val_size,
            latency_budget_ms=cfg.search.latency_budget_ms,
            energy_budget_mj=cfg.search.energy_budget_mj,
        ),
    )
    return record.write(out_dir / PARETO_FILE)


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
