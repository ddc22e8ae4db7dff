"""BN recalibration changes the running statistics and nothing else."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from harmonic_nas.backbones import ElasticMobileNetV3, MaxoutMLP
from harmonic_nas.pretrain import bn_recalibrate, calibration_generator, extract_calibrated
from harmonic_nas.utils.sampling import stratified_subset

STAT_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")


def _trained_like(net: nn.Module) -> nn.Module:
    """Some training steps so that weights and running statistics are not at their init values."""
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    net.train()
    for _ in range(3):
        opt.zero_grad()
        x = torch.randn(8, 1, 20, 20) if isinstance(net, ElasticMobileNetV3) else torch.randn(8, 20)
        net(x)[1].pow(2).mean().backward()
        opt.step()
    return net


def _snapshot(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("kind", ["cnn", "maxout"])
def test_only_running_statistics_change(kind: str) -> None:
    if kind == "cnn":
        supernet = _trained_like(ElasticMobileNetV3("avmnist", 1, 5))
        net = supernet.extract(supernet.sample(np.random.default_rng(0))).eval()  # type: ignore[operator]
        inputs = torch.randn(50, 1, 20, 20) * 2 + 1
    else:
        net = _trained_like(MaxoutMLP(20, 5)).eval()
        inputs = torch.randn(50, 20) * 2 + 1
    momenta = {n: m.momentum for n, m in net.named_modules() if isinstance(m, nn.BatchNorm2d)}
    before = _snapshot(net)
    out = bn_recalibrate(net, inputs, batches=3, batch_size=16)
    assert out is net and not net.training  # eval mode restored
    assert all(not m.training for m in net.modules())
    after = _snapshot(net)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed, "the running statistics should change"
    assert all(k.endswith(STAT_SUFFIXES) for k in changed), changed
    assert any(k.endswith("running_mean") for k in changed)
    assert any(k.endswith("running_var") for k in changed)
    for name, module in net.named_modules():
        if isinstance(module, nn.BatchNorm2d):
            assert module.momentum == momenta[name]
    # deterministic: dropout is off during recalibration
    again = _snapshot(bn_recalibrate(net, inputs, batches=3, batch_size=16))
    for k in after:
        torch.testing.assert_close(after[k], again[k], atol=1e-6, rtol=1e-5)


def test_statistics_are_the_exact_average_over_the_batches() -> None:
    net = MaxoutMLP(6, 3).eval()
    inputs = torch.randn(40, 6)
    labels = torch.arange(40) % 4
    bn_recalibrate(
        net, inputs, batches=4, batch_size=10, labels=labels, generator=calibration_generator(3)
    )
    bn = net.hidden[0].bn
    index = stratified_subset(labels, 40, calibration_generator(3))
    assert sorted(index.tolist()) == list(range(40))
    with torch.no_grad():
        h = net.hidden[0].maxout(inputs[index])
    means = torch.stack([chunk.mean(0) for chunk in h.split(10)])
    vars_ = torch.stack([chunk.var(0, unbiased=True) for chunk in h.split(10)])
    assert bn.running_mean is not None and bn.running_var is not None
    torch.testing.assert_close(bn.running_mean, means.mean(0), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(bn.running_var, vars_.mean(0), atol=1e-5, rtol=1e-5)
    assert int(bn.num_batches_tracked) == 4


def test_training_mode_is_restored_and_samples_can_be_random() -> None:
    net = MaxoutMLP(6, 3).train()
    inputs = torch.randn(64, 6)
    bn_recalibrate(net, inputs, 2, 8, generator=torch.Generator().manual_seed(0))
    assert all(m.training for m in net.modules())
    a = net.hidden[0].bn.running_mean.clone()  # type: ignore[union-attr]
    bn_recalibrate(net, inputs, 2, 8, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(a, net.hidden[0].bn.running_mean)  # type: ignore[arg-type]


def test_recalibration_fixes_mixed_supernet_statistics() -> None:
    """A subnet evaluated with the supernet's mixed statistics differs from one recalibrated on
    the very data it is evaluated on; after recalibration, eval-mode BN equals batch statistics."""
    supernet = ElasticMobileNetV3("avmnist", 1, 5)
    supernet.train()
    rng = np.random.default_rng(1)
    for _ in range(5):
        supernet.set_active(supernet.sample(rng))
        supernet(torch.randn(16, 1, 20, 20) * 3)
    genome = supernet.min_genome()
    x = torch.randn(32, 1, 20, 20)
    sub = extract_calibrated(supernet, genome, x, torch.arange(32) % 5, batches=1, batch_size=32)
    assert not sub.training
    with torch.no_grad():
        eval_logits = sub(x)[1]
        batch_stats = supernet.extract(genome).eval()
        for m in batch_stats.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.train()  # normalise with the statistics of x itself
        batch_logits = batch_stats(x)[1]
    # running_var is unbiased while batch normalisation uses the biased variance: close, not equal
    torch.testing.assert_close(eval_logits, batch_logits, atol=2e-2, rtol=2e-2)
    uncalibrated = supernet.extract(genome).eval()
    with torch.no_grad():
        assert not torch.allclose(uncalibrated(x)[1], eval_logits, atol=2e-2)


def test_bad_arguments() -> None:
    net = MaxoutMLP(6, 3)
    with pytest.raises(ValueError, match=">= 1"):
        bn_recalibrate(net, torch.randn(4, 6), 0, 4)
    with pytest.raises(ValueError, match="at least one"):
        bn_recalibrate(net, torch.randn(0, 6), 1, 4)


def test_stratified_subset_holds_every_class_of_a_class_sorted_split() -> None:
    # train splits are often sorted by class: the first rows would hold classes 0-6 only
    labels = torch.arange(10).repeat_interleave(105)  # 1,050 rows, sorted, as av-digits' train
    index = stratified_subset(labels, 640, calibration_generator(0))
    assert index.shape == (640,) and len(set(index.tolist())) == 640
    counts = torch.bincount(labels[index], minlength=10)
    assert bool((counts > 0).all()), f"a class is missing from the subset: {counts.tolist()}"
    assert int(counts.max() - counts.min()) <= 1  # proportional shares of a balanced split
    # every batch mixes classes (the subset is shuffled)
    assert len(set(labels[index[:32]].tolist())) >= 5
    # seeded: same seed, same subset; another seed, another subset
    assert torch.equal(index, stratified_subset(labels, 640, calibration_generator(0)))
    assert not torch.equal(index, stratified_subset(labels, 640, calibration_generator(1)))


def test_stratified_subset_keeps_class_proportions_and_a_rare_class() -> None:
    labels = torch.cat([torch.zeros(900), torch.ones(90), torch.full((10,), 2.0)]).long()
    counts = torch.bincount(labels[stratified_subset(labels, 100, calibration_generator(0))])
    assert counts.tolist() == [90, 9, 1]


def test_stratified_subset_of_multilabel_targets_is_uniform_random() -> None:
    labels = (torch.rand(50, 4, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    index = stratified_subset(labels, 20, calibration_generator(0))
    assert index.shape == (20,) and len(set(index.tolist())) == 20


def test_recalibration_sees_every_class_of_a_sorted_split() -> None:
    """The samples that reach the BN layers come from every class (inputs carry their label)."""
    seen: list[torch.Tensor] = []

    class Probe(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bn = nn.BatchNorm1d(1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(x[:, 0].clone())
            return self.bn(x)

    labels = torch.arange(10).repeat_interleave(105)
    bn_recalibrate(Probe(), labels[:, None].float(), 20, 32, labels=labels)
    classes = torch.cat(seen).long()
    assert classes.numel() == 640 and set(classes.tolist()) == set(range(10))
