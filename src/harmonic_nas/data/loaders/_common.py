"""Helpers shared by the real-data loaders: layout checks, length checks, assembling a dataset."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from harmonic_nas.data.core import check_finite, normalize_by_train
from harmonic_nas.data.types import ModalitySpec, MultimodalDataset, Split
from harmonic_nas.errors import DataError
from harmonic_nas.utils.io import check_float32_range
from harmonic_nas.utils.limits import MAX_LABEL

logger = logging.getLogger(__name__)


def expect_path(path: Path, dataset: str, what: str) -> Path:
    """``path`` must exist; otherwise a wrong-layout DataError naming the expected file."""
    if not path.exists():
        raise DataError(
            f"wrong layout for dataset '{dataset}': expected {what} at {path}; "
            f"see `harmonic-nas data info {dataset}` for the layout"
        )
    return path


def check_lengths(dataset: str, split: str, sizes: dict[str, int], n_labels: int) -> None:
    """Every modality of ``split`` must have as many samples as there are labels."""
    for mod, n in sizes.items():
        if n != n_labels:
            raise DataError(
                f"dataset '{dataset}': modality '{mod}' of split '{split}' has {n} samples but there "
                f"are {n_labels} labels; every modality needs one sample per label"
            )


def check_rank(dataset: str, name: str, arr: np.ndarray, rank: int, layout: str) -> None:
    """An array of the source files must have the documented rank."""
    if arr.ndim != rank:
        raise DataError(
            f"dataset '{dataset}': {name} has shape {list(arr.shape)} (rank {arr.ndim}) but must be "
            f"{layout}; fix the file"
        )


def to_float(arr: np.ndarray, dataset: str, modality: str, split: str) -> torch.Tensor:
    """A float32 tensor of ``arr`` (numeric dtypes only), checked for NaN/Inf."""
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise DataError(
            f"dataset '{dataset}': modality '{modality}' of split '{split}' has non-numeric dtype "
            f"{arr.dtype}; store numbers"
        )
    check_float32_range(arr, f"dataset '{dataset}': modality '{modality}' of split '{split}'")
    t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    check_finite(t, modality, split, dataset)
    return t


def to_labels(
    arr: np.ndarray, dataset: str, split: str, task: Literal["classification", "multilabel"]
) -> torch.Tensor:
    """int64 ``(N,)`` class indices or float32 ``(N, K)`` multi-hot labels."""
    if task == "classification":
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            raise DataError(
                f"dataset '{dataset}': labels of split '{split}' have shape {list(arr.shape)}; "
                "classification labels must be a vector of class indices"
            )
        if np.issubdtype(arr.dtype, np.floating):
            if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
                raise DataError(
                    f"dataset '{dataset}': labels of split '{split}' are not integers (or hold "
                    "NaN/Inf); store class indices 0..K-1"
                )
        elif not np.issubdtype(arr.dtype, np.integer):
            raise DataError(
                f"dataset '{dataset}': labels of split '{split}' have dtype {arr.dtype}; store "
                "integer class indices 0..K-1"
            )
        if arr.size and (arr.min() < 0 or arr.max() > MAX_LABEL):
            raise DataError(
                f"dataset '{dataset}': labels of split '{split}' range over "
                f"[{_num(arr.min())}, {_num(arr.max())}]; store class indices 0..K-1"
            )
        return torch.from_numpy(arr.astype(np.int64))
    if not np.all(np.isfinite(np.asarray(arr, dtype=np.float64))):
        raise DataError(
            f"dataset '{dataset}': labels of split '{split}' contain NaN/Inf values; store 0/1"
        )
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def _num(x: object) -> str:
    v = float(x)  # type: ignore[arg-type]
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:g}"


def check_class_count(
    dataset: str, num_classes: int, splits: dict[str, Split], source: str = "the labels"
) -> None:
    """Refuse a number of classes that no split could hold (every class needs a sample in each
    split), before anything of that size (class names, counts) is allocated."""
    smallest = min(splits, key=lambda k: len(splits[k]))
    n = len(splits[smallest])
    if n == 0:
        raise DataError(
            f"dataset '{dataset}': split '{smallest}' is empty; add samples to it or change the "
            "split sizes"
        )
    if num_classes > n:
        raise DataError(
            f"dataset '{dataset}': {source} imply {num_classes} classes but split '{smallest}' has "
            f"only {n} samples (every class needs samples in train, val and test); relabel the "
            "classes as 0..K-1"
        )


def natural_key(name: str) -> list[object]:
    """Sort key that orders ``2.png`` before ``10.png``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def finish(
    name: str,
    modalities: list[ModalitySpec],
    task: Literal["classification", "multilabel"],
    num_classes: int,
    class_names: list[str],
    splits: dict[str, Split],
    meta: dict[str, object] | None = None,
) -> MultimodalDataset:
    """Standardise with train statistics and assemble the dataset."""
    for split, s in splits.items():
        check_lengths(name, split, {k: int(v.shape[0]) for k, v in s.inputs.items()}, len(s))
        if len(s) == 0:
            raise DataError(
                f"dataset '{name}': split '{split}' is empty; add samples to it or change the split sizes"
            )
    stats = normalize_by_train(splits, modalities, name)
    meta = dict(meta or {})
    meta["normalization"] = stats
    return MultimodalDataset(
        name=name,
        modalities=modalities,
        task=task,
        num_classes=num_classes,
        class_names=class_names,
        splits=splits,
        meta=meta,
    )
