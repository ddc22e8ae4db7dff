"""Reading a run directory's artifacts for the results stage, defensively and with one-line errors.

Only the files the contract fixes are read: ``config.yaml``, ``candidates.json``, ``pareto.json``,
``hypervolume.json``, ``baselines.json``, ``supernets/<modality>.json``,
``luts/<device>.validation.json`` and ``models/<id>/{arch.json, weights.pt}``. The search outputs
are required (a report of a run that has not been searched is meaningless); everything else is
optional and shown as "not run" when absent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harmonic_nas.config import ExperimentConfig, load_run_config
from harmonic_nas.errors import HarmonicError, StageMissingError
from harmonic_nas.hardware.validation_record import ValidationRecord
from harmonic_nas.search.pareto_record import ParetoMember as RecordMember
from harmonic_nas.search.pareto_record import ParetoRecord
from harmonic_nas.utils.io import read_json

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1


class UnknownModelError(HarmonicError):
    """A model id that is not in the run's Pareto set (the message lists the valid ids)."""


@dataclass(frozen=True)
class ParetoMember:
    """One model of the final Pareto set, as ``pareto.json`` describes it."""

    id: str
    trial: int | None
    arch: dict[str, Any]
    val_metric: float | None
    test_metric: float | None
    test_metric_std: float | None
    latency_ms: float | None
    energy_mj: float | None
    latency_paper_ms: float | None
    energy_paper_mj: float | None
    params: int | None
    val_metric_std: float | None = None
    """std of the val metric over re-scoring seeds (only where >= 2 seeds exist)"""
    missing_modalities: tuple[str, ...] = ()
    predicted_keys: tuple[str, ...] = ()
    uncosted_keys: tuple[str, ...] = ()

    @property
    def flags(self) -> list[str]:
        """What a reader must know before trusting this member's figures (empty: nothing)."""
        out = []
        if self.missing_modalities:
            out.append("ignores " + ", ".join(self.missing_modalities))
        if self.predicted_keys:
            out.append(f"{len(self.predicted_keys)} layer cost(s) predicted")
        if self.uncosted_keys:
            out.append(f"{len(self.uncosted_keys)} layer(s) not costed")
        return out

    @classmethod
    def of(cls, m: RecordMember) -> ParetoMember:
        """The report's view of one member of the typed ``pareto.json`` record (NaN -> None)."""
        return cls(
            id=m.id,
            trial=m.trial,
            arch=m.arch,
            val_metric=_finite(m.val_metric),
            test_metric=_finite(m.test_metric),
            test_metric_std=_finite(m.test_metric_std),
            latency_ms=_finite(m.latency_ms),
            energy_mj=_finite(m.energy_mj),
            latency_paper_ms=_finite(m.latency_paper_ms),
            energy_paper_mj=_finite(m.energy_paper_mj),
            params=m.params,
            val_metric_std=_finite(m.val_metric_std),
            missing_modalities=tuple(m.missing_modalities),
            predicted_keys=tuple(m.predicted_keys),
            uncosted_keys=tuple(m.uncosted_keys),
        )


def _finite(v: float | None) -> float | None:
    return None if v is None or v != v else v  # NaN -> None


@dataclass(frozen=True)
class StrategyFront:
    """The finished search of another strategy (``run/search-<strategy>/``), for comparison."""

    strategy: str
    members: list[ParetoMember]
    n_candidates: int
    n_complete: int


