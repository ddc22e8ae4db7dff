"""The pipeline as a Python API: every stage in order (:func:`run`), or the inner tier alone
(:func:`run_fusion`). The ``run`` and ``fusion`` commands call these and only render.

Each stage is skipped when its artifact exists and matches the config, so calling :func:`run`
again resumes where it stopped. Decide first, write after: the checks that need no training
(:func:`harmonic_nas.preflight.check_experiment`) and the run-directory guard
(:func:`check_run_dir`) run before anything is written.

A caller follows progress through :class:`PipelineHooks` (a no-op by default)::

    from harmonic_nas import load_config, pipeline

    result = pipeline.run(load_config("configs/quick.yaml"))
    print(result.report_path, result.model_id)
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harmonic_nas.errors import ConfigError, LUTError
from harmonic_nas.utils.progress import ProgressFn, no_progress
from harmonic_nas.utils.threads import thread_policy

if TYPE_CHECKING:
    from harmonic_nas.config import ExperimentConfig
    from harmonic_nas.data import MultimodalDataset
    from harmonic_nas.fusion.runner import InnerTierResult
    from harmonic_nas.hardware.cost import ArchCost
    from harmonic_nas.hardware.lut import LUT
    from harmonic_nas.pretrain import PretrainResult
    from harmonic_nas.results import ExportResult
    from harmonic_nas.search.context import SearchSummary
    from harmonic_nas.search.pareto_record import ParetoRecord

logger = logging.getLogger(__name__)

#: the stages of :func:`run`, in order (the names passed to :class:`PipelineHooks`)
STAGES: tuple[str, ...] = ("data", "pretrain", "profile", "search", "baselines", "report", "export")

#: keys that say where a run lives, not what it is (a moved run keeps its identity)
LOCATION_KEYS: tuple[str, ...] = ("name", "run_dir")


class PipelineHooks:
    """What a caller sees of a pipeline run. Subclass and override; the defaults log.

    :meth:`stage` wraps each stage and gives the progress callback the stage reports to;
    :meth:`done` receives each stage's result (``"estimate"`` first: the search's estimated
    cost, before anything is written).
    """

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[ProgressFn]:
        logger.info("stage %s", name)
        yield no_progress

    def done(self, name: str, value: Any) -> None:
        logger.info("stage %s done", name)


@dataclass
class RunResult:
    """What :func:`run` produced (paths inside the run directory)."""

    run_path: Path
    dataset: MultimodalDataset
    pretrain: list[PretrainResult]
    lut: LUT
    search: SearchSummary
    baselines_path: Path
    report_path: Path
    model_id: str
    """the exported member: the recommended one (:mod:`harmonic_nas.search.recommend`)"""
    export: ExportResult
    elapsed_s: float
    pareto: ParetoRecord
    """the final Pareto set (``pareto.json``): ``pareto.members``, ``pareto.recommendation()``"""


@dataclass
class FusionRunResult:
    """What :func:`run_fusion` produced: the retrained model, its cost and the files written."""

    inner: InnerTierResult
    cost: ArchCost
    device: str
    paths: dict[str, Path] = field(default_factory=dict)


def check_run_dir(cfg: ExperimentConfig) -> None:
    """Decide before writing: refuse a run directory that is a file, cannot be written, or holds
    a run made with another config (naming the differing keys). Only the budget keys and the
    worker count may change: raising ``search.generations`` / ``search.population`` extends the
    run's study."""
    from harmonic_nas.config import config_data, load_run_config
    from harmonic_nas.search.identity import RUN_MUTABLE_KEYS, differing_keys, flatten
    from harmonic_nas.utils.io import check_writable_dir

    run = cfg.run_path
    existing = run / "config.yaml"
    if existing.is_file():
        old = load_run_config(run)
        keys = differing_keys(
            flatten(config_data(old)),
            flatten(config_data(cfg)),
            ignore=(*RUN_MUTABLE_KEYS, *LOCATION_KEYS),
        )
        if keys:
            shown = ", ".join(keys[:8]) + (" ..." if len(keys) > 8 else "")
            raise ConfigError(
                f"run directory {run} holds a run made with another config (it differs in "
                f"{shown}), nothing was written; give the config a new `name` to start a new "
                "run, or change only " + " / ".join(RUN_MUTABLE_KEYS) + " to extend this one"
            )
    check_writable_dir(run)


