"""Building, validating, normalising and caching datasets; the ``load_dataset`` entry point."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from harmonic_nas.data.normalization import restandardise
from harmonic_nas.data.options import options_dict, parse_options
from harmonic_nas.data.registry import BuildContext, get_dataset_entry
from harmonic_nas.data.types import (
    SPLITS,
    ModalitySpec,
    MultimodalDataset,
    Split,
)
from harmonic_nas.errors import DataError, HarmonicError
from harmonic_nas.utils.io import atomic_torch_save, safe_torch_load
from harmonic_nas.utils.names import modality_name_problem
from harmonic_nas.utils.paths import cache_root
from harmonic_nas.utils.progress import ProgressFn, no_progress

if TYPE_CHECKING:
    from harmonic_nas.config import ExperimentConfig

logger = logging.getLogger(__name__)

CACHE_SCHEMA_VERSION = 1

#: Train samples every class needs: the fusion search holds out a class-stratified part of train
#: for its architecture steps (``fusion.arch_split``), and both parts need every class.
MIN_TRAIN_PER_CLASS = 2

#: A modality whose train values spread less than this share of their mean magnitude is
#: constant to float32 (about 2**-23 relative precision): standardising it amplifies rounding.
MIN_RELATIVE_STD = 2.0**-20


# --------------------------------------------------------------------------- validation


def check_finite(x: torch.Tensor, modality: str, split: str, dataset: str) -> None:
    """One-line DataError when ``x`` holds NaN or Inf values."""
    if x.is_floating_point():
        bad = int((~torch.isfinite(x)).sum())
        if bad:
            raise DataError(
                f"dataset '{dataset}': modality '{modality}' of split '{split}' contains {bad} "
                "NaN/Inf values; clean or impute them in the source files"
            )


def check_sample_shape(spec: ModalitySpec, dataset: str) -> None:
    """One-line DataError when a modality's samples hold no values (a dimension of size 0)."""
    if not spec.shape or min(spec.shape) < 1:
        raise DataError(
            f"dataset '{dataset}': modality '{spec.name}' has sample shape {list(spec.shape)}, "
            "which holds no values; give every sample at least one value"
        )


def train_class_problem(dataset: str, counts: dict[int, int], class_names: list[str]) -> str | None:
    """Why the train split's class counts ``{class: samples}`` cannot be searched, or None."""
    few = {c: n for c, n in counts.items() if n < MIN_TRAIN_PER_CLASS}
    if not few:
        return None
    c = min(few)
    label = class_names[c] if 0 <= c < len(class_names) else str(c)
    return (
        f"dataset '{dataset}': class {c} ('{label}') has {few[c]} train sample(s) "
        f"({len(few)} class(es) have fewer than {MIN_TRAIN_PER_CLASS}); every class needs at "
        f"least {MIN_TRAIN_PER_CLASS} train samples (the fusion search holds out a "
        "class-stratified part of train): add samples or drop the class"
    )


