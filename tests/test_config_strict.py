"""The experiment file is read strictly (issue 14 item 8): no bool read as an int, no string read
as a number, only finite floats, and a run directory's ``config.yaml`` of another schema version
is refused in one line naming the file, the version found and the one expected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from harmonic_nas.config import (
    CONFIG_SCHEMA_VERSION,
    dump_config,
    load_config,
    load_run_config,
    parse_config,
    save_resolved,
)
from harmonic_nas.data.av_digits import AVDigitsOptions
from harmonic_nas.data.loaders.npz import NPZOptions
from harmonic_nas.data.options import parse_options
from harmonic_nas.errors import ConfigError, DataError

BASE: dict[str, Any] = {
    "name": "strict",
    "modalities": {
        "image": {"preset": "avmnist", "shape": [1, 28, 28]},
        "audio": {"preset": "avmnist", "shape": [1, 20, 20]},
    },
}


def _with(section: str, key: str, value: Any) -> dict[str, Any]:
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    if section:
        data[section] = {key: value}
    else:
        data[key] = value
    return data


@pytest.mark.parametrize(
    ("section", "key", "value", "problem"),
    [
        ("pretrain", "epochs", True, "valid integer"),
        ("pretrain", "epochs", "5", "valid integer"),
        ("pretrain", "epochs", 5.0, "valid integer"),
        ("search", "population", False, "valid integer"),
        ("device", "threads", "2", "valid integer"),
        ("", "seed", True, "valid integer"),
        ("pretrain", "lr", float("inf"), "finite number"),
        ("pretrain", "lr", float("nan"), "finite number"),
        ("fusion", "lambda_lat", float("inf"), "finite number"),
        ("device", "power_w", float("inf"), "finite number"),
        ("search", "latency_budget_ms", float("inf"), "finite number"),
        ("pretrain", "lr", True, "valid number"),
        ("pretrain", "lr", "1e-3", "valid number"),
        ("pretrain", "distill", 1, "valid boolean"),
        ("pretrain", "distill", "yes", "valid boolean"),
        ("search", "cells", [True, 2], "valid integer"),
        ("search", "nodes", [1, "2"], "valid integer"),
    ],
)
def test_no_coercion(section: str, key: str, value: Any, problem: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(_with(section, key, value), "exp.yaml")
    msg = str(exc.value)
    dotted = f"{section}.{key}" if section else key
    assert msg.startswith(f"invalid config exp.yaml: '{dotted}")
    assert problem in msg and "\n" not in msg


def test_shape_entries_are_strict_ints() -> None:
    data = _with("", "name", "strict")
    data["modalities"] = {
        **BASE["modalities"],
        "audio": {"preset": "avmnist", "shape": [1, "20", 20]},
    }
    with pytest.raises(
        ConfigError, match=r"'modalities.audio.shape.1': Input should be a valid integer"
    ):
        parse_config(data)


def test_inf_from_yaml_and_override_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(BASE) + "device: {power_w: .inf}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"'device.power_w': Input should be a finite number"):
        load_config(path)
    ok = tmp_path / "ok.yaml"
    ok.write_text(yaml.safe_dump(BASE), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\(from -o pretrain.epochs=true\)"):
        load_config(ok, sets=["pretrain.epochs=true"])


def test_ints_where_floats_are_expected_are_fine() -> None:
    cfg = parse_config(_with("pretrain", "lr", 1))
    assert cfg.pretrain.lr == 1.0 and isinstance(cfg.pretrain.lr, float)


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    cfg = parse_config({**BASE, "run_dir": str(tmp_path)})
    save_resolved(cfg)
    assert load_run_config(cfg.run_path) == cfg
    assert yaml.safe_load(dump_config(cfg))["schema_version"] == CONFIG_SCHEMA_VERSION


@pytest.mark.parametrize("found", [None, 0, 2, "1", True])
def test_run_config_schema_version_is_checked(tmp_path: Path, found: Any) -> None:
    cfg = parse_config({**BASE, "run_dir": str(tmp_path)})
    path = save_resolved(cfg)
    data = yaml.safe_load(path.read_text())
    if found is None:
        del data["schema_version"]
    else:
        data["schema_version"] = found
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError) as exc:
        load_run_config(cfg.run_path)
    msg = str(exc.value)
    assert msg.startswith(f"run config {path} has schema_version {found!r}, expected 1; ")
    assert "\n" not in msg


@pytest.mark.parametrize("value", [float("inf"), float("nan"), True, ".inf"])
def test_dataset_options_are_strict(value: Any) -> None:
    with pytest.raises(DataError, match="option 'num_classes' must be int"):
        parse_options(NPZOptions, {"num_classes": value}, "npz")
    with pytest.raises(DataError, match="option 'snr_db_min' must be float"):
        parse_options(AVDigitsOptions, {"snr_db_min": value}, "av-digits")


def test_exponent_floats_without_a_dot_are_floats(tmp_path: Path) -> None:
    """PyYAML reads ``1e-3`` as a string (YAML 1.1): the loader reads it as YAML 1.2 does, so
    strict floats accept what users write, while a quoted "1e-3" stays a refused string."""
    path = tmp_path / "exp.yaml"
    path.write_text(
        yaml.safe_dump(BASE)
        + "pretrain: {lr: 1e-3, weight_decay: 3E-5}\nfusion: {arch_lr: 2e+0}\n",
        encoding="utf-8",
    )
    cfg = load_config(path)
    assert (cfg.pretrain.lr, cfg.pretrain.weight_decay, cfg.fusion.arch_lr) == (1e-3, 3e-5, 2.0)
    assert load_config(path, sets=["pretrain.lr=5e-4"]).pretrain.lr == 5e-4
    path.write_text(yaml.safe_dump(BASE) + "pretrain: {lr: '1e-3'}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"'pretrain.lr': Input should be a valid number"):
        load_config(path)
    assert parse_options(AVDigitsOptions, {"snr_db_min": "1e1"}, "av-digits").snr_db_min == 10.0
