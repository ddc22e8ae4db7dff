"""harmonic-nas: hardware-aware multimodal neural architecture search.

The few names a notebook needs, imported on first use (``import harmonic_nas`` stays cheap)::

    import harmonic_nas as hn

    cfg = hn.load_config("configs/quick.yaml")
    result = hn.run(cfg)  # every stage; hn.run_fusion(cfg) runs the inner tier alone
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from harmonic_nas.config import ExperimentConfig, load_config, parse_config
    from harmonic_nas.pipeline import PipelineHooks, RunResult, run, run_fusion

#: public name -> module that defines it
_LAZY = {
    "ExperimentConfig": "harmonic_nas.config",
    "load_config": "harmonic_nas.config",
    "parse_config": "harmonic_nas.config",
    "PipelineHooks": "harmonic_nas.pipeline",
    "RunResult": "harmonic_nas.pipeline",
    "run": "harmonic_nas.pipeline",
    "run_fusion": "harmonic_nas.pipeline",
}

__all__ = [
    "ExperimentConfig",
    "PipelineHooks",
    "RunResult",
    "__version__",
    "load_config",
    "parse_config",
    "run",
    "run_fusion",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'harmonic_nas' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
