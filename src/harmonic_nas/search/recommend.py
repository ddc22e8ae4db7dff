"""What to deploy: the one recommendation rule of a Pareto set.

The val-best member is rarely the one to deploy: another member within the noise of its score is
often much faster. The rule, applied to the members of ``pareto.json``:

1. **Budget.** With ``search.latency_budget_ms`` / ``search.energy_budget_mj`` set, only the members
   within every budget are considered (all of them, and the reason says so, when none is).
2. **Within noise of the best.** The best validation score among those, minus the val split's
   standard error at that score (the binomial ``sqrt(s (1 - s) / n_val)``; for weighted F1 it is
   the same approximation), is the bar; when members were re-scored with several seeds, the
   best member's seed standard deviation is the bar's width if larger.
3. **Fastest.** Of the members at or above the bar, the lowest latency (then energy, then the
   higher val score) is recommended.

``harmonic-nas run`` / :func:`harmonic_nas.run` export it; the report, ``status`` and the run's
summary show it with its reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harmonic_nas.search.pareto_record import ParetoMember

#: how the recommended member was chosen (``Recommendation.rule``)
RULES = ("within-se", "budget")


def val_standard_error(score: float, n_val: int | None) -> float:
    """Standard error of a val score ``score`` in [0, 1] measured on ``n_val`` samples (binomial);
    0 when the split size is unknown."""
    if not n_val or n_val < 1 or not math.isfinite(score):
        return 0.0
    s = min(max(score, 0.0), 1.0)
    return math.sqrt(s * (1.0 - s) / n_val)


@dataclass(frozen=True)
class Recommendation:
    """The member to deploy and why (see the module docstring)."""

    id: str
    trial: int
    rule: str
    reason: str
    best_id: str
    val_bar: float
    val_se: float

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "trial": self.trial,
            "rule": self.rule,
            "reason": self.reason,
            "best_id": self.best_id,
            "val_bar": self.val_bar,
            "val_se": self.val_se,
        }

    @classmethod
    def from_json(cls, data: Any) -> Recommendation | None:
        """The recorded recommendation, or None when ``data`` is not a complete one."""
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                id=str(data["id"]),
                trial=int(data["trial"]),
                rule=str(data["rule"]),
                reason=str(data["reason"]),
                best_id=str(data["best_id"]),
                val_bar=float(data["val_bar"]),
                val_se=float(data["val_se"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


def _within(m: ParetoMember, latency_ms: float | None, energy_mj: float | None) -> bool:
    return (latency_ms is None or m.latency_ms <= latency_ms) and (
        energy_mj is None or m.energy_mj <= energy_mj
    )


def recommend(
    members: Sequence[ParetoMember],
    *,
    n_val: int | None,
    latency_budget_ms: float | None = None,
    energy_budget_mj: float | None = None,
) -> Recommendation | None:
    """The member to deploy (None for an empty set); see the module docstring for the rule."""
    if not members:
        return None
    budgeted = latency_budget_ms is not None or energy_budget_mj is not None
    pool = [m for m in members if _within(m, latency_budget_ms, energy_budget_mj)]
    over_budget = budgeted and not pool
    pool = pool or list(members)
    best = max(pool, key=lambda m: (m.val_metric, -m.latency_ms, -m.energy_mj))
    se = val_standard_error(best.val_metric, n_val)
    width = max(se, best.val_metric_std or 0.0)
    bar = best.val_metric - width
    near = [m for m in pool if m.val_metric >= bar - 1e-12]
    chosen = min(near, key=lambda m: (m.latency_ms, m.energy_mj, -m.val_metric))
    budget = " and ".join(
        b
        for b in (
            f"latency <= {latency_budget_ms:g} ms" if latency_budget_ms is not None else "",
            f"energy <= {energy_budget_mj:g} mJ" if energy_budget_mj is not None else "",
        )
        if b
    )
    if chosen.id == best.id:
        reason = (
            f"the best val score ({best.val_metric:.4f}); no faster member is within its "
            f"standard error ({width:.4f})"
        )
    else:
        reason = (
            f"the fastest member within the standard error ({width:.4f}) of the best val "
            f"score ({best.val_metric:.4f}, {best.id}): {chosen.val_metric:.4f} at "
            f"{chosen.latency_ms:.3f} ms instead of {best.latency_ms:.3f} ms"
        )
    if over_budget:
        reason += f"; no member meets the budget ({budget}), so every member was considered"
    elif budgeted:
        reason = f"within the budget ({budget}): {reason}"
    return Recommendation(
        id=chosen.id,
        trial=chosen.trial,
        rule="budget" if budgeted and not over_budget else "within-se",
        reason=reason,
        best_id=best.id,
        val_bar=bar,
        val_se=width,
    )


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def baselines_beating_all(
    members: Sequence[ParetoMember], baselines: Sequence[dict[str, Any]] | None
) -> list[str]:
    """Names of the baselines at least as accurate on val and at least as fast as every member
    (``baselines.json`` rows; an empty set of members is beaten by nothing)."""
    if not members:
        return []
    out = []
    for b in baselines or []:
        v, lat = _num(b.get("val_metric")), _num(b.get("latency_ms"))
        if v is None or lat is None:
            continue
        if all(v >= m.val_metric and lat <= m.latency_ms for m in members):
            out.append(str(b.get("name", "?")))
    return out


def deploy_lines(
    members: Sequence[ParetoMember],
    recommendation: Recommendation | None,
    baselines: Sequence[dict[str, Any]] | None = None,
) -> list[str]:
    """What to deploy, for people, most important first: a baseline that beats every member,
    then the recommended member and why (the report, ``status`` and the run's summary)."""
    lines = []
    beating = baselines_beating_all(members, baselines)
    if beating:
        lines.append(
            f"baseline {' / '.join(beating)} beats every Pareto member (at least as accurate on "
            "val and at least as fast): deploy it rather than a searched model"
        )
    if recommendation is not None:
        lines.append(f"recommended: {recommendation.id}, {recommendation.reason}")
    return lines


__all__ = [
    "RULES",
    "Recommendation",
    "baselines_beating_all",
    "deploy_lines",
    "recommend",
    "val_standard_error",
]
