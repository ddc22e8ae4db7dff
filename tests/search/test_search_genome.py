"""Joint genome: Optuna encoding, canonical keys, space facts."""

from __future__ import annotations

import optuna
import pytest

from harmonic_nas.backbones.genome import BackboneGenome
from harmonic_nas.errors import GenomeError
from harmonic_nas.search.genome import BackboneSpace, MultimodalGenome, SearchSpace

AVMNIST = BackboneSpace(ks=(3, 5, 7), e=(3, 4, 6), d=(2, 3, 4), stages=1)


def space() -> SearchSpace:
    return SearchSpace.from_ranges(
        {"image": AVMNIST, "audio": AVMNIST, "text": BackboneSpace()}, (1, 4), (1, 4)
    )


def test_backbone_space_size_matches_ofa_count() -> None:
    assert AVMNIST.size() == 7371  # 9^2 + 9^3 + 9^4, the avmnist supernet's subnet count
    assert BackboneSpace().size() == 1
    assert space().size() == 7371 * 7371 * 16


def test_params_round_trip_and_every_gene_is_categorical() -> None:
    sp = space()
    g = MultimodalGenome(
        {
            "image": BackboneGenome((3, 5, 7, 3), (3, 4, 6, 6), (3,)),
            "audio": BackboneGenome((7, 7, 7, 7), (6, 6, 6, 6), (4,)),
            "text": BackboneGenome(),
        },
        cells=2,
        nodes=3,
    )
    params = sp.to_params(g)
    assert set(params) == set(sp.distributions())
    assert sp.from_params(params) == g
    assert MultimodalGenome.from_json(g.to_json()) == g
    dists = sp.distributions()
    assert all(isinstance(d, optuna.distributions.CategoricalDistribution) for d in dists.values())
    assert dists["cells"].choices == (1, 2, 3, 4) and dists["nodes"].choices == (1, 2, 3, 4)


def test_canonical_key_ignores_inactive_genes_only() -> None:
    a = MultimodalGenome({"image": BackboneGenome((3, 5, 7, 3), (3, 4, 6, 6), (2,))}, 1, 1)
    b = MultimodalGenome({"image": BackboneGenome((3, 5, 5, 5), (3, 4, 3, 4), (2,))}, 1, 1)
    c = MultimodalGenome({"image": BackboneGenome((3, 5, 7, 3), (3, 4, 6, 6), (3,))}, 1, 1)
    d = MultimodalGenome({"image": BackboneGenome((3, 5, 7, 3), (3, 4, 6, 6), (2,))}, 1, 2)
    assert a.key() == b.key() and hash(a) == hash(b)
    assert len({a.key(), c.key(), d.key()}) == 3
    assert a.canonical().backbones["image"] == BackboneGenome((3, 5, 0, 0), (3, 4, 0, 0), (2,))


def test_min_max_and_validation() -> None:
    sp = space()
    lo, hi = sp.min_genome(), sp.max_genome()
    assert lo.backbones["image"] == BackboneGenome((3,) * 4, (3,) * 4, (2,)) and (
        lo.cells,
        lo.nodes,
    ) == (1, 1)
    assert hi.backbones["audio"] == BackboneGenome((7,) * 4, (6,) * 4, (4,)) and (
        hi.cells,
        hi.nodes,
    ) == (4, 4)
    sp.validate(lo)
    bad = MultimodalGenome(
        {**lo.backbones, "image": BackboneGenome((9,) * 4, (3,) * 4, (2,))}, 1, 1
    )
    with pytest.raises(GenomeError, match="ks=9"):
        sp.validate(bad)
    with pytest.raises(GenomeError, match="outside the search ranges"):
        sp.validate(MultimodalGenome(lo.backbones, 5, 1))
    with pytest.raises(GenomeError, match="lack gene"):
        sp.from_params({"cells": 1})


def test_suggest_reads_every_gene_from_the_trial() -> None:
    sp = space()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    target = sp.max_genome()
    study.enqueue_trial(sp.to_params(target))
    trial = study.ask()
    assert sp.suggest(trial) == target
    assert set(trial.params) == set(sp.distributions())


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("cells", "2"),
        ("cells", 2.0),
        ("cells", True),
        ("nodes", "3"),
        ("nodes", 3.5),
        ("nodes", None),
    ],
)
def test_genome_reader_requires_integer_cells_and_nodes(key: str, value: object) -> None:
    data = space().min_genome().to_json()
    data[key] = value
    with pytest.raises(GenomeError, match=rf"integer cells and nodes; got {key}={value!r}$"):
        MultimodalGenome.from_json(data)


def test_ladder_runs_from_the_smallest_to_the_largest_genome() -> None:
    sp = space()
    ladder = sp.ladder(8)
    assert ladder[0] == sp.min_genome() and ladder[-1] == sp.max_genome()
    keys = [g.key() for g in ladder]
    assert len(set(keys)) == len(keys)  # levels rounding to the same network are listed once
    assert len(ladder) == 4  # 3 choices per backbone gene, 4 cells/nodes values: 4 distinct
    for g in ladder:
        sp.validate(g)
        assert sp.from_params(sp.to_params(g)) == g  # enqueueable as Optuna params
    sizes = [(g.backbones["image"].e[0], g.cells) for g in ladder]
    assert sizes == sorted(sizes)  # every step is at least as large as the one before
    assert [g.key() for g in sp.ladder(2)] == [sp.min_genome().key(), sp.max_genome().key()]
    with pytest.raises(GenomeError, match="at least 2 genomes"):
        sp.ladder(1)
