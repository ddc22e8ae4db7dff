"""ARCH.json: one multimodal architecture (backbone genomes + fusion macro-architecture + genotype).

This is the format the cost, search, export and report stages read and write::

    {"schema_version": 1,
     "modalities": {"image": {"preset": "avmnist", "shape": [1, 28, 28],
                              "genome": {"ks": [...], "e": [...], "d": [...]}}, ...},
     "cells": 2, "nodes": 2, "genotype": {...} | null,
     "C": 192, "L": 16, "fusion_points": 4, "n_classes": 10, "late_skip": true,
     "fusion_mode": "network+late"}

``late_skip`` (absent in files written before it existed: false) adds the mean of the backbones'
own classifier logits to the fusion network's output (``fusion.late_skip``). ``fusion_mode``
(absent in older files: derived from ``late_skip``) records how modalities meet: ``late`` (no
fusion network, genotype null: the backbones' own classifiers combined by Bayes' rule,
:class:`~harmonic_nas.fusion.late.LateFusionNet`), ``network`` or ``network+late``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harmonic_nas.backbones.genome import BackboneGenome
from harmonic_nas.errors import GenomeError
from harmonic_nas.fusion.genotype import MAX_CELLS, MAX_NODES, FusionGenotype
from harmonic_nas.fusion.ops import list_ops
from harmonic_nas.utils.io import atomic_write_json, is_schema_version, read_json

logger = logging.getLogger(__name__)

ARCH_SCHEMA_VERSION = 1

_ARCH_KEYS = {
    "schema_version",
    "modalities",
    "cells",
    "nodes",
    "genotype",
    "C",
    "L",
    "fusion_points",
    "n_classes",
    "late_skip",
    "fusion_mode",
}

_MODES = ("late", "network", "network+late")


@dataclass(frozen=True)
class ModalityArch:
    """One modality's backbone: supernet preset, input shape (without batch) and subnet genome."""

    preset: str
    shape: tuple[int, ...]
    genome: BackboneGenome

    def __post_init__(self) -> None:
        if not self.preset:
            raise GenomeError("a modality's backbone preset must be a non-empty name")
        if not self.shape or any(int(s) <= 0 for s in self.shape):
            raise GenomeError(f"a modality's shape must be positive integers; got {self.shape}")

    def to_json(self) -> dict[str, Any]:
        return {"preset": self.preset, "shape": list(self.shape), "genome": self.genome.to_json()}

    @classmethod
    def from_json(cls, data: Any, name: str = "?") -> ModalityArch:
        if not isinstance(data, dict) or set(data) != {"preset", "shape", "genome"}:
            raise GenomeError(
                f"modality {name!r} in the architecture must have keys preset, shape, genome; "
                f"got {data!r:.80}"
            )
        shape = data["shape"]
        if not isinstance(shape, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in shape
        ):
            raise GenomeError(f"modality {name!r}: shape must be a list of integers; got {shape!r}")
        if not isinstance(data["preset"], str):
            raise GenomeError(f"modality {name!r}: preset must be a string")
        return cls(
            preset=data["preset"],
            shape=tuple(shape),
            genome=BackboneGenome.from_json(data["genome"]),
        )


def _int_field(data: dict[str, Any], key: str, default: int | None = None) -> int:
    if key not in data:
        if default is None:
            raise GenomeError(f"the architecture is missing the key {key!r}")
        return default
    v = data[key]
    if not isinstance(v, int) or isinstance(v, bool):
        raise GenomeError(f"architecture key {key!r} must be an integer; got {v!r}")
    return v