@dataclass(frozen=True)
class RunArtifacts:
    """Everything the report needs from one finished run."""

    run: Path
    config: ExperimentConfig
    pareto: dict[str, Any]
    members: list[ParetoMember]
    candidates: list[dict[str, Any]]
    objectives: list[str]
    hypervolume: dict[str, Any] | None = None
    baselines: list[dict[str, Any]] | None = None
    supernets: dict[str, dict[str, Any]] = field(default_factory=dict)
    validations: dict[str, ValidationRecord] = field(default_factory=dict)
    validation_errors: dict[str, str] = field(default_factory=dict)
    """device -> why its ``luts/<device>.validation.json`` could not be read"""
    other_strategies: dict[str, StrategyFront] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.pareto.get("run") or self.config.name)

    @property
    def record(self) -> ParetoRecord:
        """``pareto.json`` as its typed record (the recommendation, per-label scores)."""
        return ParetoRecord.from_json(self.pareto)

    @property
    def device(self) -> str:
        return str(self.pareto.get("device") or self.config.device.name)

    @property
    def metric(self) -> str:
        return str(self.pareto.get("metric") or "accuracy")

    @property
    def task(self) -> str:
        return str(self.pareto.get("task") or "classification")

    @property
    def metric_label(self) -> str:
        """The task metric's name for people (``accuracy``, ``weighted F1``), from the task
        vocabulary (:mod:`harmonic_nas.tasks`)."""
        from harmonic_nas.tasks import METRIC_LABELS

        return METRIC_LABELS.get(self.task, self.metric)

    @property
    def modalities(self) -> list[str]:
        return list(self.config.modalities)

    @property
    def energy(self) -> dict[str, Any]:
        """How the run's energy figures were obtained: ``source`` and ``modelled`` (energy =
        constant power x latency, then not an objective of its own)."""
        e = self.pareto.get("energy")
        return e if isinstance(e, dict) and e else {"source": "", "modelled": False}

    @property
    def energy_modelled(self) -> bool:
        return bool(self.energy.get("modelled"))

    def member(self, model_id: str) -> ParetoMember:
        """The Pareto member ``model_id`` (UnknownModelError listing the valid ids otherwise)."""
        for m in self.members:
            if m.id == model_id:
                return m
        raise UnknownModelError(
            f"unknown model id '{model_id}' in {self.run}; valid ids: "
            + (", ".join(m.id for m in self.members) or "(the Pareto set is empty)")
        )


def require_run_config(run: Path) -> ExperimentConfig:
    """The resolved config of ``run`` (StageMissingError if ``run`` is not a run directory)."""
    run = Path(run)
    if not run.is_dir():
        raise StageMissingError(
            f"run directory not found: {run}; pass a run directory such as runs/<name> "
            "(created by `harmonic-nas run CONFIG`)"
        )
    if not (run / "config.yaml").is_file():
        raise StageMissingError(
            f"{run} is not a run directory (no config.yaml); run `harmonic-nas run CONFIG` first"
        )
    return load_run_config(run)


def _missing_stage(run: Path, cfg: ExperimentConfig) -> StageMissingError:
    """The earliest pipeline stage whose artifact is missing, with the command that makes it."""
    for modality in cfg.modalities:
        sup = run / "supernets"
        if not (sup / f"{modality}.json").is_file() and not (sup / f"{modality}.pt").is_file():
            return StageMissingError(
                f"{run} has no finished search: stage 'pretrain' is missing "
                f"(no supernets/{modality}.pt); run `harmonic-nas pretrain CONFIG` "
                "(or `harmonic-nas run CONFIG`) first"
            )
    if not (run / "candidates.json").is_file():
        return StageMissingError(
            f"{run} has no finished search: stage 'search' is missing (no candidates.json); "
            "run `harmonic-nas search CONFIG` (or `harmonic-nas run CONFIG`) first"
        )
    return StageMissingError(
        f"{run} has no finished search: the search was not finalised (no pareto.json); "
        "run `harmonic-nas search CONFIG` again to finish it (or `harmonic-nas run CONFIG`)"
    )


def _read_versioned(path: Path, what: str) -> dict[str, Any]:
    """Read a JSON artifact of :data:`SCHEMA_VERSION` (one-line error for another version)."""
    obj = read_json(path, schema_version=SCHEMA_VERSION, what=what)
    if not isinstance(obj, dict):
        raise HarmonicError(f"{what} {path} must be a JSON object; regenerate it")
    return obj


def _read_pareto(path: Path) -> tuple[dict[str, Any], list[ParetoMember]]:
    """``pareto.json`` through its writer's typed record: the raw object and its members."""
    record = ParetoRecord.read(path)
    return record.to_json(), [ParetoMember.of(m) for m in record.members]


