"""The multimodal dataset types every later stage consumes.

A :class:`MultimodalDataset` holds three :class:`Split` objects (``train``, ``val``, ``test``) of
already normalised float32 tensors, one per modality, plus labels: int64 class indices for
``classification`` or a float32 multi-hot matrix for ``multilabel``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch.utils.data import Dataset

from harmonic_nas.errors import DataError
from harmonic_nas.tasks import Task

logger = logging.getLogger(__name__)

ModalityKind = Literal["image", "audio", "text", "vector"]
SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class ModalitySpec:
    """One modality: its name, kind and per-sample tensor shape (without the batch dimension)."""

    name: str
    kind: ModalityKind
    shape: tuple[int, ...]

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "shape": list(self.shape)}

    @classmethod
    def from_json(cls, d: dict[str, object]) -> ModalitySpec:
        shape = d["shape"]
        assert isinstance(shape, list | tuple)
        return cls(name=str(d["name"]), kind=d["kind"], shape=tuple(int(s) for s in shape))  # type: ignore[arg-type]


@dataclass
class Split:
    """One split: per-modality float32 tensors ``(N, *shape)`` and labels ``(N,)`` or ``(N, K)``."""

    inputs: dict[str, torch.Tensor]
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, idx: torch.Tensor | Sequence[int]) -> Split:
        """The samples at ``idx`` (indices or a boolean mask), as a new Split."""
        index = torch.as_tensor(idx)
        if index.dtype == torch.bool:
            index = index.nonzero(as_tuple=True)[0]
        index = index.long()
        return Split({k: v[index] for k, v in self.inputs.items()}, self.labels[index])


class _SplitDataset(Dataset[tuple[dict[str, torch.Tensor], torch.Tensor]]):
    """A map-style torch dataset over one :class:`Split`."""

    def __init__(self, split: Split) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        return {k: v[i] for k, v in self.split.inputs.items()}, self.split.labels[i]


@dataclass
class MultimodalDataset:
    """A dataset with two or more modalities and ``train``/``val``/``test`` splits."""

    name: str
    modalities: list[ModalitySpec]
    task: Task
    num_classes: int
    class_names: list[str]
    splits: dict[str, Split]
    meta: dict[str, object] = field(default_factory=dict)

    def split(self, name: str) -> Split:
        """The split called ``name`` (``train``, ``val`` or ``test``)."""
        if name not in self.splits:
            raise DataError(
                f"dataset '{self.name}' has no split '{name}'; use one of {sorted(self.splits)}"
            )
        return self.splits[name]

    def torch_dataset(self, split: str) -> Dataset[tuple[dict[str, torch.Tensor], torch.Tensor]]:
        """A torch ``Dataset`` whose items are ``(dict[modality, Tensor], label)``."""
        return _SplitDataset(self.split(split))

    def modality(self, name: str) -> ModalitySpec:
        """The spec of modality ``name``."""
        for m in self.modalities:
            if m.name == name:
                return m
        raise DataError(
            f"dataset '{self.name}' has no modality '{name}'; "
            f"its modalities are {[m.name for m in self.modalities]}"
        )

    @property
    def modality_names(self) -> list[str]:
        return [m.name for m in self.modalities]
