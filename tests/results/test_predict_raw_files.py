"""From raw files to a prediction: ``--file image=digit.png --file audio=seven.wav``, dataset
split files with labels, and the raw-input graph (named arguments, in-graph standardisation)."""

from __future__ import annotations

import json
import warnings
import wave
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from PIL import Image
from torch import nn

from harmonic_nas.cli import main
from harmonic_nas.config import load_run_config
from harmonic_nas.data import load_dataset
from harmonic_nas.data.audio_features import AudioFeatures
from harmonic_nas.data.av_digits import AVDigitsOptions
from harmonic_nas.data.loaders.soundmnist import resample
from harmonic_nas.errors import DataError
from harmonic_nas.results import export, load_exported, predict
from harmonic_nas.results._model import RawInputModel, argument_names
from harmonic_nas.results._raw import load_raw_file
from harmonic_nas.results._serialise import write_onnx


def _first_id(run: Path) -> str:
    return str(json.loads((run / "pareto.json").read_text())["members"][0]["id"])


def _write_png(path: Path, size: int = 28) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    pixels = ((xx * 7 + yy * 3) % 256).astype(np.uint8)
    Image.fromarray(pixels, mode="L").save(path)
    return pixels


def _write_wav(path: Path, rate: int, seconds: float, channels: int = 1) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    x = 0.3 * np.sin(2 * np.pi * 440 * t) * np.exp(-3 * t) + 0.05 * np.sin(2 * np.pi * 97 * t)
    pcm = np.round(x * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat(pcm, channels).tobytes())
    return pcm.astype(np.float64) / 32768.0


@pytest.fixture
def exported_onnx(model_run: Path) -> Path:
    return export(model_run, _first_id(model_run), "onnx").model_path


def _recipes(model: Path) -> dict[str, dict[str, object]]:
    return {i.name: i.raw for i in load_exported(model).inputs}  # type: ignore[misc]


# --------------------------------------------------------------------------- raw files -> inputs


def test_png_becomes_pixel_values(exported_onnx: Path, tmp_path: Path) -> None:
    recipe = _recipes(exported_onnx)["image"]
    pixels = _write_png(tmp_path / "digit.png")
    x = load_raw_file(tmp_path / "digit.png", "image", recipe, (1, 28, 28))
    assert x.dtype == np.float32 and x.shape == (1, 28, 28)
    np.testing.assert_array_equal(x[0], pixels.astype(np.float32))  # 0-255, no scaling
    # a larger (RGB) picture is converted to grey and resized to 28 x 28
    Image.fromarray(np.stack([np.kron(pixels, np.ones((2, 2), np.uint8))] * 3, axis=-1)).save(
        tmp_path / "big.png"
    )
    big = load_raw_file(tmp_path / "big.png", "image", recipe, (1, 28, 28))
    assert big.shape == (1, 28, 28) and big.min() >= 0 and big.max() <= 255


