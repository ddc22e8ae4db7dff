"""benchmarks/_pipelines.py and _bench_config.py: the benchmarks' protocol on top of
configs/quick.yaml, and what their saved files record."""

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


def test_paths_in_results_stay_repository_relative_through_a_symlink(
    pipelines: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run directory under a symlinked ``runs/`` is saved as ``runs/...``, not as the machine
    path the link points to; a path outside the repository stays absolute."""
    config = sys.modules["_bench_config"]
    repo, elsewhere = tmp_path / "repo", tmp_path / "elsewhere"
    (elsewhere / "bench-hard-s0").mkdir(parents=True)
    repo.mkdir()
    (repo / "runs").symlink_to(elsewhere, target_is_directory=True)
    monkeypatch.setattr(config, "ROOT", repo.resolve())
    assert config.repo_relative(repo / "runs" / "bench-hard-s0") == "runs/bench-hard-s0"
    assert config.repo_relative(elsewhere / "bench-hard-s0") == str(
        (elsewhere / "bench-hard-s0").resolve()
    )


def test_a_sidecar_names_its_result_and_records_the_machine(pipelines: ModuleType) -> None:
    fields = sys.modules["_bench_config"].sidecar_fields(Path("results") / "search_quality.json")
    assert fields["targets"] == {}
    assert (
        fields["note"] == "sidecar of search_quality.json; its targets are in search_quality.json"
    )
    assert {"torch", "onnxruntime", "python"} <= set(fields["machine"])
