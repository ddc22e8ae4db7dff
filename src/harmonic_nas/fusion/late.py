"""Late fusion of frozen backbones: the baselines a fused model must beat.

* ``late-fusion-avg``: each backbone keeps its own (pretrained) classifier; the logits are
  averaged. No trained fusion parameters.
* ``late-fusion-bayes``: each backbone's own classifier read as a posterior, combined by Bayes'
  rule for modalities independent given the label: the sum of the per-modality log-posteriors
  minus (M - 1) x the train prior's log (classification); per label, the sum of the logits minus
  (M - 1) x the prior's logit (multilabel). For classification with a uniform prior it ranks the
  classes as ``late-fusion-avg`` does; for a multilabel output owned by one modality it keeps that
  modality's logit whole, where the average halves it.
* ``late-fusion-linear``: one linear layer over the concatenated final representations of the
  backbones (what their classifiers read), trained on train with a fixed recipe (no choice on val).

:class:`LateFusionNet` is ``late-fusion-bayes`` as a deployable model: the search's ``late``
fusion mode (``search.fusion_modes``), an architecture without a fusion network.

The fair late-fusion control of a benchmark (:func:`fair_late_fusion`) is the better on val of
``late-fusion-bayes`` and ``late-fusion-linear``.

Both read the backbones' final representation, the last feature every backbone returns; the
search space holds it as a fusion point, so "fuse the final features" is a genotype too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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


def label_prior(labels: Tensor, task: Task, n_classes: int) -> Tensor:
    """The train split's label prior: class frequencies (classification) or per-label positive
    rates (multilabel), floored at 1 / (2 N) so no log is infinite."""
    n = max(int(labels.shape[0]), 1)
    if task == "multilabel":
        rate = labels.float().mean(0)
    else:
        rate = torch.bincount(labels.long(), minlength=n_classes).double().div(n).float()
    floor = 0.5 / n
    return rate.clamp(floor, 1.0 - floor)


def bayes_logits(outputs: Mapping[str, BackboneOutputs], prior: Tensor, task: Task) -> Tensor:
    """``late-fusion-bayes``: the backbones' posteriors combined by Bayes' rule (see the module
    docstring); scores on the task's logit scale (argmax / sigmoid as for any logits)."""
    logits = [o.logits for o in outputs.values()]
    if not logits:
        raise ValueError("late fusion needs every backbone's logits")
    offset = bayes_offset(prior, len(logits), task)
    if task == "multilabel":
        return torch.stack(logits).sum(0) + offset
    return torch.stack([x.log_softmax(-1) for x in logits]).sum(0) + offset


def bayes_offset(prior: Tensor, n_modalities: int, task: Task) -> Tensor:
    """What :func:`bayes_logits` adds to the per-modality sum: ``-(M - 1)`` x the prior's log
    (classification) or logit (multilabel)."""
    extra = n_modalities - 1
    return -extra * (torch.logit(prior) if task == "multilabel" else prior.log())


class LateFusionNet(nn.Module):
    """Backbones and their own classifiers, combined by Bayes' rule (``late-fusion-bayes``): the
    model of a ``late`` architecture, ``forward(*inputs)`` -> logits, one tensor per modality in
    ``arch.modalities`` order. The combination is two buffers (saved with the weights): the
    offset of :func:`bayes_offset` and whether each modality's logits are read as a softmax
    posterior (classification) or per-label logits (multilabel). Static graph: it exports."""

    def __init__(
        self,
        arch: Any,
        backbones: Mapping[str, nn.Module],
        offset: Tensor,
        task: Task,
    ) -> None:
        super().__init__()
        if set(backbones) != set(arch.modalities):
            raise ValueError(
                f"backbones {sorted(backbones)} do not match the architecture's modalities "
                f"{sorted(arch.modalities)}"
            )
        self.arch = arch
        self.modality_names = list(arch.modalities)
        self.backbones = nn.ModuleList(backbones[m] for m in self.modality_names)
        self.register_buffer("offset", offset.detach().float().clone())
        self.register_buffer("softmax", torch.tensor(task != "multilabel"))

    def forward(self, *inputs: Tensor) -> Tensor:
        logits = [bb(x)[1] for bb, x in zip(self.backbones, inputs, strict=True)]
        softmax: Tensor = self.softmax  # type: ignore[assignment]
        offset: Tensor = self.offset  # type: ignore[assignment]
        total = torch.zeros_like(logits[0])
        for x in logits:
            total = total + torch.where(softmax, x.log_softmax(-1), x)
        return total + offset


def fair_late_fusion(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The fair late-fusion control among baseline rows: the better on val of
    ``late-fusion-bayes`` and ``late-fusion-linear`` (ties: bayes, which trains nothing)."""
    by = {r["name"]: r for r in rows}
    pair = [by[n] for n in ("late-fusion-bayes", "late-fusion-linear") if n in by]
    if not pair:
        raise ValueError("the rows hold neither late-fusion-bayes nor late-fusion-linear")
    return max(pair, key=lambda r: r["val_metric"])  # max keeps the first of equals


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
