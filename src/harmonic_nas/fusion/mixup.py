"""Mixup of cached fusion points while retraining a discrete fusion network (``fusion.mixup``)."""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import Tensor, nn

from harmonic_nas.tasks import Task, task_loss

logger = logging.getLogger(__name__)


class Mixup:
    """Mixup of cached fusion points (Zhang et al., 2018): a batch is mixed with a shuffled copy
    of itself, ``lam * a + (1 - lam) * b`` with ``lam ~ Beta(alpha, alpha)``, the loss likewise
    (``alpha = 0``: the plain loss). Its own generator, so that the rest of the training draws
    the same numbers with or without it."""

    def __init__(self, alpha: float, rng: np.random.Generator) -> None:
        self.alpha = alpha
        self.rng = rng

    def loss(
        self,
        net: nn.Module,
        points: list[Tensor],
        late: Tensor | None,
        labels: Tensor,
        task: Task,
    ) -> Tensor:
        if self.alpha <= 0:
            out: Tensor = task_loss(net(points, late), labels, task)
            return out
        lam = float(self.rng.beta(self.alpha, self.alpha))
        perm = torch.from_numpy(self.rng.permutation(len(labels))).to(labels.device)

        def mixed(x: Tensor) -> Tensor:
            return lam * x + (1 - lam) * x.index_select(0, perm)

        out = net([mixed(p) for p in points], None if late is None else mixed(late))
        return lam * task_loss(out, labels, task) + (1 - lam) * task_loss(
            out, labels.index_select(0, perm), task
        )
