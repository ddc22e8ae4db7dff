"""The device check: everything harmonic-nas does on a CUDA GPU, in one call, figures in one JSON.

Steps (each one timed; a failing step is recorded and the others still run):

1. ``demo``: ``harmonic-nas run configs/quick.yaml`` with ``compute.device`` on the GPU (a
   shortened budget: ``DEMO_OVERRIDES``). Target: completes.
2. ``bf16_pretrain``: the 5-stage 224 x 224 supernet (``ofa-mbv3``) pretrained with
   ``compute.precision: bf16`` on synthetic images for a fixed number of steps (sandwich rule,
   max + min + 1 random subnet per step); images/s from the per-step clock, after warm-up steps.
3. ``ddp``: the demo's image supernet pretrained by 1 process and by ``torchrun --nproc-per-node
   2`` (both ranks share the GPU when there is one: Gloo; NCCL with one GPU per rank), images/s of
   each and the largest weight difference (float32: not a parity check, see ddp_cpu.py).
4. ``profile``: the demo space profiled with eager torch on the GPU (synchronised timing,
   :mod:`harmonic_nas.hardware.cuda_timing`), then its whole-model check twice: Kendall tau of
   the LUT's predictions vs whole-model measurements (target >= 0.9), and the re-timing tau (the
   two measurement passes against each other: the machine's own ceiling).

Without a GPU it writes nothing and says so ("not run on a GPU"), exit code 0. ``--cpu-smoke``
runs every step on the CPU with tiny sizes (what the tests do); its JSON says "not run on a GPU".

    python benchmarks/gpu_check.py [--out benchmarks/results/gpu_check.json] [--cpu-smoke]

benchmarks/gpu_check.sh is the wrapper to run on a GPU machine without a package registry.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from scipy.stats import kendalltau

from _bench_config import BASE_CONFIG, ROOT
from _targets import print_targets, target
from harmonic_nas.utils.io import atomic_write_json

OUT = ROOT / "benchmarks" / "results" / "gpu_check.json"
NOT_RUN = "not run on a GPU"

#: the demo's budget, shortened so that the whole check fits in a few minutes of GPU time
DEMO_OVERRIDES = [
    "pretrain.epochs=2",
    "fusion.epochs=2",
    "fusion.retrain_epochs=2",
    "search.population=4",
    "search.generations=2",
    "device.repeats=20",
]


def sizes(smoke: bool) -> dict[str, Any]:
    """Step sizes: the GPU check's, or tiny ones for a CPU smoke run."""
    if smoke:
        return {
            "dataset_options": {"train_per_class": 6, "val_per_class": 2, "test_per_class": 2},
            "demo_extra": ["pretrain.epochs=1", "search.population=2", "search.generations=1"],
            "bf16_batch": 4,
            "bf16_steps": 2,
            "bf16_warmup": 1,
            "bf16_preset": "avmnist",
            "bf16_shape": [1, 28, 28],
            "ddp_epochs": 1,
            "validate_samples": 4,
            "repeats": 5,
        }
    return {
        "dataset_options": {},
        "demo_extra": [],
        "bf16_batch": 64,
        "bf16_steps": 30,
        "bf16_warmup": 5,
        "bf16_preset": "ofa-mbv3",
        "bf16_shape": [3, 224, 224],
        "ddp_epochs": 2,
        "validate_samples": 30,
        "repeats": 50,
    }


