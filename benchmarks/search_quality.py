"""Outer-tier benchmark: NSGA-II vs random search on av-digits, the Pareto models vs the baselines,
and the search throughput.

For each seed (a whole pipeline: dataset, supernets, host LUT, searches; configs/quick.yaml
settings unless overridden) with EQUAL candidate budgets:

1. hypervolume (normalised, the run's fixed reference point) of NSGA-II vs random search, target
   ratio >= 1.10, and how many candidates NSGA-II needs to reach random's final hypervolume;
2. the accuracy-best Pareto model vs the best single modality (test), target >= +5 points;
3. the latency-best Pareto model whose test accuracy is within 1 point of the max-backbone fusion
   baseline (BM-NAS style, no hardware term) vs that baseline: target >= 1.9x lower latency;
4. throughput in candidates/hour with 2 local workers at the paper's fusion size (C=192, L=16,
   batch 96; few epochs), and the projected time of the paper's budget (population 128 x 4
   generations, 25 search + 25 retraining epochs), target <= 4 h. The projection scales each
   candidate's measured per-epoch search/retrain times to 25 epochs, keeps its other costs
   (feature caching, costing), and divides by the measured 2-worker parallel speed-up.

    .venv/bin/python benchmarks/search_quality.py [--quick] [--seeds 0 1 2]
        [--population 8] [--generations 3] [--workers 2]

The pipeline settings are configs/quick.yaml's (8 pretraining epochs, fusion C=32, L=4, 4 + 4
epochs); ``--quick`` lowers the budget to population 4 x 3 generations and the throughput study to
2 x 2 candidates with 1 + 1 epochs.
Runs live in ``runs/bench-search-quality-p<population>g<generations>-s<seed>``; results in ``benchmarks/results/search_quality.json``.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import torch

from harmonic_nas.config import ExperimentConfig, load_config
from harmonic_nas.data import load_dataset
from harmonic_nas.pretrain import pretrain_supernet
from harmonic_nas.search import run_search
from harmonic_nas.search.baselines import run_baselines
from harmonic_nas.search.evaluator import space_from_config
from harmonic_nas.search.pareto import normalised_hypervolume
from harmonic_nas.search.results import SearchRecords, study_points
from harmonic_nas.search.storage import open_storage
from harmonic_nas.utils.io import atomic_write_json, read_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "search_quality.json"
PAPER_CANDIDATES = 128 * 4
PAPER_EPOCHS = 25


def make_config(args: argparse.Namespace, seed: int) -> ExperimentConfig:
    data = args.base.model_dump(mode="json")
    data.update(
        name=f"bench-search-quality-p{args.population}g{args.generations}-s{seed}", seed=seed
    )
    data["run_dir"] = str(ROOT / "runs")
    data["search"].update(population=args.population, generations=args.generations)
    return ExperimentConfig.model_validate(data)


def ensure_supernets(cfg: ExperimentConfig) -> float:
    t0 = time.perf_counter()
    ds = load_dataset(cfg)
    for m in cfg.modalities:
        pretrain_supernet(cfg, ds, m)
    return time.perf_counter() - t0


def load(cfg: ExperimentConfig, study_name: str) -> optuna.Study:
    url = f"sqlite:///{(cfg.run_path / 'study.db').resolve()}"
    return optuna.load_study(study_name=study_name, storage=open_storage(url))


def hv_curve(study: optuna.Study, population: int) -> list[float]:
    """Normalised hypervolume of the front after each completed candidate."""
    records = SearchRecords.from_study(study, population=population)
    ideal, ref = study_points(study)
    lo = (-ideal["val_metric"], ideal["latency_ms"], ideal["energy_mj"])
    hi = (-ref["val_metric"], ref["latency_ms"], ref["energy_mj"])
    return [
        normalised_hypervolume([r.minimised() for r in records.front(k)], lo, hi)
        for k in range(1, records.n_complete + 1)
    ]


def one_seed(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    cfg = make_config(args, seed)
    pretrain_s = ensure_supernets(cfg)
    out: dict[str, Any] = {"seed": seed, "run": str(cfg.run_path), "pretrain_s": pretrain_s}
    times = {}
    for strategy in ("nsga2", "random"):
        t0 = time.perf_counter()
        s = run_search(cfg, strategy=strategy)
        times[strategy] = time.perf_counter() - t0
        out[strategy] = {
            "study": s.study_name,
            "hypervolume": s.hypervolume,
            "n_complete": s.n_complete,
            "front_size": s.front_size,
            "wall_s": times[strategy],
            "hv_curve": hv_curve(load(cfg, s.study_name), cfg.search.population),
        }
    nsga, rnd = out["nsga2"], out["random"]
    out["hv_ratio"] = nsga["hypervolume"] / rnd["hypervolume"] if rnd["hypervolume"] else math.inf
    target = rnd["hypervolume"]
    out["nsga2_candidates_to_random_final_hv"] = next(
        (i + 1 for i, hv in enumerate(nsga["hv_curve"]) if hv >= target), None
    )
    base = read_json(run_baselines(cfg), schema_version=1)["baselines"]
    by = {b["name"]: b for b in base}
    out["baselines"] = base
    members = read_json(cfg.run_path / "pareto.json", schema_version=1)["members"]
    out["pareto"] = [
        {k: m[k] for k in ("id", "val_metric", "test_metric", "latency_ms", "energy_mj", "params")}
        for m in members
    ]
    singles = [b for b in base if b["name"].startswith("single:")]
    best_single = max(singles, key=lambda b: b["test_metric"])
    acc_best = max(members, key=lambda m: m["test_metric"])
    out["accuracy_best"] = {
        "id": acc_best["id"],
        "test_metric": acc_best["test_metric"],
        "best_single": best_single["name"],
        "best_single_test": best_single["test_metric"],
        "gain_points": 100 * (acc_best["test_metric"] - best_single["test_metric"]),
    }
    bm = by["bm-nas-max"]
    close = [m for m in members if m["test_metric"] >= bm["test_metric"] - 0.01]
    if close:
        fast = min(close, key=lambda m: m["latency_ms"])
        out["latency_best"] = {
            "id": fast["id"],
            "test_metric": fast["test_metric"],
            "latency_ms": fast["latency_ms"],
            "energy_mj": fast["energy_mj"],
            "baseline_test": bm["test_metric"],
            "baseline_latency_ms": bm["latency_ms"],
            "baseline_energy_mj": bm["energy_mj"],
            "latency_gain": bm["latency_ms"] / fast["latency_ms"],
            "energy_gain": bm["energy_mj"] / fast["energy_mj"],
            "accuracy_drop_points": 100 * (bm["test_metric"] - fast["test_metric"]),
        }
    else:
        out["latency_best"] = None
    return out


def throughput(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    cfg = make_config(args, seed)
    data = cfg.model_dump(mode="json")
    epochs = 1 if args.quick else 2
    data["fusion"].update(C=192, L=16, batch_size=96, epochs=epochs, retrain_epochs=epochs)
    pop, gens = (2, 2) if args.quick else (4, 2)
    data["search"].update(population=pop, generations=gens)
    cfg = ExperimentConfig.model_validate(data)
    ensure_supernets(cfg)
    name = f"throughput-w{args.workers}"
    t0 = time.perf_counter()
    s = run_search(cfg, workers=args.workers, study_name=name, finalize=False)
    wall = time.perf_counter() - t0
    study = load(cfg, name)
    done = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    durations, projected = [], []
    for t in done:
        assert t.datetime_start is not None and t.datetime_complete is not None
        dur = (t.datetime_complete - t.datetime_start).total_seconds()
        timings = t.user_attrs["evaluation"]["extra"]["timings"]
        per_search = timings["search_s"] / epochs
        per_retrain = timings["retrain_s"] / epochs
        other = max(dur - timings["search_s"] - timings["retrain_s"], 0.0)
        durations.append(dur)
        projected.append(other + PAPER_EPOCHS * (per_search + per_retrain))
    speedup = sum(durations) / wall
    per_candidate = statistics.mean(projected)
    hours = PAPER_CANDIDATES * per_candidate / speedup / 3600
    return {
        "workers": args.workers,
        "fusion": {"C": 192, "L": 16, "batch_size": 96, "epochs": epochs},
        "candidates": s.n_complete,
        "wall_s": wall,
        "candidates_per_hour": 3600 * s.n_complete / wall,
        "mean_candidate_s": statistics.mean(durations),
        "parallel_speedup": speedup,
        "projected_candidate_s_at_25_epochs": per_candidate,
        "projected_paper_budget_h": hours,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }


def fmt(v: Any, d: int = 3) -> str:
    if v is None:
        return "-"
    return f"{v:.{d}f}" if isinstance(v, float) else str(v)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--population", type=int, default=None)
    ap.add_argument("--generations", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results JSON")
    args = ap.parse_args(argv)
    args.base = load_config(ROOT / "configs" / "quick.yaml")  # read once: edits do not leak in
    if args.population is None:
        args.population = 4 if args.quick else 8
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = space_from_config(make_config(args, args.seeds[0]))
    print(
        f"search space: {space.size():.3e} candidates; budget {args.population}x{args.generations}"
    )
    seeds = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        r = one_seed(args, seed)
        r["wall_s"] = time.perf_counter() - t0
        seeds.append(r)
        lb = r["latency_best"] or {}
        print(
            f"seed {seed}: HV nsga2 {r['nsga2']['hypervolume']:.4f} random "
            f"{r['random']['hypervolume']:.4f} (x{r['hv_ratio']:.3f}); nsga2 reaches random's HV "
            f"after {r['nsga2_candidates_to_random_final_hv']} candidates; acc-best "
            f"{r['accuracy_best']['gain_points']:+.1f} pts vs {r['accuracy_best']['best_single']}; "
            f"latency gain x{fmt(lb.get('latency_gain'))} at {fmt(lb.get('accuracy_drop_points'), 1)}"
            f" pts drop ({r['wall_s'] / 60:.1f} min)",
            flush=True,
        )
    ratios = [r["hv_ratio"] for r in seeds]
    gains = [r["accuracy_best"]["gain_points"] for r in seeds]
    lat = [r["latency_best"]["latency_gain"] for r in seeds if r["latency_best"]]
    summary: dict[str, Any] = {
        "hv_ratio_mean": statistics.mean(ratios),
        "hv_ratio_per_seed": ratios,
        "nsga2_candidates_to_random_final_hv": [
            r["nsga2_candidates_to_random_final_hv"] for r in seeds
        ],
        "budget": args.population * args.generations,
        "accuracy_gain_points_mean": statistics.mean(gains),
        "latency_gain_mean": statistics.mean(lat) if lat else None,
        "latency_gain_seeds": len(lat),
    }
    tp = None
    if not args.skip_throughput:
        tp = throughput(args, args.seeds[0])
        print(
            f"throughput ({tp['workers']} workers, C=192 L=16): {tp['candidates_per_hour']:.1f} "
            f"candidates/h, speed-up x{tp['parallel_speedup']:.2f}; projected paper budget "
            f"(512 candidates, 25+25 epochs): {tp['projected_paper_budget_h']:.2f} h"
        )
    print()
    print(f"{'metric':<48}{'value':>14}{'target':>12}")
    rows = [
        ("HV ratio NSGA-II / random (mean)", summary["hv_ratio_mean"], ">= 1.10"),
        (
            "accuracy-best vs best single modality (pts)",
            summary["accuracy_gain_points_mean"],
            ">= +5",
        ),
        ("latency gain vs max-backbone fusion (x)", summary["latency_gain_mean"], ">= 1.9"),
    ]
    if tp:
        rows += [
            ("throughput, candidates/hour", tp["candidates_per_hour"], ""),
            ("projected paper budget (h)", tp["projected_paper_budget_h"], "<= 4"),
        ]
    for name, value, target in rows:
        print(f"{name:<48}{fmt(value):>14}{target:>12}")
    atomic_write_json(
        args.out,
        {
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "quick": args.quick,
            "seeds": seeds,
            "summary": summary,
            "throughput": tp,
        },
        schema_version=1,
    )
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
