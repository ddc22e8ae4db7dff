"""Minibatches of the fusion search: shuffled index batches, a persistent cycling iterator, and
the class-stratified weight / architecture parts of the train split."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor

from harmonic_nas.errors import GenomeError
from harmonic_nas.fusion.cache import FeatureSplit
from harmonic_nas.utils.sampling import stratified_subset
from harmonic_nas.utils.seeding import torch_generator


class Batches:
    """Shuffled minibatch indices, reshuffled by a private generator at each pass."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator, device: torch.device):
        self.n, self.bs, self.gen, self.device = n, max(1, batch_size), generator, device

    def epoch(self) -> Iterator[Tensor]:
        perm = torch.randperm(self.n, generator=self.gen).to(self.device)
        for start in range(0, self.n, self.bs):
            idx = perm[start : start + self.bs]
            if len(idx) >= 2 or self.n < 2:  # BN needs two samples; drop a lone remainder
                yield idx

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.bs)
        return full + (1 if rest >= 2 else 0)


class CyclingBatches:
    """A persistent iterator over val batches: every ``next`` is a new batch; reshuffles at the end."""

    def __init__(self, batches: Batches) -> None:
        self.batches = batches
        self._it = batches.epoch()

    def __next__(self) -> Tensor:
        try:
            return next(self._it)
        except StopIteration:
            self._it = self.batches.epoch()
            return next(self._it)

    def __iter__(self) -> CyclingBatches:
        return self


@dataclass
class SubsetSplit:
    """Some samples of a feature split (the weight or the architecture part of train)."""

    base: FeatureSplit
    index: Tensor
    labels: Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.labels = self.base.labels.index_select(0, self.index)

    def __len__(self) -> int:
        return int(self.index.shape[0])

    _last: tuple[Tensor, Tensor] | None = field(default=None, init=False, repr=False)

    def _base_index(self, idx: Tensor) -> Tensor:
        """``idx`` in the base split; the same tensor for the same ``idx`` (so that a live base
        split runs its backbones once for :meth:`batch` and :meth:`late_logits`)."""
        if self._last is None or self._last[0] is not idx:
            self._last = (idx, self.index.index_select(0, idx))
        return self._last[1]

    def batch(self, idx: Tensor) -> list[Tensor]:
        return self.base.batch(self._base_index(idx))

    def late_logits(self, idx: Tensor) -> Tensor | None:
        return self.base.late_logits(self._base_index(idx))


def split_train(
    train: FeatureSplit, fraction: float, seed: int
) -> tuple[FeatureSplit, FeatureSplit]:
    """(weight part, architecture part) of train: ``fraction`` held out, class-stratified."""
    n = len(train)
    n_arch = min(max(2, round(fraction * n)), n - 2)
    if n < 4 or n_arch < 2:
        raise GenomeError(
            f"the train split has {n} samples, too few to hold out fusion.arch_split={fraction} "
            "for the architecture steps; use more data or fusion.arch_split: 0"
        )
    labels = train.labels.cpu()
    arch = stratified_subset(labels, n_arch, torch_generator(seed, "fusion-arch-split"))
    mask = torch.ones(n, dtype=torch.bool)
    mask[arch] = False
    weights = torch.nonzero(mask).flatten()
    device = train.labels.device
    return SubsetSplit(train, weights.to(device)), SubsetSplit(train, arch.sort().values.to(device))
