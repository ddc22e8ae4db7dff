"""Optional dependencies (extras): a missing one is a one-line error naming the extra."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harmonic_nas.data import build_dataset
from harmonic_nas.errors import DataError


def test_mmimdb_without_h5py_names_the_extra(
    mmimdb_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py -> ImportError
    with pytest.raises(DataError, match=r"harmonic-nas\[mmimdb\]") as info:
        build_dataset("mmimdb", path=mmimdb_file.parent)
    assert "\n" not in str(info.value)
