"""An omitted ``modalities.<m>.preset``: the default preset of the modality's kind, recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from harmonic_nas.backbones.presets import default_preset
from harmonic_nas.config import (
    dump_config,
    load_config,
    load_run_config,
    parse_config,
    save_resolved,
)
from harmonic_nas.errors import ConfigError
from harmonic_nas.preflight import check_experiment, dataset_kinds
from harmonic_nas.search.identity import config_identity

MULTI = {"name": "multi-digits", "options": {"modalities": "image,signal,text,table"}}
MULTI_PRESETS = {"image": "avmnist", "signal": "mbv3-1d", "text": "text-1d", "table": "mlp"}
MULTI_SHAPES = {"image": [1, 28, 28], "signal": [20, 20], "text": [16], "table": [56]}


def _cfg(dataset: dict[str, Any], mods: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"name": "p", "dataset": dataset, "modalities": mods}


def _npz(root: Path, caption: Any, kinds_shape: tuple[int, ...] = (6, 40)) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        np.savez(
            root / f"{split}.npz",
            accel=rng.standard_normal((6, *kinds_shape)).astype(np.float32),
            caption=caption,
            table=rng.standard_normal((6, 5)).astype(np.float32),
            labels=np.arange(6) % 3,
        )
    return root


def test_kind_from_the_data_gives_its_default_preset() -> None:
    mods = {m: {"shape": s} for m, s in MULTI_SHAPES.items()}
    cfg = parse_config(_cfg(MULTI, mods))
    assert {m: mc.preset for m, mc in cfg.modalities.items()} == MULTI_PRESETS
    assert all(mc.kind is None for mc in cfg.modalities.values())  # the kind is not filled in
    builtin = parse_config(
        {
            "name": "p",
            "modalities": {"image": {"shape": [1, 28, 28]}, "audio": {"shape": [1, 20, 20]}},
        }
    )
    assert {m: mc.preset for m, mc in builtin.modalities.items()} == {
        "image": "avmnist",
        "audio": "avmnist",
    }


def test_kind_from_the_config_and_an_explicit_preset_win() -> None:
    mods = {
        "image": {"shape": [3, 28, 28], "kind": "image"},
        "text": {"shape": [300], "preset": "maxout"},
    }
    cfg = parse_config(_cfg({"name": "mmimdb"}, mods))
    assert (cfg.modalities["image"].preset, cfg.modalities["text"].preset) == ("avmnist", "maxout")
    explicit = {m: {"shape": s, "preset": "mlp"} for m, s in MULTI_SHAPES.items()}
    assert all(mc.preset == "mlp" for mc in parse_config(_cfg(MULTI, explicit)).modalities.values())


def test_npz_kinds_from_the_headers_raw_text_and_text_features(tmp_path: Path) -> None:
    raw = _npz(tmp_path / "raw", np.array([f"caption {i}" for i in range(6)]))
    ds = {"name": "npz", "path": str(raw)}
    from harmonic_nas.config import DatasetConfig

    assert dataset_kinds(DatasetConfig.model_validate(ds)) == {
        "accel": ("signal", False),
        "caption": ("text", True),
        "table": ("vector", False),
    }
    cfg = parse_config(
        _cfg(ds, {"accel": {"shape": [6, 40]}, "caption": {"shape": [9]}, "table": {"shape": [5]}})
    )
    assert [mc.preset for mc in cfg.modalities.values()] == ["mbv3-1d", "text-1d", "mlp"]
    feats = _npz(tmp_path / "feats", np.ones((6, 7), np.float32))  # "caption": text features
    cfg = parse_config(
        _cfg(
            {"name": "npz", "path": str(feats)},
            {"accel": {"shape": [6, 40]}, "caption": {"shape": [7]}, "table": {"shape": [5]}},
        )
    )
    assert cfg.modalities["caption"].preset == default_preset("text", raw_text=False) == "mlp"
    check_experiment(cfg, stages=("data", "pretrain"))  # the filled presets fit their kinds


def test_unknown_kind_is_one_error_naming_the_fix() -> None:
    mods = {"image": {"shape": [3, 28, 28]}, "text": {"shape": [300], "preset": "maxout"}}
    with pytest.raises(ConfigError) as err:
        parse_config(_cfg({"name": "mmimdb"}, mods))
    msg = str(err.value)
    assert "\n" not in msg
    assert "missing key 'modalities.image.preset': the kind of modality 'image' is not known" in msg
    assert "set modalities.image.kind (image, audio, signal, vector or text" in msg


def test_omitted_preset_has_the_identity_of_the_explicit_default(tmp_path: Path) -> None:
    omitted = {m: {"shape": s} for m, s in MULTI_SHAPES.items()}
    explicit = {m: {"shape": s, "preset": MULTI_PRESETS[m]} for m, s in MULTI_SHAPES.items()}
    files = []
    for name, mods in (("omitted", omitted), ("explicit", explicit)):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({**_cfg(MULTI, mods), "run_dir": str(tmp_path / "runs")}))
        files.append(path)
    a, b = (load_config(f) for f in files)
    assert a == b
    assert dump_config(a) == dump_config(b)
    assert a.section_hash("dataset", "modalities", "pretrain") == b.section_hash(
        "dataset", "modalities", "pretrain"
    )
    assert config_identity(a, "nsga2") == config_identity(b, "nsga2")
    save_resolved(a)  # the run records the resolved preset: a resume sees the same one
    saved = yaml.safe_load((a.run_path / "config.yaml").read_text())
    assert {m: mc["preset"] for m, mc in saved["modalities"].items()} == MULTI_PRESETS
    assert load_run_config(a.run_path) == b


def test_unknown_preset_for_a_kind_stays_an_error() -> None:
    mods = {m: {"shape": s} for m, s in MULTI_SHAPES.items()}
    mods["signal"]["preset"] = "mbv3-2d"
    cfg = parse_config(_cfg(MULTI, mods))
    with pytest.raises(ConfigError, match=r"modalities.signal.preset: unknown backbone preset"):
        check_experiment(cfg, stages=("pretrain",))


def test_readme_example_without_presets_resolves(tmp_path: Path) -> None:
    """The README's "Each kind, by example" config, on arrays named as in its snippet."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = text.split("Each kind, by example", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    mods = yaml.safe_load(block)["modalities"]
    root = tmp_path / "mydata"
    root.mkdir()
    rng = np.random.default_rng(0)
    np.savez(
        root / "train.npz",
        accel=rng.standard_normal((4, 3, 128)).astype(np.float32),
        table=rng.standard_normal((4, 20)).astype(np.float32),
        caption=np.array(["a", "b", "c", "d"]),
        image=rng.random((4, 1, 28, 28)).astype(np.float32),
        labels=np.arange(4) % 2,
    )
    cfg = parse_config(_cfg({"name": "npz", "path": str(root)}, mods))
    got = {m: mc.preset for m, mc in cfg.modalities.items()}
    assert got == {"accel": "mbv3-1d", "table": "mlp", "caption": "text-1d", "image": "avmnist"}
