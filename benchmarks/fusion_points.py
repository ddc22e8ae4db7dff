"""Can intermediate fusion undercut late fusion of the same backbones? Fusion depth x operator.

The controlled experiment behind the inner tier's cost target (issue "the two tiers must win on
the hard profile", item 1): a fusion network that reads a backbone at an earlier block lets the
rest of that backbone (its later blocks, feature mix and classifier) be skipped, and the LUT
prices exactly the layers the deployed graph runs (``ArchCost.pruned``). This benchmark fixes the
fusion network to the cheapest shape (one cell, one node, no late skip) and sweeps WHERE it reads
each backbone and WHICH operator combines them, so that the accuracy cost of every latency saving
is measured directly, with no search in between.

Per seed (the shared pipeline ``runs/bench-<profile>-s<seed>``) and per ``--rungs`` ladder level
of backbones (1: the max subnets): for every depth pair in ``--depths`` (``d``: the d-th fusion
point from the end of a backbone, 0 = its final representation, 1 = its last block, ...) and every
operator in ``--ops``, the fixed network (cell inputs: the image point, the audio point; node: the
operator; trained from scratch on train features as the search's retraining does, ``--epochs``,
the config's fusion C, L and recipe) is scored on val and test, its LUT total (pruned) beside the
fair late fusion of the same backbones (``late.fair_late_fusion``, costed as fusion_ablation.py
costs it). Test is read for every row because the experiment's question is the trade-off itself;
nothing is chosen on it: the ``val_best_cheap`` row per seed (the best val among rows whose latency
is <= 0.9 x the control's) is chosen on val.

Targets (the issue's fused-vs-late-fusion pair, for the val-chosen cheap row, mean over seeds and
rungs): ``points_val_best_cheap_vs_late_fusion_same_backbones_points`` >= -0.5 (test points) and
``points_val_best_cheap_latency_over_late_fusion_same_backbones`` <= 0.9.

    .venv/bin/python benchmarks/fusion_points.py [--profile hard] [--seeds 0 1 2] [--rungs 1]
        [--depths 0,0 1,1 2,2 0,2 2,0] [--ops Sum ConcatFC] [--epochs 6]

Saves benchmarks/results/fusion_points.json (``fusion_points_<profile>.json`` for other
profiles), resumable per seed (``--fresh`` measures again). Once per file, ``reshape_costs``: the
fusion point's pool + projection of every map shape of the space, in its current graph (one fixed
max-pool) and in the slice form it replaced, timed in one interleaved run (the ratio is the
figure; ``--reshape-repeats``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from _bench_config import bench_identity  # benchmarks/_bench_config.py
from _pipelines import BENCH_PROFILES, open_pipeline, pipeline_config  # benchmarks/_pipelines.py
from _resume import load_saved  # benchmarks/_resume.py
from _targets import print_targets, target  # benchmarks/_targets.py
from fusion_ablation import control_total, rung_backbones  # benchmarks/fusion_ablation.py
from harmonic_nas.fusion import late
from harmonic_nas.fusion.cache import compute_feature_cache
from harmonic_nas.fusion.genotype import CellGenotype, FusionGenotype, NodeGenotype
from harmonic_nas.fusion.model import MultimodalNet
from harmonic_nas.fusion.runner import extract_backbones
from harmonic_nas.fusion.search import train_fixed
from harmonic_nas.hardware.inventory import space_layer_specs
from harmonic_nas.search.baselines import late_fusion_rows
from harmonic_nas.search.evaluator import HarmonicProblem, genome_config
from harmonic_nas.search.genome import MultimodalGenome
from harmonic_nas.utils.io import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SCHEMA = 1
CPU = torch.device("cpu")
POINTS_GOAL = -0.5
LATENCY_GOAL = 0.9


def parse_depths(values: list[str]) -> list[tuple[int, int]]:
    out = []
    for v in values:
        a, _, b = v.partition(",")
        if not (a.isdigit() and b.isdigit()):
            raise SystemExit(f"error: --depths takes pairs like 1,1 (image,audio); got {v!r}")
        out.append((int(a), int(b)))
    return out


def point_index(refs: list[tuple[str, int]], modality: str, depth: int) -> int | None:
    """Index among the cache's points of ``modality``'s ``depth``-th point from its end (None
    when the backbone has fewer points)."""
    mine = [i for i, (m, _) in enumerate(refs) if m == modality]
    return mine[-1 - depth] if depth < len(mine) else None


def genotype_of(i: int, j: int, op: str) -> FusionGenotype:
    """One cell reading points ``i`` and ``j``, one node ``op(x, y)``."""
    return FusionGenotype(
        cells=(CellGenotype(inputs=(i, j), nodes=(NodeGenotype(op=op, inputs=(0, 1)),)),),
        multiplier=1,
    )


def _score(problem: HarmonicProblem, model: torch.nn.Module, split: str) -> float:
    ds = problem.dataset
    logits = problem.predict(model, split)
    return late.score(logits, ds.split(split).labels, ds.task, problem.cfg.fusion.threshold)


def one_rung(
    args: argparse.Namespace, problem: HarmonicProblem, genome: MultimodalGenome, seed: int
) -> dict[str, Any]:
    rows = late_fusion_rows(problem, genome.backbones)
    fair = late.fair_late_fusion(rows)
    fair_latency = control_total(problem, genome, fair["name"])
    g = MultimodalGenome(genome.backbones, 1, 1, "network")
    cfg = genome_config(problem.cfg, g)
    fcfg = cfg.fusion
    arch0 = problem.arch_spec(g)
    backbones = extract_backbones(cfg, arch0, problem.supernets)
    cache = compute_feature_cache(
        backbones,
        problem.dataset,
        L=fcfg.L,
        fusion_points=fcfg.fusion_points,
        bn_recalib_batches=cfg.pretrain.bn_recalib_batches,
        batch_size=cfg.pretrain.batch_size,
        device=CPU,
        seed=cfg.seed,
    )
    mods = list(cfg.modalities)
    models = []
    for di, da in args.depths:
        i, j = (
            point_index(cache.point_refs, mods[0], di),
            point_index(cache.point_refs, mods[1], da),
        )
        if i is None or j is None:
            continue
        for op in args.ops:
            t0 = time.process_time()
            gt = genotype_of(i, j, op)
            net, val = train_fixed(cache, gt, fcfg, seed=seed, epochs=args.epochs, device=CPU)
            arch = arch0.with_genotype(gt)
            model = MultimodalNet(arch, backbones, net).eval()
            test = _score(problem, model, "test")
            cost = problem.cost_model.cost_arch(arch)
            m = {
                "depths": [di, da],
                "points": [list(cache.point_refs[i]), list(cache.point_refs[j])],
                "op": op,
                "val": float(val),
                "test": test,
                "latency_ms": cost.total.latency_ms,
                "pruned_latency_ms": cost.pruned.latency_ms,
                "vs_late_fusion_same_backbones_points": 100 * (test - fair["test_metric"]),
                "latency_over_late_fusion_same_backbones": cost.total.latency_ms / fair_latency,
                "cpu_s": time.process_time() - t0,
            }
            models.append(m)
            print(
                f"  seed {seed} depth {di},{da} {op:<12} val {m['val']:.4f} test {test:.4f} "
                f"({m['vs_late_fusion_same_backbones_points']:+.2f} pts) latency "
                f"x{m['latency_over_late_fusion_same_backbones']:.3f}",
                flush=True,
            )
    return {
        "backbones": {k: v.to_json() for k, v in genome.backbones.items()},
        "fair_late_fusion": {
            **{k: fair[k] for k in ("name", "val_metric", "test_metric")},
            "latency_ms": fair_latency,
        },
        "models": models,
        "val_best_cheap": val_best_cheap(models),
    }


def reshape_costs(shapes: list[tuple[int, ...]], C: int, L: int, repeats: int) -> dict[str, Any]:
    """The fusion point's path (pool + projection) timed in both graph forms in ONE interleaved
    run (ONNX Runtime CPU, one thread): one fixed max-pool (``FusionReshape`` revision 2) vs the
    slice form it replaced; p10 latencies in ms net of an empty model's call (the profiler's
    statistic), and their ratio per map shape."""
    from harmonic_nas.fusion.points import FusionReshape
    from harmonic_nas.hardware.backends import interleaved_latencies, make_runner
    from harmonic_nas.hardware.profiler import latency_stats, trivial_module

    torch.manual_seed(0)
    runners = [make_runner(*trivial_module(), "onnxruntime", 1)]
    for shape in shapes:
        for fixed in (True, False):
            m = FusionReshape(shape, C, L).eval()
            if not fixed:
                m.pool.fixed = None  # the slice form (revision 1)
            runners.append(make_runner(m, (torch.randn(1, *shape),), "onnxruntime", 1))
    p10 = [latency_stats(x).value for x in interleaved_latencies(runners, 50, repeats)]
    base = p10[0]
    out: dict[str, Any] = {"call_overhead_ms": base, "repeats": repeats, "C": C, "L": L}
    rows = []
    for k, shape in enumerate(shapes):
        fixed_ms, slices_ms = p10[1 + 2 * k] - base, p10[2 + 2 * k] - base
        rows.append(
            {
                "shape": list(shape),
                "fixed_pool_ms": fixed_ms,
                "slices_ms": slices_ms,
                "fixed_over_slices": fixed_ms / slices_ms if slices_ms > 0 else None,
            }
        )
    out["shapes"] = rows
    return out


def val_best_cheap(models: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The best row on val among those at <= LATENCY_GOAL x the control's latency."""
    cheap = [m for m in models if m["latency_over_late_fusion_same_backbones"] <= LATENCY_GOAL]
    return max(cheap, key=lambda m: m["val"]) if cheap else None


