"""``harmonic-nas status RUN``: a running or finished study, read from its storage."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.samplers import RandomSampler
from optuna.trial import TrialState

from harmonic_nas.config import load_run_config
from harmonic_nas.errors import HarmonicError, StageMissingError
from harmonic_nas.search.attrs import (
    ATTR_CONFIG_HASH,
    ATTR_CONFIG_IDENTITY,
    ATTR_RESCORE_SEEDS,
    ATTR_WRITE_OUT,
    FIDELITY_LOW,
)
from harmonic_nas.search.final import read_search_index, study_points
from harmonic_nas.search.identity import (
    config_identity,
    differing_keys,
    legacy_config_hash,
    search_config_hash,
)
from harmonic_nas.search.pareto_record import ParetoRecord
from harmonic_nas.search.recommend import deploy_lines
from harmonic_nas.search.records import CandidateRecord, SearchRecords
from harmonic_nas.search.storage import (
    RUN_PLACEHOLDER,
    StorageError,
    open_storage,
    redact,
    resolve_url,
)
from harmonic_nas.utils.credentials import with_password
from harmonic_nas.utils.io import read_json

if TYPE_CHECKING:
    from harmonic_nas.config import ExperimentConfig

logger = logging.getLogger(__name__)


def _test_scores(pareto: Path) -> dict[int, float]:
    """Trial -> test score of the members of a ``pareto.json`` (empty if unreadable)."""
    if not pareto.is_file():
        return {}
    try:
        return ParetoRecord.read(pareto).test_scores()
    except HarmonicError as exc:
        logger.warning("%s", exc)
        return {}


def _deploy(pareto: Path, run: Path) -> tuple[str | None, list[str]]:
    """The recommended member's id and the what-to-deploy lines of a finished study
    (:func:`harmonic_nas.search.recommend.deploy_lines`); nothing if unreadable."""
    try:
        record = ParetoRecord.read(pareto)
    except HarmonicError as exc:
        logger.warning("%s", exc)
        return None, []
    baselines = None
    if (run / "baselines.json").is_file():
        try:
            rows = read_json(run / "baselines.json", what="baselines").get("baselines")
            baselines = [b for b in rows if isinstance(b, dict)] if isinstance(rows, list) else None
        except (HarmonicError, AttributeError):
            baselines = None
    rec = record.recommendation()
    return (rec.id if rec else None), deploy_lines(record.members, rec, baselines)


def best_summary(best: dict[str, Any] | None) -> str:
    """``best val X (test Y)``: the val-best front member, its test score once scored."""
    if best is None:
        return "best val -"
    text = f"best val {best['val_metric']:.4g}"
    if best.get("val_metric_std") is not None:
        text += f" ± {best['val_metric_std']:.2g}"
    if best.get("test_metric") is not None:
        text += f" (test {best['test_metric']:.4g})"
    return text


def _row(
    r: CandidateRecord,
    records: SearchRecords,
    modalities: list[str],
    tests: dict[int, float] | None = None,
) -> dict[str, Any]:
    ev = r.evaluation
    flags = []
    if r.state == "COMPLETE" and r.fidelity == FIDELITY_LOW and r.fusion_epochs:
        e, rt = r.fusion_epochs
        flags.append(
            f"low fidelity ({e}+{rt} epochs)" if e or rt else "screened only (no fusion training)"
        )
    if r.val_metric_std is not None:
        flags.append(f"val mean of {r.val_seeds} seeds, std {r.val_metric_std:.3g}")
    if ev is not None:
        missing = ev.missing_modalities(modalities)
        if missing:
            flags.append("ignores " + ", ".join(missing))
        if ev.predicted_keys:
            flags.append(f"{len(ev.predicted_keys)} costs predicted")
        if ev.uncosted_keys:
            flags.append(f"{len(ev.uncosted_keys)} layers not costed")
    return {
        "trial": r.trial,
        "state": r.state,
        "generation": records.generation_of(r),
        "key": r.key,
        "val_metric": ev.val_metric if ev else None,
        "latency_ms": ev.latency_ms if ev else None,
        "energy_mj": ev.energy_mj if ev else None,
        "params": ev.params if ev else None,
        "feasible": r.feasible if ev else None,
        **r.fidelity_fields(),
        **(
            {"val_metric_std": r.val_metric_std, "val_seeds": r.val_seeds}
            if r.seed_fields()
            else {}
        ),
        **({"test_metric": tests[r.trial]} if tests and r.trial in tests else {}),
        "note": (
            f"duplicate of {r.duplicate_of}"
            if r.duplicate_of is not None
            else r.fail_reason or r.skipped or "; ".join(flags)
        ),
        "flags": flags,
    }


def _stage(done: int, budget: int, write_out: Any, legacy_done: bool) -> tuple[str, str]:
    """``running`` (fewer candidates than the budget), ``finished`` (the budget evaluated and its
    results written), or ``evaluated`` (the budget met, its results not, or not all, written)."""
    if done < budget:
        return "running", ""
    if write_out is None and legacy_done:  # written before the write-out state was recorded
        return "finished", ""
    w = write_out if isinstance(write_out, dict) else {}
    if w.get("n_complete") == done and w.get("state") == "done":
        if w.get("pareto"):
            return "finished", ""
        return "evaluated", "the Pareto set was not scored on test"
    if w.get("n_complete") == done and w.get("state") == "failed":
        reason = str(w.get("error") or "unknown error")
        return "evaluated", f"writing the results failed ({reason[:200]})"
    return "evaluated", "the results (candidates, hypervolume, Pareto set) were not written"


def _check_own_study(
    cfg: ExperimentConfig,
    attrs: dict[str, Any],
    study_name: str,
    url: str,
    run: Path,
    strategy: Any,
) -> None:
    """The identity check ``run`` and ``search`` make: refuse to show a study that the run's
    config did not make (a ``--storage`` or index pointing at another run's database)."""
    name = str(attrs.get("strategy") or strategy or cfg.search.strategy)
    found = attrs.get(ATTR_CONFIG_HASH)
    if found is None or found in (
        search_config_hash(cfg, name),
        legacy_config_hash(cfg, name),
    ):
        return
    before = attrs.get(ATTR_CONFIG_IDENTITY)
    keys = differing_keys(before, config_identity(cfg, name)) if isinstance(before, dict) else []
    what = (
        f"differs in {', '.join(keys[:8])}{' ...' if len(keys) > 8 else ''}" if keys else "differs"
    )
    raise StorageError(
        f"study '{study_name}' in {redact(url)} was not made by the run {run} (its config {what}); "
        "show the run that made it, or pass --storage with this run's own study"
    )


def study_status(run: Path | str, *, storage: str | None = None) -> list[dict[str, Any]]:
    """One summary per study of the run (every strategy searched), with its candidates and front."""
    run = Path(run)
    cfg = load_run_config(run)
    index = read_search_index(run)
    if not index:
        default = cfg.search.study_name or cfg.name
        index = {default: {"strategy": "nsga2", "storage": f"sqlite:///{RUN_PLACEHOLDER}/study.db"}}
    out = []
    for study_name, entry in index.items():
        url = storage or with_password(
            resolve_url(entry["storage"], run), cfg.search.storage_password_env
        )
        if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).is_file():
            raise StageMissingError(
                f"no study database at {url[len('sqlite:///') :]}; start the search with "
                "`harmonic-nas search CONFIG`"
            )
        rdb = open_storage(url, heartbeat_s=cfg.search.heartbeat_s, read_only=True)
        try:
            study = optuna.load_study(
                study_name=study_name, storage=rdb, sampler=RandomSampler(seed=0)
            )
        except KeyError:
            raise StageMissingError(
                f"study '{study_name}' not found in {redact(url)}; start it with "
                "`harmonic-nas search CONFIG`"
            ) from None
        attrs = study.user_attrs
        _check_own_study(cfg, attrs, study_name, url, run, entry.get("strategy"))
        population = int(attrs.get("population", cfg.search.population))
        budget = int(attrs.get("budget", cfg.search.budget))
        records = SearchRecords.from_study(study, population=population)
        mods = list(cfg.modalities)
        states = [t.state for t in study.get_trials(deepcopy=False)]
        front = records.front()
        history = records.hypervolume_history(*study_points(study)) if records.complete else []
        done = records.n_complete
        pareto = run / str(entry.get("out_dir", ".")) / "pareto.json"
        stage, note = _stage(done, budget, attrs.get(ATTR_WRITE_OUT), pareto.is_file())
        tests = _test_scores(pareto) if stage == "finished" else {}
        best_rec = records.best()
        best = _row(best_rec, records, mods, tests) if best_rec is not None else None
        recommended, deploy = _deploy(pareto, run) if stage == "finished" else (None, [])
        fidelity = attrs.get("fidelity") or {"mode": "full"}
        out.append(
            {
                "study": study.study_name,
                "strategy": attrs.get("strategy", entry.get("strategy")),
                "storage": redact(url),
                "budget": budget,
                "population": population,
                "generation": min(done // population + 1, math.ceil(budget / population)),
                "generations": math.ceil(budget / population),
                "complete": done,
                "running": states.count(TrialState.RUNNING),
                "waiting": states.count(TrialState.WAITING),
                "failed": records.n_failed,
                "duplicates": records.n_duplicates,
                "front_size": len(front),
                "hypervolume": history[-1]["hypervolume"] if history else 0.0,
                "best_val_metric": best["val_metric"] if best else None,
                "best_test_metric": best.get("test_metric") if best else None,
                "best": best,
                "best_summary": best_summary(best),
                "recommended": recommended,
                "deploy": deploy,
                "fidelity": fidelity,
                "low_fidelity": records.n_low_fidelity,
                "rescore_seeds": int(attrs.get(ATTR_RESCORE_SEEDS, 1)),
                "finished": stage == "finished",
                "stage": stage,
                "stage_note": note,
                "objectives": list(records.objectives),
                "front": [_row(r, records, mods, tests) for r in front],
                "candidates": [_row(r, records, mods, tests) for r in records.records],
            }
        )
        rdb.engine.dispose()  # the read-only connections, closed at once
    return out
