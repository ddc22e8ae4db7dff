"""Snapshots of a directory for "nothing changed" assertions: every file's content hash, where an
SQLite database is hashed by its content (its SQL dump with the write-ahead log applied), not
its bytes.

SQLite moves bytes without changing data: a connection that closes may checkpoint the WAL into
the main file, and every reader rewrites the shared-memory index (``-shm``). Hashing raw
``study.db`` / ``-wal`` bytes therefore flakes; the dump does not. The ``-wal`` and ``-shm``
files are left out of the snapshot (their content is folded into the database's digest)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

_SQLITE_MAGIC = b"SQLite format 3\x00"


def digest(path: Path) -> str:
    """``sha256`` of a file; of an SQLite database's SQL dump (read-only, WAL applied)."""
    with open(path, "rb") as f:
        head = f.read(len(_SQLITE_MAGIC))
    if head == _SQLITE_MAGIC:
        try:
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                dump = "\n".join(con.iterdump())
            finally:
                con.close()
            return "sqlite:" + hashlib.sha256(dump.encode()).hexdigest()
        except sqlite3.DatabaseError:
            pass  # a damaged database: its bytes are its content
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(root: Path) -> dict[str, str]:
    """``{relative path: digest}`` of every file under ``root`` (empty when it does not exist),
    SQLite's ``-wal`` and ``-shm`` files left out (see the module docstring)."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): digest(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }
