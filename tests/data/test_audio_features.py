from __future__ import annotations

import math

import pytest
import torch

from harmonic_nas.data.audio_features import (
    AudioFeatures,
    dct_matrix,
    hz_to_mel,
    log_mel,
    mel_filterbank,
    mel_to_hz,
    mfcc,
)


def test_mel_scale_round_trip_and_known_value() -> None:
    f = torch.tensor([0.0, 440.0, 1000.0, 8000.0], dtype=torch.float64)
    assert torch.allclose(mel_to_hz(hz_to_mel(f)), f, atol=1e-6)
    assert float(hz_to_mel(1000.0)) == pytest.approx(999.99, abs=0.05)


def test_mel_filterbank_shape_nonnegative_no_empty_filters_and_ordered_peaks() -> None:
    fb = mel_filterbank(40, 1024, 22050)
    assert fb.shape == (40, 513)
    assert bool((fb >= 0).all())
    assert bool((fb.sum(1) > 0).all())
    peaks = fb.argmax(1)
    assert bool((peaks[1:] >= peaks[:-1]).all())


def test_dct_is_orthonormal() -> None:
    d = dct_matrix(40, 40)
    assert torch.allclose(d @ d.T, torch.eye(40), atol=1e-5)
    assert dct_matrix(20, 40).shape == (20, 40)


@pytest.mark.parametrize("length", [4000, 22050, 30000])
def test_mfcc_has_fixed_shape_for_any_length(length: int) -> None:
    wave = torch.randn(3, length) * 0.1
    out = mfcc(wave, 22050)
    assert out.shape == (3, 1, 20, 20)
    assert out.dtype == torch.float32 and bool(torch.isfinite(out).all())


def test_log_mel_peaks_in_the_band_of_a_pure_tone() -> None:
    sr = 16000
    t = torch.arange(sr) / sr
    low = torch.sin(2 * math.pi * 300 * t)
    high = torch.sin(2 * math.pi * 3000 * t)
    feats = log_mel(torch.stack([low, high]), sr, n_mels=40, n_frames=10)
    assert feats.shape == (2, 1, 40, 10)
    band_low = int(feats[0, 0].mean(1).argmax())
    band_high = int(feats[1, 0].mean(1).argmax())
    fb = mel_filterbank(40, AudioFeatures(sr).n_fft or 1024, sr)
    assert band_low < band_high
    # the peak band's centre is near the tone
    centres = mel_to_hz(torch.linspace(float(hz_to_mel(0.0)), float(hz_to_mel(sr / 2)), 42))[1:-1]
    assert abs(float(centres[band_low]) - 300) < 150
    assert abs(float(centres[band_high]) - 3000) < 400
    assert fb.shape[0] == 40


def test_mfcc_zeroth_coefficient_tracks_loudness() -> None:
    sr = 8000
    w = torch.randn(1, sr) * 0.01
    quiet, loud = mfcc(w, sr), mfcc(w * 10, sr)
    assert float(loud[0, 0, 0].mean()) > float(quiet[0, 0, 0].mean())


def test_feature_extractor_shapes() -> None:
    assert AudioFeatures(22050).shape == (1, 20, 20)
    assert AudioFeatures(22050, "logmel", n_mels=32, n_frames=16).shape == (1, 32, 16)
    with pytest.raises(ValueError, match="n_coeffs"):
        AudioFeatures(8000, "mfcc", n_coeffs=50, n_mels=40)(torch.zeros(1, 800))
