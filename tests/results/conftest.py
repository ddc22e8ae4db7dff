"""A small, consistent, finished run directory written the way the contract fixes its artifacts.

The candidates, the Pareto set (their true non-dominated subset), the hypervolume history, the
baselines, the supernet curves and a cost-model validation record are synthetic but coherent. With
``models=True`` each Pareto member also gets a real tiny :class:`MultimodalNet` (random weights)
in ``models/<id>/{arch.json, weights.pt}``, on a tiny ``av-digits`` dataset.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from harmonic_nas.config import parse_config, save_resolved
from harmonic_nas.fusion import ArchSpec, MultimodalNet
from harmonic_nas.hardware.validation_record import ValidationRecord, ValidationSample
from harmonic_nas.results import build_model
from harmonic_nas.utils.io import atomic_torch_save

MODALITIES = {
    "image": {"preset": "avmnist", "shape": [1, 28, 28]},
    "audio": {"preset": "avmnist", "shape": [1, 20, 20]},
}
N_CLASSES = 10
TINY_AV_DIGITS = {
    "train_per_class": 2,
    "val_per_class": 2,
    "test_per_class": 3,
    "train_speakers": 4,
    "val_speakers": 2,
    "test_speakers": 2,
}
C, L, POINTS = 8, 4, 2


def _config(root: Path) -> dict[str, Any]:
    return {
        "name": "fake",
        "run_dir": str(root),
        "seed": 0,
        "dataset": {"name": "av-digits", "options": TINY_AV_DIGITS},
        "modalities": MODALITIES,
        "fusion": {"C": C, "L": L, "fusion_points": POINTS, "epochs": 1, "retrain_epochs": 1},
        "search": {"population": 4, "generations": 3},
    }


def _genome(rng: np.random.Generator) -> dict[str, list[int]]:
    d = int(rng.choice([2, 3, 4]))
    ks = [int(rng.choice([3, 5, 7])) if j < d else 0 for j in range(4)]
    e = [int(rng.choice([3, 4, 6])) if j < d else 0 for j in range(4)]
    return {"ks": ks, "e": e, "d": [d]}


def _genotype(rng: np.random.Generator, cells: int, nodes: int) -> dict[str, Any]:
    n_points = POINTS * len(MODALITIES)
    ops = ["Sum", "ScaleDotAttn", "LinearGLU", "ConcatFC", "SE1", "CatConvMish"]
    out = []
    for i in range(cells):
        a, b = rng.choice(n_points + i, size=2, replace=False)
        ns = []
        for j in range(nodes):
            x, y = rng.choice(2 + j, size=2, replace=False)
            ns.append({"op": str(rng.choice(ops)), "inputs": [int(x), int(y)]})
        out.append({"inputs": [int(a), int(b)], "nodes": ns})
    return {"cells": out, "multiplier": min(2, cells)}


def _arch(rng: np.random.Generator) -> dict[str, Any]:
    cells, nodes = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    return {
        "schema_version": 1,
        "modalities": {
            name: {"preset": m["preset"], "shape": m["shape"], "genome": _genome(rng)}
            for name, m in MODALITIES.items()
        },
        "cells": cells,
        "nodes": nodes,
        "genotype": _genotype(rng, cells, nodes),
        "C": C,
        "L": L,
        "fusion_points": POINTS,
        "n_classes": N_CLASSES,
    }


def _non_dominated(points: list[tuple[float, float, float]]) -> list[int]:
    """Indices of points not dominated on (val max, latency min, energy min)."""

    def dominates(a: tuple[float, float, float], b: tuple[float, float, float]) -> bool:
        no_worse = a[0] >= b[0] and a[1] <= b[1] and a[2] <= b[2]
        better = a[0] > b[0] or a[1] < b[1] or a[2] < b[2]
        return no_worse and better

    return [
        i
        for i, p in enumerate(points)
        if not any(dominates(q, p) for j, q in enumerate(points) if j != i)
    ]


def _write(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2))


def build_fake_run(root: Path, *, models: bool = False) -> Path:
    """Write a finished run under ``root/fake`` and return its path."""
    cfg = parse_config(_config(root))
    save_resolved(cfg)
    run = cfg.run_path
    rng = np.random.default_rng(7)

    candidates: list[dict[str, Any]] = []
    for trial in range(12):
        arch = _arch(rng)
        lat = float(rng.uniform(0.4, 2.5))
        energy = lat * float(rng.uniform(11.0, 13.0))
        val = float(np.clip(0.55 + 0.15 * lat + rng.normal(0, 0.08), 0, 1))
        cand = {
            "trial": trial,
            "state": "COMPLETE",
            "generation": trial // 4,
            "arch": arch,
            "val_metric": round(val, 4),
            "latency_ms": round(lat, 4),
            "energy_mj": round(energy, 4),
            "params": int(rng.integers(20_000, 200_000)),
            "fail_reason": None,
        }
        if trial == 5:
            cand.update(
                state="FAIL",
                val_metric=None,
                latency_ms=None,
                energy_mj=None,
                params=None,
                fail_reason="latency 9.1 ms over the 5 ms budget",
            )
        candidates.append(cand)
    _write(
        run / "candidates.json",
        {
            "schema_version": 1,
            "objectives": ["val_metric", "latency_ms", "energy_mj"],
            "candidates": candidates,
        },
    )

    complete = [c for c in candidates if c["state"] == "COMPLETE"]
    front = _non_dominated([(c["val_metric"], c["latency_ms"], c["energy_mj"]) for c in complete])
    members = []
    for i in front:
        c = complete[i]
        members.append(
            {
                "id": f"t{c['trial']:04d}",
                "trial": c["trial"],
                "arch": c["arch"],
                "val_metric": c["val_metric"],
                "test_metric": round(c["val_metric"] - 0.01, 4),
                "test_metric_std": 0.004,
                "latency_ms": c["latency_ms"],
                "energy_mj": c["energy_mj"],
                "latency_paper_ms": round(c["latency_ms"] * 0.9, 4),
                "energy_paper_mj": round(c["energy_mj"] * 0.9, 4),
                "params": c["params"],
            }
        )
    _write(
        run / "pareto.json",
        {
            "schema_version": 1,
            "run": "fake",
            "device": "host",
            "task": "classification",
            "metric": "accuracy",
            "members": members,
        },
    )
    _write(
        run / "hypervolume.json",
        {
            "schema_version": 1,
            "reference_point": {"val_metric": 0.0, "latency_ms": 3.0, "energy_mj": 45.0},
            "generations": [
                {"generation": g, "hypervolume": 0.3 + 0.1 * g, "n_complete": 4 * (g + 1) - (g > 0)}
                for g in range(3)
            ],
        },
    )
    _write(
        run / "baselines.json",
        {
            "schema_version": 1,
            "baselines": [
                {
                    "name": "late fusion (max)",
                    "val_metric": 0.8,
                    "test_metric": 0.79,
                    "latency_ms": 2.2,
                    "energy_mj": 30.0,
                    "params": 250_000,
                },
                {
                    "name": "random search",
                    "val_metric": 0.7,
                    "test_metric": 0.69,
                    "latency_ms": 1.2,
                    "energy_mj": 14.0,
                    "params": 90_000,
                },
            ],
        },
    )
    for k, name in enumerate(MODALITIES):
        _write(
            run / "supernets" / f"{name}.json",
            {
                "schema_version": 1,
                "modality": name,
                "preset": "avmnist",
                "config_hash": "0" * 16,
                "epochs": [
                    {
                        "epoch": ep,
                        "loss": (2.3 - 0.4 * k) / ep,
                        "max_acc": 0.5 + 0.05 * ep - 0.1 * k,
                        "min_acc": 0.4 + 0.05 * ep - 0.1 * k,
                        "lr": 1e-3,
                        "time_s": 1.0,
                    }
                    for ep in range(1, 7)
                ],
                "final": {"max_acc": 0.8, "min_acc": 0.7},
            },
        )
    samples = []
    for i in range(10):
        meas = float(rng.uniform(0.5, 3.0))
        samples.append(
            ValidationSample(
                predicted_ms=meas * float(rng.uniform(0.85, 1.15)),
                measured_ms=meas,
                arch=members[i % len(members)]["arch"],
                predicted_keys=("fusion.head",) if i == 0 else (),
            )
        )
    ValidationRecord(
        device="host",
        backend="torch",
        threads=1,
        seed=0,
        summary={"samples": 10, "mape_pct": 7.5, "kendall_tau": 0.82, "speed_ratio": None},
        samples=tuple(samples),
    ).save(run / "luts" / "host.validation.json")
    if models:
        _write_models(run, members)
    return run


def build_random_model(arch: ArchSpec, seed: int) -> MultimodalNet:
    """A model of ``arch`` with seeded random weights and BatchNorm statistics (eval mode)."""
    g = torch.Generator().manual_seed(seed)
    model = build_model(arch)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                assert m.running_var is not None
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model.eval()


def _write_models(run: Path, members: list[dict[str, Any]]) -> None:

    for i, m in enumerate(members):
        arch = ArchSpec.from_json(m["arch"])
        model = build_random_model(arch, seed=i)
        d = run / "models" / m["id"]
        arch.save(d / "arch.json")
        atomic_torch_save(d / "weights.pt", dict(model.state_dict()))


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny tensors on a shared 2-core machine: one torch thread is far faster (no spinning)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def fake_run(tmp_path: Path) -> Path:
    """A finished run without models (cheap)."""
    return build_fake_run(tmp_path)


@pytest.fixture(scope="module")
def _model_run_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield build_fake_run(tmp_path_factory.mktemp("model_run"), models=True)
    torch.set_num_threads(before)


@pytest.fixture
def model_run(_model_run_template: Path, tmp_path: Path) -> Path:
    """A finished run with real tiny models (built once per module, copied per test)."""
    dst = tmp_path / "run"
    shutil.copytree(_model_run_template, dst)
    return dst
