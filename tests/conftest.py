"""Shared fixtures: an isolated dataset cache and a seeded torch per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test session shares one tmp dataset cache; never the user's ~/.cache."""
    monkeypatch.setenv("HARMONIC_NAS_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(autouse=True)
def _seeded() -> Iterator[None]:
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tests run on one intra-op thread: tiny ops on a loaded 2-core machine thrash otherwise."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
