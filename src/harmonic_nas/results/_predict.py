"""Running an exported model (``model.pt`` TorchScript or ``model.onnx``) on samples.

Samples come from ``.npz`` files (one array per modality; a dataset split file works too: its
``labels`` are kept aside to score the predictions) or from raw files, one per modality (``.png``,
``.wav``), turned into inputs by the recipes of ``preprocess.json`` (:mod:`._raw`). It needs only
the model file and the ``preprocess.json`` written beside it by ``harmonic-nas export`` (the
TorchScript file also carries a copy inside, so it works on its own).
"""

from __future__ import annotations

import json
import logging
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harmonic_nas.errors import DataError, HarmonicError, StageMissingError
from harmonic_nas.results._raw import recipe_problem
from harmonic_nas.tasks import (
    PER_LABEL_LABELS,
    metric_from_scores,
    metric_label,
    metric_name,
    per_label_scores,
)
from harmonic_nas.utils.io import (
    SIZE_FIX,
    DuplicateKeyError,
    array_bytes,
    check_bytes,
    check_float32_range,
    check_npz_size,
    is_schema_version,
    load_json,
)
from harmonic_nas.utils.io import read_npz as read_npz_arrays
from harmonic_nas.utils.limits import MAX_ARRAY_BYTES

logger = logging.getLogger(__name__)

PREPROCESS_NAME = "preprocess.json"
PREPROCESS_SCHEMA_VERSION = 2  # 2: raw-scale inputs, standardised inside the graph
#: versions ``predict`` reads: 1 (inputs standardised by the caller) and the current one
PREPROCESS_READABLE_VERSIONS = (1, PREPROCESS_SCHEMA_VERSION)
NPZ_RESERVED = ("labels", "class_names")  # keys of a dataset split file that are not inputs
MODEL_FILES = {"torchscript": "model.pt", "onnx": "model.onnx"}


class ModelFileError(HarmonicError):
    """An exported model file is missing, unreadable, or lacks its preprocessing metadata."""


