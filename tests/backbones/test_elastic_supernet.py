"""The elastic MobileNetV3 supernet: extraction equivalence, genomes, kernel transforms, reordering."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch
from torch import nn

from harmonic_nas.backbones import (
    BackboneGenome,
    ElasticMobileNetV3,
    MobileNetV3Preset,
    StaticBackbone,
    get_preset,
    list_presets,
)
from harmonic_nas.backbones.dynamic import DynamicMBConv
from harmonic_nas.errors import ConfigError, GenomeError, HarmonicError

# Small inputs (and a narrow ofa-mbv3) keep the equivalence tests fast.
SMALL_INPUT = {
    "avmnist": [(1, 28, 28), (1, 20, 20), (3, 28, 28)],
    "mbv3-3stage": [(3, 32, 32)],
    "ofa-mbv3": [(3, 32, 32)],
    "mbv3-1d": [(3, 64), (1, 37)],  # (C, T) signals, odd lengths included
}
SMALL_NAME = {"ofa-mbv3": "ofa-mbv3-w0.35"}

MBV3_PRESETS = [n for n in list_presets() if isinstance(get_preset(n), MobileNetV3Preset)]


def _perturb(net: ElasticMobileNetV3, seed: int = 0) -> None:
    """Non-trivial kernel transforms and BN statistics, so equivalence is not by accident."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        for t in net.kernel_transforms().values():
            t.add_(torch.randn(t.shape, generator=g) * 0.1)


def test_registry_covers_the_cnn_presets() -> None:
    assert {"avmnist", "mbv3-3stage", "ofa-mbv3", "mbv3-1d", "maxout"} <= set(list_presets())
    assert set(MBV3_PRESETS) == set(SMALL_INPUT)


@pytest.mark.parametrize("preset", MBV3_PRESETS)
def test_extraction_equals_supernet_for_random_genomes(preset: str) -> None:
    name = SMALL_NAME.get(preset, preset)
    rng = np.random.default_rng(1)
    for shape in SMALL_INPUT[preset]:
        net = ElasticMobileNetV3(name, shape[0], 7, modality="m")
        _perturb(net)
        net.reorder_channels()
        net.eval()
        x = torch.randn(2, *shape)
        genomes = [net.max_genome(), net.min_genome()] + [net.sample(rng) for _ in range(5)]
        for genome in genomes:
            net.set_active(genome)
            with torch.no_grad():
                feats, logits = net(x)
                sub = net.extract(genome)
                assert isinstance(sub, StaticBackbone)
                assert not sub.training
                sub_feats, sub_logits = sub(x)
            assert logits.shape == (2, 7)
            assert len(feats) == len(sub_feats) == 3 + sum(genome.d)  # + final representation
            for a, b in zip([*feats, logits], [*sub_feats, sub_logits], strict=True):
                torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
            # the subnet owns its weights: changing it leaves the supernet untouched
            with torch.no_grad():
                next(sub.parameters()).add_(1.0)
                _, again = net(x)
            torch.testing.assert_close(again, logits, atol=0, rtol=0)


def test_fusion_point_shapes_for_avmnist() -> None:
    net = ElasticMobileNetV3("avmnist", 1, 10).eval()
    for hw, mid, low in ((28, 14, 7), (20, 10, 5)):
        feats, logits = net.extract(net.max_genome())(torch.randn(2, 1, hw, hw))
        shapes = [tuple(f.shape[1:]) for f in feats]
        assert shapes == [(16, mid, mid)] * 2 + [(24, low, low)] * 4 + [(80,)]
        assert logits.shape == (2, 10)


def test_subnet_count_matches_enumeration_and_inactive_genes_are_ignored() -> None:
    net = ElasticMobileNetV3("avmnist", 1, 10)
    assert net.num_subnets() == 7371
    p = net.preset
    distinct = set()
    for d in p.d_choices:
        for ks in itertools.product(p.ks_choices, repeat=4):
            for e in itertools.product(p.e_choices, repeat=4):
                distinct.add(BackboneGenome(ks, e, (d,)).active(p.max_depth))
    assert len(distinct) == 7371
    assert ElasticMobileNetV3("mbv3-3stage", 3, 10).num_subnets() == 7371**3


