"""The report's content, section by section, as plain data for the templates.

Each builder draws the section's figures (through :class:`~harmonic_nas.results._figures.Figures`)
and returns what the section's template shows: texts already formatted, tables as
:class:`Table` of :class:`Cell`. Nothing here writes HTML: that is the templates' job
(``templates/``, autoescaped).
"""

from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass, field
from typing import Any

from harmonic_nas.results import _plots
from harmonic_nas.results._artifacts import RunArtifacts
from harmonic_nas.results._figures import (
    Figures,
    Image,
    baseline_points,
    draw_architecture,
    embed,
    hv_generations,
    member_points,
    points_from_candidates,
    supernet_epochs,
)
from harmonic_nas.results._format import (
    DASH,
    dominated_by_baselines,
    fmt,
    fmt_params,
    genome_strings,
    genotype_string,
    metric_with_std,
    safe_name,
)
from harmonic_nas.results._tables import Cell, Row, Table, baselines, candidates, cards, num_cell
from harmonic_nas.results._validation import validation_pairs, validation_summary
from harmonic_nas.search.recommend import baselines_beating_all, deploy_lines
from harmonic_nas.utils.progress import ProgressFn

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    template: str
    data: Any = None

    @property
    def nav(self) -> str:
        return self.title.split(" of ")[0]


# --------------------------------------------------------------------------- Pareto set


def _pareto(art: RunArtifacts, figs: Figures, progress: ProgressFn, total: int) -> dict[str, Any]:
    cand = points_from_candidates(art.candidates)
    members = member_points(art.members)
    baselines = baseline_points(art.baselines)
    others = {k: member_points(v.members) for k, v in art.other_strategies.items()}
    ax_val = _plots.Axis("val", f"validation {art.metric_label}", True)
    ax_lat = _plots.Axis("latency", "latency (ms)", False)
    ax_en = _plots.Axis("energy", "energy (mJ)", False)
    projections = [("pareto_acc_latency", ax_lat, ax_val)]
    if not art.energy_modelled:  # else energy-vs-latency is a straight line
        projections += [
            ("pareto_acc_energy", ax_en, ax_val),
            ("pareto_latency_energy", ax_lat, ax_en),
        ]
    images = []
    for step, (name, x, y) in enumerate(projections, start=1):
        path = _plots.pareto_projection(figs.path(name), x, y, cand, members, baselines, others)
        images.append(embed(path, name.replace("_", " ")))
        progress("report", step, total)
    base_note = (
        " Hollow black markers are the baselines."
        if baselines
        else " Baselines: not run (make them with: harmonic-nas baselines CONFIG)."
    )
    if others:
        base_note += (
            " Crosses: the Pareto sets of the other search strategies (" + ", ".join(others) + ")."
        )
    dominated = dominated_by_baselines(art.members, art.baselines)
    rows = []
    for i, m in enumerate(art.members):
        genomes = genome_strings(m.arch)
        rows.append(
            {
                "id": m.id,
                "color": _plots.member_color(i),
                "cells": [
                    num_cell(metric_with_std(m.val_metric, m.val_metric_std), m.val_metric),
                    num_cell(metric_with_std(m.test_metric, m.test_metric_std), m.test_metric),
                    num_cell(fmt(m.latency_ms, 3), m.latency_ms),
                    num_cell(fmt(m.energy_mj, 3), m.energy_mj),
                    num_cell(fmt(m.latency_paper_ms, 3), m.latency_paper_ms),
                    num_cell(fmt(m.energy_paper_mj, 3), m.energy_paper_mj),
                    num_cell(fmt_params(m.params), m.params),
                ],
                "flags": list(m.flags),
                "dominated_by": dominated.get(m.id, []),
                "genomes": [(mod, genomes.get(mod, "?")) for mod in art.modalities],
                "fusion": f"{m.arch.get('cells', '?')} cells × {m.arch.get('nodes', '?')} nodes",
            }
        )
    metric = art.metric_label
    return {
        "per_label": _per_label(art),
        "device": art.device,
        "energy_source": art.energy.get("source") or "unknown",
        "energy_modelled": art.energy_modelled,
        "dominated": list(dominated),
        "n_members": len(art.members),
        "headers": [
            ("id", False),
            (f"val {metric}", True),
            (f"test {metric}", True),
            ("latency ms", True),
            ("energy mJ", True),
            ("paper latency ms", True),
            ("paper energy mJ", True),
            ("params", True),
            ("flags", False),
            ("architecture", False),
        ],
        "rows": rows,
        "base_note": base_note,
        "images": images,
    }