@dataclass(frozen=True)
class InputSpec:
    """One model input: modality name, per-sample shape (without batch) and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    kind: str = ""
    raw: dict[str, Any] | None = None  # how a raw file becomes this input (preprocess.json)


@dataclass(frozen=True)
class ExportedModel:
    """An exported model and its preprocessing metadata, callable on a batch of numpy inputs."""

    path: Path
    format: str
    meta: dict[str, Any]
    _runner: Any

    @property
    def inputs(self) -> list[InputSpec]:
        return [
            InputSpec(
                str(i["name"]),
                tuple(int(s) for s in i["shape"]),
                str(i.get("dtype", "float32")),
                str(i.get("kind", "")),
                i.get("raw") if isinstance(i.get("raw"), dict) else None,
            )
            for i in self.meta["inputs"]
        ]

    @property
    def takes_raw_inputs(self) -> bool:
        """False for an older export (schema 1) that expects inputs standardised by the caller;
        exports of schema 2 and later standardise inside the graph."""
        return bool(self.meta.get("normalization_in_graph")) or not self.meta.get("normalization")

    @property
    def task(self) -> str:
        return str(self.meta.get("task", "classification"))

    @property
    def class_names(self) -> list[str]:
        names = self.meta.get("class_names")
        n = int(self.meta.get("num_classes", len(names or [])))
        if isinstance(names, list) and len(names) == n:
            return [str(c) for c in names]
        return [f"class {i}" for i in range(n)]

    def run(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        """One forward pass on float32 batches, one per modality in input order -> logits.

        Every modality is an input of both formats, also one the fused network never reads
        (older ONNX exports lack such an input; that array is then simply not fed).
        """
        names = [i.name for i in self.inputs]
        out: np.ndarray = self._runner(dict(zip(names, arrays, strict=True)))
        return out

    def logits(self, inputs: Mapping[str, np.ndarray], batch_size: int = 64) -> np.ndarray:
        """Raw outputs ``(N, num_classes)`` for batched inputs (already checked by the caller)."""
        names = [i.name for i in self.inputs]
        n = int(next(iter(inputs.values())).shape[0])
        outs = []
        for start in range(0, n, batch_size):
            chunk = [np.ascontiguousarray(inputs[k][start : start + batch_size]) for k in names]
            outs.append(self.run(chunk))
        return np.concatenate(outs, axis=0) if outs else np.zeros((0, len(self.class_names)))


def _torchscript_runner(path: Path) -> tuple[Any, dict[str, Any] | None]:
    import torch

    extra = {PREPROCESS_NAME: ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except (RuntimeError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelFileError(
            f"{path} is not a TorchScript model ({exc.__class__.__name__}); "
            "export it again with `harmonic-nas export RUN --model ID --format torchscript`"
        ) from None
    module.eval()
    embedded = json.loads(extra[PREPROCESS_NAME]) if extra[PREPROCESS_NAME] else None

    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        with torch.inference_mode():
            out = module(*[torch.from_numpy(a) for a in feeds.values()])
        return out.detach().cpu().numpy()

    return run, embedded


def _onnx_runner(path: Path, threads: int = 0) -> tuple[Any, dict[str, Any] | None]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise ModelFileError(
            f"{path} is not a valid ONNX model ({exc.__class__.__name__}); "
            "export it again with `harmonic-nas export RUN --model ID --format onnx`"
        ) from None
    names = [i.name for i in session.get_inputs()]
    meta = session.get_modelmeta().custom_metadata_map
    embedded = json.loads(meta[PREPROCESS_NAME]) if PREPROCESS_NAME in meta else None

    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        missing = [n for n in names if n not in feeds]
        if missing:
            raise ModelFileError(
                f"{path} takes an input '{missing[0]}' that its preprocess.json does not list; "
                "export the model again"
            )
        out = session.run(None, {n: feeds[n] for n in names})[0]
        return np.asarray(out)

    return run, embedded


def resolve_model_path(path: Path | str) -> Path:
    """A model file, or a model directory holding ``model.pt`` / ``model.onnx``."""
    p = Path(path)
    if p.is_dir():
        for fname in MODEL_FILES.values():
            if (p / fname).is_file():
                return p / fname
        raise StageMissingError(
            f"{p} holds no exported model (model.pt or model.onnx); run "
            "`harmonic-nas export RUN --model ID` first"
        )
    if not p.is_file():
        raise StageMissingError(
            f"model file not found: {p}; export one with `harmonic-nas export RUN --model ID`"
        )
    return p


def load_exported(path: Path | str, *, threads: int = 0) -> ExportedModel:
    """Open ``model.pt`` / ``model.onnx`` (or a directory holding one) with its preprocessing."""
    p = resolve_model_path(path)
    if p.suffix == ".onnx":
        fmt = "onnx"
        runner, embedded = _onnx_runner(p, threads)
    elif p.suffix in (".pt", ".pth", ".torchscript"):
        fmt = "torchscript"
        runner, embedded = _torchscript_runner(p)
    else:
        raise ModelFileError(
            f"unknown model file type {p.suffix!r} ({p}); pass a model.pt (TorchScript) or "
            "model.onnx written by `harmonic-nas export`"
        )
    beside = p.parent / PREPROCESS_NAME
    if beside.is_file():
        try:
            meta = load_json(beside.read_text(encoding="utf-8"))
        except DuplicateKeyError as exc:
            raise ModelFileError(f"{beside} has a {exc}") from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ModelFileError(
                f"{beside} is not valid UTF-8 JSON; export the model again"
            ) from None
        except OSError as exc:
            raise ModelFileError(
                f"cannot read {beside}: {exc.strerror or exc.__class__.__name__}; check that "
                "it is readable"
            ) from None
    elif embedded is not None:
        meta = embedded
    else:
        raise ModelFileError(
            f"no {PREPROCESS_NAME} beside {p}; keep the file `harmonic-nas export` wrote next "
            "to the model"
        )
    source = beside if beside.is_file() else p
    found = meta.get("schema_version") if isinstance(meta, dict) else None
    if not any(is_schema_version(found, v) for v in PREPROCESS_READABLE_VERSIONS):
        raise ModelFileError(
            f"{source if beside.is_file() else f'the {PREPROCESS_NAME} inside {p}'} has "
            f"schema_version {found!r}, expected "
            + " or ".join(map(str, PREPROCESS_READABLE_VERSIONS))
            + "; export the model again with this version of harmonic-nas"
        )
    if not isinstance(meta, dict) or not isinstance(meta.get("inputs"), list):
        raise ModelFileError(f"{source} has no 'inputs' list; export the model again")
    _check_input_meta(meta["inputs"], source)
    return ExportedModel(path=p, format=fmt, meta=meta, _runner=runner)


def _check_input_meta(inputs: list[Any], source: Path) -> None:
    """Every input of ``preprocess.json`` names its modality and a shape of positive integers."""
    for k, i in enumerate(inputs):
        name = i.get("name") if isinstance(i, dict) else None
        if not isinstance(name, str) or not name:
            raise ModelFileError(f"{source}: input {k} has no 'name'; export the model again")
        shape = i.get("shape")
        if (
            not isinstance(shape, list)
            or not shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
        ):
            raise ModelFileError(
                f"{source}: input '{name}' has shape {shape!r}, not a list of positive integers; "
                "export the model again"
            )
        if array_bytes(shape, np.float32) > MAX_ARRAY_BYTES:
            raise ModelFileError(
                f"{source}: input '{name}' has shape {shape!r:.80}, more values per sample than "
                "any input can hold; export the model again"
            )
        raw = i.get("raw")
        problem = recipe_problem(raw, tuple(shape)) if isinstance(raw, dict) else None
        if problem is not None:
            raise ModelFileError(f"{source}: input '{name}': {problem}; export the model again")


# --------------------------------------------------------------------------- inputs


def check_inputs(
    arrays: Mapping[str, Any], specs: Sequence[InputSpec], source: str = "input"
) -> dict[str, np.ndarray]:
    """Validate per-modality arrays against the model's inputs; add a batch dim to single samples.

    Raises a one-line :class:`DataError` for a missing or unknown modality, a wrong shape,
    a non-numeric array, or modalities with different sample counts.
    """
    expected = [s.name for s in specs]
    unknown = [k for k in arrays if k not in expected]
    if unknown:
        raise DataError(
            f"{source}: unknown modality '{unknown[0]}'; this model takes "
            + ", ".join(f"'{n}'" for n in expected)
        )
    missing = [n for n in expected if n not in arrays]
    if missing:
        raise DataError(
            f"{source}: modality '{missing[0]}' is missing; this model takes one array per "
            "modality: " + ", ".join(f"'{n}'" for n in expected)
        )
    out: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for spec in specs:
        a = np.asarray(arrays[spec.name])
        if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
            raise DataError(
                f"{source}: modality '{spec.name}' has non-numeric dtype {a.dtype}; "
                f"give {spec.dtype} values"
            )
        if tuple(a.shape) == spec.shape:
            a = a[None]
        elif len(spec.shape) > 1 and spec.shape[0] == 1 and tuple(a.shape[1:]) == spec.shape[1:]:
            a = a[:, None]  # (N, H, W) for a one-channel (1, H, W) input, as the npz loader takes
        elif tuple(a.shape[1:]) != spec.shape:
            raise DataError(
                f"{source}: modality '{spec.name}' has shape {tuple(a.shape)}; expected "
                f"{spec.shape} for one sample or (N, {', '.join(map(str, spec.shape))}) for N"
            )
        if not np.all(np.isfinite(a)):
            raise DataError(f"{source}: modality '{spec.name}' contains NaN or infinite values")
        if np.dtype(spec.dtype) == np.float32:
            check_float32_range(a, f"{source}: modality '{spec.name}'")
        out[spec.name] = a.astype(spec.dtype, copy=False)
        counts[spec.name] = int(a.shape[0])
    if len(set(counts.values())) > 1:
        raise DataError(
            f"{source}: modalities have different numbers of samples "
            + ", ".join(f"{k}={v}" for k, v in counts.items())
            + "; give the same N for every modality"
        )
    return out


def read_npz(path: Path | str, specs: Sequence[InputSpec]) -> dict[str, np.ndarray]:
    """Read and validate one ``.npz`` of inputs (one array per modality name; ``labels`` and
    ``class_names`` of a dataset split file are ignored)."""
    return read_npz_with_labels(path, specs)[0]


def read_npz_with_labels(
    path: Path | str, specs: Sequence[InputSpec]
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """The inputs of one ``.npz`` and its ``labels`` array (None when the file has none)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"input file not found: {p}; pass an .npz with one array per modality")
    arrays = read_npz_arrays(
        p, fix="save inputs with numpy.savez(path, image=..., audio=...), one array per modality"
    )
    labels = arrays.get("labels")
    inputs = {k: v for k, v in arrays.items() if k not in NPZ_RESERVED}
    return check_inputs(inputs, specs, source=str(p)), labels


