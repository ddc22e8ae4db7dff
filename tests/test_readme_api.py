"""The README's Python API snippet runs as a script, word for word (issue 25, new user item 2):
extracted from README.md, written to a file next to a copy of configs/, run as a user runs it
(a fresh ``python script.py``). Its unguarded variant (no ``if __name__ == "__main__":``) stops
with one error line instead of the worker processes' tracebacks."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUARD = 'if __name__ == "__main__":'


def readme_api_snippet() -> str:
    """The first ```python block of the README's "Python API" section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, flags=re.S)
    assert match is not None, "the README's Python API section has no python block"
    return match.group(1)


def unguarded(snippet: str) -> str:
    """The snippet with its guarded block at the top level, as a script without the guard."""
    head, body = snippet.split(GUARD, 1)
    body = body.split("\n", 1)[1]
    return head + textwrap.dedent(body)


def _run(script: str, where: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    shutil.copytree(ROOT / "configs", where / "configs")
    (where / "user_script.py").write_text(script, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "100"}
    env.pop("HARMONIC_NAS_LOG", None)
    return subprocess.run(
        [sys.executable, "user_script.py"],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_snippet_is_guarded_and_unguarded_variant_is_derived() -> None:
    snippet = readme_api_snippet()
    assert "hn.run(cfg)" in snippet and GUARD in snippet
    plain = unguarded(snippet)
    assert GUARD not in plain and "\nresult = hn.run(cfg)" in plain
    compile(plain, "unguarded.py", "exec")


@pytest.mark.slow
def test_unguarded_script_stops_with_one_error_line(tmp_path: Path) -> None:
    proc = _run(unguarded(readme_api_snippet()), tmp_path, timeout=600)
    assert proc.returncode == 1
    err = proc.stderr
    assert "BrokenProcessPool" not in err and err.count("Traceback") == 1, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("harmonic_nas.errors.ConfigError: pretraining: a worker process")
    assert GUARD in last
    assert not (tmp_path / "runs" / "quick" / "supernets").exists() or not any(
        (tmp_path / "runs" / "quick" / "supernets").glob("*.pt")
    )


@pytest.mark.slow
def test_readme_snippet_runs_as_a_script(tmp_path: Path) -> None:
    proc = _run(readme_api_snippet(), tmp_path, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    # Optuna's per-trial INFO lines do not reach the API user (as in the CLI)
    assert not re.search(r"Trial \d+ finished", proc.stderr), proc.stderr[-3000:]
    assert "A new study created" not in proc.stderr
    lines = proc.stdout.splitlines()
    model_id = lines[0].split()[0]
    run = tmp_path / "runs" / "quick"
    assert (run / "models" / model_id / "model.onnx").is_file()
    assert (run / "report.html").is_file() and (run / "fusion" / "genotype.png").is_file()
    assert f"Recommendation(id='{model_id}'" in proc.stdout
    members = [line for line in lines[1:] if re.match(r"t\d{4} ", line)]
    assert members and any(m.startswith(f"{model_id} ") for m in members)
    # files others can read (the umask's permissions, not 0600)
    umask = os.umask(0)
    os.umask(umask)
    for name in ("report.html", "pareto.json", "config.yaml", f"models/{model_id}/preprocess.json"):
        assert (run / name).stat().st_mode & 0o777 == 0o666 & ~umask, name
