"""Data-parallel pretraining on CPUs: 2 Gloo ranks (torchrun) vs 1 process, same global batch.

The image supernet of configs/quick.yaml (av-digits, avmnist preset, batch 32, n_random 1) is
pretrained for ``--epochs`` epochs four times, each as a fresh process: one process and
``torchrun --nproc-per-node 2``, in float32 (throughput) and in float64 (weight parity). Figures:

* ``throughput_ratio``: training images per second of the 2 ranks / of the one process (epoch
  wall time from the checkpoint history, BN-recalibrated evaluation included: rank 0 evaluates
  while rank 1 waits). Target >= 1.0; on a 2-core machine shared with other work the ranks
  compete with it and with each other, so the figure says what that machine gave, not what DDP
  gives on free cores.
* ``ddp_weight_parity_max_abs``: max |w_ddp - w_one| over every tensor of the supernet trained in
  float64 (``compute.precision: fp64``), target <= 1e-5. In float32, rounding differences of
  gradients that are zero in exact arithmetic (the bias of a BN layer feeding another BN) are
  amplified to +-lr per step by Adam's normalisation; ``ddp_weight_parity_max_abs_fp32`` reports
  that figure without a target.

    .venv/bin/python benchmarks/ddp_cpu.py [--epochs 2]

Saves benchmarks/results/ddp_cpu.json (machine recorded) with a ``targets`` block.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from _bench_config import BASE_CONFIG, ROOT, bench_identity
from _targets import print_targets, target
from harmonic_nas.pretrain.checkpoint import read_checkpoint
from harmonic_nas.utils.io import atomic_write_json

OUT = ROOT / "benchmarks" / "results" / "ddp_cpu.json"


def write_config(folder: Path, name: str, epochs: int, precision: str) -> Path:
    data = yaml.safe_load(BASE_CONFIG.read_text())
    data["name"] = name
    data["run_dir"] = str(folder)
    data["pretrain"]["epochs"] = epochs
    data["compute"] = {"device": "cpu", "precision": precision}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def pretrain(config: Path, ranks: int) -> tuple[float, Path]:
    """Pretrain the image supernet (1 process, or ``ranks`` torchrun ranks): wall s, checkpoint."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HARMONIC_NAS_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    cli = ["-m", "harmonic_nas", "pretrain", str(config), "-m", "image", "--force"]
    if ranks == 1:
        cmd = [sys.executable, *cli]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(ranks), *cli]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    wall = time.perf_counter() - t0
    name = yaml.safe_load(config.read_text())["name"]
    return wall, config.parent / name / "supernets" / "image.pt"


def max_abs(a: Path, b: Path) -> float:
    wa, wb = read_checkpoint(a)["state_dict"], read_checkpoint(b)["state_dict"]
    return max(float((wa[k].double() - wb[k].double()).abs().max()) for k in wa)


def run_stats(ckpt: Path, n_train: int, batch: int) -> dict[str, Any]:
    history = read_checkpoint(ckpt)["history"]
    epoch_s = sum(h["time_s"] for h in history)
    images = (n_train // batch) * batch * len(history)
    return {"epoch_s": [h["time_s"] for h in history], "images_per_s": images / epoch_s}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    results: dict[str, Any] = {
        "command": " ".join(["python", "benchmarks/ddp_cpu.py", *(argv or sys.argv[1:])]),
        "machine": bench_identity(),
        "setup": {
            "config": "configs/quick.yaml (image supernet)",
            "epochs": args.epochs,
            "seed": 0,
            "backend": "gloo",
            "threads_per_process": 1,
        },
    }
    cfg = yaml.safe_load(BASE_CONFIG.read_text())
    batch = int(cfg["pretrain"]["batch_size"])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ckpts: dict[str, Path] = {}
        n_train = _n_train(write_config(folder, "data", args.epochs, "fp32"))
        for precision in ("fp32", "fp64"):
            for ranks in (1, 2):
                key = f"{precision}_{ranks}"
                config = write_config(folder, key, args.epochs, precision)
                wall, ckpts[key] = pretrain(config, ranks)
                results[key] = {
                    "ranks": ranks,
                    "wall_s": wall,
                    **run_stats(ckpts[key], n_train, batch),
                }
                print(
                    f"{key}: {results[key]['images_per_s']:.1f} images/s, wall {wall:.1f} s",
                    flush=True,
                )
        parity = max_abs(ckpts["fp64_1"], ckpts["fp64_2"])
        parity32 = max_abs(ckpts["fp32_1"], ckpts["fp32_2"])
    ratio = results["fp32_2"]["images_per_s"] / results["fp32_1"]["images_per_s"]
    results["throughput_ratio"] = ratio
    results["ddp_weight_parity_max_abs"] = parity
    results["ddp_weight_parity_max_abs_fp32"] = parity32
    results["targets"] = {
        "throughput_ratio": target(ratio, 1.0, ">="),
        "ddp_weight_parity_max_abs": target(parity, 1e-5, "<="),
    }
    atomic_write_json(args.out, results, schema_version=1)
    print(f"fp32 parity (no target): {parity32:.3g}")
    print_targets(results["targets"])
    return 0


def _n_train(config: Path) -> int:
    from harmonic_nas.config import load_config
    from harmonic_nas.data import load_dataset

    return len(load_dataset(load_config(config)).split("train"))


if __name__ == "__main__":
    sys.exit(main())
