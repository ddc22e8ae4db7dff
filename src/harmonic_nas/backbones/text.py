"""The elastic raw-text backbone: token embedding + the elastic 1-D MobileNetV3 blocks.

Input: ``(B, L)`` token ids of :mod:`harmonic_nas.data.tokenizer` (carried as float32 values and
cast back to integer ids here: they index the embedding, they are never used as magnitudes). The
embedding maps each id to ``embed_dim`` channels, giving a ``(B, E, L)`` sequence that the 1-D body
(``preset.backbone``, e.g. ``mbv3-1d``) reads like a signal. The genome is the body's genome;
extraction copies the embedding and extracts the body, so it is exact.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from torch import Tensor, nn

from harmonic_nas.backbones.elastic import ElasticMobileNetV3
from harmonic_nas.backbones.genome import BackboneGenome
from harmonic_nas.backbones.layers import LayerSpec
from harmonic_nas.backbones.presets import MobileNetV3Preset, TextPreset, get_preset
from harmonic_nas.backbones.static import StaticBackbone, mbv3_layer_specs
from harmonic_nas.errors import ConfigError

logger = logging.getLogger(__name__)


class TokenEmbedding(nn.Module):
    """Token ids ``(B, L)`` (float or int) -> ``(B, E, L)`` embeddings; out-of-range ids clamp."""

    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.embed = nn.Embedding(vocab_size, dim)

    def forward(self, x: Tensor) -> Tensor:
        ids = x.long().clamp(0, self.vocab_size - 1)
        return self.embed(ids).transpose(1, 2)


def _body_preset(p: TextPreset) -> MobileNetV3Preset:
    body = get_preset(p.backbone)
    if not isinstance(body, MobileNetV3Preset) or body.dims != 1:
        raise ConfigError(f"text preset {p.name}: its backbone {p.backbone} must be a 1-D preset")
    return body


def text_layer_specs(
    preset: TextPreset, genome: BackboneGenome, shape: tuple[int, ...], n_classes: int
) -> list[LayerSpec]:
    """Costed layers: the embedding lookup, then the 1-D body's layers on ``(E, L)``."""
    if len(shape) != 1:
        raise ConfigError(f"a text backbone takes (L,) token ids, got shape {tuple(shape)}")
    length = int(shape[0])
    emb = LayerSpec("embedding", (length,), preset.vocab_size, preset.embed_dim, act="none")
    body = mbv3_layer_specs(
        _body_preset(preset), genome, preset.embed_dim, n_classes, (preset.embed_dim, length)
    )
    return [emb, *body]


class StaticTextNet(nn.Module):
    """A fixed text subnet: embedding + static 1-D body; ``forward`` -> (features, logits)."""

    def __init__(
        self, preset: TextPreset, embedding: TokenEmbedding, body: StaticBackbone, length: int
    ) -> None:
        super().__init__()
        self.preset, self.embedding, self.body, self.length = preset, embedding, body, length
        self.genome = body.genome
        self.modality = body.modality

    def forward(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        features, logits = self.body(self.embedding(x))
        return features, logits

    def layer_configs(self, input_shape: tuple[int, ...]) -> list[LayerSpec]:
        return text_layer_specs(self.preset, self.genome, tuple(input_shape), self.body.n_classes)


class ElasticTextNet(nn.Module):
    """The text supernet: shared embedding + elastic 1-D body (the body's genes)."""

    def __init__(
        self,
        length: int,
        n_classes: int,
        *,
        preset: str | TextPreset = "text-1d",
        modality: str = "",
    ) -> None:
        super().__init__()
        p = get_preset(preset) if isinstance(preset, str) else preset
        if not isinstance(p, TextPreset):
            raise ConfigError(f"preset {p.name!r} is not a text preset; use build_supernet()")
        if length < 1 or n_classes < 1:
            raise ConfigError(
                f"a text backbone needs >= 1 token and >= 1 class, got {length}, {n_classes}"
            )
        self.preset: TextPreset = p
        self.length, self.in_channels, self.n_classes = length, length, n_classes
        self.modality = modality
        self.embedding = TokenEmbedding(p.vocab_size, p.embed_dim)
        self.body = ElasticMobileNetV3(_body_preset(p), p.embed_dim, n_classes, modality=modality)
        self.space = self.body.space

    def validate(self, genome: BackboneGenome) -> None:
        self.body.validate(genome)

    def set_active(self, genome: BackboneGenome) -> None:
        self.body.set_active(genome)

    def active_genome(self) -> BackboneGenome:
        return self.body.active_genome()

    def sample(self, rng: np.random.Generator) -> BackboneGenome:
        return self.body.sample(rng)

    def max_genome(self) -> BackboneGenome:
        return self.body.max_genome()

    def min_genome(self) -> BackboneGenome:
        return self.body.min_genome()

    def num_subnets(self) -> int:
        return self.body.num_subnets()

    def forward(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        features, logits = self.body(self.embedding(x))
        return features, logits

    def extract(self, genome: BackboneGenome) -> StaticTextNet:
        """The static subnet of ``genome``: a copy of the embedding + the extracted body."""
        body = self.body.extract(genome)
        emb = TokenEmbedding(self.preset.vocab_size, self.preset.embed_dim)
        emb.load_state_dict(self.embedding.state_dict())
        net = StaticTextNet(
            self.preset, emb.to(self.embedding.embed.weight.device), body, self.length
        )
        net.train(self.training)
        return net

    def layer_configs(self, *args: Any) -> list[LayerSpec]:
        """``layer_configs(genome, input_shape)`` (or ``(input_shape)`` for the active genome)."""
        genome = self.active_genome()
        if len(args) == 2:
            genome, args = args[0], args[1:]
            self.validate(genome)
        if len(args) != 1:
            raise TypeError("layer_configs(input_shape) or layer_configs(genome, input_shape)")
        return text_layer_specs(self.preset, genome, tuple(args[0]), self.n_classes)

    def reorder_channels(self, optimizer: Any = None) -> None:
        self.body.reorder_channels(optimizer)

    def kernel_transforms(self) -> dict[str, Tensor]:
        return self.body.kernel_transforms()

    def describe(self) -> dict[str, Any]:
        return {
            "family": "text",
            "preset": self.preset.name,
            "modality": self.modality,
            "in_channels": self.length,
            "n_classes": self.n_classes,
        }


__all__ = ["ElasticTextNet", "StaticTextNet", "TokenEmbedding", "text_layer_specs"]
