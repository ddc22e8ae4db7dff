"""The report's fusion diagrams label every input with the backbone feature the model really
reads (issue 25, new user item 3): every candidate of a two- and a three-modality search space
(its ladder, the smallest genome first, and seeded random genomes with random genotypes) is drawn
from the layer inventory's feature shapes, and each drawn input is checked against the built
model's own fusion-point sources."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from harmonic_nas.backbones import BackboneSpace
from harmonic_nas.fusion import ArchSpec, FusionGenotype
from harmonic_nas.fusion.draw import diagram_points, draw_genotype
from harmonic_nas.hardware.inventory import arch_feature_shapes
from harmonic_nas.results import build_model
from harmonic_nas.results._figures import draw_architecture
from harmonic_nas.search.genome import MultimodalGenome, SearchSpace

TWO = {
    "image": {"preset": "avmnist", "shape": [1, 28, 28]},
    "audio": {"preset": "avmnist", "shape": [1, 20, 20]},
}
THREE = {**TWO, "text": {"preset": "maxout", "shape": [12]}}
OPS = ["Sum", "ScaleDotAttn", "LinearGLU", "ConcatFC", "SE1", "CatConvMish"]


def _genotype(rng: np.random.Generator, n_points: int, cells: int, nodes: int) -> dict[str, Any]:
    out = []
    for i in range(cells):
        a, b = rng.choice(n_points + i, size=2, replace=False)
        ns = []
        for j in range(nodes):
            x, y = rng.choice(2 + j, size=2, replace=False)
            ns.append({"op": str(rng.choice(OPS)), "inputs": [int(x), int(y)]})
        out.append({"inputs": [int(a), int(b)], "nodes": ns})
    return {"cells": out, "multiplier": min(2, cells)}


def _candidates(mods: dict[str, Any], seed: int) -> list[ArchSpec]:
    space = SearchSpace.from_ranges(
        {m: BackboneSpace.from_preset(c["preset"]) for m, c in mods.items()}, (1, 4), (1, 4)
    )
    rng = np.random.default_rng(seed)
    genomes = space.ladder(4)
    for _ in range(6):
        genomes.append(
            MultimodalGenome(
                {m: sp.sample(rng) for m, sp in space.backbones.items()},
                int(rng.integers(1, 5)),
                int(rng.integers(1, 5)),
            )
        )
    genomes.append(MultimodalGenome(space.max_genome().backbones, 4, 4))  # the widest
    archs = []
    for genome in genomes:
        base = {
            "modalities": {
                m: {**c, "genome": genome.backbones[m].to_json()} for m, c in mods.items()
            },
            "cells": genome.cells,
            "nodes": genome.nodes,
            "C": 8,
            "L": 4,
            "fusion_points": 2,
            "n_classes": 5,
        }
        no_genotype = ArchSpec.from_json(base)
        n_points = sum(len(p) for p in _point_counts(no_genotype).values())
        genotype = _genotype(rng, n_points, genome.cells, genome.nodes)
        archs.append(no_genotype.with_genotype(FusionGenotype.from_json(genotype)))
    return archs


def _point_counts(arch: ArchSpec) -> dict[str, list[int]]:
    """Fusion-point feature indices per modality, from probing the real extracted backbones."""
    from harmonic_nas.backbones import build_supernet
    from harmonic_nas.fusion import probe_feature_shapes
    from harmonic_nas.fusion.points import fusion_point_indices

    backbones = {
        m: build_supernet((None, ma.shape), ma.preset, arch.n_classes, m).extract(ma.genome)
        for m, ma in arch.modalities.items()
    }
    shapes = probe_feature_shapes(backbones, {m: ma.shape for m, ma in arch.modalities.items()})
    return {m: fusion_point_indices(len(s), arch.fusion_points) for m, s in shapes.items()}


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", data[16:24])
    return int(w), int(h)


@pytest.mark.parametrize(("mods", "seed"), [(TWO, 0), (THREE, 1)], ids=["two", "three"])
def test_every_candidate_is_drawn_with_its_real_feature_sources(
    mods: dict[str, Any], seed: int, tmp_path: Path
) -> None:
    archs = _candidates(mods, seed)
    assert tuple(archs[0].modalities["image"].genome.d) == (
        2,
    )  # the ladder's smallest genome first
    for n, arch in enumerate(archs):
        model = build_model(arch)
        real = model.backbones
        shapes = arch_feature_shapes(arch)  # what the report draws from
        points = diagram_points(arch, shapes)
        # every fusion point the model reads is drawn as that modality's feature, with its shape
        names = model.modality_names
        for g, (mi, k) in zip(model.fusion.used_points, model.refs, strict=True):
            p = points[g]
            assert (p.modality, p.feature) == (names[mi], k), (n, g)
            assert p.used and p.label.startswith(f"{names[mi]} ")
            with torch.no_grad():
                x = torch.zeros((1, *arch.modalities[names[mi]].shape))
                feature = real[mi](x)[0][k]
            assert tuple(feature.shape[1:]) == p.shape
        assert {p.index for p in points if p.used} == set(model.fusion.used_points)
        # the report's drawing succeeds for every candidate, the smallest genome included
        path = tmp_path / f"arch_{n}.png"
        assert draw_architecture(arch.to_json(), path) is None, n
        w, h = _png_size(path)
        assert w > 200 and h > 150


def test_a_four_by_four_diagram_is_not_clipped(tmp_path: Path) -> None:
    """Every box of a 4-cell x 4-node genotype over few points lies inside the canvas."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    seen: list[Figure] = []
    original = Figure.savefig

    def spy(self: Figure, *args: Any, **kwargs: Any) -> None:
        seen.append(self)
        original(self, *args, **kwargs)

    arch = next(a for a in _candidates(TWO, 3) if a.cells == 4 and a.nodes == 4)
    shapes = arch_feature_shapes(arch)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Figure, "savefig", spy)
        draw_genotype(arch, tmp_path / "g.png", shapes)
    (fig,) = seen
    ax = fig.axes[0]
    y0, y1 = ax.get_ylim()
    x0, x1 = ax.get_xlim()
    for patch in ax.patches:
        b = patch.get_bbox()
        assert x0 <= b.x0 and b.x1 <= x1 and y0 <= b.y0 and b.y1 <= y1, b
