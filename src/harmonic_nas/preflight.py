"""Checks of an experiment that need no training, run before any stage, all problems at once.

:func:`check_experiment` looks at everything that can be wrong in a config without building a
dataset or training a network: the dataset name, its options and path; the modalities against the
dataset's metadata where it is cheap (av-digits and avmnist from their options, ``npz`` from the
array headers of ``train.npz``); each modality's backbone preset against its kind and shape; the
fusion operators; the device (registered or installed, a table for a device that is not profiled
here, the profiling backend installed); the compute setting (a CUDA device this machine has). It raises ONE :class:`ConfigError` listing every problem
(a single problem keeps the usual one-line ``<problem>; <fix>``).

:func:`estimate_search` is the up-front estimate of a search's wall time printed before a long
run (see its docstring for how it is made).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import math
import zipfile
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harmonic_nas.config import format_problems
from harmonic_nas.errors import ConfigError, HarmonicError
from harmonic_nas.utils.device import check_compute

if TYPE_CHECKING:
    from harmonic_nas.config import DatasetConfig, ExperimentConfig

logger = logging.getLogger(__name__)

#: The stages a check can be for: ``run`` needs all; ``pretrain`` only data and backbones.
STAGES = ("data", "pretrain", "profile", "search")


class PreflightError(ConfigError):
    """Every problem the up-front checks found (``problems``: one message each)."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__(format_problems(f"config {source}", self.problems))


@dataclass(frozen=True)
class DataMeta:
    """What the dataset's metadata says without building it (None: unknown)."""

    modalities: dict[str, tuple[str | None, tuple[int, ...]]]  # name -> (kind, sample shape)
    n_train: int | None = None
    train_counts: dict[int, int] | None = None  # class -> train samples (classification)


# --------------------------------------------------------------------------- dataset metadata


def _npz_header_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Array shapes of an ``.npz`` from the ``.npy`` headers only (no data is read)."""
    from harmonic_nas.utils.io import npz_headers

    return {name: shape for name, (shape, _) in npz_headers(path).items()}


def _npz_meta(root: Path, opts: Any) -> DataMeta | None:
    from harmonic_nas.data.loaders.npz import RESERVED, sample_kind_shape

    train = root / "train.npz"
    if not train.is_file():
        return None  # the data stage names what is missing
    shapes = _npz_header_shapes(train)
    kinds = _npz_kind_overrides(opts)
    if any(len(s) == 1 for n, s in shapes.items() if n not in RESERVED):
        return None  # a (N,) array is raw text (its token length is fitted by the data stage)
    mods: dict[str, tuple[str | None, tuple[int, ...]]] = {}
    for name, shape in shapes.items():
        if name in RESERVED or len(shape) < 2:
            continue
        mods[name] = sample_kind_shape(name, shape, kinds.get(name))
    n_train = shapes["labels"][0] if shapes.get("labels") else None
    return DataMeta(mods, n_train, _train_counts(train, shapes.get("labels")))


def _npz_kind_overrides(opts: Any) -> dict[str, str]:
    """``{modality: kind}`` of the npz option ``kinds`` (``"a:audio,b:vector"``), unchecked."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in str(getattr(opts, "kinds", "")).split(","))):
        name, _, kind = part.partition(":")
        out[name.strip()] = kind.strip()
    return out


def _train_counts(path: Path, shape: tuple[int, ...] | None) -> dict[int, int] | None:
    """Samples per class of ``labels`` in ``train.npz`` (only that array is read, and only when
    it is a vector of integer classes of a bounded size); None otherwise."""
    import numpy as np

    from harmonic_nas.utils.io import array_bytes
    from harmonic_nas.utils.limits import MAX_ARRAY_BYTES, MAX_LABEL

    if shape is None or len(shape) != 1 or array_bytes(shape, np.int64) > MAX_ARRAY_BYTES:
        return None
    with np.load(path, allow_pickle=False) as z:
        y = np.asarray(z["labels"])
    if not np.issubdtype(y.dtype, np.integer) or not y.size or y.min() < 0 or y.max() > MAX_LABEL:
        return None  # the data stage names what is wrong with them
    classes, counts = np.unique(y, return_counts=True)
    return {int(c): int(n) for c, n in zip(classes, counts, strict=True)}


