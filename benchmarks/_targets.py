"""The ``targets`` block every benchmark JSON carries, built, printed and refreshed in one place.

``{"<name>": {"value": v, "target": t, "op": ">=" | "<=" | "==", "met": bool}}``; a value of
None (not measured) is never met.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harmonic_nas.errors import HarmonicError
from harmonic_nas.utils.io import atomic_write_json, read_json

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": lambda v, t: v >= t,
    "<=": lambda v, t: v <= t,
    "==": lambda v, t: v == t,
}


def target(value: Any, goal: Any, op: str, *, met: bool | None = None) -> dict[str, Any]:
    """One target; ``met`` overrides the comparison (a target with a side condition)."""
    if met is None:
        met = value is not None and _OPS[op](value, goal)
    return {"value": value, "target": goal, "op": op, "met": bool(met)}


def print_targets(targets: dict[str, Any]) -> None:
    print("targets:")
    width = max((len(n) for n in targets), default=0)
    for name, t in targets.items():
        v = t["value"]
        shown = f"{v:10.4f}" if isinstance(v, float) else f"{v!s:>10}"
        print(
            f"  {name:<{width}} {shown} (target {t['op']} {t['target']}): "
            f"{'met' if t['met'] else 'MISSED'}"
        )


def retarget(path: Path, targets_of: Callable[[dict[str, Any]], dict[str, Any]], what: str) -> int:
    """Add/replace only the ``targets`` block of the saved result at ``path``."""
    try:
        results = read_json(path, schema_version=1, what=what)
    except HarmonicError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    results["targets"] = targets_of(results)
    atomic_write_json(path, results)
    print_targets(results["targets"])
    print(f"updated targets in {path}")
    return 0
