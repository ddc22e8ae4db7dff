"""The study driver: workers running NSGA-II (or a baseline strategy) on a shared Optuna study.

Each worker loops ``study.optimize(objective, n_trials=1)`` (Optuna's heartbeat and stale-trial
handling included) until the study holds exactly ``cfg.search.budget`` COMPLETE candidates:

1. *Budget slot.* A trial first claims a slot: it may evaluate only while
   ``#COMPLETE + #RUNNING trials with a smaller number < budget``; otherwise it waits (a running
   one may still fail) or, once the budget is met, ends PRUNED without a genome. So several
   workers or machines never overshoot the budget and never leave it short.
2. *Genome.* Every gene is suggested (NSGA-II crossover and mutation act on all of them).
3. *Dedupe.* A genome whose canonical key belongs to a COMPLETE trial, or to a RUNNING trial with a
   smaller number, is not evaluated: the trial ends PRUNED with ``duplicate_of`` and does not count.
4. *Cheap pass.* The LUT lower bound of the cost; if it breaks a hard budget the fusion search is
   skipped and the candidate completes infeasible (constraint > 0, metric 0).
5. *Evaluation* (fusion search + retrain), seeded by ``derive_seed(run seed, key)``; an exception or
   a non-finite objective ends the trial FAIL with ``fail_reason``, and the search goes on.
   Multi-fidelity (``search.fidelity: halving``): the candidate is first evaluated with
   ``search.fidelity_fraction`` of the fusion epochs; only if no member of the current front
   dominates it *at that fidelity* (the front members' own cheap scores) is it evaluated in full,
   else it completes with its cheap score, marked ``fidelity: low`` (never a front member). Every
   trial records ``fidelity`` and ``fusion_epochs``. A killed trial is retried from scratch like
   any other, so resuming loses nothing and ends at exactly the budget.

After the budget, ``search.rescore_seeds`` > 1 re-scores the front on val with more seeds
(:func:`~harmonic_nas.search.results.rescore_front`).
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from harmonic_nas.config import ExperimentConfig, dump_config, save_resolved
from harmonic_nas.errors import CheckpointError, ConfigError, HarmonicError, StageMissingError
from harmonic_nas.search.genome import MultimodalGenome
from harmonic_nas.search.pareto import dominates
from harmonic_nas.search.problem import (
    Evaluation,
    ProblemFactory,
    SearchProblem,
    fidelity_epochs,
    problem_reference,
    resolve_factory,
)
from harmonic_nas.search.results import (
    ATTR_OBJECTIVES,
    EVALUATION_SCALARS,
    FRONT_OBJECTIVES,
    SCHEMA_VERSION,
    SearchRecords,
    finalize_study,
    load_records,
    read_search_index,
    rescore_front,
    write_candidates,
    write_hypervolume,
    write_search_index,
)
from harmonic_nas.search.storage import (
    ATTR_BUDGET,
    ATTR_DUPLICATE,
    ATTR_FAIL,
    ATTR_FIDELITY,
    ATTR_FUSION_EPOCHS,
    ATTR_INTERRUPTED,
    ATTR_KEY,
    ATTR_LOW_FIDELITY,
    ATTR_PROMOTED,
    ATTR_WORKER,
    ATTR_WRITE_OUT,
    StorageError,
    config_identity,
    default_storage_url,
    fail_stale,
    legacy_config_hash,
    open_storage,
    open_study,
    portable_url,
    recover_interrupted,
    redact,
    resolve_url,
    search_config_hash,
    worker_identity,
)
from harmonic_nas.search.strategies import Strategy, get_strategy, make_sampler
from harmonic_nas.utils.io import atomic_write_text, read_json
from harmonic_nas.utils.progress import ProgressFn, no_progress
from harmonic_nas.utils.seeding import derive_seed

logger = logging.getLogger(__name__)

POLL_S = 0.5
PARENT_CHECK_S = 1.0
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
MAX_DUPLICATES_IN_ROW = 2000
_FATAL = (StageMissingError, CheckpointError, ConfigError, StorageError)


class CandidateFailed(Exception):
    """A candidate raised or diverged; its trial is recorded FAIL and the search continues."""


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
    """Where a study's artifacts go: the run directory for the default NSGA-II study,
    ``run/search-<strategy>/`` for another strategy's default study, ``run/studies/<name>/``
    for a study named with ``--study-name``."""
    default = default_study_name(cfg, strategy)
    if study_name is not None and study_name != default:
        return cfg.run_path / "studies" / study_name
    return cfg.run_path if strategy == "nsga2" else cfg.run_path / f"search-{strategy}"


def default_study_name(cfg: ExperimentConfig, strategy: str) -> str:
    base = cfg.search.study_name or cfg.name
    return base if strategy == "nsga2" else f"{base}-{strategy}"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}"[:500]


class _Objective:
    """One candidate, evaluated the pymoo way: the problem fills the objectives and constraints."""

    def __init__(
        self,
        ctx: SearchContext,
        problem: SearchProblem,
        strategy: Strategy,
        storage: RDBStorage,
        progress: ProgressFn,
    ) -> None:
        self.ctx = ctx
        self.cfg = ctx.cfg
        self.problem = problem
        self.space = problem.space
        self.strategy = strategy
        self.storage = storage
        self.progress = progress
        self.budget = ctx.cfg.search.budget
        self.outcome = ""
        self.reason = ""

    # -- budget slot -------------------------------------------------------------------------
    def _claim_slot(self, trial: optuna.Trial) -> bool:
        """Wait until this trial may evaluate (True) or the budget is met (False)."""
        study = trial.study
        while True:
            trials = study.get_trials(
                deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)
            )
            complete = sum(t.state == TrialState.COMPLETE for t in trials)
            if complete >= self.budget:
                return False
            ahead = sum(t.state == TrialState.RUNNING and t.number < trial.number for t in trials)
            if complete + ahead < self.budget:
                return True
            recover_interrupted(study, self.storage)
            fail_stale(study)
            time.sleep(POLL_S)

    def _duplicate_of(self, study: optuna.Study, key: str, number: int) -> int | None:
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)):
            if t.number == number or t.user_attrs.get(ATTR_KEY) != key:
                continue
            if t.state == TrialState.COMPLETE or t.number < number:
                return t.number
        return None

    def _violations(self, latency_ms: float, energy_mj: float) -> dict[str, float]:
        s = self.cfg.search
        out = {}
        if s.latency_budget_ms is not None:
            out["latency_ms"] = latency_ms - s.latency_budget_ms
        if s.energy_budget_mj is not None:
            out["energy_mj"] = energy_mj - s.energy_budget_mj
        return out

    # -- the objective ---------------------------------------------------------------------
    def __call__(self, trial: optuna.Trial) -> tuple[float, ...]:
        self.outcome, self.reason = "failed", ""
        trial.set_user_attr(ATTR_WORKER, worker_identity())
        if not self._claim_slot(trial):
            trial.set_user_attr(ATTR_BUDGET, True)
            self.outcome = "budget"
            raise optuna.TrialPruned("budget reached")
        genome = self.space.suggest(trial)
        key = genome.key()
        trial.set_user_attr(ATTR_KEY, key)
        dup = self._duplicate_of(trial.study, key, trial.number)
        if dup is not None:
            trial.set_user_attr(ATTR_DUPLICATE, dup)
            self.outcome = "duplicate"
            raise optuna.TrialPruned(f"duplicate of trial {dup}")
        try:
            evaluation, skipped = self._evaluate(trial, genome, key)
        except KeyboardInterrupt:
            trial.set_user_attr(ATTR_FAIL, "interrupted: Ctrl-C")
            trial.set_user_attr(ATTR_INTERRUPTED, True)
            raise
        except _FATAL as exc:
            trial.set_user_attr(ATTR_FAIL, _one_line(exc))
            raise
        except Exception as exc:
            self.reason = _one_line(exc)
            trial.set_user_attr(ATTR_FAIL, self.reason)
            logger.warning("candidate %d (%s) failed: %s", trial.number, key, self.reason)
            raise CandidateFailed(self.reason) from exc
        dup = self._duplicate_of(trial.study, key, trial.number)  # a concurrent twin finished
        if dup is not None:
            trial.set_user_attr(ATTR_DUPLICATE, dup)
            self.outcome = "duplicate"
            raise optuna.TrialPruned(f"duplicate of trial {dup} (evaluated concurrently)")
        record = evaluation.to_json()
        for name in EVALUATION_SCALARS:  # top level, once (what optuna-dashboard shows)
            trial.set_user_attr(name, record.pop(name))
        trial.set_user_attr("evaluation", record)  # the rest: genotype, extra
        if skipped:
            trial.set_user_attr("skipped", skipped)
        for name, value in self._violations(evaluation.latency_ms, evaluation.energy_mj).items():
            trial.set_constraint(name, value)
        missing = evaluation.missing_modalities(list(self.cfg.modalities))
        if self.cfg.search.require_all_modalities and missing:
            # a unimodal "multimodal" model: infeasible, never a Pareto member
            trial.set_constraint("modalities", float(len(missing)))
            trial.set_user_attr("skipped", "ignores modality " + ", ".join(missing))
        self.outcome = "complete"
        values = (evaluation.val_metric, evaluation.latency_ms, evaluation.energy_mj)
        return values[: len(self.strategy.directions)]

    def _evaluate(
        self, trial: optuna.Trial, genome: MultimodalGenome, key: str
    ) -> tuple[Evaluation, str]:
        bound = self.problem.lower_bound(genome)  # cheap pass: LUT only
        trial.set_user_attr("lower_bound", [bound.latency_ms, bound.energy_mj])
        broken = {
            k: v for k, v in self._violations(bound.latency_ms, bound.energy_mj).items() if v > 0
        }
        if broken:
            reason = (
                "hard budget broken by the cost lower bound ("
                + ", ".join(f"{k} exceeds by {v:.4g}" for k, v in broken.items())
                + "); fusion search skipped"
            )
            return (
                Evaluation(
                    val_metric=0.0,
                    latency_ms=bound.latency_ms,
                    energy_mj=bound.energy_mj,
                    params=0,
                    extra={"skipped": True},
                ),
                reason,
            )
        seed = derive_seed(self.cfg.seed, "candidate", key)
        trial.set_user_attr("eval_seed", seed)
        s, fc = self.cfg.search, self.cfg.fusion
        full = (fc.epochs, fc.retrain_epochs)
        low = fidelity_epochs(*full, s.fidelity_fraction)
        if s.fidelity == "halving" and low != full:
            cheap = self._run(genome, seed, s.fidelity_fraction)
            trial.set_user_attr(
                ATTR_LOW_FIDELITY,
                {
                    "val_metric": cheap.val_metric,
                    "latency_ms": cheap.latency_ms,
                    "energy_mj": cheap.energy_mj,
                    "fusion_epochs": list(low),
                },
            )
            promoted = self._promote(trial.study, cheap)
            trial.set_user_attr(ATTR_PROMOTED, promoted)
            if not promoted:
                trial.set_user_attr(ATTR_FIDELITY, "low")
                trial.set_user_attr(ATTR_FUSION_EPOCHS, list(low))
                return cheap, ""
        evaluation = self._run(genome, seed, 1.0)
        trial.set_user_attr(ATTR_FIDELITY, "full")
        trial.set_user_attr(ATTR_FUSION_EPOCHS, list(full))
        return evaluation, ""

    def _run(self, genome: MultimodalGenome, seed: int, fidelity: float) -> Evaluation:
        if fidelity < 1.0:
            evaluation = self.problem.evaluate(
                genome, seed=seed, progress=self.progress, fidelity=fidelity
            )
        else:  # problems written before multi-fidelity take no fidelity argument
            evaluation = self.problem.evaluate(genome, seed=seed, progress=self.progress)
        bad = evaluation.non_finite()
        if bad is not None:
            raise FloatingPointError(f"{bad} is not finite (the candidate diverged)")
        return evaluation

    def _promote(self, study: optuna.Study, cheap: Evaluation) -> bool:
        """Whether a cheaply evaluated candidate can still reach the front: feasible at the cheap
        fidelity, and dominated by no current front member's own cheap score (like is compared
        with like: cheap scores are lower than full ones)."""
        if any(v > 0 for v in self._violations(cheap.latency_ms, cheap.energy_mj).values()):
            return False
        if self.cfg.search.require_all_modalities and cheap.missing_modalities(
            list(self.cfg.modalities)
        ):
            return False
        records = SearchRecords.from_study(study, population=self.cfg.search.population)
        k = len(records.objectives)
        mine = (-cheap.val_metric, cheap.latency_ms, cheap.energy_mj)[:k]
        for r in records.front():
            p = r.low_fidelity
            if not isinstance(p, dict):
                continue
            theirs = (-float(p["val_metric"]), float(p["latency_ms"]), float(p["energy_mj"]))
            if dominates(theirs[:k], mine):
                return False
        return True


def _counts(study: optuna.Study) -> dict[str, int]:
    out = {s.name: 0 for s in TrialState}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] += 1
    return out


def report_progress(
    study: optuna.Study, cfg: ExperimentConfig, strategy: Strategy, progress: ProgressFn
) -> None:
    """Three bars: candidates done / budget, generation / generations, current front size."""
    records = SearchRecords.from_study(study, population=cfg.search.population)
    done = records.n_complete
    gens = cfg.search.generations
    progress("search: candidates", done, cfg.search.budget)
    progress("search: generation", min(done // cfg.search.population + 1, gens), gens)
    progress("search: Pareto front size", len(records.front()), max(done, 1))


def _worker_loop(
    ctx: SearchContext,
    problem: SearchProblem,
    progress: ProgressFn,
    storage: RDBStorage | None = None,
) -> None:
    cfg = ctx.cfg
    strategy = get_strategy(ctx.strategy, cfg.search, energy_objective=not problem.energy_modelled)
    if storage is None:
        storage = open_storage(ctx.storage_url, heartbeat_s=cfg.search.heartbeat_s)
    study = optuna.load_study(
        study_name=ctx.study_name, storage=storage, sampler=make_sampler(strategy, cfg.seed)
    )
    objective = _Objective(ctx, problem, strategy, storage, progress)
    max_fail = max(5, cfg.search.population)
    dups = fails = 0
    while _counts(study)["COMPLETE"] < cfg.search.budget:
        try:
            study.optimize(objective, n_trials=1, catch=(CandidateFailed,), gc_after_trial=False)
        except sqlalchemy.exc.SQLAlchemyError as exc:  # disk full, read-only, server gone, ...
            raise _storage_failed(ctx.storage_url, exc) from None
        if objective.outcome == "budget":
            break
        dups = dups + 1 if objective.outcome == "duplicate" else 0
        if dups > MAX_DUPLICATES_IN_ROW:
            raise HarmonicError(
                f"the sampler proposed {dups} already-evaluated genomes in a row: the search space "
                "is nearly exhausted; lower search.population x search.generations"
            )
        if objective.outcome == "failed":
            fails += 1
            if fails >= max_fail:
                raise HarmonicError(
                    f"{fails} candidates failed in a row (last: {objective.reason}); "
                    "fix the cause, then rerun the same command to resume"
                )
        elif objective.outcome == "complete":
            fails = 0
        report_progress(study, cfg, strategy, progress)


def _storage_failed(url: str, exc: BaseException) -> StorageError:
    text = " ".join(str(exc).split()).split("[SQL:")[0].split("(Background on")[0].strip()
    return StorageError(
        f"the study storage {redact(url)} failed during the search "
        f"({exc.__class__.__name__}: {text[:160]}); free disk space or fix the storage, then "
        "rerun the same command to resume (completed candidates are kept)"
    )


def _die_with_parent(parent_pid: int) -> None:
    """Make this worker process end when its parent does (no orphan keeps running the study).

    On Linux the kernel sends SIGKILL when the parent dies (``PR_SET_PDEATHSIG``); everywhere, a
    daemon thread also checks every second that the parent is still ours (the portable fallback,
    and the cover for a parent that died before the prctl call)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no libc / no prctl: the heartbeat below suffices
            logger.debug("prctl(PR_SET_PDEATHSIG) unavailable; relying on the parent heartbeat")
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(PARENT_CHECK_S)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="harmonic-nas-parent-watch", daemon=True).start()


