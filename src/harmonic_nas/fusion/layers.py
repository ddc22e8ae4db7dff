"""The costed layers of an architecture's fusion part, tagged by role, and its live graph.

This module is the one owner of what the fusion part of a model is made of, layer by layer:

* ``point``: one ``fusion_reshape`` per fusion point a cell reads (pool + projection to (C, L));
* ``node``: one ``fusion_op`` per node, cell by cell (the searchable operators the paper costs);
* ``head``: one ``fusion_head`` on the concat of the last ``multiplier`` states;
* ``cell_norm``: one :data:`CELL_NORM` per cell, the cell output ``LayerNorm(last node + x)``.

:func:`fusion_layers` lists them (in that order); :func:`live_graph` says which of them (and which
backbone features) the model's output depends on; :func:`fusion_layer_module` builds the real
module of one such layer (what the profiler times). Costing (``harmonic_nas.hardware``) only looks
these layers up by key and sums them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from torch import nn

from harmonic_nas.backbones.layers import LayerSpec
from harmonic_nas.errors import GenomeError
from harmonic_nas.fusion.arch import ArchSpec
from harmonic_nas.fusion.genotype import FusionGenotype
from harmonic_nas.fusion.points import fusion_point_indices

logger = logging.getLogger(__name__)

#: pseudo-operator costing each fusion cell's output ``LayerNorm(last node + x)``
CELL_NORM = "CellNorm"

Role = Literal["point", "node", "cell_norm", "head"]


@dataclass(frozen=True)
class FusionLayer:
    """One costed layer of a fusion network and where it sits.

    ``at`` is the global fusion-point index ``(i,)`` of a ``point``, ``(cell, node)`` of a
    ``node``, ``(cell,)`` of a ``cell_norm`` and ``()`` for the ``head``.
    """

    role: Role
    spec: LayerSpec
    at: tuple[int, ...] = ()


def reshape_spec(shape: Sequence[int], C: int, L: int) -> LayerSpec:
    """The fusion-point reshape of a (C_in, H, W) map or (D,) vector: ``in_ch`` C_in or D,
    ``out_ch`` C (maps: 1x1 conv) or C*L (vectors: Linear), ``kernel`` 1."""
    shape = tuple(int(s) for s in shape)
    is_map = len(shape) == 3
    return LayerSpec(
        kind="fusion_reshape",
        input_shape=shape,
        in_ch=shape[0],
        out_ch=C if is_map else C * L,
        kernel=1,
        C=C,
        L=L,
    )


def operator_spec(op: str, C: int, L: int) -> LayerSpec:
    """One fusion operator on two (C, L) inputs."""
    return LayerSpec(kind="fusion_op", input_shape=(C, L), in_ch=C, out_ch=C, op=op, C=C, L=L)


def cell_norm_spec(C: int, L: int) -> LayerSpec:
    """A fusion cell's residual add + LayerNorm([C, L]) (two (C, L) inputs, like an operator)."""
    return operator_spec(CELL_NORM, C, L)


def head_spec(multiplier: int, C: int, L: int, n_classes: int) -> LayerSpec:
    """The fusion head (LayerNorm/ReLU/classifier) on the concat of ``multiplier`` states."""
    return LayerSpec(
        kind="fusion_head",
        input_shape=(multiplier * C, L),
        in_ch=multiplier * C * L,
        out_ch=n_classes,
        use_bn=False,
        C=C,
        L=L,
    )


def is_operator(spec: LayerSpec) -> bool:
    """A searchable fusion operator (what the paper costs), not a cell norm."""
    return spec.kind == "fusion_op" and spec.op != CELL_NORM


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


def _genotype(arch: ArchSpec) -> FusionGenotype:
    if arch.genotype is None:
        raise GenomeError("the architecture has no genotype; run the fusion search first")
    return arch.genotype


def fusion_layers(
    arch: ArchSpec, feature_shapes: Mapping[str, Sequence[tuple[int, ...]]]
) -> list[FusionLayer]:
    """Every costed layer of the fusion part of ``arch`` (batch size 1), tagged by role: the
    reshapes of the used fusion points (ascending), the operators cell by cell, the head, then
    one cell norm per cell. Needs ``arch.genotype`` (:class:`GenomeError` otherwise); a late
    fusion (``arch.late_fusion``) has none."""
    if arch.late_fusion:
        return []
    g = _genotype(arch)
    refs = point_refs(arch, feature_shapes)
    g.validate(len(refs))
    C, L = arch.C, arch.L
    out: list[FusionLayer] = []
    for i in used_point_indices(g, len(refs)):
        m, k = refs[i]
        out.append(FusionLayer("point", reshape_spec(feature_shapes[m][k], C, L), (i,)))
    for ci, cell in enumerate(g.cells):
        for ni, node in enumerate(cell.nodes):
            out.append(FusionLayer("node", operator_spec(node.op, C, L), (ci, ni)))
    out.append(FusionLayer("head", head_spec(g.multiplier, C, L, arch.n_classes)))
    out += [FusionLayer("cell_norm", cell_norm_spec(C, L), (ci,)) for ci in range(g.n_cells)]
    return out


