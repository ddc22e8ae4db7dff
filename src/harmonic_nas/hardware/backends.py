"""Timing backends: run one module at batch size 1 with ONNX Runtime (exported to ONNX in memory,
timed in an ``InferenceSession``) or eager PyTorch, and time runners (alone or round-robin).

:mod:`harmonic_nas.hardware.profiler` builds the modules and turns these timings into a LUT;
:mod:`harmonic_nas.hardware.validate` times whole models with the same runners.
"""

from __future__ import annotations

import io
import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from harmonic_nas.errors import ConfigError
from harmonic_nas.hardware.identity import DEFAULT_PROVIDER, machine_identity

logger = logging.getLogger(__name__)

Runner = Callable[[], object]

#: timing rounds (samples of every layer are spread over the whole measurement)
ROUNDS = 10


def export_onnx(module: nn.Module, inputs: tuple[Tensor, ...]) -> bytes:
    """The module as an in-memory ONNX model (TorchScript-based exporter: no onnxscript needed)."""
    buf = io.BytesIO()
    names = [f"x{i}" for i in range(len(inputs))]
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            inputs,
            buf,  # type: ignore[arg-type]
            input_names=names,
            output_names=["y"],
            opset_version=17,
            dynamo=False,
        )
    return buf.getvalue()


def check_provider(provider: str) -> None:
    """A one-line :class:`ConfigError` unless this ONNX Runtime offers ``provider``."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if provider not in available:
        raise ConfigError(
            f"ONNX Runtime here has no execution provider {provider!r}; choose one of "
            f"{', '.join(available)} (device.provider or --provider)"
        )


def ort_session(model: bytes, threads: int, provider: str = DEFAULT_PROVIDER) -> Any:
    """An ONNX Runtime session on ``provider`` with pinned threads and full graph optimisation
    (the one session builder: the profiler, the validation and export all come through here)."""
    import onnxruntime as ort

    check_provider(provider)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(model, opts, providers=[provider])


def make_runner(
    module: nn.Module,
    inputs: tuple[Tensor, ...],
    backend: str,
    threads: int,
    provider: str = DEFAULT_PROVIDER,
) -> Runner:
    """A zero-argument callable running one inference of ``module`` on ``inputs``."""
    module = module.eval()
    if backend == "torch":

        def run_torch() -> object:
            with torch.inference_mode():
                return module(*inputs)

        return run_torch
    if backend == "onnxruntime":
        sess = ort_session(export_onnx(module, inputs), threads, provider)
        # inputs the graph does not use are pruned by the exporter: feed the remaining ones
        feed = {i.name: inputs[int(i.name[1:])].numpy() for i in sess.get_inputs()}

        def run_ort() -> object:
            return sess.run(None, feed)

        return run_ort
    raise ConfigError(f"unknown backend {backend!r}; use onnxruntime or torch")


def time_runner(run: Runner, warmup: int, repeats: int) -> list[float]:
    """``repeats`` individual latencies in ms after ``warmup`` untimed runs."""
    for _ in range(warmup):
        run()
    out = []
    clock = time.perf_counter_ns
    for _ in range(repeats):
        t0 = clock()
        run()
        out.append((clock() - t0) / 1e6)
    return out


def interleaved_latencies(
    runners: Sequence[Runner],
    warmup: int,
    repeats: int,
    *,
    rounds: int = ROUNDS,
    on_round: Callable[[int], None] | None = None,
) -> list[list[float]]:
    """``repeats`` latencies (ms) of each runner, taken round-robin in ``rounds`` bursts.

    On a shared machine the speed drifts (other processes, a busy SMT sibling, frequency);
    spreading every runner's samples over the whole measurement makes those phases hit all
    runners alike instead of inflating whichever layer happened to run during one.
    """
    for run in runners:
        for _ in range(warmup):
            run()
    samples: list[list[float]] = [[] for _ in runners]
    rounds = max(1, min(rounds, repeats))
    clock = time.perf_counter_ns
    for r in range(rounds):
        burst = repeats // rounds + (1 if r < repeats % rounds else 0)
        for run, out in zip(runners, samples, strict=True):
            for _ in range(burst):
                t0 = clock()
                run()
                out.append((clock() - t0) / 1e6)
        if on_round is not None:
            on_round(r + 1)
    return samples


def host_description(backend: str, threads: int, provider: str = DEFAULT_PROVIDER) -> str:
    """A one-line description of this machine and backend (no hostname: see :mod:`.identity`)."""
    return machine_identity(backend, threads, provider).short()


@dataclass(frozen=True)
class StableTiming:
    """Latencies (ms) of one model taken until their median settles (see :func:`measure_stable`)."""

    samples: list[float]
    split_half_pct: float  # |median of the first half - of the second half| / median, in %

    @property
    def median(self) -> float:
        return float(np.median(self.samples))

    @property
    def p10(self) -> float:
        return float(np.percentile(self.samples, 10))

    @property
    def p90(self) -> float:
        return float(np.percentile(self.samples, 90))


def measure_stable(
    run: Runner,
    warmup: int,
    repeats: int,
    *,
    tolerance_pct: float = 2.0,
    max_repeats: int = 2000,
    max_seconds: float = 20.0,
) -> StableTiming:
    """The profiler's protocol for one whole model: ``warmup`` untimed runs, then bursts of
    ``repeats`` timed runs (:func:`interleaved_latencies`, ``ROUNDS`` bursts each) until the
    medians of the first and second half of all samples agree within ``tolerance_pct`` (the
    figure is then within this machine's noise floor), or ``max_repeats`` / ``max_seconds``."""
    samples = interleaved_latencies([run], warmup, repeats)[0]
    started = time.perf_counter()
    while True:
        half = len(samples) // 2
        a, b = float(np.median(samples[:half])), float(np.median(samples[half:]))
        split = 100.0 * abs(a - b) / max(float(np.median(samples)), 1e-12)
        if (
            split <= tolerance_pct
            or len(samples) >= max_repeats
            or time.perf_counter() - started > max_seconds
        ):
            return StableTiming(samples, split)
        samples += interleaved_latencies([run], 0, repeats)[0]