def validate_dataset(ds: MultimodalDataset) -> None:
    """Check every invariant of a built dataset; raise a one-line DataError naming the problem."""
    name = ds.name
    names = [m.name for m in ds.modalities]
    if len(set(names)) != len(names) or not names:
        raise DataError(f"dataset '{name}' has duplicate or no modality names {names}")
    for m in names:
        problem = modality_name_problem(m)
        if problem is not None:
            raise DataError(f"dataset '{name}': {problem}; rename the array in the dataset files")
    for spec in ds.modalities:
        check_sample_shape(spec, name)
    if ds.task not in ("classification", "multilabel"):
        raise DataError(f"dataset '{name}' has unknown task '{ds.task}'")
    if ds.num_classes < 2 or len(ds.class_names) != ds.num_classes:
        raise DataError(
            f"dataset '{name}' needs >= 2 classes with one name each "
            f"(got {ds.num_classes} classes, {len(ds.class_names)} names)"
        )
    for split in SPLITS:
        if split not in ds.splits:
            raise DataError(f"dataset '{name}' has no '{split}' split; provide train, val and test")
    for split, s in ds.splits.items():
        n = len(s)
        if n == 0:
            raise DataError(
                f"dataset '{name}': split '{split}' is empty; add samples to it "
                "or change the split sizes"
            )
        missing = set(names) - set(s.inputs)
        extra = set(s.inputs) - set(names)
        if missing or extra:
            what = (
                f"lacks modality '{sorted(missing)[0]}'"
                if missing
                else (f"has unexpected modality '{sorted(extra)[0]}'")
            )
            raise DataError(
                f"dataset '{name}': split '{split}' {what}; give every split the same modalities"
            )
        for spec in ds.modalities:
            x = s.inputs[spec.name]
            if x.shape[0] != n:
                raise DataError(
                    f"dataset '{name}': modality '{spec.name}' of split '{split}' has {x.shape[0]} "
                    f"samples but there are {n} labels; every modality needs one sample per label"
                )
            if tuple(x.shape[1:]) != tuple(spec.shape):
                raise DataError(
                    f"dataset '{name}': modality '{spec.name}' of split '{split}' has sample shape "
                    f"{list(x.shape[1:])}, expected {list(spec.shape)}; make every sample the same shape"
                )
            if x.dtype != torch.float32:
                raise DataError(
                    f"dataset '{name}': modality '{spec.name}' of split '{split}' is {x.dtype}, "
                    "expected float32"
                )
            check_finite(x, spec.name, split, name)
        y = s.labels
        if ds.task == "classification":
            if y.dim() != 1 or y.dtype != torch.int64:
                raise DataError(
                    f"dataset '{name}': labels of split '{split}' must be int64 of shape (N,), "
                    f"got {y.dtype} {list(y.shape)}"
                )
            lo, hi = int(y.min()), int(y.max())
            if lo < 0 or hi >= ds.num_classes:
                raise DataError(
                    f"dataset '{name}': labels of split '{split}' range over [{lo}, {hi}] but must "
                    f"lie in [0, {ds.num_classes - 1}]; relabel the classes as 0..{ds.num_classes - 1}"
                )
            counts = torch.bincount(y, minlength=ds.num_classes)
            absent = (counts == 0).nonzero(as_tuple=True)[0]
            if len(absent):
                c = int(absent[0])
                raise DataError(
                    f"dataset '{name}': class {c} ('{ds.class_names[c]}') is missing from split "
                    f"'{split}'; every class needs samples in train, val and test"
                )
            if split == "train":
                problem = train_class_problem(
                    name, dict(enumerate(counts.tolist())), ds.class_names
                )
                if problem is not None:
                    raise DataError(problem)
        else:
            if y.dim() != 2 or y.shape[1] != ds.num_classes or not y.is_floating_point():
                raise DataError(
                    f"dataset '{name}': multilabel labels of split '{split}' must be float of shape "
                    f"(N, {ds.num_classes}), got {y.dtype} {list(y.shape)}"
                )
            if not bool(((y == 0) | (y == 1)).all()):
                raise DataError(
                    f"dataset '{name}': multilabel labels of split '{split}' must be 0/1 multi-hot; "
                    "binarise them"
                )


# --------------------------------------------------------------------------- fingerprints / cache


def dataset_fingerprint(ds: MultimodalDataset) -> str:
    """A content hash of every tensor and of the metadata that defines the dataset."""
    h = hashlib.sha256()
    head = {
        "name": ds.name,
        "task": ds.task,
        "num_classes": ds.num_classes,
        "class_names": ds.class_names,
        "modalities": [m.to_json() for m in ds.modalities],
    }
    h.update(json.dumps(head, sort_keys=True).encode())
    for split in sorted(ds.splits):
        s = ds.splits[split]
        h.update(split.encode())
        for key in sorted(s.inputs):
            h.update(key.encode())
            h.update(s.inputs[key].contiguous().numpy().tobytes())
        h.update(s.labels.contiguous().numpy().tobytes())
    return h.hexdigest()


def cache_dir() -> Path:
    """``$HARMONIC_NAS_CACHE/datasets`` (default ``~/.cache/harmonic-nas/datasets``)."""
    return cache_root() / "datasets"


def cache_key(name: str, version: int, options: dict[str, Any], seed: int) -> str:
    """The content hash naming a cached build: dataset, builder version, resolved options, seed."""
    payload = {"name": name, "version": version, "options": options, "seed": seed}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[
        :24
    ]


