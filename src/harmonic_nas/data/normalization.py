"""Standardisation with train statistics: one scalar per modality, or one per channel / feature.

Two modes, chosen per modality:

- ``scalar``: one mean and one std over every value of the train split (the default for images,
  audio and text features).
- ``none``: left as they are (token ids of raw text, which are indices, not measurements).
- ``channel``: one mean and std per channel (axis 0 of a sample: a signal's channel, an image's
  colour plane, a table's feature), over the train split's samples and remaining axes (the default
  for ``signal`` and ``vector`` modalities, where the channels have different units: an
  accelerometer's z axis carries the 9.81 gravity offset, a table mixes ages and incomes).

Only the train split's values are read. A channel that is constant in train has its scale floored
(std 1: it becomes 0 after centring) and a warning names it, once per process; a modality that is constant as a whole
is an error (it carries no information). The statistics are kept in ``dataset.meta["normalization"]``
(``{"mode", "mean", "std"}`` per modality; lists in ``channel`` mode) and the exported models apply
them inside their graph.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast, get_args

import torch

from harmonic_nas.data.types import ModalitySpec, Split
from harmonic_nas.errors import DataError

logger = logging.getLogger(__name__)

NormMode = Literal["scalar", "channel", "none"]
NORM_MODES: tuple[str, ...] = get_args(NormMode)

#: the mode a modality gets when neither its dataset nor the config chooses one
DEFAULT_MODE: dict[str, NormMode] = {
    "image": "scalar",
    "audio": "scalar",
    "text": "scalar",
    "vector": "channel",
    "signal": "channel",
}


#: the constant channels already named in this process, ``(dataset, modality, channels)``: each
#: stage and each rebuild or cache read of the same data would repeat the warning otherwise
_WARNED: set[tuple[str, str, tuple[int, ...]]] = set()


def default_mode(kind: str) -> NormMode:
    """The standardisation mode of a modality kind (``channel`` for signals and tables)."""
    return DEFAULT_MODE.get(kind, "scalar")


def _unit(spec: ModalitySpec) -> str:
    return "feature" if len(spec.shape) == 1 else "channel"


def _broadcast(values: torch.Tensor, sample_rank: int) -> torch.Tensor:
    """A per-channel vector shaped ``(C, 1, ..., 1)`` to broadcast over ``(N, C, ...)`` samples."""
    return values.reshape(-1, *([1] * (sample_rank - 1)))


def train_statistics(
    x: torch.Tensor, spec: ModalitySpec, mode: NormMode, dataset: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean, std)`` of the train tensor ``x`` (N, *shape) in float64: 0-d tensors in ``scalar``
    mode, ``(C,)`` in ``channel`` mode. Constant channels are floored (std 1) with a warning."""
    if x.numel() == 0:
        raise DataError(f"dataset '{dataset}': split 'train' is empty; add training samples")
    if mode == "none":
        return torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
    from harmonic_nas.data.core import MIN_RELATIVE_STD

    xd = x.double()
    whole_mean = xd.mean()
    whole_std = xd.std() if xd.numel() > 1 else torch.tensor(0.0, dtype=torch.float64)
    if not float(whole_std) > MIN_RELATIVE_STD * abs(float(whole_mean)):
        lo, hi = float(xd.min()), float(xd.max())
        what = f"every value is {lo:g}" if lo == hi else f"values span only [{lo:g}, {hi:g}]"
        raise DataError(
            f"dataset '{dataset}': modality '{spec.name}' is constant in split 'train' "
            f"({what}), so it carries no information and cannot be standardised; fix the "
            "files or drop the modality"
        )
    if mode == "scalar":
        return whole_mean, whole_std
    flat = xd.transpose(0, 1).reshape(xd.shape[1], -1)
    mean = flat.mean(dim=1)
    std = flat.std(dim=1) if flat.shape[1] > 1 else torch.zeros_like(mean)
    constant = ~(std > MIN_RELATIVE_STD * mean.abs())
    if bool(constant.all()):
        raise DataError(
            f"dataset '{dataset}': every {_unit(spec)} of modality '{spec.name}' is constant in "
            "split 'train', so it carries no information per channel; use "
            f"modalities.{spec.name}.normalization: scalar, fix the files or drop the modality"
        )
    if bool(constant.any()):
        idx = constant.nonzero(as_tuple=True)[0].tolist()
        shown = ", ".join(str(i) for i in idx[:8]) + (" ..." if len(idx) > 8 else "")
        key = (dataset, spec.name, tuple(idx))
        log = logger.debug if key in _WARNED else logger.warning  # once per process
        _WARNED.add(key)
        log(
            "dataset '%s': modality '%s' has %d constant %s(s) in train (%s %s); their scale is "
            "floored to 1, so they are 0 after centring",
            dataset,
            spec.name,
            len(idx),
            _unit(spec),
            _unit(spec),
            shown,
        )
        std = torch.where(constant, torch.ones_like(std), std)
    return mean, std


