"""Inner-tier benchmark on the instrument: the fusion search of the max backbones vs the fair late
fusion of the same backbones, and the lambda sweep.

Saves benchmarks/results/fusion_search.json (``--profile hard``, the default) or
``fusion_search_<profile>.json`` (e.g. ``--profile interaction``), with a ``targets`` block.

1. ``accuracy``: the searched, retrained fusion of the max subnets (``fusion.cells`` x
   ``fusion.nodes``, the config's lambda, the LUT's costs) over seeds, on test against the fair
   late-fusion control of the SAME backbones (the better on val of ``late-fusion-bayes`` and
   ``late-fusion-linear``, ``harmonic_nas.fusion.late.fair_late_fusion``), with
   ``late-fusion-avg`` and every single modality beside it. Targets (the next issue's; expected
   to be missed by today's method): ``fused_vs_late_fusion_same_backbones_points`` >= -0.5 (test,
   mean over seeds, per-seed values listed) at ``fused_latency_over_late_fusion_same_backbones``
   <= 0.9 (both sides LUT totals of the same table). The same searches under the reference
   code's protocol (``fusion.arch_split: 0``) give the val-test gap before / after the honest one.
2. ``lambda``: a lambda_lat sweep (every seed): the chosen operators, their LUT latency, the
   model's LUT latency and val / test at each lambda. Targets: ``lambda_sweep_distinct_op_mixes``
   >= 3 (the most frequent operator mix over seeds at each lambda, counted over lambda) and
   ``lambda_sweep_latency_drop`` <= 0.7 (mean operator latency at the largest lambda / at
   lambda 0; the mean must not grow from one lambda to the next).
3. ``ablation``: ``fusion.late_skip`` off / on x ``fusion.mixup`` 0 / the config's.
4. ``cache``: time per candidate with the feature cache vs running the backbones every batch.
5. ``paper``: one candidate at the paper's fusion defaults (C=192, L=16, batch 96, 25 + 25 epochs;
   op costs from the published Jetson TX2 fusion table when present): CPU time, FLOPs, FLOP/s.

Seed ``s`` is a whole pipeline shared with the other benchmarks (benchmarks/_pipelines.py:
``runs/bench-<profile>-s<s>``, dataset, 20-epoch supernets, host LUT); every comparison is
paired within a seed and averaged over seeds. Parts 2-5 use the first seed's run, with every seed
for the fusion search. Times are CPU seconds of this process (1 intra-op thread).

    .venv/bin/python benchmarks/fusion_search.py [--profile hard] [--seeds 0 1 2]
        [--parts accuracy lambda ablation cache paper]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from _bench_config import bench_identity  # benchmarks/_bench_config.py
from _pipelines import BENCH_PROFILES, open_pipeline, pipeline_config  # benchmarks/_pipelines.py
from _targets import target  # benchmarks/_targets.py
from harmonic_nas.config import ExperimentConfig, FusionConfig
from harmonic_nas.fusion import (
    compute_feature_cache,
    evaluate,
    late,
    live_feature_source,
    search_fusion,
)
from harmonic_nas.fusion.cache import FeatureCache
from harmonic_nas.fusion.runner import extract_backbones
from harmonic_nas.search.baselines import late_fusion_rows
from harmonic_nas.search.genome import MultimodalGenome
from harmonic_nas.utils.io import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "fusion_search.json"
REFERENCE_FUSION_LUT = ROOT.parent / "shared" / "reference-luts" / "lut_fusion_tx2.json"
CPU = torch.device("cpu")
LAMBDAS = (0.0, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds of this process)."""
    w, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - w, time.process_time() - c


