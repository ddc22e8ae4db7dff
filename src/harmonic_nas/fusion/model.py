"""The deployable multimodal model (backbones + fusion-point pooling + fusion network)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from harmonic_nas.errors import GenomeError
from harmonic_nas.fusion.arch import ArchSpec
from harmonic_nas.fusion.cache import mean_logits
from harmonic_nas.fusion.layers import point_refs
from harmonic_nas.fusion.network import FixedFusionNet
from harmonic_nas.fusion.points import PointPool, pooled_shape

logger = logging.getLogger(__name__)


class MultimodalNet(nn.Module):
    """Backbones + fusion-point pooling + the discrete fusion network: inputs -> logits (with
    ``late_skip``, plus the mean of the backbones' own classifier logits).

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
        if fusion.late_skip != arch.late_skip:
            raise GenomeError(
                f"the architecture says late_skip={arch.late_skip} but the fusion network was "
                f"built with late_skip={fusion.late_skip}; build it from the architecture"
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
        outs = [bb(x) for bb, x in zip(self.backbones, inputs, strict=True)]
        points = [pool(outs[mi][0][k]) for pool, (mi, k) in zip(self.pools, self.refs, strict=True)]
        late = mean_logits([o[1] for o in outs]) if self.fusion.late_skip else None
        out: Tensor = self.fusion(points, late)
        return out


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
