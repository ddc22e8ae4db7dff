"""``pareto.json``: the final Pareto set of a study, as a typed record written and read here.

:func:`harmonic_nas.search.final.finalize_study` builds a :class:`ParetoRecord` and writes it;
every reader (the driver's summary, ``status``, the pipeline's choice of the model to export, the
results package) reads it back with :meth:`ParetoRecord.read`. The file carries
``schema_version`` (:data:`PARETO_SCHEMA_VERSION`); another version is refused in one line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harmonic_nas.errors import HarmonicError
from harmonic_nas.search.recommend import Recommendation, recommend
from harmonic_nas.utils.io import atomic_write_json, read_json

logger = logging.getLogger(__name__)

PARETO_SCHEMA_VERSION = 1
PARETO_FILE = "pareto.json"


def _bad(path: Path | None, problem: str) -> HarmonicError:
    where = f"Pareto set {path}" if path is not None else "Pareto set"
    return HarmonicError(f"{where} {problem}; rerun `harmonic-nas search CONFIG` to rewrite it")


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def _per_label(rows: Any) -> list[dict[str, Any]] | None:
    """A member's ``test_per_label`` rows, checked (None when absent)."""
    if rows is None:
        return None
    if not isinstance(rows, list):
        raise TypeError("test_per_label is not a list")
    return [
        {
            "label": str(r["label"]),
            "score": _opt_float(r.get("score")),
            "support": int(r["support"]),
        }
        for r in rows
    ]


@dataclass(frozen=True)
class ParetoMember:
    """One model of the Pareto set: its architecture, val/test scores and device costs."""

    id: str
    trial: int
    arch: dict[str, Any]
    val_metric: float
    test_metric: float | None
    test_metric_std: float | None
    latency_ms: float
    energy_mj: float
    latency_paper_ms: float | None
    energy_paper_mj: float | None
    params: int
    fidelity: str | None = None
    fusion_epochs: list[int] | None = None
    low_fidelity: dict[str, Any] | None = None
    """the cheap evaluation (multi-fidelity only; omitted otherwise)"""
    val_seeds: int | None = None
    """number of val re-scoring seeds (>= 2; the three ``val_*seed*`` fields are omitted else)"""
    val_metric_std: float | None = None
    val_metric_seeds: list[float] | None = None
    modalities_used: list[str] = field(default_factory=list)
    missing_modalities: list[str] = field(default_factory=list)
    predicted_keys: list[str] = field(default_factory=list)
    uncosted_keys: list[str] = field(default_factory=list)
    test_per_label: list[dict[str, Any]] | None = None
    """per class, the saved model's test score (multilabel F1, classification recall) and
    support: ``{"label", "score", "support"}`` (:func:`harmonic_nas.tasks.per_label_scores`)"""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "trial": self.trial,
            "arch": self.arch,
            "val_metric": self.val_metric,
            "test_metric": self.test_metric,
            "test_metric_std": self.test_metric_std,
            "latency_ms": self.latency_ms,
            "energy_mj": self.energy_mj,
            "latency_paper_ms": self.latency_paper_ms,
            "energy_paper_mj": self.energy_paper_mj,
            "params": self.params,
            "fidelity": self.fidelity,
            "fusion_epochs": self.fusion_epochs,
        }
        if self.low_fidelity is not None:
            out["low_fidelity"] = self.low_fidelity
        if self.val_seeds is not None:
            out["val_seeds"] = self.val_seeds
            out["val_metric_std"] = self.val_metric_std
            out["val_metric_seeds"] = self.val_metric_seeds
        out["modalities_used"] = list(self.modalities_used)
        out["missing_modalities"] = list(self.missing_modalities)
        out["predicted_keys"] = list(self.predicted_keys)
        out["uncosted_keys"] = list(self.uncosted_keys)
        if self.test_per_label is not None:
            out["test_per_label"] = [dict(r) for r in self.test_per_label]
        return out

    @classmethod
    def from_json(cls, data: Any, *, path: Path | None = None) -> ParetoMember:
        if not isinstance(data, dict):
            raise _bad(path, "has a member that is not an object")
        try:
            seeds = data.get("val_metric_seeds")
            epochs = data.get("fusion_epochs")
            return cls(
                id=str(data["id"]),
                trial=int(data["trial"]),
                arch=dict(data["arch"]),
                val_metric=float(data["val_metric"]),
                test_metric=_opt_float(data.get("test_metric")),
                test_metric_std=_opt_float(data.get("test_metric_std")),
                latency_ms=float(data["latency_ms"]),
                energy_mj=float(data["energy_mj"]),
                latency_paper_ms=_opt_float(data.get("latency_paper_ms")),
                energy_paper_mj=_opt_float(data.get("energy_paper_mj")),
                params=int(data["params"]),
                fidelity=None if data.get("fidelity") is None else str(data["fidelity"]),
                fusion_epochs=None if epochs is None else [int(e) for e in epochs],
                low_fidelity=data.get("low_fidelity"),
                val_seeds=None if data.get("val_seeds") is None else int(data["val_seeds"]),
                val_metric_std=_opt_float(data.get("val_metric_std")),
                val_metric_seeds=None if seeds is None else [float(s) for s in seeds],
                modalities_used=[str(m) for m in data.get("modalities_used") or []],
                missing_modalities=[str(m) for m in data.get("missing_modalities") or []],
                predicted_keys=[str(k) for k in data.get("predicted_keys") or []],
                uncosted_keys=[str(k) for k in data.get("uncosted_keys") or []],
                test_per_label=_per_label(data.get("test_per_label")),
            )
        except KeyError as exc:
            raise _bad(path, f"has a member without '{exc.args[0]}'") from None
        except (TypeError, ValueError) as exc:
            raise _bad(path, f"has a malformed member ({exc})") from None