def dataset_meta(cfg: ExperimentConfig, opts: Any) -> DataMeta | None:
    """The modalities (kind, shape) of ``cfg.dataset`` where they are known without building it:
    the built-in ``av-digits`` and ``avmnist`` from their options, ``npz`` from the headers of
    ``train.npz``; None for the others (checked after the data stage)."""
    return _dataset_meta(cfg.dataset, opts)


def _dataset_meta(dataset: DatasetConfig, opts: Any) -> DataMeta | None:
    name = dataset.name
    if name == "av-digits":
        height = opts.n_mfcc if opts.features == "mfcc" else opts.n_mels
        return DataMeta(
            {"image": ("image", (1, 28, 28)), "audio": ("audio", (1, height, opts.n_frames))},
            10 * opts.train_per_class,
        )
    if name == "avmnist":
        size = opts.audio_size
        return DataMeta({"image": ("image", (1, 28, 28)), "audio": ("audio", (1, size, size))})
    if name == "npz" and dataset.path is not None:
        return _npz_meta(Path(dataset.path).expanduser(), opts)
    return None


def dataset_kinds(dataset: DatasetConfig) -> dict[str, tuple[str, bool]]:
    """``{modality: (kind, holds raw text)}`` of ``dataset`` where known without building it:
    what :func:`dataset_meta` knows, the built-in ``multi-digits`` from its options, and ``npz``
    from the headers of ``train.npz`` (raw text included: a ``(N,)`` string array). Empty when
    unknown or when the dataset section is wrong (the checks name that problem); reads no data.
    Where an omitted ``modalities.<m>.preset`` takes its kind from (:mod:`harmonic_nas.config`)."""
    from harmonic_nas.data import get_dataset_entry
    from harmonic_nas.data.options import parse_options

    name = dataset.name
    try:
        entry = get_dataset_entry(name)
        opts = (
            parse_options(entry.options, dict(dataset.options), name)
            if entry.options is not None
            else None
        )
        if name == "multi-digits":
            from harmonic_nas.data.multi_digits import KINDS, selected_modalities

            chosen = str(getattr(opts, "modalities", ""))
            return {m: (KINDS[m], m == "text") for m in selected_modalities(chosen)}
        if name == "npz" and dataset.path is not None:
            return _npz_kinds(Path(dataset.path).expanduser() / "train.npz", opts)
        meta = _dataset_meta(dataset, opts)
    except (HarmonicError, OSError, ValueError, zipfile.BadZipFile) as exc:
        logger.debug("no cheap modality kinds for dataset %s: %s", name, exc)
        return {}
    if meta is None:
        return {}
    return {m: (kind, False) for m, (kind, _) in meta.modalities.items() if kind is not None}


def _npz_kinds(train: Path, opts: Any) -> dict[str, tuple[str, bool]]:
    """The kinds of ``train.npz``'s modalities from its headers (the loader's rule)."""
    from harmonic_nas.data.loaders.npz import RESERVED, sample_kind_shape
    from harmonic_nas.utils.io import npz_headers

    if not train.is_file():
        return {}
    overrides = _npz_kind_overrides(opts)
    out: dict[str, tuple[str, bool]] = {}
    for mod, (shape, dtype) in npz_headers(train).items():
        if mod in RESERVED or not shape:
            continue
        if len(shape) == 1:  # raw text (the loader refuses any other (N,) array)
            if getattr(dtype, "kind", "") in ("U", "S") or overrides.get(mod) == "text":
                out[mod] = ("text", True)
            continue
        out[mod] = (sample_kind_shape(mod, shape, overrides.get(mod))[0], False)
    return out


# --------------------------------------------------------------------------- the checks


def _collect(problems: list[str], check: Callable[[], Any]) -> Any:
    """Run ``check``; a HarmonicError becomes one listed problem (None is returned)."""
    try:
        return check()
    except HarmonicError as exc:
        problems.append(str(exc))
        return None


