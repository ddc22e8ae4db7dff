"""Builder options: a frozen dataclass per dataset, validated from ``cfg.dataset.options``.

Unknown names, wrong types and out-of-range values give a one-line :class:`DataError` naming the
option. Values may be strings (``--option k=v`` on the command line): they are parsed as YAML
scalars first, so ``k=3``, ``k=0.5``, ``k=true`` and ``k=mfcc`` all do what one expects.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import types
import typing
from typing import Any, TypeVar

import yaml

from harmonic_nas.errors import DataError
from harmonic_nas.utils.io import load_yaml

logger = logging.getLogger(__name__)

T = TypeVar("T")


def option(
    default: Any,
    help: str,
    *,
    choices: tuple[Any, ...] | None = None,
    ge: float | None = None,
    le: float | None = None,
) -> Any:
    """A dataclass field with a help text, allowed choices and bounds."""
    return dataclasses.field(
        default=default, metadata={"help": help, "choices": choices, "ge": ge, "le": le}
    )


def parse_cli_options(pairs: list[str] | None) -> dict[str, Any]:
    """``["k=v", ...]`` -> ``{"k": parsed v}`` (YAML scalars); a pair without ``=`` is a DataError."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise DataError(
                f"option '{pair}' is not of the form key=value; write e.g. --option train_per_class=50"
            )
        try:
            value = load_yaml(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        out[key] = value
    return out


def _coerce(name: str, dataset: str, value: Any, typ: Any) -> Any:
    if isinstance(value, str) and typ is not str:
        with contextlib.suppress(yaml.YAMLError):
            value = load_yaml(value)
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(typ)
        if value is None and type(None) in args:
            return None
        typ = next(a for a in args if a is not type(None))
    ok: bool
    if typ is bool:
        ok = isinstance(value, bool)
    elif typ is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif typ is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and math.isfinite(value)
        value = float(value) if ok else value
    elif typ is str:
        ok = isinstance(value, str | int | float) and not isinstance(value, bool)
        value = str(value) if ok else value
    else:  # pragma: no cover - only scalar options are declared
        ok = True
    if not ok:
        raise DataError(
            f"dataset '{dataset}' option '{name}' must be {getattr(typ, '__name__', typ)}, "
            f"got {value!r}; fix the value in dataset.options"
        )
    return value


def parse_options(cls: type[T], raw: dict[str, Any] | None, dataset: str) -> T:
    """Validate ``raw`` into an instance of the options dataclass ``cls``.

    A dataclass with a ``PROFILES`` mapping (profile name -> option values) and a ``profile``
    field takes a named profile: ``profile: hard`` fills every option the profile sets and the
    user did not; options given explicitly always win. The resolved instance spells every value
    out, so the cache key and ``data info`` show what the profile chose.
    """
    assert dataclasses.is_dataclass(cls)
    raw = dict(raw or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    profiles: dict[str, dict[str, Any]] = getattr(cls, "PROFILES", {})
    if profiles and "profile" in raw:
        name = raw["profile"]
        if name not in profiles:
            raise DataError(
                f"dataset '{dataset}' option 'profile' must be one of "
                f"{', '.join(profiles)}, got {name!r}"
            )
        raw = {**profiles[name], **raw}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields)) or "none"
        raise DataError(
            f"unknown option '{unknown[0]}' for dataset '{dataset}'; valid options: {known}"
        )
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        f = fields[key]
        value = _coerce(key, dataset, value, hints[key])
        meta = f.metadata
        choices = meta.get("choices")
        if choices is not None and value not in choices:
            raise DataError(
                f"dataset '{dataset}' option '{key}' must be one of "
                f"{', '.join(map(str, choices))}, got {value!r}"
            )
        lo, hi = meta.get("ge"), meta.get("le")
        if isinstance(value, int | float) and (
            (lo is not None and value < lo) or (hi is not None and value > hi)
        ):
            bounds = f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
            raise DataError(
                f"dataset '{dataset}' option '{key}' = {value!r} is out of range {bounds}; "
                "pick a value inside it"
            )
        values[key] = value
    return cls(**values)


def options_table(cls: type[Any]) -> list[tuple[str, str, str]]:
    """``(name, default, help)`` for every option of ``cls`` (for ``data info``)."""
    rows = []
    for f in dataclasses.fields(cls):
        rows.append((f.name, repr(f.default), str(f.metadata.get("help", ""))))
    return rows


def options_dict(opts: Any) -> dict[str, Any]:
    """The resolved options (every default spelled out) as a plain dict."""
    return dataclasses.asdict(opts)
