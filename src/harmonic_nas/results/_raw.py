"""From raw files (``.png``, ``.wav``) to an exported model's inputs, as ``preprocess.json`` says.

``export`` writes, per model input, a ``raw`` recipe (see :func:`raw_recipes`) for the built-in
kinds of data: how a file becomes the array the model takes. The model itself standardises its
inputs inside the graph, so the recipe stops at raw scale (pixel values 0-255, MFCC features in
dB-cepstra). :func:`load_raw_file` applies a recipe with the package's own readers and feature
code (:mod:`harmonic_nas.data.loaders.soundmnist` readers, :class:`~harmonic_nas.data.
audio_features.AudioFeatures`); no torchaudio or torchvision.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harmonic_nas.errors import DataError
from harmonic_nas.utils.limits import (
    MAX_CLIP_SAMPLES,
    MAX_FRAMES,
    MAX_MEL_BANDS,
    MAX_N_FFT,
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
)

if TYPE_CHECKING:
    from harmonic_nas.config import ExperimentConfig
    from harmonic_nas.data import MultimodalDataset

logger = logging.getLogger(__name__)

# av-digits reads MNIST as uint8 and divides by the largest uint8 value before its pipeline
# (av_digits.py: ``.div(255.0)``): the exported model takes the 8-bit pixel values themselves.
UINT8_MAX = float(np.iinfo(np.uint8).max)

IMAGE_RECIPE = "image"
AUDIO_RECIPE = "audio"


def _image_recipe(shape: tuple[int, ...], pipeline_scale: float) -> dict[str, Any]:
    channels, height, width = shape
    return {
        "type": IMAGE_RECIPE,
        "file": "any image Pillow reads (.png, .jpg, ...)",
        "mode": "L" if channels == 1 else "RGB",
        "size": [int(width), int(height)],
        "resize": "bilinear when the file has another size",
        "layout": "CHW",
        "values": "pixel values 0-255 as float32",
        "value_scale": pipeline_scale,
    }


def _audio_recipe(
    features: Any,
    sample_rate: int | None,
    clip_seconds: float,
) -> dict[str, Any]:
    """The recipe of an ``AudioFeatures`` extractor over a fixed-length clip."""
    from harmonic_nas.data.audio_features import default_n_fft

    fields = dataclasses.asdict(features)
    fields.pop("sample_rate")
    out: dict[str, Any] = {
        "type": AUDIO_RECIPE,
        "file": "PCM .wav (8/16/24/32-bit; channels are averaged)",
        "sample_scale": "integer samples / 2^(bits-1) -> [-1, 1]",
        "sample_rate": sample_rate,
        "resample": (
            "linear interpolation to sample_rate when the file has another rate"
            if sample_rate is not None
            else "none: features are computed at the file's own rate"
        ),
        "clip_seconds": float(clip_seconds),
        "clip": "the first clip_seconds of the file, zero-padded at the end",
        "features": fields,
        "window": "hann",
        "stft": "centred, reflect padding, power |X|^2",
        "mel": "HTK mel scale, triangular filters of unit area",
        "log": "10 log10(max(mel, 1e-10)) dB, floored at (clip peak - top_db)",
        "dct": "orthonormal DCT-II over the mel bands (features.kind == 'mfcc')",
        "hop": "clip samples // n_frames",
        "layout": "(1, bands, n_frames)",
        "value_scale": 1.0,
    }
    if sample_rate is not None:
        clip = round(clip_seconds * sample_rate)
        out["clip_samples"] = clip
        out["n_fft"] = features.n_fft or default_n_fft(sample_rate)
        out["hop_samples"] = max(1, clip // features.n_frames)
    return out


def raw_recipes(cfg: ExperimentConfig, ds: MultimodalDataset) -> dict[str, dict[str, Any]]:
    """Per modality: the ``raw`` recipe of a built-in kind of data, or a generic description.

    Every recipe has ``value_scale``: the model computes ``(input * value_scale - mean) / std``,
    with the train statistics of ``preprocess.json``'s ``normalization``.
    """
    name = ds.name
    out: dict[str, dict[str, Any]] = {}
    for spec in ds.modalities:
        out[spec.name] = {
            "type": "array",
            "values": "the arrays of the dataset's own files (e.g. test.npz), unnormalised",
            "value_scale": 1.0,
        }
    if name in ("av-digits", "soundmnist"):
        from harmonic_nas.data import get_dataset_entry
        from harmonic_nas.data.audio_features import AudioFeatures
        from harmonic_nas.data.options import parse_options

        entry = get_dataset_entry(name)
        assert entry.options is not None
        opts = parse_options(entry.options, dict(cfg.dataset.options), name)
        image, audio = ds.modality("image"), ds.modality("audio")
        scale = 1.0 / UINT8_MAX if name == "av-digits" else 1.0
        out["image"] = _image_recipe(tuple(image.shape), scale)
        rate_meta = ds.meta.get("sample_rate") if name == "av-digits" else None
        rate = int(rate_meta) if isinstance(rate_meta, int | float) else None
        feats = AudioFeatures(
            sample_rate=rate or 0,
            kind=opts.features,
            n_coeffs=opts.n_mfcc,
            n_mels=opts.n_mels,
            n_frames=opts.n_frames,
        )
        if tuple(feats.shape) == tuple(audio.shape):
            out["audio"] = _audio_recipe(feats, rate, float(opts.clip_seconds))
    return out


# --------------------------------------------------------------------------- checking


def _int_in(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def recipe_problem(recipe: dict[str, Any], shape: tuple[int, ...]) -> str | None:
    """Why a ``raw`` recipe of ``preprocess.json`` cannot be applied to make an input of
    ``shape``, or None. Every size it gives (image size, sample rate, clip length, STFT window,
    bands, frames) is checked against :mod:`harmonic_nas.utils.limits` before any is used."""
    from harmonic_nas.data.audio_features import AudioFeatures

    kind = recipe.get("type")
    if kind == IMAGE_RECIPE:
        if len(shape) != 3:
            return f"an image recipe makes (C, H, W) inputs, not {list(shape)}"
        mode, size = recipe.get("mode", "L"), recipe.get("size", [shape[-1], shape[-2]])
        channels = {"L": 1, "RGB": 3}.get(str(mode))
        if channels is None:
            return f"raw.mode is {mode!r:.40}; it must be 'L' or 'RGB'"
        if shape[0] != channels:
            return f"raw.mode {mode!r} does not fit the input shape {list(shape)}"
        if size != [shape[-1], shape[-2]]:
            return f"raw.size is {size!r:.60}, not the input's [width, height] {[shape[-1], shape[-2]]}"
        return None
    if kind != AUDIO_RECIPE:
        return None
    rate = recipe.get("sample_rate")
    if rate is not None and not _int_in(rate, MIN_SAMPLE_RATE, MAX_SAMPLE_RATE):
        return (
            f"raw.sample_rate is {rate!r:.40}; it must be an integer in "
            f"{MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz"
        )
    clip: Any = recipe.get("clip_seconds")
    if not _finite(clip) or not clip > 0:
        return f"raw.clip_seconds is {clip!r:.40}; it must be a positive number"
    if rate is not None and round(clip * rate) > MAX_CLIP_SAMPLES:
        return (
            f"raw.clip_seconds {clip!r:.40} at {rate} Hz is {round(clip * rate)} samples, more "
            f"than the limit of {MAX_CLIP_SAMPLES}"
        )
    fields = recipe.get("features")
    if not isinstance(fields, dict):
        return "raw.features is not an object"
    known = {f.name for f in dataclasses.fields(AudioFeatures)} - {"sample_rate"}
    unknown = sorted(set(fields) - known)
    if unknown:
        return f"raw.features has the unknown key {unknown[0]!r:.40}"
    if fields.get("kind", "mfcc") not in ("mfcc", "logmel"):
        return f"raw.features.kind is {fields.get('kind')!r:.40}; it must be 'mfcc' or 'logmel'"
    bounds = {"n_mels": MAX_MEL_BANDS, "n_coeffs": MAX_MEL_BANDS, "n_frames": MAX_FRAMES}
    for key, high in bounds.items():
        if key in fields and not _int_in(fields[key], 1, high):
            return f"raw.features.{key} is {fields[key]!r:.40}; it must be an integer in 1..{high}"
    n_fft = fields.get("n_fft")
    if n_fft is not None and not _int_in(n_fft, 2, MAX_N_FFT):
        return f"raw.features.n_fft is {n_fft!r:.40}; it must be an integer in 2..{MAX_N_FFT}"
    for key in ("f_min", "f_max", "top_db"):
        if fields.get(key) is not None and not _finite(fields[key]):
            return f"raw.features.{key} is {fields[key]!r:.40}; it must be a finite number"
    feats = AudioFeatures(sample_rate=1, **fields)
    if tuple(feats.shape) != tuple(shape):
        return f"raw.features make inputs of shape {list(feats.shape)}, not {list(shape)}"
    return None


# --------------------------------------------------------------------------- reading


def image_input(path: Path, recipe: dict[str, Any], shape: tuple[int, ...]) -> np.ndarray:
    """A ``(C, H, W)`` float32 array of pixel values 0-255 read from an image file (its size
    checked against :data:`~harmonic_nas.utils.limits.MAX_IMAGE_PIXELS` before decoding)."""
    from PIL import Image

    from harmonic_nas.data.loaders.soundmnist import open_image

    mode = str(recipe.get("mode", "L"))
    width, height = int(shape[-1]), int(shape[-2])
    with open_image(path) as opened:
        im = opened.convert(mode)
        if im.size != (width, height):
            im = im.resize((width, height), Image.Resampling.BILINEAR)
        arr = np.asarray(im, dtype=np.float32)
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return np.ascontiguousarray(arr, dtype=np.float32)


def audio_input(path: Path, recipe: dict[str, Any]) -> np.ndarray:
    """``(1, bands, n_frames)`` float32 features of a ``.wav`` file, as the dataset computed them
    (only the clip's frames are read; the window fits :data:`~harmonic_nas.utils.limits.MAX_N_FFT`)."""
    import torch

    from harmonic_nas.data.audio_features import AudioFeatures, default_n_fft
    from harmonic_nas.data.loaders.soundmnist import read_clip

    target = recipe.get("sample_rate")
    buf, rate = read_clip(
        path, float(recipe["clip_seconds"]), None if target is None else int(target)
    )
    fields = dict(recipe["features"])
    n_fft = fields.get("n_fft") or default_n_fft(rate)
    if n_fft > MAX_N_FFT:
        raise DataError(
            f"{path}: its rate of {rate} Hz needs an STFT window of {n_fft} samples, more than "
            f"the limit of {MAX_N_FFT}; resample the file to a lower rate"
        )
    feats = AudioFeatures(sample_rate=rate, **fields)
    out = feats(torch.from_numpy(buf))[0].numpy()
    return np.ascontiguousarray(out, dtype=np.float32)


def _read_npy(path: Path, modality: str, shape: tuple[int, ...]) -> np.ndarray:
    """One sample of ``shape`` from a ``.npy`` file, its header checked before any data is read."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(
            f"{path} is not a readable .npy ({exc.__class__.__name__}); save it with numpy.save"
        ) from None
    if not isinstance(arr, np.ndarray):
        raise DataError(f"{path} is an .npz archive, not a .npy array; save it with numpy.save")
    if tuple(arr.shape) != tuple(shape):
        raise _shape_error(path, modality, tuple(arr.shape), shape)  # nothing was read
    return np.array(arr)


def _shape_error(
    path: Path, modality: str, got: tuple[int, ...], shape: tuple[int, ...]
) -> DataError:
    return DataError(
        f"{path} gives modality '{modality}' shape {got}, but the model takes "
        f"{tuple(shape)}; check the file against preprocess.json"
    )


def load_raw_file(
    path: Path | str, modality: str, recipe: dict[str, Any] | None, shape: tuple[int, ...]
) -> np.ndarray:
    """One sample ``shape`` for ``modality`` from a raw file (image or wav), per its recipe."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"input file not found: {p}; check the path given for '{modality}'")
    kind = (recipe or {}).get("type")
    if kind == IMAGE_RECIPE:
        arr = image_input(p, recipe or {}, shape)
    elif kind == AUDIO_RECIPE:
        arr = audio_input(p, recipe or {})
    elif p.suffix == ".npy":
        arr = _read_npy(p, modality, shape)
    else:
        raise DataError(
            f"modality '{modality}' takes no {p.suffix or 'extensionless'} file: its "
            "preprocess.json has no image/audio recipe; pass a .npy of one sample or "
            "--input FILE.npz"
        )
    if tuple(arr.shape) != tuple(shape):
        raise _shape_error(p, modality, tuple(arr.shape), shape)
    return arr
