"""``harmonic-nas export``: a Pareto model as one standalone, deployable file.

The model (extracted backbones + fused network) is rebuilt from ``models/<id>/arch.json`` and
``weights.pt``, traced with one example per modality, and written as TorchScript (``model.pt``) or
ONNX (``model.onnx``) with ``preprocess.json`` beside it. Before the file is kept, its outputs are
compared with the in-memory PyTorch model on real test inputs (onnxruntime for ONNX); a difference
above the tolerance is an error. Its latency is then measured on this machine (batch size 1).
"""

from __future__ import annotations

import datetime as _dt
import json
import keyword
import logging
import os
import re
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import nn

from harmonic_nas.config import ExperimentConfig
from harmonic_nas.errors import DataError, GenomeError, HarmonicError
from harmonic_nas.results._artifacts import model_dir, require_run_config
from harmonic_nas.results._predict import (
    MODEL_FILES,
    PREPROCESS_NAME,
    PREPROCESS_SCHEMA_VERSION,
    load_exported,
)
from harmonic_nas.results._raw import raw_recipes
from harmonic_nas.utils.io import atomic_write_json, read_json, safe_torch_load
from harmonic_nas.utils.progress import ProgressFn, no_progress
from harmonic_nas.utils.threads import torch_threads

if TYPE_CHECKING:
    from harmonic_nas.data import MultimodalDataset
    from harmonic_nas.fusion import ArchSpec, MultimodalNet

logger = logging.getLogger(__name__)

ExportFormat = Literal["torchscript", "onnx"]
FORMATS: tuple[str, ...] = ("torchscript", "onnx")
ONNX_OPSET = 17
DEFAULT_TOLERANCE = 1e-4


class ExportError(HarmonicError):
    """The exported model does not reproduce the PyTorch model (or could not be written)."""


@dataclass(frozen=True)
class ExportResult:
    """What ``export`` wrote and measured."""

    model_id: str
    format: str
    model_path: Path
    preprocess_path: Path
    max_abs_diff: float
    tolerance: float
    n_checked: int
    latency_ms: float  # median, batch 1, this machine
    latency_p90_ms: float
    repeats: int
    threads: int
    lut_latency_ms: float | None  # the LUT prediction of pareto.json (whole model)
    lut_latency_paper_ms: float | None  # backbones + fusion ops only
    lut_energy_mj: float | None
    device: str
    unused_modalities: tuple[str, ...] = ()  # read by no fusion cell (still graph inputs)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["model_path"] = str(self.model_path)
        d["preprocess_path"] = str(self.preprocess_path)
        return d


# --------------------------------------------------------------------------- model


def build_model(arch: ArchSpec) -> MultimodalNet:
    """An untrained ``MultimodalNet`` with the structure of ``arch`` (load weights into it).

    Backbones are the static subnets of the arch's genomes (``build_supernet(...).extract``);
    the fusion network is the ``FixedFusionNet`` of its genotype over every fusion point.
    """
    from harmonic_nas.backbones import build_supernet
    from harmonic_nas.fusion import (
        FixedFusionNet,
        MultimodalNet,
        point_refs,
        probe_feature_shapes,
    )
    from harmonic_nas.fusion.points import pooled_shape

    if arch.genotype is None:
        raise GenomeError(
            "the architecture has no fusion genotype (the model was not finalised); run "
            "`harmonic-nas search CONFIG` again"
        )
    backbones: dict[str, nn.Module] = {}
    for name, ma in arch.modalities.items():
        supernet = build_supernet((None, ma.shape), ma.preset, arch.n_classes, name)
        backbones[name] = supernet.extract(ma.genome).eval()
    shapes = probe_feature_shapes(backbones, {m: ma.shape for m, ma in arch.modalities.items()})
    points = [pooled_shape(shapes[m][k], arch.L) for m, k in point_refs(arch, shapes)]
    fusion = FixedFusionNet(points, arch.genotype, C=arch.C, L=arch.L, n_classes=arch.n_classes)
    return MultimodalNet(arch, backbones, fusion).eval()


