"""Start-up: the CLI module imports no heavy library, so --help and --version answer at once."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harmonic_nas import __version__
from harmonic_nas.cli import main

_HEAVY = ("torch", "optuna", "matplotlib", "onnx", "onnxruntime")


def _run(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return out.stdout.strip()


def test_importing_the_cli_imports_no_heavy_library() -> None:
    code = (
        "import sys, harmonic_nas.cli; "
        f"print(','.join(m for m in {_HEAVY!r} if m in sys.modules) or 'none')"
    )
    assert _run(code) == "none"


def test_help_and_version_import_no_torch() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from harmonic_nas.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    codes = [main(['--help']), main(['--version']), main(['run', '--help'])]\n"
        "print(codes, 'torch' in sys.modules)\n"
    )
    assert _run(code) == "[0, 0, 0] False"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"harmonic-nas {__version__}"


def test_shell_completion_is_offered(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--install-completion" in out and "--show-completion" in out
    assert "--verbose" in out and "--quiet" in out and "--version" in out
