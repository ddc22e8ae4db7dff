"""The stored per-sample val decisions: round trips and bounded decoding."""

from __future__ import annotations

import numpy as np
import pytest

from harmonic_nas.errors import HarmonicError
from harmonic_nas.search.val_predictions import decode, encode


def test_classes_round_trip() -> None:
    pred = np.random.default_rng(0).integers(0, 10, 1500)
    rec = encode(pred, 10)
    assert rec["kind"] == "classes" and rec["n"] == 1500
    assert np.array_equal(decode(rec), pred)


def test_bits_round_trip_with_a_label_count_not_a_multiple_of_8() -> None:
    pred = (np.random.default_rng(1).random((300, 21)) > 0.6).astype(np.int8)
    rec = encode(pred, 21)
    assert rec["kind"] == "bits"
    out = decode(rec)
    assert out.shape == (300, 21) and np.array_equal(out, pred)


def test_an_empty_split_round_trips() -> None:
    assert decode(encode(np.zeros(0, dtype=np.int64), 3)).shape == (0,)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"v": 9}, "unknown version"),
        ({"n": 10**9}, "invalid size"),
        ({"n": 5}, "longer than its size|does not match"),
        ({"k": 0}, "invalid label count"),
        ({"kind": "floats"}, "unknown kind"),
        ({"data": "%%%"}, "not base64|longer"),
    ],
)
def test_a_damaged_record_is_refused(change: dict[str, object], match: str) -> None:
    rec = {**encode(np.arange(10) % 4, 4), **change}
    with pytest.raises(HarmonicError, match=match):
        decode(rec)


def test_a_class_index_out_of_range_is_refused_on_both_sides() -> None:
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        encode(np.array([0, 3]), 3)
    rec = encode(np.array([0, 3]), 4)
    rec["k"] = 3
    with pytest.raises(HarmonicError, match="out of range"):
        decode(rec)
