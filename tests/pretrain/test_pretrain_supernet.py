"""Supernet training: artifacts, skip / force / stale, resume equivalence, sandwich + distillation."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import harmonic_nas.pretrain.losses as losses
from harmonic_nas.backbones import ElasticMobileNetV3, MaxoutMLP
from harmonic_nas.data import MultimodalDataset
from harmonic_nas.errors import CheckpointError, ConfigError, StageMissingError
from harmonic_nas.pretrain import (
    child_loss,
    distill_loss,
    evaluate_subnet,
    load_supernet,
    lr_at,
    pretrain_supernet,
    supernet_paths,
    train_standalone,
)
from harmonic_nas.tasks import task_loss


class _Kill(Exception):
    """Stands for the process being killed right after a checkpoint was written."""


def _killer(after_epoch: int) -> Any:
    def progress(task: str, completed: int, total: int) -> None:
        if task.endswith("epochs") and completed == after_epoch:
            raise _Kill

    return progress


def test_pretrain_writes_checkpoint_and_metrics(make_cfg: Any, dataset: MultimodalDataset) -> None:
    cfg = make_cfg()
    result = pretrain_supernet(cfg, dataset, "image")
    pt, js = supernet_paths(cfg, "image")
    assert (result.checkpoint, result.metrics_path) == (pt, js)
    assert result.status == "trained" and result.epochs == 2 and result.metric == "accuracy"
    ckpt = torch.load(pt, weights_only=True)  # plain containers + tensors only
    assert ckpt["preset"] == "avmnist" and ckpt["modality"] == "image"
    assert ckpt["complete"] is True and ckpt["epoch"] == 2
    assert ckpt["shape"] == [1, 12, 12] and ckpt["n_classes"] == 4
    assert isinstance(ckpt["rng"], torch.Tensor) and ckpt["rng"].dtype == torch.uint8
    assert "state" in ckpt["optimizer"]
    metrics = json.loads(js.read_text())
    assert metrics["schema_version"] == 1
    assert metrics["modality"] == "image" and metrics["preset"] == "avmnist"
    assert metrics["config_hash"] == ckpt["config_hash"]
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2]
    for e in metrics["epochs"]:
        assert {"epoch", "loss", "max_acc", "min_acc", "lr", "time_s"} <= set(e)
        assert 0.0 <= e["min_acc"] <= 1.0 and 0.0 <= e["max_acc"] <= 1.0
    assert metrics["final"]["max_acc"] == result.max_acc
    assert metrics["final"]["num_subnets"] == 7371
    # no stray temporary files from the atomic writes
    assert sorted(p.name for p in pt.parent.iterdir()) == ["image.json", "image.pt"]


def test_current_artifact_is_skipped_and_force_retrains(
    make_cfg: Any, dataset: MultimodalDataset
) -> None:
    cfg = make_cfg(epochs=1)
    first = pretrain_supernet(cfg, dataset, "vec")
    before = first.checkpoint.read_bytes()
    again = pretrain_supernet(cfg, dataset, "vec")
    assert again.status == "skipped" and again.max_acc == first.max_acc
    assert first.checkpoint.read_bytes() == before
    forced = pretrain_supernet(cfg, dataset, "vec", force=True)
    assert forced.status == "trained"
    # another config (here: the learning rate) makes the artifact stale: retrained from scratch
    stale = pretrain_supernet(make_cfg(epochs=1, lr=1e-3), dataset, "vec")
    assert stale.status == "trained"


def test_resume_after_a_kill_equals_an_uninterrupted_run(
    make_cfg: Any, make_ds: Any, tmp_path: Path
) -> None:
    ds = make_ds()
    # warmup_epochs=1: epoch 1 trains the max subnet alone, the channels are re-ordered before
    # epoch 2, so the resumed part crosses the phase boundary.
    cfg = make_cfg(epochs=3, warmup_epochs=1)
    other = cfg.model_copy(update={"run_dir": tmp_path / "other"})
    full = pretrain_supernet(other, ds, "image")
    with pytest.raises(_Kill):
        pretrain_supernet(cfg, ds, "image", progress=_killer(after_epoch=1))
    half = torch.load(supernet_paths(cfg, "image")[0], weights_only=True)
    assert half["epoch"] == 1 and half["complete"] is False
    with pytest.raises(StageMissingError, match="stopped at epoch 1 of 3"):
        load_supernet(cfg, "image")
    resumed = pretrain_supernet(cfg, ds, "image")
    assert resumed.status == "resumed"
    a = torch.load(supernet_paths(other, "image")[0], weights_only=True)
    b = torch.load(supernet_paths(cfg, "image")[0], weights_only=True)
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    assert [h["loss"] for h in full.history] == [h["loss"] for h in resumed.history]
    assert [h["max_acc"] for h in full.history] == [h["max_acc"] for h in resumed.history]


def test_each_step_trains_max_min_and_random_subnets_with_distillation(
    make_cfg: Any, dataset: MultimodalDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = make_cfg(epochs=1, warmup_epochs=0, n_random=2, batch_size=32)
    net = ElasticMobileNetV3("avmnist", 1, 4)
    active: list[Any] = []
    distilled: list[tuple[Any, ...]] = []
    original_set = ElasticMobileNetV3.set_active
    original_distill = losses.distill_loss

    def record_set(self: ElasticMobileNetV3, genome: Any) -> None:
        if self.training:
            active.append(genome)
        original_set(self, genome)

    def record_distill(logits: torch.Tensor, teacher: torch.Tensor, task: Any) -> torch.Tensor:
        distilled.append((teacher.requires_grad, logits.requires_grad))
        return original_distill(logits, teacher, task)

    monkeypatch.setattr(ElasticMobileNetV3, "set_active", record_set)
    monkeypatch.setattr(losses, "distill_loss", record_distill)
    pretrain_supernet(cfg, dataset, "image")
    steps = len(dataset.split("train")) // 32
    # the constructor activates the max subnet first, the end of the epoch re-activates it
    assert len(active) == 1 + 4 * steps + 1
    per_step = [active[1 + i * 4 : 5 + i * 4] for i in range(steps)]
    for group in per_step:
        assert group[0] == net.max_genome() and group[1] == net.min_genome()
        for g in group[2:]:
            net.validate(g)
    randoms = {g for group in per_step for g in group[2:]}
    assert len(randoms) > 1
    assert len(distilled) == 3 * steps  # min + 2 random children per step
    assert all(not teacher and student for teacher, student in distilled)


def test_full_phase_trains_only_the_max_subnet(
    make_cfg: Any, dataset: MultimodalDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = make_cfg(epochs=1, warmup_epochs=1)
    calls: list[int] = []
    monkeypatch.setattr(losses, "distill_loss", lambda *a: calls.append(1))
    result = pretrain_supernet(cfg, dataset, "image")
    assert calls == [] and result.history[0]["phase"] == "full"


def test_load_supernet_round_trip_and_errors(make_cfg: Any, dataset: MultimodalDataset) -> None:
    cfg = make_cfg(epochs=1)
    with pytest.raises(StageMissingError, match="harmonic-nas pretrain"):
        load_supernet(cfg, "image")
    pretrain_supernet(cfg, dataset, "image")
    model = load_supernet(cfg, "image", 4)
    assert isinstance(model, ElasticMobileNetV3) and not model.training
    ckpt = torch.load(supernet_paths(cfg, "image")[0], weights_only=True)
    for key, value in model.state_dict().items():
        assert torch.equal(value, ckpt["state_dict"][key])
    with pytest.raises(CheckpointError, match="has 4 classes but 7"):
        load_supernet(cfg, "image", 7)
    changed = make_cfg(epochs=2)
    with pytest.raises(CheckpointError, match="another config"):
        load_supernet(changed, "image")
    assert isinstance(load_supernet(changed, "image", strict=False), ElasticMobileNetV3)
    with pytest.raises(ConfigError, match="not in the config"):
        load_supernet(cfg, "depth")


def test_checkpoint_of_another_preset_or_modality_is_refused(
    make_cfg: Any, dataset: MultimodalDataset
) -> None:
    cfg = make_cfg(epochs=1)
    pretrain_supernet(cfg, dataset, "image")
    image_pt, _ = supernet_paths(cfg, "image")
    # another modality: the image checkpoint copied over the vec one
    vec_pt, _ = supernet_paths(cfg, "vec")
    vec_pt.write_bytes(image_pt.read_bytes())
    for call in (
        lambda: pretrain_supernet(cfg, dataset, "vec"),
        lambda: load_supernet(cfg, "vec"),
    ):
        with pytest.raises(CheckpointError) as info:
            call()
        msg = str(info.value)
        assert "modality 'image'" in msg and "modality 'vec'" in msg and "\n" not in msg
    # another preset for the same modality
    data = cfg.model_dump()
    data["modalities"]["image"]["preset"] = "mbv3-3stage"
    other = type(cfg).model_validate(data)
    with pytest.raises(CheckpointError, match=r"avmnist supernet .* mbv3-3stage supernet"):
        pretrain_supernet(other, dataset, "image")
    with pytest.raises(CheckpointError, match="--force"):
        load_supernet(other, "image")
    assert pretrain_supernet(other, dataset, "vec", force=True).status == "trained"


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
        lambda p: p.write_bytes(b"not a checkpoint"),
        lambda p: torch.save({"format": "harmonic-nas-supernet", "schema_version": 1}, p),
        lambda p: torch.save({"format": "something-else"}, p),
        lambda p: torch.save({"a": np.float64(1.0).__class__}, p),  # pickled global
    ],
)
def test_corrupt_checkpoint_is_a_one_line_error(
    make_cfg: Any, dataset: MultimodalDataset, damage: Any
) -> None:
    cfg = make_cfg(epochs=1)
    pretrain_supernet(cfg, dataset, "vec")
    pt, _ = supernet_paths(cfg, "vec")
    damage(pt)
    for call in (lambda: pretrain_supernet(cfg, dataset, "vec"), lambda: load_supernet(cfg, "vec")):
        with pytest.raises(CheckpointError) as info:
            call()
        assert str(info.value.args[0]).count("\n") == 0 and str(pt) in str(info.value)
    assert pretrain_supernet(cfg, dataset, "vec", force=True).status == "trained"


def test_unknown_modality_is_a_config_error(make_cfg: Any, dataset: MultimodalDataset) -> None:
    with pytest.raises(ConfigError, match="'depth' is not in the config"):
        pretrain_supernet(make_cfg(), dataset, "depth")


def test_maxout_supernet_trains_and_learns(make_cfg: Any, dataset: MultimodalDataset) -> None:
    result = pretrain_supernet(make_cfg(epochs=4, lr=1e-2), dataset, "vec")
    assert result.max_acc > 0.5 and result.max_acc == result.min_acc  # one subnet
    assert isinstance(load_supernet(make_cfg(epochs=4, lr=1e-2), "vec"), MaxoutMLP)


def test_multilabel_task_uses_bce_and_micro_f1(make_cfg: Any, make_ds: Any) -> None:
    ds = make_ds(task="multilabel")
    result = pretrain_supernet(make_cfg(epochs=2, lr=1e-2), ds, "vec")
    assert result.metric == "weighted_f1" and 0.0 <= result.max_metric <= 1.0


def test_lr_schedule_warms_up_then_decays_to_zero() -> None:
    lrs = [lr_at(s, 100, 10, 1.0) for s in range(101)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0) and lrs[100] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in itertools.pairwise(lrs[10:]))
    assert lr_at(0, 10, 0, 2.0) == pytest.approx(2.0)


def test_losses() -> None:
    logits = torch.randn(5, 4, requires_grad=True)
    teacher = logits.detach().clone()
    distill_loss(logits, teacher, "classification").backward()
    assert logits.grad is not None and logits.grad.abs().max() < 1e-6  # optimum at the teacher
    y = torch.tensor([0, 1, 2, 3, 0])
    hard = torch.full((5, 4), -30.0)
    hard[torch.arange(5), y] = 30.0
    torch.testing.assert_close(
        distill_loss(logits, hard, "classification"),
        task_loss(logits, y, "classification", 0.0),
    )
    assert task_loss(hard, y, "classification", 0.1) > task_loss(hard, y, "classification", 0.0)
    multi = torch.nn.functional.one_hot(y, 4).float()
    assert task_loss(hard, multi, "multilabel", 0.0) < 1e-6


def test_child_loss_mixes_distillation_and_labels(make_cfg: Any) -> None:
    logits, teacher = torch.randn(6, 4), torch.randn(6, 4)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    on, off = make_cfg().pretrain, make_cfg(distill=False).pretrain
    hard = task_loss(logits, y, "classification", on.label_smoothing)
    soft = distill_loss(logits, teacher, "classification")
    w = on.distill_weight
    torch.testing.assert_close(
        child_loss(logits, teacher, y, "classification", on), w * soft + (1 - w) * hard
    )
    torch.testing.assert_close(child_loss(logits, teacher, y, "classification", off), hard)


def test_train_standalone_learns_and_is_seeded(dataset: MultimodalDataset, make_cfg: Any) -> None:
    pcfg = make_cfg(lr=1e-2).pretrain
    tr, va = dataset.split("train"), dataset.split("val")
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        net = MaxoutMLP(20, 4)
        train_standalone(net, tr.inputs["vec"], tr.labels, pcfg, epochs=3, seed=1)
        results.append(evaluate_subnet(net, va.inputs["vec"], va.labels))
        assert not net.training
    assert results[0] == results[1] and results[0] > 0.5


def test_thread_setting_applies_during_training_only(
    make_cfg: Any, dataset: MultimodalDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The thread policy (``$HARMONIC_NAS_THREADS``, default 1) applies while training; the
    caller's setting is restored afterwards."""
    torch.set_num_threads(2)
    seen: set[int] = set()
    monkeypatch.delenv("HARMONIC_NAS_THREADS", raising=False)
    pretrain_supernet(
        make_cfg(epochs=1), dataset, "vec", progress=lambda *a: seen.add(torch.get_num_threads())
    )
    assert seen == {1} and torch.get_num_threads() == 2
    seen.clear()
    monkeypatch.setenv("HARMONIC_NAS_THREADS", "3")
    pretrain_supernet(
        make_cfg(epochs=1),
        dataset,
        "vec",
        force=True,
        progress=lambda *a: seen.add(torch.get_num_threads()),
    )
    assert seen == {3} and torch.get_num_threads() == 2


def test_child_loss_reads_distill_weight_from_the_config(make_cfg: Any) -> None:
    logits, teacher = torch.randn(6, 4), torch.randn(6, 4)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    pcfg = make_cfg(distill_weight=1.0).pretrain
    torch.testing.assert_close(
        child_loss(logits, teacher, y, "classification", pcfg),
        distill_loss(logits, teacher, "classification"),
    )