def test_inactive_genes_do_not_change_the_subnet() -> None:
    net = ElasticMobileNetV3("avmnist", 1, 10).eval()
    _perturb(net)
    a = BackboneGenome((5, 3, 7, 7), (4, 6, 3, 3), (2,))
    b = BackboneGenome((5, 3, 0, 99), (4, 6, 0, 1), (2,))  # garbage in inactive slots
    net.validate(b)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        net.set_active(a)
        _, la = net(x)
        net.set_active(b)
        _, lb = net(x)
    torch.testing.assert_close(la, lb, atol=0, rtol=0)
    assert net.extract(a).genome == net.extract(b).genome == a.active(4)
    assert net.active_genome() == a.active(4)


def test_genome_sampling_is_seeded_and_valid() -> None:
    net = ElasticMobileNetV3("avmnist", 1, 10)
    s1 = [net.sample(np.random.default_rng(3)) for _ in range(2)]
    s2 = [net.sample(np.random.default_rng(3)) for _ in range(2)]
    assert s1 == s2
    rng = np.random.default_rng(4)
    seen = set()
    for _ in range(200):
        g = net.sample(rng)
        net.validate(g)
        assert BackboneGenome.from_json(g.to_json()) == g
        seen.add(g.d[0])
    assert seen == {2, 3, 4}
    assert net.max_genome() == BackboneGenome((7,) * 4, (6,) * 4, (4,))
    assert net.min_genome() == BackboneGenome((3,) * 4, (3,) * 4, (2,))


BAD_GENOMES = [
    (BackboneGenome((7, 7, 7, 4), (6,) * 4, (4,)), "kernel 4"),
    (BackboneGenome((7,) * 4, (6, 6, 2, 6), (4,)), "expand ratio 2"),
    (BackboneGenome((7,) * 4, (6,) * 4, (5,)), "depth 5"),
    (BackboneGenome((7,) * 3, (6,) * 4, (4,)), "3 'ks' gene"),
    (BackboneGenome((7,) * 4, (6,) * 8, (4,)), "8 'e' gene"),
    (BackboneGenome((7,) * 4, (6,) * 4, (4, 4)), "2 depth gene"),
    (BackboneGenome(), "0 depth gene"),
]


@pytest.mark.parametrize(("genome", "needle"), BAD_GENOMES)
def test_bad_genomes_raise_one_line_genome_errors(genome: BackboneGenome, needle: str) -> None:
    net = ElasticMobileNetV3("avmnist", 1, 10)
    for call in (net.validate, net.set_active, net.extract):
        with pytest.raises(GenomeError) as info:
            call(genome)
        msg = str(info.value)
        assert needle in msg and "avmnist" in msg and "\n" not in msg
        assert isinstance(info.value, HarmonicError) and info.value.exit_code == 2


def test_non_genome_and_bad_json_are_rejected() -> None:
    net = ElasticMobileNetV3("avmnist", 1, 10)
    with pytest.raises(GenomeError, match="expected a BackboneGenome"):
        net.validate({"ks": [7, 7, 7, 7]})  # type: ignore[arg-type]
    with pytest.raises(GenomeError, match="keys ks, e, d"):
        BackboneGenome.from_json({"ks": [3], "depth": [2]})
    with pytest.raises(GenomeError, match="integers"):
        BackboneGenome.from_json({"ks": ["x"], "e": [], "d": []})


def test_unknown_preset_and_bad_widths() -> None:
    with pytest.raises(ConfigError, match=r"unknown backbone preset 'resnet'.*avmnist"):
        ElasticMobileNetV3("resnet", 1, 10)
    with pytest.raises(ConfigError, match="unknown backbone preset"):
        get_preset("avmnist-wide")
    with pytest.raises(ConfigError, match="not a MobileNetV3 preset"):
        ElasticMobileNetV3("maxout", 1, 10)
    with pytest.raises(ConfigError, match="already scaled"):
        get_preset("ofa-mbv3-w1.2").scaled(2.0)  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="width multiplier"):
        get_preset("ofa-mbv3-w9")
    with pytest.raises(ConfigError, match="input channel"):
        ElasticMobileNetV3("avmnist", 0, 10)


def test_width_multiplier_follows_ofa_rounding() -> None:
    p = get_preset("ofa-mbv3-w1.2")
    assert isinstance(p, MobileNetV3Preset)
    assert (p.stem_width, p.stage_widths) == (24, (32, 48, 96, 136, 192))
    assert (p.final_expand_width, p.feature_mix_width) == (1152, 1536)
    small = get_preset("ofa-mbv3-w0.35")
    assert isinstance(small, MobileNetV3Preset)
    assert small.stage_widths == (8, 16, 32, 40, 56) and small.feature_mix_width == 1280


