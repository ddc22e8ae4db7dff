"""Supernet pretraining: sandwich rule + in-place distillation, checkpoints, BN recalibration.

Modules: :mod:`.trainer` (the resumable loop), :mod:`.losses` (LR schedule, distillation,
optimizer), :mod:`.evaluation` (scoring one subnet), :mod:`.standalone` (one network alone),
:mod:`.checkpoint` (the artifact and its identity hash), :mod:`.loading` (reading it back),
:mod:`.bn` (BN recalibration), :mod:`.rng`, :mod:`.parallel` (modalities side by side),
:mod:`.distributed` (one supernet across torchrun ranks). The task loss and metric are
:mod:`harmonic_nas.tasks`.
"""

from __future__ import annotations

from harmonic_nas.pretrain.bn import bn_recalibrate, calibration_generator
from harmonic_nas.pretrain.checkpoint import (
    CHECKPOINT_FORMAT,
    pretrain_hash,
    read_checkpoint,
    save_checkpoint,
    supernet_paths,
)
from harmonic_nas.pretrain.evaluation import evaluate_subnet, extract_calibrated
from harmonic_nas.pretrain.loading import check_supernet, load_supernet
from harmonic_nas.pretrain.losses import child_loss, distill_loss, lr_at, make_optimizer
from harmonic_nas.pretrain.parallel import pretrain_all, pretrain_workers
from harmonic_nas.pretrain.standalone import train_standalone
from harmonic_nas.pretrain.trainer import PretrainResult, pretrain_supernet

__all__ = [
    "CHECKPOINT_FORMAT",
    "PretrainResult",
    "bn_recalibrate",
    "calibration_generator",
    "check_supernet",
    "child_loss",
    "distill_loss",
    "evaluate_subnet",
    "extract_calibrated",
    "load_supernet",
    "lr_at",
    "make_optimizer",
    "pretrain_all",
    "pretrain_hash",
    "pretrain_supernet",
    "pretrain_workers",
    "read_checkpoint",
    "save_checkpoint",
    "supernet_paths",
    "train_standalone",
]
