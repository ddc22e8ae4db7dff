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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harmonic_nas.errors import DataError

if TYPE_CHECKING:
    from harmonic_nas.config import ExperimentConfig
    from harmonic_nas.data import MultimodalDataset

logger = logging.getLogger(__name__)

# av-digits reads MNIST as uint8 and divides by the largest uint8 value before its pipeline
# (av_digits.py: ``.div(255.0)``): the exported model takes the 8-bit pixel values themselves.
UINT8_MAX = float(np.iinfo(np.uint8).max)

IMAGE_RECIPE = "image"
AUDIO_RECIPE = "audio"
TEXT_RECIPE = "text"


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
    tokenizers = ds.meta.get("tokenizers") if isinstance(ds.meta, dict) else None
    for mod, tok in (tokenizers if isinstance(tokenizers, dict) else {}).items():
        out[mod] = {
            "type": TEXT_RECIPE,
            "values": "a UTF-8 .txt file (one text), or a string array in an .npz",
            "tokenizer": tok,
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


# --------------------------------------------------------------------------- reading


def _resample(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    n = max(1, round(x.size * target / rate))
    t_new = np.arange(n, dtype=np.float64) * (rate / target)
    return np.asarray(np.interp(t_new, np.arange(x.size, dtype=np.float64), x))


def image_input(path: Path, recipe: dict[str, Any], shape: tuple[int, ...]) -> np.ndarray:
    """A ``(C, H, W)`` float32 array of pixel values 0-255 read from an image file."""
    from PIL import Image, UnidentifiedImageError

    mode = str(recipe.get("mode", "L"))
    width, height = (int(v) for v in recipe.get("size", [shape[-1], shape[-2]]))
    try:
        with Image.open(path) as opened:
            im = opened.convert(mode)
            if im.size != (width, height):
                im = im.resize((width, height), Image.Resampling.BILINEAR)
            arr = np.asarray(im, dtype=np.float32)
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(
            f"cannot read image {path} ({exc.__class__.__name__}); pass a .png or .jpg"
        ) from None
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return np.ascontiguousarray(arr, dtype=np.float32)


def audio_input(path: Path, recipe: dict[str, Any]) -> np.ndarray:
    """``(1, bands, n_frames)`` float32 features of a ``.wav`` file, as the dataset computed them."""
    import torch

    from harmonic_nas.data.audio_features import AudioFeatures
    from harmonic_nas.data.loaders.soundmnist import read_wav

    x, rate = read_wav(path)
    target = recipe.get("sample_rate")
    if target is not None and int(target) != rate:
        logger.info("resampling %s from %d Hz to %d Hz", path, rate, int(target))
        x, rate = _resample(x, rate, int(target)), int(target)
    clip = round(float(recipe["clip_seconds"]) * rate)
    buf = np.zeros(clip, dtype=np.float32)
    buf[: min(clip, x.size)] = x[:clip]
    fields = dict(recipe["features"])
    feats = AudioFeatures(sample_rate=rate, **fields)
    out = feats(torch.from_numpy(buf))[0].numpy()
    return np.ascontiguousarray(out, dtype=np.float32)


def tokenize(values: Any, recipe: dict[str, Any], where: str) -> np.ndarray:
    """``(N, max_len)`` float32 token ids of N texts, with the tokenizer of a text recipe."""
    from harmonic_nas.data.tokenizer import ByteTokenizer, as_texts

    tok = ByteTokenizer.from_json(recipe.get("tokenizer"))
    return tok.encode(as_texts(values, where))


def load_raw_file(
    path: Path | str, modality: str, recipe: dict[str, Any] | None, shape: tuple[int, ...]
) -> np.ndarray:
    """One sample ``shape`` for ``modality`` from a raw file (image or wav), per its recipe."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"input file not found: {p}; check the path given for '{modality}'")
    kind = (recipe or {}).get("type")
    if kind == TEXT_RECIPE:
        try:
            text = p.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(f"{p} is not UTF-8 text (non-text content); pass a .txt file") from None
        arr = tokenize(np.array([text]), recipe or {}, f"--file {modality}={p}")[0]
    elif kind == IMAGE_RECIPE:
        arr = image_input(p, recipe or {}, shape)
    elif kind == AUDIO_RECIPE:
        arr = audio_input(p, recipe or {})
    elif p.suffix == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise DataError(
                f"{p} is not a readable .npy ({exc.__class__.__name__}); save it with numpy.save"
            ) from None
    else:
        raise DataError(
            f"modality '{modality}' takes no {p.suffix or 'extensionless'} file: its "
            "preprocess.json has no image/audio recipe; pass a .npy of one sample or "
            "--input FILE.npz"
        )
    if tuple(arr.shape) != tuple(shape):
        raise DataError(
            f"{p} gives modality '{modality}' shape {tuple(arr.shape)}, but the model takes "
            f"{tuple(shape)}; check the file against preprocess.json"
        )
    return arr
