"""The paper's device: the search and bm-nas-max costed with the published Jetson TX2 tables.

Harmonic-NAS (Ghebriout et al., ACML 2023, arXiv:2309.06612) reports its models on a Jetson TX2
and a Jetson AGX Xavier, in accuracy, latency (ms) and energy (mJ) (Tables 2-3), with "up to
~1.91x latency reduction, and ~2.14x energy efficiency gain" (abstract). This benchmark
runs today's search on that device's published tables, with three objectives (val accuracy,
TX2 latency, TX2 energy: the tables measure energy, so it is an objective of its own).

* **The device table.** The published TX2 backbone table of the AV-MNIST supernets
  (``lut_ofa_mnist_tx2.json``) and fusion-operator table at C=192, L=16 (``lut_fusion_tx2.json``),
  read from ``../shared/reference-luts`` (``--tables``; data, not part of the repository), are
  imported with the project's own importer (:func:`harmonic_nas.hardware.reference.
  import_reference_lut`, what ``harmonic-nas lut import ... --device jetson-tx2`` runs) into the
  pipeline's run copy ``luts/jetson-tx2.json`` (nothing is installed in the user's cache). The
  search costs with ``device.fallback_predictor: true``: a layer of a kind the table holds but a
  size it lacks is predicted from a least-squares fit on that kind's entries (flagged
  ``predicted``); a layer of a kind the table has no entry of (the fusion reshapes, the cell
  norms, the fusion heads) is **not costed** (left out of every total, named in ``coverage``).
* **Per seed** (a whole pipeline shared with the other benchmarks, benchmarks/_pipelines.py:
  ``--profile hard`` by default, dataset and 20-epoch supernets of ``runs/bench-<profile>-s<s>``):
  NSGA-II (``--population`` x ``--generations``) with the TX2 table as the device, fusion at
  C=192, L=16 (the only size the fusion table has) with ``--fusion-epochs`` search + retraining
  epochs (reduced from the paper's 25 + 25 for time; recorded); bm-nas-max (max backbones, the
  config's ``fusion.cells`` x ``fusion.nodes``, lambda 0, same fusion settings) and the late
  fusions of the max backbones, costed on TX2 (``harmonic_nas.search.baselines``); the controls:
  the late-fusion frontier (the fair late fusion of every backbone pair of the ladder and of the
  search, TX2-costed, no training) and the one-genome control (the ladder's first rung).
  The TX2 study, its Pareto set (scored once on test) and its baselines live in the run's
  ``studies/<run name>-jetson-tx2/``; the run's own files (host LUT, baselines) are untouched.
* **Metrics** (``harmonic_nas.search.front_metrics``, via benchmarks/search_quality.py): the
  hypervolume in a 3-D box per seed (accuracy from the best single modality's val score,
  latency to the slower of late-fusion-avg and bm-nas-max on TX2, energy to the dearer of the
  two), its ratio to the late-fusion frontier's with a bootstrap 90 % interval over val
  resampling; the latency and energy gains over bm-nas-max of the cheapest front member whose
  val score is within 1 point of bm-nas-max's (its test score beside it), and the same for the
  late-fusion frontier (``control_also_meets``).

Targets: ``tx2_latency_gain_vs_bm_nas_max`` >= 1.91 and ``tx2_energy_gain_vs_bm_nas_max`` >= 2.14
(mean over seeds), ``tx2_front_hv_vs_late_fusion_frontier`` >= 1.05 (met only with ``_ci_low``
> 1.0). The front members, bm-nas-max and the controls' choices are printed in the paper's table
format (model, val / test accuracy, TX2 latency ms, TX2 energy mJ, layers not costed).

    .venv/bin/python benchmarks/paper_devices.py [--profile hard] [--seeds 0 1 2]
        [--population 16] [--generations 4] [--fusion-epochs 3 3] [--boot 1000] [--tables DIR]
    .venv/bin/python benchmarks/paper_devices.py --resummarise [--out FILE]

Each seed's record is saved as soon as it is measured and reused by a later run (``--fresh``
measures again); the search resumes from its study. Every candidate of the search and of the
controls (genome, objectives, val predictions) is saved per seed in
``benchmarks/results/paper_devices.candidates.json``; ``--resummarise`` recomputes every figure
from the two files alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import torch

from _bench_config import bench_identity, sidecar_fields  # benchmarks/_bench_config.py
from _bench_config import repo_relative as _rel
from _pipelines import BENCH_PROFILES, open_pipeline, pipeline_config  # benchmarks/_pipelines.py
from _targets import print_targets, target  # benchmarks/_targets.py
from harmonic_nas.config import ExperimentConfig, save_resolved
from harmonic_nas.errors import HarmonicError, LUTError
from harmonic_nas.hardware.lut import LUT
from harmonic_nas.hardware.lut_source import get_device
from harmonic_nas.search import run_search
from harmonic_nas.search.baselines import run_baselines
from harmonic_nas.search.genome import MultimodalGenome
from harmonic_nas.search.initial import ladder_size
from harmonic_nas.search.pareto_record import PARETO_FILE, ParetoRecord
from harmonic_nas.utils.io import atomic_write_json, read_json
from search_quality import (  # benchmarks/search_quality.py
    LATE_FRONTIER,
    ONE_GENOME,
    _bb_key,
    candidates_path,
    late_fusion_frontier,
    legacy_box,
    load,
    measure_seed,
    study_candidates,
    summarise,
    targets_of,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "paper_devices.json"
TABLES = ROOT.parent / "shared" / "reference-luts"
DEVICE = "jetson-tx2"
_ENTRY = get_device(DEVICE)
assert _ENTRY is not None, f"{DEVICE} is a registered device"
#: the published TX2 tables (the device registry's): the AV-MNIST backbones, the fusion operators
TABLE_FILES: tuple[str, ...] = _ENTRY.reference_files
C, L = 192, 16  # the only fusion size the published fusion table has
SCHEMA = 1
SEARCH = "nsga2"
VAL_WITHIN = 0.01  # "within 1 point of bm-nas-max's val score"
LATENCY_GOAL, ENERGY_GOAL, HV_GOAL = 1.91, 2.14, 1.05
#: (strategy, control, target name, goal) for search_quality's interval rules
COMPARISONS: tuple[tuple[str, str, str, float], ...] = (
    (SEARCH, LATE_FRONTIER, "tx2_front_hv_vs_late_fusion_frontier", HV_GOAL),
)
CONTROLS = (ONE_GENOME, LATE_FRONTIER)


# --- the device table -----------------------------------------------------------------------------


def import_tables(folder: Path) -> LUT:
    """The published TX2 tables as one LUT, imported as ``harmonic-nas lut import`` does."""
    from harmonic_nas.hardware.reference import import_reference_lut

    missing = [f for f in TABLE_FILES if not (folder / f).is_file()]
    if missing:
        raise LUTError(
            f"published tables {', '.join(missing)} not found in {folder}; pass --tables DIR"
        )
    return import_reference_lut([folder / f for f in TABLE_FILES], DEVICE)


def place_table(cfg: ExperimentConfig, lut: LUT) -> Path:
    """Write ``lut`` as the run's copy of the device table (what the search reads), unless the
    same table is there; refuse when a different table is installed for the device (the search
    would read that one instead)."""
    from harmonic_nas.hardware.lut_source import import_command, installed_path, run_lut_path

    installed = installed_path(DEVICE)
    if installed.is_file() and LUT.load(installed).entries != lut.entries:
        raise LUTError(
            f"another table is installed for device '{DEVICE}' at {installed}; the "
            f"benchmark costs on the published tables: move it aside or reinstall them with "
            f"`{import_command(DEVICE)} --force`"
        )
    path = run_lut_path(cfg, DEVICE)
    if path.is_file():
        old = LUT.load(path)
        if old.entries == lut.entries and old.energy_source == lut.energy_source:
            return path
    return lut.save(path)


def coverage(cfg: ExperimentConfig, lut: LUT, n_classes: int) -> dict[str, Any]:
    """Every distinct layer of the search space (and the late-fusion-linear head) against the
    table: measured, predicted (kind present, size absent) or not costed (kind absent), named."""
    from harmonic_nas.hardware.cost import CostModel
    from harmonic_nas.hardware.inventory import late_fusion_head_spec, space_layer_specs
    from harmonic_nas.hardware.keys import lut_key

    model = CostModel(lut, fallback=True)
    out: dict[str, list[str]] = {"measured": [], "predicted": [], "not_costed": []}
    seen: set[str] = set()
    for spec in [*space_layer_specs(cfg, n_classes), late_fusion_head_spec(cfg, n_classes)]:
        key = lut_key(spec)
        if key in seen:
            continue
        seen.add(key)
        cost = model.layer_cost(spec)
        kind = (
            "measured"
            if key in lut.entries
            else "not_costed"
            if cost.uncosted_keys
            else "predicted"
        )
        out[kind].append(key)
    return {
        **{k: sorted(v) for k, v in out.items()},
        "table_entries": len(lut.entries),
        "table_entries_unused": sorted(set(lut.entries) - seen),
        "rule": "measured: the key is in the table; predicted: a layer of a kind the table holds "
        "(non-negative least squares on that kind's entries: MACs, bytes, 1); not costed: no "
        "entry of its kind, left out of every total (harmonic_nas.hardware.cost)",
    }


# --- one seed -------------------------------------------------------------------------------------


def device_config(args: argparse.Namespace, seed: int) -> tuple[ExperimentConfig, ExperimentConfig]:
    """(the seed's shared pipeline config, the same with the TX2 table and this benchmark's
    search and fusion settings). Both name the same run directory and supernets."""
    pipe = pipeline_config(args.profile, seed, sets=args.set)
    data = pipe.model_dump(mode="json")
    data["device"].update(name=DEVICE, fallback_predictor=True)
    epochs, retrain = args.fusion_epochs
    data["fusion"].update(C=C, L=L, epochs=epochs, retrain_epochs=retrain)
    data["search"].update(
        population=args.population,
        generations=args.generations,
        fidelity="full",
        rescore_seeds=1,
        test_seeds=args.test_seeds,
    )
    return pipe, ExperimentConfig.model_validate(data)


def study_name(cfg: ExperimentConfig) -> str:
    return f"{cfg.name}-{DEVICE}"


def member_row(m: Any) -> dict[str, Any]:
    """A Pareto member's table row (its genome and genotype in ``arch``)."""
    return {
        "id": m.id,
        "val_metric": m.val_metric,
        "test_metric": m.test_metric,
        "latency_ms": m.latency_ms,
        "energy_mj": m.energy_mj,
        "latency_paper_ms": m.latency_paper_ms,
        "energy_paper_mj": m.energy_paper_mj,
        "params": m.params,
        "predicted_keys": list(m.predicted_keys),
        "uncosted_keys": list(m.uncosted_keys),
        "arch": m.arch,
    }


