"""``-o key=value`` overrides and every validation problem listed at once (issue 13 items 3, 4)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harmonic_nas.config import apply_overrides, load_config, parse_config, parse_override
from harmonic_nas.errors import ConfigError

BASE = {
    "name": "x",
    "modalities": {
        "image": {"preset": "avmnist", "shape": [1, 28, 28]},
        "audio": {"preset": "avmnist", "shape": [1, 20, 20]},
    },
    "fusion": {"C": 64},
}


def _write(tmp_path: Path) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(BASE))
    return path


def test_values_are_parsed_as_yaml() -> None:
    assert parse_override("search.population=8") == (("search", "population"), 8)
    assert parse_override("fusion.lambda_lat=0.3") == (("fusion", "lambda_lat"), 0.3)
    assert parse_override("pretrain.distill=false") == (("pretrain", "distill"), False)
    assert parse_override("search.cells=[1, 2]") == (("search", "cells"), [1, 2])
    assert parse_override("search.storage=null") == (("search", "storage"), None)
    assert parse_override("name=a=b") == (("name",), "a=b")
    assert parse_override("name=[unclosed") == (("name",), "[unclosed")


@pytest.mark.parametrize("pair", ["search.population", "=3", "search..population=3", "a.=1"])
def test_malformed_pair_is_one_line(pair: str) -> None:
    with pytest.raises(ConfigError, match="key=value") as info:
        parse_override(pair)
    assert "\n" not in str(info.value)


def test_overrides_merge_deep_and_later_wins(tmp_path: Path) -> None:
    cfg = load_config(
        _write(tmp_path),
        sets=[
            "search.population=8",
            "fusion.lambda_lat=0.3",
            "search.population=6",
            "dataset.options.train_per_class=5",
            "modalities.audio.preset=maxout",
        ],
    )
    assert cfg.search.population == 6
    assert cfg.fusion.lambda_lat == 0.3
    assert cfg.fusion.C == 64  # the rest of the file's section is kept
    assert cfg.dataset.options == {"train_per_class": 5}
    assert cfg.modalities["audio"].preset == "maxout"
    assert cfg.modalities["audio"].shape == (1, 20, 20)


def test_unknown_override_key_is_one_line_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path), sets=["fusion.CC=3"])
    msg = str(info.value)
    assert "\n" not in msg
    assert "unknown key 'fusion.CC'" in msg and "-o fusion.CC=3" in msg


def test_override_through_a_scalar_is_refused() -> None:
    data = {"seed": 0}
    with pytest.raises(ConfigError, match="'seed' is int"):
        apply_overrides(data, ["seed.x=1"])


def test_override_does_not_touch_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path)
    before = path.read_text()
    load_config(path, sets=["search.population=8"])
    assert path.read_text() == before


def test_every_validation_problem_is_listed() -> None:
    data = {
        **BASE,
        "seed": "one",
        "fusion": {"C": "wide", "CC": 1},
        "search": {"population": 1},
    }
    with pytest.raises(ConfigError) as info:
        parse_config(data, "c.yaml")
    lines = str(info.value).splitlines()
    assert lines[0] == (
        "invalid config c.yaml: 4 problems (each listed below; fix them all and rerun):"
    )
    body = "\n".join(lines[1:])
    for key in ("'seed'", "'fusion.C'", "unknown key 'fusion.CC'", "'search.population'"):
        assert key in body
    assert all(line.startswith("  - ") for line in lines[1:]) and len(lines) == 5
    assert "more problem" not in str(info.value)


def test_a_single_problem_stays_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({**BASE, "seed": "one"}, "c.yaml")
    assert str(info.value).startswith("invalid config c.yaml: 'seed': ")
    assert "\n" not in str(info.value)
