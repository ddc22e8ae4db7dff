"""How good are the weight-sharing supernets? Inherited vs standalone accuracy on av-digits.

For each seed and modality: pretrain the supernet with the config's settings (quick demo settings
by default), then take the max subnet, the min subnet and N random subnets and measure their
TEST accuracy

* with inherited weights (extracted from the supernet, BN recalibrated on training batches), and
* trained from scratch alone with the same recipe and the same epoch budget ("standalone"),

and the Kendall tau between the two rankings. Also prints the pretraining and standalone
training times.

Targets: max subnet within 2 points of standalone, min subnet within 4 points, tau >= 0.5, and the
quick pretraining of both demo supernets <= 3 min.

    .venv/bin/python benchmarks/supernet_quality.py [--quick] [--seeds 0 1 2] [--random 10]
        [--config configs/quick.yaml] [--set batch_size=32 --set lr=0.005 ...] [--threads 1]
        [--data-option test_per_class=300]
    .venv/bin/python benchmarks/supernet_quality.py --retarget [--out FILE]

``--profile hard`` (the instrument, issue 22): the shared pipeline of that profile and seed 0
(benchmarks/_pipelines.py: its 20-epoch supernets, not a new pretraining), ``--subnets`` (>= 20)
subnets per modality spread over the space (the ladder of each modality's space from its smallest
to its largest genome, then random ones), each scored on VAL with inherited weights (BN
recalibrated) and trained alone TWICE from scratch with different seeds (the supernet's recipe and
epochs): ``kendall_tau_<m>`` is tau(inherited, first standalone), ``noise_ceiling_tau_<m>`` the tau
between the two standalone trainings (what a perfect predictor of one training's ranking can reach
on the other), target ``tau_over_ceiling_<m>`` >= 0.75. Resumable per subnet: every finished
subnet is saved at once in ``supernet_quality.subnets.json`` and reused.

    .venv/bin/python benchmarks/supernet_quality.py --profile hard [--subnets 20]

``--quick``: one seed and 4 random subnets. Saves ``benchmarks/results/supernet_quality.json``
(with a ``targets`` block). ``--retarget`` recomputes only the ``targets`` block of an existing
result file from its saved figures (nothing is re-run).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from scipy.stats import kendalltau

from _bench_config import repo_relative as _rel  # benchmarks/_bench_config.py
from _targets import print_targets, retarget, target  # benchmarks/_targets.py
from harmonic_nas.backbones import BackboneGenome, build_supernet
from harmonic_nas.config import load_config
from harmonic_nas.data import load_dataset
from harmonic_nas.pretrain import (
    evaluate_subnet,
    extract_calibrated,
    load_supernet,
    pretrain_supernet,
    train_standalone,
)
from harmonic_nas.utils.io import atomic_write_json
from harmonic_nas.utils.seeding import derive_seed, numpy_rng

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "supernet_quality.json"


def _architectures(supernet: Any, n_random: int, seed: int, modality: str) -> list[BackboneGenome]:
    rng = numpy_rng(seed, "supernet-quality", modality)
    archs = [supernet.max_genome(), supernet.min_genome()]
    seen = {g.active(supernet.preset.max_depth) for g in archs}
    while len(archs) < 2 + n_random:
        g = supernet.sample(rng)
        key = g.active(supernet.preset.max_depth)
        if key not in seen:
            seen.add(key)
            archs.append(g)
    return archs


def run_modality(cfg: Any, ds: Any, modality: str, n_random: int, seed: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    result = pretrain_supernet(cfg, ds, modality, force=True)
    pretrain_s = time.perf_counter() - t0
    supernet = load_supernet(cfg, modality, ds.num_classes)
    tr, te = ds.split("train"), ds.split("test")
    x_tr, y_tr, x_te, y_te = tr.inputs[modality], tr.labels, te.inputs[modality], te.labels
    pcfg = cfg.pretrain
    rows = []
    standalone_s = 0.0
    for i, genome in enumerate(_architectures(supernet, n_random, seed, modality)):
        sub = extract_calibrated(
            supernet,
            genome,
            x_tr,
            y_tr,
            batches=pcfg.bn_recalib_batches,
            batch_size=pcfg.batch_size,
            generator=torch.Generator().manual_seed(derive_seed(seed, "bn", i)),
        )
        inherited = evaluate_subnet(sub, x_te, y_te)
        # from scratch: a freshly initialised supernet's subnet, same recipe and epoch budget
        torch.manual_seed(derive_seed(seed, "standalone-init", modality, i))
        fresh = build_supernet(ds.modality(modality), supernet.preset.name, ds.num_classes)
        alone = fresh.extract(genome)
        t1 = time.perf_counter()
        train_standalone(alone, x_tr, y_tr, pcfg, epochs=pcfg.epochs, seed=derive_seed(seed, i))
        standalone_s += time.perf_counter() - t1
        standalone = evaluate_subnet(alone, x_te, y_te)
        rows.append(
            {
                "genome": genome.active(supernet.preset.max_depth).to_json(),
                "role": "max" if i == 0 else "min" if i == 1 else "random",
                "inherited": inherited,
                "standalone": standalone,
            }
        )
    tau = kendalltau([r["inherited"] for r in rows], [r["standalone"] for r in rows]).statistic
    return {
        "seed": seed,
        "modality": modality,
        "pretrain_s": pretrain_s,
        "standalone_s": standalone_s,
        "val_max": result.max_metric,
        "val_min": result.min_metric,
        "max_inherited": rows[0]["inherited"],
        "max_standalone": rows[0]["standalone"],
        "min_inherited": rows[1]["inherited"],
        "min_standalone": rows[1]["standalone"],
        "kendall_tau": float(tau) if tau == tau else 0.0,  # NaN when a ranking is constant
        "subnets": rows,
    }


def _ms(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


def targets_of(results: dict[str, Any]) -> dict[str, Any]:
    """The targets block, from the per-seed ``runs`` of a saved result (means over seeds).

    The subnet gaps are |inherited - standalone| test accuracy in points, per seed, averaged.
    """
    out: dict[str, Any] = {}
    for modality in results["summary"]:
        rs = [r for r in results["runs"] if r["modality"] == modality]
        for role, goal in (("max", 2.0), ("min", 4.0)):
            gap = statistics.fmean(
                100.0 * abs(r[f"{role}_inherited"] - r[f"{role}_standalone"]) for r in rs
            )
            out[f"{role}_subnet_gap_points_{modality}"] = target(gap, goal, "<=")
        tau = statistics.fmean(r["kendall_tau"] for r in rs)
        out[f"kendall_tau_{modality}"] = target(tau, 0.5, ">=")
    pretrain = statistics.fmean(results["pretrain_s_per_seed"])
    out["pretrain_both_s"] = target(pretrain, 180.0, "<=")
    return out


def spread_genomes(
    supernet: Any, space: Any, n: int, seed: int, modality: str
) -> list[BackboneGenome]:
    """``n`` distinct subnets spread over the space: the ladder of ``space`` (the modality's
    gene space) from the smallest to the largest genome (distinct active networks), then random
    ones."""
    depth = supernet.preset.max_depth
    out: list[BackboneGenome] = []
    seen: set[Any] = set()
    for g in (space.level_genome(i / max(n - 1, 1)) for i in range(n)):
        if g.active(depth) not in seen:
            seen.add(g.active(depth))
            out.append(g)
    rng = numpy_rng(seed, "supernet-quality", modality)
    while len(out) < n:
        g = supernet.sample(rng)
        if g.active(depth) not in seen:
            seen.add(g.active(depth))
            out.append(g)
    return out


def _tau(a: list[float], b: list[float]) -> float:
    t = kendalltau(a, b).statistic
    return float(t) if t == t else 0.0  # NaN when a ranking is constant


def run_instrument(args: argparse.Namespace) -> int:
    """The instrument's supernet quality on a profile's shared pipeline (see the docstring)."""
    from _bench_config import bench_identity, sidecar_fields
    from _pipelines import open_pipeline, pipeline_config
    from harmonic_nas.utils.io import read_json

    cfg = pipeline_config(args.profile, 0)
    problem, stage_s = open_pipeline(cfg)
    ds, pcfg = problem.dataset, cfg.pretrain
    side = args.out.with_name(args.out.stem + ".subnets.json")
    done: dict[str, Any] = read_json(side, schema_version=1) if side.is_file() else {}
    if done.get("profile") != args.profile:
        done = {"profile": args.profile, "subnets": {}}
    tr, va = ds.split("train"), ds.split("val")
    per_mod: dict[str, Any] = {}
    for m in cfg.modalities:
        supernet = problem.supernets[m]
        space = problem.space.backbones[m]
        for i, genome in enumerate(spread_genomes(supernet, space, args.subnets, 0, m)):
            key = f"{m}:{genome.active(supernet.preset.max_depth)}"
            if key in done["subnets"]:
                continue
            sub = extract_calibrated(
                supernet,
                genome,
                tr.inputs[m],
                tr.labels,
                batches=pcfg.bn_recalib_batches,
                batch_size=pcfg.batch_size,
                generator=torch.Generator().manual_seed(derive_seed(0, "bn", m, i)),
            )
            row: dict[str, Any] = {
                "modality": m,
                "genome": genome.active(supernet.preset.max_depth).to_json(),
                "inherited": evaluate_subnet(sub, va.inputs[m], va.labels),
            }
            for run in ("a", "b"):
                torch.manual_seed(derive_seed(0, "standalone-init", m, i, run))
                fresh = build_supernet(ds.modality(m), supernet.preset.name, ds.num_classes)
                alone = fresh.extract(genome)
                t0 = time.process_time()
                train_standalone(
                    alone, tr.inputs[m], tr.labels, pcfg, seed=derive_seed(0, m, i, run)
                )
                row[f"standalone_{run}"] = evaluate_subnet(alone, va.inputs[m], va.labels)
                row[f"standalone_{run}_cpu_s"] = time.process_time() - t0
            done["subnets"][key] = row
            atomic_write_json(side, {**done, **sidecar_fields(args.out)}, schema_version=1)
            print(
                f"{m} subnet {i}: inherited {row['inherited']:.4f} alone "
                f"{row['standalone_a']:.4f} / {row['standalone_b']:.4f}",
                flush=True,
            )
        rows = [r for r in done["subnets"].values() if r["modality"] == m]
        inh = [r["inherited"] for r in rows]
        a, b = [r["standalone_a"] for r in rows], [r["standalone_b"] for r in rows]
        tau, ceiling = _tau(inh, a), _tau(a, b)
        per_mod[m] = {
            "subnets": len(rows),
            "kendall_tau": tau,
            "kendall_tau_vs_second_training": _tau(inh, b),
            "noise_ceiling_tau": ceiling,
            "tau_over_ceiling": tau / ceiling if ceiling > 0 else None,
        }
    targets = {
        f"tau_over_ceiling_{m}": target(r["tau_over_ceiling"], 0.75, ">=")
        for m, r in per_mod.items()
    }
    results = {
        "benchmark": "supernet_quality",
        "command": "python benchmarks/supernet_quality.py --profile "
        f"{args.profile} --subnets {args.subnets}",
        "machine": bench_identity(),
        "profile": args.profile,
        "pipeline_seed": 0,
        "stage_s": stage_s,
        "pretrain": pcfg.model_dump(mode="json"),
        "split": "val",
        "per_modality": per_mod,
        "subnets_file": _rel(side),
        **{f"kendall_tau_{m}": r["kendall_tau"] for m, r in per_mod.items()},
        **{f"noise_ceiling_tau_{m}": r["noise_ceiling_tau"] for m, r in per_mod.items()},
        "targets": targets,
    }
    atomic_write_json(args.out, results, schema_version=1)
    print_targets(results["targets"])
    print(f"saved {_rel(args.out)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="1 seed, 4 random subnets")
    ap.add_argument(
        "--profile", default=None, help="the instrument: a profile's shared pipeline (e.g. hard)"
    )
    ap.add_argument("--subnets", type=int, default=20, help="with --profile: subnets per modality")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "quick.yaml")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--random", type=int, default=10, help="random subnets besides max and min")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a pretrain setting, e.g. --set batch_size=32 --set lr=0.005",
    )
    ap.add_argument(
        "--data-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="av-digits builder option, e.g. --data-option test_per_class=300",
    )
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument(
        "--retarget",
        action="store_true",
        help="only recompute the targets block of the existing --out file, then exit",
    )
    args = ap.parse_args(argv)
    if args.retarget:
        return retarget(args.out, targets_of, "supernet_quality result")
    if args.profile is not None:
        torch.set_num_threads(1)
        return run_instrument(args)
    torch.set_num_threads(args.threads)
    seeds = args.seeds[:1] if args.quick else args.seeds
    n_random = min(args.random, 4) if args.quick else args.random
    os.environ.setdefault("HARMONIC_NAS_CACHE", tempfile.mkdtemp(prefix="hn-bench-"))
    run_dir = Path(tempfile.mkdtemp(prefix="hn-sq-"))

    runs: list[dict[str, Any]] = []
    modalities: list[str] = []
    for seed in seeds:
        overrides: dict[str, Any] = {"seed": seed, "run_dir": str(run_dir), "name": f"sq{seed}"}
        base = load_config(args.config)
        pretrain = base.pretrain.model_dump()
        for item in args.set:
            key, _, value = item.partition("=")
            pretrain[key] = yaml.safe_load(value)
        overrides["pretrain"] = pretrain
        if args.data_option:
            dataset = base.dataset.model_dump(mode="json")
            for item in args.data_option:
                key, _, value = item.partition("=")
                dataset["options"][key] = yaml.safe_load(value)
            overrides["dataset"] = dataset
        cfg = load_config(args.config, overrides=overrides)
        ds = load_dataset(cfg)
        modalities = list(cfg.modalities)
        for modality in modalities:
            r = run_modality(cfg, ds, modality, n_random, seed)
            runs.append(r)
            print(
                f"seed {seed} {modality:6s}: max {100 * r['max_inherited']:.1f} (alone "
                f"{100 * r['max_standalone']:.1f})  min {100 * r['min_inherited']:.1f} (alone "
                f"{100 * r['min_standalone']:.1f})  tau {r['kendall_tau']:+.2f}  "
                f"pretrain {r['pretrain_s']:.0f}s  standalone x{2 + n_random} "
                f"{r['standalone_s']:.0f}s",
                flush=True,
            )

    summary: dict[str, Any] = {}
    for modality in modalities:
        rs = [r for r in runs if r["modality"] == modality]
        summary[modality] = {
            key: _ms([r[key] for r in rs])
            for key in (
                "max_inherited",
                "max_standalone",
                "min_inherited",
                "min_standalone",
                "kendall_tau",
                "pretrain_s",
                "standalone_s",
            )
        }
        summary[modality]["max_gap"] = _ms([r["max_standalone"] - r["max_inherited"] for r in rs])
        summary[modality]["min_gap"] = _ms([r["min_standalone"] - r["min_inherited"] for r in rs])
    per_seed_pretrain = [sum(r["pretrain_s"] for r in runs if r["seed"] == s) for s in seeds]
    print()
    print(
        f"{'':7s} {'max inh':>9s} {'max alone':>10s} {'min inh':>9s} {'min alone':>10s} {'tau':>6s}"
    )
    for modality in modalities:
        s = summary[modality]
        print(
            f"{modality:7s} {100 * s['max_inherited']['mean']:9.1f} "
            f"{100 * s['max_standalone']['mean']:10.1f} {100 * s['min_inherited']['mean']:9.1f} "
            f"{100 * s['min_standalone']['mean']:10.1f} {s['kendall_tau']['mean']:6.2f}"
        )
    print(
        f"pretraining of all supernets: {statistics.fmean(per_seed_pretrain):.0f} s per seed "
        f"({args.threads} thread(s))"
    )
    results: dict[str, Any] = {
        "benchmark": "supernet_quality",
        "command": "python benchmarks/supernet_quality.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "config": _rel(args.config),
        "pretrain": cfg.pretrain.model_dump(),
        "dataset": cfg.dataset.model_dump(mode="json"),
        "seeds": seeds,
        "random_subnets": n_random,
        "threads": args.threads,
        "runs": runs,
        "summary": summary,
        "pretrain_s_per_seed": per_seed_pretrain,
    }
    results["targets"] = targets_of(results)
    print_targets(results["targets"])
    atomic_write_json(args.out, results, schema_version=1)
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
