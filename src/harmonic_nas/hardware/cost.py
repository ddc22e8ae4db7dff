"""Cost of layers and of multimodal architectures from a device LUT.

Cost of a multimodal model = Σ backbone layers (``layer_configs`` of each modality's subnet)
+ Σ fusion operators + fusion reshape and classifier layers ("fusion extra", left out by the paper)
+ the LUT's per-model overhead (one inference call; zero for imported tables).
``paper_total`` = backbones + fusion operators, comparable with the published numbers.

A key missing from the LUT is a :class:`LUTError` naming it, unless the fallback predictor is on:
then the layer is predicted from a per-kind non-negative least-squares fit of the LUT's own
entries on (MACs, bytes, 1), and its key is listed in ``predicted_keys``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.optimize import nnls

from harmonic_nas.backbones.layers import LayerSpec
from harmonic_nas.errors import GenomeError, LUTError
from harmonic_nas.hardware.features import feature_vector
from harmonic_nas.hardware.keys import lut_key, parse_key
from harmonic_nas.hardware.lut import LUT

if TYPE_CHECKING:
    from harmonic_nas.fusion import ArchSpec

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cost:
    """Latency (ms) and energy (mJ); ``predicted_keys`` lists layers the fallback predicted."""

    latency_ms: float = 0.0
    energy_mj: float = 0.0
    predicted_keys: tuple[str, ...] = ()

    def __add__(self, other: Cost) -> Cost:
        keys = self.predicted_keys + tuple(
            k for k in other.predicted_keys if k not in self.predicted_keys
        )
        return Cost(self.latency_ms + other.latency_ms, self.energy_mj + other.energy_mj, keys)

    def __sub__(self, other: Cost) -> Cost:
        """Remove ``other``'s cost (its layers are part of ``self``; flags are kept)."""
        return Cost(
            max(self.latency_ms - other.latency_ms, 0.0),
            max(self.energy_mj - other.energy_mj, 0.0),
            self.predicted_keys,
        )

    @property
    def predicted(self) -> bool:
        return bool(self.predicted_keys)

    def to_json(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "energy_mj": self.energy_mj,
            "predicted_keys": list(self.predicted_keys),
        }


def _sum(costs: Iterable[Cost]) -> Cost:
    total = Cost()
    for c in costs:
        total = total + c
    return total


@dataclass(frozen=True)
class ArchCost:
    """The breakdown of one multimodal architecture's cost."""

    per_modality: dict[str, Cost]
    fusion_ops: Cost
    fusion_extra: Cost
    overhead: Cost = field(default_factory=Cost)
    pruned: Cost = field(default_factory=Cost)

    @property
    def backbones(self) -> Cost:
        return _sum(self.per_modality.values())

    @property
    def paper_total(self) -> Cost:
        """Backbones + fusion operators (what the paper reports)."""
        return self.backbones + self.fusion_ops

    @property
    def total(self) -> Cost:
        """What one inference costs: backbones, fusion operators, reshape + head layers and the
        per-model overhead, minus the backbone layers the deployed model never runs (``pruned``,
        only for backends whose graph drops dead code)."""
        return self.paper_total + self.fusion_extra + self.overhead - self.pruned

    @property
    def predicted_keys(self) -> tuple[str, ...]:
        return self.total.predicted_keys

    def to_json(self) -> dict[str, Any]:
        return {
            "per_modality": {m: c.to_json() for m, c in self.per_modality.items()},
            "fusion_ops": self.fusion_ops.to_json(),
            "fusion_extra": self.fusion_extra.to_json(),
            "overhead": self.overhead.to_json(),
            "pruned": self.pruned.to_json(),
            "total": self.total.to_json(),
            "paper_total": self.paper_total.to_json(),
        }


