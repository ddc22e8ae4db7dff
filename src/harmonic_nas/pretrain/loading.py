"""Loading a trained supernet from its checkpoint, with every identity check."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import torch

from harmonic_nas.backbones import Supernet, build_supernet
from harmonic_nas.errors import CheckpointError, ConfigError, StageMissingError
from harmonic_nas.pretrain.checkpoint import (
    check_identity,
    pretrain_hash,
    read_checkpoint,
    supernet_paths,
)
from harmonic_nas.utils.device import compute_device

if TYPE_CHECKING:
    from harmonic_nas.config import ExperimentConfig

logger = logging.getLogger(__name__)


def check_supernet(cfg: ExperimentConfig, modality: str, *, strict: bool = True) -> dict[str, Any]:
    """The checkpoint of ``modality``'s supernet after every check that needs no dataset (it
    exists, is finished, of this preset and modality and, ``strict``, of this config), so that
    a search refuses before it starts; one-line errors as :func:`load_supernet`'s."""
    if modality not in cfg.modalities:
        raise ConfigError(
            f"modality '{modality}' is not in the config; choose one of {sorted(cfg.modalities)}"
        )
    mcfg = cfg.modalities[modality]
    pt_path, _ = supernet_paths(cfg, modality)
    if not pt_path.exists():
        raise StageMissingError(
            f"no pretrained supernet for modality '{modality}' ({pt_path}); "
            "run `harmonic-nas pretrain CONFIG` first"
        )
    ckpt = read_checkpoint(pt_path)
    check_identity(ckpt, pt_path, preset=mcfg.preset, modality=modality)
    if not ckpt["complete"]:
        raise StageMissingError(
            f"pretraining of modality '{modality}' stopped at epoch {ckpt['epoch']} of "
            f"{ckpt['epochs']}; rerun `harmonic-nas pretrain CONFIG` to resume it"
        )
    if strict and ckpt["config_hash"] != pretrain_hash(cfg, modality):
        raise CheckpointError(
            f"checkpoint {pt_path} was trained with another config (pretrain/dataset/modality "
            "settings or seed changed); rerun `harmonic-nas pretrain CONFIG`"
        )
    return ckpt


def load_supernet(
    cfg: ExperimentConfig,
    modality: str,
    n_classes: int | None = None,
    *,
    strict: bool = True,
    device: torch.device | None = None,
) -> Supernet:
    """The trained supernet of ``modality`` (eval mode, max subnet active).

    Errors (one line): no checkpoint or an unfinished one -> StageMissingError; corrupt, of
    another preset/modality/class count, or (``strict``) trained with another config ->
    CheckpointError.
    """
    ckpt = check_supernet(cfg, modality, strict=strict)
    mcfg = cfg.modalities[modality]
    pt_path, _ = supernet_paths(cfg, modality)
    if n_classes is not None and ckpt["n_classes"] != n_classes:
        raise CheckpointError(
            f"checkpoint {pt_path} has {ckpt['n_classes']} classes but {n_classes} were "
            "expected; rerun `harmonic-nas pretrain CONFIG --force`"
        )
    if tuple(ckpt["shape"]) != tuple(mcfg.shape):
        raise CheckpointError(
            f"checkpoint {pt_path} was trained on inputs of shape {tuple(ckpt['shape'])} but the "
            f"config says {tuple(mcfg.shape)}; rerun `harmonic-nas pretrain CONFIG --force`"
        )
    model = build_supernet((ckpt["kind"], ckpt["shape"]), mcfg.preset, ckpt["n_classes"], modality)
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise CheckpointError(
            f"checkpoint {pt_path} does not fit the {mcfg.preset} supernet ({first[:120]}); "
            "rerun `harmonic-nas pretrain CONFIG --force`"
        ) from None
    device = compute_device(cfg) if device is None else device
    return model.to(device).eval()
