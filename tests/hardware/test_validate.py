"""lut validate: random architectures measured end to end vs the LUT sum."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harmonic_nas.config import ExperimentConfig
from harmonic_nas.errors import LUTError
from harmonic_nas.fusion import MultimodalNet
from harmonic_nas.hardware.lut import LUT, DeviceInfo, LUTEntry
from harmonic_nas.hardware.lut_source import get_lut
from harmonic_nas.hardware.validate import (
    ModelBuilder,
    ValidationResult,
    random_arch,
    random_genotype,
    save_validation,
    validate_lut,
)


def test_random_genotype_is_valid() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        cells, nodes = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        g = random_genotype(cells, nodes, ["Sum", "SE1"], 6, 2, rng)
        g.validate(6)
        assert g.n_cells == cells and g.n_nodes == nodes and g.multiplier == min(2, cells)
        for i, c in enumerate(g.cells):
            assert c.inputs[0] != c.inputs[1] and max(c.inputs) < 6 + i


def test_random_arch_builds_a_model(small_cfg: ExperimentConfig) -> None:
    import torch

    arch = random_arch(small_cfg, np.random.default_rng(1), 10)
    assert arch.genotype is not None and arch.C == 8 and arch.L == 4
    model = ModelBuilder()(arch)
    assert isinstance(model, MultimodalNet)
    with torch.no_grad():
        out = model(*(torch.zeros(1, *m.shape) for m in arch.modalities.values()))
    assert tuple(out.shape) == (1, 10)


@pytest.mark.slow
def test_validate_and_save(small_cfg: ExperimentConfig, tmp_path: Path) -> None:
    lut = get_lut(small_cfg)
    res = validate_lut(small_cfg, lut, samples=3, repeats=5)
    assert len(res.predicted_ms) == len(res.measured_ms) == 3
    assert all(p > 0 for p in res.predicted_ms) and all(m > 0 for m in res.measured_ms)
    s = res.summary()
    assert s["samples"] == 3 and s["mape_pct"] >= 0 and -1 <= s["kendall_tau"] <= 1
    assert res.speed_ratio is not None and "drift_corrected" in s
    # every model timed twice: the re-timing and the verdict against it
    assert len(res.retimed_ms) == 3 and all(m > 0 for m in res.retimed_ms)
    assert set(s["retiming"]) == {"kendall_tau", "mape_pct"} and "raw_sum" in s
    assert isinstance(s["inconclusive"], bool) and s["verdict"]
    json_path, png = save_validation(res, tmp_path / "out")
    saved = json.loads(json_path.read_text())
    assert saved["schema_version"] == 1 and len(saved["samples"]) == 3
    assert saved["samples"][0]["arch"]["genotype"] is not None
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_metrics() -> None:
    res = ValidationResult("host", "torch", 1, [1.0, 2.1, 2.5], [1.0, 2.0, 3.0], [{}, {}, {}])
    assert res.mape == pytest.approx((0 + 5 + 50 / 3) / 3)
    assert res.kendall_tau == pytest.approx(1.0)
    assert res.worst == (2, pytest.approx(-50 / 3))
    assert res.within_10pct == pytest.approx(200 / 3)
    res.speed_ratio = 1.2
    assert res.summary()["drift_corrected"]["mean_bias_pct"] == pytest.approx((20 + 26 - 0) / 3)


def test_a_miss_the_retiming_also_misses_is_inconclusive() -> None:
    from harmonic_nas.hardware.validate import CANNOT_TELL

    meas = [1.0, 2.0, 3.0, 4.0, 5.0]
    noisy = ValidationResult("host", "torch", 1, [1.5, 1.8, 3.6, 3.0, 6.0], meas, [{}] * 5)
    noisy.retimed_ms = [1.4, 2.5, 2.4, 4.9, 4.0]  # the machine disagrees with itself by ~25 %
    s = noisy.summary()
    assert s["inconclusive"] is True and s["met"] is False and s["verdict"] == CANNOT_TELL
    steady = ValidationResult("host", "torch", 1, [1.5, 1.8, 3.6, 3.0, 6.0], meas, [{}] * 5)
    steady.retimed_ms = [1.01, 2.0, 3.02, 3.99, 5.0]
    s = steady.summary()
    assert s["inconclusive"] is False and s["met"] is False and s["verdict"] == "missed"
    good = ValidationResult("host", "torch", 1, [1.02, 2.0, 3.05, 4.0, 5.1], meas, [{}] * 5)
    good.retimed_ms = [1.01, 2.0, 3.02, 3.99, 5.0]
    assert good.summary()["verdict"] == "met"


def test_imported_luts_cannot_be_validated_here(small_cfg: ExperimentConfig) -> None:
    lut = LUT(
        DeviceInfo("jetson-tx2"),
        "imported:x",
        {"Sum-input:1_8_4-N:1-C:8-L:4": LUTEntry.point(1, 1)},
    )
    with pytest.raises(LUTError, match="validate it on the device"):
        validate_lut(small_cfg, lut, samples=2)


def test_validation_refuses_a_table_of_another_machine(small_cfg: ExperimentConfig) -> None:
    from harmonic_nas.hardware.identity import MachineIdentity, machine_identity
    from harmonic_nas.hardware.lut import LUT, DeviceInfo, LUTEntry

    here = machine_identity("torch", 1)
    other = MachineIdentity.from_json({**here.to_json(), "cpu": "AMD EPYC 7B13"})
    lut = LUT(
        DeviceInfo("host", backend="torch", threads=1, identity=other),
        "model:test",
        {"LinearLayer-input:80-in_ch:80-out_ch:10": LUTEntry.point(0.1, 1.0)},
    )
    with pytest.raises(LUTError, match="describes another machine") as exc:
        validate_lut(small_cfg, lut, samples=2)
    assert "AMD EPYC 7B13" in str(exc.value) and "\n" not in str(exc.value)
