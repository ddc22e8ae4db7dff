"""A backbone's gene space, defined once: the choices of its genes, built from its preset.

:class:`BackboneSpace` owns every fact about which genomes a backbone admits: validation, uniform
sampling, the number of distinct subnets, the smallest and largest genome, and enumeration (every
subnet; the few genomes covering every layer; one genome per depth vector). The supernet, the
search's joint genome and the hardware layer inventory all ask it.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from harmonic_nas.backbones.genome import BackboneGenome
from harmonic_nas.backbones.presets import (
    MLPPreset,
    MobileNetV3Preset,
    Preset,
    TextPreset,
    get_preset,
)
from harmonic_nas.errors import GenomeError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackboneSpace:
    """The genes of one elastic backbone: choices per block slot (``ks``, ``e``) and per stage (``d``).

    ``stages == 0`` is a fixed backbone (Maxout / vector) with the empty genome. ``preset`` names
    the preset in messages (not part of equality).
    """

    ks: tuple[int, ...] = ()
    e: tuple[int, ...] = ()
    d: tuple[int, ...] = ()
    stages: int = 0
    preset: str = field(default="", compare=False)
    #: a layer's shape depends on the previous slot's genes too (the MLP's widths)
    chained: bool = False

    def __post_init__(self) -> None:
        if self.stages and not (self.ks and self.e and self.d and min(self.d) >= 1):
            raise GenomeError(
                "an elastic backbone space needs kernel, expand and depth choices (depth >= 1)"
            )

    @classmethod
    def from_preset(cls, preset: Preset | str) -> BackboneSpace:
        """The space of a preset (a Maxout / vector preset has no genes)."""
        p = get_preset(preset) if isinstance(preset, str) else preset
        if isinstance(p, TextPreset):  # the genes of its 1-D body
            return cls.from_preset(p.backbone)
        if isinstance(p, MLPPreset):  # one stage of dense layers: ks is 1 (no kernel)
            return cls((1,), p.e_choices, p.d_choices, 1, preset=p.name, chained=True)
        if not isinstance(p, MobileNetV3Preset):
            return cls(preset=p.name)
        return cls(p.ks_choices, p.e_choices, p.d_choices, p.n_stages, preset=p.name)

    @property
    def max_depth(self) -> int:
        return max(self.d) if self.stages else 0

    @property
    def slots(self) -> int:
        """Number of block slots (``max_depth x stages``): the length of ``ks`` and ``e`` genes."""
        return self.max_depth * self.stages

    def size(self) -> int:
        """Number of distinct subnets (canonical genomes): prod over stages of sum_d (|K||E|)^d."""
        if not self.stages:
            return 1
        per_block = len(set(self.ks)) * len(set(self.e))
        return int(sum(per_block**d for d in set(self.d)) ** self.stages)

    def _uniform(self, k: int, e: int, d: int) -> BackboneGenome:
        n = self.slots
        return BackboneGenome((k,) * n, (e,) * n, (d,) * self.stages)

    def min_genome(self) -> BackboneGenome:
        if not self.stages:
            return BackboneGenome()
        return self._uniform(min(self.ks), min(self.e), min(self.d))

    def max_genome(self) -> BackboneGenome:
        if not self.stages:
            return BackboneGenome()
        return self._uniform(max(self.ks), max(self.e), max(self.d))

    def level_genome(self, level: float) -> BackboneGenome:
        """The uniform genome at ``level`` in [0, 1] of every gene's sorted choices (0 = the
        smallest genome, 1 = the largest; in between, choice ``round(level x (n - 1))``)."""
        if not 0.0 <= level <= 1.0:
            raise GenomeError(f"a genome level must be in [0, 1], got {level}")
        if not self.stages:
            return BackboneGenome()

        def pick(choices: tuple[int, ...]) -> int:
            options = sorted(set(choices))
            return options[round(level * (len(options) - 1))]

        return self._uniform(pick(self.ks), pick(self.e), pick(self.d))

    def sample(self, rng: np.random.Generator) -> BackboneGenome:
        """Every gene drawn uniformly and independently (the fixed backbone draws nothing)."""
        if not self.stages:
            return BackboneGenome()
        return BackboneGenome(
            tuple(int(v) for v in rng.choice(self.ks, size=self.slots)),
            tuple(int(v) for v in rng.choice(self.e, size=self.slots)),
            tuple(int(v) for v in rng.choice(self.d, size=self.stages)),
        )

    # -- validation ----------------------------------------------------------------------------
    def validate(self, genome: BackboneGenome, modality: str | None = None) -> None:
        """Raise :class:`GenomeError` (one line) unless ``genome`` fits this space.

        Without ``modality`` (a subnet of the preset) only active genes are checked; with it (a
        gene vector of the joint search genome) every gene must be one of the choices.
        """
        if modality is not None:
            self._validate_genes(genome, modality)
            return
        if not isinstance(genome, BackboneGenome):
            raise GenomeError(
                f"expected a BackboneGenome for preset {self.preset}, got {type(genome).__name__}"
            )
        name = self.preset
        if len(genome.d) != self.stages:
            raise GenomeError(
                f"genome {genome} has {len(genome.d)} depth gene(s) but preset {name} has "
                f"{self.stages} stage(s); give one d per stage"
            )
        for gene in ("ks", "e"):
            genes = getattr(genome, gene)
            if len(genes) != self.slots:
                raise GenomeError(
                    f"genome {genome} has {len(genes)} '{gene}' gene(s) but preset {name} needs "
                    f"{self.slots} ({self.stages} stage(s) x {self.max_depth} block slots)"
                )
        for s, d in enumerate(genome.d):
            if d not in self.d:
                raise GenomeError(
                    f"genome {genome}: depth {d} of stage {s} is not in preset {name}'s "
                    f"depths {list(self.d)}"
                )
            for j in range(d):
                slot = s * self.max_depth + j
                if genome.ks[slot] not in self.ks:
                    raise GenomeError(
                        f"genome {genome}: kernel {genome.ks[slot]} (block {slot}) is not in "
                        f"preset {name}'s kernels {list(self.ks)}"
                    )
                if genome.e[slot] not in self.e:
                    raise GenomeError(
                        f"genome {genome}: expand ratio {genome.e[slot]} (block {slot}) is not in "
                        f"preset {name}'s expand ratios {list(self.e)}"
                    )

    def _validate_genes(self, genome: BackboneGenome, modality: str) -> None:
        if (
            len(genome.d) != self.stages
            or len(genome.ks) != self.slots
            or len(genome.e) != self.slots
        ):
            raise GenomeError(
                f"genome of '{modality}' has {len(genome.d)} stages / {len(genome.ks)} slots, "
                f"the search space expects {self.stages} / {self.slots}"
            )
        for name, values, choices in (
            ("d", genome.d, self.d),
            ("ks", genome.ks, self.ks),
            ("e", genome.e, self.e),
        ):
            bad = [v for v in values if v not in choices]
            if bad:
                raise GenomeError(
                    f"genome of '{modality}' has {name}={bad[0]}, allowed values are {list(choices)}"
                )

    # -- enumeration ---------------------------------------------------------------------------
    def genomes(self) -> Iterator[BackboneGenome]:
        """Every distinct subnet genome (inactive genes 0); 7,371 for ``avmnist``."""
        if not self.stages:
            yield BackboneGenome()
            return
        choices = list(itertools.product(self.ks, self.e))
        per_stage: list[list[tuple[int, tuple[tuple[int, int], ...]]]] = []
        for _ in range(self.stages):
            opts = []
            for d in self.d:
                for blocks in itertools.product(choices, repeat=d):
                    opts.append((d, blocks))
            per_stage.append(opts)
        for combo in itertools.product(*per_stage):
            ks: list[int] = []
            es: list[int] = []
            ds: list[int] = []
            for d, blocks in combo:
                ds.append(d)
                for j in range(self.max_depth):
                    k, e = blocks[j] if j < d else (0, 0)
                    ks.append(k)
                    es.append(e)
            yield BackboneGenome(tuple(ks), tuple(es), tuple(ds))

    def covering_genomes(self) -> list[BackboneGenome]:
        """A few genomes whose layers are, together, every layer of the space: a block's layer
        depends only on its own (kernel, expand) genes and its slot, so "every slot = (k, e)" at
        every depth, for each (k, e). In a ``chained`` space (an MLP, where a layer's input width
        is the previous layer's output) every subnet is listed."""
        if not self.stages:
            return [BackboneGenome()]
        if self.chained:
            return list(self.genomes())
        return [
            self._uniform(k, e, d).active(self.max_depth)
            for k, e in itertools.product(self.ks, self.e)
            for d in sorted(set(self.d))
        ]

    def depth_genomes(self) -> list[BackboneGenome]:
        """Genomes that make every fusion-point shape of the space: one per depth vector (the
        depths fix which feature maps are fusion points; a stage's width is fixed), and in a
        ``chained`` space (an MLP, whose hidden layers are its fusion points and whose widths
        are genes) every subnet."""
        if not self.stages:
            return [BackboneGenome()]
        if self.chained:
            return list(self.genomes())
        k, e, n = self.ks[0], self.e[0], self.slots
        return [
            BackboneGenome((k,) * n, (e,) * n, tuple(ds)).active(self.max_depth)
            for ds in itertools.product(sorted(set(self.d)), repeat=self.stages)
        ]
