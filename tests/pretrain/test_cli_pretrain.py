"""``harmonic-nas pretrain``: messages, skip / --force, and one-line errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import harmonic_nas.data
from harmonic_nas.cli import main
from harmonic_nas.config import load_config
from harmonic_nas.pretrain import load_supernet, supernet_paths


def _write_config(tmp_path: Path, **changes: Any) -> Path:
    data: dict[str, Any] = {
        "name": "cli",
        "run_dir": str(tmp_path / "runs"),
        "seed": 1,
        "dataset": {"name": "synthetic"},
        "modalities": {
            "image": {"preset": "avmnist", "shape": [1, 12, 12]},
            "vec": {"preset": "maxout", "shape": [20]},
        },
        "pretrain": {"epochs": 1, "batch_size": 16, "bn_recalib_batches": 2, "n_random": 1},
    }
    for key, value in changes.items():
        data["modalities"][key] = value
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def synthetic_data(monkeypatch: pytest.MonkeyPatch, make_ds: Any) -> None:
    from harmonic_nas.data import registry

    ds = make_ds()
    monkeypatch.setattr(harmonic_nas.data, "load_dataset", lambda cfg, progress=None: ds)
    # a registered name, so that the up-front config checks (preflight) accept it
    entry = registry.DatasetEntry("synthetic", lambda ctx, p: ds, None, False, False, 1, "")
    monkeypatch.setitem(registry._REGISTRY, "synthetic", entry)


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and "Traceback" not in err
    return err


@pytest.mark.usefixtures("synthetic_data")
def test_pretrain_then_skip_then_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg_path = _write_config(tmp_path)
    assert main(["pretrain", str(cfg_path)]) == 0
    out = capsys.readouterr().out
    assert "image: trained avmnist supernet" in out and "vec: trained maxout supernet" in out
    assert "max subnet" in out and "min subnet" in out
    cfg = load_config(cfg_path)
    assert (cfg.run_path / "config.yaml").is_file()
    assert main(["pretrain", str(cfg_path), "--modality", "image"]) == 0
    out = capsys.readouterr().out
    assert "image: supernet is up to date" in out and "--force" in out and "vec" not in out
    assert main(["pretrain", str(cfg_path), "-m", "vec", "--force"]) == 0
    assert "vec: trained" in capsys.readouterr().out
    assert load_supernet(cfg, "image", 4) is not None


@pytest.mark.usefixtures("synthetic_data")
def test_unknown_modality_and_preset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg_path = _write_config(tmp_path)
    assert main(["pretrain", str(cfg_path), "--modality", "depth"]) == 2
    assert "unknown modality 'depth'" in _error_line(capsys)
    bad = _write_config(tmp_path, image={"preset": "resnet50", "shape": [1, 12, 12]})
    assert main(["pretrain", str(bad)]) == 2
    assert "unknown backbone preset 'resnet50'" in _error_line(capsys)


@pytest.mark.usefixtures("synthetic_data")
def test_checkpoint_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg_path = _write_config(tmp_path)
    assert main(["pretrain", str(cfg_path), "-m", "image"]) == 0
    capsys.readouterr()
    pt, _ = supernet_paths(load_config(cfg_path), "image")
    good = pt.read_bytes()
    # a checkpoint of another preset
    other = _write_config(tmp_path, image={"preset": "mbv3-3stage", "shape": [1, 12, 12]})
    assert main(["pretrain", str(other), "-m", "image"]) == 2
    err = _error_line(capsys)
    assert "avmnist" in err and "mbv3-3stage" in err and "--force" in err
    # a checkpoint of another modality
    vec_pt, _ = supernet_paths(load_config(cfg_path), "vec")
    vec_pt.write_bytes(good)
    assert main(["pretrain", str(cfg_path), "-m", "vec"]) == 2
    assert "modality 'image'" in _error_line(capsys)
    # a corrupt checkpoint
    pt.write_bytes(good[:100])
    assert main(["pretrain", str(cfg_path), "-m", "image"]) == 2
    assert "corrupt" in _error_line(capsys)
    assert main(["pretrain", str(cfg_path), "-m", "image", "--force"]) == 0


@pytest.mark.slow
def test_pretrain_cli_on_the_builtin_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """End to end with harmonic_nas.data.load_dataset on a small av-digits build."""
    data = {
        "name": "e2e",
        "run_dir": str(tmp_path / "runs"),
        "dataset": {
            "name": "av-digits",
            "options": {"train_per_class": 12, "val_per_class": 4, "test_per_class": 4},
        },
        "modalities": {
            "image": {"preset": "avmnist", "shape": [1, 28, 28]},
            "audio": {"preset": "avmnist", "shape": [1, 20, 20]},
        },
        "pretrain": {"epochs": 1, "batch_size": 32, "bn_recalib_batches": 2},
    }
    cfg_path = tmp_path / "e2e.yaml"
    cfg_path.write_text(yaml.safe_dump(data))
    assert main(["pretrain", str(cfg_path)]) == 0
    out = capsys.readouterr().out
    assert "image: trained" in out and "audio: trained" in out
    cfg = load_config(cfg_path)
    for modality in ("image", "audio"):
        _, js = supernet_paths(cfg, modality)
        metrics = json.loads(js.read_text())
        assert metrics["final"]["num_subnets"] == 7371 and len(metrics["epochs"]) == 1
        assert load_supernet(cfg, modality, 10).n_classes == 10
