"""``harmonic-nas export``: a Pareto model as one standalone, deployable file.

The model (extracted backbones + fused network) is rebuilt from ``models/<id>/arch.json`` and
``weights.pt``, traced with one example per modality, and written as TorchScript (``model.pt``) or
ONNX (``model.onnx``) with ``preprocess.json`` beside it. Before the file is kept, its outputs are
compared with the in-memory PyTorch model on real test inputs (onnxruntime for ONNX); a difference
above the tolerance is an error. Its latency is then measured on this machine (batch size 1).

Decide first, write after: every input (config, ``pareto.json`` with its schema version, the
model's ``arch.json`` and weights, the dataset, a writable model directory) is validated before
anything is written, and every output is written atomically, so a bad input leaves an existing
export byte-identical.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from harmonic_nas.config import ExperimentConfig
from harmonic_nas.errors import DataError, HarmonicError
from harmonic_nas.hardware.backends import measure_stable
from harmonic_nas.hardware.identity import machine_identity
from harmonic_nas.results._artifacts import SCHEMA_VERSION, model_dir, require_run_config
from harmonic_nas.results._model import (
    RawInputModel,
    argument_names,
    build_model,
    input_normalisation,
    load_model,
    raw_scale,
    unused_modalities,
)
from harmonic_nas.results._predict import (
    MODEL_FILES,
    PREPROCESS_NAME,
    PREPROCESS_SCHEMA_VERSION,
    ExportedModel,
    load_exported,
)
from harmonic_nas.results._raw import raw_recipes
from harmonic_nas.results._serialise import ONNX_OPSET, write_onnx, write_torchscript
from harmonic_nas.utils.io import atomic_write_json, check_writable_dir, read_json, writing
from harmonic_nas.utils.progress import ProgressFn, no_progress
from harmonic_nas.utils.threads import torch_threads

if TYPE_CHECKING:
    from harmonic_nas.data import MultimodalDataset
    from harmonic_nas.fusion import ArchSpec, MultimodalNet
    from harmonic_nas.fusion.late import LateFusionNet

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_TOLERANCE",
    "FORMATS",
    "ONNX_OPSET",
    "ExportError",
    "ExportFormat",
    "ExportResult",
    "build_model",
    "export",
    "load_model",
    "preprocess_metadata",
]

ExportFormat = Literal["torchscript", "onnx"]
FORMATS: tuple[str, ...] = ("torchscript", "onnx")
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
    latency_p10_ms: float | None = None  # the statistic the LUT keeps
    split_half_pct: float | None = None  # how far the two halves' medians differ (noise floor)
    measured_on: str = ""  # this machine (identity), where latency_ms was measured
    lut_is_other_machine: bool | None = None  # the LUT describes another device or machine

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["model_path"] = str(self.model_path)
        d["preprocess_path"] = str(self.preprocess_path)
        return d


# --------------------------------------------------------------------------- inputs (read first)


@dataclass(frozen=True)
class _Inputs:
    """Everything ``export`` reads, validated before anything is written."""

    cfg: ExperimentConfig
    directory: Path
    member: dict[str, Any]
    model: MultimodalNet | LateFusionNet
    arch: ArchSpec
    inputs: tuple[torch.Tensor, ...]
    dataset: MultimodalDataset


def _pareto_member(run: Path, model_id: str) -> dict[str, Any]:
    """The member ``model_id`` of ``run/pareto.json`` (``{}`` if it is not listed); a corrupt file,
    a wrong schema version or a malformed member list is a one-line error."""
    path = run / "pareto.json"
    pareto = read_json(path, schema_version=SCHEMA_VERSION, what="Pareto set")
    members = pareto.get("members")
    if not isinstance(members, list):
        raise HarmonicError(
            f"Pareto set {path} has no list of members; rerun `harmonic-nas search CONFIG` "
            "to finalise the run"
        )
    for m in members:
        if isinstance(m, dict) and m.get("id") == model_id:
            return m
    return {}


def _read_inputs(run: Path, model_id: str, samples: int) -> _Inputs:
    cfg = require_run_config(run)
    d = model_dir(run, model_id)
    member = _pareto_member(run, model_id)
    model, arch = load_model(run, model_id)
    inputs, ds = _test_inputs(cfg, arch, samples)
    check_writable_dir(d)
    return _Inputs(cfg, d, member, model, arch, inputs, ds)


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
            "itself, x = (input * value_scale - mean) / std, with the train split's statistics; "
            "in 'channel' mode mean and std are lists, one per channel (axis 0 of a sample: a "
            "signal's channel, an image's plane, a table's feature)"
        ),
        "dataset": {
            "name": cfg.dataset.name,
            "options": dict(cfg.dataset.options),
        },
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


# --------------------------------------------------------------------------- export


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
    measures its latency at batch size 1 with the profiler's protocol (``warmup`` runs, then bursts
    of ``max(repeats, 50)`` timed runs until the median settles within the noise floor:
    :func:`~harmonic_nas.hardware.backends.measure_stable`).
    Every input is validated first: a bad one leaves the model directory as it was.
    """
    if fmt not in FORMATS:
        raise HarmonicError(f"unknown export format '{fmt}'; use one of {', '.join(FORMATS)}")
    run = Path(run)
    total = 5
    src = _read_inputs(run, model_id, samples)  # every error of a bad input comes before output
    progress("export", 0, total)
    cfg, d, model, arch, inputs = src.cfg, src.directory, src.model, src.arch, src.inputs
    progress("export", 1, total)
    unused = unused_modalities(model)
    meta = preprocess_metadata(cfg, arch, src.dataset, model_id, unused)
    names = list(arch.modalities)
    norm = input_normalisation(meta, names)
    raw = raw_scale(inputs, norm)
    deployable = RawInputModel.build(model, names, norm)

    out = d / MODEL_FILES[fmt]
    stem, suffix = MODEL_FILES[fmt].split(".")
    tmp = d / f".{stem}.tmp{os.getpid()}.{suffix}"
    example = tuple(x[:1] for x in raw)
    threads = int(cfg.device.threads)
    try:
        _write_model_file(deployable, example, tmp, fmt, names, meta, arch, model_id)
        progress("export", 2, total)
        diff, exported = _check_parity(
            model, inputs, raw, tmp, names, threads, fmt, model_id, tolerance
        )
        progress("export", 3, total)
        one = [x[:1].numpy() for x in raw]
        with torch_threads(threads):
            timing = measure_stable(lambda: exported.run(one), warmup, max(50, int(repeats)))
        med, p90, n_rep = timing.median, timing.p90, len(timing.samples)
        progress("export", 4, total)
        with writing(out):
            os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)

    pre = atomic_write_json(d / PREPROCESS_NAME, meta)
    member = src.member
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
        latency_p10_ms=timing.p10,
        split_half_pct=timing.split_half_pct,
        measured_on=machine_identity("onnxruntime" if fmt == "onnx" else "torch", threads).short(),
        lut_is_other_machine=_lut_is_other_machine(cfg, threads),
    )
    _record(d, result)
    progress("export", total, total)
    logger.info(
        "exported %s as %s to %s (max abs diff %.2e, %.3f ms)", model_id, fmt, out, diff, med
    )
    return result


