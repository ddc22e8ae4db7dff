"""How modalities should meet: fusion mode x fusion split, each beside the fair late fusion of the
same backbones (the ablation behind ``search.fusion_modes`` and ``fusion.fusion_split``).

Saves benchmarks/results/fusion_ablation.json (``--profile hard``, the default) or
``fusion_ablation_<profile>.json``, with a ``targets`` block.

Rows: ``fusion.fusion_split`` off / on (``--split``, default 0.3) x fusion mode
(``late``: the backbones' own classifiers by Bayes' rule, no fusion network; ``network``: the
searched fusion network alone, so backbone layers after its deepest fusion point do not run;
``network+late``: the fusion network plus the backbones' mean logits, today's ``late_skip``).
"Late skip on / off" is ``network+late`` / ``network``. Each row is measured on the backbones of
``--rungs`` ladder levels (smallest ... max subnets, ``SearchSpace.ladder``; the fusion network
has ``fusion.cells`` x ``fusion.nodes``), over seeds; beside every model, on the same backbones,
the fair late-fusion control (``harmonic_nas.fusion.late.fair_late_fusion``: the better on val of
``late-fusion-bayes`` and ``late-fusion-linear``). Accuracy is test (val chose everything), mean
over seeds with per-seed values; latency is the LUT total the search optimises (the raw layer
sum through the table's calibration) for both sides, raw sums recorded beside it.

Seed ``s`` with the split off is the shared pipeline ``runs/bench-<profile>-s<s>``
(benchmarks/_pipelines.py); with the split on, the supernets must not see the fusion split, so
it is a pipeline of its own (``fusion.fusion_split=<split>``: its own run directory and 20-epoch
supernets). Every (seed, split) is saved as soon as it is measured and reused by a rerun
(``--fresh`` measures again), so the benchmark can span sittings.

Targets, per row with a fusion network, ``<row>_vs_late_fusion_same_backbones_points`` >= -0.5
(test points over the fair late fusion, mean over seeds and rungs), met only when
``<row>_latency_over_late_fusion_same_backbones`` <= 0.9 as well (issue "the two tiers must win
on the hard profile"). The late rows carry no target: they are the control itself (their
figure vs the control says how often ``late-fusion-bayes`` is the fair choice).

    .venv/bin/python benchmarks/fusion_ablation.py [--profile hard] [--seeds 0 1 2]
        [--split 0.3] [--rungs 3] [--modes late network network+late]

A smoke run (about 3 minutes; its own run directories, never the shared pipelines):

    .venv/bin/python benchmarks/fusion_ablation.py --profile hard --seeds 0 --rungs 2 \\
        --set pretrain.epochs=1 --set fusion.epochs=1 --set fusion.retrain_epochs=1 \\
        --set fusion.C=8 --set fusion.L=4 --set device.repeats=2 --set device.warmup=1 \\
        --set dataset.options.train_per_class=12 --set dataset.options.val_per_class=6 \\
        --set dataset.options.test_per_class=6 --set dataset.options.train_speakers=6 \\
        --set dataset.options.val_speakers=3 --set dataset.options.test_speakers=3 \\
        --out fusion_ablation_smoke.json
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
from harmonic_nas.config import ExperimentConfig
from harmonic_nas.fusion import late
from harmonic_nas.fusion.runner import run_inner_tier
from harmonic_nas.search.baselines import late_fusion_rows
from harmonic_nas.search.evaluator import HarmonicProblem, genome_config
from harmonic_nas.search.genome import FUSION_MODES, MultimodalGenome, SearchSpace
from harmonic_nas.utils.io import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SCHEMA = 1
CPU = torch.device("cpu")
POINTS_GOAL = -0.5
LATENCY_GOAL = 0.9


def row_name(split: bool, mode: str) -> str:
    return f"{mode}|split_{'on' if split else 'off'}"


def pipeline(args: argparse.Namespace, seed: int, split: bool) -> ExperimentConfig:
    """The seed's shared pipeline (split off) or its fusion-split twin (split on)."""
    sets = [*args.set, f"fusion.fusion_split={args.split}"] if split else list(args.set)
    return pipeline_config(args.profile, seed, sets=sets)


def rung_backbones(problem: HarmonicProblem, rungs: int) -> list[MultimodalGenome]:
    """``rungs`` backbone pairs of the ladder (smallest ... max subnets), with the config's fusion
    cells and nodes (no fusion-mode gene: the mode is set per row)."""
    sp = problem.space
    plain = SearchSpace(sp.backbones, sp.cells, sp.nodes)
    fc = problem.cfg.fusion
    levels = plain.ladder(rungs) if rungs > 1 else [plain.max_genome()]
    return [MultimodalGenome(g.backbones, fc.cells, fc.nodes) for g in levels]