def _worker_entry(ctx: SearchContext, threads: int, parent_pid: int | None = None) -> None:
    """Entry point of a spawned local worker process (its own share of the CPU threads)."""
    if parent_pid is not None:
        _die_with_parent(parent_pid)
    import torch

    torch.set_num_threads(threads)
    optuna.logging.set_verbosity(ctx.optuna_verbosity)
    _worker_loop(ctx, ctx.build_problem(), no_progress)


def _run_workers(
    ctx: SearchContext, workers: int, study: optuna.Study, strategy: Strategy, progress: ProgressFn
) -> None:
    mp = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp) as pool:
        threads = max(1, (os.cpu_count() or 1) // workers)
        futures: list[Future[None]] = [
            pool.submit(_worker_entry, ctx, threads, os.getpid()) for _ in range(workers)
        ]
        while not all(f.done() for f in futures):
            report_progress(study, ctx.cfg, strategy, progress)
            time.sleep(POLL_S)
    report_progress(study, ctx.cfg, strategy, progress)
    errors = [e for e in (f.exception() for f in futures) if e is not None]
    if errors:
        raise errors[0]


def prepare(
    cfg: ExperimentConfig,
    *,
    storage: str | None = None,
    strategy: str | None = None,
    study_name: str | None = None,
    problem: str | ProblemFactory | None = None,
) -> tuple[SearchContext, SearchProblem, optuna.Study, RDBStorage]:
    """Validate, run the cheap pass on the smallest genome, and create or load the study."""
    scfg = cfg.search
    if scfg.population < 2:
        raise ConfigError(
            f"search.population must be at least 2 (NSGA-II needs parents to cross), got {scfg.population}"
        )
    name = strategy or scfg.strategy
    get_strategy(name, scfg)  # an unknown name fails before anything is opened
    ref = problem if problem is not None else problem_reference()
    url = storage or scfg.storage or default_storage_url(cfg)
    study_name = study_name or default_study_name(cfg, name)
    ctx = SearchContext(
        cfg=cfg,
        strategy=name,
        storage_url=url,
        study_name=study_name,
        config_hash=search_config_hash(cfg, name),
        problem=ref,
        optuna_verbosity=optuna.logging.get_verbosity(),
    )
    rdb = open_storage(url, heartbeat_s=scfg.heartbeat_s)
    prob = ctx.build_problem()
    strat = get_strategy(name, scfg, energy_objective=not prob.energy_modelled)
    space = prob.space
    if space.size() < scfg.budget:
        raise ConfigError(
            f"the search space has only {space.size()} distinct candidates but the budget is "
            f"{scfg.budget}; lower search.population x search.generations"
        )
    smallest = prob.lower_bound(space.min_genome())
    for what, low, limit, unit in (
        ("latency", smallest.latency_ms, scfg.latency_budget_ms, "ms"),
        ("energy", smallest.energy_mj, scfg.energy_budget_mj, "mJ"),
    ):
        if limit is not None and low > limit:
            raise ConfigError(
                f"no architecture can meet the {what} budget: the smallest candidate needs at "
                f"least {low:.4g} {unit} > {limit:g} {unit} on device '{cfg.device.name}'; "
                f"raise search.{what}_budget_{unit.lower()} or use smaller backbones"
            )
    ideal, refpt = prob.reference_costs()
    attrs: dict[str, Any] = {
        "strategy": name,
        "budget": scfg.budget,
        "population": scfg.population,
        "seed": cfg.seed,
        "metric": prob.metric,
        "fidelity": fidelity_info(cfg),
        ATTR_OBJECTIVES: list(FRONT_OBJECTIVES[:2] if prob.energy_modelled else FRONT_OBJECTIVES),
        "ideal_point": {
            "val_metric": 1.0,
            "latency_ms": ideal.latency_ms,
            "energy_mj": ideal.energy_mj,
        },
        "reference_point": {
            "val_metric": 0.0,
            "latency_ms": refpt.latency_ms,
            "energy_mj": refpt.energy_mj,
        },
    }
    try:
        study = open_study(
            rdb,
            study_name=study_name,
            directions=list(strat.directions),
            sampler=make_sampler(strat, cfg.seed),
            config_hash=ctx.config_hash,
            attrs=attrs,
            identity=config_identity(cfg, name),
            metric_names=list(strat.objectives),
            legacy_hash=legacy_config_hash(cfg, name),
        )
    except sqlalchemy.exc.SQLAlchemyError as exc:  # disk full, read-only, server gone, ...
        raise _storage_failed(url, exc) from None
    return ctx, prob, study, rdb


def fidelity_info(cfg: ExperimentConfig) -> dict[str, Any]:
    """How candidates are evaluated: ``mode`` (full | halving), the full and cheap epochs."""
    s, fc = cfg.search, cfg.fusion
    full = [fc.epochs, fc.retrain_epochs]
    out: dict[str, Any] = {"mode": s.fidelity, "fusion_epochs": full}
    if s.fidelity != "full":
        out["fraction"] = s.fidelity_fraction
        out["low_fusion_epochs"] = list(
            fidelity_epochs(fc.epochs, fc.retrain_epochs, s.fidelity_fraction)
        )
    return out


def _best_test(pareto: Path | None, trial: int | None) -> float | None:
    """The test score of ``trial`` in a just-written ``pareto.json`` (None without one)."""
    if pareto is None or trial is None:
        return None
    data = read_json(pareto, schema_version=SCHEMA_VERSION, what="Pareto set")
    for m in data.get("members", []):
        if m.get("trial") == trial:
            return float(m["test_metric"])
    return None


@contextmanager
def _write_out(study: optuna.Study, n_complete: int) -> Iterator[Callable[..., None]]:
    """Record in the study whether the write-out stage (candidates, hypervolume, Pareto set)
    finished for ``n_complete`` candidates, so that ``status`` never calls a study whose
    results were not written "finished"."""
    state: dict[str, Any] = {"n_complete": n_complete, "state": "writing", "pareto": False}

    def done(*, pareto: bool) -> None:
        state.update(state="done", pareto=pareto)

    try:
        yield done
    except BaseException as exc:
        state.update(state="failed", error=_one_line(exc))
        raise
    finally:
        try:
            if state["state"] == "done" and not state["pareto"]:
                previous = study.user_attrs.get(ATTR_WRITE_OUT) or {}
                if previous.get("n_complete") == n_complete and previous.get("state") == "done":
                    state["pareto"] = bool(previous.get("pareto"))
            study.set_user_attr(ATTR_WRITE_OUT, state)
        except Exception as exc:  # the storage itself may be what failed (disk full)
            logger.warning("could not record the write-out state in the study: %s", exc)


def run_search(
    cfg: ExperimentConfig,
    *,
    storage: str | None = None,
    workers: int | None = None,
    strategy: str | None = None,
    study_name: str | None = None,
    problem: str | ProblemFactory | None = None,
    finalize: bool = True,
    progress: ProgressFn = no_progress,
) -> SearchSummary:
    """Run (or resume) the search until ``cfg.search.budget`` candidates are COMPLETE, then write
    ``candidates.json``, ``hypervolume.json`` and (``finalize``) ``pareto.json`` + ``models/``.

    ``problem`` is a factory or a ``"module:function"`` reference (default: the real evaluator, or
    ``$HARMONIC_NAS_SEARCH_PROBLEM``). ``workers`` local processes share the study; other machines
    join by running the same command with the same ``storage`` URL.
    """
    n_workers = workers if workers is not None else cfg.search.workers
    if n_workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {n_workers}")
    ctx, prob, study, rdb = prepare(
        cfg, storage=storage, strategy=strategy, study_name=study_name, problem=problem
    )
    strat = get_strategy(ctx.strategy, cfg.search, energy_objective=not prob.energy_modelled)
    out = output_dir(cfg, ctx.strategy, ctx.study_name)
    if out == cfg.run_path or not (cfg.run_path / "config.yaml").is_file():
        save_resolved(cfg)
    if out != cfg.run_path:  # another strategy / study: its config next to its results
        atomic_write_text(out / "config.yaml", dump_config(cfg))
    write_search_index(
        cfg.run_path, ctx.study_name, ctx.strategy, portable_url(ctx.storage_url, cfg.run_path), out
    )
    recover_interrupted(study, rdb)
    fail_stale(study)
    report_progress(study, cfg, strat, progress)
    if n_workers == 1:
        _worker_loop(ctx, prob, progress, rdb)
    else:
        _run_workers(ctx, n_workers, study, strat, progress)
    records = load_records(study, prob.space, cfg.search.population)
    pareto_path = None
    with _write_out(study, records.n_complete) as done:
        if records.n_complete >= cfg.search.budget:
            records = rescore_front(cfg, study, prob, progress=progress)
        cand_path = write_candidates(out / "candidates.json", records, prob, strat)
        hv_path, history = write_hypervolume(out / "hypervolume.json", records, study)
        if finalize and records.n_complete >= cfg.search.budget:
            pareto_path = finalize_study(cfg, study, records, prob, out, progress=progress)
        done(pareto=pareto_path is not None)
    best = records.best()
    return SearchSummary(
        run=cfg.run_path,
        out_dir=out,
        strategy=ctx.strategy,
        study_name=ctx.study_name,
        storage=redact(ctx.storage_url),
        budget=cfg.search.budget,
        n_complete=records.n_complete,
        n_failed=records.n_failed,
        n_duplicates=records.n_duplicates,
        front_size=len(records.front()),
        hypervolume=history[-1]["hypervolume"] if history else 0.0,
        candidates_path=cand_path,
        hypervolume_path=hv_path,
        pareto_path=pareto_path,
        n_low_fidelity=records.n_low_fidelity,
        best_trial=best.trial if best is not None else None,
        best_val_metric=(
            float(best.evaluation.val_metric) if best and best.evaluation is not None else None
        ),
        best_test_metric=_best_test(pareto_path, best.trial if best is not None else None),
    )


def finalize(
    cfg: ExperimentConfig,
    *,
    storage: str | None = None,
    strategy: str | None = None,
    study_name: str | None = None,
    problem: str | ProblemFactory | None = None,
    progress: ProgressFn = no_progress,
) -> Path:
    """Score the Pareto set of a finished study on test and write ``pareto.json`` + ``models/``."""
    name = strategy or cfg.search.strategy
    study_name = study_name or default_study_name(cfg, name)
    stored = read_search_index(cfg.run_path).get(study_name, {}).get("storage")
    if stored:
        stored = resolve_url(stored, cfg.run_path)
    ctx, prob, study, _ = prepare(
        cfg,
        storage=storage or (stored if stored and "***" not in stored else None),
        strategy=name,
        study_name=study_name,
        problem=problem,
    )
    records = load_records(study, prob.space, cfg.search.population)
    if records.n_complete < cfg.search.budget:
        raise StageMissingError(
            f"study '{ctx.study_name}' has {records.n_complete}/{cfg.search.budget} candidates; "
            "finish it with `harmonic-nas search CONFIG` first"
        )
    out = output_dir(cfg, name, ctx.study_name)
    with _write_out(study, records.n_complete) as done:
        records = rescore_front(cfg, study, prob, progress=progress)
        path = finalize_study(cfg, study, records, prob, out, progress=progress)
        done(pareto=True)
    return path
