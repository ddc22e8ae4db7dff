"""End to end on a tiny av-digits run: pretrain -> search (real evaluator) -> status -> baselines.

The saved Pareto models are the very models the search scored: rebuilt from models/<id>/, they
reproduce the recorded validation metric.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from harmonic_nas.cli import main
from harmonic_nas.utils.io import read_json

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("e2e")
    data = {
        "name": "tiny",
        "run_dir": str(root / "runs"),
        "seed": 0,
        "dataset": {
            "name": "av-digits",
            "options": {
                "train_per_class": 8,
                "val_per_class": 4,
                "test_per_class": 4,
                "train_speakers": 4,
                "val_speakers": 2,
                "test_speakers": 2,
            },
        },
        "modalities": {
            "image": {"preset": "avmnist", "shape": [1, 28, 28]},
            "audio": {"preset": "avmnist", "shape": [1, 20, 20]},
        },
        "device": {"name": "host", "threads": 1, "warmup": 1, "repeats": 2},
        "pretrain": {"epochs": 1, "batch_size": 32, "bn_recalib_batches": 1, "n_random": 0},
        "fusion": {"C": 8, "L": 4, "epochs": 1, "retrain_epochs": 1, "batch_size": 32},
        "search": {"population": 2, "generations": 2, "cells": [1, 2], "nodes": [1, 2]},
    }
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert main(["pretrain", str(path)]) == 0
    return path, root / "runs" / "tiny"


@pytest.fixture(autouse=True)
def _real_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARMONIC_NAS_SEARCH_PROBLEM", raising=False)
    torch.set_num_threads(1)


def test_search_real_evaluator(
    tiny_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from harmonic_nas.config import load_config
    from harmonic_nas.data import load_dataset
    from harmonic_nas.fusion import ArchSpec, metric
    from harmonic_nas.results._export import load_model

    path, run = tiny_run
    assert main(["search", str(path)]) == 0, capsys.readouterr().err
    cands = read_json(run / "candidates.json", schema_version=1)["candidates"]
    done = [c for c in cands if c["state"] == "COMPLETE"]
    assert len(done) == 4
    for c in done:
        assert 0.0 <= c["val_metric"] <= 1.0 and c["latency_ms"] > 0 and c["energy_mj"] > 0
        arch = ArchSpec.from_json(c["arch"])
        assert arch.genotype is not None and arch.genotype.n_cells == arch.cells
    pareto = read_json(run / "pareto.json", schema_version=1)
    assert pareto["members"] and pareto["metric"] == "accuracy" and pareto["device"] == "host"
    cfg = load_config(path)
    val = load_dataset(cfg).split("val")
    for m in pareto["members"]:
        assert 0.0 <= m["test_metric"] <= 1.0
        assert m["latency_paper_ms"] is not None
        model, arch = load_model(run, m["id"])
        assert arch.to_json() == m["arch"]
        with torch.no_grad():
            logits = model(*(val.inputs[name] for name in arch.modalities))
        # the saved model is the one the search scored (same seed, same retraining)
        assert metric(logits, val.labels, "classification") == pytest.approx(
            m["val_metric"], abs=1e-9
        )
    hv = read_json(run / "hypervolume.json", schema_version=1)
    assert [g["n_complete"] for g in hv["generations"]] == [2, 4]
    # learning curves for optuna-dashboard: one intermediate value per fusion epoch (1 search +
    # 1 retrain epoch here), the last the retrained net's val metric (issue 25, new user item 6)
    import optuna

    study = optuna.load_study(study_name=None, storage=f"sqlite:///{run / 'study.db'}")
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) == 4
    for t in complete:
        assert sorted(t.intermediate_values) == [0, 1]
        assert t.intermediate_values[1] == pytest.approx(t.values[0], abs=1e-9)
    assert main(["status", str(run)]) == 0
    assert "candidates 4/4 complete" in capsys.readouterr().out


def test_screen_is_late_fusion_of_the_candidates_subnets(tiny_run: tuple[Path, Path]) -> None:
    """search.fidelity: screen scores a candidate without fusion training: on the max genome its
    val metric is exactly the late-fusion-avg baseline's, its cost the LUT lower bound."""
    from harmonic_nas.config import load_config
    from harmonic_nas.search.baselines import late_fusion_rows
    from harmonic_nas.search.evaluator import HarmonicProblem
    from harmonic_nas.search.problem import SCREEN_FIDELITY

    path, _ = tiny_run
    prob = HarmonicProblem(load_config(path))
    genome = prob.space.max_genome()
    screen = prob.evaluate(genome, seed=0, fidelity=SCREEN_FIDELITY)
    late = next(r for r in late_fusion_rows(prob) if r["name"] == "late-fusion-avg")
    assert screen.val_metric == pytest.approx(late["val_metric"], abs=1e-12)
    bound = prob.lower_bound(genome)
    assert (screen.latency_ms, screen.energy_mj) == (bound.latency_ms, bound.energy_mj)
    assert screen.genotype is None and "screen" in screen.extra
    assert screen.params == late["params"]  # both subnets with their own classifiers
    smallest = prob.evaluate(prob.space.min_genome(), seed=0, fidelity=SCREEN_FIDELITY)
    # sizes, not timings: the tiny run's LUT is profiled here, and timing is noisy under load
    assert smallest.params < screen.params and 0.0 <= smallest.val_metric <= 1.0
    assert smallest.latency_ms == prob.lower_bound(prob.space.min_genome()).latency_ms