def _to_payload(ds: MultimodalDataset, key: str) -> dict[str, Any]:
    return {
        "schema_version": CACHE_SCHEMA_VERSION,
        "key": key,
        "name": ds.name,
        "task": ds.task,
        "num_classes": ds.num_classes,
        "class_names": list(ds.class_names),
        "modalities": [m.to_json() for m in ds.modalities],
        "splits": {k: {"inputs": dict(s.inputs), "labels": s.labels} for k, s in ds.splits.items()},
        "meta": json.loads(json.dumps(ds.meta)),
    }


def _from_payload(p: dict[str, Any]) -> MultimodalDataset:
    return MultimodalDataset(
        name=p["name"],
        modalities=[ModalitySpec.from_json(m) for m in p["modalities"]],
        task=p["task"],
        num_classes=int(p["num_classes"]),
        class_names=list(p["class_names"]),
        splits={k: Split(dict(v["inputs"]), v["labels"]) for k, v in p["splits"].items()},
        meta=dict(p["meta"]),
    )


def _read_cache(path: Path, key: str) -> MultimodalDataset | None:
    if not path.is_file():
        return None
    try:
        payload = safe_torch_load(path, what="dataset cache")
        if payload.get("schema_version") != CACHE_SCHEMA_VERSION or payload.get("key") != key:
            raise HarmonicError("stale cache")
        return _from_payload(payload)
    except (HarmonicError, KeyError, TypeError, AttributeError):
        logger.warning("dataset cache %s is unreadable or stale; rebuilding it", path)
        return None


# --------------------------------------------------------------------------- entry points


def build_dataset(
    name: str,
    *,
    path: Path | str | None = None,
    options: dict[str, Any] | None = None,
    seed: int = 0,
    progress: ProgressFn = no_progress,
    use_cache: bool = True,
    force: bool = False,
) -> MultimodalDataset:
    """Build (or read from the cache) the dataset ``name`` and validate it.

    ``path`` is required by the real-data loaders (``soundmnist``, ``avmnist``, ``mmimdb``,
    ``npz``); ``options`` are the builder options (see ``harmonic-nas data info NAME``). Datasets
    whose entry asks for it (``av-digits``) are cached under
    ``$HARMONIC_NAS_CACHE/datasets/<hash>.pt``; ``force`` rebuilds and overwrites the cache.
    """
    entry = get_dataset_entry(name)
    if entry.options is not None:
        opts = parse_options(entry.options, options, name)
        resolved = options_dict(opts)
    else:
        if options:
            raise DataError(
                f"unknown option '{sorted(options)[0]}' for dataset '{name}'; it takes no options"
            )
        opts, resolved = None, {}
    user_path: Path | None = None
    if entry.needs_path:
        if path is None:
            raise DataError(
                f"dataset '{name}' is read from disk and needs a path; set dataset.path in the "
                "config or pass --path"
            )
        user_path = Path(path).expanduser()
        if not user_path.exists():
            raise DataError(
                f"dataset path {user_path} does not exist; point dataset.path (or --path) at the "
                f"'{name}' data"
            )
    elif path is not None:
        logger.warning("dataset '%s' is built in and ignores the path %s", name, path)

    key = cache_key(name, entry.version, resolved, seed)
    cache_file = cache_dir() / f"{name}-{key}.pt"
    if entry.cache and use_cache and not force:
        cached = _read_cache(cache_file, key)
        if cached is not None:
            progress("reading cached dataset", 1, 1)
            logger.info("dataset '%s' read from cache %s", name, cache_file)
            validate_dataset(cached)
            return cached

    ds = entry.builder(BuildContext(name, user_path, opts, seed), progress)
    validate_dataset(ds)
    ds.meta.setdefault("options", resolved)
    ds.meta["seed"] = seed
    ds.meta["fingerprint"] = dataset_fingerprint(ds)
    if entry.cache and use_cache:
        atomic_torch_save(cache_file, _to_payload(ds, key))
        ds.meta["cache_file"] = str(cache_file)
        logger.info("dataset '%s' cached in %s", name, cache_file)
    return ds


