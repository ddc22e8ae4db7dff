"""Pareto dominance and exact hypervolume for small point sets (all objectives minimised).

Objectives are passed as minimisation vectors, e.g. ``(-val_metric, latency_ms, energy_mj)``.
The hypervolume is exact: by slicing along the last objective, down to the 2-D staircase
(``O(n^2 log n)`` in 3-D, enough for the few hundred candidates of a search).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Point = Sequence[float]


def dominates(a: Point, b: Point) -> bool:
    """``a`` is no worse than ``b`` in every objective and better in at least one (minimisation)."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(
        x < y for x, y in zip(a, b, strict=True)
    )


def non_dominated(points: Sequence[Point] | np.ndarray) -> list[int]:
    """Indices of the points no other point dominates (equal points are all kept), in input order.

    Vectorised (one ``n x n`` comparison), so that the bootstrap of :mod:`.front_metrics` can
    call it for every resampling; same result as testing :func:`dominates` on every pair.
    """
    arr = np.asarray(points, dtype=float)
    if arr.size == 0:
        return []
    arr = arr.reshape(len(arr), -1)
    # dom[i, j]: point i dominates point j
    le = np.all(arr[:, None, :] <= arr[None, :, :], axis=2)
    lt = np.any(arr[:, None, :] < arr[None, :, :], axis=2)
    dominated = np.any(le & lt, axis=0)
    return [int(i) for i in np.flatnonzero(~dominated)]


def _hv2d(points: np.ndarray, ref: np.ndarray) -> float:
    """Exact 2-D hypervolume of ``points`` (already inside the reference box)."""
    if len(points) == 0:
        return 0.0
    order = np.lexsort((points[:, 1], points[:, 0]))
    area, best_y = 0.0, float(ref[1])
    for x, y in points[order]:
        if y < best_y:
            area += (float(ref[0]) - float(x)) * (best_y - float(y))
            best_y = float(y)
    return area


def _hv(points: np.ndarray, ref: np.ndarray) -> float:
    d = points.shape[1]
    if len(points) == 0:
        return 0.0
    if d == 1:
        return float(ref[0] - points[:, 0].min())
    if d == 2:
        return _hv2d(points, ref)
    order = np.argsort(points[:, -1], kind="stable")
    pts = points[order]
    volume = 0.0
    for i in range(len(pts)):
        upper = float(ref[-1]) if i + 1 == len(pts) else float(pts[i + 1, -1])
        depth = upper - float(pts[i, -1])
        if depth > 0:
            volume += depth * _hv(pts[: i + 1, :-1], ref[:-1])
    return volume


def hypervolume(points: Sequence[Point], reference: Point) -> float:
    """Exact hypervolume dominated by ``points`` and bounded by ``reference`` (minimisation).

    Points that do not strictly dominate the reference in every objective contribute nothing.
    """
    ref = np.asarray(reference, dtype=float)
    arr = np.asarray([list(p) for p in points], dtype=float).reshape(-1, len(ref))
    inside = arr[np.all(arr < ref, axis=1)]
    if len(inside) == 0:
        return 0.0
    front = inside[non_dominated(inside.tolist())]
    return float(_hv(front, ref))


def normalise(points: Sequence[Point], ideal: Point, reference: Point) -> list[tuple[float, ...]]:
    """Map each objective linearly so that ``ideal -> 0`` and ``reference -> 1`` (floored at 0)."""
    lo = np.asarray(ideal, dtype=float)
    hi = np.asarray(reference, dtype=float)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    out = []
    for p in points:
        q = np.maximum((np.asarray(p, dtype=float) - lo) / span, 0.0)
        out.append(tuple(float(v) for v in q))
    return out


def normalised_hypervolume(points: Sequence[Point], ideal: Point, reference: Point) -> float:
    """Hypervolume in the unit box between ``ideal`` and ``reference`` (1.0 = the ideal point)."""
    return hypervolume(normalise(points, ideal, reference), [1.0] * len(reference))
