"""The data stage: a dataset registry, the built-in av-digits set, real-data loaders, features.

>>> from harmonic_nas.data import build_dataset
>>> ds = build_dataset("av-digits", options={"train_per_class": 20})  # doctest: +SKIP
>>> ds.split("train").inputs["audio"].shape  # doctest: +SKIP
torch.Size([200, 1, 20, 20])
"""

from __future__ import annotations

# importing the built-in builders registers them (the registry itself imports no builder)
from harmonic_nas.data import av_digits, loaders, multi_digits  # noqa: F401
from harmonic_nas.data.core import (
    build_dataset,
    cache_dir,
    check_modalities,
    dataset_fingerprint,
    load_dataset,
    validate_dataset,
)
from harmonic_nas.data.normalization import NORM_MODES, default_mode, normalize_by_train
from harmonic_nas.data.registry import (
    BuildContext,
    DatasetEntry,
    get_dataset_entry,
    list_datasets,
    register_dataset,
)
from harmonic_nas.data.types import SPLITS, ModalitySpec, MultimodalDataset, Split

__all__ = [
    "NORM_MODES",
    "SPLITS",
    "BuildContext",
    "DatasetEntry",
    "ModalitySpec",
    "MultimodalDataset",
    "Split",
    "build_dataset",
    "cache_dir",
    "check_modalities",
    "dataset_fingerprint",
    "default_mode",
    "get_dataset_entry",
    "list_datasets",
    "load_dataset",
    "normalize_by_train",
    "register_dataset",
    "validate_dataset",
]
