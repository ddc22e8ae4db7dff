"""Dataset registry: adding a dataset is one decorated builder function.

A builder has the signature ``builder(ctx: BuildContext, progress: ProgressFn) ->
MultimodalDataset``. :func:`harmonic_nas.data.build_dataset` parses the options, checks the path,
calls the builder, validates the result and caches it when the entry asks for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harmonic_nas.data.types import MultimodalDataset
from harmonic_nas.errors import DataError
from harmonic_nas.utils.progress import ProgressFn
from harmonic_nas.utils.registry import Registry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildContext:
    """What a builder gets: dataset name, user path (real datasets), parsed options, seed."""

    name: str
    path: Path | None
    options: Any  # an instance of the entry's options dataclass (or None)
    seed: int = 0


Builder = Callable[[BuildContext, ProgressFn], MultimodalDataset]


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset.

    ``options`` is a dataclass of builder options (or None: the dataset takes none);
    ``needs_path`` marks real datasets read from a user path; ``cache`` asks for the built tensors
    to be cached under ``$HARMONIC_NAS_CACHE/datasets``; bump ``version`` when the builder changes
    its output so that old caches are not reused.
    """

    name: str
    builder: Builder
    options: type[Any] | None
    needs_path: bool
    cache: bool
    version: int
    summary: str


_REGISTRY: Registry[DatasetEntry] = Registry(
    "dataset", DataError, hint=" (see `harmonic-nas data list`)"
)


def register_dataset(
    name: str,
    *,
    options: type[Any] | None = None,
    needs_path: bool = False,
    cache: bool = False,
    version: int = 1,
    summary: str = "",
) -> Callable[[Builder], Builder]:
    """Decorator registering ``builder(ctx, progress) -> MultimodalDataset`` under ``name``."""

    def deco(fn: Builder) -> Builder:
        doc = summary or next(iter((fn.__doc__ or "").strip().splitlines()), "")
        _REGISTRY.register(name, DatasetEntry(name, fn, options, needs_path, cache, version, doc))
        return fn

    return deco


def list_datasets() -> list[str]:
    """Names of every registered dataset, sorted (the built-in ones are registered by
    importing :mod:`harmonic_nas.data`)."""
    return sorted(_REGISTRY.names())


def get_dataset_entry(name: str) -> DatasetEntry:
    """The registry entry for ``name`` (one-line DataError for an unknown name)."""
    return _REGISTRY.get(name)
