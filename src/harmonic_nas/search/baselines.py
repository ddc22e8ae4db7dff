"""Reference points for the search, with the same evaluator, data splits and device LUT:

* ``bm-nas-max``: every modality's MAX subnet + the fusion search without the hardware term
  (lambda_lat = lambda_energy = 0, ``fusion.cells`` x ``fusion.nodes``): the non-hardware-aware,
  BM-NAS-style design;
* ``late-fusion-avg``: late fusion of the max subnets: each keeps its own pretrained classifier
  (BN recalibrated) and the logits are averaged (no trained fusion parameters);
* ``single:<modality>``: one modality's max subnet alone, with its own classifier.

Metrics: validation for selection, test scored once. Costs: the same LUT cost model as the search
(all layers of the subnets run, plus the per-model overhead).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from harmonic_nas.config import ExperimentConfig
from harmonic_nas.errors import HarmonicError
from harmonic_nas.search.genome import MultimodalGenome
from harmonic_nas.search.results import member_seeds
from harmonic_nas.search.storage import search_config_hash
from harmonic_nas.utils.io import atomic_write_json, read_json
from harmonic_nas.utils.progress import ProgressFn, no_progress
from harmonic_nas.utils.seeding import derive_seed

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1


@torch.no_grad()
def _logits(
    model: torch.nn.Module, x: torch.Tensor, device: torch.device, batch: int = 512
) -> torch.Tensor:
    model.eval()
    outs = [model(x[i : i + batch].to(device))[1].cpu() for i in range(0, len(x), batch)]
    return torch.cat(outs)


def run_baselines(
    cfg: ExperimentConfig, *, force: bool = False, progress: ProgressFn = no_progress
) -> Path:
    """Evaluate the baselines and write ``<run>/baselines.json`` (skipped when it is current)."""
    from harmonic_nas.fusion import metric
    from harmonic_nas.hardware.space import backbone_specs
    from harmonic_nas.pretrain import extract_calibrated
    from harmonic_nas.search.evaluator import HarmonicProblem, model_params

    out = cfg.run_path / "baselines.json"
    chash = search_config_hash(cfg, "baselines")
    if out.is_file() and not force:
        try:
            if read_json(out, schema_version=SCHEMA_VERSION).get("config_hash") == chash:
                logger.info("baselines are current: %s", out)
                return out
        except HarmonicError:
            pass
    fc = cfg.fusion
    no_hw = cfg.model_copy(
        update={"fusion": fc.model_copy(update={"lambda_lat": 0.0, "lambda_energy": 0.0})}
    )
    problem = HarmonicProblem(no_hw)
    ds = problem.dataset
    cm = problem.cost_model
    max_bb = problem.space.max_genome().backbones
    rows: list[dict[str, Any]] = []

    # 1. max backbones + fusion search without the hardware term
    progress("baselines", 0, 3)
    genome = MultimodalGenome(max_bb, fc.cells, fc.nodes)
    seed = derive_seed(cfg.seed, "baseline", "bm-nas-max")
    ev = problem.evaluate(genome, seed=seed, progress=progress)
    bm = problem.score_test(
        genome,
        ev,
        seeds=member_seeds(seed, cfg.search.test_seeds),
        model_dir=cfg.run_path / "baselines" / "bm-nas-max",
        progress=progress,
    )
    rows.append(
        {
            "name": "bm-nas-max",
            "description": "max subnets + fusion search without the hardware term "
            f"({fc.cells} cells x {fc.nodes} nodes, lambda 0)",
            "val_metric": ev.val_metric,
            "test_metric": bm.test_metric,
            "test_metric_std": bm.test_metric_std,
            "latency_ms": ev.latency_ms,
            "energy_mj": ev.energy_mj,
            "latency_paper_ms": ev.latency_paper_ms,
            "energy_paper_mj": ev.energy_paper_mj,
            "params": ev.params,
            "arch": bm.arch,
        }
    )

    # 2. late fusion (average of logits) and 3. every modality alone
    progress("baselines", 1, 3)
    train, val, test = ds.split("train"), ds.split("val"), ds.split("test")
    logits: dict[str, dict[str, torch.Tensor]] = {}
    costs = {}
    params = {}
    for m, sn in problem.supernets.items():
        sub = extract_calibrated(
            sn,
            max_bb[m],
            train.inputs[m],
            batches=cfg.pretrain.bn_recalib_batches,
            batch_size=cfg.pretrain.batch_size,
        )
        logits[m] = {
            "val": _logits(sub, val.inputs[m], problem.device),
            "test": _logits(sub, test.inputs[m], problem.device),
        }
        mc = cfg.modalities[m]
        costs[m] = cm.cost_layers(backbone_specs(mc.preset, mc.shape, max_bb[m], problem.n_classes))
        params[m] = model_params(sub)
    overhead = cm.overhead()

    def score(split: str, mods: list[str]) -> float:
        avg = torch.stack([logits[m][split] for m in mods]).mean(0)
        labels = (val if split == "val" else test).labels
        return float(metric(avg, labels, ds.task, fc.threshold))

    mods = list(logits)
    total = overhead
    for m in mods:
        total = total + costs[m]
    rows.append(
        {
            "name": "late-fusion-avg",
            "description": "max subnets, own classifiers, logits averaged",
            "val_metric": score("val", mods),
            "test_metric": score("test", mods),
            "test_metric_std": 0.0,
            "latency_ms": total.latency_ms,
            "energy_mj": total.energy_mj,
            "params": sum(params.values()),
        }
    )
    progress("baselines", 2, 3)
    for m in mods:
        c = costs[m] + overhead
        rows.append(
            {
                "name": f"single:{m}",
                "description": f"the max '{m}' subnet alone with its classifier",
                "val_metric": score("val", [m]),
                "test_metric": score("test", [m]),
                "test_metric_std": 0.0,
                "latency_ms": c.latency_ms,
                "energy_mj": c.energy_mj,
                "params": params[m],
            }
        )
    progress("baselines", 3, 3)
    return atomic_write_json(
        out,
        {
            "config_hash": chash,
            "device": cfg.device.name,
            "task": problem.task,
            "metric": problem.metric,
            "baselines": rows,
        },
        schema_version=SCHEMA_VERSION,
    )
