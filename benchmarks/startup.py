"""CLI start-up benchmark: how fast `harmonic-nas --help`, `--version` and `run --help` answer.

Each command runs ``--repeats`` times as a fresh process (the installed console script); the
figures are the median wall time and the median CPU time (user + system of the child, which does
not count other processes on a shared machine). Target ``help_s`` <= 1.0 (median wall seconds of
``harmonic-nas --help``). Saves benchmarks/results/startup.json with a ``targets`` block.

    .venv/bin/python benchmarks/startup.py [--repeats 10]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harmonic_nas.utils.io import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "startup.json"
COMMANDS = {"help": ["--help"], "version": ["--version"], "run_help": ["run", "--help"]}


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("harmonic-nas")
    if script.is_file():
        return [str(script)]
    found = shutil.which("harmonic-nas")
    return [found] if found else [sys.executable, "-m", "harmonic_nas.cli"]


def time_command(cmd: list[str], repeats: int) -> dict[str, Any]:
    walls, cpus = [], []
    env = {**os.environ, "COLUMNS": "100"}
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return {
        "wall_s_median": statistics.median(walls),
        "wall_s_min": min(walls),
        "wall_s_max": max(walls),
        "cpu_s_median": statistics.median(cpus),
        "repeats": repeats,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    cli = _cli()
    results: dict[str, Any] = {
        "command": " ".join(["python", "benchmarks/startup.py", *(argv or sys.argv[1:])])
    }
    for name, extra in COMMANDS.items():
        results[name] = time_command([*cli, *extra], args.repeats)
        r = results[name]
        print(
            f"harmonic-nas {' '.join(extra):<12} wall median {r['wall_s_median']:.3f} s "
            f"(min {r['wall_s_min']:.3f}, max {r['wall_s_max']:.3f}); CPU {r['cpu_s_median']:.3f} s",
            flush=True,
        )
    value = results["help"]["wall_s_median"]
    results["targets"] = {
        "help_s": {"value": value, "target": 1.0, "op": "<=", "met": value <= 1.0},
    }
    atomic_write_json(args.out, results, schema_version=1)
    print(f"help_s: {value:.3f} s (target <= 1.0): {'met' if value <= 1.0 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
