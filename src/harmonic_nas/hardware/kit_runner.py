#!/usr/bin/env python3
"""Latency kit runner: times the ONNX models of a harmonic-nas device kit on this machine.

Needs only Python 3, numpy and onnxruntime (any execution provider this onnxruntime offers).
Copied as ``run_kit.py`` into a kit folder by ``harmonic-nas profile CONFIG --kit DIR``; run it
on the device, then bring the results file back and install it as a lookup table::

    python run_kit.py --provider CPUExecutionProvider --threads 1 --out results.json
    harmonic-nas lut import results.json --device mydevice

Protocol (the same as the in-tool profiler): every model of a chunk gets ``--warmup`` untimed
runs, then ``--repeats`` timed runs taken round-robin in ``--rounds`` bursts (a slow phase of
the machine hits every model alike); a trivial one-op model (the per-call overhead) and a fixed
reference model (machine-speed drift) are timed in every chunk; the whole calibration models
are spread over the chunks. The results file keeps mean, std, median and 10th percentile (the
statistic the table uses) of every model and this machine's identity.

This file must import nothing but the standard library, numpy and onnxruntime.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

KIT_FORMAT = "harmonic-nas-kit"
RESULTS_FORMAT = "harmonic-nas-kit-results"
SCHEMA_VERSION = 1


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("model name", "Model", "Hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cache_sizes() -> dict[str, str]:
    root = Path("/sys/devices/system/cpu/cpu0/cache")
    out: dict[str, str] = {}
    if not root.is_dir():
        return out
    for index in sorted(root.glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        suffix = {"Data": "d", "Instruction": "i"}.get(kind, "")
        out[f"L{level}{suffix}"] = size
    return out


def identity(provider: str, threads: int) -> dict[str, Any]:
    """The machine identity, with the same fields as harmonic-nas records."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 0,
        "caches": cache_sizes(),
        "runtime": "onnxruntime",
        "runtime_version": str(ort.__version__),
        "provider": provider,
        "threads": threads,
        "arch": platform.machine(),
        "os": platform.system(),
    }


def session(path: Path, provider: str, threads: int) -> Any:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=[provider])


def runner(folder: Path, item: dict[str, Any], provider: str, threads: int, seed: int) -> Any:
    sess = session(folder / item["file"], provider, threads)
    rng = np.random.default_rng(seed)
    shapes = {i["name"]: i["shape"] for i in item["inputs"]}
    feed = {
        i.name: rng.standard_normal(shapes[i.name]).astype(np.float32) for i in sess.get_inputs()
    }

    def run() -> object:
        return sess.run(None, feed)

    return run


def interleaved(runners: list[Any], warmup: int, repeats: int, rounds: int) -> list[list[float]]:
    for run in runners:
        for _ in range(warmup):
            run()
    samples: list[list[float]] = [[] for _ in runners]
    rounds = max(1, min(rounds, repeats))
    clock = time.perf_counter_ns
    for r in range(rounds):
        burst = repeats // rounds + (1 if r < repeats % rounds else 0)
        for run, out in zip(runners, samples, strict=True):
            for _ in range(burst):
                t0 = clock()
                run()
                out.append((clock() - t0) / 1e6)
    return samples


def stats(samples: list[float]) -> dict[str, float]:
    a = np.asarray(samples, dtype=np.float64)
    return {
        "mean": float(a.mean()),
        "std": float(a.std()),
        "count": len(a),
        "median": float(np.median(a)),
        "p10": float(np.percentile(a, 10)),
    }


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--kit", type=Path, default=here, help="kit folder (default: this file's)")
    ap.add_argument("--provider", default="CPUExecutionProvider", help="execution provider")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads")
    ap.add_argument("--warmup", type=int, default=None, help="untimed runs (default: manifest)")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs (default: manifest)")
    ap.add_argument("--rounds", type=int, default=10, help="round-robin bursts")
    ap.add_argument("--out", type=Path, default=Path("results.json"), help="results file")
    ap.add_argument("--list-providers", action="store_true", help="print providers and exit")
    args = ap.parse_args(argv)
    available = ort.get_available_providers()
    if args.list_providers:
        print("\n".join(available))
        return 0
    if args.provider not in available:
        print(
            f"error: this onnxruntime has no provider {args.provider!r}; choose one of "
            f"{', '.join(available)}",
            file=sys.stderr,
        )
        return 2
    if args.threads < 1 or args.rounds < 1:
        print("error: --threads and --rounds must be >= 1", file=sys.stderr)
        return 2
    manifest_path = args.kit / "manifest.json"
    try:
        raw = manifest_path.read_bytes()
        manifest = json.loads(raw)
    except (OSError, ValueError) as exc:
        print(f"error: cannot read {manifest_path} ({exc}); pass --kit DIR", file=sys.stderr)
        return 2
    if manifest.get("format") != KIT_FORMAT or manifest.get("schema_version") != SCHEMA_VERSION:
        print(f"error: {manifest_path} is not a version-1 harmonic-nas kit", file=sys.stderr)
        return 2
    warmup = manifest["warmup"] if args.warmup is None else args.warmup
    repeats = manifest["repeats"] if args.repeats is None else args.repeats
    if warmup < 0 or repeats < 1:
        print("error: --warmup must be >= 0 and --repeats >= 1", file=sys.stderr)
        return 2
    items = manifest["items"]
    by_role: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        by_role.setdefault(item["role"], []).append(item)
    layers = by_role.get("layer", [])
    calib = by_role.get("calibration", [])
    chunk = int(manifest.get("chunk", 64))
    starts = list(range(0, len(layers), chunk)) or [0]
    results: dict[str, dict[str, list[float]]] = {"layer": {}, "calibration": {}}
    trivial_s: list[float] = []
    reference_s: list[float] = []
    started = time.perf_counter()
    seed = 0
    trivial = runner(args.kit, by_role["trivial"][0], args.provider, args.threads, seed)
    reference = runner(args.kit, by_role["reference"][0], args.provider, args.threads, seed)
    for c, lo in enumerate(starts):
        part = layers[lo : lo + chunk]
        mine = [m for i, m in enumerate(calib) if i % len(starts) == c]
        group = mine + part
        runs = [runner(args.kit, it, args.provider, args.threads, seed) for it in group]
        lat = interleaved([trivial, reference, *runs], warmup, repeats, args.rounds)
        trivial_s += lat[0]
        reference_s += lat[1]
        for it, samples in zip(group, lat[2:], strict=True):
            results[it["role"]][it["id"]] = samples
        print(f"chunk {c + 1}/{len(starts)}: {len(group)} models timed", file=sys.stderr)
    out = {
        "schema_version": SCHEMA_VERSION,
        "format": RESULTS_FORMAT,
        "manifest_sha256": hashlib.sha256(raw).hexdigest(),
        "config": manifest.get("config"),
        "space_keys": manifest.get("space_keys", []),
        "sampled": bool(manifest.get("sampled", False)),
        "identity": identity(args.provider, args.threads),
        "settings": {"warmup": warmup, "repeats": repeats, "rounds": args.rounds},
        "elapsed_s": round(time.perf_counter() - started, 2),
        "trivial": stats(trivial_s),
        "reference": stats(reference_s),
        "layers": {it["key"]: stats(results["layer"][it["id"]]) for it in layers},
        "calibration": [
            {"arch": it["arch"], "latency": stats(results["calibration"][it["id"]])} for it in calib
        ],
    }
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(out, indent=1), encoding="utf-8")
    os.replace(tmp, args.out)
    print(f"timed {len(layers)} layers and {len(calib)} whole models in {out['elapsed_s']} s")
    print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
