"""The search CLI: bad inputs give one line and exit 2; search, status and resume end to end."""

from __future__ import annotations

import json

import pytest
import yaml

from harmonic_nas.cli import main


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    for f in fragments:
        assert f in lines[0], lines[0]


def test_search_then_status_then_resume(make_config, synthetic_env, capsys) -> None:
    path, cfg = make_config()
    code, out, err = run_cli(capsys, "search", str(path))
    assert code == 0, err
    assert "8/8 candidates complete" in out
    assert (cfg.run_path / "pareto.json").is_file()
    code, out, err = run_cli(capsys, "status", str(cfg.run_path))
    assert code == 0, err
    assert "candidates 8/8 complete" in out and "Pareto front" in out
    # a finished study says what to deploy: the recommended member of pareto.json
    recommended = json.loads((cfg.run_path / "pareto.json").read_text())["recommended"]
    assert f"recommended: {recommended['id']}, " in out
    code, out, _ = run_cli(capsys, "status", str(cfg.run_path), "--json")
    (status,) = json.loads(out)
    assert status["recommended"] == recommended["id"]
    assert status["deploy"] == [f"recommended: {recommended['id']}, {recommended['reason']}"]
    code, out, _ = run_cli(capsys, "status", str(cfg.run_path), "--all")
    assert code == 0 and "all candidates" in out
    # rerun = resume: nothing new, same files
    before = json.loads((cfg.run_path / "pareto.json").read_text())
    code, out, err = run_cli(capsys, "search", str(path))
    assert code == 0, err
    assert json.loads((cfg.run_path / "pareto.json").read_text())["members"] == before["members"]


def test_changed_config_is_refused_with_resume_and_rename_hints(
    make_config, synthetic_env, capsys
) -> None:
    path, _ = make_config()
    assert run_cli(capsys, "search", str(path))[0] == 0
    data = yaml.safe_load(path.read_text())
    data["search"]["mutation_prob"] = 0.3
    path.write_text(yaml.safe_dump(data))
    code, _, err = run_cli(capsys, "search", str(path))
    assert_one_line_error(code, err, "another config", "--study-name")
    code, _out, err = run_cli(capsys, "search", str(path), "--study-name", "syn-mut")
    assert code == 0, err


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("mongodb://localhost/x", "unsupported storage URL"),
        ("sqlite:////proc/nope/deeper/study.db", "cannot open study storage"),
        ("postgresql://u:secret@127.0.0.1:{port}/db", "cannot open study storage"),
    ],
)
def test_bad_or_unreachable_storage(
    make_config, synthetic_env, capsys, url: str, fragment: str
) -> None:
    path, _ = make_config()
    code, _, err = run_cli(capsys, "search", str(path), "--storage", url.format(port=free_port()))
    assert_one_line_error(code, err, fragment)
    assert "secret" not in err  # passwords are never printed


def test_population_below_two(make_config, synthetic_env, capsys) -> None:
    path, _ = make_config()
    data = yaml.safe_load(path.read_text())
    data["search"]["population"] = 1
    path.write_text(yaml.safe_dump(data))
    code, _, err = run_cli(capsys, "search", str(path))
    assert_one_line_error(code, err, "population", "at least 2")


def test_unmeetable_budget_one_line(make_config, synthetic_env, capsys) -> None:
    path, _ = make_config(energy_budget_mj=0.01)
    code, _, err = run_cli(capsys, "search", str(path))
    assert_one_line_error(code, err, "no architecture can meet the energy budget")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--strategy", "hill-climb"], "unknown search strategy"),
        (["--workers", "0"], "--workers must be at least 1"),
    ],
)
def test_bad_options(make_config, synthetic_env, capsys, args: list[str], fragment: str) -> None:
    path, _ = make_config()
    code, _, err = run_cli(capsys, "search", str(path), *args)
    assert_one_line_error(code, err, fragment)


def test_bad_problem_factory_env(make_config, monkeypatch, capsys) -> None:
    path, _ = make_config()
    monkeypatch.setenv("HARMONIC_NAS_SEARCH_PROBLEM", "no.such.module:factory")
    code, _, err = run_cli(capsys, "search", str(path))
    assert_one_line_error(code, err, "cannot import search problem factory")


def test_status_of_a_run_without_search(make_config, capsys) -> None:
    _, cfg = make_config()
    from harmonic_nas.config import save_resolved

    save_resolved(cfg)
    code, _, err = run_cli(capsys, "status", str(cfg.run_path))
    assert_one_line_error(code, err, "harmonic-nas search")
    code, _, err = run_cli(capsys, "status", str(cfg.run_path.parent / "nothing"))
    assert_one_line_error(code, err, "not a run directory")
