"""Energy sources: measure the energy (mJ) spent between ``start()`` and ``stop()``.

Registry (first available wins for ``auto``, in this order):

- ``rapl``: Intel RAPL powercap counters ``<root>/intel-rapl:N/energy_uj`` (package domains,
  summed), wrapping around at ``max_energy_range_uj``;
- ``nvml``: the NVIDIA driver's total-energy counter (``pynvml``; skipped when not importable);
- ``jetson-ina3221``: the Jetson INA3221 power rails in sysfs, sampled in a thread while the
  layer runs and integrated over time (trapezoids);
- ``model``: no sensor: energy = P x latency with P from ``cfg.device.power_w``.

Readers take a ``root`` path so that tests can point them at fake sysfs trees.
"""

from __future__ import annotations

import importlib
import itertools
import logging
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from harmonic_nas.errors import ConfigError
from harmonic_nas.utils.registry import Registry

logger = logging.getLogger(__name__)

Clock = Callable[[], float]


class EnergyMeter(ABC):
    """Measures energy over a window: ``start()``, run the workload, ``stop() -> mJ``."""

    name: ClassVar[str]

    def __init__(self, clock: Clock = time.perf_counter) -> None:
        self.clock = clock
        self._t0 = 0.0
        self.last_elapsed_s = 0.0

    @abstractmethod
    def available(self) -> bool:
        """Whether the sensor exists and is readable here."""

    @property
    def label(self) -> str:
        """The LUT's ``energy_source`` value."""
        return self.name

    @property
    def measures(self) -> bool:
        """True for real sensors; False for the model (energy derived from latency)."""
        return True

    def start(self) -> None:
        self._t0 = self.clock()
        self._start()

    def stop(self) -> float:
        energy = self._stop()
        self.last_elapsed_s = self.clock() - self._t0
        return energy

    @abstractmethod
    def _start(self) -> None: ...

    @abstractmethod
    def _stop(self) -> float: ...


_REGISTRY: Registry[type[EnergyMeter]] = Registry(
    "energy source", ConfigError, extra_names=("auto",)
)
#: the order ``auto`` tries the sources in
AUTO_ORDER = ("rapl", "nvml", "jetson-ina3221")


def register_energy_source(name: str) -> Callable[[type[EnergyMeter]], type[EnergyMeter]]:
    """Class decorator adding an energy source to the registry."""

    def deco(cls: type[EnergyMeter]) -> type[EnergyMeter]:
        cls.name = name
        _REGISTRY.register(name, cls)
        return cls

    return deco


def list_energy_sources() -> list[str]:
    return _REGISTRY.names()


def _read_int(path: Path) -> int:
    return int(path.read_text().strip())


@register_energy_source("rapl")
class RaplMeter(EnergyMeter):
    """Intel RAPL package counters (µJ), summed over packages, with wrap-around."""

    DEFAULT_ROOT = Path("/sys/class/powercap")
    _PACKAGE = re.compile(r"^intel-rapl:\d+$")

    def __init__(self, root: Path | str | None = None, clock: Clock = time.perf_counter) -> None:
        super().__init__(clock)
        self.root = Path(root) if root is not None else self.DEFAULT_ROOT
        self._before: list[int] = []

    def domains(self) -> list[Path]:
        """Package-level zones (``intel-rapl:N``; sub-zones would double count)."""
        if not self.root.is_dir():
            return []
        return sorted(
            p
            for p in self.root.iterdir()
            if self._PACKAGE.match(p.name) and (p / "energy_uj").is_file()
        )

    def available(self) -> bool:
        try:
            return bool(self.domains()) and all(
                _read_int(d / "energy_uj") >= 0 for d in self.domains()
            )
        except (OSError, ValueError):
            return False

    def read(self) -> list[int]:
        return [_read_int(d / "energy_uj") for d in self.domains()]

    def max_ranges(self) -> list[int]:
        out = []
        for d in self.domains():
            p = d / "max_energy_range_uj"
            out.append(_read_int(p) if p.is_file() else 2**32)
        return out

    def _start(self) -> None:
        self._before = self.read()

    def _stop(self) -> float:
        after = self.read()
        total_uj = 0
        for b, a, top in zip(self._before, after, self.max_ranges(), strict=True):
            total_uj += rapl_delta(b, a, top)
        return total_uj / 1000.0


def rapl_delta(before: int, after: int, max_range: int) -> int:
    """µJ between two RAPL readings; the counter wraps to 0 after ``max_range``."""
    return after - before if after >= before else (max_range - before) + after


@register_energy_source("nvml")
class NvmlMeter(EnergyMeter):
    """The GPU's total-energy counter (mJ since driver load), via ``pynvml``."""

    def __init__(self, index: int = 0, clock: Clock = time.perf_counter) -> None:
        super().__init__(clock)
        self.index = index
        self._nvml: Any = None
        self._handle: Any = None
        self._before = 0

    def _init(self) -> bool:
        if self._handle is not None:
            return True
        try:
            nvml = importlib.import_module("pynvml")
            nvml.nvmlInit()
            handle = nvml.nvmlDeviceGetHandleByIndex(self.index)
            nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        except Exception:  # not importable, no driver, no GPU, counter unsupported
            return False
        self._nvml, self._handle = nvml, handle
        return True

    def available(self) -> bool:
        return self._init()

    def _read(self) -> int:
        if not self._init():
            raise RuntimeError("NVML is not available")
        return int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))

    def _start(self) -> None:
        self._before = self._read()

    def _stop(self) -> float:
        return float(self._read() - self._before)


