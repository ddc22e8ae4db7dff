"""Enumeration of the search space's layers (no sampling) and its coverage."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from harmonic_nas.backbones import BackboneSpace
from harmonic_nas.config import ExperimentConfig
from harmonic_nas.hardware.inventory import (
    arch_layer_specs,
    backbone_specs,
    preset_space_specs,
    space_layer_specs,
)
from harmonic_nas.hardware.keys import lut_key
from harmonic_nas.hardware.validate import random_arch


def test_covering_genomes_give_every_layer_of_all_7371_subnets() -> None:
    space = BackboneSpace.from_preset("avmnist")
    assert len(space.covering_genomes()) == 27  # 9 (k, e) x 3 depths
    for shape in ((1, 28, 28), (1, 20, 20)):
        everything = {
            lut_key(s) for g in space.genomes() for s in backbone_specs("avmnist", shape, g, 10)
        }
        assert {lut_key(s) for s in preset_space_specs("avmnist", shape, 10)} == everything
    # the published avmnist tables hold 44 backbone layers for the two input sizes
    both = {
        lut_key(s)
        for sh in ((1, 28, 28), (1, 20, 20))
        for s in preset_space_specs("avmnist", sh, 10)
    }
    assert len(both) == 44


def test_space_specs_cover_random_architectures(small_cfg: ExperimentConfig) -> None:
    specs = space_layer_specs(small_cfg, 10)
    keys = [lut_key(s) for s in specs]
    assert len(keys) == len(set(keys))
    kinds = {s.kind for s in specs}
    assert kinds == {"conv", "mbconv", "linear", "fusion_op", "fusion_reshape", "fusion_head"}
    ops = sorted(s.op for s in specs if s.kind == "fusion_op")
    assert ops == sorted([*small_cfg.fusion.ops, "CellNorm"])
    heads = sorted(s.input_shape for s in specs if s.kind == "fusion_head")
    assert heads == [(8, 4), (16, 4)]  # multiplier 1 and 2 (at most the number of cells)
    rng = np.random.default_rng(0)
    seen: set[str] = set()
    for _ in range(200):
        arch = random_arch(small_cfg, rng, 10)
        for spec in arch_layer_specs(arch):
            assert lut_key(spec) in keys, lut_key(spec)
            seen.add(lut_key(spec))
    reshapes = {k for k in keys if k.startswith("FusionReshape")}
    assert reshapes <= seen  # every enumerated reshape is reachable


def test_space_with_a_maxout_text_modality() -> None:
    from harmonic_nas.config import parse_config

    cfg = parse_config(
        {
            "name": "t",
            "modalities": {
                "image": {"preset": "avmnist", "shape": [1, 28, 28]},
                "text": {"preset": "maxout", "shape": [300], "kind": "text"},
            },
            "fusion": {"C": 16, "L": 4},
        }
    )
    keys = {lut_key(s) for s in space_layer_specs(cfg, 5)}
    assert "MaxoutLayer-input:1_300-in_ch:300-out_ch:128-pieces:4-use_bn:1" in keys
    assert {"FusionReshape-input:1_128-C:16-L:4", "FusionReshape-input:1_256-C:16-L:4"} <= keys
    rng = np.random.default_rng(0)
    for _ in range(50):
        arch = random_arch(cfg, rng, 5)
        assert {lut_key(s) for s in arch_layer_specs(arch)} <= keys


def test_space_with_an_mlp_table_costs_every_fusion_point_width() -> None:
    """An MLP's fusion points are hidden layers whose widths are genes: the reshape of each width
    is in the space (the widest subnet's 128-unit points included)."""
    from harmonic_nas.config import parse_config

    cfg = parse_config(
        {
            "name": "t",
            "modalities": {
                "image": {"preset": "avmnist", "shape": [1, 28, 28]},
                "table": {"preset": "mlp", "shape": [56]},
            },
            "fusion": {"C": 16, "L": 4, "fusion_points": 2},
        }
    )
    keys = {lut_key(s) for s in space_layer_specs(cfg, 10)}
    assert {f"FusionReshape-input:1_{w}-C:16-L:4" for w in (32, 64, 128)} <= keys
    space = BackboneSpace.from_preset("mlp")
    arch = random_arch(cfg, np.random.default_rng(0), 10)
    for genome in space.genomes():  # every subnet, exhaustively (39)
        table = replace(arch.modalities["table"], genome=genome)
        one = replace(arch, modalities={**arch.modalities, "table": table})
        assert {lut_key(s) for s in arch_layer_specs(one)} <= keys, genome
