"""The configuration the search benchmarks start from: configs/quick.yaml with longer pretraining.

quick.yaml's 8 pretraining epochs are the demo's time budget, not convergence: the max audio
subnet's val accuracy in ``fusion_search.py``'s baselines is 72.7 +- 4.5 % after 8 epochs and
79.0 +- 2.2 % after 20 (seeds 0-2; image 91.6 and 92.9 %). A benchmark of the search
should not measure an under-trained backbone, so ``fusion_search``, ``search_quality`` and the
benchmarks that continue its runs pretrain for :data:`PRETRAIN_EPOCHS`; every other setting is
quick.yaml's but one: the benchmarks' protocol keeps ``search.fusion_modes`` off
(:data:`PROTOCOL_SETS`), the setting every saved result but ``search_quality_modes.json`` was
measured with, so a recorded command still reproduces its file; the late-fusion gene quick.yaml
ships is measured with ``--set 'search.fusion_modes=[late,network+late]'``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from harmonic_nas.config import ExperimentConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
BASE_CONFIG = ROOT / "configs" / "quick.yaml"
PRETRAIN_EPOCHS = 20
#: what the benchmarks change in quick.yaml, applied before a benchmark's own ``--set`` pairs
#: (which may undo them) and not part of a pipeline's name
PROTOCOL_SETS: tuple[str, ...] = (f"pretrain.epochs={PRETRAIN_EPOCHS}", "search.fusion_modes=null")


def load_bench_config(
    path: Path = BASE_CONFIG, overrides: dict[str, Any] | None = None
) -> ExperimentConfig:
    """``path`` (default configs/quick.yaml) with the benchmarks' protocol (:data:`PROTOCOL_SETS`)."""
    return load_config(path, overrides, sets=list(PROTOCOL_SETS))


def repo_relative(path: Path) -> str:
    """``path`` relative to the repository when inside it (no machine paths in saved results)."""
    # the path as given first: a run directory under a symlinked ``runs/`` stays ``runs/...``
    for candidate in (Path(os.path.abspath(path)), path.resolve()):
        if candidate.is_relative_to(ROOT):
            return str(candidate.relative_to(ROOT))
    return str(path.resolve())


def bench_identity() -> dict[str, Any]:
    """The machine a benchmark ran on (CPU, cores, caches, runtime versions; no hostname), with
    the Python, torch, ONNX Runtime and Optuna versions and the load average at the start (the
    machine may be shared): what every benchmark JSON records."""
    import platform

    import onnxruntime
    import optuna
    import torch

    from harmonic_nas.hardware.identity import machine_identity

    return {
        **machine_identity().to_json(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "optuna": optuna.__version__,
        "load_average_at_start": list(os.getloadavg()),
    }


def sidecar_fields(main: Path) -> dict[str, Any]:
    """What a benchmark's sidecar file (every candidate or subnet of ``main``) records beside its
    data: no targets of its own (they are in ``main``), a note saying so, and the machine."""
    return {
        "targets": {},
        "note": f"sidecar of {main.name}; its targets are in {main.name}",
        "machine": bench_identity(),
    }
