"""``predict`` on exported files: inputs from .npz, probabilities, and one-line input errors."""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from harmonic_nas.cli import main
from harmonic_nas.errors import DataError
from harmonic_nas.results import (
    InputSpec,
    ModelFileError,
    check_inputs,
    load_exported,
    predict,
    probabilities,
)


class _TwoInputs(nn.Module):
    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.a = nn.Linear(6, n_classes)
        self.b = nn.Linear(4, n_classes)

    def forward(self, image: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return self.a(image.flatten(1)) + self.b(audio.flatten(1))


def _meta(task: str = "classification", n: int = 3) -> dict[str, object]:
    return {
        "schema_version": 1,
        "inputs": [
            {"name": "image", "kind": "image", "shape": [1, 2, 3], "dtype": "float32"},
            {"name": "audio", "kind": "audio", "shape": [4], "dtype": "float32"},
        ],
        "input_order": ["image", "audio"],
        "task": task,
        "num_classes": n,
        "class_names": ["cat", "dog", "bird"][:n],
        "threshold": 0.5 if task == "multilabel" else None,
    }


@pytest.fixture
def exported(tmp_path: Path) -> tuple[Path, nn.Module]:
    torch.manual_seed(3)
    model = _TwoInputs(3).eval()
    d = tmp_path / "m"
    d.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, (torch.randn(1, 1, 2, 3), torch.randn(1, 4)))
        torch.jit.save(traced, str(d / "model.pt"))
    (d / "preprocess.json").write_text(json.dumps(_meta()))
    return d / "model.pt", model


def test_probabilities_softmax_and_sigmoid() -> None:
    z = np.array([[0.0, 0.0, np.log(2.0)], [1000.0, 0.0, -1000.0]])
    p = probabilities(z, "classification")
    np.testing.assert_allclose(p[0], [0.25, 0.25, 0.5])
    np.testing.assert_allclose(p[1], [1.0, 0.0, 0.0])
    s = probabilities(np.array([[0.0, 100.0, -1000.0, 1.0]]), "multilabel")
    np.testing.assert_allclose(s, [[0.5, 1.0, 0.0, 1 / (1 + np.exp(-1.0))]], atol=1e-12)


def test_predict_batch_and_single_sample(exported: tuple[Path, nn.Module], tmp_path: Path) -> None:
    path, model = exported
    rng = np.random.default_rng(0)
    img, aud = rng.normal(size=(4, 1, 2, 3)), rng.normal(size=(4, 4))  # float64 is cast
    batch, single = tmp_path / "b.npz", tmp_path / "s.npz"
    np.savez(batch, image=img, audio=aud)
    np.savez(single, image=img[2], audio=aud[2])
    pred = predict(path, [batch, single])
    assert pred.samples == ["b.npz[0]", "b.npz[1]", "b.npz[2]", "b.npz[3]", "s.npz[0]"]
    with torch.inference_mode():
        ref = torch.softmax(
            model(torch.tensor(img, dtype=torch.float32), torch.tensor(aud, dtype=torch.float32)), 1
        ).numpy()
    np.testing.assert_allclose(pred.probabilities[:4], ref, atol=1e-6)
    np.testing.assert_allclose(pred.probabilities[4], ref[2], atol=1e-6)
    assert pred.predicted[0] == [["cat", "dog", "bird"][int(ref[0].argmax())]]
    # a mapping works too
    again = predict(path, {"image": img, "audio": aud})
    np.testing.assert_allclose(again.probabilities, ref, atol=1e-6)


def test_multilabel_uses_sigmoid_and_threshold(exported: tuple[Path, nn.Module]) -> None:
    path, model = exported
    (path.parent / "preprocess.json").write_text(json.dumps(_meta("multilabel")))
    x = {"image": np.ones((2, 1, 2, 3), np.float32), "audio": np.zeros((2, 4), np.float32)}
    pred = predict(path, x)
    with torch.inference_mode():
        logits = model(torch.from_numpy(x["image"]), torch.from_numpy(x["audio"]))
    np.testing.assert_allclose(pred.probabilities, torch.sigmoid(logits).numpy(), atol=1e-6)
    names = ["cat", "dog", "bird"]
    expected = [
        [names[j] for j in range(3) if torch.sigmoid(logits)[i, j] >= 0.5] for i in range(2)
    ]
    assert pred.predicted == expected


