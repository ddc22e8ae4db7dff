"""The task vocabulary's metrics: numpy scoring of per-sample predictions, the torch entry points
that go through it, and the resampled (bootstrap) form."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harmonic_nas.tasks import (
    Task,
    metric_from_predictions,
    resampled_metric,
    task_metric,
    task_predictions,
    weighted_f1,
)


def test_accuracy_from_predictions_by_hand() -> None:
    pred = np.array([0, 1, 2, 2, 1])
    labels = np.array([0, 1, 1, 2, 0])
    assert metric_from_predictions(pred, labels, "classification") == pytest.approx(3 / 5)


def test_weighted_f1_from_predictions_by_hand() -> None:
    # class 0: tp 2, fp 0, fn 1 -> F1 4/5, support 3; class 1: tp 1, fp 1, fn 0 -> F1 2/3,
    # support 1; class 2: never true, never predicted -> F1 0, support 0
    labels = np.array([[1, 0, 0], [1, 0, 0], [1, 1, 0], [0, 0, 0]])
    pred = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]])
    expected = (0.8 * 3 + (2 / 3) * 1) / 4
    assert metric_from_predictions(pred, labels, "multilabel") == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(3))
def test_weighted_f1_matches_sklearn(seed: int) -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    labels = (rng.random((60, 7)) < 0.3).astype(np.uint8)
    pred = (rng.random((60, 7)) < 0.35).astype(np.uint8)
    expected = metrics.f1_score(labels, pred, average="weighted", zero_division=0)
    assert metric_from_predictions(pred, labels, "multilabel") == pytest.approx(expected)


@pytest.mark.parametrize("task", ["classification", "multilabel"])
def test_predictions_score_what_task_metric_scores(task: Task) -> None:
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(200, 6, generator=gen)
    logits[0, 0] = 0.0  # exactly at the multilabel threshold: sigmoid(0) = 0.5 >= 0.5
    if task == "classification":
        labels = torch.randint(0, 6, (200,), generator=gen)
    else:
        labels = (torch.rand(200, 6, generator=gen) < 0.4).float()
    pred = task_predictions(logits, task)
    assert pred.shape == ((200,) if task == "classification" else (200, 6))
    if task == "multilabel":
        assert pred[0, 0] == 1 and set(np.unique(pred)) <= {0, 1}
        assert weighted_f1(torch.sigmoid(logits), labels) == pytest.approx(
            task_metric(logits, labels, "multilabel")
        )
    got = metric_from_predictions(pred, labels.numpy(), task)
    assert got == task_metric(logits, labels, task)
    # the same figure from torch alone (the formula task_metric used before numpy owned it)
    if task == "classification":
        ref = float((logits.argmax(1) == labels).double().mean())
    else:
        p, t = torch.sigmoid(logits) >= 0.5, labels > 0.5
        tp, fp, fn = ((p & t).sum(0), (p & ~t).sum(0), (~p & t).sum(0))
        f1 = 2 * tp.double() / (2 * tp + fp + fn).double().clamp(min=1)
        sup = t.sum(0).double()
        ref = float((f1 * sup).sum() / sup.sum())
    assert got == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("task", ["classification", "multilabel"])
def test_resampled_metric_equals_scoring_the_resampled_split(task: Task) -> None:
    rng = np.random.default_rng(5)
    n = 80
    if task == "classification":
        labels = rng.integers(0, 4, n)
        pred = np.where(rng.random(n) < 0.7, labels, (labels + 1) % 4)
    else:
        labels = (rng.random((n, 5)) < 0.4).astype(np.uint8)
        pred = np.where(rng.random((n, 5)) < 0.8, labels, 1 - labels).astype(np.uint8)
    idx = rng.integers(0, n, size=(6, n))
    counts = np.stack([np.bincount(row, minlength=n) for row in idx])
    got = resampled_metric(pred, labels, task, counts)
    want = [metric_from_predictions(pred[row], labels[row], task) for row in idx]
    assert got == pytest.approx(want, abs=1e-12)
    ones = resampled_metric(pred, labels, task, np.ones((1, n)))
    assert ones[0] == metric_from_predictions(pred, labels, task)


def test_bad_shapes_are_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="one prediction per val sample"):
        metric_from_predictions(np.zeros(4), np.zeros(5), "classification")
    with pytest.raises(ValueError, match="2-D per-sample"):
        metric_from_predictions(np.zeros(4), np.zeros(4), "multilabel")
    with pytest.raises(ValueError, match=r"counts must be \(replicates, 4\)"):
        resampled_metric(np.zeros(4), np.zeros(4), "classification", np.ones(4))