def _check_dataset(cfg: ExperimentConfig, problems: list[str]) -> DataMeta | None:
    from harmonic_nas.data import get_dataset_entry
    from harmonic_nas.data.options import parse_options

    entry = _collect(problems, lambda: get_dataset_entry(cfg.dataset.name))
    if entry is None:
        return None
    name, options = cfg.dataset.name, dict(cfg.dataset.options)
    opts = None
    if entry.options is not None:
        opts = _collect(problems, lambda: parse_options(entry.options, options, name))
        if opts is None:
            return None
    elif options:
        problems.append(
            f"unknown option '{sorted(options)[0]}' for dataset '{name}'; it takes no options "
            "(remove dataset.options)"
        )
    if entry.needs_path:
        path = cfg.dataset.path
        if path is None:
            problems.append(
                f"dataset '{name}' is read from disk and needs a path; set dataset.path in the "
                "config (or -o dataset.path=DIR)"
            )
            return None
        if not Path(path).expanduser().exists():
            problems.append(
                f"dataset path {Path(path).expanduser()} does not exist; point dataset.path at "
                f"the '{name}' data"
            )
            return None
    if name == "npz" and cfg.dataset.path is not None:  # sizes from the headers (nothing read)
        from harmonic_nas.utils.io import check_npz_size

        root = Path(cfg.dataset.path).expanduser()
        for file in (root / f"{split}.npz" for split in ("train", "val", "test")):
            if file.is_file():
                _collect(problems, functools.partial(check_npz_size, file))
    try:
        return dataset_meta(cfg, opts)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:  # the data stage says it properly
        logger.debug("no cheap metadata for dataset %s: %s", name, exc)
        return None


def _check_modalities(cfg: ExperimentConfig, meta: DataMeta, problems: list[str]) -> None:
    """The config's modalities against the dataset's (names, shape, kind)."""
    name = cfg.dataset.name
    have = meta.modalities
    for mod in cfg.modalities:
        if mod not in have:
            problems.append(
                f"config modality '{mod}' is not in dataset '{name}' (its modalities: "
                f"{', '.join(have)}); rename or remove modalities.{mod}"
            )
    for mod, (kind, shape) in have.items():
        if mod not in cfg.modalities:
            problems.append(
                f"dataset '{name}' modality '{mod}' is missing from the config; add "
                f"modalities.{mod} with shape {list(shape)}"
            )
            continue
        mc = cfg.modalities[mod]
        if tuple(mc.shape) != tuple(shape):
            problems.append(
                f"modality '{mod}' has shape {list(shape)} in dataset '{name}' but "
                f"{list(mc.shape)} in the config; set modalities.{mod}.shape to {list(shape)}"
            )
        if mc.kind is not None and kind is not None and mc.kind != kind:
            problems.append(
                f"modality '{mod}' is of kind '{kind}' in dataset '{name}' but '{mc.kind}' in "
                f"the config; set modalities.{mod}.kind to {kind}"
            )


def _check_presets(
    cfg: ExperimentConfig, meta: DataMeta | None, names: Collection[str], problems: list[str]
) -> None:
    """Each modality's preset exists and fits its kind and shape (the rule of
    :func:`harmonic_nas.backbones.factory.check_preset_fits`: a 2-D MobileNetV3 preset is a CNN
    for (C, H, W) image or audio inputs, ``mbv3-1d`` for (C, T) signals; ``maxout`` takes any
    input, flattened)."""
    from harmonic_nas.backbones.factory import check_preset_fits
    from harmonic_nas.backbones.presets import get_preset

    for mod in names:
        mc = cfg.modalities[mod]
        try:
            preset = get_preset(mc.preset)
        except HarmonicError as exc:
            problems.append(f"modalities.{mod}.preset: {exc}")
            continue
        known = meta.modalities.get(mod) if meta is not None else None
        kind = mc.kind or (known[0] if known else None)
        try:
            check_preset_fits(preset, kind, tuple(mc.shape), f"modality '{mod}': ")
        except HarmonicError as exc:
            problems.append(f"{exc} (modalities.{mod}.preset)")


def _check_fusion(cfg: ExperimentConfig, problems: list[str]) -> None:
    from harmonic_nas.fusion.ops import check_ops, list_ops

    for op in cfg.fusion.ops:
        if op not in list_ops():
            problems.append(
                f"unknown fusion operator {op!r} in fusion.ops; choose from {', '.join(list_ops())}"
            )
    if all(op in list_ops() for op in cfg.fusion.ops):
        _collect(problems, lambda: check_ops(cfg.fusion.ops))


