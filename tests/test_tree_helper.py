"""The snapshot helper of the "nothing changed" assertions (``tests/tree.py``): an SQLite database
is compared by content, so a WAL checkpoint is no change and a changed row is one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.tree import tree


def test_a_checkpoint_is_no_change_but_a_row_is(tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA wal_autocheckpoint=0")
    con.execute("CREATE TABLE t (x INTEGER)")
    con.execute("INSERT INTO t VALUES (1)")
    con.commit()
    raw = db.read_bytes()
    before = tree(tmp_path)
    assert set(before) == {"study.db"}  # the -wal and -shm files are folded into it
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the bytes move, the data does not
    assert db.read_bytes() != raw and tree(tmp_path) == before
    con.execute("INSERT INTO t VALUES (2)")
    con.commit()
    assert tree(tmp_path) != before
    con.close()


def test_other_files_and_damaged_databases_by_their_bytes(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "bad.db").write_bytes(b"SQLite format 3\x00" + b"\x00" * 10)
    before = tree(tmp_path)
    (tmp_path / "bad.db").write_bytes(b"SQLite format 3\x00" + b"\x01" * 10)
    after = tree(tmp_path)
    assert before["a.txt"] == after["a.txt"] and before["bad.db"] != after["bad.db"]
