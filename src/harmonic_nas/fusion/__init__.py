"""Inner tier: differentiable (DARTS) fusion search over frozen backbone features (BM-NAS cells).

Public API: the operator registry, genotypes, ARCH.json, feature cache, search and retraining,
the deployable :class:`MultimodalNet`, costing specs and the genotype diagram.
"""

from __future__ import annotations

from harmonic_nas.fusion.arch import ARCH_SCHEMA_VERSION, ArchSpec, ModalityArch
from harmonic_nas.fusion.cache import (
    CachedSplit,
    FeatureCache,
    FeatureSplit,
    LiveSplit,
    compute_feature_cache,
    live_feature_source,
    probe_feature_shapes,
)
from harmonic_nas.fusion.draw import draw_genotype
from harmonic_nas.fusion.genotype import (
    MAX_CELLS,
    MAX_NODES,
    CellGenotype,
    FusionGenotype,
    NodeGenotype,
)
from harmonic_nas.fusion.hardware_term import BaseCost, OpCosts
from harmonic_nas.fusion.layers import (
    CELL_NORM,
    FusionLayer,
    LiveGraph,
    cell_norm_spec,
    fusion_layer_module,
    fusion_layer_specs,
    fusion_layers,
    head_spec,
    is_operator,
    live_graph,
    operator_spec,
    point_refs,
    reshape_spec,
    used_point_indices,
)
from harmonic_nas.fusion.model import MultimodalNet
from harmonic_nas.fusion.network import CellNorm, FixedFusionNet, FusionHead, SearchNetwork
from harmonic_nas.fusion.ops import build_op, check_ops, list_ops, register_op
from harmonic_nas.fusion.points import (
    FusionReshape,
    PointPool,
    PointProjection,
    fusion_point_indices,
)
from harmonic_nas.fusion.search import (
    FusionDiverged,
    FusionResult,
    evaluate,
    metric,
    search_fusion,
    train_fixed,
    weighted_f1,
)

__all__ = [
    "ARCH_SCHEMA_VERSION",
    "CELL_NORM",
    "MAX_CELLS",
    "MAX_NODES",
    "ArchSpec",
    "BaseCost",
    "CachedSplit",
    "CellGenotype",
    "CellNorm",
    "FeatureCache",
    "FeatureSplit",
    "FixedFusionNet",
    "FusionDiverged",
    "FusionGenotype",
    "FusionHead",
    "FusionLayer",
    "FusionReshape",
    "FusionResult",
    "LiveGraph",
    "LiveSplit",
    "ModalityArch",
    "MultimodalNet",
    "NodeGenotype",
    "OpCosts",
    "PointPool",
    "PointProjection",
    "SearchNetwork",
    "build_op",
    "cell_norm_spec",
    "check_ops",
    "compute_feature_cache",
    "draw_genotype",
    "evaluate",
    "fusion_layer_module",
    "fusion_layer_specs",
    "fusion_layers",
    "fusion_point_indices",
    "head_spec",
    "is_operator",
    "list_ops",
    "live_feature_source",
    "live_graph",
    "metric",
    "operator_spec",
    "point_refs",
    "probe_feature_shapes",
    "register_op",
    "reshape_spec",
    "search_fusion",
    "train_fixed",
    "used_point_indices",
    "weighted_f1",
]