def test_kernel_transform_shapes_init_and_gradients() -> None:
    net = ElasticMobileNetV3("mbv3-3stage", 3, 5)
    transforms = net.kernel_transforms()
    assert len(transforms) == 2 * 3 * 4  # two matrices per elastic block
    for name, t in transforms.items():
        size = 25 if name.endswith("7to5") else 9
        assert t.shape == (size, size)
        torch.testing.assert_close(t.detach(), torch.eye(size))
    net = ElasticMobileNetV3("avmnist", 1, 5)
    block = net.stages[0][0]
    assert isinstance(block, DynamicMBConv)
    w = block.dw.weight.detach()
    # identity transforms: the small kernels are the centre crops of the 7x7 weights
    torch.testing.assert_close(block.dw.active_filter(10, 5), w[:10, :, 1:6, 1:6])
    torch.testing.assert_close(block.dw.active_filter(10, 3), w[:10, :, 2:5, 2:5])
    assert block.dw.active_filter(10, 7).shape == (10, 1, 7, 7)
    x = torch.randn(2, 1, 20, 20)
    for k, expect in ((7, set()), (5, {"7to5"}), (3, {"7to5", "5to3"})):
        net.zero_grad(set_to_none=True)
        genome = BackboneGenome((k,) * 4, (3,) * 4, (2,))
        net.set_active(genome)
        net(x)[1].sum().backward()
        got = {
            n
            for n, t in block.dw.transforms.items()
            if t.grad is not None and t.grad.abs().sum() > 0
        }
        assert got == expect


def test_expand_slicing_uses_in_times_expand_channels() -> None:
    net = ElasticMobileNetV3("avmnist", 1, 10)
    sub = net.extract(BackboneGenome((3, 5, 7, 3), (3, 4, 6, 3), (4,)))
    mids = [b.mid_ch for b in sub.blocks]
    assert mids == [48, 96, 144, 72]
    assert sub.blocks[0].dw.conv.weight.shape == (48, 1, 3, 3)
    assert sub.blocks[2].dw.conv.weight.shape == (144, 1, 7, 7)


def test_reorder_channels_keeps_max_subnet_and_sorts_importance() -> None:
    net = ElasticMobileNetV3("mbv3-3stage", 3, 5).eval()  # includes SE blocks
    _perturb(net, seed=2)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        net.set_active(net.max_genome())
        _, before_max = net(x)
        net.set_active(net.min_genome())
        _, before_min = net(x)
        net.reorder_channels()
        _, after_min = net(x)
        net.set_active(net.max_genome())
        _, after_max = net(x)
    torch.testing.assert_close(after_max, before_max, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(after_min, before_min)
    for stage in net.stages:
        for block in stage:
            imp = block.project.weight.abs().sum(dim=(0, 2, 3))
            assert torch.all(imp[:-1] >= imp[1:])


@pytest.mark.parametrize("opt_name", ["sgd", "adamw"])
def test_reorder_channels_permutes_optimizer_state(opt_name: str) -> None:
    torch.manual_seed(0)
    # float64: Adam divides by sqrt(v), which would amplify float32 summation-order noise
    a = ElasticMobileNetV3("avmnist", 1, 4).double()
    a.classifier.dropout.p = 0.0
    b = copy.deepcopy(a)
    x, y = torch.randn(8, 1, 20, 20, dtype=torch.float64), torch.randint(0, 4, (8,))

    def make(net: nn.Module) -> torch.optim.Optimizer:
        if opt_name == "sgd":
            return torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        return torch.optim.AdamW(net.parameters(), lr=0.01)

    opt_a, opt_b = make(a), make(b)

    def step(net: ElasticMobileNetV3, opt: torch.optim.Optimizer) -> None:
        opt.zero_grad()
        nn.functional.cross_entropy(net(x)[1], y).backward()
        opt.step()

    for net, opt in ((a, opt_a), (b, opt_b)):
        step(net, opt)
    a.reorder_channels(opt_a)  # b is not reordered: a and b are the same function
    for net, opt in ((a, opt_a), (b, opt_b)):
        step(net, opt)
    a.eval(), b.eval()
    with torch.no_grad():
        torch.testing.assert_close(a(x)[1], b(x)[1], atol=1e-9, rtol=1e-9)


def test_other_input_channel_counts_work() -> None:
    net = ElasticMobileNetV3("avmnist", 3, 10).eval()
    feats, logits = net(torch.randn(2, 3, 28, 28))
    assert logits.shape == (2, 10) and feats[0].shape == (2, 16, 14, 14)
    assert net.extract(net.min_genome()).stem.conv.weight.shape == (16, 3, 3, 3)
