"""``harmonic-nas search`` decides before it works (issue 14 item 3): a config that differs from
the finished study's is refused in one line before the estimate, the dataset or the problem is
built, and nothing in the run directory changes."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from harmonic_nas.cli import main
from harmonic_nas.errors import StageMissingError
from harmonic_nas.search import run_search
from harmonic_nas.search.storage import StorageError
from harmonic_nas.testing.synthetic_problem import SyntheticFactory, SyntheticProblem
from tests.tree import tree


def _forbid_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any work after the decision (estimate, dataset, problem) raises."""

    def reached(what: str) -> Any:
        def fail(*_a: Any, **_k: Any) -> None:
            raise RuntimeError(f"{what} was reached before the refusal")

        return fail

    monkeypatch.setattr("harmonic_nas.preflight.estimate_for", reached("the estimate"))
    monkeypatch.setattr("harmonic_nas.data.load_dataset", reached("the dataset build"))
    monkeypatch.setattr(
        "harmonic_nas.search.context.SearchContext.build_problem", reached("the problem build")
    )


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [("fusion", "C", 64), ("pretrain", "epochs", 3)],
)
def test_changed_config_is_refused_before_any_work(
    make_config, synthetic_env, monkeypatch, capsys, section: str, key: str, value: int
) -> None:
    path, cfg = make_config()
    assert main(["search", str(path)]) == 0
    capsys.readouterr()
    before = tree(cfg.run_path)
    data = yaml.safe_load(path.read_text())
    data.setdefault(section, {})[key] = value
    path.write_text(yaml.safe_dump(data))
    _forbid_work(monkeypatch)

    code = main(["search", str(path)])
    out, err = capsys.readouterr()
    assert code == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "another config" in lines[0] and f"{section}.{key}" in lines[0]
    assert "--study-name" in lines[0] and "search.generations" in lines[0]
    assert "estimated" not in out.lower()  # the estimate comes after the decision
    assert tree(cfg.run_path) == before


def test_library_refuses_before_building_the_problem(make_config, monkeypatch) -> None:
    _, cfg = make_config()
    run_search(cfg, problem=SyntheticFactory())
    before = tree(cfg.run_path)
    _forbid_work(monkeypatch)
    changed = cfg.model_copy(update={"fusion": cfg.fusion.model_copy(update={"C": 64})})
    with pytest.raises(StorageError, match=r"another config \(it differs in fusion\.C\)"):
        run_search(changed, problem=SyntheticFactory())
    assert tree(cfg.run_path) == before


def test_same_config_and_new_run_still_go_through(make_config, synthetic_env, capsys) -> None:
    path, cfg = make_config()
    assert not (cfg.run_path / "study.db").exists()
    assert main(["search", str(path)]) == 0  # no study yet: nothing to refuse
    assert main(["search", str(path)]) == 0  # same config: resumes
    data = yaml.safe_load(path.read_text())
    data["search"]["generations"] = 3  # a budget key extends the study
    path.write_text(yaml.safe_dump(data))
    code = main(["search", str(path)])
    _out, err = capsys.readouterr()
    assert code == 0, err


class _NotReady(SyntheticProblem):
    """The synthetic problem whose inputs are missing (as the real one's deleted supernet)."""

    def check_ready(self) -> None:
        raise StageMissingError("no pretrained supernet for modality 'audio'")


def _missing_supernets(cfg: Any) -> SyntheticProblem:
    return _NotReady(cfg)


def _study_state(cfg: Any) -> tuple[dict[str, Any], list[str]]:
    import optuna

    from harmonic_nas.search.storage import default_storage_url, open_storage

    rdb = open_storage(default_storage_url(cfg), read_only=True)
    try:
        study = optuna.load_study(study_name=cfg.name, storage=rdb)
        return dict(study.user_attrs), [t.state.name for t in study.trials]
    finally:
        rdb.engine.dispose()


def test_a_refused_extension_changes_neither_the_budget_nor_the_trials(make_config) -> None:
    """Issue 25 (red-team class 5): with a supernet missing, a search with another population
    is refused before the study's budget is raised or a trial fails."""
    _, cfg = make_config()
    run_search(cfg, problem=SyntheticFactory())
    before, attrs = tree(cfg.run_path), _study_state(cfg)
    bigger = cfg.model_copy(
        update={"search": cfg.search.model_copy(update={"population": 6, "generations": 3})}
    )
    with pytest.raises(StageMissingError, match="no pretrained supernet"):
        run_search(bigger, problem=_missing_supernets)
    assert _study_state(cfg) == attrs
    assert tree(cfg.run_path) == before


def test_the_real_problem_checks_its_supernets_before_the_study(make_config) -> None:
    from harmonic_nas.search.evaluator import HarmonicProblem

    _, cfg = make_config()
    with pytest.raises(StageMissingError, match=r"no pretrained supernet for modality '\w+'"):
        HarmonicProblem(cfg).check_ready()


def test_a_new_search_that_is_refused_leaves_no_study_database(make_config) -> None:
    _, cfg = make_config()
    with pytest.raises(StageMissingError):
        run_search(cfg, problem=_missing_supernets)
    assert not (cfg.run_path / "study.db").exists()
    assert not (cfg.run_path / "config.yaml").exists()
