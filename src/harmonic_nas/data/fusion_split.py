"""The fusion split (``fusion.fusion_split``): data the supernets never train on.

A fusion network trained on the very samples its frozen backbones fitted (often 100 % train
accuracy) learns to trust whatever is perfectly separable there, and does not generalise. With
``fusion.fusion_split = f > 0``, :func:`carve_fusion_split` moves a seeded, class-stratified share
``f`` of ``train`` into a fourth split ``fusion`` when the dataset is loaded, before anything
trains: pretraining sees only the rest of ``train`` (so do the baselines and ``late``
candidates, BN recalibration and label prior included), and :func:`fusion_dataset` gives the
inner tier the ``fusion`` split as its train split: a candidate's subnets are BN-recalibrated on
it and the fusion network's weight and architecture steps use it. ``val`` still only chooses and
scores; ``test`` is read once.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import torch

from harmonic_nas.data.types import MultimodalDataset, Split
from harmonic_nas.errors import DataError
from harmonic_nas.utils.seeding import derive_seed

logger = logging.getLogger(__name__)

#: the name of the carved split
FUSION_SPLIT = "fusion"


def fusion_indices(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Sorted indices of the ``fraction`` of samples to carve: per class (classification,
    labels ``(N,)``) ``round(fraction x n_class)`` of them, at least one and never all of a class;
    for multilabel labels ``(N, K)`` a seeded random ``round(fraction x N)``."""
    if not 0 < fraction < 1:
        raise DataError(f"fusion.fusion_split must be in (0, 1), got {fraction}")
    g = torch.Generator().manual_seed(derive_seed(seed, "fusion-split"))
    n = int(labels.shape[0])
    if labels.ndim == 1:
        picked = []
        for c in torch.unique(labels).tolist():
            idx = (labels == c).nonzero(as_tuple=True)[0]
            if len(idx) < 2:
                raise DataError(
                    f"class {c} has {len(idx)} train sample(s), too few to carve "
                    f"fusion.fusion_split={fraction}; use more data or fusion.fusion_split: 0"
                )
            k = min(max(round(fraction * len(idx)), 1), len(idx) - 1)
            picked.append(idx[torch.randperm(len(idx), generator=g)[:k]])
        return torch.sort(torch.cat(picked)).values
    k = round(fraction * n)
    if not 1 <= k < n:
        raise DataError(
            f"the train split has {n} samples, too few to carve fusion.fusion_split={fraction}; "
            "use more data or fusion.fusion_split: 0"
        )
    return torch.sort(torch.randperm(n, generator=g)[:k]).values


def carve_fusion_split(ds: MultimodalDataset, fraction: float, seed: int) -> MultimodalDataset:
    """A copy of ``ds`` whose ``train`` lost :func:`fusion_indices` to a new ``fusion`` split
    (recorded in ``meta["fusion_split"]``: the fraction and both sizes)."""
    if FUSION_SPLIT in ds.splits:
        raise DataError(f"dataset '{ds.name}' already has a '{FUSION_SPLIT}' split")
    train = ds.split("train")
    picked = fusion_indices(train.labels, fraction, seed)
    keep = torch.ones(len(train), dtype=torch.bool)
    keep[picked] = False
    splits: dict[str, Split] = dict(ds.splits)
    splits["train"] = train.subset(keep)
    splits[FUSION_SPLIT] = train.subset(picked)
    meta = {
        **ds.meta,
        "fusion_split": {
            "fraction": fraction,
            "train": len(splits["train"]),
            FUSION_SPLIT: len(splits[FUSION_SPLIT]),
        },
    }
    logger.info(
        "fusion split: %d of %d train samples held out of pretraining",
        len(picked),
        len(train),
    )
    return replace(ds, splits=splits, meta=meta)


def fusion_dataset(ds: MultimodalDataset) -> MultimodalDataset:
    """What the fusion network trains on: ``ds`` with its ``fusion`` split as ``train`` (and no
    ``fusion`` split); ``ds`` itself when it has none (``fusion.fusion_split: 0``)."""
    if FUSION_SPLIT not in ds.splits:
        return ds
    splits = {k: v for k, v in ds.splits.items() if k != FUSION_SPLIT}
    splits["train"] = ds.splits[FUSION_SPLIT]
    return replace(ds, splits=splits)
