"""The elastic operators of the OFA supernet: modules whose kernel size and width are chosen at
run time (a slice of the largest one), and their export to static modules.

- :class:`DynamicDepthwiseConv`: stores the largest kernel; a smaller one is the centre crop passed
  through learned kernel-transform matrices (7->5: 25x25, 5->3: 9x9), applied in sequence and
  shared by all channels of the layer, identity-initialised (OFA, ``KERNEL_TRANSFORM_MODE = 1``).
- :class:`DynamicMBConv`: the first ``make_divisible(in * e)`` hidden channels are used (slicing
  of the 1x1 convs, depthwise conv, BN and SE); :meth:`DynamicMBConv.export` copies the active
  slice into a static :class:`~harmonic_nas.backbones.ops.MBConv`.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harmonic_nas.backbones.ops import (
    MBConv,
    apply_act,
    kernel_geometry,
    mid_channels,
    se_channels,
)

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
    """Depthwise conv with elastic kernel size and channel count (``dims == 1``: ``1 x k`` kernels
    along time, whose transforms are ``k x k`` matrices)."""

    def __init__(
        self, channels: int, ks_choices: tuple[int, ...], stride: int, dims: int = 2
    ) -> None:
        super().__init__()
        self.ks_choices = tuple(sorted(ks_choices))
        self.max_ks = self.ks_choices[-1]
        self.stride, self.dims = stride, dims
        height = 1 if dims == 1 else self.max_ks
        self.weight = nn.Parameter(torch.empty(channels, 1, height, self.max_ks))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        self.transforms = nn.ParameterDict(
            {
                f"{src}to{tgt}": nn.Parameter(torch.eye(tgt if dims == 1 else tgt * tgt))
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
            if self.dims == 1:
                sub = F.linear(w[:, :, :, _centre(src, tgt)], self.transforms[f"{src}to{tgt}"])
                w = sub.reshape(channels, 1, 1, tgt)
                continue
            sub = w[:, :, _centre(src, tgt), _centre(src, tgt)].reshape(-1, tgt * tgt)
            sub = F.linear(sub, self.transforms[f"{src}to{tgt}"])
            w = sub.reshape(channels, 1, tgt, tgt)
        return w

    def forward(self, x: Tensor, kernel: int) -> Tensor:
        c = x.shape[1]
        _, stride, padding = kernel_geometry(kernel, self.stride, self.dims)
        return F.conv2d(x, self.active_filter(c, kernel), None, stride, padding, 1, groups=c)


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
        dims: int = 2,
    ) -> None:
        super().__init__()
        self.dims = dims
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
        self.dw = DynamicDepthwiseConv(max_mid, self.ks_choices, stride, dims)
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
            dims=self.dims,
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


__all__ = ["DynamicBatchNorm2d", "DynamicDepthwiseConv", "DynamicMBConv", "DynamicSE"]
