"""The configuration the search benchmarks start from: configs/quick.yaml with converged supernets.

quick.yaml's 8 pretraining epochs are the demo's time budget, not convergence: the audio
supernet's max-subnet val accuracy still rises until about epoch 14 (seed 0: 77.7 % after 8 of
8 epochs, 81-82 % from epoch 11 of 20 on; image 91-92 % either way). A benchmark of the search
should not measure an under-trained backbone, so ``fusion_search``, ``search_quality`` and the
benchmarks that continue its runs pretrain for :data:`PRETRAIN_EPOCHS`; every other setting is
quick.yaml's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harmonic_nas.config import ExperimentConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
BASE_CONFIG = ROOT / "configs" / "quick.yaml"
PRETRAIN_EPOCHS = 20


def load_bench_config(
    path: Path = BASE_CONFIG, overrides: dict[str, Any] | None = None
) -> ExperimentConfig:
    """``path`` (default configs/quick.yaml) with the benchmarks' pretraining epochs."""
    return load_config(path, overrides, sets=[f"pretrain.epochs={PRETRAIN_EPOCHS}"])
