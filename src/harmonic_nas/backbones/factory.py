"""``build_supernet``: the one place a modality's (kind, shape, preset) becomes a supernet."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any, Protocol

from harmonic_nas.backbones.elastic import ElasticMobileNetV3
from harmonic_nas.backbones.maxout import MaxoutMLP
from harmonic_nas.backbones.presets import (
    MaxoutPreset,
    MLPPreset,
    MobileNetV3Preset,
    Preset,
    TextPreset,
    get_preset,
)
from harmonic_nas.backbones.tabular import ElasticMLP
from harmonic_nas.backbones.text import ElasticTextNet
from harmonic_nas.errors import ConfigError

logger = logging.getLogger(__name__)

Supernet = ElasticMobileNetV3 | MaxoutMLP | ElasticMLP | ElasticTextNet

IMAGE_LIKE = ("image", "audio")
VECTOR_LIKE = ("text", "vector")


class _HasKindShape(Protocol):
    @property
    def kind(self) -> Any: ...

    @property
    def shape(self) -> Any: ...


def build_supernet(
    spec: _HasKindShape | tuple[str | None, Sequence[int]],
    preset: str,
    n_classes: int,
    modality: str = "",
) -> Supernet:
    """The supernet of one modality.

    ``spec`` has ``kind`` (image|audio|text|vector, or None to infer from the shape rank) and
    ``shape`` ((C, H, W) or (D,)), e.g. a ``data.ModalitySpec`` or ``config.ModalityConfig``;
    a ``(kind, shape)`` tuple works too. MobileNetV3 presets need a (C, H, W) input, the Maxout
    preset a flat (D,) one (any other shape is flattened: D = product of dims).
    """
    if isinstance(spec, tuple):
        kind, shape = spec[0], tuple(int(s) for s in spec[1])
    else:
        kind, shape = spec.kind, tuple(int(s) for s in spec.shape)
    where = f"modality {modality!r}: " if modality else ""
    if not shape or any(s <= 0 for s in shape):
        raise ConfigError(f"{where}invalid input shape {shape}; give (C, H, W) or (D,)")
    p = get_preset(preset)
    check_preset_fits(p, kind, shape, where)
    if isinstance(p, MobileNetV3Preset):
        return ElasticMobileNetV3(p, shape[0], n_classes, modality=modality)
    if isinstance(p, TextPreset):
        return ElasticTextNet(shape[0], n_classes, preset=p, modality=modality)
    if isinstance(p, MLPPreset):
        return ElasticMLP(math.prod(shape), n_classes, preset=p, modality=modality)
    assert isinstance(p, MaxoutPreset)
    if kind in IMAGE_LIKE and len(shape) == 3:
        logger.info("%sMaxout backbone on a %s input: it is flattened", where, kind)
    return MaxoutMLP(math.prod(shape), n_classes, preset=p, modality=modality)


def check_preset_fits(p: Preset, kind: str | None, shape: tuple[int, ...], where: str = "") -> None:
    """One-line :class:`ConfigError` unless preset ``p`` can take a ``kind`` input of ``shape``:
    a 2-D MobileNetV3 preset needs (C, H, W) image/audio, a 1-D one (``mbv3-1d``) a (C, T)
    signal; ``maxout`` takes anything, flattened."""
    if isinstance(p, TextPreset):
        if kind not in (None, "text") or len(shape) != 1:
            what = f"{kind} of shape" if kind else "of shape"
            raise ConfigError(
                f"{where}preset {p.name} reads raw text (token ids of shape (L,)) but the "
                f"modality is {what} {list(shape)}; store the text as strings or choose another "
                "preset"
            )
        return
    if not isinstance(p, MobileNetV3Preset):
        return
    if p.dims == 1:
        if kind not in (None, "signal") or len(shape) != 2:
            what = f"{kind} of shape" if kind else "of shape"
            raise ConfigError(
                f"{where}preset {p.name} is a 1-D CNN for (C, T) signals but the modality is "
                f"{what} {list(shape)}; give a signal as (channels, time) or choose another preset"
            )
        return
    if kind == "signal":
        raise ConfigError(
            f"{where}preset {p.name} is a 2-D CNN but the modality is a signal of shape "
            f"{list(shape)}; use preset 'mbv3-1d' for (C, T) signals"
        )
    if kind in VECTOR_LIKE or len(shape) != 3:
        raise ConfigError(
            f"{where}preset {p.name} is a CNN for (C, H, W) inputs but the modality is "
            f"{kind or 'a vector'} of shape {shape}; use preset "
            + ("'mbv3-1d' for a (C, T) signal" if len(shape) == 2 else "'mlp' or 'maxout'")
            + " or a 3-D shape"
        )
