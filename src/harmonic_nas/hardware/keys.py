"""LUT keys: the ONE place a :class:`LayerSpec` becomes a lookup-table key (and back).

The published Harmonic-NAS tables (Jetson TX2 / AGX) use these formats, reproduced exactly so that
they import losslessly::

    ConvLayer-input:1_<C>_<H>_<W>-in_ch:<i>-out_ch:<o>-kernel:<k>-stride:<s>-use_se:<0|1>-use_bn:<0|1>
    MBConvLayer-input:1_<C>_<H>_<W>-in_ch:<i>-out_ch:<o>-mid_ch:<m>-expand:<e>-kernel:<k>-stride:<s>-use_se:<0|1>
    LinearLayer-input:<n>-in_ch:<n>-out_ch:<m>
    <Op>-input:1_<C>_<L>-N:1-C:<C>-L:<L>                  (fusion operators)

The paper had no table for the Maxout text backbone nor for the fusion reshape / classifier layers;
their keys follow the same ``<Name>-input:1_<dims>-<field>:<value>...`` style::

    MaxoutLayer-input:1_<n>-in_ch:<n>-out_ch:<m>-pieces:<k>-use_bn:<0|1>
    DenseLayer-input:1_<n>-in_ch:<n>-out_ch:<m>-use_bn:<0|1>   (a hidden layer of the elastic MLP)
    EmbeddingLayer-input:1_<L>-vocab:<V>-dim:<E>                  (token ids -> E channels)
    Conv1dLayer-input:1_<C>_<T>-in_ch:<i>-out_ch:<o>-kernel:<k>-stride:<s>-use_se:<0|1>-use_bn:<0|1>
    MBConv1dLayer-input:1_<C>_<T>-in_ch:<i>-out_ch:<o>-mid_ch:<m>-expand:<e>-kernel:<k>-stride:<s>-use_se:<0|1>

(the 1-D layers of a signal backbone: ``1 x k`` kernels along time; their spec's input is
``(C, 1, T)`` with ``dims == 1``, the key drops the height of 1)
    FusionReshape-input:1_<dims>-C:<C>-L:<L>
    FusionHead-input:1_<dims>-in_ch:<i>-out_ch:<o>-C:<C>
"""

from __future__ import annotations

import re
from dataclasses import replace

from harmonic_nas.backbones.layers import LayerSpec
from harmonic_nas.errors import LUTError

CONV = "ConvLayer"
MBCONV = "MBConvLayer"
CONV1D = "Conv1dLayer"
MBCONV1D = "MBConv1dLayer"
LINEAR = "LinearLayer"
MAXOUT = "MaxoutLayer"
DENSE = "DenseLayer"
EMBEDDING = "EmbeddingLayer"
RESHAPE = "FusionReshape"
HEAD = "FusionHead"

#: key prefix of each layer kind (fusion operators use the operator's own name)
KIND_PREFIX: dict[str, str] = {
    "conv": CONV,
    "mbconv": MBCONV,
    "linear": LINEAR,
    "maxout": MAXOUT,
    "dense": DENSE,
    "embedding": EMBEDDING,
    "fusion_reshape": RESHAPE,
    "fusion_head": HEAD,
}
#: implementation revision of a key prefix whose exported graph changed after tables were
#: profiled with it (absent: 1). A profiled table records the revisions it was measured at
#: (``LUT.layer_revisions``); entries of an older revision are dropped on load and re-profiled.
#: FusionReshape 2: the fusion point's pooling is one fixed max-pool where its windows are
#: uniform (~10 slice nodes before; ~8 us less per point on ONNX Runtime CPU).
LAYER_REVISIONS: dict[str, int] = {RESHAPE: 2}
#: key prefix of the 1-D (``dims == 1``) conv layers
KIND_PREFIX_1D: dict[str, str] = {"conv": CONV1D, "mbconv": MBCONV1D}
_PREFIX_KIND = {v: k for k, v in KIND_PREFIX.items()}
_PREFIX_KIND_1D = {v: k for k, v in KIND_PREFIX_1D.items()}
_OP_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _b(flag: bool) -> int:
    return 1 if flag else 0


