"""Where tensors live and in which precision they train: the one owner of the compute setting.

``compute.device`` (``auto | cpu | cuda | cuda:N``) picks the torch device of every stage that
runs a network (pretraining, BN recalibration, the fusion feature cache, fusion search and
retraining, baselines, scoring); ``auto`` is a GPU when one is visible. Export and the ONNX parity
checks stay on the CPU. ``compute.precision`` (``fp32 | bf16 | fp16 | fp64``) turns on autocast
for the training loops (:func:`autocast`), with a gradient scaler for fp16 (:func:`grad_scaler`);
it is off on the CPU unless asked (bf16 works there; fp16 autocast is a CUDA feature). ``fp64``
trains the supernets in double precision (:func:`param_dtype`; fusion training stays fp32): slow, for comparisons where float32 rounding,
which Adam's normalisation amplifies on gradients that are zero in exact arithmetic, would hide
whether two computations are the same (the data-parallel parity check).

No module hard-codes a device: they call :func:`compute_device` (or receive the device from their
caller), and move tensors with :func:`to_device`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch

from harmonic_nas.errors import ConfigError

if TYPE_CHECKING:
    from harmonic_nas.config import ExperimentConfig

logger = logging.getLogger(__name__)

#: ``compute.precision`` -> the autocast dtype (None: full precision)
_AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
    "fp64": None,
}


def default_device() -> torch.device:
    """``cuda`` when a GPU is visible, else ``cpu`` (the ``auto`` setting)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(spec: str) -> torch.device:
    """The torch device of a ``compute.device`` value; a CUDA device this machine lacks is a
    one-line :class:`ConfigError` (with the fix)."""
    if spec == "auto":
        return default_device()
    if spec == "cpu":
        return torch.device("cpu")
    if spec != "cuda" and not spec.startswith("cuda:"):
        raise ConfigError(f"compute.device {spec!r} is not a device; use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise ConfigError(
            f"compute.device is {spec} but this machine has no usable CUDA GPU (torch "
            f"{torch.__version__}, CUDA build: {torch.version.cuda or 'none'}); set "
            "compute.device: cpu (or auto), or install a CUDA build of torch"
        )
    device = torch.device(spec)
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise ConfigError(
            f"compute.device is {spec} but this machine has {count} GPU(s) (cuda:0 .. "
            f"cuda:{count - 1}); choose one of them"
        )
    return device


def compute_device(cfg: ExperimentConfig) -> torch.device:
    """The device every network of ``cfg``'s run trains and runs on (``compute.device``)."""
    return resolve_device(cfg.compute.device)


def check_compute(device: str, precision: str) -> list[str]:
    """Problems of a compute setting on this machine (empty: fine), one line each."""
    problems: list[str] = []
    try:
        dev = resolve_device(device)
    except ConfigError as exc:
        return [str(exc)]
    if precision == "fp16" and dev.type != "cuda":
        problems.append(
            "compute.precision fp16 needs a CUDA device (fp16 autocast with a gradient scaler); "
            "use bf16 or fp32 on the CPU"
        )
    if precision == "bf16" and dev.type == "cuda" and not torch.cuda.is_bf16_supported():
        problems.append(
            f"compute.precision bf16 is not supported by {torch.cuda.get_device_name(dev)}; "
            "use fp16 or fp32"
        )
    return problems


def param_dtype(precision: str) -> torch.dtype:
    """The dtype of the trained parameters: float64 for ``fp64``, else float32."""
    return torch.float64 if precision == "fp64" else torch.float32


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a ``compute.precision`` value (None: no autocast)."""
    if precision not in _AUTOCAST_DTYPES:
        raise ConfigError(f"compute.precision {precision!r} is unknown; use fp32, bf16 or fp16")
    return _AUTOCAST_DTYPES[precision]


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    """Run the block under mixed precision (``bf16``/``fp16``) or not at all (``fp32``)."""
    dtype = autocast_dtype(precision)
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """The gradient scaler of a training loop: active for fp16 only (a no-op otherwise, so the
    loop calls ``scale``/``step``/``update`` unconditionally)."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def to_device(
    t: torch.Tensor, device: torch.device, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """``t`` on ``device`` (a floating ``t`` cast to ``dtype`` when given): a CPU tensor bound for
    a GPU goes through pinned memory, without blocking the host (each batch is moved once)."""
    if device.type == "cuda" and t.device.type == "cpu":
        t = t.pin_memory().to(device, non_blocking=True)
    else:
        t = t.to(device)
    return t.to(dtype) if dtype is not None and t.is_floating_point() else t


def describe_device(device: torch.device) -> str:
    """A human name of ``device`` for records: ``cpu`` or ``cuda:0 (NVIDIA H100 ...)``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return device.type
