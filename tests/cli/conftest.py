"""Fixtures of the CLI tests: one finished run of the synthetic search problem (no training),
made once per session through the real CLI and copied per test."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from harmonic_nas.cli import main
from tests.tree import tree

__all__ = ["experiment", "tree"]

SYNTHETIC = "harmonic_nas.testing.synthetic_problem:from_env"


def experiment(run_dir: Path, name: str = "syn") -> dict[str, object]:
    """A small two-modality experiment (synthetic search: 4 x 2 candidates, seconds)."""
    return {
        "name": name,
        "run_dir": str(run_dir),
        "seed": 7,
        "modalities": {
            "image": {"preset": "avmnist", "shape": [1, 28, 28]},
            "audio": {"preset": "avmnist", "shape": [1, 20, 20]},
        },
        "search": {"population": 4, "generations": 2, "heartbeat_s": 5},
    }


@pytest.fixture(scope="session")
def _finished_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("finished")
    config = root / "syn.yaml"
    config.write_text(yaml.safe_dump(experiment(root / "runs")), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARMONIC_NAS_SEARCH_PROBLEM", SYNTHETIC)
        mp.setenv("HARMONIC_NAS_SYNTHETIC", json.dumps({}))
        code = main(["-q", "search", str(config)])
    assert code == 0, "the synthetic search of the CLI fixture failed"
    run = root / "runs" / "syn"
    assert (run / "pareto.json").is_file() and (run / "study.db").is_file()
    yield root


@pytest.fixture
def finished_run(_finished_template: Path, tmp_path: Path) -> Path:
    """A copy of a finished synthetic run (``<tmp>/runs/syn``) beside its ``syn.yaml``, with
    ``run_dir`` pointing at the copy."""
    dst = tmp_path / "exp"
    shutil.copytree(_finished_template, dst)
    config = dst / "syn.yaml"
    config.write_text(yaml.safe_dump(experiment(dst / "runs")), encoding="utf-8")
    run = dst / "runs" / "syn"
    saved = run / "config.yaml"
    saved.write_text(
        saved.read_text(encoding="utf-8").replace(str(_finished_template), str(dst)),
        encoding="utf-8",
    )
    return run


@pytest.fixture(scope="session")
def _exported_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model exported by the CLI (``export``) from a small finished run with real tiny
    models: the folder holding ``model.pt`` and ``preprocess.json``."""
    import torch

    from tests.results.conftest import build_fake_run

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = build_fake_run(tmp_path_factory.mktemp("exported"), models=True)
        member = json.loads((run / "pareto.json").read_text(encoding="utf-8"))["members"][0]["id"]
        code = main(["-q", "export", str(run), "-m", member, "--samples", "4"])
    finally:
        torch.set_num_threads(before)
    assert code == 0, "the export of the CLI fixture failed"
    folder = run / "models" / member
    assert (folder / "model.pt").is_file() and (folder / "preprocess.json").is_file()
    return folder
