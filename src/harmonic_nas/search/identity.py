"""A study's identity: the config keys that define it, its hash, and the keys a run may change."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harmonic_nas.config import ExperimentConfig

logger = logging.getLogger(__name__)


#: SearchConfig fields that change nothing in the results (excluded from the config hash).
_OPERATIONAL = (
    "storage",
    "storage_password_env",
    "study_name",
    "workers",
    "heartbeat_s",
    "strategy",
    "test_seeds",
    "rescore_seeds",  # the final stage's re-scoring: candidates are not changed by it
)


#: SearchConfig fields that are part of a study's identity only when they change something, so
#: that studies made before they existed (at their neutral value) keep their identity.
_FIDELITY_KEYS = ("fidelity", "fidelity_fraction")


#: FusionConfig fields and the value every study had before they existed: part of a study's
#: identity only at another value, so that those studies resume with it.
_NEUTRAL_FUSION = {"late_skip": False, "mixup": 0.0, "fusion_split": 0.0}


#: Budget keys: not part of a study's identity, so raising them extends the study.
BUDGET_KEYS = ("search.generations", "search.population")


#: Where and in which precision the networks run (``compute``): not part of any identity (a run
#: started on a CPU continues on a GPU; its numbers differ by float rounding, not by experiment).
COMPUTE_KEYS = ("compute.device", "compute.precision")


#: Keys of the resolved config that may differ between two invocations of one run directory.
RUN_MUTABLE_KEYS = (*BUDGET_KEYS, "search.workers", "search.rescore_seeds", *COMPUTE_KEYS)


_IDENTITY_SECTIONS = ("seed", "dataset", "modalities", "device", "pretrain", "fusion")


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one ``{"dotted.path": leaf}`` mapping (lists are leaves)."""
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def differing_keys(
    old: dict[str, Any], new: dict[str, Any], ignore: tuple[str, ...] = ()
) -> list[str]:
    """Dotted keys whose values differ between two flat mappings (or exist in only one)."""
    missing = object()
    return sorted(
        k
        for k in set(old) | set(new)
        if k not in ignore and old.get(k, missing) != new.get(k, missing)
    )


def config_identity(cfg: ExperimentConfig, strategy: str) -> dict[str, Any]:
    """Everything that changes the candidates' results, as dotted keys: not the budget keys
    (raising them extends a study), workers, storage, names or the final stage's test seeds."""
    data = cfg.model_dump(mode="json")
    payload: dict[str, Any] = {k: data[k] for k in _IDENTITY_SECTIONS}
    payload["fusion"] = _fusion_section(data["fusion"])
    payload["search"] = {
        k: v for k, v in _search_section(data["search"]).items() if f"search.{k}" not in BUDGET_KEYS
    }
    if strategy == "random":  # random search ignores search.initial
        payload["search"].pop("initial", None)
    out = flatten(payload)
    out["strategy"] = strategy
    return out


def _fusion_section(fusion: dict[str, Any]) -> dict[str, Any]:
    """The ``fusion`` keys, without those at the value every study had before they existed."""
    return {k: v for k, v in fusion.items() if _NEUTRAL_FUSION.get(k, object()) != v}


def _search_section(search: dict[str, Any]) -> dict[str, Any]:
    """The ``search`` keys that change results: not the operational ones, the fidelity keys only
    when multi-fidelity is on and ``initial`` only when it is not random (what every study did
    before they existed)."""
    out = {k: v for k, v in search.items() if k not in _OPERATIONAL}
    if out.get("fidelity", "full") == "full":
        for k in _FIDELITY_KEYS:
            out.pop(k, None)
    elif out.get("fidelity") == "screen":  # a screen trains nothing: the fraction is unused
        out.pop("fidelity_fraction", None)
    if out.get("initial") == "random":  # what every study did before search.initial existed
        out.pop("initial")
    if out.get("fusion_modes", "absent") is None:  # no fusion-mode gene, as before it existed
        out.pop("fusion_modes")
    return out


def search_config_hash(cfg: ExperimentConfig, strategy: str) -> str:
    """Hash of :func:`config_identity` (budget keys, workers, storage and names excluded)."""
    payload = config_identity(cfg, strategy)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def legacy_config_hash(cfg: ExperimentConfig, strategy: str) -> str:
    """The hash studies made before budget keys left the identity recorded (to resume them)."""
    data = cfg.model_dump(mode="json")
    payload = {k: data[k] for k in _IDENTITY_SECTIONS}
    payload["fusion"] = _fusion_section(data["fusion"])
    payload["search"] = _search_section(data["search"])
    payload["strategy"] = strategy
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
