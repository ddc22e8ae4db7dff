"""The joint genome: one backbone genome per modality plus the fusion macro-architecture.

Every gene is an Optuna categorical parameter that every trial suggests, active or not, so the
NSGA-II intersection search space always holds the whole genome and crossover / mutation act on
``cells`` and ``nodes`` exactly as on a kernel size: the macro-architecture is inherited, never
re-drawn. With ``search.fusion_modes`` a ``fusion_mode`` gene says how modalities meet
(:data:`~harmonic_nas.config.FusionMode`); a ``late`` candidate has no fusion network, so its
``cells`` and ``nodes`` are inactive and left out of its key. Each backbone's genes are its :class:`~harmonic_nas.backbones.BackboneSpace`. Genes
beyond a stage's depth are inactive: :meth:`MultimodalGenome.canonical` zeroes them and
:meth:`MultimodalGenome.key` (used to deduplicate candidates) is built from the canonical form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optuna.distributions import CategoricalDistribution

from harmonic_nas.backbones.genome import BackboneGenome
from harmonic_nas.backbones.space import BackboneSpace
from harmonic_nas.errors import GenomeError

#: every value of the ``fusion_mode`` gene (:data:`harmonic_nas.config.FusionMode`)
FUSION_MODES = ("late", "network", "network+late")

if TYPE_CHECKING:
    import optuna

__all__ = ["FUSION_MODES", "BackboneSpace", "MultimodalGenome", "SearchSpace"]


def _max_depth(genome: BackboneGenome) -> int:
    return len(genome.ks) // len(genome.d) if genome.d else 0


@dataclass(frozen=True)
class MultimodalGenome:
    """A candidate: one backbone genome per modality (in config order), fusion cells and nodes,
    and how modalities meet (``fusion_mode``; None: no such gene, ``fusion.late_skip`` decides)."""

    backbones: dict[str, BackboneGenome]
    cells: int
    nodes: int
    fusion_mode: str | None = None

    def __post_init__(self) -> None:
        if self.fusion_mode is not None and self.fusion_mode not in FUSION_MODES:
            raise GenomeError(
                f"unknown fusion mode {self.fusion_mode!r}; use one of {', '.join(FUSION_MODES)}"
            )

    def canonical(self) -> MultimodalGenome:
        """The same architecture with inactive genes (blocks beyond the depth) set to 0."""
        return MultimodalGenome(
            {m: g.active(_max_depth(g)) for m, g in self.backbones.items()},
            self.cells,
            self.nodes,
            self.fusion_mode,
        )

    @property
    def is_late(self) -> bool:
        """No fusion network: the backbones' own classifiers combined (``cells``/``nodes`` unused)."""
        return self.fusion_mode == "late"

    def key(self) -> str:
        """A canonical, human-readable id: two genomes share a key iff they are the same network."""
        parts = [f"{m}={g}" for m, g in self.canonical().backbones.items()]
        if self.is_late:
            return "|".join([*parts, "late"])
        fusion = f"c{self.cells}n{self.nodes}"
        if self.fusion_mode is not None:
            fusion += f"-{self.fusion_mode}"
        return "|".join([*parts, fusion])

    def __hash__(self) -> int:
        return hash(self.key())

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "backbones": {m: g.to_json() for m, g in self.backbones.items()},
            "cells": self.cells,
            "nodes": self.nodes,
        }
        if self.fusion_mode is not None:
            out["fusion_mode"] = self.fusion_mode
        return out

    @classmethod
    def from_json(cls, data: Any) -> MultimodalGenome:
        if not isinstance(data, dict) or not isinstance(data.get("backbones"), dict):
            raise GenomeError(
                f"a multimodal genome must be an object with backbones, cells, nodes; got {data!r:.80}"
            )
        for key in ("cells", "nodes"):
            v = data.get(key)
            if type(v) is not int:  # "2", 2.0 and true are not a count of cells
                raise GenomeError(
                    f"a multimodal genome needs integer cells and nodes; got {key}={v!r:.40}"
                )
        mode = data.get("fusion_mode")
        if mode is not None and not isinstance(mode, str):
            raise GenomeError(f"a genome's fusion_mode must be a string; got {mode!r:.40}")
        backbones = {str(m): BackboneGenome.from_json(g) for m, g in data["backbones"].items()}
        return cls(backbones, data["cells"], data["nodes"], mode)


