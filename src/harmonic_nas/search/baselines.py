"""Reference points for the search, with the same evaluator, data splits and device LUT:

* ``bm-nas-max``: every modality's MAX subnet + the fusion search without the hardware term
  (lambda_lat = lambda_energy = 0, ``fusion.cells`` x ``fusion.nodes``): the non-hardware-aware,
  BM-NAS-style design;
* ``late-fusion-avg``: late fusion of the max subnets: each keeps its own pretrained classifier
  (BN recalibrated) and the logits are averaged (no trained fusion parameters);
* ``late-fusion-bayes``: the same classifiers' posteriors combined by Bayes' rule with the train
  prior (:mod:`harmonic_nas.fusion.late`); with ``late-fusion-linear`` the fair late-fusion
  control (the better of the two on val, ``late.fair_late_fusion``);
* ``late-fusion-linear``: one linear layer, trained on train, over the max subnets' concatenated
  final representations (:mod:`harmonic_nas.fusion.late`);
* ``single:<modality>``: one modality's max subnet alone, with its own classifier.

Metrics: validation for selection, test scored once. Costs: the same LUT cost model as the search
(all layers of the subnets run, plus the per-model overhead).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from harmonic_nas.config import ExperimentConfig
from harmonic_nas.errors import HarmonicError
from harmonic_nas.search.final import member_seeds
from harmonic_nas.search.genome import MultimodalGenome
from harmonic_nas.search.identity import search_config_hash
from harmonic_nas.utils.io import atomic_write_json, read_json
from harmonic_nas.utils.progress import ProgressFn, no_progress
from harmonic_nas.utils.seeding import derive_seed
from harmonic_nas.utils.threads import thread_policy

if TYPE_CHECKING:
    from harmonic_nas.backbones import BackboneGenome
    from harmonic_nas.search.evaluator import HarmonicProblem

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1


@thread_policy
def run_baselines(
    cfg: ExperimentConfig,
    *,
    force: bool = False,
    out_dir: Path | None = None,
    progress: ProgressFn = no_progress,
) -> Path:
    """Evaluate the baselines and write ``<out_dir>/baselines.json`` (skipped when it is current).

    ``out_dir`` defaults to the run directory; another folder (e.g. a named study's) keeps the
    baselines of a variant of the run's config (another device) beside the run's own."""
    from harmonic_nas.search.evaluator import HarmonicProblem

    folder = cfg.run_path if out_dir is None else out_dir
    out = folder / "baselines.json"
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
    max_bb = problem.space.max_genome().backbones
    rows: list[dict[str, Any]] = []

    # 1. max backbones + fusion search without the hardware term
    progress("baselines", 0, 2)
    genome = MultimodalGenome(max_bb, fc.cells, fc.nodes)
    seed = derive_seed(cfg.seed, "baseline", "bm-nas-max")
    ev = problem.evaluate(genome, seed=seed, progress=progress)
    bm = problem.score_test(
        genome,
        ev,
        seeds=member_seeds(seed, cfg.search.test_seeds),
        model_dir=folder / "baselines" / "bm-nas-max",
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
            "uncosted_keys": list(ev.uncosted_keys),
            "arch": bm.arch,
        }
    )

    # 2. late fusion (averaged logits, learned linear head) and 3. every modality alone
    progress("baselines", 1, 2)
    rows += late_fusion_rows(problem)
    progress("baselines", 2, 2)
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


def late_fusion_rows(
    problem: HarmonicProblem,
    backbones: Mapping[str, BackboneGenome] | None = None,
    *,
    keep_predictions: bool = False,
) -> list[dict[str, Any]]:
    """``late-fusion-avg``, ``late-fusion-bayes``, ``late-fusion-linear`` and ``single:<m>`` on
    ``backbones`` (default: the max subnets), each BN-recalibrated on the run's class-stratified
    subset of train; val and test metrics, LUT costs (a row's cost: the layers its output depends
    on, plus the per-model overhead, through the LUT's calibration as every candidate's total;
    the raw sum beside it as ``latency_raw_ms``). ``keep_predictions`` adds each row's per-sample val
    predictions (``val_pred``: :func:`harmonic_nas.tasks.task_predictions`, encoded by
    :func:`harmonic_nas.search.front_metrics.encode_array`) for bootstrapping."""
    from harmonic_nas.fusion import late
    from harmonic_nas.hardware.cost import weight_bytes
    from harmonic_nas.hardware.inventory import backbone_specs, late_fusion_head_spec
    from harmonic_nas.pretrain import calibration_generator, extract_calibrated
    from harmonic_nas.search.evaluator import model_params
    from harmonic_nas.search.front_metrics import encode_array
    from harmonic_nas.tasks import task_predictions

    cfg, ds, cm = problem.cfg, problem.dataset, problem.cost_model
    task, thr = ds.task, cfg.fusion.threshold
    max_bb = dict(backbones) if backbones is not None else problem.space.max_genome().backbones
    what = "max subnets" if backbones is None else "subnets"
    train, val, test = ds.split("train"), ds.split("val"), ds.split("test")
    outs: dict[str, dict[str, late.BackboneOutputs]] = {"train": {}, "val": {}, "test": {}}
    costs, heads, params = {}, {}, {}
    body_specs: dict[str, list[Any]] = {}
    head_specs: dict[str, list[Any]] = {}
    for m, sn in problem.supernets.items():
        sub = extract_calibrated(
            sn,
            max_bb[m],
            train.inputs[m],
            train.labels,
            batches=cfg.pretrain.bn_recalib_batches,
            batch_size=cfg.pretrain.batch_size,
            generator=calibration_generator(cfg.seed),
        )
        for name, split in (("train", train), ("val", val), ("test", test)):
            outs[name][m] = late.backbone_outputs(sub, split.inputs[m], problem.device)
        mc = cfg.modalities[m]
        specs = backbone_specs(mc.preset, mc.shape, max_bb[m], problem.n_classes)
        body_specs[m], head_specs[m] = specs[:-1], specs[-1:]
        costs[m] = cm.cost_layers(specs[:-1])  # up to the final representation
        heads[m] = cm.cost_layers(specs[-1:])  # the backbone's own classifier
        params[m] = model_params(sub)
    overhead = cm.overhead()
    mods = list(costs)

    def row(
        name: str,
        description: str,
        val_logits: Tensor,
        test_logits: Tensor,
        raw: Any,
        specs: list[Any],
        n_params: int,
    ) -> dict[str, Any]:
        # the search's total: the raw layer sum + overhead through the LUT's calibration
        cost = cm.calibrated(raw, weight_bytes(specs))
        out = {
            "name": name,
            "description": description,
            "val_metric": late.score(val_logits, val.labels, task, thr),
            "test_metric": late.score(test_logits, test.labels, task, thr),
            "test_metric_std": 0.0,
            "latency_ms": cost.latency_ms,
            "energy_mj": cost.energy_mj,
            "latency_raw_ms": raw.latency_ms,
            "params": n_params,
            "uncosted_keys": list(raw.uncosted_keys),
        }
        if keep_predictions:
            out["val_pred"] = encode_array(task_predictions(val_logits, task, thr))
        return out

    prior = late.label_prior(train.labels, task, problem.n_classes)
    every = overhead
    every_specs: list[Any] = []
    for m in mods:
        every = every + costs[m] + heads[m]
        every_specs += body_specs[m] + head_specs[m]
    rows = [
        row(
            "late-fusion-avg",
            f"{what}, own classifiers, logits averaged",
            late.average_logits(outs["val"]),
            late.average_logits(outs["test"]),
            every,
            every_specs,
            sum(params.values()),
        ),
        row(
            "late-fusion-bayes",
            f"{what}, own classifiers, posteriors combined by Bayes' rule (train prior)",
            late.bayes_logits(outs["val"], prior, task),
            late.bayes_logits(outs["test"], prior, task),
            every,
            every_specs,
            sum(params.values()),
        ),
    ]
    head = late.train_linear_head(
        late.concat_final(outs["train"]), train.labels, problem.n_classes, task, seed=cfg.seed
    )
    with torch.no_grad():
        val_lin, test_lin = (
            head(late.concat_final(outs["val"])),
            head(late.concat_final(outs["test"])),
        )
    lin_head = [late_fusion_head_spec(cfg, problem.n_classes)]
    lin_cost = overhead + cm.cost_layers(lin_head)
    lin_specs = list(lin_head)
    for m in mods:
        lin_cost = lin_cost + costs[m]
        lin_specs += body_specs[m]
    n_heads = sum(p.numel() for p in head.parameters())
    rows.append(
        row(
            "late-fusion-linear",
            f"{what}' final representations concatenated, one linear layer trained on train",
            val_lin,
            test_lin,
            lin_cost,
            lin_specs,
            sum(params.values()) - sum(_classifier_params(cfg, problem.n_classes)) + n_heads,
        )
    )
    for m in mods:
        rows.append(
            row(
                f"single:{m}",
                f"the '{m}' subnet ({what}) alone with its classifier",
                outs["val"][m].logits,
                outs["test"][m].logits,
                costs[m] + heads[m] + overhead,
                body_specs[m] + head_specs[m],
                params[m],
            )
        )
    return rows


def _classifier_params(cfg: ExperimentConfig, n_classes: int) -> list[int]:
    """Parameters of each backbone's own classifier (weights and bias)."""
    from harmonic_nas.hardware.inventory import final_width

    return [(final_width(mc.preset, mc.shape) + 1) * n_classes for mc in cfg.modalities.values()]
