"""``harmonic-nas report``: a self-contained HTML report of a finished run, plus its PNG figures.

The page embeds every image as base64 and its small sorting script inline: it opens offline, can be
mailed as one file, and references no external URL. Its markup, style and script are Jinja2
templates shipped with the package (``templates/``, autoescaped); the content comes from
:mod:`~harmonic_nas.results._sections` (figures and sections) and
:mod:`~harmonic_nas.results._tables` (tables and cards).
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

import jinja2

from harmonic_nas.results._artifacts import RunArtifacts, load_run
from harmonic_nas.results._figures import Figures
from harmonic_nas.results._format import (
    compact_genome,
    dominated_by_baselines,
    fmt,
    genome_strings,
    metric_with_std,
)
from harmonic_nas.results._sections import Page, build_page
from harmonic_nas.search.recommend import deploy_lines
from harmonic_nas.utils.io import atomic_write_text
from harmonic_nas.utils.progress import ProgressFn, no_progress

logger = logging.getLogger(__name__)

__all__ = [
    "FIGURES_DIR",
    "REPORT_NAME",
    "compact_genome",
    "deploy_summary",
    "dominated_by_baselines",
    "genome_strings",
    "pareto_markdown",
    "render_page",
    "report",
]

REPORT_NAME = "report.html"
FIGURES_DIR = "figures"


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("harmonic_nas.results", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_page(page: Page) -> str:
    """The HTML of ``page`` (``templates/report.html.j2``)."""
    return _environment().get_template("report.html.j2").render(page=page)


def pareto_markdown(run: Path | str | RunArtifacts) -> str:
    """The Pareto set as a Markdown table: id, val, test, latency ms, energy mJ, params."""
    art = run if isinstance(run, RunArtifacts) else load_run(run)
    metric = art.metric_label
    lines = [
        f"| id | val {metric} | test {metric} | latency ms | energy mJ | params |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for m in art.members:
        lines.append(
            f"| {m.id} | {fmt(m.val_metric)} | {metric_with_std(m.test_metric, m.test_metric_std)}"
            f" | {fmt(m.latency_ms, 3)} | {fmt(m.energy_mj, 3)} | "
            f"{m.params if m.params is not None else '–'} |"
        )
    if not art.members:
        lines.append("| (empty) | | | | | |")
    return "\n".join(lines)


def deploy_summary(run: Path | str | RunArtifacts) -> list[str]:
    """What to deploy, most important first (a baseline beating every member, then the
    recommended member and why): :func:`harmonic_nas.search.recommend.deploy_lines`."""
    art = run if isinstance(run, RunArtifacts) else load_run(run)
    return deploy_lines(art.record.members, art.record.recommendation(), art.baselines)


def report(run: Path | str, *, progress: ProgressFn = no_progress) -> Path:
    """Write ``run/report.html`` (self-contained) and the PNGs in ``run/figures``; return the path.

    Raises :class:`~harmonic_nas.errors.StageMissingError` naming the missing stage when the run
    has no finished search.
    """
    art = load_run(run)
    figs = Figures(art.run / FIGURES_DIR)
    html = render_page(build_page(art, figs, progress))
    out = atomic_write_text(art.run / REPORT_NAME, html)
    figs.remove_stale()
    progress("report", 7, 7)
    logger.info("report written to %s (%d figures)", out, len(figs.paths))
    return out
