"""One intra-op thread: these tiny nets do not gain from more, and OpenMP spin-waits badly when
the cores are shared. Plus a synthetic dataset and config for the pretrain tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from harmonic_nas.config import ExperimentConfig, parse_config
from harmonic_nas.data import ModalitySpec, MultimodalDataset, Split


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_dataset(
    n_train: int = 96,
    n_val: int = 40,
    n_test: int = 40,
    *,
    n_classes: int = 4,
    seed: int = 0,
    task: str = "classification",
) -> MultimodalDataset:
    """A small learnable synthetic dataset: an image (1x12x12) and a vector (20,) modality whose
    class means differ, plus Gaussian noise."""
    g = torch.Generator().manual_seed(seed)
    img_means = torch.randn(n_classes, 1, 12, 12, generator=g)
    vec_means = torch.randn(n_classes, 20, generator=g) * 2

    def split(n: int) -> Split:
        y = torch.arange(n) % n_classes
        img = img_means[y] + 0.8 * torch.randn(n, 1, 12, 12, generator=g)
        vec = vec_means[y] + torch.randn(n, 20, generator=g)
        labels = (
            y if task == "classification" else torch.nn.functional.one_hot(y, n_classes).float()
        )
        return Split({"image": img, "vec": vec}, labels)

    return MultimodalDataset(
        name="synthetic",
        modalities=[
            ModalitySpec("image", "image", (1, 12, 12)),
            ModalitySpec("vec", "vector", (20,)),
        ],
        task=task,  # type: ignore[arg-type]
        num_classes=n_classes,
        class_names=[str(i) for i in range(n_classes)],
        splits={"train": split(n_train), "val": split(n_val), "test": split(n_test)},
    )


def make_config(run_dir: Path, **pretrain: Any) -> ExperimentConfig:
    settings = {"epochs": 2, "batch_size": 16, "bn_recalib_batches": 2, "n_random": 1, **pretrain}
    return parse_config(
        {
            "name": "t",
            "run_dir": str(run_dir),
            "seed": 3,
            "dataset": {"name": "synthetic"},
            "modalities": {
                "image": {"preset": "avmnist", "shape": [1, 12, 12]},
                "vec": {"preset": "maxout", "shape": [20]},
            },
            "pretrain": settings,
        }
    )


@pytest.fixture
def dataset() -> MultimodalDataset:
    return make_dataset()


@pytest.fixture
def make_ds() -> Any:
    return make_dataset


@pytest.fixture
def make_cfg(tmp_path: Path) -> Any:
    """``make_cfg(**pretrain_overrides)``: a config whose run directory is under tmp_path."""

    def make(**pretrain: Any) -> ExperimentConfig:
        return make_config(tmp_path / "runs", **pretrain)

    return make
