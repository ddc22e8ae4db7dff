"""The task vocabulary: what a task is, its training loss, its metric and the metric's name.

Every stage (data, pretraining, fusion, search, results) imports these; nothing else defines a
task type, a task loss or a task metric. The multilabel metric is the support-weighted F1 over
classes (sklearn ``average='weighted'``), the metric the Harmonic-NAS paper reports for MM-IMDB;
classification uses top-1 accuracy. Higher is better for both.

torch is imported inside the functions so that the vocabulary itself stays cheap to import.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

if TYPE_CHECKING:
    from torch import Tensor

logger = logging.getLogger(__name__)

Task = Literal["classification", "multilabel"]
"""``classification``: int64 class indices; ``multilabel``: float32 multi-hot matrix."""

TASKS: Final[tuple[str, ...]] = get_args(Task)

#: the metric's name as written in artifacts (pareto.json, metrics JSON, reports)
METRIC_NAMES: Final[dict[str, str]] = {"classification": "accuracy", "multilabel": "weighted_f1"}
#: the metric's name for people (CLI tables, figures)
METRIC_LABELS: Final[dict[str, str]] = {"classification": "accuracy", "multilabel": "weighted F1"}

DEFAULT_THRESHOLD: Final[float] = 0.5
"""multilabel decision threshold on sigmoid scores"""


def metric_name(task: Task) -> str:
    """Machine name of ``task``'s metric: ``accuracy`` or ``weighted_f1``."""
    return METRIC_NAMES[task]


def metric_label(task: Task) -> str:
    """Human label of ``task``'s metric: ``accuracy`` or ``weighted F1``."""
    return METRIC_LABELS[task]


def task_loss(logits: Tensor, target: Tensor, task: Task, smoothing: float = 0.0) -> Tensor:
    """Cross-entropy (classification) or BCE with logits (multilabel), with label smoothing
    ``smoothing`` (multilabel targets move towards 0.5)."""
    import torch.nn.functional as F

    if task == "multilabel":
        soft = target.float()
        if smoothing:
            soft = soft * (1.0 - smoothing) + 0.5 * smoothing
        return F.binary_cross_entropy_with_logits(logits, soft)
    if smoothing:
        return F.cross_entropy(logits, target, label_smoothing=smoothing)
    return F.cross_entropy(logits, target)


def weighted_f1(scores: Tensor, labels: Tensor, threshold: float = DEFAULT_THRESHOLD) -> float:
    """Support-weighted F1 over classes (sklearn ``average='weighted'``), ``scores`` in [0, 1]."""
    import torch

    pred = scores >= threshold
    true = labels > 0.5
    tp = (pred & true).sum(0).double()
    fp = (pred & ~true).sum(0).double()
    fn = (~pred & true).sum(0).double()
    denom = 2 * tp + fp + fn
    f1 = torch.where(denom > 0, 2 * tp / denom.clamp(min=1), torch.zeros_like(tp))
    support = true.sum(0).double()
    if support.sum() == 0:
        return 0.0
    return float((f1 * support).sum() / support.sum())


def task_metric(
    logits: Tensor, labels: Tensor, task: Task, threshold: float = DEFAULT_THRESHOLD
) -> float:
    """Accuracy (classification) or weighted F1 of ``sigmoid(logits)`` at ``threshold``
    (multilabel)."""
    import torch

    if task == "multilabel":
        return weighted_f1(torch.sigmoid(logits), labels, threshold)
    return float((logits.argmax(1) == labels).double().mean())


#: the per-label score of a task, for people: a multilabel label's F1, a class's recall (the
#: accuracy on the samples of that class)
PER_LABEL_LABELS: Final[dict[str, str]] = {"classification": "recall", "multilabel": "F1"}


def _decisions(scores: Any, labels: Any, task: str, threshold: float) -> tuple[Any, Any]:
    """(predicted, true) as boolean (N, K) arrays; ``scores`` are probabilities (N, K)."""
    import numpy as np

    p = np.asarray(scores, dtype=np.float64)
    if task == "multilabel":
        return p >= threshold, np.asarray(labels).reshape(p.shape) > 0.5
    k = p.shape[1]
    eye = np.eye(k, dtype=bool)
    return eye[np.argmax(p, axis=1)], eye[np.asarray(labels).reshape(-1).astype(np.int64)]


def metric_from_scores(
    scores: Any, labels: Any, task: str, threshold: float = DEFAULT_THRESHOLD
) -> float:
    """The task metric of probabilities ``scores`` (N, K) against ``labels`` with numpy (no
    torch: an exported model's predictions): accuracy, or weighted F1 at ``threshold`` — the
    same numbers :func:`task_metric` gives on the logits."""
    import numpy as np

    pred, true = _decisions(scores, labels, task, threshold)
    if task != "multilabel":
        return float(np.mean(np.all(pred == true, axis=1))) if len(pred) else 0.0
    rows = per_label_scores(scores, labels, task, threshold)
    support = np.array([r["support"] for r in rows], dtype=np.float64)
    if support.sum() == 0:
        return 0.0
    f1 = np.array([r["score"] for r in rows], dtype=np.float64)
    return float((f1 * support).sum() / support.sum())


def per_label_scores(
    scores: Any,
    labels: Any,
    task: str,
    threshold: float = DEFAULT_THRESHOLD,
    names: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """One ``{"label", "score", "support"}`` per class: the F1 of each label (multilabel) or the
    recall of each class (classification; the accuracy on its samples), ``support`` its true
    samples; a class without samples scores 0 (multilabel) or None (classification)."""
    import numpy as np

    pred, true = _decisions(scores, labels, task, threshold)
    k = pred.shape[1]
    tp = (pred & true).sum(0).astype(np.float64)
    fp = (pred & ~true).sum(0).astype(np.float64)
    fn = (~pred & true).sum(0).astype(np.float64)
    support = true.sum(0)
    out = []
    for j in range(k):
        if task == "multilabel":
            denom = 2 * tp[j] + fp[j] + fn[j]
            score: float | None = float(2 * tp[j] / denom) if denom > 0 else 0.0
        else:
            score = float(tp[j] / support[j]) if support[j] else None
        out.append(
            {
                "label": str(names[j]) if names is not None else str(j),
                "score": score,
                "support": int(support[j]),
            }
        )
    return out


__all__ = [
    "DEFAULT_THRESHOLD",
    "METRIC_LABELS",
    "METRIC_NAMES",
    "PER_LABEL_LABELS",
    "TASKS",
    "Task",
    "metric_from_scores",
    "metric_label",
    "metric_name",
    "per_label_scores",
    "task_loss",
    "task_metric",
    "weighted_f1",
]
