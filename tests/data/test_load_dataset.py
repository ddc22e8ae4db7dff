"""load_dataset(cfg): the config's dataset section and its modalities checked against the data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harmonic_nas.config import parse_config
from harmonic_nas.data import load_dataset
from harmonic_nas.errors import DataError

from .conftest import TINY_AV


def _cfg(modalities: dict[str, Any], **dataset: Any) -> Any:
    return parse_config({"name": "t", "dataset": dataset, "modalities": modalities})


AV_MODS = {
    "image": {"preset": "avmnist", "shape": [1, 28, 28]},
    "audio": {"preset": "avmnist", "shape": [1, 20, 20]},
}


def test_load_dataset_builds_av_digits_from_the_config() -> None:
    cfg = _cfg(AV_MODS, name="av-digits", options=TINY_AV)
    calls: list[tuple[str, int, int]] = []
    ds = load_dataset(cfg, progress=lambda t, c, n: calls.append((t, c, n)))
    assert ds.name == "av-digits" and len(ds.split("train")) == 40
    assert calls and calls[-1][1] == calls[-1][2]
    assert ds.meta["seed"] == cfg.seed


def test_seed_of_the_config_seeds_the_build() -> None:
    a = load_dataset(_cfg(AV_MODS, name="av-digits", options=TINY_AV))
    b = load_dataset(
        parse_config(
            {"name": "t", "seed": 9, "dataset": {"options": TINY_AV}, "modalities": AV_MODS}
        )
    )
    assert a.meta["fingerprint"] != b.meta["fingerprint"]


def test_rank_mismatch_with_the_config() -> None:
    mods = {**AV_MODS, "audio": {"preset": "avmnist", "shape": [20, 20]}}
    with pytest.raises(
        DataError,
        match=r"modality 'audio' has rank 3 \[1, 20, 20\] .* but rank 2 \[20, 20\] in the config; set modalities.audio.shape to \[1, 20, 20\]",
    ):
        load_dataset(_cfg(mods, options=TINY_AV))


def test_shape_mismatch_with_the_config() -> None:
    mods = {**AV_MODS, "image": {"preset": "avmnist", "shape": [1, 32, 32]}}
    with pytest.raises(DataError, match=r"set modalities.image.shape to \[1, 28, 28\]"):
        load_dataset(_cfg(mods, options=TINY_AV))


def test_modality_names_must_match() -> None:
    mods = {"image": AV_MODS["image"], "sound": AV_MODS["audio"]}
    with pytest.raises(DataError, match=r"config modality 'sound' is not in dataset 'av-digits'"):
        load_dataset(_cfg(mods, options=TINY_AV))


def test_dataset_modality_missing_from_the_config(npz_dir: Path) -> None:
    mods = {
        "pixels": {"preset": "avmnist", "shape": [1, 8, 8]},
        "sound": {"preset": "avmnist", "shape": [1, 4, 6]},
    }
    with pytest.raises(
        DataError,
        match=r"modality 'vec' is missing from the config; add modalities.vec with shape \[5\]",
    ):
        load_dataset(_cfg(mods, name="npz", path=str(npz_dir)))


def test_kind_mismatch_with_the_config() -> None:
    mods = {**AV_MODS, "audio": {"preset": "avmnist", "shape": [1, 20, 20], "kind": "text"}}
    with pytest.raises(DataError, match=r"set modalities.audio.kind to audio"):
        load_dataset(_cfg(mods, options=TINY_AV))


def test_path_from_the_config_for_real_data(npz_dir: Path) -> None:
    mods = {
        "pixels": {"preset": "avmnist", "shape": [1, 8, 8]},
        "sound": {"preset": "avmnist", "shape": [1, 4, 6]},
        "vec": {"preset": "maxout", "shape": [5]},
    }
    ds = load_dataset(_cfg(mods, name="npz", path=str(npz_dir)))
    assert ds.modality_names == ["pixels", "sound", "vec"]
    with pytest.raises(DataError, match=r"needs a path"):
        load_dataset(_cfg(mods, name="npz"))
