"""The device lookup table (LUT): per-layer latency (ms) and energy (mJ) at batch size 1.

File format (JSON, ``schema_version`` 2)::

    {
      "schema_version": 2,
      "device": {"name": "host", "description": "...", "backend": "onnxruntime", "threads": 1,
                 "batch_size": 1, "identity": {"cpu", "cores", "caches", "runtime",
                 "runtime_version", "provider", "threads", ...} | null},
      "units": {"latency": "ms", "energy": "mJ"},
      "energy_source": "rapl" | "nvml" | "jetson-ina3221" | "model:<description>"
                       | "imported:<provenance>",
      "created": "2024-01-01T00:00:00+00:00",
      "overhead": {"latency": {...}, "energy": {...}} | null,
      "meta": {...},
      "calibration": {"form", "a", "w_per_byte", "c_ms", "heldout_mape_pct", "samples", ...}
                     | null,
      "predicted": ["<key>", ...],
      "layer_revisions": {"<key prefix>": <int>, ...},   (absent: every prefix at 1)
      "entries": {"<key>": {"latency": {"mean", "std", "count", "median"[, "p10"]},
                            "energy": {"mean", "std", "count"}}}
    }

``device.identity`` is the machine the table was measured on (:mod:`.identity`);
``calibration`` maps the per-layer sum to whole-model latency (:mod:`.calibration`);
``predicted`` lists entries that were not measured but predicted from other devices' tables
(``lut import --sample``), flagged wherever they are used. Version 1 files (no identity,
calibration or predicted entries) are still read.

``layer_revisions`` records the implementation revision (:data:`.keys.LAYER_REVISIONS`) each key
prefix was measured at. Loading a measured table drops the entries of a prefix measured at an
older revision (logged), so that they are profiled again; imported tables keep theirs (they time
the authors' implementation, not ours).

``overhead`` is a per-model constant (one inference call of a whole model: input feed, output
fetch, session dispatch) that is added once per costed model; per-layer entries of a profiled LUT
are net of the per-call part of that overhead (see :mod:`harmonic_nas.hardware.profiler`).
Imported tables have no overhead (the paper summed raw per-layer values). ``count`` 0 means the
value is an aggregate of an unknown number of measurements (imported tables).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harmonic_nas.backbones.layers import LayerSpec
from harmonic_nas.errors import LUTError
from harmonic_nas.hardware.calibration import Calibration
from harmonic_nas.hardware.identity import MachineIdentity
from harmonic_nas.hardware.keys import LAYER_REVISIONS, lut_key, parse_key
from harmonic_nas.utils.io import (
    DuplicateKeyError,
    atomic_write_json,
    is_schema_version,
    load_json,
)
from harmonic_nas.utils.limits import MAX_LAYER_COST

logger = logging.getLogger(__name__)

LUT_SCHEMA_VERSION = 2
#: older versions this code still reads
READABLE_VERSIONS = (1, 2)
UNITS = {"latency": "ms", "energy": "mJ"}
BACKENDS = ("onnxruntime", "torch", "unknown")
_ENERGY_SOURCE = re.compile(r"^(rapl|nvml|jetson-ina3221|model:.+|imported:.+)$")


def now_iso() -> str:
    """The current UTC time, ISO 8601, to the second."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class DeviceInfo:
    """What was measured: device name, a description, backend and threads, batch size 1, and
    the identity of the machine (None for imported published tables and version-1 files)."""

    name: str
    description: str = ""
    backend: str = "unknown"
    threads: int = 0
    batch_size: int = 1
    identity: MachineIdentity | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "backend": self.backend,
            "threads": self.threads,
            "batch_size": self.batch_size,
            "identity": None if self.identity is None else self.identity.to_json(),
        }


@dataclass(frozen=True)
class LatencyStats:
    """Latency statistics in ms over ``count`` timed runs.

    The cost model uses :attr:`value`: the 10th percentile ``p10`` when the table has it
    (profiled tables), else the median, else the mean. On a shared machine most runs are slowed
    by other processes, so the median drifts with the load while a low percentile estimates the
    uncontended latency reproducibly (see :mod:`harmonic_nas.hardware.profiler`).
    """

    mean: float
    std: float = 0.0
    count: int = 0
    median: float | None = None
    p10: float | None = None

    @property
    def value(self) -> float:
        if self.p10 is not None:
            return self.p10
        return self.mean if self.median is None else self.median

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mean": self.mean,
            "std": self.std,
            "count": self.count,
            "median": self.mean if self.median is None else self.median,
        }
        if self.p10 is not None:
            out["p10"] = self.p10
        return out


