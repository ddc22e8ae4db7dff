"""A static (non-elastic) MobileNetV3 subnet, as extracted from a supernet, and its costed layers."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from harmonic_nas.backbones.genome import BackboneGenome
from harmonic_nas.backbones.layers import LayerSpec
from harmonic_nas.backbones.ops import Classifier, ConvBNAct, MBConv, mid_channels
from harmonic_nas.backbones.presets import MobileNetV3Preset
from harmonic_nas.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BlockConfig:
    """One active MBConv block of a subnet."""

    in_ch: int
    out_ch: int
    kernel: int
    expand: int
    stride: int
    act: str
    use_se: bool

    @property
    def mid_ch(self) -> int:
        return mid_channels(self.in_ch, self.expand)


def active_blocks(preset: MobileNetV3Preset, genome: BackboneGenome) -> list[BlockConfig]:
    """The elastic blocks a (valid) genome activates, in order (the fixed e1 block excluded)."""
    blocks: list[BlockConfig] = []
    in_ch = preset.first_block_width
    for s, width in enumerate(preset.stage_widths):
        for j in range(genome.d[s]):
            slot = s * preset.max_depth + j
            blocks.append(
                BlockConfig(
                    in_ch=in_ch,
                    out_ch=width,
                    kernel=genome.ks[slot],
                    expand=genome.e[slot],
                    stride=preset.stage_strides[s] if j == 0 else 1,
                    act=preset.stage_acts[s],
                    use_se=preset.stage_se[s],
                )
            )
            in_ch = width
    return blocks


def _half(n: int, stride: int) -> int:
    return -(-n // stride)


def mbv3_layer_specs(
    preset: MobileNetV3Preset,
    genome: BackboneGenome,
    in_channels: int,
    n_classes: int,
    input_shape: tuple[int, ...],
) -> list[LayerSpec]:
    """Costed layers of a subnet (DESIGN.md rules): stem at the input size, every block incl. the
    fixed one, final expand at the last spatial size, feature mix at 1x1 (no BN), classifier.

    A 1-D preset (``dims == 1``) takes ``(C, T)`` and costs its layers at ``(C, 1, T)``, with
    ``dims = 1`` on every conv / mbconv spec (their own LUT keys)."""
    rank = 2 if preset.dims == 1 else 3
    if len(input_shape) != rank or input_shape[0] != in_channels:
        want = "(C, T)" if rank == 2 else "(C, H, W)"
        raise ConfigError(
            f"input shape {tuple(input_shape)} does not fit a {preset.name} backbone with "
            f"{in_channels} input channel(s); pass {want} with C = {in_channels}"
        )
    if rank == 2:
        c, h, w = input_shape[0], 1, input_shape[1]
    else:
        c, h, w = input_shape
    dims = preset.dims
    stride2 = 2
    specs = [
        LayerSpec(
            "conv",
            (c, h, w),
            c,
            preset.stem_width,
            kernel=3,
            stride=stride2,
            act=preset.stem_act,
            dims=dims,
        )
    ]
    h, w = _half(h, stride2), _half(w, stride2)
    specs.append(
        LayerSpec(
            "mbconv",
            (preset.stem_width, h, w),
            preset.stem_width,
            preset.first_block_width,
            mid_ch=0,
            expand=1,
            kernel=3,
            stride=1,
            act=preset.first_block_act,
            dims=dims,
        )
    )
    for b in active_blocks(preset, genome):
        specs.append(
            LayerSpec(
                "mbconv",
                (b.in_ch, h, w),
                b.in_ch,
                b.out_ch,
                mid_ch=b.mid_ch,
                expand=b.expand,
                kernel=b.kernel,
                stride=b.stride,
                use_se=b.use_se,
                act=b.act,
                dims=dims,
            )
        )
        h, w = _half(h, b.stride), _half(w, b.stride)
    last = preset.stage_widths[-1]
    specs.append(
        LayerSpec(
            "conv", (last, h, w), last, preset.final_expand_width, act=preset.head_act, dims=dims
        )
    )
    fe, fm = preset.final_expand_width, preset.feature_mix_width
    specs.append(
        LayerSpec("conv", (fe, 1, 1), fe, fm, use_bn=False, act=preset.head_act, dims=dims)
    )
    specs.append(LayerSpec("linear", (fm,), fm, n_classes, act="none"))
    return specs


class StaticBackbone(nn.Module):
    """A fixed subnet: stem -> fixed block -> active blocks -> head.

    ``forward`` returns ``(features, logits)`` with features = [stem, fixed block, block 1, ...,
    final representation] (the fusion-point candidates; the last is the pooled feature-mix output,
    ``(B, feature_mix_width)``, what the classifier reads) and logits of shape (B, n_classes).
    """

    def __init__(
        self,
        preset: MobileNetV3Preset,
        genome: BackboneGenome,
        in_channels: int,
        n_classes: int,
        *,
        modality: str = "",
    ) -> None:
        super().__init__()
        self.preset, self.genome = preset, genome
        self.in_channels, self.n_classes, self.modality = in_channels, n_classes, modality
        dims = preset.dims
        self.signal = dims == 1  # (B, C, T) inputs, seen as (B, C, 1, T)
        self.stem = ConvBNAct(in_channels, preset.stem_width, 3, 2, act=preset.stem_act, dims=dims)
        self.first_block = MBConv(
            preset.stem_width,
            preset.first_block_width,
            kernel=3,
            expand=1,
            act=preset.first_block_act,
            dims=dims,
        )
        self.blocks = nn.ModuleList(
            MBConv(
                b.in_ch,
                b.out_ch,
                kernel=b.kernel,
                stride=b.stride,
                expand=b.expand,
                act=b.act,
                use_se=b.use_se,
                dims=dims,
            )
            for b in active_blocks(preset, genome)
        )
        last = preset.stage_widths[-1]
        self.final_expand = ConvBNAct(
            last, preset.final_expand_width, 1, act=preset.head_act, dims=dims
        )
        self.feature_mix = ConvBNAct(
            preset.final_expand_width,
            preset.feature_mix_width,
            1,
            act=preset.head_act,
            use_bn=False,
            dims=dims,
        )
        self.classifier = Classifier(preset.feature_mix_width, n_classes, preset.dropout)

    def forward(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        if self.signal:
            x = x.unsqueeze(2)
        x = self.stem(x)
        features = [x]
        x = self.first_block(x)
        features.append(x)
        for block in self.blocks:
            x = block(x)
            features.append(x)
        x = self.final_expand(x)
        x = x.mean(dim=(2, 3), keepdim=True)
        z = torch.flatten(self.feature_mix(x), 1)
        features.append(z)
        return features, self.classifier(z)

    def layer_configs(self, input_shape: tuple[int, ...]) -> list[LayerSpec]:
        """The costed layers of this subnet for an input of shape (C, H, W)."""
        return mbv3_layer_specs(
            self.preset, self.genome, self.in_channels, self.n_classes, tuple(input_shape)
        )

    def extra_repr(self) -> str:
        return f"preset={self.preset.name}, genome={self.genome}"
