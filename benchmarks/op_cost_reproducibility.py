"""Do the fusion operators' costs that enter the architecture loss rank the same way twice?

The hardware term of the inner tier weighs each candidate operator by its LUT latency at the
config's fusion size (C, L). If two independent profilings of the same operators order them
differently, the term ranks profiling noise, not cost. For each ``--size C,L`` this benchmark
profiles every operator of ``fusion.ops`` (the config's, default the paper's six) twice, each a
separate :func:`harmonic_nas.hardware.profiler.profile_layers` run (its own modules, weights seed,
warm-up and per-call overhead measurement), exactly as ``harmonic-nas profile`` does, and reports
the Kendall tau between the two runs' operator latencies (the LUT's statistic, net of the
per-call overhead), the costs themselves and their size relative to that overhead.

Target per size: ``op_cost_rank_reproducibility_tau_C<C>_L<L>`` >= 0.8. Writes
benchmarks/results/op_cost_reproducibility.json.

    .venv/bin/python benchmarks/op_cost_reproducibility.py [--size 32,4 --size 192,16]
        [--repeats 50] [--warmup 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch
from scipy.stats import kendalltau

from _bench_config import bench_identity  # benchmarks/_bench_config.py
from _targets import print_targets, target  # benchmarks/_targets.py
from harmonic_nas.config import FusionConfig
from harmonic_nas.fusion import operator_spec
from harmonic_nas.hardware.keys import lut_key
from harmonic_nas.hardware.profiler import profile_layers
from harmonic_nas.utils.io import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "op_cost_reproducibility.json"
TAU_GOAL = 0.8


def parse_size(text: str) -> tuple[int, int]:
    try:
        c, l_ = (int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected C,L (e.g. 192,16), got {text!r}") from None
    if c < 1 or l_ < 1 or round(l_**0.5) ** 2 != l_:
        raise argparse.ArgumentTypeError(f"C >= 1 and L a perfect square, got {text!r}")
    return c, l_


def profile_once(
    ops: tuple[str, ...], C: int, L: int, *, seed: int, warmup: int, repeats: int
) -> dict[str, Any]:
    specs = [operator_spec(op, C, L) for op in ops]
    lut = profile_layers(specs, warmup=warmup, repeats=repeats, seed=seed)
    return {
        "latency_ms": {
            op: lut.entries[lut_key(s)].latency_ms for op, s in zip(ops, specs, strict=True)
        },
        "call_overhead_ms": lut.meta["call_overhead_ms"],
        "profiling_time_s": lut.meta["profiling_time_s"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--size", type=parse_size, action="append", default=None, help="C,L (repeatable)"
    )
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    sizes = args.size or [(32, 4), (192, 16)]
    ops = FusionConfig().ops
    torch.set_num_threads(1)  # the CLI's policy: one intra-op thread per process
    rows = []
    targets: dict[str, Any] = {}
    for C, L in sizes:
        t0 = time.perf_counter()
        runs = [
            profile_once(ops, C, L, seed=seed, warmup=args.warmup, repeats=args.repeats)
            for seed in (0, 1)
        ]
        a = [runs[0]["latency_ms"][op] for op in ops]
        b = [runs[1]["latency_ms"][op] for op in ops]
        tau = float(kendalltau(a, b).statistic)
        overhead = min(r["call_overhead_ms"] for r in runs)
        rows.append(
            {
                "C": C,
                "L": L,
                "ops": list(ops),
                "runs": runs,
                "kendall_tau": tau,
                "op_latency_range_ms": [min(a + b), max(a + b)],
                "op_latency_over_call_overhead": [min(a + b) / overhead, max(a + b) / overhead],
                "wall_s": time.perf_counter() - t0,
            }
        )
        targets[f"op_cost_rank_reproducibility_tau_C{C}_L{L}"] = target(tau, TAU_GOAL, ">=")
        print(
            f"C={C} L={L}: tau {tau:.3f}; op latency {min(a + b) * 1e3:.1f}-"
            f"{max(a + b) * 1e3:.1f} us; per-call overhead {overhead * 1e3:.1f} us",
            flush=True,
        )
        for op, x, y in zip(ops, a, b, strict=True):
            print(f"  {op:<14} {x * 1e3:9.2f} us  {y * 1e3:9.2f} us")
    results = {
        "benchmark": "op_cost_reproducibility",
        "command": " ".join(["python", "benchmarks/op_cost_reproducibility.py", *sys.argv[1:]]),
        "machine": bench_identity(),
        "settings": {"repeats": args.repeats, "warmup": args.warmup, "backend": "onnxruntime"},
        "sizes": rows,
        "targets": targets,
    }
    atomic_write_json(args.out, results, schema_version=1)
    print_targets(targets)
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