def summarise(records: dict[str, Any]) -> dict[str, Any]:
    """Per (depths, op): means over seeds (each seed: mean over rungs); the val-chosen cheap row."""
    rows: dict[str, dict[str, list[float]]] = {}
    best: dict[str, list[float]] = {}
    seeds = [r for r in records.values() if "seed" in r]  # not the reshape_costs record
    for rec in sorted(seeds, key=lambda r: r["seed"]):
        per: dict[str, dict[str, list[float]]] = {}
        for rung in rec["rungs"]:
            for m in rung["models"]:
                name = f"{m['depths'][0]},{m['depths'][1]}|{m['op']}"
                for k in (
                    "val",
                    "test",
                    "latency_ms",
                    "vs_late_fusion_same_backbones_points",
                    "latency_over_late_fusion_same_backbones",
                ):
                    per.setdefault(name, {}).setdefault(k, []).append(m[k])
            b = rung["val_best_cheap"]
            if b is not None:
                for k in (
                    "vs_late_fusion_same_backbones_points",
                    "latency_over_late_fusion_same_backbones",
                ):
                    best.setdefault(k, []).append(b[k])
        for name, vals in per.items():
            for k, v in vals.items():
                rows.setdefault(name, {}).setdefault(k, []).append(statistics.fmean(v))
    out: dict[str, Any] = {
        "rows": {
            name: {**{k: statistics.fmean(v) for k, v in vals.items()}, "per_seed": vals}
            for name, vals in rows.items()
        }
    }
    if best:
        out["val_best_cheap"] = {
            **{k: statistics.fmean(v) for k, v in best.items()},
            "per_rung": best,
        }
    return out