class _Fit:
    """Non-negative least squares of latency and energy on a subset of (MACs, bytes, 1)."""

    def __init__(self, specs: Sequence[LayerSpec], lat: Sequence[float], en: Sequence[float]):
        x = np.array([feature_vector(s) for s in specs], dtype=np.float64)
        n = len(specs)
        if n >= 3:
            self.cols = [0, 1, 2]
        elif n == 2:
            self.cols = [0, 2]
        else:
            self.cols = [0] if x[0, 0] > 0 else [2]
        x = x[:, self.cols]
        # scale columns so nnls is well conditioned; weight rows by 1/y (relative error)
        self.scale = np.maximum(np.abs(x).max(axis=0), 1e-12)
        xs = x / self.scale
        self.coef_lat = self._solve(xs, np.asarray(lat, dtype=np.float64))
        self.coef_en = self._solve(xs, np.asarray(en, dtype=np.float64))

    @staticmethod
    def _solve(xs: np.ndarray, y: np.ndarray) -> np.ndarray:
        w = 1.0 / np.maximum(y, 1e-9)
        coef, _ = nnls(xs * w[:, None], y * w)
        if not np.any(coef > 0):  # degenerate: fall back to the mean as a constant-like fit
            pred = xs.sum(axis=1)
            coef = np.full(xs.shape[1], float(np.mean(y) / max(np.mean(pred), 1e-12)))
        return np.asarray(coef)

    def predict(self, spec: LayerSpec) -> tuple[float, float]:
        x = np.array(feature_vector(spec), dtype=np.float64)[self.cols] / self.scale
        return float(x @ self.coef_lat), float(x @ self.coef_en)


class FallbackPredictor:
    """Per layer-kind predictor fitted on a LUT's own entries (fusion ops: per operator if the
    LUT has that operator at two or more sizes)."""

    def __init__(self, lut: LUT):
        self._groups: dict[tuple[str, ...], tuple[list[LayerSpec], list[float], list[float]]] = {}
        for key, entry in lut.entries.items():
            spec = parse_key(key)
            for group in self._group_keys(spec):
                specs, lat, en = self._groups.setdefault(group, ([], [], []))
                specs.append(spec)
                lat.append(entry.latency_ms)
                en.append(entry.energy_mj)
        self._fits: dict[tuple[str, ...], _Fit] = {}

    @staticmethod
    def _group_keys(spec: LayerSpec) -> list[tuple[str, ...]]:
        groups: list[tuple[str, ...]] = [("*",), (spec.kind,)]
        if spec.kind == "fusion_op":
            groups.append((spec.kind, spec.op))
        return groups

    def _fit_for(self, spec: LayerSpec) -> _Fit:
        candidates: list[tuple[str, ...]] = []
        if spec.kind == "fusion_op":
            candidates.append((spec.kind, spec.op))
        candidates += [(spec.kind,), ("*",)]
        for group in candidates:
            data = self._groups.get(group)
            minimum = 2 if len(group) == 2 else 1
            if data is not None and len(data[0]) >= minimum:
                if group not in self._fits:
                    self._fits[group] = _Fit(*data)
                return self._fits[group]
        raise LUTError("the fallback predictor needs a LUT with at least one entry")

    def predict(self, spec: LayerSpec) -> tuple[float, float]:
        """``(latency_ms, energy_mj)`` of a layer absent from the LUT (never negative)."""
        lat, en = self._fit_for(spec).predict(spec)
        return max(lat, 0.0), max(en, 0.0)


