"""Inner-tier benchmark on the instrument: the fusion search of the max backbones vs the fair late
fusion of the same backbones, the lambda sweep and (interaction profile) the searched front's
val-best member vs bm-nas-max.

Saves benchmarks/results/fusion_search.json (``--profile hard``, the default) or
``fusion_search_<profile>.json`` (e.g. ``--profile interaction``), with a ``targets`` block.

1. ``accuracy``: the searched, retrained fusion of the max subnets (``fusion.cells`` x
   ``fusion.nodes``, the config's lambda and fusion size, the LUT's costs) in the fusion mode
   ``--fusion-mode`` (default: the config's ``fusion.late_skip``, i.e. ``network+late``), on
   test against the fair late-fusion control of the SAME backbones (the better on val of
   ``late-fusion-bayes`` and ``late-fusion-linear``, ``harmonic_nas.fusion.late.fair_late_fusion``),
   with ``late-fusion-avg`` and every single modality beside it. Targets (the next issue's;
   expected to be missed by today's method): ``fused_vs_late_fusion_same_backbones_points``
   >= -0.5 (test, mean over seeds, per-seed values listed) at
   ``fused_latency_over_late_fusion_same_backbones`` <= 0.9 (both sides LUT totals of the same
   table). The same searches under the reference code's protocol (``fusion.arch_split: 0``) give
   the val-test gap before / after the honest one.
2. ``lambda``: a lambda_lat sweep (every seed; lambda_energy 0): the chosen operators, their LUT
   latency, the model's LUT latency and val / test at each lambda. Its setting is its own and
   recorded: ``--lambda-size C,L`` (default the pipeline's fusion size; the operator costs must
   be reproducible there, e.g. 192,16), ``--lambda-mode`` (``network+late``: today's late skip;
   ``network``: the fusion network alone, backbone layers after its deepest fusion point
   pruned from the cost), ``--lambda-epochs`` / ``--lambda-retrain-epochs`` (default the
   config's). At a size other than the pipeline's, the run's host LUT is completed by profiling
   the layers of that size it lacks (the fusion operators and reshapes; nothing else changes).
   Targets: ``lambda_sweep_distinct_op_mixes`` >= 3 (the most frequent operator mix over seeds at
   each lambda, counted over lambda), ``lambda_sweep_latency_drop`` <= 0.7 (mean operator
   latency at the largest lambda / at lambda 0; the mean must not grow from one lambda to the
   next) and ``op_cost_rank_reproducibility_tau`` >= 0.8: the Kendall tau between two
   independent profilings of ``fusion.ops`` at the lambda sweep's size (each a separate
   :func:`harmonic_nas.hardware.profiler.profile_layers` run with the config's warm-up and
   repeats, as benchmarks/op_cost_reproducibility.py does; about a second at 192,16).
3. ``interaction`` (``--profile interaction`` only; in the default parts there): the val-best
   member of the seed's outer-tier front vs ``bm-nas-max`` (max subnets + fusion search at
   lambda 0, the run's baselines), both on test. The accuracy part's model is not that member:
   it is the max backbones' fusion, the same backbones as bm-nas-max with only lambda changed,
   so it could never show a latency gain over it; the issue's target is about the search's
   front. The front is the NSGA-II study ``benchmarks/search_quality.py`` runs on the same
   pipeline (its ``make_config``: ``--population`` x ``--generations``, default 16 x 4): a
   finished study is reused as it stands, a partial one resumed, a missing one run (hours at
   full size). Targets: ``interaction_val_best_vs_bm_nas_max_points`` >= -0.5 (test points,
   mean over seeds, per-seed values listed), met only with ``interaction_latency_over_bm_nas_max``
   <= 0.67 (mean over seeds; both sides the LUT total the search optimises).
4. ``ablation``: ``fusion.late_skip`` off / on x ``fusion.mixup`` 0 / the config's.
5. ``cache``: time per candidate with the feature cache vs running the backbones every batch.
6. ``paper``: one candidate at the paper's fusion defaults (C=192, L=16, batch 96, 25 + 25 epochs;
   op costs from the published Jetson TX2 fusion table when present): CPU time, FLOPs, FLOP/s.

Seed ``s`` is a whole pipeline shared with the other benchmarks (benchmarks/_pipelines.py:
``runs/bench-<profile>-s<s>``, dataset, 20-epoch supernets, host LUT); parts 1-3 run on every
seed's own pipeline (fusion seed ``s``), every comparison paired within a seed and averaged over
seeds. Parts 4-6 use the first seed's run, with every seed for the fusion search. The fusion
network trains on the dataset's fusion split when the pipeline has one (``--set
fusion.fusion_split=...``, as the inner tier does), else on train. Times are CPU seconds of this
process (1 intra-op thread).

Parts 1-3 are resumable: each finished (part, seed) record, and the operator profiling, is
saved at once (atomically) in the results file and reused by a rerun whose settings for that
part match (``--fresh`` measures everything again; ``--set`` changes give another file's
records nothing, as they change the file's settings).

    .venv/bin/python benchmarks/fusion_search.py [--profile hard] [--seeds 0 1 2]
        [--parts accuracy lambda interaction ablation cache paper] [--fusion-mode MODE]
        [--lambda-size C,L] [--lambda-mode network|network+late] [--lambdas ...]
        [--lambda-epochs N] [--lambda-retrain-epochs N] [--population 16] [--generations 4]
        [--fresh] [--set key=value ...] [--out FILE]

A smoke run (about a minute; its own run directories, never the shared pipelines):

    .venv/bin/python benchmarks/fusion_search.py --profile hard --seeds 0 \\
        --lambdas 0 1 --lambda-size 16,4 --lambda-mode network \\
        --set pretrain.epochs=1 --set fusion.epochs=1 --set fusion.retrain_epochs=1 \\
        --set fusion.C=8 --set fusion.L=4 --set device.repeats=2 --set device.warmup=1 \\
        --set dataset.options.train_per_class=12 --set dataset.options.val_per_class=6 \\
        --set dataset.options.test_per_class=6 --set dataset.options.train_speakers=6 \\
        --set dataset.options.val_speakers=3 --set dataset.options.test_speakers=3 \\
        --out fusion_search_smoke.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from scipy.stats import kendalltau
from torch.utils.flop_counter import FlopCounterMode

from _bench_config import bench_identity  # benchmarks/_bench_config.py
from _bench_config import repo_relative as _rel
from _pipelines import BENCH_PROFILES, open_pipeline, pipeline_config  # benchmarks/_pipelines.py
from _resume import load_saved, saved_record  # benchmarks/_resume.py
from _targets import print_targets, target  # benchmarks/_targets.py
from harmonic_nas.config import ExperimentConfig, FusionConfig
from harmonic_nas.data.fusion_split import fusion_dataset
from harmonic_nas.fusion import (
    compute_feature_cache,
    evaluate,
    late,
    live_feature_source,
    search_fusion,
)
from harmonic_nas.fusion.cache import FeatureCache
from harmonic_nas.fusion.runner import extract_backbones
from harmonic_nas.search import run_search
from harmonic_nas.search.baselines import late_fusion_rows, run_baselines
from harmonic_nas.search.evaluator import genome_config
from harmonic_nas.search.genome import MultimodalGenome
from harmonic_nas.search.initial import ladder_size
from harmonic_nas.search.pareto_record import ParetoRecord
from harmonic_nas.utils.io import atomic_write_json, read_json
from op_cost_reproducibility import TAU_GOAL, parse_size, profile_once  # benchmarks/
from search_quality import (  # benchmarks/: the outer tier's study settings and its controls
    LATE_FRONTIER,
    _bb_key,
    late_fusion_frontier,
    make_config,
    study_candidates,
)
from search_quality import load as sq_load

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "fusion_search.json"
REFERENCE_FUSION_LUT = ROOT.parent / "shared" / "reference-luts" / "lut_fusion_tx2.json"
CPU = torch.device("cpu")
LAMBDAS = (0.0, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
SCHEMA = 1
NETWORK_MODES = ("network", "network+late")
RESUMABLE = ("accuracy", "lambda", "interaction")
POINTS_GOAL = -0.5
LATENCY_GOAL = 0.9
INTERACTION_LATENCY_GOAL = 0.67


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds of this process)."""
    w, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - w, time.process_time() - c


