"""Data-parallel pretraining (issue 27): N Gloo ranks train the model one process trains with the
global batch — the same subnets, the same weights — and a killed torchrun run resumes.

Parity is checked in double precision (``compute.precision: fp64``): in float32, rounding
differences of gradients that are zero in exact arithmetic (the bias of a BN followed by another
BN) are blown up to +-lr by Adam's normalisation, which hides whether the computations agree."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp

from harmonic_nas.backbones import build_supernet
from harmonic_nas.config import ExperimentConfig, parse_config
from harmonic_nas.data import load_dataset
from harmonic_nas.errors import ConfigError
from harmonic_nas.pretrain import pretrain_supernet, read_checkpoint, supernet_paths
from harmonic_nas.pretrain.distributed import DistContext, rank_batch, to_global_batch

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _demo_config(run_dir: Path, name: str, **pretrain: Any) -> dict[str, Any]:
    """configs/quick.yaml's modalities and recipe on a tiny av-digits (80 training pairs)."""
    return {
        "name": name,
        "run_dir": str(run_dir),
        "seed": 0,
        "dataset": {
            "name": "av-digits",
            "options": {"train_per_class": 8, "val_per_class": 2, "test_per_class": 2},
        },
        "modalities": {
            "image": {"preset": "avmnist", "shape": [1, 28, 28]},
            "audio": {"preset": "avmnist", "shape": [1, 20, 20]},
        },
        "pretrain": {
            "epochs": 2,
            "batch_size": 16,
            "lr": 0.005,
            "n_random": 1,
            "bn_recalib_batches": 1,
            **pretrain,
        },
        "compute": {"device": "cpu", "precision": "fp64"},
    }


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(path)["state_dict"]  # type: ignore[no-any-return]


def _max_abs_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


# --- the partition of a global batch ------------------------------------------------------------


