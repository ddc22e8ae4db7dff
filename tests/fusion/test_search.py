"""The bilevel search: the four classic DARTS pitfalls, the hardware term, caching, determinism."""

from __future__ import annotations

import dataclasses
import inspect
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor

import harmonic_nas.fusion as fusion_pkg
from harmonic_nas.errors import DataError, GenomeError, LUTError
from harmonic_nas.fusion import (
    BaseCost,
    FixedFusionNet,
    FusionGenotype,
    SearchNetwork,
    compute_feature_cache,
    live_feature_source,
    search_fusion,
    train_fixed,
    weighted_f1,
)
from harmonic_nas.fusion import search as search_module
from harmonic_nas.fusion.batches import SubsetSplit, split_train
from harmonic_nas.fusion.cache import FeatureCache
from harmonic_nas.fusion.hardware_term import hardware_vectors
from harmonic_nas.fusion.mixup import Mixup
from harmonic_nas.fusion.network import MixedOp, SearchCell
from tests.fusion.conftest import OP_COSTS, make_backbones, make_dataset, small_fcfg

CPU = torch.device("cpu")


# --------------------------------------------------------------------------------------------
# pitfall 1: the architecture iterator is rebuilt each step (every arch step sees the same batch)


def test_each_arch_step_sees_a_fresh_batch_of_the_arch_split(
    cache: FeatureCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Tensor] = []

    class Recording(search_module.CyclingBatches):
        def __next__(self) -> Tensor:
            idx = super().__next__()
            seen.append(idx.clone())
            return idx

    monkeypatch.setattr(search_module, "CyclingBatches", Recording)
    fcfg = small_fcfg(epochs=2, retrain_epochs=1, batch_size=16)
    search_fusion(cache, fcfg, cells=1, nodes=1, seed=0, device=CPU)
    weights, arch = split_train(cache.split("train"), fcfg.arch_split, 0)
    steps = len(search_module.Batches(len(weights), 16, torch.Generator(), CPU))
    assert len(seen) == 2 * steps  # one arch step per weight step
    for a, b in itertools.pairwise(seen):
        assert not torch.equal(a, b), "two consecutive arch steps used the same batch"
    n_arch = len(arch)
    per_pass = n_arch // 16
    first_pass = torch.cat(seen[:per_pass])
    assert first_pass.unique().numel() == per_pass * 16, "a pass never repeats a sample"
    second_pass = torch.cat(seen[per_pass : 2 * per_pass])
    assert not torch.equal(first_pass, second_pass), "the arch split is reshuffled between passes"


def test_arch_split_is_a_stratified_part_of_train_disjoint_from_the_weight_part(
    cache: FeatureCache,
) -> None:
    train = cache.split("train")
    weights, arch = split_train(train, 0.3, seed=0)
    w_idx = set(weights.index.tolist())  # type: ignore[attr-defined]
    a_idx = set(arch.index.tolist())  # type: ignore[attr-defined]
    assert not w_idx & a_idx and w_idx | a_idx == set(range(len(train)))
    assert len(arch) == round(0.3 * len(train))
    counts = torch.bincount(arch.labels, minlength=cache.n_classes)
    assert bool((counts > 0).all())
    # a sample of the part is the train sample it names
    idx = torch.tensor([0, 3])
    got, want = arch.batch(idx), train.batch(arch.index[idx])  # type: ignore[attr-defined]
    for a, b in zip(got, want, strict=True):
        assert torch.equal(a, b)
    with pytest.raises(GenomeError, match="arch_split"):
        split_train(SubsetSplit(train, torch.arange(3)), 0.3, 0)


