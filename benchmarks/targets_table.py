"""Print the README's table of every target in ``benchmarks/results/*.json`` (met or missed).

    .venv/bin/python benchmarks/targets_table.py

One row per target of each result file's ``targets`` block, in file order; a target with an
interval shows it, a search target says whether a control also meets it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return "—" if v is None else str(v).lower()
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def rows() -> list[str]:
    """The table's Markdown lines."""
    out = [
        "| results file | target | value | goal | | note |",
        "|---|---|---:|---|---|---|",
    ]
    for path in sorted(RESULTS.glob("*.json")):
        if path.name.endswith(".candidates.json"):
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        for name, t in (data.get("targets") or {}).items():
            note = []
            if t.get("_ci_low") is not None or t.get("_ci_high") is not None:
                note.append(f"90 % CI [{_fmt(t.get('_ci_low'))}, {_fmt(t.get('_ci_high'))}]")
            if "control_also_meets" in t:
                note.append(f"control also meets: {_fmt(t['control_also_meets'])}")
            if t.get("inconclusive"):
                note.append("inconclusive")
            met = "met" if t.get("met") else "**missed**"
            goal = f"{t.get('op')} {_fmt(t.get('target'))}"
            cell = name.replace("|", "\\|")  # a pipe in a name would split the table's cell
            out.append(
                f"| `{path.name}` | `{cell}` | {_fmt(t.get('value'))} | {goal} | {met} | "
                f"{'; '.join(note)} |"
            )
    return out


def main() -> int:
    print("\n".join(rows()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
