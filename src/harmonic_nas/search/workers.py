"""Worker processes of a search: the per-worker optimize loop, progress, and dying with the parent."""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import optuna
import sqlalchemy
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from harmonic_nas.config import ExperimentConfig
from harmonic_nas.errors import HarmonicError
from harmonic_nas.search.context import POLL_S, SearchContext
from harmonic_nas.search.objective import CandidateFailed, _Objective, quiet_failed_trials
from harmonic_nas.search.problem import (
    SearchProblem,
)
from harmonic_nas.search.records import SearchRecords
from harmonic_nas.search.storage import (
    StorageError,
    open_storage,
    redact,
)
from harmonic_nas.search.strategies import Strategy, get_strategy, make_sampler
from harmonic_nas.utils.credentials import scrub
from harmonic_nas.utils.processes import die_with_parent, worker_start_error
from harmonic_nas.utils.progress import ProgressFn, no_progress
from harmonic_nas.utils.threads import policy_threads

logger = logging.getLogger(__name__)


MAX_DUPLICATES_IN_ROW = 2000


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
    quiet_failed_trials()
    strategy = get_strategy(ctx.strategy, cfg.search, energy_objective=not problem.energy_modelled)
    if storage is None:
        storage = open_storage(ctx.storage_url, heartbeat_s=cfg.search.heartbeat_s)
    study = optuna.load_study(
        study_name=ctx.study_name,
        storage=storage,
        sampler=make_sampler(strategy, cfg.seed, problem),
    )
    objective = _Objective(ctx, problem, strategy, storage, progress)
    max_fail = max(5, cfg.search.population)
    dups = fails = 0
    while _counts(study)["COMPLETE"] < cfg.search.budget:
        try:
            study.optimize(objective, n_trials=1, catch=(CandidateFailed,), gc_after_trial=False)
        except sqlalchemy.exc.SQLAlchemyError as exc:  # disk full, read-only, server gone, ...
            raise _storage_failed(ctx.storage_url, exc) from None
        except ValueError as exc:
            # Two workers can pop the same enqueued (ladder) trial from SQLite, which has no row
            # locks (optuna#4621); the one that tells second finds it finished. The genome's
            # result is the other worker's (evaluation is deterministic per genome): go on.
            if not str(exc).startswith("Cannot tell a "):
                raise
            logger.debug("another worker finished this trial first (%s); going on", exc)
            continue
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
    text = scrub(" ".join(str(exc).split()), url).split("[SQL:")[0]
    text = text.split("(Background on")[0].strip()
    return StorageError(
        f"the study storage {redact(url)} failed during the search "
        f"({exc.__class__.__name__}: {text[:160]}); free disk space or fix the storage, then "
        "rerun the same command to resume (completed candidates are kept)"
    )


def _worker_entry(ctx: SearchContext, threads: int, parent_pid: int | None = None) -> None:
    """Entry point of a spawned local worker process (torch on the thread policy's count: the
    search scales out with processes, :mod:`harmonic_nas.utils.threads`)."""
    if parent_pid is not None:
        die_with_parent(parent_pid)
    import torch

    torch.set_num_threads(threads)
    optuna.logging.set_verbosity(ctx.optuna_verbosity)
    _worker_loop(ctx, ctx.build_problem(), no_progress)


def _run_workers(
    ctx: SearchContext, workers: int, study: optuna.Study, strategy: Strategy, progress: ProgressFn
) -> None:
    mp = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp) as pool:
        threads = policy_threads()
        futures: list[Future[None]] = [
            pool.submit(_worker_entry, ctx, threads, os.getpid()) for _ in range(workers)
        ]
        while not all(f.done() for f in futures):
            report_progress(study, ctx.cfg, strategy, progress)
            time.sleep(POLL_S)
    report_progress(study, ctx.cfg, strategy, progress)
    errors = [e for e in (f.exception() for f in futures) if e is not None]
    if errors:
        if isinstance(errors[0], BrokenProcessPool):
            raise worker_start_error("search workers") from None
        raise errors[0]
