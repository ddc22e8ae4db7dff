"""The device kit: ONNX layers + a standalone runner; its results imported as a LUT."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.stats import spearmanr

from harmonic_nas.cli import main
from harmonic_nas.config import ExperimentConfig, parse_config
from harmonic_nas.errors import ConfigError, LUTError
from harmonic_nas.hardware import kit_runner
from harmonic_nas.hardware.cost import CostModel
from harmonic_nas.hardware.identity import machine_identity
from harmonic_nas.hardware.inventory import space_layer_specs
from harmonic_nas.hardware.keys import lut_key
from harmonic_nas.hardware.kit import RUNNER_NAME, write_kit
from harmonic_nas.hardware.lut import LUT
from harmonic_nas.hardware.lut_source import installed_path
from harmonic_nas.hardware.profiler import profile_device
from harmonic_nas.hardware.reference import import_reference_lut
from harmonic_nas.hardware.transfer import kind_of

from .conftest import N_CLASSES, small_config_dict

ALLOWED = {"numpy", "onnxruntime"}


def _ort_cfg(tmp_path: Path) -> ExperimentConfig:
    return parse_config(
        small_config_dict(tmp_path / "runs", backend="onnxruntime", warmup=2, repeats=10)
    )


def test_runner_imports_only_the_standard_library_numpy_and_onnxruntime() -> None:
    tree = ast.parse(Path(kit_runner.__file__).read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "the runner must not import relatively"
            found.add((node.module or "").split(".")[0])
    foreign = found - ALLOWED - set(sys.stdlib_module_names)
    assert not foreign, f"the kit runner imports {sorted(foreign)}"
    assert {"numpy", "onnxruntime"} <= found


def _run_kit(folder: Path, out: Path, python: str = sys.executable) -> None:
    subprocess.run(
        [python, str(folder / RUNNER_NAME), "--out", str(out), "--repeats", "10", "--warmup", "2"],
        check=True,
        capture_output=True,
        text=True,
        cwd=folder,
        env={**os.environ, "PYTHONPATH": ""},  # nothing of harmonic-nas on the path
    )


def test_kit_results_become_a_lut_like_the_in_tool_profile(tmp_path: Path) -> None:
    cfg = _ort_cfg(tmp_path)
    done = write_kit(cfg, tmp_path / "kit", n_classes=N_CLASSES)
    keys = {lut_key(s) for s in space_layer_specs(cfg, N_CLASSES)}
    manifest = json.loads((tmp_path / "kit" / "manifest.json").read_text())
    assert done.layers == done.space_layers == len(keys) and done.calibration_models == 5
    assert {i["key"] for i in manifest["items"] if i["role"] == "layer"} == keys
    assert all((tmp_path / "kit" / i["file"]).is_file() for i in manifest["items"])
    _run_kit(tmp_path / "kit", tmp_path / "results.json")
    lut = import_reference_lut([tmp_path / "results.json"], "board")
    assert set(lut.entries) == keys and not lut.predicted
    assert lut.device.identity == machine_identity("onnxruntime", 1)
    assert lut.device.backend == "onnxruntime" and lut.overhead is not None
    assert lut.calibration is not None and lut.calibration.samples == 5
    assert lut.meta["reference_ms"] > 0
    # the same machine profiled in the tool: the same ranking of layers
    here = profile_device(cfg, n_classes=N_CLASSES)
    common = sorted(keys)
    a = [lut.entries[k].latency_ms for k in common]
    b = [here.entries[k].latency_ms for k in common]
    # timings on a possibly busy machine: the tiniest layers sit at the noise floor (the
    # in-tool profile can net them to 0), so the ranking is checked, loosely
    assert spearmanr(a, b).statistic > 0.6
    # the same scale (a sanity bound only: both sides are timings on a possibly busy machine)
    ratio = float(np.median(np.asarray(a) / np.maximum(b, 1e-6)))
    assert 0.25 < ratio < 4.0


def test_sampled_kit_predicts_the_rest_and_flags_it(tmp_path: Path) -> None:
    cfg = _ort_cfg(tmp_path)
    done = write_kit(cfg, tmp_path / "kit", sample=8, n_classes=N_CLASSES)
    assert done.layers == 8 and done.space_layers > 8
    _run_kit(tmp_path / "kit", tmp_path / "results.json")
    here = profile_device(cfg, n_classes=N_CLASSES)
    lut = import_reference_lut([tmp_path / "results.json"], "board", references=[here])
    measured = set(lut.entries) - lut.predicted
    assert len(measured) == 8 and lut.predicted
    kinds = {kind_of(k) for k in measured}
    assert all(kind_of(k) in kinds for k in lut.predicted)  # never from another kind
    missing = set(here.entries) - set(lut.entries)
    assert all(kind_of(k) not in kinds for k in missing)
    # the predicted entries are flagged where the table is used
    from harmonic_nas.hardware.validate import random_arch

    arch = random_arch(cfg, np.random.default_rng(0), N_CLASSES)
    cost = CostModel(lut, fallback=True).cost_arch(arch)
    assert set(cost.predicted_keys) <= lut.predicted and cost.predicted_keys
    saved = LUT.load(lut.save(tmp_path / "board.json"))
    assert saved.predicted == lut.predicted


def test_kit_refuses_a_folder_in_use_and_bad_results(tmp_path: Path) -> None:
    cfg = _ort_cfg(tmp_path)
    (tmp_path / "kit").mkdir()
    (tmp_path / "kit" / "mine.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not empty"):
        write_kit(cfg, tmp_path / "kit", n_classes=N_CLASSES)
    assert (tmp_path / "kit" / "mine.txt").read_text() == "keep me"
    bad = tmp_path / "r.json"
    bad.write_text(json.dumps({"format": kit_runner.RESULTS_FORMAT, "schema_version": 1}))
    with pytest.raises(LUTError, match="malformed"):
        import_reference_lut([bad], "board")


def test_cli_kit_and_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    data = small_config_dict(tmp_path / "runs", backend="onnxruntime", warmup=1, repeats=5)
    cfg.write_text(yaml.safe_dump(data))
    assert main(["profile", str(cfg), "--sample", "4"]) == 2
    assert "--kit" in capsys.readouterr().err
    assert main(["profile", str(cfg), "--kit", str(tmp_path / "kit")]) == 0
    assert "kit written to" in capsys.readouterr().out
    _run_kit(tmp_path / "kit", tmp_path / "results.json")
    assert main(["lut", "import", str(tmp_path / "results.json"), "--device", "pi"]) == 0
    out = capsys.readouterr().out
    assert "imported" in out and "machine:" in out and "calibration on 5" in out
    assert LUT.load(installed_path("pi")).device.identity is not None
    assert main(["profile", str(cfg), "--provider", "NoSuchExecutionProvider"]) == 2


@pytest.mark.slow
def test_kit_runs_in_a_venv_with_only_numpy_and_onnxruntime(tmp_path: Path) -> None:
    """The runner in a fresh virtual environment holding only numpy and onnxruntime (from PyPI;
    skipped offline), compared with the in-tool profile of the same machine."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    py = str(venv / "bin" / "python")
    pip = subprocess.run(
        [py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "numpy", "onnxruntime"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if pip.returncode != 0:
        pytest.skip(f"cannot install numpy + onnxruntime from PyPI: {pip.stderr.strip()[-200:]}")
    probe = subprocess.run(
        [py, "-c", "import importlib.util as u; print(u.find_spec('torch') is None)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "True"  # no torch in that environment
    cfg = _ort_cfg(tmp_path)
    write_kit(cfg, tmp_path / "kit", n_classes=N_CLASSES)
    _run_kit(tmp_path / "kit", tmp_path / "results.json", python=py)
    lut = import_reference_lut([tmp_path / "results.json"], "venv-board")
    here = profile_device(cfg, n_classes=N_CLASSES)
    common = sorted(here.entries)
    assert set(lut.entries) == set(common)
    a = [lut.entries[k].latency_ms for k in common]
    b = [here.entries[k].latency_ms for k in common]
    # timings on a possibly busy machine: the tiniest layers sit at the noise floor (the
    # in-tool profile can net them to 0), so the ranking is checked, loosely
    assert spearmanr(a, b).statistic > 0.6


def test_results_format_is_the_runners() -> None:
    from harmonic_nas.hardware import kit

    assert kit.RESULTS_FORMAT == kit_runner.RESULTS_FORMAT
    assert kit.RESULTS_SCHEMA_VERSION == kit_runner.SCHEMA_VERSION