def config_mode(cfg: ExperimentConfig) -> str:
    """The fusion mode the config's ``fusion.late_skip`` gives (today's behaviour)."""
    return "network+late" if cfg.fusion.late_skip else "network"


def with_fusion(cfg: ExperimentConfig, **update: Any) -> ExperimentConfig:
    """``cfg`` with ``fusion`` keys changed (the same run directory: supernets and LUT shared)."""
    fusion = cfg.fusion.model_copy(update={k: v for k, v in update.items() if v is not None})
    return cfg.model_copy(update={"fusion": fusion})


class Bench:
    """The run's problem (dataset, supernets, LUT) and the max backbones in fusion ``mode``."""

    def __init__(self, cfg: ExperimentConfig, mode: str | None = None) -> None:
        self.problem, self.stage_s = open_pipeline(cfg)
        self.mode = mode or config_mode(cfg)
        self.genome = MultimodalGenome(
            self.problem.space.max_genome().backbones, cfg.fusion.cells, cfg.fusion.nodes, self.mode
        )
        self.cfg = genome_config(cfg, self.genome)  # fusion.late_skip of the mode
        self.arch = self.problem.arch_spec(self.genome)
        self.base = self.problem.cost_model.base_cost(self.arch)
        self.op_costs = self.problem.op_costs

    def cache(self, L: int, splits: tuple[str, ...]) -> FeatureCache:
        return compute_feature_cache(
            extract_backbones(self.cfg, self.arch, self.problem.supernets),
            fusion_dataset(self.problem.dataset),
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
            "timings_wall_s": res.timings,
        }


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


