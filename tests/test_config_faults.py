"""Bad experiment files and run-dir configs give one line (issue 14 items 5, 6)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from harmonic_nas.cli import main
from harmonic_nas.config import load_run_config, parse_config
from harmonic_nas.errors import ConfigError

BASE: dict[str, Any] = {
    "name": "x",
    "modalities": {
        "image": {"preset": "avmnist", "shape": [1, 28, 28]},
        "audio": {"preset": "avmnist", "shape": [1, 20, 20]},
    },
}

#: Progress lines (printed when the output is not a terminal) are not error lines.
PROGRESS = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")


def _one_line(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip() and not PROGRESS.match(ln)]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.mark.parametrize(
    ("patch", "fragment"),
    [
        ({"name": "."}, "'name'"),
        ({"name": ".."}, "inside run_dir"),
        ({"fusion": {"ops": []}}, "at least one fusion operator"),
        ({"fusion": {"ops": ["Sum", "Sum"]}}, "each fusion operator once"),
        ({"device": {"power_w": float("inf")}}, "device.power_w"),
        ({"device": {"power_w": float("nan")}}, "device.power_w"),
    ],
)
def test_bad_values_are_refused(patch: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match="invalid config") as info:
        parse_config({**BASE, **patch})
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_power_inf_in_yaml_is_refused_by_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(BASE) + "device: {power_w: .inf}\n")
    _one_line(main(["search", str(path)]), capsys.readouterr().err, "device.power_w", "finite")


def test_non_utf8_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(yaml.safe_dump(BASE).encode() + b"# caf\xe9\n")
    _one_line(main(["search", str(path)]), capsys.readouterr().err, str(path), "not UTF-8")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [(b"name: x\nmodalities: [\xff\xfe\n", "not UTF-8"), (b"name: [unclosed\n", "not valid YAML")],
)
def test_broken_run_dir_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, fragment: str
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_bytes(content)
    with pytest.raises(ConfigError, match=fragment):
        load_run_config(run)
    _one_line(main(["status", str(run)]), capsys.readouterr().err, "run config", fragment)
    assert (run / "config.yaml").read_bytes() == content
