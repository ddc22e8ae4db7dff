"""What a device's table is (issue 25, class 9): ``lut import`` never silently replaces an
installed table nor installs one for ``host``, and a table installed for this machine is
completed with the layers of the search space before the run reports it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harmonic_nas.cli import main
from harmonic_nas.config import ExperimentConfig
from harmonic_nas.hardware.inventory import space_layer_specs
from harmonic_nas.hardware.lut import LUT, DeviceInfo, LUTEntry
from harmonic_nas.hardware.lut_source import get_lut, installed_path

KEY = "ConcatFC-input:1_8_4-N:1-C:8-L:4"


def _table(tmp_path: Path, lat: float, name: str) -> str:
    path = tmp_path / name
    path.write_text(json.dumps({KEY: {"lat": lat, "enrg": 1.0}}), encoding="utf-8")
    return str(path)


def test_import_refuses_to_replace_a_different_table_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lut", "import", _table(tmp_path, 0.5, "a.json"), "--device", "dev"]) == 0
    installed = installed_path("dev").read_bytes()
    assert main(["lut", "import", _table(tmp_path, 0.7, "b.json"), "--device", "dev"]) == 2
    err = capsys.readouterr().err
    assert "a table is already installed for device 'dev'" in err and "--force" in err
    assert installed_path("dev").read_bytes() == installed  # untouched
    # the same table again is no change, and --force replaces
    assert main(["lut", "import", _table(tmp_path, 0.5, "a.json"), "--device", "dev"]) == 0
    b = _table(tmp_path, 0.7, "b.json")
    assert main(["lut", "import", b, "--device", "dev", "--force"]) == 0
    assert LUT.load(installed_path("dev")).entries[KEY].latency_ms == pytest.approx(0.7)


def test_import_as_host_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lut", "import", _table(tmp_path, 0.5, "a.json"), "--device", "host"]) == 2
    assert "device 'host' is this machine" in capsys.readouterr().err
    assert not installed_path("host").exists()


def test_a_table_installed_for_host_is_completed_before_use(
    small_cfg: ExperimentConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An installed one-layer host table (an older install) is completed with the space's
    layers, so that the table the run reports is the one its search uses."""
    dev = small_cfg.device
    one = LUT(DeviceInfo("host", backend=dev.backend, threads=dev.threads), "model:constant 15 W")
    one.entries[KEY] = LUTEntry.point(0.5, 1.0)
    one.save(installed_path("host"))
    asked: list[set[str]] = []

    def fake_profile(cfg: Any, *, device: str, only_keys: set[str], progress: Any) -> LUT:
        asked.append(set(only_keys))
        more = LUT(DeviceInfo(device, backend=cfg.device.backend), "model:constant 15 W")
        more.entries.update({k: LUTEntry.point(0.1, 1.5) for k in only_keys})
        return more

    monkeypatch.setattr("harmonic_nas.hardware.profiler.profile_device", fake_profile)
    lut = get_lut(small_cfg)
    space = set(LUT(DeviceInfo("x"), "model:m").missing(space_layer_specs(small_cfg)))
    assert asked and asked[0] == space - {KEY}
    assert set(lut.entries) >= space and len(lut.entries) > 1
    assert LUT.load(small_cfg.run_path / "luts" / "host.json").entries.keys() == lut.entries.keys()
