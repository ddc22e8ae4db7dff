"""The Python API of the pipeline (``harmonic_nas.pipeline``, the names of ``harmonic_nas``):
the same decide-first checks as ``harmonic-nas run``, every stage in order, the inner tier alone."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import harmonic_nas
from harmonic_nas import pipeline
from harmonic_nas.config import ExperimentConfig, parse_config, save_resolved
from harmonic_nas.errors import ConfigError
from harmonic_nas.preflight import PreflightError
from harmonic_nas.utils.progress import ProgressFn, no_progress
from tests.tree import tree

TINY = {
    "train_per_class": 4,
    "val_per_class": 2,
    "test_per_class": 3,
    "train_speakers": 4,
    "val_speakers": 2,
    "test_speakers": 2,
}


def _cfg(tmp_path: Path, **search: Any) -> ExperimentConfig:
    return parse_config(
        {
            "name": "api",
            "run_dir": str(tmp_path / "runs"),
            "seed": 0,
            "dataset": {"name": "av-digits", "options": TINY},
            "modalities": {
                "image": {"preset": "avmnist", "shape": [1, 28, 28]},
                "audio": {"preset": "avmnist", "shape": [1, 20, 20]},
            },
            "device": {
                "name": "host",
                "backend": "onnxruntime",
                "threads": 1,
                "warmup": 1,
                "repeats": 3,
            },
            "pretrain": {"epochs": 1, "batch_size": 32, "bn_recalib_batches": 1},
            "fusion": {
                "C": 8,
                "L": 4,
                "epochs": 1,
                "retrain_epochs": 1,
                "batch_size": 32,
                "fusion_points": 2,
            },
            "search": {
                "population": 2,
                "generations": 1,
                "cells": [1, 2],
                "nodes": [1, 2],
                **search,
            },
        }
    )


class Recorder(pipeline.PipelineHooks):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.values: dict[str, Any] = {}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[ProgressFn]:
        self.events.append(("stage", name))
        yield no_progress

    def done(self, name: str, value: Any) -> None:
        self.events.append(("done", name))
        self.values[name] = value


def test_the_package_names_are_the_pipeline_functions_and_load_lazily() -> None:
    assert harmonic_nas.run is pipeline.run
    assert harmonic_nas.run_fusion is pipeline.run_fusion
    assert {"run", "run_fusion", "load_config"} <= set(dir(harmonic_nas))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = harmonic_nas.nope  # type: ignore[attr-defined]
    probe = "import sys, harmonic_nas; print('torch' in sys.modules, 'pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_run_refuses_a_changed_config_before_any_stage_or_write(tmp_path: Path) -> None:
    first = _cfg(tmp_path)
    save_resolved(first)
    before = tree(first.run_path)
    hooks = Recorder()
    with pytest.raises(ConfigError, match=r"another config \(it differs in seed\)"):
        pipeline.run(first.model_copy(update={"seed": 1}), hooks=hooks)
    assert hooks.events == []  # not even the estimate
    assert tree(first.run_path) == before


def test_run_refuses_a_bad_experiment_before_the_run_directory_exists(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    modalities = {**cfg.modalities}
    modalities["image"] = modalities["image"].model_copy(update={"shape": (1, 9, 9)})
    bad = cfg.model_copy(update={"modalities": modalities})
    with pytest.raises(PreflightError, match=r"modality 'image' has shape \[1, 28, 28\]"):
        pipeline.run(bad, hooks=Recorder())
    assert not bad.run_path.exists()


@pytest.mark.slow
def test_run_every_stage_in_order_then_the_inner_tier_alone(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    hooks = Recorder()
    result = pipeline.run(cfg, hooks=hooks)
    expected = [("done", "estimate")]
    for name in pipeline.STAGES:
        expected += [("stage", name), ("done", name)]
    assert hooks.events == expected
    pareto = json.loads((cfg.run_path / "pareto.json").read_text())
    best = max(pareto["members"], key=lambda m: (m["val_metric"], -m["latency_ms"]))
    assert best["id"] == pareto["best"]["id"]
    # the exported model is the recommended member: the fastest within the val standard error
    # of the best (issue 25, new user item 5); the result carries the Pareto set
    bar = best["val_metric"] - pareto["recommended"]["val_se"]
    near = [m for m in pareto["members"] if m["val_metric"] >= bar - 1e-12]
    fastest = min(near, key=lambda m: (m["latency_ms"], m["energy_mj"], -m["val_metric"]))
    assert result.model_id == fastest["id"] == pareto["recommended"]["id"]
    assert pareto["val_size"] == len(result.dataset.split("val"))
    assert [m.id for m in result.pareto.members] == [m["id"] for m in pareto["members"]]
    assert result.export.model_id == result.model_id
    assert result.report_path == cfg.run_path / "report.html" and result.report_path.is_file()
    assert result.export.model_path.is_file()
    assert [r.status for r in result.pretrain] == ["trained", "trained"]

    again = pipeline.run(cfg, hooks=Recorder())  # every stage current: nothing retrained
    assert [r.status for r in again.pretrain] == ["skipped", "skipped"]
    assert json.loads((cfg.run_path / "pareto.json").read_text()) == pareto

    out = tmp_path / "fusion"
    fused = pipeline.run_fusion(cfg, out=out)
    assert fused.paths and all(p.is_file() and p.parent == out for p in fused.paths.values())
    assert fused.device == "host" and fused.cost.total.latency_ms > 0
    assert 0.0 <= fused.inner.result.val_metric <= 1.0