def machine(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "host_cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["gpus_visible"] = torch.cuda.device_count()
        info["bf16_supported"] = bool(torch.cuda.is_bf16_supported())
    return info


def _env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HARMONIC_NAS_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return env


def _config(folder: Path, name: str, compute: dict[str, str], sz: dict[str, Any]) -> Path:
    data = yaml.safe_load(BASE_CONFIG.read_text())
    data.update(name=name, run_dir=str(folder), compute=compute)
    if sz["dataset_options"]:
        data["dataset"]["options"] = dict(sz["dataset_options"])
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def step_demo(folder: Path, device: str, sz: dict[str, Any]) -> dict[str, Any]:
    config = _config(folder, "demo", {"device": device}, sz)
    sets = [*DEMO_OVERRIDES, *sz["demo_extra"]]
    cmd = [sys.executable, "-m", "harmonic_nas", "run", str(config)]
    for s in sets:
        cmd += ["-o", s]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
    pareto = folder / "demo" / "pareto.json"
    return {
        "completed": proc.returncode == 0 and pareto.is_file(),
        "exit_code": proc.returncode,
        "overrides": sets,
        "output_tail": tail,
    }


def step_bf16(device: torch.device, sz: dict[str, Any], precision: str) -> dict[str, Any]:
    from harmonic_nas.config import parse_config
    from harmonic_nas.data import ModalitySpec, MultimodalDataset, Split
    from harmonic_nas.pretrain import pretrain_supernet

    shape = tuple(sz["bf16_shape"])
    bs, steps, warm = sz["bf16_batch"], sz["bf16_steps"], sz["bf16_warmup"]
    n = bs * (steps + warm)
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 10
    split = Split({"image": torch.randn((n, *shape), generator=g), "vec": torch.randn(n, 4)}, y)
    ds = MultimodalDataset(
        name="synthetic",
        modalities=[ModalitySpec("image", "image", shape), ModalitySpec("vec", "vector", (4,))],
        task="classification",
        num_classes=10,
        class_names=[str(i) for i in range(10)],
        splits={"train": split, "val": split, "test": split},
    )
    with tempfile.TemporaryDirectory() as tmp:
        cfg = parse_config(
            {
                "name": "bf16",
                "run_dir": tmp,
                "dataset": {"name": "synthetic"},
                "modalities": {
                    "image": {"preset": sz["bf16_preset"], "shape": list(shape)},
                    "vec": {"preset": "maxout", "shape": [4]},
                },
                "pretrain": {
                    "epochs": 1,
                    "batch_size": bs,
                    "full_epochs": 0,
                    "warmup_epochs": 0,
                    "n_random": 1,
                    "bn_recalib_batches": 1,
                },
                "compute": {"device": str(device), "precision": precision},
            }
        )
        clock: list[float] = []

        def tick(task: str, done: int, total: int) -> None:
            if task == "pretrain image":
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                clock.append(time.perf_counter())

        pretrain_supernet(cfg, ds, "image", progress=tick)
    timed = clock[warm:]  # step warm+1 .. end
    seconds = timed[-1] - clock[warm - 1] if warm > 0 else timed[-1] - timed[0]
    images = bs * (len(timed) if warm > 0 else len(timed) - 1)
    return {
        "preset": sz["bf16_preset"],
        "input_shape": list(shape),
        "precision": precision,
        "batch_size": bs,
        "timed_steps": len(timed),
        "warmup_steps": warm,
        "subnets_per_step": 3,
        "images_per_s": images / seconds,
    }


def step_ddp(folder: Path, device: str, sz: dict[str, Any]) -> dict[str, Any]:
    from harmonic_nas.pretrain.checkpoint import read_checkpoint

    out: dict[str, Any] = {}
    ckpts = {}
    for ranks in (1, 2):
        config = _config(folder, f"ddp{ranks}", {"device": device}, sz)
        cli = ["-m", "harmonic_nas", "pretrain", str(config), "-m", "image"]
        cli += ["-o", f"pretrain.epochs={sz['ddp_epochs']}"]
        if ranks == 1:
            cmd = [sys.executable, *cli]
        else:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", *cli]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
        wall = time.perf_counter() - t0
        ckpt = folder / f"ddp{ranks}" / "supernets" / "image.pt"
        entry: dict[str, Any] = {"exit_code": proc.returncode, "wall_s": wall}
        if proc.returncode == 0:
            history = read_checkpoint(ckpt)["history"]
            entry["epoch_s"] = [h["time_s"] for h in history]
            ckpts[ranks] = ckpt
        else:
            entry["output_tail"] = (proc.stdout + proc.stderr).strip().splitlines()[-8:]
        out[f"ranks_{ranks}"] = entry
    out["completed"] = len(ckpts) == 2
    if out["completed"]:
        a, b = (read_checkpoint(ckpts[r])["state_dict"] for r in (1, 2))
        out["max_abs_weight_diff_fp32"] = max(
            float((a[k].double() - b[k].double()).abs().max()) for k in a
        )
        e1, e2 = (sum(out[f"ranks_{r}"]["epoch_s"]) for r in (1, 2))
        out["throughput_ratio"] = e1 / e2
    return out


def step_profile(folder: Path, device: torch.device, sz: dict[str, Any]) -> dict[str, Any]:
    from harmonic_nas.config import load_config
    from harmonic_nas.hardware.profiler import profile_device
    from harmonic_nas.hardware.validate import validate_lut

    config = _config(folder, "prof", {"device": str(device)}, sz)
    cfg = load_config(config, sets=["device.backend=torch", f"device.repeats={sz['repeats']}"])
    t0 = time.perf_counter()
    lut = profile_device(cfg, backend="torch")
    profile_s = time.perf_counter() - t0
    n = sz["validate_samples"]
    first = validate_lut(cfg, lut, samples=n, seed=0)
    second = validate_lut(cfg, lut, samples=n, seed=0)  # the same models, re-timed
    retiming = float(kendalltau(first.measured_ms, second.measured_ms).statistic)
    return {
        "layers": len(lut),
        "timed_on": lut.meta.get("timed_on"),
        "profile_s": profile_s,
        "samples": n,
        "kendall_tau": first.kendall_tau,
        "mape_pct": first.mape,
        "retiming_kendall_tau": retiming,
        "retiming_speed_ratio": float(
            np.median(np.array(second.measured_ms) / np.array(first.measured_ms))
        ),
    }


def _guarded(results: dict[str, Any], name: str, fn: Callable[[], dict[str, Any]]) -> None:
    t0 = time.perf_counter()
    try:
        results[name] = fn()
    except Exception as exc:  # a failed step is a figure too; the other steps still run
        results[name] = {"error": f"{exc.__class__.__name__}: {exc}"[:500]}
        traceback.print_exc()
    results[name]["step_s"] = time.perf_counter() - t0
    print(f"{name}: done in {results[name]['step_s']:.1f} s", flush=True)


def targets_of(results: dict[str, Any]) -> dict[str, Any]:
    prof = results.get("profile", {})
    return {
        "demo_pipeline_cuda": target(results.get("demo", {}).get("completed"), True, "=="),
        "bf16_pretrain_images_per_s": target(
            results.get("bf16_pretrain", {}).get("images_per_s"), 0.0, ">="
        ),
        "ddp_two_process_completed": target(results.get("ddp", {}).get("completed"), True, "=="),
        "gpu_profile_kendall_tau": target(prof.get("kendall_tau"), 0.9, ">="),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument(
        "--cpu-smoke", action="store_true", help="every step on the CPU, tiny (not a GPU figure)"
    )
    args = ap.parse_args(argv)
    gpu = torch.cuda.is_available()
    if not gpu and not args.cpu_smoke:
        print(f"{NOT_RUN}: torch {torch.__version__} sees no CUDA device; nothing written")
        return 0
    device = torch.device("cuda:0" if gpu and not args.cpu_smoke else "cpu")
    sz = sizes(args.cpu_smoke)
    results: dict[str, Any] = {
        "command": " ".join(["python", "benchmarks/gpu_check.py", *(argv or sys.argv[1:])]),
        "status": "run on a GPU" if device.type == "cuda" else f"{NOT_RUN} (CPU smoke run)",
        "device": str(device),
        "machine": machine(device),
        "seed": 0,
    }
    precision = "bf16"  # allowed on the CPU too, where the smoke run exercises it
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _guarded(results, "demo", lambda: step_demo(folder, str(device), sz))
        _guarded(results, "bf16_pretrain", lambda: step_bf16(device, sz, precision))
        _guarded(results, "ddp", lambda: step_ddp(folder, str(device), sz))
        _guarded(results, "profile", lambda: step_profile(folder, device, sz))
    results["targets"] = targets_of(results)
    atomic_write_json(args.out, results, schema_version=1)
    print_targets(results["targets"])
    print(f"{results['status']}; saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
