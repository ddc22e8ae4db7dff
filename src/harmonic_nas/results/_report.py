"""``harmonic-nas report``: a self-contained HTML report of a finished run, plus its PNG figures.

The page embeds every image as base64 and its small sorting script inline: it opens offline, can be
mailed as one file, and references no external URL.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from harmonic_nas.backbones.genome import BackboneGenome
from harmonic_nas.errors import HarmonicError
from harmonic_nas.results import _plots
from harmonic_nas.results._artifacts import ParetoMember, RunArtifacts, load_run
from harmonic_nas.results._validation import validation_pairs, validation_summary
from harmonic_nas.utils.io import atomic_write_text
from harmonic_nas.utils.progress import ProgressFn, no_progress

logger = logging.getLogger(__name__)

REPORT_NAME = "report.html"
FIGURES_DIR = "figures"
_FIGURE_PREFIXES = ("pareto_", "hypervolume", "supernets", "cost_validation_", "arch_")


# --------------------------------------------------------------------------- formatting helpers


def _num(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _fmt(v: Any, digits: int = 4) -> str:
    f = _num(v)
    return "–" if f is None else f"{f:.{digits}f}"


def _fmt_params(v: Any) -> str:
    f = _num(v)
    if f is None:
        return "–"
    if f >= 1e6:
        return f"{f / 1e6:.2f} M"
    if f >= 1e3:
        return f"{f / 1e3:.1f} k"
    return f"{int(f)}"


def _metric_with_std(value: float | None, std: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.4f} ± {std:.4f}" if std else f"{value:.4f}"


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


def _genotype_string(arch: dict[str, Any]) -> str:
    g = arch.get("genotype")
    if not isinstance(g, dict):
        return ""
    try:
        from harmonic_nas.fusion.genotype import FusionGenotype

        return str(FusionGenotype.from_json(g))
    except HarmonicError:
        return ""


# --------------------------------------------------------------------------- Markdown summary


def pareto_markdown(run: Path | str | RunArtifacts) -> str:
    """The Pareto set as a Markdown table: id, val, test, latency ms, energy mJ, params."""
    art = run if isinstance(run, RunArtifacts) else load_run(run)
    metric = art.metric
    lines = [
        f"| id | val {metric} | test {metric} | latency ms | energy mJ | params |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for m in art.members:
        lines.append(
            f"| {m.id} | {_fmt(m.val_metric)} | {_metric_with_std(m.test_metric, m.test_metric_std)}"
            f" | {_fmt(m.latency_ms, 3)} | {_fmt(m.energy_mj, 3)} | "
            f"{m.params if m.params is not None else '–'} |"
        )
    if not art.members:
        lines.append("| (empty) | | | | | |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- figures


def _points_from_candidates(candidates: Iterable[dict[str, Any]]) -> list[_plots.Point]:
    out = []
    for c in candidates:
        if str(c.get("state", "COMPLETE")).upper() != "COMPLETE":
            continue
        out.append(
            _plots.Point(
                label=str(c.get("trial", "")),
                val=_num(c.get("val_metric")),
                latency=_num(c.get("latency_ms")),
                energy=_num(c.get("energy_mj")),
            )
        )
    return out


def _member_points(members: Sequence[ParetoMember]) -> list[_plots.Point]:
    return [_plots.Point(m.id, m.val_metric, m.latency_ms, m.energy_mj) for m in members]


def _baseline_points(baselines: Sequence[dict[str, Any]] | None) -> list[_plots.Point]:
    return [
        _plots.Point(
            str(b.get("name", f"baseline {i}")),
            _num(b.get("val_metric")),
            _num(b.get("latency_ms")),
            _num(b.get("energy_mj")),
        )
        for i, b in enumerate(baselines or [])
    ]


def _hv_generations(hv: dict[str, Any] | None) -> list[dict[str, float]]:
    if not hv:
        return []
    out = []
    for g in hv.get("generations") or []:
        if not isinstance(g, dict):
            continue
        gen, value = _num(g.get("generation")), _num(g.get("hypervolume"))
        if gen is None or value is None:
            continue
        row = {"generation": gen, "hypervolume": value}
        n = _num(g.get("n_complete"))
        if n is not None:
            row["n_complete"] = n
        out.append(row)
    return sorted(out, key=lambda r: r["generation"])


def _supernet_epochs(metrics: dict[str, Any]) -> list[dict[str, float]]:
    out = []
    for i, e in enumerate(metrics.get("epochs") or []):
        if not isinstance(e, dict):
            continue
        row = {k: f for k, v in e.items() if (f := _num(v)) is not None}
        row.setdefault("epoch", float(i + 1))
        out.append(row)
    return out


class _Figures:
    """Draws the figures into ``run/figures`` and remembers them for the HTML."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.paths: dict[str, Path] = {}

    def path(self, name: str) -> Path:
        p = self.dir / f"{name}.png"
        self.paths[name] = p
        return p

    def remove_stale(self) -> None:
        """Delete figures of an earlier report that this one did not draw (e.g. old members)."""
        keep = set(self.paths.values())
        for p in self.dir.glob("*.png"):
            if p not in keep and p.name.startswith(_FIGURE_PREFIXES):
                p.unlink(missing_ok=True)