@dataclass(frozen=True)
class EnergyStats:
    """Energy statistics in mJ per inference over ``count`` measurement windows."""

    mean: float
    std: float = 0.0
    count: int = 0

    @property
    def value(self) -> float:
        return self.mean

    def to_json(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "count": self.count}


@dataclass(frozen=True)
class LUTEntry:
    """The cost of one layer (or of the per-model overhead)."""

    latency: LatencyStats
    energy: EnergyStats

    @classmethod
    def point(cls, latency_ms: float, energy_mj: float) -> LUTEntry:
        """An entry from single aggregated values (unknown sample count)."""
        return cls(LatencyStats(latency_ms, 0.0, 0, latency_ms), EnergyStats(energy_mj, 0.0, 0))

    @property
    def latency_ms(self) -> float:
        return self.latency.value

    @property
    def energy_mj(self) -> float:
        return self.energy.value

    def to_json(self) -> dict[str, Any]:
        return {"latency": self.latency.to_json(), "energy": self.energy.to_json()}


def _num(obj: Any, name: str, where: str, *, integer: bool = False) -> float:
    if isinstance(obj, bool) or not isinstance(obj, int | float):
        raise LUTError(f"{where}: '{name}' must be a number, got {obj!r:.40}")
    value = float(obj)
    if math.isnan(value) or math.isinf(value):
        raise LUTError(f"{where}: '{name}' is {value}; costs must be finite, re-profile or fix it")
    if value < 0:
        raise LUTError(f"{where}: '{name}' is negative ({value}); costs must be >= 0")
    if value > MAX_LAYER_COST and not integer:
        raise LUTError(
            f"{where}: '{name}' is {value:g}, above the limit of {MAX_LAYER_COST:g} for one "
            "layer (sums of such costs overflow); re-profile or fix it"
        )
    if integer and value != int(value):
        raise LUTError(f"{where}: '{name}' must be an integer, got {value}")
    return value


