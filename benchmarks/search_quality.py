"""Outer-tier benchmark: NSGA-II vs random search on av-digits, the Pareto models vs the baselines,
and the search throughput.

For each seed (a whole pipeline: dataset, supernets, host LUT, searches; configs/quick.yaml
settings with the benchmarks' pretraining epochs, benchmarks/_bench_config.py) with EQUAL
candidate budgets (default population 16 x 4 generations):

1. hypervolume of NSGA-II vs random search on the run's fixed reference point (the objectives of
   the front: val metric and latency when energy is modelled from latency), target
   ``hv_ratio_nsga2_vs_random`` >= 1.10, and the fraction of the budget NSGA-II needs to reach
   random search's final hypervolume, ``nsga2_budget_to_random_final_hv`` <= 0.67 (1.0 when it
   never does);
2. the accuracy-best Pareto member CHOSEN ON VAL among those cheaper than ``late-fusion-avg``
   vs ``late-fusion-avg`` (test): target ``front_vs_late_fusion_points`` >= -0.5 points at lower
   latency (mean over seeds); the val-best member of the whole front is reported beside it;
3. the lowest-latency Pareto member whose val accuracy is within 1 point of the max-backbone
   fusion baseline (``bm-nas-max``, BM-NAS style, no hardware term): target
   ``latency_gain_vs_bm_nas_max`` >= 1.9 (mean latency ratio);
4. throughput with 2 local workers at the paper's fusion size (C=192, L=16, batch 96; 2 + 2
   epochs), and the projected time of the paper's budget (population 128 x 4, 25 + 25 epochs):
   target ``paper_scale_hours_2_workers`` <= 4 with multi-fidelity on (``screen``): every
   candidate pays its cheap evaluation (a screen: measured here, CPU seconds; halving: the
   ``fidelity_epochs`` of 25 + 25 at ``fidelity_fraction``), the promoted share measured in step
   5 the full one as well; the full-fidelity projection is reported beside it;
5. multi-fidelity: NSGA-II again with ``search.fidelity: screen`` and with ``halving`` on the same
   run (supernets, LUT, seed, budget, reference point): target ``multi_fidelity_hv_retained``
   >= 0.98 (screen's final hypervolume over full-fidelity NSGA-II's, mean over seeds), with the
   CPU seconds and promotion rates of each.

Every search re-scores its front with ``--rescore-seeds`` (default 3) seeds on val
(``search.rescore_seeds``: the noise-aware front, its val metric the mean) and scores the final
set on test with ``--test-seeds`` (default 3) retrainings; the projection of step 4 includes the
re-scoring of the front.

    .venv/bin/python benchmarks/search_quality.py [--seeds 0 1 2] [--population 16]
        [--generations 4] [--workers 2] [--rescore-seeds 3] [--test-seeds 3] [--skip-throughput]
    .venv/bin/python benchmarks/search_quality.py --resummarise [--out FILE]

``--resummarise`` recomputes only the summary and the ``targets`` block of a saved result from
its per-seed records and throughput (nothing is re-run). The summary's ``hv_ratio_ceiling`` is
the ratio a front made of the ideal point alone would reach over random search (normalised
hypervolume 1.0 over random's): no strategy can exceed it on that seed's reference points.

Runs live in ``runs/bench-search-quality-p<population>g<generations>-s<seed>``; results in
``benchmarks/results/search_quality.json`` (with a ``targets`` block).
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

from _bench_config import load_bench_config  # benchmarks/_bench_config.py
from _bench_config import repo_relative as _rel
from _targets import target  # benchmarks/_targets.py
from harmonic_nas.config import ExperimentConfig
from harmonic_nas.data import load_dataset
from harmonic_nas.errors import HarmonicError
from harmonic_nas.pretrain import pretrain_supernet
from harmonic_nas.search import run_search
from harmonic_nas.search.baselines import run_baselines
from harmonic_nas.search.evaluator import HarmonicProblem, space_from_config
from harmonic_nas.search.final import study_points
from harmonic_nas.search.pareto import normalised_hypervolume
from harmonic_nas.search.problem import SCREEN_FIDELITY, fidelity_epochs
from harmonic_nas.search.records import SearchRecords
from harmonic_nas.search.storage import open_storage
from harmonic_nas.utils.io import atomic_write_json, read_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "search_quality.json"
PAPER_CANDIDATES = 128 * 4
PAPER_EPOCHS = 25
#: the multi-fidelity modes compared with full fidelity; the targets are the first one's
MULTI_FIDELITY_MODES = ("screen", "halving")


def make_config(args: argparse.Namespace, seed: int) -> ExperimentConfig:
    data = args.base.model_dump(mode="json")
    data.update(
        name=f"bench-search-quality-p{args.population}g{args.generations}-s{seed}", seed=seed
    )
    data["run_dir"] = str(ROOT / "runs")
    data["search"].update(
        population=args.population,
        generations=args.generations,
        fidelity="full",
        rescore_seeds=args.rescore_seeds,
        test_seeds=args.test_seeds,
    )
    return ExperimentConfig.model_validate(data)


def add_seed_options(ap: argparse.ArgumentParser) -> None:
    """``--rescore-seeds`` / ``--test-seeds``: the settings of every search of this benchmark
    (also of the benchmarks that continue its runs)."""
    ap.add_argument(
        "--rescore-seeds",
        type=int,
        default=3,
        help="search.rescore_seeds: seeds per front member's val score (noise-aware front)",
    )
    ap.add_argument(
        "--test-seeds", type=int, default=3, help="search.test_seeds: retrainings per test score"
    )


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
    """Normalised hypervolume of the front after each completed candidate (the study's
    objectives and fixed reference point)."""
    records = SearchRecords.from_study(study, population=population)
    ideal, ref = study_points(study)
    k = len(records.objectives)
    lo = (-ideal["val_metric"], ideal["latency_ms"], ideal["energy_mj"])[:k]
    hi = (-ref["val_metric"], ref["latency_ms"], ref["energy_mj"])[:k]
    return [
        normalised_hypervolume([r.minimised(k) for r in records.front(n)], lo, hi)
        for n in range(1, records.n_complete + 1)
    ]


_CHILDREN_SEEN = 0.0


def _children_cpu_s() -> float:
    """CPU seconds of terminated child processes (the search's workers) since the last call."""
    global _CHILDREN_SEEN
    usage = os.times()
    total = usage.children_user + usage.children_system
    delta, _CHILDREN_SEEN = total - _CHILDREN_SEEN, total
    return delta


def one_seed(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    cfg = make_config(args, seed)
    pretrain_s = ensure_supernets(cfg)
    out: dict[str, Any] = {"seed": seed, "run": _rel(cfg.run_path), "pretrain_s": pretrain_s}

    def with_fidelity(mode: str) -> ExperimentConfig:
        return cfg.model_copy(update={"search": cfg.search.model_copy(update={"fidelity": mode})})

    runs = (
        ("nsga2", cfg, "nsga2", None),
        ("random", cfg, "random", None),
        *(
            (f"nsga2_{mode}", with_fidelity(mode), "nsga2", f"{cfg.name}-nsga2-{mode}")
            for mode in MULTI_FIDELITY_MODES
        ),
    )
    for key, run_cfg, strategy, study_name in runs:
        _children_cpu_s()  # reset: pretraining's worker processes are not the search's
        t0, c0 = time.perf_counter(), time.process_time()
        s = run_search(run_cfg, strategy=strategy, study_name=study_name, finalize=key == "nsga2")
        study = load(cfg, s.study_name)
        records = SearchRecords.from_study(study, population=cfg.search.population)
        out[key] = {
            "study": s.study_name,
            "hypervolume": s.hypervolume,
            "n_complete": s.n_complete,
            "n_full_fidelity": sum(r.fidelity == "full" for r in records.records),
            "front_size": s.front_size,
            "wall_s": time.perf_counter() - t0,
            # the search's own process and its worker processes (children), one CPU clock
            "cpu_s": time.process_time() - c0 + _children_cpu_s(),
            "hv_curve": hv_curve(study, cfg.search.population),
        }
        print(f"  seed {seed} {key}: HV {s.hypervolume:.4f} ({s.n_complete})", flush=True)
    nsga, rnd = out["nsga2"], out["random"]
    for mode in MULTI_FIDELITY_MODES:
        mf = out[f"nsga2_{mode}"]
        mf["hv_retained"] = mf["hypervolume"] / nsga["hypervolume"] if nsga["hypervolume"] else 0
        mf["promotion_rate"] = mf["n_full_fidelity"] / max(mf["n_complete"], 1)
        mf["cpu_ratio_to_full"] = mf["cpu_s"] / nsga["cpu_s"]
    out["hv_ratio"] = nsga["hypervolume"] / rnd["hypervolume"] if rnd["hypervolume"] else math.inf
    reach = next((i + 1 for i, hv in enumerate(nsga["hv_curve"]) if hv >= rnd["hypervolume"]), None)
    out["nsga2_candidates_to_random_final_hv"] = reach
    out["nsga2_budget_fraction_to_random_final_hv"] = (
        reach / cfg.search.budget if reach is not None else 1.0
    )
    base = read_json(run_baselines(cfg), schema_version=1)["baselines"]
    by = {b["name"]: b for b in base}
    out["baselines"] = base
    pareto = read_json(cfg.run_path / "pareto.json", schema_version=1)
    members = pareto["members"]
    out["objectives"] = pareto.get("objectives")
    out["energy"] = pareto.get("energy")
    out["pareto"] = [
        {
            k: m.get(k)
            for k in (
                "id",
                "val_metric",
                "test_metric",
                "latency_ms",
                "energy_mj",
                "params",
                "missing_modalities",
            )
        }
        for m in members
    ]
    late = by["late-fusion-avg"]
    # the target's member: the val-best of those cheaper than late fusion (chosen on val); the
    # val-best of the whole front is reported beside it
    cheaper = [m for m in members if m["latency_ms"] < late["latency_ms"]]
    overall = max(members, key=lambda m: (m["val_metric"], -m["latency_ms"]))
    best = max(cheaper or members, key=lambda m: (m["val_metric"], -m["latency_ms"]))

    def versus_late(m: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": m["id"],
            "val_metric": m["val_metric"],
            "test_metric": m["test_metric"],
            "latency_ms": m["latency_ms"],
            "vs_late_fusion_points": 100 * (m["test_metric"] - late["test_metric"]),
            "latency_ratio_to_late_fusion": m["latency_ms"] / late["latency_ms"],
        }

    out["accuracy_best_overall"] = versus_late(overall)
    out["accuracy_best"] = {
        "among": "cheaper than late-fusion-avg" if cheaper else "whole front (none cheaper)",
        **versus_late(best),
        "late_fusion_avg_test": late["test_metric"],
        "late_fusion_avg_latency_ms": late["latency_ms"],
    }
    bm = by["bm-nas-max"]
    close = [m for m in members if m["val_metric"] >= bm["val_metric"] - 0.01]  # on val
    if close:
        fast = min(close, key=lambda m: m["latency_ms"])
        out["latency_best"] = {
            "id": fast["id"],
            "val_metric": fast["val_metric"],
            "test_metric": fast["test_metric"],
            "latency_ms": fast["latency_ms"],
            "baseline_val": bm["val_metric"],
            "baseline_test": bm["test_metric"],
            "baseline_latency_ms": bm["latency_ms"],
            "latency_gain": bm["latency_ms"] / fast["latency_ms"],
        }
    else:
        out["latency_best"] = None
    return out


def throughput(
    args: argparse.Namespace, seed: int, promotion: dict[str, float], front: dict[str, float]
) -> dict[str, Any]:
    cfg = make_config(args, seed)
    data = cfg.model_dump(mode="json")
    epochs = 2
    data["fusion"].update(C=192, L=16, batch_size=96, epochs=epochs, retrain_epochs=epochs)
    data["search"].update(population=4, generations=2, rescore_seeds=1)  # timing only
    cfg = ExperimentConfig.model_validate(data)
    ensure_supernets(cfg)
    name = f"throughput-w{args.workers}"
    t0 = time.perf_counter()
    s = run_search(cfg, workers=args.workers, study_name=name, finalize=False)
    wall = time.perf_counter() - t0
    study = load(cfg, name)
    done = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    durations, projected, per_epoch = [], [], []
    for t in done:
        assert t.datetime_start is not None and t.datetime_complete is not None
        dur = (t.datetime_complete - t.datetime_start).total_seconds()
        timings = t.user_attrs["evaluation"]["extra"]["timings"]
        per_search = timings["search_s"] / epochs
        per_retrain = timings["retrain_s"] / epochs
        other = max(dur - timings["search_s"] - timings["retrain_s"], 0.0)
        durations.append(dur)
        projected.append(other + PAPER_EPOCHS * (per_search + per_retrain))
        per_epoch.append((per_search, per_retrain))
    speedup = sum(durations) / wall
    per_candidate = statistics.mean(projected)
    # multi-fidelity at the paper's size: every candidate gets the cheap evaluation, the
    # promoted share (measured on av-digits) the full one as well.
    # halving: the cheap evaluation is fidelity_fraction of the 25 + 25 epochs
    cheap_search, cheap_retrain = fidelity_epochs(
        PAPER_EPOCHS, PAPER_EPOCHS, cfg.search.fidelity_fraction
    )
    cheap = [
        p - PAPER_EPOCHS * (s_ + r_) + cheap_search * s_ + cheap_retrain * r_
        for p, (s_, r_) in zip(projected, per_epoch, strict=True)
    ]
    # screen: no fusion training (its cost does not depend on the fusion size), measured here
    # on the same genomes, in this process (one thread), after one call that loads the supernets
    prob = HarmonicProblem(cfg, device=torch.device("cpu"))
    genomes = [prob.space.from_params(t.params) for t in done]
    prob.evaluate(genomes[0], seed=0, fidelity=SCREEN_FIDELITY)
    screen_cpu = []
    for g in genomes:
        c0 = time.process_time()
        prob.evaluate(g, seed=0, fidelity=SCREEN_FIDELITY)
        screen_cpu.append(time.process_time() - c0)
    cheap_s = {"halving": statistics.mean(cheap), "screen": statistics.mean(screen_cpu)}
    # the noise-aware front: (rescore_seeds - 1) more full evaluations per front member (the
    # front's size measured on av-digits); one after the other, no parallel speed-up assumed
    rescore_s = {m: (args.rescore_seeds - 1) * front[m] * per_candidate for m in front}
    multi = {
        mode: {
            "cheap_s": cheap_s[mode],
            "promotion_rate": promotion[mode],
            "projected_candidate_s": cheap_s[mode] + promotion[mode] * per_candidate,
            "rescore_h": rescore_s[mode] / 3600,
            "projected_paper_budget_h": (
                PAPER_CANDIDATES * (cheap_s[mode] + promotion[mode] * per_candidate) / speedup
                + rescore_s[mode]
            )
            / 3600,
        }
        for mode in MULTI_FIDELITY_MODES
    }
    multi["halving"].update(
        fidelity_fraction=cfg.search.fidelity_fraction, cheap_epochs=[cheap_search, cheap_retrain]
    )
    multi["screen"].update(cheap_epochs=[0, 0], screen_cpu_s=screen_cpu)
    return {
        "workers": args.workers,
        "fusion": {"C": 192, "L": 16, "batch_size": 96, "epochs": epochs},
        "fidelity": "full (measured); multi-fidelity projected from it",
        "candidates": s.n_complete,
        "wall_s": wall,
        "candidates_per_hour": 3600 * s.n_complete / wall,
        "mean_candidate_s": statistics.mean(durations),
        "parallel_speedup": speedup,
        "projected_candidate_s_at_25_epochs": per_candidate,
        "projected_paper_budget_h": (PAPER_CANDIDATES * per_candidate / speedup + rescore_s["full"])
        / 3600,
        "rescore_seeds": args.rescore_seeds,
        "multi_fidelity": multi,
        "cpu_count": os.cpu_count(),
    }


def fmt(v: Any, d: int = 3) -> str:
    if v is None:
        return "-"
    return f"{v:.{d}f}" if isinstance(v, float) else str(v)


def summarise(seeds: list[dict[str, Any]], population: int, budget: int) -> dict[str, Any]:
    """The across-seed summary of the per-seed records (also recomputed by ``--resummarise``)."""
    ratios = [r["hv_ratio"] for r in seeds]
    ceilings = [
        1.0 / r["random"]["hypervolume"] if r["random"]["hypervolume"] else math.inf for r in seeds
    ]
    fractions = [r["nsga2_budget_fraction_to_random_final_hv"] for r in seeds]
    vs_late = [r["accuracy_best"]["vs_late_fusion_points"] for r in seeds]
    lat_ratio = [r["accuracy_best"]["latency_ratio_to_late_fusion"] for r in seeds]
    overall = [r["accuracy_best_overall"]["vs_late_fusion_points"] for r in seeds]
    first_gen = [r["nsga2"]["hv_curve"][population - 1] for r in seeds]
    gains = [r["latency_best"]["latency_gain"] if r["latency_best"] else 0.0 for r in seeds]
    mf = {
        mode: {
            "hv_retained_mean": statistics.mean(r[f"nsga2_{mode}"]["hv_retained"] for r in seeds),
            "hv_retained_per_seed": [r[f"nsga2_{mode}"]["hv_retained"] for r in seeds],
            "promotion_rate_mean": statistics.mean(
                r[f"nsga2_{mode}"]["promotion_rate"] for r in seeds
            ),
            "cpu_ratio_mean": statistics.mean(
                r[f"nsga2_{mode}"]["cpu_ratio_to_full"] for r in seeds
            ),
            "cpu_ratio_per_seed": [r[f"nsga2_{mode}"]["cpu_ratio_to_full"] for r in seeds],
        }
        for mode in MULTI_FIDELITY_MODES
    }
    primary = MULTI_FIDELITY_MODES[0]
    summary: dict[str, Any] = {
        "budget": budget,
        "hv_ratio_mean": statistics.mean(ratios),
        "hv_ratio_per_seed": ratios,
        # the ratio a front made of the ideal point alone would reach (normalised HV 1.0):
        # no strategy can exceed it on that seed's reference point
        "hv_ratio_ceiling_per_seed": ceilings,
        "hv_ratio_ceiling_mean": statistics.mean(ceilings),
        "nsga2_budget_fraction_mean": statistics.mean(fractions),
        "front_vs_late_fusion_points_mean": statistics.mean(vs_late),
        "front_vs_late_fusion_points_per_seed": vs_late,
        "front_latency_ratio_to_late_fusion_mean": statistics.mean(lat_ratio),
        "front_overall_vs_late_fusion_points_per_seed": overall,
        # NSGA-II's hypervolume after its first generation (search.initial's seeded ladder +
        # random genomes) over random search's final one: what selection adds is the rest
        "nsga2_first_generation_hv_ratio_per_seed": [
            h / r["random"]["hypervolume"] for h, r in zip(first_gen, seeds, strict=True)
        ],
        "latency_gain_vs_bm_nas_max_mean": statistics.mean(gains),
        "latency_gain_vs_bm_nas_max_per_seed": gains,
        "multi_fidelity_mode": primary,
        "multi_fidelity": mf,
    }
    return summary


def targets_of(summary: dict[str, Any], tp: dict[str, Any] | None) -> dict[str, Any]:
    """The ``targets`` block from the summary and the throughput record."""
    primary = summary["multi_fidelity_mode"]
    mf = summary["multi_fidelity"]
    return {
        "hv_ratio_nsga2_vs_random": target(summary["hv_ratio_mean"], 1.10, ">="),
        "nsga2_budget_to_random_final_hv": target(
            summary["nsga2_budget_fraction_mean"], 0.67, "<="
        ),
        "front_vs_late_fusion_points": target(
            summary["front_vs_late_fusion_points_mean"],
            -0.5,
            ">=",
            met=summary["front_vs_late_fusion_points_mean"] >= -0.5
            and summary["front_latency_ratio_to_late_fusion_mean"] < 1.0,
        ),
        "latency_gain_vs_bm_nas_max": target(summary["latency_gain_vs_bm_nas_max_mean"], 1.9, ">="),
        "paper_scale_hours_2_workers": target(
            tp["multi_fidelity"][primary]["projected_paper_budget_h"] if tp else None, 4.0, "<="
        ),
        "multi_fidelity_hv_retained": target(mf[primary]["hv_retained_mean"], 0.98, ">="),
    }


def show(summary: dict[str, Any], targets: dict[str, Any]) -> None:
    print(
        f"hypervolume ratio NSGA-II / random x{summary['hv_ratio_mean']:.3f}; the most any front "
        f"could reach on these reference points (the ideal point alone) "
        f"x{summary['hv_ratio_ceiling_mean']:.3f}"
    )
    print()
    print(f"{'target':<36}{'value':>12}{'goal':>10}  met")
    for name, t in targets.items():
        print(f"{name:<36}{fmt(t['value']):>12}{t['op'] + ' ' + str(t['target']):>10}  {t['met']}")


def resummarise(path: Path) -> int:
    """Recompute the summary and the targets of a saved result from its per-seed records and
    throughput (nothing is re-run)."""
    try:
        results = read_json(path, schema_version=1, what="search_quality result")
    except HarmonicError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = results["settings"]
    summary = summarise(
        results["seeds"], settings["population"], settings["population"] * settings["generations"]
    )
    results["summary"] = summary
    results["targets"] = targets_of(summary, results["throughput"])
    atomic_write_json(path, results, schema_version=1)
    show(summary, results["targets"])
    print(f"updated summary and targets in {_rel(path)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--population", type=int, default=16)
    ap.add_argument("--generations", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    add_seed_options(ap)
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results JSON")
    ap.add_argument(
        "--resummarise",
        action="store_true",
        help="recompute only the summary and targets of the saved --out file (nothing is re-run)",
    )
    args = ap.parse_args(argv)
    if args.resummarise:
        return resummarise(args.out)
    torch.set_num_threads(1)  # the CLI's policy: one intra-op thread per process
    args.base = load_bench_config()  # read once: edits do not leak in
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = space_from_config(make_config(args, args.seeds[0]))
    budget = args.population * args.generations
    print(f"search space: {space.size():.3e} candidates; budget {budget} per strategy", flush=True)
    seeds = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        r = one_seed(args, seed)
        r["wall_s"] = time.perf_counter() - t0
        seeds.append(r)
        lb = r["latency_best"] or {}
        ab = r["accuracy_best"]
        print(
            f"seed {seed}: HV nsga2 {r['nsga2']['hypervolume']:.4f} random "
            f"{r['random']['hypervolume']:.4f} (x{r['hv_ratio']:.3f}); nsga2 reaches random's HV "
            f"after {r['nsga2_candidates_to_random_final_hv']} candidates; acc-best (val) "
            f"{ab['id']} test {ab['test_metric']:.4f} vs late-fusion-avg "
            f"{ab['late_fusion_avg_test']:.4f} at x{ab['latency_ratio_to_late_fusion']:.2f} "
            f"latency; latency gain vs bm-nas-max x{fmt(lb.get('latency_gain'))} "
            f"({r['wall_s'] / 60:.1f} min)",
            flush=True,
        )
    summary = summarise(seeds, args.population, budget)
    tp = None
    if not args.skip_throughput:
        fronts = {
            key: statistics.mean(r[f"nsga2{suffix}"]["front_size"] for r in seeds)
            for key, suffix in (("full", ""), *((m, f"_{m}") for m in MULTI_FIDELITY_MODES))
        }
        tp = throughput(
            args,
            args.seeds[0],
            {m: v["promotion_rate_mean"] for m, v in summary["multi_fidelity"].items()},
            fronts,
        )
        print(
            f"throughput ({tp['workers']} workers, C=192 L=16): {tp['candidates_per_hour']:.1f} "
            f"candidates/h, speed-up x{tp['parallel_speedup']:.2f}; projected paper budget: "
            f"{tp['projected_paper_budget_h']:.2f} h at full fidelity, "
            + ", ".join(
                f"{v['projected_paper_budget_h']:.2f} h with {m}"
                for m, v in tp["multi_fidelity"].items()
            ),
            flush=True,
        )
    targets = targets_of(summary, tp)
    show(summary, targets)
    atomic_write_json(
        args.out,
        {
            "command": " ".join(["python", "benchmarks/search_quality.py", *sys.argv[1:]]),
            "settings": {
                "population": args.population,
                "generations": args.generations,
                "rescore_seeds": args.rescore_seeds,
                "test_seeds": args.test_seeds,
                "seeds": args.seeds,
                "config": "configs/quick.yaml",
                "pretrain": args.base.pretrain.model_dump(mode="json"),
                "fusion": args.base.fusion.model_dump(mode="json"),
            },
            "seeds": seeds,
            "summary": summary,
            "throughput": tp,
            "targets": targets,
        },
        schema_version=1,
    )
    print(f"saved {_rel(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
