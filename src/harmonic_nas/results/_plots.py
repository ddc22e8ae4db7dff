"""The report's figures, drawn with matplotlib's object API (no pyplot, no global backend state)."""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from harmonic_nas.utils.io import atomic_write_bytes

logger = logging.getLogger(__name__)

DPI = 120
MEMBER_COLORS = (
    "#d62728",
    "#1f77b4",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#17becf",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#7f7f7f",
)
BASELINE_MARKERS = ("s", "D", "^", "v", "P", "X", "<", ">", "h")
CANDIDATE_COLOR = "#9aa5b1"
#: Up to this many Pareto members get one legend entry each (their colour); more get one entry
#: that points to the report's table, whose swatches carry the same colours.
LEGEND_MEMBERS = 8
OTHER_COLORS = ("#374151", "#b45309", "#0f766e")


def member_color(i: int) -> str:
    """The colour of the ``i``-th Pareto member (shared by the plots and the HTML tables)."""
    return MEMBER_COLORS[i % len(MEMBER_COLORS)]


@dataclass(frozen=True)
class Point:
    """One model in objective space; ``None`` where the objective is unknown."""

    label: str
    val: float | None
    latency: float | None
    energy: float | None


@dataclass(frozen=True)
class Axis:
    key: str  # "val" | "latency" | "energy"
    label: str
    maximize: bool


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    """Render ``fig`` as PNG and write it atomically (the old figure or the whole new one)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return atomic_write_bytes(path, buf.getvalue())


def _style(ax: Axes) -> None:
    ax.grid(True, color="#e5e7eb", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _get(p: Point, key: str) -> float | None:
    value: float | None = getattr(p, key)
    return value


def front_2d(points: Sequence[tuple[float, float]], max_x: bool, max_y: bool) -> list[int]:
    """Indices of the 2-D non-dominated points (each axis maximised or minimised)."""
    sx, sy = (-1.0 if max_x else 1.0), (-1.0 if max_y else 1.0)
    keyed = [(sx * x, sy * y, i) for i, (x, y) in enumerate(points)]
    keyed.sort()
    front: list[int] = []
    best_y = math.inf
    for _, y, i in keyed:
        if y < best_y:
            front.append(i)
            best_y = y
    return front


def pareto_projection(
    path: Path,
    x: Axis,
    y: Axis,
    candidates: Sequence[Point],
    members: Sequence[Point],
    baselines: Sequence[Point],
    others: Mapping[str, Sequence[Point]] | None = None,
) -> Path:
    """All candidates faded, the Pareto members highlighted and labelled, the baselines overlaid
    (and the Pareto sets of other search strategies, e.g. random search, as crosses)."""
    fig = _new_figure(5.6, 5.0)
    ax = fig.add_subplot()
    _style(ax)

    def xy(points: Sequence[Point]) -> list[tuple[float, float, Point]]:
        out = []
        for p in points:
            a, b = _get(p, x.key), _get(p, y.key)
            if a is not None and b is not None:
                out.append((a, b, p))
        return out

    cand = xy(candidates)
    if cand:
        ax.scatter(
            [c[0] for c in cand],
            [c[1] for c in cand],
            s=22,
            color=CANDIDATE_COLOR,
            alpha=0.45,
            edgecolors="none",
            label=f"candidates ({len(cand)})",
            zorder=2,
        )
        front = front_2d([(c[0], c[1]) for c in cand], x.maximize, y.maximize)
        fx = [cand[i][0] for i in front]
        fy = [cand[i][1] for i in front]
        ax.step(
            fx, fy, where="post", color=CANDIDATE_COLOR, linewidth=1.0, linestyle="--", zorder=1
        )
    drawn = 0
    each = len(members) <= LEGEND_MEMBERS
    for i, p in enumerate(members):
        a, b = _get(p, x.key), _get(p, y.key)
        if a is None or b is None:
            continue
        if each:  # one legend entry per member, in its colour
            label: str | None = f"Pareto: {p.label}"
        else:
            label = f"Pareto set ({len(members)}; colours as in the table)" if drawn == 0 else None
        drawn += 1
        ax.scatter(
            [a],
            [b],
            s=70,
            color=member_color(i),
            edgecolors="black",
            linewidths=0.7,
            zorder=4,
            label=label,
        )
        ax.annotate(
            p.label, (a, b), textcoords="offset points", xytext=(6, 5), fontsize=8, zorder=5
        )
    for i, (strategy, pts) in enumerate((others or {}).items()):
        got = xy(pts)
        if got:
            ax.scatter(
                [g[0] for g in got],
                [g[1] for g in got],
                s=40,
                marker="x",
                color=OTHER_COLORS[i % len(OTHER_COLORS)],
                linewidths=1.4,
                zorder=3,
                label=f"{strategy} search: Pareto set ({len(got)})",
            )
    for i, (a, b, p) in enumerate(xy(baselines)):
        ax.scatter(
            [a],
            [b],
            s=60,
            marker=BASELINE_MARKERS[i % len(BASELINE_MARKERS)],
            facecolors="white",
            edgecolors="black",
            linewidths=1.2,
            zorder=3,
            label=f"baseline: {p.label}",
        )
    ax.set_xlabel(x.label + ("  (higher is better)" if x.maximize else "  (lower is better)"))
    ax.set_ylabel(y.label + ("  (higher is better)" if y.maximize else "  (lower is better)"))
    ax.set_title(f"{y.label} vs {x.label}", fontsize=11)
    if (
        len(cand) + len(members) + len(baselines) + sum(len(v) for v in (others or {}).values())
        == 0
    ):
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    else:
        # below the axes: with one entry per member it must not hide the points
        fig.legend(fontsize=7, loc="outside lower center", ncols=3, frameon=False)
    return _save(fig, path)


def hypervolume_plot(path: Path, generations: Sequence[dict[str, float]]) -> Path:
    """Hypervolume of the non-dominated set after each generation (and how many trials it saw)."""
    fig = _new_figure(5.6, 3.6)
    ax = fig.add_subplot()
    _style(ax)
    gens = [g["generation"] for g in generations]
    hv = [g["hypervolume"] for g in generations]
    ax.plot(gens, hv, marker="o", color="#1f77b4", linewidth=2, label="hypervolume")
    ax.set_xlabel("generation")
    ax.set_ylabel("hypervolume (normalised objectives)")
    ax.set_title("Hypervolume per generation", fontsize=11)
    if gens:
        ax.set_xticks(sorted(set(gens)))
        ax.set_xlim(min(gens) - 0.6, max(gens) + 0.6)
    counts = [g.get("n_complete") for g in generations]
    if counts and all(c is not None for c in counts):
        ax2 = ax.twinx()
        ax2.bar(gens, [float(c or 0) for c in counts], color="#9aa5b1", alpha=0.25, width=0.5)
        ax2.set_ylabel("completed trials", color="#6b7280")
        ax2.tick_params(axis="y", colors="#6b7280")
        ax2.spines["top"].set_visible(False)
        ax.set_zorder(ax2.get_zorder() + 1)
        ax.patch.set_visible(False)
    return _save(fig, path)


def supernet_curves(
    path: Path, curves: dict[str, list[dict[str, float]]], metric: str = "accuracy"
) -> Path:
    """Per modality: training loss and the largest/smallest subnet's validation ``metric`` (the
    task's metric label: accuracy, weighted F1)."""
    fig = _new_figure(10.5, 3.6)
    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax in (ax_loss, ax_acc):
        _style(ax)
    for i, (modality, epochs) in enumerate(curves.items()):
        color = MEMBER_COLORS[(i + 1) % len(MEMBER_COLORS)]
        ep = [e["epoch"] for e in epochs]
        if any("loss" in e for e in epochs):
            ax_loss.plot(
                ep,
                [e.get("loss", np.nan) for e in epochs],
                marker="o",
                markersize=4,
                color=color,
                label=modality,
            )
        for key, style, name in (("max_acc", "-", "largest"), ("min_acc", "--", "smallest")):
            if any(key in e for e in epochs):
                ax_acc.plot(
                    ep,
                    [e.get(key, np.nan) for e in epochs],
                    linestyle=style,
                    marker="o",
                    markersize=4,
                    color=color,
                    label=f"{modality}: {name} subnet",
                )
    ax_loss.set_title("Supernet training loss", fontsize=11)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_acc.set_title(f"Subnet validation {metric}", fontsize=11)
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel(metric)
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.lines:
            ax.legend(fontsize=8)
    return _save(fig, path)


