"""Reading ``luts/<device>.validation.json`` without depending on its exact keys.

The cost-model validation (hardware stage) compares, per architecture, the LUT-predicted latency
and energy with a measurement of the whole network. Its layout may evolve, so the report looks for
what is there: a list of records (or parallel arrays) with one "predicted" and one "measured"
number per quantity, plus any scalar summary fields, which are shown as they are.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

_PRED = ("pred", "lut", "estim", "model")
_MEAS = ("meas", "actual", "observed", "true", "real", "profil")
_SKIP_LIST_KEYS = ("entries",)


def _quantity(key: str) -> str | None:
    k = key.lower()
    if "lat" in k or k.endswith("_ms") or k.endswith(".ms") or k == "ms":
        return "latency"
    if "energy" in k or "enrg" in k or k.endswith("_mj") or k.endswith(".mj") or k == "mj":
        return "energy"
    return None


def _role(key: str) -> str | None:
    k = key.lower()
    if any(t in k for t in _MEAS):
        return "measured"
    if any(t in k for t in _PRED):
        return "predicted"
    return None


def _is_number(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int | float):
        return True
    if isinstance(v, str):
        try:
            float(v)
        except ValueError:
            return False
        return True
    return False


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


def _match(keys: list[str]) -> dict[str, tuple[str, str]]:
    """quantity -> (predicted key, measured key) among flattened keys."""
    found: dict[str, dict[str, str]] = {}
    for key in keys:
        q, r = _quantity(key), _role(key)
        if q and r:
            found.setdefault(q, {}).setdefault(r, key)
    return {
        q: (roles["predicted"], roles["measured"])
        for q, roles in found.items()
        if "predicted" in roles and "measured" in roles
    }


def _from_records(records: list[Any]) -> dict[str, tuple[list[float], list[float]]]:
    flat = [_flatten(r) for r in records if isinstance(r, dict)]
    if not flat:
        return {}
    numeric_keys: list[str] = []
    for f in flat:
        for k, v in f.items():
            if _is_number(v) and k not in numeric_keys:
                numeric_keys.append(k)
    out: dict[str, tuple[list[float], list[float]]] = {}
    for q, (pk, mk) in _match(numeric_keys).items():
        pred, meas = [], []
        for f in flat:
            if _is_number(f.get(pk)) and _is_number(f.get(mk)):
                pred.append(float(f[pk]))
                meas.append(float(f[mk]))
        if pred:
            out[q] = (pred, meas)
    return out


def _from_arrays(obj: dict[str, Any]) -> dict[str, tuple[list[float], list[float]]]:
    flat = _flatten(obj)
    arrays = {
        k: v for k, v in flat.items() if isinstance(v, list) and v and all(_is_number(x) for x in v)
    }
    out: dict[str, tuple[list[float], list[float]]] = {}
    for q, (pk, mk) in _match(list(arrays)).items():
        p, m = arrays[pk], arrays[mk]
        if len(p) == len(m):
            out[q] = ([float(x) for x in p], [float(x) for x in m])
    return out


def _record_lists(obj: Any, depth: int = 0) -> list[list[Any]]:
    """Every list of objects in ``obj`` (breadth first, a few levels deep)."""
    found: list[list[Any]] = []
    if depth > 3:
        return found
    if isinstance(obj, list) and obj and all(isinstance(x, dict) for x in obj):
        found.append(obj)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if str(k) in _SKIP_LIST_KEYS:
                continue
            found.extend(_record_lists(v, depth + 1))
    return found


def validation_pairs(obj: Any) -> dict[str, tuple[list[float], list[float]]]:
    """``{"latency": (predicted, measured), "energy": (...)}`` found in a validation file."""
    for records in _record_lists(obj):
        pairs = _from_records(records)
        if pairs:
            return pairs
    if isinstance(obj, dict):
        return _from_arrays(obj)
    return {}


def validation_summary(obj: Any, limit: int = 24) -> list[tuple[str, str]]:
    """Scalar fields of a validation file (flattened keys), to show "what is there"."""
    if not isinstance(obj, dict):
        return []
    rows: list[tuple[str, str]] = []
    for k, v in _flatten(obj).items():
        if isinstance(v, list):
            rows.append((k, f"list of {len(v)}"))
        elif isinstance(v, float):
            rows.append((k, f"{v:.4g}"))
        elif v is None or isinstance(v, str | int | bool):
            rows.append((k, str(v)))
        if len(rows) >= limit:
            break
    return rows
