"""The elastic MobileNetV3 supernet (Once-for-All style), in plain torch.

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
import torch.nn.functional as F
from torch import Tensor, nn

from harmonic_nas.backbones.genome import BackboneGenome
from harmonic_nas.backbones.layers import LayerSpec
from harmonic_nas.backbones.ops import (
    Classifier,
    ConvBNAct,
    MBConv,
    apply_act,
    mid_channels,
    se_channels,
)
from harmonic_nas.backbones.presets import MobileNetV3Preset, get_preset
from harmonic_nas.backbones.static import StaticBackbone, mbv3_layer_specs
from harmonic_nas.errors import ConfigError, GenomeError

logger = logging.getLogger(__name__)


class DynamicBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm whose first ``C`` channels serve an input with ``C`` channels (OFA)."""

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
        # Slices are views: the running statistics of the active channels update in place.
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


def _centre(src: int, tgt: int) -> slice:
    start = (src - tgt) // 2
    return slice(start, start + tgt)


class DynamicDepthwiseConv(nn.Module):
    """Depthwise conv with elastic kernel size and channel count."""

    def __init__(self, channels: int, ks_choices: tuple[int, ...], stride: int) -> None:
        super().__init__()
        self.ks_choices = tuple(sorted(ks_choices))
        self.max_ks = self.ks_choices[-1]
        self.stride = stride
        self.weight = nn.Parameter(torch.empty(channels, 1, self.max_ks, self.max_ks))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        self.transforms = nn.ParameterDict(
            {
                f"{src}to{tgt}": nn.Parameter(torch.eye(tgt * tgt))
                for src, tgt in zip(self.ks_choices[1:], self.ks_choices[:-1], strict=True)
            }
        )

    def transform_pairs(self) -> list[tuple[int, int]]:
        return list(zip(self.ks_choices[1:], self.ks_choices[:-1], strict=True))[::-1]

    def active_filter(self, channels: int, kernel: int) -> Tensor:
        """The (channels, 1, kernel, kernel) filter: centre crops + kernel transforms from 7x7."""
        w = self.weight[:channels]
        for src, tgt in self.transform_pairs():
            if src <= kernel:
                break
            sub = w[:, :, _centre(src, tgt), _centre(src, tgt)].reshape(-1, tgt * tgt)
            sub = F.linear(sub, self.transforms[f"{src}to{tgt}"])
            w = sub.reshape(channels, 1, tgt, tgt)
        return w

    def forward(self, x: Tensor, kernel: int) -> Tensor:
        c = x.shape[1]
        return F.conv2d(
            x, self.active_filter(c, kernel), None, self.stride, kernel // 2, 1, groups=c
        )


