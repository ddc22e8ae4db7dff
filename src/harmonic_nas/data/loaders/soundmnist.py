"""``soundmnist``: the SMIL SoundMNIST layout used by the Harmonic-NAS paper.

Layout under the user path::

    mnist/{train,test}/<digit>/*.png                         MNIST digits (28 x 28 grey)
    sound_450/{train,test}/<digit>/<digit>_<speaker>_<i>.wav  spoken digits (FSDD, PCM wav)

Within a class, images and recordings are paired by index (both sorted by name, naturally). The
first ``train_per_class`` pairs of the train folders are taken (105 by default, the paper's
1,050), of which the last ``val_per_class`` of each class form the validation split; test takes
``test_per_class`` pairs (45). Audio becomes 20 MFCC x 20 frames over a fixed clip.
"""

from __future__ import annotations

import contextlib
import logging
import math
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from harmonic_nas.data.audio_features import AudioFeatures
from harmonic_nas.data.loaders._common import expect_path, finish, natural_key
from harmonic_nas.data.options import option
from harmonic_nas.data.registry import BuildContext, register_dataset
from harmonic_nas.data.types import ModalitySpec, MultimodalDataset, Split
from harmonic_nas.errors import DataError
from harmonic_nas.utils.limits import (
    MAX_CLIP_SAMPLES,
    MAX_IMAGE_PIXELS,
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
)
from harmonic_nas.utils.progress import ProgressFn

logger = logging.getLogger(__name__)

NAME = "soundmnist"


@dataclass(frozen=True)
class SoundMNISTOptions:
    """Options of ``soundmnist``."""

    train_per_class: int = option(105, "pairs per class read from the train folders", ge=2)
    val_per_class: int = option(15, "pairs per class carved out of those for validation", ge=1)
    test_per_class: int = option(45, "pairs per class read from the test folders", ge=1)
    features: Literal["mfcc", "logmel"] = option(
        "mfcc", "audio features", choices=("mfcc", "logmel")
    )
    n_mfcc: int = option(20, "MFCC coefficients", ge=2, le=128)
    n_mels: int = option(40, "mel bands", ge=4, le=256)
    n_frames: int = option(20, "feature frames per clip", ge=2, le=512)
    clip_seconds: float = option(
        1.0, "recordings are zero-padded / cut to this length", ge=0.1, le=10
    )


def read_wav(path: Path, max_frames: int | None = None) -> tuple[np.ndarray, int]:
    """Mono float samples in [-1, 1] and the sample rate of a PCM wav file (stdlib ``wave``):
    the first ``max_frames`` frames (default all). A rate outside :func:`check_sample_rate`'s
    range, or more frames than
    :data:`~harmonic_nas.utils.limits.MAX_CLIP_SAMPLES` to read, is a one-line DataError."""
    try:
        with wave.open(str(path), "rb") as w:
            rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
            check_sample_rate(rate, f"{path} (its header)", "replace the file")
            n = w.getnframes() if max_frames is None else min(w.getnframes(), max_frames)
            if n > MAX_CLIP_SAMPLES:
                raise DataError(
                    f"{path} holds {n} frames, more than the {MAX_CLIP_SAMPLES} read from one "
                    "file; cut the recording"
                )
            raw = w.readframes(n)
    except (wave.Error, EOFError, OSError) as exc:
        raise DataError(
            f"cannot read {path} as PCM wav ({exc}); replace or delete the file"
        ) from None
    if width == 1:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    elif width == 2:
        x = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = np.where(v >= 1 << 23, v - (1 << 24), v).astype(np.float64) / float(1 << 23)
    elif width == 4:
        x = np.frombuffer(raw, dtype="<i4").astype(np.float64) / float(1 << 31)
    else:  # pragma: no cover - wave rejects other widths
        raise DataError(f"{path} has an unsupported sample width of {width} bytes; use 16-bit PCM")
    if channels > 1:
        x = x[: x.size - x.size % channels].reshape(-1, channels).mean(axis=1)
    return x, rate


