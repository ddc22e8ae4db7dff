"""Names that become parts of paths: run names, modality names (``supernets/<modality>.pt``),
device names (``luts/<device>.json``) and study names (``studies/<study>/``).

One rule for all of them (modality names, which also name an exported model's inputs, must
moreover be ASCII identifiers: :func:`modality_name_problem`), checked once where the name enters (the config, a dataset's arrays, a
command-line option): ASCII letters, digits, ``_``, ``.`` and ``-``, not starting with ``.`` or
``-``, at most :data:`MAX_NAME` characters. So no name can hold a path separator, climb out of
the run directory (``..``), hide a file, be read as an option, or exceed a file-name limit.
"""

from __future__ import annotations

import keyword
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


#: Characters of a modality's name (it names model inputs and run-directory files).
MAX_MODALITY_NAME = 64


def modality_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a modality, or None. A modality's name becomes the name of an
    exported model's input (a TorchScript ``forward`` argument, an ONNX input) and of files in
    the run directory, so it must be an ASCII identifier: letters, digits and ``_``, not
    starting with a digit, not a Python keyword, at most :data:`MAX_MODALITY_NAME` characters.
    Checked where a name enters (the config's modalities, a dataset's arrays)."""
    if not name.isascii() or not name.isidentifier() or keyword.iskeyword(name):
        return (
            f"modality name {name[:40]!r} is not an ASCII identifier (letters, digits and _, not "
            "starting with a digit, not a Python keyword): exported models name their inputs "
            "after the modalities"
        )
    if len(name) > MAX_MODALITY_NAME:
        return (
            f"modality name '{name[:20]}...' has {len(name)} characters "
            f"(at most {MAX_MODALITY_NAME})"
        )
    return None
