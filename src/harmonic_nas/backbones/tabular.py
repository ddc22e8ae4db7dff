"""The elastic tabular backbone: an MLP whose hidden widths and depth are genes (OFA-style slicing).

Genome (the shared :class:`BackboneGenome` naming, one stage): ``d = (depth,)``; per layer slot
``e`` is the width multiplier (width = ``preset.base_width x e``) and ``ks`` is 1 (a dense layer
has no kernel; a 1x1 convolution over the features). Each slot stores its largest layer; a subnet
uses the first ``width`` output units and the first ``width`` inputs of the next layer (the first
slot reads every input feature), the classifier reads the first ``width`` units of the last active
layer. :meth:`ElasticMLP.reorder_channels` sorts every slot's units by importance so that narrow
subnets keep the best ones. :meth:`ElasticMLP.extract` copies the active slices into a static MLP
whose output equals the supernet's for the same genome.

A hidden layer is ``Linear -> BatchNorm1d -> activation -> dropout`` (LUT key ``DenseLayer``);
every hidden layer's output is a fusion point.
"""

from __future__ import annotations

import itertools
import logging
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harmonic_nas.backbones.genome import BackboneGenome
from harmonic_nas.backbones.layers import LayerSpec
from harmonic_nas.backbones.ops import apply_act, make_act
from harmonic_nas.backbones.presets import MLPPreset, get_preset
from harmonic_nas.backbones.space import BackboneSpace
from harmonic_nas.errors import ConfigError

logger = logging.getLogger(__name__)


class DenseBlock(nn.Module):
    """One static hidden layer: Linear -> BatchNorm1d -> activation -> dropout."""

    def __init__(
        self, in_features: int, out_features: int, act: str = "relu", dropout: float = 0.0
    ):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.bn = nn.BatchNorm1d(out_features)
        self.act = make_act(act)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.act(self.bn(self.linear(x))))


class _ElasticBN(nn.BatchNorm1d):
    """BatchNorm1d whose first ``C`` features serve a ``C``-wide input (running stats shared)."""

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        if c == self.num_features:
            return super().forward(x)
        assert self.running_mean is not None and self.running_var is not None
        factor = 0.0
        if self.training and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            factor = (
                1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            )
        return F.batch_norm(
            x,
            self.running_mean[:c],
            self.running_var[:c],
            self.weight[:c],
            self.bias[:c],
            self.training,
            factor,
            self.eps,
        )


def mlp_widths(preset: MLPPreset, genome: BackboneGenome) -> list[int]:
    """Hidden widths of the active layers of ``genome``."""
    return [preset.base_width * genome.e[j] for j in range(genome.d[0])]


def mlp_layer_specs(
    preset: MLPPreset, genome: BackboneGenome, in_features: int, n_classes: int
) -> list[LayerSpec]:
    """Costed layers: one ``dense`` spec per active hidden layer, then the classifier."""
    specs = []
    width = in_features
    for out in mlp_widths(preset, genome):
        specs.append(LayerSpec("dense", (width,), width, out, act=preset.act))
        width = out
    specs.append(LayerSpec("linear", (width,), width, n_classes, act="none"))
    return specs


def _flat_features(shape: tuple[int, ...], expected: int) -> int:
    n = math.prod(shape) if shape else 0
    if n != expected:
        raise ConfigError(
            f"input shape {shape} has {n} features but this MLP backbone expects {expected}; "
            f"pass ({expected},)"
        )
    return n


