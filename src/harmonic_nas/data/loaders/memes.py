"""``memes``: the Harmonic-NAS Memes dataset (Harm-P / Memes-Politics of MOMENTA, Pramanick et al.,
Findings of EMNLP 2021): a meme image plus its caption, 3 classes of harmfulness.

Layout under the user path::

    annotations/train.jsonl   one JSON object per line: {"image": "<file>", "text": "<caption>",
    annotations/val.jsonl       "labels": ["not harmful" | "somewhat harmful" | "very harmful", ...]}
    annotations/test.jsonl      ("label" with one of those names or 0/1/2 works too; the first
    images/<file>               entry of "labels" is the harmfulness, later entries are ignored)

Images are read with Pillow, converted to RGB and resized to ``image_size`` (112: the paper's
3 x 112 x 112, the ``mbv3-3stage`` preset), pixel values 0-255 standardised with train statistics.
Captions are tokenised by the package's byte tokenizer fitted on the train captions
(:mod:`harmonic_nas.data.tokenizer`), the ``text-1d`` preset's input.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harmonic_nas.data.loaders._common import expect_path, finish
from harmonic_nas.data.options import option
from harmonic_nas.data.registry import BuildContext, register_dataset
from harmonic_nas.data.tokenizer import ByteTokenizer, as_texts
from harmonic_nas.data.types import ModalitySpec, MultimodalDataset, Split
from harmonic_nas.errors import DataError
from harmonic_nas.utils.progress import ProgressFn

logger = logging.getLogger(__name__)

NAME = "memes"
CLASSES = ("not harmful", "somewhat harmful", "very harmful")
#: an annotation file larger than this is not a Memes split (Harm-P's are well under 2 MB)
MAX_ANNOTATION_BYTES = 64 << 20
MAX_LINE_CHARS = 1 << 16


@dataclass(frozen=True)
class MemesOptions:
    """Options of ``memes``."""

    image_size: int = option(112, "side of the square RGB images (the paper: 112)", ge=8, le=512)
    max_caption_bytes: int = option(
        128, "captions are cut to this many UTF-8 bytes (the tokenizer's cap)", ge=8, le=4096
    )


def _label(entry: dict[str, Any], where: str) -> int:
    value: Any = entry.get("labels", entry.get("label"))
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(CLASSES):
        return value
    if isinstance(value, str) and value.strip().lower() in CLASSES:
        return CLASSES.index(value.strip().lower())
    raise DataError(
        f"{where}: label {value!r} is not one of {', '.join(CLASSES)} (or 0/1/2); fix the "
        "annotation"
    )


def read_annotations(path: Path) -> list[tuple[str, str, int]]:
    """``(image file, caption, class)`` per line of a ``.jsonl`` split (one-line errors)."""
    size = path.stat().st_size
    if size > MAX_ANNOTATION_BYTES:
        raise DataError(
            f"{path} is {size} bytes, more than a Memes annotation file ({MAX_ANNOTATION_BYTES}); "
            "point dataset.path at the Memes folder"
        )
    out = []
    with path.open(encoding="utf-8", errors="strict") as f:
        try:
            lines = f.read().splitlines()
        except UnicodeDecodeError:
            raise DataError(f"{path} is not UTF-8 text; save the annotations as UTF-8") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path.name} line {n}"
        if len(line) > MAX_LINE_CHARS:
            raise DataError(f"{where} is longer than {MAX_LINE_CHARS} characters; one meme a line")
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where} is not JSON ({exc.msg}); write one object a line") from None
        if not isinstance(entry, dict):
            raise DataError(f"{where} is not a JSON object; write one object a line")
        image, text = entry.get("image"), entry.get("text")
        if not isinstance(image, str) or not image or Path(image).name != image:
            raise DataError(f"{where}: 'image' must be a file name inside images/, got {image!r}")
        if not isinstance(text, str):
            raise DataError(f"{where}: 'text' must be the caption string, got {text!r:.40}")
        out.append((image, text, _label(entry, where)))
    if not out:
        raise DataError(f"{path} holds no memes; add one JSON object per line")
    return out


def _read_image(path: Path, size: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            rgb = im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1)
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(
            f"cannot read image {path} ({exc.__class__.__name__}); replace or delete it"
        ) from None


@register_dataset(
    NAME,
    options=MemesOptions,
    needs_path=True,
    summary="Memes (Harm-P): images/ + annotations/{train,val,test}.jsonl, image + caption, 3 classes",
)
def build_memes(ctx: BuildContext, progress: ProgressFn) -> MultimodalDataset:
    """Memes image + caption dataset (see the module docstring)."""
    opts: MemesOptions = ctx.options
    assert ctx.path is not None
    root = ctx.path
    images_dir = expect_path(root / "images", NAME, "images/ (the meme images)")
    rows = {
        split: read_annotations(
            expect_path(root / "annotations" / f"{split}.jsonl", NAME, f"annotations/{split}.jsonl")
        )
        for split in ("train", "val", "test")
    }
    total = sum(len(r) for r in rows.values())
    done = 0
    train_texts = as_texts(
        np.array([t for _, t, _ in rows["train"]]), f"dataset '{NAME}': train captions"
    )
    tok = ByteTokenizer.fit(train_texts, max_len_cap=opts.max_caption_bytes)
    splits: dict[str, Split] = {}
    for split, entries in rows.items():
        texts = as_texts(
            np.array([t for _, t, _ in entries]), f"dataset '{NAME}': {split} captions"
        )
        imgs = []
        for image, _, _ in entries:
            path = images_dir / image
            if not path.is_file():
                raise DataError(
                    f"dataset '{NAME}': annotations/{split}.jsonl names {image}, which is not in "
                    "images/; add the file or remove its line"
                )
            imgs.append(_read_image(path, opts.image_size))
            done += 1
            progress("reading memes", done, total)
        splits[split] = Split(
            {
                "image": torch.from_numpy(np.stack(imgs)),
                "text": torch.from_numpy(tok.encode(texts)),
            },
            torch.tensor([c for _, _, c in entries], dtype=torch.int64),
        )
    modalities = [
        ModalitySpec("image", "image", (3, opts.image_size, opts.image_size)),
        ModalitySpec("text", "text", (tok.max_len,)),
    ]
    meta: dict[str, object] = {"source": str(root), "tokenizers": {"text": tok.to_json()}}
    return finish(
        NAME,
        modalities,
        "classification",
        len(CLASSES),
        list(CLASSES),
        splits,
        meta,
        modes={"text": "none"},
    )
