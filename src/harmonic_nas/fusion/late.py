"""Late fusion of frozen backbones: the baselines a fused model must beat.

* ``late-fusion-avg``: each backbone keeps its own (pretrained) classifier; the logits are
  averaged. No trained fusion parameters.
* ``late-fusion-linear``: one linear layer over the concatenated final representations of the
  backbones (what their classifiers read), trained on train with a fixed recipe (no choice on val).

Both read the backbones' final representation, the last feature every backbone returns; the
search space holds it as a fusion point, so "fuse the final features" is a genotype too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from harmonic_nas.fusion.cache import Task, mean_logits
from harmonic_nas.fusion.search import _scoped_rng, metric, task_loss
from harmonic_nas.utils.seeding import derive_seed

logger = logging.getLogger(__name__)

#: the linear head's fixed recipe: full-batch Adam steps, learning rate, weight decay
HEAD_STEPS = 300
HEAD_LR = 1e-2
HEAD_WEIGHT_DECAY = 1e-3


@dataclass(frozen=True)
class BackboneOutputs:
    """A frozen backbone's final representation and logits on one split."""

    final: Tensor
    logits: Tensor


@torch.no_grad()
def backbone_outputs(
    backbone: nn.Module, x: Tensor, device: torch.device, batch: int = 512
) -> BackboneOutputs:
    """The final representation (the backbone's last feature) and logits, in eval mode."""
    backbone.eval()
    finals, logits = [], []
    for i in range(0, len(x), batch):
        feats, out = backbone(x[i : i + batch].to(device))
        finals.append(feats[-1].flatten(1).cpu())
        logits.append(out.cpu())
    return BackboneOutputs(torch.cat(finals), torch.cat(logits))


def average_logits(outputs: Mapping[str, BackboneOutputs]) -> Tensor:
    """``late-fusion-avg``: the mean of the backbones' logits."""
    out = mean_logits([o.logits for o in outputs.values()])
    if out is None:
        raise ValueError("late fusion needs every backbone's logits")
    return out


def concat_final(outputs: Mapping[str, BackboneOutputs]) -> Tensor:
    """The backbones' final representations side by side (modalities in mapping order)."""
    return torch.cat([o.final for o in outputs.values()], dim=1)


def train_linear_head(
    features: Tensor, labels: Tensor, n_classes: int, task: Task, *, seed: int
) -> nn.Linear:
    """``late-fusion-linear``'s head: Linear(features, classes) trained on ``features`` (train)
    with full-batch Adam for :data:`HEAD_STEPS` steps; returned in eval mode."""
    with _scoped_rng(derive_seed(seed, "late-fusion-linear"), torch.device("cpu")):
        head = nn.Linear(features.shape[1], n_classes)
        opt = torch.optim.Adam(head.parameters(), lr=HEAD_LR, weight_decay=HEAD_WEIGHT_DECAY)
        for _ in range(HEAD_STEPS):
            opt.zero_grad()
            task_loss(head(features), labels, task).backward()
            opt.step()
    return head.eval()


def score(logits: Tensor, labels: Tensor, task: Task, threshold: float = 0.5) -> float:
    """The task's metric of some logits (accuracy, or weighted F1 for multilabel)."""
    return metric(logits, labels, task, threshold)
