"""The new modality kinds end to end on the built-in ``multi-digits`` data (offline).

One three-modality run (signal + raw text + table; no preset written: each modality gets its
kind's default, ``mbv3-1d``, ``text-1d``, ``mlp``) through every stage (data, pretrain, cost table,
search, report, export), timed. Then, per kind K in ``signal``, ``text``, ``tabular`` (the
``table`` modality; the preset's own smallest and largest subnet, each with its classifier, BN
recalibrated on train, scored on its modality's val split):

* ``K_ladder_val_spread_points``: (largest - smallest) val accuracy, in points (target >= 2);
* ``K_ladder_latency_ratio``: LUT latency of the largest / the smallest subnet on this machine
  (target >= 2);
* ``K_export_parity_max_abs``: the largest subnet exported to ONNX with its standardisation (or
  tokenizer ids) in the graph, |ONNX - PyTorch| over the val split (target <= 1e-4);
* ``K_raw_predict_roundtrip``: a raw file (``.npy`` of one raw-scale sample; ``.txt`` for text)
  read by the export's recipe gives the same prediction as the dataset's arrays (target true).

Plus ``search_raw_predict_roundtrip`` (the fused model exported by the run, fed raw arrays and
caption strings by ``predict``, matches the PyTorch model) and ``search_seconds``.

The searched front vs late fusion of the same backbones, per kind K: a small search of ``image`` +
K (same data, pretraining and search budget as the three-modality run; data, pretrain, cost table
and search stages only) and, beside each Pareto member, the project's fair late-fusion control of
the member's own backbones (``search.baselines.late_fusion_rows`` with the member's genomes, the
better on val of ``late-fusion-bayes`` and ``late-fusion-linear``:
``fusion.late.fair_late_fusion``; LUT-costed with the calibrated total like every candidate): val,
test, LUT latency and the member minus the control in points. The figure
``K_front_vs_late_fusion_same_backbones_points`` (in ``figures``, not a target: the issue names
none) is that difference on val for the val-best member.

    .venv/bin/python benchmarks/modalities.py [--epochs 5] [--per-class 40] [--seed 0]
    .venv/bin/python benchmarks/modalities.py --smoke --out /tmp/modalities-smoke.json

``--smoke`` runs every step at the smallest sizes (1 epoch, 4 pairs per class, a 2 x 1 search)
to check the script end to end; its figures mean nothing.

Saves ``benchmarks/results/modalities.json`` (machine recorded, one torch thread).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import torch
import yaml
from torch import nn

from _bench_config import bench_identity  # benchmarks/_bench_config.py
from _targets import print_targets, target  # benchmarks/_targets.py
from harmonic_nas.cli import main as cli_main
from harmonic_nas.config import load_config, load_run_config, save_resolved
from harmonic_nas.data import load_dataset
from harmonic_nas.fusion import late
from harmonic_nas.fusion.arch import ArchSpec
from harmonic_nas.hardware.cost import CostModel
from harmonic_nas.hardware.inventory import backbone_specs
from harmonic_nas.hardware.lut import LUT
from harmonic_nas.hardware.lut_source import get_lut
from harmonic_nas.preflight import check_experiment
from harmonic_nas.pretrain import evaluate_subnet, extract_calibrated, load_supernet, pretrain_all
from harmonic_nas.results import load_model, predict
from harmonic_nas.results._model import RawInputModel, input_normalisation, raw_scale
from harmonic_nas.results._raw import load_raw_file, raw_recipes
from harmonic_nas.results._serialise import write_onnx
from harmonic_nas.search import run_search
from harmonic_nas.search.baselines import late_fusion_rows
from harmonic_nas.search.evaluator import HarmonicProblem
from harmonic_nas.search.pareto_record import ParetoRecord
from harmonic_nas.utils.io import atomic_write_json
from harmonic_nas.utils.seeding import torch_generator
from harmonic_nas.utils.threads import torch_threads

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "modalities.json"
#: kind K of the issue's target names -> the multi-digits modality of that kind
KINDS = {"signal": "signal", "text": "text", "tabular": "table"}
#: sample shapes; text: "the number " + the longest digit word, in bytes (typos keep the length)
SHAPES = {"image": [1, 28, 28], "signal": [20, 20], "text": [16], "table": [56]}


@dataclass(frozen=True)
class Sizes:
    """What one benchmark run spends (the defaults, or ``--smoke``'s smallest)."""

    epochs: int
    per_class: int
    eval_per_class: int = 30
    population: int = 4
    generations: int = 2
    repeats: int = 30
    calibration_models: int = 20


class _Logits(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)[1]
        return out


def _config(tmp: Path, name: str, mods: list[str], sizes: Sizes, seed: int) -> Path:
    """The experiment file of a multi-digits run of ``mods`` (no preset written: the defaults)."""
    options = {
        "modalities": ",".join(mods),
        "train_per_class": sizes.per_class,
        "val_per_class": sizes.eval_per_class,
        "test_per_class": sizes.eval_per_class,
    }
    data = {
        "name": name,
        "run_dir": str(tmp / "runs"),
        "seed": seed,
        "dataset": {"name": "multi-digits", "options": options},
        "modalities": {m: {"shape": SHAPES[m]} for m in mods},
        "device": {
            "name": "host",
            "threads": 1,
            "warmup": 5,
            "repeats": sizes.repeats,
            "calibration_models": sizes.calibration_models,
        },
        "pretrain": {"epochs": sizes.epochs, "batch_size": 64},
        "fusion": {"C": 16, "L": 4, "epochs": 2, "retrain_epochs": 2, "fusion_points": 2},
        "search": {"population": sizes.population, "generations": sizes.generations},
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _front_vs_late_fusion(tmp: Path, mod: str, sizes: Sizes, seed: int) -> dict[str, Any]:
    """A small search of image + ``mod`` and each Pareto member beside the fair late fusion of
    its own backbones (val, test, LUT latency; member minus control in points)."""
    cfg = load_config(_config(tmp, f"front-{mod}", ["image", mod], sizes, seed))
    check_experiment(cfg, source=cfg.name)
    save_resolved(cfg)
    t0 = time.perf_counter()
    pretrain_all(cfg, load_dataset(cfg), list(cfg.modalities))
    get_lut(cfg)
    summary = run_search(cfg)
    seconds = time.perf_counter() - t0
    if summary.pareto_path is None:
        raise SystemExit(f"the image + {mod} search wrote no Pareto set")
    record = ParetoRecord.read(summary.pareto_path)
    problem = HarmonicProblem(cfg, device=torch.device("cpu"))
    members = []
    for member in record.members:
        arch = ArchSpec.from_json(member.arch)
        backbones = {m: ma.genome for m, ma in arch.modalities.items()}
        fair = late.fair_late_fusion(late_fusion_rows(problem, backbones))
        members.append(
            {
                "id": member.id,
                "backbones": {m: str(g) for m, g in backbones.items()},
                "fusion_mode": arch.fusion_mode,
                "val_metric": member.val_metric,
                "test_metric": member.test_metric,
                "latency_ms": member.latency_ms,
                "late_fusion": fair["name"],
                "late_fusion_val_metric": fair["val_metric"],
                "late_fusion_test_metric": fair["test_metric"],
                "late_fusion_latency_ms": fair["latency_ms"],
                "val_points_over_late_fusion": 100.0 * (member.val_metric - fair["val_metric"]),
                "test_points_over_late_fusion": (
                    None
                    if member.test_metric is None
                    else 100.0 * (member.test_metric - fair["test_metric"])
                ),
            }
        )
    best = next(m for m in members if m["id"] == record.best_id())
    return {
        "modalities": list(cfg.modalities),
        "presets": {m: mc.preset for m, mc in cfg.modalities.items()},
        "metric": record.metric,
        "pipeline_seconds": seconds,  # data, pretrain, cost table, search
        "val_best": best["id"],
        "members": members,
    }


def _per_kind(cfg: Any, run: Path, ds: Any, cost: CostModel, tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    train, val = ds.split("train"), ds.split("val")
    recipes = raw_recipes(cfg, ds)
    for kind, mod in KINDS.items():
        preset = cfg.modalities[mod].preset
        sn = load_supernet(cfg, mod)
        shape = tuple(cfg.modalities[mod].shape)
        rungs: dict[str, Any] = {}
        for rung, genome in (("smallest", sn.min_genome()), ("largest", sn.max_genome())):
            sub = extract_calibrated(
                sn,
                genome,
                train.inputs[mod],
                train.labels,
                batches=cfg.pretrain.bn_recalib_batches,
                batch_size=cfg.pretrain.batch_size,
                generator=torch_generator("modalities-bench", mod, rung),
            )
            acc = evaluate_subnet(sub, val.inputs[mod], val.labels)
            lat = cost.cost_layers(backbone_specs(preset, shape, genome, 10)).latency_ms
            rungs[rung] = {
                "genome": str(genome),
                "val_accuracy": acc,
                "latency_ms": lat,
                "net": sub,
            }
        # export the largest subnet with its preprocessing inside the graph
        meta = {
            "normalization": ds.meta["normalization"],
            "inputs": [{"name": mod, "shape": list(shape), "raw": recipes[mod]}],
        }
        norm = input_normalisation(meta, [mod])
        model = RawInputModel.build(_Logits(rungs["largest"]["net"]).eval(), [mod], norm)
        raw = raw_scale([val.inputs[mod]], norm)[0]
        path = tmp / f"{mod}.onnx"
        write_onnx(model, (raw[:1],), path, [mod], {"inputs": meta["inputs"]})
        sess = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        with torch.inference_mode():
            want = rungs["largest"]["net"](val.inputs[mod])[1].numpy()
        got = sess.run(None, {mod: raw.numpy()})[0]
        parity = float(np.abs(got - want).max())
        # a raw file in -> the same prediction as the dataset's array
        if mod == "text":
            caption = ds.meta["raw_text"]["val"][0]
            (tmp / "caption.txt").write_text(caption, encoding="utf-8")
            sample = load_raw_file(tmp / "caption.txt", mod, recipes[mod], shape)
        else:
            np.save(tmp / f"{mod}.npy", raw[0].numpy())
            sample = load_raw_file(tmp / f"{mod}.npy", mod, recipes[mod], shape)
        from_file = sess.run(None, {mod: sample[None].astype(np.float32)})[0]
        roundtrip = bool(
            np.argmax(from_file) == np.argmax(got[0]) and np.abs(from_file - got[:1]).max() <= 1e-5
        )
        small, large = rungs["smallest"], rungs["largest"]
        out[kind] = {
            "modality": mod,
            "preset": preset,
            "smallest": {k: v for k, v in small.items() if k != "net"},
            "largest": {k: v for k, v in large.items() if k != "net"},
            "ladder_val_spread_points": 100.0 * (large["val_accuracy"] - small["val_accuracy"]),
            "ladder_latency_ratio": large["latency_ms"] / small["latency_ms"],
            "export_parity_max_abs": parity,
            "raw_predict_roundtrip": roundtrip,
        }
    return out


def run(sizes: Sizes, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d, torch_threads(1):
        tmp = Path(d)
        cfg_path = _config(tmp, "modalities", list(KINDS.values()), sizes, seed)
        t0 = time.perf_counter()
        code = cli_main(["run", str(cfg_path)])
        search_s = time.perf_counter() - t0
        if code != 0:
            raise SystemExit(f"the three-modality run failed (exit {code})")
        run_dir = tmp / "runs" / "modalities"
        cfg = load_run_config(run_dir)
        ds = load_dataset(cfg)
        lut_file = next((run_dir / "luts").glob("*.json"))
        cost = CostModel(LUT.load(lut_file))
        kinds = _per_kind(cfg, run_dir, ds, cost, tmp)
        pareto = json.loads((run_dir / "pareto.json").read_text())
        mid = next(p.parent.name for p in (run_dir / "models").glob("*/model.onnx"))
        test = ds.split("test")
        raw = {
            m: raw_scale(
                [test.inputs[m]],
                input_normalisation(
                    {
                        "normalization": ds.meta["normalization"],
                        "inputs": [{"name": m, "shape": list(cfg.modalities[m].shape)}],
                    },
                    [m],
                ),
            )[0].numpy()
            for m in ("signal", "table")
        }
        raw["text"] = np.array(ds.meta["raw_text"]["test"])
        got = predict(run_dir / "models" / mid / "model.onnx", raw)
        net, arch = load_model(run_dir, mid)
        with torch.inference_mode():
            logits = net.eval()(*(test.inputs[m] for m in arch.modalities))
        want = torch.softmax(logits.double(), dim=1).numpy()
        fused_roundtrip = bool(np.abs(got.probabilities - want).max() <= 1e-4)
        fronts = {k: _front_vs_late_fusion(tmp, mod, sizes, seed) for k, mod in KINDS.items()}
        return {
            "search_seconds": search_s,
            "pareto_size": len(pareto["members"]),
            "exported_model": mid,
            "search_raw_predict_roundtrip": fused_roundtrip,
            "kinds": kinds,
            "front_vs_late_fusion": fronts,
        }


def figures_of(result: dict[str, Any]) -> dict[str, Any]:
    """Reported figures without a target: per kind, the val-best member of the image + K search
    minus the fair late fusion of its own backbones, in val points."""
    out: dict[str, Any] = {}
    for k, front in result["front_vs_late_fusion"].items():
        best = next(m for m in front["members"] if m["id"] == front["val_best"])
        out[f"{k}_front_vs_late_fusion_same_backbones_points"] = best["val_points_over_late_fusion"]
    return out


def targets_of(result: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, r in result["kinds"].items():
        out[f"{k}_ladder_val_spread_points"] = target(r["ladder_val_spread_points"], 2.0, ">=")
        out[f"{k}_ladder_latency_ratio"] = target(r["ladder_latency_ratio"], 2.0, ">=")
        out[f"{k}_export_parity_max_abs"] = target(r["export_parity_max_abs"], 1e-4, "<=")
        out[f"{k}_raw_predict_roundtrip"] = target(r["raw_predict_roundtrip"], True, "==")
    out["search_raw_predict_roundtrip"] = target(result["search_raw_predict_roundtrip"], True, "==")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5, help="supernet pretraining epochs")
    ap.add_argument("--per-class", type=int, default=40, help="train pairs per class")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument(
        "--smoke", action="store_true", help="smallest sizes, to check the script (figures void)"
    )
    args = ap.parse_args(argv)
    if args.smoke and args.out == RESULTS:
        ap.error("--smoke needs --out elsewhere than the saved results")
    sizes = (
        Sizes(1, 4, eval_per_class=4, population=2, generations=1, repeats=3, calibration_models=2)
        if args.smoke
        else Sizes(args.epochs, args.per_class)
    )
    t0 = time.perf_counter()
    result = run(sizes, args.seed)
    result["total_seconds"] = time.perf_counter() - t0
    result["settings"] = {**asdict(sizes), "seed": args.seed, "smoke": args.smoke}
    result["machine"] = bench_identity()
    result["figures"] = figures_of(result)
    result["targets"] = targets_of(result)
    atomic_write_json(args.out, result)
    print_targets(result["targets"])
    for name, value in result["figures"].items():
        print(f"{name}: {value:+.1f}")
    print(
        f"three-modality run (signal + text + table) end to end: {result['search_seconds']:.0f} s"
        f"; benchmark {result['total_seconds']:.0f} s"
    )
    print(f"saved {args.out}")
    return 0 if all(t["met"] for t in result["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