def _per_label(art: RunArtifacts) -> dict[str, Any] | None:
    """Per-label test scores of the members (rows: labels; columns: members), or None when no
    member has them."""
    from harmonic_nas.tasks import PER_LABEL_LABELS

    scored = [m for m in art.record.members if m.test_per_label]
    if not scored:
        return None
    labels = [str(r["label"]) for r in scored[0].test_per_label or []]
    support = [int(r["support"]) for r in scored[0].test_per_label or []]
    rows = []
    for j, label in enumerate(labels):
        cells = [Cell(label), num_cell(str(support[j]), support[j])]
        for m in scored:
            rows_m = m.test_per_label or []
            score = rows_m[j].get("score") if j < len(rows_m) else None
            cells.append(num_cell(fmt(score), score))
        rows.append(Row(cells))
    headers = [("label", False), ("test support", True)] + [(m.id, True) for m in scored]
    return {"score": PER_LABEL_LABELS.get(art.task, "score"), "table": Table(headers, rows)}


# --------------------------------------------------------------------------- search progress


def _hypervolume(art: RunArtifacts, figs: Figures, hv: list[dict[str, float]]) -> dict[str, Any]:
    if not hv:
        return {"image": None}
    ref = (art.hypervolume or {}).get("reference_point")
    ref_txt = (
        ", ".join(f"{k} = {fmt(v, 3)}" for k, v in ref.items()) if isinstance(ref, dict) else ""
    )
    image = embed(_plots.hypervolume_plot(figs.path("hypervolume"), hv), "hypervolume")
    return {"image": image, "reference": ref_txt}


# --------------------------------------------------------------------------- architectures


def _architectures(art: RunArtifacts, figs: Figures) -> list[dict[str, Any]]:
    cards = []
    for i, m in enumerate(art.members):
        name = f"arch_{safe_name(m.id)}"
        path = figs.path(name)
        reason = draw_architecture(m.arch, path)
        image: Image | None = None
        if reason is None:
            image = embed(path, f"fused architecture of {m.id}", min_scale=0.75)
        else:
            figs.forget(name)
        genomes = genome_strings(m.arch)
        cards.append(
            {
                "id": m.id,
                "color": _plots.member_color(i),
                "title": f"{m.id} — val {fmt(m.val_metric)}, {fmt(m.latency_ms, 3)} ms, "
                f"{fmt(m.energy_mj, 3)} mJ",
                "image": image,
                "reason": reason,
                "genes": [*genomes.items(), ("fusion", genotype_string(m.arch) or DASH)],
            }
        )
    return cards


# --------------------------------------------------------------------------- supernets


def _supernets(art: RunArtifacts, figs: Figures) -> dict[str, Any]:
    curves = {m: supernet_epochs(s) for m, s in art.supernets.items()}
    curves = {m: e for m, e in curves.items() if e}
    if not curves:
        return {"image": None}
    label = art.metric_label
    path = _plots.supernet_curves(figs.path("supernets"), curves, label)
    rows = []
    for mod, metrics in art.supernets.items():
        final = metrics.get("final") if isinstance(metrics.get("final"), dict) else {}
        assert isinstance(final, dict)
        epochs = curves.get(mod, [])
        last = epochs[-1] if epochs else {}
        rows.append(
            Row(
                [
                    Cell(mod),
                    Cell(str(metrics.get("preset", "?"))),
                    num_cell(str(len(epochs)), len(epochs)),
                    num_cell(fmt(final.get("max_acc", last.get("max_acc")))),
                    num_cell(fmt(final.get("min_acc", last.get("min_acc")))),
                ]
            )
        )
    headers = [
        ("modality", False),
        ("preset", False),
        ("epochs", True),
        (f"largest subnet {label}", True),
        (f"smallest subnet {label}", True),
    ]
    return {
        "image": embed(path, "supernet training curves", full=True),
        "table": Table(headers, rows),
        "metric": label,
    }


