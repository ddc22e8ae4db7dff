"""``mmimdb``: MM-IMDB (Arevalo et al. 2017) from its ``multimodal_imdb.hdf5`` file.

The file (given as the path, or inside the path directory) holds ``images`` (N x 3 x 256 x 160
uint8, or channels last), ``features`` (N x 300 averaged word2vec text features) and ``genres``
(N x 23 multi-hot). The standard split is the first 15,552 / next 2,608 / last 7,799 samples. The
task is multilabel (23 genres; the paper reports weighted F1). Images are resized to
``image_size`` x ``image_size`` (full-size float images of the whole set would need 16 GB).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from harmonic_nas.data.loaders._common import (
    check_lengths,
    expect_path,
    finish,
    to_float,
    to_labels,
)
from harmonic_nas.data.options import option
from harmonic_nas.data.registry import BuildContext, register_dataset
from harmonic_nas.data.types import ModalitySpec, MultimodalDataset, Split
from harmonic_nas.errors import DataError
from harmonic_nas.utils.io import SIZE_FIX, check_array_size
from harmonic_nas.utils.limits import MAX_IMAGE_PIXELS
from harmonic_nas.utils.progress import ProgressFn

logger = logging.getLogger(__name__)

NAME = "mmimdb"
FILE_NAME = "multimodal_imdb.hdf5"
GENRES: tuple[str, ...] = (
    "Drama", "Comedy", "Romance", "Thriller", "Crime", "Action", "Adventure", "Horror",
    "Documentary", "Mystery", "Sci-Fi", "Fantasy", "Family", "Biography", "War", "History",
    "Music", "Animation", "Musical", "Western", "Sport", "Short", "Film-Noir",
)  # fmt: skip


@dataclass(frozen=True)
class MMIMDBOptions:
    """Options of ``mmimdb``."""

    image_size: int = option(64, "images are resized to image_size x image_size", ge=8, le=512)
    train_size: int = option(15552, "samples of the train split (first ones in the file)", ge=1)
    val_size: int = option(2608, "samples of the validation split (next ones)", ge=1)
    test_size: int = option(7799, "samples of the test split (next ones)", ge=1)
    limit: int | None = option(None, "keep at most this many samples per split (quick runs)", ge=1)


def _dataset(h5: Any, key: str, path: Path) -> Any:
    if key not in h5:
        raise DataError(
            f"wrong layout for dataset '{NAME}': {path} has no '{key}' dataset (it has "
            f"{', '.join(sorted(h5.keys()))}); use the original {FILE_NAME}"
        )
    return h5[key]


def _images(ds: Any, lo: int, hi: int, size: int, split: str) -> torch.Tensor:
    shape = ds.shape
    if len(shape) != 4:
        raise DataError(
            f"dataset '{NAME}': 'images' has shape {list(shape)}; expected N x 3 x H x W (or N x H x W x 3)"
        )
    channels_last = shape[1] not in (1, 3) and shape[-1] in (1, 3)
    height, width = (shape[1], shape[2]) if channels_last else (shape[2], shape[3])
    if height * width > MAX_IMAGE_PIXELS:  # before a chunk of such images is read
        raise DataError(
            f"dataset '{NAME}': 'images' are {width}x{height} pixels, more than the limit of "
            f"{MAX_IMAGE_PIXELS} pixels per image; use the original {FILE_NAME}"
        )
    out = []
    for start in range(lo, hi, 256):
        arr = np.asarray(ds[start : min(hi, start + 256)])
        if channels_last:
            arr = arr.transpose(0, 3, 1, 2)
        t = to_float(arr, NAME, "image", split)
        if t.shape[1] == 1:
            t = t.expand(-1, 3, -1, -1)
        if t.shape[-2:] != (size, size):
            t = F.interpolate(
                t, size=(size, size), mode="bilinear", antialias=True, align_corners=False
            )
        out.append(t.contiguous())
    return torch.cat(out) if out else torch.zeros(0, 3, size, size)


@register_dataset(
    NAME,
    options=MMIMDBOptions,
    needs_path=True,
    summary="MM-IMDB multimodal_imdb.hdf5: poster images + 300-d text features, 23 genres (multilabel)",
)
def build_mmimdb(ctx: BuildContext, progress: ProgressFn) -> MultimodalDataset:
    """MM-IMDB from multimodal_imdb.hdf5 (posters + text features, multilabel genres)."""
    try:
        import h5py
    except ImportError:
        raise DataError(
            "dataset 'mmimdb' needs h5py, which is not installed; install the extra: "
            "pip install 'harmonic-nas[mmimdb]'"
        ) from None

    opts: MMIMDBOptions = ctx.options
    assert ctx.path is not None
    path = ctx.path / FILE_NAME if ctx.path.is_dir() else ctx.path
    expect_path(path, NAME, f"the file {FILE_NAME}")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(
            f"cannot open {path} as HDF5 ({exc}); use the original {FILE_NAME}"
        ) from None
    with h5:
        images = _dataset(h5, "images", path)
        feats = _dataset(h5, "features", path)
        genres = _dataset(h5, "genres", path)
        check_lengths(
            NAME, "file", {"images": images.shape[0], "features": feats.shape[0]}, genres.shape[0]
        )
        if len(feats.shape) != 2:
            raise DataError(
                f"dataset '{NAME}': 'features' has shape {list(feats.shape)}; expected N x 300"
            )
        if len(genres.shape) != 2:
            raise DataError(
                f"dataset '{NAME}': 'genres' has shape {list(genres.shape)}; expected N x 23 multi-hot"
            )
        n = genres.shape[0]
        need = opts.train_size + opts.val_size + opts.test_size
        if need > n:
            raise DataError(
                f"{path} holds {n} samples but the split needs {need} "
                f"({opts.train_size}/{opts.val_size}/{opts.test_size}); "
                "set the options train_size, val_size and test_size"
            )
        for name, arr in (("features", feats), ("genres", genres)):  # the rows read, from
            check_array_size((need, *arr.shape[1:]), arr.dtype, f"{path} '{name}'", SIZE_FIX)
        bounds = {
            "train": (0, opts.train_size),
            "val": (opts.train_size, opts.train_size + opts.val_size),
            "test": (opts.train_size + opts.val_size, need),
        }
        splits: dict[str, Split] = {}
        for k, (split, (lo, hi)) in enumerate(bounds.items()):
            if opts.limit is not None:
                hi = min(hi, lo + opts.limit)
            x_img = _images(images, lo, hi, opts.image_size, split)
            x_txt = to_float(np.asarray(feats[lo:hi]), NAME, "text", split)
            y = to_labels(np.asarray(genres[lo:hi]), NAME, split, "multilabel")
            splits[split] = Split({"image": x_img, "text": x_txt}, y)
            progress("reading mmimdb", k + 1, 3)
        n_genres = int(genres.shape[1])
        text_dim = int(feats.shape[1])
    names = list(GENRES) if n_genres == len(GENRES) else [f"genre{i}" for i in range(n_genres)]
    modalities = [
        ModalitySpec("image", "image", (3, opts.image_size, opts.image_size)),
        ModalitySpec("text", "text", (text_dim,)),
    ]
    return finish(NAME, modalities, "multilabel", n_genres, names, splits, {"source": str(path)})
