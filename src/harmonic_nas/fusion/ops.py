"""Fusion operators: a registry of two-input modules ``(B, C, L) x (B, C, L) -> (B, C, L)``.

Semantics follow BM-NAS / Harmonic-NAS:

* ``Sum``: ``x + y``.
* ``ScaleDotAttn``: scaled dot-product attention over the L positions, queries from ``x``, keys and
  values from ``y`` (channels are the feature dimension), dropout, LayerNorm over (C, L).
* ``LinearGLU``: concat on channels, 1x1 conv 2C -> 2C, BN, GLU over channels, dropout.
* ``ConcatFC``: concat on channels, 1x1 conv 2C -> C, BN, ReLU, dropout.
* ``CatConvMish``: concat on channels, 1x1 conv 2C -> C, BN, Mish, dropout.
* ``SE1``: squeeze ``x`` (mean over L), FC C -> C, ReLU, sigmoid, excite (rescale) ``y``.
* ``SE2``: the mirror of SE1 (squeeze ``y``, excite ``x``); registered, not in the default set.

Add an operator with one decorated factory; everything else (search, fixed net, costing) picks it
up by name::

    @register_op("MyOp")
    def _my_op(C: int, L: int, dropout: float) -> nn.Module: ...
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harmonic_nas.errors import GenomeError

logger = logging.getLogger(__name__)

OpFactory = Callable[[int, int, float], nn.Module]

_OPS: dict[str, OpFactory] = {}


def register_op(name: str) -> Callable[[OpFactory], OpFactory]:
    """Decorator: register ``factory(C, L, dropout) -> nn.Module`` under ``name``."""

    def deco(factory: OpFactory) -> OpFactory:
        if name in _OPS:
            raise ValueError(f"fusion operator {name!r} is already registered")
        _OPS[name] = factory
        return factory

    return deco


def list_ops() -> list[str]:
    """Registered operator names, in registration order."""
    return list(_OPS)


def check_ops(names: tuple[str, ...] | list[str]) -> None:
    """GenomeError (one line) for an unknown operator or an empty/duplicated list."""
    if not names:
        raise GenomeError("the fusion operator list is empty; list at least one of " + _known())
    for name in names:
        if name not in _OPS:
            raise GenomeError(f"unknown fusion operator {name!r}; choose from {_known()}")
    if len(set(names)) != len(names):
        raise GenomeError(f"fusion operators are listed twice in {list(names)}; list each once")


def _known() -> str:
    return ", ".join(_OPS)


def build_op(name: str, C: int, L: int, dropout: float = 0.1) -> nn.Module:
    """A fresh operator module ``(B, C, L) x (B, C, L) -> (B, C, L)``."""
    if name not in _OPS:
        raise GenomeError(f"unknown fusion operator {name!r}; choose from {_known()}")
    if C < 1 or L < 1:
        raise GenomeError(f"fusion operators need C >= 1 and L >= 1, got C={C}, L={L}")
    return _OPS[name](C, L, dropout)


# --------------------------------------------------------------------------------------------
# Operators


class Dropout(nn.Dropout):
    """``nn.Dropout`` with a 4x cheaper mask on CPU (same distribution up to p rounded to 1/65536).

    torch draws one Mersenne-Twister number per element for a dropout mask, which on CPU costs
    more than the 1x1 convs of a fusion op. Here one 64-bit draw gives four 16-bit uniforms. In
    eval mode (and so in traced / scripted / exported models) it is the identity.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        n = x.numel()
        # literal ints (not 2**63) so that TorchScript can compile the training path too
        words = torch.randint(
            -9223372036854775807,
            9223372036854775807,
            [(n + 3) // 4],
            dtype=torch.int64,
            device=x.device,
        )
        bits = words.view(torch.int16)[:n].view(x.shape)
        keep = bits >= int(round(self.p * 65536)) - 32768  # noqa: RUF046 (TorchScript round -> float)
        return x * keep.to(x.dtype).mul_(1.0 / (1.0 - self.p))


class Sum(nn.Module):
    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return x + y


class ScaleDotAttn(nn.Module):
    """Scaled dot-product attention: queries from x, keys/values from y, positions attend."""

    def __init__(self, C: int, L: int, dropout: float) -> None:
        super().__init__()
        self.scale = 1.0 / math.sqrt(C)
        self.dropout = Dropout(dropout)
        self.ln = nn.LayerNorm([C, L])

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        q = x.transpose(1, 2)  # (B, L, C)
        scores = torch.bmm(q, y) * self.scale  # (B, L, L)
        attn = torch.softmax(scores, dim=-1)
        out = torch.bmm(y, attn.transpose(1, 2))  # (B, C, L) == (attn @ y^T)^T
        return self.ln(self.dropout(out))


class CatConv(nn.Module):
    """Base of the concat -> 1x1 conv -> BN -> activation -> dropout operators.

    Subclasses set ``out_mult`` (conv output channels / C) and the static :meth:`act` (channels
    on dim 1). The searchable mixed op runs the convs and BNs of all such operators of a node as
    one GEMM and one batch norm over stacked channels (see ``network.MixedOp``).
    """

    out_mult = 1

    def __init__(self, C: int, L: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2 * C, self.out_mult * C, 1)
        self.bn = nn.BatchNorm1d(self.out_mult * C)
        self.dropout = Dropout(dropout)

    @staticmethod
    def act(z: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.dropout(self.act(self.bn(self.conv(torch.cat([x, y], dim=1)))))


class LinearGLU(CatConv):
    out_mult = 2

    @staticmethod
    def act(z: Tensor) -> Tensor:
        return F.glu(z, dim=1)


class ConcatFC(CatConv):
    @staticmethod
    def act(z: Tensor) -> Tensor:
        return F.relu(z)


class CatConvMish(CatConv):
    @staticmethod
    def act(z: Tensor) -> Tensor:
        return F.mish(z)


def catconv_class(name: str) -> type[CatConv] | None:
    """The :class:`CatConv` subclass registered as ``name`` (None for other operators)."""
    factory = _OPS.get(name)
    if isinstance(factory, type) and issubclass(factory, CatConv):
        return factory
    return None


class SE1(nn.Module):
    """Squeeze x, excite y: ``y * sigmoid(relu(fc(mean_L(x))))``."""

    def __init__(self, C: int, L: int, dropout: float) -> None:
        super().__init__()
        self.fc = nn.Linear(C, C)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        gate = torch.sigmoid(F.relu(self.fc(x.mean(dim=-1))))
        return y * gate.unsqueeze(-1)


class SE2(SE1):
    """Squeeze y, excite x."""

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return super().forward(y, x)


register_op("Sum")(lambda C, L, dropout: Sum())
register_op("ScaleDotAttn")(ScaleDotAttn)
register_op("LinearGLU")(LinearGLU)
register_op("ConcatFC")(ConcatFC)
register_op("SE1")(SE1)
register_op("CatConvMish")(CatConvMish)
register_op("SE2")(SE2)
