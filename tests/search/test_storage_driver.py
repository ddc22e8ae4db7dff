"""Optional dependencies (extras): a missing one is a one-line error naming the extra."""

from __future__ import annotations

import sys

import pytest

from harmonic_nas.search.storage import StorageError, open_storage


def test_postgresql_without_a_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    with pytest.raises(StorageError, match=r"harmonic-nas\[postgres\]"):
        open_storage("postgresql://user:pw@127.0.0.1:9/db")
