"""Import of the published tables: lossless keys, every avmnist subnet resolves, bad files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harmonic_nas.backbones import BackboneSpace, build_supernet
from harmonic_nas.errors import HarmonicError, LUTError
from harmonic_nas.hardware.keys import lut_key
from harmonic_nas.hardware.lut import LUT
from harmonic_nas.hardware.reference import import_reference_lut

from .conftest import reference_files


@pytest.mark.parametrize("device", ["tx2", "agx"])
def test_every_avmnist_subnet_resolves_at_both_sizes(reference_dir: Path, device: str) -> None:
    lut = import_reference_lut(reference_files(reference_dir, device), f"jetson-{device}")
    assert lut.energy_source.startswith("imported:lut_ofa_mnist_")
    sizes = {(1, 28, 28): "image", (1, 20, 20): "audio"}
    supernets = {s: build_supernet(("image", s), "avmnist", 10, m) for s, m in sizes.items()}
    genomes = list(BackboneSpace.from_preset("avmnist").genomes())
    assert len(genomes) == len(set(genomes)) == 7371
    assert all(sn.num_subnets() == 7371 for sn in supernets.values())
    used: set[str] = set()
    for genome in genomes:
        for shape, sn in supernets.items():
            for spec in sn.layer_configs(genome, shape):
                key = lut_key(spec)
                assert key in lut, f"{genome} at {shape}: {key}"
                used.add(key)
    layer_kinds = ("ConvLayer", "MBConvLayer", "LinearLayer")
    published = {k for k in lut.entries if k.split("-")[0] in layer_kinds}
    assert used == published  # and every published backbone layer is reachable
    ops = ["Sum", "ScaleDotAttn", "LinearGLU", "ConcatFC", "SE1", "SE2", "CatConvMish"]
    costs = lut.op_costs(192, 16, ops)
    assert all(lat > 0 and en > 0 for lat, en in costs.values())


def test_values_are_lossless_and_strings_are_parsed(reference_dir: Path, tmp_path: Path) -> None:
    files = reference_files(reference_dir, "tx2")
    lut = import_reference_lut(files, "jetson-tx2")
    raw: dict[str, Any] = {}
    for f in files:
        raw.update(json.loads(f.read_text()))
    assert set(lut.entries) == set(raw)
    for key, value in raw.items():
        entry = lut.entries[key]
        assert entry.latency_ms == float(value["lat"])
        assert entry.energy_mj == float(value["enrg"])
        assert entry.latency.count == 0  # aggregate of an unknown number of runs
    files_meta = lut.meta["provenance"]["files"]
    assert [m["file"] for m in files_meta] == [f.name for f in files]
    assert all(len(m["sha256"]) == 64 for m in files_meta)
    assert lut.device.name == "jetson-tx2" and lut.device.backend == "unknown"
    assert "TX2" in lut.device.description
    # it round-trips through our schema
    back = LUT.load(lut.save(tmp_path / "tx2.json"))
    assert back.entries == lut.entries


def test_other_published_tables_import(reference_dir: Path) -> None:
    for name in ("imdb", "memes"):
        for device in ("tx2", "agx"):
            lut = import_reference_lut([reference_dir / f"lut_ofa_{name}_{device}.json"], "x")
            assert len(lut) > 40


KEY = "LinearLayer-input:80-in_ch:80-out_ch:10"


def _file(tmp_path: Path, name: str, obj: Any) -> Path:
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def test_synthetic_published_table(tmp_path: Path) -> None:
    f = _file(tmp_path, "t.json", {KEY: {"lat": "0.25", "enrg": 1}})
    lut = import_reference_lut([f], "my-board")
    assert lut.entries[KEY].latency_ms == 0.25 and lut.entries[KEY].energy_mj == 1.0
    assert lut.device.description == "imported table for my-board"


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        ("{not json", "not valid JSON"),
        ([1, 2], "not a lookup table"),
        ({}, "not a lookup table"),
        ({KEY: {"lat": "-1", "enrg": "1"}}, "negative"),
        ({KEY: {"lat": "NaN", "enrg": "1"}}, "finite"),
        ({KEY: {"lat": "fast", "enrg": "1"}}, "not a number"),
        ({KEY: {"lat": True, "enrg": "1"}}, "must be a number"),
        ({KEY: {"lat": 1.0}}, "'lat' (ms) and 'enrg' (mJ)"),
        ({"Linear-80-10": {"lat": 1, "enrg": 1}}, "LUT key"),
    ],
)
def test_bad_published_tables(tmp_path: Path, obj: Any, match: str) -> None:
    with pytest.raises(LUTError) as info:
        import_reference_lut([_file(tmp_path, "bad.json", obj)], "x")
    assert match in str(info.value)
    assert "\n" not in str(info.value)


def test_conflicting_duplicates_are_refused(tmp_path: Path) -> None:
    a = _file(tmp_path, "a.json", {KEY: {"lat": 1, "enrg": 1}})
    b = _file(tmp_path, "b.json", {KEY: {"lat": 2, "enrg": 1}})
    same = _file(tmp_path, "c.json", {KEY: {"lat": "1", "enrg": "1.0"}})
    assert len(import_reference_lut([a, same], "x")) == 1
    with pytest.raises(LUTError, match=f"'{KEY}' has different costs in a.json and b.json"):
        import_reference_lut([a, b], "x")


def test_import_our_own_format_keeps_its_source(tmp_path: Path) -> None:
    f = _file(tmp_path, "t.json", {KEY: {"lat": 0.5, "enrg": 2}})
    lut = import_reference_lut([f], "host-copy")
    lut.energy_source = "rapl"
    lut.device = type(lut.device)("host-copy", "a box", "onnxruntime", 4)
    ours = lut.save(tmp_path / "ours.json")
    again = import_reference_lut([ours], "edge-box")
    assert again.energy_source == "rapl"
    assert (again.device.name, again.device.backend, again.device.threads) == (
        "edge-box",
        "onnxruntime",
        4,
    )


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(LUTError, match="no LUT files"):
        import_reference_lut([], "x")
    with pytest.raises(HarmonicError, match=r"device name '\.\./x' is not a plain file name"):
        import_reference_lut([_file(tmp_path, "t.json", {KEY: {"lat": 1, "enrg": 1}})], "../x")
    with pytest.raises(LUTError, match="not found"):
        import_reference_lut([tmp_path / "missing.json"], "x")
