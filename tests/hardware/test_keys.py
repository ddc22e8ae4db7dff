"""LUT keys: the published formats exactly, our own kinds, and the inverse parser."""

from __future__ import annotations

import pytest

from harmonic_nas.backbones import LayerSpec
from harmonic_nas.errors import LUTError
from harmonic_nas.hardware.keys import canonical, lut_key, parse_key

PUBLISHED = [
    (
        LayerSpec("conv", (1, 28, 28), 1, 16, kernel=3, stride=2, act="hswish"),
        "ConvLayer-input:1_1_28_28-in_ch:1-out_ch:16-kernel:3-stride:2-use_se:0-use_bn:1",
    ),
    (
        LayerSpec("conv", (40, 1, 1), 40, 80, use_bn=False),
        "ConvLayer-input:1_40_1_1-in_ch:40-out_ch:80-kernel:1-stride:1-use_se:0-use_bn:0",
    ),
    (
        LayerSpec("mbconv", (16, 14, 14), 16, 16, mid_ch=0, expand=1, kernel=3),
        "MBConvLayer-input:1_16_14_14-in_ch:16-out_ch:16-mid_ch:0-expand:1-kernel:3-stride:1-use_se:0",
    ),
    (
        LayerSpec("mbconv", (16, 14, 14), 16, 24, mid_ch=48, expand=3, kernel=7, stride=2),
        "MBConvLayer-input:1_16_14_14-in_ch:16-out_ch:24-mid_ch:48-expand:3-kernel:7-stride:2-use_se:0",
    ),
    (
        LayerSpec("mbconv", (40, 14, 14), 40, 40, mid_ch=240, expand=6, kernel=5, use_se=True),
        "MBConvLayer-input:1_40_14_14-in_ch:40-out_ch:40-mid_ch:240-expand:6-kernel:5-stride:1-use_se:1",
    ),
    (LayerSpec("linear", (80,), 80, 10), "LinearLayer-input:80-in_ch:80-out_ch:10"),
    (
        LayerSpec("fusion_op", (192, 16), 192, 192, op="ScaleDotAttn", C=192, L=16),
        "ScaleDotAttn-input:1_192_16-N:1-C:192-L:16",
    ),
]

OURS = [
    (
        LayerSpec("maxout", (300,), 300, 128, expand=4, act="maxout"),
        "MaxoutLayer-input:1_300-in_ch:300-out_ch:128-pieces:4-use_bn:1",
    ),
    (
        LayerSpec("fusion_reshape", (24, 7, 7), 24, 32, kernel=1, C=32, L=4),
        "FusionReshape-input:1_24_7_7-C:32-L:4",
    ),
    (
        LayerSpec("fusion_reshape", (256,), 256, 128, kernel=1, C=32, L=4),
        "FusionReshape-input:1_256-C:32-L:4",
    ),
    (
        LayerSpec("fusion_head", (64, 4), 256, 10, use_bn=False, C=32, L=4),
        "FusionHead-input:1_64_4-in_ch:256-out_ch:10-C:32",
    ),
]


@pytest.mark.parametrize(("spec", "key"), PUBLISHED + OURS, ids=lambda x: getattr(x, "kind", ""))
def test_key_format_and_round_trip(spec: LayerSpec, key: str) -> None:
    assert lut_key(spec) == key
    parsed = parse_key(key)
    assert parsed.kind == spec.kind
    assert lut_key(parsed) == key
    assert parsed.input_shape == spec.input_shape
    assert parsed.output_shape() == spec.output_shape()


def test_canonical_drops_fields_the_key_does_not_encode() -> None:
    a = LayerSpec("conv", (1, 28, 28), 1, 16, kernel=3, stride=2, act="hswish")
    b = LayerSpec("conv", (1, 28, 28), 1, 16, kernel=3, stride=2, act="relu")
    assert canonical(a) == canonical(b)
    assert lut_key(a) == lut_key(b)


def test_reshape_parse_matches_fusion_layer_specs_fields() -> None:
    spec = parse_key("FusionReshape-input:1_256-C:32-L:4")
    assert (spec.in_ch, spec.out_ch, spec.C, spec.L) == (256, 128, 32, 4)
    head = parse_key("FusionHead-input:1_64_4-in_ch:256-out_ch:10-C:32")
    assert (head.C, head.L, head.in_ch) == (32, 4, 256)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "ConvLayer",
        "ConvLayer-input:1_1_28_28-in_ch:1",  # missing fields
        "ConvLayer-input:2_1_28_28-in_ch:1-out_ch:16-kernel:3-stride:2-use_se:0-use_bn:1",
        "ConvLayer-input:1_1_28_x-in_ch:1-out_ch:16-kernel:3-stride:2-use_se:0-use_bn:1",
        "ConvLayer-in_ch:1-input:1_1_28_28-out_ch:16-kernel:3-stride:2-use_se:0-use_bn:1",
        "Sum-input:1_192_16-N:2-C:192-L:16",
        "Sum-input:1_192_16-N:1-C:192-L:16-L:16",
        "Weird Op-input:1_192_16-N:1-C:192-L:16",
    ],
)
def test_malformed_keys_are_one_line_lut_errors(key: str) -> None:
    with pytest.raises(LUTError) as info:
        parse_key(key)
    assert "\n" not in str(info.value)


def test_unkeyable_specs() -> None:
    with pytest.raises(LUTError, match="input shape"):
        lut_key(LayerSpec("conv", (28, 28), 1, 16))
    with pytest.raises(LUTError, match="operator name"):
        lut_key(LayerSpec("fusion_op", (8, 4), 8, 8, op="bad-op", C=8, L=4))