class Bench:
    """The run's problem (dataset, supernets, LUT) and the max backbones' feature cache."""

    def __init__(self, cfg: ExperimentConfig) -> None:
        self.cfg = cfg
        self.problem, self.stage_s = open_pipeline(cfg)
        self.genome = MultimodalGenome(
            self.problem.space.max_genome().backbones, cfg.fusion.cells, cfg.fusion.nodes
        )
        self.arch = self.problem.arch_spec(self.genome)
        self.base = self.problem.cost_model.base_cost(self.arch)
        self.op_costs = self.problem.op_costs

    def cache(self, L: int, splits: tuple[str, ...]) -> FeatureCache:
        return compute_feature_cache(
            extract_backbones(self.cfg, self.arch, self.problem.supernets),
            self.problem.dataset,
            splits,
            L=L,
            fusion_points=self.cfg.fusion.fusion_points,
            bn_recalib_batches=self.cfg.pretrain.bn_recalib_batches,
            batch_size=self.cfg.pretrain.batch_size,
            device=CPU,
            seed=self.cfg.seed,
        )

    def search(self, cache: FeatureCache, fcfg: FusionConfig, seed: int) -> dict[str, Any]:
        res, _, cpu = _timed(
            search_fusion,
            cache,
            fcfg,
            cells=self.cfg.fusion.cells,
            nodes=self.cfg.fusion.nodes,
            op_costs=self.op_costs,
            base_cost=self.base,
            seed=seed,
            device=CPU,
        )
        test = evaluate(
            res.net,
            cache.split("test"),
            cache.task,
            threshold=fcfg.threshold,
            select=res.net.used_points,
        )[1]
        cost = self.problem.cost_model.cost_arch(self.arch.with_genotype(res.genotype))
        return {
            "seed": seed,
            "val": res.val_metric,
            "test": test,
            "genotype": str(res.genotype),
            "ops": list(res.genotype.ops),
            "ops_latency_ms": sum(self.op_costs[o][0] for o in res.genotype.ops),
            "latency_ms": cost.total.latency_ms,
            "cpu_s": cpu,
        }


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def part_accuracy(benches: dict[int, Bench], results: dict[str, Any]) -> None:
    """Seed ``s`` is a whole pipeline (dataset, supernets, LUT, search, baselines); every
    comparison is paired within a seed, then averaged."""
    out: dict[str, dict[str, Any]] = {name: {"runs": []} for name in ("honest", "reference")}
    per_seed: list[dict[str, Any]] = []
    for seed, b in benches.items():
        fcfg = b.cfg.fusion
        cache = b.cache(fcfg.L, ("train", "val", "test"))
        for name, pcfg in (
            ("honest", fcfg),
            ("reference", fcfg.model_copy(update={"arch_split": 0.0})),
        ):
            out[name]["arch_split"] = pcfg.arch_split
            out[name]["runs"].append(b.search(cache, pcfg, seed))
            r = out[name]["runs"][-1]
            print(
                f"  {name} seed {seed}: val {r['val']:.4f} test {r['test']:.4f} "
                f"{r['latency_ms']:.4f} ms  {r['genotype']}",
                flush=True,
            )
        baselines = late_fusion_rows(b.problem)
        by = {r["name"]: r for r in baselines}
        singles = [r for r in baselines if r["name"].startswith("single:")]
        best_single = max(singles, key=lambda r: r["val_metric"])  # chosen on val
        fair = late.fair_late_fusion(baselines)  # chosen on val
        fused = out["honest"]["runs"][-1]["test"]
        fused_lat = out["honest"]["runs"][-1]["latency_ms"]
        per_seed.append(
            {
                "seed": seed,
                "baselines": baselines,
                "best_single_modality": best_single["name"],
                "fair_late_fusion": fair["name"],
                "fused_vs_late_fusion_same_backbones_points": 100 * (fused - fair["test_metric"]),
                "fused_latency_over_late_fusion_same_backbones": fused_lat / fair["latency_ms"],
                "fused_vs_late_fusion_avg_points": 100
                * (fused - by["late-fusion-avg"]["test_metric"]),
                "fused_vs_late_fusion_linear_points": 100
                * (fused - by["late-fusion-linear"]["test_metric"]),
                "fused_vs_best_single_points": 100 * (fused - best_single["test_metric"]),
            }
        )
    for x in out.values():
        rows = x["runs"]
        x["val_mean"], x["val_std"] = _mean_std([r["val"] for r in rows])
        x["test_mean"], x["test_std"] = _mean_std([r["test"] for r in rows])
        x["latency_ms_mean"] = statistics.mean(r["latency_ms"] for r in rows)
        x["val_test_gap_points"] = 100 * (x["val_mean"] - x["test_mean"])
    names = [r["name"] for r in per_seed[0]["baselines"]]
    summary = []
    for name in names:
        rows = [next(r for r in s["baselines"] if r["name"] == name) for s in per_seed]
        val, val_std = _mean_std([r["val_metric"] for r in rows])
        test, test_std = _mean_std([r["test_metric"] for r in rows])
        summary.append(
            {
                "name": name,
                "description": rows[0]["description"],
                "val_metric": val,
                "val_metric_std": val_std,
                "test_metric": test,
                "test_metric_std": test_std,
                "latency_ms": statistics.mean(r["latency_ms"] for r in rows),
            }
        )
    first = next(iter(benches.values())).cfg.fusion
    results["accuracy"] = {
        "settings": {
            k: getattr(first, k)
            for k in ("C", "L", "epochs", "retrain_epochs", "batch_size", "cells", "nodes")
        }
        | {"lambda_lat": first.lambda_lat, "arch_split": first.arch_split},
        **out,
        "baselines": summary,
        "per_seed": per_seed,
        "fused_vs_late_fusion_same_backbones_points_per_seed": [
            s["fused_vs_late_fusion_same_backbones_points"] for s in per_seed
        ],
        **{
            key: statistics.mean(s[key] for s in per_seed)
            for key in (
                "fused_vs_late_fusion_same_backbones_points",
                "fused_latency_over_late_fusion_same_backbones",
                "fused_vs_late_fusion_avg_points",
                "fused_vs_late_fusion_linear_points",
                "fused_vs_best_single_points",
            )
        },
    }


