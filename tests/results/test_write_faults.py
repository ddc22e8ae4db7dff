"""``report`` on a read-only or full filesystem: one line naming the file, nothing half-written
(issue 14 item 6)."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from typing import Any

import pytest

from harmonic_nas.cli import main

#: Progress lines (printed when the output is not a terminal) are not error lines.
PROGRESS = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")


@pytest.mark.parametrize(("code", "fix"), [(errno.EROFS, "read-only"), (errno.ENOSPC, "disk")])
def test_report_cannot_write(
    fake_run: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    fix: str,
) -> None:
    real = os.replace

    def refuse(src: Any, dst: Any, *a: Any, **k: Any) -> None:
        if Path(dst).name == "report.html":
            raise OSError(code, os.strerror(code))
        real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", refuse)
    rc = main(["report", str(fake_run)])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip() and not PROGRESS.match(ln)]
    assert len(lines) == 1 and lines[0].startswith("error: cannot write"), err
    assert "report.html" in lines[0] and fix in lines[0]
    assert not (fake_run / "report.html").exists()
    assert not list(fake_run.glob(".report.html.*")), "temporary file left behind"
