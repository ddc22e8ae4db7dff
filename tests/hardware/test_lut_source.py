"""Device registry and get_lut: host profiled on first use, imported devices, clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harmonic_nas.config import ExperimentConfig, parse_config
from harmonic_nas.errors import LUTError
from harmonic_nas.hardware import profiler
from harmonic_nas.hardware.lut import LUT, DeviceInfo, LUTEntry
from harmonic_nas.hardware.lut_source import (
    get_lut,
    import_command,
    install_lut,
    installed_luts_dir,
    installed_path,
    list_devices,
    run_lut_path,
)

from .conftest import small_config_dict

KEY = "LinearLayer-input:80-in_ch:80-out_ch:10"


def test_installed_luts_dir_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARMONIC_NAS_CACHE", str(tmp_path / "c"))
    assert installed_luts_dir() == tmp_path / "c" / "luts"
    assert installed_path("jetson-tx2") == tmp_path / "c" / "luts" / "jetson-tx2.json"
    monkeypatch.delenv("HARMONIC_NAS_CACHE")
    assert installed_luts_dir() == Path.home() / ".cache" / "harmonic-nas" / "luts"


def test_jetson_without_a_lut_explains_how_to_get_one(small_cfg: ExperimentConfig) -> None:
    with pytest.raises(LUTError) as info:
        get_lut(small_cfg, device="jetson-tx2")
    msg = str(info.value)
    assert (
        "harmonic-nas lut import lut_ofa_mnist_tx2.json lut_fusion_tx2.json --device jetson-tx2"
        in msg
    )
    assert "\n" not in msg
    assert import_command("jetson-agx").endswith("lut_fusion_agx.json --device jetson-agx")


def test_unknown_device(small_cfg: ExperimentConfig) -> None:
    with pytest.raises(LUTError, match=r"unknown device 'toaster'.*lut import FILE"):
        get_lut(small_cfg, device="toaster")


def _lut(name: str, lat: float = 1.0) -> LUT:
    return LUT(DeviceInfo(name, "x"), "imported:test", {KEY: LUTEntry.point(lat, 2.0)})


def test_installed_lut_is_used_and_copied_into_the_run(small_cfg: ExperimentConfig) -> None:
    install_lut(_lut("jetson-agx"))
    assert "jetson-agx" in list_devices()
    lut = get_lut(small_cfg, device="jetson-agx")
    assert lut.entries[KEY].latency_ms == 1.0
    run_copy = run_lut_path(small_cfg, "jetson-agx")
    assert LUT.load(run_copy).to_json() == lut.to_json()
    install_lut(_lut("jetson-agx", lat=3.0))  # a re-import applies to the run too
    assert get_lut(small_cfg, device="jetson-agx").entries[KEY].latency_ms == 3.0
    assert LUT.load(run_copy).entries[KEY].latency_ms == 3.0
    # any installed name is a device
    install_lut(_lut("my-board"))
    assert get_lut(small_cfg, device="my-board").device.name == "my-board"


def test_host_is_profiled_on_first_use_then_cached(
    small_cfg: ExperimentConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(LUTError, match="harmonic-nas profile CONFIG"):
        get_lut(small_cfg, profile_if_missing=False)
    lut = get_lut(small_cfg)
    path = run_lut_path(small_cfg)
    assert path == small_cfg.run_path / "luts" / "host.json" and path.is_file()
    assert lut.device.backend == "torch" and len(lut) > 50

    def boom(*a: Any, **k: Any) -> LUT:
        raise AssertionError("must not profile again")

    monkeypatch.setattr(profiler, "profile_device", boom)
    assert get_lut(small_cfg).to_json() == lut.to_json()


def test_host_lut_is_completed_or_reprofiled(
    small_cfg: ExperimentConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lut = get_lut(small_cfg)
    calls: list[dict[str, Any]] = []
    real = profiler.profile_device

    def spy(cfg: ExperimentConfig, **kw: Any) -> LUT:
        calls.append(kw)
        return real(cfg, **kw)

    monkeypatch.setattr(profiler, "profile_device", spy)
    # the fusion size changed: only the new fusion layers are profiled and merged
    data = small_config_dict(small_cfg.run_dir)
    data["fusion"]["C"] = 16
    bigger = parse_config(data)
    merged = get_lut(bigger)
    assert calls and calls[0]["only_keys"] and all("16" in k for k in calls[0]["only_keys"])
    assert set(lut.entries) < set(merged.entries)
    # another backend: re-profiled from scratch
    data["device"]["backend"] = "onnxruntime"
    data["device"]["repeats"] = 2
    other = get_lut(parse_config(data))
    assert other.device.backend == "onnxruntime"
    assert calls[-1].get("only_keys") is None


def test_host_lut_of_another_cpu_is_reprofiled(
    small_cfg: ExperimentConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harmonic_nas.hardware.identity import MachineIdentity

    lut = get_lut(small_cfg)
    assert lut.device.identity is not None
    here = lut.device.identity
    # the same table, recorded on another CPU (the hostname is not part of the identity)
    foreign = LUT.from_json(lut.to_json())
    foreign.device = DeviceInfo(
        "host",
        "",
        lut.device.backend,
        lut.device.threads,
        identity=MachineIdentity.from_json({**here.to_json(), "cpu": "AMD EPYC 7B13"}),
    )
    foreign.save(run_lut_path(small_cfg))
    calls: list[dict[str, Any]] = []
    real = profiler.profile_device

    def spy(cfg: ExperimentConfig, **kw: Any) -> LUT:
        calls.append(kw)
        return real(cfg, **kw)

    monkeypatch.setattr(profiler, "profile_device", spy)
    again = get_lut(small_cfg)
    assert len(calls) == 1 and calls[0].get("only_keys") is None
    assert again.device.identity == here
    assert LUT.load(run_lut_path(small_cfg)).device.identity == here
    # the same machine: reused as it is
    assert get_lut(small_cfg).to_json() == again.to_json() and len(calls) == 1


def test_version_1_host_lut_of_another_cpu_is_reprofiled(
    small_cfg: ExperimentConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    lut = get_lut(small_cfg)
    old = lut.to_json()
    old["schema_version"] = 1
    del old["calibration"], old["predicted"], old["device"]["identity"]
    old["device"]["description"] = "box-1: AMD EPYC 7B13, torch 2.4.0, 1 thread(s)"
    import json

    run_lut_path(small_cfg).write_text(json.dumps(old))
    legacy = LUT.load(run_lut_path(small_cfg))  # version 1 is still read
    assert legacy.device.identity is None and legacy.calibration is None
    calls: list[int] = []
    real = profiler.profile_device
    monkeypatch.setattr(
        profiler, "profile_device", lambda cfg, **kw: calls.append(1) or real(cfg, **kw)
    )
    assert get_lut(small_cfg).device.identity is not None and calls == [1]


def test_installed_host_lut_of_another_machine_is_not_used(small_cfg: ExperimentConfig) -> None:
    from harmonic_nas.hardware.identity import MachineIdentity, machine_identity

    here = machine_identity("torch", 1)
    other = MachineIdentity.from_json({**here.to_json(), "cores": here.cores + 64})
    install_lut(
        LUT(
            DeviceInfo("host", "", "torch", 1, identity=other),
            "model:test",
            {KEY: LUTEntry.point(9.0, 9.0)},
        )
    )
    with pytest.raises(LUTError, match="harmonic-nas profile CONFIG"):
        get_lut(small_cfg, profile_if_missing=False)
    assert get_lut(small_cfg).device.identity == here