@dataclass(frozen=True)
class ParetoBest:
    """The member chosen on val (every "best" is chosen on val; test stands beside it)."""

    id: str
    trial: int
    val_metric: float
    test_metric: float | None
    chosen_by: str = "val_metric"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "trial": self.trial,
            "chosen_by": self.chosen_by,
            "val_metric": self.val_metric,
            "test_metric": self.test_metric,
        }

    @classmethod
    def of(cls, member: ParetoMember) -> ParetoBest:
        return cls(member.id, member.trial, member.val_metric, member.test_metric)


@dataclass(frozen=True)
class ParetoRecord:
    """The content of ``pareto.json``."""

    run: str
    device: str
    task: str
    metric: str
    strategy: str
    study: str
    test_seeds: int
    rescore_seeds: int
    objectives: list[str]
    energy: dict[str, Any]
    reference_point: dict[str, float]
    ideal_point: dict[str, float]
    best: ParetoBest | None
    members: list[ParetoMember]
    val_size: int | None = None
    """samples of the val split (the recommendation's standard error)"""
    recommended: Recommendation | None = None
    """the member to deploy (:mod:`harmonic_nas.search.recommend`)"""

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "device": self.device,
            "task": self.task,
            "metric": self.metric,
            "strategy": self.strategy,
            "study": self.study,
            "test_seeds": self.test_seeds,
            "rescore_seeds": self.rescore_seeds,
            "objectives": list(self.objectives),
            "energy": self.energy,
            "reference_point": self.reference_point,
            "ideal_point": self.ideal_point,
            "best": None if self.best is None else self.best.to_json(),
            "val_size": self.val_size,
            "recommended": None if self.recommended is None else self.recommended.to_json(),
            "members": [m.to_json() for m in self.members],
        }

    @classmethod
    def from_json(cls, data: Any, *, path: Path | None = None) -> ParetoRecord:
        if not isinstance(data, dict):
            raise _bad(path, "is not a JSON object")
        raw = data.get("members")
        if not isinstance(raw, list):
            raise _bad(path, "has no 'members' list")
        members = [ParetoMember.from_json(m, path=path) for m in raw]
        best = None
        b = data.get("best")
        if isinstance(b, dict) and b.get("id"):
            try:
                best = ParetoBest(
                    id=str(b["id"]),
                    trial=int(b["trial"]),
                    val_metric=float(b["val_metric"]),
                    test_metric=_opt_float(b.get("test_metric")),
                    chosen_by=str(b.get("chosen_by", "val_metric")),
                )
            except (KeyError, TypeError, ValueError):
                raise _bad(path, "has a malformed 'best' entry") from None
        try:
            return cls(
                run=str(data.get("run", "")),
                device=str(data.get("device", "")),
                task=str(data.get("task", "")),
                metric=str(data.get("metric", "")),
                strategy=str(data.get("strategy", "")),
                study=str(data.get("study", "")),
                test_seeds=int(data.get("test_seeds", 1)),
                rescore_seeds=int(data.get("rescore_seeds", 1)),
                objectives=[str(o) for o in data.get("objectives") or []],
                energy=dict(data.get("energy") or {}),
                reference_point=dict(data.get("reference_point") or {}),
                ideal_point=dict(data.get("ideal_point") or {}),
                best=best,
                members=members,
                val_size=None if data.get("val_size") is None else int(data["val_size"]),
                recommended=Recommendation.from_json(data.get("recommended")),
            )
        except (TypeError, ValueError) as exc:
            raise _bad(path, f"is malformed ({exc})") from None

    def write(self, path: Path) -> Path:
        """Write atomically with the schema version; returns ``path``."""
        return atomic_write_json(path, self.to_json(), schema_version=PARETO_SCHEMA_VERSION)

    @classmethod
    def read(cls, path: Path) -> ParetoRecord:
        """Read and check ``path`` (one-line HarmonicError when missing, corrupt or of another
        schema version)."""
        data = read_json(path, schema_version=PARETO_SCHEMA_VERSION, what="Pareto set")
        return cls.from_json(data, path=path)

    def member(self, trial: int) -> ParetoMember | None:
        return next((m for m in self.members if m.trial == trial), None)

    def best_id(self) -> str:
        """The val-best member's id (recorded as ``best``; else the highest val metric, lowest
        latency on ties)."""
        if self.best is not None:
            return self.best.id
        if not self.members:
            raise HarmonicError("the Pareto set is empty; rerun `harmonic-nas search CONFIG`")
        return max(self.members, key=lambda m: (m.val_metric, -m.latency_ms)).id

    def recommendation(self) -> Recommendation | None:
        """The member to deploy: as recorded, else (a file written before the rule) the rule
        applied without budgets; None for an empty set."""
        if self.recommended is not None and any(m.id == self.recommended.id for m in self.members):
            return self.recommended
        return recommend(self.members, n_val=self.val_size)

    def recommended_id(self) -> str:
        """The id of the member to deploy (:meth:`recommendation`)."""
        rec = self.recommendation()
        if rec is None:
            raise HarmonicError("the Pareto set is empty; rerun `harmonic-nas search CONFIG`")
        return rec.id

    def test_scores(self) -> dict[int, float]:
        """Trial -> test score of the members scored on test."""
        return {m.trial: m.test_metric for m in self.members if m.test_metric is not None}
