"""The report's tables as plain data (:class:`Table` of :class:`Row` of :class:`Cell`): the
baselines, the search strategies, every candidate, and the summary cards.

Texts are formatted here and escaped by the templates (``templates/macros.html.j2``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from harmonic_nas.results._artifacts import RunArtifacts
from harmonic_nas.results._format import (
    DASH,
    fidelity,
    fmt,
    fmt_params,
    genome_strings,
    genotype_string,
    num,
    yes_no,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cell:
    """One ``<td>``: ``value`` is its sort key (``data-v``); ``mono`` a monospaced text cell."""

    text: str
    value: Any = None
    num: bool = False
    mono: bool = False


@dataclass(frozen=True)
class Row:
    cells: list[Cell]
    cls: str = ""  # "pareto" | "failed" | ""


@dataclass(frozen=True)
class Table:
    """``wrap``: in its own horizontal scroll box (nothing overflows the page)."""

    headers: list[tuple[str, bool]]  # (label, numeric)
    rows: list[Row]
    sortable: bool = False
    wrap: bool = True


def num_cell(text: str, value: Any = None) -> Cell:
    return Cell(text, value, num=True)


# --------------------------------------------------------------------------- baselines


def baselines(art: RunArtifacts) -> dict[str, Any]:
    metric = art.metric_label
    table = None
    if art.baselines:
        table = Table(
            [
                ("baseline", False),
                (f"val {metric}", True),
                (f"test {metric}", True),
                ("latency ms", True),
                ("energy mJ", True),
                ("params", True),
            ],
            [
                Row(
                    [
                        Cell(str(b.get("name", "?"))),
                        num_cell(fmt(b.get("val_metric")), num(b.get("val_metric"))),
                        num_cell(fmt(b.get("test_metric")), num(b.get("test_metric"))),
                        num_cell(fmt(b.get("latency_ms"), 3), num(b.get("latency_ms"))),
                        num_cell(fmt(b.get("energy_mj"), 3), num(b.get("energy_mj"))),
                        num_cell(fmt_params(b.get("params")), num(b.get("params"))),
                    ]
                )
                for b in art.baselines
            ],
            sortable=True,
        )
    return {"run": art.baselines is not None, "table": table, "strategies": strategies(art)}


def strategies(art: RunArtifacts) -> Table | None:
    if not art.other_strategies:
        return None
    rows = []
    for name, front in [("nsga2 (this run)", None), *art.other_strategies.items()]:
        members = art.members if front is None else front.members
        n_c = len(art.candidates) if front is None else front.n_candidates
        vals = [m.val_metric for m in members if m.val_metric is not None]
        tests = [m.test_metric for m in members if m.test_metric is not None]
        lats = [m.latency_ms for m in members if m.latency_ms is not None]
        ens = [m.energy_mj for m in members if m.energy_mj is not None]
        rows.append(
            Row(
                [
                    Cell(name),
                    num_cell(str(n_c), n_c),
                    num_cell(str(len(members)), len(members)),
                    num_cell(fmt(max(vals) if vals else None)),
                    num_cell(fmt(max(tests) if tests else None)),
                    num_cell(fmt(min(lats) if lats else None, 3)),
                    num_cell(fmt(min(ens) if ens else None, 3)),
                ]
            )
        )
    metric = art.metric_label
    headers = [
        ("strategy", False),
        ("candidates", True),
        ("Pareto size", True),
        (f"best val {metric}", True),
        (f"best test {metric}", True),
        ("fastest ms", True),
        ("lowest mJ", True),
    ]
    return Table(headers, rows)


# --------------------------------------------------------------------------- candidates


def candidates(art: RunArtifacts) -> dict[str, Any]:
    pareto_trials = {m.trial: m.id for m in art.members if m.trial is not None}
    has_feasible = any("feasible" in c for c in art.candidates)
    metric = art.metric_label
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
        trial = num(c.get("trial"))
        state = str(c.get("state", "?")).upper()
        pid = pareto_trials.get(int(trial)) if trial is not None else None
        genomes = genome_strings(arch)
        detail = str(c.get("fail_reason") or "") if state != "COMPLETE" else genotype_string(arch)
        cells = [
            num_cell(str(int(trial)) if trial is not None else "?", trial),
            num_cell(str(c.get("generation", DASH)), num(c.get("generation"))),
            Cell(state),
            Cell(f"★ {pid}" if pid else "", pid or ""),
            num_cell(fmt(c.get("val_metric")), num(c.get("val_metric"))),
            num_cell(fmt(c.get("latency_ms"), 3), num(c.get("latency_ms"))),
            num_cell(fmt(c.get("energy_mj"), 3), num(c.get("energy_mj"))),
            num_cell(fmt_params(c.get("params")), num(c.get("params"))),
            num_cell(str(arch.get("cells", DASH)), num(arch.get("cells"))),
            num_cell(str(arch.get("nodes", DASH)), num(arch.get("nodes"))),
            *[Cell(genomes.get(mod, DASH), mono=True) for mod in art.modalities],
            *([Cell(yes_no(c.get("feasible")))] if has_feasible else []),
            Cell(fidelity(c)),
            Cell(detail, mono=True),
        ]
        cls = "pareto" if pid else ("failed" if state != "COMPLETE" else "")
        rows.append(Row(cells, cls))
    n_ok = sum(1 for c in art.candidates if str(c.get("state", "")).upper() == "COMPLETE")
    return {"table": Table(headers, rows, sortable=True, wrap=False), "n_complete": n_ok}


# --------------------------------------------------------------------------- cards


def cards(art: RunArtifacts, hv: list[dict[str, float]]) -> list[tuple[str, str, str]]:
    """``(key, value, sub)`` of the summary cards above the sections."""
    states = [str(c.get("state", "?")).upper() for c in art.candidates]
    counts = {st: states.count(st) for st in dict.fromkeys(["COMPLETE", *sorted(set(states))])}
    cards = [
        (
            "candidates",
            str(len(art.candidates)),
            ", ".join(f"{n} {st.lower()}" for st, n in counts.items() if n or st == "COMPLETE"),
        ),
        ("Pareto models", str(len(art.members)), ""),
    ]
    vals = [m for m in art.members if m.val_metric is not None]
    if vals:  # chosen on val; its test score beside it
        best = max(vals, key=lambda m: m.val_metric or 0.0)
        cards.append(
            (
                f"best val {art.metric_label}",
                fmt(best.val_metric),
                f"{best.id}; test {fmt(best.test_metric)}",
            )
        )
    lat = [m for m in art.members if m.latency_ms is not None]
    if lat:
        fast = min(lat, key=lambda m: m.latency_ms or 0.0)
        cards.append(("fastest", f"{fmt(fast.latency_ms, 3)} ms", fast.id))
    en = [m for m in art.members if m.energy_mj is not None]
    if en and not art.energy_modelled:  # modelled energy is latency x a constant: "fastest"
        low = min(en, key=lambda m: m.energy_mj or 0.0)
        cards.append(("lowest energy", f"{fmt(low.energy_mj, 3)} mJ", low.id))
    if hv:
        cards.append(("final hypervolume", fmt(hv[-1]["hypervolume"]), f"{len(hv)} generations"))
    return cards
