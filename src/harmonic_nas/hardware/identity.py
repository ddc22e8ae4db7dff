"""The identity of the machine a latency table describes, and how two identities differ.

A :class:`MachineIdentity` records what decides how fast a layer runs: the CPU model, the
number of logical cores, the cache sizes (where ``/sys`` exposes them), the runtime and its
version, the execution provider and the thread count. It leaves out the hostname, which changes
between identical machines (and stays the same when a cloud instance moves to another CPU).

A LUT stores it under ``device.identity``; a cached host table whose identity differs from the
machine's is re-profiled, ``lut validate`` refuses a table of another machine, and every
benchmark result records the identity of the machine it ran on (:func:`machine_identity`).
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harmonic_nas.errors import LUTError

#: fields compared when deciding whether a table describes this machine
COMPARED = ("cpu", "cores", "caches", "runtime", "runtime_version", "provider", "threads")
DEFAULT_PROVIDER = "CPUExecutionProvider"


def cpu_model() -> str:
    """The CPU model name (``/proc/cpuinfo``, else the platform's processor string)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("model name", "Model", "Hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cache_sizes(root: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> dict[str, str]:
    """``{"L1d": "48K", "L1i": "64K", "L2": "2048K", "L3": ...}`` where readable, else empty."""
    out: dict[str, str] = {}
    if not root.is_dir():
        return out
    for index in sorted(root.glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        suffix = {"Data": "d", "Instruction": "i"}.get(kind, "")
        out[f"L{level}{suffix}"] = size
    return out


@dataclass(frozen=True)
class MachineIdentity:
    """What makes two latency measurements comparable (not the hostname)."""

    cpu: str
    cores: int
    runtime: str
    runtime_version: str
    provider: str = DEFAULT_PROVIDER
    threads: int = 1
    caches: dict[str, str] = field(default_factory=dict)
    arch: str = ""
    os: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "cpu": self.cpu,
            "cores": self.cores,
            "caches": dict(self.caches),
            "runtime": self.runtime,
            "runtime_version": self.runtime_version,
            "provider": self.provider,
            "threads": self.threads,
            "arch": self.arch,
            "os": self.os,
        }

    @classmethod
    def from_json(cls, obj: Any, where: str = "identity") -> MachineIdentity:
        if not isinstance(obj, dict):
            raise LUTError(f"{where}: the machine identity must be an object")
        caches = obj.get("caches", {})
        cores, threads = obj.get("cores", 0), obj.get("threads", 1)
        if (
            not isinstance(caches, dict)
            or not all(isinstance(v, str) for v in caches.values())
            or isinstance(cores, bool)
            or not isinstance(cores, int)
            or isinstance(threads, bool)
            or not isinstance(threads, int)
        ):
            raise LUTError(
                f"{where}: malformed machine identity (caches must map levels to sizes, cores "
                "and threads must be integers); re-profile or re-import the table"
            )
        return cls(
            cpu=str(obj.get("cpu", "")),
            cores=cores,
            runtime=str(obj.get("runtime", "")),
            runtime_version=str(obj.get("runtime_version", "")),
            provider=str(obj.get("provider", DEFAULT_PROVIDER)),
            threads=threads,
            caches={str(k): v for k, v in caches.items()},
            arch=str(obj.get("arch", "")),
            os=str(obj.get("os", "")),
        )

    def short(self) -> str:
        """One line: CPU, cores, runtime and provider, threads."""
        return (
            f"{self.cpu} ({self.cores} cores), {self.runtime} {self.runtime_version} "
            f"{self.provider}, {self.threads} thread(s)"
        )

    def differences(self, other: MachineIdentity) -> list[str]:
        """``field ours vs theirs`` for each compared field that differs."""
        a, b = self.to_json(), other.to_json()
        return [f"{k} {a[k]!r} vs {b[k]!r}" for k in COMPARED if a[k] != b[k]]


def runtime_of(backend: str) -> tuple[str, str]:
    """``(runtime, version)`` of a timing backend."""
    if backend == "onnxruntime":
        import onnxruntime as ort

        return "onnxruntime", str(ort.__version__)
    if backend == "torch":
        import torch

        return "torch", str(torch.__version__)
    return backend, ""


def machine_identity(
    backend: str = "onnxruntime", threads: int = 1, provider: str = DEFAULT_PROVIDER
) -> MachineIdentity:
    """This machine's identity for ``backend`` (the provider only applies to ONNX Runtime)."""
    runtime, version = runtime_of(backend)
    return MachineIdentity(
        cpu=cpu_model(),
        cores=os.cpu_count() or 0,
        runtime=runtime,
        runtime_version=version,
        provider=provider if backend == "onnxruntime" else "-",
        threads=threads,
        caches=cache_sizes(),
        arch=platform.machine(),
        os=platform.system(),
    )


def foreign_reason(recorded: MachineIdentity, here: MachineIdentity) -> str | None:
    """Why a table measured on ``recorded`` does not describe ``here`` (None when it does)."""
    diffs = recorded.differences(here)
    return None if not diffs else "measured with " + "; ".join(diffs) + " here"