def part_lambda(b: Bench, seeds: list[int], lambdas: list[float], results: dict[str, Any]) -> None:
    base = b.cfg.fusion
    cache = b.cache(base.L, ("train", "val", "test"))
    rows = []
    for lam in lambdas:
        fcfg = base.model_copy(update={"lambda_lat": lam, "lambda_energy": 0.0})
        runs = [b.search(cache, fcfg, seed) for seed in seeds]
        row = {
            "lambda_lat": lam,
            "ops_latency_ms": statistics.mean(r["ops_latency_ms"] for r in runs),
            "latency_ms": statistics.mean(r["latency_ms"] for r in runs),
            "val": statistics.mean(r["val"] for r in runs),
            "val_std": statistics.stdev(r["val"] for r in runs) if len(runs) > 1 else 0.0,
            "test": statistics.mean(r["test"] for r in runs),
            "test_std": statistics.stdev(r["test"] for r in runs) if len(runs) > 1 else 0.0,
            "mixes": [sorted(r["ops"]) for r in runs],
            "runs": runs,
        }
        rows.append(row)
        print(
            f"  lambda {lam:>5}: ops {row['ops_latency_ms']:.4f} ms, model {row['latency_ms']:.4f}"
            f" ms, val {row['val']:.4f}, test {row['test']:.4f}  {row['mixes']}",
            flush=True,
        )
    mixes = {tuple(m) for r in rows for m in r["mixes"]}
    modal = [Counter(tuple(m) for m in r["mixes"]).most_common(1)[0][0] for r in rows]
    lats = [r["ops_latency_ms"] for r in rows]
    results["lambda_sweep"] = {
        "most_frequent_mix_per_lambda": [list(m) for m in modal],
        "distinct_most_frequent_mixes": len(set(modal)),
        "latency_drop": lats[-1] / lats[0] if lats[0] > 0 else None,
        "arch_lr": base.arch_lr,
        "op_costs_ms_mj": b.op_costs,
        "base_cost": {"latency_ms": b.base.latency_ms, "energy_mj": b.base.energy_mj},
        "rows": rows,
        "distinct_op_mixes": len(mixes),
        "latency_non_increasing": all(y <= x + 1e-12 for x, y in itertools.pairwise(lats)),
    }


