"""Output outside a terminal: plain timestamped progress lines, full-width tables, -v/-q,
JSON output, and Ctrl-C as one line with exit code 130."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
from pathlib import Path

import pytest
from rich.table import Table

from harmonic_nas.cli import _DropInterruptedTrials, main
from harmonic_nas.cli._common import CliConsole, output, rich_progress
from harmonic_nas.utils.progress import ThrottledProgress, format_duration

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _throttled(interval: float = 5.0) -> tuple[ThrottledProgress, list[str], _Clock]:
    lines: list[str] = []
    clock = _Clock()
    fixed = dt.datetime(2024, 5, 6, 7, 8, 9)
    return (
        ThrottledProgress(lines.append, interval=interval, clock=clock, now=lambda: fixed),
        lines,
        clock,
    )


def test_plain_progress_lines_are_throttled_and_timestamped() -> None:
    progress, lines, clock = _throttled()
    progress("pretrain image", 0, 30)  # first report: printed
    for step in range(1, 30):
        clock.t = step * 1.0  # one epoch a second: a line every 5 s at most
        progress("pretrain image", step, 30)
    clock.t = 30.0
    progress("pretrain image", 30, 30)  # the end: always printed, once
    progress("pretrain image", 30, 30)
    assert lines[0] == "2024-05-06 07:08:09 pretrain image: 0/30 (0%), elapsed 0:00:00"
    assert lines[1] == (
        "2024-05-06 07:08:09 pretrain image: 5/30 (17%), elapsed 0:00:05, about 0:00:25 left"
    )
    assert lines[-1] == "2024-05-06 07:08:09 pretrain image: 30/30 (100%), elapsed 0:00:30, done"
    assert len(lines) == 1 + 29 // 5 + 1


def test_plain_progress_tasks_are_independent_and_restart() -> None:
    progress, lines, clock = _throttled()
    progress("search: candidates", 0, 8)
    progress("  current candidate", 0, 4)
    assert len(lines) == 2  # each task's first report
    progress("  current candidate", 4, 4)  # end of candidate 1
    clock.t = 1.0
    progress("  current candidate", 0, 4)  # candidate 2 starts over: throttled, timed afresh
    clock.t = 2.0
    progress("  current candidate", 4, 4)
    assert [ln.split(" ", 2)[2] for ln in lines[2:]] == [
        "current candidate: 4/4 (100%), elapsed 0:00:00, done",
        "current candidate: 4/4 (100%), elapsed 0:00:01, done",
    ]
    assert format_duration(3725) == "1:02:05"


def test_rich_progress_outside_a_terminal_prints_plain_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with rich_progress() as progress:
        progress("profiling", 0, 3)
        progress("profiling", 3, 3)
    captured = capsys.readouterr()
    lines = captured.err.splitlines()  # stdout keeps only results
    assert captured.out == "" and len(lines) == 2
    assert re.fullmatch(STAMP + r" profiling: 3/3 \(100%\), elapsed 0:00:0\d, done", lines[1])


def test_quiet_prints_no_progress(capsys: pytest.CaptureFixture[str]) -> None:
    output.quiet = True
    try:
        with rich_progress() as progress:
            progress("profiling", 3, 3)
    finally:
        output.quiet = False
    assert capsys.readouterr().out == ""


def test_tables_are_full_width_outside_a_terminal() -> None:
    buf = io.StringIO()
    console = CliConsole(file=buf)
    long_key = "MBConvLayer-input:1_24_7_7-in_ch:24-out_ch:24-mid_ch:144-expand:6-kernel:7" * 2
    table = Table()
    table.add_column("key")
    table.add_column("latency (ms)")
    table.add_row(long_key, "0.0123")
    console.print(table)
    console.rule("[bold]1/6 data")
    lines = buf.getvalue().splitlines()
    assert any(long_key in ln and "0.0123" in ln for ln in lines)  # one row, not wrapped
    assert re.fullmatch(STAMP + r" == 1/6 data ==", lines[-1])


def test_verbose_and_quiet_set_the_log_level() -> None:
    root = logging.getLogger()
    before = root.level
    try:
        assert main(["-v", "lut", "list"]) == 0
        assert root.level == logging.INFO and output.verbose == 1
        assert main(["-vv", "lut", "list"]) == 0
        assert root.level == logging.DEBUG
        assert main(["-q", "lut", "list"]) == 0
        assert root.level == logging.ERROR and output.quiet
        assert main(["lut", "list"]) == 0
        assert not output.quiet and output.verbose == 0
    finally:
        root.setLevel(before)


def test_bad_log_env_is_one_line_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HARMONIC_NAS_LOG", "LOUD")
    assert main(["lut", "list"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: HARMONIC_NAS_LOG='LOUD'") and len(err.splitlines()) == 1


# --------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_is_one_line_and_exit_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import harmonic_nas.results as results

    def interrupted(*args: object, **kwargs: object) -> Path:
        raise KeyboardInterrupt

    monkeypatch.setattr(results, "report", interrupted)
    assert main(["report", str(tmp_path)]) == 130
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("interrupted (Ctrl-C)")
    assert "Traceback" not in captured.err + captured.out


def test_optuna_trial_interrupted_logs_are_dropped() -> None:
    """Optuna logs a Ctrl-C inside a trial with a long traceback; the CLI drops those records."""
    log = logging.getLogger("optuna.study._optimize.test")
    log.propagate = False
    log.addFilter(_DropInterruptedTrials())
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    log.addHandler(handler)
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt as exc:
        log.warning(
            "Trial 3 failed with parameters: {} because of the following error: "
            "KeyboardInterrupt().",
            exc_info=exc,
        )
    log.warning("Trial 3 failed with value None.")
    log.warning("Trial 4 failed with value None.")
    assert seen == ["Trial 4 failed with value None."]


# --------------------------------------------------------------------------- JSON output


def test_lut_show_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harmonic_nas.hardware.lut import LUT, DeviceInfo, LUTEntry

    key = "LinearLayer-input:80-in_ch:80-out_ch:10"
    lut = LUT(
        DeviceInfo("dev", "a test device", "onnxruntime", 1),
        "model:constant power 15 W x latency",
        {key: LUTEntry.point(0.25, 3.75)},
    )
    path = lut.save(tmp_path / "dev.json")
    assert main(["lut", "show", str(path), "--json", "--entries"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["device"]["name"] == "dev" and data["n_entries"] == 1
    assert data["energy_source"].startswith("model:")
    assert data["entries"] == {key: {"latency_ms": 0.25, "energy_mj": 3.75}}
    assert main(["lut", "show", str(path), "--json"]) == 0
    assert "entries" not in json.loads(capsys.readouterr().out)


def test_report_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.results.conftest import build_fake_run

    run = build_fake_run(tmp_path)
    pareto = json.loads((run / "pareto.json").read_text())["members"]
    assert main(["report", str(run), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["report"] == str(run / "report.html") and data["metric"] == "accuracy"
    assert [m["id"] for m in data["members"]] == [m["id"] for m in pareto]
    first = data["members"][0]
    assert first["val_metric"] == pareto[0]["val_metric"]
    assert first["latency_ms"] == pareto[0]["latency_ms"]
    assert set(first) >= {"test_metric", "energy_mj", "params"}
