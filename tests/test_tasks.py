"""The task vocabulary's metrics: numpy scoring of per-sample predictions, the torch entry points
that go through it, the resampled (bootstrap) form, and the scores of an exported model's
probabilities (``predict``) with per-label scores: one metric vocabulary (issue 25, item 4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harmonic_nas.results._predict import Prediction
from harmonic_nas.tasks import (
    Task,
    metric_from_predictions,
    metric_from_scores,
    per_label_scores,
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


def _multilabel(seed: int = 0, n: int = 64, k: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    labels = (torch.rand(n, k, generator=gen) < 0.4).float()
    logits = 3 * (labels - 0.5) + 2.0 * torch.randn(n, k, generator=gen)
    return logits, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_numpy_metric_is_the_task_metric(seed: int) -> None:
    logits, labels = _multilabel(seed)
    probs = torch.sigmoid(logits).double().numpy()
    assert metric_from_scores(probs, labels.numpy(), "multilabel") == pytest.approx(
        task_metric(logits, labels, "multilabel"), abs=1e-12
    )
    gen = torch.Generator().manual_seed(seed)
    cls_logits = torch.randn(50, 5, generator=gen)
    cls_labels = torch.randint(0, 5, (50,), generator=gen)
    cls_probs = torch.softmax(cls_logits, 1).double().numpy()
    assert metric_from_scores(cls_probs, cls_labels.numpy(), "classification") == pytest.approx(
        task_metric(cls_logits, cls_labels, "classification"), abs=1e-12
    )


def test_per_label_scores_by_hand() -> None:
    # label a: tp 1, fp 1, fn 0 -> F1 2/3; label b: tp 0, fp 0, fn 1 -> 0; label c: no support
    scores = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0]])
    labels = np.array([[1, 1, 0], [0, 0, 0]])
    rows = per_label_scores(scores, labels, "multilabel", names=["a", "b", "c"])
    assert [r["label"] for r in rows] == ["a", "b", "c"]
    assert [r["support"] for r in rows] == [1, 1, 0]
    assert rows[0]["score"] == pytest.approx(2 / 3) and rows[1]["score"] == 0.0
    # classification: a class's recall; a class without samples has none
    probs = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.1, 0.8, 0.1]])
    rows = per_label_scores(probs, np.array([0, 1, 1]), "classification")
    assert [r["score"] for r in rows] == [1.0, 0.5, None]
    assert [r["support"] for r in rows] == [1, 2, 0]


def test_prediction_reports_weighted_f1_not_exact_match() -> None:
    """The issue's case: a multilabel model's `predict` printed exact-match accuracy where the
    search and the report used weighted F1."""
    logits, labels = _multilabel(3)
    probs = torch.sigmoid(logits).double().numpy()
    pred = Prediction(
        probabilities=probs,
        class_names=["w", "x", "y", "z"],
        task="multilabel",
        threshold=0.5,
        samples=[f"s[{i}]" for i in range(len(probs))],
        labels=labels.numpy(),
    )
    exact = float(np.mean(np.all((probs >= 0.5) == (labels.numpy() > 0.5), axis=1)))
    assert pred.metric == pytest.approx(task_metric(logits, labels, "multilabel"))
    assert pred.metric != pytest.approx(exact)
    assert pred.metric_label == "weighted F1"
    out = pred.to_json()
    assert out["metric"] == "weighted_f1" and out["metric_value"] == pytest.approx(pred.metric)
    assert out["per_label_score"] == "F1"
    assert [r["label"] for r in out["per_label"]] == ["w", "x", "y", "z"]
    support = labels.sum(0).numpy()
    weighted = sum(r["score"] * s for r, s in zip(out["per_label"], support, strict=True))
    assert weighted / support.sum() == pytest.approx(pred.metric)
    assert len(out["samples"]) == len(probs) and out["samples"][0]["sample"] == "s[0]"
    unlabelled = Prediction(probs, ["w", "x", "y", "z"], "multilabel", 0.5, ["s"] * len(probs))
    assert unlabelled.metric is None and unlabelled.per_label is None
    assert unlabelled.to_json()["per_label"] is None
