"""The ``targets`` block every benchmark JSON carries, built, printed and refreshed in one place.

``{"<name>": {"value": v, "target": t, "op": ">=" | "<=" | "==", "met": bool}}``; a value of
None (not measured) is never met. A target measured with a bootstrap interval carries
``_ci_low`` / ``_ci_high`` and is met only when the interval excludes "no effect" too; a search
target carries ``control_also_meets`` (a control reaching the same figure: no evidence). The rules
live in :mod:`harmonic_nas.search.front_metrics`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harmonic_nas.errors import HarmonicError
from harmonic_nas.search.front_metrics import (
    BootstrapComparison,
    control_also_meets,
    interval_met,
    judge_ratio,
)
from harmonic_nas.utils.io import atomic_write_json, read_json

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": lambda v, t: v >= t,
    "<=": lambda v, t: v <= t,
    "==": lambda v, t: v == t,
}


def target(
    value: Any,
    goal: Any,
    op: str,
    *,
    met: bool | None = None,
    controls: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One target; ``met`` overrides the comparison (a target with a side condition).
    ``controls``: the same figure for each control (``{"random": v, ...}``), recorded as
    ``_controls`` with ``control_also_meets``."""
    if met is None:
        met = value is not None and _OPS[op](value, goal)
    out = {"value": value, "target": goal, "op": op, "met": bool(met)}
    if controls is not None:
        out["control_also_meets"] = control_also_meets(controls, goal, op)
        out["_controls"] = dict(controls)
    return out


def target_with_interval(
    value: float | None,
    ci_low: float | None,
    ci_high: float | None,
    goal: float,
    op: str,
    *,
    no_effect: float = 1.0,
    controls: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A target with a bootstrap interval: met only when ``value`` meets ``goal`` and the interval
    excludes ``no_effect`` (``_ci_low > 1.0`` for a ``>=`` ratio target; 0.0 for a difference)."""
    met = interval_met(value, ci_low, ci_high, goal, op, no_effect=no_effect)
    out = target(value, goal, op, met=met, controls=controls)
    out["_ci_low"], out["_ci_high"] = ci_low, ci_high
    return out


def hv_ratio_target(
    comparison: BootstrapComparison, goal: float, *, controls: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A ``>=`` hypervolume-ratio target from a bootstrap comparison
    (:func:`harmonic_nas.search.front_metrics.judge_ratio`): the ratio with its interval, the
    difference with its interval beside it, judged by the difference when the control's HV is 0."""
    judged = judge_ratio(comparison, goal)
    out = target(judged.pop("value"), goal, ">=", met=judged.pop("met"), controls=controls)
    out.update(judged)
    return out


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


def retarget(
    path: Path,
    targets_of: Callable[[dict[str, Any]], dict[str, Any]],
    what: str,
    *,
    schema_version: int = 1,
) -> int:
    """Add/replace only the ``targets`` block of the saved result at ``path``."""
    try:
        results = read_json(path, schema_version=schema_version, what=what)
    except HarmonicError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    results["targets"] = targets_of(results)
    atomic_write_json(path, results, schema_version=schema_version)
    print_targets(results["targets"])
    print(f"updated targets in {path}")
    return 0
