"""How hard is av-digits? Measured with the search's own supernets, per profile, over 3 seeds.

``real`` (the figures the targets read): for each profile (``hard``, ``interaction``; see
``harmonic_nas.data.av_digits.PROFILES``) and seed, the shared benchmark pipeline
(benchmarks/_pipelines.py: dataset, 20-epoch supernets, host LUT) is opened and measured:

* every modality's MAX subnet alone with its own classifier (val / test);
* late fusion of the max subnets: ``late-fusion-avg`` (logits averaged), ``late-fusion-bayes``
  (posteriors combined by Bayes' rule), ``late-fusion-linear``, and the fair control (the better
  on val of bayes and linear, ``harmonic_nas.fusion.late.fair_late_fusion``);
* ``bm-nas-max`` (max subnets + fusion search without the hardware term);
* the ladder's fused models (the first generation of search_quality's population of 16: 8 rungs
  from the smallest to the largest backbones, the config's fusion cells x nodes for all): val of
  each, and their spread (max - min);
* the val split's binomial standard error at late fusion's score.

``proxy`` (second, labelled column; ``--proxy``): the older measurement with a small fixed CNN
per modality instead of the search's backbones, on the default profile.

Targets (hard profile: each range must hold on every seed, the others are means over seeds):
``hard_max_single_val_min`` >= 0.65, ``hard_max_single_val_max`` <= 0.82,
``hard_late_fusion_gain_points`` >= 8 (late-fusion-avg val over the best single modality's val),
``hard_late_fusion_val`` <= 0.93, ``hard_ladder_spread_points`` >= 3,
``val_standard_error_points`` <= 1.0; interaction profile:
``interaction_bm_nas_over_late_fusion_points`` >= 10 (bm-nas-max test over the fair late-fusion
control's test, weighted F1 points).

    .venv/bin/python benchmarks/data_difficulty.py [--profiles hard interaction] [--seeds 0 1 2]
    .venv/bin/python benchmarks/data_difficulty.py --proxy [--seeds 0 1 2]
    .venv/bin/python benchmarks/data_difficulty.py --retarget [--out FILE]

Each (profile, seed) record is saved as soon as it is measured and reused by a later run (pass
``--fresh`` to measure again), so the benchmark can span sittings. ``--retarget`` recomputes the
``targets`` block of an existing result file from its saved records (nothing is re-run).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from _targets import print_targets, retarget, target  # benchmarks/_targets.py
from harmonic_nas.data import build_dataset
from harmonic_nas.data.options import parse_cli_options
from harmonic_nas.utils.io import atomic_write_json

RESULTS = Path(__file__).resolve().parent / "results" / "data_difficulty.json"
#: the ladder of the search benchmarks' first generation (search_quality's population 16: 8 rungs)
LADDER_POPULATION = 16


class SmallCNN(nn.Module):
    """3 conv blocks (16-32-64, BN, ReLU, 2 max-pools), global average pool, dropout, linear."""

    def __init__(self, in_ch: int, n_classes: int) -> None:
        super().__init__()

        def block(i: int, o: int, pool: bool) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o)]
            layers.append(nn.ReLU(inplace=True))
            if pool:
                layers.append(nn.MaxPool2d(2))
            return layers

        self.features = nn.Sequential(
            *block(in_ch, 16, True), *block(16, 32, True), *block(32, 64, False)
        )
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3), nn.Linear(64, n_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@torch.no_grad()
def log_probs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    return torch.cat([model(b).log_softmax(-1) for b in x.split(512)])


def train_unimodal(
    x_tr: torch.Tensor,
    y_tr: torch.Tensor,
    x_va: torch.Tensor,
    y_va: torch.Tensor,
    *,
    seed: int,
    epochs: int,
) -> nn.Module:
    """Adam, cosine LR, batch 64; keeps the weights of the best validation epoch."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = SmallCNN(x_tr.shape[1], int(y_tr.max()) + 1)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    best, best_state = -1.0, None
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(y_tr), generator=gen)
        for idx in perm.split(64):
            loss = nn.functional.cross_entropy(model(x_tr[idx]), y_tr[idx], label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        acc = float((log_probs(model, x_va).argmax(-1) == y_va).float().mean())
        if acc > best:
            best, best_state = acc, {k: v.clone() for k, v in model.state_dict().items()}
    assert best_state is not None
    model.load_state_dict(best_state)
    return model


def run_seed(seed: int, options: dict[str, object], epochs: int) -> dict[str, float]:
    t0 = time.perf_counter()
    ds = build_dataset("av-digits", options=options, seed=seed, use_cache=False)
    build_s = time.perf_counter() - t0
    tr, va, te = ds.split("train"), ds.split("val"), ds.split("test")
    out: dict[str, float] = {"seed": seed, "build_s": build_s}
    lp_test: dict[str, torch.Tensor] = {}
    for mod in ("image", "audio"):
        model = train_unimodal(
            tr.inputs[mod], tr.labels, va.inputs[mod], va.labels, seed=seed, epochs=epochs
        )
        lp_test[mod] = log_probs(model, te.inputs[mod])
        out[f"{mod}_val"] = float(
            (log_probs(model, va.inputs[mod]).argmax(-1) == va.labels).float().mean()
        )
        out[mod] = float((lp_test[mod].argmax(-1) == te.labels).float().mean())
    fused = lp_test["image"] + lp_test["audio"]  # late fusion: product of the class posteriors
    out["fused"] = float((fused.argmax(-1) == te.labels).float().mean())
    return out


def _mean_std(xs: list[float]) -> tuple[float, float]:
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def run_proxy(seeds: list[int], options: dict[str, object], epochs: int) -> dict[str, Any]:
    """The proxy column: a small fixed CNN per modality (not the search's backbones)."""
    runs = []
    for seed in seeds:
        r = run_seed(seed, options, epochs)
        runs.append(r)
        print(
            f"proxy seed {seed}: image {100 * r['image']:.1f}  audio {100 * r['audio']:.1f}  "
            f"fused {100 * r['fused']:.1f}  (build {r['build_s']:.1f} s)",
            flush=True,
        )
    summary = {}
    for key in ("image", "audio", "fused", "build_s"):
        m, sd = _mean_std([r[key] for r in runs])
        summary[key] = {"mean": m, "std": sd}
    return {
        "what": "a small fixed CNN per modality (3 conv blocks), NOT the search's backbones",
        "seeds": seeds,
        "epochs": epochs,
        "options": options,
        "runs": runs,
        "summary": summary,
    }


def _row(rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(r for r in rows if r["name"] == name)


def _slim(r: dict[str, Any]) -> dict[str, Any]:
    keep = ("name", "val_metric", "test_metric", "latency_ms", "energy_mj", "params")
    return {k: r[k] for k in keep if k in r}


def measure_real(profile: str, seed: int) -> dict[str, Any]:
    """One (profile, seed): the shared pipeline's max subnets, late fusion, bm-nas-max, ladder."""
    from _pipelines import open_pipeline, pipeline_config
    from harmonic_nas.fusion import late
    from harmonic_nas.search.baselines import late_fusion_rows
    from harmonic_nas.search.genome import MultimodalGenome
    from harmonic_nas.search.initial import ladder_size
    from harmonic_nas.utils.seeding import derive_seed

    cfg = pipeline_config(profile, seed)
    wall = time.perf_counter()
    problem, stage_s = open_pipeline(cfg)
    ds = problem.dataset
    rows = late_fusion_rows(problem)
    fair = late.fair_late_fusion(rows)
    singles = {r["name"].split(":", 1)[1]: r for r in rows if r["name"].startswith("single:")}
    fc = cfg.fusion
    no_hw = cfg.model_copy(
        update={"fusion": fc.model_copy(update={"lambda_lat": 0.0, "lambda_energy": 0.0})}
    )
    from harmonic_nas.search.evaluator import HarmonicProblem

    bm_problem = HarmonicProblem(no_hw, device=problem.device)
    max_genome = MultimodalGenome(problem.space.max_genome().backbones, fc.cells, fc.nodes)
    t = time.process_time()
    bm_seed = derive_seed(seed, "baseline", "bm-nas-max")
    bm_ev = bm_problem.evaluate(max_genome, seed=bm_seed)
    bm_test = bm_problem.score_test(
        max_genome, bm_ev, seeds=[bm_seed], model_dir=cfg.run_path / "bench" / "bm-nas-max"
    )
    bm = {
        "name": "bm-nas-max",
        "val_metric": bm_ev.val_metric,
        "test_metric": bm_test.test_metric,
        "latency_ms": bm_ev.latency_ms,
        "genotype": bm_ev.genotype,
        "cpu_s": time.process_time() - t,
    }
    print(
        f"  {profile} s{seed} bm-nas-max val {bm['val_metric']:.4f} test {bm['test_metric']:.4f}",
        flush=True,
    )
    ladder = []
    for i, g in enumerate(problem.space.ladder(ladder_size(LADDER_POPULATION))):
        genome = MultimodalGenome(g.backbones, fc.cells, fc.nodes)
        t = time.process_time()
        ev = problem.evaluate(genome, seed=derive_seed(seed, "ladder", i))
        ladder.append(
            {
                "rung": i,
                "genome": genome.key(),
                "val_metric": ev.val_metric,
                "latency_ms": ev.latency_ms,
                "cpu_s": time.process_time() - t,
            }
        )
        print(f"  {profile} s{seed} ladder {i}: val {ev.val_metric:.4f}", flush=True)
    lf_avg = _row(rows, "late-fusion-avg")
    n_val = len(ds.split("val"))
    p = lf_avg["val_metric"]
    return {
        "profile": profile,
        "seed": seed,
        "task": ds.task,
        "metric": problem.metric,
        "n": {s: len(ds.split(s)) for s in ("train", "val", "test")},
        "options": cfg.dataset.options,
        "pretrain_epochs": cfg.pretrain.epochs,
        "stage_s": stage_s,
        "wall_s": time.perf_counter() - wall,
        "single_max": {m: _slim(r) for m, r in singles.items()},
        "late_fusion": {
            n: _slim(_row(rows, n))
            for n in ("late-fusion-avg", "late-fusion-bayes", "late-fusion-linear")
        },
        "fair_late_fusion": fair["name"],
        "bm_nas_max": bm,
        "ladder": ladder,
        "ladder_spread_points": 100
        * (max(r["val_metric"] for r in ladder) - min(r["val_metric"] for r in ladder)),
        "ladder_largest_minus_smallest_points": 100
        * (ladder[-1]["val_metric"] - ladder[0]["val_metric"]),
        "val_standard_error_points": 100 * (p * (1 - p) / n_val) ** 0.5,
    }


def targets_of(results: dict[str, Any]) -> dict[str, Any]:
    """The targets block, from the saved per-(profile, seed) records of a result."""
    out: dict[str, Any] = {}
    hard = list(results.get("real", {}).get("hard", {}).values())
    if hard:
        singles = [r["val_metric"] for rec in hard for r in rec["single_max"].values()]
        best = [max(r["val_metric"] for r in rec["single_max"].values()) for rec in hard]
        lf = [rec["late_fusion"]["late-fusion-avg"]["val_metric"] for rec in hard]
        gain = statistics.fmean(100 * (a - b) for a, b in zip(lf, best, strict=True))
        out["hard_max_single_val_min"] = target(min(singles), 0.65, ">=")
        out["hard_max_single_val_max"] = target(max(singles), 0.82, "<=")
        out["hard_late_fusion_gain_points"] = target(gain, 8.0, ">=")
        out["hard_late_fusion_val"] = target(statistics.fmean(lf), 0.93, "<=")
        out["hard_ladder_spread_points"] = target(
            statistics.fmean(rec["ladder_spread_points"] for rec in hard), 3.0, ">="
        )
        out["val_standard_error_points"] = target(
            max(rec["val_standard_error_points"] for rec in hard), 1.0, "<="
        )
    inter = list(results.get("real", {}).get("interaction", {}).values())
    if inter:
        diff = statistics.fmean(
            100
            * (
                rec["bm_nas_max"]["test_metric"]
                - rec["late_fusion"][rec["fair_late_fusion"]]["test_metric"]
            )
            for rec in inter
        )
        out["interaction_bm_nas_over_late_fusion_points"] = target(diff, 10.0, ">=")
    return out


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """Means and stds over seeds of every figure, per profile."""
    out: dict[str, Any] = {}
    for profile, recs in results.get("real", {}).items():
        rs = [recs[k] for k in sorted(recs, key=int)]
        if not rs:
            continue
        fig: dict[str, list[float]] = {}
        for rec in rs:
            for m, r in rec["single_max"].items():
                fig.setdefault(f"single:{m} val", []).append(r["val_metric"])
                fig.setdefault(f"single:{m} test", []).append(r["test_metric"])
            for n, r in rec["late_fusion"].items():
                fig.setdefault(f"{n} val", []).append(r["val_metric"])
                fig.setdefault(f"{n} test", []).append(r["test_metric"])
            fair = rec["late_fusion"][rec["fair_late_fusion"]]
            fig.setdefault("fair late fusion val", []).append(fair["val_metric"])
            fig.setdefault("fair late fusion test", []).append(fair["test_metric"])
            fig.setdefault("bm-nas-max val", []).append(rec["bm_nas_max"]["val_metric"])
            fig.setdefault("bm-nas-max test", []).append(rec["bm_nas_max"]["test_metric"])
            fig.setdefault("ladder smallest val", []).append(rec["ladder"][0]["val_metric"])
            fig.setdefault("ladder largest val", []).append(rec["ladder"][-1]["val_metric"])
            fig.setdefault("ladder spread points", []).append(rec["ladder_spread_points"])
            fig.setdefault("val standard error points", []).append(rec["val_standard_error_points"])
            fig.setdefault("pretrain s", []).append(rec["stage_s"]["pretrain_s"])
            fig.setdefault("wall s", []).append(rec["wall_s"])
        out[profile] = {
            k: {"mean": _mean_std(v)[0], "std": _mean_std(v)[1], "per_seed": v}
            for k, v in fig.items()
        }
    return out


def _print_summary(summary: dict[str, Any]) -> None:
    for profile, figs in summary.items():
        print(f"\n{profile}:")
        for k, v in figs.items():
            scale = 1 if ("points" in k or k.endswith(" s")) else 100
            per = " / ".join(f"{scale * x:.1f}" for x in v["per_seed"])
            print(f"  {k:28s} {scale * v['mean']:7.2f} ± {scale * v['std']:.2f}   ({per})")


def main(argv: list[str] | None = None) -> int:
    from _bench_config import bench_identity, repo_relative

    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--profiles", nargs="+", default=["hard", "interaction"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--fresh", action="store_true", help="measure again records already saved")
    ap.add_argument("--proxy", action="store_true", help="also run the proxy CNN column")
    ap.add_argument("--epochs", type=int, default=20, help="proxy CNN epochs")
    ap.add_argument("--option", action="append", default=[], help="proxy: av-digits option k=v")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument(
        "--retarget",
        action="store_true",
        help="only recompute the summary and targets of the existing --out file, then exit",
    )
    args = ap.parse_args(argv)

    def _targets(res: dict[str, Any]) -> dict[str, Any]:
        res["summary"] = summarise(res)
        return targets_of(res)

    if args.retarget:
        return retarget(args.out, _targets, "data_difficulty result", schema_version=2)
    torch.set_num_threads(1)
    results: dict[str, Any] = {}
    if args.out.is_file():
        from harmonic_nas.utils.io import read_json

        results = read_json(args.out, schema_version=2)
    results.update(
        {
            "benchmark": "data_difficulty",
            "command": "python benchmarks/data_difficulty.py "
            + " ".join(argv if argv is not None else sys.argv[1:]),
            "machine": bench_identity(),
        }
    )
    real = results.setdefault("real", {})
    for profile in args.profiles:
        for seed in args.seeds:
            if str(seed) in real.get(profile, {}) and not args.fresh:
                print(f"{profile} seed {seed}: saved record reused", flush=True)
                continue
            print(f"{profile} seed {seed}: measuring...", flush=True)
            real.setdefault(profile, {})[str(seed)] = measure_real(profile, seed)
            results["summary"] = summarise(results)
            results["targets"] = targets_of(results)
            atomic_write_json(args.out, results, schema_version=2)
    if args.proxy:
        results["proxy"] = run_proxy(args.seeds, parse_cli_options(args.option), args.epochs)
    results["summary"] = summarise(results)
    results["targets"] = targets_of(results)
    _print_summary(results["summary"])
    print_targets(results["targets"])
    atomic_write_json(args.out, results, schema_version=2)
    print(f"saved {repo_relative(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
