"""The search PROBLEM (what a candidate is worth), kept apart from the ALGORITHM (how candidates are
proposed), as in pymoo.

A :class:`SearchProblem` knows the search space, the cheap cost of a genome (the LUT lower bound,
no training), the full evaluation (fusion search + retraining, on validation data) and how to score a
Pareto member once on test. The study driver (:mod:`harmonic_nas.search.driver`) never knows the
domain. Problems are built in each worker process by a :data:`ProblemFactory`, referenced by an
importable ``"module:function"`` string so it crosses process (spawn) and machine boundaries.
The library never picks a factory from the environment: callers pass one (the command line reads
``$HARMONIC_NAS_SEARCH_PROBLEM``), and its name is recorded with the study (:data:`PROBLEM_ATTR`),
so a study made with one problem is never resumed with another.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from harmonic_nas.errors import ConfigError
from harmonic_nas.utils.progress import ProgressFn, no_progress

if TYPE_CHECKING:
    from harmonic_nas.config import ExperimentConfig, SearchConfig
    from harmonic_nas.search.genome import MultimodalGenome, SearchSpace

#: The real problem's factory (the default of every search entry point).
DEFAULT_PROBLEM = "harmonic_nas.search.evaluator:build_problem"
#: Study attribute holding the :func:`problem_name` it was made with (absent: the real problem).
PROBLEM_ATTR = "problem"
#: :func:`problem_name` of the real problem (:class:`~harmonic_nas.search.evaluator.HarmonicProblem`)
REAL_PROBLEM = "harmonic-nas"


@dataclass(frozen=True)
class CostBound:
    """A latency / energy pair (ms, mJ) at batch size 1 on the target device."""

    latency_ms: float
    energy_mj: float


@dataclass(frozen=True)
class Evaluation:
    """The worth of one candidate, all measured on the same (retrained, discrete) model."""

    val_metric: float
    latency_ms: float
    energy_mj: float
    params: int
    latency_paper_ms: float = math.nan
    energy_paper_mj: float = math.nan
    genotype: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    modalities_used: list[str] | None = None
    """the modalities the model's output depends on (None: not known, e.g. a synthetic problem)"""
    predicted_keys: list[str] = field(default_factory=list)
    """layers whose cost the fallback predictor estimated (flagged)"""
    uncosted_keys: list[str] = field(default_factory=list)
    """layers the device's table cannot cost (no entry of their kind): left out of the totals"""

    def missing_modalities(self, modalities: list[str]) -> list[str]:
        """Those of ``modalities`` the model ignores (a unimodal "multimodal" model)."""
        if self.modalities_used is None:
            return []
        return [m for m in modalities if m not in self.modalities_used]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for k in ("latency_paper_ms", "energy_paper_mj"):
            if isinstance(out[k], float) and math.isnan(out[k]):
                out[k] = None
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Evaluation:
        kw = dict(data)
        for k in ("latency_paper_ms", "energy_paper_mj"):
            if kw.get(k) is None:
                kw[k] = math.nan
        kw.setdefault("extra", {})
        return cls(**kw)

    def non_finite(self) -> str | None:
        """The name of the first objective that is NaN/inf (a diverged candidate), else None."""
        for name in ("val_metric", "latency_ms", "energy_mj"):
            if not math.isfinite(float(getattr(self, name))):
                return name
        return None


@dataclass(frozen=True)
class TestScore:
    """A Pareto member scored once on test (seed-averaged) and saved under ``models/<id>/``."""

    test_metric: float
    test_metric_std: float
    arch: dict[str, Any]
    model_dir: Path
    test_per_label: list[dict[str, Any]] | None = None
    """per class of the saved model (the evaluation seed): ``{"label", "score", "support"}``
    (:func:`harmonic_nas.tasks.per_label_scores`)"""


