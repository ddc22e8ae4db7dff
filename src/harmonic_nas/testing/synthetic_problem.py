"""A synthetic, deterministic search problem: objectives are closed-form functions of the genome.

It exercises the whole study machinery (storage, resume, workers, Pareto, hypervolume, status)
in milliseconds, without data, supernets or a LUT. Tests and CI select it with
``HARMONIC_NAS_SEARCH_PROBLEM=harmonic_nas.testing.synthetic_problem:from_env``; its knobs come from the
JSON object in ``$HARMONIC_NAS_SYNTHETIC`` (``sleep_s``, ``fail_rate``, ``nan_rate``, ``tiny``,
``seed_noise``).

Fidelity: at ``fidelity`` f < 1 (the cheap evaluation of multi-fidelity search) the val metric is
lower by ``LOW_FIDELITY_GAP x (1 - f)`` plus a genome-dependent perturbation (so the cheap ranking
is informative but not exact), and it takes ``f x sleep_s``; costs do not depend on f.
``seed_noise`` adds a seed-dependent term of that amplitude (the inner tier's seed noise).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from harmonic_nas.backbones import BackboneSpace
from harmonic_nas.config import ExperimentConfig
from harmonic_nas.errors import ConfigError
from harmonic_nas.search.genome import MultimodalGenome, SearchSpace
from harmonic_nas.search.problem import CostBound, Evaluation, TestScore
from harmonic_nas.utils.io import atomic_torch_save, atomic_write_json
from harmonic_nas.utils.progress import ProgressFn, no_progress
from harmonic_nas.utils.seeding import derive_seed

logger = logging.getLogger(__name__)

SYNTHETIC_ENV = "HARMONIC_NAS_SYNTHETIC"
_HEAD_MS = 0.01
_HEAD_MJ = 0.02
#: How much lower the val metric is at fidelity 0 than at full fidelity.
LOW_FIDELITY_GAP = 0.06


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from ``parts``."""
    return derive_seed(*parts) / float(1 << 63)


def synthetic_backbone_space(kind: str | None, tiny: bool = False) -> BackboneSpace:
    """The avmnist geometry (one elastic stage, d in {2,3,4}); vectors/text get a fixed backbone.
    ``tiny``: 4 subnets (k in {3,5}, e=3, d=2), to make duplicates and exhaustion testable."""
    if kind in ("text", "vector"):
        return BackboneSpace()
    if tiny:
        return BackboneSpace(ks=(3, 5), e=(3,), d=(2,), stages=1)
    return BackboneSpace.from_preset("avmnist")


