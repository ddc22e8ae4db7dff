"""The elastic MobileNetV3 supernet (Once-for-All style), in plain torch; its elastic operators are
in :mod:`harmonic_nas.backbones.dynamic`.

- Elastic kernel {3,5,7}: each depthwise conv stores 7x7 weights; a smaller kernel is the centre
  crop passed through learned kernel-transform matrices (7->5: 25x25, 5->3: 9x9), applied in
  sequence and shared by all channels of the layer, identity-initialised (OFA,
  ``KERNEL_TRANSFORM_MODE = 1``).
- Elastic expand {3,4,6}: the first ``make_divisible(in * e)`` hidden channels are used (slicing of
  the 1x1 convs, depthwise conv, BN and SE); :meth:`ElasticMobileNetV3.reorder_channels` sorts
  hidden channels by importance so the slices keep the most important ones.
- Elastic depth {2,3,4}: the first ``d`` blocks of each stage run.
"""

from __future__ import annotations

import logging
import math
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor, nn

from harmonic_nas.backbones.dynamic import (
    DynamicMBConv,
)
from harmonic_nas.backbones.genome import BackboneGenome
from harmonic_nas.backbones.layers import LayerSpec
from harmonic_nas.backbones.ops import Classifier, ConvBNAct, MBConv
from harmonic_nas.backbones.presets import MobileNetV3Preset, get_preset
from harmonic_nas.backbones.space import BackboneSpace
from harmonic_nas.backbones.static import StaticBackbone, mbv3_layer_specs
from harmonic_nas.errors import ConfigError

logger = logging.getLogger(__name__)