class SearchProblem(Protocol):
    """What the outer tier optimises. Implementations: :mod:`.evaluator` (real) and the test
    double :mod:`harmonic_nas.testing.synthetic_problem`. An optional ``name`` class attribute
    says which problem a study was made with (:func:`problem_name`); an optional
    ``check_ready()`` method refuses (one-line error) when the problem's inputs are missing, and
    runs before the study is opened for writing."""

    @property
    def space(self) -> SearchSpace: ...

    @property
    def metric(self) -> str:
        """Name of the validation / test metric (``accuracy``, ``f1_macro``, ...); higher is better."""
        ...

    @property
    def task(self) -> str: ...

    @property
    def energy_modelled(self) -> bool:
        """Energy is constant power x latency on the device: then it is no objective of its own
        (the search optimises the val metric and latency)."""
        ...

    @property
    def energy_source(self) -> str:
        """Where the energy figures come from (the device table's ``energy_source``)."""
        ...

    def arch_json(
        self, genome: MultimodalGenome, genotype: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The ARCH.json content (``ArchSpec.to_json()``) of a genome, with its fusion genotype."""
        ...

    def lower_bound(self, genome: MultimodalGenome) -> CostBound:
        """Cheap pass: a lower bound of the candidate's cost from the LUT, without any training."""
        ...

    def reference_costs(self) -> tuple[CostBound, CostBound]:
        """``(ideal, reference)`` costs that normalise the hypervolume (fixed for the whole run)."""
        ...

    def evaluate(
        self,
        genome: MultimodalGenome,
        *,
        seed: int,
        progress: ProgressFn = no_progress,
        fidelity: float = 1.0,
    ) -> Evaluation:
        """Evaluation on validation data (fusion search, retrain, cost of the derived model).

        ``fidelity`` < 1: the cheap evaluation of multi-fidelity search, with
        :func:`fidelity_epochs` of the fusion search and retraining epochs;
        :data:`SCREEN_FIDELITY` (0): a screen without any fusion training."""
        ...

    def score_test(
        self,
        genome: MultimodalGenome,
        evaluation: Evaluation,
        *,
        seeds: list[int],
        model_dir: Path,
        progress: ProgressFn = no_progress,
    ) -> TestScore:
        """Retrain the discrete model (once per seed), score it on test, save the first seed's model
        as ``model_dir/{arch.json, weights.pt}``."""
        ...


#: The fidelity of a screen (``search.fidelity: screen``): no fusion training at all.
SCREEN_FIDELITY = 0.0


def cheap_fidelity(search: SearchConfig) -> float | None:
    """The fidelity of a multi-fidelity search's cheap evaluation (None: every candidate is
    evaluated in full): ``fidelity_fraction`` when halving, :data:`SCREEN_FIDELITY` when
    screening."""
    if search.fidelity == "halving":
        return search.fidelity_fraction
    if search.fidelity == "screen":
        return SCREEN_FIDELITY
    return None


def fidelity_epochs(epochs: int, retrain_epochs: int, fidelity: float) -> tuple[int, int]:
    """``(fusion search epochs, retraining epochs)`` of an evaluation at ``fidelity`` (a share
    of the configured ones; at least one epoch each; ``(0, 0)`` for a screen)."""
    if fidelity >= 1.0:
        return epochs, retrain_epochs
    if fidelity <= SCREEN_FIDELITY:
        return 0, 0
    return (
        max(1, math.ceil(epochs * fidelity - 1e-9)),
        max(1, math.ceil(retrain_epochs * fidelity - 1e-9)),
    )


#: Builds the problem inside a worker; must be picklable (a top-level function or a dataclass).
ProblemFactory = Callable[["ExperimentConfig"], SearchProblem]


def problem_name(problem: SearchProblem) -> str:
    """What a study records as its problem: the problem's ``name`` attribute (inherited by
    subclasses, so a tweaked test double is still the same problem), else its class."""
    name = getattr(problem, "name", None)
    if isinstance(name, str) and name:
        return name
    return f"{type(problem).__module__}:{type(problem).__qualname__}"


def check_study_problem(attrs: Mapping[str, Any], name: str, study_name: str) -> None:
    """One-line :class:`StorageError` unless the study (its user attributes ``attrs``) was made
    with the problem called ``name`` (:func:`problem_name`; no attribute: the real problem)."""
    from harmonic_nas.search.storage import StorageError

    found = str(attrs.get(PROBLEM_ATTR, REAL_PROBLEM))
    if found != name:
        raise StorageError(
            f"study '{study_name}' was made with search problem {found}, not {name}; rerun with "
            "that problem to resume it, or pass --study-name NEW_NAME to start a separate study"
        )


def resolve_factory(ref: str) -> ProblemFactory:
    """Import ``"package.module:function"`` (one-line :class:`ConfigError` when it cannot)."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ConfigError(
            f"search problem factory {ref!r} must look like 'package.module:function'; fix it"
        )
    try:
        module = importlib.import_module(module_name)
        factory = getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"cannot import search problem factory {ref!r} ({exc.__class__.__name__}: {exc}); "
            "fix the reference or reinstall harmonic-nas"
        ) from None
    if not callable(factory):
        raise ConfigError(f"search problem factory {ref!r} is not callable; fix the reference")
    return factory
