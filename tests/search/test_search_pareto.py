"""Pareto extraction and exact hypervolume against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from harmonic_nas.search.pareto import (
    dominates,
    hypervolume,
    non_dominated,
    normalise,
    normalised_hypervolume,
)


def brute_front(points: list[tuple[float, ...]]) -> list[int]:
    out = []
    for i, p in enumerate(points):
        dominated = False
        for j, q in enumerate(points):
            if i != j and all(a <= b for a, b in zip(q, p, strict=False)) and q != p:
                dominated = True
        if not dominated:
            out.append(i)
    return out


def grid_volume(points: list[tuple[int, ...]], ref: tuple[int, ...]) -> int:
    """Count unit cells [c, c+1)^d below ``ref`` that some point dominates (integer coordinates)."""
    count = 0
    for cell in itertools.product(*(range(0, r) for r in ref)):
        if any(all(p[k] <= cell[k] for k in range(len(ref))) for p in points):
            count += 1
    return count


@pytest.mark.parametrize("seed", range(5))
def test_non_dominated_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pts = [tuple(float(v) for v in rng.integers(0, 6, size=3)) for _ in range(40)]
    assert non_dominated(pts) == brute_front(pts)
    front = [pts[i] for i in non_dominated(pts)]
    assert not any(dominates(a, b) for a in front for b in front)


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("seed", range(4))
def test_hypervolume_exact_on_integer_grids(dim: int, seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    ref = (7,) * dim
    pts = [tuple(int(v) for v in rng.integers(0, 7, size=dim)) for _ in range(12)]
    assert hypervolume(pts, ref) == pytest.approx(grid_volume(pts, ref))


def test_hypervolume_matches_optuna() -> None:
    from optuna._hypervolume import compute_hypervolume

    rng = np.random.default_rng(3)
    pts = rng.random((60, 3))
    ref = np.array([1.1, 1.1, 1.1])
    assert hypervolume(pts.tolist(), ref.tolist()) == pytest.approx(
        compute_hypervolume(pts, ref, assume_pareto=False)
    )


def test_points_outside_reference_contribute_nothing_and_normalisation() -> None:
    assert hypervolume([(2.0, 0.5)], (1.0, 1.0)) == 0.0
    assert hypervolume([], (1.0, 1.0)) == 0.0
    assert normalise([(5.0, 0.0)], (0.0, 0.0), (10.0, 2.0)) == [(0.5, 0.0)]
    # the ideal point dominates the whole unit box
    assert normalised_hypervolume([(0.0, 1.0, 2.0)], (0.0, 1.0, 2.0), (1.0, 3.0, 4.0)) == 1.0
    assert 0.0 < normalised_hypervolume([(0.5, 2.0, 3.0)], (0.0, 1.0, 2.0), (1.0, 3.0, 4.0)) < 1.0