class ElasticMobileNetV3(nn.Module):
    """An elastic MobileNetV3 supernet for one modality (a "supernet")."""

    def __init__(
        self,
        preset: str | MobileNetV3Preset,
        in_channels: int,
        n_classes: int,
        *,
        modality: str = "",
    ) -> None:
        super().__init__()
        p = get_preset(preset) if isinstance(preset, str) else preset
        if not isinstance(p, MobileNetV3Preset):
            raise ConfigError(
                f"preset {p.name!r} is not a MobileNetV3 preset; use build_supernet() for it"
            )
        if in_channels < 1 or n_classes < 1:
            raise ConfigError(
                f"a supernet needs >= 1 input channel and >= 1 class, got {in_channels}, {n_classes}"
            )
        self.preset: MobileNetV3Preset = p
        self.space = BackboneSpace.from_preset(p)
        self.in_channels, self.n_classes, self.modality = in_channels, n_classes, modality
        dims = p.dims
        self.signal = dims == 1  # (B, C, T) inputs, seen as (B, C, 1, T)
        self.stem = ConvBNAct(in_channels, p.stem_width, 3, 2, act=p.stem_act, dims=dims)
        self.first_block = MBConv(
            p.stem_width,
            p.first_block_width,
            kernel=3,
            expand=1,
            act=p.first_block_act,
            dims=dims,
        )
        stages = []
        in_ch = p.first_block_width
        for s, width in enumerate(p.stage_widths):
            blocks = []
            for j in range(p.max_depth):
                blocks.append(
                    DynamicMBConv(
                        in_ch,
                        width,
                        stride=p.stage_strides[s] if j == 0 else 1,
                        act=p.stage_acts[s],
                        use_se=p.stage_se[s],
                        ks_choices=p.ks_choices,
                        e_choices=p.e_choices,
                        dims=dims,
                    )
                )
                in_ch = width
            stages.append(nn.ModuleList(blocks))
        self.stages = nn.ModuleList(stages)
        self.final_expand = ConvBNAct(in_ch, p.final_expand_width, 1, act=p.head_act, dims=dims)
        self.feature_mix = ConvBNAct(
            p.final_expand_width, p.feature_mix_width, 1, act=p.head_act, use_bn=False, dims=dims
        )
        self.classifier = Classifier(p.feature_mix_width, n_classes, p.dropout)
        self._init_weights()
        self.active_depth = [p.max_depth] * p.n_stages
        self.set_active(self.max_genome())

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.weight.shape[1])
                nn.init.uniform_(m.weight, -bound, bound)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    # --- genome -------------------------------------------------------------------------------

    def _blocks(self) -> list[DynamicMBConv]:
        return [b for stage in self.stage_blocks() for b in stage]

    def stage_blocks(self) -> list[list[DynamicMBConv]]:
        """The elastic blocks, per stage (all ``max_depth`` of them, active or not)."""
        return [[cast(DynamicMBConv, b) for b in cast(nn.ModuleList, st)] for st in self.stages]

    def validate(self, genome: BackboneGenome) -> None:
        """Raise :class:`GenomeError` (one line) unless ``genome`` fits this preset."""
        self.space.validate(genome)

    def set_active(self, genome: BackboneGenome) -> None:
        """Make ``genome`` the active subnet (what :meth:`forward` computes)."""
        self.validate(genome)
        p = self.preset
        for s, stage in enumerate(self.stage_blocks()):
            for j, block in enumerate(stage):
                slot = s * p.max_depth + j
                if j < genome.d[s]:
                    block.active_kernel = genome.ks[slot]
                    block.active_expand = genome.e[slot]
        self.active_depth = list(genome.d)

    def active_genome(self) -> BackboneGenome:
        """The active subnet in canonical form (inactive genes 0)."""
        p, ks, e = self.preset, [], []
        for s, stage in enumerate(self.stage_blocks()):
            for j, block in enumerate(stage):
                on = j < self.active_depth[s]
                ks.append(block.active_kernel if on else 0)
                e.append(block.active_expand if on else 0)
        return BackboneGenome(tuple(ks), tuple(e), tuple(self.active_depth)).active(p.max_depth)

    def sample(self, rng: np.random.Generator) -> BackboneGenome:
        """A uniformly random genome (every gene independent)."""
        return self.space.sample(rng)

    def max_genome(self) -> BackboneGenome:
        return self.space.max_genome()

    def min_genome(self) -> BackboneGenome:
        return self.space.min_genome()

    def num_subnets(self) -> int:
        """Distinct subnets (inactive genes do not count): prod over stages of sum_d (|K||E|)^d."""
        return self.space.size()

    # --- compute ------------------------------------------------------------------------------

    def forward(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        """(features [stem, fixed block, active blocks..., final representation], logits) of the
        active subnet; the final representation is the pooled feature-mix output ``(B, D)``.
        A 1-D (signal) supernet takes ``(B, C, T)``."""
        if self.signal:
            x = x.unsqueeze(2)
        x = self.stem(x)
        features = [x]
        x = self.first_block(x)
        features.append(x)
        for s, stage in enumerate(self.stage_blocks()):
            for block in list(stage)[: self.active_depth[s]]:
                x = block(x)
                features.append(x)
        x = self.final_expand(x)
        x = x.mean(dim=(2, 3), keepdim=True)
        z = torch.flatten(self.feature_mix(x), 1)
        features.append(z)
        return features, self.classifier(z)

    def extract(self, genome: BackboneGenome) -> StaticBackbone:
        """The static subnet of ``genome`` with copied weights (same train/eval mode as self)."""
        self.validate(genome)
        p = self.preset
        canonical = genome.active(p.max_depth)
        net = StaticBackbone(p, canonical, self.in_channels, self.n_classes, modality=self.modality)
        net.stem.load_state_dict(self.stem.state_dict())
        net.first_block.load_state_dict(self.first_block.state_dict())
        blocks = []
        for s, stage in enumerate(self.stage_blocks()):
            for j in range(genome.d[s]):
                slot = s * p.max_depth + j
                blocks.append(stage[j].export(genome.ks[slot], genome.e[slot]))
        net.blocks = nn.ModuleList(blocks)
        net.final_expand.load_state_dict(self.final_expand.state_dict())
        net.feature_mix.load_state_dict(self.feature_mix.state_dict())
        net.classifier.load_state_dict(self.classifier.state_dict())
        net = net.to(next(self.parameters()).device)
        net.train(self.training)
        return net

    def layer_configs(
        self, genome: BackboneGenome, input_shape: tuple[int, ...]
    ) -> list[LayerSpec]:
        """Costed layers of ``genome``'s subnet (same as ``extract(genome).layer_configs``)."""
        self.validate(genome)
        return mbv3_layer_specs(
            self.preset, genome, self.in_channels, self.n_classes, tuple(input_shape)
        )

    def kernel_transforms(self) -> dict[str, Tensor]:
        """Every kernel-transform matrix, by ``stage<s>.block<j>.<src>to<tgt>``."""
        return {
            f"stage{s}.block{j}.{name}": param
            for s, stage in enumerate(self.stage_blocks())
            for j, block in enumerate(stage)
            for name, param in block.dw.transforms.items()
        }

    @torch.no_grad()
    def reorder_channels(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Sort each block's hidden channels by importance (OFA ``re_organize_middle_weights``).

        The max subnet computes exactly the same function afterwards; smaller expand ratios then
        keep the most important channels. Optimizer state (momenta, Adam moments) is permuted
        along, so training continues consistently.
        """
        state: dict[Any, Any] = optimizer.state if optimizer is not None else {}
        for block in self._blocks():
            order = block.sorted_channel_order()
            for tensor, dim in block.channel_params():
                tensor.copy_(tensor.index_select(dim, order))
                for value in state.get(tensor, {}).values():
                    if isinstance(value, Tensor) and value.shape == tensor.shape:
                        value.copy_(value.index_select(dim, order))

    def describe(self) -> dict[str, Any]:
        """Plain metadata (for checkpoints and reports)."""
        return {
            "family": "mobilenetv3",
            "preset": self.preset.name,
            "modality": self.modality,
            "in_channels": self.in_channels,
            "n_classes": self.n_classes,
        }


__all__ = ["ElasticMobileNetV3"]