# -- 1. accuracy ----------------------------------------------------------------------------------


def accuracy_settings(cfg: ExperimentConfig, mode: str) -> dict[str, Any]:
    f = cfg.fusion
    return {
        "mode": mode,
        **{k: getattr(f, k) for k in ("C", "L", "epochs", "retrain_epochs", "batch_size")},
        **{k: getattr(f, k) for k in ("cells", "nodes", "lambda_lat", "arch_split")},
    }


def vs_late_fusion(fused: dict[str, Any], baselines: list[dict[str, Any]]) -> dict[str, Any]:
    """The fused model (``test``, ``latency_ms``) against the late fusions and single modalities
    of the same backbones (``late_fusion_rows``): test points, and the LUT latency ratio to the
    fair late fusion (chosen on val)."""
    by = {r["name"]: r for r in baselines}
    singles = [r for r in baselines if r["name"].startswith("single:")]
    best_single = max(singles, key=lambda r: r["val_metric"])  # chosen on val
    fair = late.fair_late_fusion(baselines)  # chosen on val
    test = fused["test"]
    return {
        "best_single_modality": best_single["name"],
        "fair_late_fusion": fair["name"],
        "fused_vs_late_fusion_same_backbones_points": 100 * (test - fair["test_metric"]),
        "fused_latency_over_late_fusion_same_backbones": fused["latency_ms"] / fair["latency_ms"],
        "fused_vs_late_fusion_avg_points": 100 * (test - by["late-fusion-avg"]["test_metric"]),
        "fused_vs_late_fusion_linear_points": 100
        * (test - by["late-fusion-linear"]["test_metric"]),
        "fused_vs_best_single_points": 100 * (test - best_single["test_metric"]),
    }


def accuracy_seed(b: Bench, seed: int) -> dict[str, Any]:
    """One seed: the honest and the reference protocol's search, the baselines, the comparisons."""
    fcfg = b.cfg.fusion
    cache = b.cache(fcfg.L, ("train", "val", "test"))
    rec: dict[str, Any] = {"seed": seed}
    for name, pcfg in (
        ("honest", fcfg),
        ("reference", fcfg.model_copy(update={"arch_split": 0.0})),
    ):
        r = b.search(cache, pcfg, seed)
        rec[name] = r | {"arch_split": pcfg.arch_split}
        print(
            f"  {name} seed {seed}: val {r['val']:.4f} test {r['test']:.4f} "
            f"{r['latency_ms']:.4f} ms  {r['genotype']}",
            flush=True,
        )
    baselines = late_fusion_rows(b.problem)
    return rec | {"baselines": baselines, **vs_late_fusion(rec["honest"], baselines)}


COMPARISONS = (
    "fused_vs_late_fusion_same_backbones_points",
    "fused_latency_over_late_fusion_same_backbones",
    "fused_vs_late_fusion_avg_points",
    "fused_vs_late_fusion_linear_points",
    "fused_vs_best_single_points",
)


