"""``harmonic-nas run`` decides before it writes (issue 14 items 3, 5, 6): a run directory holding
another config, a name that escapes ``run_dir``, a run directory that is a file or cannot be
written are refused in one line, with nothing written."""

from __future__ import annotations

import errno
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from harmonic_nas.cli import main
from harmonic_nas.config import load_config, save_resolved
from tests.tree import tree

#: Progress lines (printed when the output is not a terminal) are not error lines.
PROGRESS = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")


def _write(tmp_path: Path, file: str = "exp.yaml", **patch: Any) -> Path:
    data: dict[str, Any] = {
        "name": "guarded",
        "run_dir": str(tmp_path / "runs"),
        "seed": 3,
        "modalities": {
            "image": {"preset": "avmnist", "shape": [1, 28, 28]},
            "audio": {"preset": "avmnist", "shape": [1, 20, 20]},
        },
        "search": {"population": 4, "generations": 2},
    }
    for dotted, value in patch.items():
        *parents, leaf = dotted.split("__")
        node = data
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    path = tmp_path / file
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _no_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reaching the first stage means the guard let the run through (no dataset is built)."""

    def reached(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("the data stage was reached")

    monkeypatch.setattr("harmonic_nas.data.load_dataset", reached)


def _one_line(code: int, err: str, *fragments: str) -> str:
    assert code == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip() and not PROGRESS.match(ln)]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


def test_changed_config_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = load_config(_write(tmp_path))
    save_resolved(first)
    (first.run_path / "study.db").write_bytes(b"stand-in for a finished study")
    before = tree(tmp_path / "runs")
    changed = _write(tmp_path, "changed.yaml", device__threads=2, pretrain__epochs=3)
    line = _one_line(
        main(["run", str(changed)]),
        capsys.readouterr().err,
        "another config",
        "device.threads",
        "pretrain.epochs",
        "new `name`",
        "search.generations",
    )
    assert "search.population" not in line.split("differs in")[1].split(")")[0]
    assert tree(tmp_path / "runs") == before


def test_budget_and_workers_may_change(tmp_path: Path) -> None:
    from harmonic_nas.cli.run import check_run_dir

    first = load_config(_write(tmp_path))
    save_resolved(first)
    more = load_config(
        _write(
            tmp_path, "more.yaml", search__generations=5, search__population=6, search__workers=2
        )
    )
    check_run_dir(more)  # no error: a raised budget extends the run


def test_moved_run_keeps_its_identity(tmp_path: Path) -> None:
    from harmonic_nas.cli.run import check_run_dir

    first = load_config(_write(tmp_path))
    save_resolved(first)
    moved = tmp_path / "elsewhere"
    (tmp_path / "runs").rename(moved)
    check_run_dir(load_config(_write(tmp_path, "moved.yaml", run_dir=str(moved))))


@pytest.mark.parametrize("name", [".", ".."])
def test_name_that_escapes_run_dir_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    cfg = _write(tmp_path, name=name)
    _one_line(main(["run", str(cfg)]), capsys.readouterr().err, "'name'", "inside run_dir")
    assert tree(tmp_path / "runs") == {} and not (tmp_path / "config.yaml").exists()


def test_run_directory_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _write(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "guarded").write_text("not a directory")
    _one_line(main(["run", str(cfg)]), capsys.readouterr().err, "runs/guarded", "is a file")
    assert (tmp_path / "runs" / "guarded").read_text() == "not a directory"


@pytest.mark.parametrize(
    ("code", "fix"),
    [(errno.EROFS, "read-only"), (errno.EACCES, "permissions"), (errno.ENOSPC, "free disk space")],
)
def test_run_directory_that_cannot_be_written(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    fix: str,
) -> None:
    cfg = _write(tmp_path)
    real = tempfile.mkstemp
    runs = str(tmp_path / "runs")

    def refuse(*args: Any, **kwargs: Any) -> tuple[int, str]:
        if str(kwargs.get("dir", "")).startswith(runs):
            raise OSError(code, errno.errorcode[code])
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    _one_line(main(["run", str(cfg)]), capsys.readouterr().err, "cannot write", "guarded", fix)
    assert not (tmp_path / "runs" / "guarded" / "config.yaml").exists()
