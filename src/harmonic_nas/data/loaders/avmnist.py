"""``avmnist``: the AV-MNIST layout of CentralNet / MultiBench.

Layout under the user path::

    image/train_data.npy   (N, 784)        uint8 0-255 (28 x 28 PCA-degraded MNIST)
    image/test_data.npy    (M, 784)
    audio/train_data.npy   (N, 112, 112)   uint8 0-255 spectrograms
    audio/test_data.npy    (M, 112, 112)
    train_labels.npy       (N,)            0-9
    test_labels.npy        (M,)

The last ``val_size`` (5,000) samples of train are the validation split. ``audio_size`` can shrink
the spectrograms (average pooling) to save memory; ``limit`` caps every split (quick runs).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from harmonic_nas.data.loaders._common import (
    check_lengths,
    check_rank,
    expect_path,
    finish,
    to_float,
    to_labels,
)
from harmonic_nas.data.options import option
from harmonic_nas.data.registry import BuildContext, register_dataset
from harmonic_nas.data.types import ModalitySpec, MultimodalDataset, Split
from harmonic_nas.errors import DataError
from harmonic_nas.utils.io import SIZE_FIX, check_array_size, check_npz_dtype
from harmonic_nas.utils.progress import ProgressFn

logger = logging.getLogger(__name__)

NAME = "avmnist"


@dataclass(frozen=True)
class AVMNISTOptions:
    """Options of ``avmnist``."""

    val_size: int = option(5000, "the last val_size train samples form the validation split", ge=1)
    audio_size: int = option(
        112, "spectrogram side after average pooling (divides 112)", ge=1, le=112
    )
    limit: int | None = option(None, "keep at most this many samples per split (quick runs)", ge=1)


def _load(path: Path, what: str) -> np.ndarray:
    expect_path(path, NAME, what)
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(
            f"cannot read {path} as a .npy array ({' '.join(str(exc).split())}); regenerate the file"
        ) from None
    if not isinstance(arr, np.ndarray):  # an .npz archive where a .npy array is expected
        raise DataError(f"{path} is an .npz archive, not a .npy array; save it with numpy.save")
    check_npz_dtype(arr, str(path), "save it with numpy.save as float32 or integers")
    check_array_size(arr.shape, arr.dtype, str(path), SIZE_FIX)  # before any of it is read
    return arr


def _audio_tensor(arr: np.ndarray, size: int, split: str) -> torch.Tensor:
    chunks = []
    for start in range(0, arr.shape[0], 2048):
        t = to_float(np.asarray(arr[start : start + 2048]), NAME, "audio", split)[:, None]
        if size != t.shape[-1]:
            t = F.adaptive_avg_pool2d(t, size)
        chunks.append(t)
    return torch.cat(chunks) if chunks else torch.zeros(0, 1, size, size)


@register_dataset(
    NAME,
    options=AVMNISTOptions,
    needs_path=True,
    summary="AV-MNIST (CentralNet/MultiBench .npy layout): image/, audio/, {train,test}_labels.npy",
)
def build_avmnist(ctx: BuildContext, progress: ProgressFn) -> MultimodalDataset:
    """AV-MNIST (CentralNet / MultiBench .npy files) from a user path."""
    opts: AVMNISTOptions = ctx.options
    assert ctx.path is not None
    root = ctx.path
    if 112 % opts.audio_size:
        raise DataError(
            f"avmnist option audio_size must divide 112 (e.g. 112, 56, 28), got {opts.audio_size}"
        )
    raw: dict[str, dict[str, np.ndarray]] = {}
    for k, split in enumerate(("train", "test")):
        img = _load(root / "image" / f"{split}_data.npy", f"image/{split}_data.npy (N x 784)")
        aud = _load(root / "audio" / f"{split}_data.npy", f"audio/{split}_data.npy (N x 112 x 112)")
        lab = _load(root / f"{split}_labels.npy", f"{split}_labels.npy (N,)")
        if img.ndim == 3 and img.shape[1:] == (28, 28):
            img = img.reshape(img.shape[0], 784)
        check_rank(NAME, f"image/{split}_data.npy", img, 2, "N x 784")
        if img.shape[1] != 784:
            raise DataError(
                f"dataset '{NAME}': image/{split}_data.npy has {img.shape[1]} features per sample; "
                "AV-MNIST images are 784 (28 x 28) pixels"
            )
        check_rank(NAME, f"audio/{split}_data.npy", aud, 3, "N x 112 x 112")
        if aud.shape[1:] != (112, 112):
            raise DataError(
                f"dataset '{NAME}': audio/{split}_data.npy samples are {list(aud.shape[1:])}; "
                "AV-MNIST spectrograms are 112 x 112"
            )
        check_lengths(NAME, split, {"image": img.shape[0], "audio": aud.shape[0]}, lab.shape[0])
        raw[split] = {"image": img, "audio": aud, "labels": np.asarray(lab)}
        progress("reading avmnist", k + 1, 2)

    n_train = raw["train"]["labels"].shape[0]
    if opts.val_size >= n_train:
        raise DataError(
            f"avmnist option val_size ({opts.val_size}) must be smaller than the {n_train} train "
            "samples; lower val_size"
        )
    cut = n_train - opts.val_size
    ranges = {"train": ("train", 0, cut), "val": ("train", cut, n_train)}
    ranges["test"] = ("test", 0, raw["test"]["labels"].shape[0])
    splits: dict[str, Split] = {}
    for split, (src, lo, hi) in ranges.items():
        if opts.limit is not None:
            hi = min(hi, lo + opts.limit)
        r = raw[src]
        x_img = to_float(np.asarray(r["image"][lo:hi]), NAME, "image", split).reshape(-1, 1, 28, 28)
        x_aud = _audio_tensor(r["audio"][lo:hi], opts.audio_size, split)
        y = to_labels(np.asarray(r["labels"][lo:hi]), NAME, split, "classification")
        splits[split] = Split({"image": x_img, "audio": x_aud}, y)
    modalities = [
        ModalitySpec("image", "image", (1, 28, 28)),
        ModalitySpec("audio", "audio", (1, opts.audio_size, opts.audio_size)),
    ]
    return finish(
        NAME,
        modalities,
        "classification",
        10,
        [str(d) for d in range(10)],
        splits,
        {"source": str(root)},
    )
