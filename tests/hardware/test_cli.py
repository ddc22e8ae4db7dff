"""harmonic-nas profile / cost / lut import|validate|show|list, and one-line errors (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harmonic_nas.backbones import BackboneGenome
from harmonic_nas.cli import main
from harmonic_nas.fusion import ArchSpec, CellGenotype, FusionGenotype, ModalityArch, NodeGenotype
from harmonic_nas.hardware.lut import LUT
from harmonic_nas.hardware.lut_source import installed_path

from .conftest import reference_files, small_config_dict


def _arch(path: Path, *, C: int = 8, L: int = 4, genome: BackboneGenome | None = None) -> Path:
    g = FusionGenotype(
        (
            CellGenotype((3, 6), (NodeGenotype("Sum", (0, 1)), NodeGenotype("SE1", (2, 1)))),
            CellGenotype((8, 0), (NodeGenotype("ConcatFC", (0, 1)), NodeGenotype("Sum", (2, 0)))),
        ),
        2,
    )
    arch = ArchSpec(
        modalities={
            "image": ModalityArch(
                "avmnist", (1, 28, 28), genome or BackboneGenome((3, 5, 7, 3), (3, 4, 6, 3), (3,))
            ),
            "audio": ModalityArch("avmnist", (1, 20, 20), BackboneGenome((5,) * 4, (4,) * 4, (2,))),
        },
        cells=2,
        nodes=2,
        genotype=g,
        C=C,
        L=L,
        n_classes=10,
    )
    return arch.save(path)


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ")
    assert len(err.splitlines()) == 1, err
    return err


def test_import_show_list_and_cost_on_jetson(
    reference_dir: Path, small_cfg_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [str(f) for f in reference_files(reference_dir, "tx2")]
    assert main(["lut", "import", *files, "--device", "jetson-tx2"]) == 0
    assert "imported 51 entries" in capsys.readouterr().out
    assert LUT.load(installed_path("jetson-tx2")).energy_source.startswith("imported:")
    assert main(["lut", "show", "jetson-tx2"]) == 0
    assert "entries: 51" in capsys.readouterr().out
    assert main(["lut", "list"]) == 0
    assert "jetson-tx2" in capsys.readouterr().out

    arch = _arch(tmp_path / "arch.json", C=192, L=16)
    # the published tables have no fusion reshape/head layers: one-line error naming the key
    assert main(["cost", str(small_cfg_file), "--device", "jetson-tx2", "--arch", str(arch)]) == 2
    err = _one_line_error(capsys)
    assert "FusionReshape-input:1_" in err
    # with the fallback predictor on, kinds the table has no entry of are never invented from
    # other kinds: not costed, flagged, left out of the totals
    args = ["cost", str(small_cfg_file), "--device", "jetson-tx2", "--arch", str(arch)]
    assert main([*args, "--fallback"]) == 0
    out = capsys.readouterr().out
    assert "paper total" in out and "†" in out and "NOT COSTED" in out
    assert main([*args, "--fallback", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= {"per_modality", "fusion_ops", "fusion_extra", "total", "paper_total"}
    assert data["total"]["uncosted_keys"] and not data["total"]["predicted_keys"]
    assert data["fusion_extra"]["latency_ms"] == 0.0


def test_profile_cost_and_validate_on_host(
    small_cfg_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["profile", str(small_cfg_file)]) == 0
    out = capsys.readouterr().out
    lut_path = tmp_path / "runs" / "hw" / "luts" / "host.json"
    assert lut_path.is_file() and "LUT written to" in out
    arch = _arch(tmp_path / "arch.json")
    assert main(["cost", str(small_cfg_file), "--arch", str(arch)]) == 0
    out = capsys.readouterr().out
    for row in ("backbone image", "backbone audio", "fusion operators", "fusion reshape", "total"):
        assert row in out
    assert main(["lut", "validate", str(small_cfg_file), "--samples", "2"]) == 0
    out = capsys.readouterr().out
    assert "Kendall tau" in out and "MAPE" in out
    assert (lut_path.parent / "host.validation.json").is_file()
    assert (lut_path.parent / "host.validation.png").is_file()


def test_profile_options_override_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(small_config_dict(tmp_path / "runs", threads=2)))
    assert main(["profile", str(cfg), "--device", "box", "--threads", "1"]) == 0
    lut = LUT.load(tmp_path / "runs" / "hw" / "luts" / "box.json")
    assert lut.device.threads == 1 and lut.device.name == "box"
    capsys.readouterr()  # the first profile's progress lines
    assert main(["profile", str(cfg), "--backend", "tvm"]) == 2
    assert "unknown backend" in _one_line_error(capsys)


def _installed(device: str, text: str) -> None:
    path = installed_path(device)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _good_lut_json() -> dict[str, object]:
    return {
        "schema_version": 1,
        "device": {"name": "bad-board", "backend": "unknown", "threads": 0, "batch_size": 1},
        "units": {"latency": "ms", "energy": "mJ"},
        "energy_source": "imported:test",
        "created": "",
        "entries": {
            "LinearLayer-input:80-in_ch:80-out_ch:10": {
                "latency": {"mean": 0.1, "std": 0, "count": 0, "median": 0.1},
                "energy": {"mean": 0.2, "std": 0, "count": 0},
            }
        },
    }


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{corrupt", "not valid JSON"),
        (json.dumps({**_good_lut_json(), "schema_version": 7}), "schema_version 7"),
        (
            json.dumps(_good_lut_json()).replace('"mean": 0.1', '"mean": -0.1'),
            "negative",
        ),
        (json.dumps(_good_lut_json()).replace('"mean": 0.2', '"mean": NaN'), "nan"),
    ],
)
def test_bad_lut_files_exit_2(
    content: str,
    match: str,
    small_cfg_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _installed("bad-board", content)
    arch = _arch(tmp_path / "arch.json")
    assert main(["cost", str(small_cfg_file), "--device", "bad-board", "--arch", str(arch)]) == 2
    assert match in _one_line_error(capsys)
    assert main(["lut", "show", "bad-board"]) == 2
    assert match in _one_line_error(capsys)
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert main(["lut", "import", str(bad), "--device", "x"]) == 2
    assert match in _one_line_error(capsys)


def test_missing_key_unknown_device_and_bad_arch_exit_2(
    small_cfg_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _installed("bad-board", json.dumps(_good_lut_json()))
    arch = _arch(tmp_path / "arch.json")
    assert main(["cost", str(small_cfg_file), "--device", "bad-board", "--arch", str(arch)]) == 2
    assert "has no entry for layer 'ConvLayer-input:1_1_28_28" in _one_line_error(capsys)

    assert main(["cost", str(small_cfg_file), "--device", "toaster", "--arch", str(arch)]) == 2
    assert "unknown device 'toaster'" in _one_line_error(capsys)
    assert main(["cost", str(small_cfg_file), "--device", "jetson-agx", "--arch", str(arch)]) == 2
    assert "--device jetson-agx" in _one_line_error(capsys)

    misfit = _arch(tmp_path / "misfit.json", genome=BackboneGenome((9, 3, 3, 3), (3,) * 4, (2,)))
    assert main(["cost", str(small_cfg_file), "--device", "bad-board", "--arch", str(misfit)]) == 2
    err = _one_line_error(capsys)
    assert "modality 'image'" in err and "kernel 9" in err
    short = tmp_path / "short.json"
    data = json.loads(misfit.read_text())
    data["modalities"]["image"]["genome"] = {"ks": [3], "e": [3], "d": [2]}
    short.write_text(json.dumps(data))
    assert main(["cost", str(small_cfg_file), "--device", "bad-board", "--arch", str(short)]) == 2
    assert "needs 4" in _one_line_error(capsys)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert main(["cost", str(small_cfg_file), "--device", "bad-board", "--arch", str(broken)]) == 2
    assert "not valid JSON" in _one_line_error(capsys)


def test_validate_refuses_an_imported_lut(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _installed("bad-board", json.dumps(_good_lut_json()))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(small_config_dict(tmp_path / "runs")))
    assert main(["lut", "validate", str(cfg), "--device", "bad-board", "--samples", "2"]) == 2
    assert "validate it on the device" in _one_line_error(capsys)
