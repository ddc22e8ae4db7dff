"""BackboneSpace: one definition of a backbone's genes (validate, sample, count, bounds, enumerate)."""

from __future__ import annotations

import numpy as np
import pytest

from harmonic_nas.backbones import BackboneGenome, BackboneSpace, ElasticMobileNetV3
from harmonic_nas.errors import GenomeError


def test_from_preset_matches_the_supernet() -> None:
    space = BackboneSpace.from_preset("avmnist")
    assert (space.ks, space.e, space.d, space.stages) == ((3, 5, 7), (3, 4, 6), (2, 3, 4), 1)
    assert (space.max_depth, space.slots, space.preset) == (4, 4, "avmnist")
    net = ElasticMobileNetV3("avmnist", 1, 10)
    assert net.space == space and net.num_subnets() == space.size() == 7371
    assert space.max_genome() == net.max_genome() == BackboneGenome((7,) * 4, (6,) * 4, (4,))
    assert space.min_genome() == BackboneGenome((3,) * 4, (3,) * 4, (2,))
    assert BackboneSpace.from_preset("mbv3-3stage").size() == 7371**3


def test_fixed_backbone_has_the_empty_genome_and_draws_nothing() -> None:
    space = BackboneSpace.from_preset("maxout")
    assert space == BackboneSpace() and space.size() == 1
    rng = np.random.default_rng(0)
    assert space.sample(rng) == space.min_genome() == space.max_genome() == BackboneGenome()
    assert rng.integers(1 << 30) == np.random.default_rng(0).integers(1 << 30)
    assert list(space.genomes()) == space.covering_genomes() == [BackboneGenome()]


def test_sample_is_seeded_and_always_valid() -> None:
    space = BackboneSpace.from_preset("avmnist")
    a = [space.sample(np.random.default_rng(3)) for _ in range(2)]
    assert a[0] == a[1]
    rng = np.random.default_rng(1)
    for _ in range(50):
        g = space.sample(rng)
        space.validate(g)
        space.validate(g, "image")


def test_enumeration_counts_every_subnet_once() -> None:
    tiny = BackboneSpace(ks=(3, 5), e=(3,), d=(1, 2), stages=2)
    genomes = list(tiny.genomes())
    assert len(genomes) == len(set(genomes)) == tiny.size() == (2 + 4) ** 2
    for g in genomes:
        tiny.validate(g)  # canonical (inactive genes 0) genomes are valid subnets
    cover = tiny.covering_genomes()
    assert len(cover) == 2 * 1 * 2
    assert [g.d for g in tiny.depth_genomes()] == [(1, 1), (1, 2), (2, 1), (2, 2)]


def test_validation_messages() -> None:
    space = BackboneSpace.from_preset("avmnist")
    with pytest.raises(GenomeError, match="depth 5 of stage 0 is not in preset avmnist's depths"):
        space.validate(BackboneGenome((3,) * 4, (3,) * 4, (5,)))
    with pytest.raises(GenomeError, match="kernel 4 \\(block 1\\)"):
        space.validate(BackboneGenome((3, 4, 3, 3), (3,) * 4, (2,)))
    space.validate(BackboneGenome((3, 3, 0, 0), (3, 3, 0, 0), (2,)))  # inactive genes ignored
    with pytest.raises(GenomeError, match="genome of 'image' has ks=0, allowed values are"):
        space.validate(BackboneGenome((3, 3, 0, 0), (3, 3, 0, 0), (2,)), "image")
    with pytest.raises(GenomeError, match="the search space expects 1 / 4"):
        space.validate(BackboneGenome(), "image")
    with pytest.raises(GenomeError, match="needs kernel, expand and depth choices"):
        BackboneSpace(ks=(3,), stages=1)


def test_level_genome_spans_min_to_max() -> None:
    space = BackboneSpace.from_preset("avmnist")
    assert space.level_genome(0.0) == space.min_genome()
    assert space.level_genome(1.0) == space.max_genome()
    assert space.level_genome(0.5) == BackboneGenome((5,) * 4, (4,) * 4, (3,))
    assert space.level_genome(0.2) == space.min_genome()  # round(0.2 x 2) = 0
    space.validate(space.level_genome(0.7), "image")  # every gene one of the choices
    assert BackboneSpace().level_genome(0.5) == BackboneGenome()
    with pytest.raises(GenomeError, match=r"level must be in \[0, 1\], got 1.5"):
        space.level_genome(1.5)
