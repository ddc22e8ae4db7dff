"""Writing a deployable model file (TorchScript or ONNX) and timing it.

The writers put the file at the path they are given (the caller's temporary file, renamed into
place only once the file has been checked); ``preprocess.json`` is embedded in both formats.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harmonic_nas.results._predict import PREPROCESS_NAME

logger = logging.getLogger(__name__)

ONNX_OPSET = 17


def write_torchscript(
    model: nn.Module,
    example: tuple[torch.Tensor, ...],
    path: Path,
    meta: dict[str, Any],
    arch_json: str,
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, example, check_trace=False)
        torch.jit.save(
            traced,
            str(path),
            _extra_files={PREPROCESS_NAME: json.dumps(meta), "arch.json": arch_json},
        )


def write_onnx(
    model: nn.Module,
    example: tuple[torch.Tensor, ...],
    path: Path,
    names: Sequence[str],
    meta: dict[str, Any],
) -> None:
    import onnx

    dynamic = {n: {0: "batch"} for n in names}
    dynamic["logits"] = {0: "batch"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            example,
            str(path),
            input_names=list(names),
            output_names=["logits"],
            dynamic_axes=dynamic,
            opset_version=ONNX_OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    proto = onnx.load(str(path))
    keep_every_input(proto, names, [tuple(x.shape[1:]) for x in example])
    entry = proto.metadata_props.add()
    entry.key, entry.value = PREPROCESS_NAME, json.dumps(meta)
    proto.producer_name = "harmonic-nas"
    onnx.save(proto, str(path))


def keep_every_input(proto: Any, names: Sequence[str], shapes: Sequence[tuple[int, ...]]) -> None:
    """Put back the inputs the exporter pruned (a modality no fusion cell reads), in order.

    The same inputs as the TorchScript file and ``predict``: an unused input is accepted and
    ignored, so every deployment feeds every modality.
    """
    import onnx

    present = {i.name: i for i in proto.graph.input}
    if all(n in present for n in names):
        return
    inputs = [
        present[n]
        if n in present
        else onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, ["batch", *shape])
        for n, shape in zip(names, shapes, strict=True)
    ]
    extra = [i for i in proto.graph.input if i.name not in set(names)]
    del proto.graph.input[:]
    proto.graph.input.extend([*inputs, *extra])
