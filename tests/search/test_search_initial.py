"""NSGA-II's first generation seeded with a ladder of genomes (``search.initial``)."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from harmonic_nas.search import run_search
from harmonic_nas.search.attrs import ATTR_INITIAL
from harmonic_nas.search.evaluator import space_from_config
from harmonic_nas.search.initial import ladder_size
from harmonic_nas.search.storage import StorageError, default_storage_url, open_storage
from harmonic_nas.testing.synthetic_problem import SyntheticFactory

GENERATION = "NSGAIISampler:generation"


def _study(cfg, name: str | None = None) -> optuna.Study:
    return optuna.load_study(
        study_name=name or cfg.name, storage=open_storage(default_storage_url(cfg))
    )


def test_ladder_size() -> None:
    assert [ladder_size(p) for p in (2, 3, 6, 16, 128)] == [2, 2, 3, 8, 64]


def test_first_generation_starts_with_the_ladder_and_it_breeds(make_config) -> None:
    _, cfg = make_config(population=6, generations=3)
    run_search(cfg, problem=SyntheticFactory())
    study = _study(cfg)
    ladder = space_from_config(cfg).ladder(ladder_size(6))
    trials = sorted(study.get_trials(), key=lambda t: t.number)
    first = trials[: len(ladder)]
    assert [t.params for t in first] == [space_from_config(cfg).to_params(g) for g in ladder]
    assert all(t.state == TrialState.COMPLETE for t in first)
    assert study.user_attrs[ATTR_INITIAL] == {"kind": "ladder", "genomes": len(ladder)}
    done = study.get_trials(states=(TrialState.COMPLETE,))
    # the enqueued trials are members of generation 0 (else they would never be parents)
    gens = sorted(t.system_attrs[GENERATION] for t in done)
    assert gens == [0] * 6 + [1] * 6 + [2] * 6
    assert all(t.system_attrs[GENERATION] == 0 for t in first)
    # resuming or extending never seeds again
    bigger = cfg.model_copy(update={"search": cfg.search.model_copy(update={"generations": 4})})
    run_search(bigger, problem=SyntheticFactory())
    study = _study(cfg)
    assert not study.get_trials(states=(TrialState.WAITING,))
    enqueued = [t.number for t in study.get_trials() if "fixed_params" in t.system_attrs]
    assert enqueued == [t.number for t in first]


@pytest.mark.parametrize(("strategy", "initial"), [("random", "ladder"), ("nsga2", "random")])
def test_random_search_and_initial_random_are_not_seeded(
    make_config, strategy: str, initial: str
) -> None:
    _, cfg = make_config(initial=initial)
    s = run_search(cfg, problem=SyntheticFactory(), strategy=strategy)
    study = _study(cfg, s.study_name)
    assert ATTR_INITIAL not in study.user_attrs
    assert all("fixed_params" not in t.system_attrs for t in study.get_trials())


def test_changing_initial_is_refused_naming_the_key_but_not_for_random_search(
    make_config,
) -> None:
    _, cfg = make_config()
    run_search(cfg, problem=SyntheticFactory())
    run_search(cfg, problem=SyntheticFactory(), strategy="random")
    other = cfg.model_copy(update={"search": cfg.search.model_copy(update={"initial": "random"})})
    with pytest.raises(StorageError, match=r"search\.initial"):
        run_search(other, problem=SyntheticFactory())
    # random search ignores search.initial: its study resumes
    assert run_search(other, problem=SyntheticFactory(), strategy="random").n_complete == 8


def test_fusion_keys_newer_than_a_study_enter_its_identity_only_off_their_old_value(
    make_config,
) -> None:
    """A study made before fusion.late_skip / fusion.mixup existed (both off, in effect) keeps
    its identity with them off; any other value is another study, and the refusal names it."""
    from harmonic_nas.config import ExperimentConfig
    from harmonic_nas.search.identity import config_identity, differing_keys

    _, cfg = make_config()

    def with_fusion(**kw: object) -> ExperimentConfig:
        return cfg.model_copy(update={"fusion": cfg.fusion.model_copy(update=kw)})

    old = with_fusion(late_skip=False, mixup=0.0)
    ident = config_identity(old, "nsga2")
    assert "fusion.late_skip" not in ident and "fusion.mixup" not in ident
    new = config_identity(with_fusion(late_skip=True, mixup=0.4), "nsga2")
    assert new["fusion.late_skip"] is True and new["fusion.mixup"] == 0.4
    assert differing_keys(ident, new) == ["fusion.late_skip", "fusion.mixup"]
