"""Backbone presets: a registry of supernet geometries (one decorated function per preset).

``get_preset("ofa-mbv3-w1.2")`` scales a registered MobileNetV3 preset by a width multiplier (OFA
channel rounding), so any ``<preset>-w<mult>`` name works without registering it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from harmonic_nas.backbones.ops import make_divisible
from harmonic_nas.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MobileNetV3Preset:
    """Geometry of an elastic MobileNetV3 supernet (OFA layout).

    stem conv 3x3 s2 -> fixed MBConv k3 e1 -> elastic stages (each up to ``max(d_choices)`` MBConv
    blocks, first block strided) -> final expand 1x1 (BN) -> global avg pool -> feature mix 1x1
    (no BN) -> classifier.

    ``dims == 1`` is the 1-D family for ``(C, T)`` signals: every kernel is ``1 x k`` and every
    stride ``1 x s`` along time (the network sees the signal as ``(C, 1, T)``, so its feature maps
    and fusion points are shaped like an image's with height 1); ``input_sizes`` are ``(1, T)``.
    """

    name: str
    description: str
    input_sizes: tuple[tuple[int, int], ...]
    stem_width: int
    first_block_width: int
    stage_widths: tuple[int, ...]
    stage_strides: tuple[int, ...]
    stage_se: tuple[bool, ...]
    stage_acts: tuple[str, ...]
    final_expand_width: int
    feature_mix_width: int
    ks_choices: tuple[int, ...] = (3, 5, 7)
    e_choices: tuple[int, ...] = (3, 4, 6)
    d_choices: tuple[int, ...] = (2, 3, 4)
    stem_act: str = "hswish"
    first_block_act: str = "relu"
    head_act: str = "hswish"
    dropout: float = 0.1
    width_mult: float = 1.0
    family: str = "mobilenetv3"
    dims: int = 2

    def __post_init__(self) -> None:
        n = len(self.stage_widths)
        if not (len(self.stage_strides) == len(self.stage_se) == len(self.stage_acts) == n):
            raise ValueError(f"preset {self.name}: per-stage tuples must all have {n} entries")
        if min(self.d_choices) < 1:
            raise ValueError(f"preset {self.name}: depths must be >= 1")
        if self.dims not in (1, 2):
            raise ValueError(f"preset {self.name}: dims must be 1 (signals) or 2 (images)")

    @property
    def n_stages(self) -> int:
        return len(self.stage_widths)

    @property
    def max_depth(self) -> int:
        return max(self.d_choices)

    @property
    def n_slots(self) -> int:
        """Length of the ``ks`` and ``e`` genes: one per block slot (stages x max depth)."""
        return self.n_stages * self.max_depth

    def scaled(self, width_mult: float) -> MobileNetV3Preset:
        """This preset with every width multiplied (OFA rounding to multiples of 8)."""
        if self.width_mult != 1.0:
            raise ConfigError(
                f"preset {self.name} is already scaled; scale its base preset instead"
            )
        if not 0 < width_mult <= 4:
            raise ConfigError(f"width multiplier must be in (0, 4], got {width_mult:g}")
        w = width_mult
        first = make_divisible(self.first_block_width * w)
        return replace(
            self,
            name=f"{self.name}-w{w:g}",
            description=f"{self.description} (width x{w:g})",
            stem_width=first,
            first_block_width=first,
            stage_widths=tuple(make_divisible(c * w) for c in self.stage_widths),
            final_expand_width=make_divisible(self.final_expand_width * w),
            feature_mix_width=(
                make_divisible(self.feature_mix_width * w) if w > 1.0 else self.feature_mix_width
            ),
            width_mult=w,
        )


@dataclass(frozen=True)
class MaxoutPreset:
    """The paper's text/vector backbone: Maxout MLP in -> hidden... -> classes."""

    name: str
    description: str
    hidden: tuple[int, ...] = (128, 256)
    pieces: int = 4
    dropout: float = 0.3
    family: str = "maxout"


@dataclass(frozen=True)
class MLPPreset:
    """The elastic tabular backbone: an MLP of up to ``max(d_choices)`` hidden layers, each of
    width ``base_width x e`` (``e`` in ``e_choices``), then the classifier."""

    name: str
    description: str
    base_width: int = 32
    e_choices: tuple[int, ...] = (1, 2, 4)
    d_choices: tuple[int, ...] = (1, 2, 3)
    act: str = "relu"
    dropout: float = 0.1
    family: str = "mlp"

    def __post_init__(self) -> None:
        if self.base_width < 1 or min(self.e_choices) < 1 or min(self.d_choices) < 1:
            raise ValueError(f"preset {self.name}: widths and depths must be >= 1")

    @property
    def max_depth(self) -> int:
        return max(self.d_choices)


@dataclass(frozen=True)
class TextPreset:
    """The elastic raw-text backbone: a byte embedding (``vocab_size`` ids: pad, unknown and the
    256 byte values of ``harmonic_nas.data.tokenizer``) to ``embed_dim`` channels, then the 1-D
    MobileNetV3 preset ``backbone`` along the token axis (its genes are this preset's genes)."""

    name: str
    description: str
    embed_dim: int = 32
    backbone: str = "mbv3-1d"
    vocab_size: int = 258
    family: str = "text"


Preset = MobileNetV3Preset | MaxoutPreset | MLPPreset | TextPreset

#: the preset a modality kind gets by default (README "Data formats")
DEFAULT_PRESETS: dict[str, str] = {
    "image": "avmnist",
    "audio": "avmnist",
    "signal": "mbv3-1d",
    "vector": "mlp",
    "text": "text-1d",
}


#: the default of a ``text`` modality that holds precomputed feature vectors, not raw strings
TEXT_FEATURES_PRESET = "mlp"


def default_preset(kind: str, *, raw_text: bool = True) -> str:
    """The default backbone preset of a modality kind (``mlp`` for vectors / tables, ``mbv3-1d``
    for signals, ``avmnist`` for small images and spectrograms, ``text-1d`` for raw text;
    ``raw_text=False``: a ``text`` modality of precomputed feature vectors, ``mlp``, the paper's
    ``maxout`` being the other choice). What an omitted ``modalities.<m>.preset`` becomes."""
    if kind == "text" and not raw_text:
        return TEXT_FEATURES_PRESET
    return DEFAULT_PRESETS.get(kind, "mlp")


_REGISTRY: dict[str, Callable[[], Preset]] = {}
_SCALED = re.compile(r"^(?P<base>.+)-w(?P<mult>\d+(?:\.\d+)?)$")


def register_preset(name: str) -> Callable[[Callable[[], Preset]], Callable[[], Preset]]:
    """Decorator: register a zero-argument function returning a preset under ``name``."""

    def deco(fn: Callable[[], Preset]) -> Callable[[], Preset]:
        if name in _REGISTRY:
            raise ValueError(f"preset {name!r} is already registered")
        _REGISTRY[name] = fn
        return fn

    return deco


def list_presets() -> list[str]:
    """Names of the registered presets (any MobileNetV3 one also accepts a ``-w<mult>`` suffix)."""
    return sorted(_REGISTRY)


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (``<name>-w<mult>`` scales a MobileNetV3 preset)."""
    if name in _REGISTRY:
        return _REGISTRY[name]()
    match = _SCALED.match(name)
    if match and match["base"] in _REGISTRY:
        base = _REGISTRY[match["base"]]()
        if isinstance(base, MobileNetV3Preset):
            return base.scaled(float(match["mult"]))
    raise ConfigError(
        f"unknown backbone preset {name!r}; choose one of {', '.join(list_presets())} "
        "(a MobileNetV3 preset accepts a width suffix, e.g. ofa-mbv3-w1.2)"
    )


@register_preset("avmnist")
def _avmnist() -> Preset:
    # The Harmonic-NAS AV-MNIST geometry: key-compatible with the published Jetson LUTs.
    return MobileNetV3Preset(
        name="avmnist",
        description="AV-MNIST supernet (1x28x28 images, 1x20x20 audio): one elastic stage of 24 ch",
        input_sizes=((28, 28), (20, 20)),
        stem_width=16,
        first_block_width=16,
        stage_widths=(24,),
        stage_strides=(2,),
        stage_se=(False,),
        stage_acts=("relu",),
        final_expand_width=40,
        feature_mix_width=80,
    )


@register_preset("mbv3-3stage")
def _mbv3_3stage() -> Preset:
    # Three elastic stages for 112x112 images (the Harmonic-NAS Memes image supernet geometry).
    return MobileNetV3Preset(
        name="mbv3-3stage",
        description="3-stage MobileNetV3 supernet for 112x112 images",
        input_sizes=((112, 112),),
        stem_width=16,
        first_block_width=16,
        stage_widths=(24, 40, 80),
        stage_strides=(2, 2, 2),
        stage_se=(False, True, False),
        stage_acts=("relu", "relu", "hswish"),
        final_expand_width=112,
        feature_mix_width=160,
    )


@register_preset("ofa-mbv3")
def _ofa_mbv3() -> Preset:
    # OFA MobileNetV3-Large search space (width 1.0); ofa-mbv3-w1.2 is the MM-IMDB geometry.
    return MobileNetV3Preset(
        name="ofa-mbv3",
        description="OFA MobileNetV3 supernet, 5 stages, 224x224",
        input_sizes=((224, 224),),
        stem_width=16,
        first_block_width=16,
        stage_widths=(24, 40, 80, 112, 160),
        stage_strides=(2, 2, 2, 1, 2),
        stage_se=(False, True, False, True, True),
        stage_acts=("relu", "relu", "hswish", "hswish", "hswish"),
        final_expand_width=960,
        feature_mix_width=1280,
    )


@register_preset("mbv3-1d")
def _mbv3_1d() -> Preset:
    # MobileNetV3 blocks along time for (C, T) sensor signals (accelerometer, IMU, ECG, ...):
    # elastic kernel {3,5,7}, expand {3,4,6}, depth {2,3,4} per stage, like the 2-D presets.
    return MobileNetV3Preset(
        name="mbv3-1d",
        description="1-D MobileNetV3 supernet for (C, T) signals: 3 elastic stages along time",
        input_sizes=((1, 128),),
        stem_width=16,
        first_block_width=16,
        stage_widths=(24, 40, 64),
        stage_strides=(2, 2, 2),
        stage_se=(False, True, True),
        stage_acts=("relu", "hswish", "hswish"),
        final_expand_width=96,
        feature_mix_width=128,
        dims=1,
    )


@register_preset("mlp")
def _mlp() -> Preset:
    # Elastic width {32, 64, 128} per layer and depth {1, 2, 3}: the default for tables / vectors.
    return MLPPreset(
        name="mlp",
        description="elastic MLP for vectors / tables: 1-3 hidden layers of 32, 64 or 128 units",
    )


@register_preset("text-1d")
def _text_1d() -> Preset:
    return TextPreset(
        name="text-1d",
        description="raw text: byte embedding (32 channels) + the elastic 1-D mbv3-1d blocks",
    )


@register_preset("maxout")
def _maxout() -> Preset:
    return MaxoutPreset(
        name="maxout",
        description="Maxout MLP for text/vector features (in -> 128 -> 256 -> classes)",
    )