@dataclass(frozen=True)
class ArchSpec:
    """A complete multimodal architecture (the content of ARCH.json)."""

    modalities: dict[str, ModalityArch] = field(hash=False)
    cells: int
    nodes: int
    genotype: FusionGenotype | None = None
    C: int = 192
    L: int = 16
    fusion_points: int = 4
    n_classes: int = 10
    late_skip: bool = False
    late_fusion: bool = False  # no fusion network (``fusion_mode`` late)

    def __post_init__(self) -> None:
        if not self.modalities:
            raise GenomeError("an architecture needs at least one modality")
        if self.late_fusion and (self.late_skip or self.genotype is not None):
            raise GenomeError(
                "a late-fusion architecture has no fusion network: late_skip must be false and "
                "the genotype null"
            )
        if not 1 <= self.cells <= MAX_CELLS:
            raise GenomeError(
                f"fusion cells must be in 1..{MAX_CELLS}, got {self.cells}; pick a value in range"
            )
        if not 1 <= self.nodes <= MAX_NODES:
            raise GenomeError(
                f"fusion nodes must be in 1..{MAX_NODES}, got {self.nodes}; pick a value in range"
            )
        if self.C < 1:
            raise GenomeError(f"fusion C must be >= 1, got {self.C}")
        side = math.isqrt(self.L) if self.L >= 1 else 0
        if self.L < 1 or side * side != self.L:
            raise GenomeError(f"fusion L must be a perfect square >= 1, got {self.L}")
        if self.fusion_points < 1:
            raise GenomeError(f"fusion_points must be >= 1, got {self.fusion_points}")
        if self.n_classes < 1:
            raise GenomeError(f"n_classes must be >= 1, got {self.n_classes}")
        g = self.genotype
        if g is not None:
            if g.n_cells != self.cells or g.n_nodes != self.nodes:
                raise GenomeError(
                    f"the genotype has {g.n_cells} cells x {g.n_nodes} nodes but the architecture "
                    f"says {self.cells} x {self.nodes}; they must agree"
                )
            known = set(list_ops())
            for op in g.ops:
                if op not in known:
                    raise GenomeError(
                        f"unknown fusion operator {op!r} in the genotype; choose from "
                        + ", ".join(list_ops())
                    )

    @property
    def modality_names(self) -> list[str]:
        return list(self.modalities)

    @property
    def fusion_mode(self) -> str:
        """How modalities meet: ``late``, ``network`` or ``network+late``."""
        if self.late_fusion:
            return "late"
        return "network+late" if self.late_skip else "network"

    @property
    def finalised(self) -> bool:
        """Whether the model is complete: a late fusion, or a fusion network with its genotype."""
        return self.late_fusion or self.genotype is not None

    def with_genotype(self, genotype: FusionGenotype | None) -> ArchSpec:
        """A copy with another genotype."""
        return ArchSpec(
            modalities=dict(self.modalities),
            cells=self.cells,
            nodes=self.nodes,
            genotype=genotype,
            C=self.C,
            L=self.L,
            fusion_points=self.fusion_points,
            n_classes=self.n_classes,
            late_skip=self.late_skip,
            late_fusion=self.late_fusion,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": ARCH_SCHEMA_VERSION,
            "modalities": {k: m.to_json() for k, m in self.modalities.items()},
            "cells": self.cells,
            "nodes": self.nodes,
            "genotype": None if self.genotype is None else self.genotype.to_json(),
            "C": self.C,
            "L": self.L,
            "fusion_points": self.fusion_points,
            "n_classes": self.n_classes,
            "late_skip": self.late_skip,
            "fusion_mode": self.fusion_mode,
        }

    @classmethod
    def from_json(cls, data: Any) -> ArchSpec:
        if not isinstance(data, dict):
            raise GenomeError("an architecture must be a JSON object; see ARCH.json in the docs")
        version = data.get("schema_version", ARCH_SCHEMA_VERSION)
        if not is_schema_version(version, ARCH_SCHEMA_VERSION):
            raise GenomeError(
                f"architecture schema_version {version!r} is not supported (expected "
                f"{ARCH_SCHEMA_VERSION}); regenerate it with this version of harmonic-nas"
            )
        extra = set(data) - _ARCH_KEYS
        if extra:
            raise GenomeError(
                f"unknown key(s) {sorted(extra)} in the architecture; remove them or check spelling"
            )
        mods = data.get("modalities")
        if not isinstance(mods, dict) or not mods:
            raise GenomeError("the architecture needs a non-empty 'modalities' object")
        geno = data.get("genotype")
        late_skip = data.get("late_skip", False)
        if not isinstance(late_skip, bool):
            raise GenomeError(
                f"architecture key 'late_skip' must be true or false; got {late_skip!r}"
            )
        mode = data.get("fusion_mode", "network+late" if late_skip else "network")
        if mode not in _MODES:
            raise GenomeError(
                f"architecture key 'fusion_mode' must be one of {', '.join(_MODES)}; got {mode!r}"
            )
        if mode != "late" and (mode == "network+late") != late_skip:
            raise GenomeError(
                f"architecture keys disagree: fusion_mode {mode!r} but late_skip {late_skip}; "
                "fix one of them"
            )
        return cls(
            modalities={str(k): ModalityArch.from_json(v, str(k)) for k, v in mods.items()},
            cells=_int_field(data, "cells"),
            nodes=_int_field(data, "nodes"),
            genotype=None if geno is None else FusionGenotype.from_json(geno),
            C=_int_field(data, "C", 192),
            L=_int_field(data, "L", 16),
            fusion_points=_int_field(data, "fusion_points", 4),
            n_classes=_int_field(data, "n_classes", 10),
            late_skip=late_skip,
            late_fusion=mode == "late",
        )

    def save(self, path: Path | str) -> Path:
        """Write ARCH.json atomically."""
        return atomic_write_json(Path(path), self.to_json())

    @classmethod
    def load(cls, path: Path | str) -> ArchSpec:
        """Read ARCH.json (one-line errors for a missing/corrupt file or a bad schema)."""
        data = read_json(Path(path), schema_version=ARCH_SCHEMA_VERSION, what="architecture file")
        try:
            return cls.from_json(data)
        except GenomeError as exc:
            raise GenomeError(f"{path}: {exc}") from None
