from __future__ import annotations

import numpy as np
import pytest

from harmonic_nas.data.espeak import ACCENTS, EspeakSession, Voice, list_variants, synthesize
from harmonic_nas.errors import DataError


def test_synthesises_int16_speech_at_22050_hz() -> None:
    with EspeakSession() as tts:
        assert tts.sample_rate == 22050
        x = tts.synth("seven", Voice("en-us", "f2"))
    assert x.dtype == np.int16
    assert 0.2 * 22050 < x.size < 2 * 22050
    assert int(np.abs(x).max()) > 1000


def test_same_calls_in_a_new_session_are_bit_identical() -> None:
    voices = [
        Voice("en-us", "f2"),
        Voice("en", "m3", rate=150, pitch=30),
        Voice("en-029", "whisper"),
    ]

    def run() -> list[np.ndarray]:
        with EspeakSession(seed=3) as tts:
            return [tts.synth(w, v) for v in voices for w in ("one", "two")]

    a, b = run(), run()
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert np.array_equal(synthesize("four", voices[0]), synthesize("four", voices[0]))


def test_voices_rates_and_words_change_the_audio() -> None:
    with EspeakSession() as tts:
        base = tts.synth("three", Voice("en-us", "m1"))
        other_variant = tts.synth("three", Voice("en-us", "f3"))
        slow = tts.synth("three", Voice("en-us", "m1", rate=100))
        fast = tts.synth("three", Voice("en-us", "m1", rate=300))
    assert not np.array_equal(base[:1000], other_variant[:1000])
    assert slow.size > fast.size


def test_variants_and_accents_exist() -> None:
    variants = list_variants()
    assert len(variants) > 50 and "f2" in variants and "m3" in variants
    assert "en-us" in ACCENTS and len(ACCENTS) >= 6


def test_unknown_voice_is_a_data_error() -> None:
    with pytest.raises(DataError, match="no voice 'zz-nope"):
        synthesize("one", Voice("zz-nope", "f2"))


def test_closed_session_refuses_to_speak() -> None:
    tts = EspeakSession()
    tts.close()
    tts.close()  # idempotent
    with pytest.raises(RuntimeError):
        tts.synth("one", Voice("en", ""))
