"""``harmonic-nas search`` decides before it works (issue 14 item 3): a config that differs from
the finished study's is refused in one line before the estimate, the dataset or the problem is
built, and nothing in the run directory changes."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from harmonic_nas.cli import main
from harmonic_nas.search import run_search
from harmonic_nas.search.storage import StorageError
from harmonic_nas.testing.synthetic_problem import SyntheticFactory
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