def validation_scatter(
    path: Path, pairs: dict[str, tuple[list[float], list[float]]], title: str
) -> Path:
    """Predicted (LUT) vs measured cost, one panel per quantity, with the identity line."""
    n = max(1, len(pairs))
    fig = _new_figure(4.6 * n, 4.2)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, (quantity, (pred, meas)) in zip(axes, pairs.items(), strict=False):
        _style(ax)
        p, m = np.asarray(pred, dtype=float), np.asarray(meas, dtype=float)
        ax.scatter(m, p, s=26, color="#1f77b4", alpha=0.8, edgecolors="white", linewidths=0.5)
        lo = float(min(p.min(), m.min())) if p.size else 0.0
        hi = float(max(p.max(), m.max())) if p.size else 1.0
        pad = 0.05 * (hi - lo or 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "--", color="#6b7280", linewidth=1)
        stats = validation_stats(pred, meas)
        unit = "ms" if quantity.startswith("lat") else "mJ" if quantity.startswith("en") else ""
        ax.set_xlabel(f"measured {quantity}" + (f" ({unit})" if unit else ""))
        ax.set_ylabel(f"predicted {quantity}" + (f" ({unit})" if unit else ""))
        ax.set_title(
            f"{quantity}: MAPE {stats['mape_pct']:.1f}%, Kendall τ {stats['kendall_tau']:.3f}"
            f" (n={len(pred)})",
            fontsize=10,
        )
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)


def validation_stats(pred: Sequence[float], meas: Sequence[float]) -> dict[str, float]:
    """MAPE (%) of predicted against measured, Kendall tau and Spearman rank correlations."""
    from scipy.stats import kendalltau, spearmanr

    p, m = np.asarray(pred, dtype=float), np.asarray(meas, dtype=float)
    nz = m != 0
    mape = float(np.mean(np.abs(p[nz] - m[nz]) / np.abs(m[nz])) * 100) if nz.any() else math.nan
    if len(p) >= 2 and np.ptp(p) > 0 and np.ptp(m) > 0:
        kendall = float(kendalltau(p, m).statistic)
        spearman = float(spearmanr(p, m).statistic)
    else:
        kendall = spearman = math.nan
    return {"mape_pct": mape, "kendall_tau": kendall, "spearman": spearman, "n": float(len(p))}