def _write_model_file(
    deployable: RawInputModel,
    example: tuple[torch.Tensor, ...],
    tmp: Path,
    fmt: str,
    names: Sequence[str],
    meta: dict[str, Any],
    arch: ArchSpec,
    model_id: str,
) -> None:
    """The model file at ``tmp`` (removed again on failure)."""
    try:
        if fmt == "torchscript":
            write_torchscript(deployable, example, tmp, meta, json.dumps(arch.to_json()))
        else:
            write_onnx(deployable, example, tmp, names, meta)
    except HarmonicError:
        tmp.unlink(missing_ok=True)
        raise
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise ExportError(
            f"exporting model '{model_id}' to {fmt} failed ({exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); try the other format"
        ) from exc


def _check_parity(
    model: MultimodalNet | LateFusionNet,
    inputs: tuple[torch.Tensor, ...],
    raw: tuple[torch.Tensor, ...],
    tmp: Path,
    names: Sequence[str],
    threads: int,
    fmt: str,
    model_id: str,
    tolerance: float,
) -> tuple[float, ExportedModel]:
    """The file loaded back and the max abs difference of the file's logits from the PyTorch model's (ExportError above
    ``tolerance``)."""
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
    return diff, exported


def _lut_is_other_machine(cfg: ExperimentConfig, threads: int) -> bool | None:
    """Whether the run's table of ``cfg.device.name`` describes another device or machine than
    this one (None when the run has no readable table)."""
    from harmonic_nas.errors import LUTError
    from harmonic_nas.hardware.lut import LUT
    from harmonic_nas.hardware.lut_source import foreign_table, run_lut_path

    try:
        lut = LUT.load(run_lut_path(cfg))
    except LUTError:
        return None
    if lut.device.backend not in ("onnxruntime", "torch"):
        return True  # an imported table: measured on its own device
    provider = lut.device.identity.provider if lut.device.identity else cfg.device.provider
    return foreign_table(lut, lut.device.backend, lut.device.threads, provider) is not None


def _f(v: Any) -> float | None:
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


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
