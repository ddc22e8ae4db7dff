"""``predict`` refuses a ``.npy`` input and a malformed ``preprocess.json`` in one line
(issue 14 item 6)."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from harmonic_nas.cli import main

#: Progress lines (printed when the output is not a terminal) are not error lines.
PROGRESS = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")


class _TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(6, 3)
        self.b = nn.Linear(4, 3)

    def forward(self, image: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return self.a(image.flatten(1)) + self.b(audio.flatten(1))


META: dict[str, Any] = {
    "schema_version": 1,
    "inputs": [
        {"name": "image", "kind": "image", "shape": [1, 2, 3], "dtype": "float32"},
        {"name": "audio", "kind": "audio", "shape": [4], "dtype": "float32"},
    ],
    "input_order": ["image", "audio"],
    "task": "classification",
    "num_classes": 3,
    "class_names": ["cat", "dog", "bird"],
}


@pytest.fixture
def model(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    d = tmp_path / "m"
    d.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(_TwoInputs().eval(), (torch.randn(1, 1, 2, 3), torch.randn(1, 4)))
        torch.jit.save(traced, str(d / "model.pt"))
    (d / "preprocess.json").write_text(json.dumps(META))
    return d / "model.pt"


@pytest.fixture
def samples(tmp_path: Path) -> Path:
    path = tmp_path / "s.npz"
    rng = np.random.default_rng(0)
    np.savez(path, image=rng.normal(size=(2, 1, 2, 3)), audio=rng.normal(size=(2, 4)))
    return path


def _one_line(argv: list[str], capsys: pytest.CaptureFixture[str], *fragments: str) -> None:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip() and not PROGRESS.match(ln)]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for f in fragments:
        assert f in lines[0], lines[0]


def test_npy_input(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    npy = tmp_path / "x.npy"
    np.save(npy, np.zeros((2, 4), dtype=np.float32))
    _one_line(["predict", str(model), "--input", str(npy)], capsys, "x.npy", "not an .npz archive")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b'{"inputs": [{"name": "image", "shape": [1, 2, 3]}], "x": "caf\xe9"}', "UTF-8"),
        (json.dumps({**META, "inputs": [{"name": "image"}]}).encode(), "shape None"),
        (json.dumps({**META, "inputs": [{"name": "image", "shape": "1x2"}]}).encode(), "shape"),
        (json.dumps({**META, "inputs": [{"name": "image", "shape": [1, -2]}]}).encode(), "shape"),
        (json.dumps({**META, "inputs": [{"name": "image", "shape": [True]}]}).encode(), "shape"),
        (json.dumps({**META, "inputs": [{"shape": [1]}]}).encode(), "no 'name'"),
        (json.dumps({**META, "inputs": ["image"]}).encode(), "no 'name'"),
    ],
)
def test_malformed_preprocess_json(
    model: Path,
    samples: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    fragment: str,
) -> None:
    (model.parent / "preprocess.json").write_bytes(content)
    _one_line(["predict", str(model), "--input", str(samples)], capsys, "preprocess.json", fragment)
