"""Optional dependencies (extras): a missing one is a one-line error naming the extra."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import pytest

from harmonic_nas.search.storage import NotAStudyError, StorageError, open_storage


def test_postgresql_without_a_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    with pytest.raises(StorageError, match=r"harmonic-nas\[postgres\]"):
        open_storage("postgresql://user:pw@127.0.0.1:9/db")


# --------------------------------------------------------------------------- read-only opening


def _sqlite(path: Path, *statements: str) -> Path:
    con = sqlite3.connect(path)
    try:
        for st in statements:
            con.execute(st)
        con.commit()
    finally:
        con.close()
    return path


def test_read_only_opening_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "sub" / "none.db"
    with pytest.raises(StorageError, match="no study database at"):
        open_storage(f"sqlite:///{missing}", read_only=True)
    assert not missing.parent.exists()
    foreign = _sqlite(tmp_path / "app.db", "CREATE TABLE t (x)", "INSERT INTO t VALUES (1)")
    raw = foreign.read_bytes()
    with pytest.raises(NotAStudyError, match=r"lacks the Optuna table\(s\) studies") as info:
        open_storage(f"sqlite:///{foreign}", read_only=True)
    assert not info.value.empty and not info.value.partial
    assert foreign.read_bytes() == raw and sorted(os.listdir(tmp_path)) == ["app.db"]


def test_a_read_only_storage_refuses_writes(tmp_path: Path) -> None:
    import optuna

    url = f"sqlite:///{tmp_path / 'study.db'}"
    rdb = open_storage(url)
    optuna.create_study(storage=rdb, study_name="s").optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=2
    )
    rdb.engine.dispose()
    ro = open_storage(url, read_only=True)
    try:
        study = optuna.load_study(study_name="s", storage=ro)
        assert len(study.trials) == 2
        with pytest.raises(optuna.exceptions.StorageInternalError) as info:
            study.set_user_attr("k", 1)  # SQLite: "attempt to write a readonly database"
        assert "readonly" in str(info.value.__cause__ or info.value.__context__)
    finally:
        ro.engine.dispose()


def test_search_decides_on_empty_foreign_and_half_made_databases(tmp_path: Path) -> None:
    from harmonic_nas.config import parse_config
    from harmonic_nas.search.driver import check_study_config

    cfg = parse_config(
        {
            "name": "s",
            "run_dir": str(tmp_path / "runs"),
            "modalities": {
                "image": {"preset": "avmnist", "shape": [1, 28, 28]},
                "audio": {"preset": "avmnist", "shape": [1, 20, 20]},
            },
        }
    )
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    assert check_study_config(cfg, storage=f"sqlite:///{empty}") is None  # the search makes it
    half = _sqlite(tmp_path / "half.db", "CREATE TABLE studies (study_id INTEGER)")
    assert check_study_config(cfg, storage=f"sqlite:///{half}") is None  # being made now
    foreign = _sqlite(tmp_path / "app.db", "CREATE TABLE t (x)")
    with pytest.raises(NotAStudyError, match="is not a study database"):
        check_study_config(cfg, storage=f"sqlite:///{foreign}")
    assert empty.read_bytes() == b""