def control_total(problem: HarmonicProblem, genome: MultimodalGenome, name: str) -> float:
    """The fair control's latency as the search's LUT total (raw layer sum + overhead through the
    LUT's calibration, as every candidate's): ``late-fusion-bayes`` / ``-avg`` are exactly the
    ``late`` mode's model; ``late-fusion-linear`` runs the backbones up to their final
    representation and one linear head (as the baseline rows of `late_fusion_rows` do)."""
    from harmonic_nas.hardware.cost import weight_bytes
    from harmonic_nas.hardware.inventory import backbone_specs, late_fusion_head_spec

    cm = problem.cost_model
    if name != "late-fusion-linear":
        late_genome = MultimodalGenome(genome.backbones, genome.cells, genome.nodes, "late")
        return cm.cost_arch(problem.arch_spec(late_genome)).total.latency_ms
    specs = []
    for m, mc in problem.cfg.modalities.items():
        specs += backbone_specs(mc.preset, mc.shape, genome.backbones[m], problem.n_classes)[:-1]
    specs.append(late_fusion_head_spec(problem.cfg, problem.n_classes))
    raw = cm.cost_layers(specs) + cm.overhead()
    return cm.calibrated(raw, weight_bytes(specs)).latency_ms


def _metric(problem: HarmonicProblem, logits: torch.Tensor, split: str) -> float:
    ds = problem.dataset
    return late.score(logits, ds.split(split).labels, ds.task, problem.cfg.fusion.threshold)


def measure(
    problem: HarmonicProblem, genome: MultimodalGenome, mode: str, seed: int
) -> dict[str, Any]:
    """One model of one row: val, test, LUT latency (and what it is)."""
    g = MultimodalGenome(genome.backbones, genome.cells, genome.nodes, mode)
    t0 = time.process_time()
    if g.is_late:
        model = problem.late_model(g)
        arch = problem.arch_spec(g)
        val = _metric(problem, problem.predict(model, "val"), "val")
        genotype = None
    else:
        cfg = genome_config(problem.cfg, g)
        arch0 = problem.arch_spec(g)
        res = run_inner_tier(
            cfg,
            arch0,
            problem.dataset,
            problem.supernets,
            op_costs=problem.op_costs,
            base_cost=problem.cost_model.base_cost(arch0),
            seed=seed,
            device=CPU,
        )
        model, arch, val = res.model, res.arch, float(res.result.val_metric)
        genotype = str(res.result.genotype)
    test = _metric(problem, problem.predict(model, "test"), "test")
    cost = problem.cost_model.cost_arch(arch)
    return {
        "mode": mode,
        "key": g.key(),
        "val": val,
        "test": test,
        "latency_ms": cost.total.latency_ms,
        "raw_latency_ms": cost.raw_total.latency_ms,
        "pruned_latency_ms": cost.pruned.latency_ms,
        "genotype": genotype,
        "cpu_s": time.process_time() - t0,
    }


def one(args: argparse.Namespace, seed: int, split: bool) -> dict[str, Any]:
    """Every mode on every rung of one (seed, split) pipeline, with the controls."""
    cfg = pipeline(args, seed, split)
    problem, stage_s = open_pipeline(cfg)
    rungs = []
    for genome in rung_backbones(problem, args.rungs):
        rows = late_fusion_rows(problem, genome.backbones)
        fair = late.fair_late_fusion(rows)
        fair_latency = control_total(problem, genome, fair["name"])
        models = []
        for mode in args.modes:
            m = measure(problem, genome, mode, seed)
            m["vs_late_fusion_same_backbones_points"] = 100 * (m["test"] - fair["test_metric"])
            m["latency_over_late_fusion_same_backbones"] = m["latency_ms"] / fair_latency
            models.append(m)
            print(
                f"  seed {seed} {row_name(split, mode):<24} {genome.key()[:40]}: "
                f"val {m['val']:.4f} test {m['test']:.4f} ({m['vs_late_fusion_same_backbones_points']:+.2f} "
                f"pts) latency x{m['latency_over_late_fusion_same_backbones']:.3f}",
                flush=True,
            )
        rungs.append(
            {
                "backbones": {k: v.to_json() for k, v in genome.backbones.items()},
                "fair_late_fusion": {
                    **{k: fair[k] for k in ("name", "val_metric", "test_metric")},
                    "latency_ms": fair_latency,
                    "raw_latency_ms": fair["latency_ms"],
                },
                "late_fusion_rows": [
                    {k: r[k] for k in ("name", "val_metric", "test_metric", "latency_ms")}
                    for r in rows
                ],
                "models": models,
            }
        )
    return {
        "seed": seed,
        "fusion_split": args.split if split else 0.0,
        "run": cfg.name,
        "stage_s": stage_s,
        "dataset_meta": {
            k: v for k, v in problem.dataset.meta.items() if k in ("fusion_split", "options")
        },
        "rungs": rungs,
    }


