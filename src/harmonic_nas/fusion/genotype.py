"""Discrete fusion architectures (genotypes): what the DARTS search returns, JSON in and out.

A :class:`FusionGenotype` is a list of cells (BM-NAS "step nodes"). The network's states are the
reshaped fusion points (all modalities, in order) followed by the cells' outputs. Cell ``i`` takes
its first and second input from ``states[inputs[0]]`` and ``states[inputs[1]]`` (indices smaller
than ``n_points + i``). Inside a cell, the inner states are ``[x, y, node_0, node_1, ...]``; node
``j`` applies its operator to ``inner[inputs[0]]`` and ``inner[inputs[1]]`` (indices ``< 2 + j``).
The network output concatenates the last ``multiplier`` states.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from harmonic_nas.errors import GenomeError

logger = logging.getLogger(__name__)

MAX_CELLS = 8
MAX_NODES = 8


def _pair(value: Any, what: str) -> tuple[int, int]:
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise GenomeError(f"{what} must be a pair of integers [first, second]; got {value!r:.60}")
    a, b = int(value[0]), int(value[1])
    if a < 0 or b < 0:
        raise GenomeError(f"{what} must be non-negative state indices; got [{a}, {b}]")
    return a, b


@dataclass(frozen=True)
class NodeGenotype:
    """One inner node of a cell: ``op(inner[inputs[0]], inner[inputs[1]])``."""

    op: str
    inputs: tuple[int, int]

    def to_json(self) -> dict[str, Any]:
        return {"op": self.op, "inputs": list(self.inputs)}

    @classmethod
    def from_json(cls, data: Any) -> NodeGenotype:
        if not isinstance(data, dict) or set(data) != {"op", "inputs"}:
            raise GenomeError(
                f"a fusion node must be an object with keys op, inputs; got {data!r:.80}"
            )
        if not isinstance(data["op"], str) or not data["op"]:
            raise GenomeError(f"a fusion node's op must be an operator name; got {data['op']!r}")
        return cls(op=data["op"], inputs=_pair(data["inputs"], "a fusion node's inputs"))


@dataclass(frozen=True)
class CellGenotype:
    """One fusion cell: its two inputs among the network states and its inner nodes."""

    inputs: tuple[int, int]
    nodes: tuple[NodeGenotype, ...]

    def to_json(self) -> dict[str, Any]:
        return {"inputs": list(self.inputs), "nodes": [n.to_json() for n in self.nodes]}

    @classmethod
    def from_json(cls, data: Any) -> CellGenotype:
        if not isinstance(data, dict) or set(data) != {"inputs", "nodes"}:
            raise GenomeError(
                f"a fusion cell must be an object with keys inputs, nodes; got {data!r:.80}"
            )
        if not isinstance(data["nodes"], list):
            raise GenomeError("a fusion cell's nodes must be a list of {op, inputs} objects")
        return cls(
            inputs=_pair(data["inputs"], "a fusion cell's inputs"),
            nodes=tuple(NodeGenotype.from_json(n) for n in data["nodes"]),
        )


@dataclass(frozen=True)
class FusionGenotype:
    """The discrete fusion network: cells plus how many final states feed the classifier."""

    cells: tuple[CellGenotype, ...]
    multiplier: int

    def __post_init__(self) -> None:
        self.validate()

    @property
    def n_cells(self) -> int:
        return len(self.cells)

    @property
    def n_nodes(self) -> int:
        return len(self.cells[0].nodes) if self.cells else 0

    @property
    def ops(self) -> list[str]:
        """Every node's operator, cell by cell."""
        return [n.op for c in self.cells for n in c.nodes]

    def validate(self, n_points: int | None = None) -> None:
        """Structural checks (GenomeError, one line). With ``n_points``, also the input ranges."""
        if not 1 <= len(self.cells) <= MAX_CELLS:
            raise GenomeError(
                f"a fusion genotype needs 1..{MAX_CELLS} cells, got {len(self.cells)}"
            )
        n_nodes = len(self.cells[0].nodes)
        for i, cell in enumerate(self.cells):
            if not 1 <= len(cell.nodes) <= MAX_NODES:
                raise GenomeError(
                    f"fusion cell {i} needs 1..{MAX_NODES} nodes, got {len(cell.nodes)}"
                )
            if len(cell.nodes) != n_nodes:
                raise GenomeError(
                    f"every fusion cell must have the same number of nodes ({n_nodes}); "
                    f"cell {i} has {len(cell.nodes)}"
                )
            for j, node in enumerate(cell.nodes):
                if max(node.inputs) >= 2 + j:
                    raise GenomeError(
                        f"fusion cell {i} node {j} reads inner state {max(node.inputs)}, "
                        f"but only {2 + j} exist before it"
                    )
            if n_points is not None and max(cell.inputs) >= n_points + i:
                raise GenomeError(
                    f"fusion cell {i} reads state {max(cell.inputs)}, but only {n_points + i} "
                    f"exist before it ({n_points} fusion points); the genotype does not fit "
                    "these backbones"
                )
        if not 1 <= self.multiplier <= len(self.cells):
            raise GenomeError(
                f"fusion multiplier must be in 1..{len(self.cells)} (the number of cells), "
                f"got {self.multiplier}"
            )

    def to_json(self) -> dict[str, Any]:
        return {"cells": [c.to_json() for c in self.cells], "multiplier": self.multiplier}

    @classmethod
    def from_json(cls, data: Any) -> FusionGenotype:
        if not isinstance(data, dict) or set(data) != {"cells", "multiplier"}:
            raise GenomeError(
                f"a fusion genotype must be an object with keys cells, multiplier; got {data!r:.80}"
            )
        if not isinstance(data["cells"], list):
            raise GenomeError("a fusion genotype's cells must be a list")
        mult = data["multiplier"]
        if not isinstance(mult, int) or isinstance(mult, bool):
            raise GenomeError(f"a fusion genotype's multiplier must be an integer; got {mult!r}")
        return cls(cells=tuple(CellGenotype.from_json(c) for c in data["cells"]), multiplier=mult)

    def __str__(self) -> str:
        parts = []
        for i, c in enumerate(self.cells):
            inner = ",".join(f"{n.op}{list(n.inputs)}" for n in c.nodes)
            parts.append(f"c{i}{list(c.inputs)}:{inner}")
        return " | ".join(parts) + f" | x{self.multiplier}"
