"""The byte tokenizer: deterministic, fitted on train only, one-line errors for non-text content."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harmonic_nas.data import build_dataset
from harmonic_nas.data.tokenizer import PAD, UNKNOWN, ByteTokenizer, as_texts
from harmonic_nas.errors import DataError

TRAIN = ["A red dog", "the cat sat", "Ünïcode ok"]


def test_encoding_is_deterministic_and_described_completely() -> None:
    a, b = ByteTokenizer.fit(TRAIN), ByteTokenizer.fit(list(TRAIN))
    assert a == b
    ids = a.encode(["a red cat", "dog"])
    assert np.array_equal(ids, b.encode(["a red cat", "dog"]))
    assert ids.dtype == np.float32 and ids.shape == (2, a.max_len)
    assert ids[1, 3:].tolist() == [PAD] * (a.max_len - 3)
    again = ByteTokenizer.from_json(a.to_json())
    assert again == a and np.array_equal(again.encode(["dog"]), a.encode(["dog"]))
    assert a.max_len == max(len(t.lower().encode()) for t in TRAIN)


def test_fitted_on_train_only() -> None:
    tok = ByteTokenizer.fit(TRAIN)
    ids = tok.encode(["xyz"])[0]  # x, y, z never occur in train
    assert ids[:3].tolist() == [UNKNOWN] * 3
    assert set(tok.vocab) == {b for t in TRAIN for b in t.lower().encode()}
    assert tok.encode(["A RED DOG"]).tolist() == tok.encode(["a red dog"]).tolist()


@pytest.mark.parametrize(
    ("values", "match"),
    [
        (np.array([1.0, 2.0]), r"needs strings, got float64"),
        (np.array(["fine", "  "]), r"sample 1 is an empty caption"),
        (np.array(["ok", "bad\x00byte"]), r"sample 1 holds control characters"),
        (np.array([b"ok", b"\xff\xfe"]), r"sample 1 is not UTF-8 text"),
        (np.array([["a", "b"]]), r"one string per sample"),
    ],
)
def test_non_text_is_one_line(values: np.ndarray, match: str) -> None:
    with pytest.raises(DataError, match=match) as info:
        as_texts(values, "captions")
    assert "\n" not in str(info.value)


def _npz(root: Path, val_caption: str = "a caption") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("val", 6), ("test", 6)):
        caps = [f"caption {i % 3}" for i in range(n)]
        if split == "val":
            caps[0] = val_caption
        np.savez(
            root / f"{split}.npz",
            caption=np.array(caps),
            table=rng.standard_normal((n, 4)).astype(np.float32),
            labels=np.arange(n) % 3,
        )
    return root


def test_npz_string_array_is_tokenised_with_train_statistics(tmp_path: Path) -> None:
    ds = build_dataset("npz", path=_npz(tmp_path / "d", "zzz never seen"), use_cache=False)
    spec = ds.modality("caption")
    tok = ByteTokenizer.from_json(ds.meta["tokenizers"]["caption"])
    assert spec.kind == "text" and spec.shape == (tok.max_len,) == (len("caption 0"),)
    assert ds.meta["normalization"]["caption"]["mode"] == "none"
    assert ds.split("val").inputs["caption"][0, 0].item() == UNKNOWN  # 'z' is not in train
    assert ds.split("train").inputs["caption"][0].tolist() == tok.encode(["caption 0"])[0].tolist()


def test_npz_empty_caption_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"text modality 'caption' of split 'val'.*empty caption"):
        build_dataset("npz", path=_npz(tmp_path / "d", ""), use_cache=False)


def test_text_preset_on_feature_values_is_one_line(tmp_path: Path) -> None:
    from harmonic_nas.config import parse_config
    from harmonic_nas.data import load_dataset

    root = _npz(tmp_path / "d")
    cfg = parse_config(
        {
            "name": "t",
            "dataset": {"name": "npz", "path": str(root)},
            "modalities": {
                "caption": {"preset": "text-1d", "shape": [9]},
                "table": {"preset": "text-1d", "shape": [4]},
            },
        }
    )
    with pytest.raises(DataError, match=r"modality 'table' .* holds feature values, not raw text"):
        load_dataset(cfg)
