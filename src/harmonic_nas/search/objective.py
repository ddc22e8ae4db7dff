"""One candidate as an Optuna objective: budget slot, genome, dedupe, cheap pass, evaluation
(the steps of :mod:`harmonic_nas.search.driver`)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

import optuna
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from harmonic_nas.errors import CheckpointError, ConfigError, StageMissingError
from harmonic_nas.search.attrs import (
    ATTR_BUDGET,
    ATTR_DUPLICATE,
    ATTR_EVAL_SEED,
    ATTR_EVALUATION,
    ATTR_FAIL,
    ATTR_FIDELITY,
    ATTR_FUSION_EPOCHS,
    ATTR_INTERRUPTED,
    ATTR_KEY,
    ATTR_LOW_FIDELITY,
    ATTR_LOWER_BOUND,
    ATTR_PROMOTED,
    ATTR_SKIPPED,
    ATTR_WORKER,
    EVALUATION_SCALARS,
    FIDELITY_FULL,
    FIDELITY_LOW,
)
from harmonic_nas.search.context import POLL_S, SearchContext
from harmonic_nas.search.genome import MultimodalGenome
from harmonic_nas.search.pareto import dominates
from harmonic_nas.search.problem import (
    Evaluation,
    SearchProblem,
    cheap_fidelity,
    fidelity_epochs,
)
from harmonic_nas.search.records import SearchRecords
from harmonic_nas.search.storage import (
    StorageError,
    fail_stale,
    recover_interrupted,
    worker_identity,
)
from harmonic_nas.search.strategies import Strategy
from harmonic_nas.utils.env import log_level_from_env
from harmonic_nas.utils.progress import ProgressFn
from harmonic_nas.utils.seeding import derive_seed

logger = logging.getLogger(__name__)


_FATAL = (StageMissingError, CheckpointError, ConfigError, StorageError)


class CandidateFailed(Exception):
    """A candidate raised or diverged; its trial is recorded FAIL and the search continues."""


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}"[:500]


#: the Optuna logger that reports each failed trial (with a traceback) and its value
_OPTUNA_TRIAL_LOGGER = "optuna.study._optimize"


class QuietFailedTrials(logging.Filter):
    """Drops Optuna's own report of a failed candidate (a warning with the traceback, then
    "failed with value None"): the objective logs the one-line reason, the trial records it."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, (CandidateFailed, *_FATAL)):
            return False
        msg = record.getMessage()
        return not (msg.startswith("Trial ") and msg.endswith(" failed with value None."))


@contextmanager
def optuna_log_level() -> Iterator[None]:
    """Optuna's own logger at harmonic-nas's level (``$HARMONIC_NAS_LOG``, default WARNING) for
    the block, then the caller's verbosity again: its per-trial INFO lines ("Trial 3 finished
    with values ...") reach neither a CLI user nor a caller of the Python API (the CLI sets the
    same level for the whole process). Usable as a decorator."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(log_level_from_env())
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


def quiet_failed_trials() -> None:
    """Install :class:`QuietFailedTrials` on Optuna's trial logger (once per process)."""
    target = logging.getLogger(_OPTUNA_TRIAL_LOGGER)
    if not any(isinstance(f, QuietFailedTrials) for f in target.filters):
        target.addFilter(QuietFailedTrials())