def part_ablation(b: Bench, seeds: list[int], results: dict[str, Any]) -> None:
    base = b.cfg.fusion
    cache = b.cache(base.L, ("train", "val", "test"))
    rows = []
    for late_skip, mixup in itertools.product((False, True), (0.0, base.mixup)):
        fcfg = base.model_copy(update={"late_skip": late_skip, "mixup": mixup})
        runs = [b.search(cache, fcfg, seed) for seed in seeds]
        row = {
            "late_skip": late_skip,
            "mixup": mixup,
            "val": statistics.mean(r["val"] for r in runs),
            "val_std": statistics.stdev(r["val"] for r in runs) if len(runs) > 1 else 0.0,
            "test": statistics.mean(r["test"] for r in runs),
            "test_std": statistics.stdev(r["test"] for r in runs) if len(runs) > 1 else 0.0,
            "latency_ms": statistics.mean(r["latency_ms"] for r in runs),
            "runs": runs,
        }
        rows.append(row)
        print(
            f"  late_skip {late_skip!s:<5} mixup {mixup}: val {row['val']:.4f}, "
            f"test {row['test']:.4f}, {row['latency_ms']:.4f} ms",
            flush=True,
        )
    results["ablation"] = {"rows": rows}


def part_cache_vs_live(
    b: Bench, fcfg: FusionConfig, costs: Any, results: dict[str, Any], key: str
) -> None:
    times: dict[str, dict[str, Any]] = {}
    for mode in ("cache", "live"):
        make = compute_feature_cache if mode == "cache" else live_feature_source

        def candidate() -> Any:
            src = make(  # noqa: B023
                extract_backbones(b.cfg, b.arch, b.problem.supernets),
                b.problem.dataset,
                L=fcfg.L,
                fusion_points=fcfg.fusion_points,
                bn_recalib_batches=b.cfg.pretrain.bn_recalib_batches,
                batch_size=256,
                device=CPU,
                seed=b.cfg.seed,
            )
            return search_fusion(
                src,
                fcfg,
                cells=b.cfg.fusion.cells,
                nodes=b.cfg.fusion.nodes,
                op_costs=costs,
                seed=0,
                device=CPU,
            )

        res, wall, cpu = _timed(candidate)
        times[mode] = {"wall_s": wall, "cpu_s": cpu, **res.timings, "genotype": str(res.genotype)}
        print(f"  {mode}: {cpu:.1f}s CPU ({wall:.1f}s wall)", flush=True)
    results[key] = {
        "settings": {k: getattr(fcfg, k) for k in ("C", "L", "epochs", "retrain_epochs")},
        **times,
        "speedup_cpu": times["live"]["cpu_s"] / times["cache"]["cpu_s"],
        "same_genotype": times["cache"]["genotype"] == times["live"]["genotype"],
    }


def reference_op_costs(
    C: int, L: int, ops: tuple[str, ...]
) -> dict[str, tuple[float, float]] | None:
    if not REFERENCE_FUSION_LUT.is_file():
        return None
    table = json.loads(REFERENCE_FUSION_LUT.read_text())
    out = {}
    for op in ops:
        e = table.get(f"{op}-input:1_{C}_{L}-N:1-C:{C}-L:{L}")
        if e is None:
            return None
        out[op] = (float(e["lat"]), float(e["enrg"]))
    return out


def matmul_flops(n: int = 1024, reps: int = 8) -> float:
    """Best-of-``reps`` FLOP/s of an n x n x n float32 matmul (CPU time)."""
    a, m = torch.randn(n, n), torch.randn(n, n)
    a @ m
    return 2 * n**3 / min(_timed(torch.matmul, a, m)[2] for _ in range(reps))


