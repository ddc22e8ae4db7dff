"""The fusion-mode gene (``search.fusion_modes``): encoding, keys, ladder, the search end to end
on the synthetic problem, and that without it nothing changes."""

from __future__ import annotations

import optuna
import pytest

from harmonic_nas.backbones.genome import BackboneGenome
from harmonic_nas.cli import main
from harmonic_nas.config import ConfigError, parse_config
from harmonic_nas.errors import GenomeError
from harmonic_nas.search.genome import FUSION_MODES, BackboneSpace, MultimodalGenome, SearchSpace
from harmonic_nas.search.identity import search_config_hash
from harmonic_nas.utils.io import read_json

AVMNIST = BackboneSpace(ks=(3, 5, 7), e=(3, 4, 6), d=(2, 3, 4), stages=1)
IMG = BackboneGenome((3, 5, 7, 3), (3, 4, 6, 6), (3,))


def space(modes: tuple[str, ...] | None) -> SearchSpace:
    return SearchSpace.from_ranges({"image": AVMNIST, "audio": AVMNIST}, (1, 3), (1, 2), modes)


def genome(cells: int = 2, nodes: int = 1, mode: str | None = None) -> MultimodalGenome:
    return MultimodalGenome({"image": IMG, "audio": IMG}, cells, nodes, mode)


def test_without_the_gene_the_encoding_is_unchanged() -> None:
    sp = space(None)
    assert "fusion_mode" not in sp.distributions()
    g = genome()
    assert sp.to_params(g) == {**sp.to_params(g)} and "fusion_mode" not in sp.to_params(g)
    assert "fusion_mode" not in g.to_json() and not g.key().endswith("-network")
    assert g.key().endswith("|c2n1")
    assert sp.size() == AVMNIST.size() ** 2 * 3 * 2
    assert all(x.fusion_mode is None for x in sp.ladder(4))


def test_the_gene_round_trips_through_params_and_json() -> None:
    sp = space(FUSION_MODES)
    dist = sp.distributions()["fusion_mode"]
    assert isinstance(dist, optuna.distributions.CategoricalDistribution)
    assert dist.choices == ("late", "network", "network+late")
    for mode in FUSION_MODES:
        g = genome(mode=mode)
        params = sp.to_params(g)
        assert params["fusion_mode"] == mode and set(params) == set(sp.distributions())
        assert sp.from_params(params) == g
        assert MultimodalGenome.from_json(g.to_json()) == g


def test_a_late_genome_ignores_cells_and_nodes_in_its_key() -> None:
    a, b = genome(1, 1, "late"), genome(3, 2, "late")
    assert a.key() == b.key() and a.key().endswith("|late") and a.is_late
    net, skip = genome(2, 1, "network"), genome(2, 1, "network+late")
    assert len({a.key(), net.key(), skip.key(), genome(2, 1).key()}) == 4
    # late candidates: one per backbone pair; network modes: one per cells x nodes
    assert space(("late", "network")).size() == AVMNIST.size() ** 2 * (1 + 3 * 2)
    assert space(("late",)).size() == AVMNIST.size() ** 2


def test_the_ladder_takes_the_modes_in_turn() -> None:
    sp = space(("late", "network"))
    rungs = sp.ladder(4)
    assert [g.fusion_mode for g in rungs] == ["late", "network", "late", "network"]
    assert sp.min_genome().fusion_mode == "late" and sp.max_genome().fusion_mode == "late"
    for g in rungs:
        sp.validate(g)


def test_validation_names_the_problem() -> None:
    with pytest.raises(GenomeError, match=r"not one of search\.fusion_modes"):
        space(("late",)).validate(genome(mode="network"))
    with pytest.raises(GenomeError, match=r"set search\.fusion_modes"):
        space(None).validate(genome(mode="late"))
    with pytest.raises(GenomeError, match="unknown fusion mode 'early'"):
        genome(mode="early")
    with pytest.raises(GenomeError, match="fusion_mode must be a string"):
        MultimodalGenome.from_json({**genome().to_json(), "fusion_mode": 3})


def _cfg(**search: object) -> dict[str, object]:
    return {
        "name": "x",
        "modalities": {
            "image": {"preset": "avmnist", "shape": [1, 28, 28]},
            "audio": {"preset": "avmnist", "shape": [1, 20, 20]},
        },
        "search": search,
    }


def test_config_validates_the_modes_and_the_identity_keeps_old_studies() -> None:
    assert parse_config(_cfg()).search.fusion_modes is None
    assert parse_config(_cfg(fusion_modes=["late", "network"])).search.fusion_modes == (
        "late",
        "network",
    )
    with pytest.raises(ConfigError, match="list each fusion mode once"):
        parse_config(_cfg(fusion_modes=["late", "late"]))
    with pytest.raises(ConfigError, match="fusion_modes"):
        parse_config(_cfg(fusion_modes=["early"]))
    # a study made before the gene existed keeps its identity; a gene makes a new study
    base = parse_config(_cfg())
    assert search_config_hash(base, "nsga2") == search_config_hash(
        parse_config({**_cfg(), "fusion": {"fusion_split": 0.0}}), "nsga2"
    )
    assert search_config_hash(base, "nsga2") != search_config_hash(
        parse_config(_cfg(fusion_modes=["late"])), "nsga2"
    )


def test_search_with_the_gene_end_to_end(make_config, synthetic_env) -> None:
    """NSGA-II on the synthetic problem with every mode: the gene is in the study's params,
    candidates and Pareto members record their mode, late members have no genotype and are
    cheaper than a network of the same backbones."""
    path, cfg = make_config(fusion_modes=list(FUSION_MODES), population=6, generations=2)
    assert main(["search", str(path)]) == 0
    run = cfg.run_path
    cands = read_json(run / "candidates.json", schema_version=1)["candidates"]
    done = [c for c in cands if c["state"] == "COMPLETE"]
    modes = {c["arch"]["fusion_mode"] for c in done}
    assert "late" in modes and modes <= set(FUSION_MODES)
    for c in done:
        if c["arch"]["fusion_mode"] == "late":
            assert c["arch"]["genotype"] is None
    keys = [c["key"] for c in done]
    assert len(keys) == len(set(keys))  # deduplicated by the key (a late key has no cells)
    late = [c for c in done if c["arch"]["fusion_mode"] == "late"]
    assert all(c["key"].endswith("|late") for c in late)
    pareto = read_json(run / "pareto.json", schema_version=1)
    assert pareto["members"]
    assert all(m["arch"]["fusion_mode"] in FUSION_MODES for m in pareto["members"])
