"""API / CLI parity: the Python API searches as fast as the CLI (one thread policy for both).

Each side runs the demo config (configs/quick.yaml) from scratch, as a fresh process the way a
user starts it: the ``harmonic-nas run`` console script, and a plain user script that imports
``harmonic_nas`` and calls ``harmonic_nas.run(cfg)`` (written to a temporary file; nothing of the
benchmark is imported into it). The runs alternate (CLI, API, CLI, ...) so that the load of a
shared machine falls on both sides alike. The supernets and the device LUT are made once, untimed
(``harmonic-nas pretrain`` and ``harmonic-nas profile`` into a template run directory, or
``--template DIR`` given), and copied into each run's own directory, so that both sides search
with the same supernets and costs and every run's pipeline skips those two stages: each process
still runs ``run`` from its start (checks, data, search, baselines, report, export). The search
time of a run is the span of its study's trials (first trial start to last trial end, from the
Optuna storage), which neither side's start-up or other stages touch. Target
``api_over_cli_search_time`` <= 1.1 (median API search time / median CLI search time). Saves
benchmarks/results/api_parity.json with a ``targets`` block.

    .venv/bin/python benchmarks/api_parity.py [--repeats 3] [--template RUN_DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _bench_config import BASE_CONFIG, bench_identity, repo_relative
from _targets import print_targets, target
from harmonic_nas.utils.io import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "api_parity.json"
TARGET = 1.1

USER_SCRIPT = """\
import sys

import harmonic_nas as hn

if __name__ == "__main__":
    cfg = hn.load_config(sys.argv[1], sets=[f"run_dir={sys.argv[2]}"])
    result = hn.run(cfg)
    print(result.model_id, result.report_path)
"""


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("harmonic-nas")
    if script.is_file():
        return [str(script)]
    found = shutil.which("harmonic-nas")
    return [found] if found else [sys.executable, "-m", "harmonic_nas.cli"]


def search_span_s(run: Path) -> tuple[float, int, str]:
    """(seconds from the first trial's start to the last trial's end, number of trials, a digest
    of their genomes: the same on both sides when they search alike)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=None, storage=f"sqlite:///{run / 'study.db'}")
    trials = [t for t in study.get_trials(deepcopy=False) if t.datetime_complete is not None]
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    ends = [t.datetime_complete for t in trials if t.datetime_complete is not None]
    genomes = ";".join(str(sorted(t.params.items())) for t in trials)
    digest = hashlib.sha256(genomes.encode()).hexdigest()[:16]
    return (max(ends) - min(starts)).total_seconds(), len(trials), digest


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HARMONIC_NAS_THREADS"}
    env["COLUMNS"] = "100"
    return env


def prepare_template(config: Path, where: Path) -> Path:
    """Pretrain the supernets and profile the LUT once (untimed) into ``where``; returns the run
    directory holding them."""
    for command in ("pretrain", "profile"):
        subprocess.run(
            [*_cli(), command, str(config), "-o", f"run_dir={where}"],
            check=True,
            capture_output=True,
            env=_env(),
            cwd=ROOT,
        )
    return where / "quick"


def run_once(side: str, config: Path, root: Path, script: Path, template: Path) -> dict[str, Any]:
    run_dir = root / f"{side}-{len(list(root.iterdir()))}"
    (run_dir / "quick").mkdir(parents=True)
    for part in ("config.yaml", "supernets", "luts"):
        src = template / part
        if src.is_dir():
            shutil.copytree(src, run_dir / "quick" / part)
        else:
            shutil.copy2(src, run_dir / "quick" / part)
    if side == "cli":
        cmd = [*_cli(), "run", str(config), "-o", f"run_dir={run_dir}"]
    else:
        cmd = [sys.executable, str(script), str(config), str(run_dir)]
    env = _env()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{side} run failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    search_s, n_trials, genomes = search_span_s(run_dir / "quick")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    optuna_lines = sum("Trial " in line and "finished" in line for line in proc.stderr.splitlines())
    return {
        "side": side,
        "search_s": search_s,
        "trials": n_trials,
        "wall_s": wall,
        "cpu_s": cpu,
        "optuna_trial_lines": optuna_lines,
        "trial_keys": genomes,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="runs per side (alternating)")
    ap.add_argument("--config", type=Path, default=BASE_CONFIG)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument(
        "--template",
        type=Path,
        default=None,
        help="a run directory of the config with supernets/ and luts/ (default: made here)",
    )
    args = ap.parse_args(argv)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="api-parity-") as tmp:
        root = Path(tmp) / "runs"
        root.mkdir()
        script = Path(tmp) / "user_script.py"
        script.write_text(USER_SCRIPT, encoding="utf-8")
        config = args.config.resolve()
        template = args.template or prepare_template(config, Path(tmp) / "template")
        for i in range(args.repeats):
            for side in ("cli", "api"):
                r = run_once(side, config, root, script, template)
                runs.append({"round": i, **r})
                print(
                    f"round {i} {side}: search {r['search_s']:.1f} s ({r['trials']} trials), "
                    f"whole run {r['wall_s']:.1f} s wall / {r['cpu_s']:.1f} s CPU; "
                    f"optuna trial lines {r['optuna_trial_lines']}",
                    flush=True,
                )
    med = {
        side: {
            key: statistics.median(r[key] for r in runs if r["side"] == side)
            for key in ("search_s", "wall_s", "cpu_s")
        }
        for side in ("cli", "api")
    }
    ratio = med["api"]["search_s"] / med["cli"]["search_s"]
    keys = {r["trial_keys"] for r in runs}
    results: dict[str, Any] = {
        "command": " ".join(["python", "benchmarks/api_parity.py", *(argv or sys.argv[1:])]),
        "config": repo_relative(args.config),
        "method": "each side a fresh process (the console script; a user script calling "
        "harmonic_nas.run), alternating, own run directory holding copies of the same "
        "supernets and LUT (made once, untimed); search time = first trial start to last "
        "trial end in the study",
        "same_candidates_every_run": len(keys) == 1,
        "machine": bench_identity(),
        "runs": runs,
        "median": med,
        "api_over_cli_search_time": ratio,
        "api_over_cli_wall": med["api"]["wall_s"] / med["cli"]["wall_s"],
        "targets": {
            "api_over_cli_search_time": target(ratio, TARGET, "<="),
            "api_optuna_trial_lines": target(
                max(r["optuna_trial_lines"] for r in runs if r["side"] == "api"), 0, "=="
            ),
        },
    }
    atomic_write_json(args.out, results, schema_version=1)
    print_targets(results["targets"])
    print(f"saved {repo_relative(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