def part_paper(b: Bench, results: dict[str, Any]) -> None:
    paper = FusionConfig()  # the paper's defaults (C=192, L=16, 25 + 25 epochs, batch 96)
    costs = reference_op_costs(paper.C, paper.L, paper.ops)
    if costs is None:
        paper = paper.model_copy(update={"lambda_lat": 0.0, "lambda_energy": 0.0})
    cache = b.cache(paper.L, ("train", "val"))
    one = paper.model_copy(update={"epochs": 1, "retrain_epochs": 1})
    counter = FlopCounterMode(display=False)
    kw: dict[str, Any] = {"cells": b.cfg.fusion.cells, "nodes": b.cfg.fusion.nodes}
    with counter:
        search_fusion(cache, one, op_costs=costs, seed=0, device=CPU, **kw)
    per_epoch = counter.get_total_flops()
    res, wall, cpu = _timed(search_fusion, cache, paper, op_costs=costs, seed=0, device=CPU, **kw)
    flops = per_epoch * paper.epochs
    floor = matmul_flops()
    results["paper_defaults"] = {
        "settings": {
            "C": paper.C,
            "L": paper.L,
            "batch_size": paper.batch_size,
            "epochs": paper.epochs,
            "op_costs": "jetson-tx2" if costs else "none",
        },
        "time_cpu_s": cpu,
        "time_wall_s": wall,
        "timings_wall": res.timings,
        "flops": flops,
        "achieved_flops_per_s": flops / cpu,
        "matmul_flops_per_s": floor,
        "ratio_to_matmul_floor": floor / (flops / cpu),
        "val": res.val_metric,
        "genotype": str(res.genotype),
    }
    print(f"  paper defaults: {cpu:.1f}s CPU, {flops / cpu / 1e9:.1f} GFLOP/s", flush=True)


