"""Costed layers: order and shapes, key compatibility with the published Jetson LUTs, build_layer."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from harmonic_nas.backbones import (
    BackboneGenome,
    ElasticMobileNetV3,
    LayerSpec,
    build_layer,
)
from harmonic_nas.errors import ConfigError

# tests/backbones/<this file> -> repo root is parents[2]; the shared folder sits next to the repo.
REFERENCE_LUTS = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference-luts"


def _published_key(spec: LayerSpec) -> str:
    """A tiny local copy of the published key format (the real one is hardware.keys.lut_key)."""
    if spec.kind == "linear":
        n = spec.input_shape[0]
        return f"LinearLayer-input:{n}-in_ch:{spec.in_ch}-out_ch:{spec.out_ch}"
    c, h, w = spec.input_shape
    shape = f"input:1_{c}_{h}_{w}-in_ch:{spec.in_ch}-out_ch:{spec.out_ch}"
    if spec.kind == "conv":
        return (
            f"ConvLayer-{shape}-kernel:{spec.kernel}-stride:{spec.stride}"
            f"-use_se:{int(spec.use_se)}-use_bn:{int(spec.use_bn)}"
        )
    assert spec.kind == "mbconv"
    return (
        f"MBConvLayer-{shape}-mid_ch:{spec.mid_ch}-expand:{spec.expand}-kernel:{spec.kernel}"
        f"-stride:{spec.stride}-use_se:{int(spec.use_se)}"
    )


def _table(name: str) -> dict[str, object]:
    path = REFERENCE_LUTS / name
    if not path.is_file():
        pytest.skip(f"published reference LUTs not available ({path})")
    table = json.loads(path.read_text())
    assert isinstance(table, dict)
    return table


@pytest.mark.parametrize("hw", [28, 20])
def test_avmnist_max_and_min_subnets_are_in_the_published_tx2_table(hw: int) -> None:
    table = _table("lut_ofa_mnist_tx2.json")
    net = ElasticMobileNetV3("avmnist", 1, 10)
    for genome in (net.max_genome(), net.min_genome()):
        specs = net.extract(genome).layer_configs((1, hw, hw))
        missing = [k for k in map(_published_key, specs) if k not in table]
        assert missing == []


def test_every_avmnist_layer_choice_is_in_both_published_tables() -> None:
    tables = [_table("lut_ofa_mnist_tx2.json"), _table("lut_ofa_mnist_agx.json")]
    net = ElasticMobileNetV3("avmnist", 1, 10)
    rng = np.random.default_rng(0)
    keys = set()
    for hw in (28, 20):
        for _ in range(100):
            keys |= set(map(_published_key, net.layer_configs(net.sample(rng), (1, hw, hw))))
    for table in tables:
        assert keys <= set(table)
    # every published backbone key of the AV-MNIST table is reachable from the preset
    assert set(tables[0]) == keys


@pytest.mark.parametrize(
    ("preset", "shape", "n_classes", "table"),
    [
        ("mbv3-3stage", (3, 112, 112), 3, "lut_ofa_memes_tx2.json"),
        ("ofa-mbv3-w1.2", (3, 224, 224), 1000, "lut_ofa_imdb_tx2.json"),
    ],
)
def test_larger_presets_match_the_memes_and_mmimdb_tables(
    preset: str, shape: tuple[int, int, int], n_classes: int, table: str
) -> None:
    keys = _table(table)
    net = ElasticMobileNetV3(preset, shape[0], n_classes)
    rng = np.random.default_rng(1)
    for genome in [net.max_genome(), net.min_genome()] + [net.sample(rng) for _ in range(20)]:
        specs = net.layer_configs(genome, shape)
        assert [k for k in map(_published_key, specs) if k not in keys] == []


def test_avmnist_layer_list_order_and_shapes() -> None:
    net = ElasticMobileNetV3("avmnist", 1, 10)
    genome = BackboneGenome((7, 5, 3, 3), (3, 4, 6, 6), (3,))
    specs = net.extract(genome).layer_configs((1, 28, 28))
    assert specs == net.layer_configs(genome, (1, 28, 28))
    kinds = ["conv", "mbconv", "mbconv", "mbconv", "mbconv", "conv", "conv", "linear"]
    assert [s.kind for s in specs] == kinds
    stem, fixed, b1, b2, b3, expand, mix, linear = specs
    assert (stem.input_shape, stem.out_ch, stem.kernel, stem.stride, stem.act) == (
        (1, 28, 28),
        16,
        3,
        2,
        "hswish",
    )
    assert (fixed.input_shape, fixed.mid_ch, fixed.expand, fixed.kernel) == ((16, 14, 14), 0, 1, 3)
    assert (b1.input_shape, b1.out_ch, b1.mid_ch, b1.kernel, b1.stride) == (
        (16, 14, 14),
        24,
        48,
        7,
        2,
    )
    assert (b2.input_shape, b2.mid_ch, b2.kernel, b2.stride) == ((24, 7, 7), 96, 5, 1)
    assert (b3.mid_ch, b3.expand, b3.kernel) == (144, 6, 3)
    assert not any(s.use_se for s in specs)
    assert (expand.input_shape, expand.out_ch, expand.use_bn) == ((24, 7, 7), 40, True)
    assert (mix.input_shape, mix.out_ch, mix.use_bn) == ((40, 1, 1), 80, False)
    assert (linear.input_shape, linear.out_ch) == ((80,), 10)
    # each layer's output feeds the next one
    for a, b in itertools.pairwise(specs[:-2]):
        assert a.output_shape() == b.input_shape


def test_layer_configs_reject_a_wrong_input_shape() -> None:
    net = ElasticMobileNetV3("avmnist", 1, 10)
    sub = net.extract(net.max_genome())
    for shape in [(3, 28, 28), (28, 28), (1, 28, 28, 1)]:
        with pytest.raises(ConfigError, match="input shape"):
            sub.layer_configs(shape)


def test_build_layer_reproduces_every_spec_shape() -> None:
    torch.manual_seed(0)
    net = ElasticMobileNetV3("mbv3-3stage", 3, 5)
    genome = net.sample(np.random.default_rng(2))
    specs = net.layer_configs(genome, (3, 48, 48))
    assert any(s.use_se for s in specs)
    for spec in specs:
        module = build_layer(spec).eval()
        with torch.no_grad():
            out = module(torch.randn(1, *spec.input_shape))
        assert tuple(out.shape[1:]) == spec.output_shape()
    mb = build_layer(next(s for s in specs if s.kind == "mbconv" and s.expand > 1))
    assert mb.expand_conv is not None and mb.expand_conv.conv.out_channels == specs[2].mid_ch


def test_build_layer_maxout_and_rejects_fusion_specs() -> None:
    layer = build_layer(LayerSpec("maxout", (300,), 300, 128, expand=4)).eval()
    assert layer(torch.randn(1, 300)).shape == (1, 128)
    with pytest.raises(ValueError, match=r"harmonic_nas\.fusion"):
        build_layer(LayerSpec("fusion_op", (32, 4), 32, 32, op="Sum", C=32, L=4))
    with pytest.raises(ValueError, match="input_shape"):
        build_layer(LayerSpec("conv", (3, 8), 3, 8))