def read_files(
    files: Mapping[str, Path | str], specs: Sequence[InputSpec]
) -> dict[str, np.ndarray]:
    """One sample per modality from raw files (``{modality: file}``), per preprocess.json."""
    from harmonic_nas.results._raw import load_raw_file

    by_name = {s.name: s for s in specs}
    arrays = {}
    for name, f in files.items():
        spec = by_name.get(name)
        if spec is None:
            raise DataError(
                f"--file {name}={f}: unknown modality '{name}'; this model takes "
                + ", ".join(f"'{n}'" for n in by_name)
            )
        arrays[name] = load_raw_file(f, name, spec.raw, spec.shape)
    return check_inputs(arrays, specs, source="--file")


# --------------------------------------------------------------------------- prediction


@dataclass(frozen=True)
class Prediction:
    """Class probabilities of every sample (softmax; sigmoid for multilabel models)."""

    probabilities: np.ndarray  # (N, K)
    class_names: list[str]
    task: str
    threshold: float
    samples: list[str]  # "file.npz[i]" per row
    labels: np.ndarray | None = None  # true labels when every input file had them

    def _scored(self) -> bool:
        return self.labels is not None and 0 < len(self.labels) == len(self.probabilities)

    @property
    def metric(self) -> float | None:
        """The task's metric against the input files' labels (:mod:`harmonic_nas.tasks`: accuracy,
        or weighted F1 at the model's threshold for multilabel; the number the search and the
        report give); None without labels."""
        if not self._scored():
            return None
        return metric_from_scores(self.probabilities, self.labels, self.task, self.threshold)

    @property
    def metric_label(self) -> str:
        """The metric's name for people (``accuracy``, ``weighted F1``)."""
        return metric_label(self.task)  # type: ignore[arg-type]

    @property
    def per_label(self) -> list[dict[str, Any]] | None:
        """Per class: its score (multilabel F1; classification recall) and support; None
        without labels."""
        if not self._scored():
            return None
        return per_label_scores(
            self.probabilities, self.labels, self.task, self.threshold, self.class_names
        )

    def to_json(self) -> dict[str, Any]:
        """Every sample's probabilities and predicted classes, and the scores (``predict
        --json``)."""
        return {
            "task": self.task,
            "threshold": self.threshold,
            "classes": list(self.class_names),
            "samples": [
                {
                    "sample": name,
                    "probabilities": [float(p) for p in row],
                    "predicted": predicted,
                }
                for name, row, predicted in zip(
                    self.samples, self.probabilities, self.predicted, strict=True
                )
            ],
            "metric": metric_name(self.task),  # type: ignore[arg-type]
            "metric_value": self.metric,
            "per_label_score": PER_LABEL_LABELS.get(self.task),
            "per_label": self.per_label,
        }

    @property
    def predicted(self) -> list[list[str]]:
        """Per sample: the top class, or every class over the threshold (multilabel)."""
        if self.task == "multilabel":
            return [
                [self.class_names[j] for j in np.flatnonzero(row >= self.threshold)]
                for row in self.probabilities
            ]
        return [[self.class_names[int(np.argmax(row))]] for row in self.probabilities]