def targets_of(r: dict[str, Any]) -> dict[str, Any]:
    """The instrument's targets (the next issue's goals; today's method is expected to miss
    them): accuracy points on test against the fair late fusion of the same backbones, mean
    over seeds, at a latency ratio from the same LUT totals; the lambda sweep's gradation."""
    out: dict[str, Any] = {}
    if "accuracy" in r:
        a = r["accuracy"]
        pts = a["fused_vs_late_fusion_same_backbones_points"]
        lat = a["fused_latency_over_late_fusion_same_backbones"]
        out["fused_vs_late_fusion_same_backbones_points"] = target(
            pts, -0.5, ">=", met=pts >= -0.5 and lat <= 0.9
        )
        out["fused_latency_over_late_fusion_same_backbones"] = target(lat, 0.9, "<=")
    if "lambda_sweep" in r:
        s = r["lambda_sweep"]
        out["lambda_sweep_distinct_op_mixes"] = target(s["distinct_most_frequent_mixes"], 3, ">=")
        drop = s["latency_drop"]
        out["lambda_sweep_latency_drop"] = target(
            drop, 0.7, "<=", met=drop is not None and drop <= 0.7 and s["latency_non_increasing"]
        )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="hard", choices=BENCH_PROFILES)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--lambdas", type=float, nargs="+", default=list(LAMBDAS))
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument(
        "--parts",
        nargs="+",
        default=["accuracy", "lambda"],
        choices=["accuracy", "lambda", "ablation", "cache", "paper"],
    )
    p.add_argument("--out", type=Path, default=None, help="default: fusion_search[_<profile>].json")
    args = p.parse_args(argv)
    if args.out is None:
        suffix = "" if args.profile == "hard" else f"_{args.profile}"
        args.out = OUT.with_name(f"fusion_search{suffix}.json")
    torch.set_num_threads(args.threads)

    def bench(seed: int) -> Bench:
        return Bench(pipeline_config(args.profile, seed))

    t0 = time.perf_counter()
    b = bench(args.seeds[0])
    cfg = b.cfg
    ds = b.problem.dataset
    results: dict[str, Any] = {
        "command": " ".join(["python", "benchmarks/fusion_search.py", *(argv or sys.argv[1:])]),
        "profile": args.profile,
        "config": "configs/quick.yaml via benchmarks/_pipelines.py",
        "machine": bench_identity(),
        "seeds": args.seeds,
        "threads": args.threads,
        "pretrain": cfg.pretrain.model_dump(mode="json"),
        "fusion": cfg.fusion.model_dump(mode="json"),
        "dataset": {"name": ds.name, **{s: len(ds.split(s)) for s in ("train", "val", "test")}},
        "energy_source": b.problem.cost_model.lut.energy_source,
    }
    if "accuracy" in args.parts:
        print("[1] fused max backbones vs late fusion, honest vs reference protocol", flush=True)
        part_accuracy({s: b if s == args.seeds[0] else bench(s) for s in args.seeds}, results)
    if "lambda" in args.parts:
        print("[2] lambda_lat sweep", flush=True)
        part_lambda(b, args.seeds, args.lambdas, results)
    if "ablation" in args.parts:
        print("[3] late skip x mixup", flush=True)
        part_ablation(b, args.seeds, results)
    if "cache" in args.parts:
        print("[4] cache vs backbones every batch", flush=True)
        part_cache_vs_live(b, cfg.fusion, b.op_costs, results, "cache_vs_live")
    if "paper" in args.parts:
        print("[5] paper defaults", flush=True)
        part_paper(b, results)
    results["wall_s"] = time.perf_counter() - t0
    results["targets"] = targets_of(results)
    atomic_write_json(args.out, results, schema_version=1)
    report(results)
    print(f"saved {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


def report(r: dict[str, Any]) -> None:
    print("\n== fusion search benchmark ==")
    if "accuracy" in r:
        a = r["accuracy"]
        for name in ("honest", "reference"):
            x = a[name]
            print(
                f"fused ({name} protocol, arch_split {x['arch_split']}): val {x['val_mean']:.4f}"
                f" ± {x['val_std']:.4f}, test {x['test_mean']:.4f} ± {x['test_std']:.4f}, "
                f"val-test gap {x['val_test_gap_points']:+.1f} pts"
            )
        for b in a["baselines"]:
            print(
                f"  {b['name']:<20} val {b['val_metric']:.4f} test {b['test_metric']:.4f} "
                f"{b['latency_ms']:.4f} ms"
            )
    if "lambda_sweep" in r:
        s = r["lambda_sweep"]
        print("lambda_lat | ops latency ms | model latency ms | val | test | op mixes")
        for row in s["rows"]:
            print(
                f"{row['lambda_lat']:>10} | {row['ops_latency_ms']:.4f} | {row['latency_ms']:.4f}"
                f" | {row['val']:.4f} ± {row['val_std']:.4f} | {row['test']:.4f} ± "
                f"{row['test_std']:.4f} | {row['mixes']}"
            )
    if "ablation" in r:
        print("late_skip | mixup | val | test | latency ms")
        for row in r["ablation"]["rows"]:
            print(
                f"{row['late_skip']!s:>9} | {row['mixup']} | {row['val']:.4f} ± {row['val_std']:.4f}"
                f" | {row['test']:.4f} ± {row['test_std']:.4f} | {row['latency_ms']:.4f}"
            )
    if "cache_vs_live" in r:
        c = r["cache_vs_live"]
        print(f"cache vs live: {c['speedup_cpu']:.1f}x CPU; same genotype {c['same_genotype']}")
    if "paper_defaults" in r:
        q = r["paper_defaults"]
        print(
            f"paper defaults: {q['time_cpu_s']:.1f}s CPU, {q['ratio_to_matmul_floor']:.2f}x "
            "from the matmul floor"
        )
    print("targets:")
    for name, t in r["targets"].items():
        print(
            f"  {name}: {t['value']} (target {t['op']} {t['target']}): {'met' if t['met'] else 'MISSED'}"
        )


if __name__ == "__main__":
    sys.exit(main())
