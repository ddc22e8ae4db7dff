"""On-device profiling: time (and meter) every distinct layer of the configured search space.

Each layer runs alone at batch size 1 with the chosen backend (:mod:`.backends`: ONNX Runtime,
the layer exported to ONNX in memory and timed in an ``InferenceSession``, or eager PyTorch) with
pinned threads, ``warmup`` untimed runs and ``repeats`` timed ones; the LUT keeps mean/std/count/median
and the 10th percentile, which the cost model uses.

What makes the sum of per-layer costs match a whole model (measured by ``lut validate``):

* **Per-call overhead.** A standalone call costs the layer's compute plus a fixed dispatch cost
  (input feed, output fetch, session bookkeeping: ~5-10 us with ONNX Runtime here), which a whole
  model pays once, not once per layer; summing raw layer times over-predicts a 20-layer model by
  ~20 x that. The profiler times a trivial one-op model alongside the layers, stores every layer
  net of it and records it as the LUT's per-model ``overhead`` (added once per model).
* **Dead layers.** The fused model uses backbone features only up to its deepest live fusion
  point, and a genotype can leave nodes/cells unread; an exported graph drops them. The cost model
  leaves them out for graph backends (:func:`~harmonic_nas.fusion.live_graph`).
* **Shared machine.** Other processes slow most runs down by a varying amount, so the median
  drifts with the load (the same models re-timed: Kendall tau ~0.8); a low percentile estimates
  the uncontended latency reproducibly (tau ~0.99). Layers are also timed round-robin in bursts
  (:func:`interleaved_latencies`) so that a slow phase hits every layer alike, and a fixed
  reference model is timed with them: its latency (``meta.reference_ms``) lets a later validation
  tell machine-speed drift from model error.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from harmonic_nas.backbones import LayerSpec, build_layer
from harmonic_nas.errors import ConfigError
from harmonic_nas.hardware.backends import (
    Runner,
    host_description,
    interleaved_latencies,
    time_runner,
)
from harmonic_nas.hardware.cuda_timing import timed_on, timing_device, timing_runner
from harmonic_nas.hardware.energy import ConstantPowerModel, EnergyMeter, make_energy_meter
from harmonic_nas.hardware.identity import DEFAULT_PROVIDER, machine_identity
from harmonic_nas.hardware.keys import lut_key
from harmonic_nas.hardware.lut import (
    LUT,
    DeviceInfo,
    EnergyStats,
    LatencyStats,
    LUTEntry,
    now_iso,
)
from harmonic_nas.utils.progress import ProgressFn, no_progress
from harmonic_nas.utils.seeding import torch_generator
from harmonic_nas.utils.threads import torch_threads

if TYPE_CHECKING:
    from harmonic_nas.config import ExperimentConfig
    from harmonic_nas.fusion import ArchSpec

logger = logging.getLogger(__name__)

#: minimum length of one energy-measurement window with a real sensor (RAPL updates ~1 kHz)
ENERGY_WINDOW_S = 0.05
ENERGY_WINDOWS = 3
#: layers built and timed together
CHUNK = 64
_CPU = torch.device("cpu")


# --- modules to time ----------------------------------------------------------------------------


class _Trivial(nn.Module):
    """One cheap op on a one-element tensor: what a call costs besides the layer's compute."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(x)


class _Reference(nn.Module):
    """A fixed small CNN timed alongside the layers: its latency measures how fast the machine
    was during a measurement, so a later validation can tell drift from model error."""

    def __init__(self) -> None:
        super().__init__()
        from harmonic_nas.backbones.ops import MBConv

        self.blocks = nn.Sequential(
            MBConv(16, 24, kernel=5, stride=2, expand=4),
            MBConv(24, 24, kernel=3, expand=6),
            MBConv(24, 24, kernel=7, expand=3),
        )
        self.fc = nn.Linear(24, 10)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.blocks(x).mean(dim=(2, 3)))


def reference_module() -> tuple[nn.Module, tuple[Tensor, ...]]:
    """The drift reference (:class:`_Reference`, fixed weights) and its input."""
    gen = torch_generator("reference")
    module = _Reference().eval()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    return module, (torch.randn((1, 16, 14, 14), generator=gen),)


def reference_runner(
    backend: str, threads: int, device: torch.device = _CPU, provider: str = DEFAULT_PROVIDER
) -> Runner:
    """The drift reference as a runner."""
    return timing_runner(*reference_module(), backend, threads, device, provider)


def build_module(spec: LayerSpec, *, seed: int = 0) -> tuple[nn.Module, tuple[Tensor, ...]]:
    """A standalone module computing ``spec`` (eval mode) and example inputs at batch size 1."""
    gen = torch_generator("profile", seed, lut_key(spec))
    if spec.kind in ("conv", "mbconv", "linear", "maxout"):
        module = build_layer(spec)
        inputs: tuple[Tensor, ...] = (torch.randn((1, *spec.input_shape), generator=gen),)
    elif spec.kind in ("fusion_op", "fusion_reshape", "fusion_head"):
        from harmonic_nas.fusion import fusion_layer_module

        module, shapes = fusion_layer_module(spec)
        inputs = tuple(torch.randn((1, *shape), generator=gen) for shape in shapes)
    else:
        raise ConfigError(f"cannot profile a layer of kind {spec.kind!r}")
    return module.eval(), inputs


