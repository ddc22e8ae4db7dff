"""The study driver: workers running NSGA-II (or a baseline strategy) on a shared Optuna study.

Each worker loops ``study.optimize(objective, n_trials=1)`` (Optuna's heartbeat and stale-trial
handling included) until the study holds exactly ``cfg.search.budget`` COMPLETE candidates:

1. *Budget slot.* A trial first claims a slot: it may evaluate only while
   ``#COMPLETE + #RUNNING trials with a smaller number < budget``; otherwise it waits (a running
   one may still fail) or, once the budget is met, ends PRUNED without a genome. So several
   workers or machines never overshoot the budget and never leave it short.
2. *Genome.* Every gene is suggested (NSGA-II crossover and mutation act on all of them); a new
   NSGA-II study first gets a ladder of genomes from the smallest to the largest
   (``search.initial``, :mod:`~harmonic_nas.search.initial`).
3. *Dedupe.* A genome whose canonical key belongs to a COMPLETE trial, or to a RUNNING trial with a
   smaller number, is not evaluated: the trial ends PRUNED with ``duplicate_of`` and does not count.
4. *Cheap pass.* The LUT lower bound of the cost; if it breaks a hard budget the fusion search is
   skipped and the candidate completes infeasible (constraint > 0, metric 0).
5. *Evaluation* (fusion search + retrain), seeded by ``derive_seed(run seed, key)``; an exception or
   a non-finite objective ends the trial FAIL with ``fail_reason``, and the search goes on.
   Multi-fidelity (``search.fidelity: halving``): the candidate is first evaluated with
   ``search.fidelity_fraction`` of the fusion epochs; only if no feasible candidate's cheap score
   dominates it *at that fidelity* (it is on the cheap-fidelity front) is it evaluated in full,
   else it completes with its cheap score, marked ``fidelity: low`` (never a front member). Every
   trial records ``fidelity`` and ``fusion_epochs``. ``search.fidelity: screen`` makes the cheap
   evaluation a screen without any fusion training (the subnets' own classifiers, logits
   averaged; cost = the LUT lower bound), as the reference screened backbones before fusing.
   A killed trial is retried from scratch like any other, so resuming loses nothing and ends at
   exactly the budget.

After the budget, ``search.rescore_seeds`` > 1 re-scores the front on val with more seeds
(:func:`~harmonic_nas.search.final.rescore_front`).
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.storages import RDBStorage

from harmonic_nas.config import ExperimentConfig, dump_config, save_resolved
from harmonic_nas.errors import ConfigError, StageMissingError
from harmonic_nas.search.attrs import (
    ATTR_OBJECTIVES,
    ATTR_WRITE_OUT,
    FRONT_OBJECTIVES,
)
from harmonic_nas.search.context import SearchContext, SearchSummary, default_study_name, output_dir
from harmonic_nas.search.final import (
    finalize_study,
    read_search_index,
    rescore_front,
    write_candidates,
    write_hypervolume,
    write_search_index,
)
from harmonic_nas.search.identity import config_identity, legacy_config_hash, search_config_hash
from harmonic_nas.search.initial import seed_initial_population
from harmonic_nas.search.objective import _one_line, optuna_log_level
from harmonic_nas.search.pareto_record import ParetoRecord
from harmonic_nas.search.problem import (
    DEFAULT_PROBLEM,
    PROBLEM_ATTR,
    ProblemFactory,
    SearchProblem,
    cheap_fidelity,
    check_study_problem,
    fidelity_epochs,
    problem_name,
)
from harmonic_nas.search.records import load_records
from harmonic_nas.search.storage import (
    NotAStudyError,
    check_study_identity,
    default_storage_url,
    fail_stale,
    open_storage,
    open_study,
    portable_url,
    recover_interrupted,
    redact,
    resolve_url,
)
from harmonic_nas.search.strategies import get_strategy, make_sampler
from harmonic_nas.search.workers import _run_workers, _storage_failed, _worker_loop, report_progress
from harmonic_nas.utils.credentials import with_password
from harmonic_nas.utils.io import atomic_write_text
from harmonic_nas.utils.names import check_name
from harmonic_nas.utils.progress import ProgressFn, no_progress
from harmonic_nas.utils.threads import thread_policy

logger = logging.getLogger(__name__)


def check_study_config(
    cfg: ExperimentConfig,
    *,
    storage: str | None = None,
    strategy: str | None = None,
    study_name: str | None = None,
) -> dict[str, Any] | None:
    """Decide before any work: refuse (:class:`StorageError`, nothing written) when the study this
    search would resume was made with another config. The storage is opened read-only: a study
    that does not exist yet is not created. Returns the existing study's user attributes (None
    when there is no such study yet), for the checks that need the problem."""
    name = strategy or cfg.search.strategy
    get_strategy(name, cfg.search)  # an unknown name fails before anything is opened
    if study_name is not None:
        check_name(study_name, "study name")  # it names the folder studies/<study name>/
    url = with_password(
        storage or cfg.search.storage or default_storage_url(cfg), cfg.search.storage_password_env
    )
    if url.lower().startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path in ("", ":memory:", url) or not Path(path).expanduser().is_file():
            return None  # no study to resume (or a bad URL, which prepare reports)
    try:
        rdb = open_storage(url, heartbeat_s=cfg.search.heartbeat_s, read_only=True)
    except NotAStudyError as exc:
        if exc.empty or exc.partial or not url.lower().startswith("sqlite"):
            # an empty database (a new PostgreSQL one), or one another search is creating the
            # tables of this instant: the search creates (or completes) the study
            return None
        raise  # a foreign SQLite database: Optuna's tables are never added to it
    try:
        return _check_identity(cfg, rdb, url, study_name or default_study_name(cfg, name), name)
    finally:
        rdb.engine.dispose()


def _check_identity(
    cfg: ExperimentConfig, rdb: RDBStorage, url: str, study_name: str, strategy: str
) -> dict[str, Any] | None:
    try:
        check_study_identity(
            rdb,
            study_name,
            config_hash=search_config_hash(cfg, strategy),
            identity=config_identity(cfg, strategy),
            legacy_hash=legacy_config_hash(cfg, strategy),
        )
        try:
            return dict(rdb.get_study_user_attrs(rdb.get_study_id_from_name(study_name)))
        except KeyError:
            return None
    except sqlalchemy.exc.SQLAlchemyError as exc:  # disk full, read-only, server gone, ...
        raise _storage_failed(url, exc) from None


def prepare(
    cfg: ExperimentConfig,
    *,
    storage: str | None = None,
    strategy: str | None = None,
    study_name: str | None = None,
    problem: str | ProblemFactory | None = None,
) -> tuple[SearchContext, SearchProblem, optuna.Study, RDBStorage]:
    """Decide everything, then create or load the study: the identity of an existing study
    (read-only), the problem's inputs (supernets, device table), the budget against the space
    and the cheap pass on the smallest genome are checked before the storage is opened for
    writing, so a refused search changes neither the study (budget, trials) nor the run."""
    scfg = cfg.search
    if scfg.population < 2:
        raise ConfigError(
            f"search.population must be at least 2 (NSGA-II needs parents to cross), got {scfg.population}"
        )
    name = strategy or scfg.strategy
    get_strategy(name, scfg)  # an unknown name fails before anything is opened
    if study_name is not None:
        check_name(study_name, "study name")  # it names the folder studies/<study name>/
    ref = problem if problem is not None else DEFAULT_PROBLEM
    url = with_password(
        storage or scfg.storage or default_storage_url(cfg), scfg.storage_password_env
    )
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
    # decide before the problem is built: a study of another config is refused read-only
    existing = check_study_config(cfg, storage=url, strategy=name, study_name=study_name)
    prob = ctx.build_problem()
    if existing is not None:
        check_study_problem(existing, problem_name(prob), study_name)
    strat = get_strategy(name, scfg, energy_objective=not prob.energy_modelled)
    space = prob.space
    if space.size() < scfg.budget:
        raise ConfigError(
            f"the search space has only {space.size()} distinct candidates but the budget is "
            f"{scfg.budget}; lower search.population x search.generations"
        )
    ready = getattr(prob, "check_ready", None)
    if callable(ready):
        ready()  # the problem's inputs (e.g. every supernet) exist before a trial can fail
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
        PROBLEM_ATTR: problem_name(prob),
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
    rdb = open_storage(url, heartbeat_s=scfg.heartbeat_s)  # decided: now it may be written
    try:
        _check_identity(cfg, rdb, url, study_name, name)  # another process may have made it
        study = open_study(
            rdb,
            study_name=study_name,
            directions=list(strat.directions),
            sampler=make_sampler(strat, cfg.seed, prob),
            config_hash=ctx.config_hash,
            attrs=attrs,
            identity=config_identity(cfg, name),
            metric_names=list(strat.objectives),
            legacy_hash=legacy_config_hash(cfg, name),
        )
    except sqlalchemy.exc.SQLAlchemyError as exc:  # disk full, read-only, server gone, ...
        raise _storage_failed(url, exc) from None
    check_study_problem(study.user_attrs, problem_name(prob), study_name)
    return ctx, prob, study, rdb


def fidelity_info(cfg: ExperimentConfig) -> dict[str, Any]:
    """How candidates are evaluated: ``mode`` (full | halving | screen), the full and cheap
    epochs (a screen's are ``[0, 0]``: no fusion training)."""
    s, fc = cfg.search, cfg.fusion
    full = [fc.epochs, fc.retrain_epochs]
    out: dict[str, Any] = {"mode": s.fidelity, "fusion_epochs": full}
    fraction = cheap_fidelity(s)
    if fraction is not None:
        out["fraction"] = fraction
        out["low_fusion_epochs"] = list(fidelity_epochs(fc.epochs, fc.retrain_epochs, fraction))
    return out


def _best_test(pareto: Path | None, trial: int | None) -> float | None:
    """The test score of ``trial`` in a just-written ``pareto.json`` (None without one)."""
    if pareto is None or trial is None:
        return None
    member = ParetoRecord.read(pareto).member(trial)
    return None if member is None else member.test_metric


#: lock file of a study's final stage, in its output directory
FINAL_LOCK = ".final.lock"


@contextmanager
def final_stage_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out/.final.lock`` while the final stage runs, so that two
    ``search`` processes of one study (one run directory) never score the Pareto set side by
    side: the second waits, then reuses the members' scores the first one wrote
    (``models/<id>/score.json``) instead of scoring them again. Where no lock file can be made
    (a read-only directory), the stage runs unlocked and its writes report the problem."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        handle = open(out / FINAL_LOCK, "a+b")  # noqa: SIM115 (held across the yield)
    except OSError as exc:
        logger.debug("no final-stage lock in %s (%s)", out, exc)
        yield
        return
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


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


@thread_policy
@optuna_log_level()
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

    ``problem`` is a factory or a ``"module:function"`` reference (default: the real evaluator);
    a study is only resumed with the problem it was made with. ``workers`` local processes share the study; other machines
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
    seed_initial_population(study, prob.space, cfg.search, strat)
    report_progress(study, cfg, strat, progress)
    if n_workers == 1:
        _worker_loop(ctx, prob, progress, rdb)
    else:
        _run_workers(ctx, n_workers, study, strat, progress)
    pareto_path = None
    with final_stage_lock(out):  # one process at a time writes out; the next reuses its result
        records = load_records(study, prob.space, cfg.search.population)
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


@thread_policy
@optuna_log_level()
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
