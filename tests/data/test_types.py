from __future__ import annotations

import pytest
import torch

from harmonic_nas.data import ModalitySpec, MultimodalDataset, Split
from harmonic_nas.errors import DataError


def _ds() -> MultimodalDataset:
    def split(n: int) -> Split:
        return Split(
            {
                "a": torch.arange(n * 4, dtype=torch.float32).reshape(n, 1, 2, 2),
                "b": torch.ones(n, 3),
            },
            torch.arange(n) % 2,
        )

    return MultimodalDataset(
        name="toy",
        modalities=[ModalitySpec("a", "image", (1, 2, 2)), ModalitySpec("b", "vector", (3,))],
        task="classification",
        num_classes=2,
        class_names=["x", "y"],
        splits={"train": split(6), "val": split(2), "test": split(2)},
    )


def test_split_len_and_subset_by_indices_and_mask() -> None:
    s = _ds().split("train")
    assert len(s) == 6
    sub = s.subset([4, 1])
    assert len(sub) == 2
    assert torch.equal(sub.labels, torch.tensor([0, 1]))
    assert torch.equal(sub.inputs["a"][0], s.inputs["a"][4])
    masked = s.subset(s.labels == 1)
    assert len(masked) == 3 and bool((masked.labels == 1).all())


def test_torch_dataset_items_are_dict_and_label() -> None:
    ds = _ds()
    td = ds.torch_dataset("val")
    assert len(td) == 2
    x, y = td[1]
    assert set(x) == {"a", "b"} and x["a"].shape == (1, 2, 2) and int(y) == 1
    loader = torch.utils.data.DataLoader(td, batch_size=2)
    xb, yb = next(iter(loader))
    assert xb["b"].shape == (2, 3) and yb.shape == (2,)


def test_unknown_split_and_modality_are_one_line_errors() -> None:
    ds = _ds()
    with pytest.raises(DataError, match="no split 'dev'"):
        ds.split("dev")
    with pytest.raises(DataError, match="no modality 'c'"):
        ds.modality("c")
    assert ds.modality("b").kind == "vector"
    assert ds.modality_names == ["a", "b"]


def test_modality_spec_json_round_trip() -> None:
    m = ModalitySpec("audio", "audio", (1, 20, 20))
    assert ModalitySpec.from_json(m.to_json()) == m
