"""multi-digits: the av-digits pairs as image, (C, T) signal, raw text and table modalities."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harmonic_nas.data import build_dataset
from harmonic_nas.data.multi_digits import WORDS, noisy_word
from harmonic_nas.data.tokenizer import ByteTokenizer
from harmonic_nas.errors import DataError

from .conftest import TINY_AV

SMALL = {k: TINY_AV[k] for k in ("train_per_class", "val_per_class", "test_per_class")}


def test_every_kind_with_its_shape_and_normalisation() -> None:
    ds = build_dataset("multi-digits", options=SMALL, use_cache=False)
    kinds = {m.name: (m.kind, m.shape) for m in ds.modalities}
    tok = ByteTokenizer.from_json(ds.meta["tokenizers"]["text"])
    assert kinds == {
        "image": ("image", (1, 28, 28)),
        "signal": ("signal", (20, 20)),
        "text": ("text", (tok.max_len,)),
        "table": ("vector", (56,)),
    }
    modes = {m: s["mode"] for m, s in ds.meta["normalization"].items()}
    assert modes == {"image": "scalar", "signal": "channel", "text": "none", "table": "channel"}
    train = ds.split("train")
    caps = ds.meta["raw_text"]["train"]
    assert len(caps) == len(train) and all(c.startswith("the number ") for c in caps)
    assert torch.equal(train.inputs["text"], torch.from_numpy(tok.encode(caps)))
    again = build_dataset("multi-digits", options=SMALL, use_cache=False)
    assert again.meta["raw_text"] == ds.meta["raw_text"]
    assert torch.equal(again.split("val").inputs["signal"], ds.split("val").inputs["signal"])


def test_selected_modalities_and_clean_captions() -> None:
    opts = {**SMALL, "modalities": "signal,text", "text_typo": 0.0, "text_wrong": 0.0}
    ds = build_dataset("multi-digits", options=opts, use_cache=False)
    assert ds.modality_names == ["signal", "text"]
    labels = ds.split("test").labels.tolist()
    assert ds.meta["raw_text"]["test"] == [f"the number {WORDS[y]}" for y in labels]


def test_noisy_word_keeps_length_and_is_seeded() -> None:
    a = [noisy_word(7, np.random.default_rng(1), 0.5, 0.0) for _ in range(3)]
    assert a == [noisy_word(7, np.random.default_rng(1), 0.5, 0.0) for _ in range(3)]
    assert all(len(w) == len("the number seven") for w in a)


@pytest.mark.parametrize("value", ["signal", "signal,sound", "text,text"])
def test_bad_selection_is_one_line(value: str) -> None:
    with pytest.raises(DataError, match=r"give two or more distinct names of image, signal"):
        build_dataset("multi-digits", options={**SMALL, "modalities": value}, use_cache=False)
