"""Machine identity: what it records, how two identities differ, and the old description."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from harmonic_nas.errors import LUTError
from harmonic_nas.hardware.identity import (
    MachineIdentity,
    cache_sizes,
    cpu_model,
    foreign_reason,
    machine_identity,
)
from harmonic_nas.hardware.lut_source import legacy_cpu


def test_identity_records_the_machine_not_the_hostname() -> None:
    ident = machine_identity("onnxruntime", 2)
    data = ident.to_json()
    assert data["cpu"] == cpu_model() and data["cores"] >= 1
    assert data["runtime"] == "onnxruntime" and data["runtime_version"]
    assert data["provider"] == "CPUExecutionProvider" and data["threads"] == 2
    assert set(data) == {
        "cpu",
        "cores",
        "caches",
        "runtime",
        "runtime_version",
        "provider",
        "threads",
        "arch",
        "os",
    }  # no hostname: identical machines have different names
    assert data["arch"] == platform.machine()
    assert MachineIdentity.from_json(data) == ident
    assert machine_identity("torch", 1).provider == "-"


def test_cache_sizes_are_read_from_sysfs(tmp_path: Path) -> None:
    for i, (level, kind, size) in enumerate(
        [("1", "Data", "48K"), ("1", "Instruction", "64K"), ("2", "Unified", "2048K")]
    ):
        d = tmp_path / f"index{i}"
        d.mkdir()
        (d / "level").write_text(level + "\n")
        (d / "type").write_text(kind + "\n")
        (d / "size").write_text(size + "\n")
    assert cache_sizes(tmp_path) == {"L1d": "48K", "L1i": "64K", "L2": "2048K"}
    assert cache_sizes(tmp_path / "absent") == {}


def test_a_change_of_cpu_is_named() -> None:
    here = machine_identity("onnxruntime", 1)
    other = MachineIdentity.from_json({**here.to_json(), "cpu": "AMD EPYC 7B13"})
    assert foreign_reason(here, here) is None
    reason = foreign_reason(other, here)
    assert reason is not None and "AMD EPYC 7B13" in reason and "\n" not in reason
    # the architecture and OS are recorded, not compared
    assert foreign_reason(MachineIdentity.from_json({**here.to_json(), "os": "x"}), here) is None


def test_malformed_identity_is_one_line() -> None:
    with pytest.raises(LUTError, match="malformed machine identity"):
        MachineIdentity.from_json({"cpu": "x", "cores": "two"})


def test_the_cpu_of_a_version_1_description() -> None:
    desc = "box-1: AMD EPYC 7B13, onnxruntime 1.31.1, 1 thread(s)"
    assert legacy_cpu(desc) == "AMD EPYC 7B13"
    assert legacy_cpu("test machine") is None
