"""Outer-tier benchmark on the instrument: NSGA-II vs its controls, every candidate saved.

For each seed (a whole pipeline shared with the other benchmarks: benchmarks/_pipelines.py,
``--profile`` hard by default: dataset, 20-epoch supernets, host LUT) with EQUAL candidate
budgets (default population 16 x 4 generations = 64):

* strategies: NSGA-II (the ladder-seeded first generation, as ``harmonic-nas search``), random
  search and the predictor strategy (``search.strategy: predictor``: NSGA-II's first generation,
  then an accuracy predictor over LUT-priced genomes); optionally NSGA-II with multi-fidelity
  (``--fidelity-modes screen halving``);
* controls (same seed, supernets, LUT): (i) the one-genome control, the ladder's first rung
  alone (NSGA-II's first candidate); (ii) random search; (iii) the late-fusion frontier: the fair
  late fusion (the better on val of late-fusion-bayes and late-fusion-linear) of every backbone
  pair of the ladder and of every pair a search evaluated, costed by the LUT, no fusion
  training;
* metrics (``harmonic_nas.search.front_metrics``, shared with the report): hypervolume in the
  instrument's box (accuracy from the best single modality's val score, latency to the slower of
  late-fusion-avg and bm-nas-max, both fixed per seed and recorded), ratios and differences,
  IGD+ to the union front of everything run on the seed, bootstrap 90 % intervals over val
  resampling (every candidate's val decisions resampled together), and the older normalisation
  (accuracy from 0, latency to 1.2 x the space's upper bound) as a labelled secondary figure.

Targets (the next issue's, expected to be missed by today's method): ``hv_ratio_vs_random``
>= 1.05 and ``front_hv_vs_late_fusion_frontier`` >= 1.05, each met only with ``_ci_low`` > 1.0;
``hv_ratio_vs_one_genome`` >= 1.10. Each carries ``control_also_meets``: whether a control's own
front reaches the same figure against the same reference (then the target is no evidence). The
targets are about NSGA-II, the default method; the same figures for the predictor strategy
(``hv_ratio_predictor_vs_random`` ...) and the predictor against NSGA-II are in ``figures``,
judged alike. A seed saved before the predictor was compared is completed on the next run: its
other searches resume from their finished studies.

Every candidate of every strategy and control (genome, objectives, fidelity, val decisions) is
saved per seed in ``benchmarks/results/search_quality.candidates.json`` so that any figure, under
any normalisation, can be recomputed from the files alone: ``--resummarise`` reads only them.
Candidates are compared on their first evaluation (the one their val decisions describe).
Latencies on both sides of every ratio are the LUT totals the search optimised
(``CostModel.cost_arch(...).total``; recorded as ``latency_total``).

    .venv/bin/python benchmarks/search_quality.py [--profile hard] [--seeds 0 1 2]
        [--population 16] [--generations 4] [--boot 1000] [--fidelity-modes screen halving]
        [--throughput]
    .venv/bin/python benchmarks/search_quality.py --resummarise [--out FILE]

The instrument's run (hard profile, 3 seeds, 64 candidates per strategy):
``.venv/bin/python benchmarks/search_quality.py --profile hard --seeds 0 1 2``. A smoke run
(about a minute; its own run directory and output, never the shared pipelines):

    .venv/bin/python benchmarks/search_quality.py --profile hard --seeds 0 --population 3 \\
        --generations 2 --boot 50 --set pretrain.epochs=1 --set fusion.epochs=1 \\
        --set fusion.retrain_epochs=1 --set fusion.C=8 --set fusion.L=4 --set device.repeats=2 \\
        --set device.warmup=1 --set dataset.options.train_per_class=12 \\
        --set dataset.options.val_per_class=6 --set dataset.options.test_per_class=6 \\
        --set dataset.options.train_speakers=6 --set dataset.options.val_speakers=3 \\
        --set dataset.options.test_speakers=3 --out /tmp/search_quality_smoke.json

Each seed's record is saved as soon as it is measured and reused by a later run (``--fresh``
measures again), so the benchmark can span sittings; the searches themselves resume from their
studies. Results: ``benchmarks/results/search_quality.json`` (with a ``targets`` block).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import optuna
import torch

from _bench_config import bench_identity, sidecar_fields  # benchmarks/_bench_config.py
from _bench_config import repo_relative as _rel
from _pipelines import BENCH_PROFILES, open_pipeline, pipeline_config  # benchmarks/_pipelines.py
from harmonic_nas.config import ExperimentConfig
from harmonic_nas.errors import HarmonicError
from harmonic_nas.fusion import late
from harmonic_nas.search import run_search
from harmonic_nas.search.baselines import late_fusion_rows, run_baselines
from harmonic_nas.search.evaluator import HarmonicProblem
from harmonic_nas.search.genome import MultimodalGenome
from harmonic_nas.search.initial import ladder_size
from harmonic_nas.search.predictor import ATTR_PREDICTION
from harmonic_nas.search.problem import SCREEN_FIDELITY, fidelity_epochs
from harmonic_nas.search.records import SearchRecords
from harmonic_nas.search.storage import open_storage
from harmonic_nas.utils.io import atomic_write_json, read_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "search_quality.json"
PAPER_CANDIDATES = 128 * 4
PAPER_EPOCHS = 25
SCHEMA = 2
ONE_GENOME = "one_genome"
LATE_FRONTIER = "late_fusion_frontier"
#: the searches every seed runs (the multi-fidelity ones are optional)
SEARCHES = ("nsga2", "random", "predictor")


def make_config(args: argparse.Namespace, seed: int) -> ExperimentConfig:
    """The seed's shared pipeline config with this benchmark's search settings."""
    cfg = pipeline_config(args.profile, seed, sets=args.set)
    search = cfg.search.model_copy(
        update={
            "population": args.population,
            "generations": args.generations,
            "fidelity": "full",
            "rescore_seeds": 1,
            "test_seeds": args.test_seeds,
        }
    )
    return cfg.model_copy(update={"search": search})


def candidates_path(out: Path) -> Path:
    """The sidecar with every candidate of every strategy and control, per seed."""
    return out.with_name(out.stem + ".candidates.json")


def load(cfg: ExperimentConfig, study_name: str) -> optuna.Study:
    url = f"sqlite:///{(cfg.run_path / 'study.db').resolve()}"
    return optuna.load_study(study_name=study_name, storage=open_storage(url))


_CHILDREN_SEEN = 0.0


def _children_cpu_s() -> float:
    """CPU seconds of terminated child processes (the search's workers) since the last call."""
    global _CHILDREN_SEEN
    usage = os.times()
    total = usage.children_user + usage.children_system
    delta, _CHILDREN_SEEN = total - _CHILDREN_SEEN, total
    return delta


def _bb_key(genome: MultimodalGenome) -> str:
    """The canonical key of a genome's backbones alone (the late-fusion frontier's pairs)."""
    return "|".join(f"{m}={g}" for m, g in genome.canonical().backbones.items())


def study_candidates(
    problem: HarmonicProblem, study: optuna.Study, strategy: str, population: int
) -> list[dict[str, Any]]:
    """Every completed candidate of a study, in completion order, on its first evaluation."""
    records = SearchRecords.from_study(study, population=population, space=problem.space)
    predicted = {
        t.number: t.system_attrs[ATTR_PREDICTION]
        for t in study.get_trials(deepcopy=False)
        if ATTR_PREDICTION in t.system_attrs
    }
    out = []
    for r in records.complete:
        ev = r.evaluation
        if ev is None:
            continue
        genome = problem.space.from_params(r.params)
        out.append(
            {
                "id": f"{strategy}:{r.trial}",
                "strategy": strategy,
                "trial": r.trial,
                "genome": genome.key(),
                "backbones": _bb_key(genome),
                "params": r.params,
                "val_metric": r.val_metrics[0] if r.val_metrics else ev.val_metric,
                "latency_ms": ev.latency_ms,
                "energy_mj": ev.energy_mj,
                "fidelity": r.fidelity or "full",
                "val_pred": ev.extra.get("val_pred"),
                **({"predicted": predicted[r.trial]} if r.trial in predicted else {}),
            }
        )
    return out


def late_fusion_frontier(
    problem: HarmonicProblem, genomes: dict[str, MultimodalGenome]
) -> list[dict[str, Any]]:
    """The fair late fusion of every distinct backbone pair (no fusion training), LUT-costed."""
    out = []
    for key, genome in genomes.items():
        rows = late_fusion_rows(problem, genome.backbones, keep_predictions=True)
        fair = late.fair_late_fusion(rows)
        out.append(
            {
                "id": f"{LATE_FRONTIER}:{len(out)}",
                "strategy": LATE_FRONTIER,
                "backbones": key,
                "late_fusion": fair["name"],
                "val_metric": fair["val_metric"],
                "test_metric": fair["test_metric"],
                "latency_ms": fair["latency_ms"],
                "energy_mj": fair["energy_mj"],
                "fidelity": "full",
                "val_pred": fair["val_pred"],
            }
        )
    return out


def one_seed(args: argparse.Namespace, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the seed's record, its candidates by strategy and control)."""
    cfg = make_config(args, seed)
    problem, stage_s = open_pipeline(cfg)
    out: dict[str, Any] = {"seed": seed, "run": _rel(cfg.run_path), "stage_s": stage_s}

    def with_fidelity(mode: str) -> ExperimentConfig:
        return cfg.model_copy(update={"search": cfg.search.model_copy(update={"fidelity": mode})})

    runs = (
        *((name, cfg, name, None) for name in SEARCHES),
        *(
            (f"nsga2_{mode}", with_fidelity(mode), "nsga2", f"{cfg.name}-nsga2-{mode}")
            for mode in args.fidelity_modes
        ),
    )
    cands: dict[str, list[dict[str, Any]]] = {}
    for key, run_cfg, strategy, study_name in runs:
        _children_cpu_s()  # reset: pretraining's worker processes are not the search's
        t0, c0 = time.perf_counter(), time.process_time()
        s = run_search(run_cfg, strategy=strategy, study_name=study_name, finalize=key == "nsga2")
        study = load(cfg, s.study_name)
        cands[key] = study_candidates(problem, study, key, cfg.search.population)
        out[key] = {
            "study": s.study_name,
            "n_complete": s.n_complete,
            "n_full_fidelity": sum(c["fidelity"] == "full" for c in cands[key]),
            "wall_s": time.perf_counter() - t0,
            # the search's own process and its worker processes (children), one CPU clock
            "cpu_s": time.process_time() - c0 + _children_cpu_s(),
        }
        print(f"  seed {seed} {key}: {s.n_complete} candidates", flush=True)
    # (i) the one-genome control: the ladder's first rung, as NSGA-II evaluated it
    ladder = problem.space.ladder(ladder_size(cfg.search.population))
    first = ladder[0].key()
    cands[ONE_GENOME] = [
        {**c, "id": f"{ONE_GENOME}:{c['trial']}", "strategy": ONE_GENOME}
        for c in cands["nsga2"]
        if c["genome"] == first
    ][:1]
    # (iii) the late-fusion frontier over every backbone pair of the ladder and of the searches
    pairs: dict[str, MultimodalGenome] = {_bb_key(g): g for g in ladder}
    for key in SEARCHES:
        for c in cands[key]:
            g = problem.space.from_params(c["params"])
            pairs.setdefault(_bb_key(g), g)
    t0 = time.process_time()
    cands[LATE_FRONTIER] = late_fusion_frontier(problem, pairs)
    out["late_fusion_frontier_cpu_s"] = time.process_time() - t0
    # the box: the best single modality's val score; the slower of late-fusion-avg, bm-nas-max
    rows = late_fusion_rows(problem, keep_predictions=True)
    base = read_json(run_baselines(cfg), schema_version=1)["baselines"]
    by = {r["name"]: r for r in base}
    singles = [r for r in rows if r["name"].startswith("single:")]
    best_single = max(singles, key=lambda r: r["val_metric"])
    out["baselines"] = [{k: v for k, v in r.items() if k != "val_pred"} for r in rows] + [
        by["bm-nas-max"]
    ]
    out["best_single"] = {
        "name": best_single["name"],
        "val_metric": best_single["val_metric"],
        "val_pred": best_single["val_pred"],
    }
    out["box"] = {
        "acc_floor": best_single["val_metric"],
        "acc_floor_from": best_single["name"],
        "lat_ceiling": max(by["late-fusion-avg"]["latency_ms"], by["bm-nas-max"]["latency_ms"]),
        "lat_ceiling_from": "max(late-fusion-avg, bm-nas-max) latency",
        "latency_total": "CostModel.cost_arch(...).total (the search's objective)",
    }
    out["legacy_box"] = legacy_box(load(cfg, out["nsga2"]["study"]))
    ds = problem.dataset
    out["task"] = ds.task
    out["val_labels"] = ds.split("val").labels.tolist()
    pareto = read_json(cfg.run_path / "pareto.json", schema_version=1)
    out["objectives"] = pareto.get("objectives")
    out["pareto"] = [
        {k: m.get(k) for k in ("id", "val_metric", "test_metric", "latency_ms", "energy_mj")}
        for m in pareto["members"]
    ]
    return out, cands


def legacy_box(study: optuna.Study) -> dict[str, Any]:
    """The older normalisation (the study's fixed points: accuracy from 0, latency to 1.2 x the
    space's upper bound), kept as a secondary figure."""
    from harmonic_nas.search.final import study_points

    ideal, ref = study_points(study)
    return {"ideal": ideal, "reference": ref}


def throughput(
    args: argparse.Namespace, seed: int, promotion: dict[str, float], front: dict[str, float]
) -> dict[str, Any]:
    cfg = make_config(args, seed)
    data = cfg.model_dump(mode="json")
    epochs = 2
    data["fusion"].update(C=192, L=16, batch_size=96, epochs=epochs, retrain_epochs=epochs)
    data["search"].update(population=4, generations=2, rescore_seeds=1)  # timing only
    cfg = ExperimentConfig.model_validate(data)
    open_pipeline(cfg)
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
        for mode in ("screen", "halving")
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


#: (strategy, control, target name, goal); every other pair of these is a control's own figure
COMPARISONS: tuple[tuple[str, str, str, float], ...] = (
    ("nsga2", "random", "hv_ratio_vs_random", 1.05),
    ("nsga2", ONE_GENOME, "hv_ratio_vs_one_genome", 1.10),
    ("nsga2", LATE_FRONTIER, "front_hv_vs_late_fusion_frontier", 1.05),
)
CONTROLS = ("random", ONE_GENOME, LATE_FRONTIER)
#: the same figures for the predictor strategy (judged alike; not the default method's targets)
FIGURES: tuple[tuple[str, str, str, float], ...] = (
    ("predictor", "random", "hv_ratio_predictor_vs_random", 1.05),
    ("predictor", ONE_GENOME, "hv_ratio_predictor_vs_one_genome", 1.10),
    ("predictor", LATE_FRONTIER, "front_hv_predictor_vs_late_fusion_frontier", 1.05),
    ("predictor", "nsga2", "hv_ratio_predictor_vs_nsga2", 1.05),
)


def to_candidates(raw: dict[str, list[dict[str, Any]]]) -> dict[str, list[Any]]:
    """The saved candidate dicts as :class:`front_metrics.Candidate` (val decisions decoded)."""
    from harmonic_nas.search.front_metrics import Candidate, decode_array

    out: dict[str, list[Any]] = {}
    for name, cands in raw.items():
        out[name] = [
            Candidate(
                id=c["id"],
                strategy=name,
                val_metric=float(c["val_metric"]),
                latency_ms=float(c["latency_ms"]),
                energy_mj=c.get("energy_mj"),
                fidelity=c.get("fidelity", "full"),
                genome={"key": c.get("genome") or c.get("backbones")},
                val_pred=None if c.get("val_pred") is None else decode_array(c["val_pred"]),
            )
            for c in cands
        ]
    return out


def is_late(cand: Any) -> bool:
    """Whether a saved candidate is late fusion chosen by the ``fusion_mode`` gene (its key's
    last part; the late-fusion frontier's own candidates are keyed by their backbones only)."""
    return str(cand.genome["key"]).rsplit("|", 1)[-1] == "late"


def measure_seed(
    rec: dict[str, Any], raw: dict[str, list[dict[str, Any]]], n_boot: int
) -> dict[str, Any]:
    """Every comparison of one seed: HV in the box, ratios, differences, bootstrap replicates,
    IGD+ to the union front, the legacy normalisation (all from the saved files)."""
    import numpy as np

    from harmonic_nas.search import front_metrics as fm

    strategies = to_candidates(raw)
    box = fm.Box(
        acc_floor=rec["box"]["acc_floor"],
        lat_ceiling=rec["box"]["lat_ceiling"],
        energy_ceiling=rec["box"].get("energy_ceiling"),  # energy an objective: a 3-D box
        floor_source=rec["box"]["acc_floor_from"],
        ceiling_source=rec["box"]["lat_ceiling_from"],
    )
    energy = box.has_energy
    labels = np.asarray(rec["val_labels"])
    boot = fm.bootstrap_hv(strategies, labels, rec["task"], box, n_boot=n_boot, seed=rec["seed"])
    names = list(strategies)
    comparisons = {
        f"{a}_vs_{b}": boot.compare(a, b).to_json() for a in names for b in names if a != b
    }
    union = fm.union_front(strategies, energy=energy)
    legacy = rec["legacy_box"]
    fronts = {k: fm.front_points(v, energy=energy) for k, v in strategies.items()}
    return {
        "box": box.to_json(),
        "n_boot": n_boot,
        "hv": dict(boot.point),
        "front_size": {k: len(v) for k, v in fronts.items()},
        "late_fusion_choices": {
            k: {
                "candidates": len(v),
                "late": sum(is_late(c) for c in v),
                "front": len(fronts[k]),
                "front_late": sum(is_late(c) for c in fronts[k]),
            }
            for k, v in strategies.items()
        },
        "igd_plus": {k: fm.igd_plus(v, union, box) for k, v in strategies.items()},
        "legacy_normalised_hv": {
            k: fm.legacy_normalised_hv(v, legacy["ideal"], legacy["reference"], energy=energy)
            for k, v in strategies.items()
        },
        "comparisons": comparisons,
    }


def common_keys(dicts: Iterable[dict[str, Any]]) -> list[str]:
    """The keys every dict has, in the first one's order."""
    ds = list(dicts)
    return [k for k in ds[0] if all(k in d for d in ds[1:])] if ds else []


def summarise(seed_metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean over seeds of every comparison, with the interval of the mean (per-seed replicates)."""
    import numpy as np

    from harmonic_nas.search import front_metrics as fm

    out: dict[str, Any] = {"seeds": len(seed_metrics), "comparisons": {}}
    # a strategy some seed lacks (e.g. one saved before it was compared) is left out of the mean
    for key in common_keys(m["comparisons"] for m in seed_metrics):
        per = [m["comparisons"][key] for m in seed_metrics]
        ratios = [c["ratio"] for c in per]
        reps = [
            np.asarray([math.nan if v is None else v for v in c["ratio_replicates"]]) for c in per
        ]
        diffs = [np.asarray(c["difference_replicates"]) for c in per]
        ri = fm.mean_over_seeds_interval(reps) if None not in ratios else None
        di = fm.mean_over_seeds_interval(diffs)
        out["comparisons"][key] = {
            "ratio_mean": None if None in ratios else statistics.fmean(ratios),
            "ratio_per_seed": ratios,
            "ratio_ci": None if ri is None else [ri.low, ri.high],
            "difference_mean": statistics.fmean(c["difference"] for c in per),
            "difference_per_seed": [c["difference"] for c in per],
            "difference_ci": None if di is None else [di.low, di.high],
            "control_hv_zero_seeds": sum(bool(c["control_hv_zero"]) for c in per),
        }
    # with search.fusion_modes: how often each strategy chose late fusion, among its candidates
    # and its front's members (per seed; a seed saved before this count existed has none)
    if all("late_fusion_choices" in m for m in seed_metrics):
        out["late_fusion_choices"] = {
            k: [m["late_fusion_choices"][k] for m in seed_metrics]
            for k in common_keys(m["late_fusion_choices"] for m in seed_metrics)
        }
    for what in ("hv", "igd_plus", "legacy_normalised_hv", "front_size"):
        names = common_keys(m[what] for m in seed_metrics)
        out[what] = {
            k: {
                "per_seed": [m[what][k] for m in seed_metrics],
                "mean": statistics.fmean(v for m in seed_metrics if (v := m[what][k]) is not None)
                if any(m[what][k] is not None for m in seed_metrics)
                else None,
            }
            for k in names
        }
    return out


def targets_of(
    summary: dict[str, Any],
    comparisons: tuple[tuple[str, str, str, float], ...] = COMPARISONS,
    controls: tuple[str, ...] = CONTROLS,
) -> dict[str, Any]:
    """The targets block: each search figure judged with its interval, and whether a control's
    own front reaches the same figure against the same reference (``control_also_meets``).
    ``comparisons`` / ``controls``: another benchmark's (strategy, control, name, goal) rows.
    A comparison whose strategy the saved seeds lack is left out."""
    from harmonic_nas.search import front_metrics as fm

    comps = summary["comparisons"]
    out: dict[str, Any] = {}
    for a, b, name, goal in comparisons:
        if f"{a}_vs_{b}" not in comps:
            continue
        c = comps[f"{a}_vs_{b}"]
        ci = c["ratio_ci"]
        dci = c["difference_ci"]
        if c["ratio_mean"] is None:  # a control HV of 0 on some seed: judged by the difference
            met = fm.interval_met(
                c["difference_mean"], dci and dci[0], dci and dci[1], 0.0, ">=", no_effect=0.0
            )
            judged = "difference"
        elif ci is None:  # the control's HV is 0 in some replicates: no ratio interval
            met = c["ratio_mean"] >= goal and dci is not None and dci[0] > 0.0
            judged = "ratio+difference"
        else:
            met = fm.interval_met(c["ratio_mean"], ci and ci[0], ci and ci[1], goal, ">=")
            judged = "ratio"
        others = {
            k: comps[f"{k}_vs_{b}"]["ratio_mean"]
            for k in controls
            if k not in (a, b) and f"{k}_vs_{b}" in comps
        }
        out[name] = {
            "value": c["ratio_mean"],
            "target": goal,
            "op": ">=",
            "met": bool(met),
            "_ci_low": None if ci is None else ci[0],
            "_ci_high": None if ci is None else ci[1],
            "difference": c["difference_mean"],
            "_difference_ci_low": None if dci is None else dci[0],
            "_difference_ci_high": None if dci is None else dci[1],
            "judged_by": judged,
            "per_seed": c["ratio_per_seed"],
            "control_values": others,
            "control_also_meets": fm.control_also_meets(others, goal, ">="),
        }
    return out


def fmt(v: Any, d: int = 3) -> str:
    if v is None:
        return "-"
    return f"{v:.{d}f}" if isinstance(v, float) else str(v)


def show(summary: dict[str, Any], targets: dict[str, Any], figures: dict[str, Any]) -> None:
    print(f"\n{'strategy':<24}{'HV (box)':>12}{'IGD+':>10}{'legacy HV':>12}")
    for k, v in summary["hv"].items():
        print(
            f"{k:<24}{fmt(v['mean'], 4):>12}{fmt(summary['igd_plus'][k]['mean'], 4):>10}"
            f"{fmt(summary['legacy_normalised_hv'][k]['mean'], 4):>12}"
        )
    for title, block in (("target", targets), ("figure (predictor)", figures)):
        print(f"\n{title:<44}{'value':>8}{'ci':>20}{'goal':>8}  met   control also meets")
        for name, t in block.items():
            ci = f"[{fmt(t['_ci_low'])}, {fmt(t['_ci_high'])}]"
            print(
                f"{name:<44}{fmt(t['value']):>8}{ci:>20}{t['op'] + ' ' + str(t['target']):>8}  "
                f"{t['met']!s:<5} {t['control_also_meets']}"
            )


def finish(results: dict[str, Any], cands: dict[str, Any], n_boot: int) -> dict[str, Any]:
    """Measure every saved seed from the files, then the summary and the targets."""
    per = []
    for seed in sorted(results["seeds"], key=int):
        m = measure_seed(results["seeds"][seed], cands[seed], n_boot)
        results["seeds"][seed]["metrics"] = m
        per.append(m)
    results["summary"] = summarise(per) if per else {}
    results["targets"] = targets_of(results["summary"]) if per else {}
    results["figures"] = targets_of(results["summary"], FIGURES) if per else {}
    return results


def resummarise(path: Path, n_boot: int) -> int:
    """Recompute every metric, the summary and the targets from the saved result and its
    candidates file alone (nothing is re-run)."""
    try:
        results = read_json(path, schema_version=SCHEMA, what="search_quality result")
        cands = read_json(candidates_path(path), schema_version=SCHEMA, what="candidates file")
    except HarmonicError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results = finish(results, cands["seeds"], n_boot)
    atomic_write_json(path, results, schema_version=SCHEMA)
    show(results["summary"], results["targets"], results["figures"])
    print(f"updated metrics, summary and targets in {_rel(path)}")
    return 0


def main(argv: list[str] | None = None) -> int:

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="hard", choices=BENCH_PROFILES)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--population", type=int, default=16)
    ap.add_argument("--generations", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2, help="throughput part only")
    ap.add_argument("--test-seeds", type=int, default=1, help="retrainings per test score")
    ap.add_argument("--rescore-seeds", type=int, default=3, help="throughput projection only")
    ap.add_argument("--boot", type=int, default=1000, help="bootstrap replicates per seed")
    ap.add_argument("--fidelity-modes", nargs="*", default=[], choices=("screen", "halving"))
    ap.add_argument("--throughput", action="store_true", help="also the paper-scale projection")
    ap.add_argument("--fresh", action="store_true", help="measure again seeds already saved")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        help="key=value for the pipeline config (a smoke run; its own run directory)",
    )
    ap.add_argument("--out", type=Path, default=RESULTS, help="results JSON")
    ap.add_argument(
        "--resummarise",
        action="store_true",
        help="recompute metrics, summary and targets from the saved files (nothing is re-run)",
    )
    args = ap.parse_args(argv)
    if args.resummarise:
        return resummarise(args.out, args.boot)
    torch.set_num_threads(1)  # the CLI's policy: one intra-op thread per process
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cpath = candidates_path(args.out)
    results: dict[str, Any] = {"seeds": {}}
    cands: dict[str, Any] = {"seeds": {}}
    if args.out.is_file() and cpath.is_file() and not args.fresh:
        results = read_json(args.out, schema_version=SCHEMA)
        cands = read_json(cpath, schema_version=SCHEMA)
        if results.get("settings", {}).get("profile") != args.profile:
            results, cands = {"seeds": {}}, {"seeds": {}}
    results.update(
        {
            "benchmark": "search_quality",
            "command": " ".join(["python", "benchmarks/search_quality.py", *sys.argv[1:]]),
            "machine": bench_identity(),
            "settings": {
                "profile": args.profile,
                "population": args.population,
                "generations": args.generations,
                "budget": args.population * args.generations,
                "test_seeds": args.test_seeds,
                "rescore_seeds": 1,
                "fidelity_modes": args.fidelity_modes,
                "n_boot": args.boot,
                "config": "configs/quick.yaml via benchmarks/_pipelines.py",
                "sets": args.set,
            },
        }
    )
    for seed in args.seeds:
        saved = cands["seeds"].get(str(seed), {})
        missing = [k for k in SEARCHES if k not in saved]
        if str(seed) in results["seeds"] and not missing:
            print(f"seed {seed}: saved record reused", flush=True)
            continue
        if str(seed) in results["seeds"]:
            print(
                f"seed {seed}: the saved record lacks {', '.join(missing)}: measuring it (the "
                "other searches resume from their finished studies)",
                flush=True,
            )
        t0 = time.perf_counter()
        rec, seed_cands = one_seed(args, seed)
        rec["wall_s"] = time.perf_counter() - t0
        old = results["seeds"].get(str(seed), {})
        for k in SEARCHES:  # a search saved before resumed at no cost: keep its own timings
            if k not in missing and k in old:
                rec[k] = old[k]
        if old:
            rec["wall_s"] += old.get("wall_s", 0.0)
        results["seeds"][str(seed)] = rec
        cands["seeds"][str(seed)] = seed_cands
        atomic_write_json(cpath, {**cands, **sidecar_fields(args.out)}, schema_version=SCHEMA)
        finish(results, cands["seeds"], args.boot)
        atomic_write_json(args.out, results, schema_version=SCHEMA)
        print(f"seed {seed}: done in {rec['wall_s'] / 60:.1f} min", flush=True)
    finish(results, cands["seeds"], args.boot)
    if args.throughput:
        if set(args.fidelity_modes) != {"screen", "halving"}:
            print("error: --throughput needs --fidelity-modes screen halving", file=sys.stderr)
            return 2
        recs = list(results["seeds"].values())
        promotion = {
            m: statistics.fmean(
                r[f"nsga2_{m}"]["n_full_fidelity"] / max(r[f"nsga2_{m}"]["n_complete"], 1)
                for r in recs
            )
            for m in ("screen", "halving")
        }
        fronts = {
            k: statistics.fmean(r["metrics"]["front_size"][f"nsga2{suffix}"] for r in recs)
            for k, suffix in (("full", ""), ("screen", "_screen"), ("halving", "_halving"))
        }
        results["throughput"] = throughput(args, args.seeds[0], promotion, fronts)
    show(results["summary"], results["targets"], results["figures"])
    atomic_write_json(args.out, results, schema_version=SCHEMA)
    print(f"saved {_rel(args.out)} and {_rel(cpath)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
