"""Costed layers: what the hardware cost model looks up, one :class:`LayerSpec` per layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LayerKind = Literal[
    "conv",
    "mbconv",
    "linear",
    "maxout",
    "dense",
    "embedding",
    "fusion_op",
    "fusion_reshape",
    "fusion_head",
]


@dataclass(frozen=True)
class LayerSpec:
    """One layer as the cost model sees it, at batch size 1.

    ``input_shape`` excludes the batch: (C, H, W) for conv/mbconv/fusion_reshape, (n,) for linear,
    maxout and dense, (C, L) for fusion_op/fusion_head. ``hardware.keys.lut_key`` turns it into a LUT key.
    ``dims == 1``: a conv/mbconv of a 1-D (signal) backbone, input ``(C, 1, T)``, kernel ``1 x k``
    and stride ``1 x s`` along time.
    """

    kind: LayerKind
    input_shape: tuple[int, ...]
    in_ch: int
    out_ch: int
    mid_ch: int = 0
    expand: int = 1
    kernel: int = 1
    stride: int = 1
    use_se: bool = False
    use_bn: bool = True
    act: str = "relu"
    op: str = ""
    C: int = 0
    L: int = 0
    dims: int = 2

    def output_shape(self) -> tuple[int, ...]:
        """Shape (without batch) this layer produces."""
        if self.kind in ("conv", "mbconv"):
            _, h, w = self.input_shape
            return (self.out_ch, -(-h // self.stride), -(-w // self.stride))
        if self.kind == "embedding":  # token ids (L,) -> (E, L), the sequence the 1-D body reads
            return (self.out_ch, self.input_shape[0])
        if self.kind in ("linear", "maxout", "dense", "fusion_head"):
            return (self.out_ch,)
        if self.kind == "fusion_reshape":
            return (self.C, self.L)
        return (self.C, self.L)
