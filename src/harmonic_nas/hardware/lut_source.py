"""Where each device's LUT comes from (the device registry), and :func:`get_lut`.

- ``host`` (this machine) is profiled on first use and cached in ``<run>/luts/host.json``;
- ``jetson-tx2``, ``jetson-agx`` need a LUT imported from the published tables
  (``harmonic-nas lut import ... --device jetson-tx2``) or profiled on the device itself;
- installed LUTs live in ``$HARMONIC_NAS_CACHE/luts/<device>.json`` (default
  ``~/.cache/harmonic-nas``); any installed name is a usable device.

The run's copy ``<run>/luts/<device>.json`` is the stage artifact the search reads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harmonic_nas.errors import LUTError
from harmonic_nas.hardware.lut import LUT
from harmonic_nas.utils.names import check_name
from harmonic_nas.utils.paths import cache_root
from harmonic_nas.utils.progress import ProgressFn, no_progress
from harmonic_nas.utils.registry import Registry

if TYPE_CHECKING:
    from harmonic_nas.config import ExperimentConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceEntry:
    """A known device: profiled here on first use (``profile_here``) or imported."""

    name: str
    description: str
    profile_here: bool = False
    reference_files: tuple[str, ...] = ()


_DEVICES: Registry[DeviceEntry] = Registry("device", LUTError)


def register_device(entry: DeviceEntry) -> DeviceEntry:
    """Add a device to the registry (a name already registered is refused)."""
    return _DEVICES.register(entry.name, entry)


register_device(DeviceEntry("host", "this machine (profiled on first use)", profile_here=True))
register_device(
    DeviceEntry(
        "jetson-tx2",
        "NVIDIA Jetson TX2 (Harmonic-NAS published tables)",
        reference_files=("lut_ofa_mnist_tx2.json", "lut_fusion_tx2.json"),
    )
)
register_device(
    DeviceEntry(
        "jetson-agx",
        "NVIDIA Jetson AGX Xavier (Harmonic-NAS published tables)",
        reference_files=("lut_ofa_mnist_agx.json", "lut_fusion_agx.json"),
    )
)


def get_device(name: str) -> DeviceEntry | None:
    return _DEVICES.find(name)


def installed_luts_dir() -> Path:
    """Where installed LUTs live: ``luts/`` under ``$HARMONIC_NAS_CACHE`` (default
    ``~/.cache/harmonic-nas``)."""
    return cache_root() / "luts"


def installed_path(device: str) -> Path:
    """``<cache>/luts/<device>.json``; a device name that is no plain file name is refused."""
    return installed_luts_dir() / f"{check_name(device, 'device name')}.json"


def run_lut_path(cfg: ExperimentConfig, device: str | None = None) -> Path:
    """``<run>/luts/<device>.json`` (default: the config's device)."""
    return cfg.run_path / "luts" / f"{check_name(device or cfg.device.name, 'device name')}.json"


def installed_devices() -> list[str]:
    folder = installed_luts_dir()
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def list_devices() -> list[str]:
    """Registered devices plus every installed LUT's name."""
    return sorted(set(_DEVICES) | set(installed_devices()))


def install_lut(lut: LUT) -> Path:
    """Save ``lut`` as the installed table of ``lut.device.name``."""
    return lut.save(installed_path(lut.device.name))


def check_replace(lut: LUT) -> None:
    """Refuse to replace a different table installed for ``lut.device.name`` (the same entries
    again are no change); ``lut import --force`` skips this check."""
    path = installed_path(lut.device.name)
    if not path.is_file():
        return
    try:
        old = LUT.load(path)
    except LUTError:
        old = None
    if old is not None and old.entries == lut.entries and old.energy_source == lut.energy_source:
        return
    what = f"{len(old.entries)} entries, {old.energy_source}" if old is not None else "unreadable"
    raise LUTError(
        f"a table is already installed for device '{lut.device.name}' at {path} ({what}); "
        f"pass --force to replace it, or import under another --device name"
    )


def import_command(device: str) -> str:
    """The exact command that installs ``device``'s table."""
    entry = _DEVICES.find(device)
    files = entry.reference_files if entry and entry.reference_files else ("FILE.json",)
    return f"harmonic-nas lut import {' '.join(files)} --device {device}"


def _missing_message(device: str) -> str:
    entry = _DEVICES.find(device)
    if entry is None:
        return (
            f"unknown device '{device}'; choose one of {', '.join(list_devices())}, or install its "
            f"table with `harmonic-nas lut import FILE... --device {device}`"
        )
    return (
        f"no LUT for device '{device}'; import the published tables with "
        f"`{import_command(device)}` (files from the Harmonic-NAS reference LUTs), or run "
        f"`harmonic-nas profile CONFIG --device {device}` on the device itself"
    )


def foreign_table(lut: LUT, backend: str, threads: int, provider: str) -> str | None:
    """Why ``lut`` does not describe this machine with ``backend``/``threads``/``provider``
    (None when it does). A table with a machine identity is compared field by field
    (:mod:`.identity`); a version-1 table only recorded a description, whose CPU is compared."""
    from harmonic_nas.hardware.identity import cpu_model, foreign_reason, machine_identity

    if lut.device.backend != backend or lut.device.threads != threads:
        return f"backend/threads {lut.device.backend}/{lut.device.threads} != {backend}/{threads}"
    here = machine_identity(backend, threads, provider)
    if lut.device.identity is not None:
        return foreign_reason(lut.device.identity, here)
    cpu = legacy_cpu(lut.device.description)
    if cpu is not None and cpu != cpu_model():
        return f"measured on CPU {cpu!r}, this machine has {cpu_model()!r}"
    return None


def legacy_cpu(description: str) -> str | None:
    """The CPU model in a version-1 description (``"<host>: <cpu>, <runtime>, N thread(s)"``)."""
    _, sep, rest = description.partition(": ")
    parts = rest.rsplit(", ", 2)
    if not sep or len(parts) != 3 or not parts[2].endswith("thread(s)"):
        return None
    return parts[0]


def _stale_host(lut: LUT, cfg: ExperimentConfig) -> str | None:
    d = cfg.device
    return foreign_table(lut, d.backend, d.threads, d.provider)


def get_lut(
    cfg: ExperimentConfig,
    *,
    device: str | None = None,
    profile_if_missing: bool = True,
    progress: ProgressFn = no_progress,
) -> LUT:
    """The LUT of ``device`` (default ``cfg.device.name``) for this run.

    Order: the run's copy; else the installed table (copied into the run); else, for a device
    profiled here (``host``), profile the configured search space and cache it in the run.
    A host table that lacks layers of the space (the config changed) is completed by profiling
    only those; one made with another backend, thread count or execution provider, or on
    another machine (its recorded identity differs from this one's), is re-profiled.
    """
    name = device or cfg.device.name
    run_path = run_lut_path(cfg, name)
    entry = _DEVICES.find(name)
    installed = installed_path(name)
    if entry is None or not entry.profile_here:
        if installed.is_file():  # the installed table is the source of truth (re-imports apply)
            lut = LUT.load(installed)
            if not run_path.is_file() or LUT.load(run_path).to_json() != lut.to_json():
                lut.save(run_path)
            return lut
        if run_path.is_file():
            return LUT.load(run_path)
        raise LUTError(_missing_message(name))
    if run_path.is_file():
        lut = LUT.load(run_path)
        stale = _stale_host(lut, cfg)
        if stale is None:
            return _complete(cfg, lut, run_path, profile_if_missing, progress)
        logger.warning("cached %s LUT is stale (%s); re-profiling", name, stale)
    elif installed.is_file():  # a table installed for this machine: completed like the run's
        lut = LUT.load(installed)
        stale = _stale_host(lut, cfg)
        if stale is None:
            lut.save(run_path)
            return _complete(cfg, lut, run_path, profile_if_missing, progress)
        logger.warning("installed %s LUT is stale (%s); profiling this machine", name, stale)
    if not profile_if_missing:
        raise LUTError(
            f"no LUT for '{name}' in {run_path.parent}; run `harmonic-nas profile CONFIG`"
        )
    from harmonic_nas.hardware.profiler import profile_device

    lut = profile_device(cfg, device=name, progress=progress)
    lut.save(run_path)
    return lut


def _complete(
    cfg: ExperimentConfig, lut: LUT, path: Path, profile: bool, progress: ProgressFn
) -> LUT:
    from harmonic_nas.hardware.inventory import space_layer_specs

    missing = lut.missing(space_layer_specs(cfg))
    if not missing:
        return lut
    if not profile:
        logger.warning("%s lacks %d layers of the search space", path, len(missing))
        return lut
    from harmonic_nas.hardware.profiler import profile_device

    logger.info("profiling %d layers missing from %s", len(missing), path)
    more = profile_device(cfg, device=lut.device.name, only_keys=set(missing), progress=progress)
    lut.merge(more)
    if lut.overhead is None:
        lut.overhead = more.overhead
    lut.save(path)
    return lut