@register_energy_source("jetson-ina3221")
class Ina3221Meter(EnergyMeter):
    """Jetson INA3221 rails: total power sampled in a thread, integrated over the window.

    Supports both sysfs layouts: ``ina3221x/*/iio:device*/in_power<N>_input`` (mW, L4T <= 32)
    and ``ina3221/*/hwmon/hwmon*/in<N>_input`` (mV) x ``curr<N>_input`` (mA) (L4T >= 34).
    """

    DEFAULT_ROOT = Path("/sys/bus/i2c/drivers")

    def __init__(
        self,
        root: Path | str | None = None,
        interval_s: float = 0.002,
        clock: Clock = time.perf_counter,
    ) -> None:
        super().__init__(clock)
        self.root = Path(root) if root is not None else self.DEFAULT_ROOT
        self.interval_s = interval_s
        self.samples: list[tuple[float, float]] = []
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    def power_files(self) -> list[Path]:
        """Old layout: direct power files (mW)."""
        return sorted(self.root.glob("ina3221x/*/iio:device*/in_power*_input"))

    def voltage_current_pairs(self) -> list[tuple[Path, Path]]:
        """New layout: (voltage mV, current mA) per channel."""
        pairs = []
        for v in sorted(self.root.glob("ina3221/*/hwmon/hwmon*/in*_input")):
            m = re.match(r"in(\d+)_input$", v.name)
            if m is None:
                continue
            c = v.with_name(f"curr{m.group(1)}_input")
            if c.is_file():
                pairs.append((v, c))
        return pairs

    def available(self) -> bool:
        try:
            if not self.power_files() and not self.voltage_current_pairs():
                return False
            self.power_mw()
            return True
        except (OSError, ValueError):
            return False

    def power_mw(self) -> float:
        """Total instantaneous power over every rail, in mW."""
        files = self.power_files()
        if files:
            return float(sum(_read_int(p) for p in files))
        return sum(_read_int(v) * _read_int(c) for v, c in self.voltage_current_pairs()) / 1000.0

    def _sample(self) -> None:
        self.samples.append((self.clock(), self.power_mw()))

    def _run(self) -> None:
        while not self._stop_event.wait(self.interval_s):
            self._sample()

    def _start(self) -> None:
        self.samples = []
        self._stop_event.clear()
        self._sample()
        self._thread = threading.Thread(target=self._run, daemon=True, name="ina3221-sampler")
        self._thread.start()

    def _stop(self) -> float:
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._sample()
        return integrate_mj(self.samples)


def integrate_mj(samples: list[tuple[float, float]]) -> float:
    """Trapezoidal integral of ``(time_s, power_mW)`` samples: mJ (mW x s = mJ)."""
    samples = sorted(samples)
    total = 0.0
    for (t0, p0), (t1, p1) in itertools.pairwise(samples):
        total += 0.5 * (p0 + p1) * (t1 - t0)
    return total


@register_energy_source("model")
class ConstantPowerModel(EnergyMeter):
    """No sensor: energy = P x elapsed time (P in W; W x ms = mJ)."""

    def __init__(self, power_w: float = 15.0, clock: Clock = time.perf_counter) -> None:
        super().__init__(clock)
        if not power_w > 0:
            raise ConfigError(f"device.power_w must be positive, got {power_w}")
        self.power_w = power_w

    def available(self) -> bool:
        return True

    @property
    def label(self) -> str:
        return f"model:constant power {self.power_w:g} W x latency"

    @property
    def measures(self) -> bool:
        return False

    def energy_mj(self, latency_ms: float) -> float:
        return self.power_w * latency_ms

    def _start(self) -> None:
        pass

    def _stop(self) -> float:
        return self.power_w * (self.clock() - self._t0) * 1000.0


def make_energy_meter(
    source: str = "auto",
    *,
    power_w: float = 15.0,
    roots: dict[str, Path | str] | None = None,
) -> EnergyMeter:
    """The energy meter named ``source`` (``auto``: first available sensor, else the model).

    ``roots`` overrides the sysfs root of ``rapl`` / ``jetson-ina3221`` (tests use fake trees).
    A named sensor that is not available is a :class:`ConfigError`.
    """
    roots = roots or {}

    def build(name: str) -> EnergyMeter:
        if name == "model":
            return ConstantPowerModel(power_w)
        if name == "rapl":
            return RaplMeter(roots.get("rapl"))
        if name == "jetson-ina3221":
            return Ina3221Meter(roots.get("jetson-ina3221"))
        if name == "nvml":
            return NvmlMeter()
        if name in _REGISTRY:
            return _REGISTRY[name]()
        raise _REGISTRY.unknown(name)

    if source == "auto":
        for name in AUTO_ORDER:
            meter = build(name)
            if meter.available():
                logger.info("energy source: %s", meter.label)
                return meter
        return build("model")
    meter = build(source)
    if not meter.available():
        raise ConfigError(
            f"energy source {source!r} is not available on this machine; set device.energy_source "
            "to auto or model"
        )
    return meter
