"""Atomic writes and versioned JSON: nothing half-written is ever left behind."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from harmonic_nas.errors import HarmonicError


def _atomic(path: Path, write: Callable[[Path], None]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename."""

    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    return _atomic(path, write)


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any, *, schema_version: int | None = None) -> Path:
    """Write ``obj`` as indented JSON; if ``schema_version`` is given it is stored in the object."""
    if schema_version is not None:
        obj = {"schema_version": schema_version, **obj}
    return atomic_write_text(
        path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n"
    )


def atomic_torch_save(path: Path, obj: Any) -> Path:
    """``torch.save`` atomically. Only save tensors and plain containers (weights_only loadable)."""

    def write(tmp: Path) -> None:
        torch.save(obj, tmp)

    return _atomic(path, write)


def read_json(path: Path, *, schema_version: int | None = None, what: str = "file") -> Any:
    """Read JSON, with one-line errors for a missing/corrupt file or a wrong schema version."""
    path = Path(path)
    if not path.is_file():
        raise HarmonicError(f"{what} not found: {path}")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HarmonicError(
            f"{what} {path} is not valid JSON ({exc.__class__.__name__}: line {getattr(exc, 'lineno', '?')}); "
            "regenerate it or restore a good copy"
        ) from None
    if schema_version is not None:
        found = obj.get("schema_version") if isinstance(obj, dict) else None
        if found != schema_version:
            raise HarmonicError(
                f"{what} {path} has schema_version {found!r}, expected {schema_version}; "
                "regenerate it with this version of harmonic-nas"
            )
    return obj


def safe_torch_load(path: Path, *, what: str = "checkpoint") -> Any:
    """Load a torch file with ``weights_only=True``; corrupt files give a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise HarmonicError(f"{what} not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt zip, truncated file, pickle with disallowed globals
        raise HarmonicError(
            f"{what} {path} is corrupt or unsafe to load ({exc.__class__.__name__}); "
            "delete it and rerun the stage (or pass --force)"
        ) from None