def fusion_curve(evaluation: Evaluation) -> list[float]:
    """One value per fusion epoch of an evaluation: the fusion search's epochs (the metric on the
    architecture split of train) then the retraining's (the val metric); finite values only."""
    extra = evaluation.extra
    values = [*(extra.get("search_curve") or []), *(extra.get("val_curve") or [])]
    return [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v)]


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
        trial.set_user_attr(ATTR_EVALUATION, record)  # the rest: genotype, extra
        if skipped:
            trial.set_user_attr(ATTR_SKIPPED, skipped)
        for name, value in self._violations(evaluation.latency_ms, evaluation.energy_mj).items():
            trial.set_constraint(name, value)
        missing = evaluation.missing_modalities(list(self.cfg.modalities))
        if self.cfg.search.require_all_modalities and missing:
            # a unimodal "multimodal" model: infeasible, never a Pareto member
            trial.set_constraint("modalities", float(len(missing)))
            trial.set_user_attr(ATTR_SKIPPED, "ignores modality " + ", ".join(missing))
        self.outcome = "complete"
        values = (evaluation.val_metric, evaluation.latency_ms, evaluation.energy_mj)
        return values[: len(self.strategy.directions)]

    def _evaluate(
        self, trial: optuna.Trial, genome: MultimodalGenome, key: str
    ) -> tuple[Evaluation, str]:
        bound = self.problem.lower_bound(genome)  # cheap pass: LUT only
        trial.set_user_attr(ATTR_LOWER_BOUND, [bound.latency_ms, bound.energy_mj])
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
        trial.set_user_attr(ATTR_EVAL_SEED, seed)
        fc = self.cfg.fusion
        full = (fc.epochs, fc.retrain_epochs)
        fraction = cheap_fidelity(self.cfg.search)
        low = fidelity_epochs(*full, fraction) if fraction is not None else full
        if fraction is not None and low != full:
            cheap = self._run(trial, genome, seed, fraction)
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
                trial.set_user_attr(ATTR_FIDELITY, FIDELITY_LOW)
                trial.set_user_attr(ATTR_FUSION_EPOCHS, list(low))
                return cheap, ""
        evaluation = self._run(trial, genome, seed, 1.0)
        trial.set_user_attr(ATTR_FIDELITY, FIDELITY_FULL)
        trial.set_user_attr(ATTR_FUSION_EPOCHS, list(full))
        return evaluation, ""

    def _run(
        self, trial: optuna.Trial, genome: MultimodalGenome, seed: int, fidelity: float
    ) -> Evaluation:
        if fidelity < 1.0:
            evaluation = self.problem.evaluate(
                genome, seed=seed, progress=self.progress, fidelity=fidelity
            )
        else:  # problems written before multi-fidelity take no fidelity argument
            evaluation = self.problem.evaluate(genome, seed=seed, progress=self.progress)
        bad = evaluation.non_finite()
        if bad is not None:
            raise FloatingPointError(f"{bad} is not finite (the candidate diverged)")
        self._report_curve(trial, evaluation)
        return evaluation

    def _report_curve(self, trial: optuna.Trial, evaluation: Evaluation) -> None:
        """The candidate's learning curve as the trial's intermediate values, one step per fusion
        epoch (:func:`fusion_curve`), for optuna-dashboard. Written through the storage:
        ``Trial.report`` refuses multi-objective studies. A promoted candidate's full curve
        replaces its cheap one."""
        for step, value in enumerate(fusion_curve(evaluation)):
            self.storage.set_trial_intermediate_value(trial._trial_id, step, value)

    def _promote(self, study: optuna.Study, cheap: Evaluation) -> bool:
        """Whether a cheaply evaluated candidate can still reach the front: feasible at the cheap
        fidelity, and on the cheap-fidelity front: dominated by the cheap score of no feasible
        candidate evaluated so far (like is compared with like: cheap scores are lower than full
        ones). Comparing with the current front members' cheap scores only promoted most
        candidates (a front has few members); a candidate that loses at the cheap fidelity to
        one that itself may be off the front is rarely a front member in full."""
        if any(v > 0 for v in self._violations(cheap.latency_ms, cheap.energy_mj).values()):
            return False
        if self.cfg.search.require_all_modalities and cheap.missing_modalities(
            list(self.cfg.modalities)
        ):
            return False
        records = SearchRecords.from_study(study, population=self.cfg.search.population)
        k = len(records.objectives)
        mine = (-cheap.val_metric, cheap.latency_ms, cheap.energy_mj)[:k]
        for r in records.records:
            p = r.low_fidelity
            if r.state != "COMPLETE" or not r.feasible or not isinstance(p, dict):
                continue
            theirs = (-float(p["val_metric"]), float(p["latency_ms"]), float(p["energy_mj"]))
            if dominates(theirs[:k], mine):
                return False
        return True
