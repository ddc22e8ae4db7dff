"""Golden snapshots: same seed, same result. They pin behaviour across refactors.

Each snapshot is a JSON file in ``tests/golden/``. A deliberate behaviour change regenerates them
with ``HARMONIC_NAS_UPDATE_GOLDEN=1 pytest tests/test_golden.py`` (review the diff before
committing); a refactor must leave them unchanged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from harmonic_nas.backbones import BackboneGenome
from harmonic_nas.config import parse_config
from harmonic_nas.fusion import ArchSpec, CellGenotype, FusionGenotype, ModalityArch, NodeGenotype
from harmonic_nas.hardware.cost import CostModel
from harmonic_nas.hardware.inventory import space_layer_specs
from harmonic_nas.hardware.keys import lut_key
from harmonic_nas.hardware.lut import LUT, DeviceInfo, LUTEntry
from harmonic_nas.search import run_search
from harmonic_nas.testing.synthetic_problem import SyntheticFactory
from harmonic_nas.utils.io import read_json
from tests.fusion.conftest import make_backbones, make_dataset, small_fcfg

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("HARMONIC_NAS_UPDATE_GOLDEN") == "1"
N_CLASSES = 10


def check(name: str, value: Any) -> None:
    """Compare ``value`` (JSON-able, floats rounded by the caller) with the stored snapshot."""
    path = GOLDEN / f"{name}.json"
    value = json.loads(json.dumps(value))
    if UPDATE:
        path.write_text(json.dumps(value, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert value == expected, f"{path.name} changed (a refactor must not change it)"


def _config(tmp_path: Path) -> Any:
    return parse_config(
        {
            "name": "golden",
            "run_dir": str(tmp_path / "runs"),
            "seed": 7,
            "modalities": {
                "image": {"preset": "avmnist", "shape": [1, 28, 28]},
                "audio": {"preset": "avmnist", "shape": [1, 20, 20]},
            },
            "fusion": {"C": 8, "L": 4, "cells": 1, "nodes": 1},
            "search": {"population": 4, "generations": 2, "cells": [1, 2], "nodes": [1, 2]},
        }
    )


def _arch() -> ArchSpec:
    g = FusionGenotype(
        (
            CellGenotype((3, 0), (NodeGenotype("ConcatFC", (0, 1)), NodeGenotype("Sum", (0, 0)))),
            CellGenotype((10, 6), (NodeGenotype("SE1", (0, 1)), NodeGenotype("Sum", (2, 0)))),
        ),
        1,
    )
    return ArchSpec(
        modalities={
            "image": ModalityArch(
                "avmnist", (1, 28, 28), BackboneGenome((7, 3, 5, 3), (3, 6, 4, 4), (3,))
            ),
            "audio": ModalityArch("avmnist", (1, 20, 20), BackboneGenome((3,) * 4, (6,) * 4, (4,))),
        },
        cells=2,
        nodes=2,
        genotype=g,
        C=8,
        L=4,
        n_classes=N_CLASSES,
    )


def test_lut_keys_of_the_avmnist_space(tmp_path: Path) -> None:
    keys = sorted({lut_key(s) for s in space_layer_specs(_config(tmp_path), N_CLASSES)})
    check("avmnist_space_lut_keys", keys)


def test_cost_breakdown_of_a_fixed_architecture(tmp_path: Path) -> None:
    # every key costs a distinct amount (its rank in the sorted key list), so a layer counted
    # twice, dropped or swapped for another changes the figures
    keys = sorted({lut_key(s) for s in space_layer_specs(_config(tmp_path), N_CLASSES)})
    entries = {k: LUTEntry.point(1.0 + i, 0.5 + 2 * i) for i, k in enumerate(keys)}
    for backend in ("onnxruntime", "torch"):
        lut = LUT(DeviceInfo("host", backend=backend, threads=1), "model:golden", entries)
        cost = CostModel(lut).cost_arch(_arch())
        check(f"cost_breakdown_{backend}", cost.to_json())


def test_fusion_search_genotype() -> None:
    from harmonic_nas.fusion import compute_feature_cache, search_fusion

    cpu = torch.device("cpu")
    torch.manual_seed(0)
    cache = compute_feature_cache(
        make_backbones(),
        make_dataset(),
        L=4,
        fusion_points=4,
        bn_recalib_batches=2,
        batch_size=64,
        device=cpu,
    )
    res = search_fusion(
        cache, small_fcfg(epochs=3, retrain_epochs=2), cells=2, nodes=2, seed=3, device=cpu
    )
    check(
        "fusion_search",
        {
            "genotype": res.genotype.to_json(),
            "search_metric": round(float(res.search_metric), 6),
            "best_epoch": res.best_epoch,
        },
    )


def test_synthetic_problem_search_front(tmp_path: Path) -> None:
    s = run_search(_config(tmp_path), problem=SyntheticFactory())
    pareto = read_json(s.pareto_path, schema_version=1)
    front = sorted(
        (m["trial"], round(m["val_metric"], 9), round(m["latency_ms"], 9), m["arch"]["modalities"])
        for m in pareto["members"]
    )
    check("synthetic_search_front", [list(f) for f in front])
