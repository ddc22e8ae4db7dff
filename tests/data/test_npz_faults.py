"""A ``.npy`` file where an ``.npz`` split is expected gives one line (issue 14 item 6)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from harmonic_nas.cli import main

from .conftest import make_npz

#: Progress lines (printed when the output is not a terminal) are not error lines.
PROGRESS = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")


@pytest.mark.parametrize("split", ["train", "val"])
def test_npy_in_place_of_a_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], split: str
) -> None:
    root = make_npz(tmp_path / "ds")
    with open(root / f"{split}.npz", "wb") as f:  # np.save to a handle keeps the name
        np.save(f, np.zeros((4, 5), dtype=np.float32))
    before = (root / f"{split}.npz").read_bytes()
    code = main(["data", "info", "npz", "--path", str(root)])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip() and not PROGRESS.match(ln)]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert f"{split}.npz" in lines[0] and ".npy array, not an .npz archive" in lines[0]
    assert (root / f"{split}.npz").read_bytes() == before
