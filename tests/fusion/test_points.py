"""Fusion points: which feature maps, exact static pooling, projections."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from harmonic_nas.fusion import PointPool, PointProjection, fusion_point_indices


@pytest.mark.parametrize(
    ("n", "k", "expected"),
    [
        # the last feature (the final representation) is always a point, plus K of the others
        (7, 4, [2, 3, 4, 5, 6]),  # avmnist depth 4: stem, fixed block, 4 blocks, final vector
        (5, 4, [0, 1, 2, 3, 4]),
        (11, 4, [3, 5, 7, 9, 10]),  # step (10-1)//4 = 2 back from the last map
        (2, 4, [0, 1]),  # Maxout: both hidden layers (the last is the final representation)
        (22, 4, [5, 10, 15, 20, 21]),
        (6, 1, [4, 5]),
        (1, 4, [0]),
    ],
)
def test_fusion_point_indices(n: int, k: int, expected: list[int]) -> None:
    assert fusion_point_indices(n, k) == expected


@pytest.mark.parametrize("hw", [(7, 7), (5, 5), (4, 4), (3, 2), (1, 1), (14, 9)])
@pytest.mark.parametrize("L", [1, 4, 16])
def test_static_pool_equals_adaptive_max_pool(hw: tuple[int, int], L: int) -> None:
    x = torch.randn(3, 5, *hw)
    side = int(L**0.5)
    torch.testing.assert_close(PointPool((5, *hw), L)(x), F.adaptive_max_pool2d(x, side))


def test_projection_shapes() -> None:
    proj = PointProjection((24, 2, 2), 16, 4, 0.1)
    assert proj(torch.randn(5, 24, 2, 2)).shape == (5, 16, 4)
    vec = PointProjection((128,), 16, 4, 0.1)
    assert vec(torch.randn(5, 128)).shape == (5, 16, 4)
    v = torch.randn(5, 128)
    assert PointPool((128,), 4)(v) is v


def test_projection_bank_equals_separate_projections() -> None:
    """The search network's batched projections compute exactly PointProjection per point."""
    from harmonic_nas.fusion.network import ProjectionBank

    shapes = [(6, 2, 2), (6, 2, 2), (5, 2, 2), (12,), (6, 2, 2), (12,)]
    C, L = 4, 4
    bank = ProjectionBank(shapes, C, L, 0.0).train()
    points = [torch.randn(7, *s) for s in shapes]
    out = bank(points)
    assert [tuple(o.shape) for o in out] == [(7, C, L)] * len(shapes)
    for ids, group in zip(bank.members, bank.groups, strict=True):
        width = group.weight.shape[-1]
        for p, i in enumerate(ids):
            ref = PointProjection(shapes[i], C, L, 0.0).train()
            with torch.no_grad():
                w = group.weight[p].t()
                ref.proj.weight.copy_(w.view(*w.shape, 1, 1) if ref.is_map else w)
                ref.bn.weight.copy_(group.bn.weight[p * width : (p + 1) * width])
                ref.bn.bias.copy_(group.bn.bias[p * width : (p + 1) * width])
            torch.testing.assert_close(out[i], ref(points[i]), rtol=1e-5, atol=1e-5)
            assert out[i].is_contiguous()


@pytest.mark.parametrize(
    ("hw", "L", "fixed"),
    [
        ((7, 7), 4, ((4, 4), (3, 3))),
        ((14, 14), 4, ((7, 7), (7, 7))),
        ((5, 5), 4, ((3, 3), (2, 2))),
        ((10, 10), 4, ((5, 5), (5, 5))),
        ((3, 2), 4, ((2, 1), (1, 1))),
        ((8, 8), 16, ((2, 2), (2, 2))),
        ((7, 7), 16, None),  # windows of 2, 3, 3, 2 rows: the slice form
        ((1, 1), 4, None),  # smaller than the output: windows repeat
        ((14, 9), 16, None),
    ],
)
def test_uniform_windows_become_one_max_pool(
    hw: tuple[int, int], L: int, fixed: tuple[tuple[int, int], tuple[int, int]] | None
) -> None:
    """Uniform adaptive windows run (and export) as one fixed max-pool, the others as slices;
    both equal the adaptive pool (test above), and the exported graph has the expected nodes."""
    pool = PointPool((5, *hw), L)
    assert pool.fixed == fixed
    graph = torch.jit.trace(pool, torch.randn(1, 5, *hw)).inlined_graph
    kinds = {n.kind() for n in graph.nodes()}
    assert ("aten::max_pool2d" in kinds) == (fixed is not None)
    assert ("aten::amax" in kinds) == (fixed is None)
