"""One registry behaviour for every named extension point (datasets, energy sources, devices,
search strategies): a duplicate name is refused with the same ``ValueError``, an unknown name
gives the same one-line error listing the registered names.

>>> r: Registry[int] = Registry("colour", KeyError)
>>> r.register("red", 1)
1
>>> r.names()
['red']
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar, cast

logger = logging.getLogger(__name__)

T = TypeVar("T")
_MISSING: Any = object()


class Registry(Generic[T]):
    """Names -> entries of one ``kind``.

    ``error`` is the exception class of an unknown name (the stage's one-line error type);
    ``hint`` is appended to its message (e.g. the command that lists the names); ``loader`` runs
    once before the first lookup (imports the modules that register the built-in entries);
    ``extra_names`` are accepted names that are not entries (e.g. ``auto``), listed first.
    """

    def __init__(
        self,
        kind: str,
        error: type[Exception],
        *,
        hint: str = "",
        loader: Callable[[], None] | None = None,
        extra_names: tuple[str, ...] = (),
    ) -> None:
        self.kind = kind
        self.error = error
        self.hint = hint
        self.extra_names = extra_names
        self._loader = loader
        self._entries: dict[str, T] = {}

    def _load(self) -> None:
        if self._loader is not None:
            loader, self._loader = self._loader, None
            loader()

    def register(self, name: str, entry: T, *, replace: bool = False) -> T:
        """Add ``entry`` under ``name``; a name already registered is refused (ValueError)
        unless ``replace``."""
        if not name or not isinstance(name, str):
            raise ValueError(f"a {self.kind} needs a non-empty name, got {name!r}")
        if name in self._entries and not replace:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def names(self) -> list[str]:
        """Registered names in registration order."""
        self._load()
        return list(self._entries)

    def choices(self) -> list[str]:
        """Every accepted name: the extra names, then the registered ones."""
        return [*self.extra_names, *self.names()]

    def unknown(self, name: str) -> Exception:
        """The one-line error of an unknown ``name``."""
        listed = ", ".join(self.choices()) or "(none registered)"
        return self.error(f"unknown {self.kind} {name!r}; choose one of {listed}{self.hint}")

    def get(self, name: str, default: Any = _MISSING) -> T:
        """The entry of ``name``; else ``default`` when given, else :meth:`unknown` raised."""
        self._load()
        if name not in self._entries:
            if default is not _MISSING:
                return cast(T, default)
            raise self.unknown(name)
        return self._entries[name]

    def find(self, name: str) -> T | None:
        """The entry of ``name``, or None."""
        self._load()
        return self._entries.get(name)

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __setitem__(self, name: str, entry: T) -> None:
        """Explicit replacement (``registry[name] = entry``; what ``monkeypatch.setitem`` uses)."""
        self.register(name, entry, replace=True)

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())
