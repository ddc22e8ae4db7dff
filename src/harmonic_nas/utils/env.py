"""The environment variables harmonic-nas honours, each validated with a one-line error."""

from __future__ import annotations

import logging
import os

from harmonic_nas.errors import ConfigError

THREADS_ENV = "HARMONIC_NAS_THREADS"
LOG_ENV = "HARMONIC_NAS_LOG"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MAX_THREADS = 1024


def threads_from_env(default: int = 1) -> int:
    """``$HARMONIC_NAS_THREADS`` as a thread count (an integer in 1..1024), else ``default``."""
    raw = os.environ.get(THREADS_ENV)
    if raw is None or not raw.strip():
        return default
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_THREADS:
        raise ConfigError(
            f"{THREADS_ENV}={raw!r} is not a thread count; set it to an integer from 1 to "
            f"{MAX_THREADS} (e.g. {THREADS_ENV}=2) or unset it"
        )
    return int(text)


def log_level_from_env(default: str = "WARNING") -> int:
    """``$HARMONIC_NAS_LOG`` as a :mod:`logging` level number (name, any case), else ``default``."""
    raw = os.environ.get(LOG_ENV)
    name = (raw if raw is not None and raw.strip() else default).strip().upper()
    if name not in LOG_LEVELS:
        raise ConfigError(
            f"{LOG_ENV}={raw!r} is not a log level; set it to one of {', '.join(LOG_LEVELS)} "
            "or unset it"
        )
    level: int = getattr(logging, name)
    return level
