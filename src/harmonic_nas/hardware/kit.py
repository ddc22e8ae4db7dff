"""The device kit: profile a device that cannot run harmonic-nas (only Python, numpy, onnxruntime).

:func:`write_kit` (``harmonic-nas profile CONFIG --kit DIR [--sample K]``) writes into ``DIR``:

* ``layers/*.onnx``: every distinct layer of the configured search space (or, with ``--sample K``,
  K of them chosen to span it: :func:`~harmonic_nas.hardware.transfer.choose_sample`), each a
  small ONNX model at batch size 1;
* ``models/trivial.onnx`` (per-call overhead), ``models/reference.onnx`` (machine-speed drift) and
  ``models/calibration_*.onnx`` (whole random models of the space, for the calibrated totals);
* ``manifest.json`` (what each file is: its LUT key or architecture, its inputs);
* ``run_kit.py``: the standalone runner (:mod:`harmonic_nas.hardware.kit_runner`), which writes
  one results file.

:func:`lut_from_kit_results` (``harmonic-nas lut import RESULTS --device NAME``) turns the results
into a LUT: entries net of the per-call overhead, the overhead, the machine identity, the
calibration fitted on the whole models and, for a sampled kit, the other layers predicted from
the measured ones and other devices' tables (:func:`~harmonic_nas.hardware.transfer
.predict_latencies`), listed as predicted.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harmonic_nas.errors import ConfigError, LUTError
from harmonic_nas.hardware.identity import MachineIdentity
from harmonic_nas.hardware.keys import lut_key, parse_key
from harmonic_nas.hardware.lut import LUT, DeviceInfo, EnergyStats, LatencyStats, LUTEntry, now_iso
from harmonic_nas.utils.io import atomic_write_json
from harmonic_nas.utils.progress import ProgressFn, no_progress
from harmonic_nas.utils.threads import torch_threads

if TYPE_CHECKING:
    from torch import Tensor, nn

    from harmonic_nas.backbones.layers import LayerSpec
    from harmonic_nas.config import ExperimentConfig
    from harmonic_nas.fusion import ArchSpec

logger = logging.getLogger(__name__)

RUNNER_NAME = "run_kit.py"
#: random models of the space whose layer usage decides a sampled kit's layers
USAGE_MODELS = 200


@dataclass(frozen=True)
class KitSummary:
    """What :func:`write_kit` wrote."""

    folder: Path
    layers: int
    space_layers: int
    calibration_models: int

    @property
    def runner(self) -> Path:
        return self.folder / RUNNER_NAME


def _inputs(inputs: tuple[Tensor, ...]) -> list[dict[str, Any]]:
    return [{"name": f"x{i}", "shape": list(t.shape)} for i, t in enumerate(inputs)]


def write_kit(
    cfg: ExperimentConfig,
    folder: Path,
    *,
    sample: int | None = None,
    n_classes: int | None = None,
    progress: ProgressFn = no_progress,
) -> KitSummary:
    """Write the kit of ``cfg``'s search space into ``folder`` (new or empty; nothing existing
    is overwritten)."""
    from harmonic_nas.hardware.inventory import (
        arch_layer_specs,
        config_n_classes,
        space_layer_specs,
    )
    from harmonic_nas.hardware.profiler import calibration_models
    from harmonic_nas.hardware.transfer import choose_sample, usage_counts
    from harmonic_nas.hardware.validate import random_arch
    from harmonic_nas.utils.seeding import numpy_rng

    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ConfigError(f"kit folder {folder} exists and is not empty; choose a new folder")
    if sample is not None and sample < 1:
        raise ConfigError(f"--sample must be >= 1, got {sample}")
    n = config_n_classes(cfg) if n_classes is None else n_classes
    specs = {lut_key(s): s for s in space_layer_specs(cfg, n)}
    keys = list(specs)
    if sample is not None:
        rng = numpy_rng(cfg.seed, "kit-usage")
        usage = usage_counts(
            [
                [lut_key(s) for s in arch_layer_specs(random_arch(cfg, rng, n))]
                for _ in range(USAGE_MODELS)
            ]
        )
        keys = choose_sample(keys, sample, None, usage)
    with torch_threads(1):  # the thread policy: building and exporting on one thread
        archs, models = calibration_models(cfg, cfg.device.calibration_models, n)
        _write_files(cfg, folder, keys, specs, archs, models, sample, progress)
    logger.info("kit of %d layers written to %s", len(keys), folder)
    return KitSummary(folder, len(keys), len(specs), len(models))


def _write_files(
    cfg: ExperimentConfig,
    folder: Path,
    keys: list[str],
    specs: dict[str, LayerSpec],
    archs: list[ArchSpec],
    models: list[tuple[nn.Module, tuple[Tensor, ...]]],
    sample: int | None,
    progress: ProgressFn,
) -> None:
    """Export the kit's models and write its manifest and runner (into a temporary folder
    renamed at the end: a failure leaves no half-written kit)."""
    from harmonic_nas.hardware import kit_runner
    from harmonic_nas.hardware.backends import export_onnx
    from harmonic_nas.hardware.profiler import (
        CHUNK,
        build_module,
        reference_module,
        trivial_module,
    )

    tmp = folder.with_name(folder.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "layers").mkdir(parents=True)
    (tmp / "models").mkdir()
    items: list[dict[str, Any]] = []

    def add(
        role: str, name: str, module: nn.Module, inputs: tuple[Tensor, ...], **extra: Any
    ) -> None:
        path = tmp / name
        path.write_bytes(export_onnx(module, inputs))
        items.append({"id": name, "role": role, "file": name, "inputs": _inputs(inputs), **extra})

    try:
        total = len(keys) + len(models) + 2
        task = "writing the device kit"
        progress(task, 0, total)
        add("trivial", "models/trivial.onnx", *trivial_module())
        add("reference", "models/reference.onnx", *reference_module())
        for i, key in enumerate(keys):
            module, inputs = build_module(specs[key], seed=cfg.seed)
            add("layer", f"layers/layer_{i:04d}.onnx", module, inputs, key=key)
            progress(task, i + 3, total)
        for i, (arch, (module, inputs)) in enumerate(zip(archs, models, strict=True)):
            add(
                "calibration",
                f"models/calibration_{i:02d}.onnx",
                module,
                inputs,
                arch=arch.to_json(),
            )
            progress(task, len(keys) + 3 + i, total)
        manifest = {
            "schema_version": kit_runner.SCHEMA_VERSION,
            "format": kit_runner.KIT_FORMAT,
            "config": cfg.name,
            "created": now_iso(),
            "warmup": cfg.device.warmup,
            "repeats": cfg.device.repeats,
            "chunk": CHUNK,
            "sampled": sample is not None,
            "space_keys": sorted(specs),
            "items": items,
        }
        atomic_write_json(tmp / "manifest.json", manifest)
        shutil.copyfile(Path(kit_runner.__file__), tmp / RUNNER_NAME)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if folder.exists():
        folder.rmdir()
    tmp.replace(folder)


#: the ``format`` of a kit's results file (:data:`.kit_runner.RESULTS_FORMAT`, which imports
#: onnxruntime at import time: read here without it)
RESULTS_FORMAT = "harmonic-nas-kit-results"
RESULTS_SCHEMA_VERSION = 1


def is_kit_results(obj: Any) -> bool:
    """Whether a parsed JSON document is a kit's results file."""
    return isinstance(obj, dict) and obj.get("format") == RESULTS_FORMAT


