"""Atomic writes: a failed write (disk full, read-only, no permission) is one line naming the path,
and leaves the old file intact and no temporary file behind (issue 14 item 6)."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from harmonic_nas.errors import HarmonicError
from harmonic_nas.utils.io import (
    WriteError,
    atomic_torch_save,
    atomic_write_json,
    atomic_write_text,
    check_writable_dir,
    read_json,
)

CASES = [
    (errno.ENOSPC, "free disk space"),
    (errno.EROFS, "read-only"),
    (errno.EACCES, "permissions"),
]


@pytest.mark.parametrize(("code", "fix"), CASES)
@pytest.mark.parametrize("stage", ["write", "rename"])
def test_failed_write_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, fix: str, stage: str
) -> None:
    target = tmp_path / "out.json"
    atomic_write_json(target, {"old": True})
    old = target.read_bytes()

    def fail(*_a: Any, **_k: Any) -> None:
        raise OSError(code, os.strerror(code))

    if stage == "write":
        monkeypatch.setattr(Path, "write_bytes", fail)
    else:
        monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(WriteError) as info:
        atomic_write_json(target, {"new": True})
    msg = str(info.value)
    assert str(target) in msg and fix in msg and "\n" not in msg
    assert target.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"], "temporary file left behind"


def test_torch_save_failure_is_a_write_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", fail)
    with pytest.raises(WriteError, match=r"cannot write .*w\.pt"):
        atomic_torch_save(tmp_path / "w.pt", {"x": torch.zeros(1)})
    assert list(tmp_path.iterdir()) == []


def test_parent_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "run").write_text("x")
    with pytest.raises(WriteError, match="is a file"):
        atomic_write_text(tmp_path / "run" / "config.yaml", "a: 1\n")
    with pytest.raises(WriteError, match="is a file"):
        check_writable_dir(tmp_path / "run")
    with pytest.raises(WriteError, match="not a directory"):
        atomic_write_text(tmp_path / "run" / "deeper" / "config.yaml", "a: 1\n")


def test_unreadable_json_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.json"
    path.write_text("{}")

    def denied(*_a: Any, **_k: Any) -> str:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(Path, "read_text", denied)
    with pytest.raises(HarmonicError, match=r"cannot read thing .*Permission denied"):
        read_json(path, what="thing")


# --------------------------------------------------------------------------- duplicate keys


def test_yaml_refuses_a_key_given_twice_with_both_lines() -> None:
    from harmonic_nas.utils.io import DuplicateKeyError, load_yaml

    with pytest.raises(DuplicateKeyError) as info:
        load_yaml("name: x\nsearch:\n  population: 4\nseed: 1\nsearch:\n  population: 16\n")
    assert info.value.key == "search" and info.value.lines == (2, 5)
    assert "duplicate key 'search' (lines 2 and 5)" in str(info.value)
    with pytest.raises(DuplicateKeyError, match=r"'population' \(lines 2 and 3\)"):
        load_yaml("a:\n  population: 4\n  population: 5\n")
    # the same key in two mappings, and a merge key overridden, are no duplicates
    assert load_yaml("a: {k: 1}\nb: {k: 2}\n") == {"a": {"k": 1}, "b": {"k": 2}}
    assert load_yaml("x: &x {k: 1}\ny:\n  <<: *x\n  k: 2\n")["y"] == {"k": 2}


def test_json_refuses_a_key_given_twice_with_its_lines(tmp_path: Path) -> None:
    from harmonic_nas.utils.io import DuplicateKeyError, load_json

    with pytest.raises(DuplicateKeyError) as info:
        load_json('{\n  "a": 1,\n  "b": {"a": 2},\n  "a": 3\n}')
    assert info.value.key == "a" and info.value.lines == (2, 4)  # not line 3: another object
    with pytest.raises(DuplicateKeyError) as info:
        load_json('[{"k": "a\\"b"}, {"k": 1,\n"s": "x\\\\", "k": 2}]')
    assert info.value.key == "k" and info.value.lines == (1, 2)
    path = tmp_path / "x.json"
    path.write_text('{"schema_version": 1, "schema_version": 2}', encoding="utf-8")
    with pytest.raises(HarmonicError, match=r"^lut .*x.json has a duplicate key 'schema_version'"):
        read_json(path, schema_version=1, what="lut")


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
@pytest.mark.parametrize("writer", ["text", "json", "torch"])
def test_atomic_writes_follow_the_umask(tmp_path: Path, umask: int, mode: int, writer: str) -> None:
    """A file written atomically gets 0666 less the umask, as ``open(path, "w")`` would, not the
    temporary file's 0600 (issue 25, new user item 6)."""
    before = os.umask(umask)
    try:
        path = tmp_path / "out"
        if writer == "text":
            atomic_write_text(path, "x")
        elif writer == "json":
            atomic_write_json(path, {"a": 1}, schema_version=1)
        else:
            atomic_torch_save(path, {"w": torch.zeros(2)})
        plain = tmp_path / "plain"
        plain.write_text("x")
    finally:
        os.umask(before)
    assert path.stat().st_mode & 0o777 == mode == plain.stat().st_mode & 0o777
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_current_umask_reads_without_changing(tmp_path: Path) -> None:
    from harmonic_nas.utils.io import current_umask

    before = os.umask(0o027)
    try:
        assert current_umask() == 0o027
        assert current_umask() == 0o027
    finally:
        os.umask(before)
