"""Pretraining modalities side by side gives the same supernets as one after the other."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

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


def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if stat[0] != "Z":
                parents[int(entry.name)] = int(stat[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killed_run_leaves_no_pretraining_worker(tmp_path: Path) -> None:
    """SIGKILL of `harmonic-nas run` while its supernets pretrain in two worker processes: no
    process of the run is alive shortly after, and no checkpoint is written after the kill."""
    data = _npz_dataset(tmp_path / "data")
    cfg = _config(tmp_path / "runs", data, 2).model_dump(mode="json")
    cfg["pretrain"]["epochs"] = 400  # minutes of training: the kill lands in the middle
    cfg["device"] = {"name": "host", "backend": "torch", "warmup": 1, "repeats": 3}
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    supernets = tmp_path / "runs" / cfg["name"] / "supernets"
    code = "import sys; from harmonic_nas.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "HARMONIC_NAS_THREADS": "1"}
    with open(tmp_path / "run.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, "run", str(config)], env=env, stdout=log, stderr=log
        )
    pids: set[int] = set()
    try:
        deadline = time.monotonic() + 300
        # both workers train: each has written its first epoch's checkpoint
        while len(list(supernets.glob("*.pt"))) < 2:
            assert time.monotonic() < deadline, "the two supernets never started training"
            assert proc.poll() is None, (tmp_path / "run.log").read_text()
            pids |= _children(proc.pid)
            time.sleep(0.2)
        pids |= _children(proc.pid)
        assert len(pids) >= 2, pids
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 20
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p for p in pids if _alive(p)], "pretraining workers outlived `run`"
        written = {p.name: p.stat().st_mtime_ns for p in supernets.iterdir()}
        time.sleep(3)
        assert {p.name: p.stat().st_mtime_ns for p in supernets.iterdir()} == written
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for p in pids:  # our own grandchildren, if the test failed
            if _alive(p):
                os.kill(p, signal.SIGKILL)