class StaticMLP(nn.Module):
    """A fixed MLP subnet; ``forward`` returns ``(hidden outputs, logits)``."""

    def __init__(
        self,
        preset: MLPPreset,
        genome: BackboneGenome,
        in_features: int,
        n_classes: int,
        *,
        modality: str = "",
    ) -> None:
        super().__init__()
        self.preset, self.genome = preset, genome
        self.in_features, self.in_channels, self.n_classes = in_features, in_features, n_classes
        self.modality = modality
        widths = [in_features, *mlp_widths(preset, genome)]
        self.hidden = nn.ModuleList(
            DenseBlock(a, b, preset.act, preset.dropout) for a, b in itertools.pairwise(widths)
        )
        self.classifier = nn.Linear(widths[-1], n_classes)

    def forward(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        h = torch.flatten(x, 1)
        features = []
        for layer in self.hidden:
            h = layer(h)
            features.append(h)
        return features, self.classifier(h)

    def layer_configs(self, input_shape: tuple[int, ...]) -> list[LayerSpec]:
        n = _flat_features(tuple(input_shape), self.in_features)
        return mlp_layer_specs(self.preset, self.genome, n, self.n_classes)


class ElasticMLP(nn.Module):
    """The elastic MLP supernet of a vector / tabular modality."""

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        *,
        preset: str | MLPPreset = "mlp",
        modality: str = "",
    ) -> None:
        super().__init__()
        p = get_preset(preset) if isinstance(preset, str) else preset
        if not isinstance(p, MLPPreset):
            raise ConfigError(f"preset {p.name!r} is not an MLP preset; use build_supernet()")
        if in_features < 1 or n_classes < 1:
            raise ConfigError(
                f"an MLP needs >= 1 input feature and >= 1 class, got {in_features}, {n_classes}"
            )
        self.preset: MLPPreset = p
        self.space = BackboneSpace.from_preset(p)
        self.in_features, self.in_channels, self.n_classes = in_features, in_features, n_classes
        self.modality = modality
        wide = p.base_width * max(p.e_choices)
        self.wide = wide
        self.linears = nn.ModuleList(
            nn.Linear(in_features if j == 0 else wide, wide) for j in range(p.max_depth)
        )
        self.bns = nn.ModuleList(_ElasticBN(wide) for _ in range(p.max_depth))
        self.dropout = nn.Dropout(p.dropout)
        self.classifier = nn.Linear(wide, n_classes)
        self.active = self.space.max_genome()

    # --- genome -------------------------------------------------------------------------------

    def validate(self, genome: BackboneGenome) -> None:
        self.space.validate(genome)

    def set_active(self, genome: BackboneGenome) -> None:
        self.validate(genome)
        self.active = genome.active(self.preset.max_depth)

    def active_genome(self) -> BackboneGenome:
        return self.active

    def sample(self, rng: np.random.Generator) -> BackboneGenome:
        return self.space.sample(rng)

    def max_genome(self) -> BackboneGenome:
        return self.space.max_genome()

    def min_genome(self) -> BackboneGenome:
        return self.space.min_genome()

    def num_subnets(self) -> int:
        return self.space.size()

    # --- compute ------------------------------------------------------------------------------

    def forward(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        h = torch.flatten(x, 1)
        if h.shape[1] != self.in_features:
            raise ValueError(f"expected {self.in_features} input features, got {h.shape[1]}")
        features = []
        for j, width in enumerate(mlp_widths(self.preset, self.active)):
            lin = self.linears[j]
            assert isinstance(lin, nn.Linear)
            h = F.linear(h, lin.weight[:width, : h.shape[1]], lin.bias[:width])
            h = self.dropout(apply_act(self.bns[j](h), self.preset.act))
            features.append(h)
        logits = F.linear(h, self.classifier.weight[:, : h.shape[1]], self.classifier.bias)
        return features, logits

    def extract(self, genome: BackboneGenome) -> StaticMLP:
        """The static subnet of ``genome`` with copied weights (same train/eval mode as self)."""
        self.validate(genome)
        canonical = genome.active(self.preset.max_depth)
        net = StaticMLP(
            self.preset, canonical, self.in_features, self.n_classes, modality=self.modality
        )
        width = self.in_features
        with torch.no_grad():
            for j, out in enumerate(mlp_widths(self.preset, canonical)):
                src, dst = self.linears[j], net.hidden[j]
                assert isinstance(src, nn.Linear) and isinstance(dst, DenseBlock)
                dst.linear.weight.copy_(src.weight[:out, :width])
                dst.linear.bias.copy_(src.bias[:out])
                bn = self.bns[j]
                assert isinstance(bn, nn.BatchNorm1d)
                assert bn.running_mean is not None and bn.running_var is not None
                assert dst.bn.running_mean is not None and dst.bn.running_var is not None
                dst.bn.weight.copy_(bn.weight[:out])
                dst.bn.bias.copy_(bn.bias[:out])
                dst.bn.running_mean.copy_(bn.running_mean[:out])
                dst.bn.running_var.copy_(bn.running_var[:out])
                dst.bn.eps, dst.bn.momentum = bn.eps, bn.momentum
                width = out
            net.classifier.weight.copy_(self.classifier.weight[:, :width])
            net.classifier.bias.copy_(self.classifier.bias)
        net = net.to(self.classifier.weight.device)
        net.train(self.training)
        return net

    def layer_configs(self, *args: Any) -> list[LayerSpec]:
        """``layer_configs(genome, input_shape)`` (or ``(input_shape)`` for the active genome)."""
        genome = self.active
        if len(args) == 2:
            genome, args = args[0], args[1:]
            self.validate(genome)
        if len(args) != 1:
            raise TypeError("layer_configs(input_shape) or layer_configs(genome, input_shape)")
        n = _flat_features(tuple(args[0]), self.in_features)
        return mlp_layer_specs(self.preset, genome, n, self.n_classes)

    @torch.no_grad()
    def reorder_channels(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Sort each slot's hidden units by importance (L1 norm of the weights reading them), so
        narrow subnets keep the most important units; the widest subnet's function is unchanged."""
        state: dict[Any, Any] = optimizer.state if optimizer is not None else {}
        readers = [*list(self.linears)[1:], self.classifier]
        for j, lin in enumerate(self.linears):
            nxt = readers[j]
            assert isinstance(lin, nn.Linear) and isinstance(nxt, nn.Linear)
            order = torch.argsort(nxt.weight.abs().sum(dim=0), descending=True, stable=True)
            bn = self.bns[j]
            assert isinstance(bn, nn.BatchNorm1d)
            assert bn.running_mean is not None and bn.running_var is not None
            tensors: list[tuple[Tensor, int]] = [
                (lin.weight, 0),
                (lin.bias, 0),
                (bn.weight, 0),
                (bn.bias, 0),
                (bn.running_mean, 0),
                (bn.running_var, 0),
                (nxt.weight, 1),
            ]
            for tensor, dim in tensors:
                tensor.copy_(tensor.index_select(dim, order))
                for value in state.get(tensor, {}).values():
                    if isinstance(value, Tensor) and value.shape == tensor.shape:
                        value.copy_(value.index_select(dim, order))

    def describe(self) -> dict[str, Any]:
        return {
            "family": "mlp",
            "preset": self.preset.name,
            "modality": self.modality,
            "in_channels": self.in_features,
            "n_classes": self.n_classes,
        }


__all__ = ["DenseBlock", "ElasticMLP", "StaticMLP", "mlp_layer_specs", "mlp_widths"]
