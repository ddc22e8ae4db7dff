"""The fusion split: carved from train (stratified, seeded), recorded, and given to the fusion
network as its train split."""

from __future__ import annotations

import pytest
import torch

from harmonic_nas.data.fusion_split import carve_fusion_split, fusion_dataset, fusion_indices
from harmonic_nas.errors import DataError
from tests.fusion.conftest import make_dataset


def test_carving_is_stratified_seeded_and_disjoint() -> None:
    ds = make_dataset(n_train=160, n_val=64)
    train = ds.split("train")
    out = carve_fusion_split(ds, 0.25, seed=3)
    kept, fus = out.split("train"), out.split("fusion")
    assert len(kept) + len(fus) == len(train)
    per_class = torch.bincount(train.labels, minlength=4)
    got = torch.bincount(fus.labels, minlength=4)
    assert got.tolist() == [round(0.25 * int(n)) for n in per_class]
    idx = fusion_indices(train.labels, 0.25, seed=3)
    assert torch.equal(fus.inputs["vec"], train.inputs["vec"][idx])
    assert torch.equal(idx, fusion_indices(train.labels, 0.25, seed=3))  # seeded
    assert not torch.equal(idx, fusion_indices(train.labels, 0.25, seed=4))
    assert out.split("val") is ds.split("val") and "fusion" not in ds.splits  # a copy
    assert out.meta["fusion_split"] == {"fraction": 0.25, "train": len(kept), "fusion": len(fus)}
    view = fusion_dataset(out)
    assert view.split("train") is fus and sorted(view.splits) == ["test", "train", "val"]
    assert fusion_dataset(ds) is ds


def test_multilabel_is_carved_at_random() -> None:
    ds = make_dataset(task="multilabel")
    out = carve_fusion_split(ds, 0.5, seed=0)
    assert len(out.split("fusion")) == round(0.5 * len(ds.split("train")))


def test_too_little_data_names_the_fix() -> None:
    labels = torch.tensor([0, 0, 1])
    with pytest.raises(DataError, match="class 1 has 1 train sample"):
        fusion_indices(labels, 0.3, seed=0)
    with pytest.raises(DataError, match=r"fusion\.fusion_split: 0"):
        fusion_indices(torch.zeros(1, 3), 0.3, seed=0)
    ds = carve_fusion_split(make_dataset(), 0.2, seed=0)
    with pytest.raises(DataError, match="already has a 'fusion' split"):
        carve_fusion_split(ds, 0.2, seed=0)
