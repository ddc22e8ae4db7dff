"""Training one fixed network alone with the supernet's recipe (the weight-sharing-gap baseline)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from harmonic_nas.pretrain.losses import lr_at, make_optimizer
from harmonic_nas.pretrain.rng import isolated_rng, next_seed
from harmonic_nas.tasks import Task, task_loss
from harmonic_nas.utils.device import default_device
from harmonic_nas.utils.progress import ProgressFn, no_progress
from harmonic_nas.utils.seeding import torch_generator

if TYPE_CHECKING:
    from harmonic_nas.config import PretrainConfig

logger = logging.getLogger(__name__)


def train_standalone(
    model: nn.Module,
    inputs: Tensor,
    labels: Tensor,
    pcfg: PretrainConfig,
    *,
    task: Task = "classification",
    epochs: int | None = None,
    seed: int = 0,
    device: torch.device | None = None,
    progress: ProgressFn = no_progress,
) -> nn.Module:
    """Train one fixed network from its current weights with the supernet's recipe (AdamW,
    warm-up + cosine LR, label smoothing, same batch size), without sandwich or distillation.

    The baseline of the weight-sharing gap: a subnet trained alone for the same epoch budget.
    Returns the model in eval mode.
    """
    device = default_device() if device is None else device
    model = model.to(device)
    epochs = pcfg.epochs if epochs is None else epochs
    opt = make_optimizer(model, pcfg)
    g = torch_generator(seed, "standalone")
    n = int(inputs.shape[0])
    bs = min(pcfg.batch_size, n)
    steps = max(n // bs, 1)
    total, warmup = steps * epochs, steps * pcfg.warmup_epochs
    model.train()
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=g)
        with isolated_rng(next_seed(g), device):
            for step in range(steps):
                idx = perm[step * bs : (step + 1) * bs]
                lr = lr_at(epoch * steps + step, total, warmup, pcfg.lr)
                for group in opt.param_groups:
                    group["lr"] = lr
                opt.zero_grad(set_to_none=True)
                logits = model(inputs[idx].to(device))[1]
                task_loss(logits, labels[idx].to(device), task, pcfg.label_smoothing).backward()
                nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                opt.step()
        progress("standalone", epoch + 1, epochs)
    return model.eval()