# --------------------------------------------------------------------------- cost model


def _validation(art: RunArtifacts, figs: Figures) -> dict[str, Any]:
    devices = []
    for device, record in art.validations.items():
        pairs = validation_pairs(record)
        image, table = None, None
        if pairs:
            path = _plots.validation_scatter(
                figs.path(f"cost_validation_{safe_name(device)}"),
                pairs,
                f"LUT prediction vs measurement of whole networks on {device}",
            )
            rows = []
            for q, (p, m) in pairs.items():
                s = _plots.validation_stats(p, m)
                rows.append(
                    Row(
                        [
                            Cell(q),
                            num_cell(str(len(p))),
                            num_cell(f"{s['mape_pct']:.2f} %"),
                            num_cell(fmt(s["kendall_tau"], 3)),
                            num_cell(fmt(s["spearman"], 3)),
                        ]
                    )
                )
            image = embed(path, f"cost-model validation on {device}", full=len(pairs) > 1)
            headers = [
                ("quantity", False),
                ("architectures", True),
                ("MAPE", True),
                ("Kendall τ", True),
                ("Spearman ρ", True),
            ]
            table = Table(headers, rows)
        devices.append(
            {
                "device": device,
                "image": image,
                "table": table,
                "summary": validation_summary(record),
            }
        )
    return {
        "run": bool(art.validations or art.validation_errors),
        "errors": art.validation_errors,
        "devices": devices,
    }


# --------------------------------------------------------------------------- page


@dataclass(frozen=True)
class Page:
    """Everything ``report.html.j2`` renders."""

    name: str
    subtitle: dict[str, Any]
    cards: list[tuple[str, str, str]]
    sections: list[Section]
    figures_dir: str
    deploy: list[str] = field(default_factory=list)
    """what to deploy, most important first (shown above everything else)"""
    baseline_wins: bool = False
    """whether the first ``deploy`` line is a baseline beating every member"""


def build_page(art: RunArtifacts, figs: Figures, progress: ProgressFn) -> Page:
    """Draw every figure and gather the content of every section (progress: one step per
    projection, then hypervolume, architectures, supernets, cost model)."""
    cfg = art.config
    n_projections = 1 if art.energy_modelled else 3
    total = 4 + n_projections
    pareto = _pareto(art, figs, progress, total)
    step = n_projections
    hv = hv_generations(art.hypervolume)
    hv_data = _hypervolume(art, figs, hv)
    step += 1
    progress("report", step, total)
    arch_data = _architectures(art, figs)
    step += 1
    progress("report", step, total)
    supernet_data = _supernets(art, figs)
    step += 1
    progress("report", step, total)
    validation_data = _validation(art, figs)
    step += 1
    progress("report", step, total)

    mods = ", ".join(f"{name} {tuple(m.shape)} ({m.preset})" for name, m in cfg.modalities.items())
    subtitle = {
        "dataset": cfg.dataset.name,
        "modalities": mods,
        "device": art.device,
        "task": art.task,
        "strategy": cfg.search.strategy,
        "population": cfg.search.population,
        "generations": cfg.search.generations,
        "seed": cfg.seed,
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    config_text = (art.run / "config.yaml").read_text(encoding="utf-8")
    sections = [
        Section("pareto", "Pareto set", "sections/pareto.html.j2", pareto),
        Section("baselines", "Baselines", "sections/baselines.html.j2", baselines(art)),
        Section("hypervolume", "Search progress", "sections/hypervolume.html.j2", hv_data),
        Section(
            "architectures",
            "Fused architectures of the Pareto models",
            "sections/architectures.html.j2",
            arch_data,
        ),
        Section("supernets", "Supernet training", "sections/supernets.html.j2", supernet_data),
        Section(
            "validation", "Cost-model validation", "sections/validation.html.j2", validation_data
        ),
        Section("candidates", "All candidates", "sections/candidates.html.j2", candidates(art)),
        Section("config", "Configuration", "sections/config.html.j2", config_text),
    ]
    record = art.record
    return Page(
        art.name,
        subtitle,
        cards(art, hv),
        sections,
        str(figs.dir),
        deploy=deploy_lines(record.members, record.recommendation(), art.baselines),
        baseline_wins=bool(baselines_beating_all(record.members, art.baselines)),
    )