def load_run(run: Path | str) -> RunArtifacts:
    """Read every artifact of a finished run (StageMissingError naming the missing stage)."""
    run = Path(run)
    cfg = require_run_config(run)
    if not (run / "pareto.json").is_file() or not (run / "candidates.json").is_file():
        raise _missing_stage(run, cfg)

    pareto, members = _read_pareto(run / "pareto.json")

    cand_obj = _read_versioned(run / "candidates.json", "candidate list")
    candidates = [c for c in cand_obj.get("candidates") or [] if isinstance(c, dict)]
    objectives = [str(o) for o in cand_obj.get("objectives") or []] or [
        "val_metric",
        "latency_ms",
        "energy_mj",
    ]

    hypervolume = None
    if (run / "hypervolume.json").is_file():
        hypervolume = _read_versioned(run / "hypervolume.json", "hypervolume history")

    baselines = None
    if (run / "baselines.json").is_file():
        b = _read_versioned(run / "baselines.json", "baselines")
        baselines = [x for x in b.get("baselines") or [] if isinstance(x, dict)]

    supernets: dict[str, dict[str, Any]] = {}
    for modality in cfg.modalities:
        path = run / "supernets" / f"{modality}.json"
        if path.is_file():
            try:
                supernets[modality] = _read_versioned(path, f"supernet metrics of '{modality}'")
            except HarmonicError as exc:
                logger.warning("skipping supernet curves of %s: %s", modality, exc)

    validations: dict[str, ValidationRecord] = {}
    validation_errors: dict[str, str] = {}
    luts = run / "luts"
    if luts.is_dir():
        for path in sorted(luts.glob("*.validation.json")):
            device = path.name[: -len(".validation.json")]
            try:
                validations[device] = ValidationRecord.load(path)
            except HarmonicError as exc:
                logger.warning("skipping %s: %s", path, exc)
                validation_errors[device] = str(exc)

    others: dict[str, StrategyFront] = {}
    for sub in sorted(run.glob("search-*")):
        if not (sub / "pareto.json").is_file():
            continue
        try:
            front, front_members = _read_pareto(sub / "pareto.json")
            cands = (
                _read_versioned(sub / "candidates.json", "candidate list")
                if (sub / "candidates.json").is_file()
                else {}
            )
        except HarmonicError as exc:
            logger.warning("skipping %s: %s", sub, exc)
            continue
        rows = [c for c in cands.get("candidates") or [] if isinstance(c, dict)]
        name = str(front.get("strategy") or sub.name[len("search-") :])
        others[name] = StrategyFront(
            strategy=name,
            members=front_members,
            n_candidates=len(rows),
            n_complete=sum(1 for c in rows if str(c.get("state", "")).upper() == "COMPLETE"),
        )

    return RunArtifacts(
        run=run,
        config=cfg,
        pareto=pareto,
        members=members,
        candidates=candidates,
        objectives=objectives,
        hypervolume=hypervolume,
        baselines=baselines,
        supernets=supernets,
        validations=validations,
        validation_errors=validation_errors,
        other_strategies=others,
    )


def model_dir(run: Path | str, model_id: str) -> Path:
    """``run/models/<id>`` of a finalised Pareto model (UnknownModelError / StageMissingError)."""
    run = Path(run)
    cfg = require_run_config(run)
    models = run / "models"
    if not (run / "pareto.json").is_file():
        raise _missing_stage(run, cfg)
    available = (
        sorted(p.name for p in models.iterdir() if (p / "arch.json").is_file())
        if models.is_dir()
        else []
    )
    if model_id not in available:
        pareto = read_json(run / "pareto.json", what="Pareto set")
        ids = [
            str(m.get("id"))
            for m in (pareto.get("members") or [])
            if isinstance(m, dict) and m.get("id")
        ]
        if model_id in ids:
            raise StageMissingError(
                f"model '{model_id}' is in the Pareto set but {models / model_id} has no "
                "arch.json; run `harmonic-nas search CONFIG` again to finalise the models"
            )
        valid = sorted(set(available) | set(ids))
        raise UnknownModelError(
            f"unknown model id '{model_id}' in {run}; valid ids: "
            + (", ".join(valid) or "(none: the Pareto set is empty)")
        )
    path = models / model_id
    if not (path / "weights.pt").is_file():
        raise StageMissingError(
            f"model '{model_id}' has no weights ({path / 'weights.pt'} missing); "
            "run `harmonic-nas search CONFIG` again to finalise the models"
        )
    return path
