"""How hard is av-digits? A small fixed CNN per modality and their late fusion, over 3 seeds.

Prints image-only, audio-only and late-fusion test accuracy (mean +- std) and the build time of
the default dataset; saves ``benchmarks/results/data_difficulty.json`` (with a ``targets`` block).

Targets: each single modality 75-92 %, fusion >= best single modality + 5 points, build <= 60 s.

    .venv/bin/python benchmarks/data_difficulty.py [--quick] [--seeds 0 1 2] [--option k=v ...]
    .venv/bin/python benchmarks/data_difficulty.py --retarget [--out FILE]

``--retarget`` recomputes only the ``targets`` block of an existing result file from its saved
figures (nothing is re-run).

Seed ``s`` builds the dataset with seed ``s`` (different images, speakers and noise) and trains
the networks with seed ``s``. The dataset is always rebuilt (no cache) so that the build time is
measured.
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


def targets_of(results: dict[str, Any]) -> dict[str, Any]:
    """The targets block, from the ``summary`` (means over seeds) of a saved result."""
    s = results["summary"]
    image, audio = s["image"]["mean"], s["audio"]["mean"]
    gain_points = 100.0 * (s["fused"]["mean"] - max(image, audio))
    return {
        "image_only_accuracy_min": target(image, 0.75, ">="),
        "image_only_accuracy_max": target(image, 0.92, "<="),
        "audio_only_accuracy_min": target(audio, 0.75, ">="),
        "audio_only_accuracy_max": target(audio, 0.92, "<="),
        "late_fusion_gain_points": target(gain_points, 5.0, ">="),
        "default_build_s": target(s["build_s"]["mean"], 60.0, "<="),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="1 seed, 8 epochs (smoke run)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--option", action="append", default=[], help="av-digits option k=v")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument(
        "--retarget",
        action="store_true",
        help="only recompute the targets block of the existing --out file, then exit",
    )
    args = ap.parse_args(argv)
    if args.retarget:
        return retarget(args.out, targets_of, "data_difficulty result")
    torch.set_num_threads(args.threads)
    seeds = args.seeds[:1] if args.quick else args.seeds
    epochs = 8 if args.quick else args.epochs
    options = parse_cli_options(args.option)

    runs = []
    for seed in seeds:
        r = run_seed(seed, options, epochs)
        runs.append(r)
        print(
            f"seed {seed}: image {100 * r['image']:.1f}  audio {100 * r['audio']:.1f}  "
            f"fused {100 * r['fused']:.1f}  (build {r['build_s']:.1f} s)",
            flush=True,
        )
    summary = {}
    for key in ("image", "audio", "fused", "build_s"):
        m, s = _mean_std([r[key] for r in runs])
        summary[key] = {"mean": m, "std": s}
    best_single = max(summary["image"]["mean"], summary["audio"]["mean"])
    gain = summary["fused"]["mean"] - best_single
    checks = {
        "image_in_75_92": 0.75 <= summary["image"]["mean"] <= 0.92,
        "audio_in_75_92": 0.75 <= summary["audio"]["mean"] <= 0.92,
        "fusion_gain_ge_5_points": gain >= 0.05,
        "build_le_60s": summary["build_s"]["mean"] <= 60.0,
    }
    print()
    print(f"{'':8s} {'test accuracy (%)':>22s}")
    for key in ("image", "audio", "fused"):
        print(f"{key:8s} {100 * summary[key]['mean']:15.1f} ± {100 * summary[key]['std']:.1f}")
    print(f"fusion gain over best single modality: {100 * gain:+.1f} points")
    print(
        f"build time (default size, no cache): {summary['build_s']['mean']:.1f} ± {summary['build_s']['std']:.1f} s"
    )
    results: dict[str, Any] = {
        "benchmark": "data_difficulty",
        "command": "python benchmarks/data_difficulty.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "seeds": seeds,
        "epochs": epochs,
        "options": options,
        "threads": args.threads,
        "runs": runs,
        "summary": summary,
        "fusion_gain": gain,
        "checks": checks,
    }
    results["targets"] = targets_of(results)
    print_targets(results["targets"])
    atomic_write_json(args.out, results, schema_version=1)
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
