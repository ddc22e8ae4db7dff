"""A PNG diagram of a fused architecture: modalities, chosen fusion points, cells and operators."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harmonic_nas.errors import GenomeError
from harmonic_nas.fusion.arch import ArchSpec
from harmonic_nas.fusion.layers import point_refs, used_point_indices

logger = logging.getLogger(__name__)


def _shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(int(d)) for d in shape)


@dataclass(frozen=True)
class DiagramPoint:
    """One fusion point as the diagram shows it: its global index (what the genotype's cells
    read), the backbone feature it is (modality, feature index, shape) and whether a cell reads
    it."""

    index: int
    modality: str
    feature: int
    shape: tuple[int, ...]
    final: bool
    used: bool

    @property
    def label(self) -> str:
        what = "final" if self.final else f"f{self.feature}"
        return f"{self.modality} {what}\n{_shape_text(self.shape)}"


def diagram_points(
    arch: ArchSpec, feature_shapes: Mapping[str, Sequence[tuple[int, ...]]]
) -> list[DiagramPoint]:
    """The fusion points of ``arch`` in genotype order, from the backbones' real feature shapes
    (the model's own layout, :func:`harmonic_nas.fusion.layers.point_refs`); a one-line
    GenomeError when the genotype does not fit them."""
    g = arch.genotype
    if g is None:
        raise GenomeError("the architecture has no genotype to draw; run the fusion search first")
    refs = point_refs(arch, feature_shapes)
    g.validate(len(refs))
    used = set(used_point_indices(g, len(refs)))
    return [
        DiagramPoint(
            index=i,
            modality=m,
            feature=k,
            shape=tuple(int(d) for d in feature_shapes[m][k]),
            final=k == len(feature_shapes[m]) - 1,
            used=i in used,
        )
        for i, (m, k) in enumerate(refs)
    ]


def draw_genotype(
    arch: ArchSpec,
    path: Path | str,
    feature_shapes: Mapping[str, Sequence[tuple[int, ...]]],
) -> Path:
    """Draw ``arch`` (which must have a genotype) to a PNG at ``path``; returns the path.

    ``feature_shapes`` (per modality, the shapes of all the backbone's features, as the model or
    the layer inventory gives them) places the fusion points exactly as the model reads them
    (:func:`diagram_points`): each is labelled with its modality, feature index (``final``: the
    backbone's final representation) and shape; the ones some cell reads are highlighted. The
    canvas grows with the cells, nodes and points, so nothing is clipped.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    points = diagram_points(arch, feature_shapes)
    g = arch.genotype
    assert g is not None
    n_points = len(points)
    n_cells = g.n_cells
    point_h = 0.8  # a point box: two lines (name, shape)
    cell_h = max(0.35 * (len(c.nodes) + 1) + 0.3 for c in g.cells)
    head_h = 1.2 if arch.late_skip else 0.8
    span = max(n_points * (point_h + 0.2), cell_h, head_h) + 1.0  # data units, margins included
    width = 3.2 * (n_cells + 2)
    height = max(span * 0.75, 2.5)
    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_xlim(0, n_cells + 2)
    ax.set_ylim(0, span)
    ax.axis("off")
    pos: dict[int, tuple[float, float]] = {}
    palette = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860"]
    colors = {m: palette[i % len(palette)] for i, m in enumerate(arch.modalities)}

    def box(
        x: float, y: float, w: float, h: float, text: str, face: str, alpha: float = 1.0
    ) -> None:
        ax.add_patch(
            FancyBboxPatch(
                (x - w / 2, y - h / 2),
                w,
                h,
                boxstyle="round,pad=0.02",
                facecolor=face,
                edgecolor="black",
                alpha=alpha,
                linewidth=0.8,
            )
        )
        ax.text(x, y, text, ha="center", va="center", fontsize=8)

    step = (span - 1.0) / max(n_points, 1)
    for pt in points:
        py = span - 0.5 - step * (pt.index + 0.5)
        pos[pt.index] = (0.5, py)
        box(0.5, py, 0.85, point_h, pt.label, colors[pt.modality], 1.0 if pt.used else 0.25)
    for c, cell in enumerate(g.cells):
        x = 1.5 + c
        y = span / 2
        h = 0.35 * (len(cell.nodes) + 1) + 0.3
        lines = [f"cell {c}"] + [
            f"n{j}: {n.op}({_inner(n.inputs[0])},{_inner(n.inputs[1])})"
            for j, n in enumerate(cell.nodes)
        ]
        box(x, y, 0.9, h, "\n".join(lines), "#EEEEEE")
        for slot, src in enumerate(cell.inputs):
            sx, sy = pos[src]
            ax.annotate(
                "",
                xy=(x - 0.45, y + (0.15 if slot == 0 else -0.15)),
                xytext=(sx + 0.43, sy),
                arrowprops={
                    "arrowstyle": "->",
                    "color": "black" if slot == 0 else "grey",
                    "lw": 0.9,
                },
            )
        pos[n_points + c] = (x, y)
    hx, hy = n_cells + 1.5, span / 2
    box(
        hx,
        hy,
        0.9,
        head_h,
        f"concat last {g.multiplier}\nLN-ReLU-FC\n{arch.n_classes} classes"
        + ("\n+ mean of the\nbackbones' logits" if arch.late_skip else ""),
        "#FFF2CC",
    )
    for s in range(n_points + n_cells - g.multiplier, n_points + n_cells):
        sx, sy = pos[s]
        ax.annotate(
            "",
            xy=(hx - 0.45, hy),
            xytext=(sx + 0.45, sy),
            arrowprops={"arrowstyle": "->", "lw": 0.9},
        )
    ax.set_title(
        f"fusion genotype: {n_cells} cells x {g.n_nodes} nodes, C={arch.C}, L={arch.L} "
        "(black arrow: first input, grey: second)",
        fontsize=9,
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(out)
    return out


def _inner(i: int) -> str:
    return "x" if i == 0 else "y" if i == 1 else f"n{i - 2}"