def _check_fusion_split(cfg: ExperimentConfig, n_train: int, problems: list[str]) -> None:
    """``fusion.fusion_split`` leaves the fusion network at least 4 training samples (what
    ``fusion.arch_split`` needs to hold out its architecture part)."""
    n = round(cfg.fusion.fusion_split * n_train)
    if n < 4:
        problems.append(
            f"fusion.fusion_split={cfg.fusion.fusion_split} of {n_train} train samples leaves "
            f"{n} for the fusion network (at least 4 needed); raise it, use more data or set "
            "fusion.fusion_split: 0"
        )


def _check_device(cfg: ExperimentConfig, problems: list[str]) -> None:
    """The device is known and, unless it is profiled here, has a table (installed or in the
    run); a device profiled here needs its timing backend installed."""
    from harmonic_nas.hardware import lut_source as registry
    from harmonic_nas.hardware.lut import LUT

    name = cfg.device.name
    for table in (registry.run_lut_path(cfg, name), registry.installed_path(name)):
        if table.is_file():  # a table a later stage would read must be readable now
            _collect(problems, partial(LUT.load, table))
    entry = registry.get_device(name)
    if entry is not None and entry.profile_here:
        if cfg.device.backend == "onnxruntime" and importlib.util.find_spec("onnxruntime") is None:
            problems.append(
                "device.backend is onnxruntime but the onnxruntime package is not installed; "
                "pip install onnxruntime, or set device.backend: torch"
            )
        return
    if registry.installed_path(name).is_file() or registry.run_lut_path(cfg, name).is_file():
        return
    problems.append(registry._missing_message(name))


def _check_budget(cfg: ExperimentConfig, problems: list[str]) -> None:
    """The search budget (population x generations) fits the space's distinct candidates."""
    from harmonic_nas.search.evaluator import space_from_config

    size = _collect(problems, lambda: space_from_config(cfg).size())
    if size is not None and size < cfg.search.budget:
        problems.append(
            f"the search space has only {size} distinct candidates but the budget "
            f"(search.population x search.generations) is {cfg.search.budget}; lower them"
        )


def check_experiment(
    cfg: ExperimentConfig,
    *,
    source: str = "",
    stages: Collection[str] = STAGES,
    modalities: Sequence[str] | None = None,
) -> None:
    """Every check of ``cfg`` that needs no training, for the given ``stages``; raise one
    :class:`PreflightError` listing all problems (nothing was run or written).

    ``modalities`` restricts the preset checks (``pretrain -m``); an unknown name is a problem.
    """
    from harmonic_nas.data.core import train_class_problem
    from harmonic_nas.utils.names import modality_name_problem

    problems: list[str] = []
    names = list(cfg.modalities)
    if modalities:
        unknown = [m for m in modalities if m not in cfg.modalities]
        for m in unknown:
            problems.append(
                f"unknown modality '{m}' for --modality; the config has {sorted(cfg.modalities)}"
            )
        names = [m for m in modalities if m in cfg.modalities]
    for mod in cfg.modalities:
        problem = modality_name_problem(mod)
        if problem is not None:
            problems.append(f"{problem}; rename modalities.{mod} (and the dataset's array)")
    meta = _check_dataset(cfg, problems)
    if meta is not None:
        _check_modalities(cfg, meta, problems)
        if meta.train_counts is not None:
            problem = train_class_problem(cfg.dataset.name, meta.train_counts, [])
            if problem is not None:
                problems.append(problem)
    if {"pretrain", "search"} & set(stages):
        _check_presets(cfg, meta, names, problems)
    if {"search"} & set(stages):
        _check_fusion(cfg, problems)
        if not any(p.startswith("modalities.") for p in problems):
            _check_budget(cfg, problems)
    if meta is not None and meta.n_train is not None and cfg.fusion.fusion_split > 0:
        _check_fusion_split(cfg, meta.n_train, problems)
    if {"profile", "search"} & set(stages):
        _check_device(cfg, problems)
    if {"pretrain", "profile", "search"} & set(stages):
        problems.extend(check_compute(cfg.compute.device, cfg.compute.precision))
    if problems:
        raise PreflightError(source or f"'{cfg.name}'", list(dict.fromkeys(problems)))