@dataclass(frozen=True)
class Measurement:
    """Raw statistics of one runner."""

    latency: LatencyStats
    energy: EnergyStats

    def entry(self) -> LUTEntry:
        return LUTEntry(self.latency, self.energy)


def latency_stats(samples: Sequence[float]) -> LatencyStats:
    """mean/std/count/median and the 10th percentile (the value the cost model uses)."""
    arr = np.asarray(samples, dtype=np.float64)
    return LatencyStats(
        mean=float(arr.mean()),
        std=float(arr.std()),
        count=len(arr),
        median=float(np.median(arr)),
        p10=float(np.percentile(arr, 10)),
    )


def measure_energy(run: Runner, meter: EnergyMeter, lat: LatencyStats, repeats: int) -> EnergyStats:
    """Energy per inference: from the meter over windows of many runs, or the power model."""
    if isinstance(meter, ConstantPowerModel):
        p = meter.power_w
        return EnergyStats(p * lat.value, p * lat.std, lat.count)
    per_window = max(repeats, math.ceil(ENERGY_WINDOW_S * 1000.0 / max(lat.value, 1e-6)))
    values = []
    for _ in range(ENERGY_WINDOWS):
        meter.start()
        for _ in range(per_window):
            run()
        values.append(meter.stop() / per_window)
    return EnergyStats(float(np.mean(values)), float(np.std(values)), len(values))


