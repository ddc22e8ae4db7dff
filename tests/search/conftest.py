"""Fixtures of the search tests: synthetic experiment configs and a throwaway PostgreSQL server."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from harmonic_nas.config import ExperimentConfig, load_config

SYNTHETIC = "harmonic_nas.testing.synthetic_problem:from_env"


def write_config(tmp_path: Path, name: str = "syn", **search: Any) -> tuple[Path, ExperimentConfig]:
    """A two-modality av-digits-like experiment whose run dir is under ``tmp_path``."""
    data = {
        "name": name,
        "run_dir": str(tmp_path / "runs"),
        "seed": 7,
        "modalities": {
            "image": {"preset": "avmnist", "shape": [1, 28, 28]},
            "audio": {"preset": "avmnist", "shape": [1, 20, 20]},
        },
        "search": {"population": 4, "generations": 2, "heartbeat_s": 5, **search},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path, load_config(path)


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., tuple[Path, ExperimentConfig]]:
    def make(name: str = "syn", **search: Any) -> tuple[Path, ExperimentConfig]:
        return write_config(tmp_path, name, **search)

    return make


@pytest.fixture
def synthetic_env(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Select the synthetic problem for the CLI (and spawned workers); knobs as keyword args."""

    def use(**knobs: Any) -> None:
        import json

        monkeypatch.setenv("HARMONIC_NAS_SEARCH_PROBLEM", SYNTHETIC)
        monkeypatch.setenv("HARMONIC_NAS_SYNTHETIC", json.dumps(knobs))

    use()
    return use


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bindir() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server on a free loopback port in a temp dir (skipped without the binaries).

    As root the server runs as the ``postgres`` system user (initdb refuses root)."""
    bindir = _pg_bindir()
    if bindir is None or not (bindir / "pg_ctl").exists():
        pytest.skip("PostgreSQL server binaries not installed (Debian package `postgresql`)")
    as_root = os.geteuid() == 0
    prefix: list[str] = []
    datadir = Path(tempfile.mkdtemp(prefix="hnas-pg-"))
    if as_root:
        try:
            shutil.chown(datadir, user="postgres")
        except LookupError:
            pytest.skip("running as root and no `postgres` system user to run the server")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*prefix, *cmd], check=True, capture_output=True, timeout=120)

    run(
        str(bindir / "initdb"),
        "-D",
        str(datadir / "data"),
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
        "--no-sync",
    )
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(datadir / "data"),
        "-l",
        str(datadir / "log"),
        "-w",
        "-o",
        f"-p {port} -k {datadir} -c listen_addresses=127.0.0.1 -c fsync=off",
        "start",
    )
    try:
        run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "hnas")
        yield f"postgresql://postgres@127.0.0.1:{port}/hnas"
    finally:
        subprocess.run(
            [
                *prefix,
                str(bindir / "pg_ctl"),
                "-D",
                str(datadir / "data"),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(datadir, ignore_errors=True)
