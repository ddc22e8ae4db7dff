"""The task vocabulary: what a task is, its training loss, its metric and the metric's name.

Every stage (data, pretraining, fusion, search, results) imports these; nothing else defines a
task type, a task loss or a task metric. The multilabel metric is the support-weighted F1 over
classes (sklearn ``average='weighted'``), the metric the Harmonic-NAS paper reports for MM-IMDB;
classification uses top-1 accuracy. Higher is better for both.

The metrics themselves are computed once, in numpy, from per-sample predictions
(:func:`task_predictions` turns logits into them; :func:`resampled_metric` scores them under any
number of resamplings of the samples at once, which the search's bootstrap intervals use); the
torch entry points (:func:`task_metric`, :func:`weighted_f1`) go through the same code.
torch is imported inside the functions so that the vocabulary itself stays cheap to import.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

import numpy as np

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


def task_predictions(
    logits: Tensor, task: Task, threshold: float = DEFAULT_THRESHOLD
) -> np.ndarray:
    """Per-sample predictions of ``logits`` (``(n, classes)``): the argmax class, int64 ``(n,)``
    (classification), or ``sigmoid(logits) >= threshold`` as a 0/1 uint8 ``(n, classes)``
    (multilabel). What :func:`metric_from_predictions` scores."""
    import torch

    logits = logits.detach()
    if task == "multilabel":
        return (torch.sigmoid(logits) >= threshold).cpu().numpy().astype(np.uint8)
    return logits.argmax(1).cpu().numpy().astype(np.int64)


def _check_predictions(pred: np.ndarray, labels: np.ndarray, task: Task) -> None:
    want = 1 if task == "classification" else 2
    if pred.ndim != want or labels.ndim != want:
        raise ValueError(
            f"{task} predictions and labels must be {want}-D per-sample arrays, got shapes "
            f"{pred.shape} and {labels.shape}"
        )
    if pred.shape != labels.shape:
        raise ValueError(
            f"predictions {pred.shape} and labels {labels.shape} differ in shape: pass one "
            "prediction per val sample (and per class for multilabel)"
        )


def resampled_metric(
    pred: np.ndarray, labels: np.ndarray, task: Task, counts: np.ndarray
) -> np.ndarray:
    """The task metric of ``pred`` against ``labels`` under each row of ``counts``.

    ``counts`` is ``(replicates, n)``: how many times each of the ``n`` samples is drawn in that
    replicate (a bootstrap resampling; a row of ones is the sample itself). ``pred`` / ``labels``
    are per-sample class indices ``(n,)`` (classification: accuracy) or 0/1 matrices
    ``(n, classes)`` (multilabel: support-weighted F1 over classes, sklearn
    ``average='weighted'``; a class with no true, predicted or missed sample scores 0). Returns
    one value per replicate (0.0 for a replicate without any positive label).
    """
    pred = np.asarray(pred)
    labels = np.asarray(labels)
    _check_predictions(pred, labels, task)
    w = np.asarray(counts, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != pred.shape[0]:
        raise ValueError(
            f"counts must be (replicates, {pred.shape[0]}) sample multiplicities, got {w.shape}"
        )
    if task == "classification":
        correct = (pred == labels).astype(np.float64)
        return np.asarray((w @ correct) / w.sum(axis=1))
    p = pred > 0.5
    t = labels > 0.5
    tp = w @ (p & t).astype(np.float64)
    fp = w @ (p & ~t).astype(np.float64)
    fn = w @ (~p & t).astype(np.float64)
    support = w @ t.astype(np.float64)
    denom = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    total = support.sum(axis=1)
    weighted = (f1 * support).sum(axis=1)
    return np.asarray(np.divide(weighted, total, out=np.zeros_like(total), where=total > 0))


def metric_from_predictions(pred: np.ndarray, labels: np.ndarray, task: Task) -> float:
    """Accuracy (classification: class indices ``(n,)``) or support-weighted F1 (multilabel:
    0/1 ``(n, classes)``) of per-sample predictions (:func:`task_predictions`)."""
    arr = np.asarray(pred)
    n = arr.shape[0] if arr.ndim else 0
    return float(resampled_metric(arr, labels, task, np.ones((1, n)))[0])


def _numpy(x: Tensor) -> np.ndarray:
    return np.asarray(x.detach().cpu().numpy())


def weighted_f1(scores: Tensor, labels: Tensor, threshold: float = DEFAULT_THRESHOLD) -> float:
    """Support-weighted F1 over classes (sklearn ``average='weighted'``), ``scores`` in [0, 1]."""
    pred = (_numpy(scores) >= threshold).astype(np.uint8)
    return metric_from_predictions(pred, _numpy(labels), "multilabel")


def task_metric(
    logits: Tensor, labels: Tensor, task: Task, threshold: float = DEFAULT_THRESHOLD
) -> float:
    """Accuracy (classification) or weighted F1 of ``sigmoid(logits)`` at ``threshold``
    (multilabel)."""
    return metric_from_predictions(task_predictions(logits, task, threshold), _numpy(labels), task)


#: the per-label score of a task, for people: a multilabel label's F1, a class's recall (the
#: accuracy on the samples of that class)
PER_LABEL_LABELS: Final[dict[str, str]] = {"classification": "recall", "multilabel": "F1"}


def _decisions(scores: Any, labels: Any, task: str, threshold: float) -> tuple[Any, Any]:
    """(predicted, true) as boolean (N, K) arrays; ``scores`` are probabilities (N, K)."""
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
    p = np.asarray(scores, dtype=np.float64)
    if task == "multilabel":
        pred = (p >= threshold).astype(np.uint8)
        return metric_from_predictions(pred, np.asarray(labels).reshape(p.shape), "multilabel")
    if not len(p):
        return 0.0
    y = np.asarray(labels).reshape(-1).astype(np.int64)
    return metric_from_predictions(np.argmax(p, axis=1), y, "classification")


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
    "metric_from_predictions",
    "metric_from_scores",
    "metric_label",
    "metric_name",
    "per_label_scores",
    "resampled_metric",
    "task_loss",
    "task_metric",
    "task_predictions",
    "weighted_f1",
]