def _net(m: Measurement, overhead: Measurement) -> LUTEntry:
    """A layer's cost net of the per-call overhead (never below 0)."""
    lat, o = m.latency, overhead.latency
    en, oe = m.energy, overhead.energy

    def net(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else max(a - b, 0.0)

    return LUTEntry(
        LatencyStats(
            mean=max(lat.mean - o.mean, 0.0),
            std=lat.std,
            count=lat.count,
            median=net(lat.median, o.median),
            p10=net(lat.p10, o.p10),
        ),
        EnergyStats(max(en.mean - oe.mean, 0.0), en.std, en.count),
    )


def trivial_module() -> tuple[nn.Module, tuple[Tensor, ...]]:
    """A trivial one-op model and its input: what one call costs besides a layer's compute."""
    return _Trivial(), (torch.zeros(1),)


def trivial_runner(
    backend: str, threads: int, device: torch.device = _CPU, provider: str = DEFAULT_PROVIDER
) -> Runner:
    return timing_runner(*trivial_module(), backend, threads, device, provider)


def profile_layers(
    specs: Sequence[LayerSpec],
    *,
    device: str = "host",
    backend: str = "onnxruntime",
    threads: int = 1,
    warmup: int = 10,
    repeats: int = 50,
    meter: EnergyMeter | None = None,
    progress: ProgressFn = no_progress,
    seed: int = 0,
    chunk: int = CHUNK,
    compute: torch.device = _CPU,
    provider: str = DEFAULT_PROVIDER,
    models: Sequence[tuple[nn.Module, tuple[Tensor, ...]]] = (),
) -> LUT:
    """Measure ``specs`` (distinct keys) on this machine and return a LUT for ``device``.

    Layers are built (and exported, for ONNX Runtime) in chunks of ``chunk``; within a chunk
    they are timed round-robin together with the trivial overhead model
    (:func:`interleaved_latencies`). Entries are stored net of the per-call overhead, which
    becomes the LUT's per-model ``overhead``. ``compute`` (a GPU: eager torch on CUDA,
    :mod:`.cuda_timing`) is where layers run; ``meta.timed_on`` records it. Whole ``models`` (the
    calibration models) are spread over the chunks and timed in the same round-robin; their
    latencies (the statistic the table keeps) land in ``meta["calibration_measured_ms"]``.
    """
    if repeats < 1:
        raise ConfigError("repeats must be >= 1")
    meter = meter or ConstantPowerModel()
    started = time.perf_counter()
    uniq: dict[str, LayerSpec] = {}
    for s in specs:
        uniq.setdefault(lut_key(s), s)
    keys = list(uniq)
    raw: dict[str, Measurement] = {}
    overhead_samples: list[float] = []
    reference_samples: list[float] = []
    task = f"profiling {device} ({backend})"
    total = len(keys)
    progress(task, 0, total)
    done = 0
    starts = list(range(0, len(keys), chunk)) or [0]
    model_latency: dict[int, float] = {}
    with torch_threads(threads):
        trivial = trivial_runner(backend, threads, compute, provider)
        reference = reference_runner(backend, threads, compute, provider)
        for c, lo in enumerate(starts):
            part = keys[lo : lo + chunk]
            runners = []
            for key in part:
                module, inputs = build_module(uniq[key], seed=seed)
                runners.append(timing_runner(module, inputs, backend, threads, compute, provider))
            mine = [i for i in range(len(models)) if i % len(starts) == c]
            whole = [timing_runner(*models[i], backend, threads, compute, provider) for i in mine]
            lat = interleaved_latencies([trivial, reference, *whole, *runners], warmup, repeats)
            overhead_samples += lat[0]
            reference_samples += lat[1]
            for i, samples in zip(mine, lat[2 : 2 + len(mine)], strict=True):
                model_latency[i] = latency_stats(samples).value
            for key, run, samples in zip(part, runners, lat[2 + len(mine) :], strict=True):
                stats = latency_stats(samples)
                raw[key] = Measurement(stats, measure_energy(run, meter, stats, repeats))
                done += 1
                progress(task, done, total)
            del runners, whole
        if not overhead_samples:
            overhead_samples = time_runner(trivial, warmup, repeats)
        o_lat = latency_stats(overhead_samples)
        overhead = Measurement(o_lat, measure_energy(trivial, meter, o_lat, repeats))
    entries = {k: _net(m, overhead) for k, m in raw.items()}
    elapsed = time.perf_counter() - started
    logger.info("profiled %d layers in %.1f s", len(entries), elapsed)
    return LUT(
        device=DeviceInfo(
            name=device,
            description=host_description(backend, threads, provider)
            + ("" if compute.type == "cpu" else f", timed on {timed_on(compute)}"),
            backend=backend,
            threads=threads,
            identity=machine_identity(backend, threads, provider),
        ),
        energy_source=meter.label,
        entries=entries,
        created=now_iso(),
        overhead=overhead.entry(),
        meta={
            "profiling_time_s": round(elapsed, 2),
            "warmup": warmup,
            "repeats": repeats,
            "call_overhead_ms": overhead.latency.value,
            "entries_net_of_call_overhead": True,
            "latency_statistic": "p10",
            "reference_ms": latency_stats(reference_samples).value if reference_samples else None,
            "timed_on": timed_on(compute),
            "calibration_measured_ms": [model_latency[i] for i in range(len(models))],
        },
    )


def profile_device(
    cfg: ExperimentConfig,
    *,
    device: str | None = None,
    backend: str | None = None,
    threads: int | None = None,
    only_keys: set[str] | None = None,
    n_classes: int | None = None,
    progress: ProgressFn = no_progress,
    provider: str | None = None,
) -> LUT:
    """Profile every distinct layer of ``cfg``'s search space on this machine.

    ``backend`` / ``threads`` / ``provider`` override ``cfg.device``; ``only_keys`` restricts to
    those keys (completing an existing table: no calibration). Otherwise
    ``device.calibration_models`` whole random models of the space are timed with the layers and
    the table's :class:`~harmonic_nas.hardware.calibration.Calibration` is fitted on them.
    """
    from harmonic_nas.hardware.cost import calibrate_lut
    from harmonic_nas.hardware.inventory import config_n_classes, space_layer_specs

    d = cfg.device
    n = config_n_classes(cfg) if n_classes is None else n_classes
    specs = space_layer_specs(cfg, n)
    archs: list[ArchSpec] = []
    models: list[tuple[nn.Module, tuple[Tensor, ...]]] = []
    if only_keys is not None:
        specs = [s for s in specs if lut_key(s) in only_keys]
    elif d.calibration_models > 0:
        with torch_threads(threads or d.threads):  # building on every core is 7x slower here
            archs, models = calibration_models(cfg, d.calibration_models, n)
    meter = make_energy_meter(d.energy_source, power_w=d.power_w)
    lut = profile_layers(
        specs,
        device=device or d.name,
        backend=backend or d.backend,
        threads=threads or d.threads,
        warmup=d.warmup,
        repeats=d.repeats,
        meter=meter,
        progress=progress,
        seed=cfg.seed,
        compute=timing_device(cfg, backend or d.backend),
        provider=provider or d.provider,
        models=models,
    )
    lut.meta["config"] = cfg.name
    if archs:
        calibrate_lut(lut, archs, lut.meta.pop("calibration_measured_ms"))
    return lut


def calibration_models(
    cfg: ExperimentConfig, count: int, n_classes: int
) -> tuple[list[ArchSpec], list[tuple[nn.Module, tuple[Tensor, ...]]]]:
    """``count`` random whole models of ``cfg``'s space with their inputs (seed stream
    ``lut-calibrate``: never the models ``lut validate`` scores, which use ``lut-validate``)."""
    from harmonic_nas.hardware.validate import ModelBuilder, random_arch
    from harmonic_nas.utils.seeding import numpy_rng

    rng = numpy_rng(cfg.seed, "lut-calibrate")
    builder = ModelBuilder()
    archs = [random_arch(cfg, rng, n_classes) for _ in range(count)]
    models: list[tuple[nn.Module, tuple[Tensor, ...]]] = []
    for i, arch in enumerate(archs):
        gen = torch_generator("calibrate", cfg.seed, i)
        inputs = tuple(torch.randn((1, *m.shape), generator=gen) for m in arch.modalities.values())
        models.append((builder(arch), inputs))
    return archs, models