def probabilities(logits: np.ndarray, task: str) -> np.ndarray:
    """Softmax over classes, or an element-wise sigmoid for multilabel outputs (float64)."""
    z = np.asarray(logits, dtype=np.float64)
    if task == "multilabel":
        return np.asarray(0.5 * (1.0 + np.tanh(0.5 * z)))  # sigmoid without overflow
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def predict(
    model: Path | str | ExportedModel,
    inputs: Mapping[str, Any] | Path | str | Sequence[Path | str] = (),
    *,
    files: Mapping[str, Path | str] | None = None,
) -> Prediction:
    """Class probabilities of an exported model on samples.

    ``inputs`` is a mapping ``{modality: array}`` (``(N, *shape)`` or one sample ``shape``), or one
    or more ``.npz`` files holding such arrays; samples of several files are concatenated. A
    dataset split file works as is: its ``labels`` are not inputs, they score the predictions
    (:attr:`Prediction.metric`). ``files`` gives one raw file per modality instead
    (``{"image": "digit.png", "audio": "seven.wav"}``), read as ``preprocess.json`` describes.
    """
    m = model if isinstance(model, ExportedModel) else load_exported(model)
    specs = m.inputs
    batches: list[dict[str, np.ndarray]] = []
    samples: list[str] = []
    labels: list[np.ndarray | None] = []
    if files:
        if inputs:
            raise DataError("give either --file MODALITY=FILE or --input FILE.npz, not both")
        batches.append(read_files(files, specs))
        samples.append("+".join(Path(f).name for f in files.values()))
        labels.append(None)
    elif isinstance(inputs, Mapping):
        arrays = check_inputs(inputs, specs)
        batches.append(arrays)
        n = len(next(iter(arrays.values())))
        samples.extend(f"input[{i}]" for i in range(n))
    else:
        paths = [inputs] if isinstance(inputs, str | Path) else list(inputs)
        if not paths:
            raise DataError(
                "no input given; pass --input FILE.npz or --file MODALITY=FILE per modality"
            )
        total = sum(check_npz_size(Path(f)) for f in paths)  # from the headers: none is read
        check_bytes(total, f"the {len(paths)} input files together", SIZE_FIX)
        for f in paths:
            arrays, y = read_npz_with_labels(f, specs)
            batches.append(arrays)
            labels.append(y)
            n = len(next(iter(arrays.values())))
            samples.extend(f"{Path(f).name}[{i}]" for i in range(n))
    merged = {s.name: np.concatenate([b[s.name] for b in batches], axis=0) for s in specs}
    logits = m.logits(merged)
    names = m.class_names
    if logits.ndim != 2 or logits.shape[1] != len(names):
        raise ModelFileError(
            f"{m.path} returned outputs of shape {logits.shape} but its metadata lists "
            f"{len(names)} classes; export the model again"
        )
    return Prediction(
        probabilities=probabilities(logits, m.task),
        class_names=names,
        task=m.task,
        threshold=float(m.meta.get("threshold") or 0.5),
        samples=samples,
        labels=(
            np.concatenate([np.asarray(y) for y in labels if y is not None], axis=0)
            if labels and all(y is not None for y in labels)
            else None
        ),
    )
