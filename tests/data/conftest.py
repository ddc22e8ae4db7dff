"""Fixtures of the data tests: tiny av-digits options and tiny files of every real-data layout."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

TINY_AV = {
    "train_per_class": 4,
    "val_per_class": 2,
    "test_per_class": 2,
    "train_speakers": 4,
    "val_speakers": 2,
    "test_speakers": 2,
}


@pytest.fixture
def tiny_av() -> dict[str, int]:
    return dict(TINY_AV)


def write_wav(path: Path, samples: np.ndarray, rate: int = 8000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.tobytes())


def write_png(path: Path, img: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img.astype(np.uint8), mode="L").save(path)


def make_soundmnist(root: Path, train: int = 5, test: int = 3, seed: int = 0) -> Path:
    """SMIL layout with ``train``/``test`` pairs per digit; digit d is a (300 + 100 d) Hz tone."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", train), ("test", test)):
        for d in range(10):
            for i in range(n):
                img = np.zeros((28, 28))
                img[2 + d : 10 + d, 4 + i % 5 : 20] = 200 + rng.integers(0, 55)
                write_png(root / "mnist" / split / str(d) / f"{i}.png", img)
                t = np.arange(int(0.5 * 8000)) / 8000
                tone = 0.5 * np.sin(2 * np.pi * (300 + 100 * d) * t) + 0.01 * rng.standard_normal(
                    t.size
                )
                write_wav(root / "sound_450" / split / str(d) / f"{d}_spk{i % 2}_{i}.wav", tone)
    return root


def make_avmnist(root: Path, n_train: int = 60, n_test: int = 20, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    (root / "image").mkdir(parents=True, exist_ok=True)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        y = np.arange(n) % 10
        np.save(
            root / "image" / f"{split}_data.npy", rng.integers(0, 256, (n, 784)).astype(np.uint8)
        )
        np.save(
            root / "audio" / f"{split}_data.npy",
            rng.integers(0, 256, (n, 112, 112)).astype(np.uint8),
        )
        np.save(root / f"{split}_labels.npy", y.astype(np.int64))
    return root


def make_mmimdb(path: Path, n: int = 30, seed: int = 0) -> Path:
    import h5py

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    genres = (rng.random((n, 23)) < 0.3).astype(np.int64)
    genres[:, 0] = 1  # every sample has at least one genre
    with h5py.File(path, "w") as h5:
        h5["images"] = rng.integers(0, 256, (n, 3, 32, 20)).astype(np.uint8)
        h5["features"] = rng.standard_normal((n, 300)).astype(np.float32)
        h5["genres"] = genres
    return path


def make_npz(
    root: Path,
    sizes: tuple[int, int, int] = (30, 10, 10),
    *,
    classes: int = 3,
    multilabel: bool = False,
    seed: int = 0,
    **overrides: dict[str, np.ndarray],
) -> Path:
    """train/val/test.npz with an image (N, 1, 8, 8), a sound (N, 4, 6) and a vector (N, 5)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in zip(("train", "val", "test"), sizes, strict=True):
        arrays: dict[str, np.ndarray] = {
            "pixels": rng.standard_normal((n, 1, 8, 8)).astype(np.float32),
            "sound": rng.standard_normal((n, 4, 6)).astype(np.float32),
            "vec": rng.standard_normal((n, 5)),
        }
        if multilabel:
            arrays["labels"] = (rng.random((n, classes)) < 0.5).astype(np.float32)
        else:
            arrays["labels"] = np.arange(n) % classes
        arrays.update(overrides.get(split, {}))
        np.savez(root / f"{split}.npz", **arrays)
    return root


@pytest.fixture
def soundmnist_dir(tmp_path: Path) -> Path:
    return make_soundmnist(tmp_path / "smil")


@pytest.fixture
def avmnist_dir(tmp_path: Path) -> Path:
    return make_avmnist(tmp_path / "avmnist")


@pytest.fixture
def mmimdb_file(tmp_path: Path) -> Path:
    return make_mmimdb(tmp_path / "mmimdb" / "multimodal_imdb.hdf5")


@pytest.fixture
def npz_dir(tmp_path: Path) -> Path:
    return make_npz(tmp_path / "npz")
