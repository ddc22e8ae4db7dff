"""Seeded, class-stratified random subsets of a split (BN recalibration, the architecture split)."""

from __future__ import annotations

import torch
from torch import Tensor


def stratified_subset(labels: Tensor, size: int, generator: torch.Generator) -> Tensor:
    """Indices of ``size`` samples (all if fewer), class-stratified, in a random order.

    Classification labels (1-D class ids): every class gets its share of the subset in proportion
    to its frequency (at least one sample per class whenever ``size`` >= the number of classes),
    the samples of a class drawn at random; the subset is then shuffled so that every batch mixes
    the classes. Multilabel labels (2-D 0/1 matrix): a uniform random subset.
    """
    n = int(labels.shape[0])
    if size < 1 or n == 0:
        raise ValueError(f"stratified_subset needs size >= 1 and samples, got {size}, {n}")
    perm = torch.randperm(n, generator=generator)
    if labels.dim() != 1 or size >= n:
        return perm[: min(size, n)]
    y = labels.reshape(-1).cpu()[perm]
    # rank of each (shuffled) sample within its class, as a fraction of that class's size:
    # taking the smallest fractions first gives every class its proportional share
    _, inverse, counts = torch.unique(y, return_inverse=True, return_counts=True)
    order = torch.argsort(inverse, stable=True)
    rank = torch.empty(n, dtype=torch.long)
    starts = torch.cumsum(counts, 0) - counts
    rank[order] = torch.arange(n) - starts.repeat_interleave(counts)
    frac = (rank.double() + 0.5) / counts[inverse].double()
    chosen = torch.argsort(frac, stable=True)[:size]
    mixed = chosen[torch.randperm(size, generator=generator)]
    return perm[mixed]
