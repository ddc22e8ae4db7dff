"""Supernet checkpoints: plain containers + tensors, written atomically, read with weights_only.

One file per modality, ``<run>/supernets/<modality>.pt``, rewritten after every epoch; it is the
final artifact once ``complete`` is true. Content::

    {"format": "harmonic-nas-supernet", "schema_version": 1,
     "preset", "modality", "kind", "shape", "n_classes", "config_hash",
     "epoch" (epochs done), "epochs" (planned), "complete",
     "state_dict", "optimizer" (state_dict), "rng" (uint8 tensor: torch generator state),
     "history" (list of per-epoch dicts)}
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from harmonic_nas.errors import CheckpointError
from harmonic_nas.utils.io import atomic_torch_save

if TYPE_CHECKING:
    from harmonic_nas.config import ExperimentConfig

logger = logging.getLogger(__name__)

#: pretrain keys that say how training runs, not what it trains (left out of the hash)
EXECUTION_KEYS = ("threads", "workers")


def pretrain_hash(cfg: ExperimentConfig, modality: str) -> str:
    """Content hash of what a modality's supernet depends on: its modality entry, the pretrain
    and dataset sections, the seed and ``fusion.fusion_split`` when it carves train (other
    modalities do not invalidate it; nor does the ``compute`` section: where, on how many ranks
    and in which precision it trained)."""
    data = cfg.model_dump(mode="json")
    # how the training is run (threads, processes) is not what is trained
    pretrain = {k: v for k, v in data["pretrain"].items() if k not in EXECUTION_KEYS}
    payload = {
        "modality": modality,
        "spec": data["modalities"][modality],
        "pretrain": pretrain,
        "dataset": data["dataset"],
        "seed": cfg.seed,
    }
    if cfg.fusion.fusion_split > 0:  # the supernets train without the fusion split
        payload["fusion_split"] = cfg.fusion.fusion_split
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


CHECKPOINT_FORMAT = "harmonic-nas-supernet"
CHECKPOINT_SCHEMA_VERSION = 1
METRICS_SCHEMA_VERSION = 1

_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "preset": str,
    "modality": str,
    "kind": str,
    "shape": list,
    "n_classes": int,
    "config_hash": str,
    "epoch": int,
    "epochs": int,
    "complete": bool,
    "state_dict": dict,
    "history": list,
}


def supernet_paths(cfg: ExperimentConfig, modality: str) -> tuple[Path, Path]:
    """``(<run>/supernets/<modality>.pt, <run>/supernets/<modality>.json)``."""
    base = cfg.run_path / "supernets"
    return base / f"{modality}.pt", base / f"{modality}.json"


def save_checkpoint(path: Path, payload: dict[str, Any]) -> Path:
    """Write a checkpoint atomically (a kill never leaves a half-written file)."""
    body = {"format": CHECKPOINT_FORMAT, "schema_version": CHECKPOINT_SCHEMA_VERSION, **payload}
    return atomic_torch_save(path, body)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load and structurally check a checkpoint; any problem is a one-line CheckpointError."""
    path = Path(path)
    fix = "delete it, or rerun `harmonic-nas pretrain CONFIG --force`"
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except Exception as exc:  # truncated zip, garbage, pickled code objects, ...
        raise CheckpointError(
            f"checkpoint {path} is corrupt or unsafe to load ({exc.__class__.__name__}); {fix}"
        ) from None
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a harmonic-nas supernet checkpoint; {fix}")
    if obj.get("schema_version") != CHECKPOINT_SCHEMA_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has schema_version {obj.get('schema_version')!r}, expected "
            f"{CHECKPOINT_SCHEMA_VERSION}; {fix}"
        )
    for key, typ in _REQUIRED.items():
        if not isinstance(obj.get(key), typ):
            raise CheckpointError(f"checkpoint {path} lacks a valid '{key}' entry; {fix}")
    if not all(isinstance(v, torch.Tensor) for v in obj["state_dict"].values()):
        raise CheckpointError(f"checkpoint {path} has a malformed state_dict; {fix}")
    return obj


def check_identity(ckpt: dict[str, Any], path: Path, *, preset: str, modality: str) -> None:
    """A checkpoint of another preset or modality is an error, not something to load or overwrite."""
    if ckpt["modality"] != modality or ckpt["preset"] != preset:
        raise CheckpointError(
            f"checkpoint {path} holds the {ckpt['preset']} supernet of modality "
            f"'{ckpt['modality']}', but the config asks for the {preset} supernet of modality "
            f"'{modality}'; move that file away or pass --force to retrain"
        )
