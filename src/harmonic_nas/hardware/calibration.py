"""Calibrated totals: the mapping from a LUT's per-layer sum to whole-model latency.

At profiling time a few whole random models of the search space (:data:`CALIBRATION_MODELS`,
drawn with their own seed stream, so never the models a validation scores) are timed in the same
round-robin as the layers. Their raw cost-model totals ``Σ`` (layers + per-model overhead, dead
layers left out) and their weight bytes ``B`` are fitted to the measured latency ``y`` in three
forms, each judged by its leave-one-out error (MAPE):

* ``identity``: ``y = Σ`` (the raw sum, nothing fitted);
* ``affine``: ``y = a·Σ + c``;
* ``affine+weights``: ``y = a·Σ + w·B + c`` (weights that do not fit a cache cost more than the
  layers timed alone suggest).

The form with the lowest held-out error is kept, with that error and the sample count, in the
LUT's ``calibration``. Fits are weighted by ``1/y`` (relative error) and constrained to
``a >= 0, w >= 0`` so that a larger sum never predicts a faster model (the search's bounds rely
on it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import lsq_linear

from harmonic_nas.errors import LUTError

#: whole random models timed at profiling time
CALIBRATION_MODELS = 20
FORMS = ("identity", "affine", "affine+weights")
_MIN_SAMPLES = 5


@dataclass(frozen=True)
class Calibration:
    """``latency = a·Σlayers + w·weight_bytes + c`` (``form`` names which terms are fitted)."""

    form: str = "identity"
    a: float = 1.0
    w: float = 0.0
    c: float = 0.0
    heldout_mape_pct: float | None = None
    samples: int = 0
    candidates: dict[str, float] = field(default_factory=dict)

    def apply(self, raw_ms: float, weight_bytes: float) -> float:
        """The calibrated latency of a model whose raw sum is ``raw_ms`` (never below 0)."""
        return max(self.a * raw_ms + self.w * weight_bytes + self.c, 0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "form": self.form,
            "a": self.a,
            "w_per_byte": self.w,
            "c_ms": self.c,
            "heldout_mape_pct": self.heldout_mape_pct,
            "samples": self.samples,
            "heldout_mape_pct_by_form": dict(self.candidates),
        }

    @classmethod
    def from_json(cls, obj: Any, where: str = "calibration") -> Calibration:
        if not isinstance(obj, dict) or obj.get("form") not in FORMS:
            raise LUTError(f"{where}: 'form' must be one of {', '.join(FORMS)}")
        vals = []
        for name in ("a", "w_per_byte", "c_ms"):
            v = obj.get(name, 0.0)
            if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v):
                raise LUTError(f"{where}: '{name}' must be a finite number, got {v!r:.30}")
            vals.append(float(v))
        if vals[0] < 0 or vals[1] < 0:
            raise LUTError(f"{where}: 'a' and 'w_per_byte' must be >= 0; re-profile the table")
        err = obj.get("heldout_mape_pct")
        samples = obj.get("samples", 0)
        cands = obj.get("heldout_mape_pct_by_form", {})
        return cls(
            form=obj["form"],
            a=vals[0],
            w=vals[1],
            c=vals[2],
            heldout_mape_pct=float(err) if isinstance(err, int | float) else None,
            samples=int(samples) if isinstance(samples, int) else 0,
            candidates={str(k): float(v) for k, v in cands.items()}
            if isinstance(cands, dict)
            else {},
        )


def _design(form: str, raw: np.ndarray, wbytes: np.ndarray) -> np.ndarray:
    cols = [raw, np.ones_like(raw)] if form == "affine" else [raw, wbytes, np.ones_like(raw)]
    return np.stack(cols, axis=1)


def _solve(form: str, raw: np.ndarray, wbytes: np.ndarray, y: np.ndarray) -> tuple[float, ...]:
    """``(a, w, c)`` by weighted least squares with ``a, w >= 0``."""
    if form == "identity":
        return 1.0, 0.0, 0.0
    x = _design(form, raw, wbytes)
    scale = np.maximum(np.abs(x).max(axis=0), 1e-12)
    wt = 1.0 / y
    lower = np.zeros(x.shape[1])
    lower[-1] = -np.inf
    sol = lsq_linear((x / scale) * wt[:, None], y * wt, bounds=(lower, np.inf)).x / scale
    if form == "affine":
        return float(sol[0]), 0.0, float(sol[1])
    return float(sol[0]), float(sol[1]), float(sol[2])


def _predict(coef: tuple[float, ...], raw: np.ndarray, wbytes: np.ndarray) -> np.ndarray:
    a, w, c = coef
    return np.asarray(np.maximum(a * raw + w * wbytes + c, 0.0))


def fit_calibration(
    raw_ms: Sequence[float], weight_bytes: Sequence[float], measured_ms: Sequence[float]
) -> Calibration:
    """Fit every form, judge each by leave-one-out MAPE, keep the best (see the module doc)."""
    raw = np.asarray(raw_ms, dtype=np.float64)
    wb = np.asarray(weight_bytes, dtype=np.float64)
    y = np.asarray(measured_ms, dtype=np.float64)
    n = len(y)
    if n < _MIN_SAMPLES or np.any(y <= 0):
        err = float(np.mean(np.abs(raw - y) / y) * 100) if n and np.all(y > 0) else None
        return Calibration(heldout_mape_pct=err, samples=n)
    errors: dict[str, float] = {}
    for form in FORMS:
        loo = np.empty(n)
        for i in range(n):
            keep = np.arange(n) != i
            coef = _solve(form, raw[keep], wb[keep], y[keep])
            loo[i] = _predict(coef, raw[i : i + 1], wb[i : i + 1])[0]
        errors[form] = float(np.mean(np.abs(loo - y) / y) * 100)
    best = min(FORMS, key=lambda f: (errors[f], FORMS.index(f)))
    a, w, c = _solve(best, raw, wb, y)
    return Calibration(best, a, w, c, errors[best], n, errors)
