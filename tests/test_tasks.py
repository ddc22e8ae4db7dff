"""One metric vocabulary: the numpy scores of an exported model's predictions (``predict``) are
the task metric the search and the report use, with per-label scores (issue 25, new user
item 4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harmonic_nas.results._predict import Prediction
from harmonic_nas.tasks import metric_from_scores, per_label_scores, task_metric


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
