"""Scoring one backbone subnet on raw inputs (BN-recalibrated extraction, task metric)."""

from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

from harmonic_nas.backbones import BackboneGenome, Supernet
from harmonic_nas.pretrain.bn import bn_recalibrate
from harmonic_nas.tasks import DEFAULT_THRESHOLD, Task, task_metric

logger = logging.getLogger(__name__)


@torch.no_grad()
def evaluate_subnet(
    model: nn.Module,
    inputs: Tensor,
    labels: Tensor,
    *,
    task: Task = "classification",
    batch_size: int = 256,
    threshold: float = DEFAULT_THRESHOLD,
) -> float:
    """The task metric (:func:`harmonic_nas.tasks.task_metric`) of a backbone ``model`` (its
    classifier logits) on raw ``inputs``, in eval mode (the mode is restored afterwards)."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    outs = []
    try:
        for start in range(0, inputs.shape[0], batch_size):
            outs.append(model(inputs[start : start + batch_size].to(device))[1].cpu())
    finally:
        model.train(was)
    return task_metric(torch.cat(outs), labels, task, threshold)


def extract_calibrated(
    supernet: Supernet,
    genome: BackboneGenome,
    inputs: Tensor,
    labels: Tensor,
    *,
    batches: int,
    batch_size: int,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """``supernet.extract(genome)`` in eval mode, with BN statistics recalibrated on a
    class-stratified random subset of ``inputs`` (:func:`~harmonic_nas.pretrain.bn.calibration_subset`)."""
    sub = supernet.extract(genome)
    if batches > 0:
        bn_recalibrate(sub, inputs, batches, batch_size, labels=labels, generator=generator)
    return sub.eval()
