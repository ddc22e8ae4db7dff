"""Static building blocks of the MobileNetV3 family (OFA layer semantics) and :func:`build_layer`.

These modules are what an extracted subnet is made of, and what the profiler times one at a time.
Layer semantics follow Once-for-All: ``ConvLayer`` = conv -> BN -> activation, ``MBConvLayer`` =
1x1 expand (conv, BN, act; absent when expand == 1) -> depthwise kxk (conv, BN, act) -> optional SE
-> 1x1 linear projection (conv, BN), with a residual connection when stride 1 and in == out.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harmonic_nas.backbones.layers import LayerSpec

logger = logging.getLogger(__name__)

ACTIVATIONS = ("relu", "hswish", "none")


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """OFA/TF channel rounding: nearest multiple of ``divisor``, never more than 10 % below."""
    min_value = divisor if min_value is None else min_value
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def mid_channels(in_ch: int, expand: int) -> int:
    """Hidden width of an MBConv block (0 for the expand-free e1 block, as the LUT keys say)."""
    return 0 if expand == 1 else make_divisible(round(in_ch * expand), 8)


def se_channels(channels: int) -> int:
    """Squeeze width of an SE module (reduction 4, divisible by 8)."""
    return make_divisible(channels // 4, 8)


def make_act(name: str) -> nn.Module:
    """``relu`` | ``hswish`` | ``none``."""
    if name == "relu":
        return nn.ReLU(inplace=False)
    if name == "hswish":
        return nn.Hardswish()
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation {name!r}; use one of {ACTIVATIONS}")


def apply_act(x: Tensor, name: str) -> Tensor:
    """Functional form of :func:`make_act`."""
    if name == "relu":
        return F.relu(x)
    if name == "hswish":
        return F.hardswish(x)
    return x


def kernel_geometry(
    kernel: int, stride: int, dims: int
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """``(kernel, stride, padding)`` of a conv: square for images (``dims == 2``), ``1 x k`` along
    time for signals (``dims == 1``, inputs ``(C, 1, T)``)."""
    if dims == 1:
        return (1, kernel), (1, stride), (0, kernel // 2)
    return (kernel, kernel), (stride, stride), (kernel // 2, kernel // 2)


class ConvBNAct(nn.Module):
    """OFA ``ConvLayer``: conv (same padding) -> optional BN -> activation (``dims == 1``: a
    ``1 x k`` kernel along time)."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int = 1,
        stride: int = 1,
        *,
        act: str = "relu",
        use_bn: bool = True,
        groups: int = 1,
        dims: int = 2,
    ) -> None:
        super().__init__()
        self.in_ch, self.out_ch, self.kernel, self.stride = in_ch, out_ch, kernel, stride
        self.act_name, self.use_bn, self.dims = act, use_bn, dims
        k, st, pad = kernel_geometry(kernel, stride, dims)
        self.conv = nn.Conv2d(in_ch, out_ch, k, st, padding=pad, groups=groups, bias=False)
        self.bn: nn.Module = nn.BatchNorm2d(out_ch) if use_bn else nn.Identity()
        self.act = make_act(act)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class SqueezeExcite(nn.Module):
    """OFA ``SEModule``: global pool -> 1x1 reduce (bias) -> ReLU -> 1x1 expand (bias) -> h-sigmoid."""

    def __init__(self, channels: int, mid: int | None = None) -> None:
        super().__init__()
        mid = se_channels(channels) if mid is None else mid
        self.reduce = nn.Conv2d(channels, mid, 1, bias=True)
        self.expand = nn.Conv2d(mid, channels, 1, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        y = x.mean(dim=(2, 3), keepdim=True)
        y = F.hardsigmoid(self.expand(F.relu(self.reduce(y))))
        return x * y


class MBConv(nn.Module):
    """OFA ``MBConvLayer`` (+ residual when stride 1 and in == out). ``expand == 1`` has no expand conv."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        *,
        kernel: int = 3,
        stride: int = 1,
        expand: int = 1,
        mid_ch: int | None = None,
        act: str = "relu",
        use_se: bool = False,
        dims: int = 2,
    ) -> None:
        super().__init__()
        if mid_ch is None or mid_ch == 0:
            mid_ch = in_ch if expand == 1 else mid_channels(in_ch, expand)
        self.in_ch, self.out_ch, self.mid_ch = in_ch, out_ch, mid_ch
        self.kernel, self.stride, self.expand, self.act_name = kernel, stride, expand, act
        self.use_se, self.dims = use_se, dims
        self.expand_conv: ConvBNAct | None = (
            ConvBNAct(in_ch, mid_ch, 1, act=act) if expand != 1 else None
        )
        self.dw = ConvBNAct(mid_ch, mid_ch, kernel, stride, act=act, groups=mid_ch, dims=dims)
        self.se: SqueezeExcite | None = SqueezeExcite(mid_ch) if use_se else None
        self.project = ConvBNAct(mid_ch, out_ch, 1, act="none")
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: Tensor) -> Tensor:
        h = x if self.expand_conv is None else self.expand_conv(x)
        h = self.dw(h)
        if self.se is not None:
            h = self.se(h)
        h = self.project(h)
        return x + h if self.residual else h


class Classifier(nn.Module):
    """Dropout -> Linear (OFA ``LinearLayer`` with dropout)."""

    def __init__(self, in_features: int, n_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(in_features, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.dropout(x))


class Maxout(nn.Module):
    """Maxout layer: a linear map to ``out * pieces`` units, max over each group of ``pieces``."""

    def __init__(self, in_features: int, out_features: int, pieces: int = 4) -> None:
        super().__init__()
        self.in_features, self.out_features, self.pieces = in_features, out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: Tensor) -> Tensor:
        y = self.linear(x)
        shape = list(y.shape[:-1]) + [self.out_features, self.pieces]  # noqa: RUF005 (TorchScript)
        return y.reshape(shape).amax(dim=-1)


class MaxoutBlock(nn.Module):
    """One hidden layer of the Maxout MLP: maxout -> BN -> dropout."""

    def __init__(
        self, in_features: int, out_features: int, pieces: int = 4, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.maxout = Maxout(in_features, out_features, pieces)
        self.bn = nn.BatchNorm1d(out_features)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.bn(self.maxout(x)))


class _FlattenLinear(nn.Module):
    """A ``LinearLayer`` for profiling: flattens its input first."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(torch.flatten(x, 1))


def build_layer(spec: LayerSpec) -> nn.Module:
    """A standalone module computing one costed layer (conv / mbconv / linear / maxout / dense).

    Its input has shape ``(1, *spec.input_shape)``. Fusion layers are built by ``harmonic_nas.fusion``.
    """
    if spec.kind == "conv":
        if len(spec.input_shape) != 3 or spec.input_shape[0] != spec.in_ch:
            raise ValueError(f"conv spec needs input_shape (in_ch, H, W); got {spec}")
        return ConvBNAct(
            spec.in_ch,
            spec.out_ch,
            spec.kernel,
            spec.stride,
            act=spec.act,
            use_bn=spec.use_bn,
            dims=spec.dims,
        )
    if spec.kind == "mbconv":
        if len(spec.input_shape) != 3 or spec.input_shape[0] != spec.in_ch:
            raise ValueError(f"mbconv spec needs input_shape (in_ch, H, W); got {spec}")
        return MBConv(
            spec.in_ch,
            spec.out_ch,
            kernel=spec.kernel,
            stride=spec.stride,
            expand=spec.expand,
            mid_ch=spec.mid_ch,
            act=spec.act,
            use_se=spec.use_se,
            dims=spec.dims,
        )
    if spec.kind == "linear":
        return _FlattenLinear(spec.in_ch, spec.out_ch)
    if spec.kind == "maxout":
        return MaxoutBlock(spec.in_ch, spec.out_ch, pieces=max(spec.expand, 1))
    if spec.kind == "embedding":
        from harmonic_nas.backbones.text import TokenEmbedding

        return TokenEmbedding(spec.in_ch, spec.out_ch)
    if spec.kind == "dense":
        from harmonic_nas.backbones.tabular import DenseBlock

        return DenseBlock(spec.in_ch, spec.out_ch, spec.act)
    raise ValueError(
        f"build_layer handles conv/mbconv/linear/maxout/dense specs, not {spec.kind!r} "
        "(fusion layers are built by harmonic_nas.fusion)"
    )
