"""A table for a device you cannot profile fully: K measured layers + other devices' tables.

``harmonic-nas profile CONFIG --kit DIR --sample K`` times only K layers chosen to span the space
(:func:`choose_sample`: per layer kind in proportion to how often random models of the space use
it, at least one per kind, spread over each kind's range of MACs). :func:`predict_latencies` fills in the rest:

* layers are grouped by kind (conv, mbconv, linear, maxout, fusion operator, reshape, head); a
  layer is only ever predicted from measured layers of its own kind;
* candidate models are fitted to the K measured layers of the kind: ``y = a·ref`` and
  ``y = a·ref + b`` for every other device's table ``ref`` holding the layer (the intercept absorbs
  a fixed launch cost, as on a GPU), ``y = a·ref + m·MACs + b``, ``y = a·MACs``,
  ``y = m·MACs + k·bytes + b`` and a constant (non-negative coefficients, relative least squares);
* they are ranked by their leave-one-out error on the measured layers of the kind when it has at
  least :data:`OWN_JUDGEMENT`, else by that error pooled over every kind (a device that resembles
  the target on the kinds it can judge is trusted on the others), and the predictions of the
  :data:`ENSEMBLE` best that can predict the layer are averaged.

A kind measured only at 0 (below the per-call overhead) predicts 0. A kind without any measured
layer is not predicted (those layers are not costed on the device).
Predicted entries are listed in the table's ``predicted`` and flagged wherever they are used.
The two controls :func:`ratio_control` and :func:`flops_control` are what any transfer must beat
(``benchmarks/cross_device.py``; :data:`ENSEMBLE` and :data:`OWN_JUDGEMENT` were chosen on that
benchmark's tables).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import nnls

from harmonic_nas.hardware.features import bytes_moved, macs
from harmonic_nas.hardware.keys import parse_key

if TYPE_CHECKING:
    from numpy.random import Generator

Table = Mapping[str, float]
#: a kind with this many measured layers chooses its model on its own leave-one-out error
OWN_JUDGEMENT = 4


def kind_of(key: str) -> str:
    """The layer kind of a LUT key (every fusion operator is one kind)."""
    return parse_key(key).kind


def key_macs(key: str) -> float:
    return max(macs(parse_key(key)), 1.0)


def _by_kind(keys: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k in keys:
        out.setdefault(kind_of(k), []).append(k)
    return out


def choose_sample(
    keys: Sequence[str],
    k: int,
    rng: Generator | None = None,
    usage: Mapping[str, float] | None = None,
) -> list[str]:
    """``k`` keys spanning ``keys``. ``usage`` (default 1 each) weighs a key by how often whole
    models use it (:func:`usage_counts`): the kinds share ``k`` in proportion to their usage (at
    least one per kind while ``k`` allows, most used kinds first), and within a kind the keys,
    ranked by MACs, are cut into equal-usage bins with one key from each (the bin's middle, or
    drawn by usage with ``rng``)."""
    weight = {key: (1.0 if usage is None else float(usage.get(key, 0.0))) for key in set(keys)}
    groups = _by_kind(sorted(weight))
    k = min(k, len(weight))
    mass = {g: sum(weight[x] for x in v) or 1e-9 for g, v in groups.items()}
    kinds = sorted(groups, key=lambda g: (-mass[g], g))
    share = dict.fromkeys(kinds, 0)
    for g in kinds[:k]:
        share[g] = 1
    total = sum(mass.values())
    for _ in range(k - sum(share.values())):  # largest remaining deficit first
        g = max(
            (g for g in kinds if share[g] < len(groups[g])),
            key=lambda g: mass[g] * k / total - share[g],
        )
        share[g] += 1
    out: list[str] = []
    for g in kinds:
        ranked = sorted(groups[g], key=lambda key: (key_macs(key), key))
        w = np.array([weight[x] for x in ranked]) + 1e-9
        edges = np.concatenate([[0.0], np.cumsum(w)]) / w.sum()
        chosen: set[int] = set()
        n = share[g]
        for b in range(n):
            lo, hi = b / n, (b + 1) / n
            inside = [i for i in range(len(ranked)) if edges[i + 1] > lo and edges[i] < hi]
            inside = [i for i in inside if i not in chosen] or [
                i for i in range(len(ranked)) if i not in chosen
            ]
            if rng is None:
                mid = (lo + hi) / 2
                pick = min(inside, key=lambda i: abs((edges[i] + edges[i + 1]) / 2 - mid))
            else:
                p = w[inside] / w[inside].sum()
                pick = int(inside[int(rng.choice(len(inside), p=p))])
            chosen.add(pick)
            out.append(ranked[pick])
    return out


def usage_counts(models: Sequence[Sequence[str]]) -> dict[str, float]:
    """How many times each key occurs in ``models`` (lists of layer keys)."""
    out: dict[str, float] = {}
    for layers in models:
        for key in layers:
            out[key] = out.get(key, 0.0) + 1.0
    return out


#: candidate models: (name, uses a reference table, feature columns, fewest points to fit)
_MODELS: tuple[tuple[str, bool, tuple[str, ...], int], ...] = (
    ("ratio", True, ("ref",), 1),
    ("affine", True, ("ref", "one"), 3),
    ("ref+macs", True, ("ref", "macs", "one"), 4),
    ("macs-ratio", False, ("macs",), 1),
    ("macs+bytes", False, ("macs", "bytes", "one"), 4),
    ("constant", False, ("one",), 1),
)
#: predictions averaged over this many best-judged candidates
ENSEMBLE = 2


def _columns(cols: tuple[str, ...], key: str, ref: float) -> list[float]:
    spec = parse_key(key)
    vals = {"ref": ref, "macs": key_macs(key), "bytes": bytes_moved(spec), "one": 1.0}
    return [vals[c] for c in cols]


def _solve(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative coefficients of ``y ≈ x @ c``, relative least squares."""
    w = 1.0 / y
    scale = np.maximum(np.abs(x).max(axis=0), 1e-12)
    coef, _ = nnls((x / scale) * w[:, None], y * w)
    return np.asarray(coef / scale)


