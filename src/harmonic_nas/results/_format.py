"""Formatting for the report: numbers, compact genomes, genotypes and baseline dominance.

Everything here is tolerant of what a run's JSON artifacts may hold (missing or non-numeric
values print as ``–``), and returns plain text: escaping is the templates' job.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from harmonic_nas.backbones.genome import BackboneGenome
from harmonic_nas.errors import HarmonicError
from harmonic_nas.results._artifacts import ParetoMember

logger = logging.getLogger(__name__)

DASH = "–"


def num(v: Any) -> float | None:
    """``v`` as a float, or None (None, bools, non-numbers and NaN)."""
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def fmt(v: Any, digits: int = 4) -> str:
    f = num(v)
    return DASH if f is None else f"{f:.{digits}f}"


def fmt_params(v: Any) -> str:
    f = num(v)
    if f is None:
        return DASH
    if f >= 1e6:
        return f"{f / 1e6:.2f} M"
    if f >= 1e3:
        return f"{f / 1e3:.1f} k"
    return f"{int(f)}"


def metric_with_std(value: float | None, std: float | None) -> str:
    if value is None:
        return DASH
    return f"{value:.4f} ± {std:.4f}" if std else f"{value:.4f}"


def yes_no(v: Any) -> str:
    return DASH if v is None else ("yes" if v else "no")


def fidelity(c: dict[str, Any]) -> str:
    """At which fidelity a candidate was scored (multi-fidelity search), e.g. ``low (9+9 ep)``."""
    fid = c.get("fidelity")
    if not fid:
        return DASH
    epochs = c.get("fusion_epochs")
    if isinstance(epochs, list | tuple) and len(epochs) == 2:
        if not any(epochs):
            return f"{fid} (screen)"
        return f"{fid} ({epochs[0]}+{epochs[1]} ep)"
    return str(fid)


def safe_name(name: str) -> str:
    """``name`` usable in a file name (anything but ``[A-Za-z0-9-_.]`` becomes ``_``)."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def genome_strings(arch: dict[str, Any]) -> dict[str, str]:
    """``{modality: "d3 k357 e463"}`` (see :func:`compact_genome`) from an ARCH json, tolerant."""
    out: dict[str, str] = {}
    mods = arch.get("modalities")
    if not isinstance(mods, dict):
        return out
    for name, spec in mods.items():
        genome = spec.get("genome") if isinstance(spec, dict) else None
        try:
            g = BackboneGenome.from_json(genome)
        except HarmonicError:
            out[str(name)] = "?"
            continue
        out[str(name)] = compact_genome(g)
    return out


def compact_genome(g: BackboneGenome) -> str:
    """Active genes only, per stage: ``d3 k357 e463`` (stages separated by `` / ``)."""
    if not g.d:
        return "fixed"
    depth = len(g.ks) // len(g.d) if len(g.ks) % len(g.d) == 0 else 0
    if depth == 0:
        return str(g)
    stages = []
    for s, d in enumerate(g.d):
        ks = "".join(str(k) for k in g.ks[s * depth : s * depth + d])
        e = "".join(str(v) for v in g.e[s * depth : s * depth + d])
        stages.append(f"d{d} k{ks} e{e}")
    return " / ".join(stages)


def genotype_string(arch: dict[str, Any]) -> str:
    """``str(FusionGenotype)`` of an ARCH json (empty when it has none or it is invalid; a late
    fusion, ``fusion_mode`` late, says so)."""
    if arch.get("fusion_mode") == "late":
        return "late fusion (own classifiers, Bayes' rule; no fusion network)"
    g = arch.get("genotype")
    if not isinstance(g, dict):
        return ""
    try:
        from harmonic_nas.fusion.genotype import FusionGenotype

        return str(FusionGenotype.from_json(g))
    except HarmonicError:
        return ""


def dominated_by_baselines(
    members: Sequence[ParetoMember], baselines: Sequence[dict[str, Any]] | None
) -> dict[str, list[str]]:
    """``{member id: [baseline names]}``: a baseline with at least the member's validation metric
    at no more latency (both known) makes the member pointless to deploy."""
    out: dict[str, list[str]] = {}
    for m in members:
        if m.val_metric is None or m.latency_ms is None:
            continue
        names = [
            str(b.get("name", "?"))
            for b in baselines or []
            if (v := num(b.get("val_metric"))) is not None
            and (lat := num(b.get("latency_ms"))) is not None
            and v >= m.val_metric
            and lat <= m.latency_ms
        ]
        if names:
            out[m.id] = names
    return out
