"""Fusion points: which backbone features feed the fusion network, and how they become (B, C, L).

A CNN backbone returns its feature maps ``[stem, block_1, ..., block_N]`` followed by its final
representation (the pooled feature-mix output, ``(B, D)``, what its classifier reads); a
Maxout/vector backbone returns its hidden layers ``(B, D)``, the last being its final
representation. From each backbone we take the final representation and K of the other features
(:func:`fusion_point_indices`), so that late fusion ("fuse the final features") is inside the search
space, and turn each into a ``(B, C, L)`` tensor in two parts:

1. a parameter-free **pool** (:class:`PointPool`): adaptive max-pool of a map to ``sqrt(L) x sqrt(L)``;
   identity for a vector. Its output is what the feature cache stores (it does not depend on
   trained weights, so the cache is exact);
2. a trainable **projection** (:class:`PointProjection`): for a map, 1x1 conv to C channels, BN,
   ReLU, dropout, flattened to ``(B, C, L)``; for a vector ``(B, D)`` (no spatial structure to
   pool), ``Linear(D, C*L)``, BN, ReLU, dropout, reshaped to ``(B, C, L)`` -- the L positions become
   L learned views of the hidden layer, so attention-style operators still see a sequence.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harmonic_nas.fusion.ops import Dropout

logger = logging.getLogger(__name__)


def fusion_point_indices(n_features: int, k: int) -> list[int]:
    """Indices (ascending) of the fusion points among a backbone's ``n_features`` features.

    The last feature (the final representation) is always a fusion point. Of the others
    (``[stem, blocks...]`` of a CNN, the earlier hidden layers of a Maxout MLP), K are taken as
    Harmonic-NAS does: start at the last and step back by ``max(1, (n - 1) // k)``; with ``k >= n``
    every one is used.
    """
    if n_features < 1:
        raise ValueError("a backbone must return at least one feature")
    if k < 1:
        raise ValueError("fusion_points must be >= 1")
    n = n_features - 1  # the features before the final representation
    if n == 0:
        return [0]
    k = min(k, n)
    step = max(1, (n - 1) // k)
    return sorted({n - 1 - i * step for i in range(k)} | {n_features - 1})


def pooled_shape(feature_shape: tuple[int, ...], L: int) -> tuple[int, ...]:
    """Shape (without batch) of a fusion point after :class:`PointPool`."""
    side = math.isqrt(L)
    if len(feature_shape) == 3:
        return (feature_shape[0], side, side)
    if len(feature_shape) == 1:
        return feature_shape
    raise ValueError(
        f"a fusion point must be a map (C, H, W) or a vector (D,), got {feature_shape}"
    )


def _uniform_windows(windows: list[tuple[int, int]]) -> tuple[int, int] | None:
    """``(kernel, stride)`` of a fixed max-pool whose windows are exactly ``windows``, or None
    when the adaptive windows differ in size or step (e.g. 7 -> 4: sizes 2, 3, 3, 2) or repeat."""
    sizes = {b - a for a, b in windows}
    steps = {windows[i + 1][0] - windows[i][0] for i in range(len(windows) - 1)}
    if len(sizes) != 1 or len(steps) > 1 or min(steps, default=1) < 1:
        return None  # mixed sizes or steps, or a map smaller than s (windows repeat)
    kernel = sizes.pop()
    return kernel, (steps.pop() if steps else kernel)


class PointPool(nn.Module):
    """Adaptive max-pool of a (B, C, H, W) map to (B, C, s, s), exported as a fixed graph.

    Identical to ``F.adaptive_max_pool2d``. Where the adaptive windows are uniform along both
    axes (always for s <= 2, e.g. 7 -> 2 is kernel 4, stride 3) it is ONE ``max_pool2d`` with a
    fixed kernel and stride; otherwise fixed slices (separable max over rows, then columns).
    Either way tracing and ONNX export work for any H, W (ONNX has no adaptive pool when H is not
    a multiple of s). The single pool matters on a device: the slice form is ~10 graph nodes,
    whose per-node overhead cost more than the projection after it (measured 2026-12-07,
    ONNX Runtime CPU, 1 thread: ~16 us vs ~8 us per point at C=32, L=4, call overhead included).
    Vectors (B, D) pass through.
    """

    def __init__(self, feature_shape: tuple[int, ...], L: int) -> None:
        super().__init__()
        self.side = math.isqrt(L)
        self.is_map = len(feature_shape) == 3
        h, w = (feature_shape[1], feature_shape[2]) if self.is_map else (1, 1)
        s = self.side
        self.rows = [((i * h) // s, -(-((i + 1) * h) // s)) for i in range(s)]
        self.cols = [((j * w) // s, -(-((j + 1) * w) // s)) for j in range(s)]
        self.identity_hw = self.is_map and h == s and w == s
        rows, cols = _uniform_windows(self.rows), _uniform_windows(self.cols)
        self.fixed: tuple[tuple[int, int], tuple[int, int]] | None = (
            ((rows[0], cols[0]), (rows[1], cols[1])) if rows and cols else None
        )

    def forward(self, x: Tensor) -> Tensor:
        if not self.is_map or self.identity_hw:
            return x
        if self.fixed is not None:
            return F.max_pool2d(x, self.fixed[0], self.fixed[1])
        r = torch.stack([x[:, :, a:b, :].amax(dim=2) for a, b in self.rows], dim=2)
        return torch.stack([r[:, :, :, a:b].amax(dim=3) for a, b in self.cols], dim=3)


def pool_point(x: Tensor, L: int) -> Tensor:
    """The cache's pooling (functional form of :class:`PointPool`)."""
    if x.dim() == 4:
        side = math.isqrt(L)
        return F.adaptive_max_pool2d(x, side)
    if x.dim() == 2:
        return x
    raise ValueError(f"a fusion point must be (B, C, H, W) or (B, D), got {tuple(x.shape)}")


class PointProjection(nn.Module):
    """Pooled fusion point -> (B, C, L): 1x1 conv (maps) or Linear (vectors), BN, ReLU, dropout."""

    def __init__(self, pooled: tuple[int, ...], C: int, L: int, dropout: float) -> None:
        super().__init__()
        self.C = C
        self.L = L
        self.is_map = len(pooled) == 3
        self.proj: nn.Module
        self.bn: nn.Module
        if self.is_map:
            self.proj = nn.Conv2d(pooled[0], C, 1, bias=False)
            self.bn = nn.BatchNorm2d(C)
        else:
            self.proj = nn.Linear(pooled[0], C * L, bias=False)
            self.bn = nn.BatchNorm1d(C * L)
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        out = self.dropout(F.relu(self.bn(self.proj(x))))
        return out.reshape(out.shape[0], self.C, self.L)


class FusionReshape(nn.Module):
    """A fusion point's whole path into the fusion network, as one module: :class:`PointPool`
    then :class:`PointProjection` (what the model runs per used point; the profiler times it)."""

    def __init__(
        self, feature_shape: tuple[int, ...], C: int, L: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.pool = PointPool(tuple(feature_shape), L)
        self.proj = PointProjection(pooled_shape(tuple(feature_shape), L), C, L, dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.pool(x))
