"""Config mistakes found before any stage, all at once (issue 13 item 4)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from harmonic_nas.cli import main
from harmonic_nas.config import parse_config
from harmonic_nas.preflight import (
    PreflightError,
    check_experiment,
    estimate_for,
    estimate_search,
)

PROGRESS = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")


def _cfg(tmp_path: Path, **patch: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "pf",
        "run_dir": str(tmp_path / "runs"),
        "dataset": {"name": "av-digits"},
        "modalities": {
            "image": {"preset": "avmnist", "shape": [1, 28, 28]},
            "audio": {"preset": "avmnist", "shape": [1, 20, 20]},
        },
    }
    data.update(patch)
    return data


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _error_lines(err: str) -> list[str]:
    return [ln for ln in err.strip().splitlines() if ln.strip() and not PROGRESS.match(ln)]


def test_a_sound_config_passes(tmp_path: Path) -> None:
    check_experiment(parse_config(_cfg(tmp_path)))


def test_preset_that_does_not_fit_a_vector_fails_up_front(tmp_path: Path) -> None:
    data = _cfg(tmp_path, dataset={"name": "npz", "path": str(tmp_path)})
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        np.savez(
            tmp_path / f"{split}.npz",
            image=rng.random((6, 1, 28, 28), dtype=np.float32),
            vec=rng.random((6, 32), dtype=np.float32),
            labels=np.arange(6) % 2,
        )
    data["modalities"] = {
        "image": {"preset": "avmnist", "shape": [1, 28, 28]},
        "vec": {"preset": "avmnist", "shape": [32]},
    }
    with pytest.raises(PreflightError) as info:
        check_experiment(parse_config(data))
    assert len(info.value.problems) == 1
    msg = str(info.value)
    assert "\n" not in msg
    assert "modality 'vec': preset avmnist is a CNN" in msg and "'maxout'" in msg

    data["modalities"]["vec"] = {"preset": "maxout", "shape": [31]}  # shape from the npz header
    with pytest.raises(PreflightError, match=r"shape \[32\] in dataset 'npz' but \[31\]"):
        check_experiment(parse_config(data))
    data["modalities"]["vec"]["shape"] = [32]
    check_experiment(parse_config(data))


def test_every_problem_is_listed_once(tmp_path: Path) -> None:
    data = _cfg(
        tmp_path,
        device={"name": "no-such-board"},
        fusion={"ops": ["Sum", "Foo"]},
    )
    data["modalities"]["image"]["preset"] = "resnet"
    data["modalities"]["audio"]["shape"] = [1, 20, 21]
    with pytest.raises(PreflightError) as info:
        check_experiment(parse_config(data), source="c.yaml")
    problems = info.value.problems
    assert len(problems) == 4, problems
    joined = "\n".join(problems)
    assert "modalities.image.preset: unknown backbone preset 'resnet'" in joined
    assert "shape [1, 20, 20] in dataset 'av-digits' but [1, 20, 21]" in joined
    assert "unknown fusion operator 'Foo'" in joined
    assert "unknown device 'no-such-board'" in joined
    lines = str(info.value).splitlines()
    assert lines[0].startswith("config c.yaml: 4 problems")
    assert [ln[4:] for ln in lines[1:]] == problems


def test_unknown_dataset_and_bad_options(tmp_path: Path) -> None:
    with pytest.raises(PreflightError, match="unknown dataset 'nope'"):
        check_experiment(parse_config(_cfg(tmp_path, dataset={"name": "nope"})))
    bad = _cfg(tmp_path, dataset={"name": "av-digits", "options": {"n_mfcc": 10, "bogus": 1}})
    with pytest.raises(PreflightError, match="bogus"):
        check_experiment(parse_config(bad))
    # options change the expected shape: 10 MFCC -> audio (1, 10, 20)
    good = _cfg(tmp_path, dataset={"name": "av-digits", "options": {"n_mfcc": 10}})
    with pytest.raises(PreflightError, match=r"set modalities.audio.shape to \[1, 10, 20\]"):
        check_experiment(parse_config(good))


def test_device_table_is_needed_only_for_the_stages_that_cost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARMONIC_NAS_CACHE", str(tmp_path / "cache"))
    cfg = parse_config(_cfg(tmp_path, device={"name": "jetson-tx2"}))
    with pytest.raises(PreflightError, match=r"no LUT for device 'jetson-tx2'.*lut import"):
        check_experiment(cfg)
    check_experiment(cfg, stages=("data", "pretrain"))


def test_run_lists_all_problems_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _cfg(tmp_path, fusion={"ops": ["Foo"]})
    data["modalities"]["image"]["shape"] = [32]
    path = _write(tmp_path, data)
    assert main(["run", str(path)]) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert lines[0].startswith(f"error: config {path}: 3 problems")
    assert len(lines) == 4 and all(ln.startswith("  - ") for ln in lines[1:])
    assert not (tmp_path / "runs").exists()  # no stage ran, nothing was written


@pytest.mark.parametrize("command", ["run", "search", "pretrain"])
def test_single_problem_is_one_line_on_every_command(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, _cfg(tmp_path))
    code = main([command, str(path), "-o", "modalities.audio.preset=avmnet"])
    err = capsys.readouterr().err
    lines = _error_lines(err)
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"error: config {path}: modalities.audio.preset: unknown backbone")
    assert "'avmnet'" in lines[0]
    assert "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_unknown_override_key_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, _cfg(tmp_path))
    assert main(["search", str(path), "-o", "search.populaton=8"]) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1
    assert "unknown key 'search.populaton' (from -o search.populaton=8)" in lines[0]


def test_pretrain_unknown_modality_is_listed_with_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _cfg(tmp_path)
    data["modalities"]["audio"]["preset"] = "nope"
    path = _write(tmp_path, data)
    assert main(["pretrain", str(path), "-m", "video", "-m", "audio"]) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert lines[0].startswith(f"error: config {path}: 2 problems")
    assert "unknown modality 'video' for --modality" in lines[1]
    assert "modalities.audio.preset" in lines[2]


def test_estimate_is_calibrated_on_the_measured_candidates(tmp_path: Path) -> None:
    two_by_two = {"cells": [2, 2], "nodes": [2, 2], "population": 4, "generations": 2}
    paper = parse_config(_cfg(tmp_path, search=two_by_two))
    est = estimate_search(paper, n_train=1050)
    assert est.candidates == 8
    assert 120 <= est.per_candidate_s <= 150  # measured: 135 s
    quick = parse_config(
        _cfg(
            tmp_path,
            search={"cells": [1, 4], "nodes": [1, 4], "population": 4, "generations": 2},
            fusion={"C": 32, "L": 4, "epochs": 3, "retrain_epochs": 3},
        )
    )
    assert 2.2 <= estimate_search(quick, n_train=1050).per_candidate_s <= 3.3  # measured: 2.7 s
    parallel = estimate_search(quick, n_train=1050, workers=2)
    assert parallel.total_s == pytest.approx(estimate_search(quick, 1050).total_s / 2)


def test_estimate_reads_the_train_size_and_is_printed(tmp_path: Path) -> None:
    data = _cfg(tmp_path, dataset={"name": "av-digits", "options": {"train_per_class": 20}})
    est = estimate_for(parse_config(data))
    assert est.n_train == 200 and est.n_train_known
    text = est.describe()
    assert text.startswith(f"estimated search cost: 64 candidates x ~{est.per_candidate_s:.0f} s")
    assert "200 train samples" in text


def test_a_fusion_split_too_small_for_the_fusion_network_fails_up_front(tmp_path: Path) -> None:
    tiny = {"name": "av-digits", "options": {"train_per_class": 2, "train_speakers": 2}}
    bad = _cfg(tmp_path, dataset=tiny, fusion={"fusion_split": 0.1})
    with pytest.raises(PreflightError, match=r"leaves 2 for the fusion network"):
        check_experiment(parse_config(bad))
    check_experiment(parse_config(_cfg(tmp_path, dataset=tiny, fusion={"fusion_split": 0.5})))