def check_sample_rate(rate: object, what: str, fix: str) -> int:
    """A sample rate in :data:`~harmonic_nas.utils.limits.MIN_SAMPLE_RATE` ..
    :data:`~harmonic_nas.utils.limits.MAX_SAMPLE_RATE` Hz (an integer), else a one-line
    DataError naming ``what``."""
    if (
        isinstance(rate, bool)
        or not isinstance(rate, int)
        or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE
    ):
        raise DataError(
            f"{what} gives the sample rate {rate!r:.40}; a rate must be an integer in "
            f"{MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz: {fix}"
        )
    return rate


def clip_samples(clip_seconds: float, rate: int, what: str) -> int:
    """Samples of a clip of ``clip_seconds`` at ``rate`` (1 ..
    :data:`~harmonic_nas.utils.limits.MAX_CLIP_SAMPLES`), else a one-line DataError."""
    clip = round(clip_seconds * rate) if math.isfinite(clip_seconds) else 0
    if not 0 < clip <= MAX_CLIP_SAMPLES:
        raise DataError(
            f"{what}: a clip of {clip_seconds!r} s at {rate} Hz is {clip} samples; a clip must "
            f"hold 1..{MAX_CLIP_SAMPLES} samples, set a shorter (positive) clip_seconds"
        )
    return clip


def resample(x: np.ndarray, rate: int, target: int, max_samples: int | None = None) -> np.ndarray:
    """``x`` sampled at ``rate`` Hz, linearly interpolated to ``target`` Hz (at most the first
    ``max_samples`` samples of the result are computed)."""
    n = max(1, round(x.size * target / rate))
    if max_samples is not None:
        n = min(n, max_samples)
    t_new = np.arange(n, dtype=np.float64) * (rate / target)
    return np.asarray(np.interp(t_new, np.arange(x.size, dtype=np.float64), x))


def read_clip(path: Path, clip_seconds: float, rate: int | None = None) -> tuple[np.ndarray, int]:
    """The first ``clip_seconds`` of a wav file as float32 samples at ``rate`` (default: the
    file's own; linear interpolation otherwise), zero-padded at the end, and that rate. Only the
    frames the clip needs are read, so that a header's rate or length sizes nothing else."""
    file_rate = wav_rate(path)
    target = file_rate if rate is None else rate
    clip = clip_samples(clip_seconds, target, str(path))
    need = min(math.ceil(clip_seconds * file_rate) + 2, MAX_CLIP_SAMPLES)
    x, file_rate = read_wav(path, max_frames=need)
    if target != file_rate:
        logger.info("resampling %s from %d Hz to %d Hz", path, file_rate, target)
        x = resample(x, file_rate, target, max_samples=clip)
    buf = np.zeros(clip, dtype=np.float32)
    buf[: min(clip, x.size)] = x[:clip]
    return buf, target


def wav_rate(path: Path) -> int:
    """The checked sample rate of a wav file's header (no samples are read)."""
    try:
        with wave.open(str(path), "rb") as w:
            rate = w.getframerate()
    except (wave.Error, EOFError, OSError) as exc:
        raise DataError(
            f"cannot read {path} as PCM wav ({exc}); replace or delete the file"
        ) from None
    return check_sample_rate(rate, f"{path} (its header)", "replace the file")


