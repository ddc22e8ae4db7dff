"""Import of lookup tables: the published Harmonic-NAS format, our own from another machine, or
the results file of a device kit (:mod:`harmonic_nas.hardware.kit`).

Published format (one JSON object per file; a device's table is split into backbone and fusion
files, import them together)::

    {"MBConvLayer-input:1_16_14_14-...": {"lat": "0.57", "enrg": "0.82"}, ...}

numbers possibly as strings, latency in ms and energy in mJ, batch size 1. Each value becomes an
entry with ``count`` 0 (an aggregate of an unknown number of runs) and the table's
``energy_source`` is ``imported:<provenance>`` (file names and content hash).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harmonic_nas.errors import LUTError
from harmonic_nas.hardware.keys import parse_key
from harmonic_nas.hardware.lut import LUT, DeviceInfo, LUTEntry, now_iso
from harmonic_nas.hardware.lut_source import get_device
from harmonic_nas.utils.io import DuplicateKeyError, load_json
from harmonic_nas.utils.limits import MAX_LAYER_COST
from harmonic_nas.utils.names import check_name

logger = logging.getLogger(__name__)


def _number(value: Any, field: str, where: str) -> float:
    if isinstance(value, bool):
        raise LUTError(f"{where}: '{field}' must be a number, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise LUTError(f"{where}: '{field}' is not a number ({value!r:.30})") from None
    if not isinstance(value, int | float):
        raise LUTError(f"{where}: '{field}' must be a number, got {value!r:.30}")
    out = float(value)
    if math.isnan(out) or math.isinf(out):
        raise LUTError(f"{where}: '{field}' is {out}; costs must be finite")
    if out < 0:
        raise LUTError(f"{where}: '{field}' is negative ({out}); costs must be >= 0")
    if out > MAX_LAYER_COST:
        raise LUTError(
            f"{where}: '{field}' is {out:g}, above the limit of {MAX_LAYER_COST:g} for one layer "
            "(sums of such costs overflow); fix the table"
        )
    return out


def read_published_table(obj: Any, source: str) -> dict[str, LUTEntry]:
    """Validate a published table (key -> {lat, enrg}) into entries."""
    if not isinstance(obj, dict) or not obj:
        raise LUTError(
            f"{source} is not a lookup table: expected a non-empty object of key -> {{lat, enrg}}"
        )
    entries: dict[str, LUTEntry] = {}
    for key, value in obj.items():
        where = f"{source} entry '{key}'"
        parse_key(key)
        if not isinstance(value, dict) or "lat" not in value or "enrg" not in value:
            raise LUTError(f"{where}: expected an object with 'lat' (ms) and 'enrg' (mJ)")
        entries[key] = LUTEntry.point(
            _number(value["lat"], "lat", where), _number(value["enrg"], "enrg", where)
        )
    return entries


def _load_json(path: Path) -> tuple[Any, bytes]:
    if not path.is_file():
        raise LUTError(f"LUT file not found: {path}")
    raw = path.read_bytes()
    try:
        return load_json(raw.decode("utf-8")), raw
    except DuplicateKeyError as exc:
        raise LUTError(f"{path} has a {exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        line = getattr(exc, "lineno", "?")
        raise LUTError(f"{path} is not valid JSON (line {line}); check the file") from None


def import_reference_lut(
    files: Sequence[Path | str],
    device: str,
    *,
    description: str = "",
    references: Sequence[LUT] = (),
) -> LUT:
    """Merge published (or our own) tables into one validated :class:`LUT` for ``device``, or
    turn a kit's results file (given alone) into one.

    The same key in two files must have the same value, else a :class:`LUTError` names it.
    ``references`` are other devices' tables a sampled kit's missing layers are predicted from.
    """
    from harmonic_nas.hardware.kit import is_kit_results, lut_from_kit_results

    if not files:
        raise LUTError("no LUT files given; pass the published backbone and fusion tables")
    check_name(device, "device name")
    known = get_device(device)
    if known is not None and known.profile_here:
        raise LUTError(
            f"device '{device}' is this machine, whose table `harmonic-nas profile` measures; "
            "import the table under the name of the device it was measured on (e.g. --device "
            "jetson-tx2)"
        )
    parsed = [_load_json(Path(f))[0] for f in files]
    if any(is_kit_results(obj) for obj in parsed):
        if len(files) != 1:
            raise LUTError("import a kit's results file on its own (one file per device)")
        return lut_from_kit_results(
            parsed[0], str(files[0]), device, description=description, references=references
        )
    entries: dict[str, LUTEntry] = {}
    origins: dict[str, str] = {}
    records: list[dict[str, Any]] = []
    ours: list[LUT] = []
    digest = hashlib.sha256()
    for f in files:
        path = Path(f)
        obj, raw = _load_json(path)
        digest.update(raw)
        if isinstance(obj, dict) and "schema_version" in obj:
            lut = LUT.from_json(obj, str(path))
            ours.append(lut)
            table = lut.entries
            fmt = "harmonic-nas"
        else:
            table = read_published_table(obj, str(path))
            fmt = "published"
        for key, entry in table.items():
            if key in entries and entries[key] != entry:
                raise LUTError(
                    f"key '{key}' has different costs in {origins[key]} and {path.name}; "
                    "import tables of one device only"
                )
            entries[key] = entry
            origins[key] = path.name
        records.append(
            {
                "file": path.name,
                "format": fmt,
                "entries": len(table),
                "sha256": hashlib.sha256(raw).hexdigest(),
            }
        )
    names = "+".join(r["file"] for r in records)
    provenance = f"{names} (sha256 {digest.hexdigest()[:12]})"
    same = ours and len(ours) == len(files)
    first = ours[0] if same else None
    if (
        first is not None
        and len({(x.energy_source, x.device.backend, x.device.threads) for x in ours}) == 1
    ):
        energy_source = first.energy_source
        info = DeviceInfo(
            name=device,
            description=description or first.device.description,
            backend=first.device.backend,
            threads=first.device.threads,
        )
        overhead = first.overhead
    else:
        energy_source = f"imported:{provenance}"
        info = DeviceInfo(name=device, description=description or _describe(device))
        overhead = None
    lut = LUT(
        device=info,
        energy_source=energy_source,
        entries=entries,
        created=now_iso(),
        overhead=overhead,
        meta={"provenance": {"files": records, "imported": now_iso()}},
    )
    logger.info("imported %d entries for %s from %s", len(entries), device, names)
    return lut


def _describe(device: str) -> str:
    from harmonic_nas.hardware.lut_source import get_device

    entry = get_device(device)
    return entry.description if entry is not None else f"imported table for {device}"
