"""Tiny synthetic backbones and datasets so fusion tests run in seconds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import Tensor, nn

from harmonic_nas.config import FusionConfig
from harmonic_nas.data.types import ModalitySpec, MultimodalDataset, Split
from harmonic_nas.fusion.cache import FeatureCache


class TinyCNN(nn.Module):
    """forward -> ([stem, block1, block2, block3] maps, logits), like StaticBackbone."""

    def __init__(self, in_ch: int = 1, n_classes: int = 4) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_ch, 6, 3, 2, 1), nn.BatchNorm2d(6), nn.ReLU())
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(6 if i == 0 else 8, 8, 3, 2 if i == 1 else 1, 1),
                nn.BatchNorm2d(8),
                nn.ReLU(),
            )
            for i in range(3)
        )
        self.fc = nn.Linear(8, n_classes)

    def forward(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        feats = [self.stem(x)]
        for b in self.blocks:
            feats.append(b(feats[-1]))
        return feats, self.fc(feats[-1].mean((2, 3)))


class TinyMLP(nn.Module):
    """A vector backbone: forward -> ([hidden1, hidden2], logits), like MaxoutMLP."""

    def __init__(self, d: int = 8, n_classes: int = 4) -> None:
        super().__init__()
        self.l1 = nn.Sequential(nn.Linear(d, 12), nn.BatchNorm1d(12), nn.ReLU())
        self.l2 = nn.Sequential(nn.Linear(12, 10), nn.BatchNorm1d(10), nn.ReLU())
        self.fc = nn.Linear(10, n_classes)

    def forward(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        h1 = self.l1(x)
        h2 = self.l2(h1)
        return [h1, h2], self.fc(h2)


def make_dataset(
    n_train: int = 160,
    n_val: int = 64,
    n_classes: int = 4,
    task: str = "classification",
    seed: int = 0,
) -> MultimodalDataset:
    """Two modalities whose labels each carry half the information (fusion helps)."""
    g = torch.Generator().manual_seed(seed)

    def split(n: int) -> Split:
        y = torch.randint(0, n_classes, (n,), generator=g)
        img = 0.5 * torch.randn(n, 1, 12, 12, generator=g)
        img[:, 0, :6, :] += (y % 2).float().view(-1, 1, 1)  # image knows the parity
        vec = 0.5 * torch.randn(n, 8, generator=g)
        vec[:, 0] += (y // 2).float()  # vector knows the high bit
        if task == "multilabel":
            labels = torch.stack([(y % 2), (y // 2), (y == 0).long(), (y == 3).long()], 1).float()
            return Split({"image": img, "vec": vec}, labels)
        return Split({"image": img, "vec": vec}, y)

    return MultimodalDataset(
        name="toy",
        modalities=[
            ModalitySpec("image", "image", (1, 12, 12)),
            ModalitySpec("vec", "vector", (8,)),
        ],
        task=task,  # type: ignore[arg-type]
        num_classes=n_classes,
        class_names=[str(i) for i in range(n_classes)],
        splits={"train": split(n_train), "val": split(n_val), "test": split(n_val)},
    )


def make_backbones(seed: int = 0) -> dict[str, nn.Module]:
    torch.manual_seed(seed)
    return {"image": TinyCNN(), "vec": TinyMLP()}


def small_fcfg(**kw: object) -> FusionConfig:
    base: dict[str, object] = dict(
        C=8,
        L=4,
        epochs=3,
        retrain_epochs=3,
        batch_size=32,
        weight_lr=3e-3,
        weight_lr_min=1e-4,
        lambda_lat=0.0,
        lambda_energy=0.0,
        restart_period=2,
    )
    base.update(kw)
    return FusionConfig(**base)  # type: ignore[arg-type]


OP_COSTS = {
    "Sum": (0.01, 0.02),
    "ScaleDotAttn": (0.30, 0.50),
    "LinearGLU": (0.20, 0.30),
    "ConcatFC": (0.12, 0.20),
    "SE1": (0.05, 0.06),
    "CatConvMish": (0.15, 0.22),
}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny tensors gain nothing from intra-op threads; on a shared 2-core box they thrash."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def toy_dataset() -> MultimodalDataset:
    return make_dataset()


@pytest.fixture
def toy_backbones() -> dict[str, nn.Module]:
    return make_backbones()


@pytest.fixture(scope="module")
def cache() -> FeatureCache:
    """The tiny backbones' feature cache of the synthetic dataset (L = 4, 4 points each)."""
    from harmonic_nas.fusion import compute_feature_cache

    torch.manual_seed(0)
    return compute_feature_cache(
        make_backbones(),
        make_dataset(),
        L=4,
        fusion_points=4,
        bn_recalib_batches=2,
        batch_size=64,
        device=torch.device("cpu"),
    )