@dataclass(frozen=True)
class SearchSpace:
    """All genes of the joint genome and their Optuna encoding (one categorical per gene)."""

    backbones: dict[str, BackboneSpace]
    cells: tuple[int, ...]
    nodes: tuple[int, ...]
    #: the ``fusion_mode`` gene's choices (empty: no such gene, genomes carry ``None``)
    fusion_modes: tuple[str, ...] = ()

    @classmethod
    def from_ranges(
        cls,
        backbones: dict[str, BackboneSpace],
        cells: tuple[int, int],
        nodes: tuple[int, int],
        fusion_modes: tuple[str, ...] | None = None,
    ) -> SearchSpace:
        """Build from inclusive ``(low, high)`` ranges, as in ``cfg.search.cells/nodes``, and
        ``cfg.search.fusion_modes`` (None: no fusion-mode gene)."""
        return cls(
            dict(backbones),
            tuple(range(cells[0], cells[1] + 1)),
            tuple(range(nodes[0], nodes[1] + 1)),
            tuple(fusion_modes or ()),
        )

    def __hash__(self) -> int:
        return hash((tuple(self.backbones.items()), self.cells, self.nodes, self.fusion_modes))

    def _mode(self, i: int = 0) -> str | None:
        """The ``i``-th fusion mode (cyclically), None without the gene."""
        return self.fusion_modes[i % len(self.fusion_modes)] if self.fusion_modes else None

    # -- Optuna encoding ---------------------------------------------------------------------
    def distributions(self) -> dict[str, CategoricalDistribution]:
        """Parameter name -> distribution, in a fixed order (every trial suggests all of them)."""
        out: dict[str, CategoricalDistribution] = {}
        for m, sp in self.backbones.items():
            for s in range(sp.stages):
                out[f"{m}.d{s}"] = CategoricalDistribution(sp.d)
            for i in range(sp.slots):
                out[f"{m}.ks{i}"] = CategoricalDistribution(sp.ks)
                out[f"{m}.e{i}"] = CategoricalDistribution(sp.e)
        out["cells"] = CategoricalDistribution(self.cells)
        out["nodes"] = CategoricalDistribution(self.nodes)
        if self.fusion_modes:
            out["fusion_mode"] = CategoricalDistribution(self.fusion_modes)
        return out

    def suggest(self, trial: optuna.Trial) -> MultimodalGenome:
        """Ask the trial for every gene (the sampler decides: crossover, mutation or random)."""
        params = {
            name: trial.suggest_categorical(name, dist.choices)
            for name, dist in self.distributions().items()
        }
        return self.from_params(params)

    def from_params(self, params: dict[str, Any]) -> MultimodalGenome:
        """Decode Optuna params into a genome (:class:`GenomeError` if a gene is missing)."""
        try:
            backbones = {}
            for m, sp in self.backbones.items():
                backbones[m] = BackboneGenome(
                    tuple(int(params[f"{m}.ks{i}"]) for i in range(sp.slots)),
                    tuple(int(params[f"{m}.e{i}"]) for i in range(sp.slots)),
                    tuple(int(params[f"{m}.d{s}"]) for s in range(sp.stages)),
                )
            mode = str(params["fusion_mode"]) if self.fusion_modes else None
            return MultimodalGenome(backbones, int(params["cells"]), int(params["nodes"]), mode)
        except KeyError as exc:
            raise GenomeError(
                f"trial parameters lack gene {exc.args[0]!r}; the study belongs to another search space"
            ) from None

    def to_params(self, genome: MultimodalGenome) -> dict[str, int | str]:
        """Encode a genome as Optuna params (e.g. to enqueue it)."""
        self.validate(genome)
        out: dict[str, int | str] = {}
        for m, sp in self.backbones.items():
            g = genome.backbones[m]
            for s in range(sp.stages):
                out[f"{m}.d{s}"] = g.d[s]
            for i in range(sp.slots):
                out[f"{m}.ks{i}"] = g.ks[i]
                out[f"{m}.e{i}"] = g.e[i]
        out["cells"] = genome.cells
        out["nodes"] = genome.nodes
        if self.fusion_modes:
            assert genome.fusion_mode is not None  # validate() checked it
            out["fusion_mode"] = genome.fusion_mode
        return out

    # -- space facts -------------------------------------------------------------------------
    def validate(self, genome: MultimodalGenome) -> None:
        if list(genome.backbones) != list(self.backbones):
            raise GenomeError(
                f"genome modalities {list(genome.backbones)} differ from the search space's "
                f"{list(self.backbones)}"
            )
        for m, sp in self.backbones.items():
            sp.validate(genome.backbones[m], m)
        if genome.cells not in self.cells or genome.nodes not in self.nodes:
            raise GenomeError(
                f"cells={genome.cells}, nodes={genome.nodes} outside the search ranges "
                f"{list(self.cells)} / {list(self.nodes)}"
            )
        if self.fusion_modes and genome.fusion_mode not in self.fusion_modes:
            raise GenomeError(
                f"fusion mode {genome.fusion_mode!r} is not one of search.fusion_modes "
                f"{list(self.fusion_modes)}"
            )
        if not self.fusion_modes and genome.fusion_mode is not None:
            raise GenomeError(
                f"the genome has fusion mode {genome.fusion_mode!r} but the search space has no "
                "fusion-mode gene; set search.fusion_modes"
            )

    def min_genome(self) -> MultimodalGenome:
        """The smallest candidate (cheapest backbones, fewest cells and nodes)."""
        return MultimodalGenome(
            {m: sp.min_genome() for m, sp in self.backbones.items()},
            min(self.cells),
            min(self.nodes),
            self._mode(),
        )

    def max_genome(self) -> MultimodalGenome:
        """The largest candidate."""
        return MultimodalGenome(
            {m: sp.max_genome() for m, sp in self.backbones.items()},
            max(self.cells),
            max(self.nodes),
            self._mode(),
        )

    def ladder(self, n: int) -> list[MultimodalGenome]:
        """``n`` distinct genomes evenly spaced from the smallest to the largest: every gene of
        every backbone, and the cells and nodes, at the same level ``i / (n - 1)`` of its sorted
        choices (levels that round to a genome already listed are skipped). With a fusion-mode
        gene the rungs take ``search.fusion_modes`` in turn (rung ``i``: mode ``i mod`` their
        number), so every listed mode is on the ladder from its first rungs."""
        if n < 2:
            raise GenomeError(f"a ladder needs at least 2 genomes (smallest, largest), got {n}")
        out: dict[str, MultimodalGenome] = {}
        cells, nodes = sorted(self.cells), sorted(self.nodes)
        for i in range(n):
            t = i / (n - 1)
            g = MultimodalGenome(
                {m: sp.level_genome(t) for m, sp in self.backbones.items()},
                cells[round(t * (len(cells) - 1))],
                nodes[round(t * (len(nodes) - 1))],
                self._mode(i),
            )
            out.setdefault(g.key(), g)  # every gene set (Optuna params); deduped by network
        return list(out.values())

    def size(self) -> int:
        """Number of distinct candidates (canonical genomes)."""
        fusion = len(self.cells) * len(self.nodes)
        if self.fusion_modes:  # a late candidate has no cells or nodes
            network = sum(m != "late" for m in self.fusion_modes)
            fusion = fusion * network + ("late" in self.fusion_modes)
        return math.prod(sp.size() for sp in self.backbones.values()) * fusion
