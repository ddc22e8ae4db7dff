"""Sizes read from dataset files are bounded before anything of that size is allocated
(issue 25, class 4): an HDF5 or ``.npy`` header claiming huge shapes is refused in one line,
and so are SoundMNIST recordings and images whose headers claim absurd rates or sizes."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from harmonic_nas.data import build_dataset
from harmonic_nas.data.loaders.soundmnist import read_clip, read_png, resample
from harmonic_nas.errors import DataError
from harmonic_nas.utils.limits import MAX_CLIP_SAMPLES

from .conftest import make_avmnist


def _mmimdb(path: Path, images: tuple[int, ...], feats: tuple[int, ...]) -> Path:
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as h5:  # chunked: nothing of the claimed size is stored
        h5.create_dataset("images", shape=images, dtype="u1", chunks=(1, 1, 4, 4))
        h5.create_dataset("features", shape=feats, dtype="f4", chunks=(1, 4))
        h5["genres"] = np.ones((images[0], 23), np.int64)
    return path


MMIMDB = {"train_size": 10, "val_size": 5, "test_size": 5}


def test_mmimdb_images_claiming_huge_sizes_are_refused(tmp_path: Path) -> None:
    pytest.importorskip("h5py")
    path = _mmimdb(tmp_path / "multimodal_imdb.hdf5", (20, 3, 100_000, 100_000), (20, 300))
    with pytest.raises(DataError, match=r"'images' are 100000x100000 pixels, more than the limit"):
        build_dataset("mmimdb", path=path.parent, options=MMIMDB)


def test_mmimdb_features_claiming_huge_sizes_are_refused(tmp_path: Path) -> None:
    pytest.importorskip("h5py")
    path = _mmimdb(tmp_path / "multimodal_imdb.hdf5", (20, 3, 8, 8), (20, 10**10))
    with pytest.raises(
        DataError, match=r"'features' \(shape \[20, 10000000000\]\) would take 800 GB"
    ):
        build_dataset("mmimdb", path=path.parent, options=MMIMDB)


def test_avmnist_header_claiming_huge_shape_is_refused(tmp_path: Path) -> None:
    root = make_avmnist(tmp_path / "av")
    path = root / "audio" / "test_data.npy"
    head = np.lib.format.header_data_from_array_1_0(np.zeros((1, 112, 112), np.uint8))
    head["shape"] = (10**9, 112, 112)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, head)
        f.truncate(f.tell() + 10**9 * 112 * 112)  # sparse: no disk is used
    with pytest.raises(DataError, match=r"test_data\.npy \(shape \[1000000000, 112, 112\]\) would"):
        build_dataset("avmnist", path=root, options={"val_size": 20})


def _wav(path: Path, rate: int, x: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.round(x * 32767).astype("<i2").tobytes())
    return path


def test_read_clip_reads_and_resamples_only_the_clip(tmp_path: Path) -> None:
    rate = 8000
    x = np.sin(np.arange(rate * 30) / 7.0) * 0.5  # 30 s
    path = _wav(tmp_path / "long.wav", rate, x)
    clip, got = read_clip(path, 1.0, 22050)
    assert got == 22050 and clip.shape == (22050,) and clip.dtype == np.float32
    pcm = np.round(x * 32767) / 32768.0  # what the file holds
    np.testing.assert_allclose(clip, resample(pcm[: rate + 2], rate, 22050)[:22050], atol=1e-6)
    short, _ = read_clip(path, 60.0)  # longer than the file: zero-padded at its own rate
    assert short.shape == (rate * 60,) and not short[rate * 30 :].any()


@pytest.mark.parametrize("seconds", [float("inf"), -1.0, 0.0, MAX_CLIP_SAMPLES / 8000 + 1])
def test_clip_lengths_outside_the_limits_are_refused(tmp_path: Path, seconds: float) -> None:
    path = _wav(tmp_path / "a.wav", 8000, np.zeros(100))
    with pytest.raises(DataError, match=r"a clip must hold 1\.\.16777216 samples"):
        read_clip(path, seconds)


def test_png_header_claiming_huge_size_is_refused(tmp_path: Path) -> None:
    from tests.cli._bombs import png_claiming

    path = png_claiming(tmp_path / "x.png", 9000, 9000)
    with pytest.raises(DataError, match=r"is 9000x9000 pixels, more than the limit"):
        read_png(path)
