"""The new modality kinds end to end on the built-in ``multi-digits`` data (offline).

One three-modality run (signal + raw text + table; presets ``mbv3-1d``, ``text-1d``, ``mlp``)
through every stage (data, pretrain, cost table, search, report, export), timed. Then, per kind K
(the preset's own smallest and largest subnet, each with its classifier, BN recalibrated on train,
scored on its modality's val split):

* ``K_ladder_val_spread_points``: (largest - smallest) val accuracy, in points (target >= 2);
* ``K_ladder_latency_ratio``: LUT latency of the largest / the smallest subnet on this machine
  (target >= 2);
* ``K_export_parity_max_abs``: the largest subnet exported to ONNX with its standardisation (or
  tokenizer ids) in the graph, |ONNX - PyTorch| over the val split (target <= 1e-4);
* ``K_raw_predict_roundtrip``: a raw file (``.npy`` of one raw-scale sample; ``.txt`` for text)
  read by the export's recipe gives the same prediction as the dataset's arrays (target true).

Plus ``search_raw_predict_roundtrip`` (the fused model exported by the run, fed raw arrays and
caption strings by ``predict``, matches the PyTorch model) and ``search_seconds``.

    .venv/bin/python benchmarks/modalities.py [--epochs 5] [--per-class 40] [--seed 0]

Saves ``benchmarks/results/modalities.json`` (machine recorded, one torch thread).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
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
from harmonic_nas.config import load_run_config
from harmonic_nas.data import load_dataset
from harmonic_nas.hardware.cost import CostModel
from harmonic_nas.hardware.inventory import backbone_specs
from harmonic_nas.hardware.lut import LUT
from harmonic_nas.pretrain import evaluate_subnet, extract_calibrated, load_supernet
from harmonic_nas.results import load_model, predict
from harmonic_nas.results._model import RawInputModel, input_normalisation, raw_scale
from harmonic_nas.results._raw import load_raw_file, raw_recipes
from harmonic_nas.results._serialise import write_onnx
from harmonic_nas.utils.io import atomic_write_json
from harmonic_nas.utils.seeding import torch_generator
from harmonic_nas.utils.threads import torch_threads

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "modalities.json"
KINDS = {"signal": "mbv3-1d", "text": "text-1d", "table": "mlp"}


class _Logits(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)[1]
        return out


def _config(tmp: Path, epochs: int, per_class: int, seed: int) -> Path:
    data = {
        "name": "modalities",
        "run_dir": str(tmp / "runs"),
        "seed": seed,
        "dataset": {
            "name": "multi-digits",
            "options": {
                "modalities": "signal,text,table",
                "train_per_class": per_class,
                "val_per_class": 30,
                "test_per_class": 30,
            },
        },
        "modalities": {
            "signal": {"preset": "mbv3-1d", "shape": [20, 20]},
            "text": {"preset": "text-1d", "shape": [16]},
            "table": {"preset": "mlp", "shape": [56]},
        },
        "device": {"name": "host", "threads": 1, "warmup": 5, "repeats": 30},
        "pretrain": {"epochs": epochs, "batch_size": 64},
        "fusion": {"C": 16, "L": 4, "epochs": 2, "retrain_epochs": 2, "fusion_points": 2},
        "search": {"population": 4, "generations": 2},
    }
    path = tmp / "modalities.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _per_kind(cfg: Any, run: Path, ds: Any, cost: CostModel, tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    train, val = ds.split("train"), ds.split("val")
    recipes = raw_recipes(cfg, ds)
    for mod, preset in KINDS.items():
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
        out[mod] = {
            "preset": preset,
            "smallest": {k: v for k, v in small.items() if k != "net"},
            "largest": {k: v for k, v in large.items() if k != "net"},
            "ladder_val_spread_points": 100.0 * (large["val_accuracy"] - small["val_accuracy"]),
            "ladder_latency_ratio": large["latency_ms"] / small["latency_ms"],
            "export_parity_max_abs": parity,
            "raw_predict_roundtrip": roundtrip,
        }
    return out


def run(epochs: int, per_class: int, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d, torch_threads(1):
        tmp = Path(d)
        cfg_path = _config(tmp, epochs, per_class, seed)
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
        return {
            "search_seconds": search_s,
            "pareto_size": len(pareto["members"]),
            "exported_model": mid,
            "search_raw_predict_roundtrip": fused_roundtrip,
            "kinds": kinds,
        }


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
    args = ap.parse_args(argv)
    result = run(args.epochs, args.per_class, args.seed)
    result["settings"] = {"epochs": args.epochs, "per_class": args.per_class, "seed": args.seed}
    result["machine"] = bench_identity()
    result["targets"] = targets_of(result)
    atomic_write_json(args.out, result)
    print_targets(result["targets"])
    print(
        f"three-modality run (signal + text + table) end to end: {result['search_seconds']:.0f} s"
    )
    print(f"saved {args.out}")
    return 0 if all(t["met"] for t in result["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
