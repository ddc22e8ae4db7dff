"""The cost-model validation of a run, read through the record the hardware stage writes.

``luts/<device>.validation.json`` is a :class:`~harmonic_nas.hardware.validation_record.ValidationRecord`
(LUT-predicted vs measured end-to-end latency of random architectures); the report plots its
pairs and lists its scalar fields as they are.
"""

from __future__ import annotations

import logging
from typing import Any

from harmonic_nas.hardware.validation_record import ValidationRecord

logger = logging.getLogger(__name__)

__all__ = ["ValidationRecord", "validation_pairs", "validation_summary"]


def validation_pairs(record: ValidationRecord) -> dict[str, tuple[list[float], list[float]]]:
    """``{"latency": (predicted, measured)}`` (empty when the record holds no sample)."""
    if not record.samples:
        return {}
    return {"latency": (record.predicted_ms, record.measured_ms)}


def _flatten(obj: Any, prefix: str = "", depth: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(obj, dict) and depth < 4:
        for k, v in obj.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict):
                out.update(_flatten(v, key, depth + 1))
            else:
                out[key] = v
    return out


def validation_summary(record: ValidationRecord, limit: int = 24) -> list[tuple[str, str]]:
    """The record's scalar fields (flattened keys, e.g. ``summary.mape_pct``) and list sizes."""
    rows: list[tuple[str, str]] = []
    for k, v in _flatten(record.to_json()).items():
        if isinstance(v, list):
            rows.append((k, f"list of {len(v)}"))
        elif isinstance(v, float):
            rows.append((k, f"{v:.4g}"))
        elif v is None or isinstance(v, str | int | bool):
            rows.append((k, str(v)))
        if len(rows) >= limit:
            break
    return rows
