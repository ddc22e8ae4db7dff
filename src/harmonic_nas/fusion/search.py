"""Bilevel, first-order DARTS fusion search with a hardware term, then retraining of the genotype.

* The train split is divided (class-stratified, seeded) into a WEIGHT part and an ARCHITECTURE part
  (``fusion.arch_split`` of it, DARTS's usual split of the training data). Validation data is
  never used to train or to choose anything here: it only scores the final model.
* Network weights learn on the weight part: Adam, cosine annealing with warm restarts
  (``weight_lr -> weight_lr_min``, period ``restart_period`` epochs), gradient clipping at 5.
* Architecture weights learn on the architecture part: Adam(``arch_lr``, betas (0.5, 0.999),
  ``arch_weight_decay``), one step per weight step, each on a FRESH batch from a persistent,
  reshuffling iterator.
* Architecture loss = task loss + lambda_lat * E[lat] / T_lat (+ lambda_energy * E[energy] / T_en
  when energy is measured, not modelled from latency), where ``E[c] = sum over nodes of
  sum_k softmax(gamma)_k * c_k`` is the expected cost of the fusion operators on the device and
  ``T`` the candidate's whole expected cost (backbones, reshapes, head, overhead and the fusion
  operators at uniform weights). lambda = 1 thus prices "10 % of the model's latency" at 0.1 nats of
  task loss; the choice moves from the most accurate to the cheapest operators gradually with
  lambda (a min-max normalisation per operator set, the reference code's, makes any lambda > 0
  pick the cheapest operator).
* After each epoch the network is scored on the architecture part in eval mode; the genotype is
  taken at the BEST such epoch by the architecture objective itself (held-out task loss + the
  hardware term at that epoch's operator weights). Choosing by accuracy alone would undo the
  hardware term: an early epoch, before lambda has moved the weights, often scores as well.
* The genotype's discrete :class:`FixedFusionNet` is then retrained from scratch on the whole train
  split for ``retrain_epochs`` (no epoch chosen on val) and scored on val once: that model's
  metric is the reported one. With ``fusion.mixup`` > 0 each retraining batch is mixed with a
  shuffled copy of itself (fusion points, late logits and the loss, weight ~ Beta(a, a)): the
  backbones were pretrained on these very samples, so their train features are cleaner than any
  test feature, and the fusion network otherwise fits them perfectly within an epoch.
* With ``fusion.late_skip`` both networks add the mean of the backbones' own classifier logits
  to their output (the cache holds it): the fusion learns a correction of late fusion.
* ``arch_split = 0`` reproduces the reference code's protocol for comparisons: architecture steps
  on val, search epoch and retraining epoch chosen on val (optimistic).
* A non-finite loss or weight raises :class:`FusionDiverged` (the search's candidate fails with
  that reason).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from harmonic_nas.config import FusionConfig
from harmonic_nas.errors import GenomeError
from harmonic_nas.fusion.batches import Batches, CyclingBatches, split_train
from harmonic_nas.fusion.cache import FeatureCache, FeatureSplit
from harmonic_nas.fusion.genotype import MAX_CELLS, MAX_NODES, FusionGenotype
from harmonic_nas.fusion.hardware_term import BaseCost, OpCosts, hardware_vectors
from harmonic_nas.fusion.mixup import Mixup
from harmonic_nas.fusion.network import FixedFusionNet, SearchNetwork
from harmonic_nas.fusion.ops import check_ops
from harmonic_nas.tasks import Task, task_loss, task_predictions
from harmonic_nas.tasks import task_metric as metric
from harmonic_nas.tasks import weighted_f1 as weighted_f1  # re-exported by harmonic_nas.fusion
from harmonic_nas.utils.device import autocast, default_device, grad_scaler
from harmonic_nas.utils.progress import ProgressFn, no_progress
from harmonic_nas.utils.seeding import derive_seed, numpy_rng, torch_generator

logger = logging.getLogger(__name__)

GRAD_CLIP = 5.0


class FusionDiverged(RuntimeError):
    """The fusion search or retraining produced a non-finite loss or weight."""


@dataclass
class FusionResult:
    """Outcome of one inner-tier run. ``net`` is the retrained discrete network (eval mode)."""

    genotype: FusionGenotype
    val_metric: float
    net: FixedFusionNet
    history: list[dict[str, Any]]
    best_epoch: int
    params: int
    search_metric: float = 0.0
    """best metric of the search epochs on the architecture part of train (val with arch_split 0)"""
    timings: dict[str, float] = field(default_factory=dict)
    val_pred: np.ndarray | None = None
    """the retrained network's per-sample val predictions (:func:`harmonic_nas.tasks.task_predictions`)"""


