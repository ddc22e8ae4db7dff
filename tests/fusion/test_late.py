"""Late fusion: the Bayes combination, the fair control, the label prior, val decisions."""

from __future__ import annotations

import torch

from harmonic_nas.fusion import late
from harmonic_nas.fusion.cache import FeatureCache
from harmonic_nas.fusion.search import search_fusion
from tests.fusion.conftest import small_fcfg

CPU = torch.device("cpu")


def _outs(*logits: torch.Tensor) -> dict[str, late.BackboneOutputs]:
    return {f"m{i}": late.BackboneOutputs(torch.zeros(len(x), 1), x) for i, x in enumerate(logits)}


def test_bayes_ranks_classes_as_the_average_under_a_uniform_prior() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, 10, generator=g), torch.randn(50, 10, generator=g)
    prior = torch.full((10,), 0.1)
    bayes = late.bayes_logits(_outs(a, b), prior, "classification")
    assert torch.equal(bayes.argmax(1), late.average_logits(_outs(a, b)).argmax(1))
    # by hand: log p_a + log p_b - log prior
    expect = a.log_softmax(1) + b.log_softmax(1) - prior.log()
    torch.testing.assert_close(bayes, expect)


def test_bayes_keeps_a_single_owner_label_whole_where_the_average_halves_it() -> None:
    # label 0 is owned by m0 (confident +3); m1 knows nothing and predicts the prior (p = 0.2)
    prior = torch.tensor([0.2])
    own = torch.tensor([[3.0]])
    blind = torch.logit(prior).reshape(1, 1)
    bayes = late.bayes_logits(_outs(own, blind), prior, "multilabel")
    torch.testing.assert_close(bayes, own)  # the owner's evidence, unchanged
    avg = late.average_logits(_outs(own, blind))
    assert float(torch.sigmoid(avg)) < float(torch.sigmoid(own))


def test_label_prior_counts_train_and_stays_finite() -> None:
    y = torch.tensor([0, 0, 1, 1, 1, 1])
    prior = late.label_prior(y, "classification", 3)
    torch.testing.assert_close(prior, torch.tensor([2 / 6, 4 / 6, 0.5 / 6]))
    multi = late.label_prior(torch.tensor([[1.0, 0.0], [1.0, 0.0]]), "multilabel", 2)
    assert torch.isfinite(torch.logit(multi)).all() and 0 < float(multi[1]) < float(multi[0]) < 1


def test_the_fair_control_is_the_better_on_val_of_bayes_and_linear() -> None:
    rows = [
        {"name": "late-fusion-avg", "val_metric": 0.99},
        {"name": "late-fusion-bayes", "val_metric": 0.80},
        {"name": "late-fusion-linear", "val_metric": 0.85},
    ]
    assert late.fair_late_fusion(rows)["name"] == "late-fusion-linear"
    rows[2]["val_metric"] = 0.80  # a tie: bayes, which trains nothing
    assert late.fair_late_fusion(rows)["name"] == "late-fusion-bayes"


def test_the_search_keeps_val_decisions_that_reproduce_its_val_metric(
    cache: FeatureCache,
) -> None:
    fcfg = small_fcfg(epochs=1, retrain_epochs=2)
    res = search_fusion(cache, fcfg, cells=1, nodes=1, seed=0, device=CPU)
    labels = cache.split("val").labels
    assert res.val_pred is not None and res.val_pred.shape == labels.shape
    acc = float((res.val_pred == labels.numpy()).mean())
    assert abs(acc - res.val_metric) < 1e-12


class _Fixed(torch.nn.Module):
    """A backbone whose logits are given: forward -> ([features], logits)."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        return [x], self.logits[: len(x)]


def test_late_fusion_net_is_the_bayes_rule_for_both_tasks() -> None:
    from types import SimpleNamespace

    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    arch = SimpleNamespace(modalities={"m0": None, "m1": None})
    for task, prior in (
        ("classification", torch.tensor([0.1, 0.2, 0.3, 0.4])),
        ("multilabel", torch.tensor([0.1, 0.5, 0.7, 0.2])),
    ):
        offset = late.bayes_offset(prior, 2, task)
        net = late.LateFusionNet(arch, {"m0": _Fixed(a), "m1": _Fixed(b)}, offset, task)
        out = net(torch.zeros(6, 1), torch.zeros(6, 1))
        torch.testing.assert_close(out, late.bayes_logits(_outs(a, b), prior, task))
        # the rule lives in the buffers: a net built for the other task, loaded, agrees
        other = late.LateFusionNet(arch, {"m0": _Fixed(a), "m1": _Fixed(b)}, offset * 0, "x")
        other.load_state_dict(net.state_dict())
        torch.testing.assert_close(other(torch.zeros(6, 1), torch.zeros(6, 1)), out)
