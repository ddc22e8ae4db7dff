"""The paper's text / vector backbone: a Maxout MLP (in -> 128 -> 256 -> classes, k = 4, BN, dropout).

It has no elastic dimension: its search space holds one subnet, with the empty genome. It offers the
supernet interface anyway (sample, extract, ...) so the search treats every modality alike.
"""

from __future__ import annotations

import copy
import itertools
import logging
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from harmonic_nas.backbones.genome import BackboneGenome
from harmonic_nas.backbones.layers import LayerSpec
from harmonic_nas.backbones.ops import MaxoutBlock
from harmonic_nas.backbones.presets import MaxoutPreset, get_preset
from harmonic_nas.errors import ConfigError, GenomeError

logger = logging.getLogger(__name__)

EMPTY_GENOME = BackboneGenome()


class MaxoutMLP(nn.Module):
    """Maxout MLP; ``forward`` returns ``(hidden activations, logits)``: the hidden layers are the
    fusion points."""

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        *,
        preset: str | MaxoutPreset = "maxout",
        modality: str = "",
    ) -> None:
        super().__init__()
        p = get_preset(preset) if isinstance(preset, str) else preset
        if not isinstance(p, MaxoutPreset):
            raise ConfigError(f"preset {p.name!r} is not a Maxout preset; use build_supernet()")
        if in_features < 1 or n_classes < 1:
            raise ConfigError(
                f"a Maxout MLP needs >= 1 input feature and >= 1 class, got {in_features}, {n_classes}"
            )
        self.preset: MaxoutPreset = p
        self.in_features, self.n_classes, self.modality = in_features, n_classes, modality
        self.in_channels = in_features
        self.genome = EMPTY_GENOME
        widths = (in_features, *p.hidden)
        self.hidden = nn.ModuleList(
            MaxoutBlock(a, b, p.pieces, p.dropout) for a, b in itertools.pairwise(widths)
        )
        self.classifier = nn.Linear(widths[-1], n_classes)

    def forward(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        h = torch.flatten(x, 1)
        if h.shape[1] != self.in_features:
            raise ValueError(f"expected {self.in_features} input features, got {h.shape[1]}")
        features = []
        for layer in self.hidden:
            h = layer(h)
            features.append(h)
        return features, self.classifier(h)

    # --- the (trivial) supernet interface -----------------------------------------------------

    def validate(self, genome: BackboneGenome) -> None:
        if not isinstance(genome, BackboneGenome) or genome != EMPTY_GENOME:
            raise GenomeError(
                f"the Maxout backbone has no elastic genes; its genome must be empty, got {genome}"
            )

    def set_active(self, genome: BackboneGenome) -> None:
        self.validate(genome)

    def active_genome(self) -> BackboneGenome:
        return EMPTY_GENOME

    def sample(self, rng: np.random.Generator) -> BackboneGenome:
        return EMPTY_GENOME

    def max_genome(self) -> BackboneGenome:
        return EMPTY_GENOME

    def min_genome(self) -> BackboneGenome:
        return EMPTY_GENOME

    def num_subnets(self) -> int:
        return 1

    def extract(self, genome: BackboneGenome) -> MaxoutMLP:
        """A copy with its own weights (the only subnet)."""
        self.validate(genome)
        return copy.deepcopy(self)

    def layer_configs(self, *args: Any) -> list[LayerSpec]:
        """Costed layers: one ``maxout`` spec per hidden layer (expand = pieces) and the classifier.

        Accepts ``layer_configs(input_shape)`` or ``layer_configs(genome, input_shape)``.
        """
        if len(args) == 2:
            self.validate(args[0])
            args = args[1:]
        if len(args) != 1:
            raise TypeError("layer_configs(input_shape) or layer_configs(genome, input_shape)")
        shape = tuple(args[0])
        n = int(np.prod(shape)) if shape else 0
        if n != self.in_features:
            raise ConfigError(
                f"input shape {shape} has {n} features but this Maxout backbone expects "
                f"{self.in_features}; pass ({self.in_features},)"
            )
        specs = []
        width = self.in_features
        for out in self.preset.hidden:
            specs.append(
                LayerSpec("maxout", (width,), width, out, expand=self.preset.pieces, act="maxout")
            )
            width = out
        specs.append(LayerSpec("linear", (width,), width, self.n_classes, act="none"))
        return specs

    def describe(self) -> dict[str, Any]:
        return {
            "family": "maxout",
            "preset": self.preset.name,
            "modality": self.modality,
            "in_channels": self.in_features,
            "n_classes": self.n_classes,
        }