def fusion_layer_specs(
    arch: ArchSpec, feature_shapes: Mapping[str, Sequence[tuple[int, ...]]]
) -> list[LayerSpec]:
    """The specs of :func:`fusion_layers` without the cell norms (reshapes, operators, head)."""
    return [x.spec for x in fusion_layers(arch, feature_shapes) if x.role != "cell_norm"]


@dataclass(frozen=True)
class LiveGraph:
    """The parts of an architecture's fusion network that its output depends on.

    :class:`~harmonic_nas.fusion.MultimodalNet` computes every part of the genotype, but a node
    no later node reads (except each cell's last), a cell no later cell reads (except the last
    ``multiplier``), the fusion points only dead cells read, and every backbone feature after the
    deepest live fusion point (including the backbone's own head) do not reach the logits: graph
    exporters (ONNX) drop them, so a backend running the exported graph never executes them.

    ``features[m]`` is how many leading features of modality ``m``'s backbone are live (its
    deepest live fusion point's feature index + 1; 0 when none of its points is live).
    ``heads``: the backbones' own classifiers are live (``arch.late_skip``: their mean logits are
    added to the output), and with them every feature of every backbone.
    """

    points: frozenset[int]
    cells: frozenset[int]
    nodes: frozenset[tuple[int, int]]
    features: dict[str, int]
    heads: bool = False

    def is_live(self, layer: FusionLayer) -> bool:
        """Whether the output depends on ``layer`` (one of :func:`fusion_layers`)."""
        if layer.role == "point":
            return layer.at[0] in self.points
        if layer.role == "node":
            return (layer.at[0], layer.at[1]) in self.nodes
        if layer.role == "cell_norm":
            return layer.at[0] in self.cells
        return True


def live_graph(
    arch: ArchSpec, feature_shapes: Mapping[str, Sequence[tuple[int, ...]]]
) -> LiveGraph:
    """What the model's output depends on (needs ``arch.genotype``, except a late fusion: every
    backbone layer and classifier, no fusion layer)."""
    if arch.late_fusion:
        return LiveGraph(
            points=frozenset(),
            cells=frozenset(),
            nodes=frozenset(),
            features={m: len(feature_shapes[m]) for m in arch.modalities},
            heads=True,
        )
    g = _genotype(arch)
    refs = point_refs(arch, feature_shapes)
    n_points = len(refs)
    needed = {n_points + i for i in range(g.n_cells - g.multiplier, g.n_cells)}
    cells: set[int] = set()
    nodes: set[tuple[int, int]] = set()
    for i in range(g.n_cells - 1, -1, -1):
        if n_points + i not in needed:
            continue
        cells.add(i)
        cell = g.cells[i]
        inner = {2 + len(cell.nodes) - 1}  # the last node feeds the cell's output
        for j in range(len(cell.nodes) - 1, -1, -1):
            if 2 + j in inner:
                nodes.add((i, j))
                inner.update(cell.nodes[j].inputs)
        needed.add(cell.inputs[0])  # x: the residual of the cell's output
        if 1 in inner:
            needed.add(cell.inputs[1])
    points = frozenset(i for i in needed if i < n_points)
    features = dict.fromkeys(arch.modalities, 0)
    for i in points:
        m, k = refs[i]
        features[m] = max(features[m], k + 1)
    if arch.late_skip:
        features = {m: len(feature_shapes[m]) for m in arch.modalities}
    return LiveGraph(
        points=points,
        cells=frozenset(cells),
        nodes=frozenset(nodes),
        features=features,
        heads=arch.late_skip,
    )


def fusion_layer_module(spec: LayerSpec) -> tuple[nn.Module, list[tuple[int, ...]]]:
    """The module computing one fusion layer as the model does, and its input shapes (no batch).

    Operators take two (C, L) states; a cell norm the last node's output and ``x``; a reshape the
    backbone feature; the head ``multiplier`` (C, L) states.
    """
    from harmonic_nas.fusion.network import CellNorm, FusionHead
    from harmonic_nas.fusion.ops import build_op
    from harmonic_nas.fusion.points import FusionReshape

    if spec.kind == "fusion_op":
        module = (
            CellNorm(spec.C, spec.L) if spec.op == CELL_NORM else build_op(spec.op, spec.C, spec.L)
        )
        return module, [(spec.C, spec.L)] * 2
    if spec.kind == "fusion_reshape":
        return FusionReshape(spec.input_shape, spec.C, spec.L), [tuple(spec.input_shape)]
    if spec.kind == "fusion_head":
        mult = spec.input_shape[0] // spec.C
        L = spec.input_shape[1]
        return FusionHead(mult, spec.C, L, spec.out_ch), [(spec.C, L)] * mult
    raise GenomeError(f"a {spec.kind!r} layer is not a fusion layer")
