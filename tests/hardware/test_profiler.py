"""The profiler: modules per layer kind, backends, interleaved timing, statistics, energy."""

from __future__ import annotations

import pytest
import torch

from harmonic_nas.backbones import LayerSpec
from harmonic_nas.errors import ConfigError
from harmonic_nas.hardware.backends import interleaved_latencies, make_runner
from harmonic_nas.hardware.energy import ConstantPowerModel, EnergyMeter
from harmonic_nas.hardware.keys import lut_key
from harmonic_nas.hardware.profiler import ENERGY_WINDOWS, build_module, profile_layers

SPECS = [
    LayerSpec("conv", (1, 20, 20), 1, 16, kernel=3, stride=2, act="hswish"),
    LayerSpec("mbconv", (16, 10, 10), 16, 24, mid_ch=64, expand=4, kernel=5, stride=2),
    LayerSpec("mbconv", (16, 10, 10), 16, 16, mid_ch=0, expand=1, kernel=3),
    LayerSpec("conv", (40, 1, 1), 40, 80, use_bn=False, act="hswish"),
    LayerSpec("linear", (80,), 80, 10),
    LayerSpec("maxout", (32,), 32, 16, expand=4),
    LayerSpec("fusion_op", (8, 4), 8, 8, op="ScaleDotAttn", C=8, L=4),
    LayerSpec("fusion_op", (8, 4), 8, 8, op="LinearGLU", C=8, L=4),
    LayerSpec("fusion_reshape", (24, 5, 5), 24, 8, kernel=1, C=8, L=4),
    LayerSpec("fusion_reshape", (16,), 16, 32, kernel=1, C=8, L=4),
    LayerSpec("fusion_head", (16, 4), 64, 10, use_bn=False, C=8, L=4),
]


@pytest.mark.parametrize("spec", SPECS, ids=lut_key)
def test_modules_compute_the_layer(spec: LayerSpec) -> None:
    module, inputs = build_module(spec)
    assert not module.training
    with torch.no_grad():
        out = module(*inputs)
    assert all(x.shape[0] == 1 for x in inputs)
    if spec.kind == "fusion_reshape":
        assert tuple(out.shape) == (1, spec.C, spec.L)
    elif spec.kind == "fusion_op":
        assert len(inputs) == 2 and tuple(out.shape) == (1, spec.C, spec.L)
    else:
        assert tuple(out.shape[1:]) == spec.output_shape()


def test_interleaved_latencies_round_robin() -> None:
    order: list[str] = []
    runners = [lambda: order.append("a"), lambda: order.append("b")]
    lat = interleaved_latencies(runners, warmup=2, repeats=6, rounds=3)
    assert [len(x) for x in lat] == [6, 6]
    assert all(t >= 0 for x in lat for t in x)
    assert order == ["a", "a", "b", "b"] + ["a", "a", "b", "b"] * 3


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_profile_layers(backend: str) -> None:
    specs = SPECS if backend == "torch" else [SPECS[1], SPECS[6], SPECS[8], SPECS[10]]
    calls: list[tuple[str, int, int]] = []
    lut = profile_layers(
        [*specs, specs[0]],  # duplicates are profiled once
        backend=backend,
        warmup=1,
        repeats=6,
        meter=ConstantPowerModel(10.0),
        progress=lambda task, done, total: calls.append((task, done, total)),
    )
    assert set(lut.entries) == {lut_key(s) for s in specs}
    assert (lut.device.name, lut.device.backend, lut.device.threads) == ("host", backend, 1)
    assert lut.energy_source == "model:constant power 10 W x latency"
    assert lut.overhead is not None and lut.overhead.latency_ms > 0
    assert lut.meta["entries_net_of_call_overhead"] and lut.meta["reference_ms"] > 0
    for e in lut.entries.values():
        assert e.latency.count == 6 and e.latency.p10 is not None and e.latency.median is not None
        assert e.latency.p10 >= 0 and e.latency.median >= 0  # net of the per-call overhead
        assert e.energy_mj == pytest.approx(10.0 * e.latency_ms, abs=1e-9)
    assert calls[-1][1:] == (len(specs), len(specs))


class CountingMeter(EnergyMeter):
    """A sensor reporting 3 mJ per window."""

    name = "rapl"

    def available(self) -> bool:
        return True

    def _start(self) -> None:
        pass

    def _stop(self) -> float:
        return 3.0


def test_sensor_energy_is_measured_over_windows() -> None:
    lut = profile_layers([SPECS[4]], backend="torch", warmup=1, repeats=4, meter=CountingMeter())
    entry = lut.entries[lut_key(SPECS[4])]
    assert lut.energy_source == "rapl"
    assert entry.energy.count == ENERGY_WINDOWS
    assert 0 <= entry.energy_mj < 3.0  # per inference, net of the trivial model's


def test_bad_backend_and_repeats() -> None:
    module, inputs = build_module(SPECS[4])
    with pytest.raises(ConfigError, match="unknown backend"):
        make_runner(module, inputs, "tensorrt", 1)
    with pytest.raises(ConfigError, match="repeats"):
        profile_layers([SPECS[4]], repeats=0)


def test_measure_stable_stops_when_the_halves_agree_or_at_the_cap() -> None:
    from harmonic_nas.hardware.backends import measure_stable

    work = torch.randn(64, 64)
    timing = measure_stable(lambda: work @ work, 2, 50, tolerance_pct=5.0, max_repeats=400)
    n = len(timing.samples)
    assert n % 50 == 0 and 50 <= n <= 400
    assert n == 400 or timing.split_half_pct <= 5.0
    assert timing.p10 <= timing.median <= timing.p90
    never = measure_stable(lambda: None, 0, 50, tolerance_pct=-1.0, max_repeats=150)
    assert len(never.samples) == 150  # an impossible tolerance stops at the cap