def _draw_architecture(arch: dict[str, Any], path: Path) -> str | None:
    """Draw one Pareto model's fused architecture; returns a reason when it cannot be drawn."""
    from harmonic_nas.fusion import ArchSpec, draw_genotype

    if not isinstance(arch.get("genotype"), dict):
        return "no fusion genotype recorded for this model"
    try:
        draw_genotype(ArchSpec.from_json(arch), path)
    except HarmonicError as exc:
        return str(exc)
    return None


# --------------------------------------------------------------------------- HTML

_CSS = """
:root { --fg:#1f2937; --muted:#6b7280; --line:#e5e7eb; --bg:#f8fafc; --accent:#2563eb; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
       sans-serif; color:var(--fg); background:var(--bg); }
header { background:#0f172a; color:#f8fafc; padding:22px 32px 18px; }
header h1 { margin:0 0 4px; font-size:22px; font-weight:600; overflow-wrap:anywhere; }
header .sub { color:#cbd5e1; font-size:13px; overflow-wrap:anywhere; }
nav { background:#1e293b; padding:8px 32px; position:sticky; top:0; z-index:2;
      display:flex; flex-wrap:wrap; gap:4px 18px; }
nav a { color:#cbd5e1; text-decoration:none; font-size:13px; }
nav a:hover { color:#fff; }
main { max-width:1240px; margin:0 auto; padding:18px 32px 40px; }
section { background:#fff; border:1px solid var(--line); border-radius:10px; padding:18px 22px;
          margin:18px 0; min-width:0; overflow-wrap:anywhere; }
h2 { margin:0 0 12px; font-size:18px; font-weight:600; }
h3 { margin:14px 0 6px; font-size:15px; font-weight:600; }
.cards { display:grid; grid-template-columns:repeat(auto-fit, minmax(170px, 1fr)); gap:12px; }
.card { background:#fff; border:1px solid var(--line); border-radius:10px; padding:12px 14px; }
.card .k { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.card .v { font-size:20px; font-weight:600; margin-top:2px; }
.card .s { color:var(--muted); font-size:12px; }
.grid { display:grid; grid-template-columns:repeat(auto-fill, minmax(min(100%, 520px), 1fr));
        gap:14px; align-items:start; }
.archs { display:grid; grid-template-columns:minmax(0, 1fr); gap:14px; }
section > figure img { max-width:min(100%, 760px); }
section > figure.full img { max-width:100%; }
figure { margin:0; text-align:center; }
figure img { max-width:100%; height:auto; border:1px solid var(--line); border-radius:6px;
             background:#fff; }
figcaption { color:var(--muted); font-size:12px; margin-top:4px; }
table { border-collapse:collapse; width:100%; font-size:13px; }
th, td { padding:6px 9px; border-bottom:1px solid var(--line); text-align:left;
         white-space:nowrap; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
thead th { background:#f1f5f9; }
.scroll thead th { position:sticky; top:0; z-index:1; }
.wide { overflow-x:auto; max-width:100%; }
.wide table { overflow-wrap:normal; }
table.sortable th { cursor:pointer; user-select:none; }
table.sortable th::after { content:" \\2195"; color:#94a3b8; font-size:11px; }
table.sortable th[data-dir="asc"]::after { content:" \\2191"; color:var(--accent); }
table.sortable th[data-dir="desc"]::after { content:" \\2193"; color:var(--accent); }
tr.pareto td { background:#fff7ed; font-weight:500; }
tr.failed td { color:#9ca3af; }
.scroll { max-height:600px; overflow:auto; border:1px solid var(--line); border-radius:6px; }
.swatch { display:inline-block; width:10px; height:10px; border-radius:50%; margin-right:6px;
          border:1px solid #111; vertical-align:middle; }
.note { color:var(--muted); font-style:italic; }
.mono { font-family:ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size:12px; }
.small { font-size:11px; line-height:1.35; }
.arch { border:1px solid var(--line); border-radius:8px; padding:10px 12px; min-width:0; }
.arch figure { overflow-x:auto; }
.arch figure img { width:100%; max-width:none; }
.notation dt { font-weight:600; margin-top:6px; }
.notation dd { margin:0 0 0 16px; }
.notation code, .note code { overflow-wrap:anywhere; }
.dominated { color:#b91c1c; }
.arch h3 { margin-top:0; font-size:14px; }
.arch td { white-space:normal; word-break:break-word; }
.arch td:first-child { white-space:nowrap; width:1%; }
.kv td:first-child { color:var(--muted); }
details summary { cursor:pointer; color:var(--accent); }
pre { background:#f1f5f9; padding:10px; border-radius:6px; overflow:auto; font-size:12px; }
footer { color:var(--muted); font-size:12px; text-align:center; padding:10px 12px 30px;
         overflow-wrap:anywhere; }
@media (max-width: 640px) {
  header { padding:16px 14px 12px; }
  nav { padding:8px 14px; }
  main { padding:10px 8px 24px; }
  section { padding:12px 12px; }
}
"""