@contextlib.contextmanager
def open_image(path: Path) -> Iterator[Any]:
    """A Pillow image opened lazily, its size checked against
    :data:`~harmonic_nas.utils.limits.MAX_IMAGE_PIXELS` before any pixel is decoded (Pillow's
    own decompression-bomb guard and warning become the same one-line DataError)."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise DataError(
                        f"image {path} is {width}x{height} pixels, more than the limit of "
                        f"{MAX_IMAGE_PIXELS} pixels; resize it"
                    )
                yield im
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(
            f"image {path} is too large to decode ({exc.__class__.__name__}); resize it"
        ) from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(
            f"cannot read image {path} ({exc.__class__.__name__}); replace it with a .png or .jpg"
        ) from None


def read_png(path: Path) -> np.ndarray:
    """A grey image as uint8 ``(H, W)`` (Pillow)."""
    with open_image(path) as im:
        return np.asarray(im.convert("L"), dtype=np.uint8)


def _class_files(root: Path, split: str, digit: int, pattern: str, what: str) -> list[Path]:
    d = expect_path(root / split / str(digit), NAME, f"the folder of {what} for digit {digit}")
    files = sorted(d.glob(pattern), key=lambda p: natural_key(p.name))
    return files


def _load_split(
    root: Path,
    split: str,
    per_class: int,
    feats: AudioFeatures,
    clip_seconds: float,
    progress: ProgressFn,
    task: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
    images: list[np.ndarray] = []
    audio: list[torch.Tensor] = []
    labels: list[int] = []
    names: list[str] = []
    for digit in range(10):
        pngs = _class_files(
            root / "mnist", split, digit, "*.png", "mnist/<split>/<digit>/*.png images"
        )
        wavs = _class_files(
            root / "sound_450", split, digit, "*.wav", "sound_450/<split>/<digit>/*.wav recordings"
        )
        n = min(len(pngs), len(wavs), per_class)
        if n == 0:
            raise DataError(
                f"dataset '{NAME}': class {digit} is missing from split '{split}' (no pairs in "
                f"mnist/{split}/{digit} and sound_450/{split}/{digit}); add its files"
            )
        if n < per_class:
            logger.warning(
                "soundmnist %s digit %d: only %d pairs (wanted %d)", split, digit, n, per_class
            )
        for png, wav in zip(pngs[:n], wavs[:n], strict=True):
            img = read_png(png)
            if img.shape != (28, 28):
                raise DataError(
                    f"image {png} is {img.shape[1]}x{img.shape[0]} pixels; SoundMNIST images must be 28x28"
                )
            buf, rate = read_clip(wav, clip_seconds)
            f = AudioFeatures(rate, feats.kind, feats.n_coeffs, feats.n_mels, feats.n_frames)
            audio.append(f(torch.from_numpy(buf))[0])
            images.append(img)
            labels.append(digit)
            names.append(wav.name)
        progress(task, digit + 1, 10)
    x_img = torch.from_numpy(np.stack(images)).float()[:, None]
    return x_img, torch.stack(audio), torch.tensor(labels, dtype=torch.int64), names


@register_dataset(
    NAME,
    options=SoundMNISTOptions,
    needs_path=True,
    summary="SMIL SoundMNIST: mnist/{train,test}/<digit>/*.png + sound_450/{train,test}/<digit>/*.wav",
)
def build_soundmnist(ctx: BuildContext, progress: ProgressFn) -> MultimodalDataset:
    """SMIL SoundMNIST (MNIST PNGs + FSDD recordings) from a user path."""
    opts: SoundMNISTOptions = ctx.options
    assert ctx.path is not None
    root = ctx.path
    if opts.val_per_class >= opts.train_per_class:
        raise DataError(
            f"soundmnist option val_per_class ({opts.val_per_class}) must be smaller than "
            f"train_per_class ({opts.train_per_class}); validation is carved out of train"
        )
    expect_path(root / "mnist", NAME, "the folder mnist/{train,test}/<digit>/*.png")
    expect_path(root / "sound_450", NAME, "the folder sound_450/{train,test}/<digit>/*.wav")
    feats = AudioFeatures(22050, opts.features, opts.n_mfcc, opts.n_mels, opts.n_frames)
    tr_img, tr_aud, tr_y, _ = _load_split(
        root, "train", opts.train_per_class, feats, opts.clip_seconds, progress, "reading train"
    )
    te_img, te_aud, te_y, _ = _load_split(
        root, "test", opts.test_per_class, feats, opts.clip_seconds, progress, "reading test"
    )
    # carve the last val_per_class pairs of every class out of train
    is_val = torch.zeros(len(tr_y), dtype=torch.bool)
    for c in range(10):
        idx = (tr_y == c).nonzero(as_tuple=True)[0]
        n_val = min(opts.val_per_class, len(idx) - 1)
        if n_val < 1:
            raise DataError(
                f"dataset '{NAME}': class {c} has only {len(idx)} train pair(s), too few to carve a "
                "validation split; add files or lower val_per_class"
            )
        is_val[idx[len(idx) - n_val :]] = True
    full = Split({"image": tr_img, "audio": tr_aud}, tr_y)
    splits = {
        "train": full.subset(~is_val),
        "val": full.subset(is_val),
        "test": Split({"image": te_img, "audio": te_aud}, te_y),
    }
    modalities = [
        ModalitySpec("image", "image", (1, 28, 28)),
        ModalitySpec("audio", "audio", feats.shape),
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
