"""The searchable (continuous) and fixed (discrete) fusion networks over fusion points.

Both share one structure (BM-NAS cells):

* states = projected fusion points ``(B, C, L)``, then one state per cell;
* cell ``i`` reads a FIRST and a SECOND input among the states before it. During the search each
  is a softmax-weighted mix of those states with its OWN architecture weights (``alpha``), so the
  operators receive two different tensors (BM-NAS fed the same tensor twice);
* inside a cell, inner states are ``[x, y, node_0, ...]``; node 0 applies its operator to
  ``(x, y)`` (which input is first is already chosen by the cell's ``alpha``); node ``j >= 1``
  mixes its first and second input among the inner states before it with its own pair of
  weight vectors (``beta``); every node is a DARTS mixed operator (``gamma`` over operators);
  the cell's output is ``LayerNorm(node_last + x)`` (BM-NAS' residual, node multiplier 1);
* the network output concatenates the last ``multiplier`` states -> LayerNorm -> ReLU -> Linear;
* with ``late_skip`` the mean of the backbones' own (frozen) classifier logits is added to it: the
  network learns a correction of late fusion (``late-fusion-avg``) and its predictions start from
  that baseline's, however small the fusion training set (:func:`add_late`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harmonic_nas.errors import GenomeError
from harmonic_nas.fusion.genotype import CellGenotype, FusionGenotype, NodeGenotype
from harmonic_nas.fusion.ops import Dropout, build_op, catconv_class, check_ops
from harmonic_nas.fusion.points import PointProjection

if TYPE_CHECKING:
    from harmonic_nas.fusion.arch import ArchSpec

logger = logging.getLogger(__name__)


class _WeightedSum(torch.autograd.Function):
    """``sum_j w[j] * s_j`` for n same-shape tensors, with a lean backward.

    autograd of an ``addcmul`` chain computes each weight's gradient as ``(grad * s_j).sum()``
    (a temporary per state); here it is one dot product per state. Stacking the states and
    using a matmul is worse still: its backward is a K=1 outer product, slow in BLAS.
    """

    @staticmethod
    def forward(ctx: Any, w: Tensor, *states: Tensor) -> Tensor:
        wl = w.tolist()
        out = states[0] * wl[0]
        for j in range(1, len(states)):
            out.add_(states[j], alpha=wl[j])
        ctx.wl = wl
        ctx.save_for_backward(*states)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        states = ctx.saved_tensors
        wl = ctx.wl
        grad_w = None
        if ctx.needs_input_grad[0]:
            g = grad.reshape(-1)
            grad_w = torch.stack([torch.dot(s.reshape(-1), g) for s in states])
        grads = [grad * wl[j] if ctx.needs_input_grad[j + 1] else None for j in range(len(states))]
        return (grad_w, *grads)


def _weighted_sum(weights: Tensor, states: Sequence[Tensor]) -> Tensor:
    """``sum_j weights[j] * states[j]`` (differentiable in both; weights is 1-D)."""
    out: Tensor = _WeightedSum.apply(weights, *states)
    return out


def add_late(out: Tensor, late: Tensor | None, late_skip: bool) -> Tensor:
    """``out + late`` for a network with ``late_skip`` (``late``: the mean of the backbones' own
    classifier logits, ``(B, n_classes)``), ``out`` otherwise."""
    if not late_skip:
        return out
    if late is None:
        raise ValueError("a fusion network with late_skip needs the backbones' mean logits")
    return out + late


def _top2(w: Tensor) -> tuple[int, int]:
    """Argmax of row 0 and of row 1, the second forced to differ from the first."""
    first = int(w[0].argmax())
    order = torch.argsort(w[1], descending=True).tolist()
    second = order[0] if order[0] != first or len(order) == 1 else order[1]
    return first, int(second)


class CellNorm(nn.LayerNorm):
    """A fusion cell's output layer: ``LayerNorm(last node + x)`` (BM-NAS' residual); its
    parameters are those of the ``LayerNorm([C, L])`` it is."""

    def __init__(self, C: int, L: int) -> None:
        super().__init__([C, L])

    def forward(self, node: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        return F.layer_norm(node + x, self.normalized_shape, self.weight, self.bias, self.eps)


class HeadNorm(nn.LayerNorm):
    """The head's first part: concat of the last ``multiplier`` (C, L) states -> LayerNorm ->
    ReLU; its parameters are those of the ``LayerNorm([multiplier * C, L])`` it is."""

    def __init__(self, multiplier: int, C: int, L: int) -> None:
        super().__init__([multiplier * C, L])

    def forward(self, states: list[Tensor]) -> Tensor:  # type: ignore[override]
        out = torch.cat(states, dim=1)
        return F.relu(F.layer_norm(out, self.normalized_shape, self.weight, self.bias, self.eps))


class FusionHead(nn.Module):
    """The fusion network's whole head as one module (:class:`HeadNorm`, then the classifier on
    the flattened result), as the networks compute it; the profiler times it."""

    def __init__(self, multiplier: int, C: int, L: int, n_classes: int) -> None:
        super().__init__()
        self.head_ln = HeadNorm(multiplier, C, L)
        self.classifier = nn.Linear(multiplier * C * L, n_classes)

    def forward(self, *states: Tensor) -> Tensor:
        out: Tensor = self.classifier(self.head_ln(list(states)).flatten(1))
        return out


class MixedOp(nn.Module):
    """DARTS mixed operator: ``sum_k w_k op_k(x, y)``.

    The concat -> 1x1 conv -> BN operators (LinearGLU, ConcatFC, CatConvMish, any
    :class:`~harmonic_nas.fusion.ops.CatConv`) share their input ``cat(x, y)``: here their convs
    are ONE linear layer (weights stacked, same initialisation as separate convs) on a
    ``(B*L, 2C)`` matrix and their BNs one BN over the stacked channels; each operator's
    activation and dropout then act on its own channel range. The result is the same function
    as calling the operators one by one, with far fewer kernel calls.
    """

    cat_index: Tensor
    other_index: Tensor

    def __init__(self, ops: Sequence[str], C: int, L: int, dropout: float) -> None:
        super().__init__()
        self.names = list(ops)
        self.C = C
        classes = [catconv_class(n) for n in ops]
        self.cat_ids = [i for i, c in enumerate(classes) if c is not None]
        self.other_ids = [i for i, c in enumerate(classes) if c is None]
        self.ops = nn.ModuleList(build_op(ops[i], C, L, dropout) for i in self.other_ids)
        self.acts = [c.act for c in classes if c is not None]
        self.widths = [c.out_mult * C for c in classes if c is not None]
        if self.cat_ids:
            self.cat_linear = nn.Linear(2 * C, sum(self.widths))
            self.cat_bn = nn.BatchNorm1d(sum(self.widths))
            self.cat_dropout = Dropout(dropout)
        self.register_buffer("cat_index", torch.tensor(self.cat_ids, dtype=torch.long), False)
        self.register_buffer("other_index", torch.tensor(self.other_ids, dtype=torch.long), False)

    def forward(self, x: Tensor, y: Tensor, w: Tensor) -> Tensor:
        out: Tensor | None = None
        if self.cat_ids:
            B, C, L = x.shape
            xy = torch.cat([x.transpose(1, 2), y.transpose(1, 2)], dim=2).reshape(B * L, 2 * C)
            z = self.cat_bn(self.cat_linear(xy))  # (B*L, channels): channels last
            parts = torch.split(z, self.widths, dim=1)
            outs = [self.cat_dropout(act(zp)) for act, zp in zip(self.acts, parts, strict=True)]
            mixed = _weighted_sum(w.index_select(0, self.cat_index), outs)
            out = mixed.view(B, L, C).transpose(1, 2)
        if self.other_ids:
            rest = _weighted_sum(w.index_select(0, self.other_index), [op(x, y) for op in self.ops])
            out = rest if out is None else rest + out
        assert out is not None
        return out


class _ProjectionGroup(nn.Module):
    """k fusion points of one pooled shape projected at once; same function as k
    :class:`~harmonic_nas.fusion.points.PointProjection` (1x1 conv / Linear without bias, BN,
    ReLU, dropout), as one batched matmul and one BN over the k x C channels."""

    def __init__(self, shape: tuple[int, ...], k: int, C: int, L: int, dropout: float) -> None:
        super().__init__()
        self.k, self.C, self.L = k, C, L
        self.is_map = len(shape) == 3
        fan_in = shape[0]
        width = C if self.is_map else C * L
        bound = 1.0 / math.sqrt(fan_in)  # kaiming_uniform(a=sqrt(5)), as nn.Conv2d / nn.Linear
        self.weight = nn.Parameter(torch.empty(k, fan_in, width).uniform_(-bound, bound))
        self.bn = nn.BatchNorm1d(k * width)
        self.dropout = Dropout(dropout)

    def forward(self, points: Sequence[Tensor]) -> list[Tensor]:
        B = points[0].shape[0]
        if self.is_map:
            x = torch.stack(list(points)).flatten(3).transpose(2, 3)  # (k, B, L, Cin)
            z = torch.matmul(x.reshape(self.k, -1, x.shape[-1]), self.weight)  # (k, B*L, C)
            z = z.transpose(0, 1).reshape(B * self.L, self.k * self.C)
            z = self.dropout(F.relu(self.bn(z))).view(B, self.L, self.k, self.C)
            # one copy to (k, B, C, L): every state contiguous (cheaper downstream)
            return list(z.permute(2, 0, 3, 1).contiguous().unbind(0))
        x = torch.stack(list(points))  # (k, B, D)
        z = torch.bmm(x, self.weight).transpose(0, 1).reshape(B, -1)  # (B, k*C*L)
        z = self.dropout(F.relu(self.bn(z))).view(B, self.k, self.C, self.L)
        return list(z.transpose(0, 1).contiguous().unbind(0))


class ProjectionBank(nn.Module):
    """All fusion-point projections of the search network, grouped by pooled shape."""

    def __init__(
        self, point_shapes: Sequence[tuple[int, ...]], C: int, L: int, dropout: float
    ) -> None:
        super().__init__()
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, s in enumerate(point_shapes):
            groups.setdefault(tuple(s), []).append(i)
        self.members = list(groups.values())
        self.groups = nn.ModuleList(
            _ProjectionGroup(shape, len(ids), C, L, dropout) for shape, ids in groups.items()
        )
        self.n = len(point_shapes)

    def forward(self, points: Sequence[Tensor]) -> list[Tensor]:
        out: list[Tensor | None] = [None] * self.n
        for ids, group in zip(self.members, self.groups, strict=True):
            for i, state in zip(ids, group([points[i] for i in ids]), strict=True):
                out[i] = state
        return [t for t in out if t is not None]


class SearchCell(nn.Module):
    """One searchable fusion cell with ``nodes`` inner mixed nodes."""

    def __init__(self, nodes: int, ops: Sequence[str], C: int, L: int, dropout: float) -> None:
        super().__init__()
        self.n_nodes = nodes
        self.mixed = nn.ModuleList(MixedOp(ops, C, L, dropout) for _ in range(nodes))
        self.ln = CellNorm(C, L)

    def forward(self, x: Tensor, y: Tensor, betas: Sequence[Tensor], gamma: Tensor) -> Tensor:
        inner = [x, y]
        for j, op in enumerate(self.mixed):
            if j == 0:
                inner.append(op(x, y, gamma[0]))
            else:
                a = _weighted_sum(betas[j - 1][0], inner)
                b = _weighted_sum(betas[j - 1][1], inner)
                inner.append(op(a, b, gamma[j]))
        return self.ln(inner[-1], x)


class SearchNetwork(nn.Module):
    """The continuous relaxation: all fusion points, cells of mixed nodes, classifier head.

    Architecture parameters (``arch_parameters()``): per cell ``alpha`` (2 x states before it),
    per node after the first ``beta`` (2 x inner states before it), per cell ``gamma``
    (nodes x ops). Everything
    else is a network weight (``weight_parameters()``).
    """

    def __init__(
        self,
        point_shapes: Sequence[tuple[int, ...]],
        *,
        C: int,
        L: int,
        cells: int,
        nodes: int,
        multiplier: int,
        ops: Sequence[str],
        n_classes: int,
        dropout: float = 0.1,
        generator: torch.Generator | None = None,
        late_skip: bool = False,
    ) -> None:
        super().__init__()
        check_ops(list(ops))
        self.late_skip = late_skip
        self.ops = list(ops)
        self.C, self.L = C, L
        self.n_points = len(point_shapes)
        self.n_cells, self.n_nodes = cells, nodes
        self.multiplier = min(multiplier, cells)
        self.projections = ProjectionBank(point_shapes, C, L, dropout)
        self.cells = nn.ModuleList(SearchCell(nodes, ops, C, L, dropout) for _ in range(cells))
        self.head_ln = HeadNorm(self.multiplier, C, L)
        self.classifier = nn.Linear(self.multiplier * C * L, n_classes)

        def init(*shape: int) -> nn.Parameter:
            return nn.Parameter(1e-3 * torch.randn(*shape, generator=generator))

        self.alphas = nn.ParameterList(init(2, self.n_points + i) for i in range(cells))
        self.betas = nn.ParameterList(init(2, 2 + j) for _ in range(cells) for j in range(1, nodes))
        self.gammas = nn.ParameterList(init(nodes, len(ops)) for _ in range(cells))

    def arch_parameters(self) -> list[nn.Parameter]:
        return [*self.alphas, *self.betas, *self.gammas]

    def weight_parameters(self) -> Iterator[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return (p for p in self.parameters() if id(p) not in arch)

    def op_weights(self) -> Tensor:
        """Softmax operator weights of every node, ``(cells * nodes, n_ops)``."""
        return torch.cat([F.softmax(g, dim=-1) for g in self.gammas], dim=0)

    def forward(self, points: Sequence[Tensor], late: Tensor | None = None) -> Tensor:
        states = self.projections(points)
        for i, cell in enumerate(self.cells):
            alpha = F.softmax(self.alphas[i], dim=-1)
            x, y = _weighted_sum(alpha[0], states), _weighted_sum(alpha[1], states)
            per = self.n_nodes - 1
            betas = [F.softmax(self.betas[i * per + j], dim=-1) for j in range(per)]
            states.append(cell(x, y, betas, F.softmax(self.gammas[i], dim=-1)))
        out = self.classifier(self.head_ln(states[-self.multiplier :]).flatten(1))
        return add_late(out, late, self.late_skip)

    @torch.no_grad()
    def genotype(self) -> FusionGenotype:
        """The discrete architecture: argmax inputs (first != second) and argmax operators."""
        cells = []
        for i in range(self.n_cells):
            nodes = []
            gamma = self.gammas[i]
            for j in range(self.n_nodes):
                op = self.ops[int(gamma[j].argmax())]
                inputs = (0, 1) if j == 0 else _top2(self.betas[i * (self.n_nodes - 1) + j - 1])
                nodes.append(NodeGenotype(op, inputs))
            cells.append(CellGenotype(_top2(self.alphas[i]), tuple(nodes)))
        return FusionGenotype(tuple(cells), self.multiplier)


# --------------------------------------------------------------------------------------------
# Discrete network (scriptable, traceable, ONNX-exportable: static structure only)


class FixedNode(nn.Module):
    def __init__(self, node: NodeGenotype, C: int, L: int, dropout: float) -> None:
        super().__init__()
        self.i0, self.i1 = node.inputs
        self.op = build_op(node.op, C, L, dropout)

    def forward(self, inner: list[Tensor]) -> Tensor:
        return self.op(inner[self.i0], inner[self.i1])


class FixedCell(nn.Module):
    def __init__(
        self, cell: CellGenotype, in0: int, in1: int, C: int, L: int, dropout: float
    ) -> None:
        super().__init__()
        self.i0, self.i1 = in0, in1
        self.nodes = nn.ModuleList(FixedNode(n, C, L, dropout) for n in cell.nodes)
        self.ln = CellNorm(C, L)

    def forward(self, states: list[Tensor]) -> Tensor:
        x = states[self.i0]
        inner = [x, states[self.i1]]
        for node in self.nodes:
            inner.append(node(inner))
        return self.ln(inner[-1], x)


class FixedFusionNet(nn.Module):
    """The discrete fusion network of a genotype.

    ``forward(points, late)`` takes the pooled features of the USED fusion points only, in the
    order of ``used_points`` (global fusion-point indices; unused points are never projected),
    and with ``late_skip`` the mean of the backbones' own classifier logits.
    """

    def __init__(
        self,
        point_shapes: Sequence[tuple[int, ...]],
        genotype: FusionGenotype,
        *,
        C: int,
        L: int,
        n_classes: int,
        dropout: float = 0.1,
        late_skip: bool = False,
    ) -> None:
        super().__init__()
        n_points = len(point_shapes)
        self.late_skip = late_skip
        genotype.validate(n_points)
        self.genotype = genotype
        self.C, self.L, self.n_classes = C, L, n_classes
        self.n_points = n_points
        self.point_shapes = [tuple(s) for s in point_shapes]
        self.multiplier = genotype.multiplier
        used = sorted({i for c in genotype.cells for i in c.inputs if i < n_points})
        self.used_points: list[int] = used
        self.projections = nn.ModuleList(
            PointProjection(self.point_shapes[i], C, L, dropout) for i in used
        )
        # global state index -> local index (used points first, then cells)
        remap = {g: k for k, g in enumerate(used)}
        for i in range(genotype.n_cells):
            remap[n_points + i] = len(used) + i
        self.cells = nn.ModuleList(
            FixedCell(c, remap[c.inputs[0]], remap[c.inputs[1]], C, L, dropout)
            for c in genotype.cells
        )
        self.head_ln = HeadNorm(self.multiplier, C, L)
        self.classifier = nn.Linear(self.multiplier * C * L, n_classes)

    @classmethod
    def for_arch(cls, arch: ArchSpec, point_shapes: Sequence[tuple[int, ...]]) -> FixedFusionNet:
        """The (untrained) fusion network an architecture file describes."""
        if arch.genotype is None:
            raise GenomeError("the architecture has no genotype; run the fusion search first")
        return cls(
            point_shapes,
            arch.genotype,
            C=arch.C,
            L=arch.L,
            n_classes=arch.n_classes,
            late_skip=arch.late_skip,
        )

    def forward(self, points: list[Tensor], late: Tensor | None = None) -> Tensor:
        states: list[Tensor] = []
        for k, proj in enumerate(self.projections):
            states.append(proj(points[k]))
        for cell in self.cells:
            states.append(cell(states))
        out = self.classifier(self.head_ln(states[-self.multiplier :]).flatten(1))
        return add_late(out, late, self.late_skip)
