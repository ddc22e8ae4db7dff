"""The av-digits benchmark profiles and the interaction task."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harmonic_nas.data import build_dataset
from harmonic_nas.data.av_digits import (
    INTERACTION_LABELS,
    PROFILES,
    AVDigitsOptions,
    interaction_targets,
)
from harmonic_nas.data.options import parse_options
from harmonic_nas.errors import DataError


def test_a_profile_fills_the_options_the_user_did_not_set() -> None:
    opts = parse_options(AVDigitsOptions, {"profile": "hard", "val_per_class": 40}, "av-digits")
    assert opts.profile == "hard"
    assert opts.val_per_class == 40  # explicit wins
    assert opts.pca_energy == PROFILES["hard"]["pca_energy"] != AVDigitsOptions().pca_energy
    assert opts.train_per_class == PROFILES["hard"]["train_per_class"]
    assert parse_options(AVDigitsOptions, {"profile": "default"}, "av-digits") == AVDigitsOptions()


def test_every_profile_fits_the_mnist_pool_and_validates() -> None:
    for name in PROFILES:
        parse_options(AVDigitsOptions, {"profile": name}, "av-digits").check()


def test_an_unknown_profile_is_a_one_line_error() -> None:
    with pytest.raises(DataError, match="option 'profile' must be one of default, hard"):
        parse_options(AVDigitsOptions, {"profile": "easy"}, "av-digits")


def test_interaction_targets_by_hand() -> None:
    image = np.array([3, 5, 2, 0])
    spoken = np.array([3, 1, 7, 0])
    y = interaction_targets(image, spoken)
    assert y.shape == (4, len(INTERACTION_LABELS)) == (4, 24)
    assert y.dtype == np.float32
    for i in range(4):
        assert y[i, image[i]] == 1 and y[i, :10].sum() == 1
        assert y[i, 10 + spoken[i]] == 1 and y[i, 10:20].sum() == 1
    # same, image>spoken, image<spoken, sum_even
    assert y[:, 20:].tolist() == [[1, 0, 0, 1], [0, 1, 0, 1], [0, 0, 1, 0], [1, 0, 0, 1]]


def test_the_interaction_task_is_multilabel_with_relations_from_both_modalities(
    tiny_av: dict[str, int],
) -> None:
    ds = build_dataset(
        "av-digits",
        options={**tiny_av, "task": "interaction", "same_fraction": 0.5},
        seed=3,
        use_cache=False,
    )
    assert ds.task == "multilabel" and ds.num_classes == 24
    assert ds.class_names == list(INTERACTION_LABELS)
    spoken = ds.meta["spoken_digit"]
    assert isinstance(spoken, dict)
    for split in ("train", "val", "test"):
        labels = ds.split(split).labels
        assert labels.dtype == torch.float32 and labels.shape[1] == 24
        image_digit = labels[:, :10].argmax(1).numpy()
        expect = interaction_targets(image_digit, np.asarray(spoken[split]))
        assert np.array_equal(labels.numpy(), expect)
        # the image digit stays class-balanced; the spoken digit is not always the image's
        per_class = {"train": 4, "val": 2, "test": 2}[split]
        assert np.bincount(image_digit, minlength=10).tolist() == [per_class] * 10
    train = ds.split("train").labels
    assert 0 < float(train[:, 20].mean()) < 1


def test_the_default_task_is_unchanged_by_the_new_options(tiny_av: dict[str, int]) -> None:
    a = build_dataset("av-digits", options=tiny_av, seed=0, use_cache=False)
    b = build_dataset(
        "av-digits", options={**tiny_av, "profile": "default"}, seed=0, use_cache=False
    )
    assert torch.equal(a.split("train").labels, b.split("train").labels)
    assert torch.equal(a.split("val").inputs["audio"], b.split("val").inputs["audio"])
    assert "spoken_digit" not in a.meta
