"""The report's figures: the data they plot, where their PNGs go, and how the page embeds them.

The PNGs are drawn by :mod:`harmonic_nas.results._plots` (and the fusion diagram by
:func:`harmonic_nas.fusion.draw_genotype`) into ``run/figures``; the page embeds each as base64.
"""

from __future__ import annotations

import base64
import logging
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harmonic_nas.errors import HarmonicError
from harmonic_nas.results import _plots
from harmonic_nas.results._artifacts import ParetoMember
from harmonic_nas.results._format import num
from harmonic_nas.utils.io import atomic_write_bytes, ensure_dir, writing

logger = logging.getLogger(__name__)

FIGURE_PREFIXES = ("pareto_", "hypervolume", "supernets", "cost_validation_", "arch_")


# --------------------------------------------------------------------------- plotted data


def points_from_candidates(candidates: Iterable[dict[str, Any]]) -> list[_plots.Point]:
    out = []
    for c in candidates:
        if str(c.get("state", "COMPLETE")).upper() != "COMPLETE":
            continue
        out.append(
            _plots.Point(
                label=str(c.get("trial", "")),
                val=num(c.get("val_metric")),
                latency=num(c.get("latency_ms")),
                energy=num(c.get("energy_mj")),
            )
        )
    return out


def member_points(members: Sequence[ParetoMember]) -> list[_plots.Point]:
    return [_plots.Point(m.id, m.val_metric, m.latency_ms, m.energy_mj) for m in members]


def baseline_points(baselines: Sequence[dict[str, Any]] | None) -> list[_plots.Point]:
    return [
        _plots.Point(
            str(b.get("name", f"baseline {i}")),
            num(b.get("val_metric")),
            num(b.get("latency_ms")),
            num(b.get("energy_mj")),
        )
        for i, b in enumerate(baselines or [])
    ]


def hv_generations(hv: dict[str, Any] | None) -> list[dict[str, float]]:
    """The hypervolume history's generations (numeric ones only), in order."""
    if not hv:
        return []
    out = []
    for g in hv.get("generations") or []:
        if not isinstance(g, dict):
            continue
        gen, value = num(g.get("generation")), num(g.get("hypervolume"))
        if gen is None or value is None:
            continue
        row = {"generation": gen, "hypervolume": value}
        n = num(g.get("n_complete"))
        if n is not None:
            row["n_complete"] = n
        out.append(row)
    return sorted(out, key=lambda r: r["generation"])


def supernet_epochs(metrics: dict[str, Any]) -> list[dict[str, float]]:
    """The numeric fields of each epoch of a supernet's training metrics."""
    out = []
    for i, e in enumerate(metrics.get("epochs") or []):
        if not isinstance(e, dict):
            continue
        row = {k: f for k, v in e.items() if (f := num(v)) is not None}
        row.setdefault("epoch", float(i + 1))
        out.append(row)
    return out


# --------------------------------------------------------------------------- files


class Figures:
    """Draws the figures into ``run/figures`` and remembers them for the HTML."""

    def __init__(self, directory: Path) -> None:
        self.dir = ensure_dir(directory)
        self.paths: dict[str, Path] = {}

    def path(self, name: str) -> Path:
        p = self.dir / f"{name}.png"
        self.paths[name] = p
        return p

    def forget(self, name: str) -> None:
        """``name`` was not drawn after all (an earlier copy of it is stale)."""
        self.paths.pop(name, None)

    def remove_stale(self) -> None:
        """Delete figures of an earlier report that this one did not draw (e.g. old members)."""
        keep = set(self.paths.values())
        for p in self.dir.glob("*.png"):
            if p not in keep and p.name.startswith(FIGURE_PREFIXES):
                p.unlink(missing_ok=True)


def draw_architecture(arch: dict[str, Any], path: Path) -> str | None:
    """Draw one Pareto model's fused architecture; returns a reason when it cannot be drawn.
    The fusion points are laid out from the backbones' real feature shapes (the layer inventory
    of their genomes, :func:`harmonic_nas.hardware.inventory.arch_feature_shapes`)."""
    from harmonic_nas.fusion import ArchSpec, draw_genotype
    from harmonic_nas.hardware.inventory import arch_feature_shapes

    if arch.get("fusion_mode") == "late":
        return "late fusion: no fusion network to draw (own classifiers, Bayes' rule)"
    if not isinstance(arch.get("genotype"), dict):
        return "no fusion genotype recorded for this model"
    with writing(path), tempfile.TemporaryDirectory(prefix=".arch-", dir=path.parent) as tmp:
        try:
            spec = ArchSpec.from_json(arch)
            drawn = draw_genotype(spec, Path(tmp) / path.name, arch_feature_shapes(spec))
        except HarmonicError as exc:
            return str(exc)
        atomic_write_bytes(path, drawn.read_bytes())  # like every figure: old one or new one
    return None


# --------------------------------------------------------------------------- embedding


@dataclass(frozen=True)
class Image:
    """An embedded PNG, as the ``figure`` macro of the templates renders it."""

    alt: str
    data: str  # base64
    caption: str = ""
    full: bool = False
    style: str = ""


def png_width(raw: bytes) -> int | None:
    """Pixel width of a PNG from its IHDR chunk (None if it is not a PNG)."""
    if len(raw) < 24 or raw[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return int.from_bytes(raw[16:20], "big")


def embed(
    path: Path, alt: str, caption: str = "", *, full: bool = False, min_scale: float | None = None
) -> Image:
    """The PNG at ``path`` for the page. ``min_scale``: never shown below that share of its pixel
    size (its box scrolls horizontally instead), nor above its pixel size: text in the figure
    stays readable."""
    raw = path.read_bytes()
    style = ""
    width = png_width(raw) if min_scale is not None else None
    if width and min_scale is not None:
        style = f"min-width:{round(width * min_scale)}px; max-width:{width}px"
    return Image(alt, base64.b64encode(raw).decode("ascii"), caption, full, style)