def test_val_is_only_read_to_score_the_retrained_net(cache: FeatureCache) -> None:
    """No architecture step, no choice of epoch reads val: it is read once per retraining epoch
    (a learning curve), once more for the final net's per-sample decisions (kept for the
    benchmarks' bootstrap), and the reported metric is that of the last epoch."""
    calls: list[int] = []

    class Recorder:
        def __init__(self, base: Any) -> None:
            self.base, self.labels = base, base.labels

        def __len__(self) -> int:
            return len(self.base)

        def batch(self, idx: Tensor) -> list[Tensor]:
            calls.append(len(idx))
            return self.base.batch(idx)

        def late_logits(self, idx: Tensor) -> Tensor | None:
            return self.base.late_logits(idx)

    splits = dict(cache.splits)
    splits["val"] = Recorder(cache.splits["val"])  # type: ignore[assignment]
    watched = FeatureCache(**{**cache.__dict__, "splits": splits})
    fcfg = small_fcfg(epochs=2, retrain_epochs=3)
    res = search_fusion(watched, fcfg, cells=1, nodes=1, seed=0, device=CPU)
    n_val = len(cache.split("val"))
    assert calls == [n_val] * 4  # one full pass per retraining epoch + the decisions, no more
    retrain = [h for h in res.history if h["phase"] == "retrain"]
    assert res.val_metric == retrain[-1]["val_metric"]  # the last epoch, not the best one
    assert res.val_pred is not None
    assert float((res.val_pred == cache.split("val").labels.numpy()).mean()) == res.val_metric


def test_arch_split_zero_reproduces_the_reference_protocol_on_val(cache: FeatureCache) -> None:
    fcfg = small_fcfg(epochs=2, retrain_epochs=3, arch_split=0.0)
    res = search_fusion(cache, fcfg, cells=1, nodes=1, seed=0, device=CPU)
    retrain = [h for h in res.history if h["phase"] == "retrain"]
    assert res.val_metric == max(h["val_metric"] for h in retrain)  # best val epoch kept


def test_non_finite_losses_raise_fusion_diverged(cache: FeatureCache) -> None:
    fcfg = small_fcfg(epochs=2, retrain_epochs=1, weight_lr=1e30, weight_lr_min=1e29)
    with pytest.raises(search_module.FusionDiverged, match=r"non-finite|loss is"):
        search_fusion(cache, fcfg, cells=1, nodes=1, seed=0, device=CPU)


# --------------------------------------------------------------------------------------------
# pitfall 2: the last genotype is returned instead of the best


