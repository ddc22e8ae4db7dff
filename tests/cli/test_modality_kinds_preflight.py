"""Bad input of the new kinds, found before any stage: one line, exit 2, nothing written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from harmonic_nas.cli import main

PROGRESS = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")


def _data(root: Path, accel_shape: tuple[int, ...] = (3, 32), caption: str = "a caption") -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 9), ("val", 6), ("test", 6)):
        caps = [f"sample {i}" for i in range(n)]
        caps[-1] = caption
        np.savez(
            root / f"{split}.npz",
            accel=rng.standard_normal((n, *accel_shape)).astype(np.float32),
            caption=np.array(caps),
            labels=np.arange(n) % 3,
        )
    return root


def _cfg(tmp_path: Path, root: Path, **mods: Any) -> Path:
    data = {
        "name": "k",
        "run_dir": str(tmp_path / "runs"),
        "dataset": {"name": "npz", "path": str(root)},
        "modalities": {
            "accel": {"preset": "mbv3-1d", "shape": [3, 32]},
            "caption": {"preset": "text-1d", "shape": [9]},
            **mods,
        },
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _one_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.strip() and not PROGRESS.match(ln)]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize(
    ("mods", "accel_shape", "caption", "message"),
    [
        ({}, (3, 4, 32), "fine", "modality 'accel' has rank 3 [3, 4, 32] in dataset 'npz'"),
        (
            {"accel": {"preset": "mbv3-2d", "shape": [3, 32]}},
            (3, 32),
            "fine",
            "unknown backbone preset 'mbv3-2d'",
        ),
        (
            {"accel": {"preset": "avmnist", "shape": [3, 32]}},
            (3, 32),
            "fine",
            "'mbv3-1d' for a (C, T) signal",
        ),
        ({}, (3, 32), "   ", "of split 'train': sample 8 is an empty caption"),
        ({}, (3, 32), "bad\x07bell", "holds control characters (non-text content)"),
    ],
)
def test_bad_modality_input_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mods: dict[str, Any],
    accel_shape: tuple[int, ...],
    caption: str,
    message: str,
) -> None:
    root = _data(tmp_path / "data", accel_shape, caption)
    cfg = _cfg(tmp_path, root, **mods)
    assert main(["run", str(cfg)]) == 2
    assert message in _one_error(capsys)
    assert not (tmp_path / "runs" / "k" / "supernets").exists()


def test_omitted_preset_of_an_unknown_kind_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """mmimdb's kinds are known only after the data stage: say which key to set."""
    data = {
        "name": "k",
        "run_dir": str(tmp_path / "runs"),
        "dataset": {"name": "mmimdb", "path": str(tmp_path)},
        "modalities": {"image": {"shape": [3, 32, 32]}, "text": {"preset": "maxout", "shape": [8]}},
    }
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(data))
    assert main(["run", str(cfg)]) == 2
    line = _one_error(capsys)
    assert "missing key 'modalities.image.preset'" in line
    assert "set modalities.image.kind (image, audio, signal, vector or text" in line
    assert not (tmp_path / "runs").exists()


def test_omitted_presets_take_the_kinds_of_the_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The npz kinds fill the presets (signal, raw text): the run goes on to the data stage, whose
    shape check is then the one problem (raw text has no shape before tokenising)."""
    root = _data(tmp_path / "data")
    cfg = _cfg(tmp_path, root, accel={"shape": [3, 33]}, caption={"shape": [9]})
    assert main(["run", str(cfg)]) == 2
    line = _one_error(capsys)
    assert "modality 'accel' has shape [3, 32] in dataset 'npz' but [3, 33] in the config" in line
    saved = yaml.safe_load((tmp_path / "runs" / "k" / "config.yaml").read_text())
    assert {m: mc["preset"] for m, mc in saved["modalities"].items()} == {
        "accel": "mbv3-1d",
        "caption": "text-1d",
    }
    assert not (tmp_path / "runs" / "k" / "supernets").exists()
