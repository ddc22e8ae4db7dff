"""Nothing around a failure but its one line (issue 14 item 9): Rich markup never eats square
brackets of a message or path, and typer/click usage errors are ``error: ...; run '<cmd>
--help'`` lines with exit code 2 instead of a boxed usage screen."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harmonic_nas.cli import main
from harmonic_nas.errors import HarmonicError

from .conftest import experiment


def _only_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_square_brackets_of_a_config_error_are_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = experiment(tmp_path / "runs")
    data["search"] = {"cells": [0, 9]}
    path = tmp_path / "[odd] name.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert main(["search", str(path)]) == 2
    line = _only_line(capsys)
    assert f"invalid config {path}:" in line
    assert "'search.cells': Value error, must be [low, high] with 1 <= low <= high <= 8" in line


def test_markup_like_text_in_an_error_is_printed_verbatim(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(*_a: object, **_k: object) -> None:
        raise HarmonicError("labels range over [0, 9] and [bold]not bold[/bold]; fix [red]it")

    monkeypatch.setattr("harmonic_nas.data.list_datasets", boom)
    assert main(["data", "list"]) == 2
    assert _only_line(capsys) == (
        "error: labels range over [0, 9] and [bold]not bold[/bold]; fix [red]it"
    )


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["search"], "error: missing argument 'config'; run 'harmonic-nas search --help'"),
        (
            ["status", "r", "--bogus"],
            "error: no such option: --bogus; run 'harmonic-nas status --help'",
        ),
        (
            ["serach"],
            "error: no such command 'serach' (did you mean 'search'?); run 'harmonic-nas --help'",
        ),
        (
            ["data", "build", "av-digits", "--seed", "x"],
            "error: invalid value for '--seed': Input should be a valid integer, unable to parse "
            "string as an integer; "
            "run 'harmonic-nas data build --help'",
        ),
    ],
    ids=["missing-argument", "unknown-option", "unknown-command", "bad-value"],
)
def test_usage_errors_are_one_line(
    argv: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert _only_line(capsys) == line


def test_help_and_version_still_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("harmonic-nas ")
    assert main(["search", "--help"]) == 0
    assert "Usage" in capsys.readouterr().out


def test_no_arguments_prints_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert "Usage" in out and "error" not in err
