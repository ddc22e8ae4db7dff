"""The elastic tabular MLP (``mlp``): width and depth genes, exact extraction, keyed layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from harmonic_nas.backbones import (
    BackboneGenome,
    BackboneSpace,
    ElasticMLP,
    build_layer,
    build_supernet,
    default_preset,
)
from harmonic_nas.errors import GenomeError
from harmonic_nas.hardware.inventory import backbone_specs, feature_shapes, preset_space_specs
from harmonic_nas.hardware.keys import lut_key, parse_key

N_IN, N_CLASSES = 20, 5


def _trained_like(seed: int = 0) -> ElasticMLP:
    """A supernet with non-trivial BN statistics (a few train-mode passes)."""
    torch.manual_seed(seed)
    net = build_supernet(("vector", (N_IN,)), "mlp", N_CLASSES)
    assert isinstance(net, ElasticMLP)
    net.train()
    g = torch.Generator().manual_seed(seed)
    for _ in range(3):
        net(torch.randn(32, N_IN, generator=g) * 3 + 1)
    return net.eval()


def test_space_has_width_and_depth_genes() -> None:
    space = BackboneSpace.from_preset("mlp")
    assert space.d == (1, 2, 3) and space.e == (1, 2, 4) and space.ks == (1,)
    assert space.size() == 3 + 9 + 27 == len(list(space.genomes()))
    assert space.max_genome() != space.min_genome()


def test_every_subnet_is_extracted_exactly() -> None:
    net = _trained_like()
    x = torch.randn(7, N_IN, generator=torch.Generator().manual_seed(1))
    logits = []
    for g in BackboneSpace.from_preset("mlp").genomes():
        net.set_active(g)
        feats, out = net(x)
        sub = net.extract(g).eval()
        sub_feats, sub_out = sub(x)
        assert torch.allclose(out, sub_out, atol=1e-6), g
        assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(feats, sub_feats, strict=True))
        specs = backbone_specs("mlp", (N_IN,), g, N_CLASSES)
        assert [tuple(f.shape[1:]) for f in sub_feats] == feature_shapes(specs)
        assert sub.layer_configs((N_IN,)) == specs
        logits.append(out)
    assert not torch.allclose(logits[0], logits[-1])


def test_reordering_keeps_the_widest_subnet_and_ranks_units() -> None:
    net = _trained_like(2)
    x = torch.randn(5, N_IN, generator=torch.Generator().manual_seed(3))
    net.set_active(net.max_genome())
    before = net(x)[1]
    net.reorder_channels()
    assert torch.allclose(net(x)[1], before, atol=1e-5)
    importance = net.linears[1].weight.abs().sum(dim=0)
    assert bool((importance[:-1] >= importance[1:] - 1e-6).all())


def test_layers_are_keyed_profiled_and_cover_every_subnet() -> None:
    specs = preset_space_specs("mlp", (N_IN,), N_CLASSES)
    keys = [lut_key(s) for s in specs]
    assert len(keys) == len(set(keys)) == 3 + 9 + 3  # first layers, (in, out) pairs, classifiers
    assert "DenseLayer-input:1_20-in_ch:20-out_ch:32-use_bn:1" in keys
    assert "DenseLayer-input:1_32-in_ch:32-out_ch:128-use_bn:1" in keys
    for s in specs:
        assert lut_key(parse_key(lut_key(s))) == lut_key(s)
        out = build_layer(s).eval()(torch.randn(1, *s.input_shape))
        assert tuple(out.shape[1:]) == s.output_shape()
    for g in BackboneSpace.from_preset("mlp").genomes():
        assert {lut_key(s) for s in backbone_specs("mlp", (N_IN,), g, N_CLASSES)} <= set(keys)


def test_ladder_sizes_differ_and_stay_small() -> None:
    def params(g: BackboneGenome) -> int:
        return sum(p.numel() for p in net.extract(g).parameters())

    net = _trained_like()
    small, large = params(net.min_genome()), params(net.max_genome())
    assert large > 10 * small
    assert sum(p.numel() for p in net.parameters()) < 60_000  # maxout: ~145 k for 20 features


def test_bad_genome_is_one_line() -> None:
    net = _trained_like()
    with pytest.raises(GenomeError, match=r"expand ratio 3 .* not in preset mlp"):
        net.set_active(BackboneGenome((1, 1, 1), (3, 1, 1), (2,)))


def test_defaults_per_kind() -> None:
    assert default_preset("vector") == "mlp" and default_preset("signal") == "mbv3-1d"
    assert default_preset("text") == "text-1d"
    assert isinstance(build_supernet(("vector", (4, 5)), "mlp", 3).linears[0], nn.Linear)
    # the MLP reads any shape flattened
    assert build_supernet(("vector", (4, 5)), "mlp", 3).in_features == 20


@pytest.mark.parametrize("seed", [0, 1])
def test_sampling_is_seeded(seed: int) -> None:
    space = BackboneSpace.from_preset("mlp")
    a = [space.sample(np.random.default_rng(seed)) for _ in range(3)]
    b = [space.sample(np.random.default_rng(seed)) for _ in range(3)]
    assert a == b