_JS = """
(function () {
  function key(cell) {
    var v = cell.getAttribute('data-v');
    if (v === null) { v = cell.textContent.trim(); }
    if (v === '' || v === '\\u2013') { return null; }
    var n = Number(v);
    return isNaN(n) ? v.toLowerCase() : n;
  }
  function cmp(a, b) {
    if (a === null && b === null) { return 0; }
    if (a === null) { return 1; }
    if (b === null) { return -1; }
    if (typeof a === typeof b) { return a < b ? -1 : a > b ? 1 : 0; }
    return typeof a === 'number' ? -1 : 1;
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    table.querySelectorAll('thead th').forEach(function (th) {
      th.addEventListener('click', function () {
        var col = th.cellIndex;
        var dir = th.getAttribute('data-dir') === 'asc' ? 'desc' : 'asc';
        table.querySelectorAll('thead th').forEach(function (h) { h.removeAttribute('data-dir'); });
        th.setAttribute('data-dir', dir);
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r1, r2) {
          var a = key(r1.cells[col]), b = key(r2.cells[col]);
          if (a === null || b === null) { return cmp(a, b); }
          return dir === 'asc' ? cmp(a, b) : cmp(b, a);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
})();
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _png_width(raw: bytes) -> int | None:
    """Pixel width of a PNG from its IHDR chunk (None if it is not a PNG)."""
    if len(raw) < 24 or raw[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return int.from_bytes(raw[16:20], "big")


def _img(
    path: Path, alt: str, caption: str = "", *, full: bool = False, min_scale: float | None = None
) -> str:
    """An embedded PNG. ``min_scale``: never shown below that share of its pixel size (its box
    scrolls horizontally instead), nor above its pixel size: text in the figure stays readable."""
    raw = path.read_bytes()
    data = base64.b64encode(raw).decode("ascii")
    cap = f"<figcaption>{_e(caption)}</figcaption>" if caption else ""
    cls = ' class="full"' if full else ""
    style = ""
    width = _png_width(raw) if min_scale is not None else None
    if width and min_scale is not None:
        style = f' style="min-width:{round(width * min_scale)}px; max-width:{width}px"'
    return (
        f'<figure{cls}><img alt="{_e(alt)}"{style} src="data:image/png;base64,{data}">{cap}'
        "</figure>"
    )


def _td(text: str, value: Any = None, num: bool = False, raw: bool = False) -> str:
    attrs = ' class="num"' if num else ""
    if value is not None:
        attrs += f' data-v="{_e(value)}"'
    return f"<td{attrs}>{text if raw else _e(text)}</td>"


def _table(
    headers: Sequence[tuple[str, bool]], rows: Sequence[str], *, sortable: bool, wrap: bool = True
) -> str:
    """A table; ``wrap`` puts it in its own horizontal scroll box (nothing overflows the page)."""
    cls = ' class="sortable"' if sortable else ""
    head = "".join(
        f'<th class="num">{_e(h)}</th>' if n else f"<th>{_e(h)}</th>" for h, n in headers
    )
    table = f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    return f'<div class="wide">{table}</div>' if wrap else table


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{_e(title)}</h2>{body}</section>'


def _not_run(what: str, command: str) -> str:
    return f'<p class="note">{_e(what)}: not run (make it with <code>{_e(command)}</code>).</p>'


def _card(key: str, value: str, sub: str = "") -> str:
    s = f'<div class="s">{_e(sub)}</div>' if sub else ""
    return (
        f'<div class="card"><div class="k">{_e(key)}</div><div class="v">{_e(value)}</div>{s}</div>'
    )


#: How to read the compact backbone genome of the tables (see :func:`compact_genome`).
GENOME_NOTE = (
    "<p class='note'><b>Backbone genome</b>, e.g. <code>d2 k53 e63</code>: per elastic stage of "
    "the supernet (stages separated by <code>/</code>), <code>d</code> is the number of active "
    "blocks (depth), then one digit per active block in order: <code>k</code> its kernel size "
    "and <code>e</code> its expand ratio. <code>d2 k53 e63</code> is two blocks, a 5×5 kernel "
    "with expand ratio 6 then a 3×3 kernel with expand ratio 3. <b>Fusion</b>: "
    "<i>c</i> cells × <i>n</i> nodes per cell (the genotype is explained with the diagrams "
    "under <a href='#architectures'>Fused architectures</a>).</p>"
)

#: How to read the fusion genotype string (``str(FusionGenotype)``) and its diagram.
GENOTYPE_NOTE = (
    "<dl class='notation'><dt>Fusion genotype, e.g. "
    "<code>c0[1, 3]:Sum[0, 1],ConcatFC[2, 0] | c1[4, 2]:SE1[1, 0] | x2</code></dt>"
    "<dd><b>States</b> are numbered: first the fusion points (feature maps taken from the "
    "backbones, modality by modality, in the order of the diagram's left column, "
    "<code>image[f3]</code> = feature map 3 of the image backbone), then the output of each "
    "cell in turn. <code>c0[1, 3]</code>: cell 0 reads states 1 and 3.</dd>"
    "<dd><b>Nodes</b> of a cell follow the colon: <code>Sum[0, 1]</code> applies the fusion "
    "operator Sum to the cell's inner states 0 and 1 (inner 0 and 1 are the cell's two inputs, "
    "inner 2 + <i>j</i> is the output of node <i>j</i>). A cell's output is its last node's "
    "(plus a residual).</dd>"
    "<dd><code>x2</code>: the outputs of the last 2 cells are concatenated and fed to the "
    "classifier.</dd>"
    "<dd><b>Diagram</b>: fusion points on the left (highlighted when a cell reads them), one "
    "column per cell with its nodes and operators, the classifier on the right.</dd></dl>"
)


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
            if (v := _num(b.get("val_metric"))) is not None
            and (lat := _num(b.get("latency_ms"))) is not None
            and v >= m.val_metric
            and lat <= m.latency_ms
        ]
        if names:
            out[m.id] = names
    return out


def _pareto_table(art: RunArtifacts) -> str:
    metric = art.metric
    headers = [
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
    ]
    rows = []
    dominated = dominated_by_baselines(art.members, art.baselines)
    for i, m in enumerate(art.members):
        genomes = genome_strings(m.arch)
        flags = [_e(f) for f in m.flags] + [
            f"<span class='dominated'>dominated by baseline {_e(b)}</span>"
            for b in dominated.get(m.id, [])
        ]
        swatch = f'<span class="swatch" style="background:{_plots.member_color(i)}"></span>'
        rows.append(
            "<tr>"
            + _td(swatch + _e(m.id), m.id, raw=True)
            + _td(_metric_with_std(m.val_metric, m.val_metric_std), m.val_metric, num=True)
            + _td(_metric_with_std(m.test_metric, m.test_metric_std), m.test_metric, num=True)
            + _td(_fmt(m.latency_ms, 3), m.latency_ms, num=True)
            + _td(_fmt(m.energy_mj, 3), m.energy_mj, num=True)
            + _td(_fmt(m.latency_paper_ms, 3), m.latency_paper_ms, num=True)
            + _td(_fmt(m.energy_paper_mj, 3), m.energy_paper_mj, num=True)
            + _td(_fmt_params(m.params), m.params, num=True)
            + _td("<br>".join(flags) or "—", raw=True)
            + '<td class="mono small">'
            + "<br>".join(
                [f"{_e(mod)}: {_e(genomes.get(mod, '?'))}" for mod in art.modalities]
                + [f"fusion: {m.arch.get('cells', '?')} cells × {m.arch.get('nodes', '?')} nodes"]
            )
            + "</td></tr>"
        )
    if not rows:
        return '<p class="note">The Pareto set is empty (no candidate completed).</p>'
    return _table(headers, rows, sortable=True)


def _strategies_table(art: RunArtifacts) -> str:
    if not art.other_strategies:
        return ""
    rows = []
    for name, front in [("nsga2 (this run)", None), *art.other_strategies.items()]:
        members = art.members if front is None else front.members
        n_c = len(art.candidates) if front is None else front.n_candidates
        vals = [m.val_metric for m in members if m.val_metric is not None]
        tests = [m.test_metric for m in members if m.test_metric is not None]
        lats = [m.latency_ms for m in members if m.latency_ms is not None]
        ens = [m.energy_mj for m in members if m.energy_mj is not None]
        rows.append(
            "<tr>"
            + _td(name)
            + _td(str(n_c), n_c, num=True)
            + _td(str(len(members)), len(members), num=True)
            + _td(_fmt(max(vals) if vals else None), num=True)
            + _td(_fmt(max(tests) if tests else None), num=True)
            + _td(_fmt(min(lats) if lats else None, 3), num=True)
            + _td(_fmt(min(ens) if ens else None, 3), num=True)
            + "</tr>"
        )
    metric = art.metric
    return "<h3>Search strategies</h3>" + _table(
        [
            ("strategy", False),
            ("candidates", True),
            ("Pareto size", True),
            (f"best val {metric}", True),
            (f"best test {metric}", True),
            ("fastest ms", True),
            ("lowest mJ", True),
        ],
        rows,
        sortable=False,
    )


def _baselines_table(art: RunArtifacts) -> str:
    return _baselines_only(art) + _strategies_table(art)


def _baselines_only(art: RunArtifacts) -> str:
    if art.baselines is None:
        return _not_run("Baselines", "harmonic-nas baselines CONFIG")
    if not art.baselines:
        return '<p class="note">baselines.json lists no baseline.</p>'
    metric = art.metric
    headers = [
        ("baseline", False),
        (f"val {metric}", True),
        (f"test {metric}", True),
        ("latency ms", True),
        ("energy mJ", True),
        ("params", True),
    ]
    rows = [
        "<tr>"
        + _td(str(b.get("name", "?")))
        + _td(_fmt(b.get("val_metric")), _num(b.get("val_metric")), num=True)
        + _td(_fmt(b.get("test_metric")), _num(b.get("test_metric")), num=True)
        + _td(_fmt(b.get("latency_ms"), 3), _num(b.get("latency_ms")), num=True)
        + _td(_fmt(b.get("energy_mj"), 3), _num(b.get("energy_mj")), num=True)
        + _td(_fmt_params(b.get("params")), _num(b.get("params")), num=True)
        + "</tr>"
        for b in art.baselines
    ]
    return _table(headers, rows, sortable=True)


def _yes_no(v: Any) -> str:
    return "–" if v is None else ("yes" if v else "no")


def _fidelity(c: dict[str, Any]) -> str:
    """At which fidelity a candidate was scored (multi-fidelity search), e.g. ``low (9+9 ep)``."""
    fid = c.get("fidelity")
    if not fid:
        return "–"
    epochs = c.get("fusion_epochs")
    if isinstance(epochs, list | tuple) and len(epochs) == 2:
        return f"{fid} ({epochs[0]}+{epochs[1]} ep)"
    return str(fid)


def _candidates_table(art: RunArtifacts) -> str:
    pareto_trials = {m.trial: m.id for m in art.members if m.trial is not None}
    has_feasible = any("feasible" in c for c in art.candidates)
    metric = art.metric
    headers = [
        ("trial", True),
        ("generation", True),
        ("state", False),
        ("Pareto", False),
        (f"val {metric}", True),
        ("latency ms", True),
        ("energy mJ", True),
        ("params", True),
        ("cells", True),
        ("nodes", True),
        *[(f"{mod} genome", False) for mod in art.modalities],
        *([("feasible", False)] if has_feasible else []),
        ("fidelity", False),
        ("fusion genotype / note", False),
    ]
    rows = []
    for c in art.candidates:
        arch = c.get("arch") if isinstance(c.get("arch"), dict) else {}
        assert isinstance(arch, dict)
        trial = _num(c.get("trial"))
        state = str(c.get("state", "?")).upper()
        pid = pareto_trials.get(int(trial)) if trial is not None else None
        genomes = genome_strings(arch)
        detail = str(c.get("fail_reason") or "") if state != "COMPLETE" else _genotype_string(arch)
        cls = ' class="pareto"' if pid else (' class="failed"' if state != "COMPLETE" else "")
        rows.append(
            f"<tr{cls}>"
            + _td(str(int(trial)) if trial is not None else "?", trial, num=True)
            + _td(str(c.get("generation", "–")), _num(c.get("generation")), num=True)
            + _td(state)
            + _td(f"★ {pid}" if pid else "", pid or "")
            + _td(_fmt(c.get("val_metric")), _num(c.get("val_metric")), num=True)
            + _td(_fmt(c.get("latency_ms"), 3), _num(c.get("latency_ms")), num=True)
            + _td(_fmt(c.get("energy_mj"), 3), _num(c.get("energy_mj")), num=True)
            + _td(_fmt_params(c.get("params")), _num(c.get("params")), num=True)
            + _td(str(arch.get("cells", "–")), _num(arch.get("cells")), num=True)
            + _td(str(arch.get("nodes", "–")), _num(arch.get("nodes")), num=True)
            + "".join(
                f'<td class="mono">{_e(genomes.get(mod, "–"))}</td>' for mod in art.modalities
            )
            + (_td(_yes_no(c.get("feasible"))) if has_feasible else "")
            + _td(_fidelity(c))
            + f'<td class="mono">{_e(detail)}</td>'
            + "</tr>"
        )
    if not rows:
        return '<p class="note">candidates.json lists no candidate.</p>'
    n_ok = sum(1 for c in art.candidates if str(c.get("state", "")).upper() == "COMPLETE")
    intro = (
        f"<p>{len(rows)} candidates ({n_ok} complete). Click a column header to sort; "
        "Pareto members are highlighted.</p>"
    )
    return intro + f'<div class="scroll">{_table(headers, rows, sortable=True, wrap=False)}</div>'


def _supernet_section(art: RunArtifacts, figs: _Figures) -> str:
    curves = {m: _supernet_epochs(s) for m, s in art.supernets.items()}
    curves = {m: e for m, e in curves.items() if e}
    if not curves:
        return _not_run("Supernet training curves", "harmonic-nas pretrain CONFIG")
    path = _plots.supernet_curves(figs.path("supernets"), curves)
    rows = []
    for mod, metrics in art.supernets.items():
        final = metrics.get("final") if isinstance(metrics.get("final"), dict) else {}
        assert isinstance(final, dict)
        epochs = curves.get(mod, [])
        last = epochs[-1] if epochs else {}
        rows.append(
            "<tr>"
            + _td(mod)
            + _td(str(metrics.get("preset", "?")))
            + _td(str(len(epochs)), len(epochs), num=True)
            + _td(_fmt(final.get("max_acc", last.get("max_acc"))), num=True)
            + _td(_fmt(final.get("min_acc", last.get("min_acc"))), num=True)
            + "</tr>"
        )
    table = _table(
        [
            ("modality", False),
            ("preset", False),
            ("epochs", True),
            ("largest subnet acc", True),
            ("smallest subnet acc", True),
        ],
        rows,
        sortable=False,
    )
    return (
        _img(path, "supernet training curves", full=True)
        + "<h3>Final supernet accuracy</h3>"
        + table
    )


def _validation_section(art: RunArtifacts, figs: _Figures) -> str:
    if not art.validations:
        return _not_run("Cost-model validation", "harmonic-nas lut validate CONFIG")
    parts = []
    for device, obj in art.validations.items():
        pairs = validation_pairs(obj)
        parts.append(f"<h3>{_e(device)}</h3>")
        if pairs:
            path = _plots.validation_scatter(
                figs.path(f"cost_validation_{_safe(device)}"),
                pairs,
                f"LUT prediction vs measurement of whole networks on {device}",
            )
            stat_rows = []
            for q, (p, m) in pairs.items():
                s = _plots.validation_stats(p, m)
                stat_rows.append(
                    "<tr>"
                    + _td(q)
                    + _td(str(len(p)), num=True)
                    + _td(f"{s['mape_pct']:.2f} %", num=True)
                    + _td(_fmt(s["kendall_tau"], 3), num=True)
                    + _td(_fmt(s["spearman"], 3), num=True)
                    + "</tr>"
                )
            parts.append(_img(path, f"cost-model validation on {device}", full=len(pairs) > 1))
            parts.append(
                _table(
                    [
                        ("quantity", False),
                        ("architectures", True),
                        ("MAPE", True),
                        ("Kendall τ", True),
                        ("Spearman ρ", True),
                    ],
                    stat_rows,
                    sortable=False,
                )
            )
        else:
            parts.append(
                '<p class="note">No predicted/measured pairs found in this file; '
                "its fields are:</p>"
            )
        summary = validation_summary(obj)
        if summary:
            rows = ["<tr>" + _td(k) + _td(v) + "</tr>" for k, v in summary]
            parts.append(
                "<details><summary>fields of the validation file</summary>"
                + f'<div class="wide"><table class="kv">{"".join(rows)}</table></div></details>'
                if pairs
                else f'<div class="wide"><table class="kv">{"".join(rows)}</table></div>'
            )
    return "".join(parts)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def _architectures_section(art: RunArtifacts, figs: _Figures) -> str:
    if not art.members:
        return '<p class="note">No Pareto model to draw.</p>'
    cards = []
    for i, m in enumerate(art.members):
        path = figs.path(f"arch_{_safe(m.id)}")
        reason = _draw_architecture(m.arch, path)
        if reason is None:
            body = _img(path, f"fused architecture of {m.id}", min_scale=0.75)
        else:
            figs.paths.pop(f"arch_{_safe(m.id)}", None)
            body = f'<p class="note">diagram unavailable: {_e(reason)}</p>'
        genomes = genome_strings(m.arch)
        kv = "".join(
            f"<tr><td>{_e(mod)}</td><td class='mono'>{_e(g)}</td></tr>"
            for mod, g in genomes.items()
        )
        geno = _genotype_string(m.arch)
        kv += f"<tr><td>fusion</td><td class='mono'>{_e(geno or '–')}</td></tr>"
        swatch = f'<span class="swatch" style="background:{_plots.member_color(i)}"></span>'
        cards.append(
            f'<div class="arch"><h3>{swatch}{_e(m.id)} — val {_fmt(m.val_metric)}, '
            f"{_fmt(m.latency_ms, 3)} ms, {_fmt(m.energy_mj, 3)} mJ</h3>{body}"
            f'<table class="kv">{kv}</table></div>'
        )
    return GENOTYPE_NOTE + f'<div class="archs">{"".join(cards)}</div>'


def _dominance_note(art: RunArtifacts) -> str:
    dominated = dominated_by_baselines(art.members, art.baselines)
    if not dominated:
        return ""
    return (
        f"<p class='note dominated'><b>{len(dominated)} of {len(art.members)} Pareto members "
        "are dominated by a baseline</b> (" + _e(", ".join(dominated)) + "): a baseline is at "
        "least as accurate on validation and at least as fast.</p>"
    )


def _energy_note(art: RunArtifacts) -> str:
    source = _e(art.energy.get("source") or "unknown")
    if art.energy_modelled:
        return (
            f"<p class='note'><b>Energy is modelled, not measured</b> ({source}): it is latency "
            "times a constant, so it is no objective of its own — the search optimised "
            "validation accuracy and latency, and the energy column is for reference.</p>"
        )
    return f"<p class='note'>Energy source: {source}.</p>"


def _cards(art: RunArtifacts, hv: list[dict[str, float]]) -> str:
    states = [str(c.get("state", "?")).upper() for c in art.candidates]
    counts = {st: states.count(st) for st in dict.fromkeys(["COMPLETE", *sorted(set(states))])}
    cards = [
        _card(
            "candidates",
            str(len(art.candidates)),
            ", ".join(f"{n} {st.lower()}" for st, n in counts.items() if n or st == "COMPLETE"),
        ),
        _card("Pareto models", str(len(art.members))),
    ]
    vals = [m for m in art.members if m.val_metric is not None]
    if vals:  # chosen on val; its test score beside it
        best = max(vals, key=lambda m: m.val_metric or 0.0)
        cards.append(
            _card(
                f"best val {art.metric}",
                _fmt(best.val_metric),
                f"{best.id}; test {_fmt(best.test_metric)}",
            )
        )
    lat = [m for m in art.members if m.latency_ms is not None]
    if lat:
        fast = min(lat, key=lambda m: m.latency_ms or 0.0)
        cards.append(_card("fastest", f"{_fmt(fast.latency_ms, 3)} ms", fast.id))
    en = [m for m in art.members if m.energy_mj is not None]
    if en and not art.energy_modelled:  # modelled energy is latency x a constant: "fastest"
        low = min(en, key=lambda m: m.energy_mj or 0.0)
        cards.append(_card("lowest energy", f"{_fmt(low.energy_mj, 3)} mJ", low.id))
    if hv:
        cards.append(
            _card("final hypervolume", _fmt(hv[-1]["hypervolume"]), f"{len(hv)} generations")
        )
    return f'<div class="cards">{"".join(cards)}</div>'


def _render(art: RunArtifacts, figs: _Figures, progress: ProgressFn) -> str:
    cfg = art.config
    metric = art.metric
    cand = _points_from_candidates(art.candidates)
    members = _member_points(art.members)
    baselines = _baseline_points(art.baselines)
    others = {k: _member_points(v.members) for k, v in art.other_strategies.items()}
    ax_val = _plots.Axis("val", f"validation {metric}", True)
    ax_lat = _plots.Axis("latency", "latency (ms)", False)
    ax_en = _plots.Axis("energy", "energy (mJ)", False)
    projections = [("pareto_acc_latency", ax_lat, ax_val)]
    if not art.energy_modelled:  # else energy-vs-latency is a straight line
        projections += [
            ("pareto_acc_energy", ax_en, ax_val),
            ("pareto_latency_energy", ax_lat, ax_en),
        ]
    total = 4 + len(projections)
    step = 0
    figs_html = []
    for name, x, y in projections:
        path = _plots.pareto_projection(figs.path(name), x, y, cand, members, baselines, others)
        figs_html.append(_img(path, name.replace("_", " ")))
        step += 1
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
    pareto_body = (
        "<p>Validation scores and LUT costs of the final Pareto set (test scores are measured "
        "once, after the search). Latency and energy are per inference at batch size 1 on "
        f"<b>{_e(art.device)}</b>; the paper columns count backbones and fusion operators only."
        "</p>"
        + _energy_note(art)
        + "<p class='note'>Flags: <i>ignores m</i> — the fusion reads no feature of modality m "
        "(a unimodal model); <i>predicted</i> — layer costs estimated by the fallback predictor "
        "from the device table's layers of the same kind; <i>not costed</i> — layers of a kind "
        "the device table has no entry of, left out of the latency and energy; "
        "<i>dominated by baseline b</i> — baseline b reaches at least this validation score at "
        "no more latency, so prefer it to this member.</p>"
        + _dominance_note(art)
        + GENOME_NOTE
        + _pareto_table(art)
        + "<h3>Pareto projections</h3>"
        + "<p>Grey: every completed candidate (dashed: its 2-D front); coloured: the Pareto "
        "set (non-dominated in the search's objectives)."
        + _e(base_note)
        + "</p>"
        + f'<div class="grid">{"".join(figs_html)}</div>'
    )

    hv = _hv_generations(art.hypervolume)
    if hv:
        ref = (art.hypervolume or {}).get("reference_point")
        ref_txt = (
            ", ".join(f"{k} = {_fmt(v, 3)}" for k, v in ref.items())
            if isinstance(ref, dict)
            else ""
        )
        hv_body = _img(_plots.hypervolume_plot(figs.path("hypervolume"), hv), "hypervolume") + (
            f"<p class='note'>reference point: {_e(ref_txt)}</p>" if ref_txt else ""
        )
    else:
        hv_body = _not_run("Hypervolume history", "harmonic-nas search CONFIG")
    step += 1
    progress("report", step, total)

    arch_body = _architectures_section(art, figs)
    step += 1
    progress("report", step, total)
    supernet_body = _supernet_section(art, figs)
    step += 1
    progress("report", step, total)
    validation_body = _validation_section(art, figs)
    step += 1
    progress("report", step, total)

    mods = ", ".join(f"{name} {tuple(m.shape)} ({m.preset})" for name, m in cfg.modalities.items())
    created = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    subtitle = (
        f"dataset <b>{_e(cfg.dataset.name)}</b> · modalities {_e(mods)} · device "
        f"<b>{_e(art.device)}</b> · task {_e(art.task)} · strategy {_e(cfg.search.strategy)}, "
        f"population {cfg.search.population} × {cfg.search.generations} generations · "
        f"seed {cfg.seed} · generated {_e(created)}"
    )
    config_text = (art.run / "config.yaml").read_text(encoding="utf-8")
    sections = [
        ("pareto", "Pareto set", pareto_body),
        ("baselines", "Baselines", _baselines_table(art)),
        ("hypervolume", "Search progress", hv_body),
        ("architectures", "Fused architectures of the Pareto models", arch_body),
        ("supernets", "Supernet training", supernet_body),
        ("validation", "Cost-model validation", validation_body),
        ("candidates", "All candidates", _candidates_table(art)),
        (
            "config",
            "Configuration",
            f"<details><summary>resolved config.yaml</summary><pre>{_e(config_text)}</pre>"
            "</details>",
        ),
    ]
    nav = "".join(f'<a href="#{a}">{_e(t.split(" of ")[0])}</a>' for a, t, _ in sections)
    body = "".join(_section(a, t, b) for a, t, b in sections)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>harmonic-nas report: {_e(art.name)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>Harmonic-NAS report: {_e(art.name)}</h1>"
        f"<div class='sub'>{subtitle}</div></header><nav>{nav}</nav><main>"
        + _cards(art, hv)
        + body
        + "</main><footer>harmonic-nas · self-contained report (figures embedded; PNG copies in "
        f"{_e(str(figs.dir))})</footer><script>{_JS}</script></body></html>\n"
    )


def report(run: Path | str, *, progress: ProgressFn = no_progress) -> Path:
    """Write ``run/report.html`` (self-contained) and the PNGs in ``run/figures``; return the path.

    Raises :class:`~harmonic_nas.errors.StageMissingError` naming the missing stage when the run
    has no finished search.
    """
    art = load_run(run)
    figs = _Figures(art.run / FIGURES_DIR)
    page = _render(art, figs, progress)
    out = atomic_write_text(art.run / REPORT_NAME, page)
    figs.remove_stale()
    progress("report", 7, 7)
    logger.info("report written to %s (%d figures)", out, len(figs.paths))
    return out