def best_model_id(pareto_path: Path) -> str:
    """The val-best member of the Pareto set recorded in ``pareto.json``."""
    from harmonic_nas.search.pareto_record import ParetoRecord

    return ParetoRecord.read(pareto_path).best_id()


def recommended_model_id(pareto_path: Path) -> str:
    """The member to deploy of the Pareto set recorded in ``pareto.json`` (the rule of
    :mod:`harmonic_nas.search.recommend`)."""
    from harmonic_nas.search.pareto_record import ParetoRecord

    return ParetoRecord.read(pareto_path).recommended_id()


@thread_policy
def run(
    cfg: ExperimentConfig,
    *,
    export_format: str = "onnx",
    source: str | Path = "",
    problem: str | None = None,
    hooks: PipelineHooks | None = None,
) -> RunResult:
    """data -> pretrain -> profile -> search -> baselines -> report -> export, as
    ``harmonic-nas run`` does; the exported model is the recommended member of the Pareto set
    (:mod:`harmonic_nas.search.recommend`).

    Before anything runs or is written: every check that needs no training (one error listing
    all problems; ``source`` names the config in it), then the run-directory guard; then the
    search's estimated cost goes to ``hooks.done("estimate", ...)``. ``problem`` selects a
    registered search problem (default: the real evaluator).
    """
    from harmonic_nas.config import save_resolved
    from harmonic_nas.data import load_dataset
    from harmonic_nas.hardware.lut_source import get_lut
    from harmonic_nas.preflight import STAGES as CHECKED_STAGES
    from harmonic_nas.preflight import check_experiment, estimate_for
    from harmonic_nas.pretrain import pretrain_all
    from harmonic_nas.results import export, report
    from harmonic_nas.search import run_search
    from harmonic_nas.search.baselines import run_baselines
    from harmonic_nas.search.pareto_record import ParetoRecord

    hooks = hooks or PipelineHooks()
    start = time.perf_counter()
    check_experiment(cfg, source=str(source or cfg.name), stages=CHECKED_STAGES)
    check_run_dir(cfg)
    hooks.done("estimate", estimate_for(cfg))
    if not (cfg.run_path / "config.yaml").is_file():
        save_resolved(cfg)  # a new run; an extension's config is saved once the search accepts it

    with hooks.stage("data") as progress:
        ds = load_dataset(cfg, progress=progress)
    hooks.done("data", ds)
    with hooks.stage("pretrain") as progress:
        pretrained = pretrain_all(cfg, ds, list(cfg.modalities), progress=progress)
    hooks.done("pretrain", pretrained)
    with hooks.stage("profile") as progress:
        lut = get_lut(cfg, progress=progress)
    hooks.done("profile", lut)
    with hooks.stage("search") as progress:
        summary = run_search(cfg, problem=problem, progress=progress)
    hooks.done("search", summary)
    with hooks.stage("baselines") as progress:
        baselines_path = run_baselines(cfg, progress=progress)
    hooks.done("baselines", baselines_path)
    with hooks.stage("report") as progress:
        html = report(cfg.run_path, progress=progress)
    hooks.done("report", html)
    if summary.pareto_path is None:
        raise ConfigError("the search wrote no Pareto set; rerun `harmonic-nas search CONFIG`")
    pareto = ParetoRecord.read(summary.pareto_path)
    model_id = pareto.recommended_id()
    with hooks.stage("export") as progress:
        exp = export(cfg.run_path, model_id, export_format, progress=progress)
    hooks.done("export", exp)
    return RunResult(
        run_path=cfg.run_path,
        dataset=ds,
        pretrain=list(pretrained),
        lut=lut,
        search=summary,
        baselines_path=baselines_path,
        report_path=html,
        model_id=model_id,
        export=exp,
        elapsed_s=time.perf_counter() - start,
        pareto=pareto,
    )