@dataclass(frozen=True)
class SyntheticProblem:
    """Closed-form objectives. Bigger kernels cost latency, bigger expand ratios cost energy, both
    buy accuracy with diminishing returns; fusion cells x nodes buy a little accuracy for both."""

    #: what a study records (a real search refuses to resume a synthetic study)
    name: ClassVar[str] = "synthetic"

    cfg: ExperimentConfig
    sleep_s: float = 0.0
    fail_rate: float = 0.0
    nan_rate: float = 0.0
    tiny: bool = False
    seed_noise: float = 0.0

    @property
    def space(self) -> SearchSpace:
        return SearchSpace.from_ranges(
            {
                m: synthetic_backbone_space(mc.kind, self.tiny)
                for m, mc in self.cfg.modalities.items()
            },
            self.cfg.search.cells,
            self.cfg.search.nodes,
            self.cfg.search.fusion_modes,
        )

    @property
    def metric(self) -> str:
        return "accuracy"

    @property
    def task(self) -> str:
        return "classification"

    @property
    def energy_modelled(self) -> bool:
        return False  # its energy is a closed form of its own, not latency x a constant

    @property
    def energy_source(self) -> str:
        return "synthetic"

    def arch_json(
        self, genome: MultimodalGenome, genotype: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema_version": 1,
            "modalities": {
                m: {
                    "preset": self.cfg.modalities[m].preset,
                    "shape": list(self.cfg.modalities[m].shape),
                    "genome": g.to_json(),
                }
                for m, g in genome.backbones.items()
            },
            "cells": genome.cells,
            "nodes": genome.nodes,
            "genotype": genotype,
            "C": self.cfg.fusion.C,
            "L": self.cfg.fusion.L,
            "fusion_points": self.cfg.fusion.fusion_points,
            "n_classes": 10,
        }
        if genome.fusion_mode is not None:
            out["fusion_mode"] = genome.fusion_mode
        return out

    # -- closed forms ------------------------------------------------------------------------
    @staticmethod
    def _blocks(genome: MultimodalGenome) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        for g in genome.canonical().backbones.values():
            out.extend((k, e) for k, e in zip(g.ks, g.e, strict=True) if k)
        return out

    def _backbone_cost(self, genome: MultimodalGenome) -> tuple[float, float]:
        lat, en = 0.2 * len(genome.backbones), 0.5 * len(genome.backbones)
        for k, e in self._blocks(genome):
            lat += 0.04 * (k / 3) ** 2 * (1 + 0.1 * e)
            en += 0.05 * (e / 3) ** 2 * (1 + 0.05 * k)
        return lat, en

    @staticmethod
    def _fusion_size(genome: MultimodalGenome) -> int:
        """Fusion operators of a candidate (none in a late fusion)."""
        return 0 if genome.is_late else genome.cells * genome.nodes

    def lower_bound(self, genome: MultimodalGenome) -> CostBound:
        lat, en = self._backbone_cost(genome)
        n = self._fusion_size(genome)
        return CostBound(lat + 0.03 * n, en + 0.02 * n)

    def _full_cost(self, genome: MultimodalGenome) -> CostBound:
        lb = self.lower_bound(genome)
        return CostBound(lb.latency_ms + _HEAD_MS, lb.energy_mj + _HEAD_MJ)

    def reference_costs(self) -> tuple[CostBound, CostBound]:
        lo = self.lower_bound(self.space.min_genome())
        hi = self._full_cost(self.space.max_genome())
        return lo, CostBound(hi.latency_ms * 1.1, hi.energy_mj * 1.1)

    def _accuracy(self, genome: MultimodalGenome) -> float:
        capacity = sum((k / 7) * (e / 6) for k, e in self._blocks(genome))
        fusion = 0.3 * math.sqrt(self._fusion_size(genome))
        noise = _unit("synthetic-acc", genome.key()) - 0.5
        return 0.5 + 0.45 * (1 - math.exp(-(capacity + fusion) / 3)) + 0.01 * noise

    def evaluate(
        self,
        genome: MultimodalGenome,
        *,
        seed: int,
        progress: ProgressFn = no_progress,
        fidelity: float = 1.0,
    ) -> Evaluation:
        key = genome.key()
        f = min(max(float(fidelity), 0.0), 1.0)
        progress(f"candidate {key}", 0, 1)
        if self.sleep_s:
            time.sleep(self.sleep_s * f)
        if _unit("synthetic-fail", key) < self.fail_rate:
            raise RuntimeError(f"synthetic failure of {key}")
        val = math.nan if _unit("synthetic-nan", key) < self.nan_rate else self._accuracy(genome)
        if f < 1.0:
            val -= (1.0 - f) * (LOW_FIDELITY_GAP + 0.04 * (_unit("synthetic-low", key) - 0.5))
        if self.seed_noise:
            val += self.seed_noise * (_unit("synthetic-seed", seed) - 0.5)
        cost = self._full_cost(genome)
        genotype = (
            None
            if genome.is_late
            else {"cells": genome.cells, "nodes": genome.nodes, "seed": seed % 1000}
        )
        progress(f"candidate {key}", 1, 1)
        return Evaluation(
            val_metric=val,
            latency_ms=cost.latency_ms,
            energy_mj=cost.energy_mj,
            params=1000 * len(self._blocks(genome)) + 100 * self._fusion_size(genome),
            latency_paper_ms=cost.latency_ms - _HEAD_MS,
            energy_paper_mj=cost.energy_mj - _HEAD_MJ,
            genotype=genotype,
            extra={"seed": seed, "fidelity": f},
        )

    def score_test(
        self,
        genome: MultimodalGenome,
        evaluation: Evaluation,
        *,
        seeds: list[int],
        model_dir: Path,
        progress: ProgressFn = no_progress,
    ) -> TestScore:
        import torch

        scores = [
            evaluation.val_metric - 0.01 + 0.004 * (_unit("synthetic-test", s) - 0.5) for s in seeds
        ]
        mean = sum(scores) / len(scores)
        std = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
        arch = self.arch_json(genome, evaluation.genotype)
        atomic_write_json(model_dir / "arch.json", arch)
        atomic_torch_save(model_dir / "weights.pt", {"synthetic.weight": torch.zeros(1)})
        return TestScore(mean, std, arch, model_dir)


@dataclass(frozen=True)
class SyntheticFactory:
    """A picklable factory (crosses the spawn boundary to worker processes)."""

    sleep_s: float = 0.0
    fail_rate: float = 0.0
    nan_rate: float = 0.0
    tiny: bool = False
    seed_noise: float = 0.0

    def __call__(self, cfg: ExperimentConfig) -> SyntheticProblem:
        return SyntheticProblem(
            cfg, self.sleep_s, self.fail_rate, self.nan_rate, self.tiny, self.seed_noise
        )


def from_env(cfg: ExperimentConfig) -> SyntheticProblem:
    """Factory reading its knobs from ``$HARMONIC_NAS_SYNTHETIC`` (a JSON object)."""
    raw = os.environ.get(SYNTHETIC_ENV, "").strip() or "{}"
    try:
        opts = json.loads(raw)
        return SyntheticFactory(**opts)(cfg)
    except (json.JSONDecodeError, TypeError) as exc:
        raise ConfigError(
            f"${SYNTHETIC_ENV} must be a JSON object with sleep_s, fail_rate, nan_rate, tiny, seed_noise ({exc})"
        ) from None
