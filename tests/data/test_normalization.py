"""Per-channel standardisation: train statistics only, constant channels floored, modes per kind."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from harmonic_nas.config import parse_config
from harmonic_nas.data import build_dataset, default_mode, load_dataset, normalization
from harmonic_nas.data.normalization import normalize_by_train, restandardise
from harmonic_nas.data.types import ModalitySpec, Split
from harmonic_nas.errors import DataError

SIGNAL = ModalitySpec("accel", "signal", (3, 16))
TABLE = ModalitySpec("table", "vector", (4,))


def _splits(seed: int = 0) -> dict[str, Split]:
    """An accelerometer-like (3, 16) signal (z carries the 9.81 gravity offset) and a table whose
    features have very different scales; val / test drawn from shifted distributions."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, (split, n) in enumerate((("train", 40), ("val", 12), ("test", 12))):
        sig = torch.randn(n, 3, 16, generator=g) * torch.tensor([0.5, 2.0, 0.1]).view(3, 1)
        sig = sig + torch.tensor([0.0, 1.0, 9.81]).view(3, 1) + 5.0 * k
        tab = torch.randn(n, 4, generator=g) * torch.tensor([1.0, 1000.0, 0.01, 5.0]) + 3.0 * k
        out[split] = Split({"accel": sig, "table": tab}, torch.arange(n) % 2)
    return out


def test_defaults_per_kind() -> None:
    assert default_mode("signal") == "channel" and default_mode("vector") == "channel"
    assert default_mode("image") == "scalar" and default_mode("audio") == "scalar"


