"""Every real-data loader on a tiny fixture of its exact on-disk format, and its bad inputs."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from harmonic_nas.data import build_dataset, list_datasets
from harmonic_nas.data.loaders.soundmnist import read_wav
from harmonic_nas.errors import DataError

from .conftest import make_avmnist, make_npz


def test_registry_lists_every_dataset() -> None:
    assert {"av-digits", "soundmnist", "avmnist", "mmimdb", "npz"} <= set(list_datasets())


def test_unknown_dataset_name() -> None:
    with pytest.raises(DataError, match=r"unknown dataset 'mnist3'.*harmonic-nas data list"):
        build_dataset("mnist3")


@pytest.mark.parametrize("name", ["soundmnist", "avmnist", "mmimdb", "npz"])
def test_real_datasets_need_an_existing_path(name: str, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"needs a path; set dataset.path"):
        build_dataset(name)
    with pytest.raises(DataError, match=r"does not exist"):
        build_dataset(name, path=tmp_path / "nowhere")


# --------------------------------------------------------------------------- soundmnist


def test_soundmnist_pairs_by_index_and_carves_val(soundmnist_dir: Path) -> None:
    ds = build_dataset(
        "soundmnist",
        path=soundmnist_dir,
        options={"train_per_class": 5, "val_per_class": 2, "test_per_class": 3},
    )
    assert [(m.name, m.shape) for m in ds.modalities] == [
        ("image", (1, 28, 28)),
        ("audio", (1, 20, 20)),
    ]
    assert [len(ds.split(s)) for s in ("train", "val", "test")] == [30, 20, 30]
    for s in ("train", "val", "test"):
        assert torch.bincount(ds.split(s).labels, minlength=10).min() > 0
    # digit d is a (300 + 100 d) Hz tone: the audio features must separate the classes
    audio = ds.split("test").inputs["audio"].flatten(1)
    centroids = torch.stack([audio[ds.split("test").labels == d].mean(0) for d in range(10)])
    nearest = torch.cdist(audio, centroids).argmin(1)
    assert float((nearest == ds.split("test").labels).float().mean()) == 1.0
    # image rows of the fixture encode the digit (the bar starts at row 2 + d)
    stats = ds.meta["normalization"]
    assert isinstance(stats, dict) and stats["image"]["std"] > 0


def test_read_wav_handles_8_bit_and_stereo(tmp_path: Path) -> None:
    import wave

    p = tmp_path / "x.wav"
    with wave.open(str(p), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(bytes([128, 128, 255, 255, 0, 0]))
    x, rate = read_wav(p)
    assert rate == 8000 and x.shape == (3,)
    assert x[0] == 0 and x[1] > 0.99 and x[2] == -1


def test_soundmnist_wrong_layout_names_the_expected_folder(tmp_path: Path) -> None:
    (tmp_path / "mnist").mkdir()
    with pytest.raises(DataError, match=r"expected the folder sound_450"):
        build_dataset("soundmnist", path=tmp_path)


def test_soundmnist_missing_class_folder(soundmnist_dir: Path) -> None:
    import shutil

    shutil.rmtree(soundmnist_dir / "sound_450" / "test" / "7")
    with pytest.raises(DataError, match=r"sound_450/test/7|digit 7"):
        build_dataset(
            "soundmnist", path=soundmnist_dir, options={"train_per_class": 5, "val_per_class": 2}
        )


def test_soundmnist_corrupt_wav(soundmnist_dir: Path) -> None:
    bad = soundmnist_dir / "sound_450" / "train" / "0" / "0_spk0_0.wav"
    bad.write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"cannot read .*0_spk0_0.wav as PCM wav"):
        build_dataset(
            "soundmnist", path=soundmnist_dir, options={"train_per_class": 5, "val_per_class": 2}
        )


def test_soundmnist_val_must_be_smaller_than_train(soundmnist_dir: Path) -> None:
    with pytest.raises(DataError, match=r"val_per_class .* must be smaller"):
        build_dataset(
            "soundmnist", path=soundmnist_dir, options={"train_per_class": 3, "val_per_class": 3}
        )


# --------------------------------------------------------------------------- avmnist


def test_avmnist_last_val_size_of_train_is_val(avmnist_dir: Path) -> None:
    ds = build_dataset("avmnist", path=avmnist_dir, options={"val_size": 20})
    assert [len(ds.split(s)) for s in ("train", "val", "test")] == [40, 20, 20]
    assert ds.modality("image").shape == (1, 28, 28) and ds.modality("audio").shape == (1, 112, 112)
    raw = np.load(avmnist_dir / "image" / "train_data.npy").astype(np.float64)
    stats = ds.meta["normalization"]["image"]  # type: ignore[index]
    expected_val = (raw[40:].reshape(-1, 1, 28, 28) - stats["mean"]) / stats["std"]
    assert np.allclose(ds.split("val").inputs["image"].numpy(), expected_val, atol=1e-4)
    assert stats["mean"] == pytest.approx(raw[:40].mean(), rel=1e-6)


def test_avmnist_audio_pooling_and_limit(avmnist_dir: Path) -> None:
    ds = build_dataset(
        "avmnist", path=avmnist_dir, options={"val_size": 20, "audio_size": 28, "limit": 20}
    )  # 2 train samples per class: the fewest a class may have
    assert ds.split("train").inputs["audio"].shape == (20, 1, 28, 28)
    assert len(ds.split("test")) == 20
    with pytest.raises(DataError, match=r"audio_size must divide 112"):
        build_dataset("avmnist", path=avmnist_dir, options={"val_size": 20, "audio_size": 30})


def test_avmnist_wrong_layout_names_the_expected_file(avmnist_dir: Path) -> None:
    (avmnist_dir / "audio" / "test_data.npy").unlink()
    with pytest.raises(DataError, match=r"expected audio/test_data.npy \(N x 112 x 112\)"):
        build_dataset("avmnist", path=avmnist_dir, options={"val_size": 20})


def test_avmnist_modalities_of_different_lengths(tmp_path: Path) -> None:
    root = make_avmnist(tmp_path / "a")
    np.save(root / "image" / "train_data.npy", np.zeros((59, 784), dtype=np.uint8))
    with pytest.raises(
        DataError, match=r"modality 'image' of split 'train' has 59 samples but there are 60 labels"
    ):
        build_dataset("avmnist", path=root, options={"val_size": 20})


def test_avmnist_labels_out_of_range(tmp_path: Path) -> None:
    root = make_avmnist(tmp_path / "a")
    y = np.arange(20) % 10
    y[3] = 12
    np.save(root / "test_labels.npy", y)
    with pytest.raises(
        DataError, match=r"labels of split 'test' range over \[0, 12\] but must lie in \[0, 9\]"
    ):
        build_dataset("avmnist", path=root, options={"val_size": 20})


def test_avmnist_wrong_sample_shape(tmp_path: Path) -> None:
    root = make_avmnist(tmp_path / "a")
    np.save(root / "audio" / "train_data.npy", np.zeros((60, 112 * 112), dtype=np.uint8))
    with pytest.raises(DataError, match=r"audio/train_data.npy has shape \[60, 12544\] \(rank 2\)"):
        build_dataset("avmnist", path=root, options={"val_size": 20})


# --------------------------------------------------------------------------- mmimdb


def test_mmimdb_multilabel_split_and_resize(mmimdb_file: Path) -> None:
    opts = {"train_size": 15, "val_size": 5, "test_size": 10, "image_size": 16}
    ds = build_dataset("mmimdb", path=mmimdb_file.parent, options=opts)
    assert ds.task == "multilabel" and ds.num_classes == 23 and ds.class_names[0] == "Drama"
    assert [(m.name, m.kind, m.shape) for m in ds.modalities] == [
        ("image", "image", (3, 16, 16)),
        ("text", "text", (300,)),
    ]
    assert [len(ds.split(s)) for s in ("train", "val", "test")] == [15, 5, 10]
    y = ds.split("test").labels
    assert y.dtype == torch.float32 and y.shape == (10, 23)
    with h5py.File(mmimdb_file) as h5:
        assert np.array_equal(y.numpy(), h5["genres"][20:30].astype(np.float32))
    # the file itself is also accepted as the path
    again = build_dataset("mmimdb", path=mmimdb_file, options=opts)
    assert torch.equal(again.split("val").inputs["text"], ds.split("val").inputs["text"])


def test_mmimdb_standard_split_needs_enough_samples(mmimdb_file: Path) -> None:
    with pytest.raises(DataError, match=r"holds 30 samples but the split needs 25959"):
        build_dataset("mmimdb", path=mmimdb_file)


def test_mmimdb_wrong_layout(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    with pytest.raises(DataError, match=r"expected the file multimodal_imdb.hdf5"):
        build_dataset("mmimdb", path=tmp_path / "m")
    path = tmp_path / "m" / "multimodal_imdb.hdf5"
    with h5py.File(path, "w") as h5:
        h5["images"] = np.zeros((4, 3, 8, 8), dtype=np.uint8)
        h5["genres"] = np.ones((4, 23))
    with pytest.raises(DataError, match=r"has no 'features' dataset"):
        build_dataset("mmimdb", path=path)


def test_mmimdb_nan_text_features(tmp_path: Path) -> None:
    from .conftest import make_mmimdb

    path = make_mmimdb(tmp_path / "multimodal_imdb.hdf5")
    with h5py.File(path, "r+") as h5:
        feats = h5["features"][:]
        feats[17, 3] = np.nan
        h5["features"][:] = feats
    opts = {"train_size": 15, "val_size": 5, "test_size": 10, "image_size": 8}
    with pytest.raises(DataError, match=r"modality 'text' of split 'val' contains 1 NaN/Inf"):
        build_dataset("mmimdb", path=path, options=opts)


# --------------------------------------------------------------------------- npz


def test_npz_generic_three_modalities(npz_dir: Path) -> None:
    ds = build_dataset("npz", path=npz_dir)
    assert ds.task == "classification" and ds.num_classes == 3
    assert [(m.name, m.kind, m.shape) for m in ds.modalities] == [
        ("pixels", "image", (1, 8, 8)),
        ("sound", "audio", (1, 4, 6)),
        ("vec", "vector", (5,)),
    ]
    assert [len(ds.split(s)) for s in ("train", "val", "test")] == [30, 10, 10]
    assert ds.split("train").inputs["vec"].dtype == torch.float32


def test_npz_multilabel_and_kind_override(tmp_path: Path) -> None:
    root = make_npz(tmp_path / "ml", multilabel=True, classes=4)
    ds = build_dataset("npz", path=root, options={"kinds": "vec:text"})
    assert ds.task == "multilabel" and ds.num_classes == 4
    assert ds.modality("vec").kind == "text"
    assert ds.split("val").labels.shape == (10, 4)
    with pytest.raises(DataError, match=r"kinds has the entry 'vec:smell'"):
        build_dataset("npz", path=root, options={"kinds": "vec:smell"})


def test_npz_class_names(tmp_path: Path) -> None:
    root = make_npz(tmp_path / "n", train={"class_names": np.array(["cat", "dog", "eel"])})
    assert build_dataset("npz", path=root).class_names == ["cat", "dog", "eel"]


def test_npz_needs_two_modalities(tmp_path: Path) -> None:
    root = tmp_path / "one"
    root.mkdir()
    for split in ("train", "val", "test"):
        np.savez(root / f"{split}.npz", x=np.zeros((6, 3)), labels=np.arange(6) % 2)
    with pytest.raises(DataError, match=r"needs at least two besides 'labels'"):
        build_dataset("npz", path=root)


def test_npz_wrong_layout(tmp_path: Path, npz_dir: Path) -> None:
    (npz_dir / "val.npz").unlink()
    with pytest.raises(DataError, match=r"expected val.npz"):
        build_dataset("npz", path=npz_dir)
    root = make_npz(tmp_path / "nolabels", val={})
    np.savez(
        root / "test.npz",
        pixels=np.zeros((3, 1, 8, 8)),
        sound=np.zeros((3, 4, 6)),
        vec=np.zeros((3, 5)),
    )
    with pytest.raises(DataError, match=r"test.npz has no 'labels' array"):
        build_dataset("npz", path=root)


def test_npz_modalities_of_different_lengths(tmp_path: Path) -> None:
    root = make_npz(tmp_path / "len", val={"sound": np.zeros((9, 4, 6))})
    with pytest.raises(
        DataError, match=r"modality 'sound' of split 'val' has 9 samples but there are 10 labels"
    ):
        build_dataset("npz", path=root)


def test_npz_class_missing_from_a_split(tmp_path: Path) -> None:
    root = make_npz(tmp_path / "miss", test={"labels": np.zeros(10, dtype=np.int64)})
    with pytest.raises(DataError, match=r"class 1 .* is missing from split 'test'"):
        build_dataset("npz", path=root)


def test_npz_labels_out_of_range(tmp_path: Path) -> None:
    root = make_npz(tmp_path / "range")
    with pytest.raises(DataError, match=r"range over \[0, 2\] but must lie in \[0, 1\]"):
        build_dataset("npz", path=root, options={"num_classes": 2})
    neg = make_npz(tmp_path / "neg", val={"labels": np.array([-1] + [0, 1, 2] * 3)})
    with pytest.raises(DataError, match=r"labels of split 'val' range over \[-1, 2\]"):
        build_dataset("npz", path=neg)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_npz_nan_or_inf(tmp_path: Path, bad: float) -> None:
    x = np.zeros((10, 5))
    x[4, 2] = bad
    root = make_npz(tmp_path / "nan", test={"vec": x})
    with pytest.raises(
        DataError, match=r"modality 'vec' of split 'test' contains 1 NaN/Inf values"
    ):
        build_dataset("npz", path=root)


def test_npz_empty_split(tmp_path: Path) -> None:
    root = make_npz(tmp_path / "empty", sizes=(30, 0, 10))
    with pytest.raises(DataError, match=r"split 'val' is empty"):
        build_dataset("npz", path=root)


def test_npz_inconsistent_sample_shape_across_splits(tmp_path: Path) -> None:
    root = make_npz(tmp_path / "shape", test={"vec": np.zeros((10, 6))})
    with pytest.raises(
        DataError, match=r"'vec' has sample shape \[6\] in test.npz but \[5\] in train.npz"
    ):
        build_dataset("npz", path=root)


def test_npz_corrupt_file(npz_dir: Path) -> None:
    (npz_dir / "train.npz").write_bytes(b"nope")
    with pytest.raises(DataError, match=r"cannot read .*train.npz as .npz"):
        build_dataset("npz", path=npz_dir)


def test_real_loaders_reject_unknown_options(npz_dir: Path) -> None:
    with pytest.raises(DataError, match=r"unknown option 'val_size' for dataset 'npz'"):
        build_dataset("npz", path=npz_dir, options={"val_size": 3})


def test_loaders_are_not_cached(npz_dir: Path) -> None:
    ds = build_dataset("npz", path=npz_dir)
    assert "cache_file" not in ds.meta
