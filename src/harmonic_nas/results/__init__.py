"""Results stage: the Pareto report (HTML + figures), deployable export, and prediction.

>>> from harmonic_nas.results import report, export, predict
>>> report("runs/quick")                                  # doctest: +SKIP
PosixPath('runs/quick/report.html')
>>> export("runs/quick", "t0007", "onnx").max_abs_diff     # doctest: +SKIP
>>> predict("runs/quick/models/t0007/model.onnx", "samples.npz").probabilities  # doctest: +SKIP
"""

from __future__ import annotations

from harmonic_nas.results._artifacts import (
    ParetoMember,
    RunArtifacts,
    UnknownModelError,
    load_run,
    model_dir,
)
from harmonic_nas.results._export import (
    FORMATS,
    ExportError,
    ExportResult,
    build_model,
    export,
    load_model,
    preprocess_metadata,
)
from harmonic_nas.results._predict import (
    ExportedModel,
    InputSpec,
    ModelFileError,
    Prediction,
    check_inputs,
    load_exported,
    predict,
    probabilities,
    read_npz,
)
from harmonic_nas.results._report import deploy_summary, pareto_markdown, report

__all__ = [
    "FORMATS",
    "ExportError",
    "ExportResult",
    "ExportedModel",
    "InputSpec",
    "ModelFileError",
    "ParetoMember",
    "Prediction",
    "RunArtifacts",
    "UnknownModelError",
    "build_model",
    "check_inputs",
    "deploy_summary",
    "export",
    "load_exported",
    "load_model",
    "load_run",
    "model_dir",
    "pareto_markdown",
    "predict",
    "preprocess_metadata",
    "probabilities",
    "read_npz",
    "report",
]
