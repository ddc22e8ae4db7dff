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


_REGISTRY: dict[str, DatasetEntry] = {}


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
        _REGISTRY[name] = DatasetEntry(name, fn, options, needs_path, cache, version, doc)
        return fn

    return deco


def _ensure_builtin() -> None:
    # importing the modules registers their builders
    import harmonic_nas.data.av_digits
    import harmonic_nas.data.loaders  # noqa: F401


def list_datasets() -> list[str]:
    """Names of every registered dataset, sorted."""
    _ensure_builtin()
    return sorted(_REGISTRY)


def get_dataset_entry(name: str) -> DatasetEntry:
    """The registry entry for ``name`` (one-line DataError for an unknown name)."""
    _ensure_builtin()
    if name not in _REGISTRY:
        raise DataError(
            f"unknown dataset '{name}'; choose one of {', '.join(sorted(_REGISTRY))} "
            "(see `harmonic-nas data list`)"
        )
    return _REGISTRY[name]