def one_seed(
    args: argparse.Namespace, seed: int, lut: LUT
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the seed's record, its candidates by strategy and control)."""
    pipe, cfg = device_config(args, seed)
    table = place_table(cfg, lut)
    if not (cfg.run_path / "config.yaml").is_file():
        save_resolved(pipe)  # the run's own config, not this benchmark's variant of it
    problem, stage_s = open_pipeline(cfg)
    name = study_name(cfg)
    rec: dict[str, Any] = {
        "seed": seed,
        "run": _rel(cfg.run_path),
        "study": name,
        "lut": _rel(table),
        "stage_s": stage_s,
        "coverage": coverage(cfg, lut, problem.n_classes),
    }
    t0, c0 = time.perf_counter(), time.process_time()
    s = run_search(cfg, strategy=SEARCH, study_name=name, finalize=True)
    study = load(cfg, s.study_name)
    out_dir = s.out_dir  # the named study's folder (studies/<name>/)
    cands: dict[str, list[dict[str, Any]]] = {
        SEARCH: study_candidates(problem, study, SEARCH, cfg.search.population)
    }
    rec[SEARCH] = {
        "n_complete": s.n_complete,
        "wall_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,
        "out": _rel(s.out_dir),
    }
    print(f"  seed {seed} {SEARCH}: {s.n_complete} candidates", flush=True)
    ladder = problem.space.ladder(ladder_size(cfg.search.population))
    first = ladder[0].key()
    cands[ONE_GENOME] = [
        {**c, "id": f"{ONE_GENOME}:{c['trial']}", "strategy": ONE_GENOME}
        for c in cands[SEARCH]
        if c["genome"] == first
    ][:1]
    pairs: dict[str, MultimodalGenome] = {_bb_key(g): g for g in ladder}
    for c in cands[SEARCH]:
        g = problem.space.from_params(c["params"])
        pairs.setdefault(_bb_key(g), g)
    t0 = time.process_time()
    cands[LATE_FRONTIER] = late_fusion_frontier(problem, pairs)
    rec["late_fusion_frontier_cpu_s"] = time.process_time() - t0
    t0 = time.perf_counter()
    base = read_json(run_baselines(cfg, out_dir=out_dir), schema_version=1)["baselines"]
    rec["baselines_wall_s"] = time.perf_counter() - t0
    by = {r["name"]: r for r in base}
    singles = [r for r in base if r["name"].startswith("single:")]
    best_single = max(singles, key=lambda r: r["val_metric"])
    ceil = (by["late-fusion-avg"], by["bm-nas-max"])
    rec["baselines"] = base
    rec["box"] = {
        "acc_floor": best_single["val_metric"],
        "acc_floor_from": best_single["name"],
        "lat_ceiling": max(r["latency_ms"] for r in ceil),
        "lat_ceiling_from": "max(late-fusion-avg, bm-nas-max) TX2 latency",
        "energy_ceiling": max(r["energy_mj"] for r in ceil),
        "energy_ceiling_from": "max(late-fusion-avg, bm-nas-max) TX2 energy",
        "latency_total": "CostModel.cost_arch(...).total on the TX2 table (the search's objective)",
    }
    rec["legacy_box"] = legacy_box(study)
    ds = problem.dataset
    rec["task"] = ds.task
    rec["val_labels"] = ds.split("val").labels.tolist()
    pareto = ParetoRecord.read(out_dir / PARETO_FILE)
    rec["objectives"] = list(pareto.objectives)
    rec["energy_objective"] = pareto.energy
    rec["pareto"] = [member_row(m) for m in pareto.members]
    return rec, cands


# --- figures from the saved files -----------------------------------------------------------------


def cheapest_within(
    rows: Sequence[dict[str, Any]], val_floor: float, key: str
) -> dict[str, Any] | None:
    """The row of least ``key`` (``latency_ms`` / ``energy_mj``) among those whose val score is
    at least ``val_floor`` (ties: the more accurate); None when no row reaches it."""
    ok = [r for r in rows if r["val_metric"] >= val_floor - 1e-12]
    if not ok:
        return None
    return min(ok, key=lambda r: (r[key], -r["val_metric"]))


def gains(rec: dict[str, Any], cands: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per seed: for the search's front (its Pareto set, scored on test) and for the late-fusion
    frontier, the cheapest member in latency and in energy whose val score is within 1 point of
    bm-nas-max's, its gain over bm-nas-max (bm-nas-max's cost / its cost) and its val / test."""
    bm = next(r for r in rec["baselines"] if r["name"] == "bm-nas-max")
    floor = bm["val_metric"] - VAL_WITHIN
    out: dict[str, Any] = {
        "bm_nas_max": {
            k: bm.get(k) for k in ("val_metric", "test_metric", "latency_ms", "energy_mj")
        },
        "val_floor": floor,
    }
    sources = {"search": rec["pareto"], "control": cands.get(LATE_FRONTIER, [])}
    for side, rows in sources.items():
        for what, key in (("latency", "latency_ms"), ("energy", "energy_mj")):
            m = cheapest_within(rows, floor, key)
            out[f"{side}_{what}"] = (
                None
                if m is None
                else {
                    "id": m["id"],
                    "late_fusion": m.get("late_fusion"),
                    "val_metric": m["val_metric"],
                    "test_metric": m.get("test_metric"),
                    "latency_ms": m["latency_ms"],
                    "energy_mj": m["energy_mj"],
                    "gain": bm[key] / m[key] if m[key] > 0 else None,
                }
            )
    return out


def _stat(values: Sequence[float | None]) -> dict[str, Any]:
    """Mean ± std over seeds with the per-seed values (None when a seed has none)."""
    vals = list(values)
    if not vals or any(v is None for v in vals):
        return {"mean": None, "std": None, "per_seed": vals}
    nums = [float(v) for v in vals if v is not None]
    return {
        "mean": statistics.fmean(nums),
        "std": statistics.stdev(nums) if len(nums) > 1 else 0.0,
        "per_seed": nums,
    }


def summarise_gains(per_seed: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± std over seeds of bm-nas-max and of each chosen member (val, test, cost, gain)."""
    out: dict[str, Any] = {
        "bm_nas_max": {
            k: _stat([g["bm_nas_max"][k] for g in per_seed])
            for k in ("val_metric", "test_metric", "latency_ms", "energy_mj")
        }
    }
    for side in ("search", "control"):
        for what in ("latency", "energy"):
            picks = [g[f"{side}_{what}"] for g in per_seed]
            out[f"{side}_{what}"] = {
                "id_per_seed": [None if p is None else p["id"] for p in picks],
                **{
                    k: _stat([None if p is None else p[k] for p in picks])
                    for k in ("gain", "val_metric", "test_metric", "latency_ms", "energy_mj")
                },
            }
    return out


def gain_targets(summary: dict[str, Any]) -> dict[str, Any]:
    """The two gain targets (mean over seeds), each with the late-fusion frontier's own gain
    (``control_also_meets``) and the chosen members' val / test beside bm-nas-max's."""
    out: dict[str, Any] = {}
    for what, goal in (("latency", LATENCY_GOAL), ("energy", ENERGY_GOAL)):
        s, c = summary[f"search_{what}"], summary[f"control_{what}"]
        t = target(s["gain"]["mean"], goal, ">=", controls={LATE_FRONTIER: c["gain"]["mean"]})
        t.update(
            per_seed=s["gain"]["per_seed"],
            member_per_seed=s["id_per_seed"],
            member_val_per_seed=s["val_metric"]["per_seed"],
            member_test_per_seed=s["test_metric"]["per_seed"],
            bm_nas_max_test_per_seed=summary["bm_nas_max"]["test_metric"]["per_seed"],
            control_per_seed=c["gain"]["per_seed"],
            control_member_per_seed=c["id_per_seed"],
            control_test_per_seed=c["test_metric"]["per_seed"],
            definition=f"bm-nas-max's TX2 {what} / that of the cheapest front member whose val "
            "score is within 1 point of bm-nas-max's, mean over seeds",
        )
        out[f"tx2_{what}_gain_vs_bm_nas_max"] = t
    return out


# --- the paper's table ----------------------------------------------------------------------------


def table_rows(rec: dict[str, Any], picks: dict[str, Any]) -> list[dict[str, Any]]:
    """One seed in the paper's table format: every front member (by latency), bm-nas-max, the
    late fusions and single modalities of the max backbones, the late-fusion frontier's picks."""
    chosen: dict[str, list[str]] = {}
    for what in ("latency", "energy"):
        if (p := picks[f"search_{what}"]) is not None:
            chosen.setdefault(p["id"], []).append(what)
    rows = []
    for m in sorted(rec["pareto"], key=lambda m: m["latency_ms"]):
        rows.append(
            {
                "model": f"{m['id']} (searched)",
                "val": m["val_metric"],
                "test": m["test_metric"],
                "latency_ms": m["latency_ms"],
                "energy_mj": m["energy_mj"],
                "not_costed": len(m["uncosted_keys"]),
                "note": f"cheapest in {' and '.join(chosen[m['id']])} within 1 val point of "
                "bm-nas-max"
                if m["id"] in chosen
                else "",
            }
        )
    for r in rec["baselines"]:
        rows.append(
            {
                "model": r["name"],
                "val": r["val_metric"],
                "test": r["test_metric"],
                "latency_ms": r["latency_ms"],
                "energy_mj": r["energy_mj"],
                "not_costed": len(r.get("uncosted_keys") or []),
                "note": "max backbones",
            }
        )
    controls: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for what in ("latency", "energy"):
        if (p := picks[f"control_{what}"]) is not None:
            controls.setdefault(p["id"], (p, []))[1].append(what)
    for p, whats in controls.values():
        rows.append(
            {
                "model": f"late-fusion frontier #{p['id'].split(':')[-1]} "
                f"({p.get('late_fusion') or 'fair late fusion'})",
                "val": p["val_metric"],
                "test": p["test_metric"],
                "latency_ms": p["latency_ms"],
                "energy_mj": p["energy_mj"],
                "not_costed": 0,
                "note": f"control: cheapest in {' and '.join(whats)} within 1 val point of "
                "bm-nas-max",
            }
        )
    return rows


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def show_table(seed: str, rows: list[dict[str, Any]]) -> None:
    print(f"\nseed {seed} (Jetson TX2, published tables)")
    print("| model | val % | test % | TX2 latency ms | TX2 energy mJ | not costed | |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(
            f"| {r['model']} | {_pct(r['val'])} | {_pct(r['test'])} | {r['latency_ms']:.3f} | "
            f"{r['energy_mj']:.3f} | {r['not_costed']} | {r['note']} |"
        )


def _ms(stat: dict[str, Any], scale: float = 1.0, digits: int = 1) -> str:
    if stat["mean"] is None:
        return "-"
    return f"{scale * stat['mean']:.{digits}f} ± {scale * stat['std']:.{digits}f}"


def show_summary(gs: dict[str, Any]) -> None:
    """Mean ± std over seeds of bm-nas-max and of the chosen members (per-seed values in the
    JSON's ``summary.gains``)."""
    print(f"\nover {len(gs['bm_nas_max']['val_metric']['per_seed'])} seed(s), mean ± std")
    print("| model | val % | test % | TX2 latency ms | TX2 energy mJ | gain |")
    print("|---|---:|---:|---:|---:|---:|")
    rows = [("bm-nas-max", gs["bm_nas_max"], None)]
    for side, label in (("search", "searched"), ("control", "late-fusion frontier")):
        for what in ("latency", "energy"):
            rows.append(
                (f"{label}: cheapest in {what} within 1 val point", gs[f"{side}_{what}"], what)
            )
    for name, st, what in rows:
        gain = "" if what is None else f"{_ms(st['gain'], digits=2)} ({what})"
        print(
            f"| {name} | {_ms(st['val_metric'], 100)} | {_ms(st['test_metric'], 100)} | "
            f"{_ms(st['latency_ms'], digits=3)} | {_ms(st['energy_mj'], digits=3)} | {gain} |"
        )


def show_targets(targets: dict[str, Any]) -> None:
    print_targets(targets)
    for name, t in targets.items():
        extra = f"  control also meets: {t.get('control_also_meets')}"
        if "_ci_low" in t:
            extra += f", 90 % interval [{t['_ci_low']}, {t['_ci_high']}]"
        print(f"  {name}:{extra}")


# --- the run --------------------------------------------------------------------------------------


def finish(results: dict[str, Any], cands: dict[str, Any], n_boot: int) -> dict[str, Any]:
    """Every figure from the saved records and candidates: per seed the HV comparisons
    (search_quality's, in the 3-D box), the gains and the table; the summary and the targets."""
    metrics, picks = [], []
    results["tables"] = {}
    for seed in sorted(results["seeds"], key=int):
        rec, raw = results["seeds"][seed], cands[seed]
        rec["metrics"] = measure_seed(rec, raw, n_boot)
        rec["gains"] = gains(rec, raw)
        results["tables"][seed] = table_rows(rec, rec["gains"])
        metrics.append(rec["metrics"])
        picks.append(rec["gains"])
    if not metrics:
        results["summary"], results["targets"] = {}, {}
        return results
    hv = summarise(metrics)
    results["summary"] = {"hv": hv, "gains": summarise_gains(picks)}
    results["targets"] = {
        **gain_targets(results["summary"]["gains"]),
        **targets_of(hv, COMPARISONS, CONTROLS),
    }
    return results


def report(results: dict[str, Any]) -> None:
    for seed, rows in results["tables"].items():
        show_table(seed, rows)
    gs = results["summary"].get("gains")
    if gs:
        show_summary(gs)
    show_targets(results["targets"])
    cov = next(iter(results["seeds"].values()), {}).get("coverage")
    if cov:
        print(f"\nnot costed on TX2 (no entry of their kind): {', '.join(cov['not_costed'])}")
        if cov["predicted"]:
            print(
                f"predicted from the table's entries of their kind: {', '.join(cov['predicted'])}"
            )


def resummarise(path: Path, n_boot: int) -> int:
    """Recompute every figure, the summary and the targets from the result and its candidates
    file alone (nothing is re-run)."""
    try:
        results = read_json(path, schema_version=SCHEMA, what="paper_devices result")
        cands = read_json(candidates_path(path), schema_version=SCHEMA, what="candidates file")
    except HarmonicError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results = finish(results, cands["seeds"], n_boot)
    atomic_write_json(path, results, schema_version=SCHEMA)
    report(results)
    print(f"updated figures, summary and targets in {_rel(path)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="hard", choices=BENCH_PROFILES)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--population", type=int, default=16)
    ap.add_argument("--generations", type=int, default=4)
    ap.add_argument(
        "--fusion-epochs",
        type=int,
        nargs=2,
        default=[3, 3],
        metavar=("SEARCH", "RETRAIN"),
        help="fusion search and retraining epochs (the paper: 25 25)",
    )
    ap.add_argument("--test-seeds", type=int, default=1, help="retrainings per test score")
    ap.add_argument("--boot", type=int, default=1000, help="bootstrap replicates per seed")
    ap.add_argument("--tables", type=Path, default=TABLES, help="published tables folder")
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
        help="recompute figures, summary and targets from the saved files (nothing is re-run)",
    )
    args = ap.parse_args(argv)
    if args.resummarise:
        return resummarise(args.out, args.boot)
    if min(args.fusion_epochs) < 1 or args.population < 2 or args.generations < 1:
        print("error: --fusion-epochs >= 1, --population >= 2, --generations >= 1", file=sys.stderr)
        return 2
    try:
        lut = import_tables(args.tables)
    except HarmonicError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)  # the CLI's policy: one intra-op thread per process
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    settings = {
        "profile": args.profile,
        "device": DEVICE,
        "tables": [os.path.relpath((args.tables / f).resolve(), ROOT) for f in TABLE_FILES],
        "lut_energy_source": lut.energy_source,
        "objectives": "val metric, TX2 latency, TX2 energy (measured: an objective of its own)",
        "population": args.population,
        "generations": args.generations,
        "budget": args.population * args.generations,
        "fusion": {"C": C, "L": L, "epochs": args.fusion_epochs[0]},
        "fusion_retrain_epochs": args.fusion_epochs[1],
        "paper_fusion_epochs": [25, 25],
        "test_seeds": args.test_seeds,
        "rescore_seeds": 1,
        "n_boot": args.boot,
        "val_within_points": 100 * VAL_WITHIN,
        "config": "configs/quick.yaml via benchmarks/_pipelines.py, device and fusion replaced",
        "sets": args.set,
    }
    cpath = candidates_path(args.out)
    results: dict[str, Any] = {"seeds": {}}
    cands: dict[str, Any] = {"seeds": {}}
    if args.out.is_file() and cpath.is_file() and not args.fresh:
        results = read_json(args.out, schema_version=SCHEMA)
        cands = read_json(cpath, schema_version=SCHEMA)
        if results.get("settings") != settings:  # another setting: its seeds are not comparable
            results, cands = {"seeds": {}}, {"seeds": {}}
    results.update(
        {
            "benchmark": "paper_devices",
            "command": " ".join(["python", "benchmarks/paper_devices.py", *sys.argv[1:]]),
            "machine": bench_identity(),
            "settings": settings,
        }
    )
    for seed in args.seeds:
        if str(seed) in results["seeds"]:
            print(f"seed {seed}: saved record reused", flush=True)
            continue
        t0 = time.perf_counter()
        try:
            rec, seed_cands = one_seed(args, seed, lut)
        except HarmonicError as exc:  # one line; the seeds saved so far are kept
            print(f"error: seed {seed}: {exc}", file=sys.stderr)
            return 2
        rec["wall_s"] = time.perf_counter() - t0
        results["seeds"][str(seed)] = rec
        cands["seeds"][str(seed)] = seed_cands
        atomic_write_json(cpath, {**cands, **sidecar_fields(args.out)}, schema_version=SCHEMA)
        finish(results, cands["seeds"], args.boot)
        atomic_write_json(args.out, results, schema_version=SCHEMA)
        print(f"seed {seed}: done in {rec['wall_s'] / 60:.1f} min", flush=True)
    finish(results, cands["seeds"], args.boot)
    atomic_write_json(args.out, results, schema_version=SCHEMA)
    report(results)
    print(f"saved {_rel(args.out)} and {_rel(cpath)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