def test_embedded_metadata_when_preprocess_json_is_gone(tmp_path: Path) -> None:
    model = _TwoInputs(3).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, (torch.randn(1, 1, 2, 3), torch.randn(1, 4)))
        torch.jit.save(
            traced,
            str(tmp_path / "model.pt"),
            _extra_files={"preprocess.json": json.dumps(_meta())},
        )
    m = load_exported(tmp_path / "model.pt")
    assert [i.name for i in m.inputs] == ["image", "audio"]


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"image": np.zeros((2, 1, 2, 3))}, "modality 'audio' is missing"),
        (
            {"image": np.zeros((2, 1, 2, 3)), "audio": np.zeros((2, 4)), "text": np.zeros(3)},
            "unknown modality 'text'; this model takes 'image', 'audio'",
        ),
        (
            {"image": np.zeros((2, 3, 2)), "audio": np.zeros((2, 4))},
            "modality 'image' has shape (2, 3, 2); expected (1, 2, 3) for one sample or (N, 1, 2, 3)",
        ),
        (
            {"image": np.zeros((2, 1, 2, 3)), "audio": np.zeros((3, 4))},
            "different numbers of samples image=2, audio=3",
        ),
        (
            {"image": np.zeros((1, 2, 3)), "audio": np.array([1.0, np.nan, 0, 0])},
            "'audio' contains NaN",
        ),
        ({"image": np.array(["a"]), "audio": np.zeros(4)}, "non-numeric dtype"),
    ],
)
def test_bad_inputs(arrays: dict[str, np.ndarray], message: str) -> None:
    specs = [InputSpec("image", (1, 2, 3)), InputSpec("audio", (4,))]
    with pytest.raises(DataError, match=re.escape(message)):
        check_inputs(arrays, specs, source="x.npz")


@pytest.mark.parametrize(
    ("arrays", "needle"),
    [
        ({"image": np.zeros((1, 2, 3)), "audio": np.zeros(5)}, "modality 'audio' has shape (5,)"),
        ({"image": np.zeros((1, 2, 3)), "sound": np.zeros(4)}, "unknown modality 'sound'"),
        ({"image": np.zeros((1, 2, 3))}, "modality 'audio' is missing"),
    ],
)
def test_cli_bad_inputs_one_line_exit_2(
    exported: tuple[Path, nn.Module],
    tmp_path: Path,
    arrays: dict[str, np.ndarray],
    needle: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, _ = exported
    f = tmp_path / "bad.npz"
    np.savez(f, **arrays)  # type: ignore[arg-type]
    assert main(["predict", str(path), "--input", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and needle in err and str(f) in err
    assert len(err.splitlines()) == 1


def test_cli_missing_files(
    exported: tuple[Path, nn.Module], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = exported
    assert main(["predict", str(path), "--input", str(tmp_path / "none.npz")]) == 2
    assert "input file not found" in capsys.readouterr().err
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert main(["predict", str(path), "--input", str(tmp_path / "junk.npz")]) == 2
    assert "as .npz" in capsys.readouterr().err
    assert (
        main(["predict", str(tmp_path / "nothing.pt"), "--input", str(tmp_path / "junk.npz")]) == 2
    )
    assert "model file not found" in capsys.readouterr().err
    assert main(["predict", str(tmp_path), "--input", str(tmp_path / "junk.npz")]) == 2
    assert "holds no exported model" in capsys.readouterr().err


def test_corrupt_model_and_missing_metadata(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"garbage")
    with pytest.raises(ModelFileError, match="is not a valid ONNX model"):
        load_exported(tmp_path / "model.onnx")
    (tmp_path / "model.pt").write_bytes(b"garbage")
    with pytest.raises(ModelFileError, match="is not a TorchScript model"):
        load_exported(tmp_path / "model.pt")
    model = _TwoInputs(3).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(
            torch.jit.trace(model, (torch.randn(1, 1, 2, 3), torch.randn(1, 4))),
            str(tmp_path / "model.pt"),
        )
    with pytest.raises(ModelFileError, match=r"no preprocess\.json beside"):
        load_exported(tmp_path / "model.pt")


def test_probability_table_layouts(exported: tuple[Path, nn.Module]) -> None:
    from rich.console import Console

    from harmonic_nas.cli.results import _prob_table

    path, _ = exported
    pred = predict(path, {"image": np.ones((2, 1, 2, 3)), "audio": np.ones((2, 4))})

    def render(width: int, top: int) -> str:
        console = Console(width=width, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
        console.print(_prob_table(pred, top, width))
        return console.export_text()

    wide = render(120, 3)
    assert all(n in wide for n in ("cat", "dog", "bird"))  # one column per class
    assert f"{pred.probabilities[1, 2]:.4f}" in wide
    narrow = render(30, 1)
    assert "top 1 classes" in narrow.replace("\n", " ") or "top 1" in narrow