def targets_of(summary: dict[str, Any]) -> dict[str, Any]:
    b = summary.get("val_best_cheap")
    if b is None:
        return {}
    pts = b["vs_late_fusion_same_backbones_points"]
    lat = b["latency_over_late_fusion_same_backbones"]
    return {
        "points_val_best_cheap_vs_late_fusion_same_backbones_points": target(
            pts, POINTS_GOAL, ">=", met=pts >= POINTS_GOAL and lat <= LATENCY_GOAL
        ),
        "points_val_best_cheap_latency_over_late_fusion_same_backbones": target(
            lat, LATENCY_GOAL, "<="
        ),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="hard", choices=BENCH_PROFILES)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--rungs", type=int, default=1, help="ladder levels of backbones (1: max)")
    ap.add_argument("--depths", nargs="+", default=["0,0", "1,1", "2,2", "0,2", "2,0"])
    ap.add_argument("--ops", nargs="+", default=["Sum", "ConcatFC"])
    ap.add_argument("--epochs", type=int, default=6, help="training epochs of each network")
    ap.add_argument("--reshape-repeats", type=int, default=2000, help="timings per reshape form")
    ap.add_argument("--fresh", action="store_true", help="measure again what is saved")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        help="key=value for the pipeline config (a smoke run; its own run directories)",
    )
    ap.add_argument("--out", type=Path, default=None, help="results JSON")
    args = ap.parse_args(argv)
    args.depths = parse_depths(args.depths)
    if args.rungs < 1 or args.epochs < 1:
        print("error: --rungs and --epochs must be >= 1", file=sys.stderr)
        return 2
    out: Path = args.out or RESULTS / (
        "fusion_points.json" if args.profile == "hard" else f"fusion_points_{args.profile}.json"
    )
    torch.set_num_threads(1)  # the CLI's policy: one intra-op thread per process
    settings = {
        "profile": args.profile,
        "rungs": args.rungs,
        "depths": [list(d) for d in args.depths],
        "ops": args.ops,
        "epochs": args.epochs,
        "reshape_repeats": args.reshape_repeats,
        "sets": args.set,
        "config": "configs/quick.yaml via benchmarks/_pipelines.py",
    }
    results = load_saved(out, settings, fresh=args.fresh, schema_version=SCHEMA)
    results.update(
        {
            "benchmark": "fusion_points",
            "command": " ".join(["python", "benchmarks/fusion_points.py", *sys.argv[1:]]),
            "machine": bench_identity(),
            "settings": settings,
        }
    )
    if "reshape_costs" not in results["records"]:
        cfg0 = pipeline_config(args.profile, args.seeds[0], sets=list(args.set))
        maps = sorted(
            {
                tuple(s.input_shape)
                for s in space_layer_specs(cfg0)
                if s.kind == "fusion_reshape" and len(s.input_shape) == 3
            }
        )
        rec = reshape_costs(maps, cfg0.fusion.C, cfg0.fusion.L, args.reshape_repeats)
        results["records"]["reshape_costs"] = rec
        for r in rec["shapes"]:
            print(
                f"  reshape {r['shape']}: fixed pool {r['fixed_pool_ms']:.4f} ms, slices "
                f"{r['slices_ms']:.4f} ms",
                flush=True,
            )
    for seed in args.seeds:
        key = f"s{seed}"
        if key in results["records"]:
            print(f"{key}: saved record reused", flush=True)
            continue
        t0 = time.perf_counter()
        cfg = pipeline_config(args.profile, seed, sets=list(args.set))
        problem, stage_s = open_pipeline(cfg)
        rungs = [one_rung(args, problem, g, seed) for g in rung_backbones(problem, args.rungs)]
        results["records"][key] = {
            "seed": seed,
            "run": cfg.name,
            "stage_s": stage_s,
            "rungs": rungs,
            "wall_s": time.perf_counter() - t0,
        }
        results["summary"] = summarise(results["records"])
        results["targets"] = targets_of(results["summary"])
        atomic_write_json(out, results, schema_version=SCHEMA)
        print(f"{key}: done in {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
    results["summary"] = summarise(results["records"])
    results["targets"] = targets_of(results["summary"])
    atomic_write_json(out, results, schema_version=SCHEMA)
    for r in results["records"]["reshape_costs"]["shapes"]:
        print(f"reshape {r['shape']}: fixed pool / slices {r['fixed_over_slices']}")
    print("depths|op | test | val | vs fair late fusion (pts) | latency ratio")
    for name, row in results["summary"]["rows"].items():
        print(
            f"{name:<16} | {row['test']:.4f} | {row['val']:.4f} | "
            f"{row['vs_late_fusion_same_backbones_points']:+.2f} | "
            f"{row['latency_over_late_fusion_same_backbones']:.3f}"
        )
    print_targets(results["targets"])
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