def test_genotype_comes_from_the_best_held_out_epoch(
    cache: FeatureCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    """lambda = 0: the objective is the held-out task loss; the lowest-loss epoch's genotype."""
    scripted = iter([(0.90, 0.30), (0.30, 0.90), (0.60, 0.40), (0.80, 0.20)])  # (loss, metric)
    real_evaluate = search_module.evaluate
    calls = {"n": 0}

    def fake_evaluate(net: Any, *args: Any, **kwargs: Any) -> tuple[float, float]:
        loss, m = real_evaluate(net, *args, **kwargs)
        if isinstance(net, SearchNetwork):
            calls["n"] += 1
            return next(scripted)
        return loss, m

    monkeypatch.setattr(search_module, "evaluate", fake_evaluate)
    # a large arch lr makes the genotype move between epochs
    fcfg = small_fcfg(epochs=4, retrain_epochs=1, arch_lr=0.5, batch_size=16)
    res = search_fusion(cache, fcfg, cells=2, nodes=2, seed=3, device=CPU)
    assert calls["n"] == 4
    assert res.best_epoch == 1
    search_hist = [h for h in res.history if h["phase"] == "search"]
    assert [h["arch_objective"] for h in search_hist] == pytest.approx([0.9, 0.3, 0.6, 0.8])
    best = FusionGenotype.from_json(search_hist[1]["genotype"])
    last = FusionGenotype.from_json(search_hist[-1]["genotype"])
    assert best != last, "test needs genotypes that change between epochs"
    assert res.genotype == best
    assert res.net.genotype == best, "the retrained net must be the best epoch's genotype"
    assert res.search_metric == pytest.approx(0.90)


def test_the_hardware_term_takes_part_in_choosing_the_epoch(
    cache: FeatureCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Equal held-out losses: the epoch whose operator weights are cheapest wins, not the most
    accurate one (choosing on accuracy alone would undo lambda)."""
    metrics = iter([0.95, 0.50, 0.40])
    real_evaluate = search_module.evaluate

    def fake_evaluate(net: Any, *args: Any, **kwargs: Any) -> tuple[float, float]:
        loss, m = real_evaluate(net, *args, **kwargs)
        return (1.0, next(metrics)) if isinstance(net, SearchNetwork) else (loss, m)

    monkeypatch.setattr(search_module, "evaluate", fake_evaluate)
    fcfg = small_fcfg(epochs=3, retrain_epochs=1, arch_lr=0.05, lambda_lat=50.0)
    res = search_fusion(cache, fcfg, cells=2, nodes=2, op_costs=OP_COSTS, seed=0, device=CPU)
    search_hist = [h for h in res.history if h["phase"] == "search"]
    shares = [h["expected_latency_share"] for h in search_hist]
    assert shares[0] > shares[1] > shares[2], "lambda should make the operators cheaper"
    assert res.best_epoch == 2  # the cheapest epoch, though epoch 0 scored 0.95
    assert [h["arch_objective"] for h in search_hist] == pytest.approx(
        [1.0 + 50.0 * x for x in shares]
    )


# --------------------------------------------------------------------------------------------
# pitfall 3: structural parameters (cells, nodes, multiplier) not carried into the fixed net


@pytest.mark.parametrize(("cells", "nodes", "multiplier"), [(3, 2, 2), (1, 3, 2), (2, 1, 1)])
def test_structure_carried_into_fixed_net(
    cache: FeatureCache, cells: int, nodes: int, multiplier: int
) -> None:
    fcfg = small_fcfg(epochs=1, retrain_epochs=1, multiplier=multiplier, C=6)
    res = search_fusion(cache, fcfg, cells=cells, nodes=nodes, seed=0, device=CPU)
    mult = min(multiplier, cells)
    g = res.genotype
    assert g.n_cells == cells and g.n_nodes == nodes and g.multiplier == mult
    net = res.net
    assert len(net.cells) == cells
    assert all(len(c.nodes) == nodes for c in net.cells)
    assert net.multiplier == mult
    assert tuple(net.head_ln.normalized_shape) == (mult * 6, 4)
    assert net.classifier.in_features == mult * 6 * 4
    for cell_g, cell in zip(g.cells, net.cells, strict=True):
        for node_g, node in zip(cell_g.nodes, cell.nodes, strict=True):
            assert (node.i0, node.i1) == node_g.inputs
            assert type(node.op) is type(fusion_pkg.build_op(node_g.op, 6, 4))
    # rebuilt from the JSON genotype, the same weights give the same outputs
    rebuilt = FixedFusionNet(
        cache.point_shapes,
        FusionGenotype.from_json(g.to_json()),
        C=6,
        L=4,
        n_classes=4,
        late_skip=True,
    )
    rebuilt.load_state_dict(net.state_dict())
    rebuilt.eval()
    val = cache.split("val")
    pts = val.batch(torch.arange(8))
    used = [pts[i] for i in net.used_points]
    late = val.late_logits(torch.arange(8))
    torch.testing.assert_close(rebuilt(used, late), net(used, late))


def test_mixup_mixes_points_late_logits_and_loss() -> None:
    seen: list[tuple[Tensor, Tensor | None]] = []

    class Probe(torch.nn.Module):
        def forward(self, points: list[Tensor], late: Tensor | None = None) -> Tensor:
            seen.append((points[0], late))
            return points[0]

    pts = [torch.eye(4)]
    labels = torch.arange(4)
    late = 2 * torch.eye(4)
    plain = Mixup(0.0, np.random.default_rng(0))
    loss = plain.loss(Probe(), pts, late, labels, "classification")
    assert seen[-1][0] is pts[0] and seen[-1][1] is late
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(torch.eye(4), labels))
    rng = np.random.default_rng(7)
    lam, perm = rng.beta(0.4, 0.4), torch.from_numpy(rng.permutation(4))
    mixed = Mixup(0.4, np.random.default_rng(7))
    loss = mixed.loss(Probe(), pts, late, labels, "classification")
    x = lam * torch.eye(4) + (1 - lam) * torch.eye(4)[perm]
    torch.testing.assert_close(seen[-1][0], x)
    torch.testing.assert_close(seen[-1][1], 2 * x)  # the late logits mixed alike
    ce = torch.nn.functional.cross_entropy
    torch.testing.assert_close(loss, lam * ce(x, labels) + (1 - lam) * ce(x, labels[perm]))


def test_mixup_retraining_is_seeded_and_changes_the_net(cache: FeatureCache) -> None:
    g = search_fusion(
        cache, small_fcfg(epochs=1, retrain_epochs=1), cells=1, nodes=1, seed=0, device=CPU
    ).genotype

    def retrain(mixup: float) -> list[Tensor]:
        fcfg = small_fcfg(retrain_epochs=2, mixup=mixup)
        net, _ = search_module.train_fixed(cache, g, fcfg, seed=3, device=CPU)
        return [p.detach().clone() for p in net.parameters()]

    a, b, off = retrain(0.4), retrain(0.4), retrain(0.0)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, off, strict=True))


def test_late_skip_needs_backbone_logits(cache: FeatureCache) -> None:
    no_logits = {n: dataclasses.replace(sp, late=None) for n, sp in cache.splits.items()}
    bare = FeatureCache(**{**cache.__dict__, "splits": no_logits})
    with pytest.raises(GenomeError, match=r"set fusion\.late_skip: false"):
        search_fusion(bare, small_fcfg(epochs=1, retrain_epochs=1), cells=1, nodes=1, device=CPU)
    res = search_fusion(
        bare, small_fcfg(epochs=1, retrain_epochs=1, late_skip=False), cells=1, nodes=1, device=CPU
    )
    assert not res.net.late_skip


# --------------------------------------------------------------------------------------------
# pitfall 4: a hard-coded device


def test_no_hard_coded_device(cache: FeatureCache, monkeypatch: pytest.MonkeyPatch) -> None:
    for mod in (
        search_module,
        fusion_pkg.network,
        fusion_pkg.ops,
        fusion_pkg.cache,
        fusion_pkg.model,
    ):
        src = inspect.getsource(mod)
        assert ".cuda(" not in src and "cuda:" not in src, mod.__name__
        assert 'device("cuda' not in src and "device('cuda" not in src, mod.__name__

    def boom(*args: Any, **kwargs: Any) -> Tensor:
        raise AssertionError("a tensor was moved to CUDA")

    monkeypatch.setattr(torch.Tensor, "cuda", boom)
    monkeypatch.setattr(torch.nn.Module, "cuda", boom)
    res = search_fusion(
        cache, small_fcfg(epochs=1, retrain_epochs=1), cells=1, nodes=1, seed=0, device=CPU
    )
    assert all(p.device == CPU for p in res.net.parameters())


def test_default_device_is_used_when_none(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = []

    def fake_default() -> torch.device:
        asked.append(True)
        return CPU

    monkeypatch.setattr(fusion_pkg.cache, "default_device", fake_default)
    c = compute_feature_cache(
        make_backbones(), make_dataset(n_train=40, n_val=20), L=4, bn_recalib_batches=0
    )
    assert asked and c.device == CPU
    assert all(p.device == CPU for p in c.split("train").batch(torch.arange(3)))


# --------------------------------------------------------------------------------------------
# two different inputs per operator


def test_operators_see_two_different_inputs(cache: FeatureCache) -> None:
    net = SearchNetwork(
        cache.point_shapes,
        C=8,
        L=4,
        cells=2,
        nodes=3,
        multiplier=2,
        ops=["Sum", "ScaleDotAttn", "ConcatFC", "SE1"],
        n_classes=4,
        generator=torch.Generator().manual_seed(0),
    )
    pairs: list[tuple[Tensor, Tensor]] = []
    cell_pairs: list[tuple[Tensor, Tensor]] = []
    hooks = [
        m.register_forward_pre_hook(lambda m, a: pairs.append((a[0], a[1])))
        for m in net.modules()
        if isinstance(m, MixedOp)
    ]
    hooks += [
        m.register_forward_pre_hook(lambda m, a: cell_pairs.append((a[0], a[1])))
        for m in net.modules()
        if isinstance(m, SearchCell)
    ]
    net.eval()
    net(cache.split("val").batch(torch.arange(16)))
    for h in hooks:
        h.remove()
    assert len(pairs) == 6 and len(cell_pairs) == 2
    for x, y in pairs + cell_pairs:
        assert x.shape == y.shape
        assert not torch.equal(x, y), "first and second operator inputs are the same tensor"
        assert (x - y).abs().max() > 1e-6
    # node 0 of each cell operates on the cell's two inputs themselves
    for k, (x, y) in enumerate(cell_pairs):
        assert pairs[3 * k][0] is x and pairs[3 * k][1] is y
    # first/second input selections have their own architecture parameters
    assert all(a.shape[0] == 2 for a in net.alphas)
    assert all(b.shape[0] == 2 for b in net.betas)
    assert len(net.betas) == 2 * 2  # nodes 1 and 2 of each cell


def test_first_and_second_arch_weights_get_different_gradients(cache: FeatureCache) -> None:
    net = SearchNetwork(
        cache.point_shapes,
        C=8,
        L=4,
        cells=1,
        nodes=1,
        multiplier=1,
        ops=["ScaleDotAttn", "SE1", "ConcatFC"],
        n_classes=4,
    )
    val = cache.split("val")
    idx = torch.arange(32)
    loss = torch.nn.functional.cross_entropy(net(val.batch(idx)), val.labels[idx])
    (g_alpha,) = torch.autograd.grad(loss, [net.alphas[0]])
    assert not torch.allclose(g_alpha[0], g_alpha[1])


# --------------------------------------------------------------------------------------------
# the hardware term


def test_hardware_term_gradient_reaches_arch_weights(cache: FeatureCache) -> None:
    ops = list(OP_COSTS)
    net = SearchNetwork(
        cache.point_shapes, C=8, L=4, cells=2, nodes=2, multiplier=2, ops=ops, n_classes=4
    )
    fcfg = small_fcfg(lambda_lat=1.0, lambda_energy=0.5)
    base = BaseCost(latency_ms=2.0, energy_mj=3.0)
    lat, en = hardware_vectors(OP_COSTS, ops, fcfg, n_nodes=4, base=base)
    assert lat is not None and en is not None
    # relative to the candidate's whole expected cost: base + 4 nodes at the mean op cost
    mean_lat = sum(c[0] for c in OP_COSTS.values()) / len(OP_COSTS)
    want = torch.tensor([OP_COSTS[o][0] / (2.0 + 4 * mean_lat) for o in ops])
    torch.testing.assert_close(lat, want)
    w = net.op_weights()
    term = 1.0 * (w @ lat).sum() + 0.5 * (w @ en).sum()
    grads = torch.autograd.grad(term, list(net.gammas))
    for g in grads:
        assert g.abs().sum() > 0
        # descending the gradient raises the cheapest op and lowers the most expensive one
        assert (g[:, ops.index("Sum")] < 0).all()
        assert (g[:, ops.index("ScaleDotAttn")] > 0).all()


def test_hardware_term_scale_and_modelled_energy() -> None:
    ops = list(OP_COSTS)
    fcfg = small_fcfg(lambda_lat=1.0, lambda_energy=1.0)
    small, _ = hardware_vectors(OP_COSTS, ops, fcfg, n_nodes=2)
    big, _ = hardware_vectors(
        OP_COSTS, ops, fcfg, n_nodes=2, base=BaseCost(latency_ms=10.0, energy_mj=1.0)
    )
    assert small is not None and big is not None
    # the same operators weigh less in a candidate whose backbones cost more
    assert bool((big < small).all())
    # energy modelled from latency: no second latency term
    lat, en = hardware_vectors(
        OP_COSTS, ops, fcfg, n_nodes=2, base=BaseCost(1.0, 15.0, energy_modelled=True)
    )
    assert lat is not None and en is None
    assert hardware_vectors(OP_COSTS, ops, small_fcfg(), n_nodes=2) == (None, None)
    with pytest.raises(LUTError, match="needs fusion operator costs"):
        hardware_vectors(None, ops, fcfg, n_nodes=2)


def test_large_lambda_picks_cheap_ops(cache: FeatureCache) -> None:
    cheap = small_fcfg(epochs=3, retrain_epochs=1, arch_lr=0.05, lambda_lat=50.0, lambda_energy=0.0)
    res = search_fusion(cache, cheap, cells=2, nodes=2, op_costs=OP_COSTS, seed=0, device=CPU)
    assert set(res.genotype.ops) == {"Sum"}
    hist = [h for h in res.history if h["phase"] == "search"]
    assert hist[-1]["expected_latency_share"] < hist[0]["expected_latency_share"]


def test_lambda_zero_needs_no_costs(cache: FeatureCache) -> None:
    res = search_fusion(
        cache, small_fcfg(epochs=1, retrain_epochs=1), cells=1, nodes=1, seed=0, device=CPU
    )
    assert 0.0 <= res.val_metric <= 1.0


# --------------------------------------------------------------------------------------------
# cache equivalence and determinism


def test_cached_features_equal_live_backbones() -> None:
    ds = make_dataset(n_train=96, n_val=48)
    cached = compute_feature_cache(
        make_backbones(1), ds, L=4, bn_recalib_batches=2, batch_size=32, device=CPU
    )
    live = live_feature_source(
        make_backbones(1), ds, L=4, bn_recalib_batches=2, batch_size=32, device=CPU
    )
    assert cached.point_refs == live.point_refs and cached.point_shapes == live.point_shapes
    idx = torch.randperm(48)[:20]
    for a, b in zip(cached.split("val").batch(idx), live.split("val").batch(idx), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        cached.split("val").late_logits(idx),
        live.split("val").late_logits(idx),
        rtol=1e-5,
        atol=1e-6,
    )
    # one backbone pass per batch for its points and late logits, also through a subset
    calls: list[int] = []
    hooks = [
        bb.register_forward_hook(lambda *_: calls.append(1))
        for bb in live.split("val").backbones.values()  # type: ignore[attr-defined]
    ]
    part = SubsetSplit(live.split("val"), torch.arange(30))
    step = torch.arange(8)
    part.batch(step), part.late_logits(step)
    assert len(calls) == 2  # two backbones, once each
    for h in hooks:
        h.remove()
    fcfg = small_fcfg(epochs=2, retrain_epochs=2, batch_size=16)
    r1 = search_fusion(cached, fcfg, cells=2, nodes=1, seed=5, device=CPU)
    r2 = search_fusion(live, fcfg, cells=2, nodes=1, seed=5, device=CPU)
    assert r1.genotype == r2.genotype
    assert r1.val_metric == pytest.approx(r2.val_metric, abs=1e-6)
    for h1, h2 in zip(r1.history, r2.history, strict=True):
        assert h1["train_loss"] == pytest.approx(h2["train_loss"], rel=1e-4)


def test_backbones_are_frozen_and_recalibrated() -> None:
    bbs = make_backbones(2)
    before = bbs["image"].stem[1].running_mean.clone()
    compute_feature_cache(
        bbs,
        make_dataset(n_train=64, n_val=16),
        L=4,
        bn_recalib_batches=2,
        batch_size=32,
        device=CPU,
    )
    assert not torch.equal(before, bbs["image"].stem[1].running_mean)
    assert all(not p.requires_grad for bb in bbs.values() for p in bb.parameters())
    assert not any(bb.training for bb in bbs.values())


def test_same_seed_same_genotype(cache: FeatureCache) -> None:
    fcfg = small_fcfg(epochs=2, retrain_epochs=2, arch_lr=0.05)
    runs = [search_fusion(cache, fcfg, cells=2, nodes=2, seed=11, device=CPU) for _ in range(2)]
    assert runs[0].genotype == runs[1].genotype
    assert runs[0].val_metric == runs[1].val_metric
    assert runs[0].history == runs[1].history
    other = search_fusion(cache, fcfg, cells=2, nodes=2, seed=12, device=CPU)
    assert other.history != runs[0].history


def test_search_does_not_touch_global_rng(cache: FeatureCache) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    search_fusion(
        cache, small_fcfg(epochs=1, retrain_epochs=1), cells=1, nodes=1, seed=0, device=CPU
    )
    assert torch.equal(torch.rand(3), expected)


def test_train_fixed_returns_net_and_metric(cache: FeatureCache) -> None:
    res = search_fusion(
        cache, small_fcfg(epochs=1, retrain_epochs=1), cells=1, nodes=1, seed=0, device=CPU
    )
    net, m = train_fixed(cache, res.genotype, small_fcfg(), seed=0, epochs=2, device=CPU)
    assert isinstance(net, FixedFusionNet) and not net.training
    assert 0.0 <= m <= 1.0


def test_fusion_beats_chance_on_toy_task(cache: FeatureCache) -> None:
    fcfg = small_fcfg(epochs=4, retrain_epochs=8, weight_lr=1e-2)
    res = search_fusion(cache, fcfg, cells=1, nodes=1, seed=0, device=CPU)
    assert res.val_metric > 0.5  # 4 classes, each modality alone knows one bit (<= 0.5)


# --------------------------------------------------------------------------------------------
# multilabel


def test_weighted_f1_matches_hand_computation() -> None:
    labels = torch.tensor([[1, 0], [1, 1], [0, 1], [1, 0]], dtype=torch.float32)
    scores = torch.tensor([[0.9, 0.2], [0.4, 0.7], [0.6, 0.8], [0.8, 0.1]])
    # class 0: tp 2, fp 1, fn 1 -> F1 = 4/6; support 3. class 1: tp 2, fp 0, fn 0 -> 1; support 2
    expected = (3 * (4 / 6) + 2 * 1.0) / 5
    assert weighted_f1(scores, labels, 0.5) == pytest.approx(expected)
    assert weighted_f1(scores, labels, 0.95) == 0.0


def test_multilabel_search() -> None:
    ds = make_dataset(task="multilabel")
    c = compute_feature_cache(make_backbones(), ds, L=4, bn_recalib_batches=1, device=CPU)
    assert c.task == "multilabel"
    res = search_fusion(
        c,
        small_fcfg(epochs=2, retrain_epochs=2, threshold=0.4),
        cells=1,
        nodes=2,
        seed=0,
        device=CPU,
    )
    assert 0.0 <= res.val_metric <= 1.0
    assert res.net.classifier.out_features == 4


# --------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    ("cells", "nodes", "match"),
    [(0, 1, "cells"), (9, 1, "cells"), (1, 0, "nodes"), (1, 9, "nodes")],
)
def test_cells_nodes_out_of_range(cache: FeatureCache, cells: int, nodes: int, match: str) -> None:
    with pytest.raises(GenomeError, match=f"fusion {match} must be in 1..8"):
        search_fusion(cache, small_fcfg(), cells=cells, nodes=nodes, seed=0, device=CPU)


def test_unknown_operator(cache: FeatureCache) -> None:
    with pytest.raises(GenomeError, match="unknown fusion operator 'Conv9'"):
        search_fusion(cache, small_fcfg(ops=("Sum", "Conv9")), cells=1, nodes=1, seed=0, device=CPU)


def test_costs_missing(cache: FeatureCache) -> None:
    fcfg = small_fcfg(lambda_lat=0.1)
    with pytest.raises(LUTError, match="needs fusion operator costs"):
        search_fusion(cache, fcfg, cells=1, nodes=1, op_costs=None, seed=0, device=CPU)
    partial = {k: v for k, v in OP_COSTS.items() if k != "SE1"}
    with pytest.raises(LUTError, match=r"no cost for fusion operator\(s\) \['SE1'\] at C=8, L=4"):
        search_fusion(cache, fcfg, cells=1, nodes=1, op_costs=partial, seed=0, device=CPU)


def test_backbones_not_matching_dataset() -> None:
    bbs = make_backbones()
    bbs["audio"] = bbs.pop("vec")
    with pytest.raises(DataError, match="do not match the dataset"):
        compute_feature_cache(bbs, make_dataset(), L=4, device=CPU)


def test_cache_L_mismatch(cache: FeatureCache) -> None:
    with pytest.raises(GenomeError, match="pooled for L=4"):
        search_fusion(cache, small_fcfg(L=16), cells=1, nodes=1, seed=0, device=CPU)


def test_history_is_json_serialisable(cache: FeatureCache, tmp_path: Path) -> None:
    import json

    res = search_fusion(
        cache, small_fcfg(epochs=1, retrain_epochs=1), cells=1, nodes=1, seed=0, device=CPU
    )
    (tmp_path / "h.json").write_text(json.dumps(res.history))
    assert [h["phase"] for h in res.history] == ["search", "retrain"]