def test_channel_statistics_come_from_train_only() -> None:
    splits = _splits()
    raw_train = {m: t.clone().double() for m, t in splits["train"].inputs.items()}
    stats = normalize_by_train(splits, [SIGNAL, TABLE], "t")
    assert stats["accel"]["mode"] == "channel" and len(stats["accel"]["mean"]) == 3
    want_mean = raw_train["accel"].mean(dim=(0, 2))
    want_std = raw_train["accel"].transpose(0, 1).reshape(3, -1).std(dim=1)
    assert np.allclose(stats["accel"]["mean"], want_mean.numpy(), atol=1e-9)
    assert np.allclose(stats["accel"]["std"], want_std.numpy(), atol=1e-9)
    assert stats["accel"]["mean"][2] == pytest.approx(9.81, abs=0.05)
    assert np.allclose(stats["table"]["mean"], raw_train["table"].mean(0).numpy(), atol=1e-9)
    # every train channel / feature is now zero-mean, unit-std (no channel squashes the others)
    x = splits["train"].inputs["accel"].double()
    assert torch.allclose(x.mean(dim=(0, 2)), torch.zeros(3, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(
        x.transpose(0, 1).reshape(3, -1).std(dim=1), torch.ones(3, dtype=torch.float64), atol=1e-5
    )
    # changing val / test changes no statistic
    other = _splits()
    other["val"].inputs["accel"] *= 100.0
    other["test"].inputs["table"] += 1e6
    assert normalize_by_train(other, [SIGNAL, TABLE], "t") == stats


def test_scalar_mode_keeps_one_mean_and_std() -> None:
    stats = normalize_by_train(_splits(), [SIGNAL, TABLE], "t", {"accel": "scalar"})
    assert stats["accel"]["mode"] == "scalar" and isinstance(stats["accel"]["mean"], float)
    assert stats["table"]["mode"] == "channel"


def test_constant_channel_is_floored_with_a_warning(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(normalization, "_WARNED", set())
    splits = _splits()
    splits["train"].inputs["table"][:, 2] = 7.0
    with caplog.at_level(logging.WARNING, logger="harmonic_nas.data.normalization"):
        stats = normalize_by_train(splits, [SIGNAL, TABLE], "t")
    assert stats["table"]["std"][2] == 1.0 and stats["table"]["mean"][2] == pytest.approx(7.0)
    assert torch.all(splits["train"].inputs["table"][:, 2] == 0.0)
    msg = " ".join(r.getMessage() for r in caplog.records)
    assert "'table'" in msg and "feature 2" in msg and "floored" in msg


def test_constant_channel_warning_once_per_process(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(normalization, "_WARNED", set())

    def load(constant: int) -> list[str]:
        splits = _splits()
        splits["train"].inputs["table"][:, constant] = 7.0
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="harmonic_nas.data.normalization"):
            stats = normalize_by_train(splits, [SIGNAL, TABLE], "t")
        assert stats["table"]["std"][constant] == 1.0  # floored every time
        return [r.levelname for r in caplog.records if "constant" in r.getMessage()]

    assert load(2) == ["WARNING"]
    assert load(2) == ["DEBUG"]  # the same data loaded again: logged, not repeated as a warning
    assert load(3) == ["WARNING"]  # another constant feature is named


def test_constant_modality_is_an_error() -> None:
    splits = _splits()
    splits["train"].inputs["accel"] = torch.full((40, 3, 16), 2.0)
    with pytest.raises(
        DataError, match=r"modality 'accel' is constant in split 'train' \(every value is 2\)"
    ):
        normalize_by_train(splits, [SIGNAL, TABLE], "t")


def test_restandardise_equals_a_direct_channel_standardisation() -> None:
    direct = _splits()
    want = normalize_by_train(direct, [SIGNAL, TABLE], "t")
    scalar = _splits()
    stats = normalize_by_train(scalar, [SIGNAL, TABLE], "t", {"accel": "scalar", "table": "scalar"})
    changed = restandardise(scalar, [SIGNAL, TABLE], stats, {"accel": "channel"}, "t")
    assert changed == ["accel"]
    assert np.allclose(stats["accel"]["mean"], want["accel"]["mean"], atol=1e-6)
    assert np.allclose(stats["accel"]["std"], want["accel"]["std"], rtol=1e-6)
    for split in ("train", "val", "test"):
        assert torch.allclose(
            scalar[split].inputs["accel"], direct[split].inputs["accel"], atol=1e-4
        )
    assert restandardise(scalar, [SIGNAL, TABLE], stats, {"accel": "channel"}, "t") == []


def _signal_npz(root: Path, rank_ok: bool = True) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 30), ("val", 9), ("test", 9)):
        accel = rng.standard_normal((n, 3, 32)) + np.array([0.0, 0.0, 9.81])[:, None]
        if not rank_ok:
            accel = accel.reshape(n, 3, 4, 8)
        np.savez(
            root / f"{split}.npz",
            accel=accel.astype(np.float32),
            table=rng.standard_normal((n, 5)) * np.array([1, 10, 100, 1000, 1]),
            labels=np.arange(n) % 3,
        )
    return root


def _cfg(root: Path, **accel: Any) -> Any:
    return parse_config(
        {
            "name": "t",
            "dataset": {"name": "npz", "path": str(root)},
            "modalities": {
                "accel": {"preset": "mbv3-1d", "shape": [3, 32], **accel},
                "table": {"preset": "maxout", "shape": [5]},
            },
        }
    )


def test_npz_signal_kind_keeps_c_t_and_is_standardised_per_channel(tmp_path: Path) -> None:
    ds = build_dataset("npz", path=_signal_npz(tmp_path / "d"), use_cache=False)
    spec = {m.name: m for m in ds.modalities}
    assert spec["accel"].kind == "signal" and spec["accel"].shape == (3, 32)
    assert spec["table"].kind == "vector"
    norm = ds.meta["normalization"]
    assert norm["accel"]["mode"] == "channel" and norm["accel"]["mean"][2] == pytest.approx(
        9.81, abs=0.1
    )
    assert norm["table"]["mode"] == "channel" and len(norm["table"]["std"]) == 5


def test_npz_signal_of_wrong_rank_is_one_line(tmp_path: Path) -> None:
    root = _signal_npz(tmp_path / "d", rank_ok=False)
    with pytest.raises(DataError, match=r"signal modality 'accel' .* \(N, channels, time\)"):
        build_dataset("npz", path=root, options={"kinds": "accel:signal"}, use_cache=False)


def test_config_chooses_the_mode_per_modality(tmp_path: Path) -> None:
    root = _signal_npz(tmp_path / "d")
    default = load_dataset(_cfg(root))
    scalar = load_dataset(_cfg(root, normalization="scalar"))
    assert default.meta["normalization"]["accel"]["mode"] == "channel"
    assert scalar.meta["normalization"]["accel"]["mode"] == "scalar"
    assert scalar.meta["fingerprint"] != default.meta["fingerprint"]
    x = scalar.split("train").inputs["accel"].double()
    assert float(x.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(x[:, 2].mean()) > 1.0  # one scalar: the z offset survives