# --------------------------------------------------------------------------- cost estimate

#: Calibration of :func:`estimate_search` on this project's 2-core CPU machine: a candidate of
#: configs/quick.yaml (C=32, L=4, 3+3 epochs, 1-4 cells x 1-4 nodes, 1,050 train samples) took
#: 2.7 s on average, 0.9 s of it outside the training epochs (``benchmarks/search_quality.py``,
#: seed 0, the 64 random-search candidates' trial durations); one at the paper's C=192, L=16,
#: 25+25 epochs, 2 cells x 2 nodes 135 s (``benchmarks/fusion_search.py``).
_FIXED_S = 1.0  # per candidate: subnet extraction, BN recalibration, feature cache, scoring
_EPOCH_S = 0.189  # per epoch and 1,000 train samples at 2 cells x 2 nodes, size-independent
_EPOCH_S_PER_C2L = 4.0e-6  # per epoch, 1,000 samples and unit of C^2 * L (the operators' work)


@dataclass(frozen=True)
class Estimate:
    """Estimated wall time of a search: ``candidates`` x ``per_candidate_s`` / parallel workers."""

    candidates: int
    per_candidate_s: float
    workers: int
    n_train: int
    n_train_known: bool

    @property
    def total_s(self) -> float:
        return self.candidates * self.per_candidate_s / self.workers

    def describe(self) -> str:
        par = f" / {self.workers} workers" if self.workers > 1 else ""
        train = f"{self.n_train} train samples" + ("" if self.n_train_known else " assumed")
        return (
            f"estimated search cost: {self.candidates} candidates x ~{self.per_candidate_s:.0f} s"
            f"{par} = ~{_duration(self.total_s)} (rough: from the fusion settings and "
            f"{train}, calibrated on a 2-core CPU; excludes pretraining, profiling, baselines)"
        )


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def estimate_search(
    cfg: ExperimentConfig, n_train: int | None = None, workers: int | None = None
) -> Estimate:
    """Up-front estimate of a search's wall time, from the config alone.

    Per candidate: ``1 s + (fusion.epochs + fusion.retrain_epochs) x (n_train / 1000) x
    (0.189 + 4.0e-6 x C^2 x L) x (mean cells x mean nodes) / 4`` seconds, with the mean of the
    ``search.cells`` / ``search.nodes`` ranges. The constants are fitted to two measured
    candidates (see ``_FIXED_S``); the total is ``population x generations`` candidates,
    divided by the local workers. ``n_train`` defaults to 1,000 when the dataset's metadata does
    not give it cheaply; ``workers`` defaults to ``search.workers``.
    """
    f, s = cfg.fusion, cfg.search
    known = n_train is not None
    n = n_train if n_train is not None else 1000
    cells = (s.cells[0] + s.cells[1]) / 2
    nodes = (s.nodes[0] + s.nodes[1]) / 2
    per_epoch = (_EPOCH_S + _EPOCH_S_PER_C2L * f.C * f.C * f.L) * (n / 1000) * cells * nodes / 4
    per_candidate = _FIXED_S + (f.epochs + f.retrain_epochs) * per_epoch
    parallel = max(1, min(workers or s.workers, s.population))
    return Estimate(s.budget, per_candidate, parallel, n, known)


def estimate_for(cfg: ExperimentConfig, workers: int | None = None) -> Estimate:
    """:func:`estimate_search` with the train size from the dataset's cheap metadata."""
    n_train: int | None = None
    try:
        from harmonic_nas.data import get_dataset_entry
        from harmonic_nas.data.options import parse_options

        entry = get_dataset_entry(cfg.dataset.name)
        opts = (
            parse_options(entry.options, dict(cfg.dataset.options), cfg.dataset.name)
            if entry.options is not None
            else None
        )
        meta = dataset_meta(cfg, opts)
        n_train = meta.n_train if meta is not None else None
    except (HarmonicError, OSError, ValueError, zipfile.BadZipFile):
        n_train = None
    if n_train is not None and not math.isfinite(n_train):
        n_train = None
    return estimate_search(cfg, n_train, workers)
