"""The supernet's training recipe: LR schedule, in-place distillation loss, optimizer.

The task loss itself (cross-entropy / BCE with label smoothing) is :func:`harmonic_nas.tasks.task_loss`.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harmonic_nas.tasks import Task, task_loss

if TYPE_CHECKING:
    from harmonic_nas.config import PretrainConfig

logger = logging.getLogger(__name__)


def lr_at(step: int, total: int, warmup: int, base_lr: float) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if warmup > 0 and step < warmup:
        return base_lr * (step + 1) / warmup
    span = max(total - warmup, 1)
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * min(step - warmup, span) / span))


def distill_loss(logits: Tensor, teacher: Tensor, task: Task) -> Tensor:
    """Soft cross-entropy against the teacher's predictions (in-place distillation)."""
    if task == "multilabel":
        return F.binary_cross_entropy_with_logits(logits, torch.sigmoid(teacher))
    return -(F.softmax(teacher, dim=1) * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def child_loss(
    logits: Tensor, teacher: Tensor, target: Tensor, task: Task, pcfg: PretrainConfig
) -> Tensor:
    """Loss of a non-max subnet: ``w * distillation + (1 - w) * task loss`` when ``distill``
    (w = ``pretrain.distill_weight``), else the task loss alone."""
    hard = task_loss(logits, target, task, pcfg.label_smoothing)
    if not pcfg.distill:
        return hard
    w = float(pcfg.distill_weight)
    return w * distill_loss(logits, teacher, task) + (1.0 - w) * hard


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.ndim <= 1 or ".transforms." in name:
            no_decay.append(p)  # BN, biases and kernel-transform matrices
        else:
            decay.append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def make_optimizer(model: nn.Module, pcfg: PretrainConfig) -> torch.optim.Optimizer:
    """AdamW, no weight decay on BN, biases and kernel transforms."""
    return torch.optim.AdamW(_param_groups(model, pcfg.weight_decay), lr=pcfg.lr)
