"""The deployable multimodal model and the costed layers of its fusion part."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from harmonic_nas.backbones.layers import LayerSpec
from harmonic_nas.errors import GenomeError
from harmonic_nas.fusion.arch import ArchSpec
from harmonic_nas.fusion.genotype import FusionGenotype
from harmonic_nas.fusion.network import FixedFusionNet
from harmonic_nas.fusion.points import PointPool, fusion_point_indices, pooled_shape

logger = logging.getLogger(__name__)


def point_refs(
    arch: ArchSpec, feature_shapes: Mapping[str, Sequence[tuple[int, ...]]]
) -> list[tuple[str, int]]:
    """``(modality, feature index)`` of every fusion point, modalities in ``arch`` order."""
    missing = [m for m in arch.modalities if m not in feature_shapes]
    if missing:
        raise GenomeError(
            f"no feature shapes for modality(ies) {missing}; pass one list per modality"
        )
    return [
        (m, k)
        for m in arch.modalities
        for k in fusion_point_indices(len(feature_shapes[m]), arch.fusion_points)
    ]


def used_point_indices(genotype: FusionGenotype, n_points: int) -> list[int]:
    """Global indices of the fusion points some cell reads (ascending)."""
    return sorted({i for c in genotype.cells for i in c.inputs if i < n_points})


class MultimodalNet(nn.Module):
    """Backbones + fusion-point pooling + the discrete fusion network: inputs -> logits.

    ``forward(*inputs)`` takes one tensor per modality in ``arch.modalities`` order. The structure
    is static (no data-dependent control flow): it traces and exports to ONNX.
    """

    def __init__(
        self, arch: ArchSpec, backbones: Mapping[str, nn.Module], fusion: FixedFusionNet
    ) -> None:
        super().__init__()
        if arch.genotype is None:
            raise GenomeError("the architecture has no genotype; run the fusion search first")
        if set(backbones) != set(arch.modalities):
            raise GenomeError(
                f"backbones {sorted(backbones)} do not match the architecture's modalities "
                f"{sorted(arch.modalities)}"
            )
        self.arch = arch
        self.modality_names = list(arch.modalities)
        self.backbones = nn.ModuleList(backbones[m] for m in self.modality_names)
        shapes = _probe(self.backbones, [arch.modalities[m].shape for m in self.modality_names])
        refs = point_refs(arch, dict(zip(self.modality_names, shapes, strict=True)))
        if len(refs) != fusion.n_points:
            raise GenomeError(
                f"the fusion network expects {fusion.n_points} fusion points but these backbones "
                f"give {len(refs)}; rebuild it for these backbones"
            )
        self.fusion = fusion
        mod_index = {m: i for i, m in enumerate(self.modality_names)}
        self.refs: list[tuple[int, int]] = [
            (mod_index[refs[g][0]], refs[g][1]) for g in fusion.used_points
        ]
        self.pools = nn.ModuleList(PointPool(shapes[mi][k], arch.L) for mi, k in self.refs)
        for g, (mi, k) in zip(fusion.used_points, self.refs, strict=True):
            if pooled_shape(shapes[mi][k], arch.L) != tuple(fusion.point_shapes[g]):
                raise GenomeError(
                    f"fusion point {g} has shape {shapes[mi][k]} but the fusion network was built "
                    f"for {fusion.point_shapes[g]}; the backbones differ from the searched ones"
                )

    def forward(self, *inputs: Tensor) -> Tensor:
        feats = [bb(x)[0] for bb, x in zip(self.backbones, inputs, strict=True)]
        points = [pool(feats[mi][k]) for pool, (mi, k) in zip(self.pools, self.refs, strict=True)]
        return self.fusion(points)


def live_parameters(model: nn.Module, inputs: Sequence[Tensor]) -> int:
    """Number of parameters the output of ``model(*inputs)`` depends on.

    Layers a model computes but whose outputs never reach its logits (a backbone's own classifier
    and the layers after its deepest used fusion point, fusion nodes no later node reads, ...) do
    not count: they are not part of the deployed (exported, pruned) graph.
    """
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    was = model.training
    try:
        for p in params:
            p.requires_grad_(True)
        model.eval()
        with torch.enable_grad():
            out = model(*inputs)
            grads = torch.autograd.grad(out.sum(), params, allow_unused=True)
    finally:
        for p, f in zip(params, flags, strict=True):
            p.requires_grad_(f)
        model.train(was)
    return int(sum(p.numel() for p, g in zip(params, grads, strict=True) if g is not None))


@torch.no_grad()
def _probe(
    backbones: nn.ModuleList, shapes: Sequence[tuple[int, ...]]
) -> list[list[tuple[int, ...]]]:
    out = []
    for bb, shape in zip(backbones, shapes, strict=True):
        was = bb.training
        bb.eval()
        p = next(bb.parameters(), None)
        dev = p.device if p is not None else torch.device("cpu")
        feats = bb(torch.zeros((2, *shape), device=dev))[0]
        bb.train(was)
        out.append([tuple(f.shape[1:]) for f in feats])
    return out


def fusion_layer_specs(
    arch: ArchSpec, feature_shapes: Mapping[str, Sequence[tuple[int, ...]]]
) -> list[LayerSpec]:
    """The costed layers of the fusion part of ``arch`` (batch size 1).

    * ``fusion_reshape``: one per fusion point a cell reads. ``input_shape`` is the backbone
      feature (C_in, H, W) or (D,); ``in_ch`` C_in or D; ``out_ch`` C (maps) or C*L (vectors);
      ``kernel`` 1; ``C``, ``L``.
    * ``fusion_op``: one per node, cell by cell: ``op``, ``input_shape`` (C, L), in/out C, C, L.
    * ``fusion_head``: LayerNorm/ReLU/classifier on the concat of the last ``multiplier`` states:
      ``input_shape`` (multiplier*C, L), ``in_ch`` multiplier*C*L, ``out_ch`` n_classes, C, L.
    """
    g = arch.genotype
    if g is None:
        raise GenomeError("the architecture has no genotype; run the fusion search first")
    refs = point_refs(arch, feature_shapes)
    g.validate(len(refs))
    C, L = arch.C, arch.L
    specs: list[LayerSpec] = []
    for i in used_point_indices(g, len(refs)):
        m, k = refs[i]
        shape = tuple(feature_shapes[m][k])
        is_map = len(shape) == 3
        specs.append(
            LayerSpec(
                kind="fusion_reshape",
                input_shape=shape,
                in_ch=shape[0],
                out_ch=C if is_map else C * L,
                kernel=1,
                C=C,
                L=L,
            )
        )
    for cell in g.cells:
        for node in cell.nodes:
            specs.append(
                LayerSpec(
                    kind="fusion_op", input_shape=(C, L), in_ch=C, out_ch=C, op=node.op, C=C, L=L
                )
            )
    mult = g.multiplier
    specs.append(
        LayerSpec(
            kind="fusion_head",
            input_shape=(mult * C, L),
            in_ch=mult * C * L,
            out_ch=arch.n_classes,
            use_bn=False,
            C=C,
            L=L,
        )
    )
    return specs