def test_wav_becomes_the_dataset_features(
    exported_onnx: Path, model_run: Path, tmp_path: Path
) -> None:
    """The recipe reproduces the av-digits build: its sample rate, 1 s clips and MFCC settings."""
    recipe = _recipes(exported_onnx)["audio"]
    ds = load_dataset(load_run_config(model_run))
    rate = int(ds.meta["sample_rate"])
    wave_ = _write_wav(tmp_path / "seven.wav", rate, 0.6)
    got = load_raw_file(tmp_path / "seven.wav", "audio", recipe, (1, 20, 20))
    opts = AVDigitsOptions()
    clip = np.zeros(round(opts.clip_seconds * rate), dtype=np.float32)
    clip[: wave_.size] = wave_
    feats = AudioFeatures(rate, opts.features, opts.n_mfcc, opts.n_mels, opts.n_frames)
    expected = feats(torch.from_numpy(clip))[0].numpy()
    assert got.shape == (1, 20, 20) == tuple(ds.modality("audio").shape)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    # a stereo file at another rate is averaged and resampled to the dataset's rate
    _write_wav(tmp_path / "stereo.wav", rate // 2, 0.6, channels=2)
    other = load_raw_file(tmp_path / "stereo.wav", "audio", recipe, (1, 20, 20))
    assert other.shape == (1, 20, 20) and np.all(np.isfinite(other))


def test_resample_is_linear_interpolation() -> None:
    ramp = np.arange(10, dtype=np.float64)
    np.testing.assert_allclose(resample(ramp, 10, 20)[:19], np.arange(19) / 2)
    np.testing.assert_allclose(resample(ramp, 20, 10), ramp[::2])


def test_predict_from_png_and_wav(
    exported_onnx: Path, model_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rate = int(load_dataset(load_run_config(model_run)).meta["sample_rate"])
    pixels = _write_png(tmp_path / "digit.png")
    _write_wav(tmp_path / "seven.wav", rate, 0.6)
    files = {"image": tmp_path / "digit.png", "audio": tmp_path / "seven.wav"}
    pred = predict(exported_onnx, files=files)
    recipe = _recipes(exported_onnx)["audio"]
    arrays = {
        "image": pixels[None].astype(np.float32),
        "audio": load_raw_file(files["audio"], "audio", recipe, (1, 20, 20)),
    }
    np.testing.assert_allclose(pred.probabilities, predict(exported_onnx, arrays).probabilities)
    assert pred.probabilities.shape == (1, 10) and pred.samples == ["digit.png+seven.wav"]

    args = ["predict", str(exported_onnx), "--file", f"image={files['image']}"]
    assert main([*args, "--file", f"audio={files['audio']}"]) == 0
    out = capsys.readouterr().out
    assert "digit.png+seven.wav" in out and pred.predicted[0][0] in out
    # the TorchScript file takes the same files
    pt = export(model_run, _first_id(model_run), "torchscript").model_path
    np.testing.assert_allclose(
        predict(pt, files=files).probabilities, pred.probabilities, atol=1e-5
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--file", "image"], "is not MODALITY=FILE"),
        (["--file", "text=x.png"], "unknown modality 'text'"),
        (["--file", "image=nowhere.png"], "input file not found"),
        (["--file", "image=notes.txt"], "cannot read image"),
        (["--file", "image=digit.png"], "modality 'audio' is missing"),
        (["--file", "image=digit.png", "--input", "x.npz"], "not both"),
    ],
)
def test_bad_files_one_line_exit_2(
    exported_onnx: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    _write_png(tmp_path / "digit.png")
    (tmp_path / "notes.txt").write_text("not an image")
    assert main(["predict", str(exported_onnx), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1


# --------------------------------------------------------------------------- dataset split files


def test_predict_on_a_dataset_split_file(
    exported_onnx: Path, model_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dataset's own test.npz: labels are no input but give the accuracy; (N, H, W) images
    (as the npz loader takes them) get their channel axis."""
    ds = load_dataset(load_run_config(model_run))
    stats, test = ds.meta["normalization"], ds.split("test")
    raw = {
        m: ((test.inputs[m].double() * stats[m]["std"] + stats[m]["mean"]) * s).float().numpy()
        for m, s in (("image", 255.0), ("audio", 1.0))
    }
    labels = test.labels.numpy()
    f = tmp_path / "test.npz"
    np.savez(f, image=raw["image"][:, 0], audio=raw["audio"], labels=labels)
    pred = predict(exported_onnx, f)
    expected = float(np.mean(pred.probabilities.argmax(axis=1) == labels))
    assert pred.labels is not None and pred.metric == pytest.approx(expected)
    np.testing.assert_allclose(
        pred.probabilities,
        predict(exported_onnx, {"image": raw["image"], "audio": raw["audio"]}).probabilities,
    )
    assert main(["predict", str(exported_onnx), "--input", str(f)]) == 0
    out = capsys.readouterr().out
    right = round(expected * len(labels))
    assert f"accuracy: {expected:.4f} ({right}/{len(labels)} samples" in out
    assert "per-label recall" in out
    # --json: the same metric, the per-label scores (each class's recall) and every sample
    assert main(["predict", str(exported_onnx), "--input", str(f), "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["metric"] == "accuracy" and obj["metric_value"] == pytest.approx(expected)
    assert len(obj["samples"]) == len(labels) and len(obj["per_label"]) == len(obj["classes"])
    for j, row in enumerate(obj["per_label"]):
        mine = labels == j
        assert row["support"] == int(mine.sum())
        if mine.any():
            right_j = (pred.probabilities.argmax(axis=1) == labels) & mine
            assert row["score"] == pytest.approx(right_j.sum() / mine.sum())
    # without labels: no accuracy
    np.savez(tmp_path / "nolabels.npz", image=raw["image"], audio=raw["audio"])
    assert predict(exported_onnx, tmp_path / "nolabels.npz").metric is None


# --------------------------------------------------------------------------- the raw-input graph


class _Linear2(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Linear(3, 2)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.a(a)  # b is read by nothing: the ONNX exporter prunes it


def test_argument_names_are_identifiers() -> None:
    names = argument_names(["image", "a-b", "1x", "class", "self", "a_b"])
    assert names == ["image", "a_b", "x_1x", "x_class", "x_self", "a_b_"]
    assert all(n.isidentifier() for n in names)


def test_raw_input_model_standardises_and_names_its_inputs(tmp_path: Path) -> None:
    norm = [(1 / 255, 0.5, 0.25), (1.0, -2.0, 4.0)]
    net = _Linear2().eval()
    model = RawInputModel.build(net, ["img-1", "audio"], norm)
    a, b = torch.rand(5, 3) * 255, torch.randn(5, 2) * 4 - 2
    with torch.inference_mode():
        expected = net((a / 255 - 0.5) / 0.25, (b + 2.0) / 4.0)
        assert torch.allclose(model(img_1=a, audio=b), expected, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, (a[:1], b[:1]))
    assert [x.name for x in traced.forward.schema.arguments[1:]] == ["img_1", "audio"]
    assert torch.allclose(traced(img_1=a, audio=b), expected, atol=1e-6)

    # ONNX: inputs keep the modality names; the one nothing reads stays an input
    path = tmp_path / "m.onnx"
    write_onnx(model, (a[:1], b[:1]), path, ["img-1", "audio"], {"inputs": []})
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert [i.name for i in proto.graph.input] == ["img-1", "audio"]
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"img-1": a.numpy(), "audio": b.numpy()})[0]
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-5)


def test_load_raw_file_without_a_recipe(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", np.ones(4, dtype=np.float32))
    np.testing.assert_array_equal(load_raw_file(tmp_path / "v.npy", "v", None, (4,)), np.ones(4))
    with pytest.raises(DataError, match="shape \\(4,\\), but the model takes \\(5,\\)"):
        load_raw_file(tmp_path / "v.npy", "v", None, (5,))
    (tmp_path / "v.wav").write_bytes(b"")
    with pytest.raises(DataError, match="has no image/audio recipe"):
        load_raw_file(tmp_path / "v.wav", "v", {"type": "array"}, (4,))
