"""``luts/<device>.validation.json``: the cost-model validation as a typed record.

The hardware stage (``harmonic-nas lut validate``) writes it through :meth:`ValidationRecord.save`;
the results stage reads it through :meth:`ValidationRecord.load`. One owner of the file's keys: a
file that does not match is a one-line error naming the problem, never a guess.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harmonic_nas.errors import LUTError
from harmonic_nas.utils.io import atomic_write_json, read_json

logger = logging.getLogger(__name__)

VALIDATION_SCHEMA_VERSION = 1
_FIX = "rerun `harmonic-nas lut validate CONFIG` to regenerate it"


class _Result(Protocol):
    """What :meth:`ValidationRecord.of` needs of a validation result."""

    device: str
    backend: str
    threads: int
    seed: int
    predicted_ms: list[float]
    measured_ms: list[float]
    archs: list[dict[str, Any]]

    def summary(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ValidationSample:
    """One random architecture: its LUT prediction and end-to-end measurement (ms)."""

    predicted_ms: float
    measured_ms: float
    arch: dict[str, Any] | None = None
    """the architecture (``ArchSpec.to_json``)"""
    predicted_keys: tuple[str, ...] | None = None
    """its layers whose cost the fallback predictor estimated"""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"predicted_ms": self.predicted_ms, "measured_ms": self.measured_ms}
        if self.arch is not None:
            out["arch"] = self.arch
        if self.predicted_keys is not None:
            out["predicted_keys"] = list(self.predicted_keys)
        return out

    @classmethod
    def from_json(cls, obj: Any, where: str) -> ValidationSample:
        if not isinstance(obj, dict):
            raise ValueError(f"{where} is not an object")
        arch = obj.get("arch")
        if arch is not None and not isinstance(arch, dict):
            raise ValueError(f"{where}.arch is not an object")
        keys = obj.get("predicted_keys")
        if keys is not None and (
            not isinstance(keys, list) or not all(isinstance(k, str) for k in keys)
        ):
            raise ValueError(f"{where}.predicted_keys is not a list of strings")
        return cls(
            predicted_ms=_finite(obj.get("predicted_ms"), f"{where}.predicted_ms"),
            measured_ms=_finite(obj.get("measured_ms"), f"{where}.measured_ms"),
            arch=arch,
            predicted_keys=None if keys is None else tuple(keys),
        )


@dataclass(frozen=True)
class ValidationRecord:
    """Predicted (LUT) vs measured latency of random architectures on one device."""

    device: str
    backend: str
    threads: int
    seed: int
    summary: Mapping[str, Any] = field(default_factory=dict)
    """scalar statistics (``mape_pct``, ``kendall_tau``, ...), shown as they are"""
    samples: tuple[ValidationSample, ...] = ()

    @property
    def predicted_ms(self) -> list[float]:
        return [s.predicted_ms for s in self.samples]

    @property
    def measured_ms(self) -> list[float]:
        return [s.measured_ms for s in self.samples]

    @classmethod
    def of(cls, result: _Result) -> ValidationRecord:
        """The record of a ``hardware.validate.ValidationResult``."""
        samples = tuple(
            ValidationSample(
                float(p),
                float(m),
                a.get("arch"),
                None if a.get("predicted_keys") is None else tuple(a["predicted_keys"]),
            )
            for p, m, a in zip(result.predicted_ms, result.measured_ms, result.archs, strict=True)
        )
        return cls(
            result.device, result.backend, result.threads, result.seed, result.summary(), samples
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": VALIDATION_SCHEMA_VERSION,
            "device": self.device,
            "backend": self.backend,
            "threads": self.threads,
            "seed": self.seed,
            "summary": dict(self.summary),
            "samples": [s.to_json() for s in self.samples],
        }

    @classmethod
    def from_json(cls, obj: Any, source: str = "cost-model validation") -> ValidationRecord:
        """Parse (and check) a record; one-line :class:`LUTError` naming the bad field."""
        try:
            if not isinstance(obj, dict):
                raise ValueError("it is not a JSON object")
            version = obj.get("schema_version")
            if version != VALIDATION_SCHEMA_VERSION or isinstance(version, bool):
                raise ValueError(
                    f"it has schema_version {version!r}, expected {VALIDATION_SCHEMA_VERSION}"
                )
            summary = obj.get("summary", {})
            if not isinstance(summary, dict):
                raise ValueError("summary is not an object")
            samples = obj.get("samples")
            if not isinstance(samples, list):
                raise ValueError("samples is not a list")
            return cls(
                device=_string(obj.get("device"), "device"),
                backend=_string(obj.get("backend"), "backend"),
                threads=_integer(obj.get("threads"), "threads"),
                seed=_integer(obj.get("seed"), "seed"),
                summary=summary,
                samples=tuple(
                    ValidationSample.from_json(s, f"samples[{i}]") for i, s in enumerate(samples)
                ),
            )
        except ValueError as exc:
            raise LUTError(f"{source} is not a valid validation record: {exc}; {_FIX}") from None

    def save(self, path: Path) -> Path:
        """Write the record atomically as indented JSON."""
        return atomic_write_json(Path(path), self.to_json())

    @classmethod
    def load(cls, path: Path) -> ValidationRecord:
        """Read and check ``path`` (one-line errors for a missing, corrupt or foreign file)."""
        obj = read_json(Path(path), what="cost-model validation")
        return cls.from_json(obj, f"cost-model validation {path}")


def _finite(v: Any, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ValueError(f"{name} is {v!r}, not a finite number")
    return float(v)


def _integer(v: Any, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{name} is {v!r}, not an integer")
    return v


def _string(v: Any, name: str) -> str:
    if not isinstance(v, str) or not v:
        raise ValueError(f"{name} is {v!r}, not a non-empty string")
    return v
