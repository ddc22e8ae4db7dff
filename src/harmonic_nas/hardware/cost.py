"""Cost of layers and of multimodal architectures from a device LUT.

Cost of a multimodal model = Σ backbone layers (``layer_configs`` of each modality's subnet)
+ Σ fusion operators + fusion reshape and classifier layers ("fusion extra", left out by the paper)
+ the LUT's per-model overhead (one inference call; zero for imported tables).
``raw_total`` is that sum (minus the layers an exported graph never runs); ``total`` is the
calibrated total, ``raw_total`` mapped to whole-model latency by the LUT's
:class:`~harmonic_nas.hardware.calibration.Calibration` (fitted on whole models timed at
profiling time; the identity when the table has none); ``paper_total`` = backbones + fusion
operators, comparable with the published numbers. Entries the table marks as predicted (not
measured on the device) are flagged in ``predicted_keys`` like the fallback's predictions.

A key missing from the LUT is a :class:`LUTError` naming it, unless the fallback predictor is on:
then the layer is predicted from a non-negative least-squares fit on (MACs, bytes, 1) of the LUT's
entries OF THE SAME KIND (a fusion operator: of the same operator), and its key is listed in
``predicted_keys``. A kind of which the table has no entry at all is never fitted from another
kind's measurements (a backbone table says nothing about fusion operators): such a layer is NOT
COSTED on that device, its cost left out of every total and its key listed in ``uncosted_keys``
(flagged in candidates.json, pareto.json and the report).
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
from harmonic_nas.hardware.calibration import Calibration, fit_calibration
from harmonic_nas.hardware.features import feature_vector, params
from harmonic_nas.hardware.keys import lut_key, parse_key
from harmonic_nas.hardware.lut import LUT

if TYPE_CHECKING:
    from harmonic_nas.fusion import ArchSpec, BaseCost

logger = logging.getLogger(__name__)


def _union(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    return a + tuple(k for k in b if k not in a)


@dataclass(frozen=True)
class Cost:
    """Latency (ms) and energy (mJ); ``predicted_keys`` lists layers the fallback predicted,
    ``uncosted_keys`` layers the table cannot cost (left out of the figures)."""

    latency_ms: float = 0.0
    energy_mj: float = 0.0
    predicted_keys: tuple[str, ...] = ()
    uncosted_keys: tuple[str, ...] = ()

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.latency_ms + other.latency_ms,
            self.energy_mj + other.energy_mj,
            _union(self.predicted_keys, other.predicted_keys),
            _union(self.uncosted_keys, other.uncosted_keys),
        )

    def __sub__(self, other: Cost) -> Cost:
        """Remove ``other``'s cost (its layers are part of ``self``; flags are kept)."""
        return Cost(
            max(self.latency_ms - other.latency_ms, 0.0),
            max(self.energy_mj - other.energy_mj, 0.0),
            self.predicted_keys,
            self.uncosted_keys,
        )

    @property
    def predicted(self) -> bool:
        return bool(self.predicted_keys)

    def to_json(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "energy_mj": self.energy_mj,
            "predicted_keys": list(self.predicted_keys),
            "uncosted_keys": list(self.uncosted_keys),
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
    weight_bytes: float = 0.0
    calibration: Calibration | None = None
    energy_modelled: bool = False

    @property
    def backbones(self) -> Cost:
        return _sum(self.per_modality.values())

    @property
    def paper_total(self) -> Cost:
        """Backbones + fusion operators (what the paper reports)."""
        return self.backbones + self.fusion_ops

    @property
    def raw_total(self) -> Cost:
        """The LUT sum: backbones, fusion operators, reshape + head layers and the per-model
        overhead, minus the backbone layers the deployed model never runs (``pruned``, only for
        backends whose graph drops dead code)."""
        return self.paper_total + self.fusion_extra + self.overhead - self.pruned

    @property
    def total(self) -> Cost:
        """What one inference costs: :attr:`raw_total` through the LUT's calibration
        (:func:`calibrated`; ``weight_bytes`` are the live layers' weights)."""
        return calibrated(self.raw_total, self.weight_bytes, self.calibration, self.energy_modelled)

    @property
    def predicted_keys(self) -> tuple[str, ...]:
        return self.total.predicted_keys

    @property
    def uncosted_keys(self) -> tuple[str, ...]:
        return self.total.uncosted_keys

    def to_json(self) -> dict[str, Any]:
        return {
            "per_modality": {m: c.to_json() for m, c in self.per_modality.items()},
            "fusion_ops": self.fusion_ops.to_json(),
            "fusion_extra": self.fusion_extra.to_json(),
            "overhead": self.overhead.to_json(),
            "pruned": self.pruned.to_json(),
            "raw_total": self.raw_total.to_json(),
            "weight_bytes": self.weight_bytes,
            "calibration": None if self.calibration is None else self.calibration.to_json(),
            "total": self.total.to_json(),
            "paper_total": self.paper_total.to_json(),
        }


def calibrated(
    raw: Cost, weight_bytes: float, calibration: Calibration | None, energy_modelled: bool
) -> Cost:
    """``raw`` with its latency mapped by ``calibration``; energy follows the latency when it is
    modelled (constant power x latency), a measured energy is left as it is."""
    if calibration is None or calibration.form == "identity":
        return raw
    lat = calibration.apply(raw.latency_ms, weight_bytes)
    energy = raw.energy_mj
    if energy_modelled and raw.latency_ms > 0:
        energy *= lat / raw.latency_ms
    return Cost(lat, energy, raw.predicted_keys, raw.uncosted_keys)


def weight_bytes(specs: Iterable[LayerSpec]) -> float:
    """Bytes of float32 weights of ``specs`` (the calibration's second regressor)."""
    return float(sum(4.0 * params(s) for s in specs))


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
    """Per layer-kind predictor fitted on a LUT's own entries of that kind (a fusion operator: of
    that operator, at its other sizes). Never fits a kind from another kind's measurements."""

    def __init__(self, lut: LUT):
        self._groups: dict[tuple[str, ...], tuple[list[LayerSpec], list[float], list[float]]] = {}
        for key, entry in lut.entries.items():
            spec = parse_key(key)
            specs, lat, en = self._groups.setdefault(self._group(spec), ([], [], []))
            specs.append(spec)
            lat.append(entry.latency_ms)
            en.append(entry.energy_mj)
        self._fits: dict[tuple[str, ...], _Fit] = {}

    @staticmethod
    def _group(spec: LayerSpec) -> tuple[str, ...]:
        return (spec.kind, str(spec.op)) if spec.kind == "fusion_op" else (spec.kind,)

    def can_predict(self, spec: LayerSpec) -> bool:
        """Whether the table has entries of this layer's kind to fit on."""
        return self._group(spec) in self._groups

    def predict(self, spec: LayerSpec) -> tuple[float, float]:
        """``(latency_ms, energy_mj)`` of a layer absent from the LUT (never negative)."""
        group = self._group(spec)
        data = self._groups.get(group)
        if data is None:
            name = f"fusion operator {spec.op}" if spec.kind == "fusion_op" else spec.kind
            raise LUTError(
                f"the table has no {name} layer to predict {lut_key(spec)} from; import or "
                "profile a table with that kind of layer"
            )
        if group not in self._fits:
            self._fits[group] = _Fit(*data)
        lat, en = self._fits[group].predict(spec)
        return max(lat, 0.0), max(en, 0.0)


class WeightBytes:
    """Shaped like :class:`CostModel` for the search's bounds: a layer "costs" its weight bytes
    (both figures), so the bound code that sums per-slot maxima bounds the weights too."""

    def layer_cost(self, spec: LayerSpec) -> Cost:
        b = weight_bytes([spec])
        return Cost(b, b)

    def overhead(self) -> Cost:
        return Cost()


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
            flagged = (key,) if key in self.lut.predicted else ()
            return Cost(entry.latency_ms, entry.energy_mj, flagged)
        if not self.fallback:
            self.lut.entry(key)  # raises the one-line LUTError naming the key
        if not self.predictor.can_predict(spec):
            logger.debug("not costed on this device (no layer of its kind): %s", key)
            return Cost(uncosted_keys=(key,))
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
        """``op -> (latency_ms, energy_mj)`` at (C, L), predicted when missing and ``fallback``.

        An operator the table cannot cost at all is a :class:`LUTError`: the hardware term must
        never see an unknown operator as free."""
        from harmonic_nas.fusion import operator_spec

        out: dict[str, tuple[float, float]] = {}
        for op in ops:
            c = self.layer_cost(operator_spec(op, C, L))
            if c.uncosted_keys:
                raise LUTError(
                    f"the device table has no entry of fusion operator {op} (needed at C={C}, "
                    f"L={L}); import its fusion table or profile it on the device"
                )
            out[op] = (c.latency_ms, c.energy_mj)
        return out

    @property
    def prunes_dead_layers(self) -> bool:
        """Whether the LUT's backend runs an exported graph, from which layers whose outputs the
        model never uses are dropped (ONNX Runtime); eager backends run them anyway."""
        return self.lut.device.backend == "onnxruntime"

    def _backbone_specs(self, arch: ArchSpec) -> dict[str, list[LayerSpec]]:
        from harmonic_nas.hardware.inventory import backbone_specs

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

    def base_cost(self, arch: ArchSpec) -> BaseCost:
        """The scale of the fusion search's hardware term: the candidate's cost outside its
        fusion operators (backbones + per-model overhead), and whether energy is modelled."""
        from harmonic_nas.fusion import BaseCost

        rest = self.cost_backbones(arch) + self.overhead()
        return BaseCost(rest.latency_ms, rest.energy_mj, self.lut.energy_modelled)

    def cost_arch(self, arch: ArchSpec) -> ArchCost:
        """The full breakdown; needs ``arch.genotype`` (``GenomeError`` otherwise).

        With a backend that runs an exported graph (ONNX Runtime), ``pruned`` holds the layers
        the model's output does not depend on (:func:`~harmonic_nas.fusion.live_graph`);
        ``total`` leaves them out, ``paper_total`` keeps every layer as the paper did.
        """
        from harmonic_nas.fusion import fusion_layers, live_graph
        from harmonic_nas.hardware.inventory import feature_shapes, live_prefix

        specs = self._backbone_specs(arch)
        shapes = {m: feature_shapes(s) for m, s in specs.items()}
        fusion = fusion_layers(arch, shapes)
        ops = [x.spec for x in fusion if x.role == "node"]
        extra = [x.spec for x in fusion if x.role != "node"]
        pruned = Cost()
        dead: list[LayerSpec] = []
        if self.prunes_dead_layers:
            live = live_graph(arch, shapes)
            for m, layers in specs.items():
                dead += layers[live_prefix(layers, live.features[m], live.heads) :]
            dead += [x.spec for x in fusion if not live.is_live(x)]
            pruned = self.cost_layers(dead)
        every = [s for layers in specs.values() for s in layers] + [x.spec for x in fusion]
        return ArchCost(
            per_modality={m: self.cost_layers(s) for m, s in specs.items()},
            fusion_ops=self.cost_layers(ops),
            fusion_extra=self.cost_layers(extra),
            overhead=self.overhead(),
            pruned=pruned,
            weight_bytes=max(weight_bytes(every) - weight_bytes(dead), 0.0),
            calibration=self.lut.calibration,
            energy_modelled=self.lut.energy_modelled,
        )

    def calibrated(self, raw: Cost, weight_bytes: float) -> Cost:
        """A raw sum (layers + overhead) through the LUT's calibration (for bounds: the
        calibration is monotone in both arguments)."""
        return calibrated(raw, weight_bytes, self.lut.calibration, self.lut.energy_modelled)


def calibrate_lut(lut: LUT, archs: Sequence[ArchSpec], measured_ms: Sequence[float]) -> None:
    """Fit ``lut.calibration`` on whole models ``archs`` measured at ``measured_ms``
    (:func:`~harmonic_nas.hardware.calibration.fit_calibration`; the raw totals use the table
    itself without calibration)."""
    lut.calibration = None
    model = CostModel(lut, fallback=True)
    costs = [model.cost_arch(a) for a in archs]
    lut.calibration = fit_calibration(
        [c.raw_total.latency_ms for c in costs], [c.weight_bytes for c in costs], measured_ms
    )
    logger.info(
        "calibration on %d models: %s (held-out MAPE %s %%)",
        len(archs),
        lut.calibration.form,
        lut.calibration.heldout_mape_pct,
    )
