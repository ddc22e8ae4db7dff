"""benchmarks/_pipelines.py: the benchmarks' protocol on top of configs/quick.yaml."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from harmonic_nas.config import load_config

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"


@pytest.fixture(scope="module")
def pipelines() -> ModuleType:
    sys.path.insert(0, str(BENCH))  # its sibling _bench_config
    try:
        spec = importlib.util.spec_from_file_location(
            "_pipelines_under_test", BENCH / "_pipelines.py"
        )
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(BENCH))
    return mod


def test_quick_yaml_ships_the_late_fusion_gene() -> None:
    cfg = load_config(REPO / "configs" / "quick.yaml")
    assert cfg.search.fusion_modes == ("late", "network+late")
    assert (
        load_config(REPO / "configs" / "hard.yaml").search.fusion_modes == cfg.search.fusion_modes
    )


def test_the_protocol_keeps_saved_results_reproducible(pipelines: ModuleType) -> None:
    """The benchmarks pretrain longer and keep the gene off (what their saved results were
    measured with), under the shared pipeline's name; a ``--set`` undoes the protocol and gets a
    pipeline of its own."""
    cfg = pipelines.pipeline_config("hard", 1)
    assert cfg.name == "bench-hard-s1"
    assert cfg.pretrain.epochs == 20 and cfg.search.fusion_modes is None
    assert cfg.dataset.options["profile"] == "hard" and cfg.seed == 1
    modes = pipelines.pipeline_config("hard", 1, sets=["search.fusion_modes=[late,network+late]"])
    assert modes.search.fusion_modes == ("late", "network+late")
    assert modes.name.startswith("bench-hard-s1-") and modes.name != cfg.name
    assert modes.pretrain == cfg.pretrain  # the same supernets' recipe