def _stats_dict(obj: Any, what: str, where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise LUTError(f"{where}: '{what}' must be an object with mean, std, count")
    if "mean" not in obj:
        raise LUTError(f"{where}: '{what}' lacks 'mean'")
    return obj


def entry_from_json(obj: Any, where: str) -> LUTEntry:
    """Validate one entry (finite, non-negative numbers) into a :class:`LUTEntry`."""
    if not isinstance(obj, dict) or "latency" not in obj or "energy" not in obj:
        raise LUTError(f"{where}: an entry must be an object with 'latency' and 'energy'")
    lat = _stats_dict(obj["latency"], "latency", where)
    en = _stats_dict(obj["energy"], "energy", where)
    median, p10 = lat.get("median"), lat.get("p10")
    latency = LatencyStats(
        mean=_num(lat["mean"], "latency.mean", where),
        std=_num(lat.get("std", 0.0), "latency.std", where),
        count=int(_num(lat.get("count", 0), "latency.count", where, integer=True)),
        median=None if median is None else _num(median, "latency.median", where),
        p10=None if p10 is None else _num(p10, "latency.p10", where),
    )
    energy = EnergyStats(
        mean=_num(en["mean"], "energy.mean", where),
        std=_num(en.get("std", 0.0), "energy.std", where),
        count=int(_num(en.get("count", 0), "energy.count", where, integer=True)),
    )
    return LUTEntry(latency, energy)


def _drop_stale(entries: dict[str, LUTEntry], revisions: dict[str, int], source: str) -> None:
    """Remove (in place) the entries of key prefixes measured at an older implementation
    revision than :data:`LAYER_REVISIONS`, and mark those prefixes current: what a later
    profiling adds is measured on today's implementation."""
    for prefix, current in LAYER_REVISIONS.items():
        old = revisions.get(prefix, 1)
        if old >= current:
            continue
        stale = [k for k in entries if k.startswith(prefix + "-")]
        for k in stale:
            del entries[k]
        revisions[prefix] = current
        if stale:
            logger.info(
                "LUT %s: %d %s entries were measured at an older implementation (revision %d, "
                "now %d); they are profiled again",
                source,
                len(stale),
                prefix,
                old,
                current,
            )


@dataclass
class LUT:
    """A device lookup table. Keys are built by :func:`~harmonic_nas.hardware.keys.lut_key`."""

    device: DeviceInfo
    energy_source: str
    entries: dict[str, LUTEntry] = field(default_factory=dict)
    created: str = field(default_factory=now_iso)
    overhead: LUTEntry | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    calibration: Calibration | None = None
    predicted: frozenset[str] = frozenset()
    layer_revisions: dict[str, int] = field(default_factory=lambda: dict(LAYER_REVISIONS))

    def __post_init__(self) -> None:
        if not _ENERGY_SOURCE.match(self.energy_source):
            raise LUTError(
                f"LUT energy_source {self.energy_source!r} is not one of rapl, nvml, "
                "jetson-ina3221, model:<description>, imported:<provenance>"
            )

    @property
    def energy_modelled(self) -> bool:
        """Energy is a model of latency (constant power x latency), not a measurement: it is
        then no objective of its own."""
        return self.energy_source.startswith("model:")

    # -- lookup ------------------------------------------------------------------------------
    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, key: str) -> LUTEntry | None:
        return self.entries.get(key)

    def entry(self, key: str) -> LUTEntry:
        """The entry of ``key``; a missing key is a one-line :class:`LUTError` naming it."""
        try:
            return self.entries[key]
        except KeyError:
            name = self.device.name
            raise LUTError(
                f"LUT of device '{name}' has no entry for layer '{key}'; profile the search "
                f"space on that device (`harmonic-nas profile CONFIG --device {name}`) or enable "
                "the fallback predictor (--fallback, or device.fallback_predictor in the config)"
            ) from None

    def missing(self, specs: Iterable[LayerSpec]) -> list[str]:
        """Keys of ``specs`` that the table lacks (sorted, distinct)."""
        return sorted({lut_key(s) for s in specs} - set(self.entries))

    def op_costs(self, C: int, L: int, ops: Iterable[str]) -> dict[str, tuple[float, float]]:
        """``op -> (latency_ms, energy_mj)`` of fusion operators at channels C and length L."""
        out: dict[str, tuple[float, float]] = {}
        for op in ops:
            spec = LayerSpec(
                kind="fusion_op", input_shape=(C, L), in_ch=C, out_ch=C, op=op, C=C, L=L
            )
            e = self.entry(lut_key(spec))
            out[op] = (e.latency_ms, e.energy_mj)
        return out

    def merge(self, other: LUT, *, overwrite: bool = True) -> None:
        """Add ``other``'s entries (replacing ours when ``overwrite``); an entry keeps the
        predicted flag of the table it comes from."""
        predicted = set(self.predicted)
        for key, value in other.entries.items():
            if overwrite or key not in self.entries:
                self.entries[key] = value
                if key in other.predicted:
                    predicted.add(key)
                else:
                    predicted.discard(key)
        self.predicted = frozenset(predicted)

    # -- IO ----------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": LUT_SCHEMA_VERSION,
            "device": self.device.to_json(),
            "units": dict(UNITS),
            "energy_source": self.energy_source,
            "created": self.created,
            "overhead": None if self.overhead is None else self.overhead.to_json(),
            "meta": self.meta,
            "calibration": None if self.calibration is None else self.calibration.to_json(),
            "predicted": sorted(self.predicted),
            "layer_revisions": dict(sorted(self.layer_revisions.items())),
            "entries": {k: self.entries[k].to_json() for k in sorted(self.entries)},
        }

    @classmethod
    def from_json(cls, obj: Any, source: str = "<LUT>") -> LUT:
        """Validate a parsed LUT document (schema version, units, keys, finite >= 0 costs)."""
        if not isinstance(obj, dict):
            raise LUTError(f"LUT {source} must be a JSON object")
        version = obj.get("schema_version")
        if not any(is_schema_version(version, v) for v in READABLE_VERSIONS):
            raise LUTError(
                f"LUT {source} has schema_version {version!r}, expected one of "
                f"{', '.join(map(str, READABLE_VERSIONS))}; "
                "re-profile or re-import it with this version of harmonic-nas"
            )
        dev = obj.get("device")
        if not isinstance(dev, dict) or not isinstance(dev.get("name"), str) or not dev["name"]:
            raise LUTError(f"LUT {source}: 'device' must be an object with a non-empty 'name'")
        if dev.get("batch_size", 1) != 1:
            raise LUTError(f"LUT {source}: batch_size must be 1, got {dev.get('batch_size')!r}")
        backend = dev.get("backend", "unknown")
        if backend not in BACKENDS:
            raise LUTError(f"LUT {source}: unknown backend {backend!r}; expected one of {BACKENDS}")
        threads = dev.get("threads", 0)
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise LUTError(f"LUT {source}: 'threads' must be a non-negative integer")
        identity_raw = dev.get("identity")
        device = DeviceInfo(
            name=dev["name"],
            description=str(dev.get("description", "")),
            backend=backend,
            threads=threads,
            identity=None
            if identity_raw is None
            else MachineIdentity.from_json(identity_raw, f"LUT {source} device.identity"),
        )
        units = obj.get("units", UNITS)
        if units != UNITS:
            raise LUTError(f"LUT {source}: units must be {UNITS}, got {units!r}")
        source_field = obj.get("energy_source")
        if not isinstance(source_field, str) or not _ENERGY_SOURCE.match(source_field):
            raise LUTError(
                f"LUT {source}: energy_source {source_field!r} is not one of rapl, nvml, "
                "jetson-ina3221, model:<description>, imported:<provenance>"
            )
        raw = obj.get("entries")
        if not isinstance(raw, dict):
            raise LUTError(f"LUT {source}: 'entries' must be an object mapping keys to costs")
        entries: dict[str, LUTEntry] = {}
        for key, value in raw.items():
            parse_key(key)
            entries[key] = entry_from_json(value, f"LUT {source} entry '{key}'")
        overhead_raw = obj.get("overhead")
        overhead = (
            None
            if overhead_raw is None
            else entry_from_json(overhead_raw, f"LUT {source} 'overhead'")
        )
        meta = obj.get("meta", {})
        if not isinstance(meta, dict):
            raise LUTError(f"LUT {source}: 'meta' must be an object")
        cal_raw = obj.get("calibration")
        calibration = (
            None if cal_raw is None else Calibration.from_json(cal_raw, f"LUT {source} calibration")
        )
        predicted = obj.get("predicted", [])
        if not isinstance(predicted, list) or not set(predicted) <= set(entries):
            raise LUTError(f"LUT {source}: 'predicted' must list keys of the table's entries")
        revisions = obj.get("layer_revisions", {})
        if not isinstance(revisions, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 1
            for k, v in revisions.items()
        ):
            raise LUTError(
                f"LUT {source}: 'layer_revisions' must map key prefixes to integers >= 1"
            )
        revisions = dict(revisions)
        if not source_field.startswith("imported:"):
            _drop_stale(entries, revisions, source)
        return cls(
            device=device,
            energy_source=source_field,
            entries=entries,
            created=str(obj.get("created", "")),
            overhead=overhead,
            meta=meta,
            calibration=calibration,
            predicted=frozenset(p for p in predicted if p in entries),
            layer_revisions=revisions,
        )

    def save(self, path: Path | str) -> Path:
        """Write the table atomically (NaN/inf are refused)."""
        return atomic_write_json(Path(path), self.to_json())

    @classmethod
    def load(cls, path: Path | str) -> LUT:
        """Read and validate a table; every problem is a one-line :class:`LUTError`."""
        path = Path(path)
        if not path.is_file():
            raise LUTError(f"LUT file not found: {path}")
        try:
            obj = load_json(path.read_text(encoding="utf-8"))
        except DuplicateKeyError as exc:
            raise LUTError(f"LUT {path} has a {exc}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            line = getattr(exc, "lineno", "?")
            raise LUTError(
                f"LUT {path} is not valid JSON (line {line}); re-profile or re-import it"
            ) from None
        return cls.from_json(obj, str(path))
