"""The fusion modes and the fusion split on a tiny real av-digits run (pretrain -> search ->
saved models -> ONNX): a late candidate is exactly ``late-fusion-bayes`` of its backbones (score
and LUT cost), every mode's saved model reproduces its recorded val score, and with
``fusion.fusion_split`` the supernets never see the fusion network's training samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from harmonic_nas.cli import main
from harmonic_nas.utils.io import read_json

pytestmark = pytest.mark.slow


def _config(root: Path, name: str, modes: list[str], fusion_split: float) -> dict[str, Any]:
    return {
        "name": name,
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
        "fusion": {
            "C": 8,
            "L": 4,
            "epochs": 1,
            "retrain_epochs": 1,
            "batch_size": 32,
            "fusion_split": fusion_split,
        },
        "search": {
            "population": 3,
            "generations": 2,
            "cells": [1, 2],
            "nodes": [1, 2],
            "fusion_modes": modes,
        },
    }


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("modes")
    data = _config(root, "tiny-modes", ["late", "network", "network+late"], 0.25)
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert main(["pretrain", str(path)]) == 0
    return path, root / "runs" / "tiny-modes"


@pytest.fixture(autouse=True)
def _real_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARMONIC_NAS_SEARCH_PROBLEM", raising=False)
    torch.set_num_threads(1)


def test_the_fusion_split_is_carved_before_pretraining(tiny_run: tuple[Path, Path]) -> None:
    from harmonic_nas.config import load_config
    from harmonic_nas.data import load_dataset
    from harmonic_nas.data.fusion_split import fusion_dataset
    from harmonic_nas.pretrain.checkpoint import pretrain_hash

    path, _ = tiny_run
    cfg = load_config(path)
    ds = load_dataset(cfg)
    train, fus = ds.split("train"), ds.split("fusion")
    assert len(train) + len(fus) == 80 and len(fus) == 20  # 2 of each class's 8
    assert torch.bincount(fus.labels, minlength=10).tolist() == [2] * 10
    assert ds.meta["fusion_split"] == {"fraction": 0.25, "train": 60, "fusion": 20}
    # no sample in both (images are distinct draws)
    a = train.inputs["image"].flatten(1)
    b = fus.inputs["image"].flatten(1)
    assert not any(bool((a == row).all(1).any()) for row in b)
    assert fusion_dataset(ds).split("train") is fus and "fusion" not in fusion_dataset(ds).splits
    # the supernets' checkpoints belong to this split: without it the hash differs
    off = cfg.model_copy(update={"fusion": cfg.fusion.model_copy(update={"fusion_split": 0.0})})
    assert pretrain_hash(cfg, "image") != pretrain_hash(off, "image")
    assert "fusion" not in load_dataset(off).splits


def test_a_late_candidate_is_late_fusion_bayes_of_its_backbones(
    tiny_run: tuple[Path, Path], tmp_path: Path
) -> None:
    from harmonic_nas.config import load_config
    from harmonic_nas.search.baselines import late_fusion_rows
    from harmonic_nas.search.evaluator import HarmonicProblem

    path, _ = tiny_run
    prob = HarmonicProblem(load_config(path))
    top = prob.space.max_genome()
    late = type(top)(top.backbones, top.cells, top.nodes, "late")
    ev = prob.evaluate(late, seed=0)
    row = next(r for r in late_fusion_rows(prob) if r["name"] == "late-fusion-bayes")
    assert ev.val_metric == pytest.approx(row["val_metric"], abs=1e-12)
    # the same layers as the baseline row (its raw LUT sum, and the same sum through the LUT's
    # calibration like every candidate's total)
    cost = prob.cost_model.cost_arch(prob.arch_spec(late))
    assert cost.raw_total.latency_ms == pytest.approx(row["latency_raw_ms"], rel=1e-12)
    assert cost.total.latency_ms == pytest.approx(row["latency_ms"], rel=1e-12)
    assert ev.latency_ms == pytest.approx(cost.total.latency_ms, rel=1e-12)
    assert ev.genotype is None and ev.extra["fusion_mode"] == "late"
    assert prob.lower_bound(late).latency_ms == pytest.approx(ev.latency_ms, rel=1e-12)
    assert ev.params == row["params"]  # every backbone layer and its own classifier
    # the late model exports: ONNX Runtime gives its logits
    ort = pytest.importorskip("onnxruntime")
    model = prob.late_model(late)
    val = prob.dataset.split("val")
    x = tuple(val.inputs[m][:5] for m in prob.cfg.modalities)
    onnx_path = tmp_path / "late.onnx"
    torch.onnx.export(model, x, str(onnx_path), input_names=list(prob.cfg.modalities), dynamo=False)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {k: v.numpy() for k, v in zip(prob.cfg.modalities, x, strict=True)})
    with torch.no_grad():
        np.testing.assert_allclose(out[0], model(*x).numpy(), rtol=1e-4, atol=1e-4)
    # a network without the late skip costs at most what the same genotype costs with it
    net = type(top)(top.backbones, 1, 1, "network")
    ev_net = prob.evaluate(net, seed=0)
    arch = prob.arch_spec(net)
    assert not arch.late_skip and arch.fusion_mode == "network"
    from harmonic_nas.fusion import FusionGenotype

    geno = FusionGenotype.from_json(ev_net.genotype)
    with_skip = prob.arch_spec(type(top)(top.backbones, 1, 1, "network+late"), geno)
    cm = prob.cost_model
    assert ev_net.latency_ms <= cm.cost_arch(with_skip).total.latency_ms
    assert ev_net.latency_ms == cm.cost_arch(prob.arch_spec(net, geno)).total.latency_ms


def test_search_saves_every_mode_as_a_model_that_reproduces_its_score(
    tiny_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from harmonic_nas.config import load_config
    from harmonic_nas.data import load_dataset
    from harmonic_nas.fusion import metric
    from harmonic_nas.results._export import load_model

    path, run = tiny_run
    assert main(["search", str(path)]) == 0, capsys.readouterr().err
    cands = read_json(run / "candidates.json", schema_version=1)["candidates"]
    done = [c for c in cands if c["state"] == "COMPLETE"]
    assert {c["arch"]["fusion_mode"] for c in done} >= {"late"}
    pareto = read_json(run / "pareto.json", schema_version=1)
    val = load_dataset(load_config(path)).split("val")
    for m in pareto["members"]:
        model, arch = load_model(run, m["id"])
        assert arch.to_json() == m["arch"] and arch.fusion_mode == m["arch"]["fusion_mode"]
        x = tuple(val.inputs[name] for name in arch.modalities)
        with torch.no_grad():
            logits = model(*x)
        assert metric(logits, val.labels, "classification") == pytest.approx(
            m["val_metric"], abs=1e-9
        )


def test_a_late_only_search_reports_and_exports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``search.fusion_modes: [late]``: every member is a late fusion (no fusion training); the
    report and an ONNX export handle them."""
    path = tmp_path / "late.yaml"
    path.write_text(yaml.safe_dump(_config(tmp_path, "late-only", ["late"], 0.0)), "utf-8")
    run = tmp_path / "runs" / "late-only"
    assert main(["pretrain", str(path)]) == 0
    assert main(["search", str(path)]) == 0, capsys.readouterr().err
    members = read_json(run / "pareto.json", schema_version=1)["members"]
    assert members and all(m["arch"]["fusion_mode"] == "late" for m in members)
    assert all(m["arch"]["genotype"] is None for m in members)
    assert main(["report", str(run)]) == 0, capsys.readouterr().err
    mid = members[0]["id"]
    assert main(["export", str(run), "-m", mid, "-f", "onnx"]) == 0, capsys.readouterr().err
    assert any(p.suffix == ".onnx" for p in (run / "models" / mid).iterdir())