def summarise(records: dict[str, Any], modes: list[str]) -> dict[str, Any]:
    """Per row: mean over seeds (each seed: mean over rungs) of test, val, latency and the
    comparisons with the fair late fusion of the same backbones; per-seed values listed."""
    out: dict[str, Any] = {}
    for split in (False, True):
        recs = [r for r in records.values() if (r["fusion_split"] > 0) == split]
        if not recs:
            continue
        for mode in modes:
            per_seed: dict[str, list[float]] = {}
            for rec in sorted(recs, key=lambda r: r["seed"]):
                ms = [m for rg in rec["rungs"] for m in rg["models"] if m["mode"] == mode]
                if not ms:
                    continue
                for key in (
                    "val",
                    "test",
                    "latency_ms",
                    "vs_late_fusion_same_backbones_points",
                    "latency_over_late_fusion_same_backbones",
                ):
                    per_seed.setdefault(key, []).append(statistics.fmean(m[key] for m in ms))
            if not per_seed:
                continue
            out[row_name(split, mode)] = {
                "mode": mode,
                "fusion_split": split,
                "n_seeds": len(per_seed["test"]),
                **{k: statistics.fmean(v) for k, v in per_seed.items()},
                "per_seed": per_seed,
            }
    return out


def targets_of(summary: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, row in summary.items():
        if row["mode"] == "late":
            continue
        lat = row["latency_over_late_fusion_same_backbones"]
        pts = row["vs_late_fusion_same_backbones_points"]
        out[f"{name}_vs_late_fusion_same_backbones_points"] = target(
            pts, POINTS_GOAL, ">=", met=pts >= POINTS_GOAL and lat <= LATENCY_GOAL
        )
        out[f"{name}_latency_over_late_fusion_same_backbones"] = target(lat, LATENCY_GOAL, "<=")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="hard", choices=BENCH_PROFILES)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--split", type=float, default=0.3, help="fusion.fusion_split of the on rows")
    ap.add_argument("--rungs", type=int, default=3, help="ladder levels of backbones (1: max)")
    ap.add_argument("--modes", nargs="+", default=list(FUSION_MODES), choices=FUSION_MODES)
    ap.add_argument("--no-split-rows", action="store_true", help="only the split-off rows")
    ap.add_argument("--fresh", action="store_true", help="measure again what is saved")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        help="key=value for the pipeline config (a smoke run; its own run directories)",
    )
    ap.add_argument("--out", type=Path, default=None, help="results JSON")
    args = ap.parse_args(argv)
    if not 0 < args.split < 1 or args.rungs < 1:
        print("error: --split must be in (0, 1) and --rungs >= 1", file=sys.stderr)
        return 2
    out: Path = args.out or RESULTS / (
        "fusion_ablation.json" if args.profile == "hard" else f"fusion_ablation_{args.profile}.json"
    )
    torch.set_num_threads(1)  # the CLI's policy: one intra-op thread per process
    settings = {
        "profile": args.profile,
        "split": args.split,
        "rungs": args.rungs,
        "modes": args.modes,
        "sets": args.set,
        "config": "configs/quick.yaml via benchmarks/_pipelines.py",
    }
    results = load_saved(out, settings, fresh=args.fresh, schema_version=SCHEMA)
    results.update(
        {
            "benchmark": "fusion_ablation",
            "command": " ".join(["python", "benchmarks/fusion_ablation.py", *sys.argv[1:]]),
            "machine": bench_identity(),
            "settings": settings,
        }
    )
    splits = (False,) if args.no_split_rows else (False, True)
    for seed in args.seeds:
        for split in splits:
            key = f"s{seed}-split_{'on' if split else 'off'}"
            if key in results["records"]:
                print(f"{key}: saved record reused", flush=True)
                continue
            t0 = time.perf_counter()
            rec = one(args, seed, split)
            rec["wall_s"] = time.perf_counter() - t0
            results["records"][key] = rec
            results["summary"] = summarise(results["records"], args.modes)
            results["targets"] = targets_of(results["summary"])
            atomic_write_json(out, results, schema_version=SCHEMA)
            print(f"{key}: done in {rec['wall_s'] / 60:.1f} min", flush=True)
    results["summary"] = summarise(results["records"], args.modes)
    results["targets"] = targets_of(results["summary"])
    atomic_write_json(out, results, schema_version=SCHEMA)
    print("row | test | val | latency ms | vs fair late fusion (pts) | latency ratio")
    for name, row in results["summary"].items():
        print(
            f"{name:<24} | {row['test']:.4f} | {row['val']:.4f} | {row['latency_ms']:.4f} | "
            f"{row['vs_late_fusion_same_backbones_points']:+.2f} | "
            f"{row['latency_over_late_fusion_same_backbones']:.3f}"
        )
    print_targets(results["targets"])
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
