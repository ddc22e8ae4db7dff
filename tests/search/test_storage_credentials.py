"""No credential is ever written (issue 25, red-team class 10): a search whose config holds a
PostgreSQL password in ``search.storage`` leaves it in no file of the run (``config.yaml``, the
index, the report's embedded config, ...), in no output line and no log record; the password
may instead come from an environment variable the config names."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from harmonic_nas.cli import main

PASSWORD = "Pw-9f3kq-n0t-in-any-file"


def _with_storage(path: Path, **search: object) -> Path:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["search"].update(search)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _files_holding(root: Path, secret: str) -> list[str]:
    return [
        str(p.relative_to(root))
        for p in sorted(root.rglob("*"))
        if p.is_file() and secret.encode() in p.read_bytes()
    ]


@pytest.mark.postgres
@pytest.mark.slow
def test_no_file_of_a_postgresql_run_holds_the_password(
    make_config,
    synthetic_env,
    postgres_url: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url = postgres_url.replace("postgres@", f"postgres:{PASSWORD}@", 1)
    assert PASSWORD in url
    path, cfg = make_config(name="pgsecret")
    _with_storage(path, storage=url)
    assert main(["search", str(path)]) == 0
    assert main(["status", str(cfg.run_path), "--json"]) == 0  # the saved URL, no password
    assert main(["report", str(cfg.run_path)]) == 0
    assert (cfg.run_path / "report.html").is_file()
    assert main(["search", str(path)]) == 0  # the rerun resumes: the saved config matches
    out, err = capsys.readouterr()
    assert "postgres:***@" in (cfg.run_path / "config.yaml").read_text(encoding="utf-8")
    assert _files_holding(cfg.run_path, PASSWORD) == []
    assert PASSWORD not in out + err + caplog.text


@pytest.mark.postgres
def test_the_password_is_in_no_error_line(
    make_config, synthetic_env, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    host = postgres_url.rsplit("@", 1)[1].split("/", 1)[0].split(":", 1)[0]
    path, cfg = make_config(name="pgbad")
    for bad in (
        f"postgresql://postgres:{PASSWORD}@{host}:1/hnas",  # nothing listens there
        f"postgresql://postgres:{PASSWORD}@{host}:notaport/hnas",  # unparsable
    ):
        _with_storage(path, storage=bad)
        assert main(["search", str(path)]) == 2
        out, err = capsys.readouterr()
        assert err.startswith("error: ") and PASSWORD not in out + err, err
    assert _files_holding(cfg.run_path, PASSWORD) == []


@pytest.mark.postgres
def test_the_password_from_an_environment_variable(
    make_config,
    synthetic_env,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, cfg = make_config(name="pgenv", population=2, generations=1)
    _with_storage(path, storage=postgres_url, storage_password_env="HNAS_TEST_PG_PASSWORD")
    monkeypatch.delenv("HNAS_TEST_PG_PASSWORD", raising=False)
    assert main(["search", str(path)]) == 2
    err = capsys.readouterr().err
    assert "HNAS_TEST_PG_PASSWORD, which is not set" in err and len(err.splitlines()) == 1
    monkeypatch.setenv("HNAS_TEST_PG_PASSWORD", PASSWORD)
    assert main(["search", str(path)]) == 0
    assert main(["status", str(cfg.run_path)]) == 0
    capsys.readouterr()
    assert _files_holding(cfg.run_path, PASSWORD) == []
