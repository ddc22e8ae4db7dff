"""The 1-D signal preset ``mbv3-1d``: (C, T) inputs, 1 x k kernels, costed and keyed as 1-D layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from harmonic_nas.backbones import BackboneSpace, build_layer, build_supernet, get_preset
from harmonic_nas.errors import ConfigError
from harmonic_nas.hardware.inventory import backbone_specs, feature_shapes, preset_space_specs
from harmonic_nas.hardware.keys import lut_key, parse_key

SHAPE = (3, 50)


def test_kernels_run_along_time_only() -> None:
    net = build_supernet(("signal", SHAPE), "mbv3-1d", 4)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(m.kernel_size[0] == 1 and m.stride[0] == 1 for m in convs)
    assert {m.kernel_size[1] for m in convs} >= {1, 3}
    assert net.stage_blocks()[0][0].dw.weight.shape[2:] == (1, 7)
    assert all(t.shape in ((5, 5), (3, 3)) for t in net.kernel_transforms().values())


def test_every_kernel_size_is_exact_and_different() -> None:
    torch.manual_seed(0)
    net = build_supernet(("signal", SHAPE), "mbv3-1d", 4).eval()
    space = BackboneSpace.from_preset("mbv3-1d")
    x = torch.randn(2, *SHAPE)
    outs = []
    for k in (3, 5, 7):
        g = space._uniform(k, 4, 3).active(space.max_depth)
        net.set_active(g)
        feats, logits = net(x)
        sub = net.extract(g).eval()
        sub_feats, sub_logits = sub(x)
        assert torch.equal(logits, sub_logits)
        assert all(torch.equal(a, b) for a, b in zip(feats, sub_feats, strict=True))
        outs.append(logits)
    assert not torch.allclose(outs[0], outs[2])


def test_costed_layers_match_the_network_and_have_1d_keys() -> None:
    space = BackboneSpace.from_preset("mbv3-1d")
    rng = np.random.default_rng(3)
    net = build_supernet(("signal", SHAPE), "mbv3-1d", 4).eval()
    for g in (space.min_genome(), space.max_genome(), space.sample(rng)):
        specs = backbone_specs("mbv3-1d", SHAPE, g, 4)
        assert all(s.dims == 1 for s in specs if s.kind in ("conv", "mbconv"))
        sub = net.extract(g).eval()
        feats, _ = sub(torch.randn(1, *SHAPE))
        assert [tuple(f.shape[1:]) for f in feats] == feature_shapes(specs)
        for s in specs:
            key = lut_key(s)
            assert parse_key(key) == s or lut_key(parse_key(key)) == key
            if s.kind in ("conv", "mbconv"):
                assert key.startswith(("Conv1dLayer-input:1_", "MBConv1dLayer-input:1_"))
                assert f"input:1_{s.input_shape[0]}_{s.input_shape[2]}-" in key
            out = build_layer(s).eval()(torch.randn(1, *s.input_shape))
            assert tuple(out.shape[1:]) == s.output_shape()
    keys = [lut_key(s) for s in preset_space_specs("mbv3-1d", SHAPE, 4)]
    assert len(keys) == len(set(keys)) > 20


def test_1d_keys_differ_from_2d_keys_of_the_same_numbers() -> None:
    spec = parse_key(
        "MBConv1dLayer-input:1_16_25-in_ch:16-out_ch:24-mid_ch:64-expand:4-kernel:5-stride:2-use_se:0"
    )
    assert spec.dims == 1 and spec.input_shape == (16, 1, 25) and spec.kernel == 5
    from dataclasses import replace

    flat = replace(spec, dims=2)
    assert lut_key(flat).startswith("MBConvLayer-input:1_16_1_25-")


def test_ladder_costs_grow_with_the_genome() -> None:
    from harmonic_nas.hardware.features import macs

    space = BackboneSpace.from_preset("mbv3-1d")
    small = sum(macs(s) for s in backbone_specs("mbv3-1d", (3, 128), space.min_genome(), 4))
    large = sum(macs(s) for s in backbone_specs("mbv3-1d", (3, 128), space.max_genome(), 4))
    assert large > 3 * small


@pytest.mark.parametrize(
    ("kind", "shape", "preset", "match"),
    [
        ("signal", (3, 4, 50), "mbv3-1d", r"1-D CNN for \(C, T\) signals .* \[3, 4, 50\]"),
        ("image", (3, 50), "mbv3-1d", r"1-D CNN for \(C, T\) signals but the modality is image"),
        ("signal", (3, 50), "avmnist", r"use preset 'mbv3-1d' for \(C, T\) signals"),
        ("signal", (3, 50), "mbv3-2d", r"unknown backbone preset 'mbv3-2d'"),
    ],
)
def test_bad_kind_shape_or_preset_is_one_line(
    kind: str, shape: tuple[int, ...], preset: str, match: str
) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        build_supernet((kind, shape), preset, 4, modality="accel")
    assert "\n" not in str(info.value)


def test_preset_is_registered_as_1d() -> None:
    p = get_preset("mbv3-1d")
    assert p.dims == 1  # type: ignore[union-attr]
    assert get_preset("mbv3-1d-w1.5").dims == 1  # type: ignore[union-attr]
