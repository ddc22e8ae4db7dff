"""The fusion search's hardware term: the operators' costs relative to the candidate's whole cost.

Architecture loss = task loss + lambda_lat * E[lat] / T_lat (+ lambda_energy * E[energy] / T_en
when energy is measured, not modelled from latency); see :mod:`harmonic_nas.fusion.search`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from harmonic_nas.config import FusionConfig
from harmonic_nas.errors import LUTError

OpCosts = Mapping[str, tuple[float, float]]
"""op name -> (latency_ms, energy_mj) of that fusion operator at this C, L on the device."""


@dataclass(frozen=True)
class BaseCost:
    """The candidate's cost outside its fusion operators (backbones, reshapes, head, overhead):
    the scale against which the hardware term measures the operators' expected cost."""

    latency_ms: float = 0.0
    energy_mj: float = 0.0
    energy_modelled: bool = False
    """energy = constant power x latency: the energy term would be a second latency term"""


def hardware_vectors(
    op_costs: OpCosts | None,
    ops: Sequence[str],
    fcfg: FusionConfig,
    *,
    n_nodes: int,
    base: BaseCost | None = None,
) -> tuple[Tensor | None, Tensor | None]:
    """Per-op latency and energy divided by the candidate's whole expected cost ``T`` (see the
    module docstring); ``None`` for a term whose lambda is 0 (energy: also when it is modelled).

    ``T = base + n_nodes * mean op cost``; without ``base`` only the fusion operators count.
    """
    base = base or BaseCost()
    use_lat = fcfg.lambda_lat > 0
    use_en = fcfg.lambda_energy > 0 and not base.energy_modelled
    if not (use_lat or use_en):
        return None, None
    if op_costs is None:
        raise LUTError(
            "lambda_lat/lambda_energy > 0 needs fusion operator costs; pass op_costs from the "
            "device LUT (or set both lambdas to 0)"
        )
    missing = [o for o in ops if o not in op_costs]
    if missing:
        raise LUTError(
            f"the LUT has no cost for fusion operator(s) {missing} at C={fcfg.C}, L={fcfg.L}; "
            "profile them (`harmonic-nas profile`) or change fusion.C/L/ops"
        )

    def scaled(i: int, base_value: float) -> Tensor:
        v = torch.tensor([float(op_costs[o][i]) for o in ops], dtype=torch.float32)
        total = base_value + n_nodes * float(v.mean())
        return v / total if total > 0 else torch.zeros_like(v)

    lat = scaled(0, base.latency_ms) if use_lat else None
    en = scaled(1, base.energy_mj) if use_en else None
    return lat, en