class DynamicSE(nn.Module):
    """SE module over the first ``C`` channels (squeeze width ``make_divisible(C // 4, 8)``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        mid = se_channels(channels)
        self.reduce = nn.Conv2d(channels, mid, 1, bias=True)
        self.expand = nn.Conv2d(mid, channels, 1, bias=True)

    @property
    def reduce_bias(self) -> Tensor:
        assert self.reduce.bias is not None
        return self.reduce.bias

    @property
    def expand_bias(self) -> Tensor:
        assert self.expand.bias is not None
        return self.expand.bias

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        mid = se_channels(c)
        y = x.mean(dim=(2, 3), keepdim=True)
        y = F.relu(F.conv2d(y, self.reduce.weight[:mid, :c], self.reduce_bias[:mid]))
        y = F.hardsigmoid(F.conv2d(y, self.expand.weight[:c, :mid], self.expand_bias[:c]))
        return x * y


class DynamicMBConv(nn.Module):
    """An elastic MBConv block (kernel and expand ratio chosen by :attr:`active_kernel` / ``_expand``)."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        *,
        stride: int,
        act: str,
        use_se: bool,
        ks_choices: tuple[int, ...],
        e_choices: tuple[int, ...],
    ) -> None:
        super().__init__()
        self.in_ch, self.out_ch, self.stride, self.act, self.use_se = (
            in_ch,
            out_ch,
            stride,
            act,
            use_se,
        )
        self.ks_choices, self.e_choices = tuple(ks_choices), tuple(e_choices)
        max_mid = max(mid_channels(in_ch, e) for e in e_choices)
        self.max_mid = max_mid
        self.expand_conv = nn.Conv2d(in_ch, max_mid, 1, bias=False)
        self.expand_bn = DynamicBatchNorm2d(max_mid)
        self.dw = DynamicDepthwiseConv(max_mid, self.ks_choices, stride)
        self.dw_bn = DynamicBatchNorm2d(max_mid)
        self.se: DynamicSE | None = DynamicSE(max_mid) if use_se else None
        self.project = nn.Conv2d(max_mid, out_ch, 1, bias=False)
        self.project_bn = nn.BatchNorm2d(out_ch)
        self.residual = stride == 1 and in_ch == out_ch
        self.active_kernel = max(self.ks_choices)
        self.active_expand = max(self.e_choices)

    @property
    def active_mid(self) -> int:
        return mid_channels(self.in_ch, self.active_expand)

    def forward(self, x: Tensor) -> Tensor:
        mid = self.active_mid
        h = apply_act(self.expand_bn(F.conv2d(x, self.expand_conv.weight[:mid])), self.act)
        h = apply_act(self.dw_bn(self.dw(h, self.active_kernel)), self.act)
        if self.se is not None:
            h = self.se(h)
        h = self.project_bn(F.conv2d(h, self.project.weight[:, :mid]))
        return x + h if self.residual else h

    @torch.no_grad()
    def sorted_channel_order(self) -> Tensor:
        """Hidden channels by decreasing importance (L1 norm of their projection weights)."""
        importance = self.project.weight.abs().sum(dim=(0, 2, 3))
        return torch.argsort(importance, descending=True, stable=True)

    def channel_params(self) -> list[tuple[Tensor, int]]:
        """Every (tensor, dim) indexed by hidden channel: permuting them all preserves the function."""
        out: list[tuple[Tensor, int]] = [
            (self.expand_conv.weight, 0),
            (self.dw.weight, 0),
            (self.project.weight, 1),
        ]
        for bn in (self.expand_bn, self.dw_bn):
            out += [(bn.weight, 0), (bn.bias, 0)]
            assert bn.running_mean is not None and bn.running_var is not None
            out += [(bn.running_mean, 0), (bn.running_var, 0)]
        if self.se is not None:
            out += [
                (self.se.reduce.weight, 1),
                (self.se.expand.weight, 0),
                (self.se.expand_bias, 0),
            ]
        return out

    def export(self, kernel: int, expand: int) -> MBConv:
        """A static MBConv computing this block at (kernel, expand), with copied weights."""
        mid = mid_channels(self.in_ch, expand)
        block = MBConv(
            self.in_ch,
            self.out_ch,
            kernel=kernel,
            stride=self.stride,
            expand=expand,
            mid_ch=mid,
            act=self.act,
            use_se=self.use_se,
        )
        with torch.no_grad():
            assert block.expand_conv is not None
            block.expand_conv.conv.weight.copy_(self.expand_conv.weight[:mid])
            _copy_bn(block.expand_conv.bn, self.expand_bn, mid)
            block.dw.conv.weight.copy_(self.dw.active_filter(mid, kernel))
            _copy_bn(block.dw.bn, self.dw_bn, mid)
            if self.se is not None and block.se is not None:
                smid = se_channels(mid)
                block.se.reduce.weight.copy_(self.se.reduce.weight[:smid, :mid])
                assert block.se.reduce.bias is not None and block.se.expand.bias is not None
                block.se.reduce.bias.copy_(self.se.reduce_bias[:smid])
                block.se.expand.weight.copy_(self.se.expand.weight[:mid, :smid])
                block.se.expand.bias.copy_(self.se.expand_bias[:mid])
            block.project.conv.weight.copy_(self.project.weight[:, :mid])
            _copy_bn(block.project.bn, self.project_bn, self.out_ch)
        return block


