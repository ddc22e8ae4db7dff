"""Resuming a benchmark that spans sittings: its records saved one at a time, reused on a rerun.

A benchmark keeps ``results["records"]`` (one entry per finished unit, e.g. a seed), writes the
whole file atomically after each one, and on a rerun starts from the saved file when its
``settings`` are the same (``--fresh`` measures everything again). A record that depends on more
than the file's settings (one part's own options) carries them and is reused only when they
match too (:func:`saved_record`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harmonic_nas.utils.io import read_json


def _plain(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), for comparisons."""
    return json.loads(json.dumps(value))


def load_saved(
    path: Path, settings: dict[str, Any], *, fresh: bool, schema_version: int
) -> dict[str, Any]:
    """The saved results at ``path`` when they exist, ``fresh`` is off and their ``settings``
    equal ``settings``; else an empty start (``{"records": {}}``)."""
    if path.is_file() and not fresh:
        saved = read_json(path, schema_version=schema_version)
        if saved.get("settings") == _plain(settings):
            saved.setdefault("records", {})
            return saved
    return {"records": {}}


def saved_record(
    results: dict[str, Any], key: str, settings: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The saved record ``key``, or None when it is missing or was measured with other
    ``settings`` (its own ``"settings"`` entry)."""
    rec: dict[str, Any] | None = results["records"].get(key)
    if rec is None or (settings is not None and rec.get("settings") != _plain(settings)):
        return None
    return rec
