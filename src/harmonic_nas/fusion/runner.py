"""The inner tier for given backbones: extract subnets, cache features, search, retrain, assemble.

The cost source is pluggable: pass ``op_costs`` (op -> (latency_ms, energy_mj) at the config's
C, L), e.g. from ``harmonic_nas.hardware`` (which this package must not import).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from harmonic_nas.config import ExperimentConfig
from harmonic_nas.data.fusion_split import fusion_dataset
from harmonic_nas.errors import DataError, GenomeError
from harmonic_nas.fusion.arch import ArchSpec, ModalityArch
from harmonic_nas.fusion.cache import FeatureCache, compute_feature_cache
from harmonic_nas.fusion.hardware_term import BaseCost, OpCosts
from harmonic_nas.fusion.model import MultimodalNet
from harmonic_nas.fusion.search import FusionResult, search_fusion
from harmonic_nas.utils.device import compute_device
from harmonic_nas.utils.io import atomic_torch_save, atomic_write_json
from harmonic_nas.utils.progress import ProgressFn, no_progress
from harmonic_nas.utils.threads import thread_policy

if TYPE_CHECKING:
    from harmonic_nas.data.types import MultimodalDataset

logger = logging.getLogger(__name__)


@dataclass
class InnerTierResult:
    """A searched, retrained multimodal model and what produced it."""

    arch: ArchSpec  # with genotype
    result: FusionResult
    model: MultimodalNet  # eval mode
    cache: FeatureCache


def check_arch_against_dataset(arch: ArchSpec, dataset: MultimodalDataset) -> None:
    """One-line DataError when the architecture's modalities/shapes are not the dataset's."""
    have = {m.name: m for m in dataset.modalities}
    if set(arch.modalities) != set(have):
        raise DataError(
            f"the backbones' modalities {sorted(arch.modalities)} do not match dataset "
            f"'{dataset.name}' ({sorted(have)}); give one backbone per dataset modality"
        )
    for m, ma in arch.modalities.items():
        if tuple(ma.shape) != tuple(have[m].shape):
            raise DataError(
                f"modality '{m}' has shape {list(ma.shape)} in the architecture but "
                f"{list(have[m].shape)} in dataset '{dataset.name}'; fix the architecture file"
            )


def arch_from_json(data: Any, cfg: ExperimentConfig, n_classes: int) -> ArchSpec:
    """An :class:`ArchSpec` from an ARCH.json-like object; cells/nodes default to the config's,
    and C, L, fusion_points and n_classes always come from the config / dataset."""
    if not isinstance(data, dict):
        raise GenomeError("the backbones file must be a JSON object like ARCH.json")
    filled = dict(data)
    filled.setdefault("cells", cfg.fusion.cells)
    filled.setdefault("nodes", cfg.fusion.nodes)
    for key, value in (
        ("C", cfg.fusion.C),
        ("L", cfg.fusion.L),
        ("fusion_points", cfg.fusion.fusion_points),
        ("n_classes", n_classes),
        ("late_skip", cfg.fusion.late_skip),
    ):
        if key in filled and filled[key] != value:
            logger.warning(
                "backbones file: %s=%s replaced by the config's %s", key, filled[key], value
            )
        filled[key] = value
    filled["genotype"] = None
    return ArchSpec.from_json(filled)


def max_arch(cfg: ExperimentConfig, supernets: Mapping[str, Any], n_classes: int) -> ArchSpec:
    """The architecture of every supernet's max subnet, with the config's fusion settings."""
    return ArchSpec(
        modalities={
            m: ModalityArch(
                cfg.modalities[m].preset, tuple(cfg.modalities[m].shape), sn.max_genome()
            )
            for m, sn in supernets.items()
        },
        cells=cfg.fusion.cells,
        nodes=cfg.fusion.nodes,
        C=cfg.fusion.C,
        L=cfg.fusion.L,
        fusion_points=cfg.fusion.fusion_points,
        n_classes=n_classes,
        late_skip=cfg.fusion.late_skip,
    )


def extract_backbones(
    cfg: ExperimentConfig, arch: ArchSpec, supernets: Mapping[str, Any]
) -> dict[str, nn.Module]:
    """One static subnet per modality (supernet weights copied), after validating the genomes."""
    out: dict[str, nn.Module] = {}
    for m, ma in arch.modalities.items():
        preset = cfg.modalities[m].preset if m in cfg.modalities else ma.preset
        if ma.preset != preset:
            raise GenomeError(
                f"modality '{m}' uses preset '{ma.preset}' in the architecture but '{preset}' in "
                "the config; use the config's supernet preset"
            )
        sn = supernets[m]
        try:
            sn.validate(ma.genome)
        except GenomeError as exc:
            raise GenomeError(f"modality '{m}': {exc}") from None
        out[m] = sn.extract(ma.genome)
    return out


@thread_policy
def run_inner_tier(
    cfg: ExperimentConfig,
    arch: ArchSpec,
    dataset: MultimodalDataset,
    supernets: Mapping[str, Any],
    *,
    op_costs: OpCosts | None,
    base_cost: BaseCost | None = None,
    seed: int | None = None,
    device: torch.device | None = None,
    progress: ProgressFn = no_progress,
) -> InnerTierResult:
    """Extract ``arch``'s backbones from ``supernets``, search and retrain its fusion network.

    ``base_cost`` (the candidate's cost outside its fusion operators) scales the hardware term.
    The fusion network trains on the dataset's ``fusion`` split when it has one
    (``fusion.fusion_split``), else on train."""
    device = device or compute_device(cfg)
    check_arch_against_dataset(arch, dataset)
    backbones = extract_backbones(cfg, arch, supernets)
    cache = compute_feature_cache(
        backbones,
        fusion_dataset(dataset),
        L=cfg.fusion.L,
        fusion_points=cfg.fusion.fusion_points,
        bn_recalib_batches=cfg.pretrain.bn_recalib_batches,
        batch_size=cfg.pretrain.batch_size,
        device=device,
        seed=cfg.seed,
        progress=progress,
    )
    res = search_fusion(
        cache,
        cfg.fusion,
        cells=arch.cells,
        nodes=arch.nodes,
        op_costs=op_costs,
        base_cost=base_cost,
        seed=cfg.seed if seed is None else seed,
        device=device,
        progress=progress,
        precision=cfg.compute.precision,
    )
    final = arch.with_genotype(res.genotype)
    model = MultimodalNet(final, backbones, res.net).eval()
    return InnerTierResult(final, res, model, cache)


def save_inner_tier(out: InnerTierResult, directory: Path) -> dict[str, Path]:
    """Write arch.json, weights.pt (MultimodalNet state dict), fusion.json (history), genotype.png."""
    from harmonic_nas.fusion.draw import draw_genotype

    directory = Path(directory)
    paths = {
        "arch": out.arch.save(directory / "arch.json"),
        "weights": atomic_torch_save(
            directory / "weights.pt",
            {k: v.detach().cpu() for k, v in out.model.state_dict().items()},
        ),
        "history": atomic_write_json(
            directory / "fusion.json",
            {
                "genotype": out.result.genotype.to_json(),
                "val_metric": out.result.val_metric,
                "search_metric": out.result.search_metric,
                "best_epoch": out.result.best_epoch,
                "params": out.result.params,
                "timings": out.result.timings,
                "history": out.result.history,
            },
            schema_version=1,
        ),
        "diagram": draw_genotype(
            out.arch, directory / "genotype.png", feature_shapes=out.cache.feature_shapes
        ),
    }
    return paths
