"""Hardware test fixtures: small search spaces, the published tables (when present)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from harmonic_nas.config import ExperimentConfig, parse_config

REFERENCE_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "reference-luts"
N_CLASSES = 10


def small_config_dict(run_dir: Path, **device: Any) -> dict[str, Any]:
    """avmnist image + audio, a small fusion space, fast torch profiling."""
    dev = {
        "backend": "torch",
        "threads": 1,
        "warmup": 1,
        "repeats": 5,
        "calibration_models": 5,
        **device,
    }
    return {
        "name": "hw",
        "run_dir": str(run_dir),
        "modalities": {
            "image": {"preset": "avmnist", "shape": [1, 28, 28]},
            "audio": {"preset": "avmnist", "shape": [1, 20, 20]},
        },
        "device": dev,
        "fusion": {"C": 8, "L": 4, "cells": 1, "nodes": 1},
        "search": {"cells": [1, 2], "nodes": [1, 2]},
    }


@pytest.fixture
def small_cfg(tmp_path: Path) -> ExperimentConfig:
    return parse_config(small_config_dict(tmp_path / "runs"))


@pytest.fixture
def small_cfg_file(tmp_path: Path) -> Path:
    path = tmp_path / "hw.yaml"
    path.write_text(yaml.safe_dump(small_config_dict(tmp_path / "runs")))
    return path


@pytest.fixture(autouse=True)
def _own_lut_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed LUTs live in the cache: each test gets its own (imports must not leak)."""
    monkeypatch.setenv("HARMONIC_NAS_CACHE", str(tmp_path / "cache"))


@pytest.fixture(autouse=True)
def _no_dataset(monkeypatch: pytest.MonkeyPatch) -> None:
    """The classifier's width comes from the dataset; tests use 10 classes without building it."""
    monkeypatch.setattr("harmonic_nas.hardware.inventory.config_n_classes", lambda cfg: N_CLASSES)


@pytest.fixture
def reference_dir() -> Path:
    if not (REFERENCE_DIR / "lut_ofa_mnist_tx2.json").is_file():
        pytest.skip(f"published reference LUTs not found in {REFERENCE_DIR}")
    return REFERENCE_DIR


def reference_files(folder: Path, device: str) -> list[Path]:
    """The avmnist backbone table and the fusion table of one device (tx2 | agx)."""
    return [folder / f"lut_ofa_mnist_{device}.json", folder / f"lut_fusion_{device}.json"]
