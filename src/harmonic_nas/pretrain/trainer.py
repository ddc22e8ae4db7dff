"""Supernet training: sandwich rule + in-place distillation, resumable, skipped when current.

Per step (BigNAS / OFA-style): the max subnet learns from the (label-smoothed) labels, then the
min subnet and ``n_random`` random subnets learn from the max subnet's soft predictions (in-place
distillation, mixed with the label loss by ``distill_weight``, half and half by default: with the short CPU budgets of this project
the max subnet is itself still far from converged, and pure distillation from it slowed every
subnet down); their gradients are summed and one optimizer step is taken. The learning rate
follows a per-step linear warm-up then a cosine decay. The first ``full_epochs`` epochs (default
= ``warmup_epochs``) train the max subnet alone; at the end of that phase the hidden channels are
re-ordered by importance (``reorder_channels``), so small expand ratios keep the best channels.

Each epoch ends with an evaluation of the max and min subnets on the validation split (after BN
recalibration on training batches) and an atomic checkpoint; a killed run resumes from its last
checkpoint and ends with the same weights as an uninterrupted run with the same seed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from harmonic_nas.backbones import Supernet, build_supernet
from harmonic_nas.errors import CheckpointError, ConfigError, HarmonicError
from harmonic_nas.pretrain.bn import calibration_generator
from harmonic_nas.pretrain.checkpoint import (
    METRICS_SCHEMA_VERSION,
    check_identity,
    pretrain_hash,
    read_checkpoint,
    save_checkpoint,
    supernet_paths,
)
from harmonic_nas.pretrain.evaluation import evaluate_subnet, extract_calibrated
from harmonic_nas.pretrain.losses import child_loss, lr_at, make_optimizer
from harmonic_nas.pretrain.rng import isolated_rng, next_seed
from harmonic_nas.tasks import Task, metric_name, task_loss
from harmonic_nas.utils.device import (
    autocast,
    compute_device,
    grad_scaler,
    param_dtype,
    to_device,
)
from harmonic_nas.utils.io import atomic_write_json
from harmonic_nas.utils.progress import ProgressFn, no_progress
from harmonic_nas.utils.seeding import derive_seed, torch_generator
from harmonic_nas.utils.threads import torch_threads

if TYPE_CHECKING:
    from harmonic_nas.config import ExperimentConfig, PretrainConfig
    from harmonic_nas.data import MultimodalDataset
    from harmonic_nas.pretrain.distributed import DistContext

logger = logging.getLogger(__name__)

Status = Literal["trained", "resumed", "skipped"]


@dataclass(frozen=True)
class PretrainResult:
    """What :func:`pretrain_supernet` did and where the artifacts are."""

    modality: str
    preset: str
    status: Status
    checkpoint: Path
    metrics_path: Path
    metric: str
    max_metric: float
    min_metric: float
    epochs: int
    train_time_s: float
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def max_acc(self) -> float:
        return self.max_metric

    @property
    def min_acc(self) -> float:
        return self.min_metric


# --- the training loop --------------------------------------------------------------------------


@dataclass
class _TrainState:
    epoch: int
    history: list[dict[str, Any]]


def _train_epoch(
    model: Supernet,
    opt: torch.optim.Optimizer,
    x: Tensor,
    y: Tensor,
    *,
    pcfg: PretrainConfig,
    task: Task,
    epoch: int,
    epochs: int,
    g: torch.Generator,
    device: torch.device,
    full_phase: bool,
    progress: ProgressFn,
    task_name: str,
    precision: str = "fp32",
    dist_ctx: DistContext | None = None,
    net: nn.Module | None = None,
) -> tuple[float, float]:
    """One epoch over the shuffled training set; returns (mean max-subnet loss, last lr).

    With ``dist_ctx`` (a data-parallel run) ``net`` is the DDP-wrapped ``model`` and this rank
    trains on its share of each global batch (:mod:`harmonic_nas.pretrain.distributed`)."""
    n = x.shape[0]
    bs = min(pcfg.batch_size, n)
    steps = max(n // bs, 1)  # drop the last partial batch (BN needs >1 sample)
    total_steps = steps * epochs
    warmup_steps = steps * pcfg.warmup_epochs
    perm = torch.randperm(n, generator=g)
    sample_rng = np.random.default_rng(next_seed(g))
    net = model if net is None else net  # what runs the batches (DDP in a data-parallel run)
    elastic = model.num_subnets() > 1
    max_g, min_g = model.max_genome(), model.min_genome()
    scaler = grad_scaler(device, precision)
    net.train()
    losses = []
    lr = pcfg.lr
    with isolated_rng(next_seed(g), device):
        for step in range(steps):
            if dist_ctx is None:
                idx = perm[step * bs : (step + 1) * bs]
            else:
                idx = dist_ctx.rank_batch(perm, step, bs)
            dtype = param_dtype(precision)
            xb, yb = to_device(x[idx], device, dtype), to_device(y[idx], device, dtype)
            lr = lr_at(epoch * steps + step, total_steps, warmup_steps, pcfg.lr)
            for group in opt.param_groups:
                group["lr"] = lr
            opt.zero_grad(set_to_none=True)
            model.set_active(max_g)
            with autocast(device, precision):
                logits = net(xb)[1]
                loss = task_loss(logits, yb, task, pcfg.label_smoothing)
            scaler.scale(loss).backward()
            losses.append(float(loss.item()))
            if elastic and not full_phase:
                teacher = logits.detach()
                children = [min_g] + [model.sample(sample_rng) for _ in range(pcfg.n_random)]
                for genome in children:
                    model.set_active(genome)
                    with autocast(device, precision):
                        out = net(xb)[1]
                        child = child_loss(out, teacher, yb, task, pcfg)
                    scaler.scale(child).backward()
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            scaler.step(opt)
            scaler.update()
            progress(task_name, epoch * steps + step + 1, total_steps)
    model.set_active(max_g)
    return float(np.mean(losses)), lr


def _evaluate_ends(
    model: Supernet,
    train_x: Tensor,
    train_y: Tensor,
    val_x: Tensor,
    val_y: Tensor,
    *,
    pcfg: PretrainConfig,
    task: Task,
    seed: int,
) -> tuple[float, float]:
    """Validation metric of the max and min subnets (BN recalibrated on training batches)."""
    scores = []
    for genome in (model.max_genome(), model.min_genome()):
        sub = extract_calibrated(
            model,
            genome,
            train_x,
            train_y,
            batches=pcfg.bn_recalib_batches,
            batch_size=pcfg.batch_size,
            generator=calibration_generator(seed),
        )
        scores.append(evaluate_subnet(sub, val_x, val_y, task=task))
    return scores[0], scores[1]


def _metrics_json(
    *,
    modality: str,
    preset: str,
    chash: str,
    metric: str,
    history: list[dict[str, Any]],
    final: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "modality": modality,
        "preset": preset,
        "config_hash": chash,
        "metric": metric,
        "epochs": history,
        "final": final,
    }


def pretrain_supernet(
    cfg: ExperimentConfig,
    dataset: MultimodalDataset,
    modality: str,
    *,
    force: bool = False,
    progress: ProgressFn = no_progress,
    device: torch.device | None = None,
    dist_ctx: DistContext | None = None,
) -> PretrainResult:
    """Train (or resume, or skip) the supernet of ``modality``; writes ``<run>/supernets/<m>.pt|json``.

    ``device`` defaults to ``compute.device``; ``dist_ctx`` makes this process one rank of a
    data-parallel run (:mod:`harmonic_nas.pretrain.distributed`; rank 0 writes).

    Skips when a complete checkpoint with the same config hash exists (``force`` retrains).
    Raises :class:`CheckpointError` for a corrupt checkpoint or one of another preset/modality
    (``force`` overwrites it).
    """
    if modality not in cfg.modalities:
        raise ConfigError(
            f"modality '{modality}' is not in the config; choose one of {sorted(cfg.modalities)}"
        )
    mcfg = cfg.modalities[modality]
    pcfg = cfg.pretrain
    dataset.modality(modality)  # DataError if the dataset lacks it
    metric = metric_name(dataset.task)
    device = compute_device(cfg) if device is None else device
    pt_path, json_path = supernet_paths(cfg, modality)
    chash = pretrain_hash(cfg, modality)
    epochs = pcfg.epochs

    resume: dict[str, Any] | None = None
    if pt_path.exists() and not force:
        ckpt = read_checkpoint(pt_path)
        check_identity(ckpt, pt_path, preset=mcfg.preset, modality=modality)
        if ckpt["config_hash"] == chash and ckpt["complete"]:
            history = ckpt["history"]
            last = history[-1] if history else {}
            logger.info("supernet of %s is up to date (%s); skipping", modality, pt_path)
            return PretrainResult(
                modality=modality,
                preset=mcfg.preset,
                status="skipped",
                checkpoint=pt_path,
                metrics_path=json_path,
                metric=metric,
                max_metric=float(last.get("max_acc", float("nan"))),
                min_metric=float(last.get("min_acc", float("nan"))),
                epochs=int(ckpt["epoch"]),
                train_time_s=float(sum(h.get("time_s", 0.0) for h in history)),
                history=history,
            )
        if ckpt["config_hash"] == chash:
            resume = ckpt
            logger.info("resuming %s from epoch %d/%d", modality, ckpt["epoch"], epochs)
        else:
            logger.info("config changed since %s was trained; retraining from scratch", pt_path)

    with torch_threads(pcfg.threads):  # None: the policy (one thread by default)
        return _train(
            cfg, dataset, modality, resume, device=device, progress=progress, dist_ctx=dist_ctx
        )


def _train(
    cfg: ExperimentConfig,
    dataset: MultimodalDataset,
    modality: str,
    resume: dict[str, Any] | None,
    *,
    device: torch.device,
    progress: ProgressFn,
    dist_ctx: DistContext | None = None,
) -> PretrainResult:
    """The training loop of :func:`pretrain_supernet` (fresh or resumed from ``resume``)."""
    mcfg, pcfg = cfg.modalities[modality], cfg.pretrain
    spec = dataset.modality(modality)
    task: Task = dataset.task
    metric = metric_name(task)
    pt_path, json_path = supernet_paths(cfg, modality)
    chash = pretrain_hash(cfg, modality)
    epochs = pcfg.epochs
    train, val = dataset.split("train"), dataset.split("val")
    train_x, train_y = train.inputs[modality], train.labels
    val_x, val_y = val.inputs[modality], val.labels
    if len(train) < 2:
        raise HarmonicError(f"the train split has {len(train)} sample(s); pretraining needs >= 2")

    with isolated_rng(derive_seed(cfg.seed, "pretrain-init", modality), torch.device("cpu")):
        model = build_supernet(spec, mcfg.preset, dataset.num_classes, modality)  # seeded init
    model = model.to(device=device, dtype=param_dtype(cfg.compute.precision))
    opt = make_optimizer(model, pcfg)
    g = torch_generator(cfg.seed, "pretrain", modality)
    state = _TrainState(epoch=0, history=[])
    if resume is not None:
        try:
            model.load_state_dict(resume["state_dict"])
            opt.load_state_dict(resume["optimizer"])
            g.set_state(resume["rng"])
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:
            raise CheckpointError(
                f"checkpoint {pt_path} does not fit the {mcfg.preset} supernet "
                f"({exc.__class__.__name__}); delete it or pass --force"
            ) from None
        state = _TrainState(epoch=int(resume["epoch"]), history=list(resume["history"]))
    net: nn.Module = model if dist_ctx is None else dist_ctx.wrap(model)
    writer = dist_ctx is None or dist_ctx.is_main  # rank 0 evaluates and writes

    full_epochs = min(pcfg.warmup_epochs if pcfg.full_epochs is None else pcfg.full_epochs, epochs)
    meta = {
        "preset": mcfg.preset,
        "modality": modality,
        "kind": spec.kind,
        "shape": list(spec.shape),
        "n_classes": int(dataset.num_classes),
        "config_hash": chash,
        "epochs": epochs,
        "task": task,
    }
    task_name = f"pretrain {modality}"
    for epoch in range(state.epoch, epochs):
        t0 = time.perf_counter()
        if epoch == full_epochs and full_epochs > 0 and pcfg.reorder_channels:
            reorder = getattr(model, "reorder_channels", None)
            if reorder is not None:
                reorder(opt)  # between the full-network phase and the elastic phase
        loss, lr = _train_epoch(
            model,
            opt,
            train_x,
            train_y,
            pcfg=pcfg,
            task=task,
            epoch=epoch,
            epochs=epochs,
            g=g,
            device=device,
            full_phase=epoch < full_epochs,
            progress=progress,
            task_name=task_name,
            precision=cfg.compute.precision,
            dist_ctx=dist_ctx,
            net=net,
        )
        ends = None
        if writer:
            ends = _evaluate_ends(
                model,
                train_x,
                train_y,
                val_x,
                val_y,
                pcfg=pcfg,
                task=task,
                seed=derive_seed(cfg.seed, "pretrain-bn", modality, epoch),
            )
        if dist_ctx is not None:  # the global batch's loss; rank 0's scores on every rank
            loss, ends = dist_ctx.mean(loss), dist_ctx.broadcast(ends)
        assert ends is not None
        max_acc, min_acc = ends
        state.history.append(
            {
                "epoch": epoch + 1,
                "loss": loss,
                "max_acc": max_acc,
                "min_acc": min_acc,
                "lr": lr,
                "time_s": time.perf_counter() - t0,
                "phase": "full" if epoch < full_epochs else "sandwich",
            }
        )
        state.epoch = epoch + 1
        complete = state.epoch == epochs
        if not writer:
            assert dist_ctx is not None
            dist_ctx.barrier()  # wait for rank 0's checkpoint of this epoch
            progress(f"{task_name} epochs", state.epoch, epochs)
            continue
        save_checkpoint(
            pt_path,
            {
                **meta,
                "epoch": state.epoch,
                "complete": complete,
                "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "optimizer": opt.state_dict(),
                "rng": g.get_state(),
                "history": state.history,
            },
        )
        final = None
        if complete:
            final = {
                "max_acc": max_acc,
                "min_acc": min_acc,
                "epochs": epochs,
                "train_time_s": sum(h["time_s"] for h in state.history),
                "num_subnets": int(model.num_subnets()),
                "params_supernet": sum(p.numel() for p in model.parameters()),
            }
        atomic_write_json(
            json_path,
            _metrics_json(
                modality=modality,
                preset=mcfg.preset,
                chash=chash,
                metric=metric,
                history=state.history,
                final=final,
            ),
            schema_version=METRICS_SCHEMA_VERSION,
        )
        logger.info(
            "%s epoch %d/%d loss %.4f max %.4f min %.4f",
            modality,
            state.epoch,
            epochs,
            loss,
            max_acc,
            min_acc,
        )
        if dist_ctx is not None:
            dist_ctx.barrier()
        progress(f"{task_name} epochs", state.epoch, epochs)

    last = state.history[-1]
    return PretrainResult(
        modality=modality,
        preset=mcfg.preset,
        status="resumed" if resume is not None else "trained",
        checkpoint=pt_path,
        metrics_path=json_path,
        metric=metric,
        max_metric=float(last["max_acc"]),
        min_metric=float(last["min_acc"]),
        epochs=epochs,
        train_time_s=float(sum(h["time_s"] for h in state.history)),
        history=state.history,
    )