def _copy_bn(dst: nn.Module, src: nn.BatchNorm2d, c: int) -> None:
    assert isinstance(dst, nn.BatchNorm2d)
    assert src.running_mean is not None and src.running_var is not None
    assert dst.running_mean is not None and dst.running_var is not None
    dst.weight.copy_(src.weight[:c])
    dst.bias.copy_(src.bias[:c])
    dst.running_mean.copy_(src.running_mean[:c])
    dst.running_var.copy_(src.running_var[:c])
    if src.num_batches_tracked is not None and dst.num_batches_tracked is not None:
        dst.num_batches_tracked.copy_(src.num_batches_tracked)
    dst.eps, dst.momentum = src.eps, src.momentum


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
        self.in_channels, self.n_classes, self.modality = in_channels, n_classes, modality
        self.stem = ConvBNAct(in_channels, p.stem_width, 3, 2, act=p.stem_act)
        self.first_block = MBConv(
            p.stem_width, p.first_block_width, kernel=3, expand=1, act=p.first_block_act
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
                    )
                )
                in_ch = width
            stages.append(nn.ModuleList(blocks))
        self.stages = nn.ModuleList(stages)
        self.final_expand = ConvBNAct(in_ch, p.final_expand_width, 1, act=p.head_act)
        self.feature_mix = ConvBNAct(
            p.final_expand_width, p.feature_mix_width, 1, act=p.head_act, use_bn=False
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
        validate_genome(self.preset, genome)

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
        return sample_genome(self.preset, rng)

    def max_genome(self) -> BackboneGenome:
        p = self.preset
        return BackboneGenome(
            (max(p.ks_choices),) * p.n_slots,
            (max(p.e_choices),) * p.n_slots,
            (max(p.d_choices),) * p.n_stages,
        )

    def min_genome(self) -> BackboneGenome:
        p = self.preset
        return BackboneGenome(
            (min(p.ks_choices),) * p.n_slots,
            (min(p.e_choices),) * p.n_slots,
            (min(p.d_choices),) * p.n_stages,
        )

    def num_subnets(self) -> int:
        """Distinct subnets (inactive genes do not count): prod over stages of sum_d (|K||E|)^d."""
        return count_subnets(self.preset)

    # --- compute ------------------------------------------------------------------------------

    def forward(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        """(features [stem, fixed block, active blocks..., final representation], logits) of the
        active subnet; the final representation is the pooled feature-mix output ``(B, D)``."""
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


# --- genome helpers (pure functions of a preset) -----------------------------------------------


def validate_genome(preset: MobileNetV3Preset, genome: BackboneGenome) -> None:
    """Raise :class:`GenomeError` unless ``genome`` fits ``preset`` (only active genes are checked)."""
    if not isinstance(genome, BackboneGenome):
        raise GenomeError(
            f"expected a BackboneGenome for preset {preset.name}, got {type(genome).__name__}"
        )
    p = preset
    if len(genome.d) != p.n_stages:
        raise GenomeError(
            f"genome {genome} has {len(genome.d)} depth gene(s) but preset {p.name} has "
            f"{p.n_stages} stage(s); give one d per stage"
        )
    for name in ("ks", "e"):
        genes = getattr(genome, name)
        if len(genes) != p.n_slots:
            raise GenomeError(
                f"genome {genome} has {len(genes)} '{name}' gene(s) but preset {p.name} needs "
                f"{p.n_slots} ({p.n_stages} stage(s) x {p.max_depth} block slots)"
            )
    for s, d in enumerate(genome.d):
        if d not in p.d_choices:
            raise GenomeError(
                f"genome {genome}: depth {d} of stage {s} is not in preset {p.name}'s "
                f"depths {list(p.d_choices)}"
            )
        for j in range(d):
            slot = s * p.max_depth + j
            if genome.ks[slot] not in p.ks_choices:
                raise GenomeError(
                    f"genome {genome}: kernel {genome.ks[slot]} (block {slot}) is not in preset "
                    f"{p.name}'s kernels {list(p.ks_choices)}"
                )
            if genome.e[slot] not in p.e_choices:
                raise GenomeError(
                    f"genome {genome}: expand ratio {genome.e[slot]} (block {slot}) is not in "
                    f"preset {p.name}'s expand ratios {list(p.e_choices)}"
                )


def sample_genome(preset: MobileNetV3Preset, rng: np.random.Generator) -> BackboneGenome:
    """Every gene drawn uniformly and independently from the preset's choices."""
    p = preset
    return BackboneGenome(
        tuple(int(v) for v in rng.choice(p.ks_choices, size=p.n_slots)),
        tuple(int(v) for v in rng.choice(p.e_choices, size=p.n_slots)),
        tuple(int(v) for v in rng.choice(p.d_choices, size=p.n_stages)),
    )


def count_subnets(preset: MobileNetV3Preset) -> int:
    """Number of distinct subnets: prod over stages of sum over depths of (|K| |E|)^d."""
    per_block = len(set(preset.ks_choices)) * len(set(preset.e_choices))
    per_stage = sum(per_block**d for d in set(preset.d_choices))
    return int(per_stage**preset.n_stages)


__all__ = [
    "DynamicBatchNorm2d",
    "DynamicDepthwiseConv",
    "DynamicMBConv",
    "ElasticMobileNetV3",
    "count_subnets",
    "sample_genome",
    "validate_genome",
]
