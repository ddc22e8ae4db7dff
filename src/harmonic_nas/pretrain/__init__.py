"""Supernet pretraining: sandwich rule + in-place distillation, checkpoints, BN recalibration."""

from __future__ import annotations

from harmonic_nas.pretrain.bn import bn_recalibrate, calibration_generator
from harmonic_nas.pretrain.checkpoint import (
    CHECKPOINT_FORMAT,
    read_checkpoint,
    save_checkpoint,
    supernet_paths,
)
from harmonic_nas.pretrain.parallel import pretrain_all, pretrain_workers
from harmonic_nas.pretrain.trainer import (
    PretrainResult,
    distill_loss,
    evaluate,
    extract_calibrated,
    load_supernet,
    lr_at,
    make_optimizer,
    pretrain_hash,
    pretrain_supernet,
    task_loss,
    train_standalone,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "PretrainResult",
    "bn_recalibrate",
    "calibration_generator",
    "distill_loss",
    "evaluate",
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
    "task_loss",
    "train_standalone",
]