def summarise_accuracy(records: list[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
    """Mean over seeds (each a record of :func:`accuracy_seed`), per-seed values listed."""
    out: dict[str, Any] = {"settings": settings}
    for name in ("honest", "reference"):
        rows = [r[name] for r in records]
        x: dict[str, Any] = {"arch_split": rows[0]["arch_split"], "runs": rows}
        x["val_mean"], x["val_std"] = _mean_std([r["val"] for r in rows])
        x["test_mean"], x["test_std"] = _mean_std([r["test"] for r in rows])
        x["latency_ms_mean"] = statistics.mean(r["latency_ms"] for r in rows)
        x["val_test_gap_points"] = 100 * (x["val_mean"] - x["test_mean"])
        out[name] = x
    summary = []
    for name in [r["name"] for r in records[0]["baselines"]]:
        rows = [next(r for r in s["baselines"] if r["name"] == name) for s in records]
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
    out["baselines"] = summary
    out["per_seed"] = [
        {k: r[k] for k in ("seed", "best_single_modality", "fair_late_fusion", *COMPARISONS)}
        for r in records
    ]
    for key in COMPARISONS:
        out[f"{key}_per_seed"] = [r[key] for r in records]
        out[key] = statistics.mean(r[key] for r in records)
    return out


# -- 2. lambda ------------------------------------------------------------------------------------


def lambda_config(cfg: ExperimentConfig, args: argparse.Namespace) -> ExperimentConfig:
    """The pipeline's config at the lambda sweep's size and epochs (same run directory)."""
    C, L = args.lambda_size or (None, None)
    return with_fusion(
        cfg, C=C, L=L, epochs=args.lambda_epochs, retrain_epochs=args.lambda_retrain_epochs
    )


def lambda_settings(cfg: ExperimentConfig, mode: str, lambdas: list[float]) -> dict[str, Any]:
    f = cfg.fusion
    return {
        "mode": mode,
        **{k: getattr(f, k) for k in ("C", "L", "epochs", "retrain_epochs", "batch_size")},
        **{k: getattr(f, k) for k in ("cells", "nodes", "arch_lr")},
        "lambda_energy": 0.0,
        "lambdas": list(lambdas),
    }


def lambda_seed(b: Bench, seed: int, lambdas: list[float]) -> dict[str, Any]:
    """One seed's sweep: a search per lambda on the seed's pipeline (fusion seed ``seed``)."""
    base = b.cfg.fusion
    cache = b.cache(base.L, ("train", "val", "test"))
    runs = []
    for lam in lambdas:
        r = b.search(cache, base.model_copy(update={"lambda_lat": lam, "lambda_energy": 0.0}), seed)
        runs.append({"lambda_lat": lam, **r})
        print(
            f"  seed {seed} lambda {lam:>5}: ops {r['ops_latency_ms']:.4f} ms, model "
            f"{r['latency_ms']:.4f} ms, val {r['val']:.4f}, test {r['test']:.4f}  {sorted(r['ops'])}",
            flush=True,
        )
    return {
        "seed": seed,
        "op_costs_ms_mj": b.op_costs,
        "base_cost": {"latency_ms": b.base.latency_ms, "energy_mj": b.base.energy_mj},
        "runs": runs,
    }


def summarise_lambda(records: list[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
    """Per lambda, over seeds: mean operator / model latency, val, test, the operator mixes;
    the most frequent mix per lambda and whether the mean operator latency never grows."""
    rows = []
    for i, lam in enumerate(settings["lambdas"]):
        runs = [rec["runs"][i] for rec in records]
        rows.append(
            {
                "lambda_lat": lam,
                "ops_latency_ms": statistics.mean(r["ops_latency_ms"] for r in runs),
                "latency_ms": statistics.mean(r["latency_ms"] for r in runs),
                "val": statistics.mean(r["val"] for r in runs),
                "val_std": _mean_std([r["val"] for r in runs])[1],
                "test": statistics.mean(r["test"] for r in runs),
                "test_std": _mean_std([r["test"] for r in runs])[1],
                "mixes": [sorted(r["ops"]) for r in runs],
            }
        )
    modal = [Counter(tuple(m) for m in r["mixes"]).most_common(1)[0][0] for r in rows]
    lats = [r["ops_latency_ms"] for r in rows]
    return {
        "settings": settings,
        "most_frequent_mix_per_lambda": [list(m) for m in modal],
        "distinct_most_frequent_mixes": len(set(modal)),
        "distinct_op_mixes": len({tuple(m) for r in rows for m in r["mixes"]}),
        "latency_drop": lats[-1] / lats[0] if lats[0] > 0 else None,
        "latency_non_increasing": all(y <= x + 1e-12 for x, y in itertools.pairwise(lats)),
        "rows": rows,
    }


def op_cost_tau(
    ops: tuple[str, ...], C: int, L: int, *, warmup: int, repeats: int
) -> dict[str, Any]:
    """Two independent profilings of ``ops`` at (C, L) and the Kendall tau of their latencies."""
    t0 = time.perf_counter()
    runs = [profile_once(ops, C, L, seed=s, warmup=warmup, repeats=repeats) for s in (0, 1)]
    a, b = ([r["latency_ms"][op] for op in ops] for r in runs)
    return {
        "C": C,
        "L": L,
        "source": "profiled twice in this run (benchmarks/op_cost_reproducibility.py's "
        "profile_once, two separate profile_layers runs)",
        # undefined (None) when one run ties every operator (e.g. all at the per-call overhead)
        "kendall_tau": None if math.isnan(t := float(kendalltau(a, b).statistic)) else t,
        "runs": runs,
        "wall_s": time.perf_counter() - t0,
    }


# -- 3. interaction: the val-best front member vs bm-nas-max --------------------------------------


def front_vs_bm_nas_max(
    members: list[dict[str, Any]], bm_nas_max: dict[str, Any]
) -> dict[str, Any]:
    """The val-best member of a front (``val_metric``, ``test_metric``, ``latency_ms``) against
    bm-nas-max: test points and the latency ratio (the same LUT total on both sides)."""
    best = max(members, key=lambda m: m["val_metric"])  # chosen on val
    return {
        "val_best": best,
        "bm_nas_max": {k: bm_nas_max[k] for k in ("val_metric", "test_metric", "latency_ms")},
        "val_best_vs_bm_nas_max_points": 100 * (best["test_metric"] - bm_nas_max["test_metric"]),
        "latency_over_bm_nas_max": best["latency_ms"] / bm_nas_max["latency_ms"],
    }


def interaction_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "population": args.population,
        "generations": args.generations,
        "test_seeds": 1,
        "controls": [LATE_FRONTIER],
    }


def late_frontier_control(problem: Any, cfg: ExperimentConfig, study_name: str) -> list[Any]:
    """The late-fusion frontier of the study (search_quality's control): the fair late fusion of
    every backbone pair of the ladder and of the study's completed candidates, LUT-costed, no
    training; each member without its val predictions."""
    study = sq_load(cfg, study_name)
    pairs = {_bb_key(g): g for g in problem.space.ladder(ladder_size(cfg.search.population))}
    for c in study_candidates(problem, study, "nsga2", cfg.search.population):
        g = problem.space.from_params(c["params"])
        pairs.setdefault(_bb_key(g), g)
    return [
        {k: v for k, v in m.items() if k != "val_pred"}
        for m in late_fusion_frontier(problem, pairs)
    ]


def interaction_seed(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """The seed's NSGA-II front (search_quality's study on the same pipeline: reused, resumed or
    run) and its val-best member against the run's bm-nas-max baseline."""
    cfg = make_config(argparse.Namespace(**vars(args), test_seeds=1), seed)
    problem, _ = open_pipeline(cfg)
    t0 = time.process_time()
    s = run_search(cfg, strategy="nsga2", finalize=True)
    if s.pareto_path is None:
        raise SystemExit(f"error: the study {s.study_name} of {cfg.name} has no final front")
    pareto = ParetoRecord.read(s.pareto_path)
    base = read_json(run_baselines(cfg), schema_version=1)["baselines"]
    bm = next(r for r in base if r["name"] == "bm-nas-max")
    members = [
        {k: getattr(m, k) for k in ("id", "val_metric", "test_metric", "latency_ms", "energy_mj")}
        for m in pareto.members
    ]
    out = front_vs_bm_nas_max(members, bm)
    frontier = late_frontier_control(problem, cfg, s.study_name)
    control = front_vs_bm_nas_max(frontier, bm)  # its val-best member, the same comparison
    print(
        f"  seed {seed}: val-best {out['val_best']['id']} test {out['val_best']['test_metric']:.4f}"
        f" vs bm-nas-max {bm['test_metric']:.4f} ({out['val_best_vs_bm_nas_max_points']:+.2f} pts)"
        f", latency x{out['latency_over_bm_nas_max']:.3f}; late-fusion frontier's val-best "
        f"{control['val_best_vs_bm_nas_max_points']:+.2f} pts, x{control['latency_over_bm_nas_max']:.3f}",
        flush=True,
    )
    return {
        "seed": seed,
        "study": s.study_name,
        "run": cfg.name,
        "n_complete": s.n_complete,
        "members": members,
        "cpu_s": time.process_time() - t0,
        **out,
        "controls": {
            LATE_FRONTIER: {
                "n_pairs": len(frontier),
                "val_best": control["val_best"],
                **{k: control[k] for k in INTERACTION_FIGURES},
            }
        },
    }


INTERACTION_FIGURES = ("val_best_vs_bm_nas_max_points", "latency_over_bm_nas_max")


def summarise_interaction(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over seeds of the front's figures and of each control's (per-seed values listed)."""
    out: dict[str, Any] = {}
    for key in INTERACTION_FIGURES:
        out[f"{key}_per_seed"] = [r[key] for r in records]
        out[key] = statistics.mean(r[key] for r in records)
    controls: dict[str, Any] = {}
    for name in sorted({c for r in records for c in r.get("controls", {})}):
        recs = [r["controls"][name] for r in records if name in r.get("controls", {})]
        if len(recs) == len(records):  # a control some seed lacks is not summarised
            controls[name] = {k: statistics.mean(c[k] for c in recs) for k in INTERACTION_FIGURES}
            controls[name].update(
                {f"{k}_per_seed": [c[k] for c in recs] for k in INTERACTION_FIGURES}
            )
    out["controls"] = controls
    return out


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
    over seeds, at a latency ratio from the same LUT totals; the lambda sweep's gradation and
    the reproducibility of the operator costs it ranks; on the interaction profile, the front's
    val-best member against bm-nas-max."""
    out: dict[str, Any] = {}
    if "accuracy" in r:
        a = r["accuracy"]
        pts = a["fused_vs_late_fusion_same_backbones_points"]
        lat = a["fused_latency_over_late_fusion_same_backbones"]
        out["fused_vs_late_fusion_same_backbones_points"] = target(
            pts, POINTS_GOAL, ">=", met=pts >= POINTS_GOAL and lat <= LATENCY_GOAL
        )
        out["fused_latency_over_late_fusion_same_backbones"] = target(lat, LATENCY_GOAL, "<=")
    if "lambda_sweep" in r:
        s = r["lambda_sweep"]
        out["lambda_sweep_distinct_op_mixes"] = target(s["distinct_most_frequent_mixes"], 3, ">=")
        drop = s["latency_drop"]
        out["lambda_sweep_latency_drop"] = target(
            drop, 0.7, "<=", met=drop is not None and drop <= 0.7 and s["latency_non_increasing"]
        )
    if "op_cost_reproducibility" in r:
        tau = r["op_cost_reproducibility"]["kendall_tau"]
        out["op_cost_rank_reproducibility_tau"] = target(tau, TAU_GOAL, ">=")
    if "interaction" in r:
        i = r["interaction"]
        pts, lat = i["val_best_vs_bm_nas_max_points"], i["latency_over_bm_nas_max"]
        ctrl = i.get("controls", {})
        out["interaction_val_best_vs_bm_nas_max_points"] = target(
            pts,
            POINTS_GOAL,
            ">=",
            met=pts >= POINTS_GOAL and lat <= INTERACTION_LATENCY_GOAL,
            controls={k: c["val_best_vs_bm_nas_max_points"] for k, c in ctrl.items()},
        )
        out["interaction_latency_over_bm_nas_max"] = target(
            lat,
            INTERACTION_LATENCY_GOAL,
            "<=",
            controls={k: c["latency_over_bm_nas_max"] for k, c in ctrl.items()},
        )
        # a control meets the points target only with its latency condition, as the front does
        out["interaction_val_best_vs_bm_nas_max_points"]["control_also_meets"] = any(
            c["val_best_vs_bm_nas_max_points"] >= POINTS_GOAL
            and c["latency_over_bm_nas_max"] <= INTERACTION_LATENCY_GOAL
            for c in ctrl.values()
        )
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--profile", default="hard", choices=BENCH_PROFILES)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--lambdas", type=float, nargs="+", default=list(LAMBDAS))
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument(
        "--parts",
        nargs="+",
        default=None,
        choices=["accuracy", "lambda", "interaction", "ablation", "cache", "paper"],
        help="default: accuracy lambda (and interaction on --profile interaction)",
    )
    p.add_argument(
        "--fusion-mode",
        choices=NETWORK_MODES,
        default=None,
        help="fusion mode of the accuracy part's model (default: the config's fusion.late_skip)",
    )
    p.add_argument(
        "--lambda-size",
        type=parse_size,
        default=None,
        metavar="C,L",
        help="fusion size of the lambda sweep (default: the pipeline's fusion.C, fusion.L)",
    )
    p.add_argument(
        "--lambda-mode",
        choices=NETWORK_MODES,
        default=None,
        help="fusion mode of the swept model: network+late (the late skip) or network (no skip); "
        "default: the config's fusion.late_skip",
    )
    p.add_argument("--lambda-epochs", type=int, default=None, help="default: fusion.epochs")
    p.add_argument(
        "--lambda-retrain-epochs", type=int, default=None, help="default: fusion.retrain_epochs"
    )
    p.add_argument("--population", type=int, default=16, help="interaction part's search")
    p.add_argument("--generations", type=int, default=4, help="interaction part's search")
    p.add_argument("--fresh", action="store_true", help="measure again what is saved")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        help="key=value for the pipeline config (a smoke run; its own run directories)",
    )
    p.add_argument("--out", type=Path, default=None, help="default: fusion_search[_<profile>].json")
    args = p.parse_args(argv)
    if args.parts is None:
        args.parts = ["accuracy", "lambda"] + (
            ["interaction"] if args.profile == "interaction" else []
        )
    bad = [
        msg
        for msg, wrong in (
            (
                "--parts interaction needs --profile interaction",
                "interaction" in args.parts and args.profile != "interaction",
            ),
            (
                "--lambda-epochs and --lambda-retrain-epochs must be >= 1",
                any(
                    e is not None and e < 1
                    for e in (args.lambda_epochs, args.lambda_retrain_epochs)
                ),
            ),
            ("--lambdas must be >= 0", any(x < 0 for x in args.lambdas)),
            (
                "--population and --generations must be >= 1",
                min(args.population, args.generations) < 1,
            ),
        )
        if wrong
    ]
    if bad:
        p.error(bad[0])  # one line, exit code 2
    if args.out is None:
        suffix = "" if args.profile == "hard" else f"_{args.profile}"
        args.out = OUT.with_name(f"fusion_search{suffix}.json")
    return args


def measure(
    args: argparse.Namespace,
    results: dict[str, Any],
    part: str,
    seed: int,
    settings: dict[str, Any],
    run: Any,
) -> dict[str, Any]:
    """The saved (part, seed) record when its settings match, else ``run()``, saved at once."""
    key = f"{part}|s{seed}"
    rec = saved_record(results, key, settings)
    if rec is not None:
        print(f"  {key}: saved record reused", flush=True)
        return rec
    t0 = time.perf_counter()
    rec = {**run(), "settings": settings}
    rec["wall_s"] = time.perf_counter() - t0
    results["records"][key] = rec
    atomic_write_json(args.out, results, schema_version=SCHEMA)
    return json.loads(json.dumps(rec))  # as a rerun reads it back


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = {
        "profile": args.profile,
        "sets": args.set,
        "config": "configs/quick.yaml via benchmarks/_pipelines.py",
    }
    results = load_saved(args.out, settings, fresh=args.fresh, schema_version=SCHEMA)
    cfg0 = pipeline_config(args.profile, args.seeds[0], sets=args.set)
    results.update(
        {
            "benchmark": "fusion_search",
            "command": " ".join(["python", "benchmarks/fusion_search.py", *(argv or sys.argv[1:])]),
            "profile": args.profile,
            "settings": settings,
            "machine": bench_identity(),
            "seeds": args.seeds,
            "threads": args.threads,
            "pretrain": cfg0.pretrain.model_dump(mode="json"),
            "fusion": cfg0.fusion.model_dump(mode="json"),
        }
    )
    t0 = time.perf_counter()
    benches: dict[tuple[int, str], Bench] = {}

    def bench(seed: int, part: str = "accuracy") -> Bench:
        if (seed, part) not in benches:
            cfg = pipeline_config(args.profile, seed, sets=args.set)
            if part == "lambda":
                benches[seed, part] = Bench(lambda_config(cfg, args), args.lambda_mode)
            else:
                benches[seed, part] = Bench(cfg, args.fusion_mode)
        return benches[seed, part]

    if "accuracy" in args.parts:
        print("[1] fused max backbones vs late fusion, honest vs reference protocol", flush=True)
        acc = accuracy_settings(cfg0, args.fusion_mode or config_mode(cfg0))
        recs = [
            measure(args, results, "accuracy", s, acc, lambda s=s: accuracy_seed(bench(s), s))
            for s in args.seeds
        ]
        results["accuracy"] = summarise_accuracy(recs, acc)
    if "lambda" in args.parts:
        lcfg = lambda_config(cfg0, args)
        lam = lambda_settings(lcfg, args.lambda_mode or config_mode(lcfg), args.lambdas)
        print(f"[2] lambda_lat sweep at C={lam['C']} L={lam['L']}, {lam['mode']}", flush=True)
        recs = [
            measure(
                args,
                results,
                "lambda",
                s,
                lam,
                lambda s=s: lambda_seed(bench(s, "lambda"), s, args.lambdas),
            )
            for s in args.seeds
        ]
        results["lambda_sweep"] = summarise_lambda(recs, lam) | {
            "op_costs_ms_mj": recs[0]["op_costs_ms_mj"],
            "base_cost": recs[0]["base_cost"],
        }
        prof = {"C": lam["C"], "L": lam["L"], "ops": list(lcfg.fusion.ops)}
        prof |= {"warmup": lcfg.device.warmup, "repeats": lcfg.device.repeats}
        tau = saved_record(results, "op_cost_reproducibility", prof)
        if tau is None:
            tau = op_cost_tau(
                lcfg.fusion.ops, lam["C"], lam["L"], warmup=prof["warmup"], repeats=prof["repeats"]
            ) | {"settings": prof}
            results["records"]["op_cost_reproducibility"] = tau
            atomic_write_json(args.out, results, schema_version=SCHEMA)
        print(f"  op cost rank reproducibility tau {tau['kendall_tau']}", flush=True)
        results["op_cost_reproducibility"] = {k: v for k, v in tau.items() if k != "runs"}
    if "interaction" in args.parts:
        print("[3] the front's val-best member vs bm-nas-max", flush=True)
        inter = interaction_settings(args)
        recs = [
            measure(args, results, "interaction", s, inter, lambda s=s: interaction_seed(args, s))
            for s in args.seeds
        ]
        results["interaction"] = {"settings": inter, **summarise_interaction(recs)}
        results["interaction"]["per_seed"] = [
            {k: r[k] for k in ("seed", "study", "val_best", "bm_nas_max")} for r in recs
        ]
    if "ablation" in args.parts:
        print("[4] late skip x mixup", flush=True)
        part_ablation(bench(args.seeds[0]), args.seeds, results)
    if "cache" in args.parts:
        print("[5] cache vs backbones every batch", flush=True)
        b = bench(args.seeds[0])
        part_cache_vs_live(b, b.cfg.fusion, b.op_costs, results, "cache_vs_live")
    if "paper" in args.parts:
        print("[6] paper defaults", flush=True)
        part_paper(bench(args.seeds[0]), results)
    if benches:
        b = next(iter(benches.values()))
        ds = b.problem.dataset
        results["dataset"] = {
            "name": ds.name,
            **{s: len(ds.split(s)) for s in ("train", "val", "test")},
        }
        results["energy_source"] = b.problem.cost_model.lut.energy_source
    results["wall_s"] = time.perf_counter() - t0
    results["targets"] = targets_of(results)
    atomic_write_json(args.out, results, schema_version=SCHEMA)
    report(results)
    print(f"saved {_rel(args.out)}")
    return 0


def report(r: dict[str, Any]) -> None:
    print("\n== fusion search benchmark ==")
    if "accuracy" in r:
        a = r["accuracy"]
        print(f"accuracy part: {a['settings']}")
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
        print(f"lambda sweep: {s['settings']}")
        print("lambda_lat | ops latency ms | model latency ms | val | test | op mixes")
        for row in s["rows"]:
            print(
                f"{row['lambda_lat']:>10} | {row['ops_latency_ms']:.4f} | {row['latency_ms']:.4f}"
                f" | {row['val']:.4f} ± {row['val_std']:.4f} | {row['test']:.4f} ± "
                f"{row['test_std']:.4f} | {row['mixes']}"
            )
    if "interaction" in r:
        i = r["interaction"]
        print(
            f"interaction: val-best member vs bm-nas-max {i['val_best_vs_bm_nas_max_points']:+.2f}"
            f" pts, latency x{i['latency_over_bm_nas_max']:.3f}"
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
    print_targets(r["targets"])


if __name__ == "__main__":
    sys.exit(main())