# --------------------------------------------------------------------------------------------
# helpers


@contextlib.contextmanager
def _scoped_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's RNG for dropout/init inside this block only; the caller's state is restored."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@torch.no_grad()
def evaluate(
    net: nn.Module,
    split: FeatureSplit,
    task: Task,
    *,
    threshold: float = 0.5,
    batch_size: int = 512,
    select: Sequence[int] | None = None,
) -> tuple[float, float]:
    """(loss, metric) of ``net`` on a feature split, in eval mode (mode restored afterwards)."""
    out = predict_logits(net, split, batch_size=batch_size, select=select)
    return float(task_loss(out, split.labels, task)), metric(out, split.labels, task, threshold)


@torch.no_grad()
def predict_logits(
    net: nn.Module,
    split: FeatureSplit,
    *,
    batch_size: int = 512,
    select: Sequence[int] | None = None,
) -> Tensor:
    """The logits of ``net`` on every sample of a feature split, in eval mode (mode restored)."""
    was = net.training
    net.eval()
    n = len(split)
    device = split.labels.device
    logits = []
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(start + batch_size, n), device=device)
        pts = split.batch(idx)
        if select is not None:
            pts = [pts[i] for i in select]
        logits.append(net(pts, split.late_logits(idx)))
    net.train(was)
    return torch.cat(logits)


def _check_finite(loss: Tensor, where: str) -> None:
    if not torch.isfinite(loss):
        raise FusionDiverged(
            f"the {where} loss is {float(loss.detach())}; lower fusion.weight_lr / fusion.arch_lr"
        )


def _check_weights(net: nn.Module, where: str) -> None:
    for name, p in net.named_parameters():
        if not bool(torch.isfinite(p).all()):
            raise FusionDiverged(
                f"non-finite weights ({name}) after {where}; lower fusion.weight_lr / fusion.arch_lr"
            )


def _check_structure(cells: int, nodes: int, ops: Sequence[str]) -> None:
    if not 1 <= cells <= MAX_CELLS:
        raise GenomeError(f"fusion cells must be in 1..{MAX_CELLS}, got {cells}")
    if not 1 <= nodes <= MAX_NODES:
        raise GenomeError(f"fusion nodes must be in 1..{MAX_NODES}, got {nodes}")
    check_ops(list(ops))


def _weight_optim(
    params: Iterator[nn.Parameter] | list[nn.Parameter], fcfg: FusionConfig
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    opt = torch.optim.Adam(params, lr=fcfg.weight_lr, weight_decay=fcfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        opt, T_0=fcfg.restart_period, eta_min=fcfg.weight_lr_min
    )
    return opt, sched


def _step(
    opt: torch.optim.Optimizer,
    params: list[nn.Parameter],
    loss: Tensor,
    clip: float | None,
    scaler: torch.amp.GradScaler | None = None,
) -> None:
    """Gradients of ``loss`` for ``params`` only (the other group gets none), then one step
    (through ``scaler`` when given: fp16 mixed precision)."""
    if scaler is None:
        grads = torch.autograd.grad(loss, params, allow_unused=True)
    else:
        grads = torch.autograd.grad(scaler.scale(loss), params, allow_unused=True)
    for p, g in zip(params, grads, strict=True):
        p.grad = g
    if scaler is not None:
        scaler.unscale_(opt)
    if clip is not None:
        nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], clip)
    if scaler is None:
        opt.step()
    else:
        scaler.step(opt)
        scaler.update()


