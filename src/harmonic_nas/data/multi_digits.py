"""``multi-digits``: the built-in av-digits pairs seen as every modality kind (offline).

Built from an ``av-digits`` build (same seed, its options passed through ``profile`` and the
per-class counts), one sample per pair:

* ``image`` (image, 1 x 28 x 28): the degraded MNIST digit, as in av-digits;
* ``signal`` (signal, 20 x 20): the utterance's 20 MFCC coefficients (channels) over 20 frames
  (time) - a multichannel time series, read by the 1-D ``mbv3-1d`` preset. The window starts at
  the word (``signal_time_shift`` false: an event-aligned window, as a sensor pipeline's trigger
  cuts it) and the noise is at ``signal_snr_db_min``-``signal_snr_db_max`` dB; speakers, rate,
  pitch and gain still vary and val / test speakers are unseen. (With av-digits' random onset and
  4-10 dB noise, builder version 1, the 1-D supernet's max subnet reached 0.23 val accuracy after
  5 epochs on 40 pairs per class and a linear probe on the flattened signal 0.51; with these
  defaults 0.45 and 0.89, seed 0; the images and labels are the same either way);
* ``text`` (raw text): the digit's word spelled noisily ("the number sevon"), each letter replaced
  by a random one with probability ``text_typo``, and the word of a random other digit with
  probability ``text_wrong`` - tokenised by the package's byte tokenizer fitted on train;
* ``table`` (vector, 56 features): the image's ink profile (row and column means of the
  pixel values), features with different scales for the tabular ``mlp`` preset.

``modalities`` selects which of the four the dataset holds (e.g. ``signal,text,table`` for a
three-modality search). The raw captions of every split are kept in ``meta["raw_text"]`` (so a
raw-input round trip can feed strings).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from harmonic_nas.data.normalization import normalize_by_train, stats_tensors
from harmonic_nas.data.options import option
from harmonic_nas.data.registry import BuildContext, register_dataset
from harmonic_nas.data.tokenizer import ByteTokenizer
from harmonic_nas.data.types import ModalitySpec, MultimodalDataset, Split
from harmonic_nas.errors import DataError
from harmonic_nas.utils.progress import ProgressFn
from harmonic_nas.utils.seeding import numpy_rng

logger = logging.getLogger(__name__)

NAME = "multi-digits"
BUILDER_VERSION = 2  # 2: the signal's window starts at the word, 10-20 dB noise
KINDS = {"image": "image", "signal": "signal", "text": "text", "table": "vector"}
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class MultiDigitsOptions:
    """Options of ``multi-digits``."""

    modalities: str = option(
        "image,signal,text,table", "comma-separated subset of image, signal, text, table"
    )
    profile: str = option("default", "the av-digits profile the pairs come from")
    train_per_class: int = option(60, "pairs per class in train", ge=1, le=498)
    val_per_class: int = option(30, "pairs per class in val", ge=1, le=498)
    test_per_class: int = option(30, "pairs per class in test", ge=1, le=498)
    text_typo: float = option(0.3, "probability that a letter of the word is replaced", ge=0, le=1)
    text_wrong: float = option(0.25, "probability that the word is another digit's", ge=0, le=1)
    signal_time_shift: bool = option(
        False, "random onset of the word in the signal's window (false: the window starts at it)"
    )
    signal_snr_db_min: float = option(10.0, "lowest SNR of the signal's noise (dB)", ge=-30, le=60)
    signal_snr_db_max: float = option(20.0, "highest SNR of the signal's noise (dB)", ge=-30, le=60)


def noisy_word(label: int, rng: np.random.Generator, typo: float, wrong: float) -> str:
    """The caption of one sample: its digit's word (or another's), with letter typos."""
    digit = int(rng.integers(10)) if rng.random() < wrong else label
    letters = [LETTERS[int(rng.integers(26))] if rng.random() < typo else c for c in WORDS[digit]]
    return "the number " + "".join(letters)


def selected_modalities(text: str) -> list[str]:
    """The modality names of the option ``modalities`` (one-line DataError if invalid)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in KINDS]
    if bad or len(names) < 2 or len(set(names)) != len(names):
        raise DataError(
            f"multi-digits option modalities={text!r}: give two or more distinct names of "
            f"{', '.join(KINDS)}"
        )
    return names