def test_baselines(tiny_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    path, run = tiny_run
    assert main(["baselines", str(path)]) == 0, capsys.readouterr().err
    data = read_json(run / "baselines.json", schema_version=1)
    names = [b["name"] for b in data["baselines"]]
    assert names[:4] == ["bm-nas-max", "late-fusion-avg", "late-fusion-bayes", "late-fusion-linear"]
    assert sorted(names[4:]) == ["single:audio", "single:image"]
    by = {b["name"]: b for b in data["baselines"]}
    for b in data["baselines"]:
        assert 0.0 <= b["val_metric"] <= 1.0 and 0.0 <= b["test_metric"] <= 1.0
        assert b["latency_ms"] > 0 and b["params"] > 0
    # late fusion runs both single-modality networks
    assert (
        by["late-fusion-avg"]["params"]
        == by["single:image"]["params"] + by["single:audio"]["params"]
    )
    # the linear late fusion drops both backbone classifiers for one linear layer over the
    # concatenated final representations (80 + 80 features of the avmnist presets)
    n_classes = 10
    assert (
        by["late-fusion-linear"]["params"]
        == by["late-fusion-avg"]["params"] - 2 * (80 + 1) * n_classes + (160 + 1) * n_classes
    )
    assert not by["late-fusion-linear"]["uncosted_keys"]
    assert (run / "baselines" / "bm-nas-max" / "weights.pt").is_file()
    # current artifact: a rerun is skipped
    mtime = (run / "baselines.json").stat().st_mtime_ns
    assert main(["baselines", str(path)]) == 0
    assert (run / "baselines.json").stat().st_mtime_ns == mtime


def test_a_search_refused_for_a_missing_supernet_changes_nothing(
    tiny_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 25 (red-team class 5): with ``supernets/audio.pt`` gone, ``search`` with another
    population is refused before the study's budget is raised or a trial fails."""
    from tests.tree import tree

    path, run = tiny_run
    kept = run.parent / "audio.pt.kept"
    (run / "supernets" / "audio.pt").rename(kept)
    try:
        before = tree(run)
        code = main(["search", str(path), "-o", "search.population=4"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1, err
        assert err.startswith("error: no pretrained supernet for modality 'audio'")
        assert tree(run) == before
    finally:
        kept.rename(run / "supernets" / "audio.pt")