@thread_policy
def run_fusion(
    cfg: ExperimentConfig,
    *,
    arch: Mapping[str, Any] | Path | None = None,
    out: Path | None = None,
    seed: int | None = None,
    progress: ProgressFn = no_progress,
) -> FusionRunResult:
    """The inner tier alone, as ``harmonic-nas fusion`` does: search and retrain the fusion
    network of the backbones in ``arch`` (an ARCH.json-like mapping or file; default every max
    subnet)
    with the fusion-operator costs of the device LUT, then write arch.json, weights.pt,
    fusion.json and genotype.png to ``out`` (default ``<run>/fusion``)."""
    from harmonic_nas.data import load_dataset
    from harmonic_nas.fusion.ops import check_ops
    from harmonic_nas.fusion.runner import (
        arch_from_json,
        check_arch_against_dataset,
        max_arch,
        run_inner_tier,
        save_inner_tier,
    )
    from harmonic_nas.hardware.cost import CostModel
    from harmonic_nas.hardware.lut_source import get_lut
    from harmonic_nas.pretrain import load_supernet
    from harmonic_nas.utils.io import read_json

    fc = cfg.fusion
    check_ops(list(fc.ops))
    if isinstance(arch, Path):
        arch = read_json(arch, what="backbones file")
    dataset = load_dataset(cfg, progress=progress)
    n_classes = dataset.num_classes
    if arch is not None:
        spec = arch_from_json(arch, cfg, n_classes)
        check_arch_against_dataset(spec, dataset)
    supernets = {m.name: load_supernet(cfg, m.name, n_classes) for m in dataset.modalities}
    if arch is None:
        spec = max_arch(cfg, supernets, n_classes)
    check_arch_against_dataset(spec, dataset)
    lut = get_lut(cfg, progress=progress)
    model = CostModel(lut, fallback=cfg.device.fallback_predictor)
    op_costs = _op_costs(model, lut, cfg)
    inner = run_inner_tier(
        cfg,
        spec,
        dataset,
        supernets,
        op_costs=op_costs,
        base_cost=model.base_cost(spec),
        seed=seed,
        progress=progress,
    )
    cost = model.cost_arch(inner.arch)
    paths = save_inner_tier(inner, out or cfg.run_path / "fusion")
    return FusionRunResult(inner=inner, cost=cost, device=lut.device.name, paths=paths)


def _op_costs(model: Any, lut: LUT, cfg: ExperimentConfig) -> dict[str, tuple[float, float]]:
    """Fusion operator -> (latency, energy) at the config's C, L; a LUTError naming the missing
    operators otherwise."""
    from harmonic_nas.backbones.layers import LayerSpec
    from harmonic_nas.hardware.keys import lut_key

    fc = cfg.fusion
    try:
        return dict(model.op_costs(fc.C, fc.L, fc.ops))
    except LUTError:
        missing = [
            op
            for op in fc.ops
            if lut_key(LayerSpec("fusion_op", (fc.C, fc.L), fc.C, fc.C, op=op, C=fc.C, L=fc.L))
            not in lut
        ]
        raise LUTError(
            f"the LUT of device '{lut.device.name}' has no cost for fusion operator(s) "
            f"{missing or list(fc.ops)} at C={fc.C}, L={fc.L}; profile them "
            "(`harmonic-nas profile CONFIG`) or set fusion.C/L to a profiled size"
        ) from None


__all__ = [
    "LOCATION_KEYS",
    "STAGES",
    "FusionRunResult",
    "PipelineHooks",
    "RunResult",
    "best_model_id",
    "check_run_dir",
    "recommended_model_id",
    "run",
    "run_fusion",
]
