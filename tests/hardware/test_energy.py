"""Energy sources on fake sysfs trees (RAPL with wrap-around, Jetson INA3221), NVML, the model."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from harmonic_nas.errors import ConfigError
from harmonic_nas.hardware.energy import (
    ConstantPowerModel,
    Ina3221Meter,
    NvmlMeter,
    RaplMeter,
    integrate_mj,
    list_energy_sources,
    make_energy_meter,
    rapl_delta,
)


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _rapl_tree(root: Path, packages: dict[int, tuple[int, int]]) -> Path:
    """``packages``: index -> (energy_uj, max_energy_range_uj); plus a sub-zone to ignore."""
    for i, (energy, top) in packages.items():
        zone = root / f"intel-rapl:{i}"
        zone.mkdir(parents=True)
        (zone / "energy_uj").write_text(f"{energy}\n")
        (zone / "max_energy_range_uj").write_text(f"{top}\n")
        (zone / "name").write_text(f"package-{i}\n")
        sub = root / f"intel-rapl:{i}:0"
        sub.mkdir()
        (sub / "energy_uj").write_text("999999\n")
    return root


def _set_rapl(root: Path, i: int, energy: int) -> None:
    (root / f"intel-rapl:{i}" / "energy_uj").write_text(f"{energy}\n")


def test_rapl_reads_package_domains(tmp_path: Path) -> None:
    root = _rapl_tree(tmp_path / "powercap", {0: (1_000, 10_000_000), 1: (5_000, 10_000_000)})
    meter = RaplMeter(root)
    assert meter.available()
    assert [d.name for d in meter.domains()] == ["intel-rapl:0", "intel-rapl:1"]
    meter.start()
    _set_rapl(root, 0, 4_000)  # +3000 uJ
    _set_rapl(root, 1, 6_500)  # +1500 uJ
    assert meter.stop() == pytest.approx(4.5)  # mJ
    assert meter.label == "rapl"


def test_rapl_wraps_around_at_max_energy_range(tmp_path: Path) -> None:
    top = 262_143_328_850
    root = _rapl_tree(tmp_path / "powercap", {0: (top - 700, top)})
    meter = RaplMeter(root)
    meter.start()
    _set_rapl(root, 0, 300)  # wrapped: 700 to the top, then 300
    assert meter.stop() == pytest.approx(1.0)
    assert rapl_delta(10, 30, 100) == 20
    assert rapl_delta(90, 5, 100) == 15


def test_rapl_unavailable(tmp_path: Path) -> None:
    assert not RaplMeter(tmp_path / "nothing").available()
    root = _rapl_tree(tmp_path / "p", {0: (1, 10)})
    _set_rapl(root, 0, -1)  # unreadable garbage
    (root / "intel-rapl:0" / "energy_uj").write_text("garbage")
    assert not RaplMeter(root).available()


def test_ina3221_old_layout_power_rails(tmp_path: Path) -> None:
    dev = tmp_path / "drivers" / "ina3221x" / "0-0040" / "iio:device0"
    dev.mkdir(parents=True)
    for ch, mw in enumerate((1200, 800, 500)):
        (dev / f"in_power{ch}_input").write_text(f"{mw}\n")
        (dev / f"rail_name_{ch}").write_text(f"RAIL{ch}\n")
    clock = FakeClock()
    meter = Ina3221Meter(tmp_path / "drivers", interval_s=1e-4, clock=clock)
    assert meter.available()
    assert meter.power_mw() == 2500.0
    meter.start()
    clock.t += 0.2  # 0.2 s at 2.5 W = 500 mJ (constant power: exact whatever the sampling)
    energy = meter.stop()
    assert energy == pytest.approx(500.0)
    assert meter.last_elapsed_s == pytest.approx(0.2)
    assert meter.label == "jetson-ina3221"


def test_ina3221_new_layout_voltage_times_current(tmp_path: Path) -> None:
    hw = tmp_path / "drivers" / "ina3221" / "1-0040" / "hwmon" / "hwmon3"
    hw.mkdir(parents=True)
    for ch, (mv, ma) in enumerate([(5000, 400), (5000, 100)], start=1):
        (hw / f"in{ch}_input").write_text(f"{mv}\n")
        (hw / f"curr{ch}_input").write_text(f"{ma}\n")
        (hw / f"in{ch}_label").write_text(f"VDD{ch}\n")
    (hw / "in7_input").write_text("5000\n")  # a voltage without a current: ignored
    clock = FakeClock()
    meter = Ina3221Meter(tmp_path / "drivers", interval_s=1e-4, clock=clock)
    assert meter.available()
    assert meter.power_mw() == pytest.approx(2500.0)  # 5 V x 0.5 A
    meter.start()
    clock.t += 0.1
    assert meter.stop() == pytest.approx(250.0)


def test_ina3221_integrates_a_changing_power() -> None:
    # trapezoids: 1 W for 1 s then ramp 1 -> 3 W over 1 s = 1 J + 2 J
    assert integrate_mj([(0.0, 1000.0), (1.0, 1000.0), (2.0, 3000.0)]) == pytest.approx(3000.0)
    assert integrate_mj([(2.0, 3000.0), (0.0, 1000.0), (1.0, 1000.0)]) == pytest.approx(3000.0)
    assert integrate_mj([(0.0, 5.0)]) == 0.0


def test_ina3221_unavailable(tmp_path: Path) -> None:
    assert not Ina3221Meter(tmp_path).available()


def test_nvml_with_a_fake_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    state = {"mj": 1_000}
    fake = types.ModuleType("pynvml")
    fake.nvmlInit = lambda: None  # type: ignore[attr-defined]
    fake.nvmlDeviceGetHandleByIndex = lambda i: f"gpu{i}"  # type: ignore[attr-defined]
    fake.nvmlDeviceGetTotalEnergyConsumption = lambda h: state["mj"]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    meter = NvmlMeter()
    assert meter.available()
    meter.start()
    state["mj"] += 42
    assert meter.stop() == 42.0


def test_nvml_skipped_when_not_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import raises ImportError
    assert not NvmlMeter().available()


def test_constant_power_model() -> None:
    clock = FakeClock()
    meter = ConstantPowerModel(12.5, clock=clock)
    assert meter.available() and not meter.measures
    assert meter.label == "model:constant power 12.5 W x latency"
    assert meter.energy_mj(2.0) == 25.0  # W x ms = mJ
    meter.start()
    clock.t += 0.004
    assert meter.stop() == pytest.approx(50.0)
    with pytest.raises(ConfigError):
        ConstantPowerModel(0.0)


def test_auto_picks_the_first_available(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    empty = {"rapl": tmp_path / "none", "jetson-ina3221": tmp_path / "none"}
    assert isinstance(make_energy_meter("auto", power_w=7.0, roots=empty), ConstantPowerModel)
    root = _rapl_tree(tmp_path / "powercap", {0: (1, 100)})
    meter = make_energy_meter("auto", roots={**empty, "rapl": root})
    assert isinstance(meter, RaplMeter)
    with pytest.raises(ConfigError, match="not available"):
        make_energy_meter("jetson-ina3221", roots=empty)
    with pytest.raises(ConfigError, match="unknown energy source"):
        make_energy_meter("thermometer")
    assert list_energy_sources()[:4] == ["rapl", "nvml", "jetson-ina3221", "model"]