def _stats(obj: Any, where: str) -> LatencyStats:
    from harmonic_nas.hardware.lut import entry_from_json

    e = entry_from_json({"latency": obj, "energy": {"mean": 0.0}}, where)
    if e.latency.count < 1 or e.latency.p10 is None:
        raise LUTError(f"{where}: a kit measurement needs 'count' >= 1 and 'p10'")
    return e.latency


def lut_from_kit_results(
    obj: Any,
    source: str,
    device: str,
    *,
    description: str = "",
    references: Sequence[LUT] = (),
) -> LUT:
    """The LUT of a kit's results (see the module docstring). ``references``: other devices'
    tables to predict a sampled kit's other layers from (never one kind from another)."""
    from harmonic_nas.fusion import ArchSpec
    from harmonic_nas.hardware.cost import calibrate_lut
    from harmonic_nas.hardware.energy import ConstantPowerModel
    from harmonic_nas.hardware.transfer import predict_latencies

    if not is_kit_results(obj) or obj.get("schema_version") != RESULTS_SCHEMA_VERSION:
        raise LUTError(f"{source} is not a version-1 results file of a harmonic-nas kit")
    try:
        identity = MachineIdentity.from_json(obj["identity"], f"{source} identity")
        trivial = _stats(obj["trivial"], f"{source} trivial")
        reference = _stats(obj["reference"], f"{source} reference")
        layers = obj["layers"]
        calib = obj["calibration"]
        space_keys = obj.get("space_keys", [])
        if not isinstance(layers, dict) or not isinstance(calib, list):
            raise TypeError
    except (KeyError, TypeError):
        raise LUTError(
            f"{source}: missing or malformed 'identity', 'trivial', 'reference', 'layers' or "
            "'calibration'; rerun the kit's run_kit.py"
        ) from None
    power = ConstantPowerModel()
    o = trivial.value

    def entry(lat: LatencyStats) -> LUTEntry:
        net = LatencyStats(
            mean=max(lat.mean - trivial.mean, 0.0),
            std=lat.std,
            count=lat.count,
            median=None if lat.median is None else max(lat.median - (trivial.median or o), 0.0),
            p10=None if lat.p10 is None else max(lat.p10 - o, 0.0),
        )
        return LUTEntry(net, EnergyStats(power.energy_mj(net.value), 0.0, net.count))

    entries: dict[str, LUTEntry] = {}
    for key, stats in layers.items():
        parse_key(key)
        entries[key] = entry(_stats(stats, f"{source} layer '{key}'"))
    predicted: frozenset[str] = frozenset()
    if obj.get("sampled"):
        tables = [{k: e.latency_ms for k, e in r.entries.items()} for r in references]
        guess = predict_latencies(
            {k: e.latency_ms for k, e in entries.items()}, [str(k) for k in space_keys], tables
        )
        for key, lat in guess.items():
            entries[key] = LUTEntry.point(lat, power.energy_mj(lat))
        predicted = frozenset(guess)
        logger.info("predicted %d of %d layers", len(guess), len(space_keys))
    lut = LUT(
        device=DeviceInfo(
            name=device,
            description=description or identity.short(),
            backend="onnxruntime",
            threads=identity.threads,
            identity=identity,
        ),
        energy_source=power.label,
        entries=entries,
        created=now_iso(),
        overhead=LUTEntry(trivial, EnergyStats(power.energy_mj(o), 0.0, trivial.count)),
        meta={
            "kit": {
                "source": Path(source).name,
                "manifest_sha256": obj.get("manifest_sha256"),
                "config": obj.get("config"),
                "settings": obj.get("settings"),
                "sampled": bool(obj.get("sampled")),
                "measured_layers": len(layers),
                "references": [r.device.name for r in references],
            },
            "call_overhead_ms": o,
            "entries_net_of_call_overhead": True,
            "latency_statistic": "p10",
            "reference_ms": reference.value,
        },
        predicted=predicted,
    )
    if calib:
        archs = [ArchSpec.from_json(c["arch"]) for c in calib]
        measured = [_stats(c["latency"], f"{source} calibration").value for c in calib]
        calibrate_lut(lut, archs, measured)
    return lut
