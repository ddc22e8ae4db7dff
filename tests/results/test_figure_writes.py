"""Every figure of the report is written atomically: the old PNG or the whole new one."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from harmonic_nas.cli import main
from harmonic_nas.results import report


@pytest.mark.parametrize("figure", ["hypervolume.png", "pareto_acc_latency.png", "arch_t0002.png"])
def test_a_failed_figure_write_keeps_the_old_figure(
    fake_run: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    figure: str,
) -> None:
    report(fake_run)
    figures = fake_run / "figures"
    assert (figures / figure).is_file()
    before = {p.name: p.read_bytes() for p in figures.iterdir()}
    page = (fake_run / "report.html").read_bytes()
    real = os.replace

    def refuse(src: Any, dst: Any, *a: Any, **k: Any) -> None:
        if Path(dst).name == figure:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", refuse)
    assert main(["report", str(fake_run)]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and err[0].startswith("error: cannot write") and figure in err[0]
    assert "free disk space" in err[0]
    assert (figures / figure).read_bytes() == before[figure]  # not truncated, not replaced
    assert sorted(p.name for p in figures.iterdir()) == sorted(before)  # no temporary left
    assert (fake_run / "report.html").read_bytes() == page  # nor a page of half-written figures