def _dims(shape: tuple[int, ...]) -> str:
    return "_".join(str(int(s)) for s in (1, *shape))


def _check(spec: LayerSpec, rank: int | tuple[int, ...]) -> None:
    ranks = (rank,) if isinstance(rank, int) else rank
    if len(spec.input_shape) not in ranks:
        raise LUTError(
            f"cannot build a LUT key for a {spec.kind} layer with input shape {spec.input_shape}; "
            f"expected {' or '.join(str(r) for r in ranks)} dimensions (without batch)"
        )


def lut_key(spec: LayerSpec) -> str:
    """The lookup-table key of one layer at batch size 1 (published format where one exists)."""
    kind = spec.kind
    if kind in ("conv", "mbconv"):
        _check(spec, 3)
        shape = spec.input_shape
        prefix = KIND_PREFIX[kind]
        if spec.dims == 1:
            if shape[1] != 1:
                raise LUTError(f"a 1-D {kind} layer needs input shape (C, 1, T), got {shape}")
            shape, prefix = (shape[0], shape[2]), KIND_PREFIX_1D[kind]
        head = f"{prefix}-input:{_dims(shape)}-in_ch:{spec.in_ch}-out_ch:{spec.out_ch}"
        if kind == "conv":
            return (
                f"{head}-kernel:{spec.kernel}-stride:{spec.stride}-use_se:{_b(spec.use_se)}"
                f"-use_bn:{_b(spec.use_bn)}"
            )
        return (
            f"{head}-mid_ch:{spec.mid_ch}-expand:{spec.expand}-kernel:{spec.kernel}"
            f"-stride:{spec.stride}-use_se:{_b(spec.use_se)}"
        )
    if kind == "linear":
        _check(spec, 1)
        return f"{LINEAR}-input:{spec.input_shape[0]}-in_ch:{spec.in_ch}-out_ch:{spec.out_ch}"
    if kind == "maxout":
        _check(spec, 1)
        return (
            f"{MAXOUT}-input:{_dims(spec.input_shape)}-in_ch:{spec.in_ch}-out_ch:{spec.out_ch}"
            f"-pieces:{spec.expand}-use_bn:{_b(spec.use_bn)}"
        )
    if kind == "embedding":
        _check(spec, 1)
        return f"{EMBEDDING}-input:{_dims(spec.input_shape)}-vocab:{spec.in_ch}-dim:{spec.out_ch}"
    if kind == "dense":
        _check(spec, 1)
        return (
            f"{DENSE}-input:{_dims(spec.input_shape)}-in_ch:{spec.in_ch}-out_ch:{spec.out_ch}"
            f"-use_bn:{_b(spec.use_bn)}"
        )
    if kind == "fusion_op":
        if not _OP_NAME.match(spec.op):
            raise LUTError(f"fusion operator name {spec.op!r} cannot be used in a LUT key")
        return f"{spec.op}-input:1_{spec.C}_{spec.L}-N:1-C:{spec.C}-L:{spec.L}"
    if kind == "fusion_reshape":
        _check(spec, (1, 2, 3))
        return f"{RESHAPE}-input:{_dims(spec.input_shape)}-C:{spec.C}-L:{spec.L}"
    if kind == "fusion_head":
        _check(spec, (1, 2, 3))
        return (
            f"{HEAD}-input:{_dims(spec.input_shape)}-in_ch:{spec.in_ch}-out_ch:{spec.out_ch}"
            f"-C:{spec.C}"
        )
    raise LUTError(f"no LUT key format for layer kind {kind!r}")


def _ints(text: str, key: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split("_"))
    except ValueError:
        raise LUTError(f"malformed LUT key {key!r}: bad shape {text!r}") from None


