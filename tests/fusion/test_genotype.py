"""Genotype and ARCH.json: JSON round trips, validation as one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harmonic_nas.backbones.genome import BackboneGenome
from harmonic_nas.errors import GenomeError, HarmonicError
from harmonic_nas.fusion import (
    ArchSpec,
    CellGenotype,
    FusionGenotype,
    ModalityArch,
    NodeGenotype,
)


def geno(cells: int = 2, nodes: int = 2, mult: int = 2, op: str = "ConcatFC") -> FusionGenotype:
    return FusionGenotype(
        tuple(
            CellGenotype((0, 1 + i), tuple(NodeGenotype(op, (0, 1 + j)) for j in range(nodes)))
            for i in range(cells)
        ),
        mult,
    )


def arch(**kw: object) -> ArchSpec:
    base: dict[str, object] = dict(
        modalities={
            "image": ModalityArch(
                "avmnist", (1, 28, 28), BackboneGenome((7, 5, 3, 3), (6, 4, 3, 3), (4,))
            ),
            "text": ModalityArch("maxout", (300,), BackboneGenome()),
        },
        cells=2,
        nodes=2,
        genotype=geno(),
        C=32,
        L=4,
    )
    base.update(kw)
    return ArchSpec(**base)  # type: ignore[arg-type]


def test_genotype_round_trip() -> None:
    g = geno(3, 2, 2, "SE1")
    data = json.loads(json.dumps(g.to_json()))
    assert FusionGenotype.from_json(data) == g
    assert g.ops == ["SE1"] * 6
    assert g.n_cells == 3 and g.n_nodes == 2
    assert "SE1" in str(g)


def test_arch_round_trip(tmp_path: Path) -> None:
    a = arch()
    assert ArchSpec.from_json(json.loads(json.dumps(a.to_json()))) == a
    path = a.save(tmp_path / "arch.json")
    assert json.loads(path.read_text())["schema_version"] == 1
    assert ArchSpec.load(path) == a
    b = a.with_genotype(None)
    assert ArchSpec.load(b.save(tmp_path / "b.json")).genotype is None


def test_arch_late_skip_round_trip_and_old_files() -> None:
    a = arch(late_skip=True)
    data = json.loads(json.dumps(a.to_json()))
    assert data["late_skip"] is True
    assert ArchSpec.from_json(data) == a
    assert a.with_genotype(None).late_skip  # carried by every copy
    del data["late_skip"], data["fusion_mode"]  # a file written before the keys existed: no skip
    assert ArchSpec.from_json(data).late_skip is False
    with pytest.raises(GenomeError, match="'late_skip' must be true or false"):
        ArchSpec.from_json({**data, "late_skip": 1})


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"cells": 0, "genotype": None}, "cells must be in 1..8"),
        ({"cells": 9, "genotype": None}, "cells must be in 1..8"),
        ({"nodes": 0, "genotype": None}, "nodes must be in 1..8"),
        ({"nodes": 12, "genotype": None}, "nodes must be in 1..8"),
        ({"L": 5}, "perfect square"),
        ({"cells": 3}, "must agree"),
        ({"genotype": geno(op="Bogus")}, "unknown fusion operator 'Bogus'"),
        ({"modalities": {}}, "at least one modality"),
    ],
)
def test_arch_validation(kw: dict[str, object], match: str) -> None:
    with pytest.raises(GenomeError, match=match) as exc:
        arch(**kw)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"cells": [], "multiplier": 1}, "1..8 cells"),
        (
            {
                "cells": [{"inputs": [0, 1], "nodes": [{"op": "Sum", "inputs": [0, 2]}]}],
                "multiplier": 1,
            },
            "reads inner state 2",
        ),
        (
            {
                "cells": [{"inputs": [0, 1], "nodes": [{"op": "Sum", "inputs": [0, 1]}]}],
                "multiplier": 2,
            },
            "multiplier",
        ),
        ({"cells": [{"inputs": [0], "nodes": []}], "multiplier": 1}, "pair of integers"),
        ({"cells": [{"inputs": [0, -1], "nodes": []}], "multiplier": 1}, "non-negative"),
        ({"cells": "x", "multiplier": 1}, "must be a list"),
        ({"cells": []}, "keys cells, multiplier"),
    ],
)
def test_genotype_validation(data: object, match: str) -> None:
    with pytest.raises(GenomeError, match=match):
        FusionGenotype.from_json(data)


def test_genotype_point_range() -> None:
    g = FusionGenotype((CellGenotype((0, 5), (NodeGenotype("Sum", (0, 1)),)),), 1)
    g.validate(6)
    with pytest.raises(GenomeError, match="does not fit"):
        g.validate(4)


def test_arch_file_errors(tmp_path: Path) -> None:
    p = tmp_path / "a.json"
    p.write_text("{not json")
    with pytest.raises(HarmonicError, match="not valid JSON"):
        ArchSpec.load(p)
    data = arch().to_json()
    data["schema_version"] = 7
    p.write_text(json.dumps(data))
    with pytest.raises(HarmonicError, match="schema_version"):
        ArchSpec.load(p)
    data = arch().to_json()
    data["extra"] = 1
    with pytest.raises(GenomeError, match="unknown key"):
        ArchSpec.from_json(data)
    data = arch().to_json()
    data["cells"] = "two"
    p.write_text(json.dumps(data))
    with pytest.raises(GenomeError, match=r"a.json: .*'cells' must be an integer"):
        ArchSpec.load(p)


@pytest.mark.parametrize("version", [True, 1.0, "1"])
def test_arch_schema_version_must_be_the_integer(tmp_path: Path, version: object) -> None:
    """``true`` == 1 and 1.0 == 1 in Python, but neither is a schema version."""
    data = arch().to_json()
    data["schema_version"] = version
    with pytest.raises(GenomeError, match=rf"schema_version {version!r} is not supported"):
        ArchSpec.from_json(data)
    p = tmp_path / "a.json"
    p.write_text(json.dumps(data))
    with pytest.raises(HarmonicError, match=rf"schema_version {version!r}, expected 1"):
        ArchSpec.load(p)


def test_arch_fusion_mode_is_recorded_and_checked() -> None:
    assert arch().to_json()["fusion_mode"] == "network"
    assert arch(late_skip=True).to_json()["fusion_mode"] == "network+late"
    late = ArchSpec(modalities=arch().modalities, cells=1, nodes=1, genotype=None, late_fusion=True)
    data = json.loads(json.dumps(late.to_json()))
    assert data["fusion_mode"] == "late" and data["genotype"] is None
    back = ArchSpec.from_json(data)
    assert back == late and back.late_fusion and back.finalised
    assert back.with_genotype(None).late_fusion  # carried by every copy
    assert not arch().with_genotype(None).finalised
    with pytest.raises(GenomeError, match="disagree"):
        ArchSpec.from_json({**arch().to_json(), "fusion_mode": "network+late"})
    with pytest.raises(GenomeError, match="'fusion_mode' must be one of"):
        ArchSpec.from_json({**arch().to_json(), "fusion_mode": "early"})
    with pytest.raises(GenomeError, match="no fusion network"):
        ArchSpec(modalities=arch().modalities, cells=1, nodes=1, late_skip=True, late_fusion=True)
