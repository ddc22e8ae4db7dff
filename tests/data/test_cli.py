"""``harmonic-nas data ...``: output, and every bad input -> exit code 2, one line, no traceback."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from harmonic_nas.cli import main

from .conftest import TINY_AV, make_avmnist, make_npz

TINY = [x for k, v in TINY_AV.items() for x in ("--option", f"{k}={v}")]


PROGRESS = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} ")


def _one_line_error(capsys: pytest.CaptureFixture[str], code: int, needle: str) -> None:
    out = capsys.readouterr()
    assert code == 2
    # plain timestamped progress lines (stderr is not a terminal) may come before the error
    lines = [ln for ln in out.err.splitlines() if ln.strip() and not PROGRESS.match(ln)]
    assert len(lines) == 1, out.err
    assert lines[0].startswith("error: ") and needle in lines[0]
    assert "Traceback" not in out.err + out.out


def test_data_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("av-digits", "soundmnist", "avmnist", "mmimdb", "npz"):
        assert name in out


def test_data_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "--help"]) == 0
    out = capsys.readouterr().out
    assert "list" in out and "info" in out and "build" in out
    assert main(["data", "build", "--help"]) == 0
    assert "--option" in capsys.readouterr().out


def test_data_build_av_digits_then_cached(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "build", "av-digits", *TINY, "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "image 1x28x28" in out and "audio 1x20x20" in out and "train 40" in out
    assert "cached in" in out
    assert main(["data", "build", "av-digits", *TINY, "--seed", "3", "--force"]) == 0


def test_data_info_av_digits_shows_everything(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "info", "av-digits", *TINY]) == 0
    out = capsys.readouterr().out
    for needle in (
        "options",
        "pca_energy",
        "modalities",
        "1x20x20",
        "split sizes",
        "class balance",
        "7 seven",
        "value ranges",
        "content hash",
    ):
        assert needle in out, needle


def test_data_info_real_dataset_without_path_shows_layout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["data", "info", "avmnist"]) == 0
    out = capsys.readouterr().out
    assert "train_data.npy" in out and "val_size" in out and "--path" in out


def test_data_info_real_dataset_with_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_avmnist(tmp_path / "av")
    assert (
        main(
            [
                "data",
                "info",
                "avmnist",
                "--path",
                str(root),
                "--option",
                "val_size=20",
                "-o",
                "audio_size=28",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "1x28x28" in out and "40" in out and "20" in out


def test_bad_unknown_dataset(capsys: pytest.CaptureFixture[str]) -> None:
    _one_line_error(capsys, main(["data", "build", "cifar"]), "unknown dataset 'cifar'")


def test_bad_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _one_line_error(capsys, main(["data", "build", "npz"]), "needs a path")
    _one_line_error(
        capsys, main(["data", "build", "npz", "--path", str(tmp_path / "x")]), "does not exist"
    )


def test_bad_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_avmnist(tmp_path / "av")
    (root / "train_labels.npy").unlink()
    _one_line_error(
        capsys, main(["data", "build", "avmnist", "--path", str(root)]), "expected train_labels.npy"
    )


def test_bad_option(capsys: pytest.CaptureFixture[str]) -> None:
    _one_line_error(
        capsys,
        main(["data", "build", "av-digits", "--option", "colour=red"]),
        "unknown option 'colour'",
    )
    _one_line_error(
        capsys,
        main(["data", "build", "av-digits", "--option", "nonsense"]),
        "not of the form key=value",
    )
    _one_line_error(
        capsys,
        main(["data", "info", "av-digits", "-o", "n_frames=0"]),
        "option 'n_frames' = 0 is out of range",
    )


def test_bad_different_lengths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_npz(tmp_path / "n", train={"vec": np.zeros((29, 5))})
    _one_line_error(
        capsys,
        main(["data", "build", "npz", "--path", str(root)]),
        "has 29 samples but there are 30 labels",
    )


def test_bad_labels_and_missing_class(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_npz(tmp_path / "n")
    _one_line_error(
        capsys,
        main(["data", "build", "npz", "--path", str(root), "-o", "num_classes=2"]),
        "must lie in [0, 1]",
    )
    root2 = make_npz(tmp_path / "m", val={"labels": np.zeros(10, dtype=np.int64)})
    _one_line_error(
        capsys, main(["data", "info", "npz", "--path", str(root2)]), "is missing from split 'val'"
    )


def test_bad_nan_and_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = np.zeros((10, 1, 8, 8))
    x[0, 0, 0, 0] = np.nan
    root = make_npz(tmp_path / "n", val={"pixels": x})
    _one_line_error(capsys, main(["data", "build", "npz", "--path", str(root)]), "NaN/Inf")
    root2 = make_npz(tmp_path / "e", sizes=(30, 10, 0))
    _one_line_error(
        capsys, main(["data", "build", "npz", "--path", str(root2)]), "split 'test' is empty"
    )


def _write_cfg(tmp_path: Path, image_shape: list[int]) -> Path:
    import yaml

    cfg = {
        "name": "t",
        "seed": 4,
        "dataset": {"name": "av-digits", "options": TINY_AV},
        "modalities": {
            "image": {"preset": "avmnist", "shape": image_shape},
            "audio": {"preset": "avmnist", "shape": [1, 20, 20]},
        },
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_build_from_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write_cfg(tmp_path, [1, 28, 28])
    assert main(["data", "build", "--config", str(path), "-o", "test_per_class=3"]) == 0
    assert "test 30" in capsys.readouterr().out


def test_bad_rank_versus_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write_cfg(tmp_path, [28, 28])
    _one_line_error(
        capsys,
        main(["data", "build", "--config", str(path)]),
        "modality 'image' has rank 3 [1, 28, 28] in dataset 'av-digits' but rank 2 [28, 28] in the config",
    )


def test_bad_name_and_config_disagree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write_cfg(tmp_path, [1, 28, 28])
    _one_line_error(
        capsys, main(["data", "info", "npz", "-c", str(path)]), "differs from dataset.name"
    )
    _one_line_error(capsys, main(["data", "build"]), "give a dataset NAME or --config")
