"""Names that become parts of paths: run names, modality names (``supernets/<modality>.pt``),
device names (``luts/<device>.json``) and study names (``studies/<study>/``).

One rule for all of them, checked once where the name enters (the config, a dataset's arrays, a
command-line option): ASCII letters, digits, ``_``, ``.`` and ``-``, not starting with ``.`` or
``-``, at most :data:`MAX_NAME` characters. So no name can hold a path separator, climb out of
the run directory (``..``), hide a file, be read as an option, or exceed a file-name limit.
"""

from __future__ import annotations

import re

from harmonic_nas.errors import HarmonicError

#: the longest accepted name (file systems allow 255 bytes per path part; suffixes need room)
MAX_NAME = 100

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")

#: what a valid name looks like, for error messages
NAME_RULE = (
    f"use ASCII letters, digits, '_', '.' and '-' (not first: '.' or '-'), at most {MAX_NAME} "
    "characters"
)


class BadNameError(HarmonicError):
    """A name that would become a path part is not a plain, safe file name."""


def name_problem(value: object) -> str | None:
    """Why ``value`` cannot be a name (a short phrase), or None when it is a valid one."""
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    if not value:
        return "is empty"
    if len(value) > MAX_NAME:
        return f"is {len(value)} characters long"
    if _NAME.fullmatch(value) is None:
        return "is not a plain file name"
    return None


def check_name(value: object, what: str) -> str:
    """``value`` if it is a valid name, else a one-line :class:`BadNameError` naming ``what``
    (e.g. ``"modality name"``) and the rule."""
    problem = name_problem(value)
    if problem is not None:
        shown = value[:40] + ("..." if len(value) > 40 else "") if isinstance(value, str) else value
        raise BadNameError(f"{what} {shown!r} {problem}; {NAME_RULE}")
    assert isinstance(value, str)
    return value
