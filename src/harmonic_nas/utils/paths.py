"""Where harmonic-nas keeps state outside run directories."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$HARMONIC_NAS_CACHE`` or ``~/.cache/harmonic-nas``: built datasets and installed LUTs."""
    env = os.environ.get("HARMONIC_NAS_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "harmonic-nas"
