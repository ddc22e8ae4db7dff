"""Analytic size features of a layer (multiply-accumulates, bytes moved) for the fallback predictor.

Rough on purpose: they only need to rank layers of one kind and scale with their size, since the
predictor is fitted per kind on the LUT's own measured entries.
"""

from __future__ import annotations

import math

from harmonic_nas.backbones.layers import LayerSpec
from harmonic_nas.fusion.layers import CELL_NORM

_F32 = 4


def _prod(shape: tuple[int, ...]) -> int:
    return math.prod(shape) if shape else 0


def _taps(spec: LayerSpec) -> int:
    """Weights of one kernel per channel pair: k x k (2-D), k (a 1-D signal layer)."""
    return spec.kernel if spec.dims == 1 else spec.kernel**2


def macs(spec: LayerSpec) -> float:
    """Multiply-accumulates of one forward pass at batch 1."""
    kind = spec.kind
    if kind == "conv":
        _, h, w = spec.input_shape
        ho, wo = -(-h // spec.stride), -(-w // spec.stride)
        return float(ho * wo * _taps(spec) * spec.in_ch * spec.out_ch)
    if kind == "mbconv":
        _, h, w = spec.input_shape
        ho, wo = -(-h // spec.stride), -(-w // spec.stride)
        mid = spec.mid_ch if spec.mid_ch > 0 else spec.in_ch
        expand = h * w * spec.in_ch * mid if spec.mid_ch > 0 else 0
        depthwise = ho * wo * _taps(spec) * mid
        project = ho * wo * mid * spec.out_ch
        se = 2 * mid * max(mid // 4, 1) if spec.use_se else 0
        return float(expand + depthwise + project + se)
    if kind in ("linear", "dense"):
        return float(spec.in_ch * spec.out_ch)
    if kind == "embedding":  # a lookup: one row copied per token
        return float(spec.input_shape[0] * spec.out_ch)
    if kind == "maxout":
        return float(spec.in_ch * spec.out_ch * max(spec.expand, 1))
    if kind == "fusion_op":
        # a generic mixing layer over (C, L); element-wise ops (Sum) are much cheaper
        if spec.op in ("Sum", CELL_NORM):
            return float(spec.C * spec.L)
        return float(spec.C * spec.C * spec.L + spec.C * spec.L * spec.L)
    if kind == "fusion_reshape":
        return float(_prod(spec.input_shape) + spec.L * spec.input_shape[0] * spec.C)
    if kind == "fusion_head":
        return float(_prod(spec.input_shape) + spec.in_ch * spec.out_ch)
    return float(_prod(spec.input_shape))


def params(spec: LayerSpec) -> float:
    """Approximate parameter count."""
    kind = spec.kind
    if kind == "conv":
        return float(_taps(spec) * spec.in_ch * spec.out_ch)
    if kind == "mbconv":
        mid = spec.mid_ch if spec.mid_ch > 0 else spec.in_ch
        expand = spec.in_ch * mid if spec.mid_ch > 0 else 0
        return float(expand + _taps(spec) * mid + mid * spec.out_ch)
    if kind in ("linear", "dense", "embedding", "fusion_head"):
        return float(spec.in_ch * spec.out_ch)
    if kind == "maxout":
        return float(spec.in_ch * spec.out_ch * max(spec.expand, 1))
    if kind == "fusion_op":
        return 0.0 if spec.op == "Sum" else float(spec.C * spec.C)
    if kind == "fusion_reshape":
        return float(spec.input_shape[0] * spec.C)
    return 0.0


def activation_elems(spec: LayerSpec) -> float:
    """Input plus output elements."""
    inp = _prod(spec.input_shape) * (2 if spec.kind == "fusion_op" else 1)
    out = _prod(tuple(abs(s) for s in spec.output_shape()))
    return float(inp + out)


def bytes_moved(spec: LayerSpec) -> float:
    """Bytes of weights plus activations read and written (float32)."""
    return float(_F32 * (params(spec) + activation_elems(spec)))


def feature_vector(spec: LayerSpec) -> tuple[float, float, float]:
    """``(MACs, bytes, 1)``: the regressors of the fallback predictor."""
    return (macs(spec), bytes_moved(spec), 1.0)
