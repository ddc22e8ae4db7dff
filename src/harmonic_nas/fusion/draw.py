"""A PNG diagram of a fused architecture: modalities, chosen fusion points, cells and operators."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from harmonic_nas.errors import GenomeError
from harmonic_nas.fusion.arch import ArchSpec
from harmonic_nas.fusion.points import fusion_point_indices

logger = logging.getLogger(__name__)


def _default_feature_counts(arch: ArchSpec) -> dict[str, int]:
    """Feature maps per backbone when not given: stem + fixed block + active blocks (CNN), the
    two hidden layers of a Maxout backbone (empty genome), the active layers of an MLP."""
    from harmonic_nas.backbones.presets import MLPPreset, get_preset

    counts = {}
    for m, ma in arch.modalities.items():
        if isinstance(get_preset(ma.preset), MLPPreset):  # one fusion point per hidden layer
            counts[m] = ma.genome.d[0]
        else:
            counts[m] = 2 + sum(ma.genome.d) if ma.genome.d else 2
    return counts


def draw_genotype(
    arch: ArchSpec,
    path: Path | str,
    feature_shapes: Mapping[str, Sequence[tuple[int, ...]]] | None = None,
) -> Path:
    """Draw ``arch`` (which must have a genotype) to a PNG at ``path``; returns the path.

    Fusion points are labelled ``<modality>[f<k>]`` (feature map k of that backbone); the ones
    some cell reads are highlighted. ``feature_shapes`` (per modality, all feature maps) gives
    the exact point layout; without it the layout is inferred from the genomes.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    g = arch.genotype
    if g is None:
        raise GenomeError("the architecture has no genotype to draw; run the fusion search first")
    counts = (
        {m: len(s) for m, s in feature_shapes.items()}
        if feature_shapes is not None
        else _default_feature_counts(arch)
    )
    refs = [
        (m, k) for m in arch.modalities for k in fusion_point_indices(counts[m], arch.fusion_points)
    ]
    n_points = len(refs)
    g.validate(n_points)
    used = {i for c in g.cells for i in c.inputs if i < n_points}

    n_cells = g.n_cells
    width = 3.2 * (n_cells + 2)
    height = max(0.7 * n_points + 1.5, 2.2 + 0.9 * g.n_nodes)
    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_xlim(0, n_cells + 2)
    ax.set_ylim(0, n_points + 1)
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

    for i, (m, k) in enumerate(refs):
        py = float(n_points - i)
        pos[i] = (0.5, py)
        box(0.5, py, 0.85, 0.5, f"{m}[f{k}]", colors[m], 1.0 if i in used else 0.25)
    span = float(n_points + 1)
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
        1.2 if arch.late_skip else 0.8,
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
