"""The experiment file: defaults, strict validation with key paths, resolved copy."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harmonic_nas.config import (
    ExperimentConfig,
    load_config,
    load_run_config,
    parse_config,
    save_resolved,
)
from harmonic_nas.errors import ConfigError

MINIMAL = {
    "name": "t",
    "modalities": {
        "image": {"preset": "avmnist", "shape": [1, 28, 28]},
        "audio": {"preset": "avmnist", "shape": [1, 20, 20]},
    },
}


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_paper_defaults_for_fusion() -> None:
    cfg = parse_config(MINIMAL)
    f = cfg.fusion
    assert (f.C, f.L, f.multiplier, f.epochs) == (192, 16, 2, 25)
    assert f.arch_lr == 3e-4 and f.weight_lr == 1e-4 and f.weight_lr_min == 1e-6
    assert f.dropout == 0.1
    assert cfg.dataset.name == "av-digits"
    assert cfg.run_path == Path("runs") / "t"


def test_shipped_configs_validate(repo_root: Path) -> None:
    configs = sorted((repo_root / "configs").glob("*.yaml"))
    assert configs, "configs/ must ship at least quick.yaml"
    for path in configs:
        assert isinstance(load_config(path), ExperimentConfig)


@pytest.mark.parametrize(
    ("patch", "fragment"),
    [
        ({"fusion": {"CC": 3}}, "unknown key 'fusion.CC'"),
        ({"fusion": {"C": "big"}}, "'fusion.C'"),
        ({"search": {"population": 1}}, "'search.population'"),
        ({"fusion": {"L": 10}}, "perfect square"),
        (
            {"modalities": {"image": {"preset": "avmnist", "shape": [1, -2, 28]}}},
            "'modalities.image.shape'",
        ),
        ({"name": "has space"}, "'name'"),
        ({"search": {"cells": [3, 1]}}, "'search.cells'"),
    ],
)
def test_bad_values_name_the_key(patch: dict[str, object], fragment: str) -> None:
    data = {**MINIMAL, **patch}
    with pytest.raises(ConfigError) as info:
        parse_config(data, "x.yaml")
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_needs_two_modalities() -> None:
    one = {"name": "x", "modalities": {"image": MINIMAL["modalities"]["image"]}}  # type: ignore[index]
    with pytest.raises(ConfigError, match="at least two modalities"):
        parse_config(one)


def test_missing_required_key() -> None:
    with pytest.raises(ConfigError, match="missing required key 'modalities'"):
        parse_config({"name": "x"})


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_resolved_config_round_trip(tmp_path: Path) -> None:
    cfg = parse_config({**MINIMAL, "run_dir": str(tmp_path), "seed": 7})
    path = save_resolved(cfg)
    assert path == tmp_path / "t" / "config.yaml"
    saved = yaml.safe_load(path.read_text())
    assert saved["schema_version"] == 1
    assert saved["fusion"]["C"] == 192  # defaults are spelled out
    again = load_run_config(tmp_path / "t")
    assert again == cfg


def test_section_hash_tracks_only_its_sections() -> None:
    a = parse_config(MINIMAL)
    b = parse_config({**MINIMAL, "search": {"population": 8}})
    c = parse_config({**MINIMAL, "pretrain": {"epochs": 3}})
    assert a.section_hash("pretrain") == b.section_hash("pretrain")
    assert a.section_hash("pretrain") != c.section_hash("pretrain")


def test_budget() -> None:
    cfg = parse_config({**MINIMAL, "search": {"population": 6, "generations": 3}})
    assert cfg.search.budget == 18