def load_model(run: Path | str, model_id: str) -> tuple[MultimodalNet, ArchSpec]:
    """The Pareto model ``model_id`` of ``run`` as an eval-mode ``MultimodalNet`` and its ArchSpec."""
    from harmonic_nas.fusion import ArchSpec

    d = model_dir(run, model_id)
    arch = ArchSpec.load(d / "arch.json")
    model = build_model(arch)
    state = safe_torch_load(d / "weights.pt", what=f"weights of model '{model_id}'")
    if not isinstance(state, dict):
        raise HarmonicError(f"{d / 'weights.pt'} is not a state dict; rerun the search's finalise")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise HarmonicError(
            f"{d / 'weights.pt'} does not fit {d / 'arch.json'} ({first}); rerun the finalise step"
        ) from None
    model.eval()
    return model, arch


def argument_names(names: Sequence[str]) -> list[str]:
    """Python identifiers for modality names (TorchScript argument names): ``a-b`` -> ``a_b``."""
    out: list[str] = []
    for name in names:
        arg = re.sub(r"\W", "_", name)
        if not arg or arg[0].isdigit() or keyword.iskeyword(arg) or arg == "self":
            arg = f"x_{arg}"
        while arg in out:
            arg += "_"
        out.append(arg)
    return out


class RawInputModel(nn.Module):
    """The deployable graph: raw-scale inputs, one named argument per modality.

    ``forward(<modality>, ...)`` standardises each input inside the graph,
    ``(x * value_scale - mean) / std`` with the train statistics, then runs the
    ``MultimodalNet``. Build it with :meth:`build` (the forward signature names the modalities).
    """

    def __init__(
        self, net: nn.Module, names: Sequence[str], norm: Sequence[tuple[float, float, float]]
    ) -> None:
        super().__init__()
        self.net = net
        self.modality_names = list(names)
        for i, (scale, mean, std) in enumerate(norm):
            self.register_buffer(f"scale{i}", torch.tensor(scale, dtype=torch.float32))
            self.register_buffer(f"mean{i}", torch.tensor(mean, dtype=torch.float32))
            self.register_buffer(f"std{i}", torch.tensor(std, dtype=torch.float32))

    def standardise(self, xs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for i, x in enumerate(xs):
            scale, mean, std = (getattr(self, f"{k}{i}") for k in ("scale", "mean", "std"))
            out.append((x * scale - mean) / std)
        return out

    def run(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        out: torch.Tensor = self.net(*self.standardise(xs))
        return out

    @classmethod
    def build(
        cls, net: nn.Module, names: Sequence[str], norm: Sequence[tuple[float, float, float]]
    ) -> RawInputModel:
        """An instance whose ``forward`` takes one argument named after each modality."""
        args = argument_names(names)
        src = f"def forward(self, {', '.join(args)}):\n    return self.run([{', '.join(args)}])\n"
        scope: dict[str, Any] = {}
        exec(src, {}, scope)  # the source holds only sanitised identifiers
        named = type("RawInputModel", (cls,), {"forward": scope["forward"]})
        model: RawInputModel = named(net, names, norm)
        return model.eval()


def input_normalisation(
    meta: dict[str, Any], names: Sequence[str]
) -> list[tuple[float, float, float]]:
    """``(value_scale, mean, std)`` per input from ``preprocess.json`` metadata."""
    norm = meta.get("normalization") or {}
    scales = {i["name"]: float(i.get("raw", {}).get("value_scale", 1.0)) for i in meta["inputs"]}
    out = []
    for n in names:
        stats = norm.get(n) or {}
        out.append(
            (scales.get(n, 1.0), float(stats.get("mean", 0.0)), float(stats.get("std", 1.0)))
        )
    return out


def raw_scale(
    inputs: Sequence[torch.Tensor], norm: Sequence[tuple[float, float, float]]
) -> tuple[torch.Tensor, ...]:
    """Standardised pipeline inputs back at raw scale: ``(x * std + mean) / value_scale``."""
    return tuple(
        ((x.double() * std + mean) / scale).float().contiguous()
        for x, (scale, mean, std) in zip(inputs, norm, strict=True)
    )


def _test_inputs(
    cfg: ExperimentConfig, arch: ArchSpec, n: int
) -> tuple[tuple[torch.Tensor, ...], MultimodalDataset]:
    """The first ``n`` samples of the test split (standardised), in arch order, and the dataset."""
    from harmonic_nas.data import load_dataset

    ds = load_dataset(cfg)
    split = ds.split("test")
    missing = [m for m in arch.modalities if m not in split.inputs]
    if missing:
        raise HarmonicError(
            f"the test split of '{ds.name}' has no modality '{missing[0]}' that the model needs; "
            "check the run's dataset"
        )
    if ds.num_classes != arch.n_classes:
        raise DataError(
            f"the model has {arch.n_classes} outputs but dataset '{ds.name}' has "
            f"{ds.num_classes} classes; the run's config.yaml no longer matches its models"
        )
    if len(split) == 0:
        raise DataError(
            f"the test split of '{ds.name}' is empty; the export is checked on real test inputs"
        )
    k = min(n, len(split))
    inputs = tuple(split.inputs[m][:k].float().contiguous() for m in arch.modalities)
    return inputs, ds


# --------------------------------------------------------------------------- metadata


def unused_modalities(model: MultimodalNet) -> tuple[str, ...]:
    """Modalities whose backbone feeds no fusion point the genotype reads."""
    used = {mi for mi, _ in model.refs}
    return tuple(m for i, m in enumerate(model.modality_names) if i not in used)


def preprocess_metadata(
    cfg: ExperimentConfig,
    arch: ArchSpec,
    ds: MultimodalDataset,
    model_id: str,
    unused: Sequence[str] = (),
) -> dict[str, Any]:
    """``preprocess.json``: how to feed the exported model (either format) and read its output.

    The model takes raw-scale inputs and standardises them inside the graph; each input's
    ``raw`` recipe says how a raw file (image, wav) or array becomes that input.
    """
    specs = {m.name: m for m in ds.modalities}
    norm = ds.meta.get("normalization") if isinstance(ds.meta, dict) else None
    recipes = raw_recipes(cfg, ds)
    task = str(ds.task)
    return {
        "schema_version": PREPROCESS_SCHEMA_VERSION,
        "model_id": model_id,
        "run": cfg.name,
        "model_files": dict(MODEL_FILES),
        "arch_file": "arch.json",
        "inputs": [
            {
                "name": name,
                "argument": arg,
                "kind": specs[name].kind if name in specs else "",
                "shape": list(m.shape),
                "dtype": "float32",
                "raw": recipes.get(name, {"type": "array", "value_scale": 1.0}),
            }
            for (name, m), arg in zip(
                arch.modalities.items(), argument_names(list(arch.modalities)), strict=True
            )
        ],
        "input_order": list(arch.modalities),
        "unused_inputs": list(unused),
        "batch_dim": 0,
        "output": {
            "name": "logits",
            "shape": [int(arch.n_classes)],
            "activation": "sigmoid" if task == "multilabel" else "softmax",
        },
        "task": task,
        "num_classes": int(ds.num_classes),
        "class_names": [str(c) for c in ds.class_names],
        "threshold": float(cfg.fusion.threshold) if task == "multilabel" else None,
        "normalization": norm if isinstance(norm, dict) else None,
        "normalization_in_graph": True,
        "normalization_note": (
            "feed raw-scale inputs (each input's 'raw' recipe): the model standardises them "
            "itself, x = (input * value_scale - mean) / std, with the train split's statistics"
        ),
        "dataset": {
            "name": cfg.dataset.name,
            "options": dict(cfg.dataset.options),
        },
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


# --------------------------------------------------------------------------- writing


def _write_torchscript(
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


def _write_onnx(
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
    _keep_every_input(proto, names, [tuple(x.shape[1:]) for x in example])
    entry = proto.metadata_props.add()
    entry.key, entry.value = PREPROCESS_NAME, json.dumps(meta)
    proto.producer_name = "harmonic-nas"
    onnx.save(proto, str(path))


def _keep_every_input(proto: Any, names: Sequence[str], shapes: Sequence[tuple[int, ...]]) -> None:
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


def _measure(fn: Callable[[], Any], warmup: int, repeats: int) -> tuple[float, float]:
    """Median and 90th percentile wall time (ms) of ``fn``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    times.sort()
    p90 = times[min(len(times) - 1, round(0.9 * (len(times) - 1)))]
    return statistics.median(times), p90


def export(
    run: Path | str,
    model_id: str,
    fmt: str = "torchscript",
    *,
    samples: int = 64,
    tolerance: float = DEFAULT_TOLERANCE,
    warmup: int = 10,
    repeats: int = 50,
    progress: ProgressFn = no_progress,
) -> ExportResult:
    """Export Pareto model ``model_id`` of ``run`` as ``fmt`` (``torchscript`` or ``onnx``).

    Writes ``run/models/<id>/model.pt`` or ``model.onnx`` and ``preprocess.json``; checks the file
    against the PyTorch model on up to ``samples`` test inputs (ExportError above ``tolerance``);
    measures its latency at batch size 1 (``warmup`` runs, then ``max(repeats, 50)`` timed runs).
    """
    if fmt not in FORMATS:
        raise HarmonicError(f"unknown export format '{fmt}'; use one of {', '.join(FORMATS)}")
    run = Path(run)
    cfg = require_run_config(run)
    d = model_dir(run, model_id)
    total = 5
    progress("export", 0, total)
    model, arch = load_model(run, model_id)
    inputs, ds = _test_inputs(cfg, arch, samples)
    progress("export", 1, total)
    unused = unused_modalities(model)
    meta = preprocess_metadata(cfg, arch, ds, model_id, unused)
    names = list(arch.modalities)
    norm = input_normalisation(meta, names)
    raw = raw_scale(inputs, norm)
    deployable = RawInputModel.build(model, names, norm)

    out = d / MODEL_FILES[fmt]
    stem, suffix = MODEL_FILES[fmt].split(".")
    tmp = d / f".{stem}.tmp{os.getpid()}.{suffix}"
    example = tuple(x[:1] for x in raw)
    try:
        if fmt == "torchscript":
            _write_torchscript(deployable, example, tmp, meta, json.dumps(arch.to_json()))
        else:
            _write_onnx(deployable, example, tmp, names, meta)
    except HarmonicError:
        tmp.unlink(missing_ok=True)
        raise
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise ExportError(
            f"exporting model '{model_id}' to {fmt} failed ({exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); try the other format"
        ) from exc
    progress("export", 2, total)

    threads = int(cfg.device.threads)
    try:
        with torch.inference_mode():
            expected = model(*inputs).numpy()  # the searched model on the standardised inputs
        exported = load_exported(tmp, threads=threads)  # reads the metadata embedded in the file
        got = exported.logits({n: x.numpy() for n, x in zip(names, raw, strict=True)})
        diff = float(np.max(np.abs(got - expected))) if expected.size else 0.0
        if not np.isfinite(diff) or diff > tolerance:
            raise ExportError(
                f"the {fmt} export of '{model_id}' differs from the PyTorch model by {diff:.3g} "
                f"(max abs, {len(inputs[0])} raw-scale test samples) > tolerance {tolerance:g}; "
                "the file was not written"
            )
        progress("export", 3, total)
        one = [x[:1].numpy() for x in raw]
        n_rep = max(50, int(repeats))
        with torch_threads(threads):
            med, p90 = _measure(lambda: exported.run(one), warmup, n_rep)
        progress("export", 4, total)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)

    pre = atomic_write_json(d / PREPROCESS_NAME, meta)
    member = _pareto_member(run, model_id)
    result = ExportResult(
        model_id=model_id,
        format=fmt,
        model_path=out,
        preprocess_path=pre,
        max_abs_diff=diff,
        tolerance=tolerance,
        n_checked=len(inputs[0]),
        latency_ms=med,
        latency_p90_ms=p90,
        repeats=n_rep,
        threads=threads,
        lut_latency_ms=_f(member.get("latency_ms")),
        lut_latency_paper_ms=_f(member.get("latency_paper_ms")),
        lut_energy_mj=_f(member.get("energy_mj")),
        device=str(cfg.device.name),
        unused_modalities=unused,
    )
    _record(d, result)
    progress("export", total, total)
    logger.info(
        "exported %s as %s to %s (max abs diff %.2e, %.3f ms)", model_id, fmt, out, diff, med
    )
    return result


def _f(v: Any) -> float | None:
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


def _pareto_member(run: Path, model_id: str) -> dict[str, Any]:
    pareto = read_json(run / "pareto.json", what="Pareto set")
    for m in pareto.get("members") or []:
        if isinstance(m, dict) and m.get("id") == model_id:
            return m
    return {}


def _record(d: Path, result: ExportResult) -> None:
    """Keep the last export's checks and timings in ``models/<id>/export.json``."""
    path = d / "export.json"
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            old = read_json(path, what="export record")
            data = old if isinstance(old, dict) else {}
        except HarmonicError:
            data = {}
    data["schema_version"] = 1
    data[result.format] = result.to_json()
    atomic_write_json(path, data)