@pytest.mark.parametrize("world", [1, 2, 4])
def test_rank_batches_partition_the_global_batch(world: int) -> None:
    perm = torch.randperm(40, generator=torch.Generator().manual_seed(0))
    for step in range(2):
        parts = [rank_batch(perm, step, 16, r, world) for r in range(world)]
        assert all(len(p) == 16 // world for p in parts)
        joined = torch.cat(parts)
        assert sorted(joined.tolist()) == sorted(perm[step * 16 : (step + 1) * 16].tolist())
        assert parts[0][1:].tolist() == perm[step * 16 + world : (step + 1) * 16 : world].tolist()


def test_a_global_batch_not_divisible_by_the_ranks_is_a_config_error() -> None:
    ctx = DistContext(0, 3, 0, torch.device("cpu"), "gloo")
    with pytest.raises(ConfigError, match="multiple of 3"):
        ctx.check_batch(16)


# --- two Gloo ranks in this test (spawned) ------------------------------------------------------


def _layers_worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = _seeded_supernet()
        to_global_batch(model, rank, world).train()
        net = torch.nn.parallel.DistributedDataParallel(
            model, broadcast_buffers=False, find_unused_parameters=True
        )
        x = _batch()[rank::world]
        torch.manual_seed(5)  # dropout: the same stream as the one process
        logits = net(x)[1]
        logits.square().mean().backward()
        model.set_active(model.min_genome())
        net(x)[1].square().mean().backward()
        mlp = _seeded_maxout()  # BatchNorm1d and dropout of the text / vector backbone
        to_global_batch(mlp, rank, world).train()
        mlp_net = torch.nn.parallel.DistributedDataParallel(mlp, broadcast_buffers=False)
        mlp_logits = mlp_net(_vectors()[rank::world])[1]
        mlp_logits.square().mean().backward()
        torch.save(
            {
                "logits": logits.detach(),
                "grads": {k: p.grad for k, p in model.named_parameters() if p.grad is not None},
                "buffers": dict(model.named_buffers()),
                "mlp_logits": mlp_logits.detach(),
                "mlp_grads": {k: p.grad for k, p in mlp.named_parameters()},
                "mlp_buffers": dict(mlp.named_buffers()),
            },
            Path(out) / f"rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


def _seeded_supernet() -> Any:
    torch.manual_seed(0)
    return build_supernet(("image", (1, 28, 28)), "avmnist", 10, "image")


def _seeded_maxout() -> Any:
    torch.manual_seed(1)
    return build_supernet(("vector", (20,)), "maxout", 10, "vec")


def _vectors() -> torch.Tensor:
    return torch.randn(16, 20, generator=torch.Generator().manual_seed(2))


def _batch() -> torch.Tensor:
    return torch.randn(16, 1, 28, 28, generator=torch.Generator().manual_seed(1))


def test_global_batch_bn_and_dropout_match_one_process(tmp_path: Path) -> None:
    """Logits, gradients (max then min subnet: sliced elastic BN; the Maxout MLP: BatchNorm1d) and
    BN statistics of 2 ranks with their halves of a batch equal one process's on the whole batch."""
    model = _seeded_supernet().train()
    torch.manual_seed(5)
    logits = model(_batch())[1]
    logits.square().mean().backward()
    model.set_active(model.min_genome())
    model(_batch())[1].square().mean().backward()
    mlp = _seeded_maxout().train()
    mlp_logits = mlp(_vectors())[1]
    mlp_logits.square().mean().backward()
    mp.start_processes(
        _layers_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, start_method="spawn"
    )
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    joined = torch.empty_like(logits)
    joined[0::2], joined[1::2] = ranks[0]["logits"], ranks[1]["logits"]
    assert float((joined - logits.detach()).abs().max()) < 1e-5
    grads = {k: p.grad for k, p in model.named_parameters() if p.grad is not None}
    for r in ranks:  # DDP: the same averaged gradients on every rank; unused ones stay None
        assert r["grads"].keys() == grads.keys()
        assert _max_abs_diff(r["grads"], grads) < 1e-6
        assert _max_abs_diff(r["buffers"], dict(model.named_buffers())) < 1e-5
        assert _max_abs_diff(r["mlp_grads"], {k: p.grad for k, p in mlp.named_parameters()}) < 1e-6
        assert _max_abs_diff(r["mlp_buffers"], dict(mlp.named_buffers())) < 1e-5
    joined = torch.empty_like(mlp_logits)
    joined[0::2], joined[1::2] = ranks[0]["mlp_logits"], ranks[1]["mlp_logits"]
    assert float((joined - mlp_logits.detach()).abs().max()) < 1e-5


def _pretrain_worker(rank: int, world: int, port: int, data: dict[str, Any], out: str) -> None:
    from harmonic_nas.backbones.elastic import ElasticMobileNetV3
    from harmonic_nas.pretrain.distributed import pretrain_distributed, process_group

    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    seen: list[list[list[int]]] = []
    original = ElasticMobileNetV3.set_active

    def recording(self: ElasticMobileNetV3, genome: Any) -> None:
        seen.append([list(genome.ks), list(genome.e), list(genome.d)])
        original(self, genome)

    ElasticMobileNetV3.set_active = recording  # type: ignore[method-assign]
    cfg = parse_config(data)
    with process_group(cfg) as ctx:
        pretrain_distributed(cfg, load_dataset(cfg), ["image"], ctx)
    (Path(out) / f"subnets{rank}.json").write_text(json.dumps(seen))


@pytest.mark.slow
def test_two_ranks_train_the_same_subnets_and_weights_as_one_process(tmp_path: Path) -> None:
    """Full phase, channel re-ordering and the sandwich phase: 2 Gloo ranks with batch 8 each
    end with the weights of one process with batch 16 (same seed)."""
    one = parse_config(_demo_config(tmp_path / "one", "demo"))
    ds = load_dataset(one)  # also fills the dataset cache the ranks read
    pretrain_supernet(one, ds, "image")
    data = _demo_config(tmp_path / "ddp", "demo")
    mp.start_processes(
        _pretrain_worker,
        args=(2, _free_port(), data, str(tmp_path)),
        nprocs=2,
        start_method="spawn",
    )
    subnets = [json.loads((tmp_path / f"subnets{r}.json").read_text()) for r in range(2)]
    assert subnets[0] == subnets[1]
    assert len({json.dumps(s) for s in subnets[0]}) >= 3  # max, min and random subnets
    ddp = parse_config(data)
    a, b = supernet_paths(one, "image")[0], supernet_paths(ddp, "image")[0]
    assert _max_abs_diff(_weights(a), _weights(b)) <= 1e-5
    assert read_checkpoint(b)["complete"] is True
    hist_a, hist_b = read_checkpoint(a)["history"], read_checkpoint(b)["history"]
    assert [h["loss"] for h in hist_a] == pytest.approx([h["loss"] for h in hist_b], abs=1e-9)


# --- torchrun, killed and resumed ---------------------------------------------------------------


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started (torchrun's ranks), from /proc."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()]


def _torchrun(cfg_path: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "src"),
        "OMP_NUM_THREADS": "1",
        "HARMONIC_NAS_THREADS": "1",
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-port",
        str(_free_port()),
        "-m",
        "harmonic_nas",
        "pretrain",
        str(cfg_path),
        "-m",
        "image",
    ]
    return subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
def test_a_killed_torchrun_run_resumes_to_the_uninterrupted_weights(tmp_path: Path) -> None:
    data = _demo_config(tmp_path / "ddp", "demo", epochs=4)
    cfg_path = tmp_path / "demo.yaml"
    cfg_path.write_text(json.dumps(data))  # JSON is YAML
    cfg: ExperimentConfig = parse_config(data)
    ckpt = supernet_paths(cfg, "image")[0]
    proc = _torchrun(cfg_path)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if ckpt.exists() and read_checkpoint(ckpt)["epoch"] >= 1:
            break
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()[0]  # still training
    ranks = _children(proc.pid)
    assert len(ranks) == 2
    for pid in ranks:  # both ranks die at once, mid-training (torchrun then gives up)
        os.kill(pid, signal.SIGKILL)
    proc.communicate(timeout=120)
    killed = read_checkpoint(ckpt)
    assert not killed["complete"] and 1 <= killed["epoch"] < 4
    resumed = _torchrun(cfg_path)
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert "image: resumed avmnist supernet for 4 epochs" in out
    assert "data-parallel pretraining: 2 ranks (gloo)" in out
    one = parse_config(_demo_config(tmp_path / "one", "demo", epochs=4))
    pretrain_supernet(one, load_dataset(one), "image")
    final = read_checkpoint(ckpt)
    assert final["complete"] is True
    assert _max_abs_diff(final["state_dict"], _weights(supernet_paths(one, "image")[0])) <= 1e-5
