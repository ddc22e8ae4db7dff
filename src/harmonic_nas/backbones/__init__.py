"""Backbones: elastic MobileNetV3 supernets (OFA style) + presets, genomes and their gene space,
subnet extraction, and the Maxout MLP for text/vector modalities."""

from __future__ import annotations

from harmonic_nas.backbones.elastic import ElasticMobileNetV3
from harmonic_nas.backbones.factory import Supernet, build_supernet
from harmonic_nas.backbones.genome import BackboneGenome
from harmonic_nas.backbones.layers import LayerKind, LayerSpec
from harmonic_nas.backbones.maxout import MaxoutMLP
from harmonic_nas.backbones.ops import build_layer, make_divisible
from harmonic_nas.backbones.presets import (
    MaxoutPreset,
    MLPPreset,
    MobileNetV3Preset,
    Preset,
    TextPreset,
    default_preset,
    get_preset,
    list_presets,
    register_preset,
)
from harmonic_nas.backbones.space import BackboneSpace
from harmonic_nas.backbones.static import StaticBackbone, mbv3_layer_specs
from harmonic_nas.backbones.tabular import ElasticMLP, StaticMLP
from harmonic_nas.backbones.text import ElasticTextNet

__all__ = [
    "BackboneGenome",
    "BackboneSpace",
    "ElasticMLP",
    "ElasticMobileNetV3",
    "ElasticTextNet",
    "LayerKind",
    "LayerSpec",
    "MLPPreset",
    "MaxoutMLP",
    "MaxoutPreset",
    "MobileNetV3Preset",
    "Preset",
    "StaticBackbone",
    "StaticMLP",
    "Supernet",
    "TextPreset",
    "build_layer",
    "build_supernet",
    "default_preset",
    "get_preset",
    "list_presets",
    "make_divisible",
    "mbv3_layer_specs",
    "register_preset",
]
