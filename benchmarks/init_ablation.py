"""Ablation of NSGA-II's seeded first generation: ``search.initial: random`` vs the ``ladder``.

Runs NSGA-II once more per seed with ``search.initial: random`` (Optuna's all-random first
generation) on the runs ``benchmarks/search_quality.py`` made (same supernets, LUT, budget and
reference point; run that first), and sets its hypervolume beside the ladder-seeded NSGA-II's and
random search's from those runs. Full fidelity, search_quality's settings
(benchmarks/_bench_config.py).

    .venv/bin/python benchmarks/init_ablation.py [--seeds 0 1 2] [--population 16]
        [--generations 4]

Results in ``benchmarks/results/init_ablation.json`` (its ``targets`` block is empty: the
issue's targets are ``search_quality``'s; this is their context).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import torch

from _bench_config import load_bench_config  # benchmarks/_bench_config.py
from harmonic_nas.search import run_search
from harmonic_nas.utils.io import atomic_write_json
from search_quality import (  # benchmarks/search_quality.py
    ROOT,
    add_seed_options,
    hv_curve,
    load,
    make_config,
)

RESULTS = ROOT / "benchmarks" / "results" / "init_ablation.json"


def one_seed(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    cfg = make_config(args, seed)
    if not (cfg.run_path / "study.db").is_file():
        raise SystemExit(f"{cfg.run_path} has no study.db; run benchmarks/search_quality.py first")
    plain = cfg.model_copy(update={"search": cfg.search.model_copy(update={"initial": "random"})})
    name = f"{cfg.name}-nsga2-init-random"
    c0 = time.process_time()
    s = run_search(plain, strategy="nsga2", study_name=name, finalize=False)
    out: dict[str, Any] = {"seed": seed, "cpu_s": time.process_time() - c0}
    for key, study_name in (
        ("nsga2_init_random", name),
        ("nsga2_ladder", cfg.name),
        ("random", f"{cfg.name}-random"),
    ):
        curve = hv_curve(load(cfg, study_name), cfg.search.population)
        out[key] = {"hypervolume": curve[-1], "hv_curve": curve}
    assert abs(out["nsga2_init_random"]["hypervolume"] - s.hypervolume) < 1e-9
    rnd = out["random"]["hypervolume"]
    out["init_random_over_random"] = out["nsga2_init_random"]["hypervolume"] / rnd
    out["ladder_over_random"] = out["nsga2_ladder"]["hypervolume"] / rnd
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--population", type=int, default=16)
    ap.add_argument("--generations", type=int, default=4)
    add_seed_options(ap)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # the CLI's policy: one intra-op thread per process
    args.base = load_bench_config()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seeds = []
    for seed in args.seeds:
        r = one_seed(args, seed)
        seeds.append(r)
        print(
            f"seed {seed}: HV nsga2 initial random {r['nsga2_init_random']['hypervolume']:.4f} "
            f"(x{r['init_random_over_random']:.3f} random), ladder "
            f"{r['nsga2_ladder']['hypervolume']:.4f} (x{r['ladder_over_random']:.3f}), random "
            f"{r['random']['hypervolume']:.4f}",
            flush=True,
        )
    summary = {
        "init_random_over_random_mean": statistics.mean(
            r["init_random_over_random"] for r in seeds
        ),
        "ladder_over_random_mean": statistics.mean(r["ladder_over_random"] for r in seeds),
    }
    print(summary)
    atomic_write_json(
        args.out,
        {
            "command": " ".join(["python", "benchmarks/init_ablation.py", *sys.argv[1:]]),
            "settings": {
                "population": args.population,
                "generations": args.generations,
                "rescore_seeds": args.rescore_seeds,
                "test_seeds": args.test_seeds,
                "config": "configs/quick.yaml",
            },
            "seeds": seeds,
            "summary": summary,
            "targets": {},
        },
        schema_version=1,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