def check_modalities(ds: MultimodalDataset, cfg: ExperimentConfig) -> None:
    """The config's modalities must be the dataset's (names, rank, shape, kind)."""
    wanted = cfg.modalities
    have = {m.name: m for m in ds.modalities}
    for mod in wanted:
        if mod not in have:
            raise DataError(
                f"config modality '{mod}' is not in dataset '{ds.name}' (its modalities: "
                f"{', '.join(have)}); rename or remove modalities.{mod}"
            )
    for mod, spec in have.items():
        if mod not in wanted:
            raise DataError(
                f"dataset '{ds.name}' modality '{mod}' is missing from the config; add "
                f"modalities.{mod} with shape {list(spec.shape)}"
            )
        mc = wanted[mod]
        if len(mc.shape) != len(spec.shape):
            raise DataError(
                f"modality '{mod}' has rank {len(spec.shape)} {list(spec.shape)} in dataset "
                f"'{ds.name}' but rank {len(mc.shape)} {list(mc.shape)} in the config; set "
                f"modalities.{mod}.shape to {list(spec.shape)}"
            )
        if tuple(mc.shape) != tuple(spec.shape):
            raise DataError(
                f"modality '{mod}' has shape {list(spec.shape)} in dataset '{ds.name}' but "
                f"{list(mc.shape)} in the config; set modalities.{mod}.shape to {list(spec.shape)}"
            )
        if mc.kind is not None and mc.kind != spec.kind:
            raise DataError(
                f"modality '{mod}' is of kind '{spec.kind}' in dataset '{ds.name}' but "
                f"'{mc.kind}' in the config; set modalities.{mod}.kind to {spec.kind}"
            )
        _check_raw_text(ds, mod, mc.preset)


def _check_raw_text(ds: MultimodalDataset, mod: str, preset: str) -> None:
    """A raw-text preset (``text-1d``) reads token ids: only a tokenised modality fits it."""
    from harmonic_nas.backbones.presets import TextPreset, get_preset

    tokenizers = ds.meta.get("tokenizers") if isinstance(ds.meta, dict) else None
    tokenised = isinstance(tokenizers, dict) and mod in tokenizers
    if isinstance(get_preset(preset), TextPreset) and not tokenised:
        raise DataError(
            f"modality '{mod}' of dataset '{ds.name}' holds feature values, not raw text, but "
            f"preset {preset} reads token ids; set modalities.{mod}.preset to mlp or maxout"
        )


def load_dataset(cfg: ExperimentConfig, progress: ProgressFn = no_progress) -> MultimodalDataset:
    """Build or read the dataset of ``cfg.dataset`` (seeded by ``cfg.seed``) and check it against
    ``cfg.modalities`` (names, rank, shape): a mismatch is a one-line DataError. With
    ``fusion.fusion_split`` a share of train becomes the ``fusion`` split (:mod:`.fusion_split`)."""
    ds = build_dataset(
        cfg.dataset.name,
        path=cfg.dataset.path,
        options=dict(cfg.dataset.options),
        seed=cfg.seed,
        progress=progress,
    )
    check_modalities(ds, cfg)
    apply_normalization(ds, cfg)
    if cfg.fusion.fusion_split > 0:
        from harmonic_nas.data.fusion_split import carve_fusion_split

        ds = carve_fusion_split(ds, cfg.fusion.fusion_split, cfg.seed)
    return ds


def apply_normalization(ds: MultimodalDataset, cfg: ExperimentConfig) -> None:
    """Standardise again the modalities whose ``modalities.<m>.normalization`` differs from the
    mode the dataset was built with (statistics from train; ``meta`` and fingerprint updated)."""
    modes = {m: mc.normalization for m, mc in cfg.modalities.items() if mc.normalization}
    if not modes:
        return
    stats = ds.meta.setdefault("normalization", {})
    assert isinstance(stats, dict)
    changed = restandardise(ds.splits, ds.modalities, stats, modes, ds.name)
    if changed:
        logger.info("modalities %s standardised per %s", changed, modes)
        ds.meta["fingerprint"] = dataset_fingerprint(ds)
