"""How much hypervolume any strategy could have found: the union of every search of a seed.

``benchmarks/search_quality.py`` runs four searches per seed on one run (NSGA-II, random search,
NSGA-II with ``screen`` and with ``halving``), all with the same supernets, LUT and reference
point. The non-dominated set of all their full-fidelity candidates is the best front known for
that setup; its hypervolume over random search's says how far above random search a strategy
could have got with the candidates found so far (``hv_ratio_nsga2_vs_random`` >= 1.10 asks for
1.10). Reads the finished studies, trains nothing.

    .venv/bin/python benchmarks/front_bound.py [--seeds 0 1 2] [--population 16] [--generations 4]

Results in ``benchmarks/results/front_bound.json`` (its ``targets`` block is empty: the issue's
target is ``search_quality``'s ratio; this is its context).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import optuna

from harmonic_nas.search.final import study_points
from harmonic_nas.search.pareto import non_dominated, normalised_hypervolume
from harmonic_nas.search.records import SearchRecords
from harmonic_nas.search.storage import open_storage
from harmonic_nas.utils.io import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "front_bound.json"


def one_seed(run: Path, population: int) -> dict[str, Any]:
    storage = open_storage(f"sqlite:///{(run / 'study.db').resolve()}")
    # the searches of this setup: the run's own study and its strategy / fidelity variants (not
    # search_quality's throughput study, made at another fusion size)
    names = sorted(n for n in optuna.get_all_study_names(storage) if n.startswith(run.name))
    per: dict[str, float] = {}
    union: list[tuple[float, ...]] = []
    lo = hi = None
    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        records = SearchRecords.from_study(study, population=population)
        k = len(records.objectives)
        ideal, ref = study_points(study)
        lo = (-ideal["val_metric"], ideal["latency_ms"], ideal["energy_mj"])[:k]
        hi = (-ref["val_metric"], ref["latency_ms"], ref["energy_mj"])[:k]
        pts = [r.minimised(k) for r in records.front()]
        per[name] = normalised_hypervolume(pts, lo, hi)
        union += pts
    assert lo is not None and hi is not None, f"no finished search study in {run}"
    front = [union[i] for i in non_dominated(union)]
    hv_union = normalised_hypervolume(front, lo, hi)
    random = per[f"{run.name}-random"]
    return {
        "run": str(run.relative_to(ROOT)) if run.is_relative_to(ROOT) else str(run),
        "hypervolume": per,
        "union_hypervolume": hv_union,
        "union_front_size": len(front),
        "union_over_random": hv_union / random,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--population", type=int, default=16)
    ap.add_argument("--generations", type=int, default=4)
    ap.add_argument("--runs", type=Path, default=ROOT / "runs", help="run_dir of the benchmark")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    seeds = {}
    for seed in args.seeds:
        run = args.runs / f"bench-search-quality-p{args.population}g{args.generations}-s{seed}"
        seeds[seed] = one_seed(run, args.population)
        r = seeds[seed]
        print(
            f"seed {seed}: union HV {r['union_hypervolume']:.4f} over random "
            f"x{r['union_over_random']:.3f}; "
            + ", ".join(f"{n} {v:.4f}" for n, v in r["hypervolume"].items()),
            flush=True,
        )
    ratios = [r["union_over_random"] for r in seeds.values()]
    print(f"mean union / random: x{statistics.mean(ratios):.3f}")
    atomic_write_json(
        args.out,
        {
            "command": " ".join(["python", "benchmarks/front_bound.py", *sys.argv[1:]]),
            "seeds": seeds,
            "union_over_random_mean": statistics.mean(ratios),
            "targets": {},
        },
        schema_version=1,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