class _Candidate:
    """One model fitted on one kind's measured layers (with one reference table, or none)."""

    def __init__(self, model: int, ref: Table | None) -> None:
        self.name, self.uses_ref, self.cols, self.min_points = _MODELS[model]
        self.ref = ref

    def row(self, key: str) -> list[float] | None:
        r = 0.0
        if self.uses_ref:
            v = None if self.ref is None else self.ref.get(key)
            if v is None or v <= 0:
                return None
            r = v
        return _columns(self.cols, key, r)

    def data(self, keys: Sequence[str], measured: Table) -> tuple[np.ndarray, np.ndarray] | None:
        rows = [self.row(k) for k in keys]
        if any(r is None for r in rows) or len(rows) < self.min_points:
            return None
        return np.array(rows, dtype=np.float64), np.array([measured[k] for k in keys])

    def loo(self, keys: Sequence[str], measured: Table) -> list[float] | None:
        """Leave-one-out relative errors, or None when it cannot be judged on ``keys``."""
        d = self.data(keys, measured)
        if d is None or len(keys) - 1 < self.min_points:
            return None
        x, y = d
        errs = []
        for i in range(len(y)):
            keep = np.arange(len(y)) != i
            pred = float(x[i] @ _solve(x[keep], y[keep]))
            errs.append(abs(pred - y[i]) / y[i])
        return errs

    def predict(self, keys: Sequence[str], measured: Table, key: str) -> float | None:
        d = self.data(keys, measured)
        row = self.row(key)
        if d is None or row is None:
            return None
        return max(float(np.asarray(row) @ _solve(*d)), 0.0)


def predict_latencies(
    measured: Table, keys: Sequence[str], references: Sequence[Table]
) -> dict[str, float]:
    """Latency of every key of ``keys`` that ``measured`` lacks and whose kind it has (see the
    module docstring); keys of a kind without a measured layer are left out."""
    wanted = _by_kind([k for k in keys if k not in measured])
    # a kind measured at 0 only (below the per-call overhead) predicts 0; a 0 anchors no fit
    out: dict[str, float] = {
        k: 0.0 for g in set(_by_kind(list(measured))) for k in wanted.get(g, [])
    }
    measured = {k: v for k, v in measured.items() if v > 0}
    mine = _by_kind(sorted(measured))
    cands = [
        _Candidate(m, ref)
        for m, (_, uses_ref, _, _) in enumerate(_MODELS)
        for ref in (references if uses_ref else [None])
    ]
    # leave-one-out errors per kind and candidate, and pooled over the kinds
    pooled: list[list[float]] = [[] for _ in cands]
    per_kind: dict[str, list[float]] = {}
    for g, ks in mine.items():
        scores = []
        for i, c in enumerate(cands):
            errs = c.loo(ks, measured)
            scores.append(math.inf if errs is None else float(np.mean(errs)))
            pooled[i] += errs or []
        per_kind[g] = scores
    pooled_err = [float(np.mean(e)) if e else math.inf for e in pooled]
    for g, targets in wanted.items():
        if g not in mine:
            continue
        ks = mine[g]
        own = per_kind[g]
        if len(ks) >= OWN_JUDGEMENT:
            order = sorted(range(len(cands)), key=lambda i: (own[i], pooled_err[i], i))
        else:
            order = sorted(range(len(cands)), key=lambda i: (pooled_err[i], i))
        for key in targets:
            preds: list[float] = []
            for i in order:
                v = cands[i].predict(ks, measured, key)
                if v is not None:
                    preds.append(v)
                if len(preds) == ENSEMBLE:
                    break
            if preds:
                out[key] = float(np.mean(preds))
    return out


def ratio_control(
    measured: Table, keys: Sequence[str], references: Sequence[Table]
) -> dict[str, float]:
    """Control: each reference entry scaled by the per-kind median ratio of the K measured
    entries to that reference, averaged over the references holding the key."""
    skip = set(measured)
    measured = {k: v for k, v in measured.items() if v > 0}
    mine = _by_kind(list(measured))
    out: dict[str, float] = {}
    for key in keys:
        if key in skip or kind_of(key) not in mine:
            continue
        preds = []
        for ref in references:
            ratios = [measured[m] / ref[m] for m in mine[kind_of(key)] if ref.get(m, 0) > 0]
            if ratios and ref.get(key, 0) > 0:
                preds.append(float(np.median(ratios)) * ref[key])
        if preds:
            out[key] = float(np.mean(preds))
    return out


def flops_control(measured: Table, keys: Sequence[str]) -> dict[str, float]:
    """Control: latency proportional to MACs, per kind (median ratio of the K measured)."""
    skip = set(measured)
    measured = {k: v for k, v in measured.items() if v > 0}
    mine = _by_kind(list(measured))
    out: dict[str, float] = {}
    for key in keys:
        g = kind_of(key)
        if key in skip or g not in mine:
            continue
        ratio = float(np.median([measured[m] / key_macs(m) for m in mine[g]]))
        out[key] = ratio * key_macs(key)
    return out