@register_dataset(
    NAME,
    options=MultiDigitsOptions,
    cache=True,
    version=BUILDER_VERSION,
    summary="built-in: av-digits as image, (C, T) signal, raw text and table (offline)",
)
def build_multi_digits(ctx: BuildContext, progress: ProgressFn) -> MultimodalDataset:
    """The av-digits pairs as image, signal, raw text and table modalities (see the module)."""
    from harmonic_nas.data.core import build_dataset

    opts: MultiDigitsOptions = ctx.options
    names = selected_modalities(opts.modalities)
    if opts.signal_snr_db_min > opts.signal_snr_db_max:
        raise DataError(
            "multi-digits option signal_snr_db_min must not exceed signal_snr_db_max; swap them"
        )
    base = build_dataset(
        "av-digits",
        options={
            "profile": opts.profile,
            "train_per_class": opts.train_per_class,
            "val_per_class": opts.val_per_class,
            "test_per_class": opts.test_per_class,
            "train_speakers": min(opts.train_per_class, 105),
            "val_speakers": min(opts.val_per_class, 30),
            "test_speakers": min(opts.test_per_class, 45),
            "time_shift": opts.signal_time_shift,
            "snr_db_min": opts.signal_snr_db_min,
            "snr_db_max": opts.signal_snr_db_max,
        },
        seed=ctx.seed,
        progress=progress,
    )
    norm = base.meta["normalization"]
    assert isinstance(norm, dict)
    rng = numpy_rng(ctx.seed, "multi-digits", "captions")
    raw: dict[str, dict[str, Any]] = {}
    captions: dict[str, list[str]] = {}
    for split in ("train", "val", "test"):
        s = base.split(split)
        m_img, s_img = stats_tensors(norm["image"], 3)
        m_aud, s_aud = stats_tensors(norm["audio"], 3)
        image = (s.inputs["image"].double() * s_img + m_img).float()
        mfcc = (s.inputs["audio"].double() * s_aud + m_aud).float()[:, 0]
        table = torch.cat([image[:, 0].mean(dim=2), image[:, 0].mean(dim=1)], dim=1)
        captions[split] = [
            noisy_word(int(y), rng, opts.text_typo, opts.text_wrong) for y in s.labels.tolist()
        ]
        raw[split] = {"image": image, "signal": mfcc, "table": table, "labels": s.labels}
    tok = ByteTokenizer.fit(captions["train"])
    splits: dict[str, Split] = {}
    for split, r in raw.items():
        inputs = {n: r[n].contiguous() for n in names if n != "text"}
        if "text" in names:
            inputs["text"] = torch.from_numpy(tok.encode(captions[split]))
        splits[split] = Split({n: inputs[n] for n in names}, r["labels"].clone())
    shapes = {"image": (1, 28, 28), "signal": (20, 20), "text": (tok.max_len,), "table": (56,)}
    modalities = [ModalitySpec(n, KINDS[n], shapes[n]) for n in names]  # type: ignore[arg-type]
    modes = {"text": "none"} if "text" in names else {}
    stats = normalize_by_train(splits, modalities, NAME, modes)
    meta: dict[str, Any] = {"normalization": stats, "source": "av-digits", "profile": opts.profile}
    if "text" in names:
        meta["tokenizers"] = {"text": tok.to_json()}
        meta["raw_text"] = captions
    return MultimodalDataset(
        name=NAME,
        modalities=modalities,
        task="classification",
        num_classes=10,
        class_names=list(WORDS),
        splits=splits,
        meta=meta,
    )