def parse_key(key: str) -> LayerSpec:
    """Inverse of :func:`lut_key`: the layer a key describes (``lut_key(parse_key(k)) == k``).

    Raises :class:`LUTError` for a key that follows none of the formats.
    """
    name, _, rest = key.partition("-")
    fields: dict[str, str] = {}
    for part in rest.split("-") if rest else []:
        field, sep, value = part.partition(":")
        if not sep or not field or field in fields:
            raise LUTError(f"malformed LUT key {key!r}: bad field {part!r}")
        fields[field] = value
    try:
        spec = _parse_fields(name, fields, key)
    except (KeyError, ValueError):
        raise LUTError(f"malformed LUT key {key!r}: missing or non-integer fields") from None
    if lut_key(spec) != key:
        raise LUTError(f"malformed LUT key {key!r}: not in canonical form ({lut_key(spec)!r})")
    return spec


def _parse_fields(name: str, f: dict[str, str], key: str) -> LayerSpec:
    if name in _PREFIX_KIND_1D:
        spec = _parse_fields(KIND_PREFIX[_PREFIX_KIND_1D[name]], f, key)
        if len(spec.input_shape) != 2:
            raise LUTError(f"malformed LUT key {key!r}: a 1-D layer's input is 1_<C>_<T>")
        c, t = spec.input_shape
        return replace(spec, input_shape=(c, 1, t), dims=1)
    kind = _PREFIX_KIND.get(name)
    if kind is None:
        if not _OP_NAME.match(name) or "N" not in f:
            raise LUTError(f"unknown LUT key kind {name!r} in {key!r}")
        dims = _ints(f["input"], key)
        c, length = int(f["C"]), int(f["L"])
        return LayerSpec(
            kind="fusion_op", input_shape=dims[1:], in_ch=c, out_ch=c, op=name, C=c, L=length
        )
    if kind == "linear":
        n = int(f["input"])
        return LayerSpec(
            kind="linear", input_shape=(n,), in_ch=int(f["in_ch"]), out_ch=int(f["out_ch"])
        )
    dims = _ints(f["input"], key)
    if not dims or dims[0] != 1:
        raise LUTError(f"malformed LUT key {key!r}: batch size must be 1")
    shape = dims[1:]
    if kind == "conv":
        return LayerSpec(
            kind="conv",
            input_shape=shape,
            in_ch=int(f["in_ch"]),
            out_ch=int(f["out_ch"]),
            kernel=int(f["kernel"]),
            stride=int(f["stride"]),
            use_se=f["use_se"] == "1",
            use_bn=f["use_bn"] == "1",
        )
    if kind == "mbconv":
        return LayerSpec(
            kind="mbconv",
            input_shape=shape,
            in_ch=int(f["in_ch"]),
            out_ch=int(f["out_ch"]),
            mid_ch=int(f["mid_ch"]),
            expand=int(f["expand"]),
            kernel=int(f["kernel"]),
            stride=int(f["stride"]),
            use_se=f["use_se"] == "1",
        )
    if kind == "maxout":
        return LayerSpec(
            kind="maxout",
            input_shape=shape,
            in_ch=int(f["in_ch"]),
            out_ch=int(f["out_ch"]),
            expand=int(f["pieces"]),
            use_bn=f["use_bn"] == "1",
        )
    if kind == "embedding":
        return LayerSpec(
            kind="embedding",
            input_shape=shape,
            in_ch=int(f["vocab"]),
            out_ch=int(f["dim"]),
            act="none",
        )
    if kind == "dense":
        return LayerSpec(
            kind="dense",
            input_shape=shape,
            in_ch=int(f["in_ch"]),
            out_ch=int(f["out_ch"]),
            use_bn=f["use_bn"] == "1",
        )
    if kind == "fusion_reshape":
        c, length = int(f["C"]), int(f["L"])
        return LayerSpec(
            kind="fusion_reshape",
            input_shape=shape,
            in_ch=shape[0],
            out_ch=c if len(shape) == 3 else c * length,
            kernel=1,
            C=c,
            L=length,
        )
    return LayerSpec(
        kind="fusion_head",
        input_shape=shape,
        in_ch=int(f["in_ch"]),
        out_ch=int(f["out_ch"]),
        use_bn=False,
        C=int(f["C"]),
        L=shape[-1] if len(shape) == 2 else 0,
    )


def canonical(spec: LayerSpec) -> LayerSpec:
    """The spec with every field the key does not encode reset (two specs with one key are one)."""
    return parse_key(lut_key(spec))
