"""The raw-text backbone ``text-1d``: embedding + elastic 1-D blocks, exact extraction, keyed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harmonic_nas.backbones import BackboneSpace, ElasticTextNet, build_layer, build_supernet
from harmonic_nas.data.tokenizer import ByteTokenizer
from harmonic_nas.errors import ConfigError
from harmonic_nas.hardware.inventory import backbone_specs, feature_shapes, preset_space_specs
from harmonic_nas.hardware.keys import lut_key, parse_key


def _ids() -> torch.Tensor:
    tok = ByteTokenizer.fit(["a red dog", "the cat sat on it", "zwölf"])
    return torch.from_numpy(tok.encode(["a red dog", "zwölf cats", "xyz"]))


def test_extraction_is_exact_and_ids_are_looked_up() -> None:
    torch.manual_seed(0)
    ids = _ids()
    net = build_supernet(("text", tuple(ids.shape[1:])), "text-1d", 3)
    assert isinstance(net, ElasticTextNet)
    net.train()
    net(ids)  # BN statistics of their own
    net.eval()
    rng = np.random.default_rng(0)
    for g in (net.min_genome(), net.max_genome(), net.sample(rng)):
        net.set_active(g)
        feats, logits = net(ids)
        sub = net.extract(g).eval()
        sub_feats, sub_logits = sub(ids)
        assert torch.equal(logits, sub_logits)
        assert all(torch.equal(a, b) for a, b in zip(feats, sub_feats, strict=True))
        specs = backbone_specs("text-1d", tuple(ids.shape[1:]), g, 3)
        assert [tuple(f.shape[1:]) for f in sub_feats] == feature_shapes(specs)
        assert sub.layer_configs(tuple(ids.shape[1:])) == specs
    # the ids index the embedding: changing one token changes the output, float ids == int ids
    assert torch.equal(net(ids)[1], net(ids.long())[1])
    other = ids.clone()
    other[0, 0] = 5
    assert not torch.equal(net(other)[1][0], net(ids)[1][0])


def test_keys_round_trip_and_genes_are_the_1d_body() -> None:
    specs = preset_space_specs("text-1d", (20,), 3)
    assert specs[0].kind == "embedding"
    assert lut_key(specs[0]) == "EmbeddingLayer-input:1_20-vocab:258-dim:32"
    for s in specs:
        assert lut_key(parse_key(lut_key(s))) == lut_key(s)
        out = build_layer(s).eval()(torch.randn(1, *s.input_shape))
        assert tuple(out.shape[1:]) == s.output_shape()
    assert BackboneSpace.from_preset("text-1d") == BackboneSpace.from_preset("mbv3-1d")


@pytest.mark.parametrize(
    ("kind", "shape"), [("text", (4, 20)), ("signal", (20,)), ("image", (1, 20, 20))]
)
def test_wrong_kind_or_rank_is_one_line(kind: str, shape: tuple[int, ...]) -> None:
    with pytest.raises(ConfigError, match=r"preset text-1d reads raw text") as info:
        build_supernet((kind, shape), "text-1d", 3, modality="caption")
    assert "\n" not in str(info.value)