def _scaler(device: torch.device, precision: str) -> torch.amp.GradScaler | None:
    """The gradient scaler of fp16 training (None otherwise: plain steps)."""
    return grad_scaler(device, precision) if precision == "fp16" else None


def _check_late(split: FeatureSplit, fcfg: FusionConfig) -> None:
    """One-line error when ``fusion.late_skip`` is on but the backbones give no logits."""
    if (
        fcfg.late_skip
        and len(split)
        and split.late_logits(torch.arange(1, device=split.labels.device)) is None
    ):
        raise GenomeError(
            "fusion.late_skip needs the backbones' own classifier logits, but a backbone returns "
            "features only; set fusion.late_skip: false"
        )


def _logits(net: nn.Module, split: FeatureSplit, idx: Tensor) -> Tensor:
    """``net`` on the samples ``idx`` of a feature split (all its fusion points)."""
    out: Tensor = net(split.batch(idx), split.late_logits(idx))
    return out


def _count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# --------------------------------------------------------------------------------------------
# search


def search_fusion(
    cache: FeatureCache,
    fcfg: FusionConfig,
    *,
    cells: int,
    nodes: int,
    task: Task | None = None,
    n_classes: int | None = None,
    op_costs: OpCosts | None = None,
    base_cost: BaseCost | None = None,
    seed: int = 0,
    device: torch.device | None = None,
    progress: ProgressFn = no_progress,
    precision: str = "fp32",
) -> FusionResult:
    """Search the fusion genotype on cached features, retrain it, score it on val.

    ``precision`` (``compute.precision``): bf16/fp16 autocast of the training steps.

    ``op_costs`` (op -> (latency_ms, energy_mj) at ``fcfg.C, fcfg.L``) feeds the hardware term;
    it is required when ``fcfg.lambda_lat`` or ``fcfg.lambda_energy`` is positive. ``base_cost``
    (the rest of the candidate's cost) sets the term's scale (see the module docstring).
    """
    device = device or cache.device or default_device()
    task = task or cache.task
    n_classes = n_classes or cache.n_classes
    ops = list(fcfg.ops)
    _check_structure(cells, nodes, ops)
    if fcfg.L != cache.L:
        raise GenomeError(
            f"the feature cache was pooled for L={cache.L} but fusion.L={fcfg.L}; recompute it"
        )
    lat_vec, en_vec = hardware_vectors(op_costs, ops, fcfg, n_nodes=cells * nodes, base=base_cost)
    train, val = cache.split("train"), cache.split("val")
    _check_late(train, fcfg)
    if fcfg.arch_split > 0:
        weight_data, arch_data = split_train(train, fcfg.arch_split, seed)
    else:  # the reference code's protocol (comparisons only): architecture and choices on val
        weight_data, arch_data = train, val
    t0 = time.perf_counter()
    history: list[dict[str, Any]] = []
    with _scoped_rng(derive_seed(seed, "fusion-search"), device):
        net = SearchNetwork(
            cache.point_shapes,
            C=fcfg.C,
            L=fcfg.L,
            cells=cells,
            nodes=nodes,
            multiplier=fcfg.multiplier,
            ops=ops,
            n_classes=n_classes,
            dropout=fcfg.dropout,
            generator=torch_generator(seed, "fusion-arch-init"),
            late_skip=fcfg.late_skip,
        ).to(device)
        lat_vec = lat_vec.to(device) if lat_vec is not None else None
        en_vec = en_vec.to(device) if en_vec is not None else None
        arch_params = net.arch_parameters()
        weight_params = list(net.weight_parameters())
        w_opt, w_sched = _weight_optim(weight_params, fcfg)
        a_opt = torch.optim.Adam(
            arch_params,
            lr=fcfg.arch_lr,
            betas=(0.5, 0.999),
            weight_decay=fcfg.arch_weight_decay,
        )
        train_batches = Batches(
            len(weight_data), fcfg.batch_size, torch_generator(seed, "ft"), device
        )
        arch_iter = CyclingBatches(
            Batches(len(arch_data), fcfg.batch_size, torch_generator(seed, "fv"), device)
        )
        best_objective, best_metric, best_epoch = math.inf, -math.inf, -1
        best_genotype = net.genotype()
        steps_per_epoch = len(train_batches)
        total = fcfg.epochs * steps_per_epoch
        step = 0
        a_scaler, w_scaler = _scaler(device, precision), _scaler(device, precision)
        for epoch in range(fcfg.epochs):
            net.train()
            loss_sum, seen = 0.0, 0
            for idx in train_batches.epoch():
                # architecture step on a fresh batch of the architecture part
                aidx = next(arch_iter)
                with autocast(device, precision):
                    a_logits = _logits(net, arch_data, aidx)
                a_loss = task_loss(a_logits.float(), arch_data.labels[aidx], task)
                if lat_vec is not None or en_vec is not None:
                    w = net.op_weights()
                    if lat_vec is not None:
                        a_loss = a_loss + fcfg.lambda_lat * (w @ lat_vec).sum()
                    if en_vec is not None:
                        a_loss = a_loss + fcfg.lambda_energy * (w @ en_vec).sum()
                _check_finite(a_loss, "architecture")
                _step(a_opt, arch_params, a_loss, None, a_scaler)
                # weight step on the weight part
                with autocast(device, precision):
                    w_logits = _logits(net, weight_data, idx)
                loss = task_loss(w_logits.float(), weight_data.labels[idx], task)
                _check_finite(loss, "fusion search")
                _step(w_opt, weight_params, loss, GRAD_CLIP, w_scaler)
                loss_sum += float(loss.detach()) * len(idx)
                seen += len(idx)
                step += 1
                progress("fusion search", step, total)
            lr = w_opt.param_groups[0]["lr"]
            w_sched.step()
            _check_weights(net, "the fusion search")
            eval_bs = max(fcfg.batch_size, 256)
            arch_loss, arch_metric = evaluate(
                net, arch_data, task, threshold=fcfg.threshold, batch_size=eval_bs
            )
            genotype = net.genotype()
            with torch.no_grad():
                w = net.op_weights()
                exp_lat = float((w @ lat_vec).sum()) if lat_vec is not None else 0.0
                exp_en = float((w @ en_vec).sum()) if en_vec is not None else 0.0
            history.append(
                {
                    "phase": "search",
                    "epoch": epoch,
                    "train_loss": loss_sum / max(seen, 1),
                    "arch_loss": arch_loss,
                    "arch_metric": arch_metric,
                    "lr": lr,
                    "expected_latency_share": exp_lat,
                    "expected_energy_share": exp_en,
                    "genotype": genotype.to_json(),
                }
            )
            objective = arch_loss + fcfg.lambda_lat * exp_lat + fcfg.lambda_energy * exp_en
            history[-1]["arch_objective"] = objective
            logger.debug(
                "search epoch %d arch-split %.4f objective %.4f %s",
                epoch,
                arch_metric,
                objective,
                genotype,
            )
            if objective < best_objective:
                best_objective, best_metric = objective, arch_metric
                best_epoch, best_genotype = epoch, genotype
    t1 = time.perf_counter()
    fixed, val_metric, retrain_hist = _train_fixed(
        cache,
        best_genotype,
        fcfg,
        task=task,
        n_classes=n_classes,
        seed=seed,
        device=device,
        progress=progress,
        precision=precision,
    )
    t2 = time.perf_counter()
    history.extend(retrain_hist)
    val_pred = task_predictions(
        predict_logits(fixed, cache.split("val"), select=fixed.used_points), task, fcfg.threshold
    )
    return FusionResult(
        genotype=best_genotype,
        val_metric=val_metric,
        net=fixed,
        history=history,
        best_epoch=best_epoch,
        params=_count(fixed),
        search_metric=best_metric,
        timings={"search_s": t1 - t0, "retrain_s": t2 - t1},
        val_pred=val_pred,
    )


