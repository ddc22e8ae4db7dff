"""``status`` on a run it cannot write names the true reason (issue 14 item 9): a read-only
study file or directory, not database servers and credentials."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from harmonic_nas.cli import main

from .conftest import tree


def _readonly_sqlite(*_a: object, **_k: object) -> None:
    from sqlalchemy.exc import OperationalError

    raise OperationalError(
        "PRAGMA journal_mode=WAL", {}, Exception("attempt to write a readonly database")
    )


@pytest.mark.parametrize("where", ["directory", "file"])
def test_status_on_a_read_only_run_names_the_read_only_path(
    finished_run: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    where: str,
) -> None:
    # Root ignores permission bits, so the read-only state is what the OS would report.
    target = finished_run if where == "directory" else finished_run / "study.db"
    real_access = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda p, mode, **k: (
            False if Path(p) == target and mode & os.W_OK else real_access(p, mode, **k)
        ),
    )
    monkeypatch.setattr("harmonic_nas.search.storage._create_rdb", _readonly_sqlite)
    before = tree(finished_run)
    assert main(["status", str(finished_run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(
        f"error: cannot open the study {finished_run / 'study.db'}: the {where} {target} is read-only"
    )
    assert "credentials" not in err and "server" not in err
    assert tree(finished_run) == before


def test_status_on_a_read_only_filesystem(
    finished_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = os.statvfs

    class Ro:
        def __init__(self, st: os.statvfs_result) -> None:
            self.f_flag = st.f_flag | os.ST_RDONLY

    monkeypatch.setattr(os, "statvfs", lambda p: Ro(real(p)))
    monkeypatch.setattr("harmonic_nas.search.storage._create_rdb", _readonly_sqlite)
    assert main(["status", str(finished_run)]) == 2
    err = capsys.readouterr().err
    assert "is on a read-only filesystem" in err and "copy the run to a writable place" in err


def test_other_storage_failures_keep_their_message(
    finished_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("harmonic_nas.search.storage._create_rdb", _readonly_sqlite)
    assert main(["status", str(finished_run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot open study storage") and "read-only" not in err


def test_status_of_the_finished_run_works(
    finished_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", str(finished_run)]) == 0
    assert "finished" in capsys.readouterr().out


def _rollback_journal(db: Path) -> None:
    """Take a study database out of WAL mode (as a copy made with ``sqlite3 .backup`` is)."""
    con = sqlite3.connect(db)
    try:
        con.execute("PRAGMA journal_mode=DELETE")
    finally:
        con.close()


def test_status_writes_not_one_byte(finished_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 25 (red-team class 2): ``status`` opens the study read-only: a database in
    rollback-journal mode keeps every byte (not even switched to WAL), and no file appears."""
    db = finished_run / "study.db"
    _rollback_journal(db)
    raw = db.read_bytes()
    names = sorted(p.name for p in finished_run.iterdir())
    assert main(["status", str(finished_run)]) == 0
    assert "finished" in capsys.readouterr().out
    assert db.read_bytes() == raw
    assert sorted(p.name for p in finished_run.iterdir()) == names


@pytest.mark.parametrize("empty", [True, False])
def test_status_never_creates_tables_in_a_foreign_database(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], empty: bool
) -> None:
    foreign = tmp_path / "elsewhere" / "app.db"
    foreign.parent.mkdir()
    if empty:
        foreign.write_bytes(b"")
    else:
        con = sqlite3.connect(foreign)
        con.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT)")
        con.execute("INSERT INTO accounts (name) VALUES ('ada')")
        con.commit()
        con.close()
    raw = foreign.read_bytes()
    index = finished_run / "search.json"
    data = json.loads(index.read_text(encoding="utf-8"))
    for study in data["studies"].values():
        study["storage"] = f"sqlite:///{foreign}"
    index.write_text(json.dumps(data), encoding="utf-8")
    assert main(["status", str(finished_run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "is not a study database" in err
    assert "nothing was changed" in err and len(err.splitlines()) == 1
    assert foreign.read_bytes() == raw
    assert sorted(p.name for p in foreign.parent.iterdir()) == ["app.db"]
