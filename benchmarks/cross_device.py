"""A table for a device measured on K layers only: leave one device out, judged on whole models.

Devices: this machine (``host``: every layer of the published tables profiled here with ONNX
Runtime, 1 thread), the Jetson TX2 and the Jetson AGX Xavier (the published Harmonic-NAS tables,
read from ``../shared/reference-luts`` or ``--tables``; they are data, not part of the repository).
Spaces: the backbone spaces the devices share (AV-MNIST: avmnist image 1x28x28 + audio 1x20x20;
Memes: mbv3-3stage 3x112x112; MM-IMDB: ofa-mbv3-w1.2 3x224x224) with the fusion operators at
C=192, L=16.

For each held-out device, space, K in (5, 10, 20) and seed in 0..4: K layers of the space are
drawn (:func:`~harmonic_nas.hardware.transfer.choose_sample`, random within its span) and "measured"
(taken from the held-out device's table); every other layer is predicted from them and the other
two devices' tables (:func:`~harmonic_nas.hardware.transfer.predict_latencies`). Judged on 100
random whole architectures per space (random subnets, 1-4 cells x 1-4 nodes of random fusion
operators): Spearman rho and the share within +-10 % of the predicted totals against the held-out
device's own totals. Controls: per-kind median ratio to the other devices' tables, and
FLOPs-proportional scaling (:func:`ratio_control`, :func:`flops_control`).

Targets (K = 10, median over held-out devices, spaces and seeds): ``arch_spearman_k10`` >= 0.95,
``arch_within_10_percent_k10`` >= 0.90, ``beats_controls_k10`` (both controls, both metrics).

    .venv/bin/python benchmarks/cross_device.py [--tables DIR] [--repeats 20]

Saves ``benchmarks/results/cross_device.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from _bench_config import bench_identity, repo_relative  # benchmarks/_bench_config.py
from _targets import print_targets, target  # benchmarks/_targets.py
from harmonic_nas.backbones import BackboneSpace
from harmonic_nas.hardware.inventory import backbone_specs
from harmonic_nas.hardware.keys import lut_key, parse_key
from harmonic_nas.hardware.profiler import profile_layers
from harmonic_nas.hardware.reference import read_published_table
from harmonic_nas.hardware.transfer import (
    choose_sample,
    flops_control,
    predict_latencies,
    ratio_control,
    usage_counts,
)
from harmonic_nas.utils.io import atomic_write_json
from harmonic_nas.utils.seeding import numpy_rng
from harmonic_nas.utils.threads import torch_threads

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "cross_device.json"
TABLES = ROOT.parent / "shared" / "reference-luts"
#: space -> (published file stem, [(preset, shape)], classes)
SPACES: dict[str, tuple[str, list[tuple[str, tuple[int, ...]]], int]] = {
    "avmnist": ("mnist", [("avmnist", (1, 28, 28)), ("avmnist", (1, 20, 20))], 10),
    "memes": ("memes", [("mbv3-3stage", (3, 112, 112))], 3),
    "mmimdb": ("imdb", [("ofa-mbv3-w1.2", (3, 224, 224))], 1000),
}
DEVICES = ("host", "jetson-tx2", "jetson-agx")
KS = (5, 10, 20)
SEEDS = range(5)
ARCHS = 100
METHODS = ("transfer", "ratio_control", "flops_control")


def published(folder: Path, stem: str, device: str) -> dict[str, float]:
    short = {"jetson-tx2": "tx2", "jetson-agx": "agx"}[device]
    path = folder / f"{stem}_{short}.json"
    table = read_published_table(json.loads(path.read_text()), str(path))
    return {k: e.latency_ms for k, e in table.items()}


def random_archs(space: str, keys: set[str], fusion: list[str], seed: int) -> list[list[str]]:
    """Layer keys of ``ARCHS`` random architectures (keys every device's table holds)."""
    _, mods, n = SPACES[space]
    rng = numpy_rng(seed, "cross-device", space)
    out = []
    for _ in range(ARCHS):
        layers: list[str] = []
        for preset, shape in mods:
            genome = BackboneSpace.from_preset(preset).sample(rng)
            layers += [lut_key(s) for s in backbone_specs(preset, shape, genome, n)]
        cells, nodes = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        layers += [fusion[int(rng.integers(len(fusion)))] for _ in range(cells * nodes)]
        out.append([k for k in layers if k in keys])
    return out


def judge(
    pred: dict[str, float], truth: dict[str, float], archs: list[list[str]]
) -> dict[str, Any]:
    """Spearman rho and the share within +-10 % of the predicted totals; ``costed``: the share of
    architectures every layer of which the method could cost."""
    p, t, ok = [], [], []
    for layers in archs:
        ok.append(all(k in pred for k in layers))
        p.append(sum(pred.get(k, 0.0) for k in layers))
        t.append(sum(truth[k] for k in layers))
    pa, ta = np.asarray(p), np.asarray(t)
    return {
        "spearman": float(spearmanr(pa, ta).statistic),
        "within_10": float(np.mean(np.abs(pa - ta) / ta <= 0.10)),
        "mape_pct": float(np.mean(np.abs(pa - ta) / ta) * 100),
        "costed": float(np.mean(ok)),
    }


def host_table(
    keys: list[str], repeats: int, cache: Path | None
) -> tuple[dict[str, float], dict[str, Any]]:
    """This machine's latency of ``keys`` (profiled, or read from ``cache`` when it holds them
    all and was measured on this machine; written there after profiling)."""
    from harmonic_nas.hardware.lut import LUT
    from harmonic_nas.hardware.lut_source import foreign_table

    lut = LUT.load(cache) if cache is not None and cache.is_file() else None
    if (
        lut is None
        or lut.missing(parse_key(k) for k in keys)
        or foreign_table(lut, "onnxruntime", 1, "CPUExecutionProvider")
    ):
        with torch_threads(1):
            lut = profile_layers(
                [parse_key(k) for k in keys],
                backend="onnxruntime",
                threads=1,
                warmup=5,
                repeats=repeats,
            )
        if cache is not None:
            lut.save(cache)
    return {k: e.latency_ms for k, e in lut.entries.items()}, {
        "identity": None if lut.device.identity is None else lut.device.identity.to_json(),
        "profiling_time_s": lut.meta.get("profiling_time_s"),
        "layers": len(lut),
    }


def _path(path: Path) -> str:
    """``path`` relative to the repository (``../shared/...`` for the tables beside it)."""
    return os.path.relpath(path.resolve(), ROOT) if path.is_absolute() else repo_relative(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tables", type=Path, default=TABLES, help="published tables folder")
    ap.add_argument("--repeats", type=int, default=20, help="host profiling repeats")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--host-lut", type=Path, default=None, help="cache of the host profile")
    args = ap.parse_args(argv)
    if not (args.tables / "lut_fusion_tx2.json").is_file():
        print(f"error: published tables not found in {args.tables}; pass --tables DIR")
        return 2
    started = time.perf_counter()
    tables: dict[str, dict[str, dict[str, float]]] = {}
    fusion = {d: published(args.tables, "lut_fusion", d) for d in DEVICES[1:]}
    for space, (stem, _, _) in SPACES.items():
        tables[space] = {d: published(args.tables, f"lut_ofa_{stem}", d) for d in DEVICES[1:]}
        for d in DEVICES[1:]:
            tables[space][d].update(fusion[d])
    every = sorted({k for sp in tables.values() for t in sp.values() for k in t})
    host, host_info = host_table(every, args.repeats, args.host_lut)
    for space in SPACES:
        tables[space]["host"] = {k: host[k] for k in tables[space]["jetson-tx2"] if k in host}

    rows: list[dict[str, Any]] = []
    for space in SPACES:
        shared = set.intersection(*(set(t) for t in tables[space].values()))
        ops = sorted(k for k in shared if parse_key(k).kind == "fusion_op")
        archs = random_archs(space, shared, ops, 0)
        # what the sample is chosen by: other random models of the space (not the judged ones)
        usage = usage_counts(random_archs(space, shared, ops, 1))
        space_keys = sorted({k for a in archs for k in a} | set(usage))
        for held in DEVICES:
            truth = tables[space][held]
            refs = [tables[space][d] for d in DEVICES if d != held]
            for k in KS:
                for seed in SEEDS:
                    rng = numpy_rng(seed, "cross-device-sample", space, held, k)
                    sample = choose_sample(space_keys, k, rng, usage)
                    measured = {key: truth[key] for key in sample}
                    preds = {
                        "transfer": predict_latencies(measured, space_keys, refs),
                        "ratio_control": ratio_control(measured, space_keys, refs),
                        "flops_control": flops_control(measured, space_keys),
                    }
                    row: dict[str, Any] = {"space": space, "held_out": held, "k": k, "seed": seed}
                    for name, pred in preds.items():
                        row[name] = judge({**pred, **measured}, truth, archs)
                    rows.append(row)

    def med(k: int, method: str, metric: str) -> float:
        return float(np.median([r[method][metric] for r in rows if r["k"] == k]))

    summary = {
        f"k{k}": {
            m: {x: med(k, m, x) for x in ("spearman", "within_10", "mape_pct", "costed")}
            for m in METHODS
        }
        for k in KS
    }
    per_device = {
        f"{held}/{space}": {
            m: {
                x: float(
                    np.median(
                        [
                            r[m][x]
                            for r in rows
                            if r["k"] == 10 and r["held_out"] == held and r["space"] == space
                        ]
                    )
                )
                for x in ("spearman", "within_10")
            }
            for m in METHODS
        }
        for held in DEVICES
        for space in SPACES
    }
    s10 = summary["k10"]
    beats = all(
        s10["transfer"][x] > s10[c][x]
        for c in ("ratio_control", "flops_control")
        for x in ("spearman", "within_10")
    )
    targets = {
        "arch_spearman_k10": target(s10["transfer"]["spearman"], 0.95, ">="),
        "arch_within_10_percent_k10": target(s10["transfer"]["within_10"], 0.90, ">="),
        "beats_controls_k10": target(beats, True, "=="),
    }
    for k in (5, 20):
        print(
            f"K={k}: transfer rho {summary[f'k{k}']['transfer']['spearman']:.3f}, "
            f"within 10 % {summary[f'k{k}']['transfer']['within_10']:.2f}"
        )
    for key, v in summary.items():
        print(key, json.dumps(v))
    for key, v in per_device.items():
        print(key, json.dumps(v))
    print_targets(targets)
    payload = {
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "machine": bench_identity(),
        "args": {
            k: (repo_relative(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
        },
        "host_profile": host_info,
        "spaces": {
            s: {"preset_shapes": [[p, list(sh)] for p, sh in m], "classes": n}
            for s, (_, m, n) in SPACES.items()
        },
        "ks": list(KS),
        "seeds": list(SEEDS),
        "archs_per_space": ARCHS,
        "summary": summary,
        "per_held_out_device_and_space_k10": per_device,
        "elapsed_s": round(time.perf_counter() - started, 1),
        "targets": targets,
        "rows": rows,
    }
    atomic_write_json(args.out, payload, schema_version=1)
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
