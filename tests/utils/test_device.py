"""The compute setting (issue 27): device resolution, precision, its errors and its identity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from harmonic_nas.cli import main
from harmonic_nas.config import parse_config
from harmonic_nas.errors import ConfigError
from harmonic_nas.pretrain.checkpoint import pretrain_hash
from harmonic_nas.search.identity import RUN_MUTABLE_KEYS, search_config_hash
from harmonic_nas.utils.device import (
    autocast,
    check_compute,
    grad_scaler,
    param_dtype,
    resolve_device,
    to_device,
)

NO_GPU = not torch.cuda.is_available()


def _data(tmp_path: Path, **compute: Any) -> dict[str, Any]:
    return {
        "name": "cmp",
        "run_dir": str(tmp_path / "runs"),
        "dataset": {"name": "av-digits"},
        "modalities": {
            "image": {"preset": "avmnist", "shape": [1, 28, 28]},
            "audio": {"preset": "avmnist", "shape": [1, 20, 20]},
        },
        "compute": compute,
    }


def test_defaults_are_auto_and_fp32(tmp_path: Path) -> None:
    cfg = parse_config(_data(tmp_path))
    assert (cfg.compute.device, cfg.compute.precision) == ("auto", "fp32")
    assert resolve_device("auto").type == ("cpu" if NO_GPU else "cuda")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "cuda:", "CPU", "cuda:-1", "cuda:１"])
def test_an_unknown_device_name_is_a_config_error(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match=r"compute\.device"):
        parse_config(_data(tmp_path, device=bad))


def test_an_unknown_precision_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"compute\.precision"):
        parse_config(_data(tmp_path, precision="int8"))


@pytest.mark.skipif(not NO_GPU, reason="checks the error of a machine without a GPU")
@pytest.mark.parametrize("spec", ["cuda", "cuda:1"])
def test_cuda_without_a_gpu_is_one_line_with_the_fix(spec: str) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_device(spec)
    msg = str(err.value)
    assert "\n" not in msg and "no usable CUDA GPU" in msg and "compute.device: cpu" in msg
    assert check_compute(spec, "fp32") == [msg]


def test_fp16_needs_cuda_and_bf16_is_allowed_on_cpu() -> None:
    assert check_compute("cpu", "bf16") == []
    assert check_compute("cpu", "fp64") == []
    (problem,) = check_compute("cpu", "fp16")
    assert "fp16 needs a CUDA device" in problem


@pytest.mark.skipif(not NO_GPU, reason="checks the error of a machine without a GPU")
@pytest.mark.parametrize(
    "command", [["pretrain"], ["profile", "--backend", "torch"], ["search"], ["run"]]
)
def test_cli_refuses_cuda_before_any_stage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_data(tmp_path, device="cuda")))
    assert main([*command, str(path)]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "compute.device is cuda" in err[0], err
    assert not (tmp_path / "runs").exists()  # nothing written


def test_autocast_bf16_on_cpu_and_fp32_is_untouched() -> None:
    a, b = torch.randn(4, 8), torch.randn(8, 3)
    cpu = torch.device("cpu")
    with autocast(cpu, "bf16"):
        assert (a @ b).dtype == torch.bfloat16
    with autocast(cpu, "fp32"):
        assert (a @ b).dtype == torch.float32
    assert not grad_scaler(cpu, "bf16").is_enabled()
    assert param_dtype("fp64") == torch.float64 and param_dtype("bf16") == torch.float32


def test_to_device_casts_floats_only() -> None:
    cpu = torch.device("cpu")
    assert to_device(torch.zeros(2), cpu, torch.float64).dtype == torch.float64
    assert to_device(torch.zeros(2, dtype=torch.long), cpu, torch.float64).dtype == torch.long


def test_compute_is_not_part_of_any_identity(tmp_path: Path) -> None:
    """A run started on one device continues on another: neither the supernet hash nor the
    study hash changes, and the run-directory guard lets the compute keys change."""
    a = parse_config(_data(tmp_path))
    b = parse_config(_data(tmp_path, device="cpu", precision="bf16"))
    assert pretrain_hash(a, "image") == pretrain_hash(b, "image")
    assert search_config_hash(a, "nsga2") == search_config_hash(b, "nsga2")
    assert {"compute.device", "compute.precision"} <= set(RUN_MUTABLE_KEYS)
