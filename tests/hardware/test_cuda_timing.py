"""The CUDA timing path (issue 27) as seen from a machine without a GPU: where a table was timed is
recorded, the CPU path is the backend's runner, and a CUDA table or request fails in one line."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from harmonic_nas.backbones import LayerSpec
from harmonic_nas.errors import ConfigError
from harmonic_nas.hardware.cuda_timing import lut_timing_device, timed_on, timing_runner
from harmonic_nas.hardware.profiler import profile_layers

NO_GPU = not torch.cuda.is_available()


def test_a_cpu_runner_computes_the_module() -> None:
    lin = nn.Linear(4, 2)
    x = torch.randn(1, 4)
    run = timing_runner(lin, (x,), "torch", 1, torch.device("cpu"))
    assert torch.equal(run(), lin(x))  # type: ignore[arg-type]


def test_cuda_timing_needs_the_torch_backend() -> None:
    with pytest.raises(ConfigError, match=r"needs device\.backend torch"):
        timing_runner(nn.Linear(4, 2), (torch.randn(1, 4),), "onnxruntime", 1, torch.device("cuda"))


def test_the_lut_records_where_it_was_timed() -> None:
    spec = LayerSpec("linear", (8,), 8, 4)
    lut = profile_layers([spec], backend="torch", warmup=1, repeats=3)
    assert lut.meta["timed_on"] == "cpu" == timed_on(torch.device("cpu"))
    assert lut_timing_device(lut.meta["timed_on"]) == torch.device("cpu")
    assert lut_timing_device(None) == torch.device("cpu")  # tables made before the key existed


@pytest.mark.skipif(not NO_GPU, reason="checks the error of a machine without a GPU")
def test_a_table_timed_on_a_gpu_is_validated_there_only() -> None:
    with pytest.raises(ConfigError) as err:
        lut_timing_device("cuda:0 (NVIDIA H100 80GB HBM3)")
    assert "\n" not in str(err.value) and "timed on cuda:0" in str(err.value)
