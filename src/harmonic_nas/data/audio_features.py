"""Audio features in plain torch: STFT power spectrum, mel filterbank, log-mel and MFCC (DCT-II).

Both features have a fixed number of frames: the hop is ``len(wave) // n_frames`` so that a clip
of any length maps to ``(1, n_coefficients, n_frames)``, e.g. ``(1, 20, 20)`` for the paper's
20 MFCC x 20 frames.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import torch

logger = logging.getLogger(__name__)

FeatureKind = Literal["mfcc", "logmel"]


def hz_to_mel(f: torch.Tensor | float) -> torch.Tensor:
    """HTK mel scale: ``2595 log10(1 + f / 700)``."""
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(f, dtype=torch.float64) / 700.0)


def mel_to_hz(m: torch.Tensor | float) -> torch.Tensor:
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (torch.as_tensor(m, dtype=torch.float64) / 2595.0) - 1.0)


def mel_filterbank(
    n_mels: int, n_fft: int, sample_rate: int, f_min: float = 0.0, f_max: float | None = None
) -> torch.Tensor:
    """Triangular mel filters ``(n_mels, n_fft // 2 + 1)`` with unit area (Slaney normalisation)."""
    f_max = sample_rate / 2.0 if f_max is None else f_max
    if not 0 <= f_min < f_max <= sample_rate / 2.0:
        raise ValueError(f"need 0 <= f_min < f_max <= sample_rate / 2, got {f_min}, {f_max}")
    n_freqs = n_fft // 2 + 1
    freqs = torch.linspace(0.0, sample_rate / 2.0, n_freqs, dtype=torch.float64)
    mels = torch.linspace(
        float(hz_to_mel(f_min)), float(hz_to_mel(f_max)), n_mels + 2, dtype=torch.float64
    )
    hz = mel_to_hz(mels)
    lower, center, upper = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    up = (freqs[None, :] - lower) / (center - lower)
    down = (upper - freqs[None, :]) / (upper - center)
    fb = torch.clamp(torch.minimum(up, down), min=0.0)
    fb = fb * (2.0 / (upper - lower))  # equal area per filter
    return fb.float()


def dct_matrix(n_out: int, n_in: int) -> torch.Tensor:
    """Orthonormal DCT-II matrix ``(n_out, n_in)``: ``dct = M @ x``."""
    n = torch.arange(n_in, dtype=torch.float64)
    k = torch.arange(n_out, dtype=torch.float64)[:, None]
    m = torch.cos(math.pi / n_in * (n + 0.5) * k) * math.sqrt(2.0 / n_in)
    m[0] /= math.sqrt(2.0)
    return m.float()


def default_n_fft(sample_rate: int) -> int:
    """A ~46 ms window: the next power of two of ``0.046 * sample_rate`` (1024 at 22.05 kHz)."""
    return 1 << max(6, math.ceil(math.log2(0.046 * sample_rate)))


def power_spectrogram(
    wave: torch.Tensor, n_fft: int, hop: int, n_frames: int | None = None
) -> torch.Tensor:
    """``|STFT|^2`` of ``(B, T)`` waves with a Hann window (centred, reflect padding): ``(B, F, frames)``."""
    if wave.dim() == 1:
        wave = wave[None]
    t = wave.shape[-1]
    pad_mode = "reflect" if t > n_fft // 2 else "constant"
    spec = torch.stft(
        wave.float(),
        n_fft=n_fft,
        hop_length=hop,
        window=torch.hann_window(n_fft, dtype=torch.float32),
        center=True,
        pad_mode=pad_mode,
        return_complex=True,
    )
    power = spec.real.square() + spec.imag.square()
    if n_frames is not None:
        if power.shape[-1] < n_frames:
            power = torch.nn.functional.pad(power, (0, n_frames - power.shape[-1]))
        power = power[..., :n_frames]
    return power


@dataclass(frozen=True)
class AudioFeatures:
    """Feature extractor: ``kind`` mfcc (``n_coeffs`` cepstra) or logmel (``n_mels`` bands).

    ``__call__((B, T) waves in [-1, 1]) -> (B, 1, n, n_frames)`` with ``n`` = ``n_coeffs`` for
    MFCC and ``n_mels`` for log-mel.
    """

    sample_rate: int
    kind: FeatureKind = "mfcc"
    n_coeffs: int = 20
    n_mels: int = 40
    n_frames: int = 20
    n_fft: int | None = None
    f_min: float = 0.0
    f_max: float | None = None
    top_db: float = 80.0

    @property
    def shape(self) -> tuple[int, int, int]:
        return (1, self.n_coeffs if self.kind == "mfcc" else self.n_mels, self.n_frames)

    def log_mel(self, wave: torch.Tensor) -> torch.Tensor:
        """Log-mel power in dB, ``(B, n_mels, n_frames)``, floor ``max - top_db`` per clip."""
        if wave.dim() == 1:
            wave = wave[None]
        n_fft = self.n_fft or default_n_fft(self.sample_rate)
        hop = max(1, wave.shape[-1] // self.n_frames)
        power = power_spectrogram(wave, n_fft, hop, self.n_frames)
        fb = mel_filterbank(self.n_mels, n_fft, self.sample_rate, self.f_min, self.f_max)
        mel = torch.einsum("mf,bft->bmt", fb, power)
        db = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))
        peak = db.amax(dim=(1, 2), keepdim=True)
        return torch.maximum(db, peak - self.top_db)

    def __call__(self, wave: torch.Tensor) -> torch.Tensor:
        db = self.log_mel(wave)
        if self.kind == "logmel":
            return db[:, None]
        if self.n_coeffs > self.n_mels:
            raise ValueError(f"n_coeffs ({self.n_coeffs}) must not exceed n_mels ({self.n_mels})")
        out = torch.einsum("cm,bmt->bct", dct_matrix(self.n_coeffs, self.n_mels), db)
        return out[:, None]


def mfcc(
    wave: torch.Tensor, sample_rate: int, n_mfcc: int = 20, n_frames: int = 20, n_mels: int = 40
) -> torch.Tensor:
    """MFCC of ``(B, T)`` (or ``(T,)``) waves: ``(B, 1, n_mfcc, n_frames)``."""
    return AudioFeatures(sample_rate, "mfcc", n_mfcc, n_mels, n_frames)(wave)


def log_mel(
    wave: torch.Tensor, sample_rate: int, n_mels: int = 40, n_frames: int = 20
) -> torch.Tensor:
    """Log-mel spectrogram in dB of ``(B, T)`` waves: ``(B, 1, n_mels, n_frames)``."""
    return AudioFeatures(sample_rate, "logmel", n_mels=n_mels, n_frames=n_frames)(wave)
