"""``npz``: a generic N-modality dataset, one ``.npz`` file per split.

Layout under the user path: ``train.npz``, ``val.npz``, ``test.npz``. Each holds one array per
modality (``(N, *shape)``; ``(N, H, W)`` gets a channel axis) plus ``labels``: ``(N,)`` integer
classes (classification) or ``(N, K)`` 0/1 (multilabel). At least two modalities, the same in
every split. Optional ``class_names`` (K strings) in ``train.npz``.

Modality kinds are guessed from the names and ranks (``audio``/``sound``/``speech``/``spec`` ->
audio, ``text``/``word``/``token`` -> text, other rank-1 samples -> vector, the rest -> image);
override a kind with the option ``kinds="name:kind,name:kind"``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harmonic_nas.data.loaders._common import (
    check_class_count,
    check_lengths,
    expect_path,
    finish,
    to_float,
    to_labels,
)
from harmonic_nas.data.options import option
from harmonic_nas.data.registry import BuildContext, register_dataset
from harmonic_nas.data.types import (
    ModalityKind,
    ModalitySpec,
    MultimodalDataset,
    Split,
)
from harmonic_nas.errors import DataError
from harmonic_nas.utils.io import read_npz
from harmonic_nas.utils.names import modality_name_problem
from harmonic_nas.utils.progress import ProgressFn

logger = logging.getLogger(__name__)

NAME = "npz"
RESERVED = ("labels", "class_names")
KINDS = ("image", "audio", "text", "vector")


@dataclass(frozen=True)
class NPZOptions:
    """Options of ``npz``."""

    num_classes: int | None = option(
        None, "number of classes (classification; default: largest label + 1)", ge=2
    )
    kinds: str = option("", "override guessed modality kinds, e.g. 'a:audio,b:vector'")


def guess_kind(name: str, sample_rank: int) -> ModalityKind:
    """The modality kind guessed from its name and sample rank."""
    low = name.lower()
    if any(w in low for w in ("audio", "sound", "speech", "spec", "mfcc", "wav")):
        return "audio"
    if any(w in low for w in ("text", "word", "token", "caption")):
        return "text"
    return "vector" if sample_rank == 1 else "image"


def _parse_kinds(text: str) -> dict[str, ModalityKind]:
    out: dict[str, ModalityKind] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, kind = part.partition(":")
        if not sep or kind.strip() not in KINDS:
            raise DataError(
                f"npz option kinds has the entry '{part}'; write name:kind with kind in {', '.join(KINDS)}"
            )
        out[name.strip()] = kind.strip()  # type: ignore[assignment]
    return out


def _read(path: Path) -> dict[str, np.ndarray]:
    return read_npz(path, fix="save the split with numpy.savez(path, <modality>=..., labels=...)")


@register_dataset(
    NAME,
    options=NPZOptions,
    needs_path=True,
    summary="generic: {train,val,test}.npz with one array per modality + labels (>= 2 modalities)",
)
def build_npz(ctx: BuildContext, progress: ProgressFn) -> MultimodalDataset:
    """Generic N-modality dataset from train.npz / val.npz / test.npz."""
    opts: NPZOptions = ctx.options
    assert ctx.path is not None
    root = ctx.path
    if not root.is_dir():
        raise DataError(
            f"npz dataset path {root} must be a directory holding train.npz, val.npz and test.npz"
        )
    data: dict[str, dict[str, np.ndarray]] = {}
    for k, split in enumerate(("train", "val", "test")):
        path = expect_path(root / f"{split}.npz", NAME, f"{split}.npz")
        arrays = _read(path)
        if "labels" not in arrays:
            raise DataError(
                f"wrong layout for dataset '{NAME}': {path} has no 'labels' array; save one with "
                "np.savez(..., labels=y)"
            )
        data[split] = arrays
        progress("reading npz", k + 1, 3)

    names = [k for k in data["train"] if k not in RESERVED]
    for m in names:  # a modality name becomes a file and an input name: checked here
        problem = modality_name_problem(m)
        if problem is not None:
            raise DataError(f"dataset '{NAME}': {problem}; rename the array in every split file")
    if len(names) < 2:
        raise DataError(
            f"dataset '{NAME}': train.npz has {len(names)} modality array(s) {names}; "
            "a multimodal dataset needs at least two besides 'labels'"
        )
    for split in ("val", "test"):
        other = [k for k in data[split] if k not in RESERVED]
        if set(other) != set(names):
            missing = sorted(set(names) - set(other)) or sorted(set(other) - set(names))
            raise DataError(
                f"dataset '{NAME}': {split}.npz has modalities {sorted(other)} but train.npz has "
                f"{sorted(names)} (differs in '{missing[0]}'); give every split the same arrays"
            )

    label_rank = data["train"]["labels"].ndim
    task: Any = (
        "multilabel"
        if label_rank == 2 and data["train"]["labels"].shape[1] > 1
        else "classification"
    )
    overrides = _parse_kinds(opts.kinds)
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise DataError(
            f"npz option kinds names '{unknown[0]}', which is not a modality of {sorted(names)}"
        )

    splits: dict[str, Split] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    for split, arrays in data.items():
        labels = arrays["labels"]
        check_lengths(
            NAME,
            split,
            {m: int(arrays[m].shape[0]) if arrays[m].ndim else 0 for m in names},
            int(labels.shape[0]) if labels.ndim else 0,
        )
        inputs = {}
        for m in names:
            arr = arrays[m]
            if arr.ndim < 2:
                raise DataError(
                    f"dataset '{NAME}': modality '{m}' of split '{split}' has shape {list(arr.shape)}; "
                    "store (N, features) or (N, C, H, W) arrays"
                )
            if arr.ndim == 3:
                arr = arr[:, None]
            shape = tuple(int(s) for s in arr.shape[1:])
            if m in shapes and shapes[m] != shape:
                raise DataError(
                    f"dataset '{NAME}': modality '{m}' has sample shape {list(shape)} in {split}.npz "
                    f"but {list(shapes[m])} in train.npz; use one shape per modality"
                )
            shapes[m] = shape
            inputs[m] = to_float(arr, NAME, m, split)
        splits[split] = Split(inputs, to_labels(labels, NAME, split, task))

    if task == "multilabel":
        num_classes = int(data["train"]["labels"].shape[1])
    elif opts.num_classes is not None:
        num_classes = opts.num_classes
        check_class_count(NAME, num_classes, splits, "the option num_classes")
    else:
        top = max((int(s.labels.max()) for s in splits.values() if len(s)), default=0)
        check_class_count(NAME, top + 1, splits, f"labels up to {top}")
        num_classes = max(top + 1, 2)
    if "class_names" in data["train"]:
        declared = data["train"]["class_names"]
        if declared.ndim != 1:
            raise DataError(
                f"dataset '{NAME}': class_names of train.npz has shape {list(declared.shape)}; "
                "save one name per class, e.g. class_names=np.array(['cat', 'dog'])"
            )
        if len(declared) != num_classes:
            raise DataError(
                f"dataset '{NAME}': train.npz has {len(declared)} class_names for {num_classes} "
                "classes; give one name per class"
            )
    class_names = [str(i) for i in range(num_classes)]
    if "class_names" in data["train"]:
        given = [str(x) for x in data["train"]["class_names"].tolist()]
        if len(given) != num_classes:
            raise DataError(
                f"dataset '{NAME}': train.npz has {len(given)} class_names for {num_classes} classes; "
                "give one name per class"
            )
        class_names = given
    modalities = [
        ModalitySpec(m, overrides.get(m) or guess_kind(m, len(shapes[m])), shapes[m]) for m in names
    ]
    return finish(NAME, modalities, task, num_classes, class_names, splits, {"source": str(root)})