class CostModel:
    """Costs layers and architectures from one LUT (``fallback`` predicts missing keys)."""

    def __init__(self, lut: LUT, fallback: bool = False):
        self.lut = lut
        self.fallback = fallback
        self._predictor: FallbackPredictor | None = None

    @property
    def predictor(self) -> FallbackPredictor:
        if self._predictor is None:
            self._predictor = FallbackPredictor(self.lut)
        return self._predictor

    def layer_cost(self, spec: LayerSpec) -> Cost:
        """The cost of one layer (from the LUT, else predicted when ``fallback``)."""
        key = lut_key(spec)
        entry = self.lut.get(key)
        if entry is not None:
            return Cost(entry.latency_ms, entry.energy_mj)
        if not self.fallback:
            self.lut.entry(key)  # raises the one-line LUTError naming the key
        lat, en = self.predictor.predict(spec)
        logger.debug("predicted %s: %.4f ms, %.4f mJ", key, lat, en)
        return Cost(lat, en, (key,))

    def cost_layers(self, specs: Iterable[LayerSpec]) -> Cost:
        """Σ of the layers' costs (no per-model overhead)."""
        return _sum(self.layer_cost(s) for s in specs)

    def overhead(self) -> Cost:
        """The LUT's per-model constant (one inference call), zero when it has none."""
        o = self.lut.overhead
        return Cost() if o is None else Cost(o.latency_ms, o.energy_mj)

    def cost_model_layers(self, specs: Iterable[LayerSpec]) -> Cost:
        """Σ of the layers plus the per-model overhead: the cost of ``specs`` run as one model."""
        return self.cost_layers(specs) + self.overhead()

    def op_costs(self, C: int, L: int, ops: Iterable[str]) -> dict[str, tuple[float, float]]:
        """``op -> (latency_ms, energy_mj)`` at (C, L), predicted when missing and ``fallback``."""
        out: dict[str, tuple[float, float]] = {}
        for op in ops:
            spec = LayerSpec(
                kind="fusion_op", input_shape=(C, L), in_ch=C, out_ch=C, op=op, C=C, L=L
            )
            c = self.layer_cost(spec)
            out[op] = (c.latency_ms, c.energy_mj)
        return out

    @property
    def prunes_dead_layers(self) -> bool:
        """Whether the LUT's backend runs an exported graph, from which layers whose outputs the
        model never uses are dropped (ONNX Runtime); eager backends run them anyway."""
        return self.lut.device.backend == "onnxruntime"

    def _backbone_specs(self, arch: ArchSpec) -> dict[str, list[LayerSpec]]:
        from harmonic_nas.hardware.space import backbone_specs

        out = {}
        for m, ma in arch.modalities.items():
            try:
                out[m] = backbone_specs(ma.preset, tuple(ma.shape), ma.genome, arch.n_classes)
            except GenomeError as exc:
                raise GenomeError(f"modality '{m}': {exc}") from None
        return out

    def backbone_costs(self, arch: ArchSpec) -> dict[str, Cost]:
        """Per-modality cost of the architecture's backbones (every layer, DESIGN.md rules)."""
        return {m: self.cost_layers(s) for m, s in self._backbone_specs(arch).items()}

    def cost_backbones(self, arch: ArchSpec) -> Cost:
        """The cheap pass: Σ backbone layers (no genotype needed, no overhead)."""
        return _sum(self.backbone_costs(arch).values())

    def cost_arch(self, arch: ArchSpec) -> ArchCost:
        """The full breakdown; needs ``arch.genotype`` (``GenomeError`` otherwise).

        With a backend that runs an exported graph (ONNX Runtime), ``pruned`` holds the layers
        the model's output does not depend on (:func:`~harmonic_nas.hardware.space.live_graph`);
        ``total`` leaves them out, ``paper_total`` keeps every layer as the paper did.
        """
        from harmonic_nas.fusion import point_refs
        from harmonic_nas.fusion.model import used_point_indices
        from harmonic_nas.hardware.space import (
            arch_feature_shapes,
            arch_fusion_specs,
            is_operator,
            live_graph,
        )

        specs = self._backbone_specs(arch)
        fusion = arch_fusion_specs(arch)
        ops = [s for s in fusion if is_operator(s)]
        extra = [s for s in fusion if not is_operator(s)]
        pruned = Cost()
        if self.prunes_dead_layers and arch.genotype is not None:
            live = live_graph(arch)
            dead: list[LayerSpec] = []
            for m, layers in specs.items():
                dead += layers[live.backbone_layers[m] :]
            g = arch.genotype
            # fusion_layer_specs order: reshapes of the used points, ops cell by cell, head
            n_points = len(point_refs(arch, arch_feature_shapes(arch)))
            reshapes = [s for s in fusion if s.kind == "fusion_reshape"]
            for point, spec in zip(used_point_indices(g, n_points), reshapes, strict=True):
                if point not in live.points:
                    dead.append(spec)
            positions = [(i, j) for i, c in enumerate(g.cells) for j in range(len(c.nodes))]
            dead += [s for pos, s in zip(positions, ops, strict=True) if pos not in live.nodes]
            norms = [s for s in fusion if s.kind == "fusion_op" and not is_operator(s)]
            dead += norms[: len(norms) - len(live.cells)]
            pruned = self.cost_layers(dead)
        return ArchCost(
            per_modality={m: self.cost_layers(s) for m, s in specs.items()},
            fusion_ops=self.cost_layers(ops),
            fusion_extra=self.cost_layers(extra),
            overhead=self.overhead(),
            pruned=pruned,
        )
