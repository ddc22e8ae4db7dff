"""The CLI shell: help everywhere, one-line errors with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from harmonic_nas.cli import app, main


def _commands() -> list[list[str]]:
    import typer.main

    group = typer.main.get_command(app)
    paths: list[list[str]] = [[]]
    for name, cmd in group.commands.items():  # type: ignore[attr-defined]
        paths.append([name])
        for sub in getattr(cmd, "commands", {}):
            paths.append([name, sub])
    return paths


@pytest.mark.parametrize("path", _commands(), ids=lambda p: " ".join(p) or "root")
def test_help_works_everywhere(path: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*path, "--help"]) == 0
    assert "Usage" in capsys.readouterr().out


def test_bad_config_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text(
        "name: x\nmodalities:\n  a: {preset: avmnist, shape: [1, 28, 28]}\n"
        "  b: {preset: avmnist, shape: [1, 20, 20]}\nfusion: {C: nope}\n"
    )
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: invalid config")
    assert "fusion.C" in err
    assert len(err.splitlines()) == 1
    assert "Traceback" not in err


def test_missing_config_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "does-not-exist.yaml"]) == 2
    assert "config file not found" in capsys.readouterr().err