def _stats_json(mode: NormMode, mean: torch.Tensor, std: torch.Tensor) -> dict[str, Any]:
    if mode in ("scalar", "none"):
        return {"mode": mode, "mean": float(mean), "std": float(std)}
    return {
        "mode": "channel",
        "mean": [float(v) for v in mean.tolist()],
        "std": [float(v) for v in std.tolist()],
    }


def stats_tensors(stats: Mapping[str, Any], sample_rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean, std)`` float64 tensors of one modality's recorded statistics, shaped to broadcast
    over a batch ``(N, *shape)`` (0-d for ``scalar``, ``(C, 1, ..., 1)`` for ``channel``)."""
    mean = torch.as_tensor(stats.get("mean", 0.0), dtype=torch.float64)
    std = torch.as_tensor(stats.get("std", 1.0), dtype=torch.float64)
    if mean.dim() == 1:
        mean, std = _broadcast(mean, sample_rank), _broadcast(std, sample_rank)
    return mean, std


def _check_mode(spec: ModalitySpec, mode: str, dataset: str) -> NormMode:
    if mode not in NORM_MODES:
        raise DataError(
            f"dataset '{dataset}': unknown normalisation '{mode}' for modality '{spec.name}'; "
            f"use one of {', '.join(NORM_MODES)}"
        )
    return cast(NormMode, mode)


def normalize_by_train(
    splits: dict[str, Split],
    modalities: Sequence[ModalitySpec],
    dataset: str,
    modes: Mapping[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Standardise every modality in place with the train split's statistics.

    ``modes`` chooses ``scalar`` or ``channel`` per modality (default: :func:`default_mode` of its
    kind). Returns ``{modality: {"mode", "mean", "std"}}`` (kept in ``dataset.meta`` so that
    deployed models apply the same preprocessing).
    """
    from harmonic_nas.data.core import check_finite, check_sample_shape

    for spec in modalities:
        check_sample_shape(spec, dataset)
    for split, s in splits.items():
        for spec in modalities:
            if spec.name in s.inputs:
                check_finite(s.inputs[spec.name], spec.name, split, dataset)
    stats: dict[str, dict[str, Any]] = {}
    for spec in modalities:
        mode = _check_mode(spec, (modes or {}).get(spec.name) or default_mode(spec.kind), dataset)
        mean, std = train_statistics(splits["train"].inputs[spec.name], spec, mode, dataset)
        stats[spec.name] = _stats_json(mode, mean, std)
        m, sd = stats_tensors(stats[spec.name], len(spec.shape))
        for s in splits.values():
            s.inputs[spec.name] = ((s.inputs[spec.name].double() - m) / sd).float()
    return stats


def restandardise(
    splits: dict[str, Split],
    modalities: Sequence[ModalitySpec],
    stats: dict[str, dict[str, Any]],
    modes: Mapping[str, str],
    dataset: str,
) -> list[str]:
    """Change the mode of already standardised modalities (``modes``: the wanted mode of some):
    undo the recorded statistics, then standardise again with train statistics in the new mode.
    ``stats`` is updated in place; returns the modalities that changed."""
    changed: list[str] = []
    for spec in modalities:
        want = modes.get(spec.name)
        if want is None:
            continue
        mode = _check_mode(spec, want, dataset)
        old = stats.get(spec.name) or {"mode": "scalar", "mean": 0.0, "std": 1.0}
        if old.get("mode", "scalar") == mode:
            continue
        m, sd = stats_tensors(old, len(spec.shape))
        raw = {k: s.inputs[spec.name].double() * sd + m for k, s in splits.items()}
        mean, std = train_statistics(raw["train"], spec, mode, dataset)
        stats[spec.name] = _stats_json(mode, mean, std)
        m2, sd2 = stats_tensors(stats[spec.name], len(spec.shape))
        for k, s in splits.items():
            s.inputs[spec.name] = ((raw[k] - m2) / sd2).float()
        changed.append(spec.name)
    return changed


__all__ = [
    "DEFAULT_MODE",
    "NORM_MODES",
    "NormMode",
    "default_mode",
    "normalize_by_train",
    "restandardise",
    "stats_tensors",
    "train_statistics",
]