def train_fixed(
    cache: FeatureCache,
    genotype: FusionGenotype,
    fcfg: FusionConfig,
    *,
    task: Task | None = None,
    n_classes: int | None = None,
    seed: int = 0,
    epochs: int | None = None,
    device: torch.device | None = None,
    progress: ProgressFn = no_progress,
    precision: str = "fp32",
) -> tuple[FixedFusionNet, float]:
    """Train the discrete network of ``genotype`` from scratch on train; score it on val.

    Returns ``(net in eval mode, val metric of that net)``. The net is the one after the last of
    ``epochs`` (default ``fcfg.retrain_epochs``); with ``fcfg.arch_split = 0`` (the reference
    protocol) the best val epoch is kept instead.
    """
    net, val_metric, _ = _train_fixed(
        cache,
        genotype,
        fcfg,
        task=task,
        n_classes=n_classes,
        seed=seed,
        epochs=epochs,
        device=device,
        progress=progress,
        precision=precision,
    )
    return net, val_metric


def _train_fixed(
    cache: FeatureCache,
    genotype: FusionGenotype,
    fcfg: FusionConfig,
    *,
    task: Task | None,
    n_classes: int | None,
    seed: int,
    epochs: int | None = None,
    device: torch.device | None,
    progress: ProgressFn,
    precision: str = "fp32",
) -> tuple[FixedFusionNet, float, list[dict[str, Any]]]:
    device = device or cache.device or default_device()
    task = task or cache.task
    n_classes = n_classes or cache.n_classes
    epochs = epochs or fcfg.retrain_epochs
    keep_best = fcfg.arch_split == 0  # the reference protocol: the epoch is chosen on val
    train, val = cache.split("train"), cache.split("val")
    _check_late(train, fcfg)
    history: list[dict[str, Any]] = []
    mix = Mixup(fcfg.mixup, numpy_rng(seed, "fusion-mixup"))
    with _scoped_rng(derive_seed(seed, "fusion-retrain"), device):
        net = FixedFusionNet(
            cache.point_shapes,
            genotype,
            C=fcfg.C,
            L=fcfg.L,
            n_classes=n_classes,
            dropout=fcfg.dropout,
            late_skip=fcfg.late_skip,
        ).to(device)
        used = net.used_points
        params = list(net.parameters())
        opt, sched = _weight_optim(params, fcfg)
        batches = Batches(len(train), fcfg.batch_size, torch_generator(seed, "fr"), device)
        scaler = _scaler(device, precision)
        best_metric, best_state = -math.inf, None
        val_metric = -math.inf
        total = epochs * len(batches)
        step = 0
        for epoch in range(epochs):
            net.train()
            loss_sum, seen = 0.0, 0
            for idx in batches.epoch():
                pts = train.batch(idx)
                with autocast(device, precision):
                    loss = mix.loss(
                        net, [pts[i] for i in used], train.late_logits(idx), train.labels[idx], task
                    ).float()
                _check_finite(loss, "fusion retraining")
                _step(opt, params, loss, GRAD_CLIP, scaler)
                loss_sum += float(loss.detach()) * len(idx)
                seen += len(idx)
                step += 1
                progress("fusion retrain", step, total)
            lr = opt.param_groups[0]["lr"]
            sched.step()
            _check_weights(net, "fusion retraining")
            # per-epoch val: a learning curve to look at; nothing is chosen on it (but with
            # arch_split 0, the reference protocol)
            val_loss, val_metric = evaluate(
                net,
                val,
                task,
                threshold=fcfg.threshold,
                batch_size=max(fcfg.batch_size, 256),
                select=used,
            )
            history.append(
                {
                    "phase": "retrain",
                    "epoch": epoch,
                    "train_loss": loss_sum / max(seen, 1),
                    "val_loss": val_loss,
                    "val_metric": val_metric,
                    "lr": lr,
                }
            )
            if keep_best and val_metric > best_metric:
                best_metric = val_metric
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    if keep_best and best_state is not None:
        net.load_state_dict(best_state)
        val_metric = best_metric
    net.eval()
    return net, float(val_metric), history
