"""Timing on a CUDA GPU with eager PyTorch: the profiler's and the whole-model check's runner when
``device.backend`` is ``torch`` and ``compute.device`` resolves to a GPU.

A GPU runs kernels asynchronously: a runner that only launched them would time the launch. The
runner here ends every call with ``torch.cuda.synchronize``, so the host clock of the timing loop
(:func:`~harmonic_nas.hardware.backends.interleaved_latencies`) measures launch + execution, the
latency a batch-1 caller sees; the profiler's trivial model is timed the same way, so the per-call
synchronisation is taken out of every layer once (the LUT's ``overhead``). :func:`event_ms` times
the same call with CUDA events (device time only), as a cross-check.

Which machine timed a table is recorded in its ``meta.timed_on`` (``cpu`` or
``cuda:0 (<GPU name>)``) and its device description. ONNX Runtime's CUDA / TensorRT execution
providers are not chosen here: they belong to the ONNX Runtime backend's provider option, and
:func:`timing_runner` is the one place that would hand a layer to them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from harmonic_nas.errors import ConfigError
from harmonic_nas.hardware.backends import Runner, make_runner
from harmonic_nas.hardware.identity import DEFAULT_PROVIDER
from harmonic_nas.utils.device import describe_device, resolve_device

if TYPE_CHECKING:
    from harmonic_nas.config import ExperimentConfig

logger = logging.getLogger(__name__)

_CPU = torch.device("cpu")


def cuda_runner(module: nn.Module, inputs: tuple[Tensor, ...], device: torch.device) -> Runner:
    """One synchronised batch-1 inference of ``module`` on the GPU ``device`` per call."""
    module = module.to(device).eval()
    on_gpu = tuple(t.to(device) for t in inputs)

    def run_cuda() -> object:
        with torch.inference_mode():
            out = module(*on_gpu)
        torch.cuda.synchronize(device)
        return out

    return run_cuda


def event_ms(run: Runner, device: torch.device, repeats: int) -> list[float]:
    """Device-side latencies (ms) of ``repeats`` calls of ``run``, from CUDA events."""
    out = []
    for _ in range(repeats):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record(torch.cuda.current_stream(device))
        run()
        end.record(torch.cuda.current_stream(device))
        end.synchronize()
        out.append(float(start.elapsed_time(end)))
    return out


def timing_device(cfg: ExperimentConfig, backend: str) -> torch.device:
    """Where layers are timed: the compute device for the torch backend, else the CPU."""
    return resolve_device(cfg.compute.device) if backend == "torch" else _CPU


def timing_runner(
    module: nn.Module,
    inputs: tuple[Tensor, ...],
    backend: str,
    threads: int,
    device: torch.device = _CPU,
    provider: str = DEFAULT_PROVIDER,
) -> Runner:
    """The runner of one module: synchronised CUDA for ``torch`` on a GPU, else the backend's
    runner (:func:`~harmonic_nas.hardware.backends.make_runner`; ONNX Runtime with the
    execution ``provider``)."""
    if device.type == "cuda":
        if backend != "torch":
            raise ConfigError(
                f"timing on {device} needs device.backend torch (got {backend}); set "
                "device.backend: torch, or compute.device: cpu"
            )
        return cuda_runner(module, inputs, device)
    return make_runner(module, inputs, backend, threads, provider)


def timed_on(device: torch.device) -> str:
    """What ``meta.timed_on`` records for a table timed on ``device``."""
    return describe_device(device)


def lut_timing_device(timed: str | None) -> torch.device:
    """The device to re-time a table on, from its ``meta.timed_on`` (a CUDA table needs the same
    GPU index on this machine: a one-line error otherwise)."""
    if not timed or not timed.startswith("cuda"):
        return _CPU
    name = timed.split(" ", 1)[0]
    try:
        return resolve_device(name)
    except ConfigError:
        raise ConfigError(
            f"the table was timed on {timed}, but this machine has no such GPU; validate it on "
            "the machine that profiled it"
        ) from None


__all__ = [
    "cuda_runner",
    "event_ms",
    "lut_timing_device",
    "timed_on",
    "timing_device",
    "timing_runner",
]
