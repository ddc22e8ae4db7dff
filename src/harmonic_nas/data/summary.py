"""Plain-data summaries of a dataset (what ``harmonic-nas data info`` shows)."""

from __future__ import annotations

import logging
from typing import Any

import torch

from harmonic_nas.data.types import MultimodalDataset

logger = logging.getLogger(__name__)


def dataset_summary(ds: MultimodalDataset) -> dict[str, Any]:
    """Modalities, split sizes, class balance and value ranges of ``ds`` as plain data.

    ``class_counts[split][k]`` is the number of samples of class ``k`` (classification) or of
    positives of label ``k`` (multilabel). ``ranges[split][modality]`` holds min, max, mean, std.
    """
    sizes = {name: len(s) for name, s in ds.splits.items()}
    counts: dict[str, list[int]] = {}
    ranges: dict[str, dict[str, dict[str, float]]] = {}
    for name, s in ds.splits.items():
        if ds.task == "classification":
            counts[name] = torch.bincount(s.labels, minlength=ds.num_classes).tolist()
        else:
            counts[name] = [int(v) for v in s.labels.sum(0).round().tolist()]
        ranges[name] = {}
        for mod, x in s.inputs.items():
            xd = x.double()
            ranges[name][mod] = {
                "min": float(xd.min()) if xd.numel() else 0.0,
                "max": float(xd.max()) if xd.numel() else 0.0,
                "mean": float(xd.mean()) if xd.numel() else 0.0,
                "std": float(xd.std()) if xd.numel() > 1 else 0.0,
            }
    return {
        "name": ds.name,
        "task": ds.task,
        "num_classes": ds.num_classes,
        "class_names": list(ds.class_names),
        "modalities": [m.to_json() for m in ds.modalities],
        "sizes": sizes,
        "class_counts": counts,
        "ranges": ranges,
        "fingerprint": ds.meta.get("fingerprint"),
        "cache_file": ds.meta.get("cache_file"),
    }
