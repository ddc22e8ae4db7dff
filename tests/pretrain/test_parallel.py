"""Pretraining modalities side by side gives the same supernets as one after the other."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from harmonic_nas.config import parse_config
from harmonic_nas.data import load_dataset
from harmonic_nas.pretrain import pretrain_all, pretrain_workers, supernet_paths
from harmonic_nas.utils.io import safe_torch_load
from tests.pretrain.conftest import make_config, make_dataset


def _npz_dataset(root: Path) -> Path:
    ds = make_dataset()
    root.mkdir(parents=True)
    for name in ("train", "val", "test"):
        sp = ds.split(name)
        np.savez(
            root / f"{name}.npz",
            image=sp.inputs["image"].numpy(),
            vec=sp.inputs["vec"].numpy(),
            labels=sp.labels.numpy(),
        )
    return root


def _config(run_dir: Path, data: Path, workers: int):  # type: ignore[no-untyped-def]
    cfg = make_config(run_dir, epochs=1, workers=workers).model_dump(mode="json")
    cfg["dataset"] = {"name": "npz", "path": str(data)}
    return parse_config(cfg)


def test_parallel_pretraining_equals_sequential(tmp_path: Path) -> None:
    data = _npz_dataset(tmp_path / "data")
    one, two = _config(tmp_path / "a", data, 1), _config(tmp_path / "b", data, 2)
    assert pretrain_workers(one, 2) == 1 and pretrain_workers(two, 2) == 2
    ds = load_dataset(one)
    seq = pretrain_all(one, ds, ["image", "vec"])
    calls: list[tuple[str, int, int]] = []
    par = pretrain_all(two, ds, ["image", "vec"], progress=lambda *a: calls.append(a))
    assert [r.modality for r in par] == ["image", "vec"] and calls[-1][1:] == (2, 2)
    for a, b in zip(seq, par, strict=True):
        assert a.status == b.status == "trained" and a.max_metric == b.max_metric
        wa = safe_torch_load(supernet_paths(one, a.modality)[0])["state_dict"]
        wb = safe_torch_load(supernet_paths(two, b.modality)[0])["state_dict"]
        assert wa.keys() == wb.keys()
        for k in wa:
            assert torch.equal(wa[k], wb[k]), k
    # current artifacts are skipped in the workers too
    assert [r.status for r in pretrain_all(two, ds, ["image", "vec"])] == ["skipped", "skipped"]


def test_a_dataset_registered_at_run_time_is_pretrained_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the pretrain tests' "synthetic" dataset is not a built-in: spawned workers would not know it
    from harmonic_nas.data import registry

    entry = registry.DatasetEntry(
        "synthetic", lambda ctx, progress: make_dataset(), None, False, False, 1, "test-only"
    )
    monkeypatch.setitem(registry._REGISTRY, "synthetic", entry)
    assert pretrain_workers(make_config(tmp_path, workers=2), 2) == 1
    npz = make_config(tmp_path, workers=2).model_dump(mode="json")
    npz["dataset"] = {"name": "npz", "path": str(tmp_path)}
    assert pretrain_workers(parse_config(npz), 2) == 2  # a built-in loader: parallel
    assert pretrain_workers(parse_config(npz), 1) == 1  # one modality: one process
